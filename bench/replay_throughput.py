"""Replay throughput end to end: decode → book → scanner → paper engine, one core.

    .venv/bin/python bench/replay_throughput.py [--venues 10] [--assets 12] [--seconds 60] [--repeats 3]

A multi-venue capture is built deterministically from the simulator's own venue encoders
(no sockets, no wall clock): every venue's REST metadata, the subscriptions its feed sends
(and the venue's replies), L2 book snapshots and deltas, top-of-book quotes, funding
updates once a second, public trades on the venues whose trade channel is read, and the
REST book snapshots the Binance-style venues bridge from. The file is zstd-compressed
capture format v1, as ``perparb record`` writes it.

It is then replayed through ``perparb.replay.replay(paths, paper=settings)`` (the demo's
strategies, risk engine and simulated execution on), and timed in CPU seconds of this
process. "events" are the normalized events the engine handled (quotes, book snapshots and
deltas, trades, funding); "records" are capture lines. Prints one row per repeat and the
median.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

import msgspec

from perparb.app import build_registry, scan_settings
from perparb.config import load_settings
from perparb.instruments.registry import Registry
from perparb.model import Instrument
from perparb.replay import replay
from perparb.scanner.core import Scanner
from perparb.sim.model import PriceModel
from perparb.sim.server import SimVenue, sim_instruments
from perparb.store.capture import CaptureWriter
from perparb.venues import venue_class
from perparb.venues.base import num_text

VENUES = ["binance", "okx", "bybit", "bitget", "gate", "hyperliquid", "deribit", "bitmex", "dydx", "kucoin",
          "mexc", "phemex", "coindcx"]
ASSETS = ["BTC", "ETH", "SOL", "XRP", "DOGE", "ADA", "LINK", "AVAX", "LTC", "BNB", "DOT", "UNI", "ATOM",
          "NEAR", "APT", "ARB", "OP", "SUI", "FIL", "TRX"]
T0_MS = 1_764_000_000_000  # 2025-11-24: any fixed time makes the capture the same every run
_enc = msgspec.json.Encoder()


class _Wire:
    """Stands in for a client's websocket: keeps what the simulated venue sends."""

    closed = False

    def __init__(self) -> None:
        self.frames: list[str] = []

    async def send_str(self, data: str) -> None:
        self.frames.append(data)

    async def close(self) -> bool:
        return True


def _trade(venue: str, inst: Instrument, px: float, qty: float, buy: bool, tid: int, ts_ms: int) -> str | None:
    """A public trade in the venue's own message format (the simulator sends none)."""
    s, p, q = inst.venue_symbol, num_text(px), num_text(qty)
    if venue == "binance":
        return _enc.encode({"stream": f"{s.lower()}@aggTrade", "data": {
            "e": "aggTrade", "E": ts_ms, "a": tid, "s": s, "p": p, "q": q, "f": tid, "l": tid, "T": ts_ms,
            "m": not buy}}).decode()
    if venue == "okx":
        return _enc.encode({"arg": {"channel": "trades", "instId": s}, "data": [{
            "instId": s, "tradeId": str(tid), "px": p, "sz": q, "side": "buy" if buy else "sell",
            "ts": str(ts_ms), "count": "1"}]}).decode()
    if venue == "bybit":
        return _enc.encode({"topic": f"publicTrade.{s}", "type": "snapshot", "ts": ts_ms, "data": [{
            "T": ts_ms, "s": s, "S": "Buy" if buy else "Sell", "v": q, "p": p, "L": "PlusTick",
            "i": f"t{tid}", "BT": False}]}).decode()
    return None


def build_capture(path: Path, venues: list[str], assets: list[str], seconds: float, seed: int,
                  tick_ms: int = 100) -> dict[str, int]:
    return asyncio.run(_build(path, venues, assets, seconds, seed, tick_ms))


