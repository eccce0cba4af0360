"""Live execution: approved orders go to the venues through ccxt's unified order API.

It takes the same ``Order`` messages as the simulated execution and publishes the same
``OrderUpdate`` and ``Fill`` messages on ``executions``, in the same units (base-asset
quantities, prices per base unit) with the same statuses, reason format and fill ids
(``<order id>-<n>``), so strategies, risk and the ledger cannot tell them apart.

- ``submit`` returns at once: placement runs in an asyncio task, off the engine's hot
  path. Each order's steps (place, poll, cancel) run one after the other in its own
  task chain, so its updates reach the bus in lifecycle order; results are stamped with
  engine time when they arrive.
- Quantities are converted to the venue's contracts with the instrument
  (``native_qty``), rounded *down* to the lot; the venue's fills come back through
  ``Instrument.qty``/``px``. A quantity that rounds to nothing, or below the minimum,
  is rejected before anything is sent.
- The venue's order id is tracked; the bus order id goes out as the client order id
  where the venue accepts it, so an order can be found after a network error.
- Fills are reported per increment of the venue's executed quantity (polled every
  ``poll_s`` while the order is open), at the increment's average price. The fee is the
  instrument's taker or maker rate on it (the venue's own commission needs its trade
  history, which ccxt does not unify for every venue): an estimate the ledger can
  reconcile.
- Venue errors are rejections with a counted key and the venue's own code and message.

API keys live in the ccxt exchange objects only; nothing here logs or returns them.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import json
import logging
import math
import re
from collections import Counter
from collections.abc import Coroutine, Iterable
from dataclasses import dataclass, field
from typing import Any

from perparb.bus import EXECUTIONS, ORDERS, Bus
from perparb.bus.messages import (
    BUY,
    IOC,
    MAKER,
    MARKET,
    POST_ONLY,
    SELL,
    TAKER,
    CancelOrder,
    Fill,
    Message,
    Order,
    OrderUpdate,
)
from perparb.execution import ORDER_REASONS, MarketView, OpenOrder, floor_lot
from perparb.model import Instrument

log = logging.getLogger("perparb.execution.live")

REASONS = {**ORDER_REASONS, "no_price": "No price to convert the quantity to contracts."}
# ccxt's exception classes -> counted rejection keys (the first match in the MRO wins).
ERROR_KEYS = {
    "InsufficientFunds": "insufficient_margin", "OrderImmediatelyFillable": "would_cross",
    "AuthenticationError": "auth", "PermissionDenied": "auth", "InvalidNonce": "timestamp",
    "RateLimitExceeded": "rate_limited", "DDoSProtection": "rate_limited", "BadSymbol": "unknown_symbol",
    "InvalidOrder": "invalid_order", "NetworkError": "network", "ExchangeError": "venue_error",
}
_CLIENT_ID = re.compile(r"^[.A-Za-z0-9:/_-]{1,36}$")
_BODY = re.compile(r"\{.*\}")
_EPS = 1e-9
OPEN = ("accepted", "partially_filled")


def client_order_id(order_id: str) -> str:
    """The bus id where the venue's client id rules allow it, else a stable digest of it."""
    if _CLIENT_ID.match(order_id):
        return order_id
    return "pp" + hashlib.sha256(order_id.encode()).hexdigest()[:30]



def venue_reason(exc: Exception) -> tuple[str, str]:
    """(counted key, the venue's own words) for a ccxt error."""
    key = "venue_error"
    for cls in type(exc).__mro__:
        if cls.__name__ in ERROR_KEYS:
            key = ERROR_KEYS[cls.__name__]
            break
    text = str(exc)
    m = _BODY.search(text)
    if m:
        with contextlib.suppress(ValueError):
            body = json.loads(m.group(0))
            if isinstance(body, dict) and "msg" in body:
                return key, f"{body['msg']} ({body.get('code')})"
    return key, text


class LiveStartError(RuntimeError):
    """Live trading cannot start: a venue refused the keys or cannot be reached."""


