"""The trading pipeline assembled over one engine: scanner → strategies → risk → execution.

``build_trading`` makes the bus subscribers (risk first, so it sees an intent before the
strategies' bookkeeping does; then the strategies; then simulated execution) and hooks the
scanner's lifecycle to publish ``OpportunityEvent`` on ``opportunities``. The session (demo,
run, serve) and replay call ``on_tick`` on every sweep, which is the strategies' and the
risk engine's clock; order arrival and leg timeouts are engine timers (``call_at``).
"""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING, Any

from perparb.bus import EXECUTIONS, LEDGER, OPPORTUNITIES, ORDERS, Bus, InProcessBus
from perparb.bus.messages import Fill, KillSwitch, LegRiskEvent, Message, OpportunityEvent, Order, Transfer
from perparb.engine import Engine
from perparb.execution.sim import SimExecution, SimSettings
from perparb.model import Instrument, Opportunity
from perparb.paper.account import Accounting, MarginSettings
from perparb.paper.market import EngineView
from perparb.paper.strategies import StrategyRunner
from perparb.risk import RiskEngine
from perparb.store.ledger import JournaledBus, Ledger

if TYPE_CHECKING:
    from perparb.config import Settings
    from perparb.execution.live import LiveExecution
    from perparb.scanner.alerts import Alerter

log = logging.getLogger("perparb.paper")


class Trading:
    def __init__(self, settings: Settings, engine: Engine, bus: Bus | None = None,
                 alerter: Alerter | None = None, venues: list[str] | None = None,
                 ledger: Ledger | None = None, live: bool = False) -> None:
        self.settings = settings
        self.live = live
        self.engine = engine
        inner = bus or InProcessBus()
        self.ledger = ledger
        # With a ledger, every order, fill, funding payment and transfer is journaled before
        # any component sees it; a failed write halts trading (kill switch).
        self.journal = JournaledBus(inner, ledger) if ledger is not None else None
        self.bus: Bus = self.journal if self.journal is not None else inner
        self.view = EngineView(engine)
        self.alerter = alerter
        venues = sorted(engine.adapters) if venues is None else venues
        ex = settings.execution
        self.risk = RiskEngine(self.bus, self.view, settings.risk, ex, settings.paper, venues,
                               contracts=lambda: self.watched, alert=self._alert)
        self.strategies = StrategyRunner(self.bus, self.view, settings.strategies, self.resolve)
        self.execution: SimExecution | LiveExecution
        if live:  # the gate (perparb.execution.gate.live_gate) has been passed
            from perparb.execution.gate import build_live_execution

            self.execution = build_live_execution(settings, self.bus, self.view)
        else:
            self.execution = SimExecution(self.bus, self.view, venues, SimSettings(
                latency_ms=ex.latency_ms, venue_latency_ms=dict(ex.venue_latency_ms), taker_fee=dict(ex.taker_fee),
                maker_fee=dict(ex.maker_fee), post_only_tif_ms=ex.post_only_tif_ms))
        p = settings.paper
        self.accounting = Accounting(self.bus, self.view, MarginSettings(
            initial_margin=p.margin.initial, maintenance_margin=p.margin.maintenance,
            venue_initial_margin={v: m.initial for v, m in p.venue_margin.items()},
            venue_maintenance_margin={v: m.maintenance for v, m in p.venue_margin.items()}))
        self._deposited: set[str] = set()
        self.restored = 0  # journal events read at start
        self.counts: Counter[str] = Counter()  # orders, fills
        self.watched: set[tuple[str, str]] = set()
        self.fills: list[Fill] = []  # kept for --fills-out and summaries (bounded)
        self.fill_listeners: list[Any] = []
        self._symbols: dict[tuple[str, str], Instrument] = {}
        self.bus.subscribe(ORDERS, self._count)
        self.bus.subscribe(EXECUTIONS, self._count)
        engine.scanner.listeners.append(self.on_opportunity)

    # -- start ----------------------------------------------------------------------------
    def start(self) -> None:
        """Restore from the journal (positions, balances, open orders, a kill switch left
        engaged), then deposit the configured collateral in every account that has none."""
        if self.journal is not None:
            events = [m for _, m in self.journal.restore()]
            self.restored = len(events)
            self.accounting.restore(events)
            self.risk.restore(events)
            self.strategies.restore(events)
            self.execution.restore(self.journal.orders.open_orders())
            self._deposited |= {m.venue for m in events if isinstance(m, Transfer) and m.id.startswith("deposit:")}
            if events:
                log.warning("paper trading restored %d journal events: %d open legs, %d open orders",
                            len(events), len(self.risk.exposure.open_positions()),
                            len(self.journal.orders.open_orders()))
        for venue in sorted(self.execution.venues):
            self._deposit(venue)

    def _deposit(self, venue: str) -> None:
        if venue in self._deposited:
            return
        self._deposited.add(venue)
        # Live: the account holds what the venue reported at start, not the paper collateral.
        live_balances: dict[str, dict[str, float]] = getattr(self.execution, "start_balances", {})
        collateral = live_balances.get(venue, {}) if self.live else self.settings.paper.collateral
        note = "venue balance at start" if self.live else "opening collateral"
        for asset, amount in sorted(collateral.items()):
            if amount > 0:
                self.bus.publish(LEDGER, Transfer(id=f"deposit:{venue}:{asset}", ts_ns=self.engine.now_ns, venue=venue,
                                                  asset=asset, amount=amount, note=note))

    async def start_live(self) -> None:
        """Live execution's start (markets, keys, balances): before ``start``."""
        start = getattr(self.execution, "start", None)
        if self.live and start is not None:
            await start()

    async def close_live(self) -> None:
        close = getattr(self.execution, "close", None)
        if self.live and close is not None:
            await close()

    def close(self) -> None:
        if self.ledger is not None:
            self.ledger.close()

    # -- wiring ---------------------------------------------------------------------------
    def on_opportunity(self, event: str, opp: Opportunity) -> None:
        if event == "open":
            # Contracts the strategies may trade: their mids are sampled for VaR from now on (not
            # every book the engine keeps, which could be thousands).
            for venue, symbol in ((opp.buy_venue, opp.buy_symbol), (opp.sell_venue, opp.sell_symbol)):
                inst = self.resolve(venue, symbol)
                if inst is not None:
                    self.watched.add((venue, inst.venue_symbol))
        self.bus.publish(OPPORTUNITIES, OpportunityEvent(event=event, opp=opp))

    def on_tick(self, now: int) -> None:
        self.strategies.on_tick(now)
        self.risk.on_tick(now)

    def add_venue(self, venue: str) -> None:
        """A venue that appeared after start (replay meets them as records arrive)."""
        if self.live:
            return  # live trading is on the configured venues only, each with its keys
        if venue not in self.execution.venues:
            self.execution.venues = self.execution.venues | {venue}
            self.risk.venues = sorted({*self.risk.venues, venue})
            self._deposit(venue)

    def resolve(self, venue: str, symbol: str) -> Instrument | None:
        """The venue's contract for a canonical symbol (the one the scanner quotes)."""
        key = (venue, symbol)
        hit = self._symbols.get(key)
        if hit is not None:
            return hit
        adapter = self.engine.adapters.get(venue)
        table = adapter.table if adapter is not None else self.engine.registry.venue_table(venue)
        for vs in sorted(table):
            inst = table[vs]
            if inst.symbol == symbol and (venue, vs) in self.engine.books:
                self._symbols[key] = inst
                return inst
        return None

    def _count(self, msg: Message) -> None:
        if isinstance(msg, Order):
            self.counts["orders"] += 1
        elif isinstance(msg, Fill):
            self.counts["fills"] += 1
            for listener in self.fill_listeners:
                listener(msg)

    def _alert(self, title: str, text: str, msg: LegRiskEvent | KillSwitch) -> None:
        if self.alerter is None:
            return  # the risk engine has logged it at WARNING
        if isinstance(msg, LegRiskEvent):
            self.alerter.notify(msg.ts_ns, "leg_risk", msg.symbol.split("/")[0], title, text, (msg.venue, ""),
                                msg.intent_id)
        else:
            self.alerter.notify(msg.ts_ns, "kill_switch", "", title, text)

    # -- reading --------------------------------------------------------------------------
    def overview(self) -> dict[str, Any]:
        """``GET /api/paper``: the summary, open legs with marks, each strategy's positions,
        and the risk engine's limits and utilisation."""
        return _overview(self)

    def summary(self) -> dict[str, Any]:
        """The ``paper`` object of ``demo --json`` (money in the quote currency, USD-equivalent)."""
        acc = self.accounting
        totals = acc.totals()
        now = self.engine.now_ns
        rejections = {k: v for k, v in self.risk.rejection_counts().items() if v}
        rejections.update({f"execution_{k}": v for k, v in sorted(self.execution.rejections.items()) if v})
        return {
            "orders": self.counts["orders"],
            "fills": self.counts["fills"],
            "open_positions": [{"venue": u.venue, "symbol": u.symbol, "qty": u.qty, "avg_entry_px": u.avg_entry_px}
                               for u in (acc.snapshot(pos, now) for pos in acc.book.open_positions())],
            "realized_pnl": float(totals["realized"]),
            "unrealized_pnl": float(totals["unrealized"]),
            "funding_pnl": float(totals["funding"]),
            "fees": float(totals["fees"]),
            "equity": float(totals["equity"]),
            "rejections": dict(sorted(rejections.items())),
            "leg_risk": dict(sorted(self.risk.guard.counts.items())),
            "kill_switch": self.risk.state(),
            "strategies": {s.name: dict(sorted(s.counts.items())) for s in self.strategies.strategies},
        }


