"""The HTTP API: REST (OpenAPI at /docs), the /ws stream, /metrics and the dashboard.

Read-only endpoints are open unless ``api.public_read`` is false; mutating ones always
need ``Authorization: Bearer <api.token>`` (and are refused when no token is set).
Bad parameters get a JSON 4xx naming the problem. Secrets never appear in responses.
"""

from __future__ import annotations

import hmac
import ipaddress
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal
from urllib.parse import urlsplit

from fastapi import Depends, FastAPI, HTTPException, Query, Request, WebSocket
from fastapi import Path as PathParam
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field

from perparb.api import detail as detail_api
from perparb.api import paper as paper_api
from perparb.api import state
from perparb.api.hub import Hub
from perparb.api.metrics import Metrics
from perparb.config import ApiSettings, ConfigError
from perparb.engine import Engine
from perparb.paper.blotter import Blotter
from perparb.scanner.alerts import Alerter
from perparb.scanner.legs import REASONS

if TYPE_CHECKING:
    from perparb.paper.assembly import Trading

STATIC = Path(__file__).with_name("static")

Asset = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9._-]{1,40}$", description="Canonical asset, e.g. BTC")]
VenueId = Annotated[str, PathParam(pattern=r"^[A-Za-z0-9:._-]{1,40}$", description="Venue id, e.g. binance")]


class ApiContext:
    """What the API reads and controls; built by the session that runs the engine."""

    def __init__(self, engine: Engine, settings: ApiSettings, rates: state.Rates | None = None,
                 alerter: Alerter | None = None, reload: Callable[[], Awaitable[dict[str, Any]]] | None = None,
                 extra: dict[str, Callable[[], Any]] | None = None, trading: Trading | None = None) -> None:
        self.engine = engine
        self.settings = settings
        self.rates = rates or state.Rates()
        self.alerter = alerter
        self.reload = reload
        self.series = state.SpreadSeries()
        self.hub = Hub(engine, self.rates, alerter, self.series)
        self.trading = trading
        # Built here, before the session starts feeding the engine, so it sees every fill.
        self.blotter = Blotter(trading.bus) if trading is not None else None
        if trading is not None:
            self.hub.attach_trading(trading.bus)
        self.metrics = Metrics(engine, self.hub, alerter, trading)
        self.extra = extra or {}


class KillRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    flatten: bool | None = Field(default=None, description="Also close every position (default: risk.flatten_on_kill)")
    reason: str = Field(default="manual", pattern=r"^[A-Za-z0-9_. :-]{1,60}$")


