"""ccxt.pro as a venue transport: ``watch_*`` results become raw messages for the engine.

The runtime sees a websocket-like connection: ``send`` takes the adapter's subscribe
messages (``{"op":"watch","watch":"order_book","symbol":...}``) and starts one watcher task
per message; ``recv`` returns each result as the compact JSON the adapter parses, in the
order ccxt produced them. A network error from ccxt ends the connection so the runtime
reconnects with its backoff; an exchange that cannot do something (no such watch method,
an unsupported symbol) just leaves that stream out. REST metadata is ``load_markets``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import msgspec
from websockets.exceptions import ConnectionClosedError

from perparb.venues.ccxt_generic import METADATA_PATH

log = logging.getLogger("perparb.feeds.ccxt")
_enc = msgspec.json.Encoder()
_HOST = re.compile(r"^(https?|wss?)://[^/]+")
_BOOK_KEYS = ("symbol", "timestamp", "nonce")
_TICKER_KEYS = ("symbol", "timestamp", "bid", "bidVolume", "ask", "askVolume")
_FUNDING_KEYS = ("symbol", "timestamp", "fundingRate", "fundingTimestamp", "nextFundingRate", "interval",
                 "markPrice", "indexPrice")
_MARKET_KEYS = ("id", "symbol", "base", "quote", "settle", "type", "swap", "linear", "inverse", "contractSize",
                "active", "expiry", "precision", "taker", "maker")


def book_message(ob: dict[str, Any]) -> str:
    d: dict[str, Any] = {"watch": "order_book", **{k: ob.get(k) for k in _BOOK_KEYS}}
    d["bids"] = [lv[:2] for lv in ob.get("bids", ())]
    d["asks"] = [lv[:2] for lv in ob.get("asks", ())]
    return _enc.encode(d).decode()


def ticker_message(t: dict[str, Any]) -> str:
    return _enc.encode({"watch": "ticker", **{k: t.get(k) for k in _TICKER_KEYS}}).decode()


def funding_message(f: dict[str, Any]) -> str:
    return _enc.encode({"watch": "funding_rate", **{k: f.get(k) for k in _FUNDING_KEYS}}).decode()


def markets_message(markets: list[dict[str, Any]], precision_mode: int) -> bytes:
    """``load_markets`` reduced to what the adapter reads: swap markets only."""
    rows = []
    for m in markets:
        if not m.get("swap"):
            continue
        row = {k: m.get(k) for k in _MARKET_KEYS}
        limits = m.get("limits") or {}
        row["limits"] = {k: {"min": (limits.get(k) or {}).get("min")} for k in ("amount", "cost")}
        rows.append(row)
    return _enc.encode({"precisionMode": precision_mode, "markets": rows})


def override_urls(node: Any, ws_url: str, rest_url: str) -> Any:
    """ccxt's URL tree with the scheme and host of every websocket (``ws_url``) and REST
    (``rest_url``) address replaced; an empty replacement keeps ccxt's own."""
    if isinstance(node, dict):
        return {k: override_urls(v, ws_url, rest_url) for k, v in node.items()}
    if isinstance(node, list):
        return [override_urls(v, ws_url, rest_url) for v in node]
    if isinstance(node, str):
        m = _HOST.match(node)
        if m:
            new = ws_url if m.group(1).startswith("ws") else rest_url
            if new:
                return new.rstrip("/") + node[m.end():]
    return node


class CcxtConnection:
    def __init__(self, transport: CcxtTransport) -> None:
        self.transport = transport
        self.queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.tasks: set[asyncio.Task[None]] = set()
        self.closed = False

    async def send(self, message: str) -> None:
        if self.closed:
            raise ConnectionClosedError(None, None)
        msg = msgspec.json.decode(message)
        if msg.get("op") != "watch":
            return
        loop = self.transport.loop_for(msg.get("watch", ""), msg.get("symbol", ""))
        if loop is None:
            return
        task = asyncio.create_task(self._run(loop))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def _run(self, loop: Callable[[], Awaitable[str | None]]) -> None:
        import ccxt

        while not self.closed:
            try:
                text = await loop()
            except asyncio.CancelledError:
                raise
            except ccxt.NetworkError as exc:
                log.warning("%s: %s", self.transport.exchange_id, exc)
                self.queue.put_nowait(None)  # the runtime reconnects
                return
            except Exception as exc:  # unsupported method or symbol: leave this stream out
                log.warning("%s: %s: %s", self.transport.exchange_id, type(exc).__name__, exc)
                return
            if text is not None:
                self.queue.put_nowait(text)

    async def recv(self, decode: bool | None = None) -> str:
        text = await self.queue.get()
        if text is None:
            self.queue.put_nowait(None)
            raise ConnectionClosedError(None, None)
        return text

    async def close(self) -> None:
        self.closed = True
        for t in list(self.tasks):
            t.cancel()
        self.queue.put_nowait(None)


class CcxtTransport:
    """One ccxt.pro exchange instance per venue feed, shared by its connections."""

    def __init__(self, exchange_id: str, ws_url: str = "", rest_url: str = "", funding_poll_s: float = 60.0) -> None:
        import ccxt.pro

        self.exchange_id = exchange_id
        self.exchange = getattr(ccxt.pro, exchange_id)({"enableRateLimit": True})
        if ws_url or rest_url:
            self.exchange.urls = override_urls(self.exchange.urls, ws_url, rest_url)
        self.funding_poll_s = funding_poll_s
        self._polled: set[str] = set()

    async def fetch(self, path: str) -> bytes | None:
        if path != METADATA_PATH:
            return None
        import ccxt

        try:
            markets = await self.exchange.load_markets()
        except ccxt.BaseError as exc:
            log.warning("%s load_markets: %s", self.exchange_id, exc)
            return None
        return markets_message(list(markets.values()), self.exchange.precisionMode)

    def loop_for(self, kind: str, symbol: str) -> Callable[[], Awaitable[str | None]] | None:
        """One step of the stream ``kind`` for ``symbol`` (None: the exchange cannot give it)."""
        ex, has = self.exchange, self.exchange.has
        if kind == "order_book" and has.get("watchOrderBook"):
            return lambda: _then(ex.watch_order_book(symbol), book_message)
        if kind == "ticker":
            if has.get("watchBidsAsks"):
                return lambda: _then(ex.watch_bids_asks([symbol]), lambda d: ticker_message(d[symbol]))
            if has.get("watchTicker"):
                return lambda: _then(ex.watch_ticker(symbol), ticker_message)
        if kind == "funding_rate":
            if has.get("watchFundingRate"):
                return lambda: _then(ex.watch_funding_rate(symbol), funding_message)
            if has.get("fetchFundingRate"):
                return lambda: self._poll_funding(symbol)
        return None

    async def _poll_funding(self, symbol: str) -> str | None:
        import ccxt

        if symbol in self._polled:
            await asyncio.sleep(self.funding_poll_s)
        self._polled.add(symbol)
        try:
            return funding_message(await self.exchange.fetch_funding_rate(symbol))
        except ccxt.BaseError as exc:  # a failed poll waits for the next one; the streams go on
            log.warning("%s fetch_funding_rate %s: %s", self.exchange_id, symbol, exc)
            return None

    @contextlib.asynccontextmanager
    async def connect(self, url: str) -> AsyncIterator[CcxtConnection]:
        conn = CcxtConnection(self)
        try:
            yield conn
        finally:
            await conn.close()

    async def close(self) -> None:
        await self.exchange.close()


async def _then(aw: Awaitable[Any], f: Callable[[Any], str]) -> str:
    return f(await aw)
