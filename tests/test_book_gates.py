"""Rejections name states the API shows: ``unsynced`` only while a book's /api/books state
is not ``synced``, ``one_sided`` while a synced book has an empty side. KuCoin sends one
level change per message, so its book passes through every intermediate state; the values
below are worked out by hand from the messages."""

from __future__ import annotations

import json
from collections import Counter
from typing import Any

import pytest

from conftest import same
from perparb.api import state
from perparb.book import OrderBook
from perparb.engine import Engine
from perparb.feeds.booksync import SYNCED
from perparb.instruments.registry import Registry
from perparb.model import Instrument
from perparb.scanner.core import Scanner, ScanSettings
from perparb.venues.bitmex import Bitmex
from perparb.venues.kucoin import Kucoin

MS = 1_000_000
T0 = 1_800_000_000_000 * MS
BINANCE_INFO = {"symbols": [{
    "symbol": "BTCUSDT", "contractType": "PERPETUAL", "status": "TRADING", "baseAsset": "BTC", "quoteAsset": "USDT",
    "marginAsset": "USDT", "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.1"},
                                       {"filterType": "LOT_SIZE", "stepSize": "0.001", "minQty": "0.001"}]}]}
KUCOIN_CONTRACTS = {"code": "200000", "data": [{
    "symbol": "XBTUSDTM", "type": "FFWCSX", "baseCurrency": "XBT", "quoteCurrency": "USDT", "settleCurrency": "USDT",
    "multiplier": 0.001, "lotSize": 1, "tickSize": 0.1, "isInverse": False, "status": "Open",
    "fundingRateGranularity": 28800000}]}
SNAPSHOT_PATH = "/api/v1/level2/snapshot?symbol=XBTUSDTM"


