"""KuCoin futures adapter against recorded messages.

Expected values are computed here from the raw JSON with the json module, never taken from
the adapter. Most tests use ``CONTRACTS`` below, written in the /api/v1/contracts/active shape
(XBTUSDTM 0.001 BTC and XBTUSDM 1 USD per contract as KuCoin documents them; MYROUSDTM a
stand-in size so its recorded level2 sequence can be replayed). The recorded contract objects
(RECORDED_CONTRACTS, in the bundled snapshot) list XBTUSDTM and XBTUSDM but not MYROUSDTM,
SOLUSDTM or AUCTIONUSDTM, which therefore stay unknown symbols against the bundled map.
"""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta

import msgspec
import pytest

from conftest import check_events, fixture_files, fixture_lines
from conftest import same as _same
from perparb.config import load_settings
from perparb.feeds.booksync import SYNCED, SyncedBook
from perparb.instruments.registry import Registry
from perparb.instruments.snapshot import load_registry
from perparb.model import BookDelta, BookSnapshot, Funding, Instrument, Quote, Trade
from perparb.sim.server import Simulator
from perparb.venues import venue_class
from perparb.venues.base import Connection, DecodeError
from perparb.venues.kucoin import Kucoin

META_PATH = "/api/v1/contracts/active"
MS = 1_000_000
RECV = 123
REL = 1e-12
TARDIS = "tardis-node-tests_kucoin-futures_2024-01_samples.jsonl"

CONTRACTS = {"code": "200000", "data": [
    {"symbol": "XBTUSDTM", "rootSymbol": "USDT", "type": "FFWCSX", "baseCurrency": "XBT", "quoteCurrency": "USDT",
     "settleCurrency": "USDT", "multiplier": 0.001, "lotSize": 1, "tickSize": 0.1, "isInverse": False,
     "status": "Open", "fundingRateGranularity": 28800000, "makerFeeRate": 0.0002, "takerFeeRate": 0.0006},
    {"symbol": "ETHUSDTM", "rootSymbol": "USDT", "type": "FFWCSX", "baseCurrency": "ETH", "quoteCurrency": "USDT",
     "settleCurrency": "USDT", "multiplier": 0.01, "lotSize": 1, "tickSize": 0.01, "isInverse": False,
     "status": "Open", "fundingRateGranularity": 28800000, "makerFeeRate": 0.0002, "takerFeeRate": 0.0006},
    {"symbol": "XBTUSDM", "rootSymbol": "XBT", "type": "FFWCSX", "baseCurrency": "XBT", "quoteCurrency": "USD",
     "settleCurrency": "XBT", "multiplier": -1, "lotSize": 1, "tickSize": 1, "isInverse": True, "status": "Open",
     "fundingRateGranularity": 28800000},
    {"symbol": "MYROUSDTM", "rootSymbol": "USDT", "type": "FFWCSX", "baseCurrency": "MYRO", "quoteCurrency": "USDT",
     "settleCurrency": "USDT", "multiplier": 10, "lotSize": 1, "tickSize": 0.00001, "isInverse": False,
     "status": "Open", "fundingRateGranularity": 14400000, "currentFundingRateGranularity": 28800000},
    {"symbol": "XBTMH24", "rootSymbol": "XBT", "type": "FFICSX", "baseCurrency": "XBT", "quoteCurrency": "USD",
     "settleCurrency": "XBT", "multiplier": -1, "lotSize": 1, "tickSize": 1, "isInverse": True, "status": "Open"},
    {"symbol": "LUNAUSDTM", "rootSymbol": "USDT", "type": "FFWCSX", "baseCurrency": "LUNA", "quoteCurrency": "USDT",
     "settleCurrency": "USDT", "multiplier": 1, "lotSize": 1, "tickSize": 0.0001, "isInverse": False,
     "status": "Paused", "fundingRateGranularity": 28800000},
]}
CONTRACTS_RAW = json.dumps(CONTRACTS).encode()
SPECS = {c["symbol"]: c for c in CONTRACTS["data"] if c["type"] == "FFWCSX"}


def _canonical(sym: str, specs: dict = SPECS) -> str:
    c = specs[sym]
    base = {"XBT": "BTC"}.get(c["baseCurrency"], c["baseCurrency"])
    settle = {"XBT": "BTC"}.get(c["settleCurrency"], c["settleCurrency"])
    return f"{base}/{c['quoteCurrency']}:{settle}"


def _qty(sym: str, px: float, contracts: float, specs: dict = SPECS) -> float:
    c = specs[sym]
    return contracts * abs(c["multiplier"]) / px if c["isInverse"] else contracts * c["multiplier"]