def create_app(ctx: ApiContext, static_dir: Path | None = None) -> FastAPI:
    app = FastAPI(title="perparb", version="0.1.0",
                  description="Cross-exchange perpetual arbitrage: venues, prices, opportunities, funding.")
    s = ctx.settings
    if s.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=s.cors_origins, allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type"])
    token = s.token.get_secret_value() if s.token else None

    def bearer(request: Request) -> bool:
        header = request.headers.get("authorization", "")
        given = header[7:] if header.lower().startswith("bearer ") else ""
        return bool(token) and hmac.compare_digest(given.encode(), (token or "").encode())

    def read_access(request: Request) -> None:
        if not s.public_read and not bearer(request):
            raise HTTPException(401, "a bearer token is required (api.public_read is false)")

    def write_access(request: Request) -> None:
        if not token:
            raise HTTPException(403, "mutating endpoints are disabled: set api.token to enable them")
        if not bearer(request):
            raise HTTPException(401, "a valid bearer token is required")

    read = [Depends(read_access)]
    e = ctx.engine

    @app.get("/health", dependencies=read)
    def health() -> JSONResponse:
        """``ok``; ``degraded`` (200) when a venue is down or its data is older than its
        staleness limit, with the reason per venue; ``unavailable`` (503) when no venue is
        connected."""
        status, per = state.health(e)
        connected = sum(st.connected for st in e.status.values())
        body = {"status": status, "venues_connected": connected,
                "reasons": {v: h["reason"] for v, h in per.items() if h["reason"]},
                "components": {"venues": {v: h["state"] for v, h in per.items()},
                               "scanner": {"assets": len(e.scanner.legs),
                                           "open": len(e.scanner.lifecycle.active)},
                               "websocket_clients": len(ctx.hub.clients),
                               **{k: f() for k, f in ctx.extra.items()}}}
        return JSONResponse(body, status_code=503 if status == "unavailable" else 200)

    @app.get("/api/venues", dependencies=read)
    def venues() -> list[dict[str, Any]]:
        """Connection state, message rate, last message age, reconnects, book sync counters."""
        return state.venues(e, ctx.rates)

    @app.get("/api/books", dependencies=read)
    def books(asset: Annotated[str | None, Query(max_length=40)] = None,
              venue: Annotated[str | None, Query(max_length=40)] = None) -> list[dict[str, Any]]:
        """Each L2 book's state (synced, resyncing, invalid) and counters."""
        return state.books(e, venue, asset)

    @app.get("/api/instruments", dependencies=read)
    def instruments(asset: Annotated[str | None, Query(max_length=40)] = None,
                    venue: Annotated[str | None, Query(max_length=40)] = None) -> list[dict[str, Any]]:
        """The cross-venue instrument map."""
        return state.instruments(e, asset, venue)

    @app.get("/api/prices", dependencies=read)
    def prices() -> dict[str, list[dict[str, Any]]]:
        """Best bid/ask per asset and venue, in canonical units."""
        return state.prices(e)

    @app.get("/api/prices/{asset}", dependencies=read)
    def prices_asset(asset: Asset) -> list[dict[str, Any]]:
        rows = state.prices(e, asset).get(asset.upper())
        if rows is None:
            raise HTTPException(404, f"no prices for asset {asset.upper()!r}")
        return rows

    @app.get("/api/best-prices/{asset}", dependencies=read)
    def best_prices(asset: Asset) -> dict[str, Any]:
        best = state.best_prices(e, asset)
        if best is None:
            raise HTTPException(404, f"no prices for asset {asset.upper()!r}")
        return best

    @app.get("/api/summary", dependencies=read)
    def summary() -> dict[str, Any]:
        return state.summary(e)

    @app.get("/api/opportunities", dependencies=read)
    def opportunities(
        kind: Literal["spread", "funding"] | None = None,
        min_edge: Annotated[float | None, Query(description="Minimum net edge, bps", ge=-1e6, le=1e6)] = None,
        min_size: Annotated[float | None, Query(description="Minimum size, base units", ge=0, le=1e18)] = None,
        min_apr: Annotated[float | None, Query(description="Minimum APR (0.1 = 10 %)", ge=-1e6, le=1e6)] = None,
        asset: Annotated[str | None, Query(max_length=40)] = None,
        venue: Annotated[str | None, Query(max_length=40)] = None,
        sort: Literal[state.SORT_KEYS] = "edge_bps",  # type: ignore[valid-type]
        order: Literal["asc", "desc"] = "desc",
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    ) -> list[dict[str, Any]]:
        """Open opportunities, filtered and sorted."""
        return state.opportunities(e, kind, min_edge, min_size, min_apr, asset, venue, sort, order == "desc", limit)

    @app.get("/api/opportunities/{asset}", dependencies=read)
    def opportunities_asset(asset: Asset, kind: Literal["spread", "funding"] | None = None) -> list[dict[str, Any]]:
        return state.opportunities(e, kind=kind, asset=asset)

    @app.get("/api/opportunities/{opportunity_id}/detail", dependencies=read,
             response_model=detail_api.OpportunityDetail)
    def opportunity_detail(
        opportunity_id: Annotated[str, PathParam(pattern=r"^(spread|funding):[A-Za-z0-9._-]{1,40}:[A-Za-z0-9:._-]{3,90}$",
                                                 description="kind:asset:buy_venue:sell_venue, e.g. spread:BTC:okx:binance")],
        size: Annotated[float | None, Query(description="Largest size of the curve, base units (default: the "
                                            "opportunity's size, or what both books hold)", gt=0, le=1e18)] = None,
    ) -> detail_api.OpportunityDetail:
        """The drill-down of one pair, open or not: the last hour of its per-minute net edge
        and basis, both books' depth to the size, the slippage curve (net edge against size,
        from the scanner's own depth walk) and, for funding pairs, each leg's funding history."""
        try:
            return detail_api.detail(e, opportunity_id, size)
        except detail_api.DetailError as exc:
            raise HTTPException(exc.status, str(exc)) from None

    @app.get("/api/spread/{asset}/{venue_a}/{venue_b}", dependencies=read)
    def spread(asset: Asset, venue_a: VenueId, venue_b: VenueId) -> dict[str, Any]:
        """The executable spread both ways now (at any edge), its per-minute history, and a
        per-second series of the top-of-book gross spread (kept 15 min after the last request).
        Also the future_rtd tracker's ``/api/spread/{symbol}/{ex1}/{ex2}``: the same path."""
        if venue_a == venue_b:
            raise HTTPException(400, "venue_a and venue_b must differ")
        out = state.spread(e, asset, venue_a, venue_b, ctx.series)
        if out is None:
            raise HTTPException(404, f"{asset.upper()} is not quoted on both {venue_a} and {venue_b}")
        return out

    @app.get("/api/stats", dependencies=read)
    def stats(asset: Annotated[str | None, Query(max_length=40)] = None,
              kind: Literal["spread", "funding"] | None = None) -> list[dict[str, Any]]:
        """Per asset, venue pair and direction, over the last hour and day: the share of the
        time observed that it was open (``observed_s``, ``open_s``, ``open_fraction``) and the
        median net edge while open (``median_open_edge_bps`` over ``samples``)."""
        return state.stats(e, asset, kind)

    @app.get("/api/funding", dependencies=read)
    def funding() -> dict[str, dict[str, dict[str, Any]]]:
        """Asset x venue: rate, predicted rate, interval, APR, next settlement."""
        return state.funding(e)

    @app.get("/api/rejections", dependencies=read)
    def rejections() -> dict[str, int]:
        """Suppressed candidates by reason (every spread reason listed, 0 when none; funding
        candidates are prefixed ``funding_``)."""
        counts = dict.fromkeys(REASONS, 0)
        counts.update(e.scanner.rejections)
        return dict(sorted(counts.items()))

    @app.get("/api/alerts", dependencies=read)
    def alerts() -> dict[str, Any]:
        a = ctx.alerter
        if a is None:
            return {"enabled": False, "recent": [], "cooldowns": [], "counts": {}}
        return {"enabled": True, "recent": [_alert(x) for x in reversed(a.recent)], "cooldowns": a.cooldowns(e.now_ns),
                "counts": dict(a.counts), "cooldown_s": a.cooldown_ns / 1e9}

    @app.post("/api/config/reload", dependencies=[Depends(write_access)])
    async def reload() -> dict[str, Any]:
        """Reload instrument overrides and alert rules from the configuration, without restart."""
        if ctx.reload is None:
            raise HTTPException(409, "this server was started without a configuration to reload")
        try:
            return await ctx.reload()
        except ConfigError as exc:  # the running settings stay as they were
            raise HTTPException(400, f"configuration not reloaded: {exc}") from None

    # Aliases for clients of the future_rtd tracker (the seeds): the same data as perparb's own
    # paths, in perparb's units, listed in the OpenAPI schema under "seed-compatible".
    @app.get("/api/arbitrage", dependencies=read, tags=["seed-compatible"], summary="Alias of GET /api/opportunities")
    def arbitrage(
        kind: Literal["spread", "funding"] | None = None,
        min_edge: Annotated[float | None, Query(description="Minimum net edge, bps", ge=-1e6, le=1e6)] = None,
        asset: Annotated[str | None, Query(max_length=40)] = None,
        venue: Annotated[str | None, Query(max_length=40)] = None,
        limit: Annotated[int, Query(ge=1, le=5000)] = 500,
    ) -> list[dict[str, Any]]:
        """Open opportunities, widest net edge first: ``/api/opportunities`` by another name."""
        return state.opportunities(e, kind, min_edge, None, None, asset, venue, "edge_bps", True, limit)

    @app.get("/api/arbitrage/{symbol}", dependencies=read, tags=["seed-compatible"],
             summary="Alias of GET /api/opportunities/{asset}")
    def arbitrage_symbol(symbol: Asset, kind: Literal["spread", "funding"] | None = None) -> list[dict[str, Any]]:
        """Open opportunities of one canonical asset (``BTC``)."""
        return state.opportunities(e, kind=kind, asset=symbol)

    @app.get("/api/arbitrage/{symbol}/alert-status", dependencies=read, tags=["seed-compatible"],
             summary="GET /api/alerts for one asset")
    def alert_status(symbol: Asset) -> dict[str, Any]:
        """The alert cooldowns and recent alerts of one asset: ``cooling_down`` is true while any
        of its pairs is inside the cooldown, and ``cooldowns`` says for how many seconds more."""
        asset = symbol.upper()
        a = ctx.alerter
        if a is None:
            return {"asset": asset, "enabled": False, "cooling_down": False, "cooldowns": [], "recent": []}
        cooldowns = [c for c in a.cooldowns(e.now_ns) if c["asset"] == asset]
        return {"asset": asset, "enabled": True, "cooling_down": bool(cooldowns), "cooldowns": cooldowns,
                "cooldown_s": a.cooldown_ns / 1e9,
                "recent": [_alert(x) for x in reversed(a.recent) if x.asset == asset]}

    @app.post("/api/reload-config", dependencies=[Depends(write_access)], tags=["seed-compatible"],
              summary="Alias of POST /api/config/reload")
    async def reload_config() -> dict[str, Any]:
        """Reload instrument overrides and alert rules from the configuration, without restart."""
        return await reload()

    def risk() -> Any:
        if ctx.trading is None:
            raise HTTPException(409, "paper trading is not running (paper.enabled is false or execution.mode is live)")
        return ctx.trading.risk

    @app.get("/api/paper", dependencies=read)
    def paper() -> dict[str, Any]:
        """Paper trading at a glance: PnL split, open legs, counts, refusals, the kill switch
        and the risk limits with their utilisation (``enabled: false`` when it is off)."""
        t = ctx.trading
        if t is None:
            return {"enabled": False}
        return t.overview()

    paper_api.add_routes(app, lambda: ctx.trading, lambda: ctx.blotter, read)

    @app.post("/api/paper/kill", dependencies=[Depends(write_access)])
    def paper_kill(body: KillRequest | None = None) -> dict[str, Any]:
        """Kill switch: no new orders that open risk; with ``flatten``, close every position."""
        req = body or KillRequest()
        return dict(risk().kill(req.reason, req.flatten))

    @app.post("/api/paper/resume", dependencies=[Depends(write_access)])
    def paper_resume() -> dict[str, Any]:
        """Release the kill switch."""
        return dict(risk().resume())

    @app.get("/metrics", dependencies=read)
    def metrics() -> Response:
        return Response(generate_latest(ctx.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        if not origin_allowed(websocket.headers.get("origin"), websocket.headers.get("host"), s.cors_origins):
            # Closing before accepting answers the handshake with HTTP 403.
            await websocket.close(code=1008)
            return
        if not s.public_read:
            auth = websocket.headers.get("authorization", "") or f"Bearer {websocket.query_params.get('token', '')}"
            if not (token and hmac.compare_digest(auth[7:].encode(), token.encode())):
                await websocket.close(code=4401)
                return
        await ctx.hub.serve(websocket)

    web = static_dir or STATIC
    if (web / "index.html").exists():
        app.mount("/", StaticFiles(directory=web, html=True), name="dashboard")
    else:
        @app.get("/", include_in_schema=False)
        def no_dashboard() -> JSONResponse:
            return JSONResponse({"error": "the dashboard is not built; run `make setup` (npm build of web/)"},
                                status_code=404)

    return app


def origin_allowed(origin: str | None, host: str | None, allowed: list[str]) -> bool:
    """Browsers send ``Origin`` on every WebSocket handshake and do not apply CORS to it, so
    the stream checks it itself: no Origin (not a browser), the page's own origin (the
    dashboard), or one of ``api.cors_origins`` (``*`` allows any)."""
    if origin is None:
        return True
    if "*" in allowed or origin in allowed:
        return True
    parts = urlsplit(origin)
    return parts.scheme in ("http", "https") and bool(host) and parts.netloc.lower() == (host or "").lower()


def exposure_warning(settings: ApiSettings) -> str | None:
    """What to warn about when the API listens beyond this machine without a token."""
    if settings.token is not None or _loopback(settings.host):
        return None
    if not settings.public_read:
        return (f"the API listens on {settings.host} without api.token while api.public_read is false: "
                "every request will be refused")
    return (f"the API listens on {settings.host}, beyond loopback, without api.token: anyone who can reach "
            "it can read prices, opportunities and the /ws stream; set api.token and api.public_read = false, "
            "or bind to 127.0.0.1")


def _loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _alert(a: Any) -> dict[str, Any]:
    import msgspec

    return msgspec.structs.asdict(a)
