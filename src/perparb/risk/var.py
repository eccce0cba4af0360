"""Value at risk of the current positions, from the engine's own mid-price history.

Every contract's mid is sampled at the same engine-time ticks (``var_sample_s``), so the
histories line up by index. With ``h`` samples to the horizon and exposures ``w_i`` (signed
notional, quote currency):

- historical: each past window k gives the PnL ``sum_i w_i * (m_i[k+h] / m_i[k] - 1)``; VaR
  is the loss at the confidence quantile of those (overlapping) windows, the empirical
  quantile taken as the ``ceil(c * N)``-th smallest loss.
- parametric: one-sample returns give a covariance matrix ``S``; the horizon's standard
  deviation is ``sqrt(w' S w) * sqrt(h)`` (square-root of time, zero mean) and VaR is
  ``z_c`` times it.

Both are reported as a loss (>= 0); None while the history is shorter than the horizon.
"""

from __future__ import annotations

import math
import operator
from collections import deque
from collections.abc import Mapping, Sequence
from itertools import pairwise
from statistics import NormalDist

Key = tuple[str, str]  # (venue, venue_symbol)


class PriceHistory:
    """Bounded mid-price history per contract, sampled on engine time."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.mids: dict[Key, deque[float]] = {}
        self.samples = 0

    def sample(self, mids: Mapping[Key, float]) -> None:
        """One tick: every contract seen so far gets a value (its last mid when it has no new
        one), so all histories stay aligned on the newest sample."""
        self.samples += 1
        for key, mid in mids.items():
            if key not in self.mids:
                self.mids[key] = deque(maxlen=self.window)
            self.mids[key].append(mid)
        for key, hist in self.mids.items():
            if key not in mids and hist:
                hist.append(hist[-1])

    def aligned(self, keys: Sequence[Key]) -> list[list[float]] | None:
        hists = [self.mids.get(k) for k in keys]
        if not hists or any(h is None or not h for h in hists):
            return None
        n = min(len(h) for h in hists if h is not None)
        return [list(h)[-n:] for h in hists if h is not None]


def historical_var(exposures: Sequence[float], series: Sequence[Sequence[float]], horizon: int,
                   confidence: float) -> float | None:
    n = len(series[0]) if series else 0
    if horizon < 1 or n - horizon < 2:
        return None
    # Per contract, the PnL of each past window; summed across contracts window by window.
    legs = [[w * (b / a - 1.0) for a, b in zip(m[:n - horizon], m[horizon:], strict=True)]
            for w, m in zip(exposures, series, strict=True)]
    losses = sorted(-sum(pnl) for pnl in zip(*legs, strict=True))
    idx = min(len(losses) - 1, max(0, math.ceil(confidence * len(losses)) - 1))
    return max(0.0, losses[idx])


def parametric_var(exposures: Sequence[float], series: Sequence[Sequence[float]], horizon: int,
                   confidence: float) -> float | None:
    n = len(series[0]) if series else 0
    if horizon < 1 or n - horizon < 2 or n < 3:
        return None
    devs = []
    for m in series:
        r = [b / a - 1.0 for a, b in pairwise(m)]
        mean = sum(r) / len(r)
        devs.append([x - mean for x in r])
    var = 0.0
    for i, di in enumerate(devs):
        for j in range(i, len(devs)):
            cov = sum(map(operator.mul, di, devs[j])) / (n - 2)
            var += (1.0 if i == j else 2.0) * exposures[i] * exposures[j] * cov
    sigma = math.sqrt(max(0.0, var)) * math.sqrt(horizon)
    return NormalDist().inv_cdf(confidence) * sigma
