"""Replays are byte-identical whatever Python's string hashing: a many-venue simulated
session is recorded once and replayed in fresh processes with different PYTHONHASHSEED
values, and the opportunity files must agree byte for byte."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

VENUES = ["binance", "okx", "bybit", "gate", "kucoin", "hyperliquid", "mexc"]
SEEDS = ("0", "1", "2", "3")


async def test_many_venue_replay_is_byte_identical_across_hash_seeds(tmp_path: Path) -> None:
    from perparb.app import demo
    from perparb.config import load_settings

    settings = load_settings(None, {"venues": VENUES, "assets": "BTC,ETH,SOL,DOGE,XRP,PEPE", "storage.capture": "true",
                                    "storage.dir": str(tmp_path)}, env={})
    await demo(settings, 4.0, seed=11, view=False)
    [cap] = list(tmp_path.glob("capture-*.jsonl.zst"))

    outputs = []
    for seed in SEEDS:
        out = tmp_path / f"opps-{seed}.jsonl"
        env = {**os.environ, "PYTHONHASHSEED": seed, "PERPARB_HOME": str(tmp_path)}
        proc = subprocess.run([sys.executable, "-m", "perparb.cli", "replay", str(cap), "--opportunities-out",
                               str(out), "--json"], env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stderr
        summary = json.loads(proc.stdout)
        assert summary["decode_errors"] == 0 and summary["venues"] == sorted(VENUES)
        outputs.append(out.read_bytes())

    events = [json.loads(line) for line in outputs[0].splitlines()]
    kinds = Counter(e["event"] for e in events)
    # The comparison only means something if the replay has plenty to order: many opens,
    # and moments where several opportunities of one asset change at the same engine time.
    assert kinds["open"] >= 20 and kinds["close"] >= 10, kinds
    same_instant = Counter((e["asset"], e["ts_ns"]) for e in events if e["event"] == "close")
    assert max(same_instant.values()) >= 2
    venues = {e[k] for e in events for k in ("buy_venue", "sell_venue", "long_venue", "short_venue") if k in e}
    assert len(venues) >= 5, venues
    for seed, out in zip(SEEDS[1:], outputs[1:], strict=True):
        assert out == outputs[0], f"PYTHONHASHSEED={seed} gave a different opportunities file than 0"
