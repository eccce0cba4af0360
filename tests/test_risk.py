"""Risk engine: both legs checked before either goes out, limits, leg risk, kill switch, VaR."""

from __future__ import annotations

import math
from statistics import NormalDist

import pytest
from tests.trading_helpers import FakeView, Tape, inst

from perparb.bus import EXECUTIONS, ORDERS, InProcessBus
from perparb.bus.messages import (
    CancelOrder,
    Fill,
    KillSwitch,
    Leg,
    LegRiskEvent,
    Message,
    Order,
    OrderUpdate,
    RiskReject,
    TradeIntent,
)
from perparb.risk import RiskEngine
from perparb.risk.var import PriceHistory, historical_var, parametric_var
from perparb.trading_settings import ExecutionSettings, PaperSettings, RiskSettings

MS = 1_000_000


class Venue:
    """A stand-in execution: fills, rejects or ignores each order as the test says."""

    def __init__(self, bus: InProcessBus, view: FakeView) -> None:
        self.bus, self.view = bus, view
        self.plan: dict[str, str] = {}  # venue -> fill | reject | silent
        self.fill_px: dict[str, float] = {}
        self.budget: dict[str, int] = {}  # orders a venue answers before it goes silent
        bus.subscribe(ORDERS, self.on)

    def on(self, m: Message) -> None:
        if not isinstance(m, Order):
            return
        what = self.plan.get(m.venue, "fill")
        if m.venue in self.budget:
            self.budget[m.venue] -= 1
            if self.budget[m.venue] < 0:
                what = "silent"
        if what == "silent":
            return
        if what == "reject":
            self.bus.publish(EXECUTIONS, OrderUpdate(order_id=m.id, intent_id=m.intent_id, ts_ns=self.view.now_ns,
                                                     venue=m.venue, symbol=m.symbol, status="rejected",
                                                     reason="min_qty"))
            return
        px = self.fill_px.get(m.venue, 60_000.0)
        self.bus.publish(EXECUTIONS, Fill(id=f"{m.id}-1", ts_ns=self.view.now_ns, venue=m.venue, symbol=m.symbol,
                                          venue_symbol=m.venue_symbol, side=m.side, qty=m.qty, px=px, fee=0.0,
                                          fee_asset="USDT", liquidity="taker", order_id=m.id,
                                          intent_id=m.intent_id))
        self.bus.publish(EXECUTIONS, OrderUpdate(order_id=m.id, intent_id=m.intent_id, ts_ns=self.view.now_ns,
                                                 venue=m.venue, symbol=m.symbol, status="filled", filled_qty=m.qty,
                                                 avg_px=px))


def loose(**kw: float) -> RiskSettings:
    """Notional limits out of the way, so one check can be tested at a time."""
    base: dict[str, float] = dict(max_order_notional=1e9, max_asset_notional=1e9, max_venue_notional=1e9,
                                  max_gross_notional=1e9, max_net_notional=1e9)
    base.update(kw)
    return RiskSettings(**base)  # type: ignore[arg-type]


def _world(risk: RiskSettings | None = None, ex: ExecutionSettings | None = None,
           collateral: float = 100_000.0) -> tuple[InProcessBus, FakeView, RiskEngine, Tape, Venue, list[str]]:
    bus, view = InProcessBus(), FakeView()
    view.now_ns = 1_000 * MS
    alerts: list[str] = []
    for v in ("binance", "okx"):
        i = view.add(inst(v, lot_size=0.001))
        view.set_book(i, [(59_990.0, 5.0)], [(60_010.0, 5.0)])  # mid 60,000
    tape = Tape(bus)
    venue = Venue(bus, view)
    engine = RiskEngine(bus, view, risk or RiskSettings(), ex or ExecutionSettings(),
                        PaperSettings(collateral={"USDT": collateral}), venues=["binance", "okx"],
                        alert=lambda title, text, msg: alerts.append(title))
    return bus, view, engine, tape, venue, alerts


