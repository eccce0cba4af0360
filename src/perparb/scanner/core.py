"""The scanner: per-asset legs, incremental evaluation, truth gates, rejection counts.

State is kept per canonical asset. An update to one leg re-evaluates only the pairs that
leg is part of (buying there and selling elsewhere, and the reverse), so the cost of an
update grows with the number of venues quoting that asset, not with the universe.
Every candidate that shows a visible price gap (the sell venue's best bid above the buy
venue's best ask) but is not reported is counted by the reason, in gate order.
Funding carry changes slowly and is evaluated on funding updates and on each sweep.
"""

from __future__ import annotations

import logging
import statistics
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field

from perparb.feeds.booksync import SyncedBook
from perparb.model import Funding, Instrument, Level, Opportunity, Quote, VenueStatus
from perparb.scanner.funding import evaluate_carry
from perparb.scanner.legs import BELOW_THRESHOLD, ILLIQUID, STALE, DepthCache, Leg
from perparb.scanner.lifecycle import Lifecycle, Listener
from perparb.scanner.spread import evaluate_pair, top_unit_clears

log = logging.getLogger("perparb.scanner")

Top = tuple[Level | None, Level | None]
Gates = dict[Leg, str | None]
_UNSET = "?"  # a leg's gates not run yet in this evaluation


@dataclass
class ScanSettings:
    min_edge_bps: float = 0.0
    max_quote_age_ms: float = 5000.0
    venue_max_age_ms: dict[str, float] = field(default_factory=dict)
    taker_fees: dict[str, float] = field(default_factory=dict)
    max_notional: float = 0.0  # 0: no cap on the size walked
    funding_notional: float = 10_000.0
    funding_horizon_h: float = 24.0
    funding_min_apr: float = 0.0
    funding_max_age_ms: float = 600_000.0
    funding_intervals: str = "any"  # any | matching | different
    # Liquidity floors for carry legs, applied where the venue publishes the figure.
    funding_min_open_interest_quote: float = 0.0
    funding_min_volume_quote: float = 0.0
    evict_after_ms: float = 3_600_000.0  # forget legs silent this long
    # A leg whose mid is this many times above or below the median of the other venues'
    # mids is taken for a different token (or a wrong multiple) and never paired.
    ambiguity_ratio: float = 1.5
    # Quote currencies priced as one (a USDT perp against a USD inverse or a USDC perp).
    # The stablecoins' own basis is not modelled; [] pairs identical quotes only.
    quote_groups: list[list[str]] = field(default_factory=lambda: [["USD", "USDT", "USDC"]])
    # Plausibility bounds of the decode path (perparb.validate): a funding rate beyond this
    # per interval, or a venue timestamp further than this from the engine clock, is a
    # decode error, not data.
    max_funding_rate: float = 0.05
    clock_window_s: float = 600.0


