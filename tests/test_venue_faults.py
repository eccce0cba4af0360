"""Venues that misbehave without dropping the connection, against the simulator: one that
freezes (socket open, heartbeats answered, no data) and one whose REST API is down when
the session starts."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest

from perparb.app import Session
from perparb.config import load_settings
from perparb.instruments.snapshot import load_registry
from perparb.sim.server import Simulator

STALE_MS = 600.0


async def wait_for(cond: Callable[[], Any], timeout: float = 20.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while True:
        done = cond()
        if inspect.isawaitable(done):
            done = await done
        if done:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_a_frozen_venue_makes_health_degraded_naming_it() -> None:
    venues = ["okx", "bybit"]
    sim = Simulator(load_registry(), venues, ["BTC"], seed=5, tick_s=0.05, funding_every_s=0.5)
    await sim.start()
    settings = load_settings(None, {"venues": venues, "assets": "BTC"}, env={},
                             sets={"api.port": "0", "scanner.max_quote_age_ms": str(STALE_MS)})
    session = Session(settings, sim.endpoints(), load_registry(), api=True)
    running = asyncio.create_task(session.run(None))  # the watch loop advances engine time, as live
    try:
        await wait_for(lambda: session.api_port, what="API up")
        url = f"http://127.0.0.1:{session.api_port}"
        async with aiohttp.ClientSession() as http:
            async def get(path: str) -> tuple[int, Any]:
                async with http.get(url + path) as r:
                    return r.status, await r.json()

            async def health_is(status: str) -> bool:
                return (await get("/health"))[1]["status"] == status

            async def streaming() -> bool:
                _, rows = await get("/api/venues")
                return all(r["data_age_ms"] is not None for r in rows) and await health_is("ok")

            await wait_for(streaming, what="both venues streaming")
            okx = session.engine.status["okx"]
            reconnects = okx.reconnects
            sim.venues["okx"].frozen = True
            await wait_for(lambda: health_is("degraded"), what="health degraded")
            code, body = await get("/health")
            assert code == 200
            assert set(body["reasons"]) == {"okx"}
            assert "no price data" in body["reasons"]["okx"]
            assert body["components"]["venues"] == {"okx": "stale", "bybit": "connected"}
            _, rows = await get("/api/venues")
            row = {r["venue"]: r for r in rows}
            assert row["okx"]["state"] == "stale" and row["okx"]["stale"] is True
            assert row["okx"]["data_age_ms"] > row["okx"]["stale_after_ms"] == STALE_MS
            assert row["bybit"]["state"] == "connected" and row["bybit"]["stale"] is False
            assert row["bybit"]["data_age_ms"] <= STALE_MS
            # The socket is still up: health saw the frozen data, not a timeout.
            assert row["okx"]["connected"] is True and okx.reconnects == reconnects
            async with http.get(url + "/metrics") as r:
                metrics = await r.text()
            assert 'perparb_venue_stale{venue="okx"} 1.0' in metrics
            assert 'perparb_venue_stale{venue="bybit"} 0.0' in metrics
            sim.venues["okx"].frozen = False
            await wait_for(lambda: health_is("ok"), what="health back to ok")
            _, rows = await get("/api/venues")
            assert {r["venue"]: r["state"] for r in rows} == {"okx": "connected", "bybit": "connected"}
    finally:
        running.cancel()
        with pytest.raises(asyncio.CancelledError):
            await running
        await sim.stop()


@pytest.mark.parametrize("assets", [["BTC", "ZZZ"], ["ZZZ"]], ids=["snapshot-knows-some", "snapshot-knows-none"])
async def test_a_venue_down_at_start_loads_its_contracts_when_it_returns(assets: list[str]) -> None:
    # ZZZ is listed by the (simulated) venue but unknown to the bundled snapshot: only the
    # venue's own metadata can make it streamable.
    assert not load_registry().select("bybit", ["ZZZ"])
    sim = Simulator(load_registry(), ["bybit"], assets, seed=5, tick_s=0.05)
    await sim.start()
    sim.venues["bybit"].rest_down = True
    settings = load_settings(None, {"venues": ["bybit"], "assets": ",".join(assets)}, env={})
    session = Session(settings, sim.endpoints(), load_registry())
    session.metadata_retry_s = (0.05, 0.2)
    st = session.engine.status["bybit"]
    try:
        await session.start()
        if "BTC" in assets:  # meanwhile what the snapshot knows streams
            await wait_for(lambda: any(k == ("bybit", "BTCUSDT") for k in session.engine.books), what="BTC book")
            assert [i.venue_symbol for i in session.feeds["bybit"].instruments] == ["BTCUSDT"]
        else:
            assert "bybit" not in session.feeds and not st.connected
        assert session.registry.get("bybit", "ZZZUSDT") is None
        assert "metadata unavailable" in st.last_error
        sim.venues["bybit"].rest_down = False
        await wait_for(lambda: session.registry.get("bybit", "ZZZUSDT") is not None, what="metadata loaded")
        listed = sim.venues["bybit"].instruments["ZZZUSDT"]
        loaded = session.registry.get("bybit", "ZZZUSDT")
        assert loaded is not None and loaded.asset == "ZZZ" and loaded.tick_size == listed.tick_size
        want = {"BTCUSDT", "ZZZUSDT"} if "BTC" in assets else {"ZZZUSDT"}
        await wait_for(lambda: "bybit" in session.feeds
                       and {i.venue_symbol for i in session.feeds["bybit"].instruments} == want,
                       what="selection refreshed")
        zzz_leg = lambda: session.engine.scanner.legs.get("ZZZ", {}).get(("bybit", "ZZZUSDT"))  # noqa: E731
        await wait_for(lambda: zzz_leg() is not None and zzz_leg().top()[0] is not None, what="ZZZ prices")
        assert st.connected and "metadata unavailable" not in st.last_error
    finally:
        await session.stop()
        await sim.stop()
