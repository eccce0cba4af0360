"""Throughput measurements behind ``perparb bench``. Benchmarks, never timed tests."""

from __future__ import annotations

import time
from typing import Any

from perparb.feeds.booksync import SyncedBook
from perparb.model import BookDelta, BookSnapshot
from perparb.venues.base import DecodeError, Venue


def decode_throughput(adapter: Venue, lines: list[bytes], min_seconds: float = 2.0) -> dict[str, Any]:
    """Decode ``lines`` again and again until ``min_seconds`` have passed (decoder only)."""
    usable = []
    for line in lines:  # leave out lines that do not decode, so errors are not what we time
        try:
            adapter.decode(line, 0)
            usable.append(line)
        except DecodeError:
            pass
    adapter.take_problems()
    if not usable:
        raise ValueError("no line of the file decodes for this venue")
    parse = adapter.decode  # the decode path as the engine runs it, plausibility check included
    messages = events = 0
    start = time.perf_counter()
    while True:
        for line in usable:
            events += len(parse(line, 0))
        messages += len(usable)
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            break
    adapter.problems.clear()
    return {"venue": adapter.id, "messages": messages, "events": events, "seconds": round(elapsed, 4),
            "msgs_per_s": round(messages / elapsed)}


def book_throughput(adapter: Venue, lines: list[bytes], rest_snapshots: list[bytes],
                    min_seconds: float = 2.0) -> dict[str, Any]:
    """Decode book messages and apply them to validated books, repeating the recorded
    session until ``min_seconds`` have passed. REST snapshots (one per line, in the order
    of the contracts they belong to) seed rest-bridged venues."""
    events = [ev for line in lines for ev in adapter.decode(line, 0) if isinstance(ev, BookSnapshot | BookDelta)]
    snaps: list[BookSnapshot] = []
    syms = list(dict.fromkeys(ev.venue_symbol for ev in events))
    for sym, raw in zip(syms, rest_snapshots, strict=False):
        inst = adapter.table[sym]
        path = adapter.book_snapshot_path(inst) or ""
        snaps += [e for e in adapter.decode_rest(path, raw, 0) if isinstance(e, BookSnapshot)]
    updates = applied = resyncs = 0
    start = time.perf_counter()
    while True:
        books = {sym: SyncedBook(adapter.book_sync) for sym in syms}
        for s in snaps:
            books[s.venue_symbol].on_snapshot(s)
        for line in lines:
            for ev in adapter.decode(line, 0):
                sb = books.get(ev.venue_symbol)
                if sb is None:
                    continue
                if type(ev) is BookDelta:
                    ok = sb.on_delta(ev)
                    levels = len(ev.bids) + len(ev.asks)
                elif type(ev) is BookSnapshot:
                    ok = sb.on_snapshot(ev)
                    levels = len(ev.bids) + len(ev.asks)
                else:
                    continue
                updates += 1
                applied += levels
                resyncs += not ok
        elapsed = time.perf_counter() - start
        if elapsed >= min_seconds:
            break
    return {"venue": adapter.id, "book_updates": updates, "levels": applied, "resyncs": resyncs,
            "seconds": round(elapsed, 4), "updates_per_s": round(updates / elapsed),
            "levels_per_s": round(applied / elapsed)}
