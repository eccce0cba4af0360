"""The engine: raw messages in, normalized state and opportunities out.

Transport-agnostic and single-threaded. A transport (live websockets, the simulator, a
capture replay) hands over ``(venue, raw, recv_ns)``; the engine decodes through the venue
adapter, keeps books, quotes and funding, and runs the scanner for the one asset touched.
Its clock is the largest ``recv_ns`` seen (or what the transport advances it to), never
the wall clock, so a replay gives the same answers as the live run it recorded.
Work the transport must do for it (fetch a REST snapshot, resubscribe) is queued in
``requests``.
"""

from __future__ import annotations

import heapq
import logging
from collections import Counter, deque
from collections.abc import Callable, Iterable

from msgspec.structs import replace

from perparb.feeds.booksync import INVALID, RESYNCING, SyncedBook
from perparb.instruments.registry import Registry
from perparb.model import BookDelta, BookSnapshot, Funding, Instrument, MarketEvent, Quote, Trade, VenueStatus
from perparb.scanner.core import Scanner
from perparb.validate import Limits
from perparb.venues import venue_class
from perparb.venues.base import DecodeError, Venue

log = logging.getLogger("perparb.engine")
_NEVER = 1 << 62
_INTERVALS = (1.0, 2.0, 4.0, 6.0, 8.0, 12.0, 24.0)
_CHANNEL = {Quote: "quote", BookSnapshot: "book", BookDelta: "book", Trade: "trade", Funding: "funding"}


class Request:
    """Something the transport must do for the engine: ``rest`` (GET path) or ``send`` (messages)."""

    __slots__ = ("kind", "payload", "venue")

    def __init__(self, venue: str, kind: str, payload: str | list[str]) -> None:
        self.venue, self.kind, self.payload = venue, kind, payload

    def __repr__(self) -> str:
        return f"Request({self.venue}, {self.kind}, {self.payload!r})"


