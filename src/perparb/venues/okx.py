"""OKX v5 SWAP (perpetuals).

Books: the ``books`` channel sends a snapshot (``prevSeqId`` -1) in the stream, then updates
whose ``prevSeqId`` must equal the previous ``seqId``; a keep-alive repeats the last seqId and
a maintenance reset has ``seqId < prevSeqId``, both of which still chain. On a gap, resubscribe
for a fresh snapshot. Recordings from 2022 have no seqId/prevSeqId at all (no chain to check).
``checksum`` is 0 on every frame since OKX deprecated it; 0 means "not provided".
Sizes are CONTRACTS: one is ``ctVal * ctMult`` coins on linear swaps and ``ctVal`` USD (coins =
USD / price) on inverse ones (``BTC-USD-SWAP``).
Funding: ``fundingRate`` is the rate for the upcoming settlement at ``fundingTime`` (it moves
until then); ``nextFundingRate`` is the predicted rate for the settlement after it and is ""
under ``method`` current_period, the norm now. The interval is ``nextFundingTime -
fundingTime`` (OKX shortens it for volatile contracts); 2022 messages lack nextFundingTime.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import msgspec

from perparb.feeds.booksync import Checksum, crc32_interleaved
from perparb.instruments.canonical import canonical_symbol, split_multiple
from perparb.model import Funding, Instrument, Level, MarketEvent, Quote, Trade
from perparb.venues import register
from perparb.venues.base import MS, Connection, Venue, asked_symbol, decode_error, listing, num_text
from perparb.venues.okx_family import BookData, Push, book_event, book_push, channel, frame, op, text_row

HOUR_MS = 3_600_000


class _Top(msgspec.Struct):
    # bbo-tbt: one level a side, ["px", "sz", "0", "numOrders"].
    asks: list[list[float]] = []
    bids: list[list[float]] = []
    ts: int = 0
    instId: str = ""


class _Ticker(msgspec.Struct):
    # Strings: a side with no orders arrives as "".
    instId: str = ""
    bidPx: str = ""
    bidSz: str = ""
    askPx: str = ""
    askSz: str = ""
    ts: int = 0


class _FundingRate(msgspec.Struct):
    # Strings: any of these may be "" or missing depending on the era and `method`.
    instId: str = ""
    fundingRate: str = ""
    nextFundingRate: str = ""
    fundingTime: str = ""
    nextFundingTime: str = ""
    ts: str = ""


class _Trade(msgspec.Struct):
    px: float
    sz: float
    side: str
    tradeId: str = ""
    instId: str = ""
    ts: int = 0


class _InstrumentInfo(msgspec.Struct):
    instId: str
    instType: str
    settleCcy: str = ""
    ctType: str = ""
    ctVal: str = ""
    ctMult: str = "1"
    tickSz: str = "0"
    lotSz: str = "0"
    minSz: str = "0"
    state: str = ""
    uly: str = ""
    instFamily: str = ""


def _dec(t: type) -> msgspec.json.Decoder:
    return msgspec.json.Decoder(t, strict=False)


_top, _tickers = _dec(Push[_Top]), _dec(Push[_Ticker])
_funding, _trades = _dec(Push[_FundingRate]), _dec(Push[_Trade])
_enc = msgspec.json.Encoder()

# Channel name → how its data is read; everything else (mark-price, open-interest,
# index-tickers...) carries nothing we normalize.
_KINDS = {
    b"books": "book", b"books-l2-tbt": "book", b"books50-l2-tbt": "book", b"books5": "book5",
    b"bbo-tbt": "bbo", b"tickers": "ticker", b"funding-rate": "funding", b"trades": "trade",
}
# What the simulator serves for each subscribable channel.
_SIM_TOPICS = {"bbo-tbt": "quote", "tickers": "quote", "books": "book", "funding-rate": "funding",
               "trades": "trade"}
_MAX_ARGS = 30


class Okx(Venue):
    id = "okx"
    name = "OKX SWAP"
    ws_url = "wss://ws.okx.com:8443"
    rest_url = "https://www.okx.com"
    book_sync = "in_stream"
    heartbeat_text = "ping"  # OKX closes a connection that is silent for 30 s
    heartbeat_s = 20.0
    taker_fee = 0.0005
    maker_fee = 0.0002
    metadata_paths = ("/api/v5/public/instruments?instType=SWAP",)

    # -- feed ----------------------------------------------------------------------------
    def connections(self, instruments: list[Instrument], books: bool = True) -> list[Connection]:
        channels = ("bbo-tbt", "books", "funding-rate") if books else ("bbo-tbt", "funding-rate")
        args = [{"channel": c, "instId": i.venue_symbol} for i in instruments for c in channels]
        msgs = [op("subscribe", args[k : k + _MAX_ARGS]) for k in range(0, len(args), _MAX_ARGS)]
        return [Connection(path="/ws/v5/public", subscribe=msgs, instruments=instruments)]

    def book_checksum(self) -> Checksum:
        return crc32_interleaved

    def resubscribe_book(self, inst: Instrument) -> list[str]:
        arg = [{"channel": "books", "instId": inst.venue_symbol}]
        return [op("unsubscribe", arg), op("subscribe", arg)]

    def parse(self, raw: str | bytes, recv_ns: int) -> list[MarketEvent]:
        b = frame(self.id, raw)
        if b is None or b.startswith(b'{"event"'):
            return []  # pong; subscribe acks, errors, service notices
        kind = _KINDS.get(channel(b) or b"")
        if kind is None:
            return []
        try:
            if kind == "book" or kind == "book5":
                return self._books(book_push.decode(b), kind == "book5", recv_ns)
            if kind == "bbo":
                return self._bbo(_top.decode(b), recv_ns)
            if kind == "ticker":
                return self._tickers(_tickers.decode(b), recv_ns)
            if kind == "funding":
                return self._funding(_funding.decode(b), recv_ns)
            return self._trades(_trades.decode(b), recv_ns)
        except (msgspec.DecodeError, ValueError, IndexError) as exc:
            raise decode_error(self.id, exc, b) from None

    def _books(self, msg: Push[BookData], always_snapshot: bool, recv_ns: int) -> list[MarketEvent]:
        out: list[MarketEvent] = []
        snapshot = always_snapshot or msg.action == "snapshot"
        for d in msg.data:
            sym = d.instId or msg.arg.instId
            inst = self.table.get(sym) or self.instrument(sym)
            if inst is None:
                continue
            # checksum 0 means "not provided"; only then does the book need the exact text
            out.append(book_event(self.id, inst, d, snapshot, bool(d.checksum), d.seqId or 0, d.prevSeqId,
                                  d.ts * MS, recv_ns))
        return out

    def _bbo(self, msg: Push[_Top], recv_ns: int) -> list[MarketEvent]:
        out: list[MarketEvent] = []
        for d in msg.data:
            if not d.bids or not d.asks:
                continue  # one side empty: no quote to compare
            inst = self.instrument(d.instId or msg.arg.instId)
            if inst is None:
                continue
            (bp, bq, *_), (ap, aq, *_) = d.bids[0], d.asks[0]
            out.append(Quote(
                venue=self.id, symbol=inst.symbol, venue_symbol=inst.venue_symbol,
                bid_px=inst.px(bp), bid_qty=inst.qty(bq, bp), ask_px=inst.px(ap), ask_qty=inst.qty(aq, ap),
                ts_exchange_ns=d.ts * MS, recv_ns=recv_ns,
            ))
        return out

    def _tickers(self, msg: Push[_Ticker], recv_ns: int) -> list[MarketEvent]:
        out: list[MarketEvent] = []
        for t in msg.data:
            if not (t.bidPx and t.bidSz and t.askPx and t.askSz):
                continue
            inst = self.instrument(t.instId or msg.arg.instId)
            if inst is None:
                continue
            bp, ap = float(t.bidPx), float(t.askPx)
            out.append(Quote(
                venue=self.id, symbol=inst.symbol, venue_symbol=inst.venue_symbol,
                bid_px=inst.px(bp), bid_qty=inst.qty(float(t.bidSz), bp),
                ask_px=inst.px(ap), ask_qty=inst.qty(float(t.askSz), ap),
                ts_exchange_ns=t.ts * MS, recv_ns=recv_ns,
            ))
        return out

    def _funding(self, msg: Push[_FundingRate], recv_ns: int) -> list[MarketEvent]:
        out: list[MarketEvent] = []
        for f in msg.data:
            if not f.fundingRate:
                continue
            inst = self.instrument(f.instId or msg.arg.instId)
            if inst is None:
                continue
            at = int(f.fundingTime) if f.fundingTime else 0
            after = int(f.nextFundingTime) if f.nextFundingTime else 0
            out.append(Funding(
                venue=self.id, symbol=inst.symbol, venue_symbol=inst.venue_symbol,
                rate=float(f.fundingRate),
                predicted_rate=float(f.nextFundingRate) if f.nextFundingRate else None,
                interval_h=(after - at) / HOUR_MS if at and after > at else inst.funding_interval_h,
                next_funding_ns=at * MS, ts_exchange_ns=int(f.ts) * MS if f.ts else 0, recv_ns=recv_ns,
            ))
        return out

    def _trades(self, msg: Push[_Trade], recv_ns: int) -> list[MarketEvent]:
        out: list[MarketEvent] = []
        for t in msg.data:
            inst = self.instrument(t.instId or msg.arg.instId)
            if inst is None:
                continue
            out.append(Trade(
                venue=self.id, symbol=inst.symbol, venue_symbol=inst.venue_symbol, px=inst.px(t.px),
                qty=inst.qty(t.sz, t.px), side=t.side, trade_id=t.tradeId, ts_exchange_ns=t.ts * MS,
                recv_ns=recv_ns,
            ))
        return out

    # -- metadata ------------------------------------------------------------------------
    def parse_metadata(self, path: str, raw: str | bytes) -> list[Instrument]:
        if urlsplit(path).path != "/api/v5/public/instruments":
            return []
        out = []
        for i in listing(self.id, raw, _InstrumentInfo, "data", ok={"code": "0"}):
            if i.instType != "SWAP" or not i.ctVal:
                continue  # a pre-open listing may not have its contract terms yet
            base, _, quote = (i.instFamily or i.uly).partition("-")
            asset, scale = split_multiple(base)
            try:
                out.append(Instrument(
                    venue=self.id, venue_symbol=i.instId, symbol=canonical_symbol(asset, quote, i.settleCcy),
                    asset=asset, quote=quote, settle=i.settleCcy, inverse=i.ctType == "inverse",
                    contract_size=float(i.ctVal) * float(i.ctMult or 1), price_scale=scale,
                    tick_size=float(i.tickSz), lot_size=float(i.lotSz), min_qty=float(i.minSz),
                    taker_fee=self.taker_fee, maker_fee=self.maker_fee, funding_interval_h=8.0,
                    status="active" if i.state == "live" else "inactive", source=self.id,
                ))
            except ValueError as exc:
                raise decode_error(self.id, ValueError(f"{i.instId}: {exc}"), raw) from None
        return out

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
        replies, topics = [], []
        for arg in msg.get("args", []):
            replies.append(_enc.encode({"event": op, "arg": arg, "connId": "sim"}).decode())
            kind = _SIM_TOPICS.get(arg.get("channel", ""))
            if op == "subscribe" and kind:
                topics.append((kind, arg.get("instId", "")))
        return replies, topics

    def sim_quote(self, inst: Instrument, bid: Level, ask: Level, seq: int, ts_ms: int) -> str:
        d = {"asks": [_row(ask)], "bids": [_row(bid)], "ts": str(ts_ms), "seqId": seq}
        return _enc.encode({"arg": {"channel": "bbo-tbt", "instId": inst.venue_symbol}, "data": [d]}).decode()

    def sim_book(self, inst: Instrument, snapshot: bool, bids: list[Level], asks: list[Level],
                 seq: int, prev_seq: int, first_seq: int, ts_ms: int) -> str:
        d = {"asks": [_row(a) for a in asks], "bids": [_row(b) for b in bids], "ts": str(ts_ms),
             "checksum": 0, "prevSeqId": -1 if snapshot else prev_seq, "seqId": seq}
        return _enc.encode({"arg": {"channel": "books", "instId": inst.venue_symbol},
                            "action": "snapshot" if snapshot else "update", "data": [d]}).decode()

    def sim_funding(self, inst: Instrument, rate: float, next_ms: int, mark: float, index: float,
                    ts_ms: int, full: bool = True) -> str:
        s = inst.venue_symbol
        d = {"instType": "SWAP", "instId": s, "fundingRate": num_text(rate), "fundingTime": str(next_ms),
             "nextFundingRate": "", "method": "current_period",
             "nextFundingTime": str(next_ms + round(inst.funding_interval_h * HOUR_MS)), "ts": str(ts_ms)}
        return _enc.encode({"arg": {"channel": "funding-rate", "instId": s}, "data": [d]}).decode()

    def sim_rest_book(self, path: str) -> str | None:
        return asked_symbol(path, "/api/v5/market/books", "instId")

    def sim_rest_book_body(self, inst: Instrument, bids: list[Level], asks: list[Level], seq: int,
                           ts_ms: int) -> bytes:
        return _enc.encode({"code": "0", "msg": "", "data": [{
            "asks": [_row(a) for a in asks], "bids": [_row(b) for b in bids], "ts": str(ts_ms)}]})

    def sim_rest_funding(self, path: str) -> str | None:
        return asked_symbol(path, "/api/v5/public/funding-rate", "instId")

    def sim_rest_funding_body(self, inst: Instrument, rate: float, next_ms: int, mark: float, index: float,
                              ts_ms: int) -> bytes:
        step = int(inst.funding_interval_h * HOUR_MS)
        return _enc.encode({"code": "0", "msg": "", "data": [{
            "instType": "SWAP", "instId": inst.venue_symbol, "fundingRate": num_text(rate), "nextFundingRate": "",
            "fundingTime": str(next_ms), "nextFundingTime": str(next_ms + step), "method": "current_period",
            "ts": str(ts_ms)}]})

    def sim_metadata(self, instruments: list[Instrument]) -> dict[str, bytes]:
        data = []
        for i in instruments:
            base = i.venue_symbol.split("-")[0]
            data.append({
                "instType": "SWAP", "instId": i.venue_symbol, "uly": f"{base}-{i.quote}",
                "instFamily": f"{base}-{i.quote}", "settleCcy": i.settle,
                "ctType": "inverse" if i.inverse else "linear", "ctVal": num_text(i.contract_size), "ctMult": "1",
                "ctValCcy": i.quote if i.inverse else base, "tickSz": num_text(i.tick_size),
                "lotSz": num_text(i.lot_size), "minSz": num_text(i.min_qty),
                "state": "live" if i.status == "active" else "suspend",
            })
        return {self.metadata_paths[0]: _enc.encode({"code": "0", "msg": "", "data": data})}


def _row(level: Level) -> list[str]:
    return text_row(level, "0", "1")




register(Okx)