def _pair(iid: str = "s-1", qty: float = 0.5, action: str = "open") -> TradeIntent:
    legs = [Leg(venue="binance", symbol="BTC/USDT:USDT", venue_symbol="BTCUSDT", side="buy", qty=qty),
            Leg(venue="okx", symbol="BTC/USDT:USDT", venue_symbol="BTCUSDT", side="sell", qty=qty)]
    if action == "close":
        legs = [Leg(venue="binance", symbol="BTC/USDT:USDT", venue_symbol="BTCUSDT", side="sell", qty=qty,
                    reduce_only=True),
                Leg(venue="okx", symbol="BTC/USDT:USDT", venue_symbol="BTCUSDT", side="buy", qty=qty,
                    reduce_only=True)]
    return TradeIntent(id=iid, ts_ns=0, strategy="s", action=action, asset="BTC", legs=legs)


def test_both_legs_go_out_together_when_every_check_passes() -> None:
    _bus, view, engine, tape, venue, _ = _world()
    venue.plan = {"binance": "silent", "okx": "silent"}
    assert engine.submit(_pair())
    orders = tape.of(Order)
    assert [(o.id, o.venue, o.side, o.qty) for o in orders] == [("s-1.0", "binance", "buy", 0.5),
                                                                ("s-1.1", "okx", "sell", 0.5)]
    assert all(o.ts_ns == view.now_ns for o in orders)


def test_one_stale_leg_refuses_the_whole_intent() -> None:
    _bus, view, engine, tape, _venue, _ = _world()
    view.stale.add(("okx", "BTCUSDT"))
    assert not engine.submit(_pair())
    assert tape.of(Order) == []
    rej = tape.of(RiskReject)
    assert [r.reason for r in rej] == ["stale_quote"] and engine.rejections["stale_quote"] == 1
    # an old book is stale too (max_quote_age_ms 2000), even when the view does not say so
    view.stale.clear()
    view.now_ns += 2_001 * MS
    assert not engine.submit(_pair("s-2"))
    assert engine.rejection_counts()["stale_quote"] == 2


@pytest.mark.parametrize(("risk", "qty", "reason"), [
    # 0.5 BTC at 60,000 is 30,000 a leg, 60,000 of BTC across venues
    (RiskSettings(max_order_notional=29_000), 0.5, "max_order_notional"),
    (RiskSettings(max_asset_notional=59_000), 0.5, "max_asset_notional"),
    (RiskSettings(max_venue_notional=29_000), 0.5, "max_venue_notional"),
    (RiskSettings(max_gross_notional=59_000), 0.5, "max_gross_notional"),
    # 10,000 collateral a venue: 30,000 is 3x; 2.9x allowed -> refused
    (RiskSettings(max_leverage=2.9), 0.5, "max_leverage"),
])
def test_pre_trade_limits(risk: RiskSettings, qty: float, reason: str) -> None:
    _bus, _view, engine, tape, _venue, _ = _world(risk, collateral=10_000.0)
    assert not engine.submit(_pair(qty=qty))
    assert [r.reason for r in tape.of(RiskReject)] == [reason]
    assert tape.of(Order) == []


def test_margin_and_liquidation_distance() -> None:
    # 10,000 collateral, initial margin 10 %: 30,000 of notional needs 3,000 -> fine; 1.8 BTC
    # (108,000) needs 10,800 > 10,000 -> refused (leverage allowed up to 20x here).
    _, _, engine, tape, _, _ = _world(loose(max_leverage=20, min_liquidation_distance=0.0),
                                                   collateral=10_000.0)
    assert not engine.submit(_pair(qty=1.8))
    assert tape.of(RiskReject)[-1].reason == "insufficient_margin"
    # distance = equity / notional - maintenance = 10,000 / 60,000 - 0.05 = 11.67 % < 12 %
    _, _, engine, tape, _, _ = _world(loose(max_leverage=20, min_liquidation_distance=0.12),
                                                   collateral=10_000.0)
    assert not engine.submit(_pair(qty=1.0))
    assert tape.of(RiskReject)[-1].reason == "liquidation_distance"
    _bus, _view, engine, tape, _venue, _ = _world(loose(max_leverage=20, min_liquidation_distance=0.11),
                                                   collateral=10_000.0)
    assert engine.submit(_pair(qty=1.0))


