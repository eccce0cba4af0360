"""MEXC futures ("contract") perpetuals (``BTC_USDT``).

Books: REST-bridged. ``push.depth`` (incremental, subscribed uncompressed so that every
version is pushed) carries ``version``, which goes up by exactly 1 per push: a push is a delta
over ``version`` chained to ``prev_seq = version - 1`` (merged pushes that say ``begin``..``end``
cover that range and chain to ``begin - 1``). Pushes are buffered until the REST snapshot
``/api/v1/contract/depth/{symbol}`` (its ``version``); pushes up to that version are dropped, the
next must be ``version + 1``. On a gap the REST snapshot is fetched again (MEXC's alternative,
replaying ``depth_commits``, is not used). ``push.depth.full`` (top 5/10/20) is a whole book.
MEXC has no best-bid/offer channel (``push.ticker`` has prices without sizes), so quotes come
from the synced book.
Sizes are CONTRACTS: one is ``contractSize`` coins of the base on USDT/USDC-margined contracts,
and ``contractSize`` USD (coins = USD / price) on coin-margined ones (settle coin = base), the
latter unverified. Book levels are JSON numbers ``[price, contracts, orders]``.
Funding: ``push.funding.rate`` ``rate`` is the rate of the current period, settled at
``nextSettleTime`` (it moves until then); MEXC publishes no rate beyond it. The interval is
``collectCycle`` hours from ``/api/v1/contract/funding_rate`` (every contract; also read from a
push that carries it). ``push.ticker`` also has ``fundingRate`` but no settlement time; a push
without ``nextSettleTime`` (MEXC's own example has none) and the ticker take the next point of
the contract's settlement grid: ``nextSettleTime`` of ``/api/v1/contract/funding_rate`` stepped
by the interval, else multiples of the interval since the Unix epoch, where MEXC's documented
``nextSettleTime`` values sit.
"""

from __future__ import annotations

import math
import time
from typing import Any
from urllib.parse import urlsplit

import msgspec

from perparb.instruments.canonical import canonical_symbol, split_multiple
from perparb.instruments.registry import Registry
from perparb.model import BookDelta, BookSnapshot, Funding, Instrument, Level, MarketEvent, Trade
from perparb.sim.model import START_PRICES
from perparb.venues import register
from perparb.venues.base import MS, Connection, Venue, asked_symbol, decode_error, listing

HOUR_MS = 3_600_000
_DETAIL_PATH = "/api/v1/contract/detail"
_FUNDING_PATH = "/api/v1/contract/funding_rate"
_DEPTH_PREFIX = "/api/v1/contract/depth/"


class _DepthData(msgspec.Struct):
    version: int
    asks: list[list[float]] = []  # [price, contracts, orders]; REST rows may omit orders
    bids: list[list[float]] = []
    begin: int = 0
    end: int = 0
    timestamp: int = 0


class _Depth(msgspec.Struct):
    data: _DepthData
    symbol: str = ""
    ts: int = 0


class _FundingData(msgspec.Struct):
    symbol: str = ""
    rate: float | None = None
    fundingRate: float | None = None  # the name MEXC's field table uses
    nextSettleTime: int = 0
    collectCycle: float = 0.0


class _FundingPush(msgspec.Struct):
    data: _FundingData
    symbol: str = ""
    ts: int = 0


class _TickerData(msgspec.Struct):
    symbol: str = ""
    fundingRate: float | None = None
    fairPrice: float | None = None
    indexPrice: float | None = None
    timestamp: int = 0


class _TickerPush(msgspec.Struct):
    data: _TickerData
    symbol: str = ""
    ts: int = 0


class _Deal(msgspec.Struct):
    p: float
    v: float  # contracts
    T: int  # 1 taker bought, 2 taker sold
    t: int = 0
    i: str | int = ""


class _Deals(msgspec.Struct):
    data: _Deal | list[_Deal]  # one deal per push until 2025, a list since
    symbol: str = ""
    ts: int = 0


class _Head(msgspec.Struct):
    channel: str = ""
    data: Any = None


