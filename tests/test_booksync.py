"""Book synchronization (``SyncedBook``) and the order book (``OrderBook``/``Side``).

Real recorded sequences replay with no false resync, and every final book is compared with
one rebuilt here from the raw JSON with plain dicts. Gap, crossing and reset handling is
checked on hand-built sequences.
"""

from __future__ import annotations

import itertools
import json
import random

import pytest

from conftest import fixture_lines
from perparb.book import OrderBook, Side
from perparb.feeds.booksync import INVALID, MAX_BUFFER, RESYNCING, SYNCED, SyncedBook
from perparb.instruments.registry import Registry
from perparb.model import BookDelta, BookSnapshot, Level
from perparb.venues.binance import Binance
from perparb.venues.bybit import Bybit
from perparb.venues.okx import Okx

REL = 1e-12


# -- reference books -------------------------------------------------------------------------
class DictBook:
    """The simplest possible L2 book: price → size per side, size 0 deletes."""

    def __init__(self, bids: list[Level] = (), asks: list[Level] = ()) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}
        self.apply(bids, asks)

    def apply(self, bids: list[Level], asks: list[Level]) -> None:
        for side, rows in ((self.bids, bids), (self.asks, asks)):
            for px, qty in rows:
                if qty == 0:
                    side.pop(px, None)
                else:
                    side[px] = qty

    def levels(self) -> tuple[list[Level], list[Level]]:
        return sorted(self.bids.items(), reverse=True), sorted(self.asks.items())


def _rows(raw: list[list[str]]) -> list[Level]:
    return [(float(r[0]), float(r[1])) for r in raw]


def _book_levels(book: OrderBook) -> tuple[list[Level], list[Level]]:
    return book.bids.top(len(book.bids) + 1), book.asks.top(len(book.asks) + 1)


def assert_same_book(book: OrderBook, ref: DictBook, rel: float = 0.0) -> None:
    want_bids, want_asks = ref.levels()
    got_bids, got_asks = _book_levels(book)
    assert want_bids and want_asks
    if rel:
        assert got_bids == [pytest.approx(lv, rel=rel) for lv in want_bids]
        assert got_asks == [pytest.approx(lv, rel=rel) for lv in want_asks]
        assert book.best_bid() == pytest.approx(want_bids[0], rel=rel)
        assert book.best_ask() == pytest.approx(want_asks[0], rel=rel)
    else:
        assert got_bids == want_bids
        assert got_asks == want_asks
        assert (book.best_bid(), book.best_ask()) == (want_bids[0], want_asks[0])
    assert len(book.bids) == len(want_bids) and len(book.asks) == len(want_asks)


# -- Binance: REST snapshot bridged by diff events ---------------------------------------------
BN_DEPTH = "cryptofeed_2021-07-22_fstream_depthUpdate.jsonl"
BN_REST = "cryptofeed_2021-07-22_rest_fapi_v1_depth_limit1000.jsonl"
BN_TICKER = "cryptofeed_2021-07-22_fstream_bookTicker.jsonl"
BN_SYMBOLS = ("SUSHIUSDT", "AKROUSDT", "KEEPUSDT", "CTKUSDT")  # REST line order, per SOURCE.md


def _binance() -> Binance:
    v = Binance(Registry())
    [info] = fixture_lines("binance", "cryptofeed_2021-07-22_rest_fapi_v1_exchangeInfo_full.jsonl")
    v.registry.add_many(v.parse_metadata("/fapi/v1/exchangeInfo", info))
    return v


def _bn_raw(sym: str) -> tuple[dict, list[dict]]:
    """(REST snapshot, the symbol's depthUpdate payloads in file order) as plain JSON."""
    snap = json.loads(fixture_lines("binance", BN_REST)[BN_SYMBOLS.index(sym)])
    deltas = [m["data"] for m in map(json.loads, fixture_lines("binance", BN_DEPTH)) if m["data"]["s"] == sym]
    return snap, deltas


