"""Simulated execution on hand-built books: fills, VWAP, fees and rounding worked out here."""

from __future__ import annotations

import pytest

from paper_helpers import MS, T0, Market, S, Tape, inst
from perparb.bus import EXECUTIONS, ORDERS, InProcessBus
from perparb.bus.messages import CancelOrder, Fill, Order, OrderUpdate
from perparb.execution import OpenOrder
from perparb.execution.sim import SimExecution, SimSettings

LINEAR = inst(lot_size=0.001, min_qty=0.001, tick_size=0.1)


def order(n: int, side: str, qty: float, at: int, i=LINEAR, order_type: str = "market",  # type: ignore[no-untyped-def]
          limit_px: float | None = None) -> Order:
    return Order(id=f"o{n}", intent_id=f"i{n}", strategy="test", ts_ns=at, venue=i.venue, symbol=i.symbol,
                 venue_symbol=i.venue_symbol, side=side, qty=qty, order_type=order_type, limit_px=limit_px)


def setup(*instruments, settings: SimSettings | None = None):  # type: ignore[no-untyped-def]
    m = Market(*instruments)
    bus = InProcessBus()
    tape = Tape(bus, EXECUTIONS)
    sim = SimExecution(bus, m.view, {i.venue for i in instruments}, settings)
    return m, bus, tape, sim


def test_market_order_walks_levels_at_the_book_as_it_is_after_the_latency() -> None:
    m, bus, tape, _sim = setup(LINEAR)
    m.snapshot(LINEAR, [(99.9, 1.0)], [(100.0, 0.5), (100.5, 1.0), (101.0, 2.0)], at=T0 + 1 * MS)
    bus.publish(ORDERS, order(1, "buy", 1.2, at=T0 + 10 * MS))
    # 30 ms later (before arrival) the best ask shrinks to 0.3; at 60 ms (after) it would grow.
    m.delta(LINEAR, [], [(100.0, 0.3)], at=T0 + 40 * MS)
    assert tape.msgs == []  # still in flight
    m.delta(LINEAR, [], [(100.0, 5.0)], at=T0 + 60 * MS)  # arrival (10 + 50 ms) runs before this applies
    fills = tape.of(Fill)
    assert [(f.qty, f.px) for f in fills] == [(0.3, 100.0), pytest.approx((0.9, 100.5))]
    assert all(f.ts_ns == T0 + 60 * MS and f.liquidity == "taker" and f.fee_asset == "USDT" for f in fills)
    assert fills[0].fee == pytest.approx(0.3 * 100.0 * 0.0005)
    assert fills[1].fee == pytest.approx(0.9 * 100.5 * 0.0005)
    assert [f.id for f in fills] == ["o1-1", "o1-2"]
    (done,) = tape.of(OrderUpdate)
    assert done.status == "filled" and done.filled_qty == pytest.approx(1.2)
    assert done.avg_px == pytest.approx((0.3 * 100.0 + 0.9 * 100.5) / 1.2)


def test_liquidity_taken_stays_taken_until_the_venue_reports_the_level_again() -> None:
    m, bus, tape, _sim = setup(LINEAR)
    m.snapshot(LINEAR, [(99.0, 1.0)], [(100.0, 1.0), (101.0, 1.0)], at=T0)
    bus.publish(ORDERS, order(1, "buy", 0.6, at=T0))
    bus.publish(ORDERS, order(2, "buy", 0.6, at=T0))
    m.advance(T0 + 50 * MS)
    f = tape.of(Fill)
    # o1 takes 0.6 of the 1.0 at 100; o2 finds 0.4 left there and 0.2 at 101.
    assert [(x.order_id, x.qty, x.px) for x in f] == [("o1", 0.6, 100.0), ("o2", pytest.approx(0.4), 100.0),
                                                      ("o2", pytest.approx(0.2), 101.0)]
    # The venue reports 100 again (size 2.0): what is shown there is available again.
    m.delta(LINEAR, [], [(100.0, 2.0)], at=T0 + 100 * MS)
    bus.publish(ORDERS, order(3, "buy", 0.5, at=T0 + 100 * MS))
    m.advance(T0 + 150 * MS)
    assert [(x.qty, x.px) for x in tape.of(Fill) if x.order_id == "o3"] == [(0.5, 100.0)]
    # 101 kept its size (1.0), so only the 0.8 we did not take there is left:
    bus.publish(ORDERS, order(4, "buy", 3.0, at=T0 + 150 * MS))
    m.advance(T0 + 200 * MS)
    o4 = [(x.qty, x.px) for x in tape.of(Fill) if x.order_id == "o4"]
    assert o4 == [(pytest.approx(1.5), 100.0), (pytest.approx(0.8), 101.0)]
    last = tape.of(OrderUpdate)[-1]
    assert last.status == "expired" and last.reason.startswith("ioc_remainder")
    assert last.filled_qty == pytest.approx(2.3)


