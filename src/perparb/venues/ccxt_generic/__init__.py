"""Any ccxt exchange as a venue: ids ``ccxt:<exchange id>`` (``ccxt:bingx``), built on demand.

ccxt.pro speaks each exchange's protocol and hands back parsed structures, not wire text.
The transport (``transport.py``) calls ``watch_order_book`` / ``watch_bids_asks`` (else
``watch_ticker``) / ``watch_funding_rate`` (else polls ``fetch_funding_rate``) where
``exchange.has`` says so, and hands the engine one compact JSON text per result, tagged
by ``watch``; that text is the raw message ``parse`` reads and captures record:

- ``{"watch":"order_book","symbol":..,"timestamp":..,"nonce":..,"bids":[[px,amount],..],"asks":..}``
- ``{"watch":"ticker","symbol":..,"timestamp":..,"bid":..,"bidVolume":..,"ask":..,"askVolume":..}``
- ``{"watch":"funding_rate","symbol":..,"timestamp":..,"fundingRate":..,"fundingTimestamp":..,
  "nextFundingRate":..,"interval":"8h","markPrice":..,"indexPrice":..}``

Metadata is ``load_markets`` (recorded under the path ``load_markets``) reduced to the swap
markets: ``{"precisionMode":4,"markets":[{id,symbol,base,quote,settle,...}]}``.

Books: ccxt keeps each book in sync itself (the exchange's own rule: REST snapshot bridge,
sequence or checksum) and every ``watch_order_book`` result is the whole book, so the family
is ``full``: each one is a ``BookSnapshot`` (``seq`` = ccxt's ``nonce``) with no chain to check.
Quantities: ccxt order-book and ticker amounts are in the exchange's own unit, contracts for
contract markets, so qty = amount * ``contractSize`` (inverse: amount * contractSize USD / price);
``1000PEPE/USDT:USDT`` is PEPE scaled by 1000 (``split_multiple`` of the base).
Funding: ccxt's ``fundingRate`` is the rate for the settlement at ``fundingTimestamp``;
``nextFundingRate`` (where the exchange gives one) the predicted one after it; ``interval``
(``"8h"``) gives the interval; without it the instrument's, which stays 8 h because ccxt's
unified market carries no funding interval.
``venue_symbol`` is ccxt's unified symbol (``1000PEPE/USDT:USDT``); ``symbol`` the canonical one.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from perparb.instruments.canonical import canonical_symbol, split_multiple
from perparb.model import BookSnapshot, Funding, Instrument, MarketEvent, Quote
from perparb.venues import register_factory
from perparb.venues.base import MS, Connection, Venue, decode_error

if TYPE_CHECKING:
    from perparb.venues.ccxt_generic.transport import CcxtTransport

PREFIX = "ccxt:"
METADATA_PATH = "load_markets"
TICK_SIZE, DECIMAL_PLACES = 4, 2  # ccxt precision modes
_INTERVAL = re.compile(r"^(\d+(?:\.\d+)?)([mhd])$")
_UNIT_H = {"m": 1 / 60, "h": 1.0, "d": 24.0}


class _Book(msgspec.Struct, tag_field="watch", tag="order_book"):
    symbol: str
    bids: list[tuple[float, float]]
    asks: list[tuple[float, float]]
    timestamp: int | None = None
    nonce: int | None = None


class _Ticker(msgspec.Struct, tag_field="watch", tag="ticker"):
    symbol: str
    timestamp: int | None = None
    bid: float | None = None
    bidVolume: float | None = None
    ask: float | None = None
    askVolume: float | None = None


class _FundingRate(msgspec.Struct, tag_field="watch", tag="funding_rate"):
    symbol: str
    timestamp: int | None = None
    fundingRate: float | None = None
    fundingTimestamp: int | None = None
    nextFundingRate: float | None = None
    interval: str | None = None
    markPrice: float | None = None
    indexPrice: float | None = None


class _Precision(msgspec.Struct):
    price: float | None = None
    amount: float | None = None


class _MinMax(msgspec.Struct):
    min: float | None = None


class _Limits(msgspec.Struct):
    amount: _MinMax = msgspec.field(default_factory=_MinMax)
    cost: _MinMax = msgspec.field(default_factory=_MinMax)


class _Market(msgspec.Struct):
    id: str
    symbol: str
    base: str
    quote: str
    settle: str | None = None
    type: str | None = None
    swap: bool = False
    linear: bool | None = None
    inverse: bool | None = None
    contractSize: float | None = None
    active: bool | None = None
    expiry: int | None = None
    precision: _Precision = msgspec.field(default_factory=_Precision)
    limits: _Limits = msgspec.field(default_factory=_Limits)
    taker: float | None = None
    maker: float | None = None


class _Markets(msgspec.Struct):
    markets: list[_Market]
    precisionMode: int = TICK_SIZE


_message = msgspec.json.Decoder(_Book | _Ticker | _FundingRate, strict=False)
_markets = msgspec.json.Decoder(_Markets, strict=False)


def interval_hours(text: str | None) -> float | None:
    """ccxt's funding ``interval`` ("8h", "1h", "30m") in hours."""
    m = _INTERVAL.match(text or "")
    return float(m.group(1)) * _UNIT_H[m.group(2)] if m else None


def _step(value: float | None, mode: int) -> float:
    if value is None:
        return 0.0
    if mode == TICK_SIZE:
        return value
    return 10.0 ** -value if mode == DECIMAL_PLACES else 0.0


