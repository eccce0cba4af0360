"""Strategies: entries and exits from hand-built opportunities and books, equal rounded legs."""

from __future__ import annotations

import pytest
from tests.trading_helpers import FakeView, inst

from perparb.bus import EXECUTIONS, OPPORTUNITIES, RISK, TRADE_ORDERS, InProcessBus
from perparb.bus.messages import Fill, KillSwitch, OpportunityEvent, OrderUpdate, RiskReject, TradeIntent
from perparb.model import Instrument, Opportunity
from perparb.paper.strategies import StrategyRunner
from perparb.paper.strategies.base import pair_qty
from perparb.trading_settings import StrategySettings

S = 1_000_000_000
BN = inst("binance", lot_size=0.001, min_qty=0.001, min_notional=5.0)
# OKX: one contract is 0.01 BTC, whole contracts only
OK = inst("okx", venue_symbol="BTC-USDT-SWAP", contract_size=0.01, lot_size=1.0, min_qty=1.0)


def _resolve(venue: str, symbol: str) -> Instrument | None:
    return {("binance", BN.symbol): BN, ("okx", OK.symbol): OK}.get((venue, symbol))


def _world(*cfgs: StrategySettings) -> tuple[InProcessBus, FakeView, StrategyRunner, list[TradeIntent]]:
    bus, view = InProcessBus(), FakeView()
    view.now_ns = 1_000 * S
    view.add(BN)
    view.add(OK)
    _books(view, 60_000.0, 60_060.0)
    intents: list[TradeIntent] = []
    bus.subscribe(TRADE_ORDERS, lambda m: intents.append(m))  # type: ignore[arg-type]
    runner = StrategyRunner(bus, view, cfgs, _resolve)
    return bus, view, runner, intents


def _books(view: FakeView, bn_mid: float, ok_mid: float) -> None:
    view.set_book(BN, [(bn_mid - 5, 3.0)], [(bn_mid + 5, 3.0)])
    view.set_book(OK, [(ok_mid - 5, 3.0)], [(ok_mid + 5, 3.0)])


def _spread_opp(edge: float = 6.0, size: float = 0.537, event: str = "open") -> OpportunityEvent:
    o = Opportunity(id="spread:BTC:binance:okx", kind="spread", asset="BTC", buy_venue="binance", sell_venue="okx",
                    buy_symbol=BN.symbol, sell_symbol=OK.symbol, buy_px=60_005.0, sell_px=60_055.0, size_base=size,
                    notional_quote=size * 60_005.0, edge_bps=edge, ts_ns=1_000 * S)
    return OpportunityEvent(event=event, opp=o)


def _fill_all(bus: InProcessBus, view: FakeView, intent: TradeIntent, px: dict[str, float] | None = None) -> None:
    for i, leg in enumerate(intent.legs):
        oid = f"{intent.id}.{i}"
        p = (px or {}).get(leg.venue, 60_000.0)
        bus.publish(EXECUTIONS, Fill(id=f"{oid}-1", ts_ns=view.now_ns, venue=leg.venue, symbol=leg.symbol,
                                     venue_symbol=leg.venue_symbol, side=leg.side, qty=leg.qty, px=p, fee=0.0,
                                     fee_asset="USDT", liquidity="taker", order_id=oid, intent_id=intent.id))
        bus.publish(EXECUTIONS, OrderUpdate(order_id=oid, intent_id=intent.id, ts_ns=view.now_ns, venue=leg.venue,
                                            symbol=leg.symbol, status="filled", filled_qty=leg.qty, avg_px=p))


SPREAD = StrategySettings(name="sc", kind="spread", entry_edge_bps=5, exit_edge_bps=1, stop_bps=20, max_hold_s=60,
                          notional=2_000)