@dataclass
class _Live:
    order: Order
    inst: Instrument
    client_id: str
    liquidity: str
    venue_id: str = ""
    native_filled: float = 0.0
    native_cost: float = 0.0  # sum of native qty x native price
    filled: float = 0.0  # base units
    notional: float = 0.0  # base qty x per-unit price
    fills: int = 0
    status: str = "sent"
    poll: asyncio.Task[None] | None = None
    placed: asyncio.Event = field(default_factory=asyncio.Event)  # the venue answered the placement


class LiveExecution:
    """One ccxt exchange per venue (``exchanges``: venue id -> ccxt.async_support object)."""

    def __init__(self, bus: Bus, view: MarketView, exchanges: dict[str, Any], poll_s: float = 1.0,
                 subscribe: bool = True) -> None:
        self.bus = bus
        self.view = view
        self.exchanges = exchanges
        self.venues = frozenset(exchanges)
        self.poll_s = poll_s
        self.live: dict[str, _Live] = {}
        self.rejections: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()
        self._tasks: set[asyncio.Task[None]] = set()  # placements and cancels in flight
        self._polls: set[asyncio.Task[None]] = set()  # resting orders being watched
        self.start_balances: dict[str, dict[str, float]] = {}  # per venue, read by start()
        if subscribe:
            bus.subscribe(ORDERS, self._on_message)

    async def start(self) -> None:
        """Before the first order: every venue's markets (contract ids and precision), and
        its balances, which also proves the keys work. A venue that refuses the keys or
        cannot be reached stops the start (``LiveStartError``)."""
        import ccxt

        for venue, ex in sorted(self.exchanges.items()):
            try:
                await ex.load_markets()
                self.start_balances[venue] = await self.balances(venue)
            except ccxt.AuthenticationError as exc:
                raise LiveStartError(f"venues.{venue}.api_key: the venue refused the API key "
                                     f"({venue_reason(exc)[1]})") from None
            except ccxt.BaseError as exc:
                raise LiveStartError(f"venues.{venue}: cannot reach the trading API ({venue_reason(exc)[1]})") from None

    async def close(self) -> None:
        tasks = list(self._tasks | self._polls)
        for t in tasks:
            t.cancel()
        for t in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        for ex in self.exchanges.values():
            await ex.close()

    async def idle(self) -> None:
        """Wait until every placement and cancel sent so far has its answer."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- interface -----------------------------------------------------------------------
    def _on_message(self, msg: Message) -> None:
        if isinstance(msg, Order) and msg.venue in self.venues:
            self.submit(msg)
        elif isinstance(msg, CancelOrder) and msg.venue in self.venues:
            self.cancel(msg)

    def submit(self, order: Order) -> None:
        if order.id in self.live:
            self.counts["duplicate"] += 1
            log.warning("order %s submitted twice; the second is ignored", order.id)
            return
        self.counts["orders"] += 1
        inst = self.view.instrument(order.venue, order.venue_symbol)
        if inst is None:
            return self._reject(order, None, "unknown_symbol", f"{order.venue} {order.venue_symbol}")
        if (order.side not in (BUY, SELL) or not order.qty > 0.0 or not math.isfinite(order.qty)
                or order.order_type not in (MARKET, IOC, POST_ONLY)
                or (order.order_type != MARKET and not (order.limit_px or 0.0) > 0.0)):
            return self._reject(order, inst, "bad_order",
                                f"side={order.side!r} qty={order.qty!r} type={order.order_type!r}")
        ref = order.limit_px or self._ref_px(order)
        if ref is None:
            return self._reject(order, inst, "no_price", f"{order.venue} {order.venue_symbol} has no book")
        native = floor_lot(inst.native_qty(order.qty, ref), inst.lot_size)
        if native <= 0.0:
            return self._reject(order, inst, "lot_size", f"qty {order.qty!r} is {native!r} native, lot {inst.lot_size!r}")
        if inst.min_qty > 0.0 and native < inst.min_qty * (1 - _EPS):
            return self._reject(order, inst, "min_qty", f"{native!r} native < {inst.min_qty!r}")
        lv = self.live[order.id] = _Live(order, inst, client_order_id(order.id),
                                         MAKER if order.order_type == POST_ONLY else TAKER)
        self._spawn(self._place(lv, native))

    def cancel(self, cancel: CancelOrder) -> None:
        lv = self.live.get(cancel.order_id)
        if lv is None:
            self.counts["cancel_unknown"] += 1
            log.warning("cancel for %s on %s: Unknown order sent (not open)", cancel.order_id, cancel.venue)
            return
        self._spawn(self._cancel(lv))

    def restore(self, open_orders: Iterable[OpenOrder]) -> None:
        """Carry on with the orders the journal says were open when the process stopped.

        Each is looked up at the venue by its client order id: what filled meanwhile is
        published as fills (ids continue from the journal's count), a finished order gets
        its final status, a resting one is watched again. An order the journal saw only as
        sent and the venue does not know never arrived: it is rejected (``lost``)."""
        for oo in open_orders:
            o = oo.order
            if o.venue not in self.venues or o.id in self.live:
                continue
            inst = self.view.instrument(o.venue, o.venue_symbol)
            if inst is None:
                self._reject(o, None, "unknown_symbol", f"{o.venue} {o.venue_symbol}")
                continue
            lv = self.live[o.id] = _Live(o, inst, client_order_id(o.id),
                                         MAKER if o.order_type == POST_ONLY else TAKER)
            lv.status = oo.status
            lv.filled, lv.notional, lv.fills = oo.filled_qty, oo.filled_qty * oo.avg_px, oo.fills
            if oo.filled_qty > 0.0:
                native_px = inst.native_px(oo.avg_px)
                lv.native_filled = inst.native_qty(oo.filled_qty, oo.avg_px)
                lv.native_cost = lv.native_filled * native_px
            self._spawn(self._resume(lv))

    async def _resume(self, lv: _Live) -> None:
        import ccxt

        o, ex = lv.order, self.exchanges[lv.order.venue]
        try:
            res = await ex.fetch_order(None, self._ccxt_symbol(ex, lv.inst),
                                       {"origClientOrderId": lv.client_id, "clientOrderId": lv.client_id})
        except ccxt.OrderNotFound:
            self.live.pop(o.id, None)
            lv.status = "rejected"
            lv.placed.set()
            self.rejections["lost"] += 1
            self._emit([(EXECUTIONS, self._update(lv, self.view.now_ns, "rejected",
                                                  "lost: the venue does not know the order"))])
            return
        except ccxt.BaseError as exc:
            # Unknown state: keep it open and let the poll loop ask again.
            log.warning("%s order %s: restore lookup failed: %s", o.venue, o.id, venue_reason(exc)[1])
            res = None
        if res is not None:
            lv.venue_id = str(res.get("id") or "")
            self._apply(lv, res)
        lv.placed.set()
        if lv.status in OPEN or lv.status == "sent":
            lv.poll = asyncio.get_running_loop().create_task(self._poll(lv))
            self._polls.add(lv.poll)
            lv.poll.add_done_callback(self._polls.discard)

    # -- venue calls (tasks) ---------------------------------------------------------------
    def _spawn(self, coro: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _place(self, lv: _Live, native: float) -> None:
        import ccxt

        o, ex = lv.order, self.exchanges[lv.order.venue]
        params: dict[str, Any] = {"clientOrderId": lv.client_id}
        if o.reduce_only:
            params["reduceOnly"] = True
        price = None
        if o.order_type == IOC:
            params["timeInForce"] = "IOC"
        elif o.order_type == POST_ONLY:
            params["postOnly"] = True
        if o.order_type != MARKET:
            assert o.limit_px is not None
            price = lv.inst.native_px(o.limit_px)
        kind = "market" if o.order_type == MARKET else "limit"
        try:
            try:
                res = await ex.create_order(self._ccxt_symbol(ex, lv.inst), kind, o.side, native, price, params)
            except ccxt.NetworkError as exc:
                # The order may or may not have reached the venue: ask for it by our client id.
                found = await self._find_after_error(lv, exc)
                if found is None:
                    return
                res = found
            except ccxt.BaseError as exc:
                key, text = venue_reason(exc)
                self.live.pop(o.id, None)
                lv.status = "rejected"
                return self._reject(o, lv.inst, key, text)
            lv.venue_id = str(res.get("id") or "")
            self._apply(lv, res, first=True)
        finally:
            lv.placed.set()
        if lv.status in OPEN:
            lv.poll = asyncio.get_running_loop().create_task(self._poll(lv))
            self._polls.add(lv.poll)
            lv.poll.add_done_callback(self._polls.discard)

    async def _poll(self, lv: _Live) -> None:
        """A resting order's fills, until it is done (a cancel stops this loop first)."""
        import ccxt

        o, ex = lv.order, self.exchanges[lv.order.venue]
        while lv.status in OPEN or lv.status == "sent":  # "sent": restored, state still unknown
            await asyncio.sleep(self.poll_s)
            symbol = self._ccxt_symbol(ex, lv.inst)
            try:
                if lv.venue_id:
                    res = await ex.fetch_order(lv.venue_id, symbol)
                else:
                    res = await ex.fetch_order(None, symbol, {"origClientOrderId": lv.client_id,
                                                              "clientOrderId": lv.client_id})
            except ccxt.BaseError as exc:
                self.counts["poll_errors"] += 1
                log.warning("%s order %s: poll failed: %s", o.venue, o.id, venue_reason(exc)[1])
                continue
            lv.venue_id = str(res.get("id") or lv.venue_id)
            self._apply(lv, res)

    async def _find_after_error(self, lv: _Live, exc: Exception) -> dict[str, Any] | None:
        import ccxt

        o, ex = lv.order, self.exchanges[lv.order.venue]
        self.counts["network_errors"] += 1
        try:
            return dict(await ex.fetch_order(None, self._ccxt_symbol(ex, lv.inst),
                                             {"origClientOrderId": lv.client_id, "clientOrderId": lv.client_id}))
        except ccxt.BaseError:
            pass
        self.live.pop(o.id, None)
        lv.status = "rejected"
        key, text = venue_reason(exc)
        self._reject(o, lv.inst, key, f"{text}; the venue does not know the order")
        return None

    async def _cancel(self, lv: _Live) -> None:
        import ccxt

        ex = self.exchanges[lv.order.venue]
        # A cancel needs the venue's id: wait for the placement's answer, then stop the
        # order's poll loop so only this chain publishes for it from here on.
        await lv.placed.wait()
        if lv.poll is not None and not lv.poll.done():
            lv.poll.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await lv.poll
        if lv.status not in OPEN:
            self.counts["cancel_unknown"] += 1
            return
        symbol = self._ccxt_symbol(ex, lv.inst)
        try:
            res = await ex.cancel_order(lv.venue_id, symbol)
        except ccxt.OrderNotFound:
            # Filled or gone before the cancel arrived: report what it became.
            self.counts["cancel_unknown"] += 1
            try:
                res = await ex.fetch_order(lv.venue_id, symbol)
            except ccxt.BaseError as exc:
                log.warning("%s order %s: state unknown after cancel: %s", lv.order.venue, lv.order.id,
                            venue_reason(exc)[1])
                return
        except ccxt.BaseError as exc:
            self.counts["cancel_errors"] += 1
            log.warning("%s order %s: cancel failed: %s", lv.order.venue, lv.order.id, venue_reason(exc)[1])
            return
        self._apply(lv, res, canceling=True)

    # -- results -----------------------------------------------------------------------------
    def _apply(self, lv: _Live, res: dict[str, Any], first: bool = False, canceling: bool = False) -> None:
        """Publish what changed since the last answer: fills for the new executed quantity,
        then the order's status."""
        now = self.view.now_ns
        out: list[tuple[str, Message]] = []
        filled = float(res.get("filled") or 0.0)
        avg = float(res.get("average") or 0.0)
        if filled > lv.native_filled * (1 + _EPS) + _EPS and avg > 0.0:
            d_native = filled - lv.native_filled
            d_cost = filled * avg - lv.native_cost
            native_px = d_cost / d_native
            liquidity = TAKER if first and lv.order.order_type != POST_ONLY else lv.liquidity
            out.append((EXECUTIONS, self._fill(lv, now, lv.inst.qty(d_native, native_px), lv.inst.px(native_px),
                                               liquidity)))
            lv.native_filled, lv.native_cost = filled, filled * avg
        status = res.get("status")
        new = lv.status
        reason = ""
        if status == "closed":
            new = "filled"
        elif status == "open":
            new = "partially_filled" if lv.filled > 0.0 else "accepted"
        elif status == "canceled":
            new, reason = ("canceled", "canceled: canceled by request") if canceling else \
                ("expired", "ioc_remainder: the venue expired the rest")
        elif status == "expired":
            new, reason = "expired", "ioc_remainder: the venue expired the rest"
        elif status == "rejected":
            new, reason = "rejected", "venue_error: rejected by the venue"
        if new != lv.status or out:
            if new not in OPEN:
                self.live.pop(lv.order.id, None)
                if new in ("canceled", "expired"):
                    self.counts[new] += 1
            if new != lv.status or new == "partially_filled":
                out.append((EXECUTIONS, self._update(lv, now, new, reason)))
            lv.status = new
        if out:
            self._emit(out)

    def _fill(self, lv: _Live, now: int, qty: float, px: float, liquidity: str) -> Fill:
        o, inst = lv.order, lv.inst
        rate = inst.taker_fee if liquidity == TAKER else inst.maker_fee
        fee = qty * rate if inst.inverse else qty * px * rate
        lv.fills += 1
        lv.filled += qty
        lv.notional += qty * px
        self.counts["fills"] += 1
        return Fill(id=f"{o.id}-{lv.fills}", ts_ns=now, venue=o.venue, symbol=o.symbol, venue_symbol=o.venue_symbol,
                    side=o.side, qty=qty, px=px, fee=fee, fee_asset=inst.settle, liquidity=liquidity, order_id=o.id,
                    intent_id=o.intent_id, strategy=o.strategy)

    def _reject(self, order: Order, inst: Instrument | None, key: str, detail: str = "") -> None:
        self.rejections[key] += 1
        text = f"{key}: {REASONS[key]}" + (f" ({detail})" if detail else "") if key in REASONS else f"{key}: {detail}"
        self._emit([(EXECUTIONS, OrderUpdate(order_id=order.id, intent_id=order.intent_id, ts_ns=self.view.now_ns,
                                             venue=order.venue, symbol=order.symbol, status="rejected",
                                             reason=text))])

    def _update(self, lv: _Live, now: int, status: str, reason: str = "") -> OrderUpdate:
        o = lv.order
        avg = lv.notional / lv.filled if lv.filled > 0.0 else 0.0
        return OrderUpdate(order_id=o.id, intent_id=o.intent_id, ts_ns=now, venue=o.venue, symbol=o.symbol,
                           status=status, filled_qty=lv.filled, avg_px=avg, reason=reason)

    def _emit(self, items: list[tuple[str, Message]]) -> None:
        many = getattr(self.bus, "publish_many", None)
        if many is not None:
            many(items)
        else:
            for ch, msg in items:
                self.bus.publish(ch, msg)

    # -- helpers -----------------------------------------------------------------------------
    def _ref_px(self, order: Order) -> float | None:
        """Per-unit price to size a market order (inverse contracts count USD)."""
        sb = self.view.book(order.venue, order.venue_symbol)
        book = getattr(sb, "book", None)
        if book is None:
            return None
        bb, ba = book.best_bid(), book.best_ask()
        best = ba if order.side == BUY else bb
        return best[0] if best else None

    @staticmethod
    def _ccxt_symbol(ex: Any, inst: Instrument) -> str:
        market = (ex.markets_by_id or {}).get(inst.venue_symbol)
        if not market:
            return inst.symbol
        return str(market[0]["symbol"])

    # -- reconciliation reads ------------------------------------------------------------------
    async def positions(self, venue: str) -> list[tuple[str, float, float]]:
        """(canonical symbol, signed base quantity, entry price per unit) held on ``venue``."""
        ex = self.exchanges[venue]
        out = []
        for p in await ex.fetch_positions():
            vsym = str((p.get("info") or {}).get("symbol") or "")
            inst = self.view.instrument(venue, vsym)
            contracts, entry = float(p.get("contracts") or 0.0), float(p.get("entryPrice") or 0.0)
            if inst is None or not contracts:
                continue
            sign = -1.0 if p.get("side") == "short" else 1.0
            out.append((inst.symbol, sign * inst.qty(contracts, entry), inst.px(entry)))
        return out

    async def balances(self, venue: str) -> dict[str, float]:
        """Total (wallet plus unrealized) per asset, as the venue reports it."""
        bal = await self.exchanges[venue].fetch_balance()
        return {k: float(v) for k, v in (bal.get("total") or {}).items() if v}

    async def open_orders(self, venue: str) -> list[str]:
        """Venue order ids of the orders resting on ``venue``."""
        ex = self.exchanges[venue]
        return [str(o["id"]) for o in await ex.fetch_open_orders()]


class Redact(logging.Filter):
    """Replaces every credential in a record's message with ``[redacted]``."""

    def __init__(self, secrets: list[str]) -> None:
        super().__init__()
        self.secrets = [x for x in secrets if x]

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        if any(x in msg for x in self.secrets):
            for x in self.secrets:
                msg = msg.replace(x, "[redacted]")
            record.msg, record.args = msg, None
        return True


def make_exchange(venue: str, api_key: str, secret: str, password: str = "", rest_url: str = "",
                  sandbox: bool = False) -> Any:
    """The ccxt.async_support exchange that trades ``venue``'s perpetuals.

    ``sandbox``: the venue's testnet (ccxt ``set_sandbox_mode``), or for Binance USDⓈ-M,
    whose futures testnet ccxt retired, its demo-trading environment. ``rest_url``
    replaces the scheme and host of every REST address (the simulator)."""
    import ccxt.async_support as ccxt_async

    from perparb.scanner.once import ccxt_id
    from perparb.venues.ccxt_generic.transport import override_urls

    cid = ccxt_id(venue)
    if cid is None or not hasattr(ccxt_async, cid):
        raise KeyError(f"no ccxt exchange trades venue {venue!r}")
    config: dict[str, Any] = {
        "apiKey": api_key, "secret": secret, "enableRateLimit": True,
        # Currencies are a wallet endpoint the order path never needs; open orders are read
        # per account, not per symbol.
        "options": {"fetchCurrencies": False, "warnOnFetchOpenOrdersWithoutSymbol": False},
    }
    if password:
        config["password"] = password
    ex = getattr(ccxt_async, cid)(config)
    # ccxt logs every request's headers at DEBUG, API key included: this exchange logs
    # through a logger of its own that blanks the credentials out.
    ex.logger = logging.getLogger(f"perparb.execution.ccxt.{cid}")
    ex.logger.addFilter(Redact([api_key, secret, password]))
    if sandbox:
        if cid == "binanceusdm" and hasattr(ex, "enable_demo_trading"):
            ex.enable_demo_trading(True)
        else:
            ex.set_sandbox_mode(True)
    if rest_url:
        original = ex.urls
        ex.urls = override_urls(original, "", rest_url)
        _keep_error_mapping(ex, original)
    return ex


def _keep_error_mapping(ex: Any, original: dict[str, Any]) -> None:
    """Some ccxt exchanges (Binance) pick the error table by the URL's host: map an
    overridden address back to the venue's own so the simulator's errors classify alike."""
    pairs: list[tuple[str, str]] = []

    def walk(new: Any, old: Any) -> None:
        if isinstance(new, dict) and isinstance(old, dict):
            for k in new:
                walk(new[k], old.get(k))
        elif isinstance(new, str) and isinstance(old, str) and new != old:
            pairs.append((new, old))

    walk(ex.urls.get("api"), original.get("api"))
    pairs.sort(key=lambda p: -len(p[0]))
    by_url = getattr(ex, "get_exceptions_by_url", None)
    if by_url is None or not pairs:
        return

    def mapped(url: str | None, exact_or_broad: str) -> Any:
        for new, old in pairs:
            if url and url.startswith(new):
                url = old + url[len(new):]
                break
        return by_url(url, exact_or_broad)

    ex.get_exceptions_by_url = mapped
