"""The exchange simulator: one loopback HTTP + websocket server per venue.

Each server speaks its venue's native public protocol through the venue module's
``sim_*`` encoders: the same paths, subscribe and heartbeat handshakes, message formats
and units as the real venue, plus the REST metadata and book-snapshot endpoints the feed
uses. Feeds connect to it with exactly the code that connects to the real venues.
Tests can drop a venue's connections or make it skip sequence numbers.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import random
import time
from dataclasses import dataclass, field
from typing import Protocol
from urllib.parse import urlencode

from aiohttp import WSMsgType, web
from msgspec.structs import replace

from perparb.instruments.registry import Registry
from perparb.model import Instrument
from perparb.sim.binance_orders import BinanceOrders
from perparb.sim.funding_history import FundingHistory
from perparb.sim.model import START_PRICES, PriceModel, SimBook, default_tick
from perparb.venues import venue_class
from perparb.venues.base import Venue

log = logging.getLogger("perparb.sim")


def sim_instruments(registry: Registry, venue: Venue, assets: list[str]) -> list[Instrument]:
    """The contracts a simulated venue lists: the registry's, else derived from the symbol."""
    out = []
    known = {i.asset: i for i in registry.select(venue.id, assets, inverse=venue.prefers_inverse)}
    for asset in assets:
        inst = known.get(asset)
        if inst is None:
            inst = venue.sim_contract(asset)
        if inst is None:
            continue
        if not inst.tick_size:
            px = START_PRICES.get(asset, 1.0)
            lot = 10.0 ** round(math.log10(inst.native_qty(10.0 / px, px)))  # about 10 quote units
            inst = replace(inst, tick_size=default_tick(px * inst.price_scale), lot_size=lot, min_qty=lot)
        out.append(replace(inst, status="active", source="sim"))
    return out


class ClientWire(Protocol):
    """A client connection: an aiohttp websocket, or a venue transport's stand-in (Socket.IO)."""

    @property
    def closed(self) -> bool: ...
    async def send_str(self, data: str) -> None: ...
    async def close(self) -> bool: ...


@dataclass
class _Client:
    ws: ClientWire
    topics: set[tuple[str, str]] = field(default_factory=set)
    pending_snapshots: set[str] = field(default_factory=set)
    new_funding: set[str] = field(default_factory=set)


