"""Hyperliquid perpetuals (the native dex: coin names are the symbols, ``BTC``, ``kPEPE``).

Books: every ``l2Book`` push is a full snapshot of up to 20 levels per side, with no sequence
and no checksum. Each one becomes a BookSnapshot (seq 0) that replaces the book, so a lost push
heals with the next one and nothing ever needs a resync (book-sync family "full").
Quantities are base units of the coin: thousands of PEPE for ``kPEPE`` (price_scale 1000, as
``split_multiple`` says), so coins = sz * 1000 and the price per PEPE is px / 1000.
Funding: ``activeAssetCtx.ctx.funding`` is the rate of the current hour, an estimate that moves
until it settles at the next full hour (UTC); the API gives the hourly rate itself (the UI shows
it scaled to 8 h) and nothing beyond it, so ``predicted_rate`` is None. The ctx has no timestamp
and no settlement time: ``next_funding_ns`` is the first full hour after the receive time.
The interval is the instrument's: 1 h on every perp (the meta response has no interval field;
Hyperliquid's funding docs say hourly).
REST is ``POST /info`` with a JSON body. Captures record the body as a query string
(``/info?type=meta``); ``rest_request`` turns it back into the POST.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import msgspec

from perparb.instruments.canonical import canonical_symbol, split_multiple
from perparb.instruments.registry import Registry
from perparb.model import BookSnapshot, Funding, Instrument, Level, MarketEvent, Quote, Trade
from perparb.venues import register
from perparb.venues.base import MS, Connection, SimFullBooks, Venue, decode_error

_META_PATH = "/info?type=meta"
_HOUR_NS = 3_600_000_000_000
_DEPTH = 20  # levels per side in an l2Book push
# Native-dex coin names: BTC, kPEPE, 0G... (not spot "@107"/"PURR/USDC" nor HIP-3 "xyz:TSLA").
_COIN = re.compile(r"k?[A-Z0-9]+")


# -- wire types -----------------------------------------------------------------------------
class _Level(msgspec.Struct):
    px: float
    sz: float
    n: int = 0


class _Book(msgspec.Struct):
    coin: str
    levels: list[list[_Level]]
    time: int = 0


class _BookPush(msgspec.Struct):
    data: _Book


class _Bbo(msgspec.Struct):
    coin: str
    bbo: list[_Level | None]
    time: int = 0


class _BboPush(msgspec.Struct):
    data: _Bbo


class _Trade(msgspec.Struct):
    coin: str
    side: str  # taker side: B (buy) or A (sell)
    px: float
    sz: float
    time: int = 0
    tid: int = 0


class _TradesPush(msgspec.Struct):
    data: list[_Trade]


class _Ctx(msgspec.Struct):
    # Strings by hand: any of these may be null (e.g. premium on a market without trades).
    funding: str | None = None
    markPx: str | None = None
    oraclePx: str | None = None
    openInterest: str | None = None  # coins
    dayNtlVlm: str | None = None  # USD traded over 24 h


class _AssetCtx(msgspec.Struct):
    coin: str
    ctx: _Ctx


class _AssetCtxPush(msgspec.Struct):
    data: _AssetCtx


class _Envelope(msgspec.Struct):
    channel: str = ""
    data: msgspec.Raw = msgspec.Raw(b"")


class _Asset(msgspec.Struct):
    name: str
    szDecimals: int
    maxLeverage: int = 0
    onlyIsolated: bool = False
    isDelisted: bool = False


class _Meta(msgspec.Struct):
    universe: list[_Asset]


def _dec(t: Any) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(t, strict=False)


_book_push, _bbo_push, _trades_push = _dec(_BookPush), _dec(_BboPush), _dec(_TradesPush)
_ctx_push, _envelope, _rest_book, _meta = _dec(_AssetCtxPush), _dec(_Envelope), _dec(_Book), _dec(_Meta)
_enc = msgspec.json.Encoder()

_CHANNEL = b'{"channel":"'
_SIM_TOPICS = {"l2Book": "book", "bbo": "quote", "activeAssetCtx": "funding", "trades": "trade"}


class Hyperliquid(Venue):
    id = "hyperliquid"
    name = "Hyperliquid perps"
    ws_url = "wss://api.hyperliquid.xyz"
    rest_url = "https://api.hyperliquid.xyz"
    book_sync = "full"  # every book message is a snapshot: behaves like in_stream
    heartbeat_text = '{"method":"ping"}'  # the server closes connections it has not heard from in 60 s
    heartbeat_s = 20.0
    silence_s = 30.0
    # Perps tier 0 (14-day volume up to $5M), Hyperliquid's "Fees" page: taker 0.045%, maker 0.015%.
    taker_fee = 0.00045
    maker_fee = 0.00015
    metadata_paths = (_META_PATH,)
    sim_has_sequence = False

    def __init__(self, registry: Registry) -> None:
        super().__init__(registry)
        self._sim_books = SimFullBooks()

    def derive(self, venue_symbol: str) -> Instrument | None:
        # A native perp's name says all there is to know about units: coin units, USDC margin.
        if not _COIN.fullmatch(venue_symbol):
            return None
        return self._instrument(venue_symbol, "derived")

    def _instrument(self, coin: str, status: str, **kw: Any) -> Instrument:
        asset, scale = split_multiple(coin)
        return Instrument(
            venue=self.id, venue_symbol=coin, symbol=canonical_symbol(asset, "USDC", "USDC"), asset=asset,
            quote="USDC", settle="USDC", price_scale=scale, taker_fee=self.taker_fee, maker_fee=self.maker_fee,
            funding_interval_h=1.0, status=status, source=self.id, **kw,
        )

    # -- feed ----------------------------------------------------------------------------
    def connections(self, instruments: list[Instrument], books: bool = True) -> list[Connection]:
        msgs = []
        for inst in instruments:
            for kind in ("l2Book" if books else "bbo", "activeAssetCtx"):
                msgs.append(_sub("subscribe", kind, inst.venue_symbol))
        return [Connection(path="/ws", subscribe=msgs, instruments=instruments)]

    def resubscribe_book(self, inst: Instrument) -> list[str]:
        return []  # the next push is a whole book anyway

    def rest_request(self, path: str) -> tuple[str, str, bytes | None]:
        url = urlsplit(path)
        if url.path != "/info":
            return "GET", path, None
        return "POST", "/info", _enc.encode(dict(parse_qsl(url.query)))

    def parse(self, raw: str | bytes, recv_ns: int) -> list[MarketEvent]:
        if isinstance(raw, str):
            raw = raw.encode()
        try:
            if raw.startswith(_CHANNEL):
                end = raw.find(b'"', 12)
                if end < 0:
                    raise ValueError("truncated message")
                chan = raw[12:end]
            else:  # not compact JSON (or not JSON: raises)
                env = _envelope.decode(raw)
                chan = env.channel.encode()
            if chan == b"l2Book":
                ev = self._book(_book_push.decode(raw).data, recv_ns)
                return [ev] if ev is not None else []
            if chan == b"bbo":
                return self._bbo(_bbo_push.decode(raw).data, recv_ns)
            if chan == b"activeAssetCtx":
                return self._funding(_ctx_push.decode(raw).data, recv_ns)
            if chan == b"trades":
                return self._trades(_trades_push.decode(raw).data, recv_ns)
            if chan == b"error":
                self.problems.append(f"{self.id}: error {bytes(_envelope.decode(raw).data).decode()}")
        except (msgspec.DecodeError, ValueError) as exc:
            raise decode_error(self.id, exc, raw) from None
        # subscriptionResponse, pong, allMids, allDexsAssetCtxs (positional: only a meta of the
        # same moment could name its entries), user channels...
        return []

    def _book(self, b: _Book, recv_ns: int) -> BookSnapshot | None:
        if len(b.levels) != 2:
            raise ValueError(f"l2Book levels has {len(b.levels)} sides")
        inst = self.table.get(b.coin) or self.instrument(b.coin)
        if inst is None:
            return None
        px, qty = inst.px, inst.qty
        bids = [(px(lv.px), qty(lv.sz, lv.px)) for lv in b.levels[0]]
        asks = [(px(lv.px), qty(lv.sz, lv.px)) for lv in b.levels[1]]
        return BookSnapshot(venue=self.id, symbol=inst.symbol, venue_symbol=b.coin, bids=bids, asks=asks,
                            ts_exchange_ns=b.time * MS, recv_ns=recv_ns)

    def _bbo(self, b: _Bbo, recv_ns: int) -> list[MarketEvent]:
        bid, ask = b.bbo if len(b.bbo) == 2 else (None, None)
        if bid is None or ask is None:
            return []  # a side is empty: no quote to compare
        inst = self.table.get(b.coin) or self.instrument(b.coin)
        if inst is None:
            return []
        return [Quote(self.id, inst.symbol, b.coin, inst.px(bid.px), inst.qty(bid.sz, bid.px), inst.px(ask.px),
                      inst.qty(ask.sz, ask.px), b.time * MS, recv_ns)]

    def _trades(self, trades: list[_Trade], recv_ns: int) -> list[MarketEvent]:
        out: list[MarketEvent] = []
        for t in trades:
            inst = self.table.get(t.coin) or self.instrument(t.coin)
            if inst is None:
                continue
            if t.side not in ("A", "B"):
                raise ValueError(f"trade side {t.side!r}")
            out.append(Trade(
                venue=self.id, symbol=inst.symbol, venue_symbol=t.coin, px=inst.px(t.px), qty=inst.qty(t.sz, t.px),
                side="buy" if t.side == "B" else "sell", trade_id=str(t.tid), ts_exchange_ns=t.time * MS,
                recv_ns=recv_ns,
            ))
        return out

    def _funding(self, a: _AssetCtx, recv_ns: int) -> list[MarketEvent]:
        c = a.ctx
        if not c.funding:
            return []  # spot contexts and markets without funding
        inst = self.table.get(a.coin) or self.instrument(a.coin)
        if inst is None:
            return []
        period = round(inst.funding_interval_h * _HOUR_NS)
        return [Funding(
            venue=self.id, symbol=inst.symbol, venue_symbol=a.coin, rate=float(c.funding),
            interval_h=inst.funding_interval_h, next_funding_ns=(recv_ns // period + 1) * period,
            mark_px=inst.px(float(c.markPx)) if c.markPx else None,
            index_px=inst.px(float(c.oraclePx)) if c.oraclePx else None,
            open_interest=inst.qty(float(c.openInterest), float(c.markPx)) if c.openInterest and c.markPx else None,
            volume_24h_quote=float(c.dayNtlVlm) if c.dayNtlVlm else None, ts_exchange_ns=0, recv_ns=recv_ns,
        )]

    def parse_rest(self, path: str, raw: str | bytes, recv_ns: int) -> list[MarketEvent]:
        """``POST /info {"type":"l2Book","coin":...}``: the same book as the l2Book push."""
        url = urlsplit(path)
        if url.path != "/info" or dict(parse_qsl(url.query)).get("type") != "l2Book":
            return []
        try:
            ev = self._book(_rest_book.decode(raw), recv_ns)
        except (msgspec.DecodeError, ValueError) as exc:
            raise decode_error(self.id, exc, raw) from None
        return [ev] if ev is not None else []

    # -- metadata ------------------------------------------------------------------------
    def parse_metadata(self, path: str, raw: str | bytes) -> list[Instrument]:
        url = urlsplit(path)
        # Only the native dex: {"type":"meta","dex":"xyz"} lists HIP-3 markets (other margin rules).
        if url.path != "/info" or dict(parse_qsl(url.query)) != {"type": "meta"}:
            return []
        try:
            meta = _meta.decode(raw)
        except msgspec.DecodeError as exc:
            raise decode_error(self.id, exc, raw) from None
        out = []
        for a in meta.universe:
            lot = float(f"1e-{a.szDecimals}")
            # Prices: at most 5 significant figures and at most 6 - szDecimals decimals; the
            # decimals rule is the fixed part, so it is the tick (as nautilus does).
            out.append(self._instrument(
                a.name, "inactive" if a.isDelisted else "active", tick_size=float(f"1e-{max(0, 6 - a.szDecimals)}"),
                lot_size=lot, min_qty=lot,
            ))
        return out

    # -- simulator -----------------------------------------------------------------------
    def sim_handle(self, text: str) -> tuple[list[str], list[tuple[str, str]]]:
        try:
            msg = msgspec.json.decode(text)
        except msgspec.DecodeError:
            return [], []
        if not isinstance(msg, dict):
            return [], []
        method = msg.get("method")
        if method == "ping":
            return ['{"channel":"pong"}'], []
        sub = msg.get("subscription")
        if method not in ("subscribe", "unsubscribe") or not isinstance(sub, dict):
            return [], []
        reply = _enc.encode({"channel": "subscriptionResponse", "data": msg}).decode()
        kind = _SIM_TOPICS.get(sub.get("type", ""))
        if method == "subscribe" and kind and sub.get("coin"):
            return [reply], [(kind, sub["coin"])]
        return [reply], []

    def sim_quote(self, inst: Instrument, bid: Level, ask: Level, seq: int, ts_ms: int) -> str:
        return _enc.encode({"channel": "bbo", "data": {"coin": inst.venue_symbol, "time": ts_ms,
                                                       "bbo": [_lv(bid), _lv(ask)]}}).decode()

    def sim_book(self, inst: Instrument, snapshot: bool, bids: list[Level], asks: list[Level],
                 seq: int, prev_seq: int, first_seq: int, ts_ms: int) -> str:
        # Hyperliquid only ever sends whole books: keep the book here and send it all.
        sym = inst.venue_symbol
        book = self._sim_books.apply(sym, snapshot, bids, asks)
        levels = [[_lv((p, book[0][p])) for p in sorted(book[0], reverse=True)[:_DEPTH]],
                  [_lv((p, book[1][p])) for p in sorted(book[1])[:_DEPTH]]]
        return _enc.encode({"channel": "l2Book", "data": {"coin": sym, "time": ts_ms, "levels": levels}}).decode()

    def sim_funding(self, inst: Instrument, rate: float, next_ms: int, mark: float, index: float,
                    ts_ms: int, full: bool = True) -> str:
        ctx = {"funding": _fmt(rate), "openInterest": "0.0", "prevDayPx": _fmt(index), "dayNtlVlm": "0.0",
               "premium": _fmt((mark - index) / index if index else 0.0), "oraclePx": _fmt(index),
               "markPx": _fmt(mark), "midPx": _fmt(mark), "impactPxs": [_fmt(mark), _fmt(mark)],
               "dayBaseVlm": "0.0"}
        return _enc.encode({"channel": "activeAssetCtx", "data": {"coin": inst.venue_symbol, "ctx": ctx}}).decode()

    def sim_metadata(self, instruments: list[Instrument]) -> dict[str, bytes]:
        universe = []
        for i in instruments:
            entry: dict[str, Any] = {"name": i.venue_symbol, "szDecimals": _decimals(i.lot_size),
                                     "maxLeverage": 50, "marginTableId": 50}
            if i.status not in ("active", "derived"):
                entry["isDelisted"] = True
            universe.append(entry)
        return {_META_PATH: _enc.encode({"universe": universe, "marginTables": []})}


def _sub(method: str, kind: str, coin: str) -> str:
    return _enc.encode({"method": method, "subscription": {"type": kind, "coin": coin}}).decode()


def _decimals(step: float) -> int:
    """szDecimals of a lot size 10^-d."""
    exponent = Decimal(repr(step)).normalize().as_tuple().exponent if step else 0
    return max(0, -exponent) if isinstance(exponent, int) else 0


def _lv(level: Level) -> dict[str, Any]:
    return {"px": _fmt(level[0]), "sz": _fmt(level[1]), "n": 1}




def _fmt(x: float) -> str:
    """Hyperliquid's number text: plain decimal, integral values with ".0" ("96800.0")."""
    return format(Decimal(repr(float(x))), "f")


register(Hyperliquid)
