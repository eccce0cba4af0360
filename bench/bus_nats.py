"""Market-data throughput and added latency through the NATS bus, collector → engine.

    .venv/bin/python bench/bus_nats.py [--url nats://127.0.0.1:4222] [--events 200000] [--rate 20000]

The collector (a child process) publishes quotes and 5-level book deltas (the sizes the
feeds produce) through ``NatsBus``; the engine (this process) subscribes to
``market_data``. Throughput: events received per second while the collector publishes as
fast as it can. Latency: receive time minus the collector's stamp (both the same host
clock), at a paced rate below saturation. Starts a private nats-server unless --url is
given. Prints a Markdown table for BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import shutil
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

from perparb.bus import MARKET_DATA
from perparb.bus.nats import NatsBus
from perparb.model import BookDelta, Quote


def event(n: int) -> Quote | BookDelta:
    now = time.time_ns()
    venue = ("binance", "okx", "bybit", "gate")[n % 4]
    if n % 2:
        return Quote(venue, "BTC/USDT:USDT", "BTCUSDT", 60_000.0 + n % 50, 1.5, 60_000.5 + n % 50, 2.0, now, now)
    lv = [(60_000.0 - i * 0.5, 0.1 * (i + 1)) for i in range(5)]
    return BookDelta(venue=venue, symbol="ETH/USDT:USDT", venue_symbol="ETHUSDT", bids=lv, asks=lv[::-1],
                     first_seq=n, seq=n, ts_exchange_ns=now, recv_ns=now)


async def collect(url: str, events: int, rate: float) -> None:
    bus = await NatsBus.connect(url, "bench-collector")
    chunk = max(1, int(rate // 1000)) if rate else 500  # paced: one chunk a millisecond
    start = time.perf_counter()
    for sent in range(0, events, chunk):
        for n in range(sent, min(sent + chunk, events)):
            bus.publish(MARKET_DATA, event(n))
        if rate:
            ahead = (sent + chunk) / rate - (time.perf_counter() - start)
            await asyncio.sleep(max(ahead, 0))
        else:
            await asyncio.sleep(0)
    await bus.settle()
    await bus.close()


def run_collector(url: str, events: int, rate: float) -> None:
    asyncio.run(collect(url, events, rate))


async def engine(url: str, events: int, rate: float) -> dict[str, float]:
    lat: list[int] = []
    first: list[float] = []
    bus = await NatsBus.connect(url, "bench-engine")

    def on(ev: Quote | BookDelta) -> None:
        now = time.time_ns()
        if not first:
            first.append(time.perf_counter())
        lat.append(now - ev.recv_ns)

    bus.subscribe(MARKET_DATA, on)  # type: ignore[arg-type]
    await bus.settle()
    proc = mp.get_context("spawn").Process(target=run_collector, args=(url, events, rate))
    proc.start()
    last_count, idle = 0, 0
    while len(lat) < events and idle < 30:  # stop 3 s after the last message if some were lost
        await asyncio.sleep(0.1)
        idle = idle + 1 if len(lat) == last_count else 0
        last_count = len(lat)
    end = time.perf_counter()
    proc.join(30)
    gaps = sum(bus.gaps.gaps.values())
    await bus.close()
    lat.sort()
    span = (end - first[0]) if first else 0.0
    if len(lat) == events:
        span = max(span - (idle * 0.1), 1e-9)
    return {"received": len(lat), "gaps": gaps, "rate": len(lat) / span if span else 0.0,
            "p50_ms": lat[len(lat) // 2] / 1e6, "p99_ms": lat[int(len(lat) * 0.99)] / 1e6,
            "mean_ms": statistics.fmean(lat) / 1e6}


def private_server(tmp: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = shutil.which("nats-server") or "/usr/sbin/nats-server"
    proc = subprocess.Popen([binary, "-a", "127.0.0.1", "-p", "-1", "-js", "-sd", str(tmp / "store"),
                             "--ports_file_dir", str(tmp)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(300):
        files = list(tmp.glob("*.ports"))
        if files and files[0].read_text().strip():
            return proc, json.loads(files[0].read_text())["nats"][0]
        time.sleep(0.05)
    proc.kill()
    raise SystemExit("nats-server did not start")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="")
    ap.add_argument("--events", type=int, default=200_000)
    ap.add_argument("--rate", type=float, default=20_000.0, help="paced rate for the latency run")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        server, url = (None, args.url) if args.url else private_server(Path(tmp))
        try:
            flat = asyncio.run(engine(url, args.events, 0.0))
            paced = asyncio.run(engine(url, max(args.events // 4, 1000), args.rate))
        finally:
            if server is not None:
                server.terminate()
                server.wait(10)
    print("| run | events received | gaps counted | events/s | p50 ms | p99 ms |")
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in (("flat out", flat), (f"paced {args.rate:,.0f}/s", paced)):
        print(f"| {name} | {r['received']:,} | {r['gaps']:,} | {r['rate']:,.0f} | {r['p50_ms']:.2f} | "
              f"{r['p99_ms']:.2f} |")


if __name__ == "__main__":
    main()
