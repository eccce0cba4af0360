"""A correlated multi-venue market for the simulator, deterministic under a seed.

Every asset has one reference mid (geometric random walk). Each venue quotes it with its
own mean-reverting basis, and now and then one venue dislocates by tens of basis points
and decays back, which is what a cross-venue arbitrage looks like. Funding rates wander
around a venue-specific level. Books are kept per (venue, asset) in native units on the
venue's tick grid, so the simulator can send real diffs.
"""

from __future__ import annotations

import math
import random

from perparb.model import Instrument, Level

START_PRICES = {
    "BTC": 65000.0, "ETH": 3200.0, "SOL": 150.0, "XRP": 0.6, "DOGE": 0.15, "BNB": 580.0, "ADA": 0.45,
    "AVAX": 30.0, "LINK": 14.0, "LTC": 80.0, "DOT": 6.5, "UNI": 8.0, "PEPE": 0.000012, "SHIB": 0.000022,
}
DEPTH = 20


def default_tick(px: float) -> float:
    """A plausible tick: about 0.1 bp of the price, rounded to a power of ten."""
    return 10.0 ** math.floor(math.log10(px * 1e-5)) if px > 0 else 1e-8


class SimBook:
    """One venue's native book for one contract, on an integer tick grid."""

    def __init__(self, inst: Instrument, rng: random.Random) -> None:
        self.inst = inst
        self.rng = rng
        self.tick = inst.tick_size or default_tick(START_PRICES.get(inst.asset, 1.0) * inst.price_scale)
        self.bids: dict[int, float] = {}
        self.asks: dict[int, float] = {}
        self.seq = 0

    def _size(self, native_px: float, native_mid: float) -> float:
        # About 10-60k quote currency per level on every venue, in the venue's quantity units:
        # native_qty takes canonical units and price, so the native mid is scaled back first.
        notional = 10_000.0 * (1.0 + 5.0 * self.rng.random())
        mid = self.inst.px(native_mid)
        qty = self.inst.native_qty(notional / mid, mid)
        lot = self.inst.lot_size or 0.0
        if lot > 0:
            qty = max(lot, round(qty / lot) * lot)
        return float(f"{qty:.8g}")

    def step(self, mid: float, half_spread_bps: float) -> tuple[list[Level], list[Level]]:
        """Move the book to ``mid`` (price per canonical unit); returns native level changes."""
        native_mid = self.inst.native_px(mid)
        t = self.tick
        bb = math.floor(native_mid * (1 - half_spread_bps * 1e-4) / t)
        ba = max(bb + 1, math.ceil(native_mid * (1 + half_spread_bps * 1e-4) / t))
        new_bids = {i: self.bids.get(i) or self._size(i * t, native_mid) for i in range(bb - DEPTH + 1, bb + 1)}
        new_asks = {i: self.asks.get(i) or self._size(i * t, native_mid) for i in range(ba, ba + DEPTH)}
        for side in (new_bids, new_asks):
            for _ in range(2):
                i = self.rng.choice(list(side))
                side[i] = self._size(i * t, native_mid)
        bid_changes = _diff(self.bids, new_bids, t)
        ask_changes = _diff(self.asks, new_asks, t)
        self.bids, self.asks = new_bids, new_asks
        return bid_changes, ask_changes

    def levels(self) -> tuple[list[Level], list[Level]]:
        t = self.tick
        bids = [(_px(i, t), self.bids[i]) for i in sorted(self.bids, reverse=True)]
        asks = [(_px(i, t), self.asks[i]) for i in sorted(self.asks)]
        return bids, asks

    def top(self) -> tuple[Level, Level]:
        bi, ai = max(self.bids), min(self.asks)
        return (_px(bi, self.tick), self.bids[bi]), (_px(ai, self.tick), self.asks[ai])


def _px(i: int, tick: float) -> float:
    # Round to the tick's decimals so the wire text is the venue's own price string.
    decimals = max(0, -math.floor(math.log10(tick)) + 1)
    return round(i * tick, decimals)


def _diff(old: dict[int, float], new: dict[int, float], tick: float) -> list[Level]:
    out = [(_px(i, tick), q) for i, q in new.items() if old.get(i) != q]
    out += [(_px(i, tick), 0.0) for i in old if i not in new]
    return out


class PriceModel:
    def __init__(self, seed: int, assets: list[str], venues: list[str], vol_per_sqrt_s: float = 2e-4,
                 dislocation_per_s: float = 0.05) -> None:
        self.rng = random.Random(seed)
        self.venues = venues
        self.mid = {a: START_PRICES.get(a, 1.0) for a in assets}
        self.basis = {(v, a): 0.0 for v in venues for a in assets}  # bps
        self.jump = {(v, a): 0.0 for v in venues for a in assets}  # bps, decays
        # Funding per hour: a common level per asset, a venue-specific offset, and now and
        # then a "hot" contract paying far more (as crowded longs on one venue do).
        level = {a: 1.25e-5 + self.rng.gauss(0.0, 1e-5) for a in assets}
        self.funding_hourly = {
            (v, a): level[a] + self.rng.gauss(0.0, 1.5e-5) + (1.5e-4 if self.rng.random() < 0.15 else 0.0)
            for v in venues for a in assets}
        self.vol = vol_per_sqrt_s
        self.dislocation_per_s = dislocation_per_s

    def step(self, dt: float) -> None:
        g = self.rng.gauss
        for a in self.mid:
            self.mid[a] *= math.exp(self.vol * math.sqrt(dt) * g(0.0, 1.0))
        decay = math.exp(-dt / 3.0)
        for key in self.basis:
            self.basis[key] += -0.5 * self.basis[key] * dt + 1.5 * math.sqrt(dt) * g(0.0, 1.0)
            self.jump[key] *= decay
            self.funding_hourly[key] += 2e-7 * math.sqrt(dt) * g(0.0, 1.0)
        if self.rng.random() < self.dislocation_per_s * dt * len(self.basis):
            key = self.rng.choice(sorted(self.basis))
            self.jump[key] = self.rng.choice((-1.0, 1.0)) * self.rng.uniform(15.0, 45.0)

    def funding_rate(self, venue: str, asset: str, interval_h: float) -> float:
        """The rate of one settlement for a contract settling every ``interval_h`` hours."""
        return self.funding_hourly[(venue, asset)] * interval_h

    def venue_mid(self, venue: str, asset: str) -> float:
        return self.mid[asset] * (1.0 + (self.basis[(venue, asset)] + self.jump[(venue, asset)]) * 1e-4)
