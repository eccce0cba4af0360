"""Bitget v2 ("classic") USDT-FUTURES perpetuals (``BTCUSDT``, ``instType`` ``USDT-FUTURES``).

Books: in-stream. ``books`` opens with ``action: snapshot`` and continues with ``update``
deltas (absolute sizes, ``"0"`` removes a level). Updates carry ``seq`` and, in current
frames, ``pseq`` = the ``seq`` of the previous message of the channel, so each delta chains
with ``prev_seq = pseq`` (first_seq = seq = ``seq``); ``pseq`` 0 (numbering restarted after
a service restart) or absent (older frames) leaves the delta unchained, which the shared
machine accepts. Deltas also carry ``checksum``: CRC32 of the top 25 levels interleaved
``bid:size:ask:size`` over the venue's own strings, the OKX scheme; 0 or absent means "not
provided". v2 snapshots carry checksum 0 while updates carry real ones, so every ``books``
snapshot keeps its level text (``raw_levels``) to seed the checksum book, and a delta keeps
it only when it has a checksum. A broken chain or checksum means unsubscribe + subscribe.
``books1`` (the top level, whole each push) becomes ``Quote``; ``books5``/``books15`` (whole
top N each push) become ``BookSnapshot``.
Quantities are base-coin units (no contract multiplier on USDT-FUTURES), so a ``…USDT``
symbol missing from the metadata can be derived from its name.
Funding: ``ticker.fundingRate`` is the current period's rate, settled at
``nextFundingTime`` (it moves until then); Bitget publishes no rate beyond it. The interval
is the contract's ``fundInterval`` (hours, from ``/api/v2/mix/market/contracts``).

Legacy v1 (``/mix/v1/stream``, ``instType`` ``mc``) ``books`` frames are the same data model
(snapshot + absolute-size updates with the same checksum) and are decoded; they differ in
having no ``seq``/``pseq``, no envelope ``ts``, and a real checksum on the snapshot too. v1
``ticker`` (``capitalRate``/``nextSettleTime``, best prices without sizes) and ``trade``
(arrays, not objects) are other shapes and give no events, as do v3 (UTA) frames, which
use ``topic``/``symbol`` instead of ``channel``/``instId``.
"""

from __future__ import annotations

import heapq
from decimal import Decimal
from typing import Any
from urllib.parse import urlsplit

import msgspec

from perparb.feeds.booksync import Checksum, crc32_interleaved
from perparb.instruments.canonical import canonical_symbol, split_multiple
from perparb.instruments.registry import Registry
from perparb.model import Funding, Instrument, Level, MarketEvent, Quote, Trade
from perparb.venues import register
from perparb.venues.base import MS, Connection, Venue, asked_symbol, decode_error, listing, num_text
from perparb.venues.okx_family import Arg, BookData, Push, book_event, book_push, channel, frame, op, text_row

_CONTRACTS_V2 = "/api/v2/mix/market/contracts"
_CONTRACTS_V1 = "/api/mix/v1/market/contracts"  # legacy; answers ?productType=umcbl
_META_PATH = _CONTRACTS_V2 + "?productType=USDT-FUTURES"
_PRODUCT = "USDT-FUTURES"
_CHANNELS_PER_CONN = 50  # Bitget allows 1000 per connection but recommends at most 50


class _Top(msgspec.Struct):
    # books1: the top level, whole each push.
    asks: list[list[float]] = []
    bids: list[list[float]] = []
    ts: int = 0


class _Ticker(msgspec.Struct):
    # Strings: a field may be "" (e.g. no funding on a contract being delisted).
    instId: str = ""
    fundingRate: str = ""
    nextFundingTime: str = ""
    markPrice: str = ""
    indexPrice: str = ""
    ts: int = 0


class _Trade(msgspec.Struct):
    price: float
    size: float
    side: str
    ts: int = 0
    tradeId: str = ""


class _Other(msgspec.Struct):
    """Anything that is not a compact market-data push: acks, errors, v3 frames."""

    event: str = ""
    code: str | int = ""
    msg: str = ""
    arg: Arg = msgspec.field(default_factory=Arg)


class _ContractV2(msgspec.Struct):
    symbol: str
    baseCoin: str
    quoteCoin: str
    symbolType: str
    symbolStatus: str = ""
    supportMarginCoins: list[str] = []
    pricePlace: int = 0
    priceEndStep: int = 1
    volumePlace: int = 0
    sizeMultiplier: str = ""
    minTradeNum: str = "0"
    minTradeUSDT: str = "0"
    makerFeeRate: str = ""
    takerFeeRate: str = ""
    fundInterval: str = ""