def test_limit_ioc_stops_at_its_price_and_the_rest_expires() -> None:
    m, bus, tape, _sim = setup(LINEAR)
    m.snapshot(LINEAR, [(100.0, 0.4), (99.5, 0.4), (99.0, 5.0)], [(100.5, 1.0)], at=T0)
    bus.publish(ORDERS, order(1, "sell", 1.0, at=T0, order_type="ioc", limit_px=99.5))
    m.advance(T0 + 50 * MS)
    assert [(f.qty, f.px, f.side) for f in tape.of(Fill)] == [(0.4, 100.0, "sell"), (0.4, 99.5, "sell")]
    up = tape.of(OrderUpdate)[-1]
    assert up.status == "expired" and up.filled_qty == pytest.approx(0.8)
    assert up.avg_px == pytest.approx((0.4 * 100.0 + 0.4 * 99.5) / 0.8)


def test_native_lot_rounding_min_qty_and_min_notional_on_a_contract_sized_venue() -> None:
    # OKX-style: one contract is 0.01 BTC, whole contracts only, at least 1, and 5 USDT of notional.
    okx = inst(contract_size=0.01, lot_size=1.0, min_qty=1.0, min_notional=5.0, tick_size=0.1)
    m, bus, tape, sim = setup(okx)
    m.snapshot(okx, [(49_999.9, 10.0)], [(50_000.0, 10.0)], at=T0)
    bus.publish(ORDERS, order(1, "buy", 0.0537, at=T0, i=okx))  # 5.37 contracts -> 5 -> 0.05 BTC
    bus.publish(ORDERS, order(2, "buy", 0.0099, at=T0, i=okx))  # 0.99 contracts -> 0 -> refused
    m.advance(T0 + 50 * MS)
    (f,) = tape.of(Fill)
    assert f.qty == pytest.approx(0.05) and f.px == 50_000.0 and f.fee == pytest.approx(0.05 * 50_000.0 * 0.0005)
    rej = [u for u in tape.of(OrderUpdate) if u.status == "rejected"]
    assert len(rej) == 1 and rej[0].order_id == "o2" and rej[0].reason.startswith("lot_size:")
    assert sim.rejections["lot_size"] == 1
    # min_qty: 3 contracts minimum; min_notional: 200 USDT minimum.
    strict = inst(venue="bybit", venue_symbol="BTCUSDT", lot_size=0.001, min_qty=0.003, min_notional=200.0)
    m2, bus2, tape2, _sim2 = setup(strict)
    m2.snapshot(strict, [(49_999.0, 1.0)], [(50_000.0, 1.0)], at=T0)
    bus2.publish(ORDERS, order(1, "buy", 0.002, at=T0, i=strict))  # below min qty
    bus2.publish(ORDERS, order(2, "buy", 0.0039, at=T0, i=strict))  # 0.003 * 50000 = 150 < 200
    bus2.publish(ORDERS, order(3, "buy", 0.004, at=T0, i=strict))  # 200 notional: accepted
    m2.advance(T0 + 50 * MS)
    reasons = {u.order_id: u.reason.split(":")[0] for u in tape2.of(OrderUpdate) if u.status == "rejected"}
    assert reasons == {"o1": "min_qty", "o2": "min_notional"}
    assert [f.qty for f in tape2.of(Fill)] == [0.004]