def _to_ns(t: int) -> int:
    return t if t > 10**17 else t * MS  # ns fields are 19 digits, ms fields 13


def _next_settlement_ns(ts_ms: int, hours: float = 8.0) -> int:
    """KuCoin settles at 04:00, 12:00 and 20:00 UTC: the first such time after ts."""
    t = datetime.fromtimestamp(ts_ms / 1000, UTC)
    slot = datetime(t.year, t.month, t.day, 4, tzinfo=UTC) - timedelta(days=1)
    while slot <= t:
        slot += timedelta(hours=hours)
    return int(slot.timestamp()) * 1_000_000_000


@pytest.fixture
def venue() -> Kucoin:
    v = Kucoin(Registry())
    v.registry.add_many(v.parse_metadata(META_PATH, CONTRACTS_RAW))
    return v


class _Expect:
    """The events one recorded message should give, from its JSON alone."""

    def __init__(self, specs: dict = SPECS) -> None:
        self.funding: dict[str, dict[str, float]] = {}
        self.specs = specs

    def __call__(self, msg: dict) -> tuple[list[tuple[type, dict]], list[str]]:
        topic = msg.get("topic")
        if not topic:
            return [], []
        chan, _, sym = topic.partition(":")
        d = msg["data"]
        sym = d.get("symbol", sym)
        known = ("/contractMarket/level2", "/contractMarket/tickerV2", "/contractMarket/level2Depth5",
                 "/contractMarket/execution", "/contract/instrument")
        if chan not in known:
            return [], []
        if sym not in self.specs:
            return [], [sym]
        common = {"venue": "kucoin", "venue_symbol": sym, "symbol": _canonical(sym, self.specs), "recv_ns": RECV}
        if chan == "/contractMarket/level2":
            px_s, side, sz = d["change"].split(",")
            level = [(float(px_s), _qty(sym, float(px_s), float(sz), self.specs))]
            return [(BookDelta, {**common, "bids": level if side == "buy" else [],
                                 "asks": level if side == "sell" else [], "first_seq": d["sequence"],
                                 "seq": d["sequence"], "prev_seq": d["sequence"] - 1,
                                 "ts_exchange_ns": d["timestamp"] * MS})], []
        if chan == "/contractMarket/tickerV2":
            bp, ap = float(d["bestBidPrice"]), float(d["bestAskPrice"])
            return [(Quote, {**common, "bid_px": bp, "bid_qty": _qty(sym, bp, d["bestBidSize"], self.specs), "ask_px": ap,
                             "ask_qty": _qty(sym, ap, d["bestAskSize"], self.specs), "ts_exchange_ns": _to_ns(d["ts"])})], []
        if chan == "/contractMarket/level2Depth5":
            def side(rows: list) -> list[tuple[float, float]]:
                return [(float(p), _qty(sym, float(p), float(q), self.specs)) for p, q in rows]
            return [(BookSnapshot, {**common, "bids": side(d["bids"]), "asks": side(d["asks"]),
                                    "seq": d.get("sequence", 0),
                                    "ts_exchange_ns": _to_ns(d.get("timestamp") or d["ts"])})], []
        if chan == "/contractMarket/execution":
            px = float(d["price"])
            return [(Trade, {**common, "px": px, "qty": _qty(sym, px, d["size"], self.specs), "side": d["side"],
                             "trade_id": d["tradeId"], "ts_exchange_ns": d["ts"]})], []
        st = self.funding.setdefault(sym, {})
        if msg["subject"] == "funding.rate":
            if d["granularity"] != 60000:  # a settled rate: no upcoming-rate event
                return [], []
            st["rate"] = d["fundingRate"]
        elif msg["subject"] == "mark.index.price":
            st["mark"], st["index"] = d["markPrice"], d["indexPrice"]
        if "rate" not in st:
            return [], []
        hours = self.specs[sym]["fundingRateGranularity"] / 3_600_000
        return [(Funding, {**common, "rate": st["rate"], "predicted_rate": None, "interval_h": hours,
                           "next_funding_ns": _next_settlement_ns(d["timestamp"], hours),
                           "mark_px": st.get("mark"), "index_px": st.get("index"),
                           "ts_exchange_ns": d["timestamp"] * MS})], []




MESSAGE_FILES = [p for p in fixture_files("kucoin") if "_rest_" not in p.name]  # streams; metadata apart
RECORDED_CONTRACTS = "ccxt-static-markets_2023-2025_rest_api_v1_contracts_active_INFO-EXTRACTED_excerpt.jsonl"


