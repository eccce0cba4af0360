"""Gate futures v4, USDT-settled perpetuals (``BTC_USDT``).

Books: REST-bridged. ``futures.order_book_update`` pushes carry ``U`` (first) and ``u`` (last
order-book update id). Pushes are buffered until a snapshot from
``/api/v4/futures/usdt/order_book?...&with_id=true`` (``id``) arrives; pushes with
``u < id + 1`` are already in it, the first applied one must have ``U <= id + 1 <= u``, and each
later one ``U == previous u + 1``; so a push is a delta over ``U..u`` chained to
``prev_seq = U - 1``. On a gap only the REST snapshot is fetched again. The legacy
``futures.order_book`` channel (``all`` = full book with ``id``; ``update`` = one change per
entry with its own ``id``, size > 0 bid, < 0 ask, 0 removes the price) is decoded too; its
updates carry no documented chain rule, so they are accepted unchained.
Sizes are CONTRACTS: one is ``quanto_multiplier`` coins of the contract's base (integers in
2023, decimal strings on some contracts since 2025; both are read).
Funding: ``futures.tickers.funding_rate`` is the rate of the current period, settled at the
next funding time (it moves until then). ``funding_rate_indicative`` is deprecated by Gate
("use funding_rate") and repeats it today, so no predicted rate is reported. The ticker
has no settlement time: it is the next point of the contract's settlement grid after the
message time, the grid being ``funding_next_apply`` of the contracts response stepped by
``funding_interval`` (seconds, also the Funding interval; 28800 is only Gate's default).
Without a contracts response the grid is the multiples of the interval since the Unix
epoch, which is where every ``funding_next_apply`` of the recorded 2023 response sits.
"""

from __future__ import annotations

import time
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qs, urlsplit

import msgspec

from perparb.instruments.canonical import canonical_symbol, split_multiple
from perparb.instruments.registry import Registry
from perparb.levels import obj_levels
from perparb.model import BookDelta, BookSnapshot, Funding, Instrument, Level, MarketEvent, Quote, Trade
from perparb.venues import register
from perparb.venues.base import MS, Connection, Venue, asked_symbol, decode_error, num_text

T = TypeVar("T")
S_NS = 1_000_000_000
_SETTLE = "usdt"
_CONTRACTS_PATH = f"/api/v4/futures/{_SETTLE}/contracts"
_BOOK_PATH = f"/api/v4/futures/{_SETTLE}/order_book"
_BOOK_LIMIT = 100  # REST snapshot depth = the level subscribed on order_book_update
_PER_MSG = 50


class _Level(msgspec.Struct, gc=False):  # two numbers: no cycles to collect
    p: float
    s: float


class _BookUpdate(msgspec.Struct):
    s: str
    U: int
    u: int
    b: list[_Level] = []
    a: list[_Level] = []
    t: int = 0


class _BookTicker(msgspec.Struct):
    # Prices are strings because an empty side is sent as "" (size 0).
    s: str
    b: str = ""
    B: float = 0.0
    a: str = ""
    A: float = 0.0
    t: int = 0
    u: int = 0


class _Ticker(msgspec.Struct):
    # Strings: Gate sends every ticker number as text, and some may be "".
    contract: str
    funding_rate: str = ""
    mark_price: str = ""
    index_price: str = ""


class _Trade(msgspec.Struct):
    contract: str
    size: float  # contracts; > 0 taker bought, < 0 taker sold
    price: float
    id: int = 0
    create_time: int = 0
    create_time_ms: int = 0


class _LegacyBook(msgspec.Struct):
    """``futures.order_book`` ``all``: the whole top-N book."""

    contract: str
    asks: list[_Level] = []
    bids: list[_Level] = []
    id: int = 0
    t: int = 0


class _LegacyChange(msgspec.Struct):
    """``futures.order_book`` ``update``: one change; size > 0 bid, < 0 ask, 0 gone."""

    c: str
    p: float
    s: float
    id: int = 0


class _Push(msgspec.Struct, Generic[T]):
    result: T
    time: int = 0
    time_ms: int = 0


class _Error(msgspec.Struct):
    code: int = 0
    message: str = ""


class _Head(msgspec.Struct):
    """What the byte probes look for, decoded properly (non-compact JSON, acks)."""

    channel: str = ""
    event: str = ""
    error: _Error | None = None


class _RestBook(msgspec.Struct):
    id: int  # only sent with with_id=true, without which the book cannot be bridged
    asks: list[_Level] = []
    bids: list[_Level] = []
    current: float = 0.0
    update: float = 0.0


