"""The feeds against the simulator over real websockets: sync, reconnect, resync."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable

import pytest

from perparb.app import Session
from perparb.config import load_settings
from perparb.feeds.booksync import SYNCED
from perparb.instruments.snapshot import load_registry
from perparb.sim.server import Simulator

VENUES = ["binance", "okx", "bybit"]
ASSETS = ["BTC", "ETH"]


async def wait_for(cond: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


@pytest.fixture
async def running() -> AsyncIterator[tuple[Simulator, Session]]:
    registry = load_registry()
    sim = Simulator(registry, VENUES, ASSETS, seed=3, tick_s=0.05)
    await sim.start()
    settings = load_settings(None, {"venues": VENUES, "assets": ",".join(ASSETS)}, env={})
    session = Session(settings, sim.endpoints(), registry)
    await session.start()
    try:
        yield sim, session
    finally:
        await session.stop()
        await sim.stop()


def all_synced(session: Session, venue: str | None = None) -> bool:
    books = [sb for (v, _), sb in session.engine.books.items() if venue in (None, v)]
    return len(books) == (len(ASSETS) * (1 if venue else len(VENUES))) and all(sb.state == SYNCED for sb in books)


def assert_books_match(sim: Simulator, session: Session) -> None:
    """Every engine book equals the simulator's book, converted to canonical units."""
    for venue, sv in sim.venues.items():
        for sym, simbook in sv.books.items():
            inst = simbook.inst
            sb = session.engine.books[(venue, sym)]
            assert sb.state == SYNCED, (venue, sym, sb.state)
            bids, asks = simbook.levels()
            want_bids = [(inst.px(p), inst.qty(q, p)) for p, q in bids]
            want_asks = [(inst.px(p), inst.qty(q, p)) for p, q in asks]
            got_bids, got_asks = sb.book.bids.top(1000), sb.book.asks.top(1000)
            assert len(got_bids) == len(want_bids) and len(got_asks) == len(want_asks), (venue, sym)
            for (gp, gq), (wp, wq) in zip(got_bids + got_asks, want_bids + want_asks, strict=True):
                assert gp == pytest.approx(wp, rel=1e-12), (venue, sym)
                assert gq == pytest.approx(wq, rel=1e-9), (venue, sym)


async def quiesce(sim: Simulator, session: Session) -> None:
    sim.pause()
    await asyncio.sleep(0.5)  # let messages in flight arrive


async def test_all_venues_stream_and_books_equal_the_venue(running: tuple[Simulator, Session]) -> None:
    sim, session = running
    await wait_for(lambda: all_synced(session), what="all books synced")
    await wait_for(lambda: all(st.messages > 50 for st in session.engine.status.values()), what="traffic")
    await wait_for(lambda: {v for v, _ in session.engine.funding} == set(VENUES), what="funding from every venue")
    await quiesce(sim, session)
    assert_books_match(sim, session)
    for st in session.engine.status.values():
        assert st.connected and st.decode_errors == 0 and st.unknown_symbols == 0
    # Funding carries each contract's interval and a future settlement time.
    for f in session.engine.funding.values():
        assert f.interval_h > 0 and f.next_funding_ns > f.ts_exchange_ns


async def test_reconnects_after_the_venue_drops_the_connection(running: tuple[Simulator, Session]) -> None:
    sim, session = running
    await wait_for(lambda: all_synced(session), what="all books synced")
    before = session.engine.status["okx"].messages
    await sim.venues["okx"].drop()
    await wait_for(lambda: session.engine.status["okx"].reconnects >= 1, what="okx disconnect noticed")
    await wait_for(lambda: session.engine.status["okx"].connected and all_synced(session, "okx"),
                   what="okx reconnected and resynced")
    await wait_for(lambda: session.engine.status["okx"].messages > before + 20, what="okx traffic after reconnect")
    await quiesce(sim, session)
    assert_books_match(sim, session)


@pytest.mark.parametrize("venue", VENUES)
async def test_sequence_gap_marks_the_book_invalid_and_resyncs(running: tuple[Simulator, Session],
                                                               venue: str) -> None:
    sim, session = running
    await wait_for(lambda: all_synced(session), what="all books synced")
    sym = next(iter(sim.venues[venue].books))
    sb = session.engine.books[(venue, sym)]
    assert sb.gaps == 0
    sim.venues[venue].gap(sym)
    await wait_for(lambda: sb.gaps == 1, what="gap detected")
    assert sb.resyncs >= 1
    await wait_for(lambda: sb.state == SYNCED, what="book resynced")
    await asyncio.sleep(0.3)
    await quiesce(sim, session)
    assert sb.gaps == 1
    assert_books_match(sim, session)