async def _build(path: Path, venues: list[str], assets: list[str], seconds: float, seed: int,
                 tick_ms: int) -> dict[str, int]:
    registry = build_registry(load_settings(None, {}, env={}))
    rng = random.Random(seed)
    model = PriceModel(seed, assets, venues)
    sims: list[tuple[SimVenue, _Wire]] = []
    counts = {"records": 0}
    with CaptureWriter(path) as w:
        ns = T0_MS * 1_000_000

        def put(venue: str, frames: list[str], now_ns: int) -> None:
            # Frames of one tick arrive a few microseconds apart, in the order sent.
            for i, f in enumerate(frames):
                w.write(venue, "ws", f, now_ns + i * 1000)
            counts["records"] += len(frames)
            frames.clear()

        for vid in venues:
            adapter = venue_class(vid)(Registry(registry.for_venue(vid)))
            insts = sim_instruments(registry, adapter, assets)
            sv = SimVenue(adapter, insts, model, random.Random(rng.random()))
            for p, body in sv.metadata.items():
                w.write(vid, "rest", body, ns, path=p)
                counts["records"] += 1
            wire = _Wire()
            client = sv.add_client(wire)
            for conn in adapter.connections(insts, books=True):
                for msg in conn.subscribe:
                    await sv.on_client_text(client, msg)
            put(vid, wire.frames, ns)
            sims.append((sv, wire))
        ticks = int(seconds * 1000 / tick_ms)
        tid = 0
        for n in range(ticks):
            model.step(tick_ms / 1000)
            now_ms = T0_MS + (n + 1) * tick_ms
            for k, (sv, wire) in enumerate(sims):
                vid = sv.venue.id
                t_ns = now_ms * 1_000_000 + k * 7_000_000  # venues' messages interleave within the tick
                await sv.publish(now_ms)
                if n % (1000 // tick_ms) == 0:
                    await sv.publish_funding(now_ms)
                for book in sv.books.values():
                    if rng.random() < 0.5:
                        (bid, _), (ask, _) = book.top()
                        buy = rng.random() < 0.5
                        tid += 1
                        t = _trade(vid, book.inst, ask if buy else bid, book.inst.lot_size or 1.0, buy, tid, now_ms)
                        if t is not None:
                            wire.frames.append(t)
                put(vid, wire.frames, t_ns)
                if n == 0 and sv.venue.book_sync == "rest_bridged":  # the snapshot the feed fetches
                    for book in sv.books.values():
                        bpath = sv.venue.book_snapshot_path(book.inst)
                        bids, asks = book.levels()
                        body = sv.venue.sim_rest_book_body(book.inst, bids, asks, book.seq, now_ms)
                        w.write(vid, "rest", body, t_ns + 500_000, path=bpath)
                        counts["records"] += 1
    return counts


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--venues", type=int, default=10, help=f"the first N of {','.join(VENUES)}")
    ap.add_argument("--assets", type=int, default=12, help=f"the first N of {','.join(ASSETS)}")
    ap.add_argument("--seconds", type=float, default=60.0, help="simulated session length")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--capture", type=Path, help="keep the capture here (default: a temporary file)")
    ap.add_argument("--profile", type=Path, help="write a cProfile of one more replay here")
    args = ap.parse_args()
    venues, assets = VENUES[: args.venues], ASSETS[: args.assets]
    settings = load_settings(None, {"venues": venues, "assets": ",".join(assets)}, env={})
    with tempfile.TemporaryDirectory() as tmp:
        cap = args.capture or Path(tmp) / "capture.jsonl.zst"
        built = build_capture(cap, venues, assets, args.seconds, args.seed)
        size = cap.stat().st_size
        print(f"capture: {len(venues)} venues ({','.join(venues)}), {len(assets)} assets, {args.seconds:g} s "
              f"simulated, {built['records']:,} records, {size / 1e6:.1f} MB zstd")
        rows = []
        for r in range(args.repeats):
            t0 = time.process_time()
            out = replay([cap], Scanner(scan_settings(settings)), build_registry(settings), paper=settings)
            cpu = time.process_time() - t0
            rows.append((out["events"] / cpu, out["records"] / cpu, cpu))
            if r == 0:
                print(f"events {out['events']:,} ({out['events_by_channel']}), records {out['records']:,}, "
                      f"opportunities {out['opportunities']}, paper fills {out['paper']['fills']}, "
                      f"decode errors {out['decode_errors']}, book resyncs {out['book_resyncs']}, "
                      f"bad lines {out['bad_lines']}")
            print(f"repeat {r + 1}: {cpu:.2f} CPU s, {rows[-1][0]:,.0f} events/s, {rows[-1][1]:,.0f} records/s",
                  file=sys.stderr)
        ev, rec, cpu = (statistics.median(c) for c in zip(*rows, strict=True))
        print()
        print("| replay (decode → book → scanner → paper) | events/s | records/s | CPU s |")
        print("|---|---:|---:|---:|")
        print(f"| median of {args.repeats} | {ev:,.0f} | {rec:,.0f} | {cpu:.2f} |")
        if args.profile:
            import cProfile

            cProfile.runctx("replay([cap], Scanner(scan_settings(settings)), build_registry(settings), "
                            "paper=settings)", globals(), {**locals(), "replay": replay}, str(args.profile))


if __name__ == "__main__":
    main()
