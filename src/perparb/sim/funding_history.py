"""Funding-rate history endpoints of the simulated venues.

Every contract has a deterministic settled-funding series under the simulator's seed: one
rate per settlement on the venue's grid (8 h at 00/08/16 UTC; Hyperliquid, dYdX and Deribit hourly), listed
400 days before the simulator started and ending at the wall clock. Bybit switches from
8 h to 4 h settlements 20 days before the start, as Bybit does per symbol, so readers meet
an interval change inside the history. Each endpoint takes the venue's own query
parameters and pages the way the venue does (newest first or oldest first, its page sizes
and time filters), so the same readers work against the simulator and the venue.
"""

from __future__ import annotations

import hashlib
import math
import random
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from aiohttp import web

if TYPE_CHECKING:
    from perparb.sim.server import SimVenue

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
HOURLY = ("hyperliquid", "dydx", "deribit")
CHANGING_VENUE = "bybit"  # 8 h settlements before change_ms, 4 h from then on
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class FundingHistory:
    def __init__(self, sv: SimVenue, seed: int = 1, now_ms: int | None = None) -> None:
        self.sv = sv
        self.venue = sv.venue.id
        self.seed = seed
        day = (now_ms if now_ms is not None else int(time.time() * 1000)) // DAY_MS * DAY_MS
        self.listed_ms = day - 400 * DAY_MS
        self.change_ms = day - 20 * DAY_MS if self.venue == CHANGING_VENUE else None
        self._levels: dict[str, tuple[float, float]] = {}  # per symbol: mean rate per 8 h, wave phase
        self.requests: list[str] = []  # every HTTP request the venue answered, method and path

    # -- the series ------------------------------------------------------------------------
    def interval_ms(self, t_ms: int) -> int:
        """The length of the settlement period that ends at ``t_ms``: the first 4 h period
        ends 4 h after the last 8 h settlement, at change_ms."""
        if self.venue in HOURLY:
            return HOUR_MS
        if self.change_ms is not None and t_ms > self.change_ms:
            return 4 * HOUR_MS
        return 8 * HOUR_MS

    def times(self, lo_ms: int, hi_ms: int) -> list[int]:
        """Settlement times in [lo_ms, hi_ms], oldest first, within the listing and the clock."""
        lo = max(lo_ms, self.listed_ms)
        hi = min(hi_ms, int(time.time() * 1000))
        step = self.interval_ms(lo)  # grids meet at change_ms (a multiple of 8 h)
        out = []
        t = -(-lo // step) * step
        while t <= hi:
            out.append(t)
            t += self.interval_ms(t + 1)
        return out

    def rate(self, symbol: str, t_ms: int) -> float:
        """The rate settled at ``t_ms``: a contract-specific level, a slow 11-day wave and
        noise, scaled to the settlement's interval; 8 decimals like the venues print."""
        if symbol not in self._levels:
            base = random.Random(f"{self.seed}:{self.venue}:{symbol}")
            self._levels[symbol] = (base.uniform(-2e-5, 1.2e-4), base.uniform(0.0, 2 * math.pi))
        level, phase = self._levels[symbol]
        digest = hashlib.blake2b(f"{self.seed}:{self.venue}:{symbol}:{t_ms}".encode(), digest_size=16).digest()
        u1, u2 = ((int.from_bytes(digest[i:i + 8], "big") + 0.5) / 2**64 for i in (0, 8))
        noise = 6e-5 * math.sqrt(-2.0 * math.log(u1)) * math.cos(2 * math.pi * u2)  # Box-Muller
        per_8h = level + 1e-4 * math.sin(2 * math.pi * t_ms / (11 * DAY_MS) + phase) + noise
        return round(per_8h * self.interval_ms(t_ms) / (8 * HOUR_MS), 8)

    def rated(self, symbol: str, times: list[int]) -> list[tuple[int, float]]:
        return [(t, self.rate(symbol, t)) for t in times]

    def rows(self, symbol: str, lo_ms: int, hi_ms: int) -> list[tuple[int, float]]:
        """The series in [lo_ms, hi_ms], oldest first: (settlement ms, rate)."""
        return self.rated(symbol, self.times(lo_ms, hi_ms))

    # -- http ------------------------------------------------------------------------------
    def attach(self, app: web.Application) -> None:
        @web.middleware
        async def count(request: web.Request, handler: Handler) -> web.StreamResponse:
            self.requests.append(f"{request.method} {request.path_qs}")
            return await handler(request)

        app.middlewares.append(count)
        route = {
            "binance": ("GET", "/fapi/v1/fundingRate", self._binance),
            "okx": ("GET", "/api/v5/public/funding-rate-history", self._okx),
            "bybit": ("GET", "/v5/market/funding/history", self._bybit),
            "gate": ("GET", "/api/v4/futures/usdt/funding_rate", self._gate),
            "bitget": ("GET", "/api/v2/mix/market/history-fund-rate", self._bitget),
            "bitmex": ("GET", "/api/v1/funding", self._bitmex),
            "hyperliquid": ("POST", "/info", self._hyperliquid),
            "mexc": ("GET", "/api/v1/contract/funding_rate/history", self._mexc),
            "dydx": ("GET", "/v4/historicalFunding/{ticker}", self._dydx),
            "kucoin": ("GET", "/api/v1/contract/funding-rates", self._kucoin),
            "deribit": ("GET", "/api/v2/public/get_funding_rate_history", self._deribit),
        }.get(self.venue)
        if route is not None:
            app.router.add_route(*route)

    def _known(self, symbol: str | None) -> bool:
        """Every contract of the venue has a history, not only those the simulator quotes
        (BitMEX quotes the inverse XBTUSD; XBTUSDT has funding too)."""
        return symbol is not None and (symbol in self.sv.instruments
                                       or self.sv.venue.registry.get(self.venue, symbol) is not None)

    async def _binance(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        sym = q.get("symbol")
        if not self._known(sym):
            return web.json_response({"code": -1121, "msg": "Invalid symbol."}, status=400)
        limit = min(int(q.get("limit", 100)), 1000)
        start, end = _int(q.get("startTime")), _int(q.get("endTime"))
        ts = self.times(start or 0, end or 2**62)
        # From startTime forwards; without it, the latest ones.
        rows = self.rated(sym, ts[:limit] if start is not None else ts[-limit:])  # type: ignore[arg-type]
        return web.json_response([{"symbol": sym, "fundingTime": t, "fundingRate": f"{r:.8f}", "markPrice": ""}
                                  for t, r in rows])

    async def _okx(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        sym = q.get("instId")
        if not self._known(sym):
            return web.json_response({"code": "51001", "msg": "Instrument ID does not exist", "data": []})
        limit = min(int(q.get("limit", 100)), 100)
        after, before = _int(q.get("after")), _int(q.get("before"))
        # after: older than; before: newer than. Always the newest page of what is left.
        ts = self.times((before + 1) if before is not None else 0, (after - 1) if after is not None else 2**62)
        rows = self.rated(sym, ts[-limit:][::-1])  # type: ignore[arg-type]
        data = [{"instType": "SWAP", "instId": sym, "formulaType": "withRate", "fundingRate": f"{r:.8f}",
                 "realizedRate": f"{r:.8f}", "fundingTime": str(t), "method": "current_period"} for t, r in rows]
        return web.json_response({"code": "0", "msg": "", "data": data})

    async def _bybit(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        sym = q.get("symbol")
        if not self._known(sym):
            return web.json_response({"retCode": 10001, "retMsg": "params error: Symbol Is Invalid", "result": {}})
        start, end = _int(q.get("startTime")), _int(q.get("endTime"))
        if start is not None and end is None:
            return web.json_response({"retCode": 10001, "retMsg": "startTime must pass with endTime", "result": {}})
        limit = min(int(q.get("limit", 200)), 200)
        ts = self.times(start or 0, end if end is not None else 2**62)
        rows = self.rated(sym, ts[-limit:][::-1])  # type: ignore[arg-type]
        return web.json_response({
            "retCode": 0, "retMsg": "OK", "retExtInfo": {}, "time": int(time.time() * 1000),
            "result": {"category": q.get("category", "linear"), "list": [
                {"symbol": sym, "fundingRate": f"{r:.8f}", "fundingRateTimestamp": str(t)} for t, r in rows]}})

    async def _gate(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        sym = q.get("contract")
        if not self._known(sym):
            return web.json_response({"label": "CONTRACT_NOT_FOUND", "message": "Contract not found"}, status=400)
        limit = min(int(q.get("limit", 100)), 1000)
        lo, hi = _int(q.get("from")), _int(q.get("to"))
        ts = self.times(lo * 1000 if lo is not None else 0, hi * 1000 if hi is not None else 2**62)
        rows = self.rated(sym, ts[-limit:][::-1])  # type: ignore[arg-type]
        return web.json_response([{"t": t // 1000, "r": f"{r:.8f}"} for t, r in rows])

    async def _bitget(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        sym = q.get("symbol")
        if not self._known(sym):
            return web.json_response({"code": "40034", "msg": "Parameter does not exist", "data": None}, status=400)
        size = min(int(q.get("pageSize", 20)), 100)
        page = max(int(q.get("pageNo", 1)), 1)
        rows = self.rated(sym, self.times(0, 2**62)[::-1][(page - 1) * size: page * size])  # type: ignore[arg-type]
        return web.json_response({"code": "00000", "msg": "success", "requestTime": int(time.time() * 1000),
                                  "data": [{"symbol": sym, "fundingRate": f"{r:.8f}", "fundingTime": str(t)}
                                           for t, r in rows]})

    async def _bitmex(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        sym = q.get("symbol")
        if not self._known(sym):
            return web.json_response({"error": {"message": "Invalid symbol", "name": "HTTPError"}}, status=400)
        count = min(int(q.get("count", 100)), 500)
        start, end = _iso_ms(q.get("startTime")), _iso_ms(q.get("endTime"))
        ts = self.times(start or 0, end if end is not None else 2**62)
        rows = self.rated(sym, ts[::-1][:count] if q.get("reverse") == "true" else ts[:count])  # type: ignore[arg-type]
        return web.json_response([
            {"timestamp": _iso(t), "symbol": sym, "fundingInterval": _iso(self.interval_ms(t) + 946_684_800_000),
             "fundingRate": r, "fundingRateDaily": round(r * DAY_MS / self.interval_ms(t), 10)} for t, r in rows])

    async def _hyperliquid(self, request: web.Request) -> web.StreamResponse:
        try:
            body: Any = await request.json()
        except ValueError:
            body = None
        if not isinstance(body, dict) or body.get("type") != "fundingHistory":
            return await self.sv._handle(request)  # every other /info request
        coin = body.get("coin")
        if not self._known(coin):
            return web.json_response([])
        start, end = _int(body.get("startTime")), _int(body.get("endTime"))
        rows = self.rated(coin, self.times(start or 0, end if end is not None else 2**62)[:500])  # type: ignore[arg-type]
        return web.json_response([{"coin": coin, "fundingRate": f"{r:.8f}", "premium": "0.0", "time": t}
                                  for t, r in rows])

    async def _mexc(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        sym = q.get("symbol")
        if not self._known(sym):
            return web.json_response({"success": False, "code": 1001, "message": "contract not exists"})
        size = min(int(q.get("page_size", 20)), 1000)
        page = max(int(q.get("page_num", 1)), 1)
        every = self.times(0, 2**62)[::-1]
        rows = self.rated(sym, every[(page - 1) * size: page * size])  # type: ignore[arg-type]
        return web.json_response({"success": True, "code": 0, "data": {
            "pageSize": size, "totalCount": len(every), "totalPage": -(-len(every) // size), "currentPage": page,
            "resultList": [{"symbol": sym, "fundingRate": r, "settleTime": t,
                            "collectCycle": self.interval_ms(t) // HOUR_MS} for t, r in rows]}})

    async def _dydx(self, request: web.Request) -> web.StreamResponse:
        ticker = request.match_info["ticker"]
        if not self._known(ticker):
            return web.json_response({"errors": [{"msg": f"{ticker} not found"}]}, status=404)
        q = request.query
        limit = min(int(q.get("limit", 100)), 1000)
        before = _iso_ms(q.get("effectiveBeforeOrAt"))
        rows = self.rated(ticker, self.times(0, before if before is not None else 2**62)[-limit:][::-1])
        return web.json_response({"historicalFunding": [
            {"ticker": ticker, "rate": f"{r:.8f}", "price": "0", "effectiveAtHeight": str(t // 1000),
             "effectiveAt": _iso(t)} for t, r in rows]})

    async def _kucoin(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        sym = q.get("symbol")
        if not self._known(sym):
            return web.json_response({"code": "40010", "msg": "Contract does not exist"})
        lo, hi = _int(q.get("from")), _int(q.get("to"))
        ts = self.times(lo or 0, hi if hi is not None else 2**62)[-100:][::-1]  # at most 100, newest first
        return web.json_response({"code": "200000", "data": [
            {"symbol": sym, "fundingRate": r, "timepoint": t} for t, r in self.rated(sym, ts)]})  # type: ignore[arg-type]

    async def _deribit(self, request: web.Request) -> web.StreamResponse:
        q = request.query
        sym = q.get("instrument_name")
        if not self._known(sym):
            return web.json_response({"jsonrpc": "2.0", "error": {"code": 10009, "message": "not_found"}}, status=400)
        lo, hi = _int(q.get("start_timestamp")), _int(q.get("end_timestamp"))
        ts = self.times(lo or 0, hi if hi is not None else 2**62)[-744:]  # at most 744, oldest first
        return web.json_response({"jsonrpc": "2.0", "usIn": 0, "usOut": 0, "result": [
            {"timestamp": t, "index_price": 65000.0, "prev_index_price": 65000.0, "interest_1h": r,
             "interest_8h": r * 8} for t, r in self.rated(sym, ts)]})  # type: ignore[arg-type]


def _int(v: Any) -> int | None:
    return None if v is None or v == "" else int(v)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def _iso_ms(v: str | None) -> int | None:
    if not v:
        return None
    return int(datetime.fromisoformat(v.replace("Z", "+00:00")).timestamp() * 1000)