def test_inverse_contract_trades_whole_usd_contracts_and_pays_fees_in_the_coin() -> None:
    inv = inst(venue="okx", venue_symbol="BTC-USD-SWAP", quote="USD", settle="BTC", inverse=True,
               contract_size=100.0, lot_size=1.0, tick_size=0.1, taker_fee=0.0005)
    m, bus, tape, _sim = setup(inv)
    m.snapshot(inv, [(49_900.0, 1.0)], [(50_000.0, 0.3), (50_100.0, 1.0)], at=T0)
    bus.publish(ORDERS, order(1, "buy", 0.5, at=T0, i=inv))
    m.advance(T0 + 50 * MS)
    # 0.5 BTC at the best ask is 250 contracts of 100 USD. 0.3 BTC at 50000 is 150 contracts;
    # the other 100 contracts at 50100 are 100 * 100 / 50100 BTC.
    f1, f2 = tape.of(Fill)
    assert (f1.qty, f1.px) == (pytest.approx(0.3), 50_000.0)
    assert (f2.qty, f2.px) == (pytest.approx(10_000 / 50_100), 50_100.0)
    assert f1.fee_asset == "BTC" and f1.fee == pytest.approx(0.3 * 0.0005)
    assert f2.fee == pytest.approx(10_000 / 50_100 * 0.0005)


def test_bad_books_are_refused_and_counted_by_reason() -> None:
    m, bus, tape, sim = setup(LINEAR)
    bus.publish(ORDERS, order(1, "buy", 0.1, at=T0))  # no book at all
    m.advance(T0 + 50 * MS)
    m.snapshot(LINEAR, [(99.0, 1.0)], [(100.0, 1.0)], at=T0 + 60 * MS)
    bus.publish(ORDERS, order(2, "buy", 0.1, at=T0 + 10 * S))  # book 10 s old at arrival: stale (5 s limit)
    m.advance(T0 + 11 * S)
    m.snapshot(LINEAR, [(99.0, 1.0)], [(100.0, 1.0)], at=T0 + 11 * S)
    m.engine.set_connected("okx", False, T0 + 11 * S)  # also marks the book resyncing
    bus.publish(ORDERS, order(3, "buy", 0.1, at=T0 + 11 * S))
    m.advance(T0 + 12 * S)
    m.engine.set_connected("okx", True, T0 + 12 * S)
    m.snapshot(LINEAR, [(99.0, 1.0)], [(100.0, 1.0)], at=T0 + 12 * S)
    m.engine.books[("okx", LINEAR.venue_symbol)].book.apply([(101.0, 1.0)], [])  # crossed behind the sync's back
    bus.publish(ORDERS, order(4, "buy", 0.1, at=T0 + 12 * S))
    m.advance(T0 + 13 * S)
    m.snapshot(LINEAR, [(99.0, 1.0)], [(100.0, 1.0)], at=T0 + 13 * S)
    bus.publish(ORDERS, order(5, "buy", 0.1, at=T0 + 13 * S, order_type="ioc", limit_px=100.05))  # off tick
    bus.publish(ORDERS, order(6, "buy", 0.1, at=T0 + 13 * S, order_type="ioc"))  # no limit price
    m.advance(T0 + 14 * S)
    got = {u.order_id: u.reason.split(":")[0] for u in tape.of(OrderUpdate)}
    assert got == {"o1": "unsynced_book", "o2": "stale_book", "o3": "unsynced_book", "o4": "crossed_book",
                   "o5": "tick_size", "o6": "bad_order"}
    assert sim.rejections == {"unsynced_book": 2, "stale_book": 1, "crossed_book": 1, "tick_size": 1, "bad_order": 1}
    assert tape.of(Fill) == []


def test_post_only_rejects_crossing_rests_and_fills_only_when_the_book_trades_through() -> None:
    m, bus, tape, sim = setup(LINEAR, settings=SimSettings(post_only_tif_ms=10_000, resting_check_ms=100))
    m.snapshot(LINEAR, [(99.0, 1.0)], [(100.0, 1.0)], at=T0)
    bus.publish(ORDERS, order(1, "buy", 0.5, at=T0, order_type="post_only", limit_px=100.0))  # would take
    bus.publish(ORDERS, order(2, "buy", 0.5, at=T0, order_type="post_only", limit_px=99.5))
    m.advance(T0 + 50 * MS)
    ups = tape.of(OrderUpdate)
    assert [(u.order_id, u.status) for u in ups] == [("o1", "rejected"), ("o2", "accepted")]
    assert ups[0].reason.startswith("would_cross")
    # Asks come down to 99.5 (touching, not through): no fill.
    m.delta(LINEAR, [], [(99.5, 2.0)], at=T0 + 200 * MS)
    m.advance(T0 + 500 * MS)
    assert tape.of(Fill) == []
    # 0.2 offered at 99.4, through our 99.5: we fill 0.2 at our price, as maker.
    m.delta(LINEAR, [], [(99.4, 0.2)], at=T0 + 600 * MS)
    m.advance(T0 + 800 * MS)
    (f,) = tape.of(Fill)
    assert (f.qty, f.px, f.liquidity) == (pytest.approx(0.2), 99.5, "maker")
    assert f.fee == pytest.approx(0.2 * 99.5 * 0.0002)
    assert tape.of(OrderUpdate)[-1].status == "partially_filled"
    # The rest expires 10 s after arrival.
    m.advance(T0 + 11 * S)
    last = tape.of(OrderUpdate)[-1]
    assert last.status == "expired" and last.filled_qty == pytest.approx(0.2) and last.reason.startswith("post_only_tif")
    assert sim.live == {}