class _Contract(msgspec.Struct):
    name: str
    type: str = "direct"
    quanto_multiplier: str = ""
    order_price_round: str = "0"
    order_size_min: float = 1.0
    enable_decimal: bool = False
    funding_interval: int = 0
    funding_next_apply: float = 0.0
    in_delisting: bool = False
    status: str = ""


def _dec(t: Any) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(t, strict=False)


_book_update, _book_ticker = _dec(_Push[_BookUpdate]), _dec(_Push[_BookTicker])
_tickers = _dec(_Push[list[_Ticker | list[_Ticker]] | _Ticker])
_trades, _legacy = _dec(_Push[list[_Trade]]), _dec(_Push[_LegacyBook | list[_LegacyChange]])
_head, _rest_book, _contracts = _dec(_Head), _dec(_RestBook), _dec(list[_Contract])
_enc = msgspec.json.Encoder()

_CHANNEL, _EVENT = b'"channel":"', b'"event":"'
_KINDS = {b"futures.order_book_update": "book", b"futures.book_ticker": "quote", b"futures.tickers": "funding",
          b"futures.trades": "trade", b"futures.order_book": "legacy"}
_DATA_EVENTS = (b"update", b"all")
_THEN_UPDATE = b'","event":"update"'
_BOOK_CHANNEL = b"futures.order_book_update"
# What the simulator serves for each channel.
_SIM_TOPICS = {"futures.book_ticker": "quote", "futures.order_book_update": "book", "futures.tickers": "funding",
               "futures.trades": "trade"}


def _probe(raw: bytes, key: bytes) -> bytes | None:
    i = raw.find(key)
    if i < 0:
        return None
    i += len(key)
    return raw[i : raw.find(b'"', i)]


def _channel_event(raw: bytes) -> tuple[bytes | None, bytes | None]:
    """Channel and event of a compact push; the event is looked for right after the channel
    first, where Gate writes it."""
    i = raw.find(_CHANNEL)
    if i < 0:
        return None, _probe(raw, _EVENT)
    i += len(_CHANNEL)
    j = raw.find(b'"', i)
    if raw.startswith(_THEN_UPDATE, j):
        return raw[i:j], b"update"
    return raw[i:j], _probe(raw, _EVENT)


