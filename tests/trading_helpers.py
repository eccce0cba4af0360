"""A hand-driven MarketView for strategy and risk tests: books and funding set by the test,
timers run when the test moves the clock."""

from __future__ import annotations

import heapq
from collections.abc import Callable

from perparb.bus import CHANNELS, InProcessBus
from perparb.bus.messages import Message
from perparb.feeds.booksync import SyncedBook
from perparb.model import BookSnapshot, Funding, Instrument, Level


def inst(venue: str, asset: str = "BTC", **kw: object) -> Instrument:
    vs = kw.pop("venue_symbol", f"{asset}USDT")
    return Instrument(venue=venue, venue_symbol=str(vs), symbol=f"{asset}/USDT:USDT", asset=asset, quote="USDT",
                      settle="USDT", **kw)  # type: ignore[arg-type]


class FakeView:
    def __init__(self) -> None:
        self.now_ns = 0
        self.insts: dict[tuple[str, str], Instrument] = {}
        self.books: dict[tuple[str, str], SyncedBook] = {}
        self.fundings: dict[tuple[str, str], Funding] = {}
        self.stale: set[tuple[str, str]] = set()
        self._timers: list[tuple[int, int, Callable[[int], None]]] = []
        self._seq = 0

    def add(self, i: Instrument) -> Instrument:
        self.insts[(i.venue, i.venue_symbol)] = i
        return i

    def set_book(self, i: Instrument, bids: list[Level], asks: list[Level]) -> None:
        sb = self.books.get((i.venue, i.venue_symbol)) or SyncedBook("in_stream")
        sb.on_snapshot(BookSnapshot(venue=i.venue, symbol=i.symbol, venue_symbol=i.venue_symbol, bids=bids,
                                    asks=asks, ts_exchange_ns=self.now_ns, recv_ns=self.now_ns))
        self.books[(i.venue, i.venue_symbol)] = sb

    def set_funding(self, i: Instrument, rate: float, interval_h: float = 8.0, next_ns: int = 0,
                    mark: float | None = None) -> None:
        self.fundings[(i.venue, i.venue_symbol)] = Funding(
            venue=i.venue, symbol=i.symbol, venue_symbol=i.venue_symbol, rate=rate, interval_h=interval_h,
            next_funding_ns=next_ns, mark_px=mark, ts_exchange_ns=self.now_ns, recv_ns=self.now_ns)

    # -- MarketView ---------------------------------------------------------------------
    def instrument(self, venue: str, venue_symbol: str) -> Instrument | None:
        return self.insts.get((venue, venue_symbol))

    def book(self, venue: str, venue_symbol: str) -> SyncedBook | None:
        return self.books.get((venue, venue_symbol))

    def funding(self, venue: str, venue_symbol: str) -> Funding | None:
        return self.fundings.get((venue, venue_symbol))

    def is_stale(self, venue: str, venue_symbol: str) -> bool:
        return (venue, venue_symbol) in self.stale

    def call_at(self, at_ns: int, callback: Callable[[int], None]) -> None:
        self._seq += 1
        heapq.heappush(self._timers, (at_ns, self._seq, callback))

    def advance(self, t: int) -> None:
        while self._timers and self._timers[0][0] <= t:
            due, _, cb = heapq.heappop(self._timers)
            self.now_ns = max(self.now_ns, due)
            cb(due)
        self.now_ns = max(self.now_ns, t)


class Tape:
    """Records every message on every channel, in publish order."""

    def __init__(self, bus: InProcessBus) -> None:
        self.msgs: list[tuple[str, Message]] = []
        for ch in CHANNELS:
            bus.subscribe(ch, lambda m, ch=ch: self.msgs.append((ch, m)))  # type: ignore[misc]

    def of(self, kind: type) -> list:  # type: ignore[type-arg]
        return [m for _, m in self.msgs if isinstance(m, kind)]
