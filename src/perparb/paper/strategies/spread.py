"""Spread convergence: buy where it is cheap, sell where it is dear, wait for the gap to close.

Entry: a spread opportunity (open or update) whose net edge (after fees both ways and the
estimated exit) is at least ``entry_edge_bps`` and whose executable size and notional meet
the minimums. Size: the opportunity's size, capped at ``notional`` of quote currency,
rounded so both legs are the same base quantity and valid on both venues.
Exit, checked on the clock and when the opportunity closes: the mid gap (sell venue's mid
over buy venue's mid) is back to ``exit_edge_bps`` or less (converged), it widened
``stop_bps`` beyond the gap at entry (stop), or ``max_hold_s`` passed (time limit).
"""

from __future__ import annotations

from perparb.bus.messages import OpportunityEvent
from perparb.paper.strategies.base import PairPosition, Strategy


class SpreadConvergence(Strategy):
    kind = "spread"

    def gap_bps(self, pos: PairPosition) -> float | None:
        lo, hi = self.mid(pos.long.inst), self.mid(pos.short.inst)
        if lo is None or hi is None or lo <= 0.0:
            return None
        return (hi - lo) / lo * 1e4

    def on_opportunity(self, ev: OpportunityEvent, now: int) -> None:
        o = ev.opp
        if o.kind != "spread":
            return
        if ev.event == "close":
            for pos in list(self.positions.values()):
                if pos.pair == o.id and pos.state == "open":
                    reason = self.exit_reason(pos, now)
                    if reason is not None:
                        self.close_pair(pos, now, reason)
            return
        c = self.cfg
        if not self.wants(o.asset, (o.buy_venue, o.sell_venue)):
            return
        if o.edge_bps < c.entry or o.size_base < c.min_size_base or o.notional_quote < c.min_notional:
            return
        why = self.can_enter(self.venue_pair(o.asset, o.buy_venue, o.sell_venue), now)
        if why is not None:
            self.counts[f"skip_{why}"] += 1
            return
        a, b = self.ctx.resolve(o.buy_venue, o.buy_symbol), self.ctx.resolve(o.sell_venue, o.sell_symbol)
        if a is None or b is None:
            self.counts["skip_unknown_contract"] += 1
            return
        lo, hi = self.mid(a), self.mid(b)
        if lo is None or hi is None:
            self.counts["skip_no_book"] += 1
            return
        qty = min(o.size_base, c.notional / o.buy_px) if o.buy_px > 0 else 0.0
        self.open_pair(now, o.id, o.asset, a, b, qty, o.buy_px, o.sell_px, (hi - lo) / lo * 1e4,
                       f"edge {o.edge_bps:.2f} bps net on {o.size_base:.6g} {o.asset}")

    def exit_reason(self, pos: PairPosition, now: int) -> str | None:
        if now - pos.opened_ns >= self.cfg.max_hold_ns:
            return "time_limit"
        gap = self.gap_bps(pos)
        if gap is None:
            return None
        if gap <= self.cfg.exit_at:
            return "converged"
        if gap - pos.entry_ref_bps >= self.cfg.stop:
            return "stop"
        return None