class Scanner:
    def __init__(self, settings: ScanSettings | None = None) -> None:
        self.settings = settings or ScanSettings()
        self.legs: dict[str, dict[tuple[str, str], Leg]] = {}
        self.lifecycle = Lifecycle()
        self.rejections: Counter[str] = Counter()
        # (venue, venue_symbol) -> why it is never paired (a price far from the other venues')
        self.ambiguous: dict[tuple[str, str], str] = {}
        self._price_flagged: set[tuple[str, str]] = set()
        self._max_age = {v: int(ms * 1e6) for v, ms in self.settings.venue_max_age_ms.items()}
        self._quote_group = {q: g[0] for g in self.settings.quote_groups for q in g}
        # (kind, asset, buy venue, sell venue) -> why that pair was not reported (for close reasons)
        self._why: dict[tuple[str, str, str, str], str] = {}
        # Assets whose prices / funding changed since a reader (the WebSocket hub) last looked.
        self.dirty: set[str] = set()
        self.dirty_funding: set[str] = set()
        self._new_legs: set[str] = set()  # assets with a leg not yet checked against the others
        self._default_age = int(self.settings.max_quote_age_ms * 1e6)
        # venue -> receive time of its latest price data (health judges data age, not the socket)
        self.venue_data_ns: dict[str, int] = {}

    # -- compatibility shorthands used by views and reports -------------------------------
    @property
    def listeners(self) -> list[Listener]:
        return self.lifecycle.listeners

    @property
    def opened(self) -> int:
        return sum(self.lifecycle.opened.values())

    @property
    def min_edge_bps(self) -> float:
        return self.settings.min_edge_bps

    @min_edge_bps.setter
    def min_edge_bps(self, v: float) -> None:
        self.settings.min_edge_bps = v

    def best(self, n: int = 10, kind: str | None = None) -> list[Opportunity]:
        opps = (o for o in self.lifecycle.active.values() if kind is None or o.kind == kind)
        key = (lambda o: -o.net_carry_quote) if kind == "funding" else (lambda o: -o.edge_bps)
        return sorted(opps, key=key)[:n]

    def max_age_ns(self, venue: str) -> int:
        """The staleness limit of a venue's prices."""
        return self._max_age.get(venue, self._default_age)

    def comparable(self, a: Leg, b: Leg) -> bool:
        return a.group == b.group

    def fee(self, inst: Instrument) -> float:
        return self.settings.taker_fees.get(inst.venue, inst.taker_fee)

    # -- input ---------------------------------------------------------------------------
    def leg(self, inst: Instrument, now_ns: int = 0) -> Leg:
        if not self.lifecycle.since_ns:
            self.lifecycle.since_ns = now_ns
        legs = self.legs.get(inst.asset)
        if legs is None:
            legs = self.legs[inst.asset] = {}
        key = (inst.venue, inst.venue_symbol)
        leg = legs.get(key)
        if leg is None:
            leg = legs[key] = Leg(inst)
            leg.group = self._quote_group.get(inst.quote, inst.quote)
            self._new_legs.add(inst.asset)
        elif leg.inst is not inst:
            leg.inst = inst  # metadata refreshed
            leg.group = self._quote_group.get(inst.quote, inst.quote)
        return leg

    def on_quote(self, inst: Instrument, q: Quote, now_ns: int, status: Mapping[str, VenueStatus]) -> None:
        leg = self.leg(inst, now_ns)
        self.dirty.add(inst.asset)
        leg.quote = q
        leg.last_ns = self.venue_data_ns[inst.venue] = q.recv_ns
        self.evaluate_leg(leg, now_ns, status)

    def on_book(self, inst: Instrument, book: SyncedBook, now_ns: int, status: Mapping[str, VenueStatus]) -> None:
        leg = self.leg(inst, now_ns)
        self.dirty.add(inst.asset)
        leg.book = book
        leg.last_ns = self.venue_data_ns[inst.venue] = book.last_ns
        self.evaluate_leg(leg, now_ns, status)

    def on_funding(self, inst: Instrument, f: Funding, now_ns: int, status: Mapping[str, VenueStatus]) -> None:
        leg = self.leg(inst, now_ns)
        leg.set_funding(f, now_ns)
        self.dirty_funding.add(inst.asset)
        self.evaluate_carry(inst.asset, now_ns, status)

    def forget(self, venue: str, venue_symbol: str) -> None:
        """Drop a leg (its mapping changed); what it was part of closes."""
        key = (venue, venue_symbol)
        for asset, legs in list(self.legs.items()):
            if legs.pop(key, None) is not None:
                for oid in sorted(o for o in self.lifecycle.ids(asset) if venue in o.split(":")[2:]):
                    self.lifecycle.close(oid, self.lifecycle.active[oid].ts_ns, "remapped")
                if not legs:
                    del self.legs[asset]

    # -- evaluation ----------------------------------------------------------------------
    def _problem(self, leg: Leg, now_ns: int, status: Mapping[str, VenueStatus], top: Top | None = None) -> str | None:
        return leg.problem(now_ns, self._max_age.get(leg.venue, self._default_age), status,
                           leg.key in self.ambiguous, top)

    def _gates(self, gates: Gates, leg: Leg, now_ns: int, status: Mapping[str, VenueStatus],
               top: Top | None = None) -> str | None:
        """``_problem``, run once per leg and evaluation (kept in ``gates``): a leg is part of
        up to one pair per other venue, and nothing its gates read changes during one
        evaluation."""
        reason = gates.get(leg, _UNSET)
        if reason is _UNSET:
            reason = gates[leg] = leg.problem(now_ns, self._max_age.get(leg.venue, self._default_age), status,
                                              leg.key in self.ambiguous, top)
        return reason

    def check_ambiguity(self, asset: str) -> None:
        """Mark legs whose mid is far from the median of the other venues' mids."""
        self._new_legs.discard(asset)
        mids = {}
        for key, leg in self.legs.get(asset, {}).items():
            bid, ask = leg.top()
            if bid is not None and ask is not None and bid[0] > 0.0:
                mids[key] = (bid[0] + ask[0]) / 2
        limit = self.settings.ambiguity_ratio
        venues = {k[0] for k in mids}
        if len(venues) < 2:
            return
        # With three or more venues the median is a majority's price; with two, each can
        # only be compared with the other, and a wide disagreement leaves neither trusted.
        median = statistics.median(mids.values()) if len(venues) >= 3 else None
        for key, mid in mids.items():
            ref = median if median is not None else next(m for k, m in mids.items() if k[0] != key[0])
            ratio = max(mid / ref, ref / mid)
            if ratio > limit:
                if key not in self.ambiguous:
                    log.warning("%s %s (%s) is ambiguous: mid %.6g vs %.6g across venues (x%.3g)",
                                key[0], key[1], asset, mid, ref, ratio)
                self.ambiguous[key] = f"mid {mid:.6g} vs {ref:.6g} across venues (x{ratio:.3g})"
                self._price_flagged.add(key)
            elif key in self._price_flagged:  # prices agree again; marks set by hand stay
                self._price_flagged.discard(key)
                self.ambiguous.pop(key, None)

    def evaluate_leg(self, leg: Leg, now_ns: int, status: Mapping[str, VenueStatus]) -> None:
        asset = leg.inst.asset
        legs = self.legs[asset]
        if len(legs) < 2:
            return
        if asset in self._new_legs:
            self.check_ambiguity(asset)
        found: dict[str, Opportunity] = {}
        mine = leg.top()
        my_bid, my_ask = mine
        venue, group = leg.venue, leg.group
        gates: Gates = {}
        depth = DepthCache()
        for other in legs.values():
            if other.venue == venue or other.group != group:
                continue
            # Only a visible price gap makes a candidate; most pairs stop at this comparison.
            book = other.book
            if book is not None:  # Leg.top() without the call: this loop runs for every venue of the asset
                theirs = book.book.bids.best_level, book.book.asks.best_level
            else:
                theirs = other.top()
            bid, ask = theirs
            if my_ask is not None and bid is not None and bid[0] > my_ask[0]:
                opp = self._pair(asset, leg, other, mine, theirs, now_ns, status, gates, depth)
                if opp is not None:
                    _keep_best(found, opp)
            if my_bid is not None and ask is not None and my_bid[0] > ask[0]:
                opp = self._pair(asset, other, leg, theirs, mine, now_ns, status, gates, depth)
                if opp is not None:
                    _keep_best(found, opp)
        self._settle(asset, "spread", found, now_ns, venue)

    def _pair(self, asset: str, a: Leg, b: Leg, a_top: Top, b_top: Top, now_ns: int,
              status: Mapping[str, VenueStatus], gates: Gates, depth: DepthCache) -> Opportunity | None:
        """Buy on ``a``, sell on ``b``; the caller saw b's bid above a's ask."""
        ask, bid = a_top[1], b_top[0]
        if ask is not None and bid is not None and bid[0] > ask[0] * self.settings.ambiguity_ratio:
            self.check_ambiguity(asset)  # a gap this wide is a mapping problem until shown otherwise
            gates.clear()  # it may have marked a leg
        # Each leg's gates run once per evaluation (``_gates``, written out: this runs for
        # every candidate pair).
        reason = gates.get(a, _UNSET)
        if reason is _UNSET:
            reason = gates[a] = a.problem(now_ns, self._max_age.get(a.venue, self._default_age), status,
                                          a.key in self.ambiguous, a_top)
        if reason is None:
            reason = gates.get(b, _UNSET)
            if reason is _UNSET:
                reason = gates[b] = b.problem(now_ns, self._max_age.get(b.venue, self._default_age), status,
                                              b.key in self.ambiguous, b_top)
        if reason is None:
            s = self.settings
            fees = s.taker_fees  # self.fee() inline: this runs for every candidate pair
            fee_a, fee_b = fees.get(a.venue, a.inst.taker_fee), fees.get(b.venue, b.inst.taker_fee)
            if top_unit_clears(a_top, b_top, fee_a, fee_b, s.min_edge_bps):
                opp, reason = evaluate_pair(asset, a, b, a_top, b_top, fee_a, fee_b, s.min_edge_bps, s.max_notional,
                                            now_ns, depth)
                if opp is not None:
                    return opp
            else:
                reason = BELOW_THRESHOLD
        reason = reason or "unknown"
        self.rejections[reason] += 1
        self._why["spread", asset, a.venue, b.venue] = reason
        return None

    def evaluate_asset(self, asset: str, now_ns: int, status: Mapping[str, VenueStatus]) -> None:
        found: dict[str, Opportunity] = {}
        legs = list(self.legs.get(asset, {}).values())
        tops = [leg.top() for leg in legs]
        gates: Gates = {}
        depth = DepthCache()
        for a, a_top in zip(legs, tops, strict=True):
            for b, b_top in zip(legs, tops, strict=True):
                if a.venue == b.venue or a.group != b.group:
                    continue
                ask, bid = a_top[1], b_top[0]
                if ask is not None and bid is not None and bid[0] > ask[0]:
                    opp = self._pair(asset, a, b, a_top, b_top, now_ns, status, gates, depth)
                    if opp is not None:
                        _keep_best(found, opp)
        self._settle(asset, "spread", found, now_ns)

    def evaluate_carry(self, asset: str, now_ns: int, status: Mapping[str, VenueStatus]) -> None:
        s = self.settings
        legs = [leg for leg in self.legs.get(asset, {}).values() if leg.funding is not None]
        found: dict[str, Opportunity] = {}
        max_funding_age = int(s.funding_max_age_ms * 1e6)
        gates: Gates = {}
        depth = DepthCache()
        for long in legs:
            for short in legs:
                if long.venue == short.venue or long.group != short.group:
                    continue
                fl, fs = long.funding, short.funding
                assert fl is not None and fs is not None
                same = fl.interval_h == fs.interval_h
                if (s.funding_intervals == "matching" and not same) or (s.funding_intervals == "different" and same):
                    continue
                if fs.rate / fs.interval_h <= fl.rate / fl.interval_h:
                    continue  # no differential in this direction: not a candidate
                reason = self._gates(gates, long, now_ns, status) or self._gates(gates, short, now_ns, status)
                if reason is None and (now_ns - fl.recv_ns > max_funding_age or now_ns - fs.recv_ns > max_funding_age):
                    reason = STALE
                if reason is None and not (self._liquid(fl) and self._liquid(fs)):
                    reason = ILLIQUID
                if reason is None:
                    opp, reason = evaluate_carry(asset, long, short, self.fee(long.inst), self.fee(short.inst),
                                                 s.funding_notional, s.funding_horizon_h, s.funding_min_apr, now_ns,
                                                 depth)
                    if opp is not None:
                        _keep_best(found, opp)
                        continue
                self.rejections[f"funding_{reason}"] += 1
                self._why["funding", asset, long.venue, short.venue] = reason or "unknown"
        self._settle(asset, "funding", found, now_ns)

    def _liquid(self, f: Funding) -> bool:
        s = self.settings
        if s.funding_min_volume_quote and f.volume_24h_quote is not None and \
                f.volume_24h_quote < s.funding_min_volume_quote:
            return False
        px = f.mark_px or f.index_px
        return not (s.funding_min_open_interest_quote and f.open_interest is not None and px
                    and f.open_interest * px < s.funding_min_open_interest_quote)

    def _settle(self, asset: str, kind: str, found: dict[str, Opportunity], now_ns: int,
                venue: str | None = None) -> None:
        """Close what this evaluation covered but did not find again, then publish the rest.
        ``venue`` limits the evaluation's reach to the pairs of that venue."""
        lc = self.lifecycle
        ids = lc.by_asset.get(asset)
        if ids:
            active = lc.active
            for oid in sorted(o for o in ids if o not in found):  # sorted: a set's order varies by process
                o = active[oid]
                if o.kind == kind and (venue is None or o.buy_venue == venue or o.sell_venue == venue):
                    lc.close(oid, now_ns, self._why.get((kind, asset, o.buy_venue, o.sell_venue), "no_gap"))
        self._why.clear()
        for opp in found.values():
            lc.upsert(opp)

    def sweep(self, now_ns: int, status: Mapping[str, VenueStatus]) -> None:
        """Re-check everything (legs go stale without any message arriving), evict legs
        silent for ``evict_after_ms`` and close what they were part of."""
        evict_ns = int(self.settings.evict_after_ms * 1e6)
        for asset in list(self.legs):
            legs = self.legs[asset]
            # Funding counts as a sign of life: a leg whose funding arrived before its first
            # price (last_ns still 0) must not be evicted, and its funding lost, at once.
            for key in [k for k, leg in legs.items() if now_ns - leg.seen_ns() > evict_ns]:
                del legs[key]
                if key in self._price_flagged:
                    self._price_flagged.discard(key)
                    self.ambiguous.pop(key, None)
            if not legs:
                del self.legs[asset]
                for oid in sorted(self.lifecycle.ids(asset)):
                    self.lifecycle.close(oid, now_ns, "evicted")
                continue
            self.check_ambiguity(asset)
            self.evaluate_asset(asset, now_ns, status)
            self.evaluate_carry(asset, now_ns, status)
        self.lifecycle.evict_stats(now_ns)


def _keep_best(found: dict[str, Opportunity], opp: Opportunity) -> None:
    # A venue listing two contracts of one asset (USDT and USDC perps) gives two candidates
    # for one venue pair: the id names the pair, so the better one stands for it.
    cur = found.get(opp.id)
    if cur is None or opp.edge_bps > cur.edge_bps:
        found[opp.id] = opp