def test_fixture_set_is_what_this_test_expects() -> None:
    assert [p.name for p in MESSAGE_FILES] == [
        "DOCEXAMPLE_JKorf-Kucoin.Net_futures_tickerV2_level2_level2Depth5_instrument.jsonl",
        "crypto-msg-parser-tests_kucoin-futures_2021-2022_samples.jsonl", TARDIS]
    assert [p.name for p in fixture_files("kucoin") if "_rest_" in p.name] == [RECORDED_CONTRACTS]


# Named in the recorded streams but in no recorded contracts response: their multiplier is
# unknown, so they are reported, never decoded with a guessed size.
UNLISTED = {"MYROUSDTM", "SOLUSDTM", "AUCTIONUSDTM"}


@pytest.mark.parametrize("path", MESSAGE_FILES, ids=lambda p: p.name)
def test_every_recorded_message_decodes_with_the_bundled_snapshot(path) -> None:
    """The recorded streams against the real contracts (multipliers) of the bundled map:
    XBTUSDTM 0.001 BTC and the inverse XBTUSDM 1 USD, as the recorded contract objects say."""
    [raw] = fixture_lines("kucoin", RECORDED_CONTRACTS)
    real = {c["symbol"]: c for c in json.loads(raw)}
    venue = Kucoin(load_registry())
    expect = _Expect(real)
    decoded = 0
    for n, line in enumerate(fixture_lines("kucoin", path.name), 1):
        expected, unknown = expect(json.loads(line))
        where = f"{path.name}:{n}"
        check_events(venue.parse(line, RECV), expected, where)
        problems = venue.take_problems()
        assert set(unknown) <= UNLISTED and len(problems) == len(unknown), (where, problems)
        decoded += len(expected)
    assert decoded > 0


def test_recorded_trade_qty_is_contracts_times_the_recorded_multiplier() -> None:
    [raw] = fixture_lines("kucoin", RECORDED_CONTRACTS)
    real = {c["symbol"]: c for c in json.loads(raw)}
    lines = fixture_lines("kucoin", "crypto-msg-parser-tests_kucoin-futures_2021-2022_samples.jsonl")
    venue = Kucoin(load_registry())
    matches = [json.loads(ln) for ln in lines if json.loads(ln).get("subject") == "match"]
    assert {m["data"]["symbol"] for m in matches} == {"XBTUSDTM", "XBTUSDM"}
    for msg in matches:
        line = json.dumps(msg)
        d = msg["data"]
        [trade] = venue.parse(line, 0)
        c = real[d["symbol"]]
        px = float(d["price"])
        want = d["size"] / px if c["isInverse"] else d["size"] * c["multiplier"]  # inverse: 1 USD contracts
        assert c["multiplier"] == (-1 if c["isInverse"] else 0.001)
        assert trade.qty == pytest.approx(want, rel=REL) and trade.px == px


@pytest.mark.parametrize("path", MESSAGE_FILES, ids=lambda p: p.name)
def test_every_recorded_message(venue: Kucoin, path) -> None:
    expect = _Expect()
    for n, line in enumerate(fixture_lines("kucoin", path.name), 1):
        expected, unknown = expect(json.loads(line))
        events = venue.parse(line, RECV)
        problems = venue.take_problems()
        where = f"{path.name}:{n}"
        assert [type(e) for e in events] == [t for t, _ in expected], where
        for ev, (_, fields) in zip(events, expected, strict=True):
            for key, value in fields.items():
                assert _same(getattr(ev, key), value), f"{where} {key}: {getattr(ev, key)!r} != {value!r}"
        assert len(problems) == len(unknown), (where, problems)
        for sym, text in zip(unknown, problems, strict=True):
            assert sym in text and "kucoin" in text, where


def test_recordings_cover_every_event_type(venue: Kucoin) -> None:
    seen = {type(e) for p in MESSAGE_FILES for line in fixture_lines("kucoin", p.name) for e in venue.parse(line, 0)}
    assert seen == {Quote, BookSnapshot, BookDelta, Funding, Trade}


def test_hand_checked_values(venue: Kucoin) -> None:
    lines = fixture_lines("kucoin", "crypto-msg-parser-tests_kucoin-futures_2021-2022_samples.jsonl")
    [trade] = venue.parse(lines[0], 0)  # XBTUSDTM: 16 contracts of 0.001 BTC at 57850
    assert (trade.px, trade.qty, trade.side, trade.symbol) == (57850.0, 0.016, "buy", "BTC/USDT:USDT")
    [inverse] = venue.parse(lines[1], 0)  # XBTUSDM: 5000 USD at 57798
    assert inverse.qty == pytest.approx(5000 / 57798, rel=REL) and inverse.symbol == "BTC/USD:BTC"
    [quote] = venue.parse(lines[7], 0)  # tickerV2 XBTUSDTM, prices as strings, ts in ns
    assert (quote.bid_px, quote.ask_px) == (31766.0, 31767.0)
    assert quote.bid_qty == pytest.approx(20.074, rel=REL)
    assert quote.ts_exchange_ns == 1654032807465857723