class _RestDepth(msgspec.Struct):
    success: bool = True
    code: int = 0
    message: str = ""
    data: _DepthData | None = None


class _Detail(msgspec.Struct):
    symbol: str
    baseCoin: str
    quoteCoin: str
    settleCoin: str
    contractSize: float
    priceUnit: float = 0.0
    volUnit: float = 0.0
    minVol: float = 0.0
    state: int = 0  # 0 enabled, 1 delivery, 2 completed, 3 offline, 4 paused
    futureType: int = 1  # 1 perpetual


class _FundingInfo(msgspec.Struct):
    symbol: str
    collectCycle: float = 0.0
    nextSettleTime: int = 0


def _dec(t: Any) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(t, strict=False)


_depth, _funding, _ticker = _dec(_Depth), _dec(_FundingPush), _dec(_TickerPush)
_deals, _head = _dec(_Deals), _dec(_Head)
_rest_depth, _depth_body = _dec(_RestDepth), _dec(_DepthData)
_enc = msgspec.json.Encoder()

_CHANNEL = b'"channel":"'
_KINDS = {b"push.depth": "book", b"push.depth.full": "full", b"push.funding.rate": "funding",
          b"push.ticker": "ticker", b"push.deal": "trade"}
_SIM_TOPICS = {"sub.depth": "book", "sub.funding.rate": "funding", "sub.deal": "trade"}


