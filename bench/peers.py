"""perparb against cryptofeed 2.4.1 on the same recorded files, in one run.

    .venv/bin/python bench/peers.py [--fixtures ../shared/fixtures] [--seconds 1] [--repeats 5]

Builds (once) its own virtualenv with cryptofeed from PyPI (``--venv``, default
``~/.cache/perparb-bench/cryptofeed-2.4.1``; never inside the repository), starts
cryptofeed's side there (``bench/peers_cryptofeed.py``) and runs both sides on every row
in turn, alternating which goes first, ``--repeats`` times; the table shows medians.

Both sides decode every line of the file and apply it to a validated book: sequence
checks on (both always check), CRC32 checksums on for OKX and Bitget (cryptofeed's
``checksum_validation=True``), REST snapshots from the same recording loaded before each
pass and left out of the timing on both sides. Rates are per CPU second of the measuring
process (``time.process_time``), so that other work on a shared machine does not count
against either side; contention still costs both sides cache and frequency.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import msgspec

from peers_snapshots import snapshot_symbols
from perparb.feeds.booksync import SyncedBook
from perparb.instruments.snapshot import load_registry
from perparb.model import BookDelta, BookSnapshot
from perparb.venues import venue_class
from perparb.venues.base import Venue

CRYPTOFEED = "cryptofeed==2.4.1"
HERE = Path(__file__).resolve().parent

# name, label, venue, stream file, REST metadata file (cryptofeed's symbol table), REST snapshots
ROWS: list[dict[str, Any]] = [
    {"row": "binance_depth", "label": "Binance depthUpdate (REST snapshot seeded)", "venue": "binance",
     "file": "binance/cryptofeed_2021-07-22_fstream_depthUpdate.jsonl",
     "metadata": "binance/cryptofeed_2021-07-22_rest_fapi_v1_exchangeInfo_full.jsonl",
     "snapshots": "binance/cryptofeed_2021-07-22_rest_fapi_v1_depth_limit1000.jsonl", "target": 300_000},
    {"row": "okx_books", "label": "OKX books, CRC32 checked on every message", "venue": "okx",
     "file": "okx/cryptofeed_2022-05-13_ws_v5_public_books_UNI-USD-SWAP.jsonl",
     "metadata": "okx/cryptofeed_2022-05-13_rest_v5_public_instruments_SWAP_full.jsonl", "target": 150_000},
    {"row": "gate_books", "label": "Gate futures.order_book_update", "venue": "gate",
     "file": "gate/cryptofeed_2023-05-24_ws_v4_usdt_futures.order_book_update.jsonl",
     "metadata": "gate/cryptofeed_2023-05-24_rest_v4_futures_usdt_contracts_full.jsonl",
     "snapshots": "gate/cryptofeed_2023-05-24_rest_v4_futures_usdt_order_book_with_id.jsonl"},
    {"row": "bitmex_books", "label": "BitMEX orderBookL2", "venue": "bitmex",
     "file": "bitmex/cryptofeed_2021-07-22_ws_realtime_orderBookL2.jsonl",
     "metadata": "bitmex/cryptofeed_2021-07-22_rest_api_v1_instrument_active_full.jsonl"},
    {"row": "bitget_books", "label": "Bitget v1 books (≈ 200 levels per message, CRC32 checked)",
     "venue": "bitget", "file": "bitget/LEGACY_v1_mix_cryptofeed_2022-04-07_ws_books_UNIUSDT.jsonl",
     "metadata": "bitget/LEGACY_v1_mix_cryptofeed_2022-04-07_rest_api_mix_v1_market_contracts_umcbl_full.jsonl",
     "levels": True, "target_levels": 3_000_000},
    {"row": "binance_ticker", "label": "Binance bookTicker (top of book)", "venue": "binance",
     "file": "binance/cryptofeed_2021-07-22_fstream_bookTicker.jsonl",
     "metadata": "binance/cryptofeed_2021-07-22_rest_fapi_v1_exchangeInfo_full.jsonl", "book": False,
     "target": 1_500_000},
]


def _lines(path: Path) -> list[bytes]:
    return [ln.strip() for ln in path.read_bytes().splitlines() if ln.strip()]


# -- the benchmark's virtualenv ------------------------------------------------------------
def ensure_venv(venv: Path) -> Path:
    """The virtualenv's python, creating it and installing cryptofeed the first time."""
    py = venv / "bin" / "python"
    stamp = venv / ".installed"
    if stamp.exists() and stamp.read_text().strip() == CRYPTOFEED:
        return py
    base = getattr(sys, "_base_executable", sys.executable)
    print(f"building {venv} with {CRYPTOFEED} (once)...", file=sys.stderr)
    subprocess.run([base, "-m", "venv", str(venv)], check=True)
    subprocess.run([str(py), "-m", "pip", "install", "--quiet", CRYPTOFEED], check=True)
    stamp.write_text(CRYPTOFEED)
    return py


