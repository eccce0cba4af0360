"""`perparb scan --once` over ccxt REST against the simulator's Binance and OKX endpoints."""

from __future__ import annotations

import asyncio
import json

import pytest
from typer.testing import CliRunner

from perparb.cli import app
from perparb.instruments.snapshot import load_registry
from perparb.scanner.core import Scanner, ScanSettings
from perparb.scanner.once import scan_once
from perparb.sim.server import Simulator


async def test_snapshot_books_and_a_forced_dislocation() -> None:
    sim = Simulator(load_registry(), ["binance", "okx"], ["BTC", "ETH"], seed=11, tick_s=0.05)
    sim.model.jump[("okx", "BTC")] = 60.0  # OKX BTC 60 bps above the rest
    sim.model.dislocation_per_s = 0.0
    await sim.start()
    await asyncio.sleep(0.3)
    sim.pause()
    try:
        engine, names = await scan_once(["binance", "okx"], ["BTC", "ETH"], Scanner(ScanSettings(min_edge_bps=5.0)),
                                        sim.endpoints())
    finally:
        await sim.stop()
    assert names == {"ccxt:binanceusdm": "binance", "ccxt:okx": "okx"}
    # Every book equals the simulator's, in canonical units.
    for venue, sv in sim.venues.items():
        for simbook in sv.books.values():
            inst = simbook.inst
            sb = engine.books[(f"ccxt:{'binanceusdm' if venue == 'binance' else venue}", inst.symbol)]
            bids, asks = simbook.levels()
            want = [(inst.px(p), inst.qty(q, p)) for p, q in bids + asks]
            got = sb.book.bids.top(100) + sb.book.asks.top(100)
            assert len(got) == len(want)
            for (gp, gq), (wp, wq) in zip(got, want, strict=True):
                assert gp == pytest.approx(wp, rel=1e-12) and gq == pytest.approx(wq, rel=1e-9)
    [opp] = [o for o in engine.scanner.lifecycle.active.values() if o.kind == "spread"]
    assert (opp.asset, names[opp.buy_venue], names[opp.sell_venue]) == ("BTC", "binance", "okx")
    b_ask = sim.venues["binance"].books["BTCUSDT"].top()[1][0]
    o_bid = sim.venues["okx"].books["BTC-USDT-SWAP"].top()[0][0]
    assert opp.buy_px >= b_ask and opp.sell_px <= o_bid and opp.edge_bps >= 5.0
    assert opp.gross_bps == pytest.approx((opp.sell_px - opp.buy_px) / opp.buy_px * 1e4)
    # Funding came through REST too.
    assert {v for v, _ in engine.funding} == {"ccxt:binanceusdm", "ccxt:okx"}


def test_cli_scan_once_sim_json() -> None:
    # Seed 7 gives the simulator hot funding on Binance BTC and OKX SOL (its funding levels are
    # seeded; prices move with wall time, so only the funding answer is fixed).
    result = CliRunner().invoke(app, ["scan", "--once", "--sim", "--seed", "7", "--venues", "binance,okx",
                                      "--assets", "BTC,ETH,SOL", "--json"])
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines() if line.startswith("{")]
    funding = {(r["asset"], r["long_venue"], r["short_venue"]) for r in rows if r["kind"] == "funding"}
    assert funding == {("BTC", "binance", "okx"), ("SOL", "okx", "binance")}


def test_scan_without_once_points_to_run() -> None:
    result = CliRunner().invoke(app, ["scan"])
    assert result.exit_code == 2
