"""Bybit v5 linear perpetuals (USDT ``BTCUSDT``, USDC ``BTCPERP``).

Books: in-stream. ``orderbook.{N}.{sym}`` opens with a ``snapshot``; any later snapshot, and
any message with ``u == 1`` (service restart), replaces the book. Delta ``u`` is consecutive
per topic, so each delta chains to ``u - 1``; a gap means unsubscribe + subscribe.
``orderbook.1`` is the top of book and becomes ``Quote`` events. Quantities are base units of
the venue's base (``1000PEPE`` units for ``1000PEPEUSDT``).
Funding: ``tickers.fundingRate`` is the rate for the upcoming settlement at
``nextFundingTime`` (what other venues call predicted); Bybit publishes none beyond it.
``fundingIntervalHour`` gives the interval. Ticker deltas omit unchanged fields, so tickers
are merged into per-symbol state and a missing field never means zero.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import msgspec

from perparb.instruments.canonical import canonical_symbol, split_multiple
from perparb.instruments.registry import Registry
from perparb.model import BookDelta, BookSnapshot, Funding, Instrument, Level, MarketEvent, Quote, Trade
from perparb.venues import register
from perparb.venues.base import MS, Connection, Venue, asked_symbol, decode_error, listing, num_text

_INSTRUMENTS_PATH = "/v5/market/instruments-info?category=linear&limit=1000"
_ARGS_PER_MSG = 10
_ARGS_CHARS = 21_000  # Bybit's cap on the total length of all args on one public connection


class _BookData(msgspec.Struct):
    s: str
    b: list[Level]
    a: list[Level]
    u: int
    seq: int = 0


class _Book(msgspec.Struct):
    topic: str
    type: str
    data: _BookData
    ts: int = 0


class _TickerData(msgspec.Struct):
    # Strings, not numbers: a field may be "" (not applicable) and absent means unchanged.
    symbol: str
    fundingRate: str | None = None
    nextFundingTime: str | None = None
    fundingIntervalHour: str | None = None
    markPrice: str | None = None
    indexPrice: str | None = None
    openInterest: str | None = None
    turnover24h: str | None = None


class _Ticker(msgspec.Struct):
    type: str
    data: _TickerData
    ts: int = 0


class _TradeItem(msgspec.Struct):
    s: str
    S: str
    v: float
    p: float
    i: str
    T: int = 0


class _Trades(msgspec.Struct):
    data: list[_TradeItem]
    ts: int = 0


class _Op(msgspec.Struct):
    topic: str = ""
    success: bool | None = None
    ret_msg: str = ""
    op: str = ""


class _PriceFilter(msgspec.Struct, frozen=True):
    tickSize: str = "0"


class _LotSize(msgspec.Struct, frozen=True):
    qtyStep: str = "0"
    minOrderQty: str = "0"
    minNotionalValue: str = "0"


class _InstrumentInfo(msgspec.Struct):
    symbol: str
    contractType: str
    status: str
    baseCoin: str
    quoteCoin: str
    settleCoin: str
    priceFilter: _PriceFilter = _PriceFilter()
    lotSizeFilter: _LotSize = _LotSize()
    fundingInterval: int = 480  # minutes


class _TickerState:
    __slots__ = ("index", "interval_h", "mark", "next_ms", "oi", "rate", "turnover")

    def __init__(self) -> None:
        self.rate: float | None = None
        self.next_ms: int | None = None
        self.interval_h: float | None = None
        self.mark: float | None = None
        self.index: float | None = None
        self.oi: float | None = None
        self.turnover: float | None = None


def _dec(t: type) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(t, strict=False)


_book, _ticker, _trades, _op = _dec(_Book), _dec(_Ticker), _dec(_Trades), _dec(_Op)
_enc = msgspec.json.Encoder()


def _num(s: str) -> float | None:
    return float(s) if s else None


class Bybit(Venue):
    id = "bybit"
    name = "Bybit linear"
    ws_url = "wss://stream.bybit.com"
    rest_url = "https://api.bybit.com"
    book_sync = "in_stream"
    merged_state = ("_top", "_tickers")
    heartbeat_text = '{"op":"ping"}'  # the documented keepalive; idle connections are cut
    heartbeat_s = 20.0
    silence_s = 30.0
    taker_fee = 0.00055
    maker_fee = 0.0002
    metadata_paths = (_INSTRUMENTS_PATH,)

    def __init__(self, registry: Registry) -> None:
        super().__init__(registry)
        # The protocol's own state: orderbook.1 and tickers both send deltas against it.
        self._top: dict[str, list[float | None]] = {}  # [bid px, bid qty, ask px, ask qty], native
        self._tickers: dict[str, _TickerState] = {}
        self._sim_tickers: dict[str, dict[str, str]] = {}
        self._sim_cs = 0

    def derive(self, venue_symbol: str) -> Instrument | None:
        base = venue_symbol[:-4]
        if not base:
            return None
        if venue_symbol.endswith("USDT"):
            return self._instrument(venue_symbol, base, "USDT", "USDT", "derived")
        if venue_symbol.endswith("PERP"):  # USDC perpetuals are named BTCPERP, ETHPERP
            return self._instrument(venue_symbol, base, "USDC", "USDC", "derived")
        if venue_symbol.endswith("USDC"):
            return self._instrument(venue_symbol, base, "USDC", "USDC", "derived")
        return None  # BTCUSD is inverse (another endpoint); BTCUSDT-21FEB25 is dated

    def _instrument(self, sym: str, base: str, quote: str, settle: str, status: str, **kw: Any) -> Instrument:
        asset, scale = split_multiple(base)
        return Instrument(
            venue=self.id, venue_symbol=sym, symbol=canonical_symbol(asset, quote, settle), asset=asset,
            quote=quote, settle=settle, price_scale=scale, taker_fee=self.taker_fee,
            maker_fee=self.maker_fee, status=status, source=self.id, **kw,
        )

    # -- feed ----------------------------------------------------------------------------
    def connections(self, instruments: list[Instrument], books: bool = True) -> list[Connection]:
        groups: list[tuple[list[str], list[Instrument]]] = []
        size = 0
        for inst in instruments:
            s = inst.venue_symbol
            mine = [f"orderbook.1.{s}", *([f"orderbook.50.{s}"] if books else []), f"tickers.{s}"]
            n = sum(map(len, mine))
            if not groups or size + n > _ARGS_CHARS:
                groups.append(([], []))
                size = 0
            groups[-1][0].extend(mine)
            groups[-1][1].append(inst)
            size += n
        return [
            Connection(path="/v5/public/linear", instruments=insts, subscribe=[
                _enc.encode({"req_id": f"sub{i // _ARGS_PER_MSG + 1}", "op": "subscribe",
                             "args": args[i : i + _ARGS_PER_MSG]}).decode()
                for i in range(0, len(args), _ARGS_PER_MSG)
            ])
            for args, insts in groups
        ]

    def resubscribe_book(self, inst: Instrument) -> list[str]:
        topic = [f"orderbook.50.{inst.venue_symbol}"]
        return [_enc.encode({"req_id": f"re-{op}", "op": op, "args": topic}).decode()
                for op in ("unsubscribe", "subscribe")]

    def parse(self, raw: str | bytes, recv_ns: int) -> list[MarketEvent]:
        if isinstance(raw, str):
            raw = raw.encode()
        try:
            if b'"topic":"orderbook.' in raw:
                chan = "orderbook"
            elif b'"topic":"tickers.' in raw:
                chan = "tickers"
            elif b'"topic":"publicTrade.' in raw:
                chan = "publicTrade"
            else:
                # Acks, pongs, topics we don't use, or JSON that is not compact (the byte checks
                # above miss it); decoding it also makes garbage raise.
                op = _op.decode(raw)
                chan = op.topic.partition(".")[0]
                if op.success is False:
                    self.problems.append(f"{self.id}: {op.op or 'request'} failed: {op.ret_msg}")
            if chan == "orderbook":
                return self._book(_book.decode(raw), recv_ns)
            if chan == "tickers":
                return self._ticker(_ticker.decode(raw), recv_ns)
            if chan == "publicTrade":
                return self._trades(_trades.decode(raw), recv_ns)
        except (msgspec.DecodeError, ValueError) as exc:  # ValueError: ticker numbers sent as text
            raise decode_error(self.id, exc, raw) from None
        return []

    def _book(self, m: _Book, recv_ns: int) -> list[MarketEvent]:
        d = m.data
        inst = self.instrument(d.s)
        if inst is None:
            return []
        snapshot = m.type == "snapshot" or d.u == 1
        if m.topic.startswith("orderbook.1."):
            return self._top_of_book(inst, d, snapshot, m.ts, recv_ns)
        bids, asks = inst.levels(d.b), inst.levels(d.a)
        if snapshot:
            return [BookSnapshot(venue=self.id, symbol=inst.symbol, venue_symbol=d.s, bids=bids, asks=asks,
                                 seq=d.u, ts_exchange_ns=m.ts * MS, recv_ns=recv_ns)]
        return [BookDelta(venue=self.id, symbol=inst.symbol, venue_symbol=d.s, bids=bids, asks=asks,
                          first_seq=d.u, seq=d.u, prev_seq=d.u - 1, ts_exchange_ns=m.ts * MS, recv_ns=recv_ns)]

    def _top_of_book(self, inst: Instrument, d: _BookData, snapshot: bool, ts: int,
                     recv_ns: int) -> list[MarketEvent]:
        top = self._top.get(d.s)
        if top is None or snapshot:
            top = self._top[d.s] = [None, None, None, None]
        for levels, i in ((d.b, 0), (d.a, 2)):
            for p, q in levels:
                if q:
                    top[i], top[i + 1] = p, q
                elif p == top[i]:  # zero size elsewhere removes a level that is no longer the top
                    top[i] = top[i + 1] = None
        bp, bq, ap, aq = top
        if bp is None or bq is None or ap is None or aq is None:
            return []
        return [Quote(venue=self.id, symbol=inst.symbol, venue_symbol=d.s,
                      bid_px=inst.px(bp), bid_qty=inst.qty(bq, bp), ask_px=inst.px(ap), ask_qty=inst.qty(aq, ap),
                      ts_exchange_ns=ts * MS, recv_ns=recv_ns)]

    def _ticker(self, m: _Ticker, recv_ns: int) -> list[MarketEvent]:
        d = m.data
        inst = self.instrument(d.symbol)
        if inst is None:
            return []
        st = self._tickers.get(d.symbol)
        if st is None or m.type == "snapshot":
            st = self._tickers[d.symbol] = _TickerState()
        changed = m.type == "snapshot"
        if d.fundingRate is not None:
            st.rate, changed = _num(d.fundingRate), True
        if d.nextFundingTime is not None:
            st.next_ms, changed = int(d.nextFundingTime or 0) or None, True
        if d.fundingIntervalHour is not None:
            st.interval_h, changed = _num(d.fundingIntervalHour), True
        if d.markPrice is not None:
            st.mark, changed = _num(d.markPrice), True
        if d.indexPrice is not None:
            st.index, changed = _num(d.indexPrice), True
        # Open interest and volume ride along but alone are no funding news.
        if d.openInterest is not None:
            st.oi = _num(d.openInterest)
        if d.turnover24h is not None:
            st.turnover = _num(d.turnover24h)
        if not changed or st.rate is None or st.next_ms is None:
            return []
        return [Funding(
            venue=self.id, symbol=inst.symbol, venue_symbol=d.symbol, rate=st.rate,
            interval_h=st.interval_h or inst.funding_interval_h, next_funding_ns=st.next_ms * MS,
            mark_px=inst.px(st.mark) if st.mark is not None else None,
            index_px=inst.px(st.index) if st.index is not None else None,
            open_interest=inst.qty(st.oi, st.mark) if st.oi is not None and st.mark else None,
            volume_24h_quote=st.turnover, ts_exchange_ns=m.ts * MS, recv_ns=recv_ns,
        )]

    def _trades(self, m: _Trades, recv_ns: int) -> list[MarketEvent]:
        out: list[MarketEvent] = []
        if not m.data or (inst := self.instrument(m.data[0].s)) is None:
            return out
        for t in m.data:
            # T is when the trade happened; the envelope ts is when it was pushed.
            out.append(Trade(
                venue=self.id, symbol=inst.symbol, venue_symbol=t.s, px=inst.px(t.p), qty=inst.qty(t.v, t.p),
                side="buy" if t.S == "Buy" else "sell", trade_id=t.i,
                ts_exchange_ns=(t.T or m.ts) * MS, recv_ns=recv_ns,
            ))
        return out

    # -- metadata ------------------------------------------------------------------------
    def parse_metadata(self, path: str, raw: str | bytes) -> list[Instrument]:
        if urlsplit(path).path != "/v5/market/instruments-info":
            return []
        items = listing(self.id, raw, _InstrumentInfo, "result", "list", ok={"retCode": 0})
        # One page; a non-empty result.nextPageCursor means the caller must fetch the next one
        # with &cursor=. limit=1000 covers all of today's linear contracts in one page.
        return [
            self._instrument(
                s.symbol, s.baseCoin, s.quoteCoin, s.settleCoin,
                "active" if s.status == "Trading" else "inactive",
                tick_size=float(s.priceFilter.tickSize), lot_size=float(s.lotSizeFilter.qtyStep),
                min_qty=float(s.lotSizeFilter.minOrderQty),
                min_notional=float(s.lotSizeFilter.minNotionalValue or 0),
                funding_interval_h=s.fundingInterval / 60,
            )
            for s in items
            if s.contractType == "LinearPerpetual"
        ]

    # -- simulator -----------------------------------------------------------------------
    def sim_handle(self, text: str) -> tuple[list[str], list[tuple[str, str]]]:
        try:
            msg = msgspec.json.decode(text)
        except msgspec.DecodeError:
            return [], []
        if not isinstance(msg, dict):
            return [], []
        op, req_id = msg.get("op"), msg.get("req_id", "")
        if op == "ping":
            return [_enc.encode({"success": True, "ret_msg": "pong", "conn_id": "sim", "req_id": req_id,
                                 "op": "ping"}).decode()], []
        if op not in ("subscribe", "unsubscribe"):
            return [], []
        topics = []
        if op == "subscribe":
            kinds = {"tickers": "funding", "publicTrade": "trade"}
            for arg in msg.get("args", []):
                chan, _, rest = arg.partition(".")
                depth, _, sym = rest.rpartition(".")
                kind = ("quote" if depth == "1" else "book") if chan == "orderbook" else kinds.get(chan)
                if kind and sym:
                    topics.append((kind, sym))
        ack = {"success": True, "ret_msg": "", "conn_id": "sim", "req_id": req_id, "op": op}
        return [_enc.encode(ack).decode()], topics

    def sim_quote(self, inst: Instrument, bid: Level, ask: Level, seq: int, ts_ms: int) -> str:
        s = inst.venue_symbol
        return _enc.encode({
            "topic": f"orderbook.1.{s}", "ts": ts_ms, "type": "snapshot",
            "data": {"s": s, "b": [[num_text(bid[0]), num_text(bid[1])]], "a": [[num_text(ask[0]), num_text(ask[1])]],
                     "u": seq, "seq": seq},
            "cts": ts_ms,
        }).decode()

    def sim_book(self, inst: Instrument, snapshot: bool, bids: list[Level], asks: list[Level],
                 seq: int, prev_seq: int, first_seq: int, ts_ms: int) -> str:
        s = inst.venue_symbol
        return _enc.encode({
            "topic": f"orderbook.50.{s}", "type": "snapshot" if snapshot else "delta", "ts": ts_ms,
            "data": {"s": s, "b": [[num_text(p), num_text(q)] for p, q in bids],
                     "a": [[num_text(p), num_text(q)] for p, q in asks], "u": seq, "seq": seq},
            "cts": ts_ms,
        }).decode()

    def sim_funding(self, inst: Instrument, rate: float, next_ms: int, mark: float, index: float,
                    ts_ms: int, full: bool = True) -> str:
        s = inst.venue_symbol
        now = {"markPrice": num_text(mark), "indexPrice": num_text(index), "fundingIntervalHour": num_text(inst.funding_interval_h),
               "nextFundingTime": str(next_ms), "fundingRate": num_text(rate)}
        last = self._sim_tickers.get(s)
        self._sim_tickers[s] = now
        if full or last is None:
            kind, data = "snapshot", {"symbol": s, **now}
        else:
            kind, data = "delta", {"symbol": s, **{k: v for k, v in now.items() if last.get(k) != v}}
        self._sim_cs += 1
        return _enc.encode({"topic": f"tickers.{s}", "type": kind, "data": data, "cs": self._sim_cs,
                            "ts": ts_ms}).decode()

    def sim_metadata(self, instruments: list[Instrument]) -> dict[str, bytes]:
        rows = [{
            "symbol": i.venue_symbol, "contractType": "LinearPerpetual",
            "status": "Trading" if i.status in ("active", "derived") else "Closed",
            "baseCoin": i.venue_symbol[:-4], "quoteCoin": i.quote, "settleCoin": i.settle,
            "deliveryTime": "0", "priceFilter": {"tickSize": num_text(i.tick_size)},
            "lotSizeFilter": {"qtyStep": num_text(i.lot_size), "minOrderQty": num_text(i.min_qty),
                              "minNotionalValue": num_text(i.min_notional)},
            "fundingInterval": round(i.funding_interval_h * 60),
        } for i in instruments]
        body = {"retCode": 0, "retMsg": "OK", "result": {"category": "linear", "list": rows, "nextPageCursor": ""},
                "retExtInfo": {}, "time": 0}
        return {_INSTRUMENTS_PATH: _enc.encode(body)}

    def sim_rest_book(self, path: str) -> str | None:
        return asked_symbol(path, "/v5/market/orderbook")  # ccxt's fetch_order_book (scan --once)

    def sim_rest_book_body(self, inst: Instrument, bids: list[Level], asks: list[Level], seq: int,
                           ts_ms: int) -> bytes:
        book = {"s": inst.venue_symbol, "b": [[num_text(p), num_text(q)] for p, q in bids],
                "a": [[num_text(p), num_text(q)] for p, q in asks], "ts": ts_ms, "u": seq, "seq": seq, "cts": ts_ms}
        return _enc.encode({"retCode": 0, "retMsg": "OK", "result": book, "time": ts_ms})

    def sim_rest_funding(self, path: str) -> str | None:
        return asked_symbol(path, "/v5/market/tickers")

    def sim_rest_funding_body(self, inst: Instrument, rate: float, next_ms: int, mark: float, index: float,
                              ts_ms: int) -> bytes:
        t = {"symbol": inst.venue_symbol, "lastPrice": num_text(mark), "markPrice": num_text(mark),
             "indexPrice": num_text(index), "fundingRate": f"{rate:.8f}", "nextFundingTime": str(next_ms),
             "fundingIntervalHour": f"{inst.funding_interval_h:g}"}
        return _enc.encode({"retCode": 0, "retMsg": "OK", "result": {"category": "linear", "list": [t]}, "time": ts_ms})


register(Bybit)