def test_pair_qty_is_one_quantity_valid_on_both_venues() -> None:
    # binance lot 0.001 BTC, okx lot one 0.01-BTC contract: common step 0.01
    assert pair_qty(BN, OK, 0.0333, 60_000, 60_000) == 0.03
    assert pair_qty(BN, OK, 0.0099, 60_000, 60_000) == 0.0  # below one okx contract
    # 1000PEPE on one venue (price scale 1000, lot 1 = 1000 PEPE) and PEPE lot 100 on another: step 1000
    k = inst("binance", asset="PEPE", venue_symbol="1000PEPEUSDT", price_scale=1000.0, lot_size=1.0)
    p = inst("okx", asset="PEPE", venue_symbol="PEPE-USDT-SWAP", lot_size=100.0)
    assert pair_qty(k, p, 123_456.0, 1.2e-5, 1.2e-5) == 123_000.0
    # a minimum notional of 5 USDT refuses 0.0001 BTC (6 USDT is fine)
    assert pair_qty(BN, inst("bybit", lot_size=0.0001), 0.0001, 60_000, 60_000) == 0.0
    assert pair_qty(BN, inst("bybit", lot_size=0.0001), 0.00012, 40_000, 40_000) == 0.0
    # inverse: 100-USD contracts at 50,000 are 0.002 BTC each; 0.0071 BTC -> 3 contracts = 0.006
    inv = inst("bitmex", venue_symbol="XBTUSD", inverse=True, contract_size=100.0, lot_size=1.0)
    assert pair_qty(BN, inv, 0.0071, 50_000, 50_000) == pytest.approx(0.006)


def test_spread_enters_on_an_opportunity_over_the_threshold_with_equal_legs() -> None:
    bus, _view, _runner, intents = _world(SPREAD)
    bus.publish(OPPORTUNITIES, _spread_opp(edge=4.9))
    assert intents == []  # below entry_edge_bps
    bus.publish(OPPORTUNITIES, _spread_opp(edge=6.0))
    (it,) = intents
    assert it.action == "open" and it.strategy == "sc" and it.opportunity_id == "spread:BTC:binance:okx"
    # size: min(0.537, 2,000 / 60,005 = 0.03333) rounded to the 0.01 common step
    assert [(lg.venue, lg.venue_symbol, lg.side, lg.qty) for lg in it.legs] == [
        ("binance", "BTCUSDT", "buy", 0.03), ("okx", "BTC-USDT-SWAP", "sell", 0.03)]
    bus.publish(OPPORTUNITIES, _spread_opp(edge=8.0, event="update"))
    assert len(intents) == 1  # one position per venue pair


def test_filters_and_max_open() -> None:
    cfg = StrategySettings(name="eth-only", kind="spread", assets=["ETH"], entry_edge_bps=1)
    bus, _, _, intents = _world(cfg)
    bus.publish(OPPORTUNITIES, _spread_opp(edge=9))
    assert intents == []
    cfg = StrategySettings(name="v", kind="spread", venues=["binance", "bybit"], entry_edge_bps=1)
    bus, _view, _runner, intents = _world(cfg)
    bus.publish(OPPORTUNITIES, _spread_opp(edge=9))
    assert intents == []


def test_spread_exits_on_convergence() -> None:
    bus, view, runner, intents = _world(SPREAD)
    bus.publish(OPPORTUNITIES, _spread_opp())
    _fill_all(bus, view, intents[0])
    (sc,) = runner.strategies
    pos = next(iter(sc.positions.values()))
    assert pos.state == "open" and pos.long.qty == 0.03 and pos.short.qty == -0.03
    assert pos.entry_ref_bps == pytest.approx(60 / 60_000 * 1e4)  # 10 bps mid gap at entry
    view.now_ns += S
    _books(view, 60_000.0, 60_009.0)  # 1.5 bps: not yet
    runner.on_tick(view.now_ns)
    assert len(intents) == 1
    _books(view, 60_000.0, 60_006.0)  # 1.0 bps: converged
    runner.on_tick(view.now_ns)
    close = intents[-1]
    assert close.action == "close" and close.reason == "converged"
    assert [(lg.venue, lg.side, lg.qty, lg.reduce_only) for lg in close.legs] == [
        ("binance", "sell", 0.03, True), ("okx", "buy", 0.03, True)]
    _fill_all(bus, view, close)
    assert sc.positions == {} and sc.closed[-1].exit_reason == "converged"
    assert sc.counts["exit_converged"] == 1


