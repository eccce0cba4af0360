"""dYdX v4 Indexer adapter against real recorded messages.

Expected values are computed here from the raw JSON (json module) and the perpetualMarkets
response, never taken from the adapter.
"""

from __future__ import annotations

import calendar
import json
from datetime import datetime

import msgspec
import pytest

from conftest import check_events as _check
from conftest import fixture_files, fixture_lines
from conftest import same as _same
from perparb.feeds.booksync import INVALID, SYNCED, SyncedBook
from perparb.instruments.registry import Registry
from perparb.model import BookDelta, BookSnapshot, Funding, Trade
from perparb.venues import venue_class
from perparb.venues.base import DecodeError
from perparb.venues.dydx import Dydx

MARKETS_PATH = "/v4/perpetualMarkets"
MARKETS = "nautilus_rest_indexer_v4_perpetualMarkets_2025-12-08_WRAPPED.jsonl"
TARDIS = "tardis-node-tests_dydx-v4_2024-08_samples.jsonl"
SYNTHETIC = "SYNTHETIC_nautilus_ws_v4_orderbook_markets.jsonl"
HOUR_NS = 3_600_000_000_000
RECV = 1_724_371_200_000_000_777  # 2024-08-23 00:00:00 UTC
REL = 1e-12

LISTED = json.loads(fixture_lines("dydx", MARKETS)[0])["result"]["markets"]