class Gate(Venue):
    id = "gate"
    name = "Gate USDT futures"
    ws_url = "wss://fx-ws.gateio.ws"
    rest_url = "https://api.gateio.ws"
    book_sync = "rest_bridged"
    # Gate's server pings at the protocol level (the websocket library answers); the
    # application ping keeps traffic flowing on quiet contracts, every 10 s as Gate's own
    # demo client does. `time` is not checked on public channels (Gate's examples send 123456).
    heartbeat_text = '{"time":0,"channel":"futures.ping"}'
    heartbeat_s = 10.0
    silence_s = 30.0
    # VIP 0 futures taker 0.05% (gate.com fee announcement of 2026-04, unchanged at VIP 0);
    # maker 0.02% per the public VIP 0 schedule (unverified, /work/shared/venues/gate.md).
    taker_fee = 0.0005
    maker_fee = 0.0002
    metadata_paths = (_CONTRACTS_PATH,)

    def __init__(self, registry: Registry) -> None:
        super().__init__(registry)
        # contract → a known settlement time (ms): the contracts response's funding_next_apply.
        self._settle_ms: dict[str, int] = {}

    # -- feed ----------------------------------------------------------------------------
    def connections(self, instruments: list[Instrument], books: bool = True) -> list[Connection]:
        syms = [i.venue_symbol for i in instruments]
        now = int(time.time())  # request time in seconds; resent unchanged on reconnect
        msgs = [_sub("futures.book_ticker", syms[k : k + _PER_MSG], now) for k in range(0, len(syms), _PER_MSG)]
        if books:
            msgs += [_sub("futures.order_book_update", [s, "100ms", str(_BOOK_LIMIT)], now) for s in syms]
        msgs += [_sub("futures.tickers", syms[k : k + _PER_MSG], now) for k in range(0, len(syms), _PER_MSG)]
        return [Connection(path=f"/v4/ws/{_SETTLE}", subscribe=msgs, instruments=instruments)]

    def book_snapshot_path(self, inst: Instrument) -> str | None:
        return f"{_BOOK_PATH}?contract={inst.venue_symbol}&limit={_BOOK_LIMIT}&with_id=true"

    def parse(self, raw: str | bytes, recv_ns: int) -> list[MarketEvent]:
        if isinstance(raw, str):
            raw = raw.encode()
        chan, event = _channel_event(raw)
        try:
            if chan == _BOOK_CHANNEL and event == b"update":  # the hot path: one book update
                return self._book(_book_update.decode(raw), recv_ns)
            if chan is None or event is None or event not in _DATA_EVENTS:
                # Acks, pongs, errors, or JSON that is not compact; decoding it also makes garbage raise.
                head = _head.decode(raw)
                if head.error is not None:
                    self.problems.append(f"{self.id}: {head.channel} {head.event} failed: "
                                         f"{head.error.code} {head.error.message}")
                chan, event = head.channel.encode(), head.event.encode()
                if event not in _DATA_EVENTS:
                    return []
            kind = _KINDS.get(chan)
            if kind == "book":
                return self._book(_book_update.decode(raw), recv_ns)
            if kind == "quote":
                return self._quote(_book_ticker.decode(raw), recv_ns)
            if kind == "funding":
                return self._funding(_tickers.decode(raw), recv_ns)
            if kind == "trade":
                return self._trades(_trades.decode(raw), recv_ns)
            if kind == "legacy":
                return self._legacy(_legacy.decode(raw), recv_ns)
        except (msgspec.DecodeError, ValueError) as exc:
            raise decode_error(self.id, exc, raw) from None
        return []  # candlesticks, contract stats, ...

    def _book(self, m: _Push[_BookUpdate], recv_ns: int) -> list[MarketEvent]:
        r = m.result
        inst = self.table.get(r.s) or self.instrument(r.s)
        if inst is None:
            return []
        scale, size, inverse = inst.price_scale, inst.contract_size, inst.inverse  # _levels, inlined (hot path)
        return [BookDelta(venue="gate", symbol=inst.symbol, venue_symbol=r.s, bids=obj_levels(r.b, scale, size, inverse),
                          asks=obj_levels(r.a, scale, size, inverse), first_seq=r.U, seq=r.u, prev_seq=r.U - 1,
                          ts_exchange_ns=r.t * MS, recv_ns=recv_ns)]

    def _quote(self, m: _Push[_BookTicker], recv_ns: int) -> list[MarketEvent]:
        r = m.result
        if not r.b or not r.a:
            return []  # one side empty: no quote to compare
        inst = self.instrument(r.s)
        if inst is None:
            return []
        bp, ap = float(r.b), float(r.a)
        return [Quote(self.id, inst.symbol, r.s, inst.px(bp), inst.qty(r.B, bp), inst.px(ap), inst.qty(r.A, ap),
                      r.t * MS, recv_ns)]

    def _funding(self, m: _Push[list[_Ticker | list[_Ticker]] | _Ticker], recv_ns: int) -> list[MarketEvent]:
        res = m.result
        # The result is a list; a 2021 recording nests it once more, a 2022 one sends one object.
        items = [res] if isinstance(res, _Ticker) else [
            t for x in res for t in (x if isinstance(x, list) else (x,))]
        ts_ms = m.time_ms or m.time * 1000
        out: list[MarketEvent] = []
        for t in items:
            if not t.funding_rate:
                continue
            inst = self.instrument(t.contract)
            if inst is None:
                continue
            out.append(Funding(
                venue=self.id, symbol=inst.symbol, venue_symbol=t.contract, rate=float(t.funding_rate),
                interval_h=inst.funding_interval_h,
                next_funding_ns=self._next_settle_ms(inst, ts_ms) * MS,
                mark_px=inst.px(float(t.mark_price)) if t.mark_price else None,
                index_px=inst.px(float(t.index_price)) if t.index_price else None,
                ts_exchange_ns=ts_ms * MS, recv_ns=recv_ns,
            ))
        return out

    def _next_settle_ms(self, inst: Instrument, now_ms: int) -> int:
        """The first settlement strictly after ``now_ms`` on the contract's grid."""
        step = round(inst.funding_interval_h * 3_600_000)
        anchor = self._settle_ms.get(inst.venue_symbol, 0)
        return anchor + ((now_ms - anchor) // step + 1) * step

    def _trades(self, m: _Push[list[_Trade]], recv_ns: int) -> list[MarketEvent]:
        out: list[MarketEvent] = []
        for t in m.result:
            inst = self.instrument(t.contract)
            if inst is None:
                continue
            out.append(Trade(
                venue=self.id, symbol=inst.symbol, venue_symbol=t.contract, px=inst.px(t.price),
                qty=inst.qty(abs(t.size), t.price), side="buy" if t.size > 0 else "sell", trade_id=str(t.id),
                ts_exchange_ns=t.create_time_ms * MS if t.create_time_ms else t.create_time * S_NS,
                recv_ns=recv_ns,
            ))
        return out

    def _legacy(self, m: _Push[_LegacyBook | list[_LegacyChange]], recv_ns: int) -> list[MarketEvent]:
        res = m.result
        push_ns = m.time_ms * MS if m.time_ms else m.time * S_NS
        if isinstance(res, _LegacyBook):
            inst = self.instrument(res.contract)
            if inst is None:
                return []
            return [BookSnapshot(venue=self.id, symbol=inst.symbol, venue_symbol=res.contract,
                                 bids=_levels(inst, res.bids), asks=_levels(inst, res.asks), seq=res.id,
                                 ts_exchange_ns=res.t * MS if res.t else push_ns, recv_ns=recv_ns)]
        by_contract: dict[str, list[_LegacyChange]] = {}
        for c in res:
            by_contract.setdefault(c.c, []).append(c)
        out: list[MarketEvent] = []
        for sym, changes in by_contract.items():
            inst = self.instrument(sym)
            if inst is None:
                continue
            bids: list[Level] = []
            asks: list[Level] = []
            for c in changes:
                px = inst.px(c.p)
                if c.s > 0:
                    bids.append((px, inst.qty(c.s, c.p)))
                elif c.s < 0:
                    asks.append((px, inst.qty(-c.s, c.p)))
                else:  # the side is not said; a price is on at most one side of a sound book
                    bids.append((px, 0.0))
                    asks.append((px, 0.0))
            ids = [c.id for c in changes]
            out.append(BookDelta(venue=self.id, symbol=inst.symbol, venue_symbol=sym, bids=bids, asks=asks,
                                 first_seq=min(ids), seq=max(ids), prev_seq=None, ts_exchange_ns=push_ns,
                                 recv_ns=recv_ns))
        return out

    # -- REST ----------------------------------------------------------------------------
    def parse_rest(self, path: str, raw: str | bytes, recv_ns: int) -> list[MarketEvent]:
        url = urlsplit(path)
        if url.path != _BOOK_PATH:
            return []
        sym = parse_qs(url.query).get("contract", [""])[0]
        inst = self.instrument(sym)
        if inst is None:
            return []
        try:
            d = _rest_book.decode(raw)
        except msgspec.DecodeError as exc:
            raise decode_error(self.id, exc, raw) from None
        return [BookSnapshot(venue=self.id, symbol=inst.symbol, venue_symbol=sym, bids=_levels(inst, d.bids),
                             asks=_levels(inst, d.asks), seq=d.id,
                             ts_exchange_ns=round((d.update or d.current) * 1000) * MS, recv_ns=recv_ns)]

    # -- metadata ------------------------------------------------------------------------
    def parse_metadata(self, path: str, raw: str | bytes) -> list[Instrument]:
        if urlsplit(path).path != _CONTRACTS_PATH:
            return []
        try:
            contracts = _contracts.decode(raw)
            out = []
            for c in contracts:
                if c.type != "direct":
                    continue  # the USDT-settled list holds linear ("direct") perpetuals only
                base, _, quote = c.name.rpartition("_")
                asset, scale = split_multiple(base)
                interval_s = c.funding_interval or 28_800  # Gate's documented default
                if c.funding_next_apply:
                    self._settle_ms[c.name] = round(c.funding_next_apply * 1000)
                out.append(Instrument(
                    venue=self.id, venue_symbol=c.name, symbol=canonical_symbol(asset, quote, "USDT"), asset=asset,
                    quote=quote, settle="USDT", contract_size=float(c.quanto_multiplier), price_scale=scale,
                    tick_size=float(c.order_price_round),
                    # Whole contracts, unless decimal sizes are on: then the step is order_size_min (unverified).
                    lot_size=c.order_size_min if c.enable_decimal else 1.0, min_qty=c.order_size_min,
                    taker_fee=self.taker_fee, maker_fee=self.maker_fee, funding_interval_h=interval_s / 3600,
                    # Newer responses say `status` (prelaunch, trading, delisting…); older only `in_delisting`.
                    status="active" if not c.in_delisting and c.status in ("", "trading") else "inactive",
                    source=self.id,
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
        now_ms = int(time.time() * 1000)
        chan = msg.get("channel", "")
        if chan == "futures.ping":
            return [_push("futures.pong", "", None, now_ms)], []
        event = msg.get("event")
        if event not in ("subscribe", "unsubscribe"):
            return [], []
        payload = msg.get("payload") or []
        topics = []
        kind = _SIM_TOPICS.get(chan)
        if event == "subscribe" and kind:
            # order_book_update's payload is [contract, frequency, level]; the others list contracts.
            syms = payload[:1] if chan == "futures.order_book_update" else payload
            topics = [(kind, s) for s in syms]
        return [_push(chan, event, {"status": "success"}, now_ms)], topics

    def sim_quote(self, inst: Instrument, bid: Level, ask: Level, seq: int, ts_ms: int) -> str:
        r = {"t": ts_ms, "u": seq, "s": inst.venue_symbol, "b": num_text(bid[0]), "B": _size(bid[1]),
             "a": num_text(ask[0]), "A": _size(ask[1])}
        return _push("futures.book_ticker", "update", r, ts_ms)

    def sim_book(self, inst: Instrument, snapshot: bool, bids: list[Level], asks: list[Level],
                 seq: int, prev_seq: int, first_seq: int, ts_ms: int) -> str:
        b = [{"p": num_text(p), "s": _size(q)} for p, q in bids]
        a = [{"p": num_text(p), "s": _size(q)} for p, q in asks]
        if snapshot:  # Gate's in-stream full book is the legacy channel's `all`
            return _push("futures.order_book", "all", {"t": ts_ms, "id": seq, "contract": inst.venue_symbol,
                                                       "asks": a, "bids": b}, ts_ms)
        # The wire has no previous id: U tells it (U - 1), so a gap shows as U > previous u + 1.
        return _push("futures.order_book_update", "update", {"t": ts_ms, "s": inst.venue_symbol, "U": first_seq,
                                                             "u": seq, "b": b, "a": a, "l": str(_BOOK_LIMIT)}, ts_ms)

    def sim_funding(self, inst: Instrument, rate: float, next_ms: int, mark: float, index: float,
                    ts_ms: int, full: bool = True) -> str:
        # Gate's ticker has no settlement time; parse puts it on the grid, where the simulator's is.
        t = {"contract": inst.venue_symbol, "last": num_text(mark), "mark_price": num_text(mark), "index_price": num_text(index),
             "funding_rate": num_text(rate), "funding_rate_indicative": num_text(rate), "quanto_base_rate": ""}
        return _push("futures.tickers", "update", [t], ts_ms)

    def sim_rest_book(self, path: str) -> str | None:
        return asked_symbol(path, _BOOK_PATH, "contract")

    def sim_rest_funding(self, path: str) -> str | None:
        return asked_symbol(path, _CONTRACTS_PATH, None)  # one contract: ccxt's fetch_funding_rate

    def sim_rest_funding_body(self, inst: Instrument, rate: float, next_ms: int, mark: float, index: float,
                              ts_ms: int) -> bytes:
        return _enc.encode({**_contract(inst, ts_ms // 1000), "funding_rate": f"{rate:.8f}", "index_price":
                            num_text(index), "funding_next_apply": next_ms // 1000, "mark_price": num_text(mark)})

    def sim_rest_book_body(self, inst: Instrument, bids: list[Level], asks: list[Level], seq: int,
                           ts_ms: int) -> bytes:
        return _enc.encode({"id": seq, "current": ts_ms / 1000, "update": ts_ms / 1000,
                            "asks": [{"p": num_text(p), "s": _size(q)} for p, q in asks],
                            "bids": [{"p": num_text(p), "s": _size(q)} for p, q in bids]})

    def sim_metadata(self, instruments: list[Instrument]) -> dict[str, bytes]:
        return {_CONTRACTS_PATH: _enc.encode([_contract(i, int(time.time())) for i in instruments])}


def _contract(i: Instrument, now: int) -> dict[str, object]:
    interval = round(i.funding_interval_h * 3600)
    live = i.status in ("active", "derived")
    return {"name": i.venue_symbol, "type": "direct", "quanto_multiplier": num_text(i.contract_size),
            "order_price_round": num_text(i.tick_size), "mark_price_round": num_text(i.tick_size),
            "order_size_min": _size(i.min_qty), "enable_decimal": i.lot_size != 1.0,
            "funding_interval": interval, "funding_next_apply": (now // interval + 1) * interval,
            "funding_offset": 0, "in_delisting": not live, "status": "trading" if live else "delisted"}


def _levels(inst: Instrument, rows: list[_Level]) -> list[Level]:
    return obj_levels(rows, inst.price_scale, inst.contract_size, inst.inverse)


def _sub(channel: str, payload: list[str], now: int) -> str:
    return _enc.encode({"time": now, "channel": channel, "event": "subscribe", "payload": payload}).decode()


def _push(channel: str, event: str, result: object, ts_ms: int) -> str:
    return _enc.encode({"time": ts_ms // 1000, "time_ms": ts_ms, "channel": channel, "event": event,
                        "result": result}).decode()


def _size(q: float) -> int | str:
    """Whole contracts as an integer (as Gate has always sent them), else a decimal string."""
    return int(q) if q == int(q) else num_text(q)




register(Gate)
