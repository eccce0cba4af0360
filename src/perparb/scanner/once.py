"""``perparb scan --once``: one REST snapshot of books and funding through ccxt, scanned by
the same engine and scanner as the live feeds.

Each venue is read through its ccxt exchange (``binance`` → ``binanceusdm``, …): markets,
an order book and the funding rate per contract. The results enter the engine as the
generic ccxt adapter's messages, so units, gates and sizing are exactly the live ones.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from perparb.engine import Engine
from perparb.instruments.registry import Registry
from perparb.scanner.core import Scanner
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
}


def ccxt_id(venue: str) -> str | None:
    return venue[len(PREFIX):] if venue.startswith(PREFIX) else CCXT_IDS.get(venue)


async def scan_once(venues: list[str], assets: list[str], scanner: Scanner,
                    endpoints: dict[str, dict[str, str]] | None = None, depth: int = 50) -> tuple[Engine, dict[str, str]]:
    """Returns the engine holding the snapshot, and ccxt venue id -> the name asked for."""
    engine = Engine(Registry(), [], scanner)
    names: dict[str, str] = {}
    for venue in venues:
        cid = ccxt_id(venue)
        if cid is None:
            log.warning("%s: no ccxt exchange for this venue; skipped", venue)
            continue
        vid = PREFIX + cid
        names[vid] = venue
        try:
            engine.add_venue(vid)
        except KeyError as exc:
            log.warning("%s: %s", venue, exc.args[0])
            continue
        ep = (endpoints or {}).get(venue, {})
        transport = CcxtTransport(cid, ep.get("ws_url", ""), ep.get("rest_url", ""))
        transport.exchange.options.update(SWAP_ONLY.get(cid, {}))
        try:
            await _read_venue(engine, vid, transport, assets, depth)
        finally:
            await transport.close()
    now = time.time_ns()
    engine.advance(now)
    engine.scanner.sweep(now, engine.status)
    return engine, names


async def _read_venue(engine: Engine, vid: str, transport: CcxtTransport, assets: list[str], depth: int) -> None:
    import ccxt

    raw = await transport.fetch(METADATA_PATH)
    if raw is None:
        return
    engine.on_rest(vid, METADATA_PATH, raw, time.time_ns())
    engine.set_connected(vid, True, time.time_ns())
    ex = transport.exchange
    for inst in engine.registry.select(vid, assets, inverse=engine.adapters[vid].prefers_inverse):
        try:
            ob = await ex.fetch_order_book(inst.venue_symbol, depth)
            engine.on_message(vid, book_message(ob), time.time_ns())
            if ex.has.get("fetchFundingRate"):
                fr = await ex.fetch_funding_rate(inst.venue_symbol)
                engine.on_message(vid, funding_message(fr), time.time_ns())
        except ccxt.BaseError as exc:
            engine.status[vid].last_error = str(exc)
            log.warning("%s %s: %s", vid, inst.venue_symbol, exc)
