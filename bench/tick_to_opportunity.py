"""Tick-to-opportunity latency: from a book update arriving to the updated opportunity
being published, at 1,000 assets on 13 venues, one core.

    .venv/bin/python bench/tick_to_opportunity.py [--assets 1000] [--venues 13] [--updates 200000] [--clock cpu]

Each update is a normalized book delta for one (venue, asset); the timed path is the
book-sync state machine, the book, the scanner's incremental re-evaluation of that asset's
venue pairs (depth walk where a pair crosses) and the lifecycle's listeners. Books are 20
levels a side around a common mid with per-venue noise, so a realistic share of updates
open, update or close an opportunity.
"""

from __future__ import annotations

import argparse
import random
import statistics
import time

from perparb.feeds.booksync import SyncedBook
from perparb.model import BookDelta, BookSnapshot, Instrument, VenueStatus
from perparb.scanner.core import Scanner, ScanSettings


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--assets", type=int, default=1000)
    ap.add_argument("--venues", type=int, default=13)
    ap.add_argument("--updates", type=int, default=200_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--clock", choices=("wall", "cpu"), default="wall",
                    help="cpu: this thread's CPU time, which leaves out time the OS gave other processes "
                         "(use it on a shared machine)")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    venues = [f"v{i:02d}" for i in range(args.venues)]
    status = {v: VenueStatus(venue=v, connected=True) for v in venues}
    scanner = Scanner(ScanSettings(min_edge_bps=2.0, max_quote_age_ms=1e12))
    published = [0]
    scanner.listeners.append(lambda e, o: published.__setitem__(0, published[0] + 1))
    mids = {f"A{a}": 10.0 ** rng.uniform(-3, 4) for a in range(args.assets)}
    books: dict[tuple[str, str], tuple[Instrument, SyncedBook]] = {}
    now = 1
    for asset, mid in mids.items():
        tick = mid * 1e-4
        for v in venues:
            inst = Instrument(venue=v, venue_symbol=asset, symbol=f"{asset}/USDT:USDT", asset=asset, quote="USDT",
                              settle="USDT", taker_fee=0.0002)
            m = mid * (1 + rng.gauss(0, 1e-4))
            bids = [(round(m - tick * (i + 1), 10), rng.uniform(1, 10)) for i in range(20)]
            asks = [(round(m + tick * (i + 1), 10), rng.uniform(1, 10)) for i in range(20)]
            sb = SyncedBook("in_stream")
            sb.on_snapshot(BookSnapshot(venue=v, symbol=inst.symbol, venue_symbol=asset, bids=bids, asks=asks, seq=1,
                                        ts_exchange_ns=now, recv_ns=now))
            scanner.on_book(inst, sb, now, status)
            books[(v, asset)] = (inst, sb)
    keys = list(books)
    # Pre-build the updates so that only the timed path is measured.
    updates = []
    for _ in range(args.updates):
        v, asset = keys[rng.randrange(len(keys))]
        inst, sb = books[(v, asset)]
        mid = mids[asset] * (1 + rng.gauss(0, 2e-4))
        tick = mids[asset] * 1e-4
        updates.append((inst, sb, [(round(mid - tick, 10), rng.uniform(1, 10))],
                        [(round(mid + tick, 10), rng.uniform(1, 10))]))
    clock = time.perf_counter_ns if args.clock == "wall" else time.thread_time_ns
    lat = []
    seqs = {k: 1 for k in keys}
    opened0 = published[0]
    for inst, sb, bids, asks in updates:
        now += 1000
        key = (inst.venue, inst.venue_symbol)
        seq = seqs[key] = seqs[key] + 1
        ev = BookDelta(venue=inst.venue, symbol=inst.symbol, venue_symbol=inst.venue_symbol, bids=bids, asks=asks,
                       first_seq=seq, seq=seq, prev_seq=seq - 1, ts_exchange_ns=now, recv_ns=now)
        t0 = clock()
        if not sb.on_delta(ev):
            sb.on_snapshot(BookSnapshot(venue=inst.venue, symbol=inst.symbol, venue_symbol=inst.venue_symbol,
                                        bids=bids, asks=asks, seq=seq, ts_exchange_ns=now, recv_ns=now))
        scanner.on_book(inst, sb, now, status)
        lat.append(clock() - t0)
    lat.sort()
    q = statistics.quantiles(lat, n=1000)
    print(f"assets {args.assets}, venues {args.venues}, updates {len(lat)}, "
          f"opportunity events {published[0] - opened0}, rejections {dict(scanner.rejections)}")
    print(f"tick-to-opportunity µs ({args.clock} clock): p50 {q[499] / 1e3:.1f}  p90 {q[899] / 1e3:.1f}  p99 {q[989] / 1e3:.1f}  "
          f"p99.9 {q[998] / 1e3:.1f}  max {lat[-1] / 1e3:.1f}")


if __name__ == "__main__":
    main()
