"""The websocket runtime: one task per venue connection.

It connects, subscribes, keeps the venue's heartbeat, hands every raw message to the
engine with its receive time, performs the engine's requests (REST book snapshots,
resubscribes), and reconnects with exponential backoff and jitter when the connection
drops or goes silent for longer than the venue's watchdog allows.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from collections.abc import Callable, Coroutine
from contextlib import AbstractAsyncContextManager
from typing import Any, Protocol

import aiohttp
import websockets

from perparb.engine import Engine, Request
from perparb.model import Instrument
from perparb.venues.base import Connection, Venue

log = logging.getLogger("perparb.feeds")

Tap = Callable[[str, str, str | bytes, int, str | None], None]  # venue, src, raw, recv_ns, path


class WireConnection(Protocol):
    """What a session needs from a connection: a websocket, or a venue transport's stand-in."""

    async def send(self, message: str) -> None: ...
    async def recv(self, decode: bool | None = None) -> str | bytes: ...
    async def close(self) -> None: ...


class Transport(Protocol):
    """A venue's own transport (``Venue.transport``): Socket.IO, ccxt.pro. ``recv`` raises
    websockets' ConnectionClosed when the connection ends; failures to connect raise OSError.
    It may also define ``async fetch(path)`` (REST answers) and ``async close()``."""

    def connect(self, url: str) -> AbstractAsyncContextManager[WireConnection]: ...


class Backoff:
    def __init__(self, base: float = 0.5, cap: float = 30.0, rng: random.Random | None = None) -> None:
        self.base, self.cap, self.attempt = base, cap, 0
        self.rng = rng or random.Random()

    def next(self) -> float:
        delay = min(self.cap, self.base * 2**self.attempt)
        self.attempt += 1
        return delay * (0.5 + self.rng.random() / 2)  # "equal jitter"

    def reset(self) -> None:
        self.attempt = 0