def test_spread_stop_and_time_limit() -> None:
    bus, view, runner, intents = _world(SPREAD)
    bus.publish(OPPORTUNITIES, _spread_opp())
    _fill_all(bus, view, intents[0])
    _books(view, 60_000.0, 60_179.0)  # 29.8 bps: 19.8 beyond entry
    runner.on_tick(view.now_ns)
    assert len(intents) == 1
    _books(view, 60_000.0, 60_181.0)  # 30.2 bps: 20.2 beyond entry
    runner.on_tick(view.now_ns)
    assert intents[-1].reason == "stop"

    bus, view, runner, intents = _world(SPREAD)
    bus.publish(OPPORTUNITIES, _spread_opp())
    _fill_all(bus, view, intents[0])
    view.now_ns += 59 * S
    _books(view, 60_000.0, 60_060.0)
    runner.on_tick(view.now_ns)
    assert len(intents) == 1
    view.now_ns += S
    runner.on_tick(view.now_ns)
    assert intents[-1].reason == "time_limit"


def test_refused_entry_frees_the_pair_and_kill_switch_pauses() -> None:
    bus, view, runner, intents = _world(SPREAD)
    bus.publish(OPPORTUNITIES, _spread_opp())
    bus.publish(RISK, RiskReject(intent_id=intents[0].id, ts_ns=view.now_ns, strategy="sc", reason="max_leverage"))
    (sc,) = runner.strategies
    assert sc.positions == {} and sc.closed[-1].exit_reason == "refused"
    view.now_ns += 10 * S  # past the cooldown
    bus.publish(RISK, KillSwitch(ts_ns=view.now_ns, engaged=True, reason="manual"))
    bus.publish(OPPORTUNITIES, _spread_opp())
    assert len(intents) == 1 and sc.counts["skip_paused"] == 1
    bus.publish(RISK, KillSwitch(ts_ns=view.now_ns, engaged=False, reason="manual"))
    bus.publish(OPPORTUNITIES, _spread_opp())
    assert len(intents) == 2


HOUR = 3600 * S
CARRY = StrategySettings(name="carry", kind="funding", entry_edge_bps=2, exit_edge_bps=0.5, stop_bps=40,
                         max_hold_s=86_400, notional=3_000)


def _carry_opp(edge: float = 8.0) -> OpportunityEvent:
    # long binance (low funding), short okx (high)
    o = Opportunity(id="funding:BTC:binance:okx", kind="funding", asset="BTC", buy_venue="binance", sell_venue="okx",
                    buy_symbol=BN.symbol, sell_symbol=OK.symbol, buy_px=60_005.0, sell_px=60_055.0, size_base=0.2,
                    notional_quote=12_000.0, edge_bps=edge, apr=0.3, net_carry_quote=edge * 1.2, horizon_h=24.0,
                    ts_ns=1_000 * S)
    return OpportunityEvent(event="open", opp=o)


def test_funding_carry_enters_holds_and_exits_when_the_carry_is_gone() -> None:
    bus, view, runner, intents = _world(CARRY)
    view.set_funding(BN, 0.0001, 8.0, next_ns=view.now_ns + HOUR)
    view.set_funding(OK, 0.0004, 8.0, next_ns=view.now_ns + HOUR)
    bus.publish(OPPORTUNITIES, _carry_opp(edge=1.9))
    assert intents == []
    bus.publish(OPPORTUNITIES, _carry_opp())
    (it,) = intents
    # 3,000 / 60,005 = 0.049996 -> 0.04 (0.01 step)
    assert [(lg.venue, lg.side, lg.qty) for lg in it.legs] == [("binance", "buy", 0.04), ("okx", "sell", 0.04)]
    _fill_all(bus, view, it)
    (st,) = runner.strategies
    pos = next(iter(st.positions.values()))
    # carry still expected over 24 h: 3 settlements each; (60,060 * 3 * 0.0004 - 60,000 * 3 * 0.0001) / 60,000
    expected = (60_060 * 3 * 0.0004 - 60_000 * 3 * 0.0001) / 60_000 * 1e4
    assert st.carry_bps(pos, view.now_ns) == pytest.approx(expected)  # type: ignore[attr-defined]
    view.now_ns += 2 * HOUR  # a settlement passes; held
    runner.on_tick(view.now_ns)
    assert len(intents) == 1
    # the short leg's rate falls to the long's and below: 3 * (60,060 * 0.0001 - 60,000 * 0.0001)/60,000 = 0.03 bps
    view.set_funding(BN, 0.0001, 8.0, next_ns=view.now_ns + 7 * HOUR)
    view.set_funding(OK, 0.0001, 8.0, next_ns=view.now_ns + 7 * HOUR)
    runner.on_tick(view.now_ns)
    assert intents[-1].action == "close" and intents[-1].reason == "carry_gone"


