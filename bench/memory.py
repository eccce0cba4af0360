"""Resident memory of the engine holding many deep books plus every venue's quotes and funding.

    .venv/bin/python bench/memory.py [--books 2000] [--levels 500]

Every one of the 13 venues lists ``--assets`` synthetic contracts; ``--books`` of them get a
book through ``Engine.on_event`` (a snapshot of ``--levels`` a side); those on checksum venues
(OKX, Bitget) also keep the venue's level text, as they do when the venue sends checksums.
Then every contract gets a quote and a funding update. Prints the process's resident set (VmRSS) before
the engine exists and after, and the peak (VmHWM).
"""

from __future__ import annotations

import argparse
import random
import time

from perparb.engine import Engine
from perparb.instruments.snapshot import load_registry
from perparb.model import BookSnapshot, Funding, Instrument, Quote
from perparb.venues import venue_ids
from perparb.venues.base import num_text

MIB = 1024 * 1024


def rss(field: str = "VmRSS") -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return 0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--books", type=int, default=2000)
    ap.add_argument("--levels", type=int, default=500)
    ap.add_argument("--assets", type=int, default=1000, help="contracts per venue with a quote and funding")
    args = ap.parse_args()
    rng = random.Random(1)
    registry = load_registry()
    venues = venue_ids()
    before = rss()
    engine = Engine(registry, venues)
    # A synthetic universe beside the snapshot's contracts: every venue lists every asset.
    mids = {f"SYN{a}": 10.0 ** rng.uniform(-3, 4) for a in range(args.assets)}
    contracts = []
    for asset in mids:
        for v in venues:
            inst = Instrument(venue=v, venue_symbol=f"{asset}-PERP", symbol=f"{asset}/USDT:USDT", asset=asset,
                              quote="USDT", settle="USDT")
            registry.add(inst)
            contracts.append(inst)
    now = 1_700_000_000_000_000_000
    engine.advance(now)
    for inst in contracts[: args.books]:
        mid = mids[inst.asset] * (1 + rng.gauss(0, 1e-4))
        tick = mid * 1e-4
        bids = [(mid - tick * (i + 1), rng.uniform(1, 100)) for i in range(args.levels)]
        asks = [(mid + tick * (i + 1), rng.uniform(1, 100)) for i in range(args.levels)]
        text = None
        if engine.adapters[inst.venue].book_checksum() is not None:
            text = ([(num_text(p), num_text(q)) for p, q in bids], [(num_text(p), num_text(q)) for p, q in asks])
        engine.on_event(BookSnapshot(venue=inst.venue, symbol=inst.symbol, venue_symbol=inst.venue_symbol,
                                     bids=bids, asks=asks, seq=1, raw_levels=text, ts_exchange_ns=now, recv_ns=now))
    for inst in contracts:
        mid = mids[inst.asset] * (1 + rng.gauss(0, 1e-4))
        engine.on_event(Quote(inst.venue, inst.symbol, inst.venue_symbol, mid * 0.9999, 5.0, mid * 1.0001, 5.0,
                              now, now))
        engine.on_event(Funding(venue=inst.venue, symbol=inst.symbol, venue_symbol=inst.venue_symbol,
                                rate=rng.uniform(-1e-3, 1e-3), interval_h=8.0, next_funding_ns=now + 3_600_000_000_000,
                                mark_px=mid, index_px=mid, ts_exchange_ns=now, recv_ns=now))
    after = rss()
    levels = sum(len(sb.book.bids) + len(sb.book.asks) for sb in engine.books.values())
    texts = sum(1 for sb in engine.books.values() if sb.text is not None)
    print(f"{time.strftime('%Y-%m-%d')}: {len(engine.books):,} books ({levels:,} levels; {texts} also keep the "
          f"venue's level text), {len(venues)} venues x {args.assets:,} assets of quotes and funding "
          f"({len(engine.funding):,} funding states)")
    print(f"resident memory: {after / MIB:,.0f} MiB (engine {(after - before) / MIB:,.0f} MiB over the "
          f"{before / MIB:,.0f} MiB interpreter and imports); peak {rss('VmHWM') / MIB:,.0f} MiB")


if __name__ == "__main__":
    main()
