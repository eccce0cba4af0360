"""dYdX v4 perpetuals through the Indexer (``BTC-USD``: quoted in USD, settled in USDC).

Books: ``v4_orderbook``. The ``subscribed`` message is the snapshot (levels as objects), then
``channel_data`` updates carry absolute sizes (levels as [price, size]; "0" removes). There is
no per-book sequence and no checksum (``message_id`` counts every message of a connection,
across channels), so the rule is "snapshot, then apply": updates are BookDelta with
``prev_seq`` None and a resync is unsubscribe + subscribe.
The Indexer assembles its book off-chain from a full node's view, which can be crossed or
locked for a moment (orders seen in a different order than the block proposer saw them). The
adapter uncrosses as dYdX's "how to uncross the orderbook" guide says, with arrival order as the
clock: it mirrors each book (native units) with the number of the message that last set each
level and, while best bid >= best ask, removes the older of the two top levels; the removals go
out in the same BookDelta. When both tops were set by the same message (or a snapshot arrives
crossed) there is no older side: the book is left crossed, the shared book-sync marks it
invalid and it is resubscribed.
Quantities are base units (BTC for BTC-USD); the ticker says all about units, so unlisted
tickers are derived.
Funding: ``v4_markets`` (one subscription, every market): ``nextFundingRate`` is the predicted
rate of the upcoming hourly settlement at the next full hour UTC; dYdX publishes nothing beyond
it. Neither the time of that settlement nor any timestamp is sent: ``next_funding_ns`` is the
first full hour after the receive time. The interval is 1 h for every market (funding ticks at
the start of each hour per the dYdX docs; the market metadata has no interval field).
"""

from __future__ import annotations

import re
import time
from typing import Any
from urllib.parse import urlsplit

import msgspec

from perparb.book import OrderBook
from perparb.instruments.canonical import canonical_symbol, split_multiple
from perparb.instruments.registry import Registry
from perparb.model import BookDelta, BookSnapshot, Funding, Instrument, Level, MarketEvent, Trade
from perparb.venues import register
from perparb.venues.base import Connection, Venue, decode_error, iso_ns, num_text

_MARKETS_PATH = "/v4/perpetualMarkets"
_HOUR_NS = 3_600_000_000_000
_TICKER = re.compile(r"([A-Z0-9]+)-USD")


# -- wire types -----------------------------------------------------------------------------
class _PxSz(msgspec.Struct):
    price: float
    size: float


class _SnapshotContents(msgspec.Struct):
    bids: list[_PxSz] = []
    asks: list[_PxSz] = []


class _Snapshot(msgspec.Struct):
    id: str
    contents: _SnapshotContents


class _UpdateContents(msgspec.Struct):
    bids: list[tuple[float, float]] = []
    asks: list[tuple[float, float]] = []


class _Update(msgspec.Struct):
    id: str
    contents: _UpdateContents


class _UpdateBatch(msgspec.Struct):
    id: str
    contents: list[_UpdateContents]


class _TradeItem(msgspec.Struct):
    id: str
    side: str  # taker side: BUY | SELL
    size: float
    price: float
    createdAt: str = ""


class _TradeContents(msgspec.Struct):
    trades: list[_TradeItem] = []


class _Trades(msgspec.Struct):
    id: str
    contents: _TradeContents


class _TradesBatch(msgspec.Struct):
    id: str
    contents: list[_TradeContents]


class _Market(msgspec.Struct):
    # Text by hand: update rows hold only what changed; absent means unchanged.
    nextFundingRate: str | None = None
    oraclePrice: str | None = None


class _Oracle(msgspec.Struct):
    oraclePrice: str | None = None


class _MarketContents(msgspec.Struct):
    markets: dict[str, _Market] = {}  # the subscribed snapshot
    trading: dict[str, _Market] = {}  # updates
    oraclePrices: dict[str, _Oracle] = {}


class _Markets(msgspec.Struct):
    contents: _MarketContents


class _MarketsBatch(msgspec.Struct):
    contents: list[_MarketContents]


