"""GET /api/opportunities/{id}/detail on hand-built books: the depth to the size, the slippage
curve (each point the depth-walk VWAP and net edge worked out here), the per-minute history
of net edge and basis, and each leg's funding history."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from perparb.api.app import ApiContext, create_app
from perparb.config import ApiSettings
from perparb.engine import Engine
from perparb.instruments.snapshot import load_registry
from perparb.scanner.core import Scanner, ScanSettings
from perparb.scanner.legs import FUNDING_HISTORY
from test_scanner import A_ASKS, A_BIDS, B_ASKS, B_BIDS, EXIT, FEE, NOW, S, book, funding, inst

BUY, SELL = "binance", "bybit"


def engine_with(min_edge_bps: float = 10.0, **settings: object) -> Engine:
    e = Engine(load_registry(), [BUY, SELL], Scanner(ScanSettings(min_edge_bps=min_edge_bps, **settings)))  # type: ignore[arg-type]
    for v in (BUY, SELL):
        e.set_connected(v, True, NOW)
    e.now_ns = NOW
    return e


def spread_engine() -> Engine:
    e = engine_with()
    a, b = inst(BUY), inst(SELL)
    e.scanner.on_book(a, book(a, A_BIDS, A_ASKS), NOW, e.status)
    e.scanner.on_book(b, book(b, B_BIDS, B_ASKS), NOW, e.status)
    return e


def walk(levels: list[tuple[float, float]], size: float) -> tuple[float, float]:
    """(quote amount, worst level price) of ``size`` taken from ``levels``, best first."""
    left, amount, worst = size, 0.0, 0.0
    for px, qty in levels:
        take = min(qty, left)
        amount += take * px
        worst = px
        left -= take
        if left <= 1e-15:
            break
    return amount, worst


def get(e: Engine, path: str, **params: object) -> dict:
    with TestClient(create_app(ApiContext(e, ApiSettings()))) as c:
        r = c.get(path, params=params)
        assert r.status_code == 200, r.text
        return r.json()


def test_spread_detail_depth_and_slippage_curve_from_the_books() -> None:
    e = spread_engine()
    d = get(e, f"/api/opportunities/spread:BTC:{BUY}:{SELL}/detail")
    assert d["kind"] == "spread" and (d["buy_venue"], d["sell_venue"]) == (BUY, SELL)
    # test_scanner's worked example: 1.5 units clear 10 bps net (1.0 at 100, 0.5 at 100.5).
    assert d["open"]["size_base"] == pytest.approx(1.5)
    assert d["size_base"] == pytest.approx(1.5) and d["size_source"] == "opportunity"
    assert d["exit_cost_per_unit"] == pytest.approx(EXIT)
    assert d["fees"] == {"buy": FEE, "sell": FEE}
    # Depth to the size: the buy leg's asks reach the second level, the sell leg's bids only the first.
    buy, sell = d["depth"]["buy"], d["depth"]["sell"]
    assert [(x["px"], x["qty"], x["cum_qty"]) for x in buy["levels"]] == [(100.0, 1.0, 1.0), (100.5, 2.0, 3.0)]
    assert [(x["px"], x["qty"], x["cum_qty"]) for x in sell["levels"]] == [(101.0, 1.5, 1.5)]
    assert buy["levels"][1]["cum_notional_quote"] == pytest.approx(100.0 + 201.0)
    assert (buy["side"], sell["side"]) == ("asks", "bids")
    assert (buy["available_base"], sell["available_base"]) == (8.0, 12.5)
    curve = d["slippage"]
    assert len(curve) == 20
    for k, p in enumerate(curve, 1):
        q = 1.5 * k / 20
        cost, buy_worst = walk(A_ASKS, q)
        proceeds, sell_worst = walk(B_BIDS, q)
        net = proceeds * (1 - FEE) - cost * (1 + FEE) - EXIT * q
        assert p["size_base"] == pytest.approx(q)
        assert p["buy_vwap"] == pytest.approx(cost / q) and p["sell_vwap"] == pytest.approx(proceeds / q)
        assert (p["buy_worst_px"], p["sell_worst_px"]) == (buy_worst, sell_worst)
        assert p["gross_bps"] == pytest.approx((proceeds - cost) / cost * 1e4)
        assert p["edge_bps"] == pytest.approx(net / cost * 1e4)
        assert p["net_profit_quote"] == pytest.approx(net)
    # The last point is the opportunity itself.
    assert curve[-1]["edge_bps"] == pytest.approx(d["open"]["edge_bps"])
    assert curve[-1]["net_profit_quote"] == pytest.approx(d["open"]["net_profit_quote"])
    assert d["funding"] is None


def test_a_larger_size_walks_deeper_and_stops_at_what_both_books_hold() -> None:
    e = spread_engine()
    d = get(e, f"/api/opportunities/spread:BTC:{BUY}:{SELL}/detail", size=10.0)
    assert d["size_source"] == "request"
    # The asks hold 8 units in all: sizes 0.5 .. 8.0 of the 20 steps of 0.5 are on the curve.
    assert [p["size_base"] for p in d["slippage"]] == pytest.approx([0.5 * k for k in range(1, 17)])
    p = d["slippage"][-1]
    cost = 100.0 * 1 + 100.5 * 2 + 101.0 * 5
    proceeds = 101.0 * 1.5 + 100.8 * 1 + 100.0 * 5.5
    assert p["edge_bps"] == pytest.approx((proceeds * (1 - FEE) - cost * (1 + FEE) - EXIT * 8) / cost * 1e4)
    assert p["edge_bps"] < d["slippage"][0]["edge_bps"]  # deeper is worse
    assert [x["px"] for x in d["depth"]["buy"]["levels"]] == [100.0, 100.5, 101.0]


def test_history_is_the_per_minute_net_edge_and_basis() -> None:
    e = spread_engine()
    d = get(e, f"/api/opportunities/spread:BTC:{BUY}:{SELL}/detail")
    [m] = d["history"]["minutes"]
    assert m["minute_ns"] == NOW // (60 * S) * 60 * S
    assert m["samples"] == 1 and m["median_edge_bps"] == pytest.approx(d["open"]["edge_bps"])
    mid_a, mid_b = (99.9 + 100.0) / 2, (101.0 + 101.1) / 2
    assert m["median_basis_bps"] == pytest.approx((mid_b - mid_a) / mid_a * 1e4)
    assert d["open"]["basis_bps"] == pytest.approx((mid_b - mid_a) / mid_a * 1e4)
    assert d["history"]["hour"]["samples"] == 1


def test_closed_or_unknown_pairs() -> None:
    e = spread_engine()
    # The reverse direction has never been open: no opportunity, the depth that both books hold.
    d = get(e, f"/api/opportunities/spread:BTC:{SELL}:{BUY}/detail")
    assert d["open"] is None and d["size_source"] == "depth" and d["history"]["minutes"] == []
    assert d["size_base"] == pytest.approx(min(sum(q for _, q in B_ASKS), sum(q for _, q in A_BIDS)))
    with TestClient(create_app(ApiContext(e, ApiSettings()))) as c:
        assert c.get(f"/api/opportunities/spread:ETH:{BUY}:{SELL}/detail").status_code == 404
        r = c.get(f"/api/opportunities/spread:BTC:{BUY}:nowhere/detail")
        assert r.status_code == 404 and "known venues" in r.json()["detail"]
        assert c.get(f"/api/opportunities/swap:BTC:{BUY}:{SELL}/detail").status_code == 422
        assert c.get(f"/api/opportunities/spread:BTC:{BUY}:{SELL}/detail", params={"size": -1}).status_code == 422
        schema = c.get("/openapi.json").json()
        assert "OpportunityDetail" in schema["components"]["schemas"]
        assert "/api/opportunities/{opportunity_id}/detail" in schema["paths"]


def test_funding_detail_has_each_legs_history_and_the_carry_curve() -> None:
    e = engine_with(funding_notional=10_000.0, funding_horizon_h=24.0)
    x, y = inst(BUY, taker_fee=0.0001), inst(SELL, taker_fee=0.0001)
    for i in (x, y):
        e.scanner.on_book(i, book(i, [(99.99, 1000.0)], [(100.01, 1000.0)]), NOW, e.status)
    sc = e.scanner
    sc.on_funding(x, funding(x, 0.0001, 8.0, next_in_h=1.0), NOW, e.status)
    sc.on_funding(y, funding(y, 0.00005, 1.0, next_in_h=0.5), NOW, e.status)
    sc.on_funding(y, funding(y, 0.0001, 1.0, next_in_h=0.5), NOW + 10 * S, e.status)  # same minute: replaces
    later = NOW + 61 * S
    for i in (x, y):  # fresh prices a minute on
        sc.on_book(i, book(i, [(99.99, 1000.0)], [(100.01, 1000.0)], recv_ns=later), later, e.status)
    sc.on_funding(y, funding(y, 0.00011, 1.0, next_in_h=0.5, recv_ns=later), later, e.status)
    e.now_ns = later
    d = get(e, f"/api/opportunities/funding:BTC:{BUY}:{SELL}/detail")
    assert d["open"]["kind"] == "funding" and d["size_base"] == pytest.approx(100.0)
    long, short = d["funding"]["long"], d["funding"]["short"]
    assert (long["venue"], short["venue"]) == (BUY, SELL)
    assert [(p["ts_ns"], p["rate"], p["interval_h"]) for p in long["points"]] == [(NOW, 0.0001, 8.0)]
    assert [(p["ts_ns"], p["rate"]) for p in short["points"]] == [(NOW + 10 * S, 0.0001), (later, 0.00011)]
    assert short["points"][0]["next_funding_ns"] == NOW + 1800 * S
    # The curve's last point is the carry at the opportunity's size, worked out as in test_scanner:
    # 100 units; the short receives 24 x 0.011 % x 10,000.0 (mid 100), the long pays 3 x 0.01 %.
    p = d["slippage"][-1]
    size, mid = 100.0, 100.0
    rec_short = size * mid * (0.00011 * 24)
    paid_long = size * mid * (0.0001 * 3)
    costs = 2 * ((size * 100.01 - size * mid) + (size * mid - size * 99.99) + 0.0001 * size * (100.01 + 99.99))
    assert p["net_profit_quote"] == pytest.approx(rec_short - paid_long - costs)
    assert p["edge_bps"] == pytest.approx((rec_short - paid_long - costs) / (size * mid) * 1e4)
    assert p["net_profit_quote"] == pytest.approx(d["open"]["net_carry_quote"])


def test_funding_history_is_bounded() -> None:
    e = engine_with()
    x = inst(BUY)
    for k in range(FUNDING_HISTORY + 50):
        t = NOW + k * 60 * S
        e.scanner.on_funding(x, funding(x, 0.0001, 8.0, next_in_h=1.0, recv_ns=t), t, e.status)
    [leg] = e.scanner.legs["BTC"].values()
    assert len(leg.funding_hist) == FUNDING_HISTORY
    assert leg.funding_hist[0][0] == NOW + 50 * 60 * S  # the oldest went first


def test_a_leg_with_funding_before_prices_survives_the_sweep() -> None:
    # Funding often arrives before a contract's first price: the sweep must not take that
    # for silence and evict the leg (the funding board then lost a venue's cell until the
    # venue's next funding message).
    e = engine_with()
    x = inst(BUY)
    e.scanner.on_funding(x, funding(x, 0.0001, 8.0, next_in_h=1.0), NOW, e.status)
    e.scanner.sweep(NOW + 5 * S, e.status)
    assert e.scanner.legs["BTC"][(BUY, x.venue_symbol)].funding is not None
    e.scanner.sweep(NOW + 2 * 3600 * S, e.status)  # silent for longer than evict_after_ms: evicted
    assert "BTC" not in e.scanner.legs