def _bn_events(v: Binance, sym: str) -> tuple[BookSnapshot, list[BookDelta]]:
    rest = fixture_lines("binance", BN_REST)[BN_SYMBOLS.index(sym)]
    [snap] = v.parse_rest(f"/fapi/v1/depth?symbol={sym}&limit=1000", rest, 0)
    deltas = [e for line in fixture_lines("binance", BN_DEPTH) for e in v.parse(line, 1)
              if e.venue_symbol == sym]
    assert all(type(d) is BookDelta for d in deltas)
    return snap, deltas


def _bn_reference(snap: dict, deltas: list[dict]) -> tuple[DictBook, list[int]]:
    """The book after the whole session, by the documented procedure, and the u of each applied event."""
    last = snap["lastUpdateId"]
    ref = DictBook(_rows(snap["bids"]), _rows(snap["asks"]))
    applied: list[int] = []
    for d in deltas:
        if d["u"] < last:
            continue  # ended before the snapshot
        if applied:
            assert d["pu"] == applied[-1], "recording breaks the pu chain"
        else:
            assert d["U"] <= last + 1, "first event after the snapshot does not straddle it"
        ref.apply(_rows(d["b"]), _rows(d["a"]))
        applied.append(d["u"])
    return ref, applied


def _bridge_index(snap: dict, deltas: list[dict]) -> int:
    last = snap["lastUpdateId"]
    [i] = [i for i, d in enumerate(deltas) if d["U"] <= last <= d["u"]]
    return i


@pytest.mark.parametrize("sym", BN_SYMBOLS)
def test_binance_recording_has_a_bridge_early_and_an_unbroken_chain(sym: str) -> None:
    snap, deltas = _bn_raw(sym)
    assert 1 <= _bridge_index(snap, deltas) <= 5  # a few pre-snapshot events to discard (SOURCE.md)
    assert all(b["pu"] == a["u"] for a, b in itertools.pairwise(deltas))
    assert [d["E"] for d in deltas] == sorted(d["E"] for d in deltas)


def _snapshot_position(where: str, snap: dict, deltas: list[dict]) -> int:
    """How many of the symbol's deltas arrive before the REST snapshot is fed."""
    if where == "first":
        return 0
    if where == "recorded":  # the snapshot's own event time against the stream's
        return sum(1 for d in deltas if d["E"] <= snap["E"])
    if where == "after_bridge":  # the bridging event is already in the buffer
        return _bridge_index(snap, deltas) + 1
    return len(deltas)  # "last": the whole session buffered, then replayed


@pytest.mark.parametrize("where", ["first", "recorded", "after_bridge", "last"])
@pytest.mark.parametrize("sym", BN_SYMBOLS)
def test_binance_session_replays_without_resync(sym: str, where: str) -> None:
    raw_snap, raw_deltas = _bn_raw(sym)
    snap, deltas = _bn_events(_binance(), sym)
    assert len(deltas) == len(raw_deltas) < MAX_BUFFER
    pos = _snapshot_position(where, raw_snap, raw_deltas)

    sb = SyncedBook("rest_bridged")
    for n, d in enumerate(deltas):
        if n == pos:
            assert sb.on_snapshot(snap), n
        assert sb.on_delta(d), n
        assert not sb.book.crossed(), n
        assert sb.state == (SYNCED if n >= pos else RESYNCING), n
        if n < pos:
            assert len(sb.buffer) == n + 1 and len(sb.book.bids) == 0
    if pos == len(deltas):
        assert sb.on_snapshot(snap)
    assert (sb.state, sb.gaps, sb.resyncs, sb.crossed, len(sb.buffer)) == (SYNCED, 0, 0, 0, 0)
    assert not sb.bridge and not sb.book.crossed()

    ref, applied = _bn_reference(raw_snap, raw_deltas)
    assert sb.seq == applied[-1] == raw_deltas[-1]["u"]
    assert_same_book(sb.book, ref)


def test_binance_snapshot_position_cases_differ() -> None:
    """The 'recorded' replay exercises both orders: bridge buffered (CTK) and bridge live (others)."""
    buffered = {}
    for sym in BN_SYMBOLS:
        snap, deltas = _bn_raw(sym)
        buffered[sym] = _snapshot_position("recorded", snap, deltas) > _bridge_index(snap, deltas)
    assert buffered == {"SUSHIUSDT": False, "AKROUSDT": False, "KEEPUSDT": False, "CTKUSDT": True}