def test_a_limit_already_exceeded_does_not_block_reducing() -> None:
    _bus, _view, engine, tape, _venue, _ = _world(RiskSettings(max_asset_notional=70_000))
    assert engine.submit(_pair(qty=0.5))  # 60,000 of BTC
    engine.s = RiskSettings(max_asset_notional=10_000)  # the limit tightened under an open position
    assert not engine.submit(_pair("s-2", qty=0.1))
    assert tape.of(RiskReject)[-1].reason == "max_asset_notional"
    assert engine.submit(_pair("s-3", qty=0.5, action="close"))
    assert engine.exposure.open_positions() == []


def test_one_leg_rejected_is_unwound_counted_and_alerted() -> None:
    _bus, _view, engine, tape, venue, alerts = _world()
    venue.plan = {"okx": "reject"}
    assert engine.submit(_pair(qty=0.5))
    ev = tape.of(LegRiskEvent)
    assert len(ev) == 1 and ev[0].action == "unwind" and ev[0].venue == "binance"
    assert ev[0].unhedged_qty == pytest.approx(0.5)  # long 0.5 on binance without the okx short
    unwind = [i for i in tape.of(TradeIntent) if i.action == "unwind"]
    assert len(unwind) == 1 and unwind[0].parent_id == "s-1"
    (leg,) = unwind[0].legs
    assert (leg.venue, leg.side, leg.qty, leg.reduce_only) == ("binance", "sell", pytest.approx(0.5), True)
    # the unwind filled: flat again, nothing left unhedged
    assert engine.exposure.positions[("binance", "BTCUSDT")].qty == pytest.approx(0.0)
    assert engine.guard.counts == {"unwind": 1}
    assert engine.snapshot()["leg_risk"] == {"events": {"unwind": 1}, "unhedged": []}
    assert alerts == ["leg risk: BTC/USDT:USDT unwind"]


def test_a_leg_unfilled_at_the_timeout_is_canceled_and_the_other_unwound() -> None:
    _bus, view, engine, tape, venue, alerts = _world(ex=ExecutionSettings(leg_timeout_ms=300))
    venue.plan = {"okx": "silent"}
    t0 = view.now_ns
    engine.submit(_pair(qty=0.5))
    assert tape.of(LegRiskEvent) == []
    view.advance(t0 + 299 * MS)
    assert tape.of(LegRiskEvent) == []  # not yet
    view.advance(t0 + 300 * MS)
    cancels = tape.of(CancelOrder)
    assert [(c.order_id, c.venue, c.ts_ns) for c in cancels] == [("s-1.1", "okx", t0 + 300 * MS)]
    ev = tape.of(LegRiskEvent)
    assert len(ev) == 1 and ev[0].action == "unwind" and "timed out" in ev[0].detail
    assert engine.exposure.positions[("binance", "BTCUSDT")].qty == pytest.approx(0.0)
    assert len(alerts) == 1


def test_hedge_sends_the_missing_leg_again() -> None:
    _bus, _view, engine, tape, venue, _ = _world(ex=ExecutionSettings(leg_risk_action="hedge", leg_timeout_ms=100))
    venue.plan = {"okx": "reject"}
    engine.submit(_pair(qty=0.5))
    hedge = [i for i in tape.of(TradeIntent) if i.action == "hedge"]
    assert len(hedge) == 1 and hedge[0].legs[0].venue == "okx" and hedge[0].legs[0].side == "sell"
    # okx still refuses: the next round unwinds the binance leg instead
    assert [e.action for e in tape.of(LegRiskEvent)] == ["hedge", "unwind"]
    assert engine.exposure.positions[("binance", "BTCUSDT")].qty == pytest.approx(0.0)