def _overview(t: Trading) -> dict[str, Any]:
    acc, now = t.accounting, t.engine.now_ns
    positions = []
    for pos in acc.book.open_positions():
        u = acc.snapshot(pos, now)
        positions.append({"asset": pos.symbol.split("/")[0], "venue": u.venue, "symbol": u.symbol,
                          "side": "long" if u.qty > 0 else "short", "size_base": abs(u.qty),
                          "avg_entry_px": u.avg_entry_px, "mark_px": u.mark_px, "unrealized_pnl": u.unrealized_pnl,
                          "liquidation_px": u.liquidation_px, "liquidation_distance": u.liquidation_distance})
    s = t.summary()
    return {"enabled": True,
            "pnl": {"realized": s["realized_pnl"], "unrealized": s["unrealized_pnl"], "funding": s["funding_pnl"],
                    "fees": -s["fees"], "equity": s["equity"]},
            "positions": positions, "orders": s["orders"], "fills": s["fills"], "rejections": s["rejections"],
            "strategies": t.strategies.snapshot(), "risk": t.risk.snapshot()}


def build_trading(settings: Settings, engine: Engine, bus: Bus | None = None, alerter: Alerter | None = None,
                  venues: list[str] | None = None, ledger: Ledger | None = None, live: bool = False) -> Trading:
    return Trading(settings, engine, bus, alerter, venues, ledger, live)