@pytest.mark.parametrize("sym", BN_SYMBOLS)
def test_binance_synced_top_matches_book_ticker(sym: str) -> None:
    """Where a bookTicker carries the same update id as a diff event, both show the same top."""
    snap, deltas = _bn_events(_binance(), sym)
    sb = SyncedBook("rest_bridged")
    sb.on_snapshot(snap)
    tops = {}
    for d in deltas:
        assert sb.on_delta(d)
        if sb.seq == d.seq:
            tops[d.seq] = (*sb.book.best_bid(), *sb.book.best_ask())
    tickers = [m["data"] for m in map(json.loads, fixture_lines("binance", BN_TICKER)) if m["data"]["s"] == sym]
    matched = [t for t in tickers if t["u"] in tops]
    assert len(matched) >= 5
    for t in matched:
        assert tops[t["u"]] == (float(t["b"]), float(t["B"]), float(t["a"]), float(t["A"])), t["u"]


# -- Bybit: in-stream snapshot + deltas ------------------------------------------------------
BYBIT_BOOK = "nautilus_bybit-histdata_2024-12-01_orderbook.500.XRPUSDT_linear.jsonl"


def test_bybit_xrp_session() -> None:
    lines = fixture_lines("bybit", BYBIT_BOOK)
    raw = [json.loads(line) for line in lines]
    assert [m["type"] for m in raw] == ["snapshot"] + ["delta"] * (len(raw) - 1)
    us = [m["data"]["u"] for m in raw]
    assert us == list(range(us[0], us[0] + len(us)))  # consecutive, no gap in the recording

    v = Bybit(Registry())
    sb = SyncedBook("in_stream")
    events = [e for line in lines for e in v.parse(line, 0)]
    assert [type(e) for e in events] == [BookSnapshot] + [BookDelta] * (len(raw) - 1)
    for n, ev in enumerate(events):
        ok = sb.on_snapshot(ev) if type(ev) is BookSnapshot else sb.on_delta(ev)
        assert ok and sb.state == SYNCED and not sb.book.crossed(), n
    assert (sb.gaps, sb.resyncs, sb.crossed, sb.seq) == (0, 0, 0, us[-1])

    ref = DictBook(_rows(raw[0]["data"]["b"]), _rows(raw[0]["data"]["a"]))
    for m in raw[1:]:
        ref.apply(_rows(m["data"]["b"]), _rows(m["data"]["a"]))
    assert_same_book(sb.book, ref)


# -- OKX: in-stream, inverse contracts, no seqId in 2022 -------------------------------------
OKX_BOOK = "cryptofeed_2022-05-13_ws_v5_public_books_UNI-USD-SWAP.jsonl"
OKX_INSTRUMENTS = "cryptofeed_2022-05-13_rest_v5_public_instruments_SWAP_full.jsonl"
OKX_META_PATH = "/api/v5/public/instruments?instType=SWAP"


def test_okx_uni_inverse_session() -> None:
    [meta] = fixture_lines("okx", OKX_INSTRUMENTS)
    [uni] = [d for d in json.loads(meta)["data"] if d["instId"] == "UNI-USD-SWAP"]
    assert uni["ctType"] == "inverse" and uni["ctValCcy"] == "USD"
    usd_per_contract = float(uni["ctVal"]) * float(uni["ctMult"])
    assert usd_per_contract == 10.0

    lines = fixture_lines("okx", OKX_BOOK)
    raw = [json.loads(line) for line in lines]
    pushes = [m for m in raw if "data" in m]
    assert [m["action"] for m in pushes] == ["snapshot"] + ["update"] * (len(pushes) - 1)

    v = Okx(Registry())
    v.registry.add_many(v.parse_metadata(OKX_META_PATH, meta))
    sb = SyncedBook("in_stream")
    events = [e for line in lines for e in v.parse(line, 0)]
    assert [type(e) for e in events] == [BookSnapshot] + [BookDelta] * (len(pushes) - 1)
    for n, ev in enumerate(events):
        ok = sb.on_snapshot(ev) if type(ev) is BookSnapshot else sb.on_delta(ev)
        assert ok and sb.state == SYNCED and not sb.book.crossed(), n
    assert (sb.gaps, sb.resyncs, sb.crossed) == (0, 0, 0)

    contracts = DictBook()  # rebuilt in native contracts, converted at the end
    for m in pushes:
        [d] = m["data"]
        if m["action"] == "snapshot":
            contracts = DictBook(_rows(d["bids"]), _rows(d["asks"]))
        else:
            contracts.apply(_rows(d["bids"]), _rows(d["asks"]))
    ref = DictBook()
    ref.bids = {px: n * usd_per_contract / px for px, n in contracts.bids.items()}  # UNI = USD ÷ price
    ref.asks = {px: n * usd_per_contract / px for px, n in contracts.asks.items()}
    assert_same_book(sb.book, ref, rel=REL)