def test_a_venue_that_never_answers_ends_in_an_unhedged_report() -> None:
    _bus, view, engine, tape, venue, _alerts = _world(ex=ExecutionSettings(leg_timeout_ms=100))
    venue.plan = {"okx": "reject"}
    venue.budget = {"binance": 1}  # the first order fills; the unwinds are never answered
    engine.submit(_pair(qty=0.5))
    for _k in range(1, 10):
        view.advance(view.now_ns + 100 * MS)
    actions = [e.action for e in tape.of(LegRiskEvent)]
    assert actions[-1] == "none" and actions.count("unwind") == 3
    (left,) = engine.snapshot()["leg_risk"]["unhedged"]
    assert left["unhedged_qty"] == pytest.approx(0.5) and left["given_up"]


def test_manual_kill_blocks_openings_but_not_reductions_and_resume() -> None:
    _bus, _view, engine, tape, _venue, _alerts = _world()
    assert engine.submit(_pair("a", qty=0.2))
    state = engine.kill("manual")
    assert state["killed"] and state["reason"] == "manual"
    ks = tape.of(KillSwitch)
    assert len(ks) == 1 and ks[0].engaged and not ks[0].flatten
    assert not engine.submit(_pair("b", qty=0.1))
    assert tape.of(RiskReject)[-1].reason == "killed"
    assert engine.submit(_pair("c", qty=0.2, action="close"))  # closing still allowed
    engine.resume()
    assert not tape.of(KillSwitch)[-1].engaged
    assert engine.submit(_pair("d", qty=0.1))
    assert engine.rejection_counts()["killed"] == 1


def test_kill_with_flatten_closes_every_position() -> None:
    _bus, _view, engine, tape, _venue, _ = _world()
    engine.submit(_pair("a", qty=0.3))
    engine.kill("manual", flatten=True)
    flat = [i for i in tape.of(TradeIntent) if i.action == "flatten"]
    assert sorted((i.legs[0].venue, i.legs[0].side, i.legs[0].qty) for i in flat) == [
        ("binance", "sell", pytest.approx(0.3)), ("okx", "buy", pytest.approx(0.3))]
    assert engine.exposure.open_positions() == []


def test_daily_loss_breach_engages_the_kill_switch() -> None:
    _bus, view, engine, tape, _venue, alerts = _world(loose(max_daily_loss=1_000))
    engine.on_tick(view.now_ns)  # day starts at 200,000 of equity (two venues)
    one = TradeIntent(id="x", ts_ns=0, strategy="s", action="open", asset="BTC",
                      legs=[Leg(venue="binance", symbol="BTC/USDT:USDT", venue_symbol="BTCUSDT", side="buy",
                                qty=1.0)])
    assert engine.submit(one)  # long 1 BTC at 60,000
    i = view.insts[("binance", "BTCUSDT")]
    view.set_book(i, [(59_040.0, 5.0)], [(59_060.0, 5.0)])  # mid 59,050: -950
    engine.on_tick(view.now_ns)
    assert not engine.killed
    view.set_book(i, [(58_990.0, 5.0)], [(59_010.0, 5.0)])  # mid 59,000: -1,000, not beyond
    engine.on_tick(view.now_ns)
    assert not engine.killed
    view.set_book(i, [(58_980.0, 5.0)], [(59_000.0, 5.0)])  # mid 58,990: -1,010
    engine.on_tick(view.now_ns)
    assert engine.killed and engine.kill_reason == "max_daily_loss"
    assert tape.of(KillSwitch)[-1].reason == "max_daily_loss" and alerts == ["kill switch engaged"]
    assert not engine.submit(_pair("y"))


