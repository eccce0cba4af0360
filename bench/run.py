"""Decode and book throughput over the real recorded fixtures, per venue and channel.

    .venv/bin/python bench/run.py [--fixtures ../shared/fixtures] [--seconds 2]

Prints a Markdown table for BENCHMARKS.md (median of --repeats runs). Each row is what
``perparb bench decode`` / ``perparb bench book`` measures for that file.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

from perparb.bench import book_throughput, decode_throughput
from perparb.instruments.snapshot import load_registry
from perparb.venues import venue_class

# (venue, channel, file, filter substring or None)
DECODE = [
    ("binance", "bookTicker", "binance/cryptofeed_2021-07-22_fstream_bookTicker.jsonl", None),
    ("binance", "depthUpdate", "binance/cryptofeed_2021-07-22_fstream_depthUpdate.jsonl", None),
    ("binance", "aggTrade", "binance/cryptofeed_2021-07-22_fstream_aggTrade.jsonl", None),
    ("okx", "books (400-level snapshot + updates)", "okx/cryptofeed_2022-05-13_ws_v5_public_books_UNI-USD-SWAP.jsonl", None),
    ("okx", "bbo-tbt", "okx/crypto-msg-parser-tests_okx-v5-swap_2021-2022_samples.jsonl", b'"bbo-tbt"'),
    ("bybit", "orderbook.500 (snapshot + deltas)", "bybit/nautilus_bybit-histdata_2024-12-01_orderbook.500.XRPUSDT_linear.jsonl", None),
    ("bybit", "orderbook.1", "bybit/tardis-node-tests_bybit-v5_2023-04_samples.jsonl", b'"orderbook.1.'),
    ("gate", "futures.book_ticker", "gate/cryptofeed_2023-05-24_ws_v4_usdt_futures.book_ticker.jsonl", None),
    ("gate", "futures.order_book_update", "gate/cryptofeed_2023-05-24_ws_v4_usdt_futures.order_book_update.jsonl",
     None),
    ("bitget", "books (v1, checksummed)", "bitget/LEGACY_v1_mix_cryptofeed_2022-04-07_ws_books_UNIUSDT.jsonl", None),
    ("bitmex", "quote", "bitmex/cryptofeed_2021-07-22_ws_realtime_quote.jsonl", None),
    ("bitmex", "orderBookL2", "bitmex/cryptofeed_2021-07-22_ws_realtime_orderBookL2.jsonl", None),
    ("deribit", "ticker/quote/trades/book", "deribit/nautilus_ws_v2_BTC-PERPETUAL_ticker_quote_trades_book-grouped_2025-12_2026-01.jsonl", None),
    ("hyperliquid", "samples (trades, l2Book, bbo, ctx)", "hyperliquid/tardis-node-tests_hyperliquid_2024-10_2025-06_samples.jsonl", None),
    ("dydx", "samples (orderbook, trades, markets)", "dydx/tardis-node-tests_dydx-v4_2024-08_samples.jsonl", None),
]
BOOK = [
    ("binance", "binance/cryptofeed_2021-07-22_fstream_depthUpdate.jsonl",
     "binance/cryptofeed_2021-07-22_rest_fapi_v1_depth_limit1000.jsonl"),
    ("okx", "okx/cryptofeed_2022-05-13_ws_v5_public_books_UNI-USD-SWAP.jsonl", None),
    ("bybit", "bybit/nautilus_bybit-histdata_2024-12-01_orderbook.500.XRPUSDT_linear.jsonl", None),
    ("gate", "gate/cryptofeed_2023-05-24_ws_v4_usdt_futures.order_book_update.jsonl",
     "gate/cryptofeed_2023-05-24_rest_v4_futures_usdt_order_book_with_id.jsonl"),
    ("bitget", "bitget/LEGACY_v1_mix_cryptofeed_2022-04-07_ws_books_UNIUSDT.jsonl", None),
    ("bitmex", "bitmex/cryptofeed_2021-07-22_ws_realtime_orderBookL2.jsonl", None),
]


def lines(path: Path, needle: bytes | None) -> list[bytes]:
    return [ln.strip() for ln in path.read_bytes().splitlines() if ln.strip() and (needle is None or needle in ln)]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fixtures", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "fixtures")
    ap.add_argument("--seconds", type=float, default=2.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(f"{time.strftime('%Y-%m-%d')}, {platform.python_implementation()} {platform.python_version()}, "
          f"{platform.machine()}, median of {args.repeats} runs of >= {args.seconds:g} s\n")
    print("| venue | channel | messages/s | events/s |\n|---|---|---:|---:|")
    for venue, channel, name, needle in DECODE:
        rates, ev_rates = [], []
        for _ in range(args.repeats):
            adapter = venue_class(venue)(load_registry())
            r = decode_throughput(adapter, lines(args.fixtures / name, needle), args.seconds)
            rates.append(r["msgs_per_s"])
            ev_rates.append(r["events"] / r["seconds"])
        print(f"| {venue} | {channel} | {statistics.median(rates):,.0f} | {statistics.median(ev_rates):,.0f} |")
    print("\n| venue | book file | book updates/s | levels/s | resyncs |\n|---|---|---:|---:|---:|")
    for venue, name, snap in BOOK:
        runs = []
        for _ in range(args.repeats):
            adapter = venue_class(venue)(load_registry())
            snaps = lines(args.fixtures / snap, None) if snap else []
            runs.append(book_throughput(adapter, lines(args.fixtures / name, None), snaps, args.seconds))
        med = sorted(runs, key=lambda r: r["updates_per_s"])[len(runs) // 2]
        print(f"| {venue} | {Path(name).name} | {med['updates_per_s']:,} | {med['levels_per_s']:,} | "
              f"{med['resyncs']} |")


if __name__ == "__main__":
    main()