def test_funding_rate_semantics(venue: Kucoin) -> None:
    lines = [json.loads(x) for x in fixture_lines("kucoin", TARDIS)]
    events = [venue.parse(json.dumps(m), 0) for m in lines]
    rates = [(m["data"]["granularity"], ev) for m, ev in zip(lines, events, strict=True)
             if m.get("subject") == "funding.rate"]
    # The real-time (1-minute) rate is the upcoming one; the 8-hour one is a settled record.
    assert [len(ev) for g, ev in rates if g == 60000] == [1, 1]
    assert all(ev == [] for g, ev in rates if g == 28800000)
    f = events[-1][0]
    assert (f.rate, f.predicted_rate, f.interval_h) == (0.000032, None, 8.0)
    # 2024-01-24 04:00:00 UTC is a settlement; the next one is 12:00.
    assert f.ts_exchange_ns == 1706068800000 * MS and f.next_funding_ns == (1706068800000 + 8 * 3_600_000) * MS
    assert (f.mark_px, f.index_px) == (39612.67, 39618.0)  # from the last mark.index.price


def test_funding_grid_follows_metadata_and_settlements() -> None:
    v = Kucoin(Registry())
    body = json.loads(CONTRACTS_RAW)
    body["data"][0]["nextFundingRateDateTime"] = 1706083200000  # 08:00 UTC: a 00/08/16 grid
    v.registry.add_many(v.parse_metadata(META_PATH, json.dumps(body)))
    msg = {"topic": "/contract/instrument:XBTUSDTM", "type": "message", "subject": "funding.rate",
           "data": {"granularity": 60000, "fundingRate": 0.0001, "timestamp": 1706068800000}}
    [f] = v.parse(json.dumps(msg), 0)
    assert f.next_funding_ns == 1706083200000 * MS
    settled = {**msg, "data": {"granularity": 28800000, "fundingRate": 0.0001, "timestamp": 1706072400000}}
    assert v.parse(json.dumps(settled), 0) == []  # a settlement at 05:00 moves the grid
    later = {**msg, "data": {**msg["data"], "timestamp": 1706076000000}}  # 06:00
    [g] = v.parse(json.dumps(later), 0)
    assert g.next_funding_ns == (1706072400000 + 8 * 3_600_000) * MS


def test_interval_comes_from_current_granularity(venue: Kucoin) -> None:
    assert venue.table["MYROUSDTM"].funding_interval_h == 8.0  # current 8 h wins over the next 4 h
    assert venue.table["XBTUSDTM"].funding_interval_h == 8.0


# -- books -----------------------------------------------------------------------------------
def _myro_changes() -> list[bytes]:
    return [x for x in fixture_lines("kucoin", TARDIS) if b"/contractMarket/level2:MYROUSDTM" in x]


def _rest_body(seq: int, bids: list, asks: list) -> bytes:
    return json.dumps({"code": "200000", "data": {"symbol": "MYROUSDTM", "sequence": seq, "bids": bids,
                                                  "asks": asks, "ts": 1705708800008000000}}).encode()


def test_recorded_level2_sequence_replays_without_resync(venue: Kucoin) -> None:
    raw = _myro_changes()
    msgs = [json.loads(x) for x in raw]
    seqs = [m["data"]["sequence"] for m in msgs]
    assert seqs[1:] == [seqs[1], seqs[1] + 1, seqs[1] + 2]  # the recorded run is contiguous
    sb = SyncedBook(Kucoin.book_sync)
    for x in raw:  # before the snapshot: buffered
        for ev in venue.parse(x, 0):
            assert sb.on_delta(ev)
    # No REST snapshot is recorded: one taken just before the contiguous run, in its shape.
    # (The recording has a bid change at 0.3, above the 0.2166 ask it removes: trimmed data.)
    snap_bids, snap_asks = [[0.2, 5]], [[0.2166, 7], [0.31, 2]]
    [snap] = venue.parse_rest("/api/v1/level2/snapshot?symbol=MYROUSDTM",
                              _rest_body(seqs[1] - 1, snap_bids, snap_asks), 0)
    assert type(snap) is BookSnapshot and snap.seq == seqs[1] - 1
    assert sb.on_snapshot(snap) and sb.state == SYNCED
    assert (sb.gaps, sb.resyncs) == (0, 0)
    # Independent rebuild: the snapshot, then each change after it (the older one is dropped).
    book = {("buy", float(p)): float(q) for p, q in snap_bids} | {("sell", float(p)): float(q) for p, q in snap_asks}
    for m in msgs[1:]:
        p, side, q = m["data"]["change"].split(",")
        book[(side, float(p))] = float(q)
    want_bids = sorted(((p, _qty("MYROUSDTM", p, q)) for (s, p), q in book.items() if s == "buy" and q), reverse=True)
    want_asks = sorted((p, _qty("MYROUSDTM", p, q)) for (s, p), q in book.items() if s == "sell" and q)
    assert _same(sb.book.bids.top(100), want_bids) and _same(sb.book.asks.top(100), want_asks)
    assert sb.seq == seqs[-1]