def test_cancel_a_resting_order_and_an_unknown_one() -> None:
    m, bus, tape, sim = setup(LINEAR)
    m.snapshot(LINEAR, [(99.0, 1.0)], [(100.0, 1.0)], at=T0)
    bus.publish(ORDERS, order(1, "sell", 0.5, at=T0, order_type="post_only", limit_px=101.0))
    m.advance(T0 + 60 * MS)
    bus.publish(ORDERS, CancelOrder(order_id="o1", venue="okx", ts_ns=T0 + 60 * MS))
    bus.publish(ORDERS, CancelOrder(order_id="nope", venue="okx", ts_ns=T0 + 60 * MS))
    m.advance(T0 + 200 * MS)
    assert [u.status for u in tape.of(OrderUpdate)] == ["accepted", "canceled"]
    assert sim.counts["cancel_unknown"] == 1 and sim.live == {}


def test_fee_overrides_per_venue_and_per_contract() -> None:
    settings = SimSettings(taker_fee={"okx": 0.001, f"okx:{LINEAR.venue_symbol}": 0.0007})
    m, bus, tape, _sim = setup(LINEAR, settings=settings)
    m.snapshot(LINEAR, [(99.0, 1.0)], [(100.0, 1.0)], at=T0)
    bus.publish(ORDERS, order(1, "buy", 0.5, at=T0))
    m.advance(T0 + 50 * MS)
    assert tape.of(Fill)[0].fee == pytest.approx(0.5 * 100.0 * 0.0007)


def test_venue_latency_setting_and_other_venues_orders_are_ignored() -> None:
    m, bus, tape, sim = setup(LINEAR, settings=SimSettings(venue_latency_ms={"okx": 200}))
    m.snapshot(LINEAR, [(99.0, 1.0)], [(100.0, 1.0)], at=T0)
    other = inst(venue="bybit", venue_symbol="BTCUSDT")
    bus.publish(ORDERS, order(9, "buy", 0.5, at=T0, i=other))
    bus.publish(ORDERS, order(1, "buy", 0.5, at=T0))
    m.advance(T0 + 199 * MS)
    assert tape.msgs == []
    m.advance(T0 + 200 * MS)
    assert [f.order_id for f in tape.of(Fill)] == ["o1"] and sim.counts["orders"] == 1


def test_restored_orders_carry_on() -> None:
    m, _bus, tape, sim = setup(LINEAR)
    m.snapshot(LINEAR, [(98.0, 1.0)], [(100.0, 1.0)], at=T0)
    resting = order(1, "buy", 1.0, at=T0 - S, order_type="post_only", limit_px=99.5)
    sim.restore([OpenOrder(order=resting, status="partially_filled", filled_qty=0.4, avg_px=99.5, fills=1),
                 OpenOrder(order=order(2, "buy", 0.1, at=T0 - S), status="sent")])
    m.delta(LINEAR, [], [(99.0, 5.0)], at=T0 + 10 * MS)  # asks through 99.5
    m.advance(T0 + 200 * MS)
    fills = {f.order_id: f for f in tape.of(Fill)}
    assert fills["o1"].id == "o1-2" and fills["o1"].qty == pytest.approx(0.6) and fills["o1"].px == 99.5
    assert fills["o2"].qty == pytest.approx(0.1)
    done = {u.order_id: u for u in tape.of(OrderUpdate)}
    assert done["o1"].status == "filled" and done["o1"].filled_qty == pytest.approx(1.0)
