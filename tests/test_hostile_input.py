"""Hostile venue values: NaN, infinities, zero and negative prices, negative sizes,
impossible funding rates, far-away timestamps, broken UTF-8, and exceptions inside the
engine. Each is dropped, named, counted by reason, and the book it touched resyncs;
nothing else changes and nothing crashes."""

from __future__ import annotations

import json
import math

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from perparb.api.app import ApiContext, create_app
from perparb.book import OrderBook
from perparb.cli import app
from perparb.config import ApiSettings
from perparb.engine import Engine
from perparb.feeds.booksync import INVALID, RESYNCING, SYNCED, SyncedBook
from perparb.instruments.snapshot import load_registry
from perparb.model import BookDelta, BookSnapshot, Funding, Quote, Trade
from perparb.scanner.core import Scanner, ScanSettings
from perparb.validate import Limits, check

MS = 1_000_000
T0_MS = 1_800_000_000_000
T0 = T0_MS * MS


def bybit_book(kind: str, u: int, bids: list[list[str]], asks: list[list[str]], t_ms: int = T0_MS) -> str:
    return json.dumps({"topic": "orderbook.50.BTCUSDT", "type": kind, "ts": t_ms, "data": {
        "s": "BTCUSDT", "b": bids, "a": asks, "u": u, "seq": u}})


def binance_ticker(sym: str, bid: str, ask: str, t_ms: int = T0_MS) -> str:
    return json.dumps({"stream": f"{sym.lower()}@bookTicker", "data": {
        "e": "bookTicker", "u": 1, "s": sym, "b": bid, "B": "10", "a": ask, "A": "10", "T": t_ms, "E": t_ms}})


def binance_mark(sym: str, rate: str, t_ms: int = T0_MS) -> str:
    return json.dumps({"stream": f"{sym.lower()}@markPrice@1s", "data": {
        "e": "markPriceUpdate", "E": t_ms, "s": sym, "p": "65000", "i": "65000", "r": rate,
        "T": t_ms + 3_600_000}})


def bybit_ticker(sym: str, rate: str, t_ms: int = T0_MS) -> str:
    return json.dumps({"topic": f"tickers.{sym}", "type": "snapshot", "ts": t_ms, "data": {
        "symbol": sym, "fundingRate": rate, "nextFundingTime": str(t_ms + 3_600_000),
        "markPrice": "65100", "indexPrice": "65000"}})


def make_engine(settings: ScanSettings | None = None) -> Engine:
    engine = Engine(load_registry(), ["binance", "bybit"], Scanner(settings or ScanSettings(min_edge_bps=1.0)))
    for v in ("binance", "bybit"):
        engine.set_connected(v, True, T0)
    return engine


def synced_bybit(engine: Engine) -> SyncedBook:
    engine.on_message("bybit", bybit_book("snapshot", 100, [["65200", "2"], ["65190", "1"]],
                                          [["65210", "3"]]), T0)
    sb = engine.books[("bybit", "BTCUSDT")]
    assert sb.state == SYNCED and sb.seq == 100
    return sb


# -- the check itself ----------------------------------------------------------------------
def quote(bid_px: float = 100.0, bid_qty: float = 1.0, ask_px: float = 101.0, ask_qty: float = 1.0,
          ts: int = T0) -> Quote:
    return Quote("x", "BTC/USDT:USDT", "BTCUSDT", bid_px, bid_qty, ask_px, ask_qty, ts, T0)


def funding(rate: float, predicted: float | None = None, interval_h: float = 8.0, mark: float | None = 1.0) -> Funding:
    return Funding(venue="x", symbol="BTC/USDT:USDT", venue_symbol="BTCUSDT", rate=rate, predicted_rate=predicted,
                   interval_h=interval_h, next_funding_ns=T0 + 1, mark_px=mark, ts_exchange_ns=T0, recv_ns=T0)