def test_lost_change_breaks_the_chain(venue: Kucoin) -> None:
    raw = _myro_changes()
    first = json.loads(raw[1])["data"]["sequence"]
    sb = SyncedBook(Kucoin.book_sync)
    [snap] = venue.parse_rest("/api/v1/level2/snapshot?symbol=MYROUSDTM", _rest_body(first - 1, [], []), 0)
    assert sb.on_snapshot(snap)
    [d1] = venue.parse(raw[1], 0)
    [d3] = venue.parse(raw[3], 0)
    assert sb.on_delta(d1)
    assert not sb.on_delta(d3) and sb.gaps == 1


def test_snapshot_too_new_for_the_buffer_breaks_the_bridge(venue: Kucoin) -> None:
    raw = _myro_changes()
    last = json.loads(raw[-1])["data"]["sequence"]
    sb = SyncedBook(Kucoin.book_sync)
    [d] = venue.parse(raw[-1], 0)
    [snap] = venue.parse_rest("/api/v1/level2/snapshot?symbol=MYROUSDTM", _rest_body(last - 5, [], []), 0)
    sb.on_delta(d)
    assert not sb.on_snapshot(snap) and sb.gaps == 1


def test_rest_snapshot_paths_and_errors(venue: Kucoin) -> None:
    inst = venue.table["XBTUSDTM"]
    assert venue.book_snapshot_path(inst) == "/api/v1/level2/snapshot?symbol=XBTUSDTM"
    assert venue.parse_rest("/api/v1/level2/depth20?symbol=XBTUSDTM", b"{}", 0) == []
    with pytest.raises(DecodeError, match="kucoin"):
        venue.parse_rest("/api/v1/level2/snapshot?symbol=XBTUSDTM", b'{"code":"400100","msg":"bad"}', 0)
    with pytest.raises(DecodeError, match="kucoin"):
        venue.parse_rest("/api/v1/level2/snapshot?symbol=XBTUSDTM", b'{"code":"200000","data":{"bids":[]}}', 0)
    assert venue.parse_rest("/api/v1/level2/snapshot?symbol=NOPEUSDTM", b"{}", 0) == []
    assert "NOPEUSDTM" in venue.take_problems()[0]


# -- other messages --------------------------------------------------------------------------
def test_control_messages_give_nothing(venue: Kucoin) -> None:
    for raw in (b'{"id":"hQvf8jkno","type":"welcome"}', b'{"id":"1","type":"ack"}',
                b'{"id":"perparb","type":"pong","timestamp":1706068800000}'):
        assert venue.parse(raw, 0) == []
    assert venue.take_problems() == []
    assert venue.parse(b'{"id":"3","type":"error","code":404,"data":"topic /contractMarket/x is not found"}', 0) == []
    [problem] = venue.take_problems()
    assert "404" in problem and "kucoin" in problem


def test_unknown_symbol_gives_no_event_and_a_problem(venue: Kucoin) -> None:
    raw = (b'{"topic":"/contractMarket/tickerV2:NOPEUSDTM","type":"message","subject":"tickerV2","data":'
           b'{"symbol":"NOPEUSDTM","sequence":1,"bestBidSize":1,"bestBidPrice":"1.0","bestAskPrice":"1.1",'
           b'"bestAskSize":1,"ts":1706068800000000000}}')
    assert venue.parse(raw, 0) == []
    assert venue.take_problems() == ["unknown symbol 'NOPEUSDTM' on kucoin"]


