"""What a trader acts on, on every opportunity: net profit in quote currency, the worst level
each leg reaches, funding countdowns and the break-even time; kind-specific fields only in the
API and WebSocket, every old key kept in ``replay --opportunities-out``. Values are worked
out here from the hand-built books of test_scanner."""

from __future__ import annotations

import io
import json

import pytest
from fastapi.testclient import TestClient

from perparb.api import state
from perparb.api.app import ApiContext, create_app
from perparb.config import ApiSettings
from perparb.model import Opportunity
from perparb.replay import OpportunityWriter
from perparb.scanner.core import Scanner, ScanSettings
from perparb.scanner.funding import next_settlement_in_s
from test_api import make_engine
from test_scanner import NOW, STATUS, book, carry_scanner, funding, inst, scanner_with_books

# basis_bps (sell mid against buy mid) is on both kinds.
FUNDING_ONLY = {"apr", "predicted_apr", "net_carry_quote", "funding_quote", "horizon_h", "long_rate",
                "short_rate", "long_predicted_rate", "short_predicted_rate", "long_interval_h", "short_interval_h",
                "long_next_funding_ns", "short_next_funding_ns", "long_next_funding_in_s",
                "short_next_funding_in_s", "break_even_h", "long_venue", "short_venue"}
# The keys --opportunities-out wrote before these fields existed: they all stay.
OLD_SPREAD_KEYS = {"event", "id", "kind", "asset", "ts_ns", "first_seen_ns", "buy_venue", "sell_venue", "buy_symbol",
                   "sell_symbol", "buy_px", "sell_px", "size_base", "notional_quote", "top_size_base", "gross_bps",
                   "edge_bps"}
OLD_FUNDING_KEYS = {"event", "id", "kind", "asset", "ts_ns", "first_seen_ns", "long_venue", "short_venue",
                    "long_symbol", "short_symbol", "apr", "predicted_apr", "net_carry_quote", "funding_quote",
                    "horizon_h", "size_base", "notional_quote", "basis_bps", "long_rate", "short_rate",
                    "long_interval_h", "short_interval_h", "long_next_funding_ns", "short_next_funding_ns"}


def _spread() -> Opportunity:
    _, events = scanner_with_books(min_edge_bps=10.0)
    [(_, o)] = events
    return o


def _carry() -> Opportunity:
    sc, x, y = carry_scanner()
    sc.on_funding(x, funding(x, 0.0001, 8.0, next_in_h=1.0, predicted=0.00012), NOW, STATUS)  # long leg
    sc.on_funding(y, funding(y, 0.0001, 1.0, next_in_h=0.5), NOW, STATUS)  # short leg
    [o] = [o for o in sc.lifecycle.active.values() if o.kind == "funding"]
    return o


def test_spread_profit_in_quote_and_worst_levels() -> None:
    o = _spread()
    # test_scanner's worked example: 1.0 at 100 and 0.5 at 100.5 bought, 1.5 sold at 101.
    size, cost, proceeds = 1.5, 100.0 * 1.0 + 100.5 * 0.5, 101.0 * 1.5
    exit_per_unit = 0.5 * (0.1 + 0.1) + 0.0005 * 99.9 + 0.0005 * 101.1
    net = proceeds * 0.9995 - cost * 1.0005 - exit_per_unit * size
    assert o.net_profit_quote == pytest.approx(net)  # 0.798375
    net_edge_per_unit_quote = (cost / size) * o.edge_bps / 1e4  # the net edge, in quote per base unit
    assert o.net_profit_quote == pytest.approx(size * net_edge_per_unit_quote)
    assert o.buy_px == pytest.approx(cost / size) and o.sell_px == pytest.approx(101.0)  # the VWAPs
    assert o.buy_worst_px == 100.5  # the walk reached the second ask level
    assert o.sell_worst_px == 101.0  # and only the first bid level


def test_worst_level_at_a_capped_size() -> None:
    _, events = scanner_with_books(min_edge_bps=10.0, max_notional=50.0)
    [(_, o)] = events
    assert o.size_base == pytest.approx(0.5)
    assert (o.buy_worst_px, o.sell_worst_px) == (100.0, 101.0)  # both legs inside their top level
    assert o.net_profit_quote == pytest.approx(0.5 * 100.0 * o.edge_bps / 1e4)


def test_carry_countdowns_rates_and_break_even() -> None:
    o = _carry()
    # test_scanner's carry example, with a predicted 0.012 % on the long leg after its first
    # settlement: 10,000 notional; short receives 24 x 0.01 % = 24; long pays at 1, 9 and 17 h
    # 0.01 % + 2 x 0.012 % = 3.4; costs 2 x (2 crossing + 2 fees) = 8.
    funding_quote, costs, horizon = 24.0 - 3.4, 8.0, 24.0
    assert o.funding_quote == pytest.approx(funding_quote)
    assert o.net_carry_quote == pytest.approx(funding_quote - costs)
    row = state.opportunity(o)
    assert row["net_profit_quote"] == pytest.approx(funding_quote - costs)  # 12.6
    assert row["break_even_h"] == pytest.approx(costs / (funding_quote / horizon))  # 9.32 h
    assert row["long_next_funding_in_s"] == pytest.approx(3600.0)
    assert row["short_next_funding_in_s"] == pytest.approx(1800.0)
    assert (row["long_rate"], row["short_rate"]) == (0.0001, 0.0001)
    assert (row["long_predicted_rate"], row["short_predicted_rate"]) == (0.00012, None)
    assert (row["long_interval_h"], row["short_interval_h"]) == (8.0, 1.0)
    assert (row["long_venue"], row["short_venue"]) == ("aaa", "bbb")
    assert (row["buy_worst_px"], row["sell_worst_px"]) == (100.01, 99.99)  # 100 units inside 1,000 deep levels