def test_funding_carry_basis_stop() -> None:
    bus, view, runner, intents = _world(CARRY)
    view.set_funding(BN, 0.0001, 8.0, next_ns=view.now_ns + HOUR)
    view.set_funding(OK, 0.0004, 8.0, next_ns=view.now_ns + HOUR)
    bus.publish(OPPORTUNITIES, _carry_opp())
    _fill_all(bus, view, intents[0])
    _books(view, 60_000.0, 60_299.0)  # basis 49.8 bps: 39.8 beyond the 10 at entry
    runner.on_tick(view.now_ns)
    assert len(intents) == 1
    _books(view, 60_000.0, 60_301.0)  # 40.2 beyond
    runner.on_tick(view.now_ns)
    assert intents[-1].reason == "basis_stop"


def test_several_instances_at_once() -> None:
    fast = StrategySettings(name="fast", kind="spread", entry_edge_bps=3)
    slow = StrategySettings(name="slow", kind="spread", entry_edge_bps=7)
    bus, _view, _runner, intents = _world(fast, slow, CARRY)
    bus.publish(OPPORTUNITIES, _spread_opp(edge=5))
    assert [i.strategy for i in intents] == ["fast"]
    bus.publish(OPPORTUNITIES, _spread_opp(edge=8, event="update"))
    assert [i.strategy for i in intents] == ["fast", "slow"]
    assert [i.id for i in intents] == ["fast-1", "slow-1"]


def test_a_close_the_venue_keeps_refusing_is_given_up_after_five_attempts() -> None:
    bus, view, runner, intents = _world(SPREAD)
    bus.publish(OPPORTUNITIES, _spread_opp())
    _fill_all(bus, view, intents[0])
    view.now_ns += 61 * S
    _books(view, 60_000.0, 60_060.0)
    for k in range(7):
        runner.on_tick(view.now_ns + k)
        close = intents[-1]
        if close.action == "close":
            for i, leg in enumerate(close.legs):
                bus.publish(EXECUTIONS, OrderUpdate(order_id=f"{close.id}.{i}", intent_id=close.id, ts_ns=view.now_ns,
                                                    venue=leg.venue, symbol=leg.symbol, status="rejected",
                                                    reason="min_qty"))
    (sc,) = runner.strategies
    assert [i.action for i in intents] == ["open"] + ["close"] * 5
    assert sc.positions == {} and sc.closed[-1].exit_reason == "close_failed"


def test_intent_numbers_carry_on_after_the_journal() -> None:
    from perparb.bus.messages import Order

    bus, _view, runner, intents = _world(SPREAD)
    runner.restore([Order(id="sc-7.1", intent_id="sc-7", strategy="sc", ts_ns=1, venue="okx", symbol=OK.symbol,
                          venue_symbol=OK.venue_symbol, side="sell", qty=0.03),
                    Order(id="sc-9.r1.0", intent_id="sc-9.r1", strategy="sc", ts_ns=2, venue="okx", symbol=OK.symbol,
                          venue_symbol=OK.venue_symbol, side="buy", qty=0.03),
                    Order(id="other-40.0", intent_id="other-40", strategy="other", ts_ns=3, venue="okx",
                          symbol=OK.symbol, venue_symbol=OK.venue_symbol, side="buy", qty=0.03)])
    bus.publish(OPPORTUNITIES, _spread_opp())
    assert [i.id for i in intents] == ["sc-10"]