class Engine:
    def __init__(self, registry: Registry, venues: Iterable[str], scanner: Scanner | None = None,
                 books: bool = True) -> None:
        self.registry = registry
        self.adapters: dict[str, Venue] = {}
        self.status: dict[str, VenueStatus] = {}
        self.requests: dict[str, deque[Request]] = {}
        self.scanner = scanner or Scanner()
        self.use_books = books
        self.books: dict[tuple[str, str], SyncedBook] = {}
        self.funding: dict[tuple[str, str], Funding] = {}
        self.trades = 0
        self.event_counts: Counter[tuple[str, str]] = Counter()  # (venue, channel) -> events
        self.now_ns = 0
        # Timers on the engine clock (order arrival, leg timeouts, funding settlements): a heap of
        # (due, seq, callback); seq keeps equal due times in scheduling order (deterministic).
        self._timers: list[tuple[int, int, Callable[[int], None]]] = []
        self._timer_seq = 0
        self._next_due = _NEVER
        self._warned: set[str] = set()
        sc = self.scanner.settings
        self.limits = Limits(max_funding_rate=sc.max_funding_rate, clock_window_ns=int(sc.clock_window_s * 1e9))
        for v in venues:
            self.add_venue(v)

    def add_venue(self, venue: str) -> None:
        """Start handling a venue (raises KeyError naming the known ones if it is unknown)."""
        if venue not in self.adapters:
            adapter = self.adapters[venue] = venue_class(venue)(self.registry)
            adapter.limits = self.limits
            self.status[venue] = VenueStatus(venue=venue)
            self.requests[venue] = deque()

    # -- clock ---------------------------------------------------------------------------
    def advance(self, now_ns: int) -> None:
        if now_ns >= self._next_due:
            self._run_timers(now_ns)
        if now_ns > self.now_ns:
            self.now_ns = now_ns

    def call_at(self, at_ns: int, callback: Callable[[int], None]) -> None:
        """Run ``callback(due)`` once engine time reaches ``at_ns``, before any message
        received at or after it is applied; the clock reads ``due`` while it runs."""
        self._timer_seq += 1
        heapq.heappush(self._timers, (at_ns, self._timer_seq, callback))
        if at_ns < self._next_due:
            self._next_due = at_ns

    def _run_timers(self, now_ns: int) -> None:
        timers = self._timers
        while timers and timers[0][0] <= now_ns:
            due, _, callback = heapq.heappop(timers)
            if due > self.now_ns:
                self.now_ns = due
            try:
                callback(due)
            except Exception:  # one failing timer must not stop the others or the feed
                log.exception("timer due at %d failed", due)
        self._next_due = timers[0][0] if timers else _NEVER

    # -- input ---------------------------------------------------------------------------
    def on_message(self, venue: str, raw: str | bytes, recv_ns: int) -> None:
        """One raw message. Nothing in it can escape: a message that fails to decode, holds
        an implausible value or breaks the handling of its events is dropped, counted by
        reason and logged with its venue; the books it touched resync; other venues and
        other books go on untouched."""
        st = self.status[venue]
        st.messages += 1
        st.last_msg_ns = recv_ns
        if recv_ns >= self._next_due:
            self._run_timers(recv_ns)
        if recv_ns > self.now_ns:
            self.now_ns = recv_ns
        adapter = self.adapters[venue]
        try:
            events = adapter.decode(raw, recv_ns, self.now_ns)
        except DecodeError as exc:
            self._rejected(venue, exc)
            return
        if adapter.problems:
            self._problems(venue, adapter)
        self._handle(venue, events)

    def on_events(self, venue: str, events: list[MarketEvent], recv_ns: int) -> None:
        """Events already normalized elsewhere (recorded datasets: perparb.replay.tardis), as
        one message of ``venue`` received at ``recv_ns``: the clock moves first, then the
        events go through the same books and scanner as decoded ones, with the same guard."""
        st = self.status[venue]
        st.messages += 1
        st.last_msg_ns = recv_ns
        self.advance(recv_ns)
        self._handle(venue, events)

    def stream_book(self, venue: str, venue_symbol: str) -> None:
        """This contract's book comes with its own snapshots, in order, without venue sequence
        numbers (a recorded dataset): it syncs in-stream, whatever the venue's live family, so
        no delta is held for a REST snapshot that will never come."""
        sb = self.books.get((venue, venue_symbol))
        if sb is None or sb.family != "in_stream":
            self.books[(venue, venue_symbol)] = SyncedBook("in_stream")

    def drop_book(self, venue: str, venue_symbol: str) -> None:
        """The input of this book broke (a bad row): unusable until its next snapshot."""
        sb = self.books.get((venue, venue_symbol))
        if sb is not None and sb.state != INVALID:
            sb.invalidate()

    def on_rest(self, venue: str, path: str, raw: str | bytes, recv_ns: int) -> None:
        """A REST response: instrument metadata or a book snapshot."""
        self.advance(recv_ns)
        adapter = self.adapters[venue]
        try:
            specs = adapter.parse_metadata(path, raw)
            if specs:
                self.registry.add_many(specs)
                return
            events = adapter.decode_rest(path, raw, recv_ns, self.now_ns)
        except DecodeError as exc:
            self._rejected(venue, exc, f"REST {path}: ")
            return
        except Exception as exc:  # metadata of a shape the parser did not expect
            self._rejected(venue, DecodeError(f"{venue} REST {path}: {type(exc).__name__}: {exc}", "error"))
            return
        if adapter.problems:
            self._problems(venue, adapter)
        self._handle(venue, events)

    def _handle(self, venue: str, events: list[MarketEvent]) -> None:
        ev: MarketEvent | None = None
        try:
            for ev in events:
                self.on_event(ev)
        except Exception as exc:  # an engine or scanner bug must cost one message, not the feed
            log.debug("%s: error handling %r", venue, ev, exc_info=True)
            books = ((ev.venue, ev.venue_symbol),) if isinstance(ev, BookDelta | BookSnapshot) else ()
            self._rejected(venue, DecodeError(f"{venue}: {type(exc).__name__}: {exc} handling {ev!r:.300}",
                                              "error", books))

    def fault(self, venue: str, exc: Exception) -> None:
        """An exception the transport caught around one message: counted like a decode error."""
        self._rejected(venue, DecodeError(f"{venue}: {type(exc).__name__}: {exc}", "error"))

    def _rejected(self, venue: str, exc: DecodeError, prefix: str = "") -> None:
        st = self.status[venue]
        st.decode_errors += 1
        st.errors_by_reason[exc.reason] = st.errors_by_reason.get(exc.reason, 0) + 1
        st.last_error = prefix + str(exc)
        self._warn(prefix + str(exc))
        if exc.reason == "error":
            log.debug("%s: %s", venue, exc, exc_info=exc.__cause__ or exc)
        adapter = self.adapters[venue]
        for v, sym in exc.books:
            inst = adapter.table.get(sym)
            if inst is None:
                continue
            sb = self.books.get((v, sym))
            if sb is not None and sb.state != INVALID:
                sb.invalidate()
            self.resync(v, inst)

    def on_event(self, ev: object) -> None:
        t = type(ev)
        key = (ev.venue, _CHANNEL[t])  # type: ignore[attr-defined, index]
        self.event_counts[key] += 1
        if t is Quote:
            q: Quote = ev  # type: ignore[assignment]
            inst = self.adapters[q.venue].table[q.venue_symbol]
            self.scanner.on_quote(inst, q, self.now_ns, self.status)
        elif t is BookDelta or t is BookSnapshot:
            self._on_book(ev)  # type: ignore[arg-type]
        elif t is Funding:
            f: Funding = ev  # type: ignore[assignment]
            key2 = (f.venue, f.venue_symbol)
            inst = self.adapters[f.venue].table[f.venue_symbol]
            prev = self.funding.get(key2)
            if prev is not None and f.next_funding_ns > prev.next_funding_ns > 0:
                f, inst = self._interval_change(prev, f, inst)
            self.funding[key2] = f
            self.scanner.on_funding(inst, f, self.now_ns, self.status)
        elif t is Trade:
            self.trades += 1

    def _interval_change(self, prev: Funding, f: Funding, inst: Instrument) -> tuple[Funding, Instrument]:
        """A settlement passed: the step between consecutive next-funding times is the
        contract's real interval. Venues change intervals without notice; when the step
        differs from the metadata's, the registry takes the observed one."""
        step_h = (f.next_funding_ns - prev.next_funding_ns) / 3_600_000_000_000
        watched = f.recv_ns - prev.recv_ns < 3_600_000_000_000  # no settlement can have been missed
        if not watched or step_h not in _INTERVALS or step_h == inst.funding_interval_h:
            return f, inst
        log.warning("%s %s: funding interval changed from %gh to %gh (observed settlements)", inst.venue,
                    inst.venue_symbol, inst.funding_interval_h, step_h)
        old = inst.funding_interval_h
        inst = replace(inst, funding_interval_h=step_h)
        self.registry.add(inst)
        if f.interval_h == old:
            f = replace(f, interval_h=step_h)
        return f, inst

    def _on_book(self, ev: BookDelta | BookSnapshot) -> None:
        if not self.use_books:
            return
        key = (ev.venue, ev.venue_symbol)
        sb = self.books.get(key)
        adapter = self.adapters[ev.venue]
        if sb is None:
            sb = self.books[key] = SyncedBook(adapter.book_sync, adapter.book_checksum())
        ok = sb.on_snapshot(ev) if type(ev) is BookSnapshot else sb.on_delta(ev)  # type: ignore[arg-type]
        inst = adapter.table[ev.venue_symbol]
        if not ok:
            self._warn(f"{ev.venue} {ev.venue_symbol}: book out of sync (seq {sb.seq}), resynchronizing")
            self.resync(ev.venue, inst)
        self.scanner.on_book(inst, sb, self.now_ns, self.status)

    # -- book resync ---------------------------------------------------------------------
    def start_books(self, venue: str, instruments: list[Instrument]) -> None:
        """Called by the transport after (re)subscribing."""
        adapter = self.adapters[venue]
        for inst in instruments:
            sb = self.books.get((venue, inst.venue_symbol))
            if sb is None:
                sb = self.books[(venue, inst.venue_symbol)] = SyncedBook(adapter.book_sync, adapter.book_checksum())
            sb.resyncing()
            path = adapter.book_snapshot_path(inst) if adapter.book_sync == "rest_bridged" else None
            if path:
                self.requests[venue].append(Request(venue, "rest", path))

    def resync(self, venue: str, inst: Instrument) -> None:
        adapter = self.adapters[venue]
        sb = self.books.get((venue, inst.venue_symbol))
        if sb is not None:
            sb.state = RESYNCING
        path = adapter.book_snapshot_path(inst) if adapter.book_sync == "rest_bridged" else None
        if path:
            self.requests[venue].append(Request(venue, "rest", path))
        else:
            msgs = adapter.resubscribe_book(inst)
            if msgs:
                self.requests[venue].append(Request(venue, "send", msgs))

    # -- connection state ----------------------------------------------------------------
    def set_connected(self, venue: str, connected: bool, now_ns: int) -> None:
        st = self.status[venue]
        if connected and not st.connected:
            st.connected_since_ns = now_ns
        if not connected and st.connected:
            st.reconnects += 1
            for (v, _), sb in self.books.items():
                if v == venue:
                    sb.resyncing()
        st.connected = connected
        st.state = "connected" if connected else "disconnected"

    # -- problems ------------------------------------------------------------------------
    def _problems(self, venue: str, adapter: Venue) -> None:
        for p in adapter.take_problems():
            self.status[venue].unknown_symbols += 1
            self._warn(p)

    def _warn(self, text: str) -> None:
        # One log line per distinct problem; counters keep the totals.
        key = text[:120]
        if key not in self._warned and len(self._warned) < 10_000:
            self._warned.add(key)
            log.warning(text)
