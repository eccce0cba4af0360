"""KuCoin futures perpetuals (USDT-M ``XBTUSDTM``, USDC-M ``XBTUSDCM``, inverse ``XBTUSDM``).

Connection: the websocket address and a one-day token come from ``POST
/api/v1/bullet-public`` before every (re)connect (``bootstrap_path``/``connect_url``); the
client pings ``{"type":"ping"}`` every ``pingInterval`` of that answer.
Books: REST-bridged. ``/contractMarket/level2:{sym}`` carries ONE price-level change per
message (``"change":"price,side,size"``, absolute size in contracts) and ``sequence`` goes up
by exactly 1 per change. The feed buffers changes, loads ``GET /api/v1/level2/snapshot``
(its ``sequence``), drops changes older than the snapshot and then requires ``sequence ==
previous + 1``: every ``BookDelta`` has ``first_seq = seq = sequence`` and ``prev_seq =
sequence - 1``. (The change whose sequence equals the snapshot's is re-applied; sizes are
absolute, so that is harmless.)
Quantities: integer contracts x ``multiplier`` of ``/api/v1/contracts/active`` (base coin per
contract, 0.001 for ``XBTUSDTM``); inverse contracts have a negative multiplier (-1: one USD
per contract), so base quantity = contracts x |multiplier| / price. ``XBT`` is BTC.
Funding: ``/contract/instrument:{sym}`` subject ``funding.rate`` with ``granularity`` 60000 is
the real-time rate of the current period, i.e. the rate that settles at the next funding
time; KuCoin publishes no rate beyond it (``predictedFundingFeeRate`` is null nowadays), so
``predicted_rate`` is None. A ``funding.rate`` whose granularity is the funding interval
(28800000) reports the rate just settled at its ``timestamp``: it gives no event but anchors
the settlement grid. The message has no next funding time: it is the first settlement after
the message on the grid anchored at the contract's ``nextFundingRateDateTime`` (metadata), a
settlement seen in the stream, or else KuCoin's 04:00/12:00/20:00 UTC schedule (the recorded
settlement message is stamped 04:00:00 UTC). The interval is ``currentFundingRateGranularity``
(else ``fundingRateGranularity``) ms from the contracts response. ``mark.index.price`` adds
mark and index prices to the last known rate.
"""

from __future__ import annotations

import itertools
import math
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qs, urlsplit

import msgspec

from perparb.instruments.canonical import ALIASES, canonical_symbol, split_multiple
from perparb.instruments.registry import Registry
from perparb.model import BookDelta, BookSnapshot, Funding, Instrument, Level, MarketEvent, Quote, Trade
from perparb.sim.model import START_PRICES
from perparb.venues import register
from perparb.venues.base import MS, Connection, Venue, decode_error, listing, num_text, one_at_a_time

T = TypeVar("T")

_CONTRACTS_PATH = "/api/v1/contracts/active"
_BULLET_PATH = "/api/v1/bullet-public"
_SNAPSHOT_PATH = "/api/v1/level2/snapshot"
_OK = "200000"
HOUR_MS = 3_600_000
_REALTIME_GRANULARITY = 60_000  # funding.rate pushed every minute: the current period's rate
_DEFAULT_ANCHOR_MS = 4 * HOUR_MS  # settlements at 04:00, 12:00, 20:00 UTC
_TOPICS_PER_CONN = 90  # KuCoin allows 100 topics per connection (and 100 uplink messages / 10 s)


class _Msg(msgspec.Struct, Generic[T]):
    data: T
    topic: str = ""
    subject: str = ""


class _Change(msgspec.Struct):
    sequence: int
    change: str
    timestamp: int = 0


class _Ticker(msgspec.Struct):
    symbol: str
    # Prices are strings in current pushes (numbers in old doc examples); "" would be no side.
    bestBidPrice: str | float = ""
    bestAskPrice: str | float = ""
    bestBidSize: float = 0.0
    bestAskSize: float = 0.0
    sequence: int = 0
    ts: int = 0


class _Depth(msgspec.Struct):
    asks: list[Level] = []
    bids: list[Level] = []
    sequence: int = 0
    ts: int = 0
    timestamp: int = 0


class _Match(msgspec.Struct):
    symbol: str
    side: str
    size: float
    price: float
    tradeId: str = ""
    ts: int = 0


