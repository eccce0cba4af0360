"""What every strategy shares: the pair positions it holds, sizing, and the rules of entry
and exit bookkeeping.

A strategy is a pure reaction to opportunity events, fills and order updates, kill-switch
messages and the clock; it emits ``TradeIntent``s through its context and never calls a
venue. A position is a *pair*: a long leg and a short leg of equal base quantity, whose
quantities are followed from fills (including the unwinds and hedges the risk engine's
leg guard sends on its behalf).
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction

from perparb.bus.messages import BUY, IOC, MARKET, SELL, Fill, Leg, OpportunityEvent, TradeIntent
from perparb.execution import MarketView
from perparb.model import Instrument
from perparb.trading_settings import StrategySettings

log = logging.getLogger("perparb.strategies")

Resolve = Callable[[str, str], Instrument | None]  # (venue, canonical symbol) -> contract
MAX_CLOSE_ATTEMPTS = 5


@dataclass
class Context:
    view: MarketView
    resolve: Resolve
    emit: Callable[[TradeIntent], None]


@dataclass
class LegRef:
    inst: Instrument
    side: str  # the side of the opening order
    qty: float = 0.0  # signed base units held, from fills

    @property
    def key(self) -> tuple[str, str]:
        return (self.inst.venue, self.inst.venue_symbol)


@dataclass
class PairPosition:
    id: str  # the opening intent's id
    pair: str  # the opportunity id it was opened on (kind:asset:long venue:short venue)
    asset: str
    long: LegRef
    short: LegRef
    target_qty: float
    opened_ns: int
    entry_ref_bps: float  # spread: the mid gap at entry; funding: the basis at entry
    horizon_h: float = 0.0
    state: str = "opening"  # opening | open | closing | closed
    intents: list[str] = field(default_factory=list)
    open_orders: int = 2  # orders of the opening intent not finished yet
    close_orders: int = 0
    exit_reason: str = ""
    closed_ns: int = 0
    filled_any: bool = False
    close_attempts: int = 0

    def legs(self) -> tuple[LegRef, LegRef]:
        return self.long, self.short

    def flat(self, tol: float) -> bool:
        return abs(self.long.qty) <= tol and abs(self.short.qty) <= tol


def base_step(inst: Instrument) -> Fraction | None:
    """One lot in base units, exactly (None for inverse contracts, whose base lot moves with price)."""
    if inst.inverse or inst.lot_size <= 0.0:
        return None
    return Fraction(repr(inst.lot_size)) * Fraction(repr(inst.contract_size)) * Fraction(repr(inst.price_scale))


def _lcm(a: Fraction, b: Fraction) -> Fraction:
    return Fraction(math.lcm(a.numerator, b.numerator), math.gcd(a.denominator, b.denominator))


def pair_qty(a: Instrument, b: Instrument, qty: float, px_a: float, px_b: float) -> float:
    """The largest base quantity <= ``qty`` that both contracts can order as the same
    quantity: a multiple of both lots (their least common multiple), at least each minimum
    quantity and notional. An inverse leg trades whole USD contracts, so its base quantity
    is the nearest below at its price. 0 when no such quantity exists."""
    if not (qty > 0.0 and math.isfinite(qty)):
        return 0.0
    steps = [s for s in (base_step(a), base_step(b)) if s is not None]
    q = Fraction(qty)
    if steps:
        step = steps[0] if len(steps) == 1 else _lcm(steps[0], steps[1])
        q = (q // step) * step
    out = float(q)
    for inst, px in ((a, px_a), (b, px_b)):
        if inst.inverse and inst.lot_size > 0.0 and px > 0.0:
            contracts = math.floor(inst.native_qty(out, inst.native_px(px)) / inst.lot_size + 1e-9) * inst.lot_size
            out = min(out, inst.qty(contracts, inst.native_px(px)))
    for inst, px in ((a, px_a), (b, px_b)):
        native = inst.native_qty(out, inst.native_px(px))
        if out <= 0.0 or native < inst.min_qty * (1 - 1e-9) or out * px < inst.min_notional * (1 - 1e-9):
            return 0.0
    return out


def limit_px(inst: Instrument, px: float, side: str, slippage_bps: float) -> float:
    """An IOC limit ``slippage_bps`` beyond ``px``, on the contract's tick (away from the book)."""
    raw = inst.native_px(px * (1 + slippage_bps * 1e-4 if side == BUY else 1 - slippage_bps * 1e-4))
    tick = inst.tick_size
    if tick > 0.0:
        t = Fraction(repr(tick))
        n = Fraction(raw) / t
        raw = float((math.ceil(n) if side == BUY else math.floor(n)) * t)
    return raw / inst.price_scale


