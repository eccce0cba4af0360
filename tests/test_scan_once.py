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


ALL_VENUES = ["binance", "bitget", "bitmex", "bybit", "coindcx", "deribit", "dydx", "gate", "hyperliquid", "kucoin",
              "mexc", "okx", "phemex"]


async def test_scan_once_returns_books_and_funding_from_all_13_venues() -> None:
    from perparb.feeds.booksync import SYNCED
    from perparb.scanner.once import empty_venues

    registry = load_registry()
    sim = Simulator(registry, ALL_VENUES, ["BTC", "ETH"], seed=5, tick_s=0.05)
    await sim.start()
    await asyncio.sleep(0.3)
    try:
        engine, names = await scan_once(ALL_VENUES, ["BTC", "ETH"], Scanner(ScanSettings(min_edge_bps=5.0)),
                                        sim.endpoints(), native_timeout_s=60.0)
        model_mid = {(v, a): sim.model.venue_mid(v, a) for v in ALL_VENUES for a in ("BTC", "ETH")}
    finally:
        await sim.stop()
    assert sorted(names.values()) == ALL_VENUES
    assert empty_venues(engine, names) == {}
    # ccxt where the simulator answers ccxt's calls; the native adapters elsewhere (BitMEX and
    # CoinDCX have no class in the pinned ccxt).
    assert {"ccxt:binanceusdm": "binance", "ccxt:okx": "okx", "ccxt:bybit": "bybit", "ccxt:gate": "gate",
            "ccxt:mexc": "mexc", "ccxt:bitget": "bitget", "bitmex": "bitmex", "coindcx": "coindcx"}.items() <= names.items()
    for vid, venue in names.items():
        listed = {i.venue_symbol: i for i in sim.venues[venue].instruments.values()}
        assert {i.asset for i in listed.values()} == {"BTC", "ETH"}, venue
        for sym, inst in listed.items():
            sb = engine.books[(vid, inst.symbol if vid.startswith("ccxt:") else sym)]
            assert sb.state == SYNCED, (venue, sym)
            [(bid, _)], [(ask, _)] = sb.book.bids.top(1), sb.book.asks.top(1)
            # Per one BTC or ETH, whatever the contract: within 1% of the model's price there.
            mid = model_mid[(venue, inst.asset)]
            assert bid < ask and abs((bid + ask) / 2 / mid - 1) < 0.01, (venue, sym, bid, ask, mid)
        funded = {s for v, s in engine.funding if v == vid}
        assert len(funded) == 2, (venue, funded)


def test_cli_scan_once_names_venues_that_returned_nothing() -> None:
    result = CliRunner().invoke(app, ["scan", "--once", "--sim", "--venues", "binance,okx", "--assets", "BTC",
                                      "--set", "venues.okx.rest_url=http://127.0.0.1:9", "--json"])
    assert result.exit_code == 1
    assert "no books or funding from okx" in " ".join(result.output.split())
