"""``perparb funding-history``: settled funding rates of every venue, cached, ranked by carry.

Each settlement's interval is the time since the previous settlement of the same contract
(venues move contracts from 8 h to 4 h or 1 h inside the history), the first one's the
time to the next; its APR is ``rate x 365x24 / interval_h x 100``. Per asset x venue:

- ``mean_apr``: the time-weighted mean (Σ rate / Σ interval_h x 8760 x 100), the carry a
  position held over the whole window earned; ``median_apr`` and ``std_apr`` (sample
  standard deviation) of the settlements' APRs; ``share_positive``; the longest run of
  positive settlements, in settlements and hours.
- Fees: a position held for the whole window pays the venue's taker fee on entry and on
  exit once, amortised over the hours covered: ``fee_apr = 2 x taker x 8760 / hours x 100``.
  ``net_apr = |mean_apr| - fee_apr`` for the side that collects (short the perpetual when
  funding is positive, long when negative); the hedge leg is not priced here.
- Pairs of venues per asset: long the lower mean, short the higher, over the hours both
  cover: ``spread_apr - fee_apr`` with both legs' round trips. That is the trade a carry
  trader acts on.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from itertools import combinations
from pathlib import Path
from typing import Any

from perparb.instruments.registry import Registry
from perparb.model import Instrument
from perparb.research.funding_cache import FundingCache
from perparb.research.funding_fetch import FetchError, Reader, reader, unsupported

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS
YEAR_H = 365 * 24
PAD_MS = DAY_MS  # fetched before the window so its first settlement has a predecessor
SETTLE_DELAY_MS = 5 * 60_000  # a settlement is published within minutes of its hour

VENUE_COLUMNS = ("rank", "asset", "venue", "symbol", "interval_h", "intervals_h", "n", "first", "last", "hours",
                 "mean_apr", "median_apr", "std_apr", "share_positive", "longest_positive_streak",
                 "longest_positive_streak_h", "taker_fee", "fee_apr", "net_apr", "side")
PAIR_COLUMNS = ("rank", "asset", "long_venue", "short_venue", "long_symbol", "short_symbol", "hours",
                "long_mean_apr", "short_mean_apr", "spread_apr", "fee_apr", "net_apr")

Settlement = tuple[int, float, float]  # ms, rate, interval hours


def default_until(now_ms: int | None = None) -> int:
    """The last full hour whose settlements every venue has published."""
    now = int(time.time() * 1000) if now_ms is None else now_ms
    return (now - SETTLE_DELAY_MS) // HOUR_MS * HOUR_MS


def apr(rate: float, interval_h: float) -> float:
    return rate * (YEAR_H / interval_h) * 100.0


def with_intervals(rows: list[tuple[int, float]], default_h: float) -> list[Settlement]:
    """Each settlement with the hours since the previous one (the first: until the next)."""
    out = []
    for i, (t, r) in enumerate(rows):
        if i:
            h = (t - rows[i - 1][0]) / HOUR_MS
        elif len(rows) > 1:
            h = (rows[1][0] - t) / HOUR_MS
        else:
            h = default_h
        out.append((t, r, h))
    return out


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _num(h: float) -> str:
    return f"{h:g}"


@dataclass
class VenueStats:
    asset: str
    venue: str
    symbol: str
    interval_h: float  # the latest settlement's
    intervals_h: str  # every interval met, in time order: "8" or "8->4"
    n: int
    first: str
    last: str
    hours: float
    mean_apr: float
    median_apr: float
    std_apr: float
    share_positive: float
    longest_positive_streak: int
    longest_positive_streak_h: float
    taker_fee: float
    fee_apr: float
    net_apr: float
    side: str
    rank: int = 0
    series: list[Settlement] = field(default_factory=list, repr=False)

    def row(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("series")
        return {k: d[k] for k in VENUE_COLUMNS}


def venue_stats(asset: str, venue: str, symbol: str, series: list[Settlement], taker_fee: float) -> VenueStats:
    aprs = [apr(r, h) for _, r, h in series]
    hours = sum(h for _, _, h in series)
    mean = sum(r for _, r, _ in series) / hours * YEAR_H * 100.0
    streak = best = 0
    streak_h = best_h = 0.0
    for _, r, h in series:
        streak, streak_h = (streak + 1, streak_h + h) if r > 0 else (0, 0.0)
        if streak > best:
            best, best_h = streak, streak_h
    met: list[str] = []
    for _, _, h in series:
        if not met or met[-1] != _num(h):
            met.append(_num(h))
    fee = 2 * taker_fee * YEAR_H / hours * 100.0
    return VenueStats(
        asset=asset, venue=venue, symbol=symbol, interval_h=series[-1][2], intervals_h="->".join(met), n=len(series),
        first=_iso(series[0][0]), last=_iso(series[-1][0]), hours=hours, mean_apr=mean,
        median_apr=statistics.median(aprs), std_apr=statistics.stdev(aprs) if len(aprs) > 1 else 0.0,
        share_positive=sum(1 for _, r, _ in series if r > 0) / len(series), longest_positive_streak=best,
        longest_positive_streak_h=best_h, taker_fee=taker_fee, fee_apr=fee, net_apr=abs(mean) - fee,
        side="short" if mean >= 0 else "long", series=series)


@dataclass
class PairStats:
    asset: str
    long_venue: str
    short_venue: str
    long_symbol: str
    short_symbol: str
    hours: float
    long_mean_apr: float
    short_mean_apr: float
    spread_apr: float
    fee_apr: float
    net_apr: float
    rank: int = 0

    def row(self) -> dict[str, Any]:
        d = asdict(self)
        return {k: d[k] for k in PAIR_COLUMNS}


def pair_stats(a: VenueStats, b: VenueStats) -> PairStats | None:
    """Long the venue with the lower mean, short the higher, over the hours both cover: the
    settlement periods from the later first period start (moved on until both venues have
    a period starting there, as 8 h and 1 h grids do) to the earlier last settlement."""
    since = max(a.series[0][0] - a.series[0][2] * HOUR_MS, b.series[0][0] - b.series[0][2] * HOUR_MS)
    until = min(a.series[-1][0], b.series[-1][0])
    for _ in range(8):
        sa = [s for s in a.series if s[0] - s[2] * HOUR_MS >= since and s[0] <= until]
        sb = [s for s in b.series if s[0] - s[2] * HOUR_MS >= since and s[0] <= until]
        if not sa or not sb:
            return None
        later = max(sa[0][0] - sa[0][2] * HOUR_MS, sb[0][0] - sb[0][2] * HOUR_MS)
        if later == since:
            break
        since = later
    ha, hb = sum(s[2] for s in sa), sum(s[2] for s in sb)
    ma = sum(s[1] for s in sa) / ha * YEAR_H * 100.0
    mb = sum(s[1] for s in sb) / hb * YEAR_H * 100.0
    (lo, mlo), (hi, mhi) = sorted(((a, ma), (b, mb)), key=lambda x: x[1])
    hours = min(ha, hb)
    fee = 2 * (a.taker_fee + b.taker_fee) * YEAR_H / hours * 100.0
    return PairStats(asset=a.asset, long_venue=lo.venue, short_venue=hi.venue, long_symbol=lo.symbol,
                     short_symbol=hi.symbol, hours=hours, long_mean_apr=mlo, short_mean_apr=mhi,
                     spread_apr=mhi - mlo, fee_apr=fee, net_apr=mhi - mlo - fee)


def rank(stats: list[VenueStats]) -> tuple[list[VenueStats], list[PairStats]]:
    venues = sorted(stats, key=lambda s: (-s.net_apr, s.asset, s.venue))
    for i, s in enumerate(venues, 1):
        s.rank = i
    pairs = [p for a, b in combinations(sorted(stats, key=lambda s: (s.asset, s.venue)), 2)
             if a.asset == b.asset and (p := pair_stats(a, b)) is not None]
    pairs.sort(key=lambda p: (-p.net_apr, p.asset, p.long_venue, p.short_venue))
    for i, p in enumerate(pairs, 1):
        p.rank = i
    return venues, pairs


@dataclass
class Result:
    start_ms: int
    end_ms: int
    venues: list[VenueStats]
    pairs: list[PairStats]
    skipped: list[dict[str, str]]

    def summary(self) -> dict[str, Any]:
        return {"start": _iso(self.start_ms), "end": _iso(self.end_ms),
                "days": (self.end_ms - self.start_ms) / DAY_MS,
                "venues": [s.row() for s in self.venues], "pairs": [p.row() for p in self.pairs],
                "skipped": self.skipped}


# (venue, asset, total ms to read) -> an advance callback
ProgressFactory = Callable[[str, str, int], Callable[[int], None]]


def _no_progress(venue: str, asset: str, total: int) -> Callable[[int], None]:
    return lambda ms: None


async def funding_history(venues: list[str], assets: list[str], registry: Registry, cache_dir: Path,
                          days: float, until_ms: int | None = None,
                          endpoints: dict[str, str] | None = None, taker_fees: dict[str, float] | None = None,
                          pace_s: float | None = None, progress: ProgressFactory = _no_progress) -> Result:
    """Fetches what the cache lacks for (until - days, until], then ranks every asset x venue.

    ``endpoints``: venue -> REST base URL (the simulator's); ``taker_fees``: venue -> fee
    overriding the registry's; ``pace_s`` overrides the REST readers' request spacing."""
    end = default_until() if until_ms is None else until_ms
    start = end - int(days * DAY_MS)
    cache = FundingCache(cache_dir)
    skipped: list[dict[str, str]] = []
    results = await asyncio.gather(*(
        _venue(v, assets, registry, cache, start, end, (endpoints or {}).get(v, ""), pace_s, progress, skipped)
        for v in venues))
    stats = []
    for v, got in zip(venues, results, strict=True):
        for inst, series in got:
            fee = (taker_fees or {}).get(v, inst.taker_fee)
            stats.append(venue_stats(inst.asset, v, inst.venue_symbol, series, fee))
    ranked, pairs = rank(stats)
    skipped.sort(key=lambda s: (s["venue"], s["asset"]))
    return Result(start, end, ranked, pairs, skipped)


async def _venue(venue: str, assets: list[str], registry: Registry, cache: FundingCache, start: int, end: int,
                 rest_url: str, pace_s: float | None, progress: ProgressFactory,
                 skipped: list[dict[str, str]]) -> list[tuple[Instrument, list[Settlement]]]:
    why = unsupported(venue)
    if why is not None:
        skipped.append({"venue": venue, "asset": "*", "reason": why})
        return []
    out = []
    rd: Reader | None = None
    try:
        for asset in assets:
            insts = registry.select(venue, [asset])
            if not insts:
                skipped.append({"venue": venue, "asset": asset, "reason": f"no {asset} perpetual on {venue} "
                                "in the instrument registry"})
                continue
            inst = insts[0]
            lo = start - PAD_MS
            missing = cache.missing(venue, asset, inst.venue_symbol, lo, end)
            try:
                if missing:
                    rd = rd or reader(venue, rest_url, pace_s)
                    advance = progress(venue, asset, sum(b - a + 1 for a, b in missing))
                    for a, b in missing:
                        rows = await rd.read(inst, a, b, advance)
                        cache.store(venue, asset, inst.venue_symbol, rows, a, b)
            except FetchError as exc:
                skipped.append({"venue": venue, "asset": asset, "reason": str(exc)})
                continue
            except Exception as exc:  # an answer the reader did not expect: this pair only, named
                skipped.append({"venue": venue, "asset": asset, "reason": f"{type(exc).__name__}: {exc}"})
                continue
            series = [s for s in with_intervals(cache.load(venue, asset, inst.venue_symbol), inst.funding_interval_h)
                      if start < s[0] <= end]
            if not series:
                skipped.append({"venue": venue, "asset": asset,
                                "reason": f"{venue} has no {inst.venue_symbol} settlement in the window"})
                continue
            out.append((inst, series))
    finally:
        if rd is not None:
            await rd.close()
    return out