@pytest.mark.parametrize("raw", [
    fixture_lines("kucoin", TARDIS)[1][:-30],
    b'{"topic":"/contractMarket/level2:XBTUSDTM","subject":"level2","data":{"sequence":5,"change":"abc,buy,1"}}',
    b'{"topic":"/contractMarket/level2:XBTUSDTM","subject":"level2","data":{"sequence":5,"change":"1,up,1"}}',
    b'{"topic":"/contractMarket/level2:XBTUSDTM","subject":"level2","data":{"sequence":5,"change":"1,buy"}}',
    b'{"topic":"/contractMarket/tickerV2:XBTUSDTM","subject":"tickerV2","data":{"symbol":"XBTUSDTM",'
    b'"bestBidPrice":"x","bestAskPrice":"1","bestBidSize":1,"bestAskSize":1,"ts":1}}',
    b'{"topic":"/contract/instrument:XBTUSDTM","subject":"funding.rate","data":{"granularity":60000}}',
    b"<html>bad gateway</html>",
])
def test_malformed_raises_decode_error(venue: Kucoin, raw: bytes) -> None:
    with pytest.raises(DecodeError, match="kucoin"):
        venue.parse(raw, 0)


# -- metadata ------------------------------------------------------------------------------
def test_metadata_fields(venue: Kucoin) -> None:
    assert sorted(venue.table) == ["ETHUSDTM", "LUNAUSDTM", "MYROUSDTM", "XBTUSDM", "XBTUSDTM"]  # no dated XBTMH24
    btc = venue.table["XBTUSDTM"]
    assert (btc.symbol, btc.asset, btc.quote, btc.settle, btc.inverse, btc.contract_size) == (
        "BTC/USDT:USDT", "BTC", "USDT", "USDT", False, 0.001)
    assert (btc.tick_size, btc.lot_size, btc.min_qty, btc.taker_fee, btc.maker_fee, btc.status) == (
        0.1, 1.0, 1.0, 0.0006, 0.0002, "active")
    inv = venue.table["XBTUSDM"]
    assert (inv.symbol, inv.settle, inv.inverse, inv.contract_size) == ("BTC/USD:BTC", "BTC", True, 1.0)
    assert venue.table["LUNAUSDTM"].status == "inactive"
    for sym in SPECS:
        assert venue.table[sym].symbol == _canonical(sym)


def test_metadata_errors_and_other_paths(venue: Kucoin) -> None:
    assert venue.parse_metadata("/api/v1/level2/snapshot?symbol=XBTUSDTM", b"{}") == []
    with pytest.raises(DecodeError, match="kucoin"):
        venue.parse_metadata(META_PATH, b'{"code":"429000","msg":"Too Many Requests"}')
    with pytest.raises(DecodeError, match="kucoin"):
        venue.parse_metadata(META_PATH, b'{"code":"200000","data":[{"symbol":"X","multiplier":"many"}]}')


def test_metadata_round_trip(venue: Kucoin) -> None:
    originals = sorted(venue.table.values(), key=lambda i: i.venue_symbol)
    bodies = venue.sim_metadata(originals)
    assert list(bodies) == [META_PATH]
    assert b'"baseCurrency":"XBT"' in bodies[META_PATH] and b'"multiplier":-1.0' in bodies[META_PATH]
    back = Kucoin(Registry()).parse_metadata(META_PATH, bodies[META_PATH])
    assert back == originals


# -- simulator -------------------------------------------------------------------------------
@pytest.mark.parametrize("sym", ["XBTUSDTM", "XBTUSDM"])
def test_sim_encoders_round_trip(venue: Kucoin, sym: str) -> None:
    inst: Instrument = venue.table[sym]
    [q] = venue.parse(venue.sim_quote(inst, (65000.5, 12.0), (65001.0, 3.0), 77, 1_700_000_000_123), 9)
    assert (q.bid_px, q.ask_px) == (65000.5, 65001.0)
    assert q.bid_qty == pytest.approx(_qty(sym, 65000.5, 12.0), rel=REL)
    assert q.ts_exchange_ns == 1_700_000_000_123 * MS
    # One book update with three level changes: three KuCoin messages, consecutive sequences.
    frames = venue.sim_book(inst, False, [(65000.5, 12.0), (64999.0, 0.0)], [(65001.0, 3.0)], 1, 0, 1,
                            1_700_000_000_000)
    assert isinstance(frames, list) and all(json.loads(x)["subject"] == "level2" for x in frames)
    deltas = [d for f in frames for d in venue.parse(f, 0)]
    assert [(d.first_seq, d.seq, d.prev_seq) for d in deltas] == [(1, 1, 0), (2, 2, 1), (3, 3, 2)]
    # Prices rise (64,999 leaves, 65,000.5 arrives): the asks move first, then the bids, each side
    # adding before removing, so the book is never crossed or one-sided between the messages.
    assert _same([d.asks for d in deltas], [[(65001.0, _qty(sym, 65001.0, 3.0))], [], []])
    assert _same([d.bids for d in deltas], [[], [(65000.5, _qty(sym, 65000.5, 12.0))], [(64999.0, 0.0)]])
    # The REST snapshot carries the sequence of the last change sent.
    body = venue.sim_rest_book_body(inst, [(65000.5, 12.0)], [(65001.0, 3.0)], 1, 1_700_000_000_000)
    [snap] = venue.parse_rest(f"/api/v1/level2/snapshot?symbol={sym}", body, 0)
    assert snap.seq == 3 and _same(snap.bids, [(65000.5, _qty(sym, 65000.5, 12.0))])
    assert venue.sim_rest_book(f"/api/v1/level2/snapshot?symbol={sym}") == sym
    assert venue.sim_rest_book("/api/v1/contracts/active") is None
    # A lost update (the simulator's prev_seq skips) shows up as a sequence gap.
    [frame] = venue.sim_book(inst, False, [(65000.5, 1.0)], [], 5, 4, 5, 1_700_000_000_100)
    [gapped] = venue.parse(frame, 0)
    assert gapped.seq > 4 and gapped.prev_seq != 3

    [f] = venue.parse(venue.sim_funding(inst, 0.000125, 1_700_006_400_000, 65000.7, 65000.1, 1_700_000_000_000), 0)
    assert (f.rate, f.predicted_rate, f.interval_h) == (0.000125, None, 8.0)
    assert f.next_funding_ns == _next_settlement_ns(1_700_000_000_000)


