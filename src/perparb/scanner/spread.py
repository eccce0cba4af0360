"""Cross-venue price spreads at the top of book, net of taker fees on both legs.

Buy on A at A's ask, sell on B at B's bid. An update to one contract re-evaluates only the
venue pairs of its asset. A candidate is suppressed, and counted by reason, when a leg's
venue is disconnected, its quote is older than the venue's maximum age, its quote is
crossed, or its contract is not an active, verified perpetual.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping

from perparb.model import Instrument, Opportunity, Quote, VenueStatus

Listener = Callable[[str, Opportunity], None]  # (event: open|update|close, opportunity)


class SpreadScanner:
    def __init__(self, min_edge_bps: float = 0.0, max_age_ms: float = 5000.0,
                 venue_max_age_ms: Mapping[str, float] | None = None,
                 taker_fees: Mapping[str, float] | None = None) -> None:
        self.min_edge_bps = min_edge_bps
        self.max_age_ns = int(max_age_ms * 1e6)
        self.venue_max_age_ns = {v: int(ms * 1e6) for v, ms in (venue_max_age_ms or {}).items()}
        self.taker_fees = dict(taker_fees or {})
        # asset -> (venue, venue_symbol) -> (instrument, latest quote)
        self.quotes: dict[str, dict[tuple[str, str], tuple[Instrument, Quote]]] = {}
        self.active: dict[str, dict[str, Opportunity]] = {}  # asset -> id -> opportunity
        self.rejections: Counter[str] = Counter()
        self.opened = 0
        self.listeners: list[Listener] = []

    def fee(self, inst: Instrument) -> float:
        return self.taker_fees.get(inst.venue, inst.taker_fee)

    def on_quote(self, inst: Instrument, q: Quote, now_ns: int, status: Mapping[str, VenueStatus]) -> None:
        self.quotes.setdefault(inst.asset, {})[(q.venue, q.venue_symbol)] = (inst, q)
        self.evaluate(inst.asset, now_ns, status)

    def _usable(self, inst: Instrument, q: Quote, now_ns: int, status: Mapping[str, VenueStatus]) -> str | None:
        st = status.get(q.venue)
        if st is not None and not st.connected:
            return "disconnected"
        if now_ns - q.recv_ns > self.venue_max_age_ns.get(q.venue, self.max_age_ns):
            return "stale"
        if q.bid_px >= q.ask_px or q.bid_px <= 0.0:
            return "crossed"
        if inst.status != "active":
            return "inactive" if inst.status == "inactive" else "unverified"
        return None

    def evaluate(self, asset: str, now_ns: int, status: Mapping[str, VenueStatus]) -> list[Opportunity]:
        legs = []
        for inst, q in self.quotes.get(asset, {}).values():
            reason = self._usable(inst, q, now_ns, status)
            if reason is None:
                legs.append((inst, q))
            else:
                self.rejections[reason] += 1
        found: dict[str, Opportunity] = {}
        current = self.active.get(asset, {})
        for buy_inst, buy in legs:
            for sell_inst, sell in legs:
                if buy.venue == sell.venue or buy_inst.quote != sell_inst.quote:
                    continue
                if sell.bid_px <= buy.ask_px:
                    continue
                gross = (sell.bid_px - buy.ask_px) / buy.ask_px * 1e4
                net = gross - (self.fee(buy_inst) + self.fee(sell_inst)) * 1e4
                if net < self.min_edge_bps:
                    self.rejections["below_threshold"] += 1
                    continue
                size = min(buy.ask_qty, sell.bid_qty)
                oid = f"spread:{asset}:{buy.venue}:{sell.venue}"
                prev = current.get(oid)
                found[oid] = Opportunity(
                    id=oid, kind="spread", asset=asset, buy_venue=buy.venue, sell_venue=sell.venue,
                    buy_symbol=buy_inst.symbol, sell_symbol=sell_inst.symbol, buy_px=buy.ask_px,
                    sell_px=sell.bid_px, size_base=size, notional_quote=size * buy.ask_px, gross_bps=gross,
                    edge_bps=net, first_seen_ns=prev.first_seen_ns if prev else now_ns, ts_ns=now_ns,
                    peak_edge_bps=max(net, prev.peak_edge_bps) if prev else net,
                )
        self._lifecycle(asset, found, now_ns)
        return list(found.values())

    def _lifecycle(self, asset: str, found: dict[str, Opportunity], now_ns: int) -> None:
        current = self.active.get(asset, {})
        for oid, closed in current.items():
            if oid not in found:
                closed.ts_ns = now_ns
                self._emit("close", closed)
        for oid, opp in found.items():
            if oid not in current:
                self.opened += 1
            self._emit("update" if oid in current else "open", opp)
        if found:
            self.active[asset] = found
        else:
            self.active.pop(asset, None)

    def sweep(self, now_ns: int, status: Mapping[str, VenueStatus]) -> None:
        """Re-check every asset, so opportunities close when a leg goes stale or disconnects."""
        for asset in list(self.quotes):
            self.evaluate(asset, now_ns, status)

    def _emit(self, event: str, opp: Opportunity) -> None:
        for listener in self.listeners:
            listener(event, opp)

    def best(self, n: int = 10) -> list[Opportunity]:
        return sorted((o for opps in self.active.values() for o in opps.values()), key=lambda o: -o.edge_bps)[:n]
