"""The future_rtd tracker's paths and WebSocket message names, served as aliases of perparb's own
(same data, perparb's units). The engine is fed hand-made quotes: Binance asks 65,000 for 10 BTC
while Bybit bids 65,200 for 10, so the one spread is buy Binance, sell Bybit, 10 BTC."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from perparb.api.app import ApiContext, create_app
from perparb.api.hub import Client, Hub
from perparb.config import ApiSettings
from perparb.scanner.alerts import Alerter, AlertRule
from test_api import MS, binance_ticker, make_engine

AUTH = {"Authorization": "Bearer s3cret-token"}
GROSS_BPS = (65200 - 65000) / 65000 * 1e4


@pytest.fixture
def ctx() -> ApiContext:
    alerter = Alerter([AlertRule(min_edge_bps=1.0)], [], cooldown_s=300)
    return ApiContext(make_engine(alerter), ApiSettings(token="s3cret-token"), alerter=alerter)


@pytest.fixture
def client(ctx: ApiContext) -> Iterator[TestClient]:
    with TestClient(create_app(ctx)) as c:
        yield c


def _check_btc_spread(o: dict[str, Any]) -> None:
    assert o["kind"] == "spread" and o["asset"] == "BTC"
    assert (o["buy_venue"], o["sell_venue"]) == ("binance", "bybit")
    assert o["buy_px"] == 65000.0 and o["sell_px"] == 65200.0 and o["size_base"] == 10.0
    assert o["gross_bps"] == pytest.approx(GROSS_BPS)
    assert o["notional_quote"] == pytest.approx(10 * 65000.0, rel=1e-9)


def test_arbitrage_is_the_opportunity_list(client: TestClient) -> None:
    rows = client.get("/api/arbitrage").json()
    assert len(rows) == 1
    _check_btc_spread(rows[0])
    assert rows == client.get("/api/opportunities").json()
    assert client.get("/api/arbitrage", params={"asset": "ETH"}).json() == []
    assert client.get("/api/arbitrage", params={"kind": "funding"}).json() == []
    assert client.get("/api/arbitrage", params={"kind": "x"}).status_code == 422


def test_arbitrage_of_one_symbol(client: TestClient) -> None:
    [o] = client.get("/api/arbitrage/btc").json()
    _check_btc_spread(o)
    assert client.get("/api/arbitrage/ETH").json() == []


def test_alert_status_of_one_symbol(client: TestClient) -> None:
    btc = client.get("/api/arbitrage/BTC/alert-status").json()
    # The BTC spread opened at the engine's latest time, so all of the 300 s cooldown is left.
    assert btc["asset"] == "BTC" and btc["enabled"] is True and btc["cooling_down"] is True
    assert btc["cooldown_s"] == 300.0
    [cd] = btc["cooldowns"]
    assert (cd["buy_venue"], cd["sell_venue"]) == ("binance", "bybit")
    assert 299.0 < cd["seconds_left"] <= 300.0
    assert [a["asset"] for a in btc["recent"]] == ["BTC"]
    eth = client.get("/api/arbitrage/ETH/alert-status").json()
    assert eth["cooling_down"] is False and eth["cooldowns"] == [] and eth["recent"] == []


def test_alert_status_without_alerts() -> None:
    with TestClient(create_app(ApiContext(make_engine(), ApiSettings()))) as c:
        assert c.get("/api/arbitrage/BTC/alert-status").json() == {
            "asset": "BTC", "enabled": False, "cooling_down": False, "cooldowns": [], "recent": []}


def test_spread_of_two_exchanges(client: TestClient) -> None:
    s = client.get("/api/spread/BTC/binance/bybit").json()
    assert s["a_to_b"]["top_gross_bps"] == pytest.approx(GROSS_BPS)
    assert s["a_to_b"]["executable"]["buy_px"] == 65000.0
    assert s["b_to_a"]["executable"] is None


def test_reload_config_needs_the_token_and_reloads(ctx: ApiContext) -> None:
    calls: list[int] = []

    async def reload() -> dict[str, Any]:
        calls.append(1)
        return {"applied": 2, "errors": []}

    ctx.reload = reload
    with TestClient(create_app(ctx)) as c:
        assert c.post("/api/reload-config").status_code == 401
        r = c.post("/api/reload-config", headers=AUTH)
        assert r.status_code == 200 and r.json() == {"applied": 2, "errors": []}
    assert calls == [1]


def test_aliases_are_in_the_openapi_schema(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path, method in [("/api/arbitrage", "get"), ("/api/arbitrage/{symbol}", "get"),
                         ("/api/arbitrage/{symbol}/alert-status", "get"), ("/api/reload-config", "post"),
                         ("/api/spread/{asset}/{venue_a}/{venue_b}", "get")]:
        assert method in paths[path], path
    assert "seed-compatible" in paths["/api/arbitrage"]["get"]["tags"]


def test_websocket_initial_prices_after_the_snapshot(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        assert ws.receive_json()["type"] == "snapshot"
        ws.send_json({"type": "subscribe", "types": ["initial_prices", "price_update", "arbitrage_opportunities",
                                                     "market_summary"]})
        assert ws.receive_json()["type"] == "snapshot"
        init = ws.receive_json()
        assert init["type"] == "initial_prices" and set(init["data"]) == {"BTC", "ETH"}
        btc = {r["venue"]: r for r in init["data"]["BTC"]}
        assert btc["binance"]["ask_px"] == 65000.0 and btc["bybit"]["bid_px"] == 65200.0
        ws.send_json({"type": "subscribe", "types": ["arbitrage_nonsense"]})
        assert ws.receive_json()["type"] == "error"


class FakeWs:
    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []

    async def send_text(self, text: str) -> None:
        self.frames.append(json.loads(text))


def _messages(frames: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for f in frames:
        out += f["messages"] if f["type"] == "batch" else [f]
    return out


async def _drain(hub: Hub, c: Client) -> list[dict[str, Any]]:
    sender = asyncio.create_task(hub._sender(c))
    for _ in range(20):
        await asyncio.sleep(0)
    sender.cancel()
    return _messages(c.ws.frames)  # type: ignore[attr-defined]


async def test_websocket_updates_under_the_seed_names() -> None:
    engine = make_engine()
    hub = Hub(engine)
    seed, own = Client(FakeWs()), Client(FakeWs())  # type: ignore[arg-type]
    assert Hub._subscribe(seed, {"type": "subscribe", "types": ["price_update", "arbitrage_opportunities",
                                                                "market_summary"]}) is None
    hub.clients |= {seed, own}
    now = engine.now_ns
    # Binance now asks 64,900: the BTC spread widens (an update) and BTC prices change.
    engine.on_message("binance", binance_ticker("BTCUSDT", "64890", "64900", now // MS), now + 10)
    hub.publish()
    seen = await _drain(hub, seed)
    types = {m["type"] for m in seen}
    assert types == {"price_update", "arbitrage_opportunities", "market_summary"}
    [opps] = [m for m in seen if m["type"] == "arbitrage_opportunities"]
    [ev] = opps["events"]
    assert ev["id"] == "spread:BTC:binance:bybit" and ev["buy_px"] == 64900.0 and ev["sell_px"] == 65200.0
    assert ev["gross_bps"] == pytest.approx((65200 - 64900) / 64900 * 1e4)
    [summary] = [m for m in seen if m["type"] == "market_summary"]
    assert summary["data"]["open_opportunities"]["spread"] == 1
    [prices] = [m for m in seen if m["type"] == "price_update" and m["asset"] == "BTC"]
    assert {r["venue"]: r["ask_px"] for r in prices["data"]}["binance"] == 64900.0
    # A client that did not ask for the seed names keeps perparb's own.
    theirs = {m["type"] for m in await _drain(hub, own)}
    assert {"opportunities", "summary", "price_update"} <= theirs
    assert not theirs & {"arbitrage_opportunities", "market_summary"}