def test_drawdown_breach_engages_the_kill_switch() -> None:
    # equity 20,000 (two venues of 10,000); 5 % drawdown is 1,000
    _bus, view, engine, _tape, _venue, _ = _world(loose(max_drawdown=0.05, max_daily_loss=1e9),
                                                   collateral=10_000.0)
    one = TradeIntent(id="x", ts_ns=0, strategy="s", action="open", asset="BTC",
                      legs=[Leg(venue="binance", symbol="BTC/USDT:USDT", venue_symbol="BTCUSDT", side="buy",
                                qty=0.5)])
    engine.submit(one)
    i = view.insts[("binance", "BTCUSDT")]
    view.set_book(i, [(61_990.0, 5.0)], [(62_010.0, 5.0)])  # +1,000: peak 21,000
    engine.on_tick(view.now_ns)
    view.set_book(i, [(59_990.0, 5.0)], [(60_010.0, 5.0)])  # back to 20,000: 4.76 % down
    engine.on_tick(view.now_ns)
    assert not engine.killed
    view.set_book(i, [(59_890.0, 5.0)], [(59_910.0, 5.0)])  # 19,950: 5.0 % down exactly
    engine.on_tick(view.now_ns)
    assert not engine.killed
    view.set_book(i, [(59_870.0, 5.0)], [(59_890.0, 5.0)])  # 19,940: 5.05 %
    engine.on_tick(view.now_ns)
    assert engine.killed and engine.kill_reason == "max_drawdown"


def test_a_kill_switch_from_another_component_is_honoured() -> None:
    bus, _view, engine, _tape, _venue, _ = _world()
    from perparb.bus import RISK
    bus.publish(RISK, KillSwitch(ts_ns=1, engaged=True, reason="ledger_write_failed"))
    assert engine.killed and engine.kill_reason == "ledger_write_failed"


def test_historical_and_parametric_var_worked_out() -> None:
    m = [100.0, 101.0, 99.0, 102.0, 98.0, 100.0]
    w = 1_000.0  # long 10 units at 100
    # horizon 1: returns r_k = m[k+1]/m[k] - 1; losses -w*r_k
    losses = sorted(-w * (m[k + 1] / m[k] - 1) for k in range(5))  # -30.30, -20.41, -9.90.., 19.80, 39.22
    # 80 %: the ceil(0.8 * 5) = 4th smallest loss
    assert historical_var([w], [m], 1, 0.8) == pytest.approx(losses[3])
    assert losses[3] == pytest.approx(1000 * (1 - 99 / 101))
    rets = [m[k + 1] / m[k] - 1 for k in range(5)]
    mean = sum(rets) / 5
    sd = math.sqrt(sum((r - mean) ** 2 for r in rets) / 4)
    z = NormalDist().inv_cdf(0.95)
    assert parametric_var([w], [m], 2, 0.95) == pytest.approx(z * w * sd * math.sqrt(2))
    # horizon 2: windows k=0..3, returns m[k+2]/m[k]-1
    losses2 = sorted(-w * (m[k + 2] / m[k] - 1) for k in range(4))
    assert historical_var([w], [m], 2, 0.75) == pytest.approx(losses2[2])
    # a hedged pair on identical prices has no risk
    assert historical_var([w, -w], [m, m], 1, 0.99) == pytest.approx(0.0)
    assert parametric_var([w, -w], [m, m], 1, 0.99) == pytest.approx(0.0, abs=1e-9)
    # too short a history to say
    assert historical_var([w], [m[:2]], 1, 0.9) is None


def test_engine_var_from_its_own_sampled_history() -> None:
    _bus, view, engine, tape, _venue, _ = _world(loose(var_sample_s=1, var_horizon_s=1, var_confidence=0.8))
    one = TradeIntent(id="x", ts_ns=0, strategy="s", action="open", asset="BTC",
                      legs=[Leg(venue="binance", symbol="BTC/USDT:USDT", venue_symbol="BTCUSDT", side="buy",
                                qty=0.01)])
    engine.submit(one)
    i = view.insts[("binance", "BTCUSDT")]
    mids = [60_000.0, 60_600.0, 59_400.0, 61_200.0, 58_800.0, 60_000.0]
    for k, mid in enumerate(mids):
        view.now_ns = 10_000 * MS + k * 1_000 * MS
        view.set_book(i, [(mid - 10, 5.0)], [(mid + 10, 5.0)])
        view.set_book(view.insts[("okx", "BTCUSDT")], [(59_990.0, 5.0)], [(60_010.0, 5.0)])
        engine.on_tick(view.now_ns)
    w = 0.01 * mids[-1]
    expected = sorted(-w * (mids[k + 1] / mids[k] - 1) for k in range(5))[3]
    assert engine.var_historical == pytest.approx(expected)
    assert engine.snapshot()["utilisation"]["var_historical"] == pytest.approx(expected)
    # a VaR limit below it refuses new entries
    engine.s = loose(max_var=expected / 2)
    assert not engine.submit(_pair("y", qty=0.01))
    assert tape.of(RiskReject)[-1].reason == "max_var"


