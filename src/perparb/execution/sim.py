"""Simulated execution: orders fill against the venue's validated L2 book, on engine time.

The model, stated so its PnL can be judged:

- An order reaches the venue ``latency_ms`` (per venue, default 50 ms) of engine time after
  it was sent and is matched against the book **as it is then** (``MarketView.call_at``).
- Checks at arrival, in this order, each with a counted reason (``rejections``) and a
  venue-style message: unknown contract, malformed order, book unsynced / stale /
  crossed, price off the tick, quantity below the lot or minimum quantity after rounding
  *down* to the lot in the venue's native units, notional below the minimum, a post-only
  order that would cross.
- Market and limit IOC orders walk the opposite side level by level (a limit IOC stops at
  its price) and take what they can: one fill per level at that level's price, the rest
  expires. Liquidity is tracked in native units, so an inverse contract trades whole USD
  contracts and its base quantity depends on the level's price.
- Liquidity taken is gone, for the rest of the same order and for later orders alike,
  until the venue reports a new size for that level (the feed knows nothing of our
  orders, so a level that keeps its size still contains what we took: conservative).
- Post-only orders that would cross are rejected. Otherwise they rest (status
  ``accepted``) and fill at their own price, as maker, only when the opposite side trades
  *through* it (a buy at 100 fills when asks below 100 appear, up to their size; touching
  is not enough, since the queue ahead of us is unknown). They expire after
  ``post_only_tif_ms`` (0: good till canceled) and can be canceled.
- Fees: taker/maker rate of the contract from the instrument registry, overridable per
  venue or per contract. Linear contracts pay ``qty * px * rate`` in the quote/settle
  currency; inverse ones ``qty * rate`` in the coin (the USD notional divided by price).
- ``reduce_only`` is the risk engine's business; the simulator does not know positions.

Fills are in base units at per-unit prices. Ids are deterministic: ``<order id>-<n>``.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from perparb.book import Side
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
from perparb.feeds.booksync import SYNCED
from perparb.model import Instrument

log = logging.getLogger("perparb.execution.sim")

# Counted rejection reasons and the venue-style text that goes with them.
REASONS = {
    **ORDER_REASONS,
    "unsynced_book": "Order book not available (unsynchronized).",
    "stale_book": "Order book data is stale.",
    "crossed_book": "Order book is crossed.",
    "no_liquidity": "No liquidity on the opposite side.",
    "tick_size": "Price not increased by tick size.",
    "min_notional": "Order's notional is smaller than the minimum.",
    "would_cross": "Due to the order could not be executed as maker, the Post Only order will be rejected.",
}
_EPS = 1e-9


@dataclass
class SimSettings:
    latency_ms: float = 50.0
    venue_latency_ms: dict[str, float] = field(default_factory=dict)
    # Fee-rate overrides keyed by venue or by "venue:venue_symbol" (the contract wins).
    taker_fee: dict[str, float] = field(default_factory=dict)
    maker_fee: dict[str, float] = field(default_factory=dict)
    post_only_tif_ms: float = 60_000.0  # a resting post-only order expires after this; 0 = never
    resting_check_ms: float = 100.0  # how often resting orders look at the book


class _Live:
    """An order the simulator is carrying: in flight or resting."""

    __slots__ = ("arrival_ns", "arrived", "expire_ns", "filled", "fills", "inst", "not_before", "notional", "order",
                 "rem_native")

    def __init__(self, order: Order) -> None:
        self.order = order
        self.inst: Instrument | None = None
        self.arrived = False
        self.rem_native = 0.0
        self.filled = 0.0  # base units
        self.notional = 0.0  # sum of qty * px, for the average price
        self.fills = 0
        self.expire_ns = 0
        self.arrival_ns = 0
        self.not_before = 0



def _on_tick(px: float, tick: float) -> bool:
    if tick <= 0.0:
        return True
    steps = px / tick
    return abs(steps - round(steps)) <= 1e-6 * max(1.0, abs(steps)) ** 0.5


class SimExecution:
    def __init__(self, bus: Bus, view: MarketView, venues: Iterable[str], settings: SimSettings | None = None,
                 subscribe: bool = True) -> None:
        self.bus = bus
        self.view = view
        self.venues = frozenset(venues)
        self.settings = settings or SimSettings()
        self.live: dict[str, _Live] = {}
        self.rejections: Counter[str] = Counter()
        self.counts: Counter[str] = Counter()  # orders, fills, canceled, expired, cancel_unknown, duplicate
        # Liquidity we took, per contract: (is_ask, px) -> (level size when taken, base taken).
        self._taken: dict[tuple[str, str], dict[tuple[bool, float], tuple[float, float]]] = {}
        self._sweeping = False
        if subscribe:
            bus.subscribe(ORDERS, self._on_message)

    # -- interface -----------------------------------------------------------------------
    def _on_message(self, msg: Message) -> None:
        if isinstance(msg, Order) and msg.venue in self.venues:
            self.submit(msg)
        elif isinstance(msg, CancelOrder) and msg.venue in self.venues:
            self.cancel(msg)

    def latency_ns(self, venue: str) -> int:
        return int(self.settings.venue_latency_ms.get(venue, self.settings.latency_ms) * 1_000_000)

    def submit(self, order: Order) -> None:
        if order.id in self.live:
            self.counts["duplicate"] += 1
            log.warning("order %s submitted twice; the second is ignored", order.id)
            return
        self.counts["orders"] += 1
        self.live[order.id] = _Live(order)
        at = max(order.ts_ns + self.latency_ns(order.venue), self.view.now_ns)
        oid = order.id
        self.view.call_at(at, lambda due: self._arrive(oid, due))

    def cancel(self, cancel: CancelOrder) -> None:
        at = max(cancel.ts_ns + self.latency_ns(cancel.venue), self.view.now_ns)
        self.view.call_at(at, lambda due: self._cancel_arrives(cancel, due))

    def restore(self, open_orders: Iterable[OpenOrder]) -> None:
        """Carry on with orders the journal says were open: in-flight ones arrive (now, if
        their latency has passed), resting ones rest again with their fills so far."""
        for oo in open_orders:
            o = oo.order
            if o.venue not in self.venues or o.id in self.live:
                continue
            if oo.status == "sent":
                self.submit(o)
                continue
            lv = self.live[o.id] = _Live(o)
            lv.inst = self.view.instrument(o.venue, o.venue_symbol)
            lv.arrived = True
            lv.filled, lv.notional, lv.fills = oo.filled_qty, oo.filled_qty * oo.avg_px, oo.fills
            px = o.limit_px or 0.0
            lv.rem_native = floor_lot(lv.inst.native_qty(o.qty - lv.filled, px), lv.inst.lot_size) if lv.inst else 0.0
            arrival = o.ts_ns + self.latency_ns(o.venue)
            tif = self.settings.post_only_tif_ms
            lv.expire_ns = arrival + int(tif * 1e6) if tif > 0 else 0
            lv.arrival_ns = arrival
            # No sweep at or before its last journaled event: a replayed market cannot fill it twice.
            lv.not_before = max(oo.last_ts_ns, arrival)
            self._start_sweep()

    # -- arrival -------------------------------------------------------------------------
    def _arrive(self, oid: str, now: int) -> None:
        lv = self.live.get(oid)
        if lv is None or lv.arrived:
            return
        lv.arrived = True
        o = lv.order
        inst = lv.inst = self.view.instrument(o.venue, o.venue_symbol)
        if inst is None:
            return self._reject(lv, now, "unknown_symbol", f"{o.venue} {o.venue_symbol}")
        if (o.side not in (BUY, SELL) or not o.qty > 0.0 or not math.isfinite(o.qty)
                or o.order_type not in (MARKET, IOC, POST_ONLY)):
            return self._reject(lv, now, "bad_order", f"side={o.side!r} qty={o.qty!r} type={o.order_type!r}")
        limit = o.limit_px
        if o.order_type != MARKET and (limit is None or not limit > 0.0 or not math.isfinite(limit)):
            return self._reject(lv, now, "bad_order", f"{o.order_type} order needs a positive limit_px")
        sb = self.view.book(o.venue, o.venue_symbol)
        if sb is None or sb.state != SYNCED:
            return self._reject(lv, now, "unsynced_book")
        if self.view.is_stale(o.venue, o.venue_symbol):
            return self._reject(lv, now, "stale_book")
        if sb.book.crossed():
            return self._reject(lv, now, "crossed_book")
        buy = o.side == BUY
        opposite = sb.book.asks if buy else sb.book.bids
        best = opposite.best()
        if limit is not None:
            if not _on_tick(inst.native_px(limit), inst.tick_size):
                return self._reject(lv, now, "tick_size", f"price {limit!r}, tick {inst.tick_size!r}")
            ref = limit
        elif best is None:
            return self._reject(lv, now, "no_liquidity")
        else:
            ref = best[0]
        native = inst.native_qty(o.qty, ref)
        lv.rem_native = floor_lot(native, inst.lot_size)
        if lv.rem_native <= 0.0:
            return self._reject(lv, now, "lot_size", f"qty {o.qty!r} is {native!r} native, lot {inst.lot_size!r}")
        if inst.min_qty > 0.0 and lv.rem_native < inst.min_qty * (1 - _EPS):
            return self._reject(lv, now, "min_qty", f"{lv.rem_native!r} native < {inst.min_qty!r}")
        notional = inst.qty(lv.rem_native, inst.native_px(ref)) * ref
        if inst.min_notional > 0.0 and notional < inst.min_notional * (1 - _EPS):
            return self._reject(lv, now, "min_notional", f"{notional:.8g} < {inst.min_notional!r}")
        if o.order_type == POST_ONLY:
            if best is not None and (best[0] <= ref if buy else best[0] >= ref):
                return self._reject(lv, now, "would_cross", f"limit {ref!r}, best opposite {best[0]!r}")
            tif = self.settings.post_only_tif_ms
            lv.expire_ns = now + int(tif * 1e6) if tif > 0 else 0
            lv.arrival_ns = lv.not_before = now
            self._emit([(EXECUTIONS, self._update(lv, now, "accepted"))])
            self._start_sweep()
            return None
        out: list[tuple[str, Message]] = []
        self._walk(lv, opposite, now, limit, TAKER, out)
        del self.live[oid]
        if lv.rem_native <= _EPS * max(1.0, lv.rem_native):
            out.append((EXECUTIONS, self._update(lv, now, "filled")))
        else:
            why = "no liquidity within the limit price" if limit is not None else "insufficient liquidity"
            self.counts["expired"] += 1
            out.append((EXECUTIONS, self._update(lv, now, "expired", f"ioc_remainder: {why}")))
        self._emit(out)
        return None

    def _walk(self, lv: _Live, side: Side, now: int, limit: float | None, liquidity: str,
              out: list[tuple[str, Message]], at_px: float | None = None) -> None:
        """Take liquidity from ``side`` (asks for a buy) up to ``limit``; fills at the
        level's price, or at ``at_px`` for a resting order filled by trades through it."""
        o, inst = lv.order, lv.inst
        assert inst is not None
        buy = o.side == BUY
        is_ask = buy
        taken = self._taken.setdefault((o.venue, o.venue_symbol), {})
        for key in [k for k, (seen, _) in taken.items() if k[0] == is_ask and side.levels.get(k[1]) != seen]:
            del taken[key]  # the venue reported a new size for that level
        sign, levels = side.sign, side.levels
        for k in side.keys:  # the book is not changed while we walk it: no copy
            if lv.rem_native <= 0.0:
                break
            px = k * sign
            if limit is not None and (px > limit if buy else px < limit):
                break
            if at_px is not None and (px >= at_px if buy else px <= at_px):
                break  # only liquidity strictly through the resting price
            size = levels[px]
            mark = taken.get((is_ask, px))
            avail = size - mark[1] if mark is not None else size
            if avail <= 0.0:
                continue
            fill_px = px if at_px is None else at_px
            level_npx = inst.native_px(px)
            take = floor_lot(min(lv.rem_native, inst.native_qty(avail, level_npx)), inst.lot_size)
            if take <= 0.0:
                continue
            base = inst.qty(take, inst.native_px(fill_px))
            taken[(is_ask, px)] = (size, (mark[1] if mark is not None else 0.0) + inst.qty(take, level_npx))
            lv.rem_native = max(0.0, lv.rem_native - take)
            out.append((EXECUTIONS, self._fill(lv, now, base, fill_px, liquidity)))

    def _fill(self, lv: _Live, now: int, qty: float, px: float, liquidity: str) -> Fill:
        o, inst = lv.order, lv.inst
        assert inst is not None
        rate = self.fee_rate(inst, liquidity)
        fee = qty * rate if inst.inverse else qty * px * rate
        lv.fills += 1
        lv.filled += qty
        lv.notional += qty * px
        self.counts["fills"] += 1
        return Fill(id=f"{o.id}-{lv.fills}", ts_ns=now, venue=o.venue, symbol=o.symbol, venue_symbol=o.venue_symbol,
                    side=o.side, qty=qty, px=px, fee=fee, fee_asset=inst.settle, liquidity=liquidity, order_id=o.id,
                    intent_id=o.intent_id, strategy=o.strategy)

    def fee_rate(self, inst: Instrument, liquidity: str) -> float:
        table = self.settings.taker_fee if liquidity == TAKER else self.settings.maker_fee
        default = inst.taker_fee if liquidity == TAKER else inst.maker_fee
        return table.get(f"{inst.venue}:{inst.venue_symbol}", table.get(inst.venue, default))

    # -- resting post-only orders ---------------------------------------------------------
    # Resting orders are looked at together on a grid of engine time (multiples of
    # resting_check_ms), oldest first: the same times and the same order in a run and in
    # a run restored from its journal.
    def _start_sweep(self) -> None:
        if self._sweeping:
            return
        self._sweeping = True
        step = max(1, int(self.settings.resting_check_ms * 1e6))
        self.view.call_at((self.view.now_ns // step + 1) * step, self._sweep)

    def _sweep(self, now: int) -> None:
        resting = sorted((lv for lv in self.live.values() if lv.arrived), key=lambda lv: (lv.arrival_ns, lv.order.id))
        for lv in resting:
            if now > lv.not_before:
                self._check(lv, now)
        self._sweeping = False
        if any(lv.arrived for lv in self.live.values()):
            self._start_sweep()

    def _check(self, lv: _Live, now: int) -> None:
        o = lv.order
        if lv.expire_ns and now >= lv.expire_ns:
            del self.live[o.id]
            self.counts["expired"] += 1
            self._emit([(EXECUTIONS, self._update(lv, now, "expired", "post_only_tif: time in force elapsed"))])
            return
        sb = self.view.book(o.venue, o.venue_symbol)
        if (lv.inst is None or sb is None or sb.state != SYNCED or self.view.is_stale(o.venue, o.venue_symbol)
                or sb.book.crossed()):
            return
        out: list[tuple[str, Message]] = []
        opposite = sb.book.asks if o.side == BUY else sb.book.bids
        self._walk(lv, opposite, now, None, MAKER, out, at_px=o.limit_px)
        if out:
            if lv.rem_native <= _EPS * max(1.0, lv.rem_native):
                del self.live[o.id]
                out.append((EXECUTIONS, self._update(lv, now, "filled")))
            else:
                out.append((EXECUTIONS, self._update(lv, now, "partially_filled")))
            self._emit(out)

    def _cancel_arrives(self, c: CancelOrder, now: int) -> None:
        lv = self.live.pop(c.order_id, None)
        if lv is None:
            self.counts["cancel_unknown"] += 1
            log.warning("cancel for %s on %s: Unknown order sent (not open)", c.order_id, c.venue)
            return
        self.counts["canceled"] += 1
        self._emit([(EXECUTIONS, self._update(lv, now, "canceled", "canceled: canceled by request"))])

    # -- output --------------------------------------------------------------------------
    def _reject(self, lv: _Live, now: int, key: str, detail: str = "") -> None:
        self.live.pop(lv.order.id, None)
        self.rejections[key] += 1
        text = f"{key}: {REASONS[key]}" + (f" ({detail})" if detail else "")
        self._emit([(EXECUTIONS, self._update(lv, now, "rejected", text))])

    def _update(self, lv: _Live, now: int, status: str, reason: str = "") -> OrderUpdate:
        o = lv.order
        avg = lv.notional / lv.filled if lv.filled > 0.0 else 0.0
        return OrderUpdate(order_id=o.id, intent_id=o.intent_id, ts_ns=now, venue=o.venue, symbol=o.symbol,
                           status=status, filled_qty=lv.filled, avg_px=avg, reason=reason)

    def _emit(self, items: list[tuple[str, Message]]) -> None:
        """Publish what one match produced together: a journaling bus writes it in one
        transaction before anyone reads it."""
        many = getattr(self.bus, "publish_many", None)
        if many is not None:
            many(items)
        else:
            for ch, msg in items:
                self.bus.publish(ch, msg)
