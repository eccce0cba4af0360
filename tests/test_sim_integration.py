"""Every venue against the simulator over real websockets: sync, reconnect, resync.

Each venue runs alone against its simulated twin (so a test names the venue it covers),
and all venues run together once, as the demo does.
"""

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
from perparb.venues import venue_ids

ASSETS = ["BTC", "ETH"]


async def wait_for(cond: Callable[[], bool], timeout: float = 15.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


class Running:
    def __init__(self, venues: list[str]) -> None:
        self.venues = venues
        registry = load_registry()
        self.sim = Simulator(registry, venues, ASSETS, seed=3, tick_s=0.05)
        settings = load_settings(None, {"venues": venues, "assets": ",".join(ASSETS)}, env={})
        self.registry = registry
        self.settings = settings
        self.session: Session

    async def __aenter__(self) -> Running:
        await self.sim.start()
        self.session = Session(self.settings, self.sim.endpoints(), self.registry)
        await self.session.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.session.stop()
        await self.sim.stop()

    def books(self, venue: str | None = None) -> list:
        return [sb for (v, _), sb in self.session.engine.books.items() if venue in (None, v)]

    def synced(self, venue: str | None = None) -> bool:
        want = sum(len(self.sim.venues[v].books) for v in self.venues if venue in (None, v))
        books = self.books(venue)
        return want > 0 and len(books) == want and all(sb.state == SYNCED for sb in books)

    async def quiesce(self) -> None:
        self.sim.pause()
        await asyncio.sleep(0.5)  # let messages in flight arrive

    def assert_books_match(self) -> None:
        """Every engine book equals the simulator's book, converted to canonical units."""
        for venue, sv in self.sim.venues.items():
            for sym, simbook in sv.books.items():
                inst = simbook.inst
                sb = self.session.engine.books[(venue, sym)]
                assert sb.state == SYNCED, (venue, sym, sb.state)
                bids, asks = simbook.levels()
                want = [(inst.px(p), inst.qty(q, p)) for p, q in bids + asks]
                got = sb.book.bids.top(10_000) + sb.book.asks.top(10_000)
                assert len(got) == len(want), (venue, sym, len(got), len(want))
                for (gp, gq), (wp, wq) in zip(got, want, strict=True):
                    assert gp == pytest.approx(wp, rel=1e-12), (venue, sym)
                    assert gq == pytest.approx(wq, rel=1e-9), (venue, sym)


@pytest.fixture(params=venue_ids())
async def one(request: pytest.FixtureRequest) -> AsyncIterator[Running]:
    async with Running([request.param]) as r:
        yield r


async def test_streams_books_and_funding_equal_the_venue(one: Running) -> None:
    venue = one.venues[0]
    st = one.session.engine.status[venue]
    await wait_for(one.synced, what=f"{venue} books synced")
    await wait_for(lambda: st.messages > 50, what=f"{venue} traffic")
    await wait_for(lambda: any(v == venue for v, _ in one.session.engine.funding), what=f"{venue} funding")
    await one.quiesce()
    one.assert_books_match()
    assert st.connected and st.decode_errors == 0 and st.unknown_symbols == 0, st
    # Nothing was lost, so no book may ever have been out of sync (no false gaps, crossings).
    assert [(sb.resyncs, sb.gaps, sb.crossed, sb.checksum_failures) for sb in one.books()] == [(0, 0, 0, 0)] * len(
        one.books())
    for f in one.session.engine.funding.values():
        assert f.interval_h > 0 and f.next_funding_ns > f.ts_exchange_ns


async def test_reconnects_after_the_venue_drops_the_connection(one: Running) -> None:
    venue = one.venues[0]
    st = one.session.engine.status[venue]
    await wait_for(one.synced, what="books synced")
    before = st.messages
    await one.sim.venues[venue].drop()
    await wait_for(lambda: st.reconnects >= 1, what="disconnect noticed")
    await wait_for(lambda: st.connected and one.synced(), what="reconnected and resynced")
    await wait_for(lambda: st.messages > before + 20, what="traffic after reconnect")
    await one.quiesce()
    one.assert_books_match()


async def test_sequence_gap_marks_the_book_invalid_and_resyncs(one: Running) -> None:
    venue = one.venues[0]
    await wait_for(one.synced, what="books synced")
    sym = next(iter(one.sim.venues[venue].books))
    sb = one.session.engine.books[(venue, sym)]
    if not one.sim.venues[venue].venue.sim_has_sequence:
        pytest.skip(f"{venue} books carry no sequence numbers (full snapshots or keyed levels)")
    assert sb.gaps == 0
    one.sim.venues[venue].gap(sym)
    await wait_for(lambda: sb.gaps == 1, what="gap detected")
    assert sb.resyncs >= 1
    await wait_for(lambda: sb.state == SYNCED, what="book resynced")
    await asyncio.sleep(0.3)
    await one.quiesce()
    assert sb.gaps == 1
    one.assert_books_match()


async def test_all_venues_together_find_cross_venue_opportunities() -> None:
    async with Running(venue_ids()) as r:
        await wait_for(r.synced, timeout=30, what="every venue synced")
        opened = r.session.engine.scanner.opened
        r.session.engine.scanner.min_edge_bps = -1000.0  # every crossing pair, whatever the fees
        await wait_for(lambda: r.session.engine.scanner.opened > opened, what="an opportunity")
        for o in r.session.engine.scanner.lifecycle.active.values():
            assert o.buy_venue != o.sell_venue and o.size_base > 0
        assert all(sb.resyncs == 0 for sb in r.books()), {k: sb.resyncs for k, sb in r.session.engine.books.items()}
