"""The risk engine's own running view of positions, in-flight orders and equity.

Floats, folded from the bus (fills, order updates, funding payments, transfers): risk
needs an answer on every intent without a database round trip. The ledger stays the
exact record; this is the fast estimate limits are checked against. Amounts in coin
(inverse contracts' fees and funding) are converted at the contract's mid when booked,
so equity is one USD-equivalent figure per venue.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from perparb.bus.messages import BUY, Fill, FundingPayment, Order, OrderUpdate, Transfer

Key = tuple[str, str]  # (venue, venue_symbol)
TERMINAL = frozenset({"filled", "rejected", "canceled", "expired"})
STABLE = frozenset({"USDT", "USDC", "USD"})
DEPOSIT = "deposit:"


@dataclass
class Position:
    venue: str
    symbol: str
    venue_symbol: str
    asset: str
    qty: float = 0.0  # signed base units
    avg_px: float = 0.0


@dataclass
class Pending:
    order: Order
    remaining: float  # base units not yet filled

    @property
    def signed(self) -> float:
        return self.remaining if self.order.side == BUY else -self.remaining


class Exposure:
    def __init__(self, collateral: dict[str, float], mid: Callable[[str, str], float | None]) -> None:
        self.start_cash = sum(v for a, v in collateral.items() if a in STABLE)
        self.mid = mid
        self.positions: dict[Key, Position] = {}
        self.pending: dict[str, Pending] = {}
        self.cash: dict[str, float] = {}  # venue -> realized PnL - fees + funding + transfers (USD-eq)
        self.fees = 0.0
        self.funding = 0.0
        self.realized = 0.0

    # -- folding --------------------------------------------------------------------------
    def on_order(self, o: Order) -> None:
        self.pending[o.id] = Pending(o, o.qty)

    def on_update(self, u: OrderUpdate) -> None:
        if u.status in TERMINAL:
            self.pending.pop(u.order_id, None)

    def on_fill(self, f: Fill) -> None:
        p = self.pending.get(f.order_id)
        if p is not None:
            p.remaining = max(0.0, p.remaining - f.qty)
        key = (f.venue, f.venue_symbol)
        pos = self.positions.get(key)
        if pos is None:
            asset = f.symbol.split("/")[0]
            pos = self.positions[key] = Position(f.venue, f.symbol, f.venue_symbol, asset)
        signed = f.qty if f.side == BUY else -f.qty
        realized = 0.0
        if pos.qty == 0.0 or (pos.qty > 0.0) == (signed > 0.0):
            total = pos.qty + signed
            pos.avg_px = (pos.avg_px * abs(pos.qty) + f.px * abs(signed)) / abs(total)
            pos.qty = total
        else:
            closed = min(abs(signed), abs(pos.qty))
            realized = closed * (f.px - pos.avg_px) * (1.0 if pos.qty > 0.0 else -1.0)
            rest = pos.qty + signed
            if abs(rest) <= 1e-12 * max(1.0, abs(pos.qty)):
                pos.qty, pos.avg_px = 0.0, 0.0
            elif (rest > 0.0) != (pos.qty > 0.0):  # flipped through zero: the rest opens at this price
                pos.qty, pos.avg_px = rest, f.px
            else:
                pos.qty = rest
        fee = f.fee if f.fee_asset in STABLE else f.fee * f.px
        self.realized += realized
        self.fees += fee
        self.cash[f.venue] = self.cash.get(f.venue, 0.0) + realized - fee

    def on_funding(self, p: FundingPayment) -> None:
        amount = p.amount if p.asset in STABLE else p.amount * p.mark_px
        self.funding += amount
        self.cash[p.venue] = self.cash.get(p.venue, 0.0) + amount

    def on_transfer(self, t: Transfer) -> None:
        # The opening deposits (ids ``deposit:<venue>:<asset>``) are the configured collateral,
        # which every account already starts with here.
        if t.asset in STABLE and not t.id.startswith(DEPOSIT):
            self.cash[t.venue] = self.cash.get(t.venue, 0.0) + t.amount

    # -- reading --------------------------------------------------------------------------
    def px(self, venue: str, venue_symbol: str, fallback: float = 0.0) -> float:
        m = self.mid(venue, venue_symbol)
        return m if m is not None else fallback

    def unrealized(self, venue: str | None = None) -> float:
        total = 0.0
        for (v, vs), pos in self.positions.items():
            if pos.qty and (venue is None or v == venue):
                total += pos.qty * (self.px(v, vs, pos.avg_px) - pos.avg_px)
        return total

    def venue_equity(self, venue: str) -> float:
        return self.start_cash + self.cash.get(venue, 0.0) + self.unrealized(venue)

    def venues(self) -> list[str]:
        return sorted({v for v, _ in self.positions} | set(self.cash))

    def equity(self, venues: list[str]) -> float:
        """Total over the given venue accounts (each starts with the configured collateral)."""
        return sum(self.venue_equity(v) for v in venues)

    def projected(self) -> dict[Key, tuple[Position, float]]:
        """Position per contract with every in-flight order assumed filled: (position, signed qty)."""
        out = {k: (p, p.qty) for k, p in self.positions.items()}
        for pend in self.pending.values():
            o = pend.order
            key = (o.venue, o.venue_symbol)
            pos, q = out.get(key, (None, 0.0))
            if pos is None:
                pos = Position(o.venue, o.symbol, o.venue_symbol, o.symbol.split("/")[0])
            out[key] = (pos, q + pend.signed)
        return out

    def open_positions(self) -> list[Position]:
        return [p for _, p in sorted(self.positions.items()) if p.qty != 0.0]
