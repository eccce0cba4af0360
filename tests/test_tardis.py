"""Tardis.dev CSV inputs: small gzip'd files in Tardis's documented column layouts, through
replay's books, scanner and paper pipeline, against books, edges and fills worked out here."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from perparb.config import Settings
from perparb.instruments.registry import Registry
from perparb.model import Instrument
from perparb.replay import replay
from perparb.scanner.core import Scanner
from perparb.store.capture import ReadReport
from perparb.trading_settings import StrategySettings

T0 = 1_709_251_200_000_000  # 2024-03-01 00:00:00 UTC, in microseconds as Tardis writes times
S = 1_000_000  # microseconds
L2 = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"
TRADES = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount"
QUOTES = "exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount"
TICKER = ("exchange,symbol,timestamp,local_timestamp,funding_timestamp,funding_rate,predicted_funding_rate,"
          "open_interest,last_price,index_price,mark_price")
SNAP5 = "exchange,symbol,timestamp,local_timestamp," + ",".join(
    f"{side}[{i}].{what}" for i in range(5) for side in ("asks", "bids") for what in ("price", "amount"))

BN = Instrument(venue="binance", venue_symbol="BTCUSDT", symbol="BTC/USDT:USDT", asset="BTC", quote="USDT",
                settle="USDT", tick_size=0.1, lot_size=0.001, min_qty=0.001, taker_fee=0.0005, maker_fee=0.0002)
# OKX amounts are contracts of 0.01 BTC
OK = Instrument(venue="okx", venue_symbol="BTC-USDT-SWAP", symbol="BTC/USDT:USDT", asset="BTC", quote="USDT",
                settle="USDT", contract_size=0.01, tick_size=0.1, lot_size=1.0, min_qty=1.0, taker_fee=0.0005,
                maker_fee=0.0002)
HL = Instrument(venue="hyperliquid", venue_symbol="BTC", symbol="BTC/USDC:USDC", asset="BTC", quote="USDC",
                settle="USDC", lot_size=0.00001, funding_interval_h=1.0)


def write(path: Path, header: str, rows: list[str]) -> Path:
    with gzip.open(path, "wt", newline="") as fh:
        fh.write(header + "\n" + "".join(r + "\n" for r in rows))
    return path


def l2(ex: str, sym: str, local: int, snap: bool, side: str, px: float, amount: float) -> str:
    # the exchange's timestamp is 40 ms before Tardis received the message
    return f"{ex},{sym},{local - 40_000},{local},{'true' if snap else 'false'},{side},{px},{amount}"


def spread_inputs(tmp: Path) -> list[Path]:
    bn = [
        l2("binance-futures", "BTCUSDT", T0 - S, False, "bid", 59_000.0, 9.0),  # before the first snapshot
        l2("binance-futures", "BTCUSDT", T0, True, "bid", 60_000.0, 1.0),
        l2("binance-futures", "BTCUSDT", T0, True, "bid", 59_990.0, 2.0),
        l2("binance-futures", "BTCUSDT", T0, True, "ask", 60_010.0, 0.5),
        l2("binance-futures", "BTCUSDT", T0, True, "ask", 60_020.0, 1.5),
        l2("binance-futures", "BTCUSDT", T0 + S, False, "ask", 60_010.0, 0.25),
        l2("binance-futures", "BTCUSDT", T0 + S, False, "bid", 60_005.0, 0.5),
    ]
    ok = [
        l2("okex-swap", "BTC-USDT-SWAP", T0 + S // 2, True, "bid", 60_000.0, 30),
        l2("okex-swap", "BTC-USDT-SWAP", T0 + S // 2, True, "bid", 59_990.0, 100),
        l2("okex-swap", "BTC-USDT-SWAP", T0 + S // 2, True, "ask", 60_020.0, 50),
        l2("okex-swap", "BTC-USDT-SWAP", T0 + S // 2, True, "ask", 60_030.0, 80),
        # one message two seconds in: the okx book moves up 160 and a gap opens
        l2("okex-swap", "BTC-USDT-SWAP", T0 + 2 * S, False, "bid", 60_000.0, 0),
        l2("okex-swap", "BTC-USDT-SWAP", T0 + 2 * S, False, "bid", 59_990.0, 0),
        l2("okex-swap", "BTC-USDT-SWAP", T0 + 2 * S, False, "bid", 60_160.0, 25),
        l2("okex-swap", "BTC-USDT-SWAP", T0 + 2 * S, False, "bid", 60_140.0, 100),
        l2("okex-swap", "BTC-USDT-SWAP", T0 + 2 * S, False, "ask", 60_020.0, 0),
        l2("okex-swap", "BTC-USDT-SWAP", T0 + 2 * S, False, "ask", 60_030.0, 0),
        l2("okex-swap", "BTC-USDT-SWAP", T0 + 2 * S, False, "ask", 60_170.0, 50),
        l2("okex-swap", "BTC-USDT-SWAP", T0 + 2 * S, False, "ask", 60_180.0, 75),
    ]
    trades = [f"binance-futures,BTCUSDT,{T0 + 3 * S - 40_000},{T0 + 3 * S},4242,buy,60010.0,0.1"]
    return [
        write(tmp / "binance-futures_incremental_book_L2_2024-03-01_BTCUSDT.csv.gz", L2, bn),
        write(tmp / "okex-swap_incremental_book_L2_2024-03-01_BTC-USDT-SWAP.csv.gz", L2, ok),
        write(tmp / "binance-futures_trades_2024-03-01_BTCUSDT.csv.gz", TRADES, trades),
    ]


def book(scanner: Scanner, venue: str, symbol: str) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    sb = scanner.legs["BTC"][(venue, symbol)].book
    assert sb is not None and sb.state == "synced"
    return sb.book.bids.top(50), sb.book.asks.top(50)


def test_incremental_books_and_the_spread_they_open(tmp_path: Path) -> None:
    scanner = Scanner()
    report = ReadReport()
    out = tmp_path / "opps.jsonl"
    with out.open("wb") as fh:
        summary = replay(spread_inputs(tmp_path), scanner, Registry([BN, OK]), fh, report)
    assert report.problems == [] and summary["bad_lines"] == 0 and summary["unreadable"] == []
    assert summary["tardis_rows"] == 7 + 12 + 1
    assert summary["tardis_skipped"] == {"incremental_book_L2 rows before the symbol's first snapshot": 1}
    assert summary["venues"] == ["binance", "okx"]

    # binance: the snapshot, then 60,010 resized to 0.25 and a bid at 60,005 added
    assert book(scanner, "binance", "BTCUSDT") == ([(60_005.0, 0.5), (60_000.0, 1.0), (59_990.0, 2.0)],
                                                   [(60_010.0, 0.25), (60_020.0, 1.5)])
    # okx: contracts of 0.01 BTC; the second message removed the snapshot's four levels
    bids, asks = book(scanner, "okx", "BTC-USDT-SWAP")
    assert bids == [(60_160.0, pytest.approx(0.25)), (60_140.0, pytest.approx(1.0))]
    assert asks == [(60_170.0, pytest.approx(0.5)), (60_180.0, pytest.approx(0.75))]

    events = [json.loads(line) for line in out.read_text().splitlines()]
    spreads = [e for e in events if e["kind"] == "spread"]
    assert [e["event"] for e in spreads][:1] == ["open"]
    o = spreads[0]
    assert (o["buy_venue"], o["sell_venue"], o["ts_ns"]) == ("binance", "okx", (T0 + 2 * S) * 1000)
    # Buy binance's asks, sell okx's bids. Exit cost per unit: half of both spreads plus the
    # taker fee of each exit leg; the top level (0.25 @ 60,010 against 0.25 @ 60,160) clears it,
    # the next (60,020 against 60,140) does not: 0.25 BTC.
    fee = 0.0005
    exit_unit = 0.5 * ((60_010 - 60_005) + (60_170 - 60_160)) + fee * 60_005 + fee * 60_170
    assert (60_140 * (1 - fee) - 60_020 * (1 + fee) - exit_unit) < 0 < (60_160 * (1 - fee) - 60_010 * (1 + fee)
                                                                        - exit_unit)
    size, cost, proceeds = 0.25, 0.25 * 60_010, 0.25 * 60_160
    net = proceeds * (1 - fee) - cost * (1 + fee) - exit_unit * size
    assert o["size_base"] == pytest.approx(size)
    assert (o["buy_px"], o["sell_px"]) == (pytest.approx(60_010.0), pytest.approx(60_160.0))
    assert o["edge_bps"] == pytest.approx(net / cost * 1e4)
    assert o["gross_bps"] == pytest.approx((proceeds - cost) / cost * 1e4)
    assert o["net_profit_quote"] == pytest.approx(net)


def test_paper_fills_on_tardis_books(tmp_path: Path) -> None:
    settings = Settings(strategies=[StrategySettings(name="spread", kind="spread", entry_edge_bps=1.0,
                                                     notional=100_000.0)])
    fills_path = tmp_path / "fills.jsonl"
    with fills_path.open("wb") as fh:
        summary = replay(spread_inputs(tmp_path), Scanner(), Registry([BN, OK]), paper=settings, fills_out=fh)
    fills = [json.loads(line) for line in fills_path.read_text().splitlines()]
    # The opportunity (0.25 BTC) opens at 2 s; both market orders reach the venues 50 ms later
    # (the default latency) and take the top levels: 0.25 @ 60,010 on binance, 25 contracts
    # (0.25 BTC) @ 60,160 on okx. Taker fees: qty * px * 0.0005 in USDT.
    arrival = (T0 + 2 * S) * 1000 + 50_000_000
    got = sorted((f["venue"], f["side"], f["qty"], f["px"], f["fee"], f["ts_ns"]) for f in fills)
    assert got == [
        ("binance", "buy", pytest.approx(0.25), 60_010.0, pytest.approx(0.25 * 60_010 * 0.0005), arrival),
        ("okx", "sell", pytest.approx(0.25), 60_160.0, pytest.approx(0.25 * 60_160 * 0.0005), arrival),
    ]
    paper = summary["paper"]
    assert paper["fills"] == 2
    assert paper["fees"] == pytest.approx(0.25 * (60_010 + 60_160) * 0.0005)


def snap5(ex: str, sym: str, local: int, ask: tuple[float, float], bid: tuple[float, float]) -> str:
    return ",".join([ex, sym, str(local - 40_000), str(local), str(ask[0]), str(ask[1]), str(bid[0]), str(bid[1])]
                    + [""] * 16)


def test_funding_from_derivative_ticker(tmp_path: Path) -> None:
    next_8h = T0 + 8 * 3600 * S
    rows_bn = [
        # before any funding is known: mark and open interest only, no funding event
        f"binance-futures,BTCUSDT,{T0},{T0 + 100},,,,1200.5,60001.0,,60000.0",
        f"binance-futures,BTCUSDT,{T0 + S},{T0 + S + 100},{next_8h},0.0001,,1200.5,60001.0,59990.0,60000.0",
    ]
    rows_ok = [f"okex-swap,BTC-USDT-SWAP,{T0 + 2 * S},{T0 + 2 * S + 100},{next_8h},0.002,0.0015,150000,"
               f"60100.0,59995.0,60050.0"]
    rows_hl = [f"hyperliquid,BTC,{T0 + 30 * 60 * S},{T0 + 30 * 60 * S + 100},,0.0000125,,10.5,,59990.0,60010.0"]
    books = [snap5("binance-futures", "BTCUSDT", T0 + S // 2, (60_001.0, 2.0), (60_000.0, 2.0)),
             snap5("okex-swap", "BTC-USDT-SWAP", T0 + S // 2 + 1, (60_003.0, 200), (60_002.0, 200))]
    paths = [write(tmp_path / "binance-futures_derivative_ticker_2024-03-01_BTCUSDT.csv.gz", TICKER, rows_bn),
             write(tmp_path / "okex-swap_derivative_ticker_2024-03-01_BTC-USDT-SWAP.csv.gz", TICKER, rows_ok),
             write(tmp_path / "hyperliquid_derivative_ticker_2024-03-01_BTC.csv.gz", TICKER, rows_hl),
             write(tmp_path / "books.csv.gz", SNAP5, books)]
    scanner = Scanner()
    out = tmp_path / "opps.jsonl"
    with out.open("wb") as fh:
        summary = replay(paths, scanner, Registry([BN, OK, HL]), fh)
    assert summary["bad_lines"] == 0
    assert summary["tardis_skipped"] == {"derivative_ticker rows without a funding rate": 1}
    legs = scanner.legs["BTC"]
    bn = legs[("binance", "BTCUSDT")].funding
    assert bn is not None
    assert (bn.rate, bn.predicted_rate, bn.interval_h, bn.next_funding_ns) == (0.0001, None, 8.0, next_8h * 1000)
    assert (bn.mark_px, bn.index_px, bn.open_interest) == (60_000.0, 59_990.0, 1200.5)
    assert (bn.ts_exchange_ns, bn.recv_ns) == ((T0 + S) * 1000, (T0 + S + 100) * 1000)
    ok = legs[("okx", "BTC-USDT-SWAP")].funding
    assert ok is not None
    assert (ok.rate, ok.predicted_rate, ok.interval_h, ok.next_funding_ns) == (0.002, 0.0015, 8.0, next_8h * 1000)
    assert ok.open_interest == pytest.approx(150_000 * 0.01)  # contracts to BTC
    hl = legs[("hyperliquid", "BTC")].funding
    assert hl is not None
    # no funding_timestamp: Hyperliquid settles every hour on the hour, next at 01:00
    assert (hl.rate, hl.interval_h, hl.next_funding_ns) == (0.0000125, 1.0, (T0 + 3600 * S) * 1000)
    assert hl.open_interest == 10.5 and hl.mark_px == 60_010.0

    # The carry opens when okx's rate arrives: long binance (0.01 % per 8 h), short okx (0.2 %,
    # 0.15 % predicted), both settling at 08:00 and every 8 h: three settlements in 24 h.
    (o,) = [json.loads(line) for line in out.read_text().splitlines() if '"open"' in line]
    assert (o["kind"], o["long_venue"], o["short_venue"]) == ("funding", "binance", "okx")
    assert o["ts_ns"] == (T0 + 2 * S + 100) * 1000
    assert o["apr"] == pytest.approx((0.002 / 8 - 0.0001 / 8) * 24 * 365)
    assert o["predicted_apr"] == pytest.approx((0.0015 / 8 - 0.0001 / 8) * 24 * 365)
    mid_l, mid_s = 60_000.5, 60_002.5
    size = 10_000 / mid_l  # the scanner's funding notional
    assert o["size_base"] == pytest.approx(size)
    received = size * mid_s * (0.002 + 2 * 0.0015) - size * mid_l * 3 * 0.0001
    assert o["funding_quote"] == pytest.approx(received)
    cost, proceeds = size * 60_001.0, size * 60_002.0
    crossing = (cost - size * mid_l) + (size * mid_s - proceeds)
    assert o["net_carry_quote"] == pytest.approx(received - 2 * (0.0005 * (cost + proceeds) + crossing))


def test_book_snapshot_and_quotes(tmp_path: Path) -> None:
    row = [f"okex-swap,BTC-USDT-SWAP,{T0},{T0 + 10}"]
    for ask, bid in [((60_010.0, 10), (60_000.0, 20)), ((60_020.0, 5), (59_990.0, 1))]:
        row += [str(ask[0]), str(ask[1]), str(bid[0]), str(bid[1])]
    row += [""] * (4 * 3)  # five levels in the header, two filled
    quotes = [f"binance-futures,BTCUSDT,{T0 + 5},{T0 + 20},0.7,60015.5,60004.5,1.25"]
    paths = [write(tmp_path / "okex-swap_book_snapshot_5_2024-03-01_BTC-USDT-SWAP.csv.gz", SNAP5, [",".join(row)]),
             write(tmp_path / "binance-futures_quotes_2024-03-01_BTCUSDT.csv", QUOTES, quotes)]
    scanner = Scanner()
    summary = replay(paths, scanner, Registry([BN, OK]))
    assert summary["bad_lines"] == 0 and summary["tardis_rows"] == 2
    bids, asks = book(scanner, "okx", "BTC-USDT-SWAP")
    assert bids == [(60_000.0, pytest.approx(0.2)), (59_990.0, pytest.approx(0.01))]
    assert asks == [(60_010.0, pytest.approx(0.1)), (60_020.0, pytest.approx(0.05))]
    q = scanner.legs["BTC"][("binance", "BTCUSDT")].quote
    assert q is not None
    assert (q.bid_px, q.bid_qty, q.ask_px, q.ask_qty) == (60_004.5, 1.25, 60_015.5, 0.7)
    assert (q.ts_exchange_ns, q.recv_ns) == ((T0 + 5) * 1000, (T0 + 20) * 1000)


def test_bad_rows_are_counted_with_file_and_line_and_the_run_goes_on(tmp_path: Path) -> None:
    rows = [
        l2("binance-futures", "BTCUSDT", T0, True, "bid", 60_000.0, 1.0),
        l2("binance-futures", "BTCUSDT", T0, True, "ask", 60_010.0, 1.0),
        "binance-futures,BTCUSDT,oops,1,false,bid,1,1",  # line 4: a timestamp that is no number
        "binance-futures,BTCUSDT,1,2,true",  # line 5: too few columns
        l2("binance-futures", "BTCUSDT", T0 + S, False, "bid", 60_001.0, 0.5),  # the book waits for a snapshot
        l2("binance-futures", "BTCUSDT", T0 + 2 * S, True, "bid", 60_002.0, 0.3),
        l2("binance-futures", "BTCUSDT", T0 + 2 * S, True, "ask", 60_012.0, 0.4),
        l2("binance-futures", "BTCUSDT", T0 + 3 * S, False, "bid", -5.0, 1.0),  # line 9: a negative price
        l2("binance-futures", "BTCUSDT", T0 + 4 * S, True, "bid", 60_003.0, 0.6),
        l2("binance-futures", "BTCUSDT", T0 + 4 * S, True, "ask", 60_013.0, 0.7),
        l2("binance-futures", "BTCUSDT", T0 + 5 * S, False, "ask", 60_011.0, 0.2),
        # not in the registry, and no USDⓈ-M name binance's adapter could derive a contract from
        l2("binance-futures", "ETHBUSD", T0 + 6 * S, True, "bid", 3000.0, 1.0),
        l2("binance-futures", "ETHBUSD", T0 + 6 * S, True, "ask", 3001.0, 1.0),
    ]
    path = write(tmp_path / "binance-futures_incremental_book_L2_2024-03-01_BTCUSDT.csv.gz", L2, rows)
    missing = tmp_path / "binance-futures_trades_2024-03-01_BTCUSDT.csv.gz"
    garbage = tmp_path / "okex-swap_trades_2024-03-01_BTC-USDT-SWAP.csv.gz"
    garbage.write_bytes(b"\x1f\x8bnot really gzip")
    scanner = Scanner()
    report = ReadReport()
    summary = replay([path, missing, garbage], scanner, Registry([BN, OK]), report=report)
    assert summary["bad_lines"] == 3
    bad = [p for p in report.problems if p.startswith(f"{path}:")]
    assert [p.split(":")[1] for p in bad[:4]] == ["4", "5", "9", "13"]
    assert "timestamp 'oops'" in bad[0] and "5 columns" in bad[1] and "bids[0] price -5.0" in bad[2]
    assert "unknown symbol 'ETHBUSD'" in bad[3]
    assert summary["tardis_unknown_symbols"] == {"binance-futures ETHBUSD": 2}
    assert sorted(summary["unreadable"]) == sorted([str(missing), str(garbage)])
    assert any(p.startswith(str(garbage)) for p in report.problems)
    # the last good snapshot (4 s) and the delta after it
    assert book(scanner, "binance", "BTCUSDT") == ([(60_003.0, 0.6)], [(60_011.0, 0.2), (60_013.0, 0.7)])


def test_a_bad_row_leaves_its_book_unusable_until_the_next_snapshot(tmp_path: Path) -> None:
    rows = [
        l2("binance-futures", "BTCUSDT", T0, True, "bid", 60_000.0, 1.0),
        l2("binance-futures", "BTCUSDT", T0, True, "ask", 60_010.0, 1.0),
        l2("binance-futures", "BTCUSDT", T0 + S, False, "bid", 60_001.0, 0.5),
        "binance-futures,BTCUSDT,1,2,false,bid,abc,1",  # a level of that message that is no number
        l2("binance-futures", "BTCUSDT", T0 + 2 * S, False, "ask", 60_009.0, 0.5),
    ]
    path = write(tmp_path / "b.csv.gz", L2, rows)
    scanner = Scanner()
    summary = replay([path], scanner, Registry([BN]))
    assert summary["bad_lines"] == 1
    sb = scanner.legs["BTC"][("binance", "BTCUSDT")].book
    assert sb is not None and sb.state != "synced"


def test_unknown_exchange_is_named_with_its_file(tmp_path: Path) -> None:
    path = write(tmp_path / "ftx_trades_2021-01-01_BTC-PERP.csv.gz", TRADES,
                 [f"ftx,BTC-PERP,{T0},{T0},1,buy,30000,1"])
    good = write(tmp_path / "binance-futures_trades_2024-03-01_BTCUSDT.csv.gz", TRADES,
                 [f"binance-futures,BTCUSDT,{T0},{T0 + 1},7,sell,60000,0.5"])
    report = ReadReport()
    summary = replay([path, good], Scanner(), Registry([BN]), report=report)
    assert summary["unreadable"] == [str(path)]
    (problem,) = report.problems
    assert problem.startswith(f"{path}: unknown Tardis exchange 'ftx'") and "okex-swap (okx)" in problem
    assert summary["tardis_messages"] == 1  # the other file went on


def test_unknown_header_is_named(tmp_path: Path) -> None:
    path = write(tmp_path / "x.csv.gz", "a,b,c", ["1,2,3"])
    report = ReadReport()
    summary = replay([path], Scanner(), Registry([BN]), report=report)
    assert summary["unreadable"] == [str(path)]
    assert "no Tardis data type has the header 'a,b,c'" in report.problems[0]


def test_a_crossed_book_waits_for_the_next_snapshot_without_replaying_what_came_between(tmp_path: Path) -> None:
    # Binance books sync live from a REST snapshot, holding diffs until it comes; a Tardis book
    # has its snapshots in the data, so what arrives while it is broken must not be applied later.
    rows = [
        l2("binance-futures", "BTCUSDT", T0, True, "bid", 60_000.0, 1.0),
        l2("binance-futures", "BTCUSDT", T0, True, "ask", 60_010.0, 1.0),
        l2("binance-futures", "BTCUSDT", T0 + S, False, "bid", 60_020.0, 1.0),  # crosses the ask
        l2("binance-futures", "BTCUSDT", T0 + 2 * S, False, "bid", 59_000.0, 5.0),
        l2("binance-futures", "BTCUSDT", T0 + 3 * S, True, "bid", 60_001.0, 1.0),
        l2("binance-futures", "BTCUSDT", T0 + 3 * S, True, "ask", 60_011.0, 2.0),
    ]
    scanner = Scanner()
    summary = replay([write(tmp_path / "b.csv.gz", L2, rows)], scanner, Registry([BN]))
    assert summary["book_resyncs"] == 1
    assert book(scanner, "binance", "BTCUSDT") == ([(60_001.0, 1.0)], [(60_011.0, 2.0)])


def test_perparb_replay_reads_tardis_files(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from perparb.cli import app

    spread_inputs(tmp_path)
    bad = write(tmp_path / "okex-swap_trades_2024-03-01_BTC-USDT-SWAP.csv.gz", TRADES,
                [f"okex-swap,BTC-USDT-SWAP,{T0},{T0 + 5},9,sell,notaprice,1"])
    result = CliRunner().invoke(app, ["replay", str(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["tardis_rows"] == 7 + 12 + 1 + 1 and summary["bad_lines"] == 1
    assert f"{bad}:2: not a number" in result.stderr


def test_a_gzip_file_cut_short_is_read_up_to_the_cut(tmp_path: Path) -> None:
    rows = [f"binance-futures,BTCUSDT,{T0 + i},{T0 + i + 1},{i},buy,60000,0.5" for i in range(20_000)]
    path = write(tmp_path / "binance-futures_trades_2024-03-01_BTCUSDT.csv.gz", TRADES, rows)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    report = ReadReport()
    summary = replay([path], Scanner(), Registry([BN]), report=report)
    assert summary["truncated"] == 1 and summary["unreadable"] == [] and summary["bad_lines"] == 0
    assert 0 < summary["tardis_rows"] < 20_000
    assert summary["tardis_messages"] == summary["tardis_rows"]  # one trade per row
    (problem,) = report.problems
    assert problem.startswith(f"{path}:") and "read as the end of the file" in problem


def test_export_writes_tardis_trades_in_base_units_through_the_bundled_registry(tmp_path: Path) -> None:
    """Native units as each venue writes them: OKX contracts of 0.01 BTC, BitMEX XBTUSD
    contracts of 1 USD (inverse), Binance's 1000PEPE."""
    from typer.testing import CliRunner

    from perparb.cli import app
    from perparb.store.query import connect

    src = tmp_path / "in"
    src.mkdir()
    write(src / "okex-swap_trades_2024-03-01_BTC-USDT-SWAP.csv.gz", TRADES,
          [f"okex-swap,BTC-USDT-SWAP,{T0},{T0 + 1},11,sell,60000.5,3"])
    write(src / "bitmex_trades_2024-03-01_XBTUSD.csv.gz", TRADES,
          [f"bitmex,XBTUSD,{T0 + 2},{T0 + 3},d2028,buy,60000,6000"])
    write(src / "binance-futures_trades_2024-03-01_1000PEPEUSDT.csv.gz", TRADES,
          [f"binance-futures,1000PEPEUSDT,{T0 + 4},{T0 + 5},77,buy,0.012,5000"])
    out = tmp_path / "pq"
    result = CliRunner().invoke(app, ["export", str(src), "--out", str(out), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["tardis_rows"] == 3 and summary["bad_lines"] == 0 and summary["tardis_unknown_symbols"] == {}
    rows = connect(out).execute("SELECT venue, asset, symbol, px, qty, side, trade_id, ts_ns, exchange_ts_ns "
                                "FROM trades ORDER BY ts_ns").fetchall()
    assert rows == [
        ("okx", "BTC", "BTC/USDT:USDT", 60_000.5, pytest.approx(3 * 0.01), "sell", "11", (T0 + 1) * 1000, T0 * 1000),
        ("bitmex", "BTC", "BTC/USD:BTC", 60_000.0, pytest.approx(6000 / 60_000), "buy", "d2028", (T0 + 3) * 1000,
         (T0 + 2) * 1000),
        ("binance", "PEPE", "PEPE/USDT:USDT", pytest.approx(0.012 / 1000), pytest.approx(5000 * 1000), "buy", "77",
         (T0 + 5) * 1000, (T0 + 4) * 1000),
    ]