class Mexc(Venue):
    id = "mexc"
    name = "MEXC futures"
    ws_url = "wss://contract.mexc.com"
    rest_url = "https://api.mexc.com"
    book_sync = "rest_bridged"
    heartbeat_text = '{"method":"ping"}'  # MEXC drops a connection with no ping for 1 min; 10-20 s advised
    heartbeat_s = 15.0
    silence_s = 30.0
    # Perpetual futures maker 0%, taker 0.02% (mexc.com fee article, 2025-09); contracts may
    # differ (makerFeeRate/takerFeeRate in the contract detail, zero-fee promotions).
    taker_fee = 0.0002
    maker_fee = 0.0
    metadata_paths = (_DETAIL_PATH, _FUNDING_PATH)

    def __init__(self, registry: Registry) -> None:
        super().__init__(registry)
        self._settle_ms: dict[str, int] = {}  # symbol → a settlement time (ms) from /funding_rate

    # -- feed ----------------------------------------------------------------------------
    def connections(self, instruments: list[Instrument], books: bool = True) -> list[Connection]:
        msgs = []
        for inst in instruments:
            s = inst.venue_symbol
            if books:
                msgs.append(_method("sub.depth", {"symbol": s, "compress": False}))
            msgs.append(_method("sub.funding.rate", {"symbol": s}))
        return [Connection(path="/edge", subscribe=msgs, instruments=instruments)]

    def book_snapshot_path(self, inst: Instrument) -> str | None:
        return f"{_DEPTH_PREFIX}{inst.venue_symbol}?limit=1000"

    def parse(self, raw: str | bytes, recv_ns: int) -> list[MarketEvent]:
        if isinstance(raw, str):
            raw = raw.encode()
        i = raw.find(_CHANNEL)
        try:
            if i >= 0:
                i += len(_CHANNEL)
                chan = raw[i : raw.find(b'"', i)]
            else:  # not compact JSON, or not JSON at all (which raises here)
                chan = _head.decode(raw).channel.encode()
            kind = _KINDS.get(chan)
            if kind == "book" or kind == "full":
                return self._book(_depth.decode(raw), kind == "full", recv_ns)
            if kind == "funding":
                return self._funding(_funding.decode(raw), recv_ns)
            if kind == "ticker":
                return self._ticker(_ticker.decode(raw), recv_ns)
            if kind == "trade":
                return self._trades(_deals.decode(raw), recv_ns)
            if chan == b"rs.error":
                self.problems.append(f"{self.id}: request failed: {_head.decode(raw).data}")
            elif i < 0 and not chan:
                raise ValueError("no channel")
        except (msgspec.DecodeError, ValueError, IndexError) as exc:
            raise decode_error(self.id, exc, raw) from None
        return []  # pong, rs.sub.* acks, index/fair price, klines

    def _book(self, m: _Depth, full: bool, recv_ns: int) -> list[MarketEvent]:
        inst = self.instrument(m.symbol)
        if inst is None:
            return []
        d = m.data
        bids, asks = _levels(inst, d.bids), _levels(inst, d.asks)
        if full:
            return [BookSnapshot(venue=self.id, symbol=inst.symbol, venue_symbol=m.symbol, bids=bids, asks=asks,
                                 seq=d.version, ts_exchange_ns=m.ts * MS, recv_ns=recv_ns)]
        first = d.begin or d.version
        return [BookDelta(venue=self.id, symbol=inst.symbol, venue_symbol=m.symbol, bids=bids, asks=asks,
                          first_seq=first, seq=d.version, prev_seq=first - 1, ts_exchange_ns=m.ts * MS,
                          recv_ns=recv_ns)]

    def _funding(self, m: _FundingPush, recv_ns: int) -> list[MarketEvent]:
        d = m.data
        rate = d.rate if d.rate is not None else d.fundingRate
        sym = d.symbol or m.symbol
        if rate is None:
            return []
        inst = self.instrument(sym)
        if inst is None:
            return []
        interval_h = d.collectCycle or inst.funding_interval_h
        next_ms = d.nextSettleTime or self._next_settle_ms(sym, interval_h, m.ts)
        return [Funding(venue=self.id, symbol=inst.symbol, venue_symbol=sym, rate=rate, interval_h=interval_h,
                        next_funding_ns=next_ms * MS, ts_exchange_ns=m.ts * MS, recv_ns=recv_ns)]

    def _ticker(self, m: _TickerPush, recv_ns: int) -> list[MarketEvent]:
        d = m.data
        sym = d.symbol or m.symbol
        if d.fundingRate is None:
            return []
        inst = self.instrument(sym)
        if inst is None:
            return []
        ts = d.timestamp or m.ts
        return [Funding(
            venue=self.id, symbol=inst.symbol, venue_symbol=sym, rate=d.fundingRate,
            interval_h=inst.funding_interval_h,
            next_funding_ns=self._next_settle_ms(sym, inst.funding_interval_h, ts) * MS,
            mark_px=inst.px(d.fairPrice) if d.fairPrice is not None else None,
            index_px=inst.px(d.indexPrice) if d.indexPrice is not None else None,
            ts_exchange_ns=ts * MS, recv_ns=recv_ns,
        )]

    def _next_settle_ms(self, sym: str, interval_h: float, now_ms: int) -> int:
        """The first settlement strictly after ``now_ms`` on the contract's grid."""
        step = round(interval_h * HOUR_MS)
        anchor = self._settle_ms.get(sym, 0)
        return anchor + ((now_ms - anchor) // step + 1) * step

    def _trades(self, m: _Deals, recv_ns: int) -> list[MarketEvent]:
        inst = self.instrument(m.symbol)
        if inst is None:
            return []
        deals = m.data if isinstance(m.data, list) else [m.data]
        return [Trade(venue=self.id, symbol=inst.symbol, venue_symbol=m.symbol, px=inst.px(t.p),
                      qty=inst.qty(t.v, t.p), side="buy" if t.T == 1 else "sell", trade_id=str(t.i),
                      ts_exchange_ns=(t.t or m.ts) * MS, recv_ns=recv_ns) for t in deals]

    # -- REST ----------------------------------------------------------------------------
    def parse_rest(self, path: str, raw: str | bytes, recv_ns: int) -> list[MarketEvent]:
        p = urlsplit(path).path
        if not p.startswith(_DEPTH_PREFIX):
            return []
        sym = p[len(_DEPTH_PREFIX):]
        inst = self.instrument(sym)
        if inst is None:
            return []
        try:
            env = _rest_depth.decode(raw)
            if not env.success or env.code:
                raise ValueError(f"code {env.code} ({env.message})")
            # {"success":..,"data":{..}} as served; the docs also show the bare object.
            d = env.data if env.data is not None else _depth_body.decode(raw)
        except (msgspec.DecodeError, ValueError) as exc:
            raise decode_error(self.id, exc, raw) from None
        return [BookSnapshot(venue=self.id, symbol=inst.symbol, venue_symbol=sym, bids=_levels(inst, d.bids),
                             asks=_levels(inst, d.asks), seq=d.version, ts_exchange_ns=d.timestamp * MS,
                             recv_ns=recv_ns)]

    # -- metadata ------------------------------------------------------------------------
    def parse_metadata(self, path: str, raw: str | bytes) -> list[Instrument]:
        p, ok = urlsplit(path).path, {"success": True, "code": 0}
        if p == _DETAIL_PATH:
            return self._details(listing(self.id, raw, _Detail, "data", ok=ok))
        if p == _FUNDING_PATH:
            return self._intervals(listing(self.id, raw, _FundingInfo, "data", ok=ok))
        return []

    def _details(self, data: list[_Detail]) -> list[Instrument]:
        out = []
        for c in data:
            if c.futureType != 1:
                continue  # delivery contracts
            base = c.symbol.partition("_")[0] or c.baseCoin  # the name says what one price unit is
            asset, scale = split_multiple(base)
            prev = self.table.get(c.symbol)
            out.append(Instrument(
                venue=self.id, venue_symbol=c.symbol, symbol=canonical_symbol(asset, c.quoteCoin, c.settleCoin),
                asset=asset, quote=c.quoteCoin, settle=c.settleCoin, inverse=c.settleCoin != c.quoteCoin,
                contract_size=c.contractSize, price_scale=scale, tick_size=c.priceUnit, lot_size=c.volUnit,
                min_qty=c.minVol, taker_fee=self.taker_fee, maker_fee=self.maker_fee,
                # The detail has no interval: keep what /funding_rate said (8 h is MEXC's default).
                funding_interval_h=prev.funding_interval_h if prev else 8.0,
                status="active" if c.state == 0 else "inactive", source=self.id,
            ))
        return out

    def _intervals(self, data: list[_FundingInfo]) -> list[Instrument]:
        out = []
        for f in data:
            if f.nextSettleTime:
                self._settle_ms[f.symbol] = f.nextSettleTime
            inst = self.table.get(f.symbol)
            if inst is not None and f.collectCycle and inst.funding_interval_h != f.collectCycle:
                out.append(msgspec.structs.replace(inst, funding_interval_h=f.collectCycle))
        return out

    # -- simulator -----------------------------------------------------------------------
    def sim_contract(self, asset: str) -> Instrument | None:
        """A MEXC-style USDT contract for the simulator (no recorded contract list exists):
        BTC_USDT with MEXC's documented 0.0001 BTC contract, others worth about 10 USDT."""
        px = START_PRICES.get(asset)
        if px is None:
            return None
        size = 0.0001 if asset == "BTC" else 10.0 ** round(math.log10(10.0 / px))
        return Instrument(
            venue=self.id, venue_symbol=f"{asset}_USDT", symbol=canonical_symbol(asset, "USDT", "USDT"), asset=asset,
            quote="USDT", settle="USDT", contract_size=size, tick_size=10.0 ** math.floor(math.log10(px * 1e-5)),
            lot_size=1.0, min_qty=1.0, taker_fee=self.taker_fee, maker_fee=self.maker_fee, funding_interval_h=8.0,
            status="active", source="sim")

    def sim_handle(self, text: str) -> tuple[list[str], list[tuple[str, str]]]:
        try:
            msg = msgspec.json.decode(text)
        except msgspec.DecodeError:
            return [], []
        if not isinstance(msg, dict) or not isinstance(msg.get("method"), str):
            return [], []
        now_ms = int(time.time() * 1000)
        method = msg["method"]
        if method == "ping":
            return [_enc.encode({"channel": "pong", "data": now_ms}).decode()], []
        if not method.startswith(("sub.", "unsub.")):
            return [], []
        param = msg.get("param") or {}
        kind = _SIM_TOPICS.get(method)
        topics = [(kind, param["symbol"])] if kind and isinstance(param.get("symbol"), str) else []
        return [_enc.encode({"channel": f"rs.{method}", "data": "success", "ts": now_ms}).decode()], topics

    def sim_book(self, inst: Instrument, snapshot: bool, bids: list[Level], asks: list[Level],
                 seq: int, prev_seq: int, first_seq: int, ts_ms: int) -> str:
        data: dict[str, object] = {"asks": [_row(a) for a in asks], "bids": [_row(b) for b in bids], "version": seq}
        if not snapshot and first_seq != seq:
            data.update(begin=first_seq, end=seq)  # a merged push
        # The wire has no previous version: a gap shows as version > previous + 1.
        return _enc.encode({"channel": "push.depth.full" if snapshot else "push.depth", "data": data,
                            "symbol": inst.venue_symbol, "ts": ts_ms}).decode()

    def sim_funding(self, inst: Instrument, rate: float, next_ms: int, mark: float, index: float,
                    ts_ms: int, full: bool = True) -> str:
        s = inst.venue_symbol
        data = {"rate": rate, "symbol": s, "nextSettleTime": next_ms}
        return _enc.encode({"channel": "push.funding.rate", "data": data, "symbol": s, "ts": ts_ms}).decode()

    def sim_rest_book(self, path: str) -> str | None:
        p = urlsplit(path).path
        return p[len(_DEPTH_PREFIX):] if p.startswith(_DEPTH_PREFIX) else None

    def sim_rest_book_body(self, inst: Instrument, bids: list[Level], asks: list[Level], seq: int,
                           ts_ms: int) -> bytes:
        return _enc.encode({"success": True, "code": 0, "data": {
            "asks": [_row(a) for a in asks], "bids": [_row(b) for b in bids], "version": seq, "timestamp": ts_ms}})

    def sim_metadata(self, instruments: list[Instrument]) -> dict[str, bytes]:
        details, funding = [], []
        for i in instruments:
            base = i.venue_symbol.partition("_")[0]
            details.append({
                "symbol": i.venue_symbol, "displayNameEn": f"{i.venue_symbol} PERPETUAL", "baseCoin": base,
                "quoteCoin": i.quote, "settleCoin": i.settle, "futureType": 1, "contractSize": i.contract_size,
                "priceUnit": i.tick_size, "volUnit": i.lot_size, "minVol": i.min_qty,
                "state": 0 if i.status in ("active", "derived") else 4, "apiAllowed": True,
            })
            funding.append({"symbol": i.venue_symbol, "collectCycle": _num(i.funding_interval_h)})
        return {_DETAIL_PATH: _enc.encode({"success": True, "code": 0, "data": details}),
                _FUNDING_PATH: _enc.encode({"success": True, "code": 0, "data": funding}),
                "/api/v3/exchangeInfo": b'{"symbols":[]}'}  # ccxt's load_markets asks for spot too: none

    def sim_rest_funding(self, path: str) -> str | None:
        return asked_symbol(path, _FUNDING_PATH, None)  # one contract: ccxt's fetch_funding_rate

    def sim_rest_funding_body(self, inst: Instrument, rate: float, next_ms: int, mark: float, index: float,
                              ts_ms: int) -> bytes:
        return _enc.encode({"success": True, "code": 0, "data": {
            "symbol": inst.venue_symbol, "fundingRate": rate, "maxFundingRate": 0.003, "minFundingRate": -0.003,
            "collectCycle": _num(inst.funding_interval_h), "nextSettleTime": next_ms, "timestamp": ts_ms}})


def _levels(inst: Instrument, rows: list[list[float]]) -> list[Level]:
    return inst.levels(rows)


def _method(method: str, param: dict[str, object]) -> str:
    # gzip false: plain JSON text frames (some channels are otherwise sent compressed).
    return _enc.encode({"method": method, "param": param, "gzip": False}).decode()


def _num(x: float) -> int | float:
    return int(x) if x == int(x) else x


def _row(level: Level) -> list[int | float]:
    # MEXC sends levels as JSON numbers: [price, contracts, orders]; 0 contracts removes the price.
    return [_num(level[0]), _num(level[1]), 1 if level[1] else 0]


register(Mexc)