def _ns(iso: str) -> int:
    dt = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ")
    return (calendar.timegm(dt.timetuple()) * 1000 + dt.microsecond // 1000) * 1_000_000


def _dydx() -> Dydx:
    v = Dydx(Registry())
    v.registry.add_many(v.parse_metadata(MARKETS_PATH, fixture_lines("dydx", MARKETS)[0]))
    return v


@pytest.fixture
def dydx() -> Dydx:
    return _dydx()


def _common(ticker: str) -> dict:
    return {"venue": "dydx", "venue_symbol": ticker, "symbol": f"{ticker.split('-')[0]}/USD:USDC", "recv_ns": RECV}


class Expect:
    """An independent reading: books as dicts (to see crossings), funding state per market."""

    def __init__(self) -> None:
        self.books: dict[str, tuple[dict[float, float], dict[float, float]]] = {}
        self.oracle: dict[str, float] = {}

    def events(self, msg: dict) -> list[tuple[type, dict]]:
        chan, kind = msg.get("channel"), msg.get("type")
        c = msg.get("contents")
        if chan == "v4_orderbook" and kind == "subscribed":
            bids = [(float(x["price"]), float(x["size"])) for x in c["bids"]]
            asks = [(float(x["price"]), float(x["size"])) for x in c["asks"]]
            self.books[msg["id"]] = (dict(bids), dict(asks))
            return [(BookSnapshot, {**_common(msg["id"]), "bids": bids, "asks": asks, "seq": 0, "ts_exchange_ns": 0})]
        if chan == "v4_orderbook" and kind == "channel_data":
            bids = [(float(p), float(s)) for p, s in c.get("bids", [])]
            asks = [(float(p), float(s)) for p, s in c.get("asks", [])]
            book = self.books.get(msg["id"])
            if book is not None:
                for side, levels in zip(book, (bids, asks), strict=True):
                    for p, s in levels:
                        if s:
                            side[p] = s
                        else:
                            side.pop(p, None)
                assert not (book[0] and book[1] and max(book[0]) >= min(book[1])), "recorded book crossed"
            return [(BookDelta, {**_common(msg["id"]), "bids": bids, "asks": asks, "prev_seq": None,
                                 "ts_exchange_ns": 0})]
        if chan == "v4_trades":
            return [(Trade, {**_common(msg["id"]), "px": float(t["price"]), "qty": float(t["size"]),
                             "side": t["side"].lower(), "trade_id": t["id"], "ts_exchange_ns": _ns(t["createdAt"])})
                    for t in c["trades"]]
        if chan == "v4_markets":
            for ticker, o in c.get("oraclePrices", {}).items():
                self.oracle[ticker] = float(o["oraclePrice"])
            out = []
            for ticker, m in {**c.get("markets", {}), **c.get("trading", {})}.items():
                if "oraclePrice" in m:
                    self.oracle[ticker] = float(m["oraclePrice"])
                if ticker not in LISTED or "nextFundingRate" not in m:
                    continue  # the channel covers every market: ones we don't list are skipped
                out.append((Funding, {**_common(ticker), "rate": float(m["nextFundingRate"]), "predicted_rate": None,
                                      "interval_h": 1.0, "next_funding_ns": (RECV // HOUR_NS + 1) * HOUR_NS,
                                      "index_px": self.oracle.get(ticker), "mark_px": None, "ts_exchange_ns": 0}))
            return out
        return []






MESSAGE_FILES = [p for p in fixture_files("dydx") if "_rest_" not in p.name]


def test_fixture_set_is_what_this_test_expects() -> None:
    assert {p.name for p in fixture_files("dydx")} == {MARKETS, TARDIS, SYNTHETIC,
                                                   "nautilus_2024-08_rest_v4_perpetualMarkets_full.jsonl"}


@pytest.mark.parametrize("path", MESSAGE_FILES, ids=lambda p: p.name)
def test_every_recorded_message(dydx: Dydx, path) -> None:
    expect = Expect()
    for n, line in enumerate(fixture_lines("dydx", path.name), 1):
        _check(dydx.parse(line, RECV), expect.events(json.loads(line)), f"{path.name}:{n}")
    # Tickers missing from the metadata (GRT-USD, AVAX-USD...) are derived from BASE-USD.
    assert dydx.take_problems() == []


def test_recorded_rest_response(dydx: Dydx) -> None:
    line = fixture_lines("dydx", MARKETS)[0]
    assert dydx.parse_rest(MARKETS_PATH, line, RECV) == []
    assert dydx.parse(line, RECV) == []  # not a websocket message
    assert len(Dydx(Registry()).parse_metadata(MARKETS_PATH, line)) == len(LISTED) == 3


def test_recordings_cover_every_event_type(dydx: Dydx) -> None:
    seen = {type(e) for p in MESSAGE_FILES for line in fixture_lines("dydx", p.name) for e in dydx.parse(line, 0)}
    assert seen == {BookSnapshot, BookDelta, Trade, Funding}  # no Quote: dYdX has no top-of-book channel


# -- books -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", [TARDIS, SYNTHETIC])
def test_recorded_books_replay_through_the_book_sync(dydx: Dydx, name: str) -> None:
    books: dict[str, SyncedBook] = {}
    rebuilt: dict[str, tuple[dict[float, float], dict[float, float]]] = {}
    for line in fixture_lines("dydx", name):
        msg = json.loads(line)
        if msg.get("channel") != "v4_orderbook":
            continue
        c = msg["contents"]
        if msg["type"] == "subscribed":
            rebuilt[msg["id"]] = ({float(x["price"]): float(x["size"]) for x in c["bids"]},
                                  {float(x["price"]): float(x["size"]) for x in c["asks"]})
        elif msg["id"] in rebuilt:
            for side, rows in zip(rebuilt[msg["id"]], (c.get("bids", []), c.get("asks", [])), strict=True):
                for p, s in rows:
                    side[float(p)] = float(s)
                    if not float(s):
                        del side[float(p)]
        for ev in dydx.parse(line, 0):
            sb = books.setdefault(ev.venue_symbol, SyncedBook(Dydx.book_sync))
            assert sb.on_snapshot(ev) if type(ev) is BookSnapshot else sb.on_delta(ev)
    for ticker, (bids, asks) in rebuilt.items():
        sb = books[ticker]
        assert (sb.state, sb.resyncs, sb.crossed) == (SYNCED, 0, 0), ticker
        want = sorted(bids.items(), reverse=True) + sorted(asks.items())
        assert _same(sb.book.bids.top(100) + sb.book.asks.top(100), want), ticker
    # An update that came before its market's snapshot (EGLD-USD in the tardis file) is dropped.
    assert all(books[t].state == SYNCED for t in rebuilt)
    if name == TARDIS:
        assert books["EGLD-USD"].state != SYNCED and books["EGLD-USD"].book.best_ask() is None


def _snapshot(bids: list[tuple[str, str]], asks: list[tuple[str, str]], ticker: str = "BTC-USD") -> bytes:
    return json.dumps({"type": "subscribed", "connection_id": "c", "message_id": 1, "channel": "v4_orderbook",
                       "id": ticker, "contents": {"bids": [{"price": p, "size": s} for p, s in bids],
                                                  "asks": [{"price": p, "size": s} for p, s in asks]}}).encode()


def _update(bids: list[list[str]] | None = None, asks: list[list[str]] | None = None) -> bytes:
    contents = {k: v for k, v in (("bids", bids), ("asks", asks)) if v is not None}
    return json.dumps({"type": "channel_data", "connection_id": "c", "message_id": 2, "id": "BTC-USD",
                       "channel": "v4_orderbook", "version": "1.0.0", "contents": contents}).encode()


def test_a_newer_bid_through_an_older_ask_removes_the_ask(dydx: Dydx) -> None:
    sb = SyncedBook(Dydx.book_sync)
    [snap] = dydx.parse(_snapshot([("100", "1")], [("101", "1"), ("102", "2")]), 0)
    assert sb.on_snapshot(snap)
    [d] = dydx.parse(_update(bids=[["101.5", "3"]]), 0)
    # The ask at 101 is older than the bid at 101.5 that crosses it: it is stale and goes.
    assert (d.bids, d.asks, d.prev_seq) == ([(101.5, 3.0)], [(101.0, 0.0)], None)
    assert sb.on_delta(d) and sb.crossed == 0
    assert (sb.book.best_bid(), sb.book.best_ask()) == ((101.5, 3.0), (102.0, 2.0))


def test_a_newer_ask_through_older_bids_removes_them_and_locked_counts(dydx: Dydx) -> None:
    sb = SyncedBook(Dydx.book_sync)
    assert sb.on_snapshot(dydx.parse(_snapshot([("100", "1"), ("99", "1"), ("98", "1")], [("101", "1")]), 0)[0])
    [d] = dydx.parse(_update(asks=[["99", "4"]]), 0)  # 100 is crossed, 99 locked: both stale
    assert d.asks == [(99.0, 4.0)] and d.bids == [(100.0, 0.0), (99.0, 0.0)]
    assert sb.on_delta(d) and (sb.book.best_bid(), sb.book.best_ask()) == ((98.0, 1.0), (99.0, 4.0))


def test_a_crossing_within_one_message_is_left_to_the_book_sync(dydx: Dydx) -> None:
    sb = SyncedBook(Dydx.book_sync)
    assert sb.on_snapshot(dydx.parse(_snapshot([("100", "1")], [("101", "1")]), 0)[0])
    [d] = dydx.parse(_update(bids=[["102", "1"]], asks=[["101.5", "1"]]), 0)
    # Bid 102 and ask 101.5 arrived together: no older side. The 101 ask is older than the bid
    # and goes; what is left is crossed, so the book is invalid and gets resubscribed.
    assert d.asks == [(101.5, 1.0), (101.0, 0.0)]
    assert not sb.on_delta(d) and sb.state == INVALID and sb.crossed == 1
    assert dydx.resubscribe_book(dydx.table["BTC-USD"])


def test_batched_updates_apply_in_order(dydx: Dydx) -> None:
    dydx.parse(_snapshot([("100", "1")], [("101", "1")]), 0)
    raw = json.dumps({"type": "channel_batch_data", "connection_id": "c", "message_id": 3, "id": "BTC-USD",
                      "channel": "v4_orderbook", "version": "1.0.0",
                      "contents": [{"bids": [["100", "0"]]}, {"bids": [["99.5", "2"]], "asks": [["101", "3"]]}]})
    [d] = dydx.parse(raw, 0)
    assert (d.bids, d.asks) == ([(100.0, 0.0), (99.5, 2.0)], [(101.0, 3.0)])


def test_unsubscribed_forgets_the_mirror(dydx: Dydx) -> None:
    dydx.parse(_snapshot([("100", "1")], [("101", "1")]), 0)
    assert dydx.parse(b'{"type":"unsubscribed","connection_id":"c","message_id":4,"channel":"v4_orderbook",'
                      b'"id":"BTC-USD"}', 0) == []
    [d] = dydx.parse(_update(bids=[["105", "1"]]), 0)  # no mirror: nothing to uncross against
    assert d.asks == []


# -- funding ------------------------------------------------------------------------------------
def test_markets_updates_keep_the_oracle_and_emit_on_rate_news(dydx: Dydx) -> None:
    lines = fixture_lines("dydx", TARDIS)
    first = dydx.parse(lines[5], RECV)
    assert [(f.venue_symbol, f.rate, f.index_px) for f in first] == [
        ("BTC-USD", 0.00001351666666666667, 60387.51779), ("ETH-USD", 0.00001051666666666667, 2623.2521)]
    assert all(f.next_funding_ns == 1_724_374_800_000_000_000 for f in first)  # 01:00 UTC, an hour ahead
    assert dydx.parse(lines[6], RECV) == []  # openInterest only
    assert dydx.parse(lines[7], RECV) == []  # oracle only: kept for the next funding event
    [f] = dydx.parse(b'{"type":"channel_data","connection_id":"c","message_id":9,"channel":"v4_markets",'
                     b'"version":"1.0.0","contents":{"trading":{"ETH-USD":{"id":"1","nextFundingRate":"0.00002"}}}}',
                     RECV + 5)
    assert (f.rate, f.index_px, f.interval_h, f.recv_ns) == (0.00002, 2623.3521, 1.0, RECV + 5)


def test_markets_we_do_not_list_are_skipped_without_a_problem(dydx: Dydx) -> None:
    raw = (b'{"type":"channel_data","connection_id":"c","message_id":9,"channel":"v4_markets","version":"1.0.0",'
           b'"contents":{"trading":{"NOPE-USD":{"nextFundingRate":"0.1"}}}}')
    assert dydx.parse(raw, 0) == [] and dydx.take_problems() == []


# -- unknown and malformed ----------------------------------------------------------------------
def test_unknown_ticker_gives_no_events_and_a_problem(dydx: Dydx) -> None:
    assert dydx.parse(_snapshot([("1", "1")], [("2", "1")], ticker="BTC-PERP"), 0) == []
    [problem] = dydx.take_problems()
    assert "BTC-PERP" in problem and "dydx" in problem


def test_control_messages(dydx: Dydx) -> None:
    assert dydx.parse(b'{"type":"connected","connection_id":"c","message_id":0}', 0) == []
    assert dydx.take_problems() == []
    assert dydx.parse(b'{"type":"error","message":"Invalid subscribe message: channel is not a valid channel",'
                      b'"connection_id":"c","message_id":1}', 0) == []
    [problem] = dydx.take_problems()
    assert "Invalid subscribe" in problem and "dydx" in problem


@pytest.mark.parametrize("raw", [
    fixture_lines("dydx", TARDIS)[2][:-20],
    b'{"type":"channel_data","id":"BTC-USD","channel":"v4_orderbook","contents":{"bids":[["1"]]}}',
    b'{"type":"subscribed","id":"BTC-USD","channel":"v4_orderbook","contents":{"bids":[{"price":"x","size":"1"}]}}',
    b'{"type":"channel_data","id":"BTC-USD","channel":"v4_trades","contents":{"trades":[{"id":"1","side":"UP",'
    b'"size":"1","price":"1","createdAt":"2024-08-22T23:59:58.855Z"}]}}',
    b'{"type":"channel_data","channel":"v4_markets","contents":{"trading":{"BTC-USD":{"nextFundingRate":"n/a"}}}}',
    b"Bad Gateway",
])
def test_malformed_raises_decode_error(dydx: Dydx, raw: bytes) -> None:
    with pytest.raises(DecodeError, match="dydx"):
        dydx.parse(raw, 0)


def test_non_compact_json_is_still_read(dydx: Dydx) -> None:
    [snap] = dydx.parse(b'{"type": "subscribed", "channel": "v4_orderbook", "id": "ETH-USD", '
                        b'"contents": {"bids": [{"price": "2000", "size": "1.5"}], "asks": []}}', 0)
    assert snap.bids == [(2000.0, 1.5)] and snap.symbol == "ETH/USD:USDC"


# -- metadata ------------------------------------------------------------------------------------
def test_metadata_fields(dydx: Dydx) -> None:
    assert set(dydx.table) == set(LISTED)
    for ticker, m in LISTED.items():
        i = dydx.table[ticker]
        base = ticker.split("-")[0]
        assert (i.symbol, i.asset, i.quote, i.settle, i.contract_size, i.price_scale) == (
            f"{base}/USD:USDC", base, "USD", "USDC", 1.0, 1.0)
        assert (i.tick_size, i.lot_size, i.min_qty) == (float(m["tickSize"]), float(m["stepSize"]), float(m["stepSize"]))
        assert (i.status, i.funding_interval_h, i.taker_fee, i.maker_fee) == ("active", 1.0, 0.0005, 0.0001)
    body = {"markets": {"LUNA-USD": {**LISTED["SOL-USD"], "ticker": "LUNA-USD", "status": "FINAL_SETTLEMENT"},
                        "ODD-EUR": {**LISTED["SOL-USD"], "ticker": "ODD-EUR"}}}
    [luna] = Dydx(Registry()).parse_metadata(MARKETS_PATH, json.dumps(body))
    assert (luna.venue_symbol, luna.status) == ("LUNA-USD", "inactive")


def test_metadata_unwrapped_and_wrapped_read_the_same(dydx: Dydx) -> None:
    plain = json.dumps(json.loads(fixture_lines("dydx", MARKETS)[0])["result"])
    assert Dydx(Registry()).parse_metadata(MARKETS_PATH, plain) == sorted(dydx.table.values(),
                                                                          key=lambda i: list(LISTED).index(i.venue_symbol))
    assert dydx.parse_metadata("/v4/orderbooks/perpetualMarket/BTC-USD", plain) == []
    with pytest.raises(DecodeError, match="dydx"):
        dydx.parse_metadata(MARKETS_PATH, b'{"errors":[{"msg":"rate limited"}]}')


def test_metadata_round_trip(dydx: Dydx) -> None:
    originals = sorted(dydx.table.values(), key=lambda i: i.venue_symbol)
    originals[0] = msgspec.structs.replace(originals[0], status="inactive")
    bodies = dydx.sim_metadata(originals)
    assert list(bodies) == [MARKETS_PATH]
    assert Dydx(Registry()).parse_metadata(MARKETS_PATH, bodies[MARKETS_PATH]) == originals


# -- simulator ------------------------------------------------------------------------------------
def test_sim_encoders_round_trip(dydx: Dydx) -> None:
    inst = dydx.table["ETH-USD"]
    sim = Dydx(Registry([inst]))
    assert sim.sim_quote(inst, (1.0, 1.0), (2.0, 1.0), 1, 0) is None  # no top-of-book channel
    bids, asks = [(3100.5, 1.25), (3100.4, 0.5)], [(3100.6, 3.0)]
    [snap] = dydx.parse(sim.sim_book(inst, True, bids, asks, 500, -1, 500, 1_700_000_000_000), 0)
    assert type(snap) is BookSnapshot and _same(snap.bids, bids) and _same(snap.asks, asks)
    [delta] = dydx.parse(sim.sim_book(inst, False, [], [(3100.6, 0.0), (3100.7, 2.0)], 501, 500, 501, 0), 0)
    assert type(delta) is BookDelta and (delta.bids, delta.asks, delta.prev_seq) == (
        [], [(3100.6, 0.0), (3100.7, 2.0)], None)
    assert "bids" not in json.loads(sim.sim_book(inst, False, [], [(1.0, 1.0)], 1, 0, 1, 0))["contents"]

    now = 1_700_000_000_000_000_000
    [f] = dydx.parse(sim.sim_funding(inst, 0.0000125, 1_700_002_800_000, 3100.6, 3100.5, 1_700_000_000_000), now)
    assert (f.rate, f.interval_h, f.next_funding_ns, f.index_px) == (0.0000125, 1.0, 1_700_002_800_000_000_000, 3100.5)
    [g] = dydx.parse(sim.sim_funding(inst, 0.00002, 1_700_002_800_000, 3100.6, 3101.0, 1_700_000_001_000,
                                     full=False), now)
    assert (g.rate, g.index_px) == (0.00002, 3101.0)


def test_sim_handle(dydx: Dydx) -> None:
    sub = {"type": "subscribe", "channel": "v4_orderbook", "id": "BTC-USD", "batched": False}
    assert dydx.sim_handle(json.dumps(sub)) == ([], [("book", "BTC-USD")])  # the snapshot is the answer
    replies, topics = dydx.sim_handle(json.dumps({"type": "subscribe", "channel": "v4_markets", "batched": False}))
    assert replies == [] and sorted(topics) == sorted(("funding", t) for t in LISTED)
    [reply], topics = dydx.sim_handle(json.dumps({"type": "unsubscribe", "channel": "v4_orderbook", "id": "BTC-USD"}))
    assert topics == [] and json.loads(reply)["type"] == "unsubscribed" and dydx.parse(reply, 0) == []
    assert dydx.sim_handle("not json") == ([], [])


def test_connections(dydx: Dydx) -> None:
    insts = [dydx.table["BTC-USD"], dydx.table["ETH-USD"]]
    [conn] = dydx.connections(insts)
    assert conn.path == "/v4/ws" and conn.instruments == insts
    assert [json.loads(m) for m in conn.subscribe] == [
        {"type": "subscribe", "channel": "v4_orderbook", "id": "BTC-USD", "batched": False},
        {"type": "subscribe", "channel": "v4_orderbook", "id": "ETH-USD", "batched": False},
        {"type": "subscribe", "channel": "v4_markets", "batched": False}]
    unsub, sub = dydx.resubscribe_book(insts[0])
    assert json.loads(unsub) == {"type": "unsubscribe", "channel": "v4_orderbook", "id": "BTC-USD"}
    assert json.loads(sub) == {"type": "subscribe", "channel": "v4_orderbook", "id": "BTC-USD", "batched": False}


def test_card() -> None:
    assert venue_class("dydx") is Dydx
    assert (Dydx.id, Dydx.ws_url, Dydx.rest_url, Dydx.book_sync, Dydx.heartbeat_text) == (
        "dydx", "wss://indexer.dydx.trade", "https://indexer.dydx.trade", "in_stream", None)
    assert (Dydx.metadata_paths, Dydx.sim_has_sequence) == ((MARKETS_PATH,), False)
    assert Dydx(Registry()).derive("PEPE-USD") is not None and Dydx(Registry()).derive("BTC-PERP") is None
