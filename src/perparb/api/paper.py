"""``/api/paper/*``: positions per pair, orders, fills, PnL with its equity curve, risk.

Every route answers 409 with ``{"detail": "paper trading is not running ..."}`` when the
server runs without paper trading (``paper.enabled = false`` or live execution): the
route exists, the state it would show does not. Bad query parameters get FastAPI's 422
naming the parameter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, Literal

from fastapi import FastAPI, HTTPException, Query
from fastapi.params import Depends

from perparb.paper.blotter import Blotter, pairs

if TYPE_CHECKING:
    from perparb.paper.assembly import Trading

NOT_RUNNING = "paper trading is not running (paper.enabled is false or execution.mode is live)"


def utilisation(risk: dict[str, Any], positions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each limit in use with the value it is measured against: ``used`` is value / limit
    (1 = at the limit); for ``min_liquidation_distance`` it is limit / the nearest distance."""
    lim, u = risk["limits"], risk["utilisation"]
    rows: list[dict[str, Any]] = []

    def add(limit: str, scope: str, value: float | None, maximum: float) -> None:
        used = None if value is None or maximum <= 0 else abs(value) / maximum
        rows.append({"limit": limit, "scope": scope, "value": value, "max": maximum, "used": used})

    add("max_gross_notional", "portfolio", u["gross_notional"], lim["max_gross_notional"])
    add("max_net_notional", "portfolio", u["net_notional"], lim["max_net_notional"])
    for asset, n in u["asset_notional"].items():
        add("max_asset_notional", asset, n, lim["max_asset_notional"])
    for venue, n in u["venue_notional"].items():
        add("max_venue_notional", venue, n, lim["max_venue_notional"])
    for venue, lev in u["leverage"].items():
        add("max_leverage", venue, lev, lim["max_leverage"])
    add("max_daily_loss", "portfolio", max(0.0, u["daily_loss"]), lim["max_daily_loss"])
    add("max_drawdown", "portfolio", u["drawdown"], lim["max_drawdown"])
    if lim.get("max_var"):
        var = max((v for v in (u.get("var_historical"), u.get("var_parametric")) if v is not None), default=None)
        add("max_var", "portfolio", var, lim["max_var"])
    dists = [(p["liquidation_distance"], f"{p['venue']} {p['symbol']}") for p in positions
             if p["liquidation_distance"] is not None]
    if dists:
        d, scope = min(dists)
        m = lim["min_liquidation_distance"]
        rows.append({"limit": "min_liquidation_distance", "scope": scope, "value": d, "max": m,
                     "used": (m / d) if d > 0 else None})
    return rows


def add_routes(app: FastAPI, trading: Callable[[], Trading | None], blotter: Callable[[], Blotter | None],
               read: list[Depends]) -> None:
    def need() -> tuple[Trading, Blotter]:
        t, b = trading(), blotter()
        if t is None or b is None:
            raise HTTPException(409, NOT_RUNNING)
        return t, b

    @app.get("/api/paper/positions", dependencies=read)
    def paper_positions() -> dict[str, Any]:
        """Open positions per pair (legs grouped by asset), each leg with its mark, PnL split,
        margin, liquidation price and distance (fraction of the mark)."""
        t, b = need()
        rows = b.position_rows()
        return {"ts_ns": t.engine.now_ns, "pairs": pairs(rows), "legs": rows}

    @app.get("/api/paper/orders", dependencies=read)
    def paper_orders(status: Literal["all", "open", "done"] = "all",
                     limit: Annotated[int, Query(ge=1, le=1000)] = 200) -> list[dict[str, Any]]:
        """Recent orders, newest first, with their latest status (``sent``, ``accepted``,
        ``partially_filled``, ``filled``, ``rejected``, ``canceled``, ``expired``)."""
        _, b = need()
        return b.order_rows(status, limit)

    @app.get("/api/paper/fills", dependencies=read)
    def paper_fills(limit: Annotated[int, Query(ge=1, le=2000)] = 200,
                    venue: Annotated[str | None, Query(max_length=40)] = None,
                    asset: Annotated[str | None, Query(max_length=40)] = None,
                    since_ns: Annotated[int, Query(ge=0)] = 0) -> list[dict[str, Any]]:
        """Recent fills, newest first: ``qty`` in base units, ``px`` per base unit, ``fee`` in
        ``fee_asset`` (the settlement currency)."""
        _, b = need()
        return b.fill_rows(limit, venue, asset, since_ns)

    @app.get("/api/paper/pnl", dependencies=read)
    def paper_pnl(points: Annotated[int, Query(ge=2, le=5000)] = 1000) -> dict[str, Any]:
        """PnL split (spread = realized + unrealized, funding, fees paid), equity and the
        equity curve (one point per second of engine time, thinned to ``points``)."""
        _, b = need()
        return b.pnl_view(points)

    @app.get("/api/paper/risk", dependencies=read)
    def paper_risk() -> dict[str, Any]:
        """Kill switch state, the limits in use and their utilisation, refusals by reason
        (risk checks, and ``execution_*`` for orders a venue would refuse), leg-risk events."""
        t, b = need()
        snap = t.risk.snapshot()
        rejections = dict(snap["rejections"])
        rejections.update({f"execution_{k}": v for k, v in sorted(t.execution.rejections.items())})
        return {
            "kill_switch": t.risk.state(),
            "kill_events": [{"ts_ns": k.ts_ns, "engaged": k.engaged, "reason": k.reason, "flatten": k.flatten}
                            for k in reversed(b.kill_events)],
            "limits": snap["limits"],
            "utilisation": utilisation(snap, b.position_rows()),
            "var": {"historical": snap["utilisation"]["var_historical"],
                    "parametric": snap["utilisation"]["var_parametric"]},
            "rejections": dict(sorted(rejections.items())),
            "leg_risk": {"counts": snap["leg_risk"]["events"], "unhedged": snap["leg_risk"]["unhedged"],
                         "recent": [{"ts_ns": e.ts_ns, "intent_id": e.intent_id, "strategy": e.strategy,
                                     "venue": e.venue, "symbol": e.symbol, "unhedged_qty": e.unhedged_qty,
                                     "action": e.action, "detail": e.detail} for e in reversed(b.leg_risk)]},
            "approved": snap["approved"],
        }
