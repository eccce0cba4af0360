"""Strategies on the bus: the runner routes what each strategy reacts to.

Opportunity events reach every strategy; fills and order updates reach the strategy whose
position they belong to (follow-up intents of the risk engine's leg guard are tied to the
pair they fix through ``parent_id``); refusals reach the strategy that asked; a kill
switch pauses entries everywhere (and, when it flattens, closes every position's books).
The clock (``on_tick``) drives exits.
"""

from __future__ import annotations

from collections.abc import Iterable

from perparb.bus import EXECUTIONS, OPPORTUNITIES, RISK, TRADE_ORDERS, Bus
from perparb.bus.messages import (
    Fill,
    KillSwitch,
    Message,
    OpportunityEvent,
    Order,
    OrderUpdate,
    RiskReject,
    TradeIntent,
)
from perparb.execution import MarketView
from perparb.paper.strategies.base import Context, PairPosition, Resolve, Strategy
from perparb.paper.strategies.carry import FundingCarry
from perparb.paper.strategies.spread import SpreadConvergence
from perparb.risk.exposure import TERMINAL
from perparb.trading_settings import StrategySettings

KINDS: dict[str, type[Strategy]] = {"spread": SpreadConvergence, "funding": FundingCarry}

__all__ = ["KINDS", "FundingCarry", "SpreadConvergence", "Strategy", "StrategyRunner"]


class StrategyRunner:
    def __init__(self, bus: Bus, view: MarketView, configs: Iterable[StrategySettings], resolve: Resolve) -> None:
        self.bus = bus
        self.view = view
        ctx = Context(view, resolve, self._emit)
        self.strategies = [KINDS[c.kind](c, ctx) for c in configs if c.enabled]
        self._owner: dict[str, tuple[Strategy, PairPosition]] = {}  # intent id -> its position
        bus.subscribe(OPPORTUNITIES, self._on_opportunity)
        bus.subscribe(TRADE_ORDERS, self._on_intent)
        bus.subscribe(EXECUTIONS, self._on_execution)
        bus.subscribe(RISK, self._on_risk)

    def _emit(self, intent: TradeIntent) -> None:
        self.bus.publish(TRADE_ORDERS, intent)

    def _on_opportunity(self, msg: Message) -> None:
        if isinstance(msg, OpportunityEvent):
            now = self.view.now_ns
            for s in self.strategies:
                s.on_opportunity(msg, now)

    def _on_intent(self, msg: Message) -> None:
        if not isinstance(msg, TradeIntent):
            return
        for s in self.strategies:
            if msg.strategy == s.name:
                pos = s.positions.get(msg.id)
                if pos is None and msg.parent_id:
                    owner = self._owner.get(msg.parent_id)
                    pos = owner[1] if owner else None
                if pos is None:
                    owner = next(((s, p) for p in s.positions.values() if msg.id in p.intents), None)
                    pos = owner[1] if owner else None
                if pos is not None:
                    self._owner[msg.id] = (s, pos)
                return

    def _on_execution(self, msg: Message) -> None:
        if isinstance(msg, Fill):
            owner = self._owner.get(msg.intent_id)
            if owner is not None:
                owner[0].on_fill(owner[1], msg)
                owner[0].settle(owner[1], msg.ts_ns)
                self._drop_if_closed(owner[1])
        elif isinstance(msg, OrderUpdate) and msg.status in TERMINAL:
            owner = self._owner.get(msg.intent_id)
            if owner is not None:
                owner[0].on_order_done(owner[1], msg.intent_id, msg.ts_ns)
                self._drop_if_closed(owner[1])

    def _on_risk(self, msg: Message) -> None:
        if isinstance(msg, RiskReject):
            owner = self._owner.get(msg.intent_id)
            if owner is not None:
                owner[0].on_reject(owner[1], msg.intent_id, msg.ts_ns)
                self._drop_if_closed(owner[1])
        elif isinstance(msg, KillSwitch):
            for s in self.strategies:
                s.paused = msg.engaged
                if msg.engaged and msg.flatten:
                    s.on_flattened(msg.ts_ns)

    def _drop_if_closed(self, pos: PairPosition) -> None:
        if pos.state == "closed":
            for iid in [i for i, (_, p) in self._owner.items() if p is pos]:
                del self._owner[iid]

    def restore(self, events: Iterable[Message]) -> None:
        """Carry on numbering intents after the journal's: an id used before a restart is
        never used again (the journal would take a repeated order for one it has)."""
        seqs = {s.name: s for s in self.strategies}
        for msg in events:
            if isinstance(msg, Order):
                name, _, n = msg.intent_id.split(".")[0].rpartition("-")
                s = seqs.get(name)
                if s is not None and n.isdigit():
                    s.restore_seq(int(n))

    def on_tick(self, now: int) -> None:
        for s in self.strategies:
            s.on_tick(now)

    def snapshot(self) -> list[dict[str, object]]:
        return [s.snapshot() for s in self.strategies]
