"""Normalized history in Parquet: what the engine saw, as tables SQL can read.

``DIR/<table>/date=YYYY-MM-DD/venue=<id>/part-NNNNNN.parquet`` (``opportunities`` by date
only: an opportunity has two venues). ``date`` is the UTC day of ``ts_ns``, the engine's
receive time. Tables: ``quotes``, ``books`` (top ``depth`` levels of every synced book, one
row per level, every ``interval_s`` of engine time), ``trades``, ``funding``,
``opportunities`` (every lifecycle event) and ``fills`` (paper trading).

Rows are gathered in lists on the engine's thread; turning them into Parquet files happens
when a partition fills up or at the end, on a writer thread when ``threaded`` (live
sessions: the feeds never wait for the disk), inline otherwise (replay and export, where the
same capture gives the same files).
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from perparb.feeds.booksync import SYNCED
from perparb.model import Funding, Quote, Trade

if TYPE_CHECKING:
    from perparb.bus.messages import Fill
    from perparb.engine import Engine
    from perparb.model import Opportunity

I64, F64, STR = pa.int64(), pa.float64(), pa.string()
SCHEMAS: dict[str, pa.Schema] = {
    "quotes": pa.schema([("ts_ns", I64), ("exchange_ts_ns", I64), ("symbol", STR), ("asset", STR),
                         ("venue_symbol", STR), ("bid_px", F64), ("bid_qty", F64), ("ask_px", F64),
                         ("ask_qty", F64)]),
    "books": pa.schema([("ts_ns", I64), ("symbol", STR), ("asset", STR), ("side", STR), ("level", I64),
                        ("px", F64), ("qty", F64)]),
    "trades": pa.schema([("ts_ns", I64), ("exchange_ts_ns", I64), ("symbol", STR), ("asset", STR),
                         ("px", F64), ("qty", F64), ("side", STR), ("trade_id", STR)]),
    "funding": pa.schema([("ts_ns", I64), ("exchange_ts_ns", I64), ("symbol", STR), ("asset", STR),
                          ("rate", F64), ("predicted_rate", F64), ("interval_h", F64), ("next_funding_ns", I64),
                          ("mark_px", F64), ("index_px", F64)]),
    "opportunities": pa.schema([("ts_ns", I64), ("event", STR), ("id", STR), ("kind", STR), ("asset", STR),
                                ("first_seen_ns", I64), ("buy_venue", STR), ("sell_venue", STR),
                                ("buy_symbol", STR), ("sell_symbol", STR), ("buy_px", F64), ("sell_px", F64),
                                ("size_base", F64), ("notional_quote", F64), ("gross_bps", F64),
                                ("edge_bps", F64), ("apr", F64), ("close_reason", STR)]),
    "fills": pa.schema([("ts_ns", I64), ("id", STR), ("symbol", STR), ("side", STR), ("qty", F64),
                        ("px", F64), ("fee", F64), ("liquidity", STR), ("order_id", STR), ("intent_id", STR)]),
}
log = logging.getLogger("perparb.parquet")
BY_VENUE = {"quotes", "books", "trades", "funding", "fills"}


def _date(ts_ns: int) -> str:
    return time.strftime("%Y-%m-%d", time.gmtime(ts_ns // 1_000_000_000))


class ParquetSink:
    def __init__(self, directory: Path, depth: int = 5, interval_s: float = 1.0, threaded: bool = False,
                 rows_per_file: int = 200_000) -> None:
        self.directory = directory
        self.depth = depth
        self.interval_ns = int(interval_s * 1e9)
        self.rows_per_file = rows_per_file
        self.engine: Engine | None = None
        self._next_books_ns = 0
        self._parts: dict[tuple[str, str], int] = defaultdict(int)
        self._rows: dict[tuple[str, str, str], list[tuple[Any, ...]]] = defaultdict(list)
        self.rows = 0
        self.files = 0
        self.errors = 0
        self._ticked_at = time.monotonic()
        self._queue: queue.Queue[tuple[Path, pa.Table] | None] | None = None
        self._thread: threading.Thread | None = None
        if threaded:
            self._queue = queue.Queue(maxsize=64)
            self._thread = threading.Thread(target=self._drain, name="parquet-writer", daemon=True)
            self._thread.start()

    def attach(self, engine: Engine) -> None:
        """See every event the engine handles, after the engine: the wrapper is set on this
        engine instance only, so engines without a sink pay nothing."""
        self.engine = engine
        handle = engine.on_event

        def on_event(ev: object) -> None:
            handle(ev)
            self.on_event(ev)

        engine.on_event = on_event  # type: ignore[method-assign]
        engine.scanner.listeners.append(self.on_opportunity)

    def _add(self, table: str, ts_ns: int, venue: str, row: tuple[Any, ...]) -> None:
        key = (table, _date(ts_ns), venue)
        rows = self._rows[key]
        rows.append(row)
        self.rows += 1
        if len(rows) >= self.rows_per_file:
            self._flush(key)

    def _asset(self, venue: str, venue_symbol: str) -> str:
        assert self.engine is not None
        inst = self.engine.adapters[venue].table.get(venue_symbol)
        return inst.asset if inst is not None else ""

    def on_event(self, ev: object) -> None:
        t = type(ev)
        if t is Quote:
            q: Quote = ev  # type: ignore[assignment]
            self._add("quotes", q.recv_ns, q.venue, (q.recv_ns, q.ts_exchange_ns, q.symbol,
                      self._asset(q.venue, q.venue_symbol), q.venue_symbol, q.bid_px, q.bid_qty, q.ask_px, q.ask_qty))
        elif t is Trade:
            tr: Trade = ev  # type: ignore[assignment]
            self._add("trades", tr.recv_ns, tr.venue, (tr.recv_ns, tr.ts_exchange_ns, tr.symbol,
                      self._asset(tr.venue, tr.venue_symbol), tr.px, tr.qty, tr.side, tr.trade_id))
        elif t is Funding:
            f: Funding = ev  # type: ignore[assignment]
            self._add("funding", f.recv_ns, f.venue, (f.recv_ns, f.ts_exchange_ns, f.symbol,
                      self._asset(f.venue, f.venue_symbol), f.rate, f.predicted_rate, f.interval_h,
                      f.next_funding_ns, f.mark_px, f.index_px))
        now = getattr(ev, "recv_ns", 0)
        if self.depth > 0 and now >= self._next_books_ns:
            if self._next_books_ns:
                self.sample_books(now)
            self._next_books_ns = now + self.interval_ns

    def sample_books(self, ts_ns: int) -> None:
        """The top ``depth`` levels of every synced book, as of engine time ``ts_ns``."""
        assert self.engine is not None
        for (venue, vsym), sb in sorted(self.engine.books.items()):
            if sb.state != SYNCED:
                continue
            inst = self.engine.adapters[venue].table.get(vsym)
            if inst is None:
                continue
            for side, levels in (("bid", sb.book.bids.top(self.depth)), ("ask", sb.book.asks.top(self.depth))):
                for i, (px, qty) in enumerate(levels):
                    self._add("books", ts_ns, venue, (ts_ns, inst.symbol, inst.asset, side, i, px, qty))

    def on_opportunity(self, event: str, o: Opportunity) -> None:
        self._add("opportunities", o.ts_ns, "", (
            o.ts_ns, event, o.id, o.kind, o.asset, o.first_seen_ns, o.buy_venue, o.sell_venue, o.buy_symbol,
            o.sell_symbol, o.buy_px, o.sell_px, o.size_base, o.notional_quote, o.gross_bps, o.edge_bps,
            o.apr if o.kind == "funding" else None, o.close_reason if event == "close" else None))

    def on_fill(self, f: Fill) -> None:
        self._add("fills", f.ts_ns, f.venue, (f.ts_ns, f.id, f.symbol, f.side, f.qty, f.px, f.fee, f.liquidity,
                                              f.order_id, f.intent_id))

    def _flush(self, key: tuple[str, str, str]) -> None:
        rows = self._rows.pop(key, None)
        if not rows:
            return
        table, date, venue = key
        schema = SCHEMAS[table]
        cols = list(zip(*rows, strict=True))
        data = pa.Table.from_arrays([pa.array(c, type=f.type) for c, f in zip(cols, schema, strict=True)],
                                    schema=schema)
        part = self.directory / table / f"date={date}"
        if table in BY_VENUE:
            part = part / f"venue={venue}"
        n = self._parts[(table, str(part))]
        self._parts[(table, str(part))] = n + 1
        path = part / f"part-{n:06d}.parquet"
        self.files += 1
        if self._queue is not None:
            self._queue.put((path, data))
        else:
            self._write(path, data)

    def _write(self, path: Path, data: pa.Table) -> None:
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            pq.write_table(data, path, compression="zstd")
        except OSError as exc:  # a full disk costs this file, not the session
            self.errors += 1
            log.warning("cannot write %s: %s", path, exc)

    def _drain(self) -> None:
        assert self._queue is not None
        while (item := self._queue.get()) is not None:
            self._write(*item)

    def tick(self, every_s: float = 300.0) -> None:
        """On a live session's timer: partitions that never fill up (funding, fills) still
        reach the disk every ``every_s``, as files of their own."""
        now = time.monotonic()
        if now - self._ticked_at >= every_s:
            self._ticked_at = now
            for key in sorted(self._rows):
                self._flush(key)

    def close(self) -> None:
        for key in sorted(self._rows):
            self._flush(key)
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