def test_sim_book_without_changes_sends_nothing(venue: Kucoin) -> None:
    inst = venue.table["XBTUSDTM"]
    assert venue.sim_book(inst, False, [], [], 1, 0, 1, 0) == []  # KuCoin is silent when nothing changed


def test_sim_handle(venue: Kucoin) -> None:
    sub = {"id": "7", "type": "subscribe", "topic": "/contractMarket/level2:XBTUSDTM", "privateChannel": False,
           "response": True}
    assert venue.sim_handle(json.dumps(sub)) == (['{"id":"7","type":"ack"}'], [("book", "XBTUSDTM")])
    for chan, kind in (("tickerV2", "quote"), ("execution", "trade")):
        _, topics = venue.sim_handle(json.dumps({**sub, "topic": f"/contractMarket/{chan}:XBTUSDTM,ETHUSDTM"}))
        assert topics == [(kind, "XBTUSDTM"), (kind, "ETHUSDTM")]
    assert venue.sim_handle(json.dumps({**sub, "topic": "/contract/instrument:ETHUSDTM"}))[1] == [
        ("funding", "ETHUSDTM")]
    assert venue.sim_handle(json.dumps({**sub, "type": "unsubscribe"})) == (['{"id":"7","type":"ack"}'], [])
    [pong], topics = venue.sim_handle(Kucoin.heartbeat_text)
    assert json.loads(pong) == {"id": "perparb", "type": "pong"} and topics == []
    assert venue.parse(pong, 0) == []
    assert venue.sim_handle("not json") == ([], [])


def test_bootstrap_gives_the_url_and_ping_interval(venue: Kucoin) -> None:
    assert venue.rest_request("/api/v1/bullet-public") == ("POST", "/api/v1/bullet-public", None)
    assert venue.rest_request(META_PATH) == ("GET", META_PATH, None)
    [body] = venue.sim_bootstrap("ws://127.0.0.1:9107").values()
    conn = Connection(path="/", subscribe=[], instruments=[])
    real = {"code": "200000", "data": {"token": "2neAiuYvAU61ZD", "instanceServers": [{
        "endpoint": "wss://ws-api-futures.kucoin.com/", "encrypt": True, "protocol": "websocket",
        "pingInterval": 15000, "pingTimeout": 10000}]}}
    url = venue.connect_url(Kucoin.ws_url, conn, json.dumps(real).encode())
    assert url.startswith("wss://ws-api-futures.kucoin.com/?token=2neAiuYvAU61ZD&connectId=")
    assert venue.heartbeat_s == 15.0 and Kucoin.heartbeat_s == 18.0
    assert venue.connect_url("ignored", conn, body).startswith("ws://127.0.0.1:9107/?token=sim-token&connectId=")
    assert venue.heartbeat_s == 18.0
    for bad in (b"", b"<html>", b'{"code":"400100","msg":"x"}'):
        with pytest.raises(ConnectionError, match="kucoin"):
            venue.connect_url(Kucoin.ws_url, conn, bad)


