"""Leg risk: a pair whose legs did not fill alike is put right, never left silently.

Every approved intent with two legs is watched as a *pair*. Each leg's fill is counted in
its own direction (a buy leg's sells, from an unwind, count against it). When every order
of the latest round is finished, or ``leg_timeout_ms`` of engine time after it was sent
(outstanding orders are then canceled), the two legs are compared. A difference larger
than one lot is a leg-risk event: counted, published (``LegRiskEvent``), alerted, and
acted on with a follow-up intent:

- ``unwind``: the excess of the leg that filled more is sold back (reduce-only, market).
- ``hedge``: the leg that filled less is sent again for the difference (market); if that
  round fails too, the excess is unwound.
- a closing pair (close, flatten) always completes the missing leg: re-opening what was
  just closed would only add risk.

After ``MAX_ROUNDS`` follow-ups the remaining difference is reported with action
``none`` at ERROR level: an unhedged position that needs a person.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from perparb.bus.messages import (
    BUY,
    MARKET,
    SELL,
    CancelOrder,
    Fill,
    Leg,
    LegRiskEvent,
    OrderUpdate,
    TradeIntent,
)
from perparb.risk.exposure import TERMINAL

log = logging.getLogger("perparb.risk.legs")
MAX_ROUNDS = 3


@dataclass
class Pair:
    intent: TradeIntent  # the original two-leg intent
    filled: list[float] = field(default_factory=lambda: [0.0, 0.0])  # in each leg's own direction
    outstanding: dict[str, str] = field(default_factory=dict)  # order id -> venue, this round
    rounds: int = 0
    round_id: str = ""  # intent id of the current round
    resolved: bool = False
    unhedged: float = 0.0  # signed base units of the last difference found (0: hedged)


class LegGuard:
    def __init__(self, action: str, timeout_ns: int, tolerance: Callable[[Leg], float],
                 send_intent: Callable[[TradeIntent], None], send_cancel: Callable[[CancelOrder], None],
                 publish: Callable[[LegRiskEvent], None], call_at: Callable[[int, Callable[[int], None]], None],
                 alert: Callable[[LegRiskEvent], None]) -> None:
        self.action = action
        self.timeout_ns = timeout_ns
        self.tolerance = tolerance
        self.send_intent, self.send_cancel, self.publish = send_intent, send_cancel, publish
        self.call_at, self.alert = call_at, alert
        self.pairs: dict[str, Pair] = {}  # root intent id -> pair
        self.round_of: dict[str, str] = {}  # any intent id (root or follow-up) -> root id
        self.order_of: dict[str, str] = {}  # order id -> root id
        self.counts: Counter[str] = Counter()  # events by action taken

    def watch(self, intent: TradeIntent, order_ids: list[str], venues: list[str], now: int) -> None:
        """An approved intent: a new pair (two legs) or a follow-up round of one."""
        root = self.round_of.get(intent.id)
        if root is None:
            if len(intent.legs) != 2:
                return
            root = intent.id
            self.pairs[root] = Pair(intent)
            self.round_of[root] = root
        pair = self.pairs[root]
        pair.round_id = intent.id
        pair.outstanding = dict(zip(order_ids, venues, strict=True))
        for oid in order_ids:
            self.order_of[oid] = root
        rid = intent.id
        self.call_at(now + self.timeout_ns, lambda due: self._timeout(root, rid, due))

    def rejected(self, intent_id: str, now: int) -> None:
        """Risk refused a follow-up round: the pair is checked again (next round or give up)."""
        root = self.round_of.get(intent_id)
        if root is not None and root != intent_id:
            # Not at once: what refused it (a stale book, say) is unlikely to change in the same instant.
            self.call_at(now + self.timeout_ns, lambda due: self._retry(root, intent_id, due))

    def _retry(self, root: str, round_id: str, now: int) -> None:
        pair = self.pairs.get(root)
        if pair is not None and not pair.resolved and pair.round_id == round_id:
            self._check(root, now)

    def on_fill(self, f: Fill) -> None:
        root = self.order_of.get(f.order_id)
        if root is None:
            return
        pair = self.pairs[root]
        for i, leg in enumerate(pair.intent.legs):
            if leg.venue == f.venue and leg.venue_symbol == f.venue_symbol:
                pair.filled[i] += f.qty if f.side == leg.side else -f.qty
                return

    def on_update(self, u: OrderUpdate) -> None:
        root = self.order_of.get(u.order_id)
        if root is None or u.status not in TERMINAL:
            return
        pair = self.pairs[root]
        if pair.outstanding.pop(u.order_id, None) is not None and not pair.outstanding:
            self._check(root, u.ts_ns)

    def _timeout(self, root: str, round_id: str, now: int) -> None:
        pair = self.pairs.get(root)
        if pair is None or pair.resolved or pair.round_id != round_id or not pair.outstanding:
            return
        for oid, venue in sorted(pair.outstanding.items()):
            self.send_cancel(CancelOrder(order_id=oid, venue=venue, ts_ns=now))
        pair.outstanding.clear()
        self._check(root, now, timed_out=True)

    def _check(self, root: str, now: int, timed_out: bool = False) -> None:
        pair = self.pairs[root]
        a, b = pair.intent.legs
        diff = pair.filled[0] - pair.filled[1]
        if abs(diff) <= max(self.tolerance(a), self.tolerance(b)):
            pair.unhedged = 0.0
            self._forget(root)
            return
        over, under = (0, 1) if diff > 0 else (1, 0)
        legs = pair.intent.legs
        excess = abs(diff)
        closing = pair.intent.action in ("close", "flatten")
        if pair.rounds >= MAX_ROUNDS:
            action = "none"
        elif closing or (self.action == "hedge" and pair.rounds == 0):
            action = "hedge"
        else:
            action = "unwind"
        o = legs[over]
        pair.unhedged = excess if o.side == BUY else -excess
        why = "timed out" if timed_out else "finished"
        detail = (f"{o.venue} {o.symbol} filled {pair.filled[over]:.10g}, {legs[under].venue} "
                  f"{legs[under].symbol} filled {pair.filled[under]:.10g} ({why}, round {pair.rounds})")
        ev = LegRiskEvent(intent_id=root, ts_ns=now, strategy=pair.intent.strategy, venue=o.venue,
                          symbol=o.symbol, unhedged_qty=pair.unhedged, action=action, detail=detail)
        self.counts[action] += 1
        self.publish(ev)
        self.alert(ev)
        if action == "none":
            log.error("UNHEDGED %s %s: %+.10g left after %d rounds; %s", o.venue, o.symbol, pair.unhedged,
                      pair.rounds, detail)
            pair.resolved = True
            return
        pair.rounds += 1
        if action == "unwind":
            leg = Leg(venue=o.venue, symbol=o.symbol, venue_symbol=o.venue_symbol,
                      side=SELL if o.side == BUY else BUY, qty=excess, order_type=MARKET, reduce_only=True)
        else:
            u = legs[under]
            leg = Leg(venue=u.venue, symbol=u.symbol, venue_symbol=u.venue_symbol, side=u.side, qty=excess,
                      order_type=MARKET, reduce_only=u.reduce_only)
        fid = f"{root}.r{pair.rounds}"
        self.round_of[fid] = root
        pair.round_id = fid
        self.send_intent(TradeIntent(id=fid, ts_ns=now, strategy=pair.intent.strategy, action=action,
                                     asset=pair.intent.asset, legs=[leg], opportunity_id=pair.intent.opportunity_id,
                                     reason=f"leg risk: {detail}", parent_id=root))

    def _forget(self, root: str) -> None:
        pair = self.pairs.pop(root, None)
        if pair is None:
            return
        for k in [k for k, r in self.round_of.items() if r == root]:
            del self.round_of[k]
        for k in [k for k, r in self.order_of.items() if r == root]:
            del self.order_of[k]

    def unhedged(self) -> list[dict[str, object]]:
        out: list[dict[str, object]] = []
        for root, p in sorted(self.pairs.items()):
            if p.unhedged:
                legs = p.intent.legs
                out.append({"intent_id": root, "strategy": p.intent.strategy, "asset": p.intent.asset,
                            "legs": [{"venue": lg.venue, "symbol": lg.symbol, "side": lg.side,
                                      "filled": p.filled[i]} for i, lg in enumerate(legs)],
                            "unhedged_qty": p.unhedged, "rounds": p.rounds, "given_up": p.resolved})
        return out