class Cryptofeed:
    """cryptofeed's side, a long-lived process in its own virtualenv."""

    def __init__(self, py: Path, fixtures: Path) -> None:
        self.proc = subprocess.Popen([str(py), str(HERE / "peers_cryptofeed.py"), str(fixtures)],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)

    def measure(self, row: dict[str, Any], seconds: float) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps({**row, "seconds": seconds}) + "\n")
        self.proc.stdin.flush()
        out: dict[str, Any] = json.loads(self.proc.stdout.readline())
        return out

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait(timeout=30)


# -- perparb's side ------------------------------------------------------------------------
class Perparb:
    """Each line through the venue adapter's ``decode`` (parse plus the plausibility check
    of every price and size; no clock window, the recordings are years old), book events
    applied to ``SyncedBook``s with the venue's sequence rule and checksum, as the engine does."""

    def __init__(self, row: dict[str, Any], fixtures: Path) -> None:
        self.adapter: Venue = venue_class(row["venue"])(load_registry())
        self.lines = _lines(fixtures / row["file"])
        self.books = row.get("book", True)
        decode = self.adapter.decode
        events = [ev for ln in self.lines for ev in decode(ln, 0)]
        self.syms = list(dict.fromkeys(e.venue_symbol for e in events if type(e) in (BookSnapshot, BookDelta)))
        self.snaps: list[BookSnapshot] = []
        if row.get("snapshots"):
            for sym, raw in snapshot_symbols(self.lines, _lines(fixtures / row["snapshots"])).items():
                if sym not in self.adapter.table:
                    continue  # a contract the bundled registry does not list: perparb keeps no book for it
                path = self.adapter.book_snapshot_path(self.adapter.table[sym]) or ""
                self.snaps += [e for e in self.adapter.decode_rest(path, raw, 0) if type(e) is BookSnapshot]
        self.resyncs = 0
        self.levels = 0

    def _pass(self) -> float:
        adapter = self.adapter
        decode = adapter.decode  # parse plus the plausibility check, as the engine runs it
        lines = self.lines
        if not self.books:
            start = time.process_time()
            for line in lines:
                decode(line, 0)
            return time.process_time() - start
        checksum = adapter.book_checksum()
        books = {sym: SyncedBook(adapter.book_sync, checksum) for sym in self.syms}
        for s in self.snaps:
            books[s.venue_symbol].on_snapshot(s)
        get = books.get
        resyncs = levels = 0
        start = time.process_time()
        for line in lines:
            for ev in decode(line, 0):
                t = type(ev)
                if t is BookDelta:
                    sb = get(ev.venue_symbol)
                    if sb is not None:
                        resyncs += not sb.on_delta(ev)  # type: ignore[arg-type]
                        levels += len(ev.bids) + len(ev.asks)  # type: ignore[union-attr]
                elif t is BookSnapshot:
                    sb = get(ev.venue_symbol)
                    if sb is not None:
                        resyncs += not sb.on_snapshot(ev)  # type: ignore[arg-type]
                        levels += len(ev.bids) + len(ev.asks)  # type: ignore[union-attr]
        spent = time.process_time() - start
        self.resyncs, self.levels = resyncs, levels
        return spent

    def measure(self, seconds: float) -> dict[str, Any]:
        return _loop(self._pass, len(self.lines), lambda: self.levels, seconds) | {"resets": self.resyncs}


def _loop(one_pass: Callable[[], float], n_lines: int, levels: Callable[[], int], seconds: float,
          ) -> dict[str, Any]:
    spent = 0.0
    messages = lv = 0
    while spent < seconds:
        spent += one_pass()
        messages += n_lines
        lv += levels()
    return {"messages": messages, "seconds": spent, "msgs_per_s": messages / spent, "levels_per_s": lv / spent}


class _BookTicker(msgspec.Struct):
    e: str
    u: int
    s: str
    b: float
    B: float
    a: float
    A: float
    T: int
    E: int


class _Wrapped(msgspec.Struct):
    stream: str
    data: _BookTicker