@pytest.mark.parametrize(("next_in_h", "interval_h", "expected_s"), [
    (2.0, 8.0, 7200.0),     # ahead: the time left
    (-0.25, 1.0, 2700.0),   # a published time already passed: the next one, an interval later
    (-9.0, 8.0, 7 * 3600.0),  # passed by more than an interval: 16 h - 9 h
])
def test_countdown_on_the_engine_clock(next_in_h: float, interval_h: float, expected_s: float) -> None:
    assert next_settlement_in_s(NOW + int(next_in_h * 3600e9), interval_h, NOW) == pytest.approx(expected_s)
    assert next_settlement_in_s(0, interval_h, NOW) is None  # the venue gave no time


def test_api_rows_carry_only_their_kind() -> None:
    spread, carry = state.opportunity(_spread()), state.opportunity(_carry())
    assert not FUNDING_ONLY & set(spread)
    assert {"net_profit_quote", "buy_px", "sell_px", "buy_worst_px", "sell_worst_px", "top_size_base"} <= set(spread)
    assert "top_size_base" not in carry
    assert set(carry) >= FUNDING_ONLY
    # scan --json keeps every field of both kinds, as it always has.
    assert FUNDING_ONLY - {"long_venue", "short_venue", "long_next_funding_in_s", "short_next_funding_in_s",
                           "break_even_h"} <= set(state.opportunity(_spread(), kind_specific=False))


def test_rest_and_websocket_spread_rows() -> None:
    engine = make_engine()  # Binance asks 65,000 x 10, Bybit bids 65,200 x 10
    with TestClient(create_app(ApiContext(engine, ApiSettings()))) as c:
        [o] = c.get("/api/opportunities").json()
        assert o["size_base"] == 10.0 and o["buy_px"] == 65000.0 and o["sell_px"] == 65200.0
        assert (o["buy_worst_px"], o["sell_worst_px"]) == (65000.0, 65200.0)
        assert o["net_profit_quote"] == pytest.approx(10.0 * 65000.0 * o["edge_bps"] / 1e4)
        assert not FUNDING_ONLY & set(o)
        assert c.get("/api/opportunities", params={"sort": "apr"}).status_code == 200  # no apr on spreads
        with c.websocket_connect("/ws") as ws:
            [row] = ws.receive_json()["opportunities"]
            assert row["net_profit_quote"] == pytest.approx(o["net_profit_quote"]) and "apr" not in row


def test_opportunities_out_keeps_every_key_and_adds_the_new_ones() -> None:
    out = io.BytesIO()
    w = OpportunityWriter(out)
    w("open", _spread())
    w("open", _carry())
    spread, carry = (json.loads(line) for line in out.getvalue().splitlines())
    assert set(spread) >= OLD_SPREAD_KEYS
    assert spread["net_profit_quote"] == pytest.approx(0.798375)
    assert (spread["buy_worst_px"], spread["sell_worst_px"]) == (100.5, 101.0)
    assert set(carry) >= OLD_FUNDING_KEYS
    assert carry["long_next_funding_in_s"] == pytest.approx(3600.0)
    assert carry["short_next_funding_in_s"] == pytest.approx(1800.0)
    assert carry["break_even_h"] == pytest.approx(8.0 / (20.6 / 24.0))
    assert carry["long_predicted_rate"] == 0.00012 and carry["short_predicted_rate"] is None
    assert carry["net_profit_quote"] == pytest.approx(20.6 - 8.0)


def test_book_depth_sets_the_worst_level() -> None:
    """Deeper walk: 3 units bought over three ask levels, sold over two bid levels."""
    sc = Scanner(ScanSettings(min_edge_bps=0.0))
    a, b = inst("aaa", taker_fee=0.0), inst("bbb", taker_fee=0.0)
    sc.on_book(a, book(a, [(99.0, 5.0)], [(100.0, 1.0), (100.1, 1.0), (100.2, 1.0)]), NOW, STATUS)
    sc.on_book(b, book(b, [(103.0, 2.0), (102.9, 5.0)], [(104.0, 5.0)]), NOW, STATUS)
    [o] = [o for o in sc.lifecycle.active.values() if o.kind == "spread"]
    # Exit per unit is half of both spreads (no fees): 0.5 * (1.0 + 1.0) = 1.0; the third unit
    # still clears: 102.9 - 100.2 - 1.0 > 0.
    assert o.size_base == pytest.approx(3.0)
    assert (o.buy_worst_px, o.sell_worst_px) == (100.2, 102.9)
    cost, proceeds = 100.0 + 100.1 + 100.2, 103.0 * 2 + 102.9
    assert o.net_profit_quote == pytest.approx(proceeds - cost - 1.0 * 3.0)
