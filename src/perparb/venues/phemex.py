"""Phemex USDT-M perpetuals (the "hedged" contract API: ``BTCUSDT``, ``*_p`` channels).

Books: in-stream. ``orderbook_p.subscribe [sym]`` answers with a ``snapshot`` of 30 levels per
side and then ``incremental`` messages (absolute sizes, ``"0"`` removes a level); Phemex re-sends
a snapshot every 60 s, and each snapshot replaces the book. ``sequence`` increases but is not
contiguous per symbol (it is shared across the gateway: 77668172 -> 77668209 in the docs), so a
lost message cannot be detected. Snapshots map to ``BookSnapshot(seq=sequence)``; increments to
``BookDelta(first_seq=seq=sequence, prev_seq=None)`` (accepted unchained by the shared state
machine), except an increment whose sequence is not above the last one seen for the symbol
(duplicate or out of order), which gets ``prev_seq=-1`` so the book is invalidated and
resubscribed. Phemex has no BBO channel: quotes come from the synced book.
Quantities: ``Rq`` strings are real base-coin quantities, ``Rp`` real prices (no contract
size; ``1000``-prefixed bases are scaled by ``split_multiple``), so ``derive`` can build an
instrument from the symbol.
Funding: ``perp_market24h_pack_p`` (all symbols every second) carries ``fundingRateRr``, the
rate fixed for the current period that settles at the next funding time, and
``predFundingRateRr``, Phemex's estimate for the period after it (BitMEX-style; the naming
follows the docs, the split is not stated there in more words). Neither the pack nor any
other public channel carries the settlement time: ``next_funding_ns`` is the next multiple
of the interval after the message (settlements at 00:00/08:00/16:00 UTC for 8 h). The
interval is the product's ``fundingInterval`` (seconds) from ``/public/products``
(``perpProductsV2``), else 8 h.
The 2021 recordings are the LEGACY coin-margined contract API (``book``/``trades``/
``market24h`` keys, ``Ep``-scaled integers, contract sizes from the old product list): this
adapter never subscribes to them, and their messages give no events.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import msgspec

from perparb.instruments.canonical import ALIASES, canonical_symbol, split_multiple
from perparb.instruments.registry import Registry
from perparb.model import BookDelta, BookSnapshot, Funding, Instrument, Level, MarketEvent, Trade
from perparb.venues import register
from perparb.venues.base import Connection, Venue, decode_error, num_text

_PRODUCTS_PATH = "/public/products"
_LEGACY_PRODUCTS_PATH = "/exchange/public/cfg/v2/products"  # same answer, older path
HOUR_NS = 3_600_000_000_000
_SUBS_PER_CONN = 20  # Phemex: at most 20 subscriptions per connection (and 5 connections)
_PACK_FIELDS = ("symbol", "openRp", "highRp", "lowRp", "lastRp", "volumeRq", "turnoverRv", "openInterestRv",
                "indexRp", "markRp", "fundingRateRr", "predFundingRateRr")


class _Levels(msgspec.Struct):
    asks: list[Level] = []
    bids: list[Level] = []


class _Book(msgspec.Struct):
    orderbook_p: _Levels
    symbol: str
    sequence: int
    type: str
    timestamp: int = 0
    depth: int = 0


class _Trades(msgspec.Struct):
    trades_p: list[tuple[int, str, float, float]]
    symbol: str
    type: str
    sequence: int = 0


class _Pack(msgspec.Struct):
    # Strings: a field may be "" for a symbol that has not traded.
    data: list[list[str]]
    timestamp: int
    type: str = ""
    fields: list[str] = []


class _Control(msgspec.Struct):
    id: int | str | None = None
    error: Any = None
    result: Any = None


class _Product(msgspec.Struct):
    symbol: str
    type: str = ""
    status: str = ""
    baseCurrency: str = ""
    quoteCurrency: str = ""
    settleCurrency: str = ""
    tickSize: str = "0"
    qtyStepSize: str = "0"
    minOrderValueRv: str = "0"
    fundingInterval: int = 0  # seconds


class _ProductsData(msgspec.Struct):
    perpProductsV2: list[_Product] = []


class _Products(msgspec.Struct):
    code: int = 0
    msg: str = ""
    data: _ProductsData = msgspec.field(default_factory=_ProductsData)


def _dec(t: Any) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(t, strict=False)


_book, _trades, _pack, _control, _products = _dec(_Book), _dec(_Trades), _dec(_Pack), _dec(_Control), _dec(_Products)
_enc = msgspec.json.Encoder()


class Phemex(Venue):
    id = "phemex"
    name = "Phemex USDT-M"
    ws_url = "wss://ws.phemex.com"
    rest_url = "https://api.phemex.com"
    book_sync = "in_stream"
    heartbeat_text = '{"id":0,"method":"server.ping","params":[]}'  # must come at < 30 s; 5-10 s advised
    heartbeat_s = 10.0
    silence_s = 30.0
    # Base tier for USDT-M perps as commonly cited (taker 0.06 %, maker 0.01 %): the venue
    # notes (shared/venues/phemex.md) mark it unverified; fee records carry feeRateRr.
    taker_fee = 0.0006
    maker_fee = 0.0001
    metadata_paths = (_PRODUCTS_PATH,)
    # Sequences are not contiguous: the simulator cannot make a gap the feed could see.
    sim_has_sequence = False

    def __init__(self, registry: Registry) -> None:
        super().__init__(registry)
        self._last_seq: dict[str, int] = {}
        self._book_groups: dict[str, list[str]] = {}  # symbol → the book symbols of its connection
        self._wanted: set[str] = set()  # symbols subscribed; the funding pack covers every symbol
        self._sim_symbols: list[str] = []

    def derive(self, venue_symbol: str) -> Instrument | None:
        for quote in ("USDT", "USDC"):
            base = venue_symbol[: -len(quote)]
            # Spot (sBTCUSDT) and index (.BTCUSDT) symbols are not upper-case alphanumerics.
            if venue_symbol.endswith(quote) and base.isalnum() and base.isupper():
                return self._instrument(venue_symbol, base, quote, quote, "derived")
        return None

    def _instrument(self, sym: str, base: str, quote: str, settle: str, status: str, **kw: Any) -> Instrument:
        asset, scale = split_multiple(base)
        return Instrument(
            venue=self.id, venue_symbol=sym, symbol=canonical_symbol(asset, quote, settle), asset=asset,
            quote=quote, settle=settle, price_scale=scale, taker_fee=self.taker_fee, maker_fee=self.maker_fee,
            status=status, source=self.id, **kw,
        )

    # -- feed ----------------------------------------------------------------------------
    def connections(self, instruments: list[Instrument], books: bool = True) -> list[Connection]:
        # orderbook_p is also the only quote source, so it is subscribed even without books.
        out = []
        self._wanted = {i.venue_symbol for i in instruments}
        per_conn = _SUBS_PER_CONN - 1  # one slot for the funding pack on the first connection
        for k in range(0, len(instruments), per_conn):
            group = instruments[k : k + per_conn]
            syms = [i.venue_symbol for i in group]
            for s in syms:
                self._book_groups[s] = syms
            msgs = [_call(n, "orderbook_p.subscribe", [s]) for n, s in enumerate(syms, 1)]
            if k == 0:
                msgs.append(_call(len(msgs) + 1, "perp_market24h_pack_p.subscribe", []))
            out.append(Connection(path="/", subscribe=msgs, instruments=group))
        return out

    def resubscribe_book(self, inst: Instrument) -> list[str]:
        # orderbook_p.unsubscribe drops every book of the connection; each subscribe then
        # brings a fresh snapshot.
        syms = self._book_groups.get(inst.venue_symbol, [inst.venue_symbol])
        return [_call(0, "orderbook_p.unsubscribe", []), *(_call(n, "orderbook_p.subscribe", [s])
                                                           for n, s in enumerate(syms, 1))]

    def parse(self, raw: str | bytes, recv_ns: int) -> list[MarketEvent]:
        if isinstance(raw, str):
            raw = raw.encode()
        try:
            if b'"orderbook_p":' in raw:
                return self._book(_book.decode(raw), recv_ns)
            if b'"perp_market24h_pack_p.update"' in raw:
                return self._funding(_pack.decode(raw), recv_ns)
            if b'"trades_p":' in raw:
                return self._trades(_trades.decode(raw), recv_ns)
            # Acks, pongs, errors, and channels we never subscribe to (incl. the legacy contract
            # API): no events; decoding them still makes garbage raise.
            c = _control.decode(raw)
            if c.error:
                self.problems.append(f"{self.id}: request {c.id} failed: {c.error}")
            return []
        except (msgspec.DecodeError, ValueError, IndexError) as exc:
            raise decode_error(self.id, exc, raw) from None

    def _book(self, m: _Book, recv_ns: int) -> list[MarketEvent]:
        sym = m.symbol
        inst = self.table.get(sym) or self.instrument(sym)
        if inst is None:
            return []
        px, qty = inst.px, inst.qty
        bids = [(px(p), qty(q, p)) for p, q in m.orderbook_p.bids]
        asks = [(px(p), qty(q, p)) for p, q in m.orderbook_p.asks]
        seq, last = m.sequence, self._last_seq.get(sym)
        if m.type == "snapshot":
            self._last_seq[sym] = seq
            return [BookSnapshot(venue=self.id, symbol=inst.symbol, venue_symbol=sym, bids=bids, asks=asks, seq=seq,
                                 ts_exchange_ns=m.timestamp, recv_ns=recv_ns)]
        if m.type != "incremental":
            raise ValueError(f"book type {m.type!r}")
        self._last_seq[sym] = seq if last is None else max(seq, last)
        return [BookDelta(venue=self.id, symbol=inst.symbol, venue_symbol=sym, bids=bids, asks=asks, first_seq=seq,
                          seq=seq, prev_seq=None if last is None or seq > last else -1,
                          ts_exchange_ns=m.timestamp, recv_ns=recv_ns)]

    def _funding(self, m: _Pack, recv_ns: int) -> list[MarketEvent]:
        fields = m.fields or _PACK_FIELDS
        try:
            i_sym, i_mark, i_index = fields.index("symbol"), fields.index("markRp"), fields.index("indexRp")
            i_rate, i_pred = fields.index("fundingRateRr"), fields.index("predFundingRateRr")
        except ValueError:
            raise ValueError(f"pack fields {fields}") from None
        out: list[MarketEvent] = []
        wanted, ts = self._wanted, m.timestamp
        for row in m.data:
            sym = row[i_sym]
            if (wanted and sym not in wanted) or not row[i_rate]:
                continue
            inst = self.table.get(sym) or self.instrument(sym)
            if inst is None:
                continue
            interval_ns = round(inst.funding_interval_h * HOUR_NS)
            out.append(Funding(
                venue=self.id, symbol=inst.symbol, venue_symbol=sym, rate=float(row[i_rate]),
                predicted_rate=float(row[i_pred]) if row[i_pred] else None, interval_h=inst.funding_interval_h,
                next_funding_ns=(ts // interval_ns + 1) * interval_ns,
                mark_px=inst.px(float(row[i_mark])) if row[i_mark] else None,
                index_px=inst.px(float(row[i_index])) if row[i_index] else None,
                ts_exchange_ns=ts, recv_ns=recv_ns,
            ))
        return out

    def _trades(self, m: _Trades, recv_ns: int) -> list[MarketEvent]:
        if m.type == "snapshot":
            return []  # the last 200 trades, replayed on every subscribe: history, not news
        inst = self.instrument(m.symbol)
        if inst is None:
            return []
        return [Trade(venue=self.id, symbol=inst.symbol, venue_symbol=m.symbol, px=inst.px(p), qty=inst.qty(q, p),
                      side="buy" if side == "Buy" else "sell", trade_id=f"{m.sequence}-{n}", ts_exchange_ns=ts,
                      recv_ns=recv_ns)
                for n, (ts, side, p, q) in enumerate(m.trades_p)]

    # -- metadata ------------------------------------------------------------------------
    def parse_metadata(self, path: str, raw: str | bytes) -> list[Instrument]:
        if urlsplit(path).path not in (_PRODUCTS_PATH, _LEGACY_PRODUCTS_PATH):
            return []
        try:
            resp = _products.decode(raw)
            if resp.code != 0:
                raise ValueError(f"code {resp.code} ({resp.msg})")
            # data.products holds spot and the legacy coin-margined contracts: not this API.
            out = []
            for p in resp.data.perpProductsV2:
                if not p.type.startswith("Perpetual"):
                    continue
                quote = ALIASES.get(p.quoteCurrency, p.quoteCurrency)
                base = p.baseCurrency.replace(" ", "") or p.symbol.removesuffix(p.quoteCurrency)  # "1000 PEPE"
                interval = p.fundingInterval
                out.append(self._instrument(
                    p.symbol, base, quote, ALIASES.get(p.settleCurrency, p.settleCurrency) or quote,
                    "active" if p.status == "Listed" else "inactive",
                    tick_size=float(p.tickSize or 0), lot_size=float(p.qtyStepSize or 0),
                    min_qty=float(p.qtyStepSize or 0), min_notional=float(p.minOrderValueRv or 0),
                    # seconds (28800); a small number is hours, as some documentation writes it
                    funding_interval_h=(interval / 3600 if interval >= 60 else float(interval)) if interval else 8.0,
                ))
        except (msgspec.DecodeError, ValueError) as exc:
            raise decode_error(self.id, exc, raw) from None
        return out

    # -- simulator -----------------------------------------------------------------------
    def sim_handle(self, text: str) -> tuple[list[str], list[tuple[str, str]]]:
        try:
            msg = msgspec.json.decode(text)
        except msgspec.DecodeError:
            return [], []
        if not isinstance(msg, dict):
            return [], []
        method, mid, params = msg.get("method", ""), msg.get("id"), msg.get("params") or []
        if method == "server.ping":
            return [_enc.encode({"error": None, "id": mid, "result": "pong"}).decode()], []
        kinds = {"orderbook_p": "book", "trade_p": "trade", "perp_market24h_pack_p": "funding"}
        chan, _, op = str(method).partition(".")
        if chan not in kinds or op not in ("subscribe", "unsubscribe"):
            reply = {"error": {"code": 6001, "message": "invalid argument"}, "id": mid, "result": None}
            return [_enc.encode(reply).decode()], []
        topics: list[tuple[str, str]] = []
        if op == "subscribe":
            syms = self._sim_symbols if chan == "perp_market24h_pack_p" else [str(p) for p in params[:1]]
            topics = [(kinds[chan], s) for s in syms]
        return [_enc.encode({"error": None, "id": mid, "result": {"status": "success"}}).decode()], topics

    def sim_book(self, inst: Instrument, snapshot: bool, bids: list[Level], asks: list[Level],
                 seq: int, prev_seq: int, first_seq: int, ts_ms: int) -> str:
        return _enc.encode({
            "depth": 30, "orderbook_p": {"asks": [[num_text(p), num_text(q)] for p, q in asks],
                                         "bids": [[num_text(p), num_text(q)] for p, q in bids]},
            "sequence": seq, "symbol": inst.venue_symbol, "timestamp": ts_ms * 1_000_000,
            "type": "snapshot" if snapshot else "incremental",
        }).decode()

    def sim_funding(self, inst: Instrument, rate: float, next_ms: int, mark: float, index: float,
                    ts_ms: int, full: bool = True) -> str:
        # The real pack lists every symbol; the simulator sends one row per message.
        row = [inst.venue_symbol, num_text(mark), num_text(mark), num_text(mark), num_text(mark), "0", "0", "0", num_text(index),
               num_text(mark), num_text(rate), num_text(rate)]
        body: dict[str, Any] = {"data": [row], "method": "perp_market24h_pack_p.update",
                                "timestamp": ts_ms * 1_000_000, "type": "snapshot" if full else "incremental"}
        if full:
            body["fields"] = list(_PACK_FIELDS)
        return _enc.encode(body).decode()

    def sim_metadata(self, instruments: list[Instrument]) -> dict[str, bytes]:
        self._sim_symbols = [i.venue_symbol for i in instruments]
        rows = []
        for i in instruments:
            base = i.venue_symbol[: -len(i.quote)]
            rows.append({
                "symbol": i.venue_symbol, "type": "PerpetualV2", "displaySymbol": f"{base} / {i.quote}",
                "baseCurrency": base, "quoteCurrency": i.quote, "settleCurrency": i.settle,
                "contractUnderlyingAssets": base, "tickSize": num_text(i.tick_size), "qtyStepSize": num_text(i.lot_size),
                "minOrderValueRv": num_text(i.min_notional), "priceScale": 0, "ratioScale": 0,
                "status": "Listed" if i.status in ("active", "derived") else "Delisted",
                "fundingInterval": round(i.funding_interval_h * 3600),
            })
        body = {"code": 0, "msg": "", "data": {"ratioScale": 8, "currencies": [], "products": [],
                                               "perpProductsV2": rows}}
        return {_PRODUCTS_PATH: _enc.encode(body)}


def _call(n: int, method: str, params: list[Any]) -> str:
    return _enc.encode({"id": n, "method": method, "params": params}).decode()




register(Phemex)
