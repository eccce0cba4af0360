"""Readers of settled funding-rate history, one per venue, each paging the venue's way.

Through ccxt's ``fetch_funding_rate_history`` where ccxt has the venue; the venue's REST
otherwise (BitMEX has no ccxt class in the pinned version; Hyperliquid, KuCoin and Deribit
key their history by the contract name the registry already holds, so they need no market
load, which ccxt's KuCoin and Deribit classes make in several calls). The venues
page differently, and a reader must get every settlement of a range even when the
interval changes inside it:

- ``forward`` (Binance): oldest first from ``since``; the next page starts after the last row.
- ``window`` (Bybit, Gate): newest first inside [since, until]; windows of one page of
  hourly settlements, so no window can hold more than a page whatever the interval.
- ``after`` (OKX) and ``until`` (dYdX): newest first older than a time; walks back from the end.
- ``pages`` (Bitget, MEXC): newest first by page number, no time filter; walks back from now.

Requests are spaced per venue (ccxt's rate limiter; ``pace_s`` for the REST readers).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp

from perparb.model import Instrument
from perparb.scanner.once import CCXT_IDS, SWAP_ONLY
from perparb.venues.ccxt_generic.transport import override_urls

HOUR_MS = 3_600_000
Rows = list[tuple[int, float]]
Advance = Callable[[int], None]  # milliseconds of the range newly read

# venue -> (paging, page size, the page-number parameter of "pages")
CCXT_PAGING: dict[str, tuple[str, int, str]] = {
    "binance": ("forward", 1000, ""), "bybit": ("window", 200, ""), "gate": ("window", 1000, ""),
    "okx": ("after", 100, ""), "dydx": ("until", 100, ""),
    "bitget": ("pages", 100, "pageNo"), "mexc": ("pages", 100, "page_num"),
}
# Seconds between requests: BitMEX 30 a minute; Hyperliquid ~45 weight a page of 1200 a minute;
# KuCoin and Deribit public limits are per second, kept well under.
REST_PACE_S = {"bitmex": 2.0, "hyperliquid": 2.5, "kucoin": 0.5, "deribit": 0.5}
MAX_PAGES = 10_000


class FetchError(Exception):
    """The venue could not give the history: the reason is reported with the pair."""


class Reader:
    venue: str

    async def read(self, inst: Instrument, lo: int, hi: int, advance: Advance) -> Rows:
        """Every settlement of ``inst`` with lo <= time <= hi, oldest first."""
        raise NotImplementedError

    async def close(self) -> None:
        pass


def unsupported(venue: str) -> str | None:
    """Why ``venue`` has no funding history here, or None when it has a reader."""
    if venue in CCXT_PAGING or venue in REST_PACE_S:
        return None
    cid = CCXT_IDS.get(venue, venue.removeprefix("ccxt:"))
    import ccxt.async_support as ca

    cls = getattr(ca, cid, None)
    if cls is None:
        return f"no ccxt exchange class {cid!r} and no REST reader for its funding history"
    if not cls().has.get("fetchFundingRateHistory"):
        return f"ccxt {cid} has no fetchFundingRateHistory and perparb has no REST reader for it"
    return f"ccxt {cid} has fetchFundingRateHistory, but its paging is not supported by perparb yet"


def reader(venue: str, rest_url: str = "", pace_s: float | None = None) -> Reader:
    if venue == "bitmex":
        return BitmexReader(rest_url, REST_PACE_S[venue] if pace_s is None else pace_s)
    if venue == "hyperliquid":
        return HyperliquidReader(rest_url, REST_PACE_S[venue] if pace_s is None else pace_s)
    if venue == "kucoin":
        return KucoinReader(rest_url, REST_PACE_S[venue] if pace_s is None else pace_s)
    if venue == "deribit":
        return DeribitReader(rest_url, REST_PACE_S[venue] if pace_s is None else pace_s)
    return CcxtReader(venue, rest_url)


def _clip(rows: Rows, lo: int, hi: int) -> Rows:
    return sorted({t: r for t, r in rows if lo <= t <= hi}.items())


class CcxtReader(Reader):
    def __init__(self, venue: str, rest_url: str = "") -> None:
        import ccxt.async_support as ca

        self.venue = venue
        self.paging, self.page, self.page_param = CCXT_PAGING[venue]
        cid = CCXT_IDS[venue]
        self.ex = getattr(ca, cid)({"enableRateLimit": True})
        if rest_url:
            self.ex.urls = override_urls(self.ex.urls, "", rest_url)
        self.ex.options.update(SWAP_ONLY.get(cid, {}))
        self.ex.has["fetchCurrencies"] = False  # markets are enough; currencies are other calls
        self._markets: asyncio.Task[Any] | None = None

    async def _symbol(self, inst: Instrument) -> str:
        """The ccxt symbol of the registry's contract, from the venue's live markets."""
        import ccxt

        if self._markets is None:
            self._markets = asyncio.ensure_future(self.ex.load_markets())
        try:
            await self._markets
        except ccxt.BaseError as exc:
            raise FetchError(f"markets: {type(exc).__name__}: {exc}") from None
        found = [m for m in self.ex.markets_by_id.get(inst.venue_symbol, []) if m.get("swap")]
        if not found:
            raise FetchError(f"{inst.venue_symbol} is not among {self.venue}'s perpetual markets")
        return str(found[0]["symbol"])

    async def _call(self, symbol: str, since: int | None, params: dict[str, Any]) -> Rows:
        import ccxt

        try:
            got = await self.ex.fetch_funding_rate_history(symbol, since, self.page, params)
        except ccxt.BaseError as exc:
            raise FetchError(f"{type(exc).__name__}: {exc}") from None
        return [(int(r["timestamp"]), float(r["fundingRate"])) for r in got
                if r.get("timestamp") is not None and r.get("fundingRate") is not None]

    async def read(self, inst: Instrument, lo: int, hi: int, advance: Advance) -> Rows:
        symbol = await self._symbol(inst)
        rows: Rows = []
        if self.paging == "forward":
            cursor = lo
            for _ in range(MAX_PAGES):
                got = await self._call(symbol, cursor, {"until": hi})
                rows += got
                nxt = max((t for t, _ in got), default=hi) + 1
                advance(min(nxt, hi + 1) - cursor)
                if len(got) < self.page or nxt > hi:
                    break
                cursor = nxt
        elif self.paging == "window":
            span = self.page * HOUR_MS  # at most one page of settlements at one an hour
            for w in range(lo, hi + 1, span):
                top = min(w + span - 1, hi)
                rows += await self._call(symbol, w, {"until": top})
                advance(top + 1 - w)
        else:
            # Newest first: walk back from the end until the page reaches lo.
            cursor, page_no = hi + 1, 1  # the first settlement not wanted
            for _ in range(MAX_PAGES):
                params: dict[str, Any] = (
                    {"after": cursor} if self.paging == "after"  # older than
                    else {"until": cursor - 1} if self.paging == "until"  # at or before
                    else {self.page_param: page_no})
                got = await self._call(symbol, None, params)
                rows += got
                oldest = min((t for t, _ in got), default=lo)
                advance(max(0, min(cursor, hi + 1) - max(oldest, lo)))
                if len(got) < self.page or oldest <= lo:
                    break
                cursor, page_no = oldest, page_no + 1
        return _clip(rows, lo, hi)

    async def close(self) -> None:
        if self._markets is not None and not self._markets.done():
            self._markets.cancel()
        await self.ex.close()


class _RestReader(Reader):
    default_url = ""

    def __init__(self, rest_url: str, pace_s: float) -> None:
        self.base = (rest_url or self.default_url).rstrip("/")
        self.pace_s = pace_s
        self._last = 0.0
        self.http = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30))

    async def _request(self, method: str, path: str, **kw: Any) -> Any:
        wait = self._last + self.pace_s - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        self._last = time.monotonic()
        try:
            async with self.http.request(method, self.base + path, **kw) as resp:
                text = await resp.text()
                if resp.status != 200:
                    raise FetchError(f"{method} {path}: HTTP {resp.status}: {text[:200]}")
                try:
                    import json

                    return json.loads(text)
                except ValueError:
                    raise FetchError(f"{method} {path}: not JSON: {text[:200]}") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise FetchError(f"{method} {path}: {type(exc).__name__}: {exc}") from None

    async def close(self) -> None:
        await self.http.close()


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


class BitmexReader(_RestReader):
    """``GET /api/v1/funding``: oldest first from ``startTime``, 500 a page."""

    venue = "bitmex"
    default_url = "https://www.bitmex.com"
    page = 500

    async def read(self, inst: Instrument, lo: int, hi: int, advance: Advance) -> Rows:
        rows: Rows = []
        cursor = lo
        for _ in range(MAX_PAGES):
            got = await self._request("GET", "/api/v1/funding", params={
                "symbol": inst.venue_symbol, "startTime": _iso(cursor), "endTime": _iso(hi),
                "count": str(self.page), "reverse": "false"})
            if not isinstance(got, list):
                raise FetchError(f"/api/v1/funding: expected a list, got {str(got)[:200]}")
            page = [(int(datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")).timestamp() * 1000),
                     float(r["fundingRate"])) for r in got if r.get("fundingRate") is not None]
            rows += page
            nxt = max((t for t, _ in page), default=hi) + 1
            advance(min(nxt, hi + 1) - cursor)
            if len(got) < self.page or nxt > hi:
                break
            cursor = nxt
        return _clip(rows, lo, hi)


class HyperliquidReader(_RestReader):
    """``POST /info {"type":"fundingHistory"}``: oldest first from ``startTime``, 500 a page."""

    venue = "hyperliquid"
    default_url = "https://api.hyperliquid.xyz"
    page = 500

    async def read(self, inst: Instrument, lo: int, hi: int, advance: Advance) -> Rows:
        rows: Rows = []
        cursor = lo
        for _ in range(MAX_PAGES):
            got = await self._request("POST", "/info", json={
                "type": "fundingHistory", "coin": inst.venue_symbol, "startTime": cursor, "endTime": hi})
            if not isinstance(got, list):
                raise FetchError(f"/info fundingHistory: expected a list, got {str(got)[:200]}")
            page = [(int(r["time"]), float(r["fundingRate"])) for r in got if r.get("fundingRate") is not None]
            rows += page
            nxt = max((t for t, _ in page), default=hi) + 1
            advance(min(nxt, hi + 1) - cursor)
            if len(got) < self.page or nxt > hi:
                break
            cursor = nxt
        return _clip(rows, lo, hi)


class _WindowReader(_RestReader):
    """Time windows of at most ``window_h`` hourly settlements, so no window can hold more
    than the venue returns at once, whatever the order it returns them in."""

    window_h = 100

    async def page(self, inst: Instrument, lo: int, hi: int) -> Rows:
        raise NotImplementedError

    async def read(self, inst: Instrument, lo: int, hi: int, advance: Advance) -> Rows:
        rows: Rows = []
        span = self.window_h * HOUR_MS
        for w in range(lo, hi + 1, span):
            top = min(w + span - 1, hi)
            rows += await self.page(inst, w, top)
            advance(top + 1 - w)
        return _clip(rows, lo, hi)


class KucoinReader(_WindowReader):
    """``GET /api/v1/contract/funding-rates?symbol&from&to`` (ms, both inclusive)."""

    venue = "kucoin"
    default_url = "https://api-futures.kucoin.com"
    window_h = 100

    async def page(self, inst: Instrument, lo: int, hi: int) -> Rows:
        got = await self._request("GET", "/api/v1/contract/funding-rates",
                                  params={"symbol": inst.venue_symbol, "from": str(lo), "to": str(hi)})
        data = got.get("data") if isinstance(got, dict) else None
        if not isinstance(data, list):
            raise FetchError(f"/api/v1/contract/funding-rates: {str(got)[:200]}")
        return [(int(r["timepoint"]), float(r["fundingRate"])) for r in data if r.get("fundingRate") is not None]


class DeribitReader(_WindowReader):
    """``GET /api/v2/public/get_funding_rate_history``: Deribit funds continuously; its history
    is hourly, ``interest_1h`` the rate accrued over the hour ending at ``timestamp``. At most
    744 rows an answer, so 720-hour windows."""

    venue = "deribit"
    default_url = "https://www.deribit.com"
    window_h = 720

    async def page(self, inst: Instrument, lo: int, hi: int) -> Rows:
        got = await self._request("GET", "/api/v2/public/get_funding_rate_history", params={
            "instrument_name": inst.venue_symbol, "start_timestamp": str(lo), "end_timestamp": str(hi)})
        result = got.get("result") if isinstance(got, dict) else None
        if not isinstance(result, list):
            raise FetchError(f"/api/v2/public/get_funding_rate_history: {str(got)[:200]}")
        return [(int(r["timestamp"]), float(r["interest_1h"])) for r in result if r.get("interest_1h") is not None]
