"""Paper trading: intent → both legs filled in the simulated path, and replay rate with
paper trading on.

    .venv/bin/python bench/paper_latency.py [--pairs 2000] [--demo-seconds 10] [--repeats 3]

Latency: a two-leg intent is published on the bus (as a strategy would), the risk engine
checks both legs and sends both orders, simulated execution fills them against 20-level
books once engine time reaches each venue's latency (binance 50 ms, okx 80 ms here), and
the leg guard sees both legs filled. "Engine time" is the simulated time from the intent
to the last leg's fill; "wall time" is the CPU time that path costs (publish + the timer
run that fills both legs), measured with perf_counter. Each open is followed by a close,
so positions never build up.

Replay rate: a capture of a ``--demo-seconds`` simulator session (3 venues, BTC/ETH/SOL,
books), replayed with and without ``--paper``; records per second, median of repeats.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from perparb.bus import EXECUTIONS, TRADE_ORDERS
from perparb.bus.messages import Fill, Leg, Message, OrderUpdate, TradeIntent
from perparb.config import Settings, load_settings
from perparb.engine import Engine
from perparb.instruments.registry import Registry
from perparb.model import BookSnapshot, Instrument
from perparb.paper import build_trading
from perparb.trading_settings import ExecutionSettings, RiskSettings

MS = 1_000_000
T0 = 1_700_000_000_000_000_000


def _inst(venue: str, vs: str) -> Instrument:
    return Instrument(venue=venue, venue_symbol=vs, symbol="BTC/USDT:USDT", asset="BTC", quote="USDT", settle="USDT",
                      lot_size=0.001, tick_size=0.1)


def latency(pairs: int) -> dict[str, float]:
    bn, ok = _inst("binance", "BTCUSDT"), _inst("okx", "BTC-USDT-SWAP")
    engine = Engine(Registry([bn, ok]), ["binance", "okx"])
    for v in ("binance", "okx"):
        engine.set_connected(v, True, T0)
    big = 1e12
    settings = Settings(strategies=[], execution=ExecutionSettings(venue_latency_ms={"okx": 80.0}),
                        risk=RiskSettings(max_order_notional=big, max_asset_notional=big, max_venue_notional=big,
                                          max_gross_notional=big, max_net_notional=big))
    trading = build_trading(settings, engine, venues=["binance", "okx"])
    done: dict[str, set[str]] = {}
    last_fill: dict[str, int] = {}

    def on_exec(m: Message) -> None:
        if isinstance(m, Fill):
            last_fill[m.intent_id] = m.ts_ns
        elif isinstance(m, OrderUpdate) and m.status == "filled":
            done.setdefault(m.intent_id, set()).add(m.order_id)

    trading.bus.subscribe(EXECUTIONS, on_exec)
    t = T0
    eng_ms: list[float] = []
    wall_us: list[float] = []
    for n in range(pairs * 2):
        t += 200 * MS
        size = 1.0 + n * 1e-6  # a new size each time: the venue has refilled what we took
        for i, mid in ((bn, 60_000.0), (ok, 60_030.0)):
            engine.advance(t)
            engine.on_event(BookSnapshot(venue=i.venue, symbol=i.symbol, venue_symbol=i.venue_symbol,
                                         bids=[(mid - 0.5 - k, size) for k in range(20)],
                                         asks=[(mid + 0.5 + k, size) for k in range(20)], ts_exchange_ns=t, recv_ns=t))
        opening = n % 2 == 0
        legs = [Leg(venue="binance", symbol=bn.symbol, venue_symbol=bn.venue_symbol, side="buy" if opening else "sell",
                    qty=0.5, reduce_only=not opening),
                Leg(venue="okx", symbol=ok.symbol, venue_symbol=ok.venue_symbol, side="sell" if opening else "buy",
                    qty=0.5, reduce_only=not opening)]
        iid = f"b-{n}"
        start = time.perf_counter()
        trading.bus.publish(TRADE_ORDERS, TradeIntent(id=iid, ts_ns=t, strategy="bench",
                                                      action="open" if opening else "close", asset="BTC", legs=legs))
        engine.advance(t + 100 * MS)  # both latencies have passed: the timers fill both legs
        wall = time.perf_counter() - start
        if len(done.get(iid, ())) != 2:
            raise SystemExit(f"intent {iid} did not fill both legs: {done.get(iid)} {trading.risk.rejections} "
                             f"{trading.execution.rejections} {trading.risk.state()}")
        eng_ms.append((last_fill[iid] - t) / MS)
        wall_us.append(wall * 1e6)
    q = statistics.quantiles
    return {"pairs": len(eng_ms), "engine_ms_p50": statistics.median(eng_ms), "engine_ms_p99": q(eng_ms, n=100)[98],
            "wall_us_p50": statistics.median(wall_us), "wall_us_p99": q(wall_us, n=100)[98]}


def replay_rate(seconds: float, repeats: int) -> dict[str, float]:
    from perparb.app import build_registry, demo, scan_settings
    from perparb.replay import replay
    from perparb.scanner.core import Scanner

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(None, {"venues": ["binance", "okx", "bybit"], "assets": "BTC,ETH,SOL",
                                        "storage.capture": "true", "storage.dir": tmp}, env={})
        asyncio.run(demo(settings, seconds, seed=7, view=False))
        [cap] = list(Path(tmp).glob("capture-*.jsonl.zst"))
        out: dict[str, float] = {}
        for label, paper in (("scanner_only", None), ("paper", settings)):
            rates = []
            for _ in range(repeats):
                start = time.perf_counter()
                summary = replay([cap], Scanner(scan_settings(settings)), build_registry(settings), paper=paper)
                rates.append(summary["records"] / (time.perf_counter() - start))
            out[f"{label}_records_per_s"] = statistics.median(rates)
            out["records"] = summary["records"]
            if paper is not None:
                out["paper_fills"] = summary["paper"]["fills"]
        return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pairs", type=int, default=2000)
    ap.add_argument("--demo-seconds", type=float, default=10.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    print(latency(args.pairs))
    print(replay_rate(args.demo_seconds, args.repeats))


if __name__ == "__main__":
    main()