# -- hand-made sequences -----------------------------------------------------------------------
def snap(seq: int, bids: list[Level] = ((99.0, 1.0),), asks: list[Level] = ((101.0, 1.0),)) -> BookSnapshot:
    return BookSnapshot(venue="t", symbol="T/USDT:USDT", venue_symbol="TUSDT", bids=list(bids), asks=list(asks),
                        seq=seq, ts_exchange_ns=0, recv_ns=seq)


def delta(first: int, seq: int, prev: int | None, bids: list[Level] = (), asks: list[Level] = ()) -> BookDelta:
    return BookDelta(venue="t", symbol="T/USDT:USDT", venue_symbol="TUSDT", bids=list(bids), asks=list(asks),
                     first_seq=first, seq=seq, prev_seq=prev, ts_exchange_ns=0, recv_ns=seq)


def levels(sb: SyncedBook) -> tuple[list[Level], list[Level]]:
    return _book_levels(sb.book)


def test_rest_bridged_gap_buffers_and_replays_after_the_next_snapshot() -> None:
    sb = SyncedBook("rest_bridged")
    assert sb.on_delta(delta(90, 95, 89, bids=[(98.0, 5.0)]))  # before any snapshot: buffered
    assert sb.state == RESYNCING and len(sb.buffer) == 1
    assert sb.on_snapshot(snap(100))  # the buffered delta ended before it: dropped
    assert levels(sb) == ([(99.0, 1.0)], [(101.0, 1.0)])
    assert sb.on_delta(delta(101, 105, 100, bids=[(99.5, 2.0)]))  # U = lastUpdateId + 1 bridges
    assert sb.state == SYNCED and sb.seq == 105
    assert levels(sb) == ([(99.5, 2.0), (99.0, 1.0)], [(101.0, 1.0)])

    assert not sb.on_delta(delta(107, 110, 104, asks=[(100.5, 1.0)]))  # pu 104 != 105
    assert (sb.state, sb.gaps, sb.resyncs, sb.crossed) == (INVALID, 1, 1, 0)
    assert levels(sb) == ([], []) and sb.book.best_bid() is None and sb.book.best_ask() is None

    # While invalid, deltas are buffered for the next snapshot.
    assert sb.on_delta(delta(106, 110, 105, asks=[(100.5, 7.0)]))  # ends before 112: dropped
    assert sb.on_delta(delta(111, 115, 110, bids=[(99.0, 0.0)], asks=[(101.0, 3.0)]))  # straddles 112
    assert sb.on_delta(delta(116, 120, 115, bids=[(98.0, 4.0)]))
    assert len(sb.buffer) == 3 and levels(sb) == ([], [])
    assert sb.on_snapshot(snap(112, bids=[(99.0, 1.0), (97.0, 1.0)], asks=[(101.0, 1.0), (102.0, 2.0)]))
    assert (sb.state, sb.seq, sb.gaps, sb.resyncs, len(sb.buffer)) == (SYNCED, 120, 1, 1, 0)
    assert levels(sb) == ([(98.0, 4.0), (97.0, 1.0)], [(101.0, 3.0), (102.0, 2.0)])  # 100.5 never applied
    assert sb.on_delta(delta(121, 121, 120, asks=[(102.0, 0.0)]))
    assert levels(sb)[1] == [(101.0, 3.0)]


