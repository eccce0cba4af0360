"""CoinDCX futures: USDT-margined perpetuals named ``B-<BASE>_USDT`` (``B-1000SHIB_USDT``).

Transport: Socket.IO (Engine.IO v4 over a websocket, python-socketio) at
``wss://stream.coindcx.com``. A client ``join``s channels by name and the server pushes
Socket.IO events whose one argument is ``{"event": ..., "data": "<JSON text>"}`` (``data`` is
a JSON *string*). The raw message this adapter parses, and captures record, is the event's
argument array as compact JSON, i.e. the JSON after ``42`` in the Socket.IO frame:
``["depth-snapshot",{"event":"depth-snapshot","data":"{\\"ts\\":...}"}]``. Client messages
(subscribe, heartbeat, resubscribe) are written the same way: ``["join",{"channelName":...}]``.

Channels → events:
- ``B-BTC_USDT@orderbook@50-futures`` → ``depth-snapshot``: the top 50 levels per side as
  ``{price: size}`` maps, with ``vs`` (version), ``ts`` and ``s`` (the *market* name ``BTCUSDT``,
  not the pair). Every push is a whole book, so books follow the ``full`` family: each one
  is a ``BookSnapshot`` (``seq`` = ``vs``) and there is no chain to check. The venue's only
  top of book is this book (``@prices-futures`` carries no pair), so quotes come from it.
  A ``depth-update`` event (spot's incremental book; not documented for futures) would be
  applied as an unchained ``BookDelta``.
- ``currentPrices@futures@rt`` → ``currentPrices@futures#update``: every pair's ``fr``, ``efr``
  and ``mp`` (mark), each field sent only when it changed, so they are merged into
  per-pair state like Bybit's tickers.
- ``B-BTC_USDT@trades-futures`` → ``new-trade`` (``p``, ``q``, ``T``, ``m`` = buyer is maker).

Quantities are base units (``unit_contract_value`` is 1; ``1000SHIB`` units for
``B-1000SHIB_USDT``), so ``derive`` may build an instrument from the pair alone.
Funding: the documentation names but does not describe ``fr`` and ``efr``; this adapter takes
``efr`` (estimated funding rate) as the rate for the upcoming settlement and falls back to
``fr`` (taken to be the current/last rate) when ``efr`` was never sent — UNVERIFIED. There is
no predicted rate beyond it. No message carries the next funding time: it is the next
multiple of the interval on the UTC clock after the message's ``ts`` (UNVERIFIED; CoinDCX's
B- contracts mirror Binance's 00/08/16 UTC schedule). The interval is the instrument's
``funding_frequency`` (hours) from ``/exchange/v1/derivatives/futures/data/instrument``;
``active_instruments`` lists names only, so instruments known from it alone keep 8 h.
Also UNVERIFIED (no recording exists): the ``s`` field on futures ``depth-snapshot`` (seen
by third-party clients, absent from the docs' example), the docs' note that only
socket.io-client v2 (Engine.IO v3) is supported (third parties connect with Engine.IO v4),
and the server's reply to the ``ping`` event (none expected).
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import msgspec

from perparb.instruments.canonical import canonical_symbol, split_multiple
from perparb.instruments.registry import Registry
from perparb.model import BookDelta, BookSnapshot, Funding, Instrument, Level, MarketEvent, Trade
from perparb.venues import register
from perparb.venues.base import MS, Connection, SimFullBooks, Venue, decode_error, num_text

if TYPE_CHECKING:
    from aiohttp import web

    from perparb.feeds.socketio import SocketIOTransport
    from perparb.sim.server import SimVenue

ACTIVE_PATH = "/exchange/v1/derivatives/futures/data/active_instruments"
DETAIL_PATH = "/exchange/v1/derivatives/futures/data/instrument"
PRICES_CHANNEL = "currentPrices@futures@rt"
BOOK_DEPTH = 50  # 10, 20 or 50
HOUR_MS = 3_600_000
_PAIR = re.compile(r"^B-([A-Z0-9]+)_(USDT)$")


class _Envelope(msgspec.Struct):
    # The event's JSON body as text (live) or, should the venue inline it, as an object.
    data: msgspec.Raw = msgspec.Raw(b"null")


class _Frame(msgspec.Struct, array_like=True):
    event: str
    body: _Envelope = msgspec.field(default_factory=_Envelope)


_Side = dict[str, float] | list[tuple[float, float]]


class _Depth(msgspec.Struct):
    bids: _Side = {}
    asks: _Side = {}
    ts: int = 0
    vs: int = 0
    s: str = ""


class _Price(msgspec.Struct):
    # Absent means unchanged; null is treated the same way.
    fr: float | None = None
    efr: float | None = None
    mp: float | None = None


class _Prices(msgspec.Struct):
    prices: dict[str, _Price] = {}
    ts: int = 0


class _Trade(msgspec.Struct):
    p: float
    q: float
    s: str
    T: int = 0
    m: bool = False


class _Instrument(msgspec.Struct):
    pair: str
    underlying_currency_short_name: str = ""
    quote_currency_short_name: str = "USDT"
    settle_currency_short_name: str = "USDT"
    status: str = ""
    kind: str = ""
    exit_only: bool = False
    is_inverse: bool = False
    unit_contract_value: float = 1.0
    price_increment: float = 0.0
    quantity_increment: float = 0.0
    min_quantity: float = 0.0
    min_notional: float = 0.0
    maker_fee: float | None = None  # percent
    taker_fee: float | None = None  # percent
    funding_frequency: float = 8.0


class _Detail(msgspec.Struct):
    instrument: _Instrument


class _FundingState:
    __slots__ = ("efr", "fr", "mp")

    def __init__(self) -> None:
        self.fr: float | None = None
        self.efr: float | None = None
        self.mp: float | None = None


def _dec(t: Any) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(t, strict=False)


_frame, _depth, _prices, _trade = _dec(_Frame), _dec(_Depth), _dec(_Prices), _dec(_Trade)
_active, _detail = _dec(list[str]), _dec(_Detail)
_text = msgspec.json.Decoder(str)
_enc = msgspec.json.Encoder()
_DEPTH, _DEPTH_UPDATE, _PRICES_EVENT, _TRADE = "depth-snapshot", "depth-update", "currentPrices@futures#update", \
    "new-trade"


def _inner(raw: msgspec.Raw) -> bytes | str:
    """The event body as JSON text (it usually arrives as a JSON string holding JSON)."""
    b = bytes(raw)
    return _text.decode(b) if b[:1] == b'"' else b


class CoinDcx(Venue):
    id = "coindcx"
    name = "CoinDCX futures"
    ws_url = "wss://stream.coindcx.com"
    rest_url = "https://api.coindcx.com"
    book_sync = "full"
    merged_state = ("_funding",)
    # The docs' sample clients emit this every 25 s to keep the connection (Engine.IO pings
    # are answered by the Socket.IO library on top).
    heartbeat_text = '["ping",{"data":"Ping message"}]'
    heartbeat_s = 25.0
    silence_s = 30.0  # currentPrices alone pushes about once a second
    # Base tier from the docs' instrument example (taker_fee 0.075, maker_fee 0.025, in percent);
    # instrument details carry the account's own fees.
    taker_fee = 0.00075
    maker_fee = 0.00025
    metadata_paths = (ACTIVE_PATH,)
    sim_has_sequence = False  # whole-book snapshots only

    def __init__(self, registry: Registry) -> None:
        super().__init__(registry)
        self._funding: dict[str, _FundingState] = {}
        # Simulator side: the listed pairs, each pair's book, and the funding fields last sent.
        self._sim_pairs: list[str] = []
        self._sim_books = SimFullBooks()
        self._sim_prices: dict[str, dict[str, float]] = {}

    # -- names ---------------------------------------------------------------------------
    @staticmethod
    def pair(name: str) -> str:
        """The pair (``B-BTC_USDT``) for a pair or a market name (``BTCUSDT``, as books say)."""
        if len(name) <= 4 or not name.endswith("USDT") or not name.isalnum():
            return name
        return f"B-{name[:-4]}_USDT"

    def instrument(self, venue_symbol: str) -> Instrument | None:
        return self.table.get(venue_symbol) or super().instrument(self.pair(venue_symbol))

    def derive(self, venue_symbol: str) -> Instrument | None:
        m = _PAIR.match(self.pair(venue_symbol))
        if m is None:
            return None
        return self._instrument(m.group(0), m.group(1), m.group(2), m.group(2), "derived")

    def _instrument(self, pair: str, base: str, quote: str, settle: str, status: str, **kw: Any) -> Instrument:
        asset, scale = split_multiple(base)
        kw.setdefault("taker_fee", self.taker_fee)
        kw.setdefault("maker_fee", self.maker_fee)
        return Instrument(
            venue=self.id, venue_symbol=pair, symbol=canonical_symbol(asset, quote, settle), asset=asset,
            quote=quote, settle=settle, price_scale=scale, status=status, source=self.id, **kw,
        )

    # -- feed ----------------------------------------------------------------------------
    def connections(self, instruments: list[Instrument], books: bool = True) -> list[Connection]:
        # The book is also the only top of book, so it is joined even without books.
        msgs = [_join(_book_channel(i.venue_symbol)) for i in instruments]
        msgs.append(_join(PRICES_CHANNEL))
        return [Connection(path="", subscribe=msgs, instruments=instruments)]

    def resubscribe_book(self, inst: Instrument) -> list[str]:
        channel = _book_channel(inst.venue_symbol)
        return [_enc.encode(["leave", {"channelName": channel}]).decode(), _join(channel)]

    def transport(self, ws_url: str, rest_url: str) -> SocketIOTransport:
        from perparb.feeds.socketio import SocketIOTransport

        return SocketIOTransport()

    def parse(self, raw: str | bytes, recv_ns: int) -> list[MarketEvent]:
        try:
            frame = _frame.decode(raw)
            event = frame.event
            if event in (_DEPTH, _DEPTH_UPDATE):
                return self._depth(_depth.decode(_inner(frame.body.data)), event == _DEPTH, recv_ns)
            if event == _PRICES_EVENT:
                return self._prices(_prices.decode(_inner(frame.body.data)), recv_ns)
            if event == _TRADE:
                return self._trade(_trade.decode(_inner(frame.body.data)), recv_ns)
        except (msgspec.DecodeError, ValueError) as exc:
            raise decode_error(self.id, exc, raw) from None
        return []  # candlesticks, price-change, account events, anything else

    def _depth(self, d: _Depth, snapshot: bool, recv_ns: int) -> list[MarketEvent]:
        if not d.s:
            self.problems.append(f"{self.id}: book without a market name (s) dropped")
            return []
        inst = self.instrument(d.s)
        if inst is None:
            return []
        px, qty = inst.px, inst.qty
        bids = [(px(p), qty(q, p)) for p, q in _rows(d.bids)]
        asks = [(px(p), qty(q, p)) for p, q in _rows(d.asks)]
        if snapshot:
            bids = sorted((lv for lv in bids if lv[1] > 0.0), reverse=True)
            asks = sorted(lv for lv in asks if lv[1] > 0.0)
            return [BookSnapshot(venue=self.id, symbol=inst.symbol, venue_symbol=inst.venue_symbol, bids=bids,
                                 asks=asks, seq=d.vs, ts_exchange_ns=d.ts * MS, recv_ns=recv_ns)]
        return [BookDelta(venue=self.id, symbol=inst.symbol, venue_symbol=inst.venue_symbol, bids=bids, asks=asks,
                          first_seq=d.vs, seq=d.vs, prev_seq=None, ts_exchange_ns=d.ts * MS, recv_ns=recv_ns)]

    def _prices(self, m: _Prices, recv_ns: int) -> list[MarketEvent]:
        out: list[MarketEvent] = []
        for pair, p in m.prices.items():
            if p.fr is None and p.efr is None and p.mp is None:
                continue  # only send times: nothing changed
            inst = self.instrument(pair)
            if inst is None:
                continue
            st = self._funding.get(pair)
            if st is None:
                st = self._funding[pair] = _FundingState()
            if p.fr is not None:
                st.fr = p.fr
            if p.efr is not None:
                st.efr = p.efr
            if p.mp is not None:
                st.mp = p.mp
            rate = st.efr if st.efr is not None else st.fr
            if rate is None or not m.ts:
                continue
            interval_ms = round(inst.funding_interval_h * HOUR_MS)
            out.append(Funding(
                venue=self.id, symbol=inst.symbol, venue_symbol=inst.venue_symbol, rate=rate,
                interval_h=inst.funding_interval_h, next_funding_ns=(m.ts // interval_ms + 1) * interval_ms * MS,
                mark_px=inst.px(st.mp) if st.mp is not None else None, index_px=None,
                ts_exchange_ns=m.ts * MS, recv_ns=recv_ns,
            ))
        return out

    def _trade(self, t: _Trade, recv_ns: int) -> list[MarketEvent]:
        inst = self.instrument(t.s)
        if inst is None:
            return []
        return [Trade(venue=self.id, symbol=inst.symbol, venue_symbol=inst.venue_symbol, px=inst.px(t.p),
                      qty=inst.qty(t.q, t.p), side="sell" if t.m else "buy", trade_id=f"{t.T}",
                      ts_exchange_ns=t.T * MS, recv_ns=recv_ns)]

    # -- metadata ------------------------------------------------------------------------
    def parse_metadata(self, path: str, raw: str | bytes) -> list[Instrument]:
        p = urlsplit(path).path
        try:
            if p == ACTIVE_PATH:
                return self._active(_active.decode(raw))
            if p == DETAIL_PATH:
                return self._detail(_detail.decode(raw).instrument)
        except (msgspec.DecodeError, ValueError) as exc:
            raise decode_error(self.id, exc, raw) from None
        return []

    def _active(self, pairs: list[str]) -> list[Instrument]:
        """Names only: known instruments keep their details; listed ones are active and
        previously active ones that are no longer listed become inactive."""
        out = []
        listed = set(pairs)
        for pair in pairs:
            prev = self.table.get(pair)
            if prev is not None and prev.status != "derived":
                out.append(msgspec.structs.replace(prev, status="active"))
                continue
            m = _PAIR.match(pair)
            if m is not None:
                out.append(self._instrument(pair, m.group(1), m.group(2), m.group(2), "active"))
        out += [msgspec.structs.replace(i, status="inactive") for s, i in self.table.items()
                if s not in listed and i.status == "active"]
        return out

    def _detail(self, i: _Instrument) -> list[Instrument]:
        if i.kind != "perpetual" or i.is_inverse:
            return []
        base = i.underlying_currency_short_name or i.pair[2:].rpartition("_")[0]
        return [self._instrument(
            i.pair, base, i.quote_currency_short_name, i.settle_currency_short_name,
            "active" if i.status == "active" and not i.exit_only else "inactive",
            contract_size=i.unit_contract_value, tick_size=i.price_increment, lot_size=i.quantity_increment,
            min_qty=i.min_quantity, min_notional=i.min_notional, funding_interval_h=i.funding_frequency,
            **({"taker_fee": _from_percent(i.taker_fee)} if i.taker_fee is not None else {}),
            **({"maker_fee": _from_percent(i.maker_fee)} if i.maker_fee is not None else {}),
        )]

    @staticmethod
    def detail_path(pair: str) -> str:
        return f"{DETAIL_PATH}?{urlencode({'pair': pair, 'margin_currency_short_name': 'USDT'})}"

    # -- simulator -----------------------------------------------------------------------
    def sim_attach(self, app: web.Application, sim: SimVenue) -> None:
        from perparb.sim.socketio import attach

        attach(app, sim)

    def sim_handle(self, text: str) -> tuple[list[str], list[tuple[str, str]]]:
        try:
            msg = msgspec.json.decode(text)
        except msgspec.DecodeError:
            return [], []
        if not isinstance(msg, list) or len(msg) < 2 or msg[0] != "join" or not isinstance(msg[1], dict):
            return [], []  # ping, leave: no reply
        channel = str(msg[1].get("channelName", ""))
        if channel == PRICES_CHANNEL:
            return [], [("funding", p) for p in self._sim_pairs]
        pair, _, kind = channel.partition("@")
        if kind.startswith("orderbook@") and kind.endswith("-futures"):
            return [], [("book", pair)]
        if kind == "trades-futures":
            return [], [("trade", pair)]
        return [], []

    def sim_book(self, inst: Instrument, snapshot: bool, bids: list[Level], asks: list[Level],
                 seq: int, prev_seq: int, first_seq: int, ts_ms: int) -> str:
        # The venue pushes whole books: keep the simulated one and send its top levels.
        s = inst.venue_symbol
        book = self._sim_books.apply(s, snapshot, bids, asks)
        top_b = sorted(book[0], reverse=True)[:BOOK_DEPTH]
        top_a = sorted(book[1])[:BOOK_DEPTH]
        body = {"ts": ts_ms, "vs": seq, "asks": {num_text(p): num_text(book[1][p]) for p in top_a},
                "bids": {num_text(p): num_text(book[0][p]) for p in top_b}, "type": _DEPTH, "pr": "futures",
                "s": s[2:].replace("_", "")}
        return _event(_DEPTH, body)

    def sim_funding(self, inst: Instrument, rate: float, next_ms: int, mark: float, index: float,
                    ts_ms: int, full: bool = True) -> str:
        # The venue sends no next funding time and no index price: both are dropped here.
        s = inst.venue_symbol
        now = {"fr": rate, "efr": rate, "mp": mark}
        last = self._sim_prices.get(s)
        self._sim_prices[s] = now
        fields: dict[str, float] = now if full or last is None else {k: v for k, v in now.items() if last.get(k) != v}
        body = {"vs": ts_ms, "ts": ts_ms, "pr": "futures", "pST": ts_ms,
                "prices": {s: {**fields, "bmST": ts_ms, "cmRT": ts_ms}}}
        return _event(_PRICES_EVENT, body)

    def sim_metadata(self, instruments: list[Instrument]) -> dict[str, bytes]:
        self._sim_pairs = [i.venue_symbol for i in instruments]
        out = {ACTIVE_PATH: _enc.encode([i.venue_symbol for i in instruments if i.status in ("active", "derived")])}
        for i in instruments:
            base = i.venue_symbol[2:].rpartition("_")[0]
            out[self.detail_path(i.venue_symbol)] = _enc.encode({"instrument": {
                "settle_currency_short_name": i.settle, "quote_currency_short_name": i.quote,
                "position_currency_short_name": base, "underlying_currency_short_name": base,
                "status": "active" if i.status in ("active", "derived") else "inactive", "pair": i.venue_symbol,
                "kind": "perpetual", "settlement": "never", "unit_contract_value": i.contract_size,
                "price_increment": i.tick_size, "quantity_increment": i.lot_size, "min_trade_size": i.min_qty,
                "min_quantity": i.min_qty, "min_notional": i.min_notional,
                "maker_fee": _to_percent(i.maker_fee), "taker_fee": _to_percent(i.taker_fee),
                "is_inverse": False, "is_quanto": False, "funding_frequency": i.funding_interval_h,
                "exit_only": False, "margin_currency_short_name": "USDT",
            }})
        return out


def _rows(side: _Side) -> list[tuple[float, float]]:
    if isinstance(side, dict):
        return [(float(p), q) for p, q in side.items()]
    return side


def _book_channel(pair: str) -> str:
    return f"{pair}@orderbook@{BOOK_DEPTH}-futures"


def _join(channel: str) -> str:
    return _enc.encode(["join", {"channelName": channel}]).decode()


def _event(name: str, body: dict[str, Any]) -> str:
    """One Socket.IO event as the venue sends it: the body is JSON text inside JSON."""
    return _enc.encode([name, {"event": name, "data": _enc.encode(body).decode()}]).decode()


def _from_percent(x: float) -> float:
    return float(Decimal(repr(x)) / 100)


def _to_percent(x: float) -> float:
    return float(Decimal(repr(x)) * 100)




register(CoinDcx)
