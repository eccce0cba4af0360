"""The backtest's numbers, in exact decimals until they are written (definitions in README,
"Backtesting").

Equity at time t: ``capital + net PnL(t)``, where capital is the collateral deposited in the
paper accounts and net PnL is spread PnL (realized, and unrealized at the books' marks) plus
funding less fees, all USD-equivalent. The curve is the first record (equity = capital),
every point of the sampling grid, and the end of the data.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from decimal import Decimal, localcontext
from typing import Any

from perparb.backtest.observer import Sample
from perparb.paper.account import _CTX

ZERO = Decimal(0)
ONE = Decimal(1)
YEAR_S = 365 * 86_400  # crypto trades every day
METRIC_KEYS = ("return", "sharpe", "max_drawdown", "turnover", "fees", "funding", "trades", "hit_rate")


@dataclass
class Point:
    ts_ns: int
    equity: Decimal
    drawdown: Decimal  # from the running peak, a positive fraction
    sample: Sample


def curve(capital: Decimal, first_ns: int, grid: list[Sample], final: Sample) -> list[Point]:
    samples = [Sample(first_ns, ZERO, ZERO, ZERO, ZERO, ZERO), *grid]
    if final.ts_ns > samples[-1].ts_ns:
        samples.append(final)
    else:
        samples[-1] = final  # the end of the data is the last grid point
    out: list[Point] = []
    peak = None
    with localcontext(_CTX):
        for s in samples:
            e = capital + s.pnl
            peak = e if peak is None or e > peak else peak
            out.append(Point(s.ts_ns, e, (peak - e) / peak if peak > 0 else ZERO, s))
    return out


def sharpe(grid_equity: list[Decimal], step_s: float) -> Decimal | None:
    """Mean over sample standard deviation (n - 1) of the returns between consecutive grid
    points, times sqrt(periods per year); None with fewer than two returns or none varying."""
    with localcontext(_CTX):
        rets = [b / a - ONE for a, b in itertools.pairwise(grid_equity) if a > 0]
        n = len(rets)
        if n < 2:
            return None
        mean = sum(rets, ZERO) / n
        var = sum(((r - mean) ** 2 for r in rets), ZERO) / (n - 1)
        if var == 0:
            return None
        periods = Decimal(YEAR_S) / Decimal(repr(step_s))
        return mean / var.sqrt() * periods.sqrt()


def compute(capital: Decimal, points: list[Point], grid: list[Sample], step_s: float, traded: Decimal,
            trips: list[Any]) -> dict[str, Any]:
    """``metrics.json``: ``METRIC_KEYS`` in that order, as JSON numbers (null where undefined)."""
    final = points[-1]
    with localcontext(_CTX):
        ret = final.equity / capital - ONE if capital > 0 else None
        s = sharpe([capital + g.pnl for g in grid], step_s)
        wins = sum(1 for t in trips if t.net > 0)
        return {
            "return": _f(ret),
            "sharpe": _f(s),
            "max_drawdown": _f(max((p.drawdown for p in points), default=ZERO)),
            "turnover": _f(traded / capital if capital > 0 else None),
            "fees": _f(final.sample.fees),
            "funding": _f(final.sample.funding),
            "trades": len(trips),
            "hit_rate": _f(Decimal(wins) / len(trips) if trips else None),
        }


def _f(x: Decimal | None) -> float | None:
    return None if x is None else float(x)
