"""The feed runtime: backoff with jitter, and the silence watchdog reconnecting."""

from __future__ import annotations

import asyncio
import random
import time

from perparb.app import Session
from perparb.config import load_settings
from perparb.feeds.runtime import Backoff
from perparb.instruments.snapshot import load_registry
from perparb.sim.server import Simulator


def test_backoff_doubles_up_to_the_cap_with_equal_jitter() -> None:
    b = Backoff(base=0.5, cap=4.0, rng=random.Random(1))
    delays = [b.next() for _ in range(6)]
    for n, d in enumerate(delays):
        full = min(4.0, 0.5 * 2**n)
        assert full / 2 <= d <= full  # "equal jitter": half fixed, half random
    b.reset()
    assert 0.25 <= b.next() <= 0.5


async def test_a_silent_connection_is_dropped_and_reopened() -> None:
    registry = load_registry()
    sim = Simulator(registry, ["okx"], ["BTC"], seed=2, tick_s=0.05)
    await sim.start()
    session = Session(load_settings(None, {"venues": ["okx"], "assets": "BTC"}, env={}), sim.endpoints(), registry)
    session.engine.adapters["okx"].silence_s = 0.6  # the watchdog, shortened for the test
    session.engine.adapters["okx"].heartbeat_s = 10.0  # no pongs to keep the line busy
    await session.start()
    st = session.engine.status["okx"]
    try:
        deadline = time.monotonic() + 10
        while st.messages < 20:
            assert time.monotonic() < deadline
            await asyncio.sleep(0.05)
        sim.pause()  # the venue goes quiet without closing the socket
        deadline = time.monotonic() + 10
        while st.reconnects < 1:
            assert time.monotonic() < deadline, "the watchdog never fired"
            await asyncio.sleep(0.05)
        sim.resume()
        before = st.messages
        deadline = time.monotonic() + 10
        while not (st.connected and st.messages > before + 10):
            assert time.monotonic() < deadline, "no traffic after the reconnect"
            await asyncio.sleep(0.05)
    finally:
        await session.stop()
        await sim.stop()


async def test_a_failed_book_snapshot_is_retried_until_it_comes() -> None:
    registry = load_registry()
    sim = Simulator(registry, ["binance"], ["BTC"], seed=4, tick_s=0.05)
    await sim.start()
    sv = sim.venues["binance"]
    real = sv.venue.sim_rest_book
    refusals = [3]

    def flaky(path: str) -> str | None:  # the venue answers 404 three times first
        if real(path) is not None and refusals[0] > 0:
            refusals[0] -= 1
            return None
        return real(path)

    sv.venue.sim_rest_book = flaky  # type: ignore[method-assign]
    session = Session(load_settings(None, {"venues": ["binance"], "assets": "BTC"}, env={}), sim.endpoints(),
                      registry)
    await session.start()
    try:
        deadline = time.monotonic() + 20
        while not any(sb.state == "synced" for sb in session.engine.books.values()):
            assert time.monotonic() < deadline, "the book never synced"
            await asyncio.sleep(0.1)
        assert refusals[0] == 0
    finally:
        await session.stop()
        await sim.stop()