class CcxtVenue(Venue):
    """One ccxt exchange; ``make_venue`` builds the subclass for an exchange id."""

    exchange_id: ClassVar[str] = ""
    ws_url = ""  # "": ccxt's own endpoints; a value replaces the host of every ccxt websocket URL
    rest_url = ""  # likewise for REST URLs (the simulator, a testnet)
    book_sync = "full"
    heartbeat_text = None  # ccxt keeps each exchange's heartbeat
    silence_s = 60.0
    metadata_paths = (METADATA_PATH,)
    sim_has_sequence = False
    funding_poll_s: ClassVar[float] = 60.0  # where funding cannot be watched, it is fetched this often

    def transport(self, ws_url: str, rest_url: str) -> CcxtTransport:
        from perparb.venues.ccxt_generic.transport import CcxtTransport

        return CcxtTransport(self.exchange_id, ws_url, rest_url, funding_poll_s=self.funding_poll_s)

    # -- feed ----------------------------------------------------------------------------
    def connections(self, instruments: list[Instrument], books: bool = True) -> list[Connection]:
        # One "connection" per venue: ccxt multiplexes its own sockets. Without books the
        # top of book comes from bids/asks or tickers.
        kinds = ("order_book", "funding_rate") if books else ("ticker", "funding_rate")
        msgs = [_watch(k, i.venue_symbol) for i in instruments for k in kinds]
        return [Connection(path="", subscribe=msgs, instruments=instruments)]

    def parse(self, raw: str | bytes, recv_ns: int) -> list[MarketEvent]:
        try:
            m = _message.decode(raw)
        except msgspec.DecodeError as exc:
            raise decode_error(self.id, exc, raw) from None
        inst = self.instrument(m.symbol)
        if inst is None:
            return []
        t = type(m)
        if t is _Book:
            b: _Book = m
            px, qty = inst.px, inst.qty
            return [BookSnapshot(
                venue=self.id, symbol=inst.symbol, venue_symbol=b.symbol,
                bids=[(px(p), qty(a, p)) for p, a in b.bids], asks=[(px(p), qty(a, p)) for p, a in b.asks],
                seq=b.nonce or 0, ts_exchange_ns=(b.timestamp or 0) * MS, recv_ns=recv_ns,
            )]
        if t is _Ticker:
            k: _Ticker = m
            if k.bid is None or k.ask is None or k.bidVolume is None or k.askVolume is None:
                return []  # no two-sided top of book in this ticker
            return [Quote(self.id, inst.symbol, k.symbol, inst.px(k.bid), inst.qty(k.bidVolume, k.bid),
                          inst.px(k.ask), inst.qty(k.askVolume, k.ask), (k.timestamp or 0) * MS, recv_ns)]
        f: _FundingRate = m
        if f.fundingRate is None or not f.fundingTimestamp:
            return []
        return [Funding(
            venue=self.id, symbol=inst.symbol, venue_symbol=f.symbol, rate=f.fundingRate,
            predicted_rate=f.nextFundingRate, interval_h=interval_hours(f.interval) or inst.funding_interval_h,
            next_funding_ns=f.fundingTimestamp * MS,
            mark_px=inst.px(f.markPrice) if f.markPrice is not None else None,
            index_px=inst.px(f.indexPrice) if f.indexPrice is not None else None,
            ts_exchange_ns=(f.timestamp or 0) * MS, recv_ns=recv_ns,
        )]

    # -- metadata ------------------------------------------------------------------------
    def parse_metadata(self, path: str, raw: str | bytes) -> list[Instrument]:
        if path != METADATA_PATH:
            return []
        try:
            body = _markets.decode(raw)
        except msgspec.DecodeError as exc:
            raise decode_error(self.id, exc, raw) from None
        out = []
        for m in body.markets:
            if not m.swap or m.expiry is not None or not m.settle:
                continue  # spot, dated futures, options
            asset, scale = split_multiple(m.base)
            prev = self.table.get(m.symbol)
            out.append(Instrument(
                venue=self.id, venue_symbol=m.symbol, symbol=canonical_symbol(asset, m.quote, m.settle),
                asset=asset, quote=m.quote, settle=m.settle, inverse=bool(m.inverse),
                contract_size=m.contractSize or 1.0, price_scale=scale,
                tick_size=_step(m.precision.price, body.precisionMode),
                lot_size=_step(m.precision.amount, body.precisionMode),
                min_qty=m.limits.amount.min or 0.0, min_notional=m.limits.cost.min or 0.0,
                taker_fee=self.taker_fee if m.taker is None else m.taker,
                maker_fee=self.maker_fee if m.maker is None else m.maker,
                funding_interval_h=prev.funding_interval_h if prev else 8.0,
                status="inactive" if m.active is False else "active", source=self.id,
            ))
        return out


def _watch(kind: str, symbol: str) -> str:
    return msgspec.json.encode({"op": "watch", "watch": kind, "symbol": symbol}).decode()


def make_venue(exchange_id: str) -> type[CcxtVenue]:
    """The venue class for one ccxt exchange id (KeyError when ccxt.pro has no such exchange)."""
    import ccxt
    import ccxt.pro

    if exchange_id not in getattr(ccxt.pro, "exchanges", ()):
        raise KeyError(f"ccxt.pro has no exchange {exchange_id!r}")
    ex = getattr(ccxt, exchange_id)()  # the REST class: name and fees, no session
    trading = (ex.fees or {}).get("trading", {})
    attrs: dict[str, Any] = {
        "id": f"{PREFIX}{exchange_id}", "name": f"{ex.name} (ccxt)", "exchange_id": exchange_id,
        # ccxt's exchange-wide default fees (a fallback: each market carries its own taker/maker).
        "taker_fee": float(trading.get("taker") or CcxtVenue.taker_fee),
        "maker_fee": float(trading.get("maker") or CcxtVenue.maker_fee),
    }
    return type(f"Ccxt_{exchange_id}", (CcxtVenue,), attrs)


register_factory(PREFIX, make_venue)