def test_connections(venue: Kucoin) -> None:
    insts = [msgspec.structs.replace(venue.table["XBTUSDTM"], venue_symbol=f"S{n}USDTM") for n in range(40)]
    conns = venue.connections(insts)
    assert [len(c.instruments) for c in conns] == [30, 10]
    msgs = [json.loads(m) for c in conns for m in c.subscribe]
    assert all(m["type"] == "subscribe" and m["response"] is True and not m["privateChannel"] for m in msgs)
    assert all(len(c.subscribe) <= 90 and c.path == "/" for c in conns)
    topics = sorted(m["topic"] for m in msgs)
    assert topics == sorted(f"{c}:{i.venue_symbol}" for i in insts for c in (
        "/contractMarket/tickerV2", "/contractMarket/level2", "/contract/instrument"))
    no_books = venue.connections(insts, books=False)
    assert all("level2" not in json.loads(m)["topic"] for c in no_books for m in c.subscribe)


def test_card() -> None:
    assert venue_class("kucoin") is Kucoin
    assert (Kucoin.id, Kucoin.ws_url, Kucoin.rest_url, Kucoin.book_sync, Kucoin.bootstrap_path) == (
        "kucoin", "wss://ws-api-futures.kucoin.com", "https://api-futures.kucoin.com", "rest_bridged",
        "/api/v1/bullet-public")
    assert json.loads(Kucoin.heartbeat_text or "") == {"id": "perparb", "type": "ping"}
    assert (Kucoin.taker_fee, Kucoin.maker_fee, Kucoin.metadata_paths) == (0.0006, 0.0002, (META_PATH,))
    assert Kucoin.sim_has_sequence


# -- against the simulator, with the contracts above -----------------------------------------
# The shared integration test lists what the bundled snapshot holds, which has no KuCoin
# contract; this runs the same checks with the test contracts added to the registry.
async def _wait(cond, what: str, timeout: float = 15.0) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not cond():
        if loop.time() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def test_streams_through_the_simulator() -> None:
    from perparb.app import Session

    registry = load_registry()
    registry.add_many(Kucoin(Registry()).parse_metadata(META_PATH, CONTRACTS_RAW))
    sim = Simulator(registry, ["kucoin"], ["BTC", "ETH"], seed=3, tick_s=0.05)
    settings = load_settings(None, {"venues": ["kucoin"], "assets": "BTC,ETH"}, env={})
    await sim.start()
    session = Session(settings, sim.endpoints(), registry)
    await session.start()
    try:
        engine, sv = session.engine, sim.venues["kucoin"]
        st = engine.status["kucoin"]
        assert sorted(sv.books) == ["ETHUSDTM", "XBTUSDTM"]

        def synced() -> bool:
            books = [engine.books.get(("kucoin", s)) for s in sv.books]
            return all(b is not None and b.state == SYNCED for b in books)

        def books_match() -> None:
            for sym, simbook in sv.books.items():
                inst, sb = simbook.inst, engine.books[("kucoin", sym)]
                bids, asks = simbook.levels()
                want = [(inst.px(p), inst.qty(q, p)) for p, q in bids + asks]
                got = sb.book.bids.top(10_000) + sb.book.asks.top(10_000)
                assert len(got) == len(want), sym
                for (gp, gq), (wp, wq) in zip(got, want, strict=True):
                    assert gp == pytest.approx(wp, rel=1e-12) and gq == pytest.approx(wq, rel=1e-9), sym

        async def quiet() -> None:
            sim.pause()
            await asyncio.sleep(0.5)

        await _wait(synced, "books synced")
        await _wait(lambda: st.messages > 50, "traffic")
        await _wait(lambda: any(v == "kucoin" for v, _ in engine.funding), "funding")
        await quiet()
        books_match()
        assert st.connected and st.decode_errors == 0 and st.unknown_symbols == 0, st
        assert all(f.interval_h == 8.0 and f.next_funding_ns > f.ts_exchange_ns for f in engine.funding.values())
        sim.resume()

        # A lost update: gap, resync from REST, equal again.
        sb = engine.books[("kucoin", "XBTUSDTM")]
        assert sb.gaps == 0
        sv.gap("XBTUSDTM")
        await _wait(lambda: sb.gaps == 1, "gap detected")
        await _wait(lambda: sb.state == SYNCED, "resynced")
        await quiet()
        books_match()
        sim.resume()

        # The venue drops every connection: a new token, a new connection, books again.
        before = st.messages
        await sv.drop()
        await _wait(lambda: st.reconnects >= 1, "disconnect noticed")
        await _wait(lambda: st.connected and synced(), "reconnected and resynced")
        await _wait(lambda: st.messages > before + 20, "traffic after reconnect")
        await quiet()
        books_match()
        assert st.decode_errors == 0
    finally:
        await session.stop()
        await sim.stop()
