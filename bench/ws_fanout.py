"""WebSocket fan-out under load: engine throughput with and without 50 subscribed clients.

    .venv/bin/python bench/ws_fanout.py [--clients 50] [--rate 20000] [--seconds 10]

The engine (books + scanner, 200 assets on 5 venues) is driven in this process at up to
``--rate`` book updates per second; the API server runs in the same event loop, as in
``perparb serve``. The clients run in a separate process (so their JSON parsing does not
share this core) and subscribe to everything. Reported: engine updates/s without clients,
with clients, the drop, and messages/s delivered to the clients.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import random
import time

import uvicorn

from perparb.api.app import ApiContext, create_app
from perparb.config import ApiSettings
from perparb.engine import Engine
from perparb.feeds.booksync import SyncedBook
from perparb.instruments.registry import Registry
from perparb.model import BookDelta, BookSnapshot, Instrument

VENUES = ["binance", "okx", "bybit", "gate", "bitget"]


def clients_main(port: int, n: int, seconds: float, out: mp.Queue) -> None:  # type: ignore[type-arg]
    import websockets

    async def one(counts: list[int], i: int) -> None:
        async with websockets.connect(f"ws://127.0.0.1:{port}/ws", max_size=None) as ws:
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                try:
                    frame = await asyncio.wait_for(ws.recv(), timeout=max(0.01, end - time.monotonic()))
                    # A batch frame carries several messages, each with its own "type".
                    counts[i] += max(1, frame.count('"type":') - (1 if frame.startswith('{"type":"batch"') else 0))
                except TimeoutError:
                    break

    async def run() -> None:
        counts = [0] * n
        await asyncio.gather(*(one(counts, i) for i in range(n)))
        out.put(sum(counts))

    asyncio.run(run())


def build(n_assets: int, seed: int) -> tuple[Engine, list[tuple[Instrument, SyncedBook]]]:
    rng = random.Random(seed)
    insts = [Instrument(venue=v, venue_symbol=f"A{a}", symbol=f"A{a}/USDT:USDT", asset=f"A{a}", quote="USDT",
                        settle="USDT") for a in range(n_assets) for v in VENUES]
    engine = Engine(Registry(insts), VENUES)
    for v in VENUES:
        engine.set_connected(v, True, time.time_ns())
    books = []
    mids = {f"A{a}": 10.0 ** rng.uniform(-2, 4) for a in range(n_assets)}
    for i in insts:
        mid = mids[i.asset] * (1 + rng.gauss(0, 1e-4))
        sb = SyncedBook("in_stream")
        engine.books[(i.venue, i.venue_symbol)] = sb
        engine.adapters[i.venue].table[i.venue_symbol] = i
        engine.on_event(BookSnapshot(venue=i.venue, symbol=i.symbol, venue_symbol=i.venue_symbol, seq=1,
                                     bids=[(mid * (1 - k * 1e-4), 5.0) for k in range(1, 21)],
                                     asks=[(mid * (1 + k * 1e-4), 5.0) for k in range(1, 21)],
                                     ts_exchange_ns=time.time_ns(), recv_ns=time.time_ns()))
        books.append((i, sb))
    return engine, books


async def drive(engine: Engine, books: list[tuple[Instrument, SyncedBook]], rate: float, seconds: float,
                seed: int) -> float:
    rng = random.Random(seed)
    done = 0
    start = time.perf_counter()
    batch = max(1, int(rate / 100))  # updates per 10 ms slice
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(batch):
            inst, sb = books[rng.randrange(len(books))]
            bid, ask = sb.book.best_bid(), sb.book.best_ask()
            assert bid and ask
            now = time.time_ns()
            engine.advance(now)
            engine.on_event(BookDelta(venue=inst.venue, symbol=inst.symbol, venue_symbol=inst.venue_symbol,
                                      bids=[(bid[0], rng.uniform(1, 10))], asks=[(ask[0], rng.uniform(1, 10))],
                                      first_seq=sb.seq + 1, seq=sb.seq + 1, prev_seq=sb.seq, ts_exchange_ns=now,
                                      recv_ns=now))
            done += 1
        target = done / rate
        await asyncio.sleep(max(0.0, target - (time.perf_counter() - start)))
    return done / elapsed


async def main_async(args: argparse.Namespace) -> dict[str, float]:
    engine, books = build(args.assets, args.seed)
    ctx = ApiContext(engine, ApiSettings(port=0))
    server = uvicorn.Server(uvicorn.Config(create_app(ctx), host="127.0.0.1", port=0, log_level="warning",
                                           lifespan="off", ws="websockets-sansio", ws_per_message_deflate=False))
    serve = asyncio.create_task(server.serve())
    hub = asyncio.create_task(ctx.hub.run())
    while not server.started:
        await asyncio.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    alone = await drive(engine, books, args.rate, args.seconds, args.seed)
    q: mp.Queue = mp.Queue()  # type: ignore[type-arg]
    proc = mp.Process(target=clients_main, args=(port, args.clients, args.seconds + 3, q))
    proc.start()
    while len(ctx.hub.clients) < args.clients:
        await asyncio.sleep(0.05)
    with_clients = await drive(engine, books, args.rate, args.seconds, args.seed + 1)
    delivered = await asyncio.get_running_loop().run_in_executor(None, q.get)
    proc.join()
    server.should_exit = True
    hub.cancel()
    await serve
    return {"updates_per_s_alone": round(alone), "updates_per_s_with_clients": round(with_clients),
            "drop_pct": round((1 - with_clients / alone) * 100, 2), "clients": args.clients,
            "messages_delivered_per_s": round(delivered / (args.seconds + 3)),
            "note": "price updates are conflated to at most one per asset per client per 200 ms tick"}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clients", type=int, default=50)
    ap.add_argument("--rate", type=float, default=20_000)
    ap.add_argument("--seconds", type=float, default=10)
    ap.add_argument("--assets", type=int, default=200)
    ap.add_argument("--seed", type=int, default=1)
    print(json.dumps(asyncio.run(main_async(ap.parse_args()))))


if __name__ == "__main__":
    main()
