"""The live-trading gate (mode, keys, --confirm-live) and credentials kept out of logs and
API responses."""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from perparb.api.app import ApiContext, create_app
from perparb.app import Session
from perparb.bus import EXECUTIONS, ORDERS, InProcessBus
from perparb.bus.messages import CancelOrder, Message, Order, OrderUpdate
from perparb.cli import app
from perparb.config import Settings, load_settings
from perparb.execution.gate import build_live_execution, live_gate
from perparb.instruments.registry import Registry
from perparb.sim.server import Simulator

KEY, SECRET = "AKlive0c5e9b2d7f", "SKlive88a1f04e6b3c"
ENV = {"BINANCE_API_KEY": KEY, "BINANCE_API_SECRET": SECRET}


def _config(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "perparb.toml"
    path.write_text(body)
    return path


def _live(settings: Settings) -> Settings:
    """The same settings with ``execution.mode = "live"``."""
    execution = getattr(settings, "execution", None)
    if execution is not None:
        return settings.model_copy(update={"execution": execution.model_copy(update={"mode": "live"})})
    return settings.model_copy(update={"execution": SimpleNamespace(mode="live")})


KEYED = """
[venues.binance]
api_key = "${BINANCE_API_KEY}"
api_secret = "${BINANCE_API_SECRET}"
"""


def test_each_missing_condition_is_named(tmp_path: Path) -> None:
    paper = load_settings(env={})  # defaults: paper, binance/okx/bybit without keys
    missing = live_gate(paper, confirmed=False)
    assert missing[0] == 'configuration: execution.mode is "paper", not "live" (set execution.mode = "live")'
    assert missing[-1] == "confirmation: the command was not started with --confirm-live"
    keys = missing[1:-1]
    assert keys == [f'API keys: venues.{v}.{k} is not set (e.g. {k} = "${{{v.upper()}_{k.upper()}}}")'
                    for v in ("binance", "okx", "bybit") for k in ("api_key", "api_secret")]

    keyed = load_settings(_config(tmp_path, KEYED), env=ENV)
    assert keyed.venues["binance"].api_key is not None
    assert live_gate(_live(keyed), confirmed=True) == []
    assert live_gate(_live(keyed), confirmed=False) == ["confirmation: the command was not started with --confirm-live"]
    assert live_gate(keyed, confirmed=True) == [
        'configuration: execution.mode is "paper", not "live" (set execution.mode = "live")']
    # A secret set to nothing is as missing as no secret at all.
    half = load_settings(_config(tmp_path, KEYED), env={**ENV, "BINANCE_API_SECRET": " "})
    assert live_gate(_live(half), confirmed=True) == [
        'API keys: venues.binance.api_secret is not set (e.g. api_secret = "${BINANCE_API_SECRET}")']


def test_run_refuses_live_without_every_condition(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for k, v in ENV.items():
        monkeypatch.setenv(k, v)
    # Keys and the flag, but the configuration says paper: refused before anything connects.
    result = CliRunner().invoke(app, ["run", "--config", str(_config(tmp_path, KEYED)), "--confirm-live",
                                      "--duration", "0.1", "--no-api"])
    assert result.exit_code == 2
    out = result.output.replace("\n  ", " ")
    assert "live trading refused" in out and 'execution.mode is "paper"' in out
    assert "API keys" not in out and "--confirm-live" not in out.split("missing:")[1]
    assert KEY not in result.output and SECRET not in result.output


async def test_credentials_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Requests, fills, a cancel and an authentication failure at DEBUG: neither the key nor
    the secret appears in any log line, though the requests themselves are logged."""
    caplog.set_level(logging.DEBUG)
    sim = Simulator(Registry(), ["binance"], ["BTC"], seed=3, tick_s=0.05)
    await sim.start()
    sv = sim.venues["binance"]
    while not all(b.bids and b.asks for b in sv.books.values()):
        await asyncio.sleep(0.02)
    sim.pause()
    assert sv.orders is not None
    sv.orders.add_account(KEY, SECRET)
    settings = Settings.model_validate({"venues": {"binance": {"api_key": KEY, "api_secret": SECRET,
                                                               "rest_url": sv.rest_url}}})
    bus = InProcessBus()
    seen: list[Message] = []
    bus.subscribe(EXECUTIONS, seen.append)
    inst = sv.instruments["BTCUSDT"]
    view: Any = SimpleNamespace(now_ns=1, instrument=lambda v, s: sv.instruments.get(s), book=lambda v, s: None)
    live = build_live_execution(settings, bus, view, poll_s=0.05)
    try:
        await live.start()
        bid = sv.books["BTCUSDT"].top()[0][0]
        common: dict[str, Any] = dict(intent_id="i", strategy="s", ts_ns=1, venue="binance", symbol=inst.symbol,
                                      venue_symbol="BTCUSDT", side="buy", qty=0.01)
        bus.publish(ORDERS, Order(id="m", **common, order_type="ioc", limit_px=bid * 1.01))
        bus.publish(ORDERS, Order(id="r", **common, order_type="post_only", limit_px=round(bid - 100 * inst.tick_size, 1)))
        await live.idle()
        bus.publish(ORDERS, CancelOrder(order_id="r", venue="binance", ts_ns=2))
        await live.idle()
        live.exchanges["binance"].secret = "wrong-" + SECRET  # the next request is refused (-1022)
        bus.publish(ORDERS, Order(id="x", **common, order_type="ioc", limit_px=bid * 1.01))
        await live.idle()
    finally:
        await live.close()
        await sim.stop()
    statuses = {m.order_id: m.status for m in seen if isinstance(m, OrderUpdate)}
    assert statuses == {"m": "filled", "r": "canceled", "x": "rejected"}
    text = caplog.text + "\n".join(r.getMessage() for r in caplog.records)
    assert "X-MBX-APIKEY" in text and "/fapi/v1/order" in text  # ccxt's request lines were logged
    assert KEY not in text and SECRET not in text


def test_credentials_never_in_api_responses(tmp_path: Path) -> None:
    settings = _live(load_settings(_config(tmp_path, KEYED + '\n[api]\ntoken = "tok"\n'), env=ENV))
    session = Session(settings, registry=Registry(), api=True, live_confirmed=True)
    ctx = ApiContext(session.engine, settings.api, session.rates, session.alerter, session.reload)
    bodies = []
    with TestClient(create_app(ctx)) as c:
        for route in create_app(ctx).routes:
            path = getattr(route, "path", "")
            methods = getattr(route, "methods", set()) or set()
            if not path.startswith(("/api", "/health", "/metrics")):
                continue
            path = (path.replace("{asset}", "BTC").replace("{venue_a}", "binance").replace("{venue_b}", "okx")
                    .replace("{venue}", "binance"))
            for method in methods & {"GET", "POST"}:
                r = c.request(method, path, headers={"Authorization": "Bearer tok"})
                bodies.append(r.text)
    assert len(bodies) >= 10
    joined = "\n".join(bodies)
    assert KEY not in joined and SECRET not in joined