def test_price_history_is_bounded_and_aligned() -> None:
    h = PriceHistory(3)
    h.sample({("a", "x"): 1.0})
    h.sample({("a", "x"): 2.0, ("b", "y"): 5.0})
    h.sample({("b", "y"): 6.0})  # a has no new mid: its last one repeats
    h.sample({("a", "x"): 4.0, ("b", "y"): 7.0})
    assert list(h.mids[("a", "x")]) == [2.0, 2.0, 4.0]
    assert h.aligned([("a", "x"), ("b", "y")]) == [[2.0, 2.0, 4.0], [5.0, 6.0, 7.0]]


def test_restore_folds_the_journal_and_keeps_a_kill_switch_engaged() -> None:
    _, _, engine, tape, _, _ = _world()
    engine.submit(_pair("a", qty=0.4))
    engine.kill("manual")
    journal = [m for _, m in tape.msgs if isinstance(m, Order | Fill | OrderUpdate | KillSwitch)]
    _, _, fresh, _, _, _ = _world()
    fresh.restore(journal)
    assert fresh.killed and fresh.kill_reason == "manual"
    assert {k: p.qty for k, p in fresh.exposure.positions.items()} == {
        ("binance", "BTCUSDT"): pytest.approx(0.4), ("okx", "BTCUSDT"): pytest.approx(-0.4)}
    assert fresh.exposure.pending == {}


def test_a_half_closed_pair_completes_the_missing_leg() -> None:
    _, _, engine, tape, venue, _ = _world()
    engine.submit(_pair("a", qty=0.4))  # long binance, short okx
    venue.budget = {"okx": 0}  # okx stops answering: the okx close leg never fills
    engine.submit(_pair("c", qty=0.4, action="close"))
    assert engine.exposure.positions[("binance", "BTCUSDT")].qty == pytest.approx(0.0)
    assert tape.of(LegRiskEvent) == []
    view = engine.view
    view.advance(view.now_ns + 2_000 * MS)  # leg timeout: the okx leg is canceled and sent again
    (ev,) = tape.of(LegRiskEvent)
    assert ev.action == "hedge"  # never re-opening the binance leg that did close
    retry = [i for i in tape.of(TradeIntent) if i.parent_id == "c"]
    assert [(lg.venue, lg.side, lg.qty, lg.reduce_only) for lg in retry[0].legs] == [
        ("okx", "buy", pytest.approx(0.4), True)]
    # the canceled order may still fill until the cancel is acknowledged, so the retry is held
    # back (nothing left to reduce yet) and tried again once okx confirms the cancel
    assert tape.of(RiskReject)[-1].reason == "nothing_to_reduce"
    engine.exposure.on_update(OrderUpdate(order_id="c.1", intent_id="c", ts_ns=view.now_ns, venue="okx",
                                          symbol="BTC/USDT:USDT", status="canceled"))
    venue.budget = {"okx": 10}
    view.advance(view.now_ns + 1_999 * MS)
    for i in view.insts.values():  # fresh books for the retry
        view.set_book(i, [(59_990.0, 5.0)], [(60_010.0, 5.0)])
    view.advance(view.now_ns + 1 * MS)
    assert engine.exposure.open_positions() == []
    assert [e.action for e in tape.of(LegRiskEvent)] == ["hedge", "hedge"]
