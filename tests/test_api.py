"""The REST API, WebSocket stream and metrics over an engine fed with hand-made messages."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import pytest
import websockets
from fastapi.testclient import TestClient

from perparb.api.app import ApiContext, create_app
from perparb.api.hub import Client, Hub
from perparb.app import Session
from perparb.config import ApiSettings, load_settings
from perparb.engine import Engine
from perparb.instruments.snapshot import load_registry
from perparb.scanner.alerts import Alerter, AlertRule
from perparb.scanner.core import Scanner, ScanSettings
from perparb.sim.server import Simulator

MS = 1_000_000


def binance_ticker(sym: str, bid: str, ask: str, t_ms: int) -> str:
    return json.dumps({"stream": f"{sym.lower()}@bookTicker", "data": {
        "e": "bookTicker", "u": 1, "s": sym, "b": bid, "B": "10", "a": ask, "A": "10", "T": t_ms, "E": t_ms}})


def bybit_top(sym: str, bid: str, ask: str, t_ms: int) -> str:
    return json.dumps({"topic": f"orderbook.1.{sym}", "type": "snapshot", "ts": t_ms, "data": {
        "s": sym, "b": [[bid, "10"]], "a": [[ask, "10"]], "u": 1, "seq": 1}})


def mark(sym: str, rate: str, t_ms: int) -> str:
    return json.dumps({"stream": f"{sym.lower()}@markPrice@1s", "data": {
        "e": "markPriceUpdate", "E": t_ms, "s": sym, "p": "100", "i": "100", "r": rate, "T": t_ms + 3_600_000}})


def make_engine(alerter: Alerter | None = None) -> Engine:
    now_ms = int(time.time() * 1000)
    engine = Engine(load_registry(), ["binance", "bybit"], Scanner(ScanSettings(min_edge_bps=1.0)))
    if alerter:
        engine.scanner.listeners.append(alerter)
    for v in ("binance", "bybit"):
        engine.set_connected(v, True, now_ms * MS)
    # BTC: Bybit bids 65,200 while Binance asks 65,000 -> a spread opportunity Binance -> Bybit.
    engine.on_message("binance", binance_ticker("BTCUSDT", "64990", "65000", now_ms), now_ms * MS)
    engine.on_message("bybit", bybit_top("BTCUSDT", "65200", "65210", now_ms), now_ms * MS + 1)
    # ETH: no gap.
    engine.on_message("binance", binance_ticker("ETHUSDT", "3000", "3000.5", now_ms), now_ms * MS + 2)
    engine.on_message("bybit", bybit_top("ETHUSDT", "2999.5", "3000.2", now_ms), now_ms * MS + 3)
    engine.on_message("binance", mark("BTCUSDT", "0.0001", now_ms), now_ms * MS + 4)
    return engine


@pytest.fixture
def client() -> Iterator[TestClient]:
    alerter = Alerter([AlertRule(min_edge_bps=1.0)], [], cooldown_s=300)
    engine = make_engine(alerter)
    ctx = ApiContext(engine, ApiSettings(token="s3cret-token"), alerter=alerter)
    with TestClient(create_app(ctx)) as c:
        yield c


def test_health_reports_components_and_fails_without_venues(client: TestClient) -> None:
    r = client.get("/health")
    assert r.status_code == 200 and r.json()["venues_connected"] == 2
    engine = Engine(load_registry(), ["binance"])
    with TestClient(create_app(ApiContext(engine, ApiSettings()))) as c:
        r = c.get("/health")
        assert r.status_code == 503 and r.json()["status"] == "unavailable"


def test_venues(client: TestClient) -> None:
    rows = {r["venue"]: r for r in client.get("/api/venues").json()}
    assert set(rows) == {"binance", "bybit"}
    assert rows["binance"]["messages"] == 3 and rows["bybit"]["messages"] == 2
    assert rows["binance"]["connected"] is True
    for key in ("messages_per_s", "last_message_age_ms", "reconnects", "books", "book_resyncs", "book_gaps",
                "checksum_failures"):
        assert key in rows["binance"]


def test_instruments_filter(client: TestClient) -> None:
    rows = client.get("/api/instruments", params={"asset": "btc", "venue": "binance"}).json()
    assert {r["venue_symbol"] for r in rows} >= {"BTCUSDT"}
    assert all(r["asset"] == "BTC" and r["venue"] == "binance" for r in rows)


def test_prices_and_best_prices(client: TestClient) -> None:
    all_prices = client.get("/api/prices").json()
    assert set(all_prices) == {"BTC", "ETH"}
    btc = {r["venue"]: r for r in client.get("/api/prices/BTC").json()}
    assert btc["binance"]["ask_px"] == 65000.0 and btc["bybit"]["bid_px"] == 65200.0
    best = client.get("/api/best-prices/btc").json()
    assert best["best_bid"] == {"venue": "bybit", "bid_px": 65200.0, "bid_qty": 10.0}
    assert best["best_ask"] == {"venue": "binance", "ask_px": 65000.0, "ask_qty": 10.0}
    assert client.get("/api/prices/NOPE").status_code == 404


def test_opportunities_and_filters(client: TestClient) -> None:
    [o] = client.get("/api/opportunities", params={"kind": "spread"}).json()
    assert o["id"] == "spread:BTC:binance:bybit" and o["size_base"] == 10.0
    assert client.get("/api/opportunities", params={"min_edge": o["edge_bps"] + 1}).json() == []
    assert client.get("/api/opportunities", params={"min_size": 11}).json() == []
    assert client.get("/api/opportunities", params={"asset": "ETH"}).json() == []
    assert len(client.get("/api/opportunities", params={"venue": "bybit"}).json()) == 1
    assert client.get("/api/opportunities", params={"kind": "funding"}).json() == []
    assert client.get("/api/opportunities", params={"min_apr": 0}).json() == []
    assert len(client.get("/api/opportunities/BTC").json()) == 1
    rows = client.get("/api/opportunities", params={"sort": "asset", "order": "asc"}).json()
    assert [r["asset"] for r in rows] == sorted(r["asset"] for r in rows)


@pytest.mark.parametrize("params", [{"kind": "x"}, {"sort": "nope"}, {"order": "up"}, {"limit": 0},
                                    {"min_edge": "abc"}, {"min_size": -1}])
def test_bad_parameters_get_a_json_4xx(client: TestClient, params: dict) -> None:
    r = client.get("/api/opportunities", params=params)
    assert 400 <= r.status_code < 500 and "detail" in r.json()


def test_spread_both_ways(client: TestClient) -> None:
    s = client.get("/api/spread/BTC/binance/bybit").json()
    assert s["a_to_b"]["executable"]["id"] == "spread:BTC:binance:bybit"
    assert s["a_to_b"]["top_gross_bps"] == pytest.approx((65200 - 65000) / 65000 * 1e4)
    assert s["b_to_a"]["executable"] is None and s["b_to_a"]["reason"] == "no_gap"
    assert s["history"]["a_to_b"][0]["samples"] >= 1
    assert client.get("/api/spread/BTC/binance/binance").status_code == 400
    assert client.get("/api/spread/BTC/binance/okx").status_code == 404


def test_funding_matrix(client: TestClient) -> None:
    m = client.get("/api/funding").json()
    row = m["BTC"]["binance"]
    assert row["rate"] == 0.0001 and row["interval_h"] == 8.0
    assert row["apr"] == pytest.approx(0.0001 / 8 * 24 * 365)


def test_rejections_alerts_summary(client: TestClient) -> None:
    assert isinstance(client.get("/api/rejections").json(), dict)
    alerts = client.get("/api/alerts").json()
    assert alerts["enabled"] and alerts["recent"][0]["asset"] == "BTC"
    assert alerts["cooldowns"][0]["buy_venue"] == "binance"
    s = client.get("/api/summary").json()
    assert s["open_opportunities"]["spread"] == 1 and s["venues_connected"] == 2


def test_reload_needs_the_token(client: TestClient) -> None:
    assert client.post("/api/config/reload").status_code == 401
    assert client.post("/api/config/reload", headers={"Authorization": "Bearer wrong"}).status_code == 401
    r = client.post("/api/config/reload", headers={"Authorization": "Bearer s3cret-token"})
    assert r.status_code == 409  # authorized, but this app was built without a configuration
    assert "s3cret" not in r.text


def test_read_endpoints_can_require_the_token() -> None:
    engine = make_engine()
    with TestClient(create_app(ApiContext(engine, ApiSettings(token="t0k", public_read=False)))) as c:
        assert c.get("/api/venues").status_code == 401
        assert c.get("/api/venues", headers={"Authorization": "Bearer t0k"}).status_code == 200


def test_cors_is_closed_by_default_and_configurable() -> None:
    engine = make_engine()
    with TestClient(create_app(ApiContext(engine, ApiSettings()))) as c:
        r = c.get("/api/summary", headers={"Origin": "http://evil.example"})
        assert "access-control-allow-origin" not in r.headers
    with TestClient(create_app(ApiContext(engine, ApiSettings(cors_origins=["http://ok.example"])))) as c:
        r = c.get("/api/summary", headers={"Origin": "http://ok.example"})
        assert r.headers["access-control-allow-origin"] == "http://ok.example"


def test_metrics(client: TestClient) -> None:
    text = client.get("/metrics").text
    assert 'perparb_messages_total{venue="binance"} 3.0' in text
    assert 'perparb_events_total{channel="quote",venue="binance"} 2.0' in text
    assert 'perparb_opportunities_total{kind="spread"} 1.0' in text
    assert "perparb_tick_to_opportunity_seconds_bucket" in text
    assert 'perparb_alerts_total{outcome="sent"} 1.0' in text


def test_websocket_snapshot_then_typed_updates(client: TestClient) -> None:
    with client.websocket_connect("/ws") as ws:
        snap = ws.receive_json()
        assert snap["type"] == "snapshot" and snap["opportunities"][0]["asset"] == "BTC"
        assert {"venues", "prices", "funding", "summary", "alerts"} <= set(snap)
        ws.send_json({"type": "subscribe", "assets": ["ETH"], "types": ["price_update"]})
        snap2 = ws.receive_json()
        assert snap2["type"] == "snapshot" and set(snap2["prices"]) == {"ETH"} and snap2["opportunities"] == []
        ws.send_json({"type": "subscribe", "types": ["nonsense"]})
        assert ws.receive_json()["type"] == "error"


def test_hub_conflates_per_client_and_filters() -> None:
    engine = make_engine()
    hub = Hub(engine)

    class FakeWs:
        pass

    c = Client(FakeWs())  # type: ignore[arg-type]
    hub.clients.add(c)
    now = engine.now_ns
    for i in range(50):  # 50 ticks of BTC updates before the client reads anything
        engine.on_message("binance", binance_ticker("BTCUSDT", str(64990 + i), str(65000 + i), now // MS),
                          now + i)
        hub.publish()
    btc = [json.loads(m) for (kind, key), m in c.pending.items() if kind == "price_update" and key == "BTC"]
    assert len(btc) == 1 and btc[0]["asset"] == "BTC"  # one pending message per key: the latest
    assert {r["venue"]: r["ask_px"] for r in btc[0]["data"]}["binance"] == 65049.0
    assert c.dropped >= 49
    c.pending.clear()
    c.assets, c.types = {"ETH"}, {"price_update"}
    engine.on_message("binance", binance_ticker("BTCUSDT", "1", "2", now // MS), now + 100)
    hub.publish()
    assert c.pending == {}


async def test_a_stalled_client_does_not_slow_the_engine_or_other_clients() -> None:
    registry = load_registry()
    sim = Simulator(registry, ["binance", "okx"], ["BTC", "ETH"], seed=5, tick_s=0.02)
    await sim.start()
    settings = load_settings(None, {"venues": ["binance", "okx"], "assets": "BTC,ETH", "api.port": 0}, env={})
    session = Session(settings, sim.endpoints(), registry, api=True)
    await session.start()
    try:
        url = f"ws://127.0.0.1:{session.api_port}/ws"
        engine = session.engine

        async def rate(seconds: float) -> float:
            m0, t0 = sum(s.messages for s in engine.status.values()), time.monotonic()
            await asyncio.sleep(seconds)
            return (sum(s.messages for s in engine.status.values()) - m0) / (time.monotonic() - t0)

        await asyncio.sleep(1.0)
        baseline = await rate(2.0)
        # A client that never reads, with the smallest buffers: its socket backs up at once.
        stalled = await websockets.connect(url, max_queue=1, max_size=None)
        reader_got = 0

        async def reader() -> None:
            nonlocal reader_got
            async with websockets.connect(url, max_size=None) as ws:
                async for _ in ws:
                    reader_got += 1

        task = asyncio.create_task(reader())
        with_stalled = await rate(3.0)
        got_before = reader_got
        await asyncio.sleep(1.0)
        assert reader_got > got_before > 5  # the healthy client keeps receiving
        assert with_stalled > 0.8 * baseline, (baseline, with_stalled)
        assert len(session.api_context.hub.clients) == 2
        task.cancel()
        await stalled.close()
    finally:
        await session.stop()
        await sim.stop()


def test_spread_series_is_sampled_for_pairs_asked_about() -> None:
    engine = make_engine()
    ctx = ApiContext(engine, ApiSettings())
    with TestClient(create_app(ctx)) as c:
        assert c.get("/api/spread/BTC/binance/bybit").json()["series"] == []
        ctx.series.sample(engine)
        ctx.series.sample(engine)
        [p1, p2] = c.get("/api/spread/BTC/binance/bybit").json()["series"]
    assert p1["a_to_b_gross_bps"] == pytest.approx((65200 - 65000) / 65000 * 1e4)
    assert p1["b_to_a_gross_bps"] == pytest.approx((64990 - 65210) / 65210 * 1e4)
    assert p2["ts_ns"] == engine.now_ns


def test_books_state_and_counters() -> None:
    engine = make_engine()
    ms = engine.now_ns // 1_000_000
    raw = json.dumps({"stream": "btcusdt@depth@100ms", "data": {
        "e": "depthUpdate", "E": ms, "T": ms, "s": "BTCUSDT", "U": 10, "u": 12, "pu": 9,
        "b": [["64990", "1"]], "a": [["65000", "2"]]}})
    engine.on_message("binance", raw, engine.now_ns)  # buffered: no REST snapshot yet
    with TestClient(create_app(ApiContext(engine, ApiSettings()))) as c:
        [row] = c.get("/api/books", params={"venue": "binance", "asset": "btc"}).json()
    assert (row["venue_symbol"], row["state"], row["family"], row["levels"]) == ("BTCUSDT", "resyncing",
                                                                                 "rest_bridged", 0)
    assert row["resyncs"] == 0 and row["gaps"] == 0


def test_rolling_stats_per_pair(client: TestClient) -> None:
    [row] = client.get("/api/stats", params={"asset": "btc", "kind": "spread"}).json()
    assert (row["id"], row["buy_venue"], row["sell_venue"], row["open_now"]) == (
        "spread:BTC:binance:bybit", "binance", "bybit", True)
    assert row["hour"]["samples"] == 1 and row["day"]["median_open_edge_bps"] == row["hour"]["median_open_edge_bps"]
    assert client.get("/api/stats", params={"kind": "funding"}).json() == []
    assert client.get("/api/stats", params={"kind": "nope"}).status_code == 422
