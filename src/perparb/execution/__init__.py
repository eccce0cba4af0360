"""Execution: one interface, two implementations (simulated, live).

An execution subscribes to the bus's ``orders`` channel for its venues and publishes
``OrderUpdate`` and ``Fill`` messages on ``executions``. It never decides what to trade:
strategies decide, risk approves, execution carries out.

Both implementations read the market through ``MarketView`` (the engine's validated
books, funding state, instruments and clock), which is state, not messaging: the bus is
how components talk, the view is what they look at.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from decimal import Decimal
from typing import Protocol

import msgspec

from perparb.bus.messages import CancelOrder, Order
from perparb.feeds.booksync import SyncedBook
from perparb.model import Funding, Instrument


class MarketView(Protocol):
    """Read-only access to what the engine knows, on the engine clock."""

    @property
    def now_ns(self) -> int: ...

    def instrument(self, venue: str, venue_symbol: str) -> Instrument | None: ...

    def book(self, venue: str, venue_symbol: str) -> SyncedBook | None: ...

    def funding(self, venue: str, venue_symbol: str) -> Funding | None: ...

    def is_stale(self, venue: str, venue_symbol: str) -> bool:
        """True when the contract's data is older than the staleness limit or its venue is
        disconnected."""
        ...

    def call_at(self, at_ns: int, callback: Callable[[int], None]) -> None:
        """Run ``callback(at_ns)`` once engine time reaches ``at_ns`` (before any market
        data received after it is applied)."""
        ...


class Execution(Protocol):
    venues: frozenset[str]  # the venues this execution serves

    def submit(self, order: Order) -> None: ...

    def cancel(self, cancel: CancelOrder) -> None: ...


class OpenOrder(msgspec.Struct, kw_only=True):
    """An order that was sent and is not finished, as the journal knows it (for restore).

    ``status``: ``sent`` (not yet at the venue), ``accepted`` or ``partially_filled``
    (resting). ``fills`` is how many fills it has had, so fill ids continue without a gap.
    """

    order: Order
    status: str = "sent"
    filled_qty: float = 0.0
    avg_px: float = 0.0
    fills: int = 0
    last_ts_ns: int = 0  # its last journaled event: a restored order does not trade again before it


_EPS = 1e-9

# Rejections both executions give before an order reaches a venue, with the venue-style text.
ORDER_REASONS = {
    "unknown_symbol": "Invalid symbol.",
    "bad_order": "Illegal parameter.",
    "lot_size": "Quantity is below the lot size after rounding.",
    "min_qty": "Quantity less than the minimum order quantity.",
}


def floor_lot(native: float, lot: float) -> float:
    """``native`` rounded down to a whole number of lots (exactly, so 0.3 lots of 0.1 stay 0.3)."""
    if lot <= 0.0:
        return native
    return float(Decimal(math.floor(native / lot + _EPS)) * Decimal(repr(lot)))