class Strategy:
    kind = ""

    def __init__(self, cfg: StrategySettings, ctx: Context) -> None:
        self.cfg = cfg
        self.name = cfg.name
        self.ctx = ctx
        self.positions: dict[str, PairPosition] = {}  # opening intent id -> position (not closed)
        self.closed: list[PairPosition] = []
        self.counts: Counter[str] = Counter()  # entries, exits by reason, skips by reason
        self.paused = False
        self._seq = 0
        self._last_exit: dict[str, int] = {}  # venue pair -> when a position there closed

    def restore_seq(self, n: int) -> None:
        self._seq = max(self._seq, n)

    # -- what subclasses implement --------------------------------------------------------
    def on_opportunity(self, ev: OpportunityEvent, now: int) -> None:
        raise NotImplementedError

    def exit_reason(self, pos: PairPosition, now: int) -> str | None:
        raise NotImplementedError

    # -- shared ----------------------------------------------------------------------------
    def mid(self, inst: Instrument) -> float | None:
        sb = self.ctx.view.book(inst.venue, inst.venue_symbol)
        if sb is None or self.ctx.view.is_stale(inst.venue, inst.venue_symbol):
            return None
        bid, ask = sb.book.best_bid(), sb.book.best_ask()
        return (bid[0] + ask[0]) / 2.0 if bid is not None and ask is not None else None

    def wants(self, asset: str, venues: tuple[str, str]) -> bool:
        c = self.cfg
        return (not c.assets or asset in c.assets) and (not c.venues or all(v in c.venues for v in venues))

    @staticmethod
    def venue_pair(asset: str, a: str, b: str) -> str:
        return f"{asset}:{min(a, b)}:{max(a, b)}"

    def can_enter(self, pair: str, now: int) -> str | None:
        """Why not (a counted reason), or None."""
        if self.paused:
            return "paused"
        if sum(p.state != "closed" for p in self.positions.values()) >= self.cfg.max_open:
            return "max_open"
        if any(self.venue_pair(p.asset, p.long.inst.venue, p.short.inst.venue) == pair
               for p in self.positions.values()):
            return "already_open"
        last = self._last_exit.get(pair)
        if last is not None and now - last < int(self.cfg.cooldown_s * 1e9):
            return "cooldown"
        return None

    def open_pair(self, now: int, opp_id: str, asset: str, long_inst: Instrument, short_inst: Instrument,
                  qty: float, px_long: float, px_short: float, ref_bps: float, reason: str,
                  horizon_h: float = 0.0) -> PairPosition | None:
        q = pair_qty(long_inst, short_inst, qty, px_long, px_short)
        if q <= 0.0:
            self.counts["skip_below_min_size"] += 1
            return None
        self._seq += 1
        iid = f"{self.name}-{self._seq}"
        pos = PairPosition(id=iid, pair=opp_id, asset=asset, long=LegRef(long_inst, BUY),
                           short=LegRef(short_inst, SELL), target_qty=q, opened_ns=now, entry_ref_bps=ref_bps,
                           horizon_h=horizon_h, intents=[iid])
        self.positions[iid] = pos
        self.counts["entries"] += 1
        legs = [self._leg(long_inst, BUY, q, px_long), self._leg(short_inst, SELL, q, px_short)]
        self.ctx.emit(TradeIntent(id=iid, ts_ns=now, strategy=self.name, action="open", asset=asset, legs=legs,
                                  opportunity_id=opp_id, reason=reason))
        return pos

    def _leg(self, inst: Instrument, side: str, qty: float, px: float, reduce_only: bool = False) -> Leg:
        if self.cfg.order_type == "ioc":
            return Leg(venue=inst.venue, symbol=inst.symbol, venue_symbol=inst.venue_symbol, side=side, qty=qty,
                       order_type=IOC, limit_px=limit_px(inst, px, side, self.cfg.slippage_bps),
                       reduce_only=reduce_only)
        return Leg(venue=inst.venue, symbol=inst.symbol, venue_symbol=inst.venue_symbol, side=side, qty=qty,
                   order_type=MARKET, reduce_only=reduce_only)

    def close_pair(self, pos: PairPosition, now: int, reason: str) -> None:
        legs = []
        for ref in pos.legs():
            if abs(ref.qty) > self.tolerance(pos):
                side = SELL if ref.qty > 0 else BUY
                px = self.mid(ref.inst) or 0.0
                legs.append(self._leg(ref.inst, side, abs(ref.qty), px, reduce_only=True))
        if not legs:
            self._closed(pos, now, reason)
            return
        if pos.close_attempts >= MAX_CLOSE_ATTEMPTS:
            # What is left cannot be closed (below the venue's minimum, say): stop asking every tick.
            log.warning("%s: %s could not be closed after %d attempts; left as it is (%s %+.10g, %s %+.10g)",
                        self.name, pos.id, pos.close_attempts, pos.long.inst.venue, pos.long.qty,
                        pos.short.inst.venue, pos.short.qty)
            pos.exit_reason = "close_failed"
            self._closed(pos, now, "close_failed")
            return
        pos.close_attempts += 1
        self._seq += 1
        iid = f"{self.name}-{self._seq}"
        pos.intents.append(iid)
        pos.state = "closing"
        pos.close_orders = len(legs)
        pos.exit_reason = reason
        self.ctx.emit(TradeIntent(id=iid, ts_ns=now, strategy=self.name, action="close", asset=pos.asset, legs=legs,
                                  opportunity_id=pos.pair, reason=reason))

    @staticmethod
    def tolerance(pos: PairPosition) -> float:
        return 1e-9 * max(pos.target_qty, 1e-12) + 0.5 * min(
            (float(s) for s in (base_step(pos.long.inst), base_step(pos.short.inst)) if s is not None),
            default=0.0)

    def _closed(self, pos: PairPosition, now: int, reason: str) -> None:
        pos.state = "closed"
        pos.exit_reason = pos.exit_reason or reason
        pos.closed_ns = now
        self.positions.pop(pos.id, None)
        self.closed.append(pos)
        if len(self.closed) > 1000:
            del self.closed[:100]
        self.counts[f"exit_{pos.exit_reason}"] += 1
        self._last_exit[self.venue_pair(pos.asset, pos.long.inst.venue, pos.short.inst.venue)] = now

    # -- events routed by the runner -------------------------------------------------------
    def on_fill(self, pos: PairPosition, f: Fill) -> None:
        signed = f.qty if f.side == BUY else -f.qty
        pos.filled_any = True
        for ref in pos.legs():
            if ref.key == (f.venue, f.venue_symbol):
                ref.qty += signed
                break

    def on_order_done(self, pos: PairPosition, intent_id: str, now: int) -> None:
        """An order of one of the position's own intents finished (filled, rejected, ...)."""
        if intent_id == pos.id and pos.state == "opening":
            pos.open_orders -= 1
            if pos.open_orders <= 0:
                pos.state = "open"
        elif pos.state == "closing" and intent_id == pos.intents[-1]:
            pos.close_orders -= 1
            if pos.close_orders <= 0:
                pos.state = "open"  # what did not close is retried on the clock
        self.settle(pos, now)

    def on_reject(self, pos: PairPosition, intent_id: str, now: int) -> None:
        if intent_id == pos.id:
            self.counts["entries_refused"] += 1
            pos.exit_reason = "refused"
            pos.open_orders = 0
            pos.state = "open"
        elif intent_id == pos.intents[-1] and pos.state == "closing":
            pos.state = "open"
        self.settle(pos, now)

    def settle(self, pos: PairPosition, now: int) -> None:
        """A position with nothing left on either leg (closed, refused or unwound) is done."""
        if pos.state != "opening" and pos.flat(self.tolerance(pos)):
            self._closed(pos, now, pos.exit_reason or ("unwound" if pos.filled_any else "unfilled"))

    def on_tick(self, now: int) -> None:
        for pos in list(self.positions.values()):
            if pos.state != "open" or self.paused:
                continue
            reason = self.exit_reason(pos, now)
            if reason is not None:
                self.close_pair(pos, now, reason)

    def on_flattened(self, now: int) -> None:
        """The risk engine is flattening everything: nothing here is held any more."""
        for pos in list(self.positions.values()):
            pos.exit_reason = "kill_switch"
            self._closed(pos, now, "kill_switch")

    def snapshot(self) -> dict[str, object]:
        return {"name": self.name, "kind": self.kind, "paused": self.paused,
                "open": [_pos_row(p) for p in self.positions.values()],
                "counts": dict(sorted(self.counts.items()))}


def _pos_row(p: PairPosition) -> dict[str, object]:
    return {"id": p.id, "pair": p.pair, "asset": p.asset, "state": p.state, "opened_ns": p.opened_ns,
            "long": {"venue": p.long.inst.venue, "symbol": p.long.inst.symbol, "qty": p.long.qty},
            "short": {"venue": p.short.inst.venue, "symbol": p.short.inst.symbol, "qty": p.short.qty}}
