"""What the scanner knows about one contract on one venue, and the truth gates.

A leg is a (venue, contract) quoting an asset. Its prices come from its validated L2 book
when the venue streams one, else from its top-of-book quote (a one-level book). The gates
run first and cheaply, in a fixed order, and name the reason a leg cannot be used.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Mapping

from perparb.feeds.booksync import SYNCED, SyncedBook
from perparb.model import Funding, Instrument, Level, Quote, VenueStatus

# Suppression reasons, in the order the gates run. Each names a state the API shows:
# ``unsynced`` a book whose /api/books state is not ``synced``, ``one_sided`` a synced book
# (or a quote) with an empty side (/api/books: ``best_bid`` or ``best_ask`` null).
STALE, DISCONNECTED, UNSYNCED, ONE_SIDED, CROSSED, AMBIGUOUS, INACTIVE, UNVERIFIED = (
    "stale", "disconnected", "unsynced", "one_sided", "crossed", "ambiguous", "inactive", "unverified")
DEPTH = 50  # levels walked per side
BELOW_THRESHOLD, BELOW_MIN_SIZE, ILLIQUID = "below_threshold", "below_min_size", "illiquid"
REASONS = (STALE, DISCONNECTED, UNSYNCED, ONE_SIDED, CROSSED, AMBIGUOUS, INACTIVE, UNVERIFIED, BELOW_THRESHOLD,
           BELOW_MIN_SIZE, ILLIQUID)

MINUTE_NS = 60_000_000_000
# Funding points kept per contract: one a minute (more around settlements) is a day or more.
FUNDING_HISTORY = 1440

# (engine time, rate, predicted rate, interval h, next settlement ns)
FundingPoint = tuple[int, float, float | None, float, int]


class Leg:
    __slots__ = ("book", "funding", "funding_hist", "group", "inst", "key", "last_ns", "quote", "venue")

    def __init__(self, inst: Instrument) -> None:
        self.inst = inst
        self.venue = inst.venue
        self.group = inst.quote  # the scanner sets its quote group: legs price against each other within one
        self.key = (inst.venue, inst.venue_symbol)
        self.book: SyncedBook | None = None
        self.quote: Quote | None = None
        self.funding: Funding | None = None
        self.funding_hist: deque[FundingPoint] = deque(maxlen=FUNDING_HISTORY)
        self.last_ns = 0  # last time anything about this leg's prices arrived

    def set_funding(self, f: Funding, now_ns: int) -> None:
        """Take a funding update and keep its history: one point per minute per settlement
        (a later update in the same minute replaces the point), so a venue streaming funding
        every second costs one tuple a minute, and the deque's bound keeps memory fixed."""
        self.funding = f
        hist = self.funding_hist
        point = (now_ns, f.rate, f.predicted_rate, f.interval_h, f.next_funding_ns)
        if hist:
            last = hist[-1]
            if last[0] // MINUTE_NS == now_ns // MINUTE_NS and last[4] == f.next_funding_ns:
                hist[-1] = point
                return
        hist.append(point)

    def seen_ns(self) -> int:
        """The last time anything arrived for this leg, prices or funding."""
        f = self.funding
        return max(self.last_ns, f.recv_ns) if f is not None else self.last_ns

    # -- prices --------------------------------------------------------------------------
    def top(self) -> tuple[Level | None, Level | None]:
        """(best bid, best ask), read once for a whole evaluation."""
        if self.book is not None:
            b = self.book.book
            return b.bids.best_level, b.asks.best_level
        q = self.quote
        if q is None:
            return None, None
        return ((q.bid_px, q.bid_qty) if q.bid_qty > 0.0 else None,
                (q.ask_px, q.ask_qty) if q.ask_qty > 0.0 else None)

    def best_bid(self) -> Level | None:
        if self.book is not None:
            return self.book.book.bids.best_level
        q = self.quote
        return (q.bid_px, q.bid_qty) if q is not None and q.bid_qty > 0.0 else None

    def best_ask(self) -> Level | None:
        if self.book is not None:
            return self.book.book.asks.best_level
        q = self.quote
        return (q.ask_px, q.ask_qty) if q is not None and q.ask_qty > 0.0 else None

    def asks(self, depth: int) -> list[Level]:
        if self.book is not None:
            return self.book.book.asks.top(depth)
        q = self.quote
        return [(q.ask_px, q.ask_qty)] if q is not None else []

    def bids(self, depth: int) -> list[Level]:
        if self.book is not None:
            return self.book.book.bids.top(depth)
        q = self.quote
        return [(q.bid_px, q.bid_qty)] if q is not None else []

    # -- gates ---------------------------------------------------------------------------
    def problem(self, now_ns: int, max_age_ns: int, status: Mapping[str, VenueStatus],
                ambiguous: bool = False, top: tuple[Level | None, Level | None] | None = None) -> str | None:
        """The first gate this leg fails, or None when it may be traded."""
        if now_ns - self.last_ns > max_age_ns:
            return STALE
        st = status.get(self.venue)
        if st is not None and not st.connected:
            return DISCONNECTED
        if self.book is not None and self.book.state != SYNCED:
            return UNSYNCED
        bid, ask = top if top is not None else self.top()
        if bid is None or ask is None:
            return ONE_SIDED
        if bid[0] >= ask[0]:
            return CROSSED
        if ambiguous:
            return AMBIGUOUS
        status_ = self.inst.status
        if status_ != "active":
            return INACTIVE if status_ == "inactive" else UNVERIFIED
        return None


class DepthCache:
    """Each leg's top ``DEPTH`` levels read once per evaluation: one leg is the buy or the
    sell side of a pair with every other venue quoting the asset."""

    __slots__ = ("_levels", "_sizes")

    def __init__(self) -> None:
        self._levels: dict[tuple[Leg, bool], list[Level]] = {}
        self._sizes: dict[tuple[Leg, bool], float] = {}

    def asks(self, leg: Leg) -> list[Level]:
        got = self._levels.get((leg, False))
        if got is None:
            got = self._levels[leg, False] = leg.asks(DEPTH)
        return got

    def bids(self, leg: Leg) -> list[Level]:
        got = self._levels.get((leg, True))
        if got is None:
            got = self._levels[leg, True] = leg.bids(DEPTH)
        return got

    def ask_size(self, leg: Leg) -> float:
        """Total size of ``asks(leg)``."""
        got = self._sizes.get((leg, False))
        if got is None:
            got = self._sizes[leg, False] = sum(q for _, q in self.asks(leg))
        return got

    def bid_size(self, leg: Leg) -> float:
        got = self._sizes.get((leg, True))
        if got is None:
            got = self._sizes[leg, True] = sum(q for _, q in self.bids(leg))
        return got
