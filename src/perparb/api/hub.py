"""WebSocket fan-out with per-client conflation.

The engine never waits for a client. A publisher tick (every ``interval_s``) turns what
changed into typed messages and writes them into each client's pending map, keyed by
(type, key): a newer value replaces an unsent older one, so a slow or stalled client
holds at most one message per key and, when it catches up, receives the latest state.
Each client has its own sender task; only that task ever waits on that client's socket.

Each tick's messages for a client go out as one frame: a single message, or
``{"type": "batch", "messages": [...]}`` holding several. Every message is encoded once per
tick and shared by all clients that want it.

Messages (JSON objects, field ``type``):
  snapshot      full state on connect and after a subscribe: venues, prices, opportunities,
                funding, summary, alerts
  price_update  {asset, data: [per-venue bid/ask/mid/age/book]}
  opportunities {events: [{event: open|update|close, ...opportunity}]}
  funding       {asset, data: {venue: {rate, predicted_rate, interval_h, apr, next_funding_ns}}}
  venue_status  {data: [per-venue status]}
  summary       {data: summary}
  alert         {data: alert}
  fill          {asset, data: fill}                 paper trading: one per fill (never conflated)
  position      {asset, key, data: position leg}   conflated per venue and contract; qty 0 = closed
  pnl           {data: PnL split and equity}       conflated: the latest
A client may send {"type": "subscribe", "assets": [...], "types": [...]} to filter by
asset and message type (empty or missing = everything).

The future_rtd tracker's names are aliases a client may subscribe with: ``arbitrage_opportunities``
(``opportunities`` sent under that name), ``market_summary`` (``summary`` under that name) and
``initial_prices`` (the snapshot's prices, sent once after the snapshot as
{"type": "initial_prices", "data": {asset: [per-venue prices]}}); ``price_update`` is shared.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from typing import Any

import msgspec
from starlette.websockets import WebSocket, WebSocketDisconnect

from perparb.api import state
from perparb.bus import EXECUTIONS, PORTFOLIO, Bus
from perparb.bus.messages import Fill, Message, PnlUpdate, PositionUpdate
from perparb.engine import Engine
from perparb.model import Opportunity
from perparb.paper.blotter import asset_of, fill_row, pnl_row, position_row
from perparb.scanner.alerts import Alerter

log = logging.getLogger("perparb.api")

TYPES = ("price_update", "opportunities", "funding", "venue_status", "summary", "alert", "fill", "position", "pnl")
ALIASES = {"arbitrage_opportunities": "opportunities", "market_summary": "summary"}
SEED_TYPES = (*ALIASES, "initial_prices")
MAX_PENDING_ALERTS = 100
MAX_PENDING_FILLS = 200  # a client that stalls through more fills than this gets the latest ones


class Client:
    def __init__(self, ws: WebSocket) -> None:
        self.ws = ws
        self.assets: set[str] | None = None
        self.types: set[str] | None = None
        self.names: dict[str, str] = {}  # perparb type -> the alias this client subscribed with
        self.initial_prices = False
        self.pending: dict[tuple[str, str], str] = {}  # (type, key) -> encoded message
        self.wake = asyncio.Event()
        self.sent = 0
        self.dropped = 0  # messages replaced before they were sent (conflated)

    def wants(self, kind: str, asset: str | None) -> bool:
        if self.types is not None and kind not in self.types:
            return False
        return asset is None or self.assets is None or asset in self.assets

    def put(self, kind: str, key: str, msg: str) -> None:
        k = (kind, key)
        if k in self.pending:
            self.dropped += 1
        self.pending[k] = msg
        self.wake.set()


class Hub:
    def __init__(self, engine: Engine, rates: state.Rates | None = None, alerter: Alerter | None = None,
                 series: state.SpreadSeries | None = None, interval_s: float = 0.2) -> None:
        self.engine = engine
        self.rates = rates
        self.alerter = alerter
        self.series = series
        self.interval_s = interval_s
        self.clients: set[Client] = set()
        self._events: dict[str, tuple[str, Opportunity]] = {}  # id -> latest lifecycle event
        self._alerts_seen = 0
        self._enc = msgspec.json.Encoder()
        self._fills: list[Fill] = []
        self._positions: dict[tuple[str, str], PositionUpdate] = {}
        self._pnl: PnlUpdate | None = None
        self.paper = False
        engine.scanner.listeners.append(self._on_opportunity)

    def attach_trading(self, bus: Bus) -> None:
        """Stream paper trading: fills from ``executions``, positions and PnL from ``portfolio``."""
        self.paper = True
        bus.subscribe(EXECUTIONS, self._on_trading)
        bus.subscribe(PORTFOLIO, self._on_trading)

    def _on_trading(self, msg: Message) -> None:
        if not self.clients:
            return
        if isinstance(msg, Fill):
            self._fills.append(msg)
            del self._fills[:-MAX_PENDING_FILLS]
        elif isinstance(msg, PositionUpdate):
            self._positions[(msg.venue, msg.symbol)] = msg
        elif isinstance(msg, PnlUpdate):
            self._pnl = msg

    def _on_opportunity(self, event: str, o: Opportunity) -> None:
        if self.clients:
            self._events[o.id] = (event, o)

    # -- snapshot ------------------------------------------------------------------------
    def snapshot(self, c: Client) -> dict[str, Any]:
        e = self.engine
        prices = state.prices(e)
        funding = state.funding(e)
        if c.assets is not None:
            prices = {a: v for a, v in prices.items() if a in c.assets}
            funding = {a: v for a, v in funding.items() if a in c.assets}
        opps = [o for o in state.opportunities(e) if c.assets is None or o["asset"] in c.assets]
        alerts = [msgspec.structs.asdict(a) for a in self.alerter.recent] if self.alerter else []
        return {"type": "snapshot", "venues": state.venues(e, self.rates), "prices": prices, "opportunities": opps,
                "funding": funding, "summary": state.summary(e), "alerts": alerts}

    # -- clients -------------------------------------------------------------------------
    async def serve(self, ws: WebSocket) -> None:
        await ws.accept()
        c = Client(ws)
        self.clients.add(c)
        sender = asyncio.create_task(self._sender(c))
        try:
            await ws.send_text(self._enc.encode(self.snapshot(c)).decode())
            while True:
                try:
                    msg = await ws.receive_json()
                except (ValueError, KeyError):
                    await ws.send_json({"type": "error", "error": "messages must be JSON objects"})
                    continue
                err = self._subscribe(c, msg)
                if err:
                    await ws.send_json({"type": "error", "error": err})
                else:
                    c.pending.clear()
                    snap = self.snapshot(c)
                    await ws.send_text(self._enc.encode(snap).decode())
                    if c.initial_prices:
                        await ws.send_text(self._enc.encode({"type": "initial_prices", "data": snap["prices"]})
                                           .decode())
        except (WebSocketDisconnect, RuntimeError):
            pass
        finally:
            self.clients.discard(c)
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender

    @staticmethod
    def _subscribe(c: Client, msg: Any) -> str | None:
        if not isinstance(msg, dict) or msg.get("type") != "subscribe":
            return 'expected {"type": "subscribe", "assets": [...], "types": [...]}'
        assets, types = msg.get("assets") or [], msg.get("types") or []
        if not isinstance(assets, list) or not all(isinstance(a, str) for a in assets):
            return "assets must be a list of asset names"
        if not isinstance(types, list) or any(t not in TYPES and t not in SEED_TYPES for t in types):
            return f"types must be a list of: {', '.join((*TYPES, *SEED_TYPES))}"
        c.assets = {a.upper() for a in assets} or None
        c.names = {ALIASES[t]: t for t in types if t in ALIASES}
        c.initial_prices = "initial_prices" in types
        live: set[str] = {ALIASES.get(t) or t for t in types if t != "initial_prices"}
        c.types = live if live or c.initial_prices else None  # only initial_prices: no live updates
        return None

    async def _sender(self, c: Client) -> None:
        while True:
            await c.wake.wait()
            c.wake.clear()
            batch, c.pending = c.pending, {}
            events = [m for (kind, _), m in batch.items() if kind == "opportunities"]
            msgs = [m for (kind, _), m in batch.items() if kind != "opportunities"]
            if "summary" in c.names:  # encoded once for everyone as {"type":"summary",...}
                msgs = [f'{{"type":"{c.names["summary"]}"' + m[len('{"type":"summary"'):]
                        if m.startswith('{"type":"summary"') else m for m in msgs]
            if events:
                name = c.names.get("opportunities", "opportunities")
                msgs.append(f'{{"type":"{name}","events":[' + ",".join(events) + "]}")
            if not msgs:
                continue
            frame = msgs[0] if len(msgs) == 1 else '{"type":"batch","messages":[' + ",".join(msgs) + "]}"
            await c.ws.send_text(frame)
            c.sent += len(msgs)

    # -- publishing ----------------------------------------------------------------------
    def publish(self) -> None:
        """One tick: queue what changed for every client. Never waits."""
        if not self.clients:
            self.engine.scanner.dirty.clear()
            self.engine.scanner.dirty_funding.clear()
            return
        e = self.engine
        sc = e.scanner
        dirty, sc.dirty = sc.dirty, set()
        dirty_funding, sc.dirty_funding = sc.dirty_funding, set()
        events, self._events = self._events, {}
        prices = {a: state.prices(e, a).get(a, []) for a in sorted(dirty)}
        fmatrix = state.funding(e) if dirty_funding else {}
        venues = {"type": "venue_status", "data": state.venues(e, self.rates)}
        summary = {"type": "summary", "data": state.summary(e)}
        alerts = []
        if self.alerter is not None:
            recent = list(self.alerter.recent)
            total = self.alerter.counts["sent"]
            new = min(total - self._alerts_seen, len(recent))
            alerts = recent[len(recent) - new:] if new > 0 else []
            self._alerts_seen = total
        enc = self._enc.encode
        price_msgs = {a: enc({"type": "price_update", "asset": a, "data": rows}).decode() for a, rows in prices.items()}
        event_msgs = {oid: (o.asset, enc({"event": event, **state.opportunity(o)}).decode())
                      for oid, (event, o) in events.items()}
        funding_msgs = {a: enc({"type": "funding", "asset": a, "data": fmatrix[a]}).decode()
                        for a in sorted(dirty_funding) if a in fmatrix}
        venue_msg, summary_msg = enc(venues).decode(), enc(summary).decode()
        alert_msgs = [(al.asset, f"{al.ts_ns}:{al.opportunity_id}",
                       enc({"type": "alert", "data": msgspec.structs.asdict(al)}).decode()) for al in alerts]
        fills, self._fills = self._fills, []
        positions, self._positions = self._positions, {}
        pnl, self._pnl = self._pnl, None
        fill_msgs = [(asset_of(f.symbol), f.id, enc({"type": "fill", "asset": asset_of(f.symbol),
                                                     "data": fill_row(f)}).decode()) for f in fills]
        position_msgs = [(asset_of(p.symbol), f"{p.venue}:{p.symbol}",
                          enc({"type": "position", "asset": asset_of(p.symbol), "key": f"{p.venue}:{p.symbol}",
                               "data": position_row(p)}).decode()) for p in positions.values()]
        pnl_msg = enc({"type": "pnl", "data": pnl_row(pnl)}).decode() if pnl is not None else None
        for c in list(self.clients):
            put: Callable[[str, str, str], None] = c.put
            everything = c.types is None and c.assets is None
            for a, m in price_msgs.items():
                if everything or c.wants("price_update", a):
                    put("price_update", a, m)
            for oid, (asset, m) in event_msgs.items():
                if everything or c.wants("opportunities", asset):
                    put("opportunities", oid, m)
            for a, m in funding_msgs.items():
                if everything or c.wants("funding", a):
                    put("funding", a, m)
            if everything or c.wants("venue_status", None):
                put("venue_status", "", venue_msg)
            if everything or c.wants("summary", None):
                put("summary", "", summary_msg)
            for asset, key, m in alert_msgs:
                if everything or c.wants("alert", asset):
                    put("alert", key, m)
            alert_keys = [k for k in c.pending if k[0] == "alert"]
            for k in alert_keys[:-MAX_PENDING_ALERTS]:
                del c.pending[k]
            for asset, key, m in fill_msgs:
                if everything or c.wants("fill", asset):
                    put("fill", key, m)
            for asset, key, m in position_msgs:
                if everything or c.wants("position", asset):
                    put("position", key, m)
            if pnl_msg is not None and (everything or c.wants("pnl", None)):
                put("pnl", "", pnl_msg)
            fill_keys = [k for k in c.pending if k[0] == "fill"]
            for k in fill_keys[:-MAX_PENDING_FILLS]:
                del c.pending[k]

    async def run(self) -> None:
        ticks = 0
        while True:
            await asyncio.sleep(self.interval_s)
            ticks += 1
            try:
                if self.series is not None and ticks % max(1, round(1 / self.interval_s)) == 0:
                    self.series.sample(self.engine)
                self.publish()
            except Exception:  # a bad view must not stop the feed to every client
                log.exception("publishing to WebSocket clients failed")
