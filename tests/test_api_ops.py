"""Operating the API safely: reloading a broken configuration, health that reflects data
age, and who may open the /ws stream."""

from __future__ import annotations

import json
import logging
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
