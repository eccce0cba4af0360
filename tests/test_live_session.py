"""Live trading assembled in a session: the gate at start, orders through the simulator's
Binance trading API, the account opened with the venue's balance."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perparb.app import Session
from perparb.bus import EXECUTIONS, ORDERS
from perparb.bus.messages import Fill, Message, Order, OrderUpdate
from perparb.cli import app
from perparb.config import ConfigError, Settings
from perparb.execution.live import LiveExecution
from perparb.feeds.booksync import SYNCED
from perparb.instruments.snapshot import load_registry
from perparb.sim.server import Simulator

KEY, SECRET = "sess-key-5d1e", "sess-secret-0b77"


def _settings(tmp_path: Path, rest_url: str, ws_url: str) -> Settings:
    return Settings.model_validate({
        "venues": {"binance": {"api_key": KEY, "api_secret": SECRET, "rest_url": rest_url, "ws_url": ws_url}},
        "assets": ["BTC"], "execution": {"mode": "live"},
        "storage": {"dir": str(tmp_path), "ledger": str(tmp_path / "ledger.sqlite")}})


async def test_session_trades_live_through_the_gate(tmp_path: Path) -> None:
    registry = load_registry()
    sim = Simulator(registry, ["binance"], ["BTC"], seed=9, tick_s=0.05)
    await sim.start()
    sv = sim.venues["binance"]
    assert sv.orders is not None
    sv.orders.add_account(KEY, SECRET, balance=50_000.0)
    settings = _settings(tmp_path, sv.rest_url, sv.ws_url)
    with pytest.raises(ConfigError, match="--confirm-live"):
        Session(settings, registry=registry)
    session = Session(settings, registry=registry, live_confirmed=True)
    assert session.trading is not None
    live = session.trading.execution
    assert isinstance(live, LiveExecution) and live.venues == {"binance"}
    seen: list[Message] = []
    session.trading.bus.subscribe(EXECUTIONS, seen.append)
    try:
        await session.start()
        assert live.start_balances == {"binance": {"USDT": 50_000.0}}
        for _ in range(200):
            sb = session.trading.view.book("binance", "BTCUSDT")
            if sb is not None and sb.state == SYNCED:
                break
            await asyncio.sleep(0.05)
        sim.pause()
        await asyncio.sleep(0.3)  # the last updates reach the engine; the market stands still
        asks = sv.books["BTCUSDT"].levels()[1]
        inst = sv.instruments["BTCUSDT"]
        want = 0.02 // inst.lot_size * inst.lot_size
        left, cost = want, 0.0
        for px, qty in asks:
            take = min(left, qty)
            cost += take * px
            left -= take
            if left <= 1e-12:
                break
        vwap = cost / want
        session.trading.bus.publish(ORDERS, Order(
            id="live-1", intent_id="i-1", strategy="manual", ts_ns=session.engine.now_ns, venue="binance",
            symbol="BTC/USDT:USDT", venue_symbol="BTCUSDT", side="buy", qty=0.02))
        await live.idle()
        [fill] = [m for m in seen if isinstance(m, Fill)]
        assert fill.qty == pytest.approx(want) and fill.px == pytest.approx(vwap, rel=1e-9)
        assert [m.status for m in seen if isinstance(m, OrderUpdate)] == ["filled"]
        [(sym, qty, entry)] = await live.positions("binance")
        assert (sym, qty, entry) == ("BTC/USDT:USDT", pytest.approx(want), pytest.approx(vwap, rel=1e-9))
    finally:
        await session.stop()
        await sim.stop()


def test_demo_refuses_live_mode() -> None:
    """The demo never trades live: asked for live mode, it refuses rather than paper trade."""
    result = CliRunner().invoke(app, ["demo", "--duration", "1", "--json", "--no-api",
                                      "--set", "execution.mode=live"])
    assert result.exit_code == 2
    out = " ".join(result.output.split())
    assert "live trading refused" in out and "--confirm-live" in out and "venues.binance.api_key" in out
