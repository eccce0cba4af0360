"""BitMEX perpetual swaps (inverse ``XBTUSD``, linear ``XBTUSDT``/``ETHUSDT``).

Books: ``orderBookL2`` carries no sequence number and no checksum. A ``partial`` is the whole
book of one symbol (rows that arrive before it are ignored), then ``insert`` / ``update`` /
``delete`` rows keyed by ``(symbol, id, side)``. The level ``id`` encodes the price, and
2021-era ``update``/``delete`` rows carry no ``price`` at all, so the adapter keeps an
id → price map per symbol (filled by partial and insert, emptied by delete) and translates rows
into price levels: partial → BookSnapshot (seq 0), everything else → BookDelta with
``prev_seq`` None (there is no chain to check). A row naming an id the map does not hold and
carrying no price means an insert was lost: the adapter forgets the symbol and emits an empty
BookDelta whose ``prev_seq`` (-1) can never match, which makes the shared state machine mark
the book invalid and resubscribe for a fresh partial. An unsubscribe ack forgets the symbol too.
Quantities are CONTRACTS. Inverse (``isInverse``): one contract is
``multiplier / underlyingToSettleMultiplier`` quote units (1 USD on XBTUSD); coins = USD / price.
Linear: coins = contracts / ``underlyingToPositionMultiplier``. Quanto (``isQuanto``: ETHUSD,
and in 2021 every ``*USDT`` swap, all settled in XBT): the coin amount of one contract moves with
the XBT price, so no fixed contract size exists. They decode with ``multiplier /
quoteToSettleMultiplier`` (BitMEX's own homeNotional at the XBT price of the metadata response,
an approximation) and are always status "inactive": never paired. Contracts quoted in a
non-dollar currency (``XBTEUR``) are inactive too: nothing else is quoted in EUR.
Funding: the ``instrument`` table (a partial, then update rows holding only changed fields,
merged per symbol). ``fundingRate`` is the rate fixed at the previous settlement that will be
paid at ``fundingTimestamp`` (the upcoming settlement); ``indicativeFundingRate`` is the
predicted rate of the settlement after that one. The interval is ``fundingInterval``, written
as an offset from 2000-01-01 (``2000-01-01T08:00:00.000Z`` = 8 h); BitMEX may shorten it in
volatile markets and then sends the new value in the instrument table.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import msgspec
from msgspec import UNSET, UnsetType

from perparb.instruments.canonical import ALIASES, canonical_symbol, split_multiple
from perparb.instruments.registry import Registry
from perparb.levels import id_rows
from perparb.model import BookDelta, BookSnapshot, Funding, Instrument, Level, MarketEvent, Quote, Trade
from perparb.venues import register
from perparb.venues.base import Connection, SimFullBooks, Venue, decode_error, iso_ns, listing, one_at_a_time

_ACTIVE_PATH = "/api/v1/instrument/active"
_METADATA_PATHS = (_ACTIVE_PATH, "/api/v1/instrument")
_PERPETUAL = ("FFWCSX", "FFWCSF")  # crypto and FX perpetual swaps; FFCCSX are dated futures
_DOLLAR_QUOTES = ("USD", "USDT", "USDC")
_MAX_ARGS = 20
_HOUR_NS = 3_600_000_000_000


# -- wire types -----------------------------------------------------------------------------
class _L2Row(msgspec.Struct, gc=False):  # numbers and strings only: no cycles to collect
    symbol: str
    id: int
    side: str
    size: float = 0.0  # absent on delete rows
    price: float | None = None  # absent on 2021 update/delete rows
    timestamp: str = ""  # absent before 2022


class _Filter(msgspec.Struct):
    symbol: str = ""


class _L2(msgspec.Struct):
    action: str
    data: list[_L2Row]
    filter: _Filter | None = None


class _QuoteRow(msgspec.Struct):
    symbol: str
    bidPrice: float | None = None
    bidSize: float | None = None
    askPrice: float | None = None
    askSize: float | None = None
    timestamp: str = ""


class _Quotes(msgspec.Struct):
    data: list[_QuoteRow]


class _TradeRow(msgspec.Struct):
    symbol: str
    side: str
    size: float
    price: float
    trdMatchID: str = ""
    timestamp: str = ""


class _Trades(msgspec.Struct):
    data: list[_TradeRow]


class _InstrumentRow(msgspec.Struct):
    # Update rows hold only the fields that changed: UNSET means "unchanged", None "no value".
    symbol: str
    fundingRate: float | UnsetType | None = UNSET
    indicativeFundingRate: float | UnsetType | None = UNSET
    fundingTimestamp: str | UnsetType | None = UNSET
    fundingInterval: str | UnsetType | None = UNSET
    markPrice: float | UnsetType | None = UNSET
    indicativeSettlePrice: float | UnsetType | None = UNSET  # the index the mark is built on
    timestamp: str = ""


class _InstrumentTable(msgspec.Struct):
    action: str
    data: list[_InstrumentRow]


class _Other(msgspec.Struct):
    """Everything that is not a table push: welcome, acks, errors."""

    table: str = ""
    info: str = ""
    success: bool | None = None
    subscribe: str | list[str] = ""
    unsubscribe: str | list[str] = ""
    error: str = ""
    status: int = 0


class _InstrumentInfo(msgspec.Struct):
    symbol: str
    typ: str = ""
    state: str = ""
    underlying: str = ""
    quoteCurrency: str = ""
    settlCurrency: str | None = None
    isInverse: bool = False
    isQuanto: bool = False
    multiplier: float | None = None
    underlyingToPositionMultiplier: float | None = None
    underlyingToSettleMultiplier: float | None = None
    quoteToSettleMultiplier: float | None = None
    lotSize: float | None = None
    tickSize: float | None = None
    makerFee: float | None = None
    takerFee: float | None = None
    fundingInterval: str | None = None


def _dec(t: Any) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(t, strict=False)


_l2, _quotes, _trades, _instrument_table = _dec(_L2), _dec(_Quotes), _dec(_Trades), _dec(_InstrumentTable)
_other = _dec(_Other)
# The REST endpoint answers an array; a single object (one element saved alone) is accepted too.
_enc = msgspec.json.Encoder()

_TABLE = b'{"table":"'
_BOOK_TABLES = (b"orderBookL2", b"orderBookL2_25")
_MODES = {"delete": 1, "insert": 2, "update": 2}  # id_rows' modes (0: partial)
_SIM_TOPICS = {"orderBookL2": "book", "orderBookL2_25": "book", "quote": "quote", "instrument": "funding",
               "trade": "trade"}


class _FundingState:
    __slots__ = ("index", "interval_h", "mark", "next_ns", "predicted", "rate")

    def __init__(self) -> None:
        self.rate: float | None = None
        self.predicted: float | None = None
        self.next_ns = 0
        self.interval_h: float | None = None
        self.mark: float | None = None
        self.index: float | None = None


class Bitmex(Venue):
    id = "bitmex"
    name = "BitMEX perpetual swaps"
    ws_url = "wss://ws.bitmex.com"
    rest_url = "https://www.bitmex.com"
    book_sync = "keyed"  # no sequence: behaves like in_stream with unchained deltas
    merged_state = ("_funding",)
    heartbeat_text = "ping"  # BitMEX asks clients to send "ping" when idle for ~5 s; it answers "pong"
    heartbeat_s = 5.0
    silence_s = 15.0
    # Base tier as published in the newest recorded instrument response (XBTUSD, 2024-11:
    # makerFee 0.0005, takerFee 0.0005). parse_metadata uses each instrument's own fields.
    taker_fee = 0.0005
    maker_fee = 0.0005
    metadata_paths = (_ACTIVE_PATH,)
    prefers_inverse = True  # XBTUSD
    # No sequence numbers, but a lost insert shows up as an unknown level id: the simulator
    # can play that loss and the feed must resync (see sim_book).
    sim_has_sequence = True

    def __init__(self, registry: Registry) -> None:
        super().__init__(registry)
        self._ids: dict[str, dict[int, float]] = {}  # symbol → level id → native price
        self._funding: dict[str, _FundingState] = {}
        # Simulator side: the book each symbol's subscribers hold, and the last funding row.
        self._sim_books = SimFullBooks()
        self._sim_last: dict[str, int] = {}
        self._sim_lose: set[str] = set()  # symbols whose next insert message is lost
        self._sim_funding: dict[str, dict[str, Any]] = {}

    # -- feed ----------------------------------------------------------------------------
    def connections(self, instruments: list[Instrument], books: bool = True) -> list[Connection]:
        args = []
        for inst in instruments:
            s = inst.venue_symbol
            if books:
                args.append(f"orderBookL2:{s}")
            args += [f"quote:{s}", f"instrument:{s}"]
        msgs = [_op("subscribe", args[k : k + _MAX_ARGS]) for k in range(0, len(args), _MAX_ARGS)]
        return [Connection(path="/realtime", subscribe=msgs, instruments=instruments)]

    def resubscribe_book(self, inst: Instrument) -> list[str]:
        arg = [f"orderBookL2:{inst.venue_symbol}"]
        return [_op("unsubscribe", arg), _op("subscribe", arg)]

    def parse(self, raw: str | bytes, recv_ns: int) -> list[MarketEvent]:
        if isinstance(raw, str):
            raw = raw.encode()
        try:
            if raw.startswith(_TABLE):
                end = raw.find(b'"', 10)
                if end < 0:
                    raise ValueError("truncated message")
                return self._table(raw[10:end], raw, recv_ns)
            if raw.strip() == b"pong":
                return []
            o = _other.decode(raw)
            if o.table:  # a table push that is not compact JSON
                return self._table(o.table.encode(), raw, recv_ns)
        except (msgspec.DecodeError, ValueError) as exc:
            raise decode_error(self.id, exc, raw) from None
        for arg in [o.unsubscribe] if isinstance(o.unsubscribe, str) else o.unsubscribe:
            table, _, sym = arg.partition(":")
            if table.encode() in _BOOK_TABLES:
                self._ids.pop(sym, None)  # a resubscribe starts again from its partial
        if o.error:
            self.problems.append(f"{self.id}: error {o.status or ''} {o.error}")
        return []  # welcome, subscribe acks

    def _table(self, table: bytes, raw: bytes, recv_ns: int) -> list[MarketEvent]:
        if table in _BOOK_TABLES:
            return self._book(_l2.decode(raw), recv_ns)
        if table == b"quote":
            return self._quotes(_quotes.decode(raw), recv_ns)
        if table == b"trade":
            return self._trades(_trades.decode(raw), recv_ns)
        if table == b"instrument":
            return self._instrument(_instrument_table.decode(raw), recv_ns)
        return []  # liquidation, funding history, orderBook10, ...

    # -- books ---------------------------------------------------------------------------
    def _book(self, m: _L2, recv_ns: int) -> list[MarketEvent]:
        rows = m.data
        if not rows:
            # An empty partial still resets (and makes known) the filtered symbol's book.
            sym = m.filter.symbol if m.filter else ""
            if m.action == "partial" and sym:
                ev = self._book_rows(sym, "partial", rows, recv_ns)
                return [ev] if ev is not None else []
            return []
        out: list[MarketEvent] = []
        i, n = 0, len(rows)
        while i < n:  # rows of one symbol are contiguous; a message may hold several symbols
            sym = rows[i].symbol
            j = i + 1
            while j < n and rows[j].symbol == sym:
                j += 1
            ev = self._book_rows(sym, m.action, rows if i == 0 and j == n else rows[i:j], recv_ns)
            if ev is not None:
                out.append(ev)
            i = j
        return out

    def _book_rows(self, sym: str, action: str, rows: list[_L2Row],
                   recv_ns: int) -> BookSnapshot | BookDelta | None:
        inst = self.table.get(sym) or self.instrument(sym)
        if inst is None:
            return None
        ts = iso_ns(rows[0].timestamp) if rows and rows[0].timestamp else 0
        if action == "partial":
            ids: dict[int, float] = {}
            self._ids[sym] = ids
            mode = 0
        else:
            known = self._ids.get(sym)
            if known is None:
                return None  # before the partial
            ids, mode = known, _MODES.get(action, -1)
            if mode < 0:
                raise ValueError(f"unknown action {action!r}")
        # One compiled pass: the id -> price map kept, rows to normalized levels per side.
        sides = id_rows(rows, ids, mode, inst.price_scale, inst.contract_size, inst.inverse)
        if sides is None:
            return self._lost(inst, ts, recv_ns)
        if mode == 0:
            return BookSnapshot(venue=self.id, symbol=inst.symbol, venue_symbol=sym, bids=sides[0], asks=sides[1],
                                ts_exchange_ns=ts, recv_ns=recv_ns)
        return BookDelta(venue=self.id, symbol=inst.symbol, venue_symbol=sym, bids=sides[0], asks=sides[1],
                         ts_exchange_ns=ts, recv_ns=recv_ns)

    def _lost(self, inst: Instrument, ts: int, recv_ns: int) -> BookDelta:
        """A level id we never saw: an insert was lost. Forget the book and break its chain."""
        del self._ids[inst.venue_symbol]
        return BookDelta(venue=self.id, symbol=inst.symbol, venue_symbol=inst.venue_symbol, bids=[], asks=[],
                         prev_seq=-1, ts_exchange_ns=ts, recv_ns=recv_ns)

    # -- quotes, trades, funding ---------------------------------------------------------
    def _quotes(self, m: _Quotes, recv_ns: int) -> list[MarketEvent]:
        out: list[MarketEvent] = []
        for r in m.data:
            bp, bq, ap, aq = r.bidPrice, r.bidSize, r.askPrice, r.askSize
            if bp is None or bq is None or ap is None or aq is None:
                continue  # one side empty: no quote to compare
            inst = self.table.get(r.symbol) or self.instrument(r.symbol)
            if inst is None:
                continue
            out.append(Quote(self.id, inst.symbol, r.symbol, inst.px(bp), inst.qty(bq, bp), inst.px(ap),
                             inst.qty(aq, ap), iso_ns(r.timestamp) if r.timestamp else 0, recv_ns))
        return out

    def _trades(self, m: _Trades, recv_ns: int) -> list[MarketEvent]:
        out: list[MarketEvent] = []
        for t in m.data:
            inst = self.table.get(t.symbol) or self.instrument(t.symbol)
            if inst is None:
                continue
            out.append(Trade(
                venue=self.id, symbol=inst.symbol, venue_symbol=t.symbol, px=inst.px(t.price),
                qty=inst.qty(t.size, t.price), side="buy" if t.side == "Buy" else "sell", trade_id=t.trdMatchID,
                ts_exchange_ns=iso_ns(t.timestamp) if t.timestamp else 0, recv_ns=recv_ns,
            ))
        return out

    def _instrument(self, m: _InstrumentTable, recv_ns: int) -> list[MarketEvent]:
        out: list[MarketEvent] = []
        reset = m.action == "partial"
        for r in m.data:
            inst = self.table.get(r.symbol) or self.instrument(r.symbol)
            if inst is None:
                continue
            st = self._funding.get(r.symbol)
            if st is None or reset:
                st = self._funding[r.symbol] = _FundingState()
            changed = reset
            if r.fundingRate is not UNSET:
                st.rate, changed = r.fundingRate, True
            if r.indicativeFundingRate is not UNSET:
                st.predicted, changed = r.indicativeFundingRate, True
            if r.fundingTimestamp is not UNSET:
                st.next_ns, changed = iso_ns(r.fundingTimestamp) if r.fundingTimestamp else 0, True
            if r.fundingInterval is not UNSET:
                st.interval_h, changed = _interval_h(r.fundingInterval) if r.fundingInterval else None, True
            if r.markPrice is not UNSET:
                st.mark, changed = r.markPrice, True
            if r.indicativeSettlePrice is not UNSET:
                st.index, changed = r.indicativeSettlePrice, True
            # Rows of only last price / open interest / volume carry no funding news.
            if not changed or st.rate is None or not st.next_ns:
                continue
            out.append(Funding(
                venue=self.id, symbol=inst.symbol, venue_symbol=r.symbol, rate=st.rate,
                predicted_rate=st.predicted, interval_h=st.interval_h or inst.funding_interval_h,
                next_funding_ns=st.next_ns, mark_px=inst.px(st.mark) if st.mark is not None else None,
                index_px=inst.px(st.index) if st.index is not None else None,
                ts_exchange_ns=iso_ns(r.timestamp) if r.timestamp else 0, recv_ns=recv_ns,
            ))
        return out

    # -- metadata ------------------------------------------------------------------------
    def parse_metadata(self, path: str, raw: str | bytes) -> list[Instrument]:
        if urlsplit(path).path not in _METADATA_PATHS:
            return []
        rows = listing(self.id, raw, _InstrumentInfo)  # an array, or one object (instrument?symbol=)
        try:
            return [inst for i in rows if i.typ in _PERPETUAL and (inst := self._from_info(i)) is not None]
        except ZeroDivisionError as exc:
            raise decode_error(self.id, exc, raw) from None

    def _from_info(self, i: _InstrumentInfo) -> Instrument | None:
        asset, scale = split_multiple(i.underlying)
        settle = _currency(i.settlCurrency or "")
        status = "active" if i.state == "Open" else "inactive"
        if i.isInverse:
            mult, to_settle = i.multiplier, i.underlyingToSettleMultiplier
            size = mult / to_settle if mult and to_settle else 1.0  # quote units per contract
        elif i.isQuanto:
            if not (i.multiplier and i.quoteToSettleMultiplier):
                return None  # no way to express a contract in coins at all
            size = i.multiplier / i.quoteToSettleMultiplier  # approximate: moves with XBT (see top)
            status = "inactive"  # quanto: settled in XBT, exposure not fixed in coins; never paired
        else:
            if not i.underlyingToPositionMultiplier:
                return None
            size = 1.0 / i.underlyingToPositionMultiplier
        if i.quoteCurrency not in _DOLLAR_QUOTES:
            status = "inactive"  # XBTEUR: no other leg is quoted in EUR
        lot = i.lotSize or 0.0
        return Instrument(
            venue=self.id, venue_symbol=i.symbol, symbol=canonical_symbol(asset, i.quoteCurrency, settle),
            asset=asset, quote=i.quoteCurrency, settle=settle, inverse=i.isInverse, contract_size=size,
            price_scale=scale, tick_size=i.tickSize or 0.0, lot_size=lot, min_qty=lot,
            taker_fee=self.taker_fee if i.takerFee is None else i.takerFee,
            maker_fee=self.maker_fee if i.makerFee is None else i.makerFee,
            funding_interval_h=_interval_h(i.fundingInterval) if i.fundingInterval else 8.0,
            status=status, source=self.id,
        )

    # -- simulator -----------------------------------------------------------------------
    def sim_handle(self, text: str) -> tuple[list[str], list[tuple[str, str]]]:
        if text == "ping":
            return ["pong"], []
        try:
            msg = msgspec.json.decode(text)
        except msgspec.DecodeError:
            return [], []
        if not isinstance(msg, dict) or msg.get("op") not in ("subscribe", "unsubscribe"):
            return [], []
        op = msg["op"]
        args = msg.get("args", [])
        replies, topics = [], []
        for arg in [args] if isinstance(args, str) else args:
            replies.append(_enc.encode({"success": True, op: arg, "request": msg}).decode())
            table, _, sym = arg.partition(":")
            kind = _SIM_TOPICS.get(table)
            if op == "subscribe" and kind and sym:
                topics.append((kind, sym))
        return replies, topics

    def sim_quote(self, inst: Instrument, bid: Level, ask: Level, seq: int, ts_ms: int) -> str:
        row = {"timestamp": _iso(ts_ms), "symbol": inst.venue_symbol, "bidSize": _num(bid[1]),
               "bidPrice": _num(bid[0]), "askPrice": _num(ask[0]), "askSize": _num(ask[1])}
        return _enc.encode({"table": "quote", "action": "insert", "data": [row]}).decode()

    def sim_book(self, inst: Instrument, snapshot: bool, bids: list[Level], asks: list[Level],
                 seq: int, prev_seq: int, first_seq: int, ts_ms: int) -> str | list[str]:
        """A partial on subscribe, then BitMEX's insert / update / delete messages. A gap the
        simulator asks for (``prev_seq`` not the last ``seq`` sent) is played as BitMEX's real
        failure: an insert message that never arrives, so a later row names an unknown id."""
        sym = inst.venue_symbol
        tick = inst.tick_size or 1e-8
        stamp = _iso(ts_ms)
        last = self._sim_last.get(sym)
        self._sim_last[sym] = seq
        if snapshot:
            book = self._sim_books.apply(sym, True, bids, asks)
            rows = [{"symbol": sym, "id": _sim_id(p, tick), "side": "Sell", "size": _num(q), "price": _num(p),
                     "timestamp": stamp} for p, q in sorted(book[1].items(), reverse=True)]
            rows += [{"symbol": sym, "id": _sim_id(p, tick), "side": "Buy", "size": _num(q), "price": _num(p),
                      "timestamp": stamp} for p, q in sorted(book[0].items(), reverse=True)]
            return _enc.encode({
                "table": "orderBookL2", "action": "partial", "keys": ["symbol", "id", "side"],
                "types": {"symbol": "symbol", "id": "long", "side": "symbol", "size": "long", "price": "float",
                          "timestamp": "timestamp"},
                "filter": {"symbol": sym}, "data": rows,
            }).decode()
        if last is not None and prev_seq != last:
            self._sim_lose.add(sym)
        book = self._sim_books.books.get(sym) or ({}, {})
        msgs: list[tuple[str, list[dict[str, Any]]]] = []  # one message per run of one action
        for is_bid, p, q in one_at_a_time(bids, asks):  # never crossed or one-sided in between
            known = p in book[0 if is_bid else 1]
            if q <= 0 and not known:
                continue
            action = "delete" if q <= 0 else "update" if known else "insert"
            row: dict[str, Any] = {"symbol": sym, "id": _sim_id(p, tick), "side": "Buy" if is_bid else "Sell"}
            if q > 0:  # an update names its level by id alone
                row.update({"size": _num(q), "price": _num(p)} if action == "insert" else {"size": _num(q)})
                row["timestamp"] = stamp
            if msgs and msgs[-1][0] == action:
                msgs[-1][1].append(row)
            else:
                msgs.append((action, [row]))
        self._sim_books.apply(sym, False, bids, asks)
        if sym in self._sim_lose and any(a == "insert" for a, _ in msgs):
            self._sim_lose.discard(sym)
            msgs.remove(next(m for m in msgs if m[0] == "insert"))  # lost on the way
        return [_enc.encode({"table": "orderBookL2", "action": action, "data": rows}).decode() for action, rows in msgs]

    def sim_funding(self, inst: Instrument, rate: float, next_ms: int, mark: float, index: float,
                    ts_ms: int, full: bool = True) -> str:
        sym = inst.venue_symbol
        now = {"fundingRate": rate, "indicativeFundingRate": rate, "fundingTimestamp": _iso(next_ms),
               "fundingInterval": _interval_text(inst.funding_interval_h), "markPrice": _num(mark),
               "indicativeSettlePrice": _num(index)}
        last = self._sim_funding.get(sym)
        self._sim_funding[sym] = now
        if full or last is None:
            return _enc.encode({"table": "instrument", "action": "partial", "keys": ["symbol"],
                                "filter": {"symbol": sym},
                                "data": [{"symbol": sym, **now, "timestamp": _iso(ts_ms)}]}).decode()
        changed = {k: v for k, v in now.items() if last.get(k) != v}
        return _enc.encode({"table": "instrument", "action": "update",
                            "data": [{"symbol": sym, **changed, "timestamp": _iso(ts_ms)}]}).decode()

    def sim_metadata(self, instruments: list[Instrument]) -> dict[str, bytes]:
        rows = []
        for i in instruments:
            underlying = "XBT" if i.asset == "BTC" else i.asset
            if i.price_scale != 1:
                underlying = f"{i.price_scale:.0f}{underlying}"
            quanto = not i.inverse and i.settle not in (i.quote, i.asset)
            row: dict[str, Any] = {
                "symbol": i.venue_symbol, "rootSymbol": underlying, "typ": "FFWCSX",
                "state": "Open" if i.status in ("active", "derived") else "Closed",
                "underlying": underlying, "quoteCurrency": i.quote,
                "settlCurrency": {"BTC": "XBt", "USDT": "USDt"}.get(i.settle, i.settle),
                "isInverse": i.inverse, "isQuanto": quanto, "lotSize": _num(i.lot_size),
                "tickSize": i.tick_size, "makerFee": i.maker_fee, "takerFee": i.taker_fee,
                "fundingInterval": _interval_text(i.funding_interval_h),
            }
            if i.inverse:
                row.update(multiplier=-100_000_000 * i.contract_size, underlyingToSettleMultiplier=-100_000_000)
            elif quanto:
                row.update(multiplier=i.contract_size, quoteToSettleMultiplier=1)
            else:
                row.update(multiplier=1, underlyingToPositionMultiplier=float(f"{1.0 / i.contract_size:.12g}"))
            rows.append(row)
        return {_ACTIVE_PATH: _enc.encode(rows)}


# -- helpers --------------------------------------------------------------------------------
def _currency(code: str) -> str:
    """BitMEX writes settlement currencies in their smallest unit: ``XBt`` (satoshi) is BTC,
    ``USDt`` (micro-USDT) is USDT."""
    c = code.upper()
    return ALIASES.get(c, c)


_Y2K_NS = iso_ns("2000-01-01T00:00:00.000Z")


def _interval_h(text: str) -> float:
    """``fundingInterval`` is a duration written as a date: the offset from 2000-01-01."""
    return (iso_ns(text) - _Y2K_NS) / _HOUR_NS


def _interval_text(hours: float) -> str:
    return _iso(round((_Y2K_NS + hours * _HOUR_NS) / 1_000_000))


def _iso(ms: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ms // 1000)) + f".{ms % 1000:03d}Z"


def _num(x: float) -> int | float:
    """A JSON number as BitMEX writes it: integral values without a fraction."""
    return int(x) if float(x).is_integer() and abs(x) < 2**53 else x


def _sim_id(price: float, tick: float) -> int:
    # Like BitMEX's ids: one per price, larger for lower prices.
    return 10**16 - round(price / tick)


def _op(op: str, args: list[str]) -> str:
    return _enc.encode({"op": op, "args": args}).decode()


register(Bitmex)