class _Envelope(msgspec.Struct):
    type: str = ""
    channel: str = ""
    id: str = ""
    message: str = ""  # on errors


class _PerpetualMarket(msgspec.Struct):
    ticker: str
    status: str = ""
    tickSize: float = 0.0
    stepSize: float = 0.0


class _MarketList(msgspec.Struct):
    markets: dict[str, _PerpetualMarket]


class _PerpetualMarkets(msgspec.Struct):
    markets: dict[str, _PerpetualMarket] | None = None
    # Some captures (nautilus) store the response under ``result`` of a request record.
    result: _MarketList | None = None


def _dec(t: Any) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(t, strict=False)


_snapshot, _update, _update_batch = _dec(_Snapshot), _dec(_Update), _dec(_UpdateBatch)
_trades, _trades_batch, _markets, _markets_batch = _dec(_Trades), _dec(_TradesBatch), _dec(_Markets), _dec(
    _MarketsBatch)
_envelope = _dec(_Envelope)
_perpetual_markets = _dec(_PerpetualMarkets)
_enc = msgspec.json.Encoder()

_CHANNELS = ((b'"channel":"v4_orderbook"', "v4_orderbook"), (b'"channel":"v4_markets"', "v4_markets"),
             (b'"channel":"v4_trades"', "v4_trades"))
_TYPES = ((b'"type":"channel_data"', "channel_data"), (b'"type":"subscribed"', "subscribed"),
          (b'"type":"channel_batch_data"', "channel_batch_data"))


class _Mirror:
    """One native book with the message number that last set each level (for uncrossing)."""

    __slots__ = ("ask_at", "bid_at", "book")

    def __init__(self) -> None:
        self.book = OrderBook()
        self.bid_at: dict[float, int] = {}
        self.ask_at: dict[float, int] = {}

    def apply(self, bids: list[tuple[float, float]], asks: list[tuple[float, float]], n: int) -> None:
        self.book.apply(bids, asks)
        for at, levels in ((self.bid_at, bids), (self.ask_at, asks)):
            for p, q in levels:
                if q > 0.0:
                    at[p] = n
                else:
                    at.pop(p, None)

    def uncross(self) -> tuple[list[float], list[float]]:
        """Remove stale top levels while the book is crossed; returns the removed (bid, ask) prices."""
        book, removed_bids, removed_asks = self.book, [], []
        while book.crossed():
            bid, ask = book.bids.keys[0] * book.bids.sign, book.asks.keys[0]
            bid_at, ask_at = self.bid_at[bid], self.ask_at[ask]
            if bid_at < ask_at:
                book.bids.set(bid, 0.0)
                del self.bid_at[bid]
                removed_bids.append(bid)
            elif ask_at < bid_at:
                book.asks.set(ask, 0.0)
                del self.ask_at[ask]
                removed_asks.append(ask)
            else:
                break  # set by the same message: no older side
        return removed_bids, removed_asks