class SimVenue:
    def __init__(self, venue: Venue, instruments: list[Instrument], model: PriceModel, rng: random.Random) -> None:
        self.venue = venue
        self.instruments = {i.venue_symbol: i for i in instruments}
        self.model = model
        self.books = {i.venue_symbol: SimBook(i, rng) for i in instruments}
        self.clients: list[_Client] = []
        self.metadata = venue.sim_metadata(instruments)
        self.skip: dict[str, int] = {}
        self.runner: web.AppRunner | None = None
        self.port = 0
        self.half_spread_bps = 1.0
        self.frozen = False  # connections stay open and answer heartbeats, but no data flows
        self.rest_down = False  # every REST request answers 503, as during maintenance
        # Signed trading endpoints (accounts are added by whoever drives the simulator).
        self.orders = BinanceOrders(self) if venue.id == "binance" else None
        self.funding_history = FundingHistory(self)

    # -- http ----------------------------------------------------------------------------
    async def start(self, host: str = "127.0.0.1", port: int = 0) -> None:
        app = web.Application()
        attach = getattr(self.venue, "sim_attach", None)  # venues that do not speak plain websockets
        if attach is not None:
            attach(app, self)
        if self.orders is not None:
            self.orders.attach(app)
        self.funding_history.attach(app)
        app.router.add_route("GET", "/{tail:.*}", self._handle)
        app.router.add_route("POST", "/{tail:.*}", self._handle)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        site = web.TCPSite(self.runner, host, port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self.metadata.update(self.venue.sim_bootstrap(self.ws_url))

    async def stop(self) -> None:
        await self.drop()
        if self.runner:
            await self.runner.cleanup()

    @property
    def ws_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    @property
    def rest_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request)
        if self.rest_down:
            return web.json_response({"error": "service unavailable"}, status=503)
        path = request.path_qs
        if request.method == "POST" and request.can_read_body:
            # JSON bodies are keyed like captures record them: fields as query parameters.
            try:
                fields = await request.json()
            except ValueError:
                fields = {}
            if isinstance(fields, dict) and fields:
                path = request.path + "?" + urlencode({k: v for k, v in fields.items() if isinstance(v, str)})
        # A query the venue's own client does not send (ccxt's status=PreLaunch) gets the list by path.
        body = (self.metadata.get(path) or self.metadata.get(request.path)
                or next((b for p, b in self.metadata.items() if p.partition("?")[0] == request.path), None))
        if body is not None:
            return web.Response(body=body, content_type="application/json")
        sym = self.venue.sim_rest_funding(path)
        if sym is not None and sym in self.books:
            inst = self.books[sym].inst
            now_ms = int(time.time() * 1000)
            step = int(inst.funding_interval_h * 3_600_000)
            raw = self.venue.sim_rest_funding_body(
                inst, self.model.funding_rate(self.venue.id, inst.asset, inst.funding_interval_h),
                (now_ms // step + 1) * step, inst.native_px(self.model.venue_mid(self.venue.id, inst.asset)),
                inst.native_px(self.model.mid[inst.asset]), now_ms)
            return web.Response(body=raw, content_type="application/json")
        sym = self.venue.sim_rest_book(path)
        if sym is not None and sym in self.books:
            book = self.books[sym]
            bids, asks = book.levels()
            raw = self.venue.sim_rest_book_body(book.inst, bids, asks, book.seq, int(time.time() * 1000))
            return web.Response(body=raw, content_type="application/json")
        return web.json_response({"error": f"unknown path {path}"}, status=404)

    async def _websocket(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(heartbeat=20.0, autoping=True)
        await ws.prepare(request)
        client = self.add_client(ws)
        try:
            async for msg in ws:
                if msg.type == WSMsgType.TEXT:
                    await self.on_client_text(client, msg.data)
        finally:
            self.remove_client(client)
        return ws

    def add_client(self, ws: ClientWire) -> _Client:
        client = _Client(ws)
        self.clients.append(client)
        return client

    def remove_client(self, client: _Client) -> None:
        with contextlib.suppress(ValueError):
            self.clients.remove(client)

    async def on_client_text(self, client: _Client, text: str) -> None:
        replies, topics = self.venue.sim_handle(text)
        for r in replies:
            await client.ws.send_str(r)
        for kind, sym in topics:
            if sym in self.books:
                client.topics.add((kind, sym))
                if kind == "book" and self.venue.book_sync != "rest_bridged":
                    client.pending_snapshots.add(sym)
                if kind == "funding":
                    client.new_funding.add(sym)

    # -- control -------------------------------------------------------------------------
    async def drop(self) -> None:
        """Close every client connection, as a venue does on maintenance."""
        for c in list(self.clients):
            await c.ws.close()
        self.clients.clear()

    def gap(self, venue_symbol: str, missing: int = 3) -> None:
        """Lose ``missing`` book updates of one contract: the next diff does not chain."""
        self.skip[venue_symbol] = missing

    async def inject(self, topic: tuple[str, str], frames: str | list[str]) -> int:
        """Send raw frames to the clients subscribed to ``topic`` ((kind, venue_symbol), kind
        book, quote or funding), as a venue sending garbage does."""
        sent = 0
        for c in list(self.clients):
            if topic in c.topics:
                sent += await self._send(c, frames)
        return sent

    # -- market --------------------------------------------------------------------------
    async def publish(self, now_ms: int) -> int:
        """Advance every book to the model and send what subscribers asked for."""
        sent = 0
        if self.frozen:
            return 0
        v = self.venue
        for sym, book in self.books.items():
            inst = book.inst
            mid = self.model.venue_mid(v.id, inst.asset)
            bid_changes, ask_changes = book.step(mid, self.half_spread_bps)
            # A gap is updates the client never receives: the next one chains to a lost one.
            prev = book.seq + self.skip.pop(sym, 0)
            book.seq = prev + 1
            delta = v.sim_book(inst, False, bid_changes, ask_changes, book.seq, prev, book.seq, now_ms)
            bid, ask = book.top()
            quote = v.sim_quote(inst, bid, ask, book.seq, now_ms)
            for c in self.clients:
                if ("book", sym) in c.topics:
                    if sym in c.pending_snapshots:
                        c.pending_snapshots.discard(sym)
                        bids, asks = book.levels()
                        sent += await self._send(c, v.sim_book(inst, True, bids, asks, book.seq, -1,
                                                               book.seq, now_ms))
                    else:
                        sent += await self._send(c, delta)
                if quote is not None and ("quote", sym) in c.topics:
                    sent += await self._send(c, quote)
        return sent

    async def publish_funding(self, now_ms: int) -> int:
        sent = 0
        if self.frozen:
            return 0
        v = self.venue
        for sym, book in self.books.items():
            inst = book.inst
            interval_ms = int(inst.funding_interval_h * 3_600_000)
            next_ms = (now_ms // interval_ms + 1) * interval_ms
            mid = self.model.venue_mid(v.id, inst.asset)
            index = self.model.mid[inst.asset]
            args = (inst, self.model.funding_rate(v.id, inst.asset, inst.funding_interval_h), next_ms, inst.native_px(mid),
                    inst.native_px(index), now_ms)
            msg = v.sim_funding(*args, full=False)
            full = None
            for c in self.clients:
                if ("funding", sym) in c.topics:
                    if sym in c.new_funding:  # a new subscriber first gets the whole state
                        c.new_funding.discard(sym)
                        full = full or v.sim_funding(*args, full=True)
                        sent += await self._send(c, full)
                    else:
                        sent += await self._send(c, msg)
        return sent

    async def _send(self, c: _Client, frames: str | list[str]) -> int:
        if c.ws.closed:
            return 0
        sent = 0
        try:
            for text in [frames] if isinstance(frames, str) else frames:
                await c.ws.send_str(text)
                sent += 1
        except (ConnectionError, RuntimeError):
            pass
        return sent


class Simulator:
    """Every simulated venue, driven by one price model."""

    def __init__(self, registry: Registry, venues: list[str], assets: list[str], seed: int = 1,
                 tick_s: float = 0.1, funding_every_s: float = 1.0) -> None:
        self.rng = random.Random(seed)
        self.model = PriceModel(seed, assets, venues)
        self.tick_s = tick_s
        self.funding_every_s = funding_every_s
        self.venues: dict[str, SimVenue] = {}
        for vid in venues:
            adapter = venue_class(vid)(Registry(registry.for_venue(vid)))
            insts = sim_instruments(registry, adapter, assets)
            self.venues[vid] = SimVenue(adapter, insts, self.model, random.Random(self.rng.random()))
            self.venues[vid].funding_history.seed = seed
        self._task: asyncio.Task[None] | None = None
        self.messages = 0
        self.running = asyncio.Event()
        self.running.set()

    def pause(self) -> None:
        """Stop moving the market (connections stay open and heartbeats go on)."""
        self.running.clear()

    def resume(self) -> None:
        self.running.set()

    async def start(self, host: str = "127.0.0.1", base_port: int = 0) -> None:
        for n, sv in enumerate(self.venues.values()):
            await sv.start(host, base_port + n + 1 if base_port else 0)
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for sv in self.venues.values():
            await sv.stop()

    def endpoints(self) -> dict[str, dict[str, str]]:
        return {v: {"ws_url": sv.ws_url, "rest_url": sv.rest_url} for v, sv in self.venues.items()}

    async def _run(self) -> None:
        last_funding = 0.0
        while True:
            await self.running.wait()
            self.model.step(self.tick_s)
            now = time.time()
            now_ms = int(now * 1000)
            for sv in self.venues.values():
                self.messages += await sv.publish(now_ms)
            if now - last_funding >= self.funding_every_s:
                last_funding = now
                for sv in self.venues.values():
                    self.messages += await sv.publish_funding(now_ms)
            await asyncio.sleep(self.tick_s)