class _InstrumentData(msgspec.Struct):
    granularity: int = 0
    fundingRate: float | None = None
    markPrice: float | None = None
    indexPrice: float | None = None
    timestamp: int = 0


class _Control(msgspec.Struct):
    type: str = ""
    id: str | int | None = None
    code: str | int | None = None
    data: Any = None


class _Server(msgspec.Struct):
    endpoint: str
    pingInterval: int = 18_000
    pingTimeout: int = 10_000


class _Token(msgspec.Struct):
    token: str
    instanceServers: list[_Server]


class _Bullet(msgspec.Struct):
    code: str = ""
    data: _Token | None = None


class _RestBook(msgspec.Struct):
    sequence: int
    asks: list[Level] = []
    bids: list[Level] = []
    symbol: str = ""
    ts: int = 0


class _RestBookResponse(msgspec.Struct):
    code: str = ""
    msg: str = ""
    data: _RestBook | None = None


class _Contract(msgspec.Struct):
    symbol: str
    type: str = ""
    baseCurrency: str = ""
    quoteCurrency: str = ""
    settleCurrency: str = ""
    multiplier: float = 0.0
    lotSize: float = 1.0
    tickSize: float = 0.0
    isInverse: bool = False
    status: str = ""
    fundingRateGranularity: int | None = None
    currentFundingRateGranularity: int | None = None
    nextFundingRateDateTime: int | None = None
    makerFeeRate: float | None = None
    takerFeeRate: float | None = None


def _dec(t: Any) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(t, strict=False)


_changes, _tickers, _depths = _dec(_Msg[_Change]), _dec(_Msg[_Ticker]), _dec(_Msg[_Depth])
_matches, _instruments = _dec(_Msg[_Match]), _dec(_Msg[_InstrumentData])
_control, _bullet, _rest_book = _dec(_Control), _dec(_Bullet), _dec(_RestBookResponse)
_enc = msgspec.json.Encoder()

_TOPIC = b'"topic"'
_KINDS = {
    b"/contractMarket/level2": "change", b"/contractMarket/tickerV2": "ticker",
    b"/contractMarket/level2Depth5": "depth", b"/contractMarket/level2Depth50": "depth",
    b"/contractMarket/execution": "match", b"/contract/instrument": "instrument",
}
# What the simulator serves for each subscribable topic.
_SIM_TOPICS = {"/contractMarket/tickerV2": "quote", "/contractMarket/level2": "book",
               "/contract/instrument": "funding", "/contractMarket/execution": "trade"}


def _ns(t: int) -> int:
    """KuCoin stamps some fields in ms and others in ns (and old doc examples differ)."""
    if t >= 10**17:
        return t
    if t >= 10**14:
        return t * 1000
    return t * MS


class _FundingState:
    __slots__ = ("index", "mark", "rate")

    def __init__(self) -> None:
        self.rate: float | None = None
        self.mark: float | None = None
        self.index: float | None = None



