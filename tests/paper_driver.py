"""A paper-trading process for the kill -9 test: simulated execution, accounting and the
ledger over a scripted book, funding feed and order stream, all on engine time.

    python paper_driver.py LEDGER STEPS [--sleep-ms MS]

LEDGER is a SQLite file, or ``postgresql://...#schema`` for a PostgreSQL schema.

On start it restores from the ledger (positions, balances, open orders), replays the
scripted market from the beginning and sends only the orders the journal does not know,
so a restarted run continues where the killed one stopped. It prints ``step N`` as it
goes and, at the end, one JSON line ``{"final": ...}`` with the restored-and-continued
state (positions and balances as exact decimal strings).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from paper_helpers import MS, T0, Market, S, inst
from perparb.bus import LEDGER, ORDERS, InProcessBus
from perparb.bus.messages import Order, Transfer
from perparb.execution.sim import SimExecution, SimSettings
from perparb.paper.account import Accounting
from perparb.store.ledger import JournaledBus, open_ledger

BTC = inst(venue="okx", venue_symbol="BTC-USDT-SWAP", lot_size=0.001, funding_interval_h=1.0)
STEP = 100 * MS
SETTLE_EVERY = 60 * S  # a settlement each engine minute keeps the run short


def book_at(k: int) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """Prices wander and never repeat a level, so no liquidity taken earlier is seen again."""
    mid = 100.0 + ((k * 37) % 101) * 0.01 + k * 1e-5
    bids = [(round(mid - 0.05 - j * 0.1, 6), 0.4 + ((k + j) % 4) * 0.1) for j in range(3)]
    asks = [(round(mid + 0.05 + j * 0.1, 6), 0.4 + ((k + 2 * j) % 5) * 0.1) for j in range(3)]
    return bids, asks


def order_at(k: int) -> Order:
    side = "buy" if (k * 7) % 3 else "sell"
    bids, asks = book_at(k)
    kind = ("market", "ioc", "post_only")[k % 3]
    limit = None
    if kind == "ioc":
        limit = asks[1][0] if side == "buy" else bids[1][0]
    elif kind == "post_only":
        limit = round(bids[0][0] - 0.2, 6) if side == "buy" else round(asks[0][0] + 0.2, 6)
    return Order(id=f"o{k}", intent_id=f"i{k}", strategy="driver", ts_ns=T0 + k * STEP, venue="okx",
                 symbol=BTC.symbol, venue_symbol=BTC.venue_symbol, side=side, qty=0.2 + (k % 6) * 0.15,
                 order_type=kind, limit_px=limit)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("ledger")
    ap.add_argument("steps", type=int)
    ap.add_argument("--sleep-ms", type=float, default=0.0)
    args = ap.parse_args()

    m = Market(BTC)
    if args.ledger.startswith("postgresql://"):
        url, _, schema = args.ledger.partition("#")
        ledger = open_ledger(url, schema=schema or "public")
    else:
        ledger = open_ledger(path=args.ledger)
    inner = InProcessBus()
    bus = JournaledBus(inner, ledger)
    sim = SimExecution(bus, m.view, ["okx"], SimSettings(post_only_tif_ms=3_000, resting_check_ms=100))
    acct = Accounting(bus, m.view, mark_interval_ms=1000)
    events = bus.restore()
    acct.restore(msg for _, msg in events)
    sim.restore(bus.orders.open_orders())
    known = set(bus.orders.known)
    if not events:
        bus.publish(LEDGER, Transfer(id="start", ts_ns=T0, venue="okx", asset="USDT", amount=100_000.0))
    for k in range(args.steps):
        at = T0 + k * STEP
        if k % 50 == 0:  # the funding feed: rate and mark for the next settlement
            nxt = (at - T0) // SETTLE_EVERY * SETTLE_EVERY + SETTLE_EVERY + T0
            m.funding(BTC, 0.0001 * (1 + (k // 50) % 3) * (-1 if k % 200 == 0 else 1), nxt, at=at,
                      mark=book_at(k)[0][0][0] + 0.05)
        bids, asks = book_at(k)
        m.snapshot(BTC, bids, asks, at=at)
        o = order_at(k)
        if o.id not in known:
            bus.publish(ORDERS, o)
        print(f"step {k}", flush=True)
        if args.sleep_ms:
            time.sleep(args.sleep_ms / 1000)
    m.advance(T0 + args.steps * STEP + 10 * S)
    book = acct.book
    final = {
        "positions": {f"{v}|{s}": [str(p.size), str(p.basis), str(p.realized), str(p.funding), str(p.fees)]
                      for (v, s), p in sorted(book.positions.items())},
        "collateral": {f"{v}|{a}": str(x) for v, acc in sorted(book.accounts.items())
                       for a, x in sorted(acc.collateral.items())},
        "open_orders": sorted(oo.order.id for oo in bus.orders.open_orders()),
        "counts": {"unknown_fills": bus.orders.counts["unknown_order_fills"], "duplicates": bus.counts["duplicates"]},
    }
    print(json.dumps({"final": final}), flush=True)


if __name__ == "__main__":
    main()
