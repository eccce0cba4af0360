"""``perparb scan --once``: one REST snapshot of books and funding through ccxt, scanned by
the same engine and scanner as the live feeds.

Each venue is read through its ccxt exchange (``binance`` → ``binanceusdm``, …): markets,
an order book and the funding rate per contract. The results enter the engine as the
generic ccxt adapter's messages, so units, gates and sizing are exactly the live ones.
Where ccxt has no class (BitMEX, CoinDCX in the pinned version) or its calls give no book
or funding, the venue's native adapter reads it instead.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import aiohttp

from perparb.engine import Engine
from perparb.feeds.booksync import SYNCED
from perparb.feeds.runtime import VenueFeed
from perparb.instruments.registry import Registry
from perparb.scanner.core import Scanner
from perparb.venues import venue_class
from perparb.venues.ccxt_generic import METADATA_PATH, PREFIX
from perparb.venues.ccxt_generic.transport import CcxtTransport, book_message, funding_message

log = logging.getLogger("perparb.scan")

# Native venue id -> ccxt exchange id (linear/USDⓈ perpetual flavour).
CCXT_IDS = {
    "binance": "binanceusdm", "okx": "okx", "bybit": "bybit", "bitget": "bitget", "gate": "gate",
    "kucoin": "kucoinfutures", "hyperliquid": "hyperliquid", "deribit": "deribit", "bitmex": "bitmex",
    "mexc": "mexc", "phemex": "phemex", "dydx": "dydx", "coindcx": "coindcx",
}
# Load only the perpetual markets where ccxt would otherwise fetch every market type.
SWAP_ONLY: dict[str, dict[str, Any]] = {
    "okx": {"fetchMarkets": {"types": ["swap"]}},
    "bybit": {"fetchMarkets": {"types": ["linear"]}},
    "bitget": {"fetchMarkets": {"types": ["swap"]}},
    "gate": {"fetchMarkets": {"types": ["swap"]}, "swap": {"fetchMarkets": {"settlementCurrencies": ["usdt"]}}},
}


def ccxt_id(venue: str) -> str | None:
    return venue[len(PREFIX):] if venue.startswith(PREFIX) else CCXT_IDS.get(venue)


async def scan_once(venues: list[str], assets: list[str], scanner: Scanner,
                    endpoints: dict[str, dict[str, str]] | None = None, depth: int = 50,
                    native_timeout_s: float = 15.0) -> tuple[Engine, dict[str, str]]:
    """Returns the engine holding the snapshot, and engine venue id -> the name asked for.

    A venue is read through ccxt when ccxt has a class for it and answers markets, a book
    and a funding rate; otherwise through its native adapter: REST metadata, then its own
    feed (the venues publish their books over websockets) until every contract has a
    synced book and a funding value, or ``native_timeout_s``. The snapshot is what every
    venue showed at that moment: native feeds are detached without marking books stale."""
    engine = Engine(Registry(), [], scanner)
    names: dict[str, str] = {}
    native: list[str] = []
    for venue in venues:
        ep = (endpoints or {}).get(venue, {})
        cid = ccxt_id(venue)
        if cid is not None and await _ccxt_venue(engine, PREFIX + cid, cid, ep, assets, depth):
            names[PREFIX + cid] = venue
        elif venue.startswith(PREFIX):
            names[venue] = venue  # a generic ccxt venue has no native side: reported empty
        else:
            if cid is not None:
                log.warning("%s: ccxt gave no book or funding; reading the native feed", venue)
            names[venue] = venue
            native.append(venue)
    async with aiohttp.ClientSession() as http:
        feeds = [f for v in native if (f := await _native_feed(engine, v, (endpoints or {}).get(v, {}), assets, http))]
        tasks = [asyncio.create_task(f.run()) for f in feeds]
        deadline = time.monotonic() + native_timeout_s
        try:
            while feeds and not all(map(_complete, feeds)) and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
                engine.advance(time.time_ns())
            now = time.time_ns()
            engine.advance(now)
            engine.scanner.sweep(now, engine.status)
        finally:
            for f in feeds:
                f.stop(keep_state=True)
            for t in tasks:
                t.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
    return engine, names


def empty_venues(engine: Engine, names: dict[str, str]) -> dict[str, list[str]]:
    """Venue name -> what it returned nothing of (books, funding); venues with both are left out."""
    out: dict[str, list[str]] = {}
    for vid, venue in names.items():
        missing = [what for what, have in (
            ("books", any(v == vid and sb.state == SYNCED for (v, _), sb in engine.books.items())),
            ("funding", any(v == vid for v, _ in engine.funding))) if not have]
        if missing:
            out[venue] = missing
    return out


async def _ccxt_venue(engine: Engine, vid: str, cid: str, ep: dict[str, str], assets: list[str], depth: int) -> bool:
    """Reads one venue through ccxt; feeds the engine only if markets, a book and a funding rate came."""
    import ccxt

    try:
        transport = CcxtTransport(cid, ep.get("ws_url", ""), ep.get("rest_url", ""))
    except AttributeError:  # no such class in this ccxt version (BitMEX, CoinDCX)
        log.warning("%s: no ccxt exchange class %r", vid, cid)
        return False
    transport.exchange.options.update(SWAP_ONLY.get(cid, {}))
    transport.exchange.has["fetchCurrencies"] = False  # markets are enough; currencies are other calls
    try:
        raw = await transport.fetch(METADATA_PATH)
    except Exception as exc:  # ccxt failing on an answer it did not expect: the native side reads it
        log.warning("%s load_markets: %s: %s", vid, type(exc).__name__, exc)
        raw = None
    try:
        if raw is None:
            return False
        adapter = venue_class(vid)(Registry())
        insts = Registry(adapter.parse_metadata(METADATA_PATH, raw)).select(vid, assets, inverse=adapter.prefers_inverse)
        books, funding = [], []
        ex = transport.exchange
        for inst in insts:
            try:
                books.append(book_message(await ex.fetch_order_book(inst.venue_symbol, depth)))
                if ex.has.get("fetchFundingRate"):
                    funding.append(funding_message(await ex.fetch_funding_rate(inst.venue_symbol)))
            except (ccxt.BaseError, LookupError, TypeError, ValueError) as exc:
                log.warning("%s %s: %s: %s", vid, inst.venue_symbol, type(exc).__name__, exc)
    finally:
        await transport.close()
    if not books or not funding:
        return False
    engine.add_venue(vid)
    engine.on_rest(vid, METADATA_PATH, raw, time.time_ns())
    engine.set_connected(vid, True, time.time_ns())
    for msg in books + funding:
        engine.on_message(vid, msg, time.time_ns())
    return True


async def _native_feed(engine: Engine, venue: str, ep: dict[str, str], assets: list[str],
                       http: aiohttp.ClientSession) -> VenueFeed | None:
    try:
        engine.add_venue(venue)
    except KeyError as exc:
        log.warning("%s: %s", venue, exc.args[0])
        return None
    adapter = engine.adapters[venue]
    feed = VenueFeed(engine, venue, [], ep.get("ws_url") or adapter.ws_url, ep.get("rest_url") or adapter.rest_url,
                     http=http)
    await feed.load_metadata()
    feed.instruments = engine.registry.select(venue, assets, inverse=adapter.prefers_inverse)
    if not feed.instruments:
        log.warning("%s: none of %s is listed", venue, ",".join(assets))
        return None
    return feed


def _complete(feed: VenueFeed) -> bool:
    e, v = feed.engine, feed.venue
    return all((sb := e.books.get((v, i.venue_symbol))) is not None and sb.state == SYNCED
               and (v, i.venue_symbol) in e.funding for i in feed.instruments)