def test_rest_bridged_snapshot_first_drops_stale_deltas() -> None:
    sb = SyncedBook("rest_bridged")
    assert sb.on_snapshot(snap(100)) and sb.bridge
    assert sb.on_delta(delta(90, 99, 89, bids=[(50.0, 1.0)]))  # u < lastUpdateId: ignored
    assert sb.bridge and sb.seq == 100 and levels(sb) == ([(99.0, 1.0)], [(101.0, 1.0)])
    assert sb.on_delta(delta(100, 104, 99, bids=[(99.0, 3.0)]))  # U <= lastUpdateId <= u
    assert not sb.bridge and sb.seq == 104 and levels(sb)[0] == [(99.0, 3.0)]
    assert sb.on_delta(delta(105, 106, 104))
    assert (sb.state, sb.gaps, sb.resyncs) == (SYNCED, 0, 0)


@pytest.mark.parametrize(("first", "last", "prev", "ok", "applied"), [
    (95, 99, 94, True, False),  # ends before the snapshot: dropped, still bridging
    (95, 100, 94, True, True),  # ends exactly at lastUpdateId
    (100, 100, 99, True, True),
    (90, 110, 89, True, True),  # straddles
    (101, 105, 100, True, True),  # starts right after it
    (102, 105, 101, False, False),  # update 101 is missing
    (103, 105, 100, True, True),  # pu says it follows the snapshot's last update
])
def test_rest_bridged_first_event_rules(first: int, last: int, prev: int, ok: bool, applied: bool) -> None:
    sb = SyncedBook("rest_bridged")
    sb.on_snapshot(snap(100))
    assert sb.on_delta(delta(first, last, prev, bids=[(99.0, 9.0)])) is ok
    assert sb.gaps == (0 if ok else 1) and sb.state == (SYNCED if ok else INVALID)
    assert sb.seq == (last if applied else 100)
    if ok:
        assert sb.bridge is not applied  # still waiting for the bridging event
        assert levels(sb)[0] == [(99.0, 9.0 if applied else 1.0)]
    else:
        assert levels(sb) == ([], [])


def test_rest_bridged_buffered_gap_fails_the_snapshot() -> None:
    sb = SyncedBook("rest_bridged")
    sb.on_delta(delta(104, 106, 103))  # 101..103 were never seen
    sb.on_delta(delta(107, 108, 106))
    assert not sb.on_snapshot(snap(100))
    assert (sb.state, sb.gaps, sb.resyncs, len(sb.buffer)) == (INVALID, 1, 1, 0)
    assert levels(sb) == ([], [])


def test_rest_bridged_buffer_overflow_is_caught_as_a_gap() -> None:
    sb = SyncedBook("rest_bridged")
    n = MAX_BUFFER + 10
    for u in range(101, 101 + n):
        sb.on_delta(delta(u, u, u - 1, bids=[(float(u % 50 + 1), 1.0)]))
    assert len(sb.buffer) == MAX_BUFFER  # the oldest 10 fell out
    assert not sb.on_snapshot(snap(100, bids=[(0.5, 1.0)], asks=[(1000.0, 1.0)]))
    assert sb.gaps == 1 and sb.state == INVALID

    sb2 = SyncedBook("rest_bridged")
    for u in range(101, 101 + n):
        sb2.on_delta(delta(u, u, u - 1))
    assert sb2.on_snapshot(snap(500)) and sb2.seq == 100 + n and sb2.gaps == 0


def test_resyncing_clears_the_buffer() -> None:
    sb = SyncedBook("rest_bridged")
    sb.on_snapshot(snap(100))
    sb.resyncing()
    assert sb.state == RESYNCING
    sb.on_delta(delta(101, 102, 100))
    assert len(sb.buffer) == 1
    sb.resyncing()
    assert len(sb.buffer) == 0 and sb.resyncs == 0


