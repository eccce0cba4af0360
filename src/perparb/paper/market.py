"""The engine as trading sees it: ``EngineView`` implements ``execution.MarketView``.

Everything is read from the engine's own state on its clock (never the wall clock), so a
replay sees exactly what the live run saw. Staleness uses the scanner's limits
(``max_quote_age_ms`` and its per-venue overrides) and the venue's connection state: a
contract that the scanner would refuse to pair is one execution refuses to trade.
"""

from __future__ import annotations

from collections.abc import Callable

from perparb.engine import Engine
from perparb.execution import MarketView
from perparb.feeds.booksync import SyncedBook
from perparb.model import Funding, Instrument


class EngineView:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        s = engine.scanner.settings
        self._default_age_ns = int(s.max_quote_age_ms * 1e6)
        self._age_ns = {v: int(ms * 1e6) for v, ms in s.venue_max_age_ms.items()}

    @property
    def now_ns(self) -> int:
        return self.engine.now_ns

    def instrument(self, venue: str, venue_symbol: str) -> Instrument | None:
        adapter = self.engine.adapters.get(venue)
        if adapter is not None:
            inst = adapter.table.get(venue_symbol)
            if inst is not None:
                return inst
        return self.engine.registry.get(venue, venue_symbol)

    def book(self, venue: str, venue_symbol: str) -> SyncedBook | None:
        return self.engine.books.get((venue, venue_symbol))

    def funding(self, venue: str, venue_symbol: str) -> Funding | None:
        return self.engine.funding.get((venue, venue_symbol))

    def max_age_ns(self, venue: str) -> int:
        return self._age_ns.get(venue, self._default_age_ns)

    def is_stale(self, venue: str, venue_symbol: str) -> bool:
        st = self.engine.status.get(venue)
        if st is None or not st.connected:
            return True
        sb = self.engine.books.get((venue, venue_symbol))
        if sb is None:
            return True
        return self.engine.now_ns - sb.last_ns > self.max_age_ns(venue)

    def call_at(self, at_ns: int, callback: Callable[[int], None]) -> None:
        self.engine.call_at(at_ns, callback)

    def mark_px(self, venue: str, venue_symbol: str) -> float | None:
        """The venue's mark price where its funding feed publishes one, the book's mid otherwise."""
        return mark_px(self, venue, venue_symbol)


def mark_px(view: MarketView, venue: str, venue_symbol: str) -> float | None:
    """Mark price from any MarketView: funding state's ``mark_px``, else the book mid."""
    f = view.funding(venue, venue_symbol)
    if f is not None and f.mark_px:
        return float(f.mark_px)
    sb = view.book(venue, venue_symbol)
    if sb is None:
        return None
    bid, ask = sb.book.best_bid(), sb.book.best_ask()
    if bid is None or ask is None:
        return None
    return (bid[0] + ask[0]) / 2.0
