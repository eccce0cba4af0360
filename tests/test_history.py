"""Normalized history: events go to Parquet partitioned by date and venue, and ``perparb
query`` answers SQL over it with values worked out here from the events written."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perparb.bus.messages import Fill
from perparb.cli import app
from perparb.engine import Engine
from perparb.instruments.snapshot import load_registry
from perparb.model import BookSnapshot, Funding, Opportunity, Quote, Trade
from perparb.store.capture import CaptureWriter
from perparb.store.parquet import ParquetSink

S = 1_000_000_000
MIDNIGHT = 1_795_305_600 * S  # 2026-11-22 00:00:00 UTC
T0 = MIDNIGHT + 3600 * S  # 01:00:00
runner = CliRunner()

BIN_ASK = [100.0 + k for k in range(12)]
BYB_BID = [101.0 + 2 * k for k in range(12)]
BOOK_BIDS = [(99.5, 1.0), (99.0, 2.0), (98.0, 3.0)]
BOOK_ASKS = [(100.5, 1.5), (101.0, 2.5), (102.0, 3.5)]
FUNDING = [("binance", MIDNIGHT - 3600 * S, 0.0001, 8.0), ("binance", MIDNIGHT + 3600 * S, 0.0003, 8.0),
           ("bybit", MIDNIGHT + 1800 * S, 0.0002, 4.0)]
OPPS = [("a", "open", T0, T0), ("a", "update", T0 + 2 * S, T0), ("a", "close", T0 + 7 * S, T0),
        ("b", "open", T0 + 10 * S, T0 + 10 * S), ("b", "close", T0 + 13 * S, T0 + 10 * S),
        ("c", "open", T0 + 20 * S, T0 + 20 * S)]  # still open: no duration


def _quote(venue: str, t: int, bid: float, ask: float) -> Quote:
    return Quote(venue=venue, symbol="BTC/USDT:USDT", venue_symbol="BTCUSDT", bid_px=bid, bid_qty=1.0, ask_px=ask,
                 ask_qty=2.0, ts_exchange_ns=t - 5, recv_ns=t)


@pytest.fixture
def data(tmp_path: Path) -> Path:
    out = tmp_path / "pq"
    engine = Engine(load_registry(), ["binance", "bybit"])
    sink = ParquetSink(out, depth=2, interval_s=1.0)
    sink.attach(engine)
    for venue, t, rate, interval in FUNDING:
        sink.on_event(Funding(venue=venue, symbol="BTC/USDT:USDT", venue_symbol="BTCUSDT", rate=rate,
                              interval_h=interval, next_funding_ns=t + 3600 * S, ts_exchange_ns=t, recv_ns=t))
    engine.on_event(BookSnapshot(venue="binance", symbol="BTC/USDT:USDT", venue_symbol="BTCUSDT",
                                 bids=list(BOOK_BIDS), asks=list(BOOK_ASKS), ts_exchange_ns=T0 - S, recv_ns=T0 - S))
    for k in range(12):  # every 10 s for two minutes; bybit's quote lands 1 ms before binance's
        t = T0 + k * 10 * S
        sink.on_event(_quote("bybit", t - 1_000_000, BYB_BID[k], BYB_BID[k] + 1))
        sink.on_event(_quote("binance", t, BIN_ASK[k] - 1, BIN_ASK[k]))
    for oid, event, t, first in OPPS:
        sink.on_opportunity(event, Opportunity(id=oid, kind="spread", asset="BTC", buy_venue="binance",
                                               sell_venue="bybit", buy_symbol="BTC/USDT:USDT",
                                               sell_symbol="BTC/USDT:USDT", edge_bps=3.0, ts_ns=t,
                                               first_seen_ns=first))
    sink.on_fill(Fill(id="f1", ts_ns=T0, venue="bybit", symbol="BTC/USDT:USDT", venue_symbol="BTCUSDT", side="sell",
                      qty=0.5, px=101.0, fee=0.02, fee_asset="USDT", liquidity="taker", order_id="o1", intent_id="i1"))
    sink.close()
    return out


def _query(data: Path, sql: str) -> list[dict[str, object]]:
    result = runner.invoke(app, ["query", sql, "--data", str(data), "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_partitions_are_by_date_and_venue(data: Path) -> None:
    parts = sorted(str(p.parent.relative_to(data)) for p in data.glob("**/*.parquet"))
    assert "funding/date=2026-11-21/venue=binance" in parts
    assert "funding/date=2026-11-22/venue=binance" in parts
    assert "funding/date=2026-11-22/venue=bybit" in parts
    assert "quotes/date=2026-11-22/venue=binance" in parts
    assert "opportunities/date=2026-11-22" in parts
    assert "fills/date=2026-11-22/venue=bybit" in parts


def test_spread_between_two_venues_by_minute(data: Path) -> None:
    rows = _query(data, """
        SELECT time_bucket(INTERVAL 1 minute, a.ts) AS minute,
               avg((b.bid_px - a.ask_px) / a.ask_px * 1e4) AS spread_bps, count(*) AS n
        FROM (SELECT * FROM quotes WHERE venue = 'binance') a
        ASOF JOIN (SELECT * FROM quotes WHERE venue = 'bybit') b ON a.asset = b.asset AND a.ts_ns >= b.ts_ns
        WHERE a.asset = 'BTC' AND a.date = DATE '2026-11-22'
        GROUP BY minute ORDER BY minute""")
    expect = [sum((BYB_BID[k] - BIN_ASK[k]) / BIN_ASK[k] * 1e4 for k in ks) / 6 for ks in (range(6), range(6, 12))]
    assert [r["minute"] for r in rows] == ["2026-11-22 01:00:00", "2026-11-22 01:01:00"]
    assert [r["n"] for r in rows] == [6, 6]
    assert [r["spread_bps"] for r in rows] == pytest.approx(expect)


def test_funding_by_venue(data: Path) -> None:
    rows = _query(data, """
        SELECT venue, avg(rate * 24 / interval_h * 365) AS apr, count(*) AS n
        FROM funding GROUP BY venue ORDER BY venue""")
    assert rows == [
        {"venue": "binance", "apr": pytest.approx((0.0001 + 0.0003) / 2 * 3 * 365), "n": 2},
        {"venue": "bybit", "apr": pytest.approx(0.0002 * 6 * 365), "n": 1},
    ]


def test_opportunity_durations(data: Path) -> None:
    rows = _query(data, """
        SELECT id, (max(ts_ns) FILTER (WHERE event = 'close') - min(first_seen_ns)) / 1e9 AS duration_s
        FROM opportunities GROUP BY id HAVING count(*) FILTER (WHERE event = 'close') > 0 ORDER BY id""")
    assert rows == [{"id": "a", "duration_s": 7.0}, {"id": "b", "duration_s": 3.0}]


def test_book_snapshots_hold_the_top_levels(data: Path) -> None:
    rows = _query(data, """
        SELECT side, level, px, qty FROM books
        WHERE ts_ns = (SELECT max(ts_ns) FROM books) AND venue = 'binance' ORDER BY side, level""")
    assert [(r["side"], r["level"], r["px"], r["qty"]) for r in rows] == [
        ("ask", 0, *BOOK_ASKS[0]), ("ask", 1, *BOOK_ASKS[1]), ("bid", 0, *BOOK_BIDS[0]), ("bid", 1, *BOOK_BIDS[1])]
    # Sampled on the engine clock at the first event a second or more after the last sample:
    # a funding event at T0 took one before the book existed, then each 10 s pair of quotes
    # after it takes one (bybit's, 1 ms ahead): 11, every one after the book was loaded.
    rows = _query(data, "SELECT DISTINCT ts_ns FROM books ORDER BY ts_ns")
    assert [r["ts_ns"] for r in rows] == [T0 + k * 10 * S - 1_000_000 for k in range(1, 12)]


def test_fills_and_csv_output(data: Path) -> None:
    result = runner.invoke(app, ["query", "SELECT venue, side, qty * px AS notional FROM fills", "--data", str(data),
                                 "--csv"])
    assert result.exit_code == 0, result.output
    assert list(csv.reader(io.StringIO(result.stdout))) == [["venue", "side", "notional"], ["bybit", "sell", "50.5"]]


def test_a_bad_query_and_a_missing_directory_are_clear_errors(data: Path, tmp_path: Path) -> None:
    bad = runner.invoke(app, ["query", "SELECT nope FROM quotes", "--data", str(data)])
    assert bad.exit_code == 1 and "nope" in bad.output
    missing = runner.invoke(app, ["query", "SELECT 1", "--data", str(tmp_path / "absent")])
    assert missing.exit_code == 2 and "absent" in missing.output


def test_empty_tables_are_empty_views(tmp_path: Path) -> None:
    (tmp_path / "pq").mkdir()
    assert _query(tmp_path / "pq", "SELECT count(*) AS n FROM fills") == [{"n": 0}]


def _ticker(t_ms: int, bid: str, ask: str) -> str:
    return json.dumps({"stream": "btcusdt@bookTicker", "data": {
        "e": "bookTicker", "u": t_ms, "s": "BTCUSDT", "b": bid, "B": "3", "a": ask, "A": "4", "T": t_ms, "E": t_ms}})


def test_export_writes_a_captures_quotes(tmp_path: Path) -> None:
    cap = tmp_path / "cap.jsonl.zst"
    prices = [("100.5", "100.7"), ("100.6", "100.9"), ("99.1", "99.2")]
    with CaptureWriter(cap) as w:
        for i, (bid, ask) in enumerate(prices):
            t = T0 + i * S
            w.write("binance", "ws", _ticker(t // 1_000_000, bid, ask), t)
    out = tmp_path / "pq"
    result = runner.invoke(app, ["export", str(cap), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["records"] == 3
    rows = _query(out, "SELECT ts_ns, venue, asset, symbol, bid_px, ask_px, bid_qty, ask_qty FROM quotes ORDER BY ts_ns")
    assert rows == [{"ts_ns": T0 + i * S, "venue": "binance", "asset": "BTC", "symbol": "BTC/USDT:USDT",
                     "bid_px": float(b), "ask_px": float(a), "bid_qty": 3.0, "ask_qty": 4.0}
                    for i, (b, a) in enumerate(prices)]


def test_a_live_recording_writes_the_same_quotes_as_exporting_its_capture(tmp_path: Path) -> None:
    """Live sessions write Parquet behind a queue; exporting what they recorded gives the
    same rows (the same messages through the same decoders)."""
    import subprocess
    import sys

    exe = Path(sys.executable).with_name("perparb")
    live, exported, rec = tmp_path / "live", tmp_path / "exported", tmp_path / "rec"
    proc = subprocess.run([str(exe), "record", "--sim", "--venues", "binance,okx", "--assets", "BTC,ETH",
                           "--duration", "3", "--out", str(rec), "--set", f"storage.parquet_dir={live}", "--json"],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    result = runner.invoke(app, ["export", str(rec), "--out", str(exported)])
    assert result.exit_code == 0, result.output
    sql = "SELECT venue, ts_ns, symbol, bid_px, ask_px, bid_qty, ask_qty FROM quotes ORDER BY ALL"
    rows = _query(live, sql)
    assert len(rows) > 20 and {r["venue"] for r in rows} == {"binance", "okx"}
    assert rows == _query(exported, sql)
    fsql = "SELECT venue, ts_ns, symbol, rate, interval_h FROM funding ORDER BY ALL"
    assert _query(live, fsql) == _query(exported, fsql)


def test_exporting_a_capture_twice_gives_byte_identical_files(tmp_path: Path) -> None:
    cap = tmp_path / "cap.jsonl"
    with CaptureWriter(cap) as w:
        for i in range(50):
            t = T0 + i * 100_000_000
            w.write("binance", "ws", _ticker(t // 1_000_000, f"{100 + i * 0.1:.1f}", f"{100.2 + i * 0.1:.1f}"), t)
    outs = [tmp_path / "a", tmp_path / "b"]
    for out in outs:
        assert runner.invoke(app, ["export", str(cap), "--out", str(out)]).exit_code == 0
    files = [sorted(p.relative_to(out) for p in out.glob("**/*.parquet")) for out in outs]
    assert files[0] == files[1] and files[0]
    assert all((outs[0] / f).read_bytes() == (outs[1] / f).read_bytes() for f in files[0])


def test_trades_by_venue(tmp_path: Path) -> None:
    engine = Engine(load_registry(), ["binance", "bybit"])
    sink = ParquetSink(tmp_path / "pq", depth=0)
    sink.attach(engine)
    trades = [("binance", 100.0, 0.5, "buy"), ("binance", 102.0, 1.5, "sell"), ("bybit", 101.0, 2.0, "buy")]
    for i, (venue, px, qty, side) in enumerate(trades):
        engine.on_event(Trade(venue=venue, symbol="BTC/USDT:USDT", venue_symbol="BTCUSDT", px=px, qty=qty,
                              side=side, trade_id=str(i), ts_exchange_ns=T0 + i, recv_ns=T0 + i))
    sink.close()
    rows = _query(tmp_path / "pq", """
        SELECT venue, sum(px * qty) / sum(qty) AS vwap, sum(qty) FILTER (WHERE side = 'buy') AS bought
        FROM trades WHERE asset = 'BTC' GROUP BY venue ORDER BY venue""")
    assert rows == [{"venue": "binance", "vwap": pytest.approx((100 * 0.5 + 102 * 1.5) / 2.0), "bought": 0.5},
                    {"venue": "bybit", "vwap": pytest.approx(101.0), "bought": 2.0}]