class VenueFeed:
    """Every connection of one venue, plus its REST side."""

    def __init__(self, engine: Engine, venue: str, instruments: list[Instrument], ws_url: str, rest_url: str,
                 books: bool = True, tap: Tap | None = None, http: aiohttp.ClientSession | None = None) -> None:
        self.engine = engine
        self.venue = venue
        self.adapter: Venue = engine.adapters[venue]
        self.instruments = instruments
        self.ws_url = ws_url.rstrip("/")
        self.rest_url = rest_url.rstrip("/")
        self.books = books
        self.tap = tap
        self.http = http
        self._sockets: list[WireConnection | None] = []
        make = getattr(self.adapter, "transport", None)  # venues that do not speak plain websockets
        self.transport: Transport | None = make(self.ws_url, self.rest_url) if make else None
        self._stop = asyncio.Event()
        self._reselected = asyncio.Event()
        self._keep_state = False
        self._tasks: set[asyncio.Task[object]] = set()
        self._rest_lock = asyncio.Lock()
        self._rest_next = 0.0

    # -- REST ----------------------------------------------------------------------------
    async def fetch(self, path: str) -> bytes | None:
        """One REST call, ``path`` as recorded in captures; None (logged) when it failed.
        Calls are spaced by the venue's ``rest_min_interval_s``."""
        async with self._rest_lock:
            wait = self._rest_next - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            self._rest_next = time.monotonic() + self.adapter.rest_min_interval_s
            return await self._fetch(path)

    async def _fetch(self, path: str) -> bytes | None:
        custom = getattr(self.transport, "fetch", None)
        if custom is not None:
            return await custom(path)
        assert self.http is not None
        method, url_path, body = self.adapter.rest_request(path)
        headers = {"Content-Type": "application/json"} if body is not None else None
        try:
            async with self.http.request(method, self.rest_url + url_path, data=body, headers=headers,
                                         timeout=aiohttp.ClientTimeout(total=10)) as r:
                raw = await r.read()
                if r.status != 200:
                    log.warning("%s %s %s: HTTP %s", self.venue, method, path, r.status)
                    return None
        except (aiohttp.ClientError, TimeoutError) as exc:
            log.warning("%s %s %s: %s", self.venue, method, path, exc)
            return None
        return raw

    async def get(self, path: str) -> bytes | None:
        """A REST call whose answer feeds the engine (metadata, book snapshots)."""
        raw = await self.fetch(path)
        if raw is None:
            return None
        recv_ns = time.time_ns()
        try:
            if self.tap:
                self.tap(self.venue, "rest", raw, recv_ns, path)
            self.engine.on_rest(self.venue, path, raw, recv_ns)
        except Exception as exc:
            self.engine.fault(self.venue, exc)
        return raw

    async def _get_until_answered(self, path: str) -> None:
        """A book waits in 'resyncing' for this answer: retry with backoff until it comes."""
        backoff = Backoff(base=1.0, cap=30.0)
        while not self._stop.is_set() and await self.get(path) is None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), backoff.next())

    async def load_metadata(self) -> bool:
        """Fetch the venue's contract lists into the registry; False when any request went
        unanswered or its answer could not be read (the caller retries later)."""
        errors = self.engine.status[self.venue].decode_errors
        answered = [await self.get(path) is not None for path in self.adapter.metadata_paths]
        return all(answered) and self.engine.status[self.venue].decode_errors == errors

    # -- websockets ----------------------------------------------------------------------
    async def run(self) -> None:
        """Every connection of the current selection; ``reselect`` reconnects with a new one."""
        while not self._stop.is_set():
            self._reselected.clear()
            conns = self.adapter.connections(self.instruments, self.books)
            self._sockets = [None] * len(conns)
            streams: asyncio.Future[Any] = asyncio.ensure_future(
                asyncio.gather(*(self._connection(n, c) for n, c in enumerate(conns))))
            changed: asyncio.Future[Any] = asyncio.ensure_future(self._reselected.wait())
            try:
                await asyncio.wait({streams, changed}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                changed.cancel()
                if not streams.done():
                    streams.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await streams
            if not self._reselected.is_set():  # the connections ended by themselves (stop)
                streams.result()
                return

    def reselect(self, instruments: list[Instrument]) -> None:
        """Stream these contracts from now on (the running connections are replaced)."""
        self.instruments = instruments
        self._reselected.set()

    def _spawn(self, coro: Coroutine[Any, Any, object]) -> None:
        task = asyncio.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def stop(self, keep_state: bool = False) -> None:
        """Close every connection; ``keep_state`` leaves the books and the venue's status as
        they are (a snapshot taken through the feed, ``scan --once``)."""
        self._keep_state = keep_state
        self._stop.set()
        for ws in self._sockets:
            if ws is not None:
                self._spawn(ws.close())
        close = getattr(self.transport, "close", None)
        if close is not None:
            self._spawn(close())

    async def _connection(self, n: int, conn: Connection) -> None:
        backoff = Backoff()
        while not self._stop.is_set():
            try:
                bootstrap = None
                if self.adapter.bootstrap_path:
                    bootstrap = await self.fetch(self.adapter.bootstrap_path)
                    if bootstrap is None:
                        raise OSError(f"no answer from {self.adapter.bootstrap_path}")
                url = self.adapter.connect_url(self.ws_url, conn, bootstrap)
                opened: AbstractAsyncContextManager[WireConnection]
                if self.transport is not None:
                    opened = self.transport.connect(url)
                else:
                    opened = websockets.connect(url, max_size=None, open_timeout=10, close_timeout=2,
                                                ping_interval=None if self.adapter.heartbeat_text else 20,
                                                compression=None)
                async with opened as ws:
                    self._sockets[n] = ws
                    await self._session(n, ws, conn)
                    backoff.reset()
            except asyncio.CancelledError:
                raise
            except (OSError, TimeoutError, websockets.exceptions.WebSocketException) as exc:
                self.engine.status[self.venue].last_error = f"{type(exc).__name__}: {exc}"
                log.warning("%s %s: %s", self.venue, conn.path, exc)
            except Exception as exc:  # anything else: count it, log it, reconnect like a drop
                self.engine.fault(self.venue, exc)
                log.warning("%s %s: %s: %s, reconnecting", self.venue, conn.path, type(exc).__name__, exc,
                            exc_info=True)
            finally:
                self._sockets[n] = None
                self._mark_closed()
            if self._stop.is_set():
                break
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), backoff.next())

    def _mark_closed(self) -> None:
        if all(ws is None for ws in self._sockets) and not self._keep_state:
            self.engine.set_connected(self.venue, False, time.time_ns())

    async def _session(self, n: int, ws: WireConnection, conn: Connection) -> None:
        self.engine.status[self.venue].state = "connecting"
        for msg in conn.subscribe:
            await ws.send(msg)
        self.engine.set_connected(self.venue, True, time.time_ns())
        if self.books and n == 0:
            self.engine.start_books(self.venue, conn.instruments)
            await self._perform(ws)
        beat = asyncio.create_task(self._heartbeat(ws)) if self.adapter.heartbeat_text else None
        engine, venue, tap, outbox = self.engine, self.venue, self.tap, self.adapter.outbox
        silence = self.adapter.silence_s
        try:
            while True:
                try:
                    raw = await asyncio.wait_for(ws.recv(decode=False), silence)
                except TimeoutError:
                    log.warning("%s %s: silent for %.0fs, reconnecting", venue, conn.path, silence)
                    return
                recv_ns = time.time_ns()
                try:
                    if tap:
                        tap(venue, "ws", raw, recv_ns, None)
                    engine.on_message(venue, raw, recv_ns)
                except Exception as exc:  # one message must never end the feed
                    engine.fault(venue, exc)
                if outbox:
                    for reply in outbox:
                        await ws.send(reply)
                    outbox.clear()
                if engine.requests[venue]:
                    await self._perform(ws)
        except websockets.exceptions.ConnectionClosed as exc:
            log.info("%s %s: connection closed (%s)", venue, conn.path, exc)
        finally:
            if beat:
                beat.cancel()

    async def _heartbeat(self, ws: WireConnection) -> None:
        text = self.adapter.heartbeat_text
        assert text is not None
        with contextlib.suppress(websockets.exceptions.ConnectionClosed):
            while True:
                await asyncio.sleep(self.adapter.heartbeat_s)
                await ws.send(text)

    async def _perform(self, ws: WireConnection) -> None:
        queue = self.engine.requests[self.venue]
        while queue:
            req: Request = queue.popleft()
            if req.kind == "rest":
                self._spawn(self._get_until_answered(str(req.payload)))
            elif req.kind == "send":
                for msg in req.payload:
                    await ws.send(msg)
