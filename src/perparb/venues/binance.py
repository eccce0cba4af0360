"""Binance USDⓈ-M futures.

Books: REST snapshot (``/fapi/v1/depth``) bridged by diff events: the first applied event
has ``U <= lastUpdateId <= u``, every later one ``pu`` == previous ``u``. Quantities are base
units of the venue's base (``1000PEPE`` units for ``1000PEPEUSDT``).
Funding: ``markPriceUpdate.r`` is the current-period rate that settles at ``T`` (it moves
until settlement); Binance publishes no rate beyond it. The interval is 8 h unless
``/fapi/v1/fundingInfo`` lists the symbol with ``fundingIntervalHours``.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import msgspec

from perparb.instruments.canonical import canonical_symbol, split_multiple
from perparb.model import BookDelta, BookSnapshot, Funding, Instrument, Level, MarketEvent, Quote, Trade
from perparb.venues import register
from perparb.venues.base import MS, Connection, Venue, asked_symbol, decode_error, num_text


class _BookTicker(msgspec.Struct, tag_field="e", tag="bookTicker"):
    s: str
    b: float
    B: float
    a: float
    A: float
    E: int = 0
    T: int = 0


class _Depth(msgspec.Struct, tag_field="e", tag="depthUpdate"):
    s: str
    U: int
    u: int
    b: list[Level]
    a: list[Level]
    pu: int | None = None
    E: int = 0


class _MarkPrice(msgspec.Struct, tag_field="e", tag="markPriceUpdate"):
    s: str
    p: float
    r: str = ""
    T: int = 0
    E: int = 0
    i: float | None = None


class _AggTrade(msgspec.Struct, tag_field="e", tag="aggTrade"):
    s: str
    p: float
    q: float
    T: int
    m: bool
    a: int = 0


class _Trade(msgspec.Struct, tag_field="e", tag="trade"):
    s: str
    p: float
    q: float
    T: int
    m: bool
    t: int = 0


_Event = _BookTicker | _Depth | _MarkPrice | _AggTrade | _Trade | list[_MarkPrice]


class _Wrapped(msgspec.Struct):
    """Combined-stream envelope; the stream name tells partial-depth snapshots apart."""

    data: _Event
    stream: str = ""


class _RestDepth(msgspec.Struct):
    lastUpdateId: int
    bids: list[Level]
    asks: list[Level]
    E: int = 0
    T: int = 0


class _Filter(msgspec.Struct, omit_defaults=True):
    filterType: str
    tickSize: str = "0"
    stepSize: str = "0"
    minQty: str = "0"
    notional: str = "0"


class _Symbol(msgspec.Struct):
    symbol: str
    contractType: str
    status: str
    baseAsset: str
    quoteAsset: str
    marginAsset: str
    filters: list[_Filter] = []


class _ExchangeInfo(msgspec.Struct):
    symbols: list[_Symbol]


class _FundingInfo(msgspec.Struct):
    symbol: str
    fundingIntervalHours: float


def _dec(t: Any) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(t, strict=False)


_WRAPPED = (b'{"stream":', '{"stream":')
_wrapped, _event, _rest_depth = _dec(_Wrapped), _dec(_Event), _dec(_RestDepth)
_exchange_info, _funding_info = _dec(_ExchangeInfo), _dec(list[_FundingInfo])
_enc = msgspec.json.Encoder()


class Binance(Venue):
    id = "binance"
    name = "Binance USDⓈ-M"
    ws_url = "wss://fstream.binance.com"
    rest_url = "https://fapi.binance.com"
    book_sync = "rest_bridged"
    heartbeat_text = None  # the server sends ping frames; the websocket library answers them
    silence_s = 30.0
    taker_fee = 0.0005
    maker_fee = 0.0002
    metadata_paths = ("/fapi/v1/exchangeInfo", "/fapi/v1/fundingInfo")
    # A 1000-level depth snapshot weighs 20 of the 2,400 per minute: at most ~100 a minute.
    rest_min_interval_s = 0.6

    def derive(self, venue_symbol: str) -> Instrument | None:
        for quote in ("USDT", "USDC"):
            if venue_symbol.endswith(quote) and len(venue_symbol) > len(quote):
                return self._instrument(venue_symbol, venue_symbol[: -len(quote)], quote, quote, "derived")
        return None

    def _instrument(self, sym: str, base: str, quote: str, settle: str, status: str, **kw: Any) -> Instrument:
        asset, scale = split_multiple(base)
        return Instrument(
            venue=self.id, venue_symbol=sym, symbol=canonical_symbol(asset, quote, settle), asset=asset,
            quote=quote, settle=settle, price_scale=scale, taker_fee=self.taker_fee,
            maker_fee=self.maker_fee, status=status, source=self.id, **kw,
        )

    # -- feed ----------------------------------------------------------------------------
    def connections(self, instruments: list[Instrument], books: bool = True) -> list[Connection]:
        public, market = [], []
        for inst in instruments:
            s = inst.venue_symbol.lower()
            public.append(f"{s}@bookTicker")
            if books:
                public.append(f"{s}@depth@100ms")
            market.append(f"{s}@markPrice@1s")
        out = []
        for path, streams in (("/public/stream", public), ("/market/stream", market)):
            # At most 10 incoming messages/s per connection: one SUBSCRIBE per 200 streams.
            msgs = [
                _enc.encode({"method": "SUBSCRIBE", "params": streams[i : i + 200], "id": i // 200 + 1}).decode()
                for i in range(0, len(streams), 200)
            ]
            out.append(Connection(path=path, subscribe=msgs, instruments=instruments))
        return out

    def parse(self, raw: str | bytes, recv_ns: int) -> list[MarketEvent]:
        stream = ""
        try:
            if raw[:10] in _WRAPPED:
                w = _wrapped.decode(raw)
                ev, stream = w.data, w.stream
            else:
                ev = _event.decode(raw)
        except msgspec.ValidationError as exc:
            return self._other(raw, exc)
        except msgspec.DecodeError as exc:
            raise decode_error(self.id, exc, raw) from None
        t = type(ev)
        if t is _BookTicker:
            sym = ev.s
            inst = self.table.get(sym) or self.instrument(sym)
            if inst is None:
                return []
            scale = inst.price_scale
            if scale == 1.0:
                return [Quote("binance", inst.symbol, sym, ev.b, ev.B, ev.a, ev.A, (ev.E or ev.T) * MS, recv_ns)]
            return [Quote("binance", inst.symbol, sym, ev.b / scale, ev.B * scale, ev.a / scale, ev.A * scale,
                          (ev.E or ev.T) * MS, recv_ns)]
        if t is _Depth:
            return self._depth(ev, recv_ns, stream)
        if t is list:
            return [f for m in ev if (f := self._funding(m, recv_ns)) is not None]
        if t is _MarkPrice:
            f = self._funding(ev, recv_ns)
            return [f] if f is not None else []
        inst = self.instrument(ev.s)
        if inst is None:
            return []
        return [Trade(
            venue=self.id, symbol=inst.symbol, venue_symbol=ev.s, px=ev.p / inst.price_scale,
            qty=ev.q * inst.price_scale, side="sell" if ev.m else "buy",
            trade_id=str(ev.a if t is _AggTrade else ev.t), ts_exchange_ns=ev.T * MS, recv_ns=recv_ns,
        )]

    def _other(self, raw: str | bytes, exc: Exception) -> list[MarketEvent]:
        """Messages that are not market data (acks, tickers, liquidations) give no events;
        known market data with wrong fields is an error."""
        try:
            msg = msgspec.json.decode(raw)
        except msgspec.DecodeError:
            raise decode_error(self.id, exc, raw) from None
        data = msg.get("data", msg) if isinstance(msg, dict) else msg
        kind = data.get("e") if isinstance(data, dict) else None
        if kind in ("bookTicker", "depthUpdate", "markPriceUpdate", "aggTrade", "trade") or (
                isinstance(data, list) and data):
            raise decode_error(self.id, exc, raw)
        return []

    def _depth(self, d: _Depth, recv_ns: int, stream: str) -> list[MarketEvent]:
        inst = self.table.get(d.s) or self.instrument(d.s)
        if inst is None:
            return []
        scale = inst.price_scale
        if scale == 1.0:  # the decoded (price, quantity) tuples are already normalized
            bids, asks = d.b, d.a
        else:
            bids = [(p / scale, q * scale) for p, q in d.b]
            asks = [(p / scale, q * scale) for p, q in d.a]
        # Partial-depth streams (@depth5/10/20) carry the whole top N every time.
        at = stream.find("@depth") + 6
        if stream[at:at + 1].isdigit():
            return [BookSnapshot(venue=self.id, symbol=inst.symbol, venue_symbol=d.s, bids=bids, asks=asks,
                                 seq=d.u, ts_exchange_ns=d.E * MS, recv_ns=recv_ns)]
        return [BookDelta(venue=self.id, symbol=inst.symbol, venue_symbol=d.s, bids=bids, asks=asks,
                          first_seq=d.U, seq=d.u, prev_seq=d.pu, ts_exchange_ns=d.E * MS, recv_ns=recv_ns)]

    def _funding(self, m: _MarkPrice, recv_ns: int) -> Funding | None:
        inst = self.instrument(m.s)
        if inst is None or not m.r:
            return None
        try:
            rate = float(m.r)
        except ValueError as exc:
            raise decode_error(self.id, exc, f"markPriceUpdate {m.s} r={m.r!r}") from None
        return Funding(
            venue=self.id, symbol=inst.symbol, venue_symbol=m.s, rate=rate,
            interval_h=inst.funding_interval_h, next_funding_ns=m.T * MS, mark_px=m.p / inst.price_scale,
            index_px=m.i / inst.price_scale if m.i is not None else None,
            ts_exchange_ns=m.E * MS, recv_ns=recv_ns,
        )

    def book_snapshot_path(self, inst: Instrument) -> str | None:
        return f"/fapi/v1/depth?symbol={inst.venue_symbol}&limit=1000"

    def parse_rest(self, path: str, raw: str | bytes, recv_ns: int) -> list[MarketEvent]:
        url = urlsplit(path)
        if url.path != "/fapi/v1/depth":
            return []
        sym = parse_qs(url.query).get("symbol", [""])[0]
        inst = self.instrument(sym)
        if inst is None:
            return []
        try:
            d = _rest_depth.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise decode_error(self.id, exc, raw) from None
        scale = inst.price_scale
        return [BookSnapshot(
            venue=self.id, symbol=inst.symbol, venue_symbol=sym, seq=d.lastUpdateId,
            bids=[(p / scale, q * scale) for p, q in d.bids], asks=[(p / scale, q * scale) for p, q in d.asks],
            ts_exchange_ns=(d.E or d.T) * MS, recv_ns=recv_ns,
        )]

    # -- metadata ------------------------------------------------------------------------
    def parse_metadata(self, path: str, raw: str | bytes) -> list[Instrument]:
        try:
            return self._metadata(urlsplit(path).path, raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise decode_error(self.id, exc, raw) from None

    def _metadata(self, p: str, raw: str | bytes) -> list[Instrument]:
        if p == "/fapi/v1/exchangeInfo":
            out = []
            for s in _exchange_info.decode(raw).symbols:
                if s.contractType != "PERPETUAL":
                    continue
                f = {x.filterType: x for x in s.filters}
                prev = self.table.get(s.symbol)
                out.append(self._instrument(
                    s.symbol, s.baseAsset, s.quoteAsset, s.marginAsset,
                    "active" if s.status == "TRADING" else "inactive",
                    tick_size=float(f["PRICE_FILTER"].tickSize) if "PRICE_FILTER" in f else 0.0,
                    lot_size=float(f["LOT_SIZE"].stepSize) if "LOT_SIZE" in f else 0.0,
                    min_qty=float(f["LOT_SIZE"].minQty) if "LOT_SIZE" in f else 0.0,
                    min_notional=float(f["MIN_NOTIONAL"].notional) if "MIN_NOTIONAL" in f else 0.0,
                    funding_interval_h=prev.funding_interval_h if prev else 8.0,
                ))
            return out
        if p == "/fapi/v1/fundingInfo":
            # Only symbols off the default are listed: every other one is back to 8 h.
            hours = {f.symbol: f.fundingIntervalHours for f in _funding_info.decode(raw)}
            return [msgspec.structs.replace(i, funding_interval_h=hours.get(s, 8.0))
                    for s, i in self.table.items() if i.funding_interval_h != hours.get(s, 8.0)]
        return []

    # -- simulator -----------------------------------------------------------------------
    def sim_handle(self, text: str) -> tuple[list[str], list[tuple[str, str]]]:
        try:
            msg = msgspec.json.decode(text)
        except msgspec.DecodeError:
            return [], []
        if not isinstance(msg, dict) or msg.get("method") != "SUBSCRIBE":
            return [], []
        kinds = {"bookTicker": "quote", "depth": "book", "markPrice": "funding", "aggTrade": "trade"}
        topics = []
        for stream in msg.get("params", []):
            sym, _, chan = stream.partition("@")
            kind = kinds.get(chan.split("@")[0])
            if kind:
                topics.append((kind, sym.upper()))
        return [_enc.encode({"result": None, "id": msg.get("id")}).decode()], topics

    def sim_quote(self, inst: Instrument, bid: Level, ask: Level, seq: int, ts_ms: int) -> str:
        s = inst.venue_symbol
        d = {"e": "bookTicker", "u": seq, "s": s, "b": num_text(bid[0]), "B": num_text(bid[1]), "a": num_text(ask[0]),
             "A": num_text(ask[1]), "T": ts_ms, "E": ts_ms}
        return _enc.encode({"stream": f"{s.lower()}@bookTicker", "data": d}).decode()

    def sim_book(self, inst: Instrument, snapshot: bool, bids: list[Level], asks: list[Level],
                 seq: int, prev_seq: int, first_seq: int, ts_ms: int) -> str:
        s = inst.venue_symbol
        d = {"e": "depthUpdate", "E": ts_ms, "T": ts_ms, "s": s, "U": first_seq, "u": seq, "pu": prev_seq,
             "b": [[num_text(p), num_text(q)] for p, q in bids], "a": [[num_text(p), num_text(q)] for p, q in asks]}
        return _enc.encode({"stream": f"{s.lower()}@depth@100ms", "data": d}).decode()

    def sim_funding(self, inst: Instrument, rate: float, next_ms: int, mark: float, index: float,
                    ts_ms: int, full: bool = True) -> str:
        s = inst.venue_symbol
        d = {"e": "markPriceUpdate", "E": ts_ms, "s": s, "p": num_text(mark), "i": num_text(index), "P": num_text(mark),
             "r": f"{rate:.8f}", "T": next_ms}
        return _enc.encode({"stream": f"{s.lower()}@markPrice@1s", "data": d}).decode()

    def sim_rest_book(self, path: str) -> str | None:
        return asked_symbol(path, "/fapi/v1/depth")

    def sim_rest_book_body(self, inst: Instrument, bids: list[Level], asks: list[Level], seq: int,
                           ts_ms: int) -> bytes:
        return _enc.encode({"lastUpdateId": seq, "E": ts_ms, "T": ts_ms,
                            "bids": [[num_text(p), num_text(q)] for p, q in bids],
                            "asks": [[num_text(p), num_text(q)] for p, q in asks]})

    def sim_rest_funding(self, path: str) -> str | None:
        return asked_symbol(path, "/fapi/v1/premiumIndex")

    def sim_rest_funding_body(self, inst: Instrument, rate: float, next_ms: int, mark: float, index: float,
                              ts_ms: int) -> bytes:
        return _enc.encode({"symbol": inst.venue_symbol, "markPrice": num_text(mark), "indexPrice": num_text(index),
                            "estimatedSettlePrice": num_text(mark), "lastFundingRate": f"{rate:.8f}",
                            "interestRate": "0.00010000", "nextFundingTime": next_ms, "time": ts_ms})

    def sim_metadata(self, instruments: list[Instrument]) -> dict[str, bytes]:
        symbols = []
        for i in instruments:
            base = i.venue_symbol[: -len(i.quote)]
            symbols.append({
                "symbol": i.venue_symbol, "pair": i.venue_symbol, "contractType": "PERPETUAL", "status": "TRADING",
                "baseAsset": base, "quoteAsset": i.quote, "marginAsset": i.settle,
                "orderTypes": ["LIMIT", "MARKET"], "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
                "filters": [
                    {"filterType": "PRICE_FILTER", "tickSize": num_text(i.tick_size)},
                    {"filterType": "LOT_SIZE", "stepSize": num_text(i.lot_size), "minQty": num_text(i.min_qty)},
                    {"filterType": "MIN_NOTIONAL", "notional": num_text(i.min_notional)},
                ],
            })
        funding = [{"symbol": i.venue_symbol, "fundingIntervalHours": int(i.funding_interval_h)}
                   for i in instruments if i.funding_interval_h != 8]
        return {"/fapi/v1/exchangeInfo": _enc.encode({"timezone": "UTC", "symbols": symbols}),
                "/fapi/v1/fundingInfo": _enc.encode(funding)}




register(Binance)