class Kucoin(Venue):
    id = "kucoin"
    name = "KuCoin Futures"
    # Fallback only: the real address comes with the token from bullet-public.
    ws_url = "wss://ws-api-futures.kucoin.com"
    rest_url = "https://api-futures.kucoin.com"
    book_sync = "rest_bridged"
    merged_state = ("_funding",)
    heartbeat_text = '{"id":"perparb","type":"ping"}'
    heartbeat_s = 18.0  # replaced by the bullet answer's pingInterval on every connect
    silence_s = 30.0
    # Base tier as listed in the contract records (makerFeeRate 0.0002, takerFeeRate 0.0006);
    # per-contract values from /api/v1/contracts/active win where present.
    taker_fee = 0.0006
    maker_fee = 0.0002
    metadata_paths = (_CONTRACTS_PATH,)
    bootstrap_path = _BULLET_PATH

    def __init__(self, registry: Registry) -> None:
        super().__init__(registry)
        self._funding: dict[str, _FundingState] = {}
        self._anchor_ms: dict[str, int] = {}  # a known settlement time per contract
        self._connect_ids = itertools.count(1)
        # Simulator state: KuCoin sequences advance once per level change.
        self._sim_seq: dict[str, int] = {}
        self._sim_last: dict[str, int] = {}

    # -- feed ----------------------------------------------------------------------------
    def rest_request(self, path: str) -> tuple[str, str, bytes | None]:
        if path == _BULLET_PATH:
            return "POST", path, None  # no body, no auth for the public token
        return "GET", path, None

    def connect_url(self, ws_url: str, conn: Connection, bootstrap: bytes | None) -> str:
        try:
            data = _bullet.decode(bootstrap or b"")
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise ConnectionError(f"kucoin: bad {_BULLET_PATH} answer: {exc}") from None
        if data.code != _OK or data.data is None or not data.data.instanceServers:
            raise ConnectionError(f"kucoin: {_BULLET_PATH} answered code {data.code!r} without a server")
        server = data.data.instanceServers[0]
        # The server drops a client that stays quiet past pingInterval + pingTimeout.
        setattr(self, "heartbeat_s", server.pingInterval / 1000)  # noqa: B010 (instance override of the card)
        sep = "&" if "?" in server.endpoint else "?"
        return f"{server.endpoint}{sep}token={data.data.token}&connectId=perparb-{next(self._connect_ids)}"

    def connections(self, instruments: list[Instrument], books: bool = True) -> list[Connection]:
        chans = ("/contractMarket/tickerV2", "/contractMarket/level2", "/contract/instrument") if books else (
            "/contractMarket/tickerV2", "/contract/instrument")
        per_conn = max(1, _TOPICS_PER_CONN // len(chans))
        out = []
        for k in range(0, len(instruments), per_conn):
            group = instruments[k : k + per_conn]
            msgs = [_enc.encode({"id": str(n), "type": "subscribe", "topic": f"{c}:{i.venue_symbol}",
                                 "privateChannel": False, "response": True}).decode()
                    for n, (i, c) in enumerate(((i, c) for i in group for c in chans), 1)]
            out.append(Connection(path="/", subscribe=msgs, instruments=group))
        return out

    def book_snapshot_path(self, inst: Instrument) -> str | None:
        return f"{_SNAPSHOT_PATH}?symbol={inst.venue_symbol}"

    def parse(self, raw: str | bytes, recv_ns: int) -> list[MarketEvent]:
        if isinstance(raw, str):
            raw = raw.encode()
        i = raw.find(_TOPIC)
        try:
            if i < 0:
                return self._control(_control.decode(raw))
            i += len(_TOPIC)
            while raw[i : i + 1] in (b" ", b":", b"\t"):  # JSON written with spaces
                i += 1
            if raw[i : i + 1] != b'"':
                raise ValueError("topic is not a string")
            i += 1
            j = raw.find(b'"', i)
            colon = raw.find(b":", i, j)
            kind = _KINDS.get(raw[i:colon] if colon > 0 else raw[i:j])
            if kind is None:
                return []  # candles, 24h snapshots, level 3...
            sym = raw[colon + 1 : j].decode() if colon > 0 else ""
            if kind == "change":
                return self._change(_changes.decode(raw).data, sym, recv_ns)
            if kind == "ticker":
                return self._ticker(_tickers.decode(raw).data, recv_ns)
            if kind == "depth":
                return self._depth(_depths.decode(raw).data, sym, recv_ns)
            if kind == "match":
                return self._match(_matches.decode(raw).data, recv_ns)
            m = _instruments.decode(raw)
            return self._instrument(m.subject, m.data, sym, recv_ns)
        except (msgspec.DecodeError, ValueError, UnicodeDecodeError) as exc:
            raise decode_error(self.id, exc, raw) from None

    def _control(self, m: _Control) -> list[MarketEvent]:
        # welcome, ack, pong; an error reply names what the server refused.
        if m.type == "error":
            self.problems.append(f"{self.id}: server error {m.code}: {m.data}")
        return []

    def _change(self, d: _Change, sym: str, recv_ns: int) -> list[MarketEvent]:
        inst = self.table.get(sym) or self.instrument(sym)
        if inst is None:
            return []
        px_s, side, sz_s = d.change.split(",")
        px = float(px_s)
        level = [(inst.px(px), inst.qty(float(sz_s), px))]
        if side == "buy":
            bids, asks = level, []
        elif side == "sell":
            bids, asks = [], level
        else:
            raise ValueError(f"side {side!r}")
        seq = d.sequence
        return [BookDelta(venue=self.id, symbol=inst.symbol, venue_symbol=sym, bids=bids, asks=asks,
                          first_seq=seq, seq=seq, prev_seq=seq - 1, ts_exchange_ns=_ns(d.timestamp),
                          recv_ns=recv_ns)]

    def _ticker(self, t: _Ticker, recv_ns: int) -> list[MarketEvent]:
        if t.bestBidPrice == "" or t.bestAskPrice == "":
            return []  # one side empty: no quote to compare
        inst = self.table.get(t.symbol) or self.instrument(t.symbol)
        if inst is None:
            return []
        bp, ap = float(t.bestBidPrice), float(t.bestAskPrice)
        return [Quote(self.id, inst.symbol, t.symbol, inst.px(bp), inst.qty(t.bestBidSize, bp), inst.px(ap),
                      inst.qty(t.bestAskSize, ap), _ns(t.ts), recv_ns)]

    def _depth(self, d: _Depth, sym: str, recv_ns: int) -> list[MarketEvent]:
        # level2Depth5/50: the whole top N every time. connections() never mixes them with level2.
        inst = self.instrument(sym)
        if inst is None:
            return []
        px, qty = inst.px, inst.qty
        return [BookSnapshot(venue=self.id, symbol=inst.symbol, venue_symbol=sym,
                             bids=[(px(p), qty(q, p)) for p, q in d.bids], asks=[(px(p), qty(q, p)) for p, q in d.asks],
                             seq=d.sequence, ts_exchange_ns=_ns(d.timestamp or d.ts), recv_ns=recv_ns)]

    def _match(self, t: _Match, recv_ns: int) -> list[MarketEvent]:
        inst = self.instrument(t.symbol)
        if inst is None:
            return []
        return [Trade(venue=self.id, symbol=inst.symbol, venue_symbol=t.symbol, px=inst.px(t.price),
                      qty=inst.qty(t.size, t.price), side=t.side, trade_id=t.tradeId, ts_exchange_ns=_ns(t.ts),
                      recv_ns=recv_ns)]

    def _instrument(self, subject: str, d: _InstrumentData, sym: str, recv_ns: int) -> list[MarketEvent]:
        if subject not in ("funding.rate", "mark.index.price"):
            return []
        inst = self.instrument(sym)
        if inst is None:
            return []
        st = self._funding.get(sym)
        if st is None:
            st = self._funding[sym] = _FundingState()
        if subject == "funding.rate":
            if d.fundingRate is None:
                raise ValueError("funding.rate without fundingRate")
            if d.granularity != _REALTIME_GRANULARITY:
                self._anchor_ms[sym] = d.timestamp  # the rate just settled: nothing upcoming in it
                return []
            st.rate = d.fundingRate
        else:
            if d.markPrice is not None:
                st.mark = d.markPrice
            if d.indexPrice is not None:
                st.index = d.indexPrice
        if st.rate is None:
            return []
        interval_ms = round(inst.funding_interval_h * HOUR_MS)
        ts_ms = _ns(d.timestamp) // MS
        anchor = self._anchor_ms.get(sym, _DEFAULT_ANCHOR_MS)
        next_ms = anchor + ((ts_ms - anchor) // interval_ms + 1) * interval_ms
        return [Funding(
            venue=self.id, symbol=inst.symbol, venue_symbol=sym, rate=st.rate, interval_h=inst.funding_interval_h,
            next_funding_ns=next_ms * MS, mark_px=inst.px(st.mark) if st.mark is not None else None,
            index_px=inst.px(st.index) if st.index is not None else None, ts_exchange_ns=ts_ms * MS,
            recv_ns=recv_ns,
        )]

    def parse_rest(self, path: str, raw: str | bytes, recv_ns: int) -> list[MarketEvent]:
        url = urlsplit(path)
        if url.path != _SNAPSHOT_PATH:
            return []
        sym = parse_qs(url.query).get("symbol", [""])[0]
        inst = self.instrument(sym)
        if inst is None:
            return []
        try:
            resp = _rest_book.decode(raw)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            raise decode_error(self.id, exc, raw) from None
        d = resp.data
        if resp.code != _OK or d is None:
            raise decode_error(self.id, ValueError(f"code {resp.code!r} ({resp.msg})"), raw)
        px, qty = inst.px, inst.qty
        return [BookSnapshot(venue=self.id, symbol=inst.symbol, venue_symbol=sym, seq=d.sequence,
                             bids=[(px(p), qty(q, p)) for p, q in d.bids], asks=[(px(p), qty(q, p)) for p, q in d.asks],
                             ts_exchange_ns=_ns(d.ts), recv_ns=recv_ns)]

    # -- metadata ------------------------------------------------------------------------
    def parse_metadata(self, path: str, raw: str | bytes) -> list[Instrument]:
        if urlsplit(path).path != _CONTRACTS_PATH:
            return []
        out = []
        for c in listing(self.id, raw, _Contract, "data", ok={"code": _OK}):
            if c.type != "FFWCSX":  # FFICSX: dated futures
                continue
            asset, scale = split_multiple(c.baseCurrency)
            quote = ALIASES.get(c.quoteCurrency, c.quoteCurrency)
            settle = ALIASES.get(c.settleCurrency, c.settleCurrency)
            granularity = c.currentFundingRateGranularity or c.fundingRateGranularity
            if c.nextFundingRateDateTime:
                self._anchor_ms[c.symbol] = c.nextFundingRateDateTime
            out.append(Instrument(
                venue=self.id, venue_symbol=c.symbol, symbol=canonical_symbol(asset, quote, settle), asset=asset,
                quote=quote, settle=settle, inverse=c.isInverse, contract_size=abs(c.multiplier), price_scale=scale,
                tick_size=c.tickSize, lot_size=c.lotSize, min_qty=c.lotSize,
                taker_fee=self.taker_fee if c.takerFeeRate is None else c.takerFeeRate,
                maker_fee=self.maker_fee if c.makerFeeRate is None else c.makerFeeRate,
                funding_interval_h=granularity / HOUR_MS if granularity else 8.0,
                status="active" if c.status == "Open" else "inactive", source=self.id,
            ))
        return out

    # -- simulator -----------------------------------------------------------------------
    def sim_contract(self, asset: str) -> Instrument | None:
        """A KuCoin-style linear contract (``XBTUSDTM``, multiplier worth tens of USDT) for the
        simulator when no recorded contracts response lists one."""
        px = START_PRICES.get(asset)
        if px is None:
            return None
        multiplier = 10.0 ** round(math.log10(50.0 / px))
        native = "XBT" if asset == "BTC" else asset
        return Instrument(
            venue=self.id, venue_symbol=f"{native}USDTM", symbol=canonical_symbol(asset, "USDT", "USDT"),
            asset=asset, quote="USDT", settle="USDT", contract_size=multiplier, tick_size=10.0 ** math.floor(
                math.log10(px * 1e-5)), lot_size=1.0, min_qty=1.0, taker_fee=self.taker_fee, maker_fee=self.maker_fee,
            funding_interval_h=8.0, status="active", source="sim")

    def sim_bootstrap(self, ws_url: str) -> dict[str, bytes]:
        body = {"code": _OK, "data": {"token": "sim-token", "instanceServers": [{
            "endpoint": ws_url.rstrip("/") + "/", "encrypt": False, "protocol": "websocket",
            "pingInterval": round(self.heartbeat_s * 1000), "pingTimeout": 10_000}]}}
        return {_BULLET_PATH: _enc.encode(body)}

    def sim_handle(self, text: str) -> tuple[list[str], list[tuple[str, str]]]:
        try:
            msg = msgspec.json.decode(text)
        except msgspec.DecodeError:
            return [], []
        if not isinstance(msg, dict):
            return [], []
        kind, mid = msg.get("type"), msg.get("id", "")
        if kind == "ping":
            return [_enc.encode({"id": mid, "type": "pong"}).decode()], []
        if kind not in ("subscribe", "unsubscribe"):
            return [], []
        topics = []
        if kind == "subscribe":
            chan, _, syms = str(msg.get("topic", "")).partition(":")
            what = _SIM_TOPICS.get(chan)
            if what:
                topics = [(what, s) for s in syms.split(",") if s]
        reply = [_enc.encode({"id": mid, "type": "ack"}).decode()] if msg.get("response") else []
        return reply, topics

    def sim_quote(self, inst: Instrument, bid: Level, ask: Level, seq: int, ts_ms: int) -> str:
        s = inst.venue_symbol
        d = {"symbol": s, "sequence": self._sim_seq.get(s, 0), "bestBidSize": _num(bid[1]),
             "bestBidPrice": num_text(bid[0]), "bestAskPrice": num_text(ask[0]), "bestAskSize": _num(ask[1]),
             "ts": ts_ms * MS}
        return _enc.encode({"topic": f"/contractMarket/tickerV2:{s}", "type": "message", "subject": "tickerV2",
                            "sn": d["sequence"], "data": d}).decode()

    def sim_book(self, inst: Instrument, snapshot: bool, bids: list[Level], asks: list[Level],
                 seq: int, prev_seq: int, first_seq: int, ts_ms: int) -> list[str]:
        """KuCoin sends one message per level change."""
        s = inst.venue_symbol
        kseq = self._sim_seq.get(s, 0)
        last = self._sim_last.get(s)
        if last is not None and prev_seq != last:
            kseq += max(1, prev_seq - last)  # updates the client never sees
        self._sim_last[s] = seq
        frames = []
        for is_bid, p, q in one_at_a_time(bids, asks):  # never crossed or one-sided in between
            kseq += 1
            change = f"{num_text(p)},{'buy' if is_bid else 'sell'},{num_text(q)}"
            frames.append(_enc.encode({
                "topic": f"/contractMarket/level2:{s}", "type": "message", "subject": "level2", "sn": kseq,
                "data": {"sequence": kseq, "change": change, "timestamp": ts_ms},
            }).decode())
        self._sim_seq[s] = kseq
        return frames

    def sim_funding(self, inst: Instrument, rate: float, next_ms: int, mark: float, index: float,
                    ts_ms: int, full: bool = True) -> str:
        d = {"granularity": _REALTIME_GRANULARITY, "fundingRate": rate, "timestamp": ts_ms}
        return _enc.encode({"topic": f"/contract/instrument:{inst.venue_symbol}", "type": "message",
                            "subject": "funding.rate", "data": d}).decode()

    def sim_rest_book(self, path: str) -> str | None:
        url = urlsplit(path)
        if url.path != _SNAPSHOT_PATH:
            return None
        return parse_qs(url.query).get("symbol", [None])[0]

    def sim_rest_book_body(self, inst: Instrument, bids: list[Level], asks: list[Level], seq: int,
                           ts_ms: int) -> bytes:
        d = {"symbol": inst.venue_symbol, "sequence": self._sim_seq.get(inst.venue_symbol, 0),
             "asks": [[_num(p), _num(q)] for p, q in asks], "bids": [[_num(p), _num(q)] for p, q in bids],
             "ts": ts_ms * MS}
        return _enc.encode({"code": _OK, "data": d})

    def sim_metadata(self, instruments: list[Instrument]) -> dict[str, bytes]:
        rows = []
        for i in instruments:
            base = i.venue_symbol[: -(len(i.quote) + 1)]  # {BASE}{QUOTE}M
            settle = base if i.settle == i.asset and base != i.asset else i.settle
            interval_ms = round(i.funding_interval_h * HOUR_MS)
            rows.append({
                "symbol": i.venue_symbol, "rootSymbol": settle, "type": "FFWCSX", "baseCurrency": base,
                "quoteCurrency": i.quote, "settleCurrency": settle,
                "multiplier": -i.contract_size if i.inverse else i.contract_size, "isInverse": i.inverse,
                "isQuanto": False, "lotSize": i.lot_size, "tickSize": i.tick_size,
                "status": "Open" if i.status in ("active", "derived") else "Paused",
                "fundingRateGranularity": interval_ms, "currentFundingRateGranularity": interval_ms,
                "makerFeeRate": i.maker_fee, "takerFeeRate": i.taker_fee, "predictedFundingFeeRate": None,
            })
        return {_CONTRACTS_PATH: _enc.encode({"code": _OK, "data": rows})}


def _num(x: float) -> int | float:
    """Integral values as JSON integers (contract counts), others as they are."""
    return int(x) if float(x).is_integer() and abs(x) < 2**53 else x




register(Kucoin)
