"""What readers see of paper trading: the bus's orders, fills, positions, PnL and risk
events, kept in bounded memory for the API, the WebSocket stream and the dashboard.

The blotter only listens (``orders``, ``executions``, ``portfolio``, ``risk``); it never
publishes, so adding it changes nothing the pipeline does. Positions and PnL are the
accounting's ``PositionUpdate`` / ``PnlUpdate`` messages as last published; the equity
curve is one point per ``curve_step_ms`` of engine time (the latest PnL of that step).

Pairs: open positions are grouped by asset. A pair is an asset's legs on different
venues; ``net_qty`` (signed base units summed over the legs) is what is left unhedged.
"""

from __future__ import annotations

from collections import Counter, OrderedDict, deque
from typing import Any

import msgspec

from perparb.bus import EXECUTIONS, ORDERS, PORTFOLIO, RISK, Bus
from perparb.bus.messages import (
    Fill,
    KillSwitch,
    LegRiskEvent,
    Message,
    Order,
    OrderUpdate,
    PnlUpdate,
    PositionUpdate,
    RiskReject,
)

OPEN_STATUSES = frozenset({"sent", "accepted", "partially_filled"})


def asset_of(symbol: str) -> str:
    return symbol.split("/", 1)[0]


def position_row(p: PositionUpdate) -> dict[str, Any]:
    row = msgspec.structs.asdict(p)
    row.pop("v", None)
    row["asset"] = asset_of(p.symbol)
    row["side"] = "long" if p.qty > 0 else "short" if p.qty < 0 else "flat"
    return row


def fill_row(f: Fill) -> dict[str, Any]:
    row = msgspec.structs.asdict(f)
    row.pop("v", None)
    row["asset"] = asset_of(f.symbol)
    return row


def pnl_row(p: PnlUpdate) -> dict[str, Any]:
    row = msgspec.structs.asdict(p)
    row.pop("v", None)
    row["net_pnl"] = p.spread_pnl + p.funding_pnl - p.fees
    return row


