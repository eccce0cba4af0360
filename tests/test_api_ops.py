"""Operating the API safely: reloading a broken configuration, health that reflects data
age, and who may open the /ws stream."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path

import pytest
import websockets
from fastapi.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from perparb.api.app import ApiContext, create_app, exposure_warning, origin_allowed
from perparb.app import Session
from perparb.config import ApiSettings, load_settings
from perparb.engine import Engine
from perparb.instruments.snapshot import load_registry
from perparb.scanner.core import Scanner, ScanSettings

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_reloading_a_broken_config_is_a_4xx_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    good = f'[api]\ntoken = "{TOKEN}"\n[[alerts.rules]]\nmin_edge_bps = 5\n'
    path.write_text(good)
    settings = load_settings(path, env={})
    session = Session(settings, config_path=path)
    ctx = ApiContext(session.engine, settings.api, alerter=session.alerter, reload=session.reload)
    with TestClient(create_app(ctx)) as c:
        assert c.post("/api/config/reload", headers=AUTH).status_code == 200
        path.write_text(good.replace("min_edge_bps = 5", "min_edge_bps = nan") + 'log_level = "verbose"\n')
        r = c.post("/api/config/reload", headers=AUTH)
        assert r.status_code == 400
        detail = r.json()["detail"]
        assert "alerts.rules.0.min_edge_bps" in detail
        assert "log_level" in detail
        assert TOKEN not in r.text
        path.write_text("[scanner\n")
        r = c.post("/api/config/reload", headers=AUTH)
        assert r.status_code == 400
        assert "not valid" in r.json()["detail"]
    # The rules in force are still the ones last loaded successfully.
    assert session.alerter is not None
    assert [r.min_edge_bps for r in session.alerter.rules] == [5.0]


# -- /ws origin check -------------------------------------------------------------------------
def _engine() -> Engine:
    return Engine(load_registry(), ["binance"], Scanner(ScanSettings()))


def _ws_open(c: TestClient, headers: dict[str, str]) -> bool:
    try:
        with c.websocket_connect("/ws", headers=headers) as ws:
            ws.receive_json()  # the snapshot every accepted client gets first
            return True
    except WebSocketDisconnect as exc:
        assert exc.code == 1008
        return False


def test_ws_refuses_foreign_origins() -> None:
    with TestClient(create_app(ApiContext(_engine(), ApiSettings()))) as c:
        assert _ws_open(c, {})  # no Origin: not a browser
        assert _ws_open(c, {"Origin": "http://testserver"})  # the dashboard's own origin (Host: testserver)
        assert not _ws_open(c, {"Origin": "http://evil.example"})
        assert not _ws_open(c, {"Origin": "http://testserver.evil.example"})
        assert not _ws_open(c, {"Origin": "null"})
    settings = ApiSettings(cors_origins=["https://ok.example"])
    with TestClient(create_app(ApiContext(_engine(), settings))) as c:
        assert _ws_open(c, {"Origin": "https://ok.example"})
        assert not _ws_open(c, {"Origin": "http://ok.example"})  # another scheme is another origin
        assert not _ws_open(c, {"Origin": "https://evil.example"})


@pytest.mark.parametrize(("origin", "host", "allowed", "ok"), [
    (None, "h:1", [], True),
    ("http://h:1", "h:1", [], True),
    ("https://H:1", "h:1", [], True),
    ("http://h:2", "h:1", [], False),
    ("http://a.example", "h:1", ["*"], True),
    ("ws://h:1", "h:1", [], False),
    ("http://h:1", None, [], False),
])
def test_origin_rule(origin: str | None, host: str | None, allowed: list[str], ok: bool) -> None:
    assert origin_allowed(origin, host, allowed) is ok


async def test_a_served_ws_answers_a_foreign_origin_with_403(caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(env={}, sets={"api.port": "0", "venues": "binance"})
    session = Session(settings, api=True)
    await session._start_api()
    try:
        url = f"ws://127.0.0.1:{session.api_port}/ws"
        with pytest.raises(websockets.exceptions.InvalidStatus) as exc:
            async with websockets.connect(url, origin=websockets.Origin("http://evil.example")):
                pass
        assert exc.value.response.status_code == 403
        async with websockets.connect(url, origin=websockets.Origin(f"http://127.0.0.1:{session.api_port}")) as ws:
            first = json.loads(await ws.recv())
            assert first["type"] == "snapshot"
    finally:
        await session.stop()
    assert "beyond loopback" not in caplog.text  # loopback: no warning


# -- exposure warning -------------------------------------------------------------------------
def test_exposure_warning_only_beyond_loopback_without_a_token() -> None:
    for host in ("127.0.0.1", "127.0.0.2", "::1", "localhost"):
        assert exposure_warning(ApiSettings(host=host)) is None
    for host in ("0.0.0.0", "::", "192.168.1.20", "myhost.lan"):
        text = exposure_warning(ApiSettings(host=host))
        assert text is not None and host in text and "api.token" in text
        assert exposure_warning(ApiSettings(host=host, token="t")) is None


async def test_binding_beyond_loopback_without_a_token_logs_a_warning(caplog: pytest.LogCaptureFixture) -> None:
    settings = load_settings(env={}, sets={"api.port": "0", "api.host": "0.0.0.0", "venues": "binance"})
    session = Session(settings, api=True)
    with caplog.at_level(logging.WARNING, logger="perparb"):
        await session._start_api()
        await session.stop()
    assert any("0.0.0.0" in r.getMessage() and "without api.token" in r.getMessage() for r in caplog.records)


# -- health states from data age ----------------------------------------------------------------
MS = 1_000_000


def _ticker(sym: str, t_ms: int) -> str:
    return json.dumps({"stream": f"{sym.lower()}@bookTicker", "data": {
        "e": "bookTicker", "u": 1, "s": sym, "b": "100", "B": "1", "a": "101", "A": "1", "T": t_ms, "E": t_ms}})


def _bybit_top(sym: str, t_ms: int) -> str:
    return json.dumps({"topic": f"orderbook.1.{sym}", "type": "snapshot", "ts": t_ms, "data": {
        "s": sym, "b": [["100", "1"]], "a": [["101", "1"]], "u": 1, "seq": 1}})


def test_health_follows_data_age_per_venue_limit() -> None:
    t0_ms = int(time.time() * 1000)
    t0 = t0_ms * MS
    # binance uses the scanner's 1 s limit, bybit its own 3 s.
    engine = Engine(load_registry(), ["binance", "bybit"],
                    Scanner(ScanSettings(max_quote_age_ms=1000, venue_max_age_ms={"bybit": 3000})))
    for v in ("binance", "bybit"):
        engine.set_connected(v, True, t0)
    engine.on_message("binance", _ticker("BTCUSDT", t0_ms + 100), t0 + 100 * MS)
    engine.on_message("bybit", _bybit_top("BTCUSDT", t0_ms + 100), t0 + 100 * MS)
    with TestClient(create_app(ApiContext(engine, ApiSettings()))) as c:
        def health() -> tuple[int, dict]:
            r = c.get("/health")
            return r.status_code, r.json()

        engine.advance(t0 + 1000 * MS)  # both 900 ms old
        code, body = health()
        assert (code, body["status"], body["reasons"]) == (200, "ok", {})
        engine.advance(t0 + 1200 * MS)  # binance 1100 ms old > 1000; bybit 1100 < 3000
        code, body = health()
        assert (code, body["status"]) == (200, "degraded")
        assert body["reasons"] == {"binance": "no price data for 1100 ms (limit 1000 ms)"}
        assert body["components"]["venues"] == {"binance": "stale", "bybit": "connected"}
        rows = {r["venue"]: r for r in c.get("/api/venues").json()}
        assert (rows["binance"]["state"], rows["binance"]["stale"], rows["binance"]["data_age_ms"],
                rows["binance"]["stale_after_ms"]) == ("stale", True, 1100.0, 1000.0)
        assert (rows["bybit"]["state"], rows["bybit"]["stale"], rows["bybit"]["data_age_ms"],
                rows["bybit"]["stale_after_ms"]) == ("connected", False, 1100.0, 3000.0)
        engine.advance(t0 + 3200 * MS)  # bybit 3100 ms old > 3000
        assert set(health()[1]["reasons"]) == {"binance", "bybit"}
        # Fresh data clears it.
        engine.on_message("binance", _ticker("BTCUSDT", t0_ms + 3200), t0 + 3200 * MS)
        assert set(health()[1]["reasons"]) == {"bybit"}
        # A disconnected venue is named with its last error.
        engine.status["bybit"].last_error = "ConnectionRefusedError: refused"
        engine.set_connected("bybit", False, t0 + 3300 * MS)
        code, body = health()
        assert (code, body["status"]) == (200, "degraded")
        assert body["reasons"] == {"bybit": "disconnected (ConnectionRefusedError: refused)"}
        engine.set_connected("binance", False, t0 + 3400 * MS)
        code, body = health()
        assert (code, body["status"]) == (503, "unavailable")


def test_a_connected_venue_that_never_sends_data_turns_stale() -> None:
    t0 = int(time.time() * 1000) * MS
    engine = Engine(load_registry(), ["okx"], Scanner(ScanSettings(max_quote_age_ms=500)))
    engine.set_connected("okx", True, t0)
    with TestClient(create_app(ApiContext(engine, ApiSettings()))) as c:
        engine.advance(t0 + 400 * MS)
        assert c.get("/health").json()["status"] == "ok"
        engine.advance(t0 + 700 * MS)
        body = c.get("/health").json()
        assert body["status"] == "degraded"
        assert body["reasons"] == {"okx": "no price data since connecting 700 ms ago (limit 500 ms)"}