def test_in_stream_deltas_before_snapshot_are_ignored_and_chain_is_checked() -> None:
    sb = SyncedBook("in_stream")
    assert sb.on_delta(delta(5, 5, 4, bids=[(98.0, 1.0)]))
    assert sb.state == RESYNCING and len(sb.buffer) == 0 and levels(sb) == ([], [])
    assert sb.on_snapshot(snap(10))
    assert not sb.bridge and levels(sb) == ([(99.0, 1.0)], [(101.0, 1.0)])  # the early delta is gone
    assert sb.on_delta(delta(11, 11, 10, asks=[(100.0, 2.0)]))
    assert levels(sb)[1] == [(100.0, 2.0), (101.0, 1.0)]
    assert not sb.on_delta(delta(13, 13, 12))  # 12 missing
    assert (sb.state, sb.gaps, sb.resyncs) == (INVALID, 1, 1) and levels(sb) == ([], [])
    assert sb.on_delta(delta(14, 14, 13)) and len(sb.buffer) == 0  # invalid: ignored, not buffered
    assert sb.on_snapshot(snap(20))
    assert sb.state == SYNCED and sb.on_delta(delta(21, 21, 20))
    assert (sb.gaps, sb.resyncs) == (1, 1)


def test_in_stream_unsequenced_deltas_are_accepted() -> None:
    sb = SyncedBook("in_stream")
    sb.on_snapshot(snap(0))
    for n, px in enumerate((98.0, 97.0, 96.0)):
        assert sb.on_delta(delta(0, 0, None, bids=[(px, 1.0 + n)]))
    assert sb.state == SYNCED and sb.gaps == 0
    assert levels(sb)[0] == [(99.0, 1.0), (98.0, 1.0), (97.0, 2.0), (96.0, 3.0)]


def test_okx_style_sequence_reset_and_keepalive() -> None:
    sb = SyncedBook("in_stream")
    sb.on_snapshot(snap(1000))
    assert sb.on_delta(delta(1001, 1001, 1000, bids=[(99.0, 2.0)]))
    assert sb.on_delta(delta(1001, 1001, 1001))  # keep-alive: seqId == prevSeqId, no levels
    assert sb.seq == 1001 and levels(sb) == ([(99.0, 2.0)], [(101.0, 1.0)])
    assert sb.on_delta(delta(15, 15, 1001, asks=[(100.5, 1.0)]))  # maintenance reset: seqId < prevSeqId
    assert sb.seq == 15 and sb.on_delta(delta(16, 16, 15))
    assert (sb.state, sb.gaps, sb.resyncs) == (SYNCED, 0, 0)
    assert levels(sb) == ([(99.0, 2.0)], [(100.5, 1.0), (101.0, 1.0)])
    assert not sb.on_delta(delta(18, 18, 17))
    assert sb.gaps == 1


@pytest.mark.parametrize("family", ["rest_bridged", "in_stream"])
def test_crossing_delta_invalidates(family: str) -> None:
    sb = SyncedBook(family)
    sb.on_snapshot(snap(100))
    assert sb.on_delta(delta(101, 101, 100, bids=[(100.0, 1.0)]))  # 100 < 101: fine
    assert not sb.on_delta(delta(102, 102, 101, bids=[(101.0, 1.0)]))  # bid == ask
    assert (sb.state, sb.crossed, sb.gaps, sb.resyncs) == (INVALID, 1, 0, 1)
    assert levels(sb) == ([], [])


def test_crossed_snapshot_is_rejected() -> None:
    sb = SyncedBook("in_stream")
    assert not sb.on_snapshot(snap(7, bids=[(102.0, 1.0)], asks=[(101.0, 1.0)]))
    assert (sb.state, sb.crossed, sb.resyncs) == (INVALID, 1, 1)