class _ContractV1(msgspec.Struct):
    symbol: str
    baseCoin: str
    quoteCoin: str
    supportMarginCoins: list[str] = []
    pricePlace: int = 0
    priceEndStep: int = 1
    volumePlace: int = 0
    minTradeNum: str = "0"
    makerFeeRate: str = ""
    takerFeeRate: str = ""


def _dec(t: Any) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(t, strict=False)


_top, _tickers, _trades = _dec(Push[_Top]), _dec(Push[_Ticker]), _dec(Push[_Trade])
_other = _dec(_Other)
_enc = msgspec.json.Encoder()

_LEGACY = b'"instType":"mc"'
# Channel → how its data is read; every other channel (candles, …) carries nothing we use.
_KINDS = {"books": "book", "books5": "top", "books15": "top", "books1": "bbo", "ticker": "ticker",
          "trade": "trade"}
_KINDS_B = {k.encode(): v for k, v in _KINDS.items()}
# What the simulator serves for each subscribable channel.
_SIM_TOPICS = {"books1": "quote", "books": "book", "ticker": "funding", "trade": "trade"}


class Bitget(Venue):
    id = "bitget"
    name = "Bitget USDT-FUTURES"
    ws_url = "wss://ws.bitget.com"
    rest_url = "https://api.bitget.com"
    book_sync = "in_stream"
    heartbeat_text = "ping"  # Bitget wants "ping" at least every 30 s and closes after 2 min without
    heartbeat_s = 20.0  # well inside 30 s; each "pong" also feeds the silence watchdog
    silence_s = 30.0
    # Base tier: takerFeeRate / makerFeeRate of every contract in the recorded /contracts
    # response (2022); contracts that state their own rates keep those.
    taker_fee = 0.0006
    maker_fee = 0.0002
    metadata_paths = (_META_PATH,)

    def __init__(self, registry: Registry) -> None:
        super().__init__(registry)
        # Simulator side only: the book text it has sent (for checksums) and the last top of book.
        self._sim_text: dict[str, tuple[dict[float, tuple[str, str]], dict[float, tuple[str, str]]]] = {}
        self._sim_top: dict[str, tuple[Level, Level]] = {}

    def derive(self, venue_symbol: str) -> Instrument | None:
        base = venue_symbol[:-4]
        if venue_symbol.endswith("USDT") and base.isalnum():
            return self._instrument(venue_symbol, base, "USDT", "USDT", "derived")
        return None  # BTCPERP (USDC-FUTURES), BTCUSD (COIN-FUTURES) are other product types

    def _instrument(self, sym: str, base: str, quote: str, settle: str, status: str, **kw: Any) -> Instrument:
        asset, scale = split_multiple(base)
        kw.setdefault("taker_fee", self.taker_fee)
        kw.setdefault("maker_fee", self.maker_fee)
        return Instrument(
            venue=self.id, venue_symbol=sym, symbol=canonical_symbol(asset, quote, settle), asset=asset,
            quote=quote, settle=settle, price_scale=scale, status=status, source=self.id, **kw,
        )

    # -- feed ----------------------------------------------------------------------------
    def connections(self, instruments: list[Instrument], books: bool = True) -> list[Connection]:
        channels = ("books1", "books", "ticker") if books else ("books1", "ticker")
        per_conn = max(1, _CHANNELS_PER_CONN // len(channels))
        out = []
        for k in range(0, len(instruments), per_conn):
            insts = instruments[k : k + per_conn]
            args = [_arg(c, i.venue_symbol) for i in insts for c in channels]
            out.append(Connection(path="/v2/ws/public", subscribe=[op("subscribe", args)], instruments=insts))
        return out

    def book_checksum(self) -> Checksum:
        return crc32_interleaved

    def resubscribe_book(self, inst: Instrument) -> list[str]:
        arg = [_arg("books", inst.venue_symbol)]
        return [op("unsubscribe", arg), op("subscribe", arg)]

    def parse(self, raw: str | bytes, recv_ns: int) -> list[MarketEvent]:
        b = frame(self.id, raw)
        if b is None:
            return []  # pong
        chan = None if b.startswith(b'{"event"') else channel(b)
        try:
            if chan is None:
                return self._other(b, recv_ns)
            kind = _KINDS_B.get(chan)
            if kind is None:
                return []
            return self._push(kind, b, recv_ns)
        except (msgspec.DecodeError, ValueError, IndexError) as exc:
            raise decode_error(self.id, exc, b) from None

    def _push(self, kind: str, raw: bytes, recv_ns: int) -> list[MarketEvent]:
        if kind == "book" or kind == "top":
            return self._books(book_push.decode(raw), kind == "top", recv_ns)
        if kind == "bbo":
            return self._bbo(_top.decode(raw), recv_ns)
        if _LEGACY in raw:
            return []  # v1 ticker / trade: another shape (see the module docstring)
        if kind == "ticker":
            return self._funding(_tickers.decode(raw), recv_ns)
        return self._trades(_trades.decode(raw), recv_ns)

    def _other(self, raw: bytes, recv_ns: int) -> list[MarketEvent]:
        """Acks, errors, v3 frames, and pushes whose JSON is not compact."""
        m = _other.decode(raw)
        if m.event == "error":
            self.problems.append(f"{self.id}: error {m.code}: {m.msg}")
            return []
        kind = _KINDS.get(m.arg.channel)
        if m.event or kind is None:
            return []
        return self._push(kind, raw, recv_ns)

    def _books(self, msg: Push[BookData], always_snapshot: bool, recv_ns: int) -> list[MarketEvent]:
        if not msg.data:
            return []
        inst = self.instrument(msg.arg.instId)
        if inst is None:
            return []
        snapshot = always_snapshot or msg.action == "snapshot"
        # Checksums: the snapshot's text seeds the checksum book; a delta's text is needed
        # only when it carries a checksum (0: not provided).
        return [book_event(self.id, inst, d, snapshot, bool(d.checksum) or (snapshot and not always_snapshot),
                           d.seq or 0, d.pseq or None, (d.ts or msg.ts) * MS, recv_ns) for d in msg.data]

    def _bbo(self, msg: Push[_Top], recv_ns: int) -> list[MarketEvent]:
        out: list[MarketEvent] = []
        for d in msg.data:
            if not d.bids or not d.asks:
                continue  # one side empty: no quote to compare
            inst = self.instrument(msg.arg.instId)
            if inst is None:
                return out
            (bp, bq, *_), (ap, aq, *_) = d.bids[0], d.asks[0]
            out.append(Quote(self.id, inst.symbol, inst.venue_symbol, inst.px(bp), inst.qty(bq, bp),
                             inst.px(ap), inst.qty(aq, ap), (d.ts or msg.ts) * MS, recv_ns))
        return out

    def _funding(self, msg: Push[_Ticker], recv_ns: int) -> list[MarketEvent]:
        out: list[MarketEvent] = []
        for t in msg.data:
            if not t.fundingRate or not t.nextFundingTime:
                continue
            inst = self.instrument(t.instId or msg.arg.instId)
            if inst is None:
                continue
            out.append(Funding(
                venue=self.id, symbol=inst.symbol, venue_symbol=inst.venue_symbol, rate=float(t.fundingRate),
                interval_h=inst.funding_interval_h, next_funding_ns=int(t.nextFundingTime) * MS,
                mark_px=inst.px(float(t.markPrice)) if t.markPrice else None,
                index_px=inst.px(float(t.indexPrice)) if t.indexPrice else None,
                ts_exchange_ns=(t.ts or msg.ts) * MS, recv_ns=recv_ns,
            ))
        return out

    def _trades(self, msg: Push[_Trade], recv_ns: int) -> list[MarketEvent]:
        if not msg.data or (inst := self.instrument(msg.arg.instId)) is None:
            return []
        return [Trade(
            venue=self.id, symbol=inst.symbol, venue_symbol=inst.venue_symbol, px=inst.px(t.price),
            qty=inst.qty(t.size, t.price), side=t.side, trade_id=t.tradeId, ts_exchange_ns=(t.ts or msg.ts) * MS,
            recv_ns=recv_ns,
        ) for t in msg.data]

    # -- metadata ------------------------------------------------------------------------
    def parse_metadata(self, path: str, raw: str | bytes) -> list[Instrument]:
        """``/api/v2/mix/market/contracts``, and the legacy v1 ``/api/mix/v1/market/contracts?productType=umcbl``."""
        p, ok = urlsplit(path).path, {"code": "00000"}
        try:
            if p == _CONTRACTS_V2:
                return self._contracts_v2(listing(self.id, raw, _ContractV2, "data", ok=ok))
            if p == _CONTRACTS_V1:
                return self._contracts_v1(listing(self.id, raw, _ContractV1, "data", ok=ok))
        except (ValueError, ArithmeticError) as exc:
            raise decode_error(self.id, exc, raw) from None
        return []

    def _contracts_v2(self, data: list[_ContractV2]) -> list[Instrument]:
        out = []
        for c in data:
            if c.symbolType != "perpetual":
                continue  # delivery contracts
            out.append(self._instrument(
                c.symbol, c.baseCoin, c.quoteCoin, c.supportMarginCoins[0] if c.supportMarginCoins else c.quoteCoin,
                "active" if c.symbolStatus == "normal" else "inactive",
                tick_size=_places(c.priceEndStep, c.pricePlace),
                lot_size=float(c.sizeMultiplier) if c.sizeMultiplier else _places(1, c.volumePlace),
                min_qty=float(c.minTradeNum or 0), min_notional=float(c.minTradeUSDT or 0),
                **_fees(c.takerFeeRate, c.makerFeeRate),
                funding_interval_h=float(c.fundInterval) if c.fundInterval else 8.0,
            ))
        return out

    def _contracts_v1(self, data: list[_ContractV1]) -> list[Instrument]:
        # productType=umcbl lists USDT-margined perpetuals only, BTCUSDT_UMCBL on REST and BTCUSDT on
        # the websocket (and in v2); v1 states no status (all traded) and no funding interval (8 h then).
        return [self._instrument(
            c.symbol.partition("_")[0], c.baseCoin, c.quoteCoin,
            c.supportMarginCoins[0] if c.supportMarginCoins else c.quoteCoin, "active",
            tick_size=_places(c.priceEndStep, c.pricePlace), lot_size=_places(1, c.volumePlace),
            min_qty=float(c.minTradeNum or 0), **_fees(c.takerFeeRate, c.makerFeeRate),
        ) for c in data if c.symbol.endswith("_UMCBL")]

    # -- simulator -----------------------------------------------------------------------
    def sim_handle(self, text: str) -> tuple[list[str], list[tuple[str, str]]]:
        if text == "ping":
            return ["pong"], []
        try:
            msg = msgspec.json.decode(text)
        except msgspec.DecodeError:
            return [], []
        if not isinstance(msg, dict):
            return [], []
        op = msg.get("op")
        if op not in ("subscribe", "unsubscribe"):
            return [_enc.encode({"event": "error", "code": "30016", "msg": "Param error"}).decode()], []
        replies, topics = [], []
        for arg in msg.get("args", []):
            replies.append(_enc.encode({"event": op, "arg": arg}).decode())
            kind = _SIM_TOPICS.get(arg.get("channel", ""))
            if op == "subscribe" and kind and arg.get("instType") == _PRODUCT:
                topics.append((kind, arg.get("instId", "")))
        return replies, topics

    def sim_quote(self, inst: Instrument, bid: Level, ask: Level, seq: int, ts_ms: int) -> str:
        self._sim_top[inst.venue_symbol] = (bid, ask)
        d = {"asks": [_row(ask)], "bids": [_row(bid)], "checksum": 0, "seq": seq, "ts": str(ts_ms)}
        return _push("snapshot", "books1", inst.venue_symbol, d, ts_ms)

    def sim_book(self, inst: Instrument, snapshot: bool, bids: list[Level], asks: list[Level],
                 seq: int, prev_seq: int, first_seq: int, ts_ms: int) -> str:
        sym = inst.venue_symbol
        b = [_row(x) for x in sorted(bids, reverse=True)]
        a = [_row(x) for x in sorted(asks)]
        if snapshot or sym not in self._sim_text:
            self._sim_text[sym] = ({}, {})
        text = self._sim_text[sym]
        for side, rows in zip(text, (b, a), strict=True):
            for px, sz in rows:
                if float(sz) > 0:
                    side[float(px)] = (px, sz)
                else:
                    side.pop(float(px), None)
        d: dict[str, Any] = {"asks": a, "bids": b, "checksum": 0, "seq": seq, "ts": str(ts_ms)}
        if not snapshot:
            # As Bitget: updates carry the checksum of the whole book after them; snapshots 0.
            top_b = [text[0][p] for p in heapq.nlargest(25, text[0])]
            top_a = [text[1][p] for p in heapq.nsmallest(25, text[1])]
            d["checksum"] = crc32_interleaved(top_b, top_a)
            d["pseq"] = prev_seq
        return _push("snapshot" if snapshot else "update", "books", sym, d, ts_ms)

    def sim_funding(self, inst: Instrument, rate: float, next_ms: int, mark: float, index: float,
                    ts_ms: int, full: bool = True) -> str:
        s = inst.venue_symbol
        bid, ask = self._sim_top.get(s, ((mark, 0.0), (mark, 0.0)))
        d = {"instId": s, "lastPr": num_text(mark), "bidPr": num_text(bid[0]), "askPr": num_text(ask[0]),
             "bidSz": num_text(bid[1]), "askSz": num_text(ask[1]), "fundingRate": num_text(rate),
             "nextFundingTime": str(next_ms), "markPrice": num_text(mark), "indexPrice": num_text(index),
             "holdingAmount": "0", "baseVolume": "0", "quoteVolume": "0", "symbolType": "1", "symbol": s,
             "deliveryPrice": "0", "ts": str(ts_ms)}
        return _push("snapshot", "ticker", s, d, ts_ms)

    def sim_metadata(self, instruments: list[Instrument]) -> dict[str, bytes]:
        data = []
        for i in instruments:
            step, place = _step_place(i.tick_size)
            data.append({
                "symbol": i.venue_symbol, "baseCoin": i.venue_symbol[: -len(i.quote)], "quoteCoin": i.quote,
                "supportMarginCoins": [i.settle], "symbolType": "perpetual",
                "symbolStatus": "normal" if i.status in ("active", "derived") else "off",
                "pricePlace": str(place), "priceEndStep": str(step),
                "volumePlace": str(_step_place(i.lot_size)[1]), "sizeMultiplier": num_text(i.lot_size),
                "minTradeNum": num_text(i.min_qty), "minTradeUSDT": num_text(i.min_notional),
                "makerFeeRate": num_text(i.maker_fee), "takerFeeRate": num_text(i.taker_fee),
                "fundInterval": num_text(i.funding_interval_h), "maxLever": "125", "minLever": "1",
            })
        body = {"code": "00000", "msg": "success", "requestTime": 0, "data": data}
        return {_META_PATH: _enc.encode(body)}

    def sim_rest_book(self, path: str) -> str | None:
        return asked_symbol(path, "/api/v2/mix/market/merge-depth")  # ccxt's fetch_order_book

    def sim_rest_book_body(self, inst: Instrument, bids: list[Level], asks: list[Level], seq: int,
                           ts_ms: int) -> bytes:
        book = {"asks": [[num_text(p), num_text(q)] for p, q in asks], "ts": str(ts_ms),
                "bids": [[num_text(p), num_text(q)] for p, q in bids]}
        return _enc.encode({"code": "00000", "msg": "success", "requestTime": ts_ms, "data": book})

    def sim_rest_funding(self, path: str) -> str | None:
        return asked_symbol(path, "/api/v2/mix/market/current-fund-rate")

    def sim_rest_funding_body(self, inst: Instrument, rate: float, next_ms: int, mark: float, index: float,
                              ts_ms: int) -> bytes:
        f = {"symbol": inst.venue_symbol, "fundingRate": f"{rate:.8f}", "nextUpdate": str(next_ms),
             "fundingRateInterval": num_text(inst.funding_interval_h)}
        return _enc.encode({"code": "00000", "msg": "success", "requestTime": ts_ms, "data": [f]})


def _places(step: int, place: int) -> float:
    """``step * 10^-place`` (tick from pricePlace/priceEndStep, lot from volumePlace)."""
    return float(Decimal(step).scaleb(-place))


def _step_place(x: float) -> tuple[int, int]:
    """Inverse of ``_places``: 0.5 → (5, 1), 0.0001 → (1, 4), 10 → (10, 0)."""
    d = Decimal(repr(float(x))).normalize()
    exp = int(d.as_tuple().exponent)
    if exp >= 0:
        return int(d), 0
    return int(d.scaleb(-exp)), -exp


def _fees(taker: str, maker: str) -> dict[str, float]:
    out = {}
    if taker:
        out["taker_fee"] = float(taker)
    if maker:
        out["maker_fee"] = float(maker)
    return out


def _arg(channel: str, sym: str) -> dict[str, str]:
    return {"instType": _PRODUCT, "channel": channel, "instId": sym}


def _push(action: str, channel: str, sym: str, data: dict[str, Any], ts_ms: int) -> str:
    return _enc.encode({"action": action, "arg": _arg(channel, sym), "data": [data], "ts": ts_ms}).decode()


def _row(level: Level) -> list[str]:
    return text_row(level)




register(Bitget)