class Dydx(Venue):
    id = "dydx"
    name = "dYdX v4"
    ws_url = "wss://indexer.dydx.trade"
    rest_url = "https://indexer.dydx.trade"
    book_sync = "in_stream"
    heartbeat_text = None  # the Indexer pings every 30 s; the websocket library answers
    silence_s = 30.0
    # Tier 1 of the governance fee schedule as commonly cited (taker 0.05%, maker 0.01%); the
    # offline notes mark it unverified.
    taker_fee = 0.0005
    maker_fee = 0.0001
    metadata_paths = (_MARKETS_PATH,)
    sim_has_sequence = False

    def __init__(self, registry: Registry) -> None:
        super().__init__(registry)
        self._books: dict[str, _Mirror] = {}
        self._clock = 0  # messages seen: the arrival order the uncrossing compares
        self._oracle: dict[str, float] = {}
        self._sim_message_id = 0

    def derive(self, venue_symbol: str) -> Instrument | None:
        m = _TICKER.fullmatch(venue_symbol)
        return self._instrument(venue_symbol, m.group(1), "derived") if m else None

    def _instrument(self, ticker: str, base: str, status: str, **kw: Any) -> Instrument:
        asset, scale = split_multiple(base)
        return Instrument(
            venue=self.id, venue_symbol=ticker, symbol=canonical_symbol(asset, "USD", "USDC"), asset=asset,
            quote="USD", settle="USDC", price_scale=scale, taker_fee=self.taker_fee, maker_fee=self.maker_fee,
            funding_interval_h=1.0, status=status, source=self.id, **kw,
        )

    # -- feed ----------------------------------------------------------------------------
    def connections(self, instruments: list[Instrument], books: bool = True) -> list[Connection]:
        # dYdX has no top-of-book channel: the book is the only price source, so it is
        # subscribed even when books are off.
        msgs = [_enc.encode({"type": "subscribe", "channel": "v4_orderbook", "id": i.venue_symbol,
                             "batched": False}).decode() for i in instruments]
        msgs.append(_enc.encode({"type": "subscribe", "channel": "v4_markets", "batched": False}).decode())
        return [Connection(path="/v4/ws", subscribe=msgs, instruments=instruments)]

    def resubscribe_book(self, inst: Instrument) -> list[str]:
        return [_enc.encode({"type": "unsubscribe", "channel": "v4_orderbook", "id": inst.venue_symbol}).decode(),
                _enc.encode({"type": "subscribe", "channel": "v4_orderbook", "id": inst.venue_symbol,
                             "batched": False}).decode()]

    def parse(self, raw: str | bytes, recv_ns: int) -> list[MarketEvent]:
        if isinstance(raw, str):
            raw = raw.encode()
        channel = kind = ""
        for needle, name in _CHANNELS:
            if needle in raw:
                channel = name
                break
        for needle, name in _TYPES:
            if needle in raw:
                kind = name
                break
        try:
            if not (channel and kind):  # acks, connected, errors, or JSON that is not compact
                env = _envelope.decode(raw)
                channel, kind = env.channel, env.type
                if kind == "error":
                    self.problems.append(f"{self.id}: error {env.message}")
                elif kind == "unsubscribed" and channel == "v4_orderbook":
                    self._books.pop(env.id, None)
            if channel == "v4_orderbook":
                if kind == "channel_data":
                    u = _update.decode(raw)
                    return self._updates(u.id, [u.contents], recv_ns)
                if kind == "subscribed":
                    return self._snapshot(_snapshot.decode(raw), recv_ns)
                if kind == "channel_batch_data":
                    b = _update_batch.decode(raw)
                    return self._updates(b.id, b.contents, recv_ns)
            elif channel == "v4_markets":
                if kind == "channel_data" or kind == "subscribed":
                    return self._funding([_markets.decode(raw).contents], recv_ns)
                if kind == "channel_batch_data":
                    return self._funding(_markets_batch.decode(raw).contents, recv_ns)
            elif channel == "v4_trades":
                if kind == "channel_data" or kind == "subscribed":
                    t = _trades.decode(raw)
                    return self._trades(t.id, [t.contents], recv_ns)
                if kind == "channel_batch_data":
                    tb = _trades_batch.decode(raw)
                    return self._trades(tb.id, tb.contents, recv_ns)
        except (msgspec.DecodeError, ValueError) as exc:
            raise decode_error(self.id, exc, raw) from None
        return []

    # -- books ---------------------------------------------------------------------------
    def _snapshot(self, m: _Snapshot, recv_ns: int) -> list[MarketEvent]:
        inst = self.table.get(m.id) or self.instrument(m.id)
        if inst is None:
            return []
        bids = [(lv.price, lv.size) for lv in m.contents.bids]
        asks = [(lv.price, lv.size) for lv in m.contents.asks]
        mirror = self._books[m.id] = _Mirror()
        self._clock += 1
        mirror.apply(bids, asks, self._clock)
        px, qty = inst.px, inst.qty
        return [BookSnapshot(venue=self.id, symbol=inst.symbol, venue_symbol=m.id,
                             bids=[(px(p), qty(q, p)) for p, q in bids], asks=[(px(p), qty(q, p)) for p, q in asks],
                             ts_exchange_ns=0, recv_ns=recv_ns)]

    def _updates(self, ticker: str, updates: list[_UpdateContents], recv_ns: int) -> list[MarketEvent]:
        inst = self.table.get(ticker) or self.instrument(ticker)
        if inst is None:
            return []
        px, qty = inst.px, inst.qty
        mirror = self._books.get(ticker)
        bids: list[Level] = []
        asks: list[Level] = []
        for c in updates:
            bids += [(px(p), qty(q, p)) for p, q in c.bids]
            asks += [(px(p), qty(q, p)) for p, q in c.asks]
            if mirror is None:
                continue  # before the snapshot: the book sync drops these anyway
            self._clock += 1
            mirror.apply(c.bids, c.asks, self._clock)
            if mirror.book.crossed():
                gone_bids, gone_asks = mirror.uncross()
                bids += [(px(p), 0.0) for p in gone_bids]
                asks += [(px(p), 0.0) for p in gone_asks]
        return [BookDelta(venue=self.id, symbol=inst.symbol, venue_symbol=ticker, bids=bids, asks=asks,
                          ts_exchange_ns=0, recv_ns=recv_ns)]

    # -- trades and funding --------------------------------------------------------------
    def _trades(self, ticker: str, batches: list[_TradeContents], recv_ns: int) -> list[MarketEvent]:
        inst = self.table.get(ticker) or self.instrument(ticker)
        if inst is None:
            return []
        out: list[MarketEvent] = []
        for c in batches:
            for t in c.trades:
                if t.side not in ("BUY", "SELL"):
                    raise ValueError(f"trade side {t.side!r}")
                out.append(Trade(
                    venue=self.id, symbol=inst.symbol, venue_symbol=ticker, px=inst.px(t.price),
                    qty=inst.qty(t.size, t.price), side=t.side.lower(), trade_id=t.id,
                    ts_exchange_ns=iso_ns(t.createdAt) if t.createdAt else 0, recv_ns=recv_ns,
                ))
        return out

    def _funding(self, batches: list[_MarketContents], recv_ns: int) -> list[MarketEvent]:
        # v4_markets covers every market on the venue: markets we hold no instrument for are
        # skipped silently (they are not ours, not a problem).
        out: list[MarketEvent] = []
        for c in batches:
            for ticker, o in c.oraclePrices.items():
                if o.oraclePrice:
                    self._oracle[ticker] = float(o.oraclePrice)
            for rows in (c.markets, c.trading):
                for ticker, m in rows.items():
                    if m.oraclePrice:
                        self._oracle[ticker] = float(m.oraclePrice)
                    inst = self.table.get(ticker)
                    if inst is None or not m.nextFundingRate:
                        continue
                    period = round(inst.funding_interval_h * _HOUR_NS)
                    oracle = self._oracle.get(ticker)
                    out.append(Funding(
                        venue=self.id, symbol=inst.symbol, venue_symbol=ticker, rate=float(m.nextFundingRate),
                        interval_h=inst.funding_interval_h, next_funding_ns=(recv_ns // period + 1) * period,
                        index_px=inst.px(oracle) if oracle is not None else None, ts_exchange_ns=0,
                        recv_ns=recv_ns,
                    ))
        return out

    # -- metadata ------------------------------------------------------------------------
    def parse_metadata(self, path: str, raw: str | bytes) -> list[Instrument]:
        if urlsplit(path).path != _MARKETS_PATH:
            return []
        try:
            body = _perpetual_markets.decode(raw)
        except msgspec.DecodeError as exc:
            raise decode_error(self.id, exc, raw) from None
        markets = body.markets if body.markets is not None else body.result.markets if body.result else None
        if markets is None:
            raise decode_error(self.id, ValueError("no markets"), raw)
        out = []
        for ticker, m in markets.items():
            base, _, quote = ticker.partition("-")
            if quote != "USD":
                continue  # every perpetual is BASE-USD; anything else is not one we can name
            out.append(self._instrument(ticker, base, "active" if m.status == "ACTIVE" else "inactive",
                                        tick_size=m.tickSize, lot_size=m.stepSize, min_qty=m.stepSize))
        return out

    # -- simulator -----------------------------------------------------------------------
    def _sim_head(self, kind: str, channel: str) -> dict[str, Any]:
        self._sim_message_id += 1
        return {"type": kind, "connection_id": "sim", "message_id": self._sim_message_id, "channel": channel}

    def sim_handle(self, text: str) -> tuple[list[str], list[tuple[str, str]]]:
        try:
            msg = msgspec.json.decode(text)
        except msgspec.DecodeError:
            return [], []
        if not isinstance(msg, dict):
            return [], []
        kind, channel, ticker = msg.get("type"), msg.get("channel", ""), msg.get("id", "")
        if kind == "unsubscribe":
            head = self._sim_head("unsubscribed", channel)
            return [_enc.encode({**head, **({"id": ticker} if ticker else {})}).decode()], []
        if kind != "subscribe":
            return [], []
        # The "subscribed" answer carries the initial state, which the simulator sends next.
        if channel == "v4_orderbook" and ticker:
            return [], [("book", ticker)]
        if channel == "v4_trades" and ticker:
            return [], [("trade", ticker)]
        if channel == "v4_markets":
            return [], [("funding", t) for t in self.table]
        return [], []

    def sim_book(self, inst: Instrument, snapshot: bool, bids: list[Level], asks: list[Level],
                 seq: int, prev_seq: int, first_seq: int, ts_ms: int) -> str:
        if snapshot:
            contents: dict[str, Any] = {"bids": [{"price": num_text(p), "size": num_text(q)} for p, q in bids],
                                        "asks": [{"price": num_text(p), "size": num_text(q)} for p, q in asks]}
            msg = {**self._sim_head("subscribed", "v4_orderbook"), "id": inst.venue_symbol, "contents": contents}
        else:
            contents = {}
            if bids:
                contents["bids"] = [[num_text(p), num_text(q)] for p, q in bids]
            if asks:
                contents["asks"] = [[num_text(p), num_text(q)] for p, q in asks]
            msg = {**self._sim_head("channel_data", "v4_orderbook"), "id": inst.venue_symbol, "version": "1.0.0",
                   "contents": contents}
        return _enc.encode(msg).decode()

    def sim_funding(self, inst: Instrument, rate: float, next_ms: int, mark: float, index: float,
                    ts_ms: int, full: bool = True) -> str:
        t = inst.venue_symbol
        if full:
            market = {"ticker": t, "status": "ACTIVE" if inst.status in ("active", "derived") else "PAUSED",
                      "oraclePrice": num_text(index), "nextFundingRate": num_text(rate), "tickSize": num_text(inst.tick_size),
                      "stepSize": num_text(inst.lot_size), "marketType": "CROSS"}
            msg = {**self._sim_head("subscribed", "v4_markets"), "contents": {"markets": {t: market}}}
        else:
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts_ms // 1000)) + f".{ts_ms % 1000:03d}Z"
            msg = {**self._sim_head("channel_data", "v4_markets"), "version": "1.0.0", "contents": {
                "trading": {t: {"ticker": t, "nextFundingRate": num_text(rate)}},
                "oraclePrices": {t: {"oraclePrice": num_text(index), "effectiveAt": stamp}},
            }}
        return _enc.encode(msg).decode()

    def sim_metadata(self, instruments: list[Instrument]) -> dict[str, bytes]:
        markets = {i.venue_symbol: {
            "clobPairId": str(n), "ticker": i.venue_symbol,
            "status": "ACTIVE" if i.status in ("active", "derived") else "PAUSED",
            "tickSize": num_text(i.tick_size), "stepSize": num_text(i.lot_size), "marketType": "CROSS",
        } for n, i in enumerate(instruments)}
        return {_MARKETS_PATH: _enc.encode({"markets": markets})}




register(Dydx)