def kucoin_change(seq: int, change: str) -> str:
    return json.dumps({"topic": "/contractMarket/level2:XBTUSDTM", "type": "message", "subject": "level2",
                       "data": {"sequence": seq, "change": change, "timestamp": T0 // MS}})


def kucoin_snapshot(seq: int, bids: list[list[float]], asks: list[list[float]]) -> str:
    return json.dumps({"code": "200000", "data": {"symbol": "XBTUSDTM", "sequence": seq, "bids": bids, "asks": asks,
                                                  "ts": T0}})


def binance_ticker(bid: float, ask: float) -> str:
    return json.dumps({"stream": "btcusdt@bookTicker", "data": {
        "e": "bookTicker", "u": 1, "s": "BTCUSDT", "b": str(bid), "B": "2", "a": str(ask), "A": "2",
        "T": T0 // MS, "E": T0 // MS}})


class Run:
    """An engine over Binance (quotes) and KuCoin (one-level book), stepped by hand."""

    def __init__(self) -> None:
        # No edge is ever enough: every candidate that passes the gates is below_threshold.
        self.engine = Engine(Registry(), ["binance", "kucoin"], Scanner(ScanSettings(min_edge_bps=1e6)))
        self.t = T0
        self.engine.on_rest("binance", "/fapi/v1/exchangeInfo", json.dumps(BINANCE_INFO), self.t)
        self.engine.on_rest("kucoin", "/api/v1/contracts/active", json.dumps(KUCOIN_CONTRACTS), self.t)
        for v in ("binance", "kucoin"):
            self.engine.set_connected(v, True, self.t)
        self.seen: Counter[str] = Counter()

    def step(self, venue: str, raw: str, rest_path: str | None = None) -> tuple[dict[str, int], dict[str, Any]]:
        """Feed one message; returns the rejections it caused and KuCoin's /api/books row."""
        self.t += MS
        before = Counter(self.engine.scanner.rejections)
        if rest_path:
            self.engine.on_rest(venue, rest_path, raw, self.t)
        else:
            self.engine.on_message(venue, raw, self.t)
        new = dict(Counter(self.engine.scanner.rejections) - before)
        rows = state.books(self.engine, venue="kucoin")
        row = rows[0] if rows else {}
        # The invariant: a reason is a state the API shows.
        if "unsynced" in new:
            assert row["state"] != SYNCED, (new, row)
        if "one_sided" in new:
            assert row["state"] == SYNCED and row["one_sided"], (new, row)
        self.seen.update(new)
        return new, row


def test_gate_reasons_follow_the_kucoin_book_state() -> None:
    r = Run()
    # Binance bids 65,100 for BTC: above every KuCoin ask below, so KuCoin -> Binance is a
    # visible gap on every evaluation, and the other direction never is (KuCoin bids < 65,100.1).
    assert r.step("binance", binance_ticker(65100.0, 65100.1))[0] == {}  # no KuCoin leg yet
    new, row = r.step("kucoin", kucoin_snapshot(100, [[65000.0, 3000], [64999.9, 2000]], [[65010.0, 1000]]),
                      SNAPSHOT_PATH)
    assert new == {"below_threshold": 1}
    assert (row["state"], row["best_bid"], row["best_ask"], row["one_sided"]) == (SYNCED, 65000.0, 65010.0, False)

    # One change per message: the bids are removed one by one before the new one arrives.
    new, row = r.step("kucoin", kucoin_change(101, "65000.0,buy,0"))
    assert new == {"below_threshold": 1} and (row["best_bid"], row["best_ask"]) == (64999.9, 65010.0)
    new, row = r.step("kucoin", kucoin_change(102, "64999.9,buy,0"))
    # No bid at all on a synced book: one-sided, not unsynced (no resync, no gap).
    assert new == {"one_sided": 1}
    assert (row["state"], row["best_bid"], row["best_ask"], row["one_sided"]) == (SYNCED, None, 65010.0, True)
    assert (row["resyncs"], row["gaps"], row["seq"]) == (0, 0, 102)
    new, row = r.step("kucoin", kucoin_change(103, "65005.0,buy,500"))
    assert new == {"below_threshold": 1} and (row["best_bid"], row["one_sided"]) == (65005.0, False)

    # A reconnect: the book keeps its levels but waits for a new snapshot (state resyncing),
    # so the candidate Binance's next quote shows is unsynced.
    inst = r.engine.registry.get("kucoin", "XBTUSDTM")
    assert inst is not None
    r.engine.set_connected("kucoin", False, r.t)
    r.engine.set_connected("kucoin", True, r.t)
    r.engine.start_books("kucoin", [inst])
    new, row = r.step("binance", binance_ticker(65100.0, 65100.1))
    assert new == {"unsynced": 1} and (row["state"], row["best_bid"], row["best_ask"]) == ("resyncing", 65005.0,
                                                                                           65010.0)
    new, row = r.step("kucoin", kucoin_change(104, "65005.0,buy,800"))  # buffered until the snapshot
    assert new == {"unsynced": 1} and row["state"] == "resyncing"
    new, row = r.step("kucoin", kucoin_change(105, "65010.0,sell,0"))
    assert new == {"unsynced": 1} and row["state"] == "resyncing"
    # The snapshot (sequence 104) bridges the buffer: 105 applies, its ask leaves, 65,020 remains.
    new, row = r.step("kucoin", kucoin_snapshot(104, [[65005.0, 800]], [[65010.0, 1000], [65020.0, 10]]),
                      SNAPSHOT_PATH)
    assert new == {"below_threshold": 1}
    assert (row["state"], row["seq"], row["best_bid"], row["best_ask"]) == (SYNCED, 105, 65005.0, 65020.0)

    # A real gap (106 never arrives): the book is invalid and emptied at once, so no gap
    # with it is visible and nothing is counted against it until it is synced again.
    new, row = r.step("kucoin", kucoin_change(107, "65004.0,buy,1"))
    assert new == {} and row["state"] != SYNCED and (row["gaps"], row["resyncs"]) == (1, 1)
    assert r.step("binance", binance_ticker(65100.0, 65100.1))[0] == {}
    assert r.seen == {"below_threshold": 4, "one_sided": 1, "unsynced": 3}


async def test_a_demo_counts_unsynced_only_while_a_book_is_not_synced(monkeypatch: pytest.MonkeyPatch) -> None:
    from perparb.app import demo
    from perparb.config import load_settings

    seen: Counter[str] = Counter()
    pair, carry = Scanner._pair, Scanner.evaluate_carry

    def checked_pair(self: Scanner, asset: str, a: Any, b: Any, *args: Any) -> Any:
        before = Counter(self.rejections)
        opp = pair(self, asset, a, b, *args)
        new = Counter(self.rejections) - before
        if "unsynced" in new:
            assert any(leg.book is not None and leg.book.state != SYNCED for leg in (a, b)), (a.key, b.key)
        seen.update(new)
        seen["kucoin_candidates"] += "kucoin" in (a.venue, b.venue)
        return opp

    def checked_carry(self: Scanner, asset: str, *args: Any) -> None:
        before = self.rejections["funding_unsynced"]
        carry(self, asset, *args)
        if self.rejections["funding_unsynced"] > before:
            legs = self.legs.get(asset, {}).values()
            assert any(leg.book is not None and leg.book.state != SYNCED for leg in legs), asset
            seen["funding_unsynced"] += self.rejections["funding_unsynced"] - before

    monkeypatch.setattr(Scanner, "_pair", checked_pair)
    monkeypatch.setattr(Scanner, "evaluate_carry", checked_carry)
    settings = load_settings(None, {"venues": ["binance", "kucoin"], "assets": "BTC,ETH,SOL"}, env={})
    summary = await demo(settings, 4.0, seed=7, view=False)
    kucoin = summary["venues"]["kucoin"]
    assert kucoin["books"] == kucoin["books_synced"] == 3 and kucoin["book_resyncs"] == kucoin["book_gaps"] == 0
    # Plenty of candidates had a KuCoin leg while its one-change messages streamed, and the
    # simulated stream never left a side empty between two of them.
    assert seen["kucoin_candidates"] >= 50, seen
    assert seen["one_sided"] == 0 and summary["rejections"].get("one_sided", 0) == 0, seen


def _kucoin() -> tuple[Any, Any, Instrument]:
    enc, dec = Kucoin(Registry()), Kucoin(Registry())
    for v in (enc, dec):
        v.registry.add_many(v.parse_metadata("/api/v1/contracts/active", json.dumps(KUCOIN_CONTRACTS)))
    return enc, dec, enc.table["XBTUSDTM"]


def _bitmex() -> tuple[Any, Any, Instrument]:
    inst = Instrument(venue="bitmex", venue_symbol="XBTUSDT", symbol="BTC/USDT:USDT", asset="BTC", quote="USDT",
                      settle="USDT", contract_size=1e-6, tick_size=0.1, lot_size=1000.0, source="test")
    return Bitmex(Registry([inst])), Bitmex(Registry([inst])), inst


def ladder(start: float, n: int, size: float) -> dict[float, float]:
    return {round(start + k * 0.1, 1): size + k for k in range(n)}


# Before: five bids 64,999.6..65,000.0 and five asks 65,000.1..65,000.5.
OLD_BIDS, OLD_ASKS = ladder(64999.6, 5, 10.0), ladder(65000.1, 5, 20.0)
MOVES = {
    # Further than the book is deep: every old level goes (what a dislocation does).
    "jump_up": (ladder(65002.0, 5, 30.0), ladder(65002.5, 5, 40.0)),
    "jump_down": (ladder(64997.0, 5, 30.0), ladder(64997.5, 5, 40.0)),
    # One tick: one level leaves and one arrives per side, and a price changes side.
    "tick_up": (ladder(64999.7, 5, 10.0), ladder(65000.2, 5, 20.0)),
    "tick_down": (ladder(64999.5, 5, 10.0), ladder(65000.0, 5, 20.0)),
}


def diff(old: dict[float, float], new: dict[float, float]) -> list[tuple[float, float]]:
    return [(p, q) for p, q in new.items() if old.get(p) != q] + [(p, 0.0) for p in old if p not in new]


def canonical(inst: Instrument, side: dict[float, float], bids: bool) -> list[tuple[float, float]]:
    return [(inst.px(p), inst.qty(q, p)) for p, q in sorted(side.items(), reverse=bids)]


@pytest.mark.parametrize("make", [_kucoin, _bitmex], ids=["kucoin", "bitmex"])
@pytest.mark.parametrize("move", list(MOVES))
def test_simulated_one_change_streams_pass_only_through_real_book_states(make: Any, move: str) -> None:
    enc, dec, inst = make()
    book = OrderBook()
    if isinstance(enc, Bitmex):  # its level ids come with the partial
        [snap] = dec.parse(enc.sim_book(inst, True, sorted(OLD_BIDS.items(), reverse=True), sorted(OLD_ASKS.items()),
                                        1, 0, 1, T0 // MS), 0)
        book.load(snap.bids, snap.asks)
    else:
        book.load(canonical(inst, OLD_BIDS, True), canonical(inst, OLD_ASKS, False))
    new_bids, new_asks = MOVES[move]
    frames = enc.sim_book(inst, False, diff(OLD_BIDS, new_bids), diff(OLD_ASKS, new_asks), 2, 1, 2, T0 // MS + 1)
    assert isinstance(frames, list) and len(frames) >= 2
    for f in frames:
        for ev in dec.parse(f, 0):
            assert ev.prev_seq != -1  # no level the decoder does not know
            book.apply(ev.bids, ev.asks)
        bid, ask = book.best_bid(), book.best_ask()
        # Between any two messages the book has both sides and is not crossed.
        assert bid is not None and ask is not None and bid[0] < ask[0], (move, f, bid, ask)
    assert same(book.bids.top(99), canonical(inst, new_bids, True))
    assert same(book.asks.top(99), canonical(inst, new_asks, False))