# -- OrderBook / Side --------------------------------------------------------------------------
def test_side_keeps_bids_descending_and_asks_ascending() -> None:
    bids, asks = Side(True), Side(False)
    for px, qty in [(10.0, 1.0), (12.0, 2.0), (11.0, 3.0), (9.5, 4.0)]:
        bids.set(px, qty)
        asks.set(px, qty)
    assert bids.top(10) == [(12.0, 2.0), (11.0, 3.0), (10.0, 1.0), (9.5, 4.0)]
    assert asks.top(10) == [(9.5, 4.0), (10.0, 1.0), (11.0, 3.0), (12.0, 2.0)]
    assert (bids.best(), asks.best()) == ((12.0, 2.0), (9.5, 4.0))
    assert bids.top(2) == [(12.0, 2.0), (11.0, 3.0)] and asks.top(0) == []

    bids.set(12.0, 5.0)  # replace: no duplicate level
    asks.set(9.5, 0.0)  # delete the best
    assert bids.best() == (12.0, 5.0) and len(bids) == 4
    assert asks.best() == (10.0, 1.0) and len(asks) == 3
    bids.set(12.0, 0.0)
    assert bids.best() == (11.0, 3.0)
    bids.set(42.0, 0.0)  # unknown level: no-op
    asks.set(42.0, -1.0)
    assert bids.top(10) == [(11.0, 3.0), (10.0, 1.0), (9.5, 4.0)]
    assert asks.top(10) == [(10.0, 1.0), (11.0, 3.0), (12.0, 2.0)]
    assert bids.keys == sorted(bids.keys) and asks.keys == sorted(asks.keys)
    bids.clear()
    assert bids.best() is None and bids.top(3) == [] and len(bids) == 0


def test_side_against_dict_reference_random_walk() -> None:
    rng = random.Random(7)
    side, ref = Side(True), DictBook()
    for _ in range(3000):
        px = rng.randrange(1, 200) / 4
        qty = rng.choice([0.0, 0.0, rng.randrange(1, 100) / 10])
        side.set(px, qty)
        ref.apply([(px, qty)], [])
        want = ref.levels()[0]
        assert side.best() == (want[0] if want else None)
    assert side.top(len(side)) == ref.levels()[0]


def test_order_book_load_apply_crossed() -> None:
    book = OrderBook()
    assert not book.crossed() and book.best_bid() is None and book.best_ask() is None
    book.load([(99.0, 1.0), (98.0, 2.0)], [(101.0, 1.0), (102.0, 3.0)])
    assert (book.best_bid(), book.best_ask()) == ((99.0, 1.0), (101.0, 1.0))
    assert not book.crossed()
    book.apply([(100.0, 1.0)], [(101.0, 0.0)])
    assert (book.best_bid(), book.best_ask()) == ((100.0, 1.0), (102.0, 3.0))
    book.apply([(102.0, 1.0)], [])
    assert book.crossed()  # bid == ask counts as crossed
    book.load([(1.0, 1.0)], [(2.0, 1.0)])  # load replaces everything
    assert _book_levels(book) == ([(1.0, 1.0)], [(2.0, 1.0)]) and not book.crossed()
    book.apply([], [(0.5, 1.0)])
    assert book.crossed()
    book.clear()
    assert _book_levels(book) == ([], []) and not book.crossed()
    book.apply([(5.0, 1.0)], [])
    assert not book.crossed()  # one empty side is never crossed


def test_order_book_top_follows_every_change() -> None:
    """The best level kept on each side equals the book's first level after every apply,
    load, clear and single-level set, including an apply stopped part way by a NaN price."""
    rng = random.Random(11)
    book, ref = OrderBook(), DictBook()
    for i in range(2000):
        bids = [(rng.randrange(1, 100) / 4, rng.choice([0.0, rng.randrange(1, 50) / 10]))
                for _ in range(rng.randrange(4))]
        asks = [(rng.randrange(101, 200) / 4, rng.choice([0.0, rng.randrange(1, 50) / 10]))
                for _ in range(rng.randrange(4))]
        if i % 97 == 0:
            book.load(bids, asks)
            ref = DictBook()
            ref.apply(bids, asks)
        elif i % 41 == 0 and bids:
            book.bids.set(*bids[0])
            ref.apply(bids[:1], [])
        else:
            book.apply(bids, asks)
            ref.apply(bids, asks)
        want_b, want_a = ref.levels()
        assert book.best_bid() == (want_b[0] if want_b else None)
        assert book.best_ask() == (want_a[0] if want_a else None)
    book.load([(10.0, 1.0)], [(11.0, 1.0)])
    with pytest.raises(ValueError):
        book.apply([(10.5, 2.0), (float("nan"), 1.0)], [])
    assert book.best_bid() == book.bids.top(1)[0] == (10.5, 2.0)
    book.clear()
    assert book.best_bid() is None and book.best_ask() is None
