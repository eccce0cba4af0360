"""Funding carry: long the leg that pays less funding, short the one that pays more, and
collect the difference at each contract's own settlements.

Entry: a funding opportunity whose expected net carry to its horizon (after fees both ways
and crossing both books, as the scanner computes it) is at least ``entry_edge_bps`` of the
notional and whose APR is at least ``min_apr``. The position is held across settlements
(the accounting books each payment). Exit, checked on the clock: the carry still expected
over the same horizon from now, from the current rates and each leg's settlement times,
falls below ``exit_edge_bps`` of the notional; the basis (short mid over long mid) moved
``stop_bps`` against the position since entry (the short leg gained on the long one);
or ``max_hold_s`` passed.
"""

from __future__ import annotations

from perparb.bus.messages import OpportunityEvent
from perparb.paper.strategies.base import PairPosition, Strategy
from perparb.scanner.funding import HOUR_NS, rate_sum, settlements


class FundingCarry(Strategy):
    kind = "funding"

    def on_opportunity(self, ev: OpportunityEvent, now: int) -> None:
        o = ev.opp
        if o.kind != "funding" or ev.event == "close":
            return  # exits follow the rates themselves, not the scanner's thresholds
        c = self.cfg
        if not self.wants(o.asset, (o.buy_venue, o.sell_venue)):
            return
        if (o.edge_bps < c.entry or o.apr < c.min_apr or o.size_base < c.min_size_base
                or o.notional_quote < c.min_notional):
            return
        why = self.can_enter(self.venue_pair(o.asset, o.buy_venue, o.sell_venue), now)
        if why is not None:
            self.counts[f"skip_{why}"] += 1
            return
        long_i, short_i = self.ctx.resolve(o.buy_venue, o.buy_symbol), self.ctx.resolve(o.sell_venue, o.sell_symbol)
        if long_i is None or short_i is None:
            self.counts["skip_unknown_contract"] += 1
            return
        lo, hi = self.mid(long_i), self.mid(short_i)
        if lo is None or hi is None:
            self.counts["skip_no_book"] += 1
            return
        qty = min(o.size_base, c.notional / o.buy_px) if o.buy_px > 0 else 0.0
        self.open_pair(now, o.id, o.asset, long_i, short_i, qty, o.buy_px, o.sell_px, (hi - lo) / lo * 1e4,
                       f"carry {o.net_carry_quote:.2f} over {o.horizon_h:g} h ({o.edge_bps:.2f} bps), "
                       f"APR {o.apr * 100:.1f} %", horizon_h=o.horizon_h)

    def carry_bps(self, pos: PairPosition, now: int) -> float | None:
        """Funding still expected over the horizon from now, in bps of the long leg's notional."""
        fl = self.ctx.view.funding(pos.long.inst.venue, pos.long.inst.venue_symbol)
        fs = self.ctx.view.funding(pos.short.inst.venue, pos.short.inst.venue_symbol)
        lo, hi = self.mid(pos.long.inst), self.mid(pos.short.inst)
        if fl is None or fs is None or lo is None or hi is None or lo <= 0.0:
            return None
        horizon = int(pos.horizon_h * HOUR_NS)
        received = hi * rate_sum(fs, settlements(fs, now, horizon)) - lo * rate_sum(fl, settlements(fl, now, horizon))
        return received / lo * 1e4

    def exit_reason(self, pos: PairPosition, now: int) -> str | None:
        if now - pos.opened_ns >= self.cfg.max_hold_ns:
            return "time_limit"
        lo, hi = self.mid(pos.long.inst), self.mid(pos.short.inst)
        if lo is None or hi is None or lo <= 0.0:
            return None
        if (hi - lo) / lo * 1e4 - pos.entry_ref_bps >= self.cfg.stop:
            return "basis_stop"
        carry = self.carry_bps(pos, now)
        if carry is not None and carry < self.cfg.exit_at:
            return "carry_gone"
        return None
