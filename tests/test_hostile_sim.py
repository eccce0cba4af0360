"""Garbage inside a live simulator session: a NaN book level and a NaN funding rate sent
by a venue over its real websocket change nothing but a counter and a resync, and an
exception around one message never ends a feed."""

from __future__ import annotations

import asyncio
import json
import math
import time

import msgspec

from perparb.api.state import venues as venue_rows
from perparb.feeds.booksync import SYNCED
from perparb.model import Opportunity
from test_sim_integration import Running, wait_for


def finite_numbers(obj: object) -> bool:
    """Every number in a JSON-able structure is finite (JSON has no NaN; msgspec writes null)."""
    if isinstance(obj, float):
        return math.isfinite(obj)
    if isinstance(obj, dict):
        return all(finite_numbers(v) for v in obj.values())
    if isinstance(obj, list | tuple):
        return all(finite_numbers(v) for v in obj)
    return True


async def test_nan_level_and_nan_funding_from_a_live_venue() -> None:
    async with Running(["binance", "bybit"]) as r:
        engine = r.session.engine
        published: list[tuple[str, Opportunity]] = []
        engine.scanner.listeners.append(lambda event, o: published.append((event, o)))
        await wait_for(r.synced, what="books synced")
        await wait_for(lambda: len(engine.funding) >= 4, what="funding from both venues")
        sv = r.sim.venues["binance"]
        sym = "BTCUSDT"
        book, inst = sv.books[sym], sv.books[sym].inst
        sb = engine.books[("binance", sym)]
        others = {k: b.resyncs for k, b in engine.books.items() if k != ("binance", sym)}
        now_ms = int(time.time() * 1000)
        nan_delta = sv.venue.sim_book(inst, False, [(math.nan, 1.0)], [], book.seq + 1, book.seq, book.seq + 1,
                                      now_ms)
        nan_funding = sv.venue.sim_funding(inst, math.nan, now_ms + 3_600_000, 65000.0, 65000.0, now_ms)
        assert '"NaN"' in nan_delta and '"r":"nan"' in nan_funding  # what a venue sending garbage sends
        st = engine.status["binance"]
        reconnects = st.reconnects
        assert await sv.inject(("book", sym), nan_delta) == 1
        assert await sv.inject(("funding", sym), nan_funding) == 1
        await wait_for(lambda: st.errors_by_reason.get("bad_funding_rate") == 1, what="NaN funding counted")
        assert st.errors_by_reason == {"bad_price": 1, "bad_funding_rate": 1}
        assert st.decode_errors == 2
        # The book was marked for resync, fetched its REST snapshot again and is back in sync.
        assert sb.resyncs == 1
        await wait_for(lambda: sb.state == SYNCED, what="book resynced")
        # Nothing else moved: no other book resynced, no reconnect, the funding kept is finite.
        assert {k: b.resyncs for k, b in engine.books.items() if k != ("binance", sym)} == others
        assert st.reconnects == reconnects and st.connected
        assert all(math.isfinite(f.rate) for f in engine.funding.values())
        await asyncio.sleep(0.3)
        await r.quiesce()
        r.assert_books_match()
        # No NaN anywhere in what is published: opportunity events, open opportunities, venue rows.
        assert all(finite_numbers(msgspec.to_builtins(o)) for _, o in published)
        assert all(finite_numbers(msgspec.to_builtins(o)) for o in engine.scanner.lifecycle.active.values())
        rows = json.loads(msgspec.json.encode(venue_rows(engine)))
        [row] = [v for v in rows if v["venue"] == "binance"]
        assert row["decode_errors_by_reason"] == {"bad_price": 1, "bad_funding_rate": 1}


async def test_an_exception_around_one_message_does_not_end_the_feed() -> None:
    async with Running(["okx"]) as r:
        engine = r.session.engine
        st = engine.status["okx"]
        await wait_for(lambda: st.messages > 10, what="traffic")
        real = engine.on_message
        calls = 0

        def flaky(venue: str, raw: str | bytes, recv_ns: int) -> None:
            nonlocal calls
            calls += 1
            if calls == 3:
                raise RuntimeError("capture disk full")
            real(venue, raw, recv_ns)

        engine.on_message = flaky  # type: ignore[method-assign]
        await wait_for(lambda: calls > 3, what="the failing message")
        before = st.messages
        await wait_for(lambda: st.messages > before + 10, what="traffic after the failure")
        assert st.errors_by_reason == {"error": 1} and "RuntimeError: capture disk full" in st.last_error
        assert st.connected and st.reconnects == 0
