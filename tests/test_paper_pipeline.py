"""The assembled pipeline: scanner → strategies → risk → simulated execution on a real engine,
the demo's paper summary, and paper replays that are byte-identical across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.paper_helpers import MS, T0, Market, Tape, inst

from perparb.bus import TRADE_ORDERS
from perparb.bus.messages import Fill, Leg, LegRiskEvent, OrderUpdate, TradeIntent
from perparb.config import Settings
from perparb.paper import build_trading
from perparb.replay import FILL_KEYS
from perparb.scanner.alerts import Alerter

PERPARB = str(Path(sys.executable).with_name("perparb"))


def test_one_leg_refused_by_the_venue_is_unwound_through_the_simulator() -> None:
    bn = inst("binance", "BTCUSDT", lot_size=0.001)
    # okx refuses anything under 100,000 of notional: the short leg will be rejected at arrival
    ok = inst("okx", "BTC-USDT-SWAP", contract_size=0.01, lot_size=1.0, min_notional=100_000.0)
    m = Market(bn, ok)
    m.snapshot(bn, [(59_990.0, 2.0)], [(60_010.0, 0.3), (60_020.0, 1.0)], T0)
    m.snapshot(ok, [(60_050.0, 2.0)], [(60_070.0, 2.0)], T0)
    alerter = Alerter([])
    trading = build_trading(Settings(strategies=[]), m.engine, alerter=alerter, venues=["binance", "okx"])
    tape = Tape(trading.bus, "executions", "risk")
    trading.bus.publish(TRADE_ORDERS, TradeIntent(
        id="t-1", ts_ns=T0, strategy="test", action="open", asset="BTC",
        legs=[Leg(venue="binance", symbol=bn.symbol, venue_symbol=bn.venue_symbol, side="buy", qty=0.5),
              Leg(venue="okx", symbol=ok.symbol, venue_symbol=ok.venue_symbol, side="sell", qty=0.5)]))
    m.advance(T0 + 50 * MS)  # both arrive: binance fills, okx rejects; the unwind is sent
    assert [u.status for u in tape.of(OrderUpdate)] == ["filled", "rejected"]
    (ev,) = tape.of(LegRiskEvent)
    assert ev.action == "unwind" and ev.unhedged_qty == pytest.approx(0.5)
    m.advance(T0 + 100 * MS)  # the unwind arrives
    fills = [(f.venue, f.side, f.qty, f.px) for f in tape.of(Fill)]
    # buy walks the asks (0.3 @ 60,010, 0.2 @ 60,020); the unwind sells 0.5 into the 59,990 bid
    assert fills == [("binance", "buy", pytest.approx(0.3), 60_010.0), ("binance", "buy", pytest.approx(0.2), 60_020.0),
                     ("binance", "sell", pytest.approx(0.5), 59_990.0)]
    assert trading.risk.exposure.open_positions() == []
    assert trading.summary()["leg_risk"] == {"unwind": 1}
    assert [a.kind for a in alerter.recent] == ["leg_risk"]
    # realized: 0.3 * (59,990 - 60,010) + 0.2 * (59,990 - 60,020) = -12
    assert trading.summary()["realized_pnl"] == pytest.approx(-12.0)


def test_demo_json_shows_paper_fills() -> None:
    out = subprocess.run([PERPARB, "demo", "--duration", "20", "--json", "--no-api"], capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    paper = json.loads(out.stdout)["paper"]
    assert {"orders", "fills", "open_positions", "realized_pnl", "funding_pnl", "fees", "rejections"} <= set(paper)
    assert paper["fills"] > 0 and paper["orders"] > 0
    assert paper["fees"] > 0  # taker fees on every fill


async def test_paper_replay_is_byte_identical_across_processes(tmp_path: Path) -> None:
    from perparb.app import demo
    from perparb.config import load_settings

    settings = load_settings(None, {"venues": ["binance", "okx", "bybit"], "assets": "BTC,ETH,SOL",
                                    "storage.capture": "true", "storage.dir": str(tmp_path)}, env={})
    await demo(settings, 8.0, seed=7, view=False)
    [cap] = list(tmp_path.glob("capture-*.jsonl.zst"))
    outs = []
    for seed in ("1", "987"):
        dest = tmp_path / f"fills-{seed}.jsonl"
        env = {**os.environ, "PYTHONHASHSEED": seed}
        r = subprocess.run([PERPARB, "replay", str(cap), "--paper", "--fills-out", str(dest), "--json"],
                           capture_output=True, text=True, env=env, timeout=120)
        assert r.returncode == 0, r.stderr[-2000:]
        outs.append((dest.read_bytes(), json.loads(r.stdout)["paper"]))
    (a, sa), (b, sb) = outs
    assert a == b and sa == sb
    rows = [json.loads(line) for line in a.splitlines()]
    assert len(rows) == sa["fills"] > 0
    assert all(tuple(r) == FILL_KEYS for r in rows)
    assert len({r["id"] for r in rows}) == len(rows)
    assert all(r["qty"] > 0 and r["px"] > 0 and r["side"] in ("buy", "sell") for r in rows)


def test_a_restart_on_the_same_ledger_restores_positions_balances_and_the_kill_switch(tmp_path: Path) -> None:
    from decimal import Decimal

    from perparb.store.ledger import SqliteLedger

    bn = inst("binance", "BTCUSDT", lot_size=0.001)
    ok = inst("okx", "BTC-USDT-SWAP", lot_size=0.001)
    settings = Settings(strategies=[])
    settings.paper.collateral = {"USDT": 50_000.0}

    def session(m: Market):  # type: ignore[no-untyped-def]
        t = build_trading(settings, m.engine, venues=["binance", "okx"], ledger=SqliteLedger(tmp_path / "l.sqlite"))
        t.start()
        return t

    m = Market(bn, ok)
    m.snapshot(bn, [(59_990.0, 2.0)], [(60_010.0, 2.0)], T0)
    m.snapshot(ok, [(60_050.0, 2.0)], [(60_070.0, 2.0)], T0)
    first = session(m)
    first.bus.publish(TRADE_ORDERS, TradeIntent(
        id="t-1", ts_ns=T0, strategy="test", action="open", asset="BTC",
        legs=[Leg(venue="binance", symbol=bn.symbol, venue_symbol=bn.venue_symbol, side="buy", qty=0.25),
              Leg(venue="okx", symbol=ok.symbol, venue_symbol=ok.venue_symbol, side="sell", qty=0.25)]))
    m.advance(T0 + 60 * MS)
    first.risk.kill("manual")
    before = first.summary()
    assert [(p["venue"], p["qty"]) for p in before["open_positions"]] == [("binance", 0.25), ("okx", -0.25)]
    first.close()

    m2 = Market(bn, ok)
    m2.snapshot(bn, [(59_990.0, 2.0)], [(60_010.0, 2.0)], T0 + 100 * MS)
    m2.snapshot(ok, [(60_050.0, 2.0)], [(60_070.0, 2.0)], T0 + 100 * MS)
    second = session(m2)
    after = second.summary()
    assert after["open_positions"] == before["open_positions"]
    assert after["fees"] == before["fees"] > 0
    # the opening deposits were journaled once: 50,000 USDT a venue, less the fees paid there
    fee_bn = Decimal("0.25") * Decimal("60010") * Decimal("0.0005")
    assert second.accounting.book.account("binance").collateral["USDT"] == Decimal("50000") - fee_bn
    assert second.risk.killed and second.risk.kill_reason == "manual"
    assert {k: p.qty for k, p in second.risk.exposure.positions.items()} == {
        ("binance", "BTCUSDT"): 0.25, ("okx", "BTC-USDT-SWAP"): -0.25}
    # a new order after the restart is journaled and filled (a repeated id would be dropped
    # by the journal as the order it already has)
    second.risk.resume()
    second.bus.publish(TRADE_ORDERS, TradeIntent(
        id="test-2", ts_ns=T0 + 100 * MS, strategy="test", action="close", asset="BTC",
        legs=[Leg(venue="binance", symbol=bn.symbol, venue_symbol=bn.venue_symbol, side="sell", qty=0.25,
                  reduce_only=True)]))
    m2.advance(T0 + 200 * MS)
    assert second.summary()["fills"] == 1
    second.close()


def test_alert_urls_without_rules_still_carry_leg_risk_alerts() -> None:
    from perparb.app import build_alerter
    from perparb.config import load_settings

    assert build_alerter(load_settings(None, {}, env={})) is None
    alerter = build_alerter(load_settings(None, {"alerts.urls": ["json://127.0.0.1:9/hook"]}, env={}))
    assert alerter is not None and alerter.rules == []
    alerter.notify(5, "leg_risk", "BTC", "leg risk: BTC/USDT:USDT unwind", "detail", ("binance", ""), "t-1")
    assert [a.kind for a in alerter.recent] == ["leg_risk"] and alerter.counts["sent"] == 1
    alerter.close()


def test_only_contracts_of_opportunities_and_positions_are_sampled_for_var() -> None:
    from perparb.model import Opportunity

    bn, ok, by = inst("binance", "BTCUSDT"), inst("okx", "BTC-USDT-SWAP"), inst("bybit", "BTCUSDT")
    m = Market(bn, ok, by)
    for i, mid in ((bn, 60_000.0), (ok, 60_050.0), (by, 60_020.0)):
        m.snapshot(i, [(mid - 5, 2.0)], [(mid + 5, 2.0)], T0)
    trading = build_trading(Settings(strategies=[]), m.engine, venues=["binance", "okx", "bybit"])
    trading.on_opportunity("open", Opportunity(id="spread:BTC:binance:okx", kind="spread", asset="BTC",
                                               buy_venue="binance", sell_venue="okx", buy_symbol=bn.symbol,
                                               sell_symbol=ok.symbol))
    trading.on_tick(T0 + 1_000 * MS)
    assert sorted(trading.risk.history.mids) == [("binance", "BTCUSDT"), ("okx", "BTC-USDT-SWAP")]
    assert list(trading.risk.history.mids[("okx", "BTC-USDT-SWAP")]) == [60_050.0]
