"""The simulator quotes each venue's real contracts from the instrument map, with level
sizes of comparable value, and the default demo shows a cross-scale PEPE opportunity
(Binance and Bybit ``1000PEPEUSDT`` against OKX ``PEPE-USDT-SWAP`` or Hyperliquid ``kPEPE``)."""

from __future__ import annotations

import asyncio
import random

import pytest

from perparb.app import Session, build_registry, demo_settings
from perparb.config import load_settings
from perparb.instruments.snapshot import load_registry
from perparb.model import Opportunity
from perparb.sim.model import SimBook
from perparb.sim.server import Simulator


def test_simulated_venues_list_the_real_contracts() -> None:
    sim = Simulator(load_registry(), ["binance", "bybit", "okx", "hyperliquid", "bitmex"], ["BTC", "PEPE"], seed=1)
    listed = {v: {i.asset: i for i in sv.instruments.values()} for v, sv in sim.venues.items()}
    assert (listed["binance"]["PEPE"].venue_symbol, listed["binance"]["PEPE"].price_scale) == ("1000PEPEUSDT", 1000)
    assert (listed["bybit"]["PEPE"].venue_symbol, listed["bybit"]["PEPE"].price_scale) == ("1000PEPEUSDT", 1000)
    assert (listed["hyperliquid"]["PEPE"].venue_symbol, listed["hyperliquid"]["PEPE"].price_scale) == ("kPEPE", 1000)
    okx = listed["okx"]
    assert (okx["PEPE"].venue_symbol, okx["PEPE"].contract_size) == ("PEPE-USDT-SWAP", 10_000_000)  # ctVal
    assert (okx["BTC"].venue_symbol, okx["BTC"].contract_size) == ("BTC-USDT-SWAP", 0.01)
    xbt = listed["bitmex"]["BTC"]
    assert (xbt.venue_symbol, xbt.inverse, xbt.contract_size) == ("XBTUSD", True, 1.0)  # 1 USD per contract


@pytest.mark.parametrize(("venue", "sym"), [("binance", "1000PEPEUSDT"), ("hyperliquid", "kPEPE"),
                                            ("okx", "PEPE-USDT-SWAP"), ("gate", "PEPE_USDT"), ("bitmex", "XBTUSD")])
def test_level_sizes_are_worth_10k_to_60k_quote_on_every_venue(venue: str, sym: str) -> None:
    inst = load_registry().get(venue, sym)
    assert inst is not None
    mid = 65_000.0 if inst.asset == "BTC" else 0.000012  # per one BTC / one PEPE
    book = SimBook(inst, random.Random(3))
    book.step(mid, 1.0)
    bids, asks = book.levels()
    for native_px, contracts in bids + asks:
        # Worked out here: inverse contracts are worth contract_size USD each; linear ones
        # contract_size venue base units of native_px each (1000PEPE units at 1000 times the PEPE price).
        value = contracts * inst.contract_size if inst.inverse else contracts * inst.contract_size * native_px
        lot_value = (inst.lot_size or 0.0) * (inst.contract_size if inst.inverse else inst.contract_size * native_px)
        assert 10_000 - lot_value <= value <= 60_000 + lot_value, (native_px, contracts, value)


async def test_default_demo_shows_a_cross_scale_pepe_opportunity() -> None:
    settings = demo_settings(load_settings(None, {}, env={}))
    assert settings.assets == ["BTC", "ETH", "SOL", "PEPE"] and settings.enabled_venues() == ["binance", "okx", "bybit"]
    assert demo_settings(load_settings(None, {"assets": "ETH"}, env={})).assets == ["ETH"]  # the user's word wins
    registry = build_registry(settings)
    sim = Simulator(registry, settings.enabled_venues(), settings.assets, seed=7)
    await sim.start()
    session = Session(settings, sim.endpoints(), registry)
    opened: list[Opportunity] = []
    session.engine.scanner.listeners.append(lambda ev, o: opened.append(o) if ev == "open" else None)

    def cross_scale() -> Opportunity | None:
        for o in opened:
            if o.kind != "spread" or o.asset != "PEPE":
                continue
            legs = [session.registry.select(v, ["PEPE"])[0] for v in (o.buy_venue, o.sell_venue)]
            if {leg.price_scale for leg in legs} == {1.0, 1000.0}:
                return o
        return None

    run = asyncio.create_task(session.run(None, False))
    try:
        for _ in range(600):  # a bound, not a timing claim: the demo usually shows one in seconds
            if cross_scale() is not None or run.done():
                break
            await asyncio.sleep(0.1)
    finally:
        run.cancel()
        await asyncio.gather(run, return_exceptions=True)
        await sim.stop()
    opp = cross_scale()
    assert opp is not None, [(o.asset, o.buy_venue, o.sell_venue) for o in opened]
    legs = {v: session.registry.select(v, ["PEPE"])[0] for v in (opp.buy_venue, opp.sell_venue)}
    thousand = next(v for v, i in legs.items() if i.price_scale == 1000.0)
    single = next(v for v, i in legs.items() if i.price_scale == 1.0)
    assert thousand in ("binance", "bybit") and legs[thousand].venue_symbol == "1000PEPEUSDT"
    assert single == "okx" and legs[single].venue_symbol == "PEPE-USDT-SWAP"
    assert opp.buy_symbol == opp.sell_symbol == "PEPE/USDT:USDT"
    # Both prices are per one PEPE (the 1000PEPE book divided by 1000), a few bps apart.
    assert 1e-6 < opp.buy_px < 1e-4 and abs(opp.sell_px / opp.buy_px - 1) < 0.01
    assert opp.notional_quote == pytest.approx(opp.size_base * opp.buy_px, rel=1e-9)
