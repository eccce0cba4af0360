"""Plausibility of normalized events: the one check between venue values and the engine.

Every event a venue adapter produces passes here before anything keeps it (``Venue.decode``):
prices finite and positive, sizes finite and non-negative, funding rates within
``max_funding_rate`` per interval (venues cap theirs at a few percent), funding intervals
between 0 and a week, timestamps non-negative 64-bit and, when a clock is given (the
engine's), the venue's own timestamp within ``clock_window_ns`` of it. NaN fails every
comparison, so each test is written as "inside the bounds" and NaN lands outside.

The check is one pass over each event's numbers, with no objects made on the way; it
returns the first problem as (reason, field, value) or None.
"""

from __future__ import annotations

from dataclasses import dataclass

from perparb.levels import levels_ok
from perparb.model import BookDelta, BookSnapshot, Funding, Level, MarketEvent, Quote, Trade

INF = float("inf")
MAX_NS = 1 << 63
MAX_INTERVAL_H = 168.0

# Reasons, as counted per venue and in /metrics.
BAD_PRICE, BAD_SIZE, BAD_FUNDING, BAD_TIME, BAD_VALUE = (
    "bad_price", "bad_size", "bad_funding_rate", "bad_timestamp", "bad_value")

Problem = tuple[str, str, object]  # (reason, field, value)


@dataclass(frozen=True, slots=True)
class Limits:
    max_funding_rate: float = 0.05  # |rate| per funding interval
    clock_window_ns: int = 600_000_000_000  # venue timestamps within 10 min of the engine clock


def check(ev: MarketEvent, limits: Limits, clock_ns: int | None = None, inf: float = INF) -> Problem | None:
    t = type(ev)
    p: Problem | None = None
    if t is Quote:
        q: Quote = ev  # type: ignore[assignment]
        if not (0.0 < q.bid_px < inf and 0.0 <= q.bid_qty < inf and 0.0 < q.ask_px < inf and 0.0 <= q.ask_qty < inf):
            p = _side(q.bid_px, q.bid_qty, "bid") or _side(q.ask_px, q.ask_qty, "ask")
    elif t is BookDelta or t is BookSnapshot:
        # The hot path: one compiled pass per side where built (perparb.levels), else in Python.
        b: BookDelta = ev  # type: ignore[assignment]
        if not (levels_ok(b.bids) and levels_ok(b.asks)):
            p = _book_problem(b, inf)
    elif t is Funding:
        p = _funding(ev, limits)  # type: ignore[arg-type]
    elif t is Trade:
        tr: Trade = ev  # type: ignore[assignment]
        p = _side(tr.px, tr.qty, "")
    else:
        return (BAD_VALUE, "type", t.__name__)
    if p is not None:
        return p
    ts = ev.ts_exchange_ns
    if not 0 <= ts < MAX_NS:
        return (BAD_TIME, "ts_exchange_ns", ts)
    if ts and clock_ns is not None and not -limits.clock_window_ns <= ts - clock_ns <= limits.clock_window_ns:
        return (BAD_TIME, "ts_exchange_ns", ts)
    return None


def _book_problem(b: BookDelta, inf: float) -> Problem | None:
    """The first bad level of a book event: one pass, comparisons only (also the whole
    check where perparb._levels is not built)."""
    for px, qty in b.bids:
        if not (0.0 < px < inf and 0.0 <= qty < inf):
            return _level_problem(b.bids, "bids")
    for px, qty in b.asks:
        if not (0.0 < px < inf and 0.0 <= qty < inf):
            return _level_problem(b.asks, "asks")
    return None


def _side(px: float, qty: float, name: str) -> Problem | None:
    if 0.0 < px < INF:
        if 0.0 <= qty < INF:
            return None
        return (BAD_SIZE, f"{name}_qty" if name else "qty", qty)
    if px == 0.0 and qty == 0.0 and name:
        return None  # an empty side of a top-of-book quote
    return (BAD_PRICE, f"{name}_px" if name else "px", px)


def _level_problem(levels: list[Level], name: str) -> Problem:
    for i, (px, qty) in enumerate(levels):
        if not 0.0 < px < INF:
            return (BAD_PRICE, f"{name}[{i}] price", px)
        if not 0.0 <= qty < INF:
            return (BAD_SIZE, f"{name}[{i}] size", qty)
    raise AssertionError("no bad level")


def _funding(f: Funding, limits: Limits) -> Problem | None:
    m = limits.max_funding_rate
    if not -m <= f.rate <= m:
        return (BAD_FUNDING, "rate", f.rate)
    if f.predicted_rate is not None and not -m <= f.predicted_rate <= m:
        return (BAD_FUNDING, "predicted_rate", f.predicted_rate)
    if not 0.0 < f.interval_h <= MAX_INTERVAL_H:
        return (BAD_VALUE, "interval_h", f.interval_h)
    if not 0 <= f.next_funding_ns < MAX_NS:
        return (BAD_TIME, "next_funding_ns", f.next_funding_ns)
    for name, px in (("mark_px", f.mark_px), ("index_px", f.index_px)):
        if px is not None and not 0.0 < px < INF:
            return (BAD_PRICE, name, px)
    for name, x in (("open_interest", f.open_interest), ("volume_24h_quote", f.volume_24h_quote)):
        if x is not None and not 0.0 <= x < INF:
            return (BAD_SIZE, name, x)
    return None