def msgspec_ceiling(lines: list[bytes], seconds: float) -> dict[str, Any]:
    """msgspec's bare typed decode of the same messages: the ceiling for a Python decoder."""
    dec = msgspec.json.Decoder(_Wrapped, strict=False).decode

    def one_pass() -> float:
        start = time.process_time()
        for line in lines:
            dec(line)
        return time.process_time() - start
    return _loop(one_pass, len(lines), lambda: 0, seconds)


# -- the table -------------------------------------------------------------------------------
def _k(rate: float) -> str:
    return f"{rate / 1e6:.2f} M" if rate >= 1e6 else f"{rate / 1e3:,.0f} k"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fixtures", type=Path, default=HERE.parents[1] / "shared" / "fixtures")
    ap.add_argument("--seconds", type=float, default=1.0, help="CPU seconds per measurement")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--venv", type=Path, default=Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache"))
                    / "perparb-bench" / "cryptofeed-2.4.1")
    ap.add_argument("--rows", default="", help="comma-separated row names (default: all)")
    args = ap.parse_args()
    rows = [r for r in ROWS if not args.rows or r["row"] in args.rows.split(",")]
    peer = Cryptofeed(ensure_venv(args.venv), args.fixtures.resolve())
    ours = {r["row"]: Perparb(r, args.fixtures) for r in rows}
    ticker = next((r for r in rows if r["row"] == "binance_ticker"), None)
    res: dict[str, dict[str, list[dict[str, Any]]]] = {r["row"]: {"perparb": [], "cryptofeed": [], "msgspec": []}
                                                       for r in rows}
    try:
        for rep in range(args.repeats):
            for r in rows:
                sides: list[tuple[str, Callable[[], dict[str, Any]]]] = [
                    ("perparb", lambda r=r: ours[r["row"]].measure(args.seconds)),
                    ("cryptofeed", lambda r=r: peer.measure(r, args.seconds)),
                ]
                if r is ticker:
                    sides.append(("msgspec", lambda r=r: msgspec_ceiling(ours[r["row"]].lines, args.seconds)))
                for side, fn in sides if rep % 2 == 0 else sides[::-1]:
                    out = fn()
                    if "error" in out:
                        sys.exit(f"{side} {r['row']}: {out['error']}")
                    res[r["row"]][side].append(out)
            print(f"repeat {rep + 1}/{args.repeats} done", file=sys.stderr)
    finally:
        peer.close()

    def med(row: str, side: str, key: str = "msgs_per_s") -> float:
        return statistics.median(o[key] for o in res[row][side])

    print(f"{time.strftime('%Y-%m-%d')}, {platform.python_implementation()} {platform.python_version()}, "
          f"{platform.machine()}, {os.cpu_count()} cores; {CRYPTOFEED}; median of {args.repeats} interleaved "
          f"runs of >= {args.seconds:g} CPU s per side\n")
    print("| input | perparb | cryptofeed | ratio | target | resyncs perparb / cryptofeed |")
    print("|---|---:|---:|---:|---|---:|")
    for r in rows:
        name = r["row"]
        key = "levels_per_s" if r.get("levels") else "msgs_per_s"
        unit = " levels/s" if r.get("levels") else " msg/s"
        ours_, theirs = med(name, "perparb", key), med(name, "cryptofeed", key)
        extra = ""
        if r.get("levels"):
            extra = f" ({_k(med(name, 'perparb'))} msg/s)"
        target = []
        if "target" in r:
            target.append(f"{_k(r['target'])} msg/s: {'met' if med(name, 'perparb') >= r['target'] else 'not met'}")
        if "target_levels" in r:
            target.append(f"{_k(r['target_levels'])} levels/s: "
                          f"{'met' if ours_ >= r['target_levels'] else 'not met'}")
        if r.get("book", True):
            target.append(f"3x: {'met' if ours_ >= 3 * theirs else 'not met'}")
        resets = f"{res[name]['perparb'][0]['resets']} / {res[name]['cryptofeed'][0].get('resets', 0)}"
        print(f"| {r['label']} | {_k(ours_)}{unit}{extra} | {_k(theirs)}{unit if r.get('levels') else ''} | "
              f"{ours_ / theirs:.1f}x | {'; '.join(target)} | {resets} |")
        if name == "binance_ticker":
            print(f"| msgspec bare typed decode of the same bookTicker (ceiling) | {_k(med(name, 'msgspec'))} | "
                  f"| perparb at {med(name, 'perparb') / med(name, 'msgspec'):.0%} of it | | |")


if __name__ == "__main__":
    main()