def pairs(positions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Open legs grouped by asset, longs first; the pair's totals in the quote currency."""
    by_asset: dict[str, list[dict[str, Any]]] = {}
    for row in positions:
        if row["qty"]:
            by_asset.setdefault(row["asset"], []).append(row)
    out = []
    for asset in sorted(by_asset):
        legs = sorted(by_asset[asset], key=lambda r: (-r["qty"], r["venue"]))
        dists = [r["liquidation_distance"] for r in legs if r["liquidation_distance"] is not None]
        out.append({
            "asset": asset,
            "pair": " / ".join(f"{r['side']} {r['venue']}" for r in legs),
            "venues": [r["venue"] for r in legs],
            "net_qty": sum(r["qty"] for r in legs),
            "hedged": len(legs) > 1 and any(r["qty"] > 0 for r in legs) and any(r["qty"] < 0 for r in legs),
            "notional": sum(abs(r["notional"]) for r in legs),
            "unrealized_pnl": sum(r["unrealized_pnl"] for r in legs),
            "min_liquidation_distance": min(dists) if dists else None,
            "legs": legs,
        })
    return out


class Blotter:
    def __init__(self, bus: Bus, max_orders: int = 1000, max_fills: int = 2000, max_events: int = 200,
                 curve_step_ms: float = 1000.0, max_curve: int = 5000) -> None:
        self.orders: OrderedDict[str, dict[str, Any]] = OrderedDict()
        self.max_orders = max_orders
        self.fills: deque[Fill] = deque(maxlen=max_fills)
        self.positions: dict[tuple[str, str], PositionUpdate] = {}
        self.pnl: PnlUpdate | None = None
        self.curve: deque[dict[str, Any]] = deque(maxlen=max_curve)
        self.curve_step_ns = max(1, int(curve_step_ms * 1e6))
        self.rejections: Counter[str] = Counter()  # risk refusals by reason
        self.order_rejections: Counter[str] = Counter()  # execution's rejected orders by reason key
        self.leg_risk: deque[LegRiskEvent] = deque(maxlen=max_events)
        self.kill_events: deque[KillSwitch] = deque(maxlen=max_events)
        self.counts: Counter[str] = Counter()
        bus.subscribe(ORDERS, self.on_message)
        bus.subscribe(EXECUTIONS, self.on_message)
        bus.subscribe(PORTFOLIO, self.on_message)
        bus.subscribe(RISK, self.on_message)

    def on_message(self, msg: Message) -> None:
        if isinstance(msg, Fill):
            self.fills.append(msg)
            self.counts["fills"] += 1
        elif isinstance(msg, OrderUpdate):
            self._update(msg)
        elif isinstance(msg, Order):
            self._order(msg)
        elif isinstance(msg, PositionUpdate):
            key = (msg.venue, msg.symbol)
            if msg.qty:
                self.positions[key] = msg
            else:
                self.positions.pop(key, None)
        elif isinstance(msg, PnlUpdate):
            self._pnl(msg)
        elif isinstance(msg, RiskReject):
            self.rejections[msg.reason] += 1
        elif isinstance(msg, LegRiskEvent):
            self.leg_risk.append(msg)
        elif isinstance(msg, KillSwitch):
            self.kill_events.append(msg)

    def _order(self, o: Order) -> None:
        self.counts["orders"] += 1
        self.orders[o.id] = {"id": o.id, "intent_id": o.intent_id, "strategy": o.strategy, "ts_ns": o.ts_ns,
                             "venue": o.venue, "symbol": o.symbol, "venue_symbol": o.venue_symbol, "side": o.side,
                             "qty": o.qty, "order_type": o.order_type, "limit_px": o.limit_px,
                             "reduce_only": o.reduce_only, "status": "sent", "filled_qty": 0.0, "avg_px": 0.0,
                             "reason": "", "updated_ns": o.ts_ns}
        while len(self.orders) > self.max_orders:
            self.orders.popitem(last=False)

    def _update(self, u: OrderUpdate) -> None:
        row = self.orders.get(u.order_id)
        if row is None:  # an order from before this blotter started (a restore): known by its updates
            row = self.orders[u.order_id] = {"id": u.order_id, "intent_id": u.intent_id, "strategy": "",
                                             "ts_ns": u.ts_ns, "venue": u.venue, "symbol": u.symbol,
                                             "venue_symbol": "", "side": "", "qty": None, "order_type": "",
                                             "limit_px": None, "reduce_only": False}
        row.update(status=u.status, filled_qty=u.filled_qty, avg_px=u.avg_px, reason=u.reason, updated_ns=u.ts_ns)
        if u.status == "rejected":
            self.order_rejections[u.reason.split(":", 1)[0].strip() or "unknown"] += 1

    def _pnl(self, p: PnlUpdate) -> None:
        self.pnl = p
        point = {"ts_ns": p.ts_ns, "equity": p.equity, "spread_pnl": p.spread_pnl, "funding_pnl": p.funding_pnl,
                 "fees": p.fees, "net_pnl": p.spread_pnl + p.funding_pnl - p.fees}
        if self.curve and p.ts_ns // self.curve_step_ns == self.curve[-1]["ts_ns"] // self.curve_step_ns:
            self.curve[-1] = point  # the latest value of this step
        else:
            self.curve.append(point)

    # -- reading --------------------------------------------------------------------------
    def position_rows(self) -> list[dict[str, Any]]:
        return [position_row(p) for _, p in sorted(self.positions.items())]

    def order_rows(self, status: str = "all", limit: int = 200) -> list[dict[str, Any]]:
        rows = [dict(r) for r in reversed(self.orders.values())
                if status == "all" or (status == "open") == (r["status"] in OPEN_STATUSES)]
        return rows[:limit]

    def fill_rows(self, limit: int = 200, venue: str | None = None, asset: str | None = None,
                  since_ns: int = 0) -> list[dict[str, Any]]:
        out = []
        for f in reversed(self.fills):
            if f.ts_ns < since_ns:
                break
            if venue and f.venue != venue:
                continue
            if asset and asset_of(f.symbol) != asset.upper():
                continue
            out.append(fill_row(f))
            if len(out) >= limit:
                break
        return out

    def pnl_view(self, points: int = 1000) -> dict[str, Any]:
        if self.pnl is None:
            now = {"ts_ns": None, "equity": None, "spread_pnl": 0.0, "funding_pnl": 0.0, "fees": 0.0,
                   "realized_pnl": 0.0, "unrealized_pnl": 0.0, "collateral": None, "net_pnl": 0.0}
        else:
            now = pnl_row(self.pnl)
        curve = list(self.curve)
        if len(curve) > points:  # evenly thinned, always keeping the latest point
            step = len(curve) / points
            curve = [curve[int(i * step)] for i in range(points - 1)] + [curve[-1]]
        return {**now, "curve": curve}
