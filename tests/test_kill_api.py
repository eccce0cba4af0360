"""Kill switch from the API and the CLI; risk refusals and leg risk in /metrics."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

from fastapi.testclient import TestClient
from tests.paper_helpers import T0, Market, Tape, inst

from perparb.api.app import ApiContext, create_app
from perparb.bus import TRADE_ORDERS
from perparb.bus.messages import KillSwitch, Leg, TradeIntent
from perparb.config import ApiSettings, Settings
from perparb.paper import build_trading

PERPARB = str(Path(sys.executable).with_name("perparb"))


def _trading():  # type: ignore[no-untyped-def]
    bn, ok = inst("binance", "BTCUSDT", lot_size=0.001), inst("okx", "BTC-USDT-SWAP", lot_size=0.0001)
    m = Market(bn, ok)
    m.snapshot(bn, [(59_990.0, 2.0)], [(60_010.0, 2.0)], T0)
    m.snapshot(ok, [(60_050.0, 2.0)], [(60_070.0, 2.0)], T0)
    return m, bn, ok, build_trading(Settings(strategies=[]), m.engine, venues=["binance", "okx"])


def test_kill_and_resume_over_the_api_need_the_token_and_show_in_metrics() -> None:
    m, bn, ok, trading = _trading()
    tape = Tape(trading.bus, "risk")
    with TestClient(create_app(ApiContext(m.engine, ApiSettings(token="s3cret"), trading=trading))) as c:
        assert c.post("/api/paper/kill").status_code == 401
        assert c.post("/api/paper/kill", headers={"Authorization": "Bearer nope"}).status_code == 401
        bad = c.post("/api/paper/kill", headers={"Authorization": "Bearer s3cret"}, json={"flatten": "maybe"})
        assert bad.status_code == 422 and "flatten" in bad.text
        r = c.post("/api/paper/kill", headers={"Authorization": "Bearer s3cret"}, json={"reason": "desk"})
        assert r.status_code == 200 and r.json()["killed"] and r.json()["reason"] == "desk"
        (ks,) = tape.of(KillSwitch)
        assert ks.engaged and ks.reason == "desk"
        trading.bus.publish(TRADE_ORDERS, TradeIntent(
            id="t-1", ts_ns=T0, strategy="s", action="open", asset="BTC",
            legs=[Leg(venue="binance", symbol=bn.symbol, venue_symbol=bn.venue_symbol, side="buy", qty=0.1),
                  Leg(venue="okx", symbol=ok.symbol, venue_symbol=ok.venue_symbol, side="sell", qty=0.1)]))
        text = c.get("/metrics").text
        assert 'perparb_risk_rejections_total{reason="killed"} 1.0' in text
        assert 'perparb_risk_rejections_total{reason="max_leverage"} 0.0' in text
        assert "perparb_kill_switch_engaged 1.0" in text
        r = c.post("/api/paper/resume", headers={"Authorization": "Bearer s3cret"})
        assert r.status_code == 200 and not r.json()["killed"]
        assert "perparb_kill_switch_engaged 0.0" in c.get("/metrics").text
    with TestClient(create_app(ApiContext(m.engine, ApiSettings(token="s3cret")))) as c:
        assert c.post("/api/paper/kill", headers={"Authorization": "Bearer s3cret"}).status_code == 409


class _Recorder(BaseHTTPRequestHandler):
    seen: list[tuple[str, str, dict[str, object]]] = []

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])) or b"{}")
        self.seen.append((self.path, self.headers.get("Authorization", ""), body))
        out = json.dumps({"killed": self.path.endswith("kill")}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(out)))
        self.end_headers()
        self.wfile.write(out)

    def log_message(self, *args: object) -> None:
        pass


def test_cli_kill_and_resume_post_to_the_running_api_with_the_token() -> None:
    server = HTTPServer(("127.0.0.1", 0), _Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}"
    try:
        r = subprocess.run([PERPARB, "kill", "--flatten", "--url", url, "--token", "tk"], capture_output=True,
                           text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout) == {"killed": True}
        r = subprocess.run([PERPARB, "resume", "--url", url], capture_output=True, text=True, timeout=60,
                           env={"PATH": "/usr/bin:/bin", "PERPARB_API__TOKEN": "from-env"})
        assert r.returncode == 0, r.stderr
    finally:
        server.shutdown()
    assert _Recorder.seen == [("/api/paper/kill", "Bearer tk", {"reason": "manual", "flatten": True}),
                              ("/api/paper/resume", "Bearer from-env", {})]


def test_cli_kill_without_a_server_or_token_says_so() -> None:
    r = subprocess.run([PERPARB, "kill", "--url", "http://127.0.0.1:9", "--token", "x"], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 1 and "cannot reach" in r.stderr
    r = subprocess.run([PERPARB, "kill"], capture_output=True, text=True, timeout=60, env={"PATH": "/usr/bin:/bin"})
    assert r.returncode == 2 and "no token" in r.stderr