def delta(bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> BookDelta:
    return BookDelta(venue="x", symbol="BTC/USDT:USDT", venue_symbol="BTCUSDT", bids=bids, asks=asks,
                     ts_exchange_ns=T0, recv_ns=T0)


NAN, INF = math.nan, math.inf


@pytest.mark.parametrize(("event", "want"), [
    (quote(), None),
    (quote(bid_px=0.0, bid_qty=0.0), None),  # an empty side
    (quote(bid_px=NAN), ("bad_price", "bid_px")),
    (quote(ask_px=INF), ("bad_price", "ask_px")),
    (quote(ask_px=-INF), ("bad_price", "ask_px")),
    (quote(bid_px=0.0), ("bad_price", "bid_px")),
    (quote(ask_px=-5.0), ("bad_price", "ask_px")),
    (quote(bid_qty=-1.0), ("bad_size", "bid_qty")),
    (quote(ask_qty=NAN), ("bad_size", "ask_qty")),
    (quote(ask_qty=INF), ("bad_size", "ask_qty")),
    (quote(ts=-1), ("bad_timestamp", "ts_exchange_ns")),
    (delta([(100.0, 0.0), (99.0, 2.0)], [(101.0, 1.0)]), None),  # size 0 removes a level
    (delta([(100.0, 1.0), (NAN, 2.0)], []), ("bad_price", "bids[1] price")),
    (delta([], [(101.0, 1.0), (102.0, -3.0)]), ("bad_size", "asks[1] size")),
    (delta([], [(0.0, 1.0)]), ("bad_price", "asks[0] price")),
    (funding(0.0001, 0.0002), None),
    (funding(-0.05), None),  # the bound itself is plausible
    (funding(0.5), ("bad_funding_rate", "rate")),
    (funding(-0.0501), ("bad_funding_rate", "rate")),
    (funding(NAN), ("bad_funding_rate", "rate")),
    (funding(0.0001, predicted=INF), ("bad_funding_rate", "predicted_rate")),
    (funding(0.0001, interval_h=0.0), ("bad_value", "interval_h")),
    (funding(0.0001, interval_h=NAN), ("bad_value", "interval_h")),
    (funding(0.0001, mark=NAN), ("bad_price", "mark_px")),
    (Trade(venue="x", symbol="s", venue_symbol="S", px=-1.0, qty=1.0, side="buy", trade_id="1",
           ts_exchange_ns=T0, recv_ns=T0), ("bad_price", "px")),
])
def test_plausibility_check(event: object, want: tuple[str, str] | None) -> None:
    got = check(event, Limits())  # type: ignore[arg-type]
    assert (got[:2] if got else None) == want


def test_funding_bound_and_clock_window_are_settings() -> None:
    assert check(funding(0.5), Limits(max_funding_rate=0.6)) is None
    window = 600 * 10**9
    assert check(quote(ts=T0 + window), Limits(), clock_ns=T0) is None
    assert check(quote(ts=T0 + window + 1), Limits(), clock_ns=T0)[:2] == ("bad_timestamp", "ts_exchange_ns")
    assert check(quote(ts=T0 - window - 1), Limits(), clock_ns=T0)[:2] == ("bad_timestamp", "ts_exchange_ns")
    assert check(quote(ts=T0 + window + 1), Limits(clock_window_ns=window * 2), clock_ns=T0) is None
    assert check(quote(ts=T0 + 10 * window), Limits()) is None  # no clock: no window
    assert check(quote(ts=0), Limits(), clock_ns=T0) is None  # 0: the venue gave no time


# -- the book ------------------------------------------------------------------------------
def test_book_refuses_a_nan_price_and_stays_consistent() -> None:
    book = OrderBook()
    book.load([(100.0, 1.0)], [(101.0, 1.0)])
    with pytest.raises(ValueError, match="NaN"):
        book.apply([(NAN, 1.0)], [])
    book.bids.set(NAN, 0.0)  # removing a price that is not there is a no-op
    with pytest.raises(ValueError, match="NaN"):
        book.asks.set(NAN, 2.0)
    assert book.best_bid() == (100.0, 1.0) and book.best_ask() == (101.0, 1.0)
    assert book.bids.top(5) == [(100.0, 1.0)] and book.asks.top(5) == [(101.0, 1.0)]


def test_synced_book_invalidates_on_input_no_book_can_hold() -> None:
    sb = SyncedBook("in_stream")
    ok = sb.on_snapshot(BookSnapshot(venue="x", symbol="s", venue_symbol="S", bids=[(100.0, 1.0)],
                                     asks=[(101.0, 1.0)], seq=1, ts_exchange_ns=0, recv_ns=0))
    assert ok and sb.state == SYNCED
    bad = BookDelta(venue="x", symbol="s", venue_symbol="S", bids=[(NAN, 1.0)], asks=[], seq=2, prev_seq=1,
                    ts_exchange_ns=0, recv_ns=0)
    assert sb.on_delta(bad) is False
    assert (sb.state, sb.resyncs, len(sb.book.bids), len(sb.book.asks)) == (INVALID, 1, 0, 0)
    wrong_type = BookSnapshot(venue="x", symbol="s", venue_symbol="S", bids=[("100", 1.0)], asks=[],  # type: ignore[list-item]
                              seq=3, ts_exchange_ns=0, recv_ns=0)
    assert sb.on_snapshot(wrong_type) is False and sb.resyncs == 2


# -- the engine ----------------------------------------------------------------------------
def test_nan_level_is_dropped_counted_and_its_book_resyncs() -> None:
    engine = make_engine()
    sb = synced_bybit(engine)
    engine.on_message("binance", binance_ticker("BTCUSDT", "64990", "65000"), T0 + 1)
    engine.requests["bybit"].clear()
    engine.on_message("bybit", bybit_book("delta", 101, [["NaN", "5"]], []), T0 + 2)
    st = engine.status["bybit"]
    assert st.decode_errors == 1 and st.errors_by_reason == {"bad_price": 1}
    assert "bids[0] price nan" in st.last_error and "BTCUSDT" in st.last_error and "bybit" in st.last_error
    # The book is marked for resync (and the venue asked for a fresh snapshot) instead of
    # ever holding the level.
    assert sb.state in (INVALID, RESYNCING) and sb.resyncs == 1 and len(sb.book.bids) == 0
    [req] = engine.requests["bybit"]
    assert req.kind == "send" and any('"subscribe"' in m for m in req.payload)
    # Binance is untouched.
    assert engine.status["binance"].decode_errors == 0
    # A fresh snapshot brings the book back, and the next delta applies.
    engine.on_message("bybit", bybit_book("snapshot", 200, [["65200", "2"]], [["65210", "3"]]), T0 + 3)
    engine.on_message("bybit", bybit_book("delta", 201, [["65205", "1"]], []), T0 + 4)
    assert sb.state == SYNCED and sb.book.best_bid() == (65205.0, 1.0)


@pytest.mark.parametrize(("level", "reason"), [
    (["Infinity", "1"], "bad_price"), (["-65200", "1"], "bad_price"), (["0", "1"], "bad_price"),
    (["65200", "-1"], "bad_size"), (["65200", "NaN"], "bad_size"),
])
def test_every_implausible_level_is_dropped(level: list[str], reason: str) -> None:
    engine = make_engine()
    sb = synced_bybit(engine)
    engine.on_message("bybit", bybit_book("delta", 101, [level], []), T0 + 1)
    assert engine.status["bybit"].errors_by_reason == {reason: 1}
    assert sb.resyncs == 1 and sb.state != SYNCED


def test_an_undecodable_book_message_is_caught_by_the_sequence_chain() -> None:
    engine = make_engine()
    sb = synced_bybit(engine)
    engine.on_message("bybit", bybit_book("delta", 101, [["1e999", "1"]], []), T0 + 1)  # too large for a float
    assert engine.status["bybit"].errors_by_reason == {"malformed": 1} and sb.state == SYNCED
    engine.on_message("bybit", bybit_book("delta", 102, [["65201", "1"]], []), T0 + 2)  # 101 was lost
    assert sb.gaps == 1 and sb.resyncs == 1 and sb.state == RESYNCING


def test_nan_and_huge_funding_rates_never_become_opportunities() -> None:
    engine = make_engine()
    engine.on_message("binance", binance_ticker("BTCUSDT", "64990", "65000"), T0)
    synced_bybit(engine)
    engine.on_message("binance", binance_mark("BTCUSDT", "0.0001"), T0 + 1)
    before = engine.funding[("binance", "BTCUSDT")]
    engine.on_message("bybit", bybit_ticker("BTCUSDT", "NaN"), T0 + 2)
    engine.on_message("bybit", bybit_ticker("BTCUSDT", "0.5"), T0 + 3)
    engine.on_message("binance", binance_mark("BTCUSDT", "nan"), T0 + 4)
    assert engine.status["bybit"].errors_by_reason == {"bad_funding_rate": 2}
    assert engine.status["binance"].errors_by_reason == {"bad_funding_rate": 1}
    assert engine.funding[("binance", "BTCUSDT")] is before and ("bybit", "BTCUSDT") not in engine.funding
    assert [o for o in engine.scanner.lifecycle.active.values() if o.kind == "funding"] == []
    # A rate inside the bound is data: 0.0004 per 8 h on Bybit against 0.0001 per 8 h on Binance.
    engine.on_message("bybit", bybit_ticker("BTCUSDT", "0.0004"), T0 + 5)
    assert engine.funding[("bybit", "BTCUSDT")].rate == 0.0004


def test_a_rejected_delta_does_not_leave_its_value_in_merged_ticker_state() -> None:
    engine = make_engine()
    engine.on_message("bybit", bybit_ticker("BTCUSDT", "0.0001"), T0)
    delta = {"topic": "tickers.BTCUSDT", "type": "delta", "ts": T0_MS, "data": {"symbol": "BTCUSDT"}}
    engine.on_message("bybit", json.dumps({**delta, "data": {"symbol": "BTCUSDT", "fundingRate": "NaN"}}), T0 + 1)
    engine.on_message("bybit", json.dumps({**delta, "data": {"symbol": "BTCUSDT", "markPrice": "65200"}}), T0 + 2)
    # One error, not one per later delta: the NaN did not stay in Bybit's merged state.
    assert engine.status["bybit"].errors_by_reason == {"bad_funding_rate": 1}
    assert engine.funding[("bybit", "BTCUSDT")].rate == 0.0001


def test_the_funding_bound_is_configurable() -> None:
    engine = make_engine(ScanSettings(max_funding_rate=0.6))
    engine.on_message("bybit", bybit_ticker("BTCUSDT", "0.5"), T0)
    assert engine.status["bybit"].decode_errors == 0 and engine.funding[("bybit", "BTCUSDT")].rate == 0.5


def test_timestamps_far_from_the_engine_clock_are_dropped() -> None:
    engine = make_engine()
    far = T0_MS + 86_400_000 * 365 * 50  # fifty years ahead
    engine.on_message("binance", binance_ticker("BTCUSDT", "64990", "65000", t_ms=far), T0)
    engine.on_message("binance", binance_ticker("BTCUSDT", "64990", "65000", t_ms=T0_MS - 601_000), T0)
    assert engine.status["binance"].errors_by_reason == {"bad_timestamp": 2}
    assert engine.now_ns == T0  # the clock is the receive time, never the venue's


def test_exception_while_handling_a_message_is_contained(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine()
    sb = synced_bybit(engine)

    def broken(*args: object) -> None:
        raise KeyError("boom")

    monkeypatch.setattr(engine.scanner, "on_book", broken)
    engine.on_message("bybit", bybit_book("delta", 101, [["65201", "1"]], []), T0 + 1)
    st = engine.status["bybit"]
    assert st.errors_by_reason == {"error": 1} and "KeyError" in st.last_error
    assert sb.resyncs == 1 and sb.state != SYNCED
    monkeypatch.undo()
    engine.on_message("binance", binance_ticker("BTCUSDT", "64990", "65000"), T0 + 2)
    assert engine.status["binance"].decode_errors == 0 and engine.event_counts[("binance", "quote")] == 1


def test_parser_exceptions_are_decode_errors(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine()
    adapter = engine.adapters["binance"]

    def broken(raw: object, recv_ns: int) -> list:
        raise ZeroDivisionError("division by zero")

    monkeypatch.setattr(adapter, "parse", broken)
    engine.on_message("binance", b"{}", T0)
    assert engine.status["binance"].errors_by_reason == {"error": 1}
    assert "ZeroDivisionError" in engine.status["binance"].last_error


def test_invalid_utf8_is_a_malformed_message() -> None:
    engine = make_engine()
    raw = b'{"stream":"btc\xff\xfe","data":{}}'
    engine.on_message("binance", raw, T0)
    st = engine.status["binance"]
    assert raw.index(b"\xff") == 14
    assert st.errors_by_reason == {"malformed": 1} and "invalid UTF-8 at byte 14" in st.last_error


def test_metrics_count_decode_errors_by_venue_and_reason() -> None:
    engine = make_engine()
    synced_bybit(engine)
    engine.on_message("bybit", bybit_book("delta", 101, [["NaN", "5"]], []), T0 + 1)
    engine.on_message("bybit", bybit_ticker("BTCUSDT", "0.9"), T0 + 2)
    engine.on_message("bybit", bybit_ticker("BTCUSDT", "-0.9"), T0 + 3)
    engine.on_message("binance", b"not json", T0 + 4)
    with TestClient(create_app(ApiContext(engine, ApiSettings()))) as c:
        text = c.get("/metrics").text
    assert 'perparb_decode_errors_by_reason_total{reason="bad_price",venue="bybit"} 1.0' in text
    assert 'perparb_decode_errors_by_reason_total{reason="bad_funding_rate",venue="bybit"} 2.0' in text
    assert 'perparb_decode_errors_by_reason_total{reason="malformed",venue="binance"} 1.0' in text
    assert 'perparb_decode_errors_total{venue="bybit"} 3.0' in text


# -- perparb decode ------------------------------------------------------------------------
def test_decode_reports_every_bad_line_and_goes_on(tmp_path) -> None:  # type: ignore[no-untyped-def]
    good = binance_ticker("BTCUSDT", "64990", "65000").encode()
    lines = [
        good,
        b'{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","s":"BTC\xff\xfeUSDT"}}',  # line 2: bad UTF-8
        binance_ticker("BTCUSDT", "NaN", "65000").encode(),  # line 3
        binance_ticker("BTCUSDT", "-5", "65000").encode(),  # line 4
        b"\x00\x01\x02garbage",  # line 5
        binance_mark("BTCUSDT", "0.5").encode(),  # line 6
        good,  # line 7
    ]
    path = tmp_path / "raw.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    result = CliRunner().invoke(app, ["decode", "--venue", "binance", str(path)])
    assert result.exit_code == 1
    rows = [json.loads(x) for x in result.stdout.splitlines()]
    assert [(r["bid_px"], r["ask_px"]) for r in rows] == [(64990.0, 65000.0), (64990.0, 65000.0)]
    err = result.stderr.splitlines()
    assert [e.split(":", 1)[0] for e in err] == ["line 2", "line 3", "line 4", "line 5", "line 6"]
    bad_at = lines[1].index(b"\xff")
    assert f"invalid UTF-8 at byte {bad_at}" in err[0]
    assert "bid_px nan" in err[1] and "bad_price" in err[1]
    assert "bid_px -5.0" in err[2]
    assert "rate 0.5" in err[4] and "bad_funding_rate" in err[4]
