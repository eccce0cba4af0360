"""Ledger append throughput: fills journaled per second on SQLite and PostgreSQL.

    .venv/bin/python bench/ledger_append.py [--fills 20000] [--postgres URL] [--batch 1,10]

Each row appends ``--fills`` distinct fills through ``Ledger.append``; ``batch`` fills
share one transaction (1 = a commit per fill; 10 = what one engine tick's matches commit
together through ``JournaledBus.publish_many``). Every fill is committed before append
returns, i.e. before it could be published to any reader.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from pathlib import Path

from perparb.bus.messages import Fill
from perparb.store.ledger import Ledger, PostgresLedger, SqliteLedger


def fills(n: int, tag: str) -> list[Fill]:
    return [Fill(id=f"{tag}-{i}", ts_ns=1_700_000_000_000_000_000 + i, venue="okx", symbol="BTC/USDT:USDT",
                 venue_symbol="BTC-USDT-SWAP", side="buy" if i % 2 else "sell", qty=0.001 * (1 + i % 7),
                 px=50_000.0 + (i % 100) * 0.1, fee=0.025 + i % 3 * 0.001, fee_asset="USDT", liquidity="taker",
                 order_id=f"o{i // 3}", intent_id=f"i{i // 6}") for i in range(n)]


def run(ledger: Ledger, msgs: list[Fill], batch: int) -> float:
    t = time.perf_counter()
    for i in range(0, len(msgs), batch):
        ledger.append(msgs[i:i + batch])
    return len(msgs) / (time.perf_counter() - t)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--fills", type=int, default=20_000)
    ap.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/test")
    ap.add_argument("--batch", default="1,10")
    args = ap.parse_args()
    batches = [int(b) for b in args.batch.split(",")]
    print("| backend | sync | fills per commit | fills/s |\n|---|---|---:|---:|")
    with tempfile.TemporaryDirectory() as tmp:
        for sync in ("normal", "full"):
            for b in batches:
                led = SqliteLedger(Path(tmp) / f"{sync}-{b}.sqlite", sync=sync)
                rate = run(led, fills(args.fills, f"{sync}{b}"), b)
                led.close()
                print(f"| SQLite (WAL) | {sync} | {b} | {rate:,.0f} |", flush=True)
    if args.postgres:
        import psycopg

        for sync in ("normal", "full"):
            for b in batches:
                schema = f"bench_{uuid.uuid4().hex[:10]}"
                pg = PostgresLedger(args.postgres, schema=schema, sync=sync)
                try:
                    rate = run(pg, fills(args.fills, f"{sync}{b}"), b)
                finally:
                    pg.close()
                    with psycopg.connect(args.postgres, autocommit=True) as c:
                        c.execute(f'DROP SCHEMA "{schema}" CASCADE')
                print(f"| PostgreSQL 15 | {sync} | {b} | {rate:,.0f} |", flush=True)


if __name__ == "__main__":
    main()
