"""Opportunity lifecycle: open, update, close events, and rolling statistics.

An opportunity has a stable id per (kind, asset, venue pair, direction). It opens when a
scan first finds it, updates while it lasts (an update event is emitted when the edge or
size moved, or at most once a second otherwise), and closes when a scan no longer finds
it. Times are engine time, so replays produce the same events.
Per (kind, asset, venue pair) the statistics keep one bucket per minute for a day: the
edges seen (sampled every 5 s while open) and how many seconds the opportunity was open.
Over the last hour and day they give the median net edge while open and the share of the
time observed that it was open; early in a run the time observed is what the scanner has
seen of the window, not the whole window.
"""

from __future__ import annotations

import statistics
from collections import Counter, deque
from collections.abc import Callable

from msgspec.structs import replace

from perparb.model import Opportunity

Listener = Callable[[str, Opportunity], None]  # (open|update|close, opportunity)

MINUTE_NS = 60_000_000_000
SAMPLE_EVERY_NS = 5_000_000_000
DAY_MINUTES = 1440


class _Bucket:
    __slots__ = ("bases", "edges", "minute", "open_ns")

    def __init__(self, minute: int) -> None:
        self.minute = minute
        self.edges: list[float] = []
        self.bases: list[float] = []  # basis (mid against mid, bps) at the same samples
        self.open_ns = 0


class PairStats:
    """Rolling per-minute statistics of one (kind, asset, venue pair)."""

    __slots__ = ("buckets", "last_ns", "open_since")

    def __init__(self) -> None:
        self.buckets: deque[_Bucket] = deque()
        self.open_since = 0
        self.last_ns = 0

    def _bucket(self, now_ns: int) -> _Bucket:
        minute = now_ns // MINUTE_NS
        if not self.buckets or self.buckets[-1].minute != minute:
            self.buckets.append(_Bucket(minute))
            while self.buckets and self.buckets[0].minute <= minute - DAY_MINUTES:
                self.buckets.popleft()
        return self.buckets[-1]

    def sample(self, edge_bps: float, now_ns: int, basis_bps: float | None = None) -> None:
        # One sample per 5 s is plenty for a median and keeps a day of an always-open pair
        # at about 17,000 numbers a series, whatever the update rate.
        if self.last_ns and now_ns - self.last_ns < SAMPLE_EVERY_NS:
            return
        b = self._bucket(now_ns)
        b.edges.append(edge_bps)
        if basis_bps is not None:
            b.bases.append(basis_bps)
        self.last_ns = now_ns

    def add_open_time(self, start_ns: int, end_ns: int) -> None:
        """Credit [start, end) open time to the minute buckets it spans. Only the last day
        is kept, so only the last day is walked: a jump of the clock costs at most a day of
        minutes, however far it goes."""
        t = max(start_ns, end_ns - DAY_MINUTES * MINUTE_NS)
        while t < end_ns:
            edge = (t // MINUTE_NS + 1) * MINUTE_NS
            self._bucket(t).open_ns += min(edge, end_ns) - t
            t = edge

    def summary(self, now_ns: int, minutes: int, since_ns: int = 0) -> dict[str, float | None]:
        """The window is the buckets of the last ``minutes`` minutes (the current one partly
        elapsed), cut at ``since_ns``, when observation began."""
        lo = now_ns // MINUTE_NS - minutes
        start = max((lo + 1) * MINUTE_NS, since_ns)
        recent = [b for b in self.buckets if b.minute > lo]
        edges = [e for b in recent for e in b.edges]
        open_ns = sum(b.open_ns for b in recent)
        if self.open_since:
            open_ns += now_ns - max(self.open_since, start)
        observed_ns = max(0, now_ns - start)
        return {"window_s": minutes * 60, "observed_s": observed_ns / 1e9, "open_s": open_ns / 1e9,
                "open_fraction": min(1.0, open_ns / observed_ns) if observed_ns else None,
                "median_open_edge_bps": statistics.median(edges) if edges else None, "samples": len(edges)}


class Lifecycle:
    def __init__(self, update_every_ns: int = 1_000_000_000) -> None:
        self.active: dict[str, Opportunity] = {}
        # Open ids per asset in the order they opened: a dict, not a set, because closes
        # are emitted in this order and a set's order changes with string hashing.
        self.by_asset: dict[str, dict[str, None]] = {}
        self.listeners: list[Listener] = []
        self.opened: Counter[str] = Counter()
        self.stats: dict[str, PairStats] = {}
        self.since_ns = 0  # engine time of the scanner's first input: the start of what it observed
        self.update_every_ns = update_every_ns
        self._emitted: dict[str, tuple[int, float, float]] = {}  # id -> (ts, edge, size) last sent

    def upsert(self, opp: Opportunity) -> None:
        prev = self.active.get(opp.id)
        now = opp.ts_ns
        stats = self.stats.get(opp.id)
        if stats is None:
            stats = self.stats[opp.id] = PairStats()
        stats.sample(opp.edge_bps, now, opp.basis_bps)
        if prev is None:
            opp.first_seen_ns = now
            opp.peak_edge_bps = opp.edge_bps
            self.active[opp.id] = opp
            self.by_asset.setdefault(opp.asset, {})[opp.id] = None
            self.opened[opp.kind] += 1
            stats.open_since = now
            self._emit("open", opp)
            return
        opp.first_seen_ns = prev.first_seen_ns
        opp.peak_edge_bps = max(prev.peak_edge_bps, opp.edge_bps)
        self.active[opp.id] = opp
        ts, edge, size = self._emitted[opp.id]
        if (now - ts >= self.update_every_ns or abs(opp.edge_bps - edge) >= 0.05
                or abs(opp.size_base - size) > 0.01 * max(size, 1e-12)):
            self._emit("update", opp)

    def close(self, oid: str, now_ns: int, reason: str = "") -> None:
        opp = self.active.pop(oid, None)
        if opp is None:
            return
        ids = self.by_asset.get(opp.asset)
        if ids is not None:
            ids.pop(oid, None)
            if not ids:
                del self.by_asset[opp.asset]
        stats = self.stats.get(oid)
        if stats is not None and stats.open_since:
            stats.add_open_time(stats.open_since, now_ns)
            stats.open_since = 0
        self._emit("close", replace(opp, ts_ns=now_ns, close_reason=reason))  # emitted objects never change
        del self._emitted[oid]

    def summary(self, oid: str, now_ns: int, minutes: int) -> dict[str, float | None] | None:
        stats = self.stats.get(oid)
        return stats.summary(now_ns, minutes, self.since_ns) if stats is not None else None

    def ids(self, asset: str) -> list[str]:
        return list(self.by_asset.get(asset, ()))

    def evict_stats(self, now_ns: int) -> None:
        """Forget statistics of pairs not seen for a day (memory stays bounded)."""
        cutoff = now_ns - DAY_MINUTES * MINUTE_NS
        for oid in [k for k, s in self.stats.items() if s.last_ns < cutoff and k not in self.active]:
            del self.stats[oid]

    def _emit(self, event: str, opp: Opportunity) -> None:
        self._emitted[opp.id] = (opp.ts_ns, opp.edge_bps, opp.size_base)
        for listener in self.listeners:
            listener(event, opp)
