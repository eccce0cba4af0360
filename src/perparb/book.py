"""L2 order book in normalized units.

Each side is a dict price → size plus a sorted list of prices (bids stored negated, so
both lists ascend and the best level is element 0). Updates are O(log n) to find and a
memmove to insert or remove. Each side keeps its best level as an attribute
(``Side.best_level``), refreshed by every change, because the scanner reads the top of
every venue's book on each update of any of them.

The dict and the list must hold the same prices. A NaN price would break that (it equals
nothing, not even itself, and sorts nowhere), so inserting one raises ValueError before
either changes; the decode path rejects such messages long before they get here.
"""

from __future__ import annotations

from bisect import bisect_left, insort

from perparb.levels import apply_book
from perparb.model import Level


class Side:
    __slots__ = ("best_level", "keys", "levels", "sign")

    def __init__(self, is_bid: bool) -> None:
        self.sign = -1.0 if is_bid else 1.0
        self.levels: dict[float, float] = {}
        self.keys: list[float] = []
        self.best_level: Level | None = None

    def clear(self) -> None:
        self.levels.clear()
        self.keys.clear()
        self.best_level = None

    def refresh(self) -> None:
        """Re-read the best level after ``levels`` / ``keys`` changed."""
        keys = self.keys
        if keys:
            px = keys[0] * self.sign
            self.best_level = px, self.levels[px]
        else:
            self.best_level = None

    def set(self, px: float, qty: float) -> None:
        levels = self.levels
        if qty > 0.0:
            if px not in levels:
                if px != px:
                    raise ValueError("NaN price")
                insort(self.keys, px * self.sign)
            levels[px] = qty
        elif px in levels:
            del levels[px]
            keys = self.keys
            del keys[bisect_left(keys, px * self.sign)]
        self.refresh()

    def best(self) -> Level | None:
        return self.best_level

    def top(self, n: int) -> list[Level]:
        sign, levels = self.sign, self.levels
        return [(k * sign, levels[k * sign]) for k in self.keys[:n]]

    def __len__(self) -> int:
        return len(self.keys)


class OrderBook:
    __slots__ = ("asks", "bids")

    def __init__(self) -> None:
        self.bids = Side(True)
        self.asks = Side(False)

    def load(self, bids: list[Level], asks: list[Level]) -> None:
        self.bids.clear()
        self.asks.clear()
        self.apply(bids, asks)

    def apply(self, bids: list[Level], asks: list[Level]) -> None:
        # The per-level loop is the hot path of every book update (compiled: perparb.levels);
        # it refreshes both sides' best levels, also when a level no book can hold stops it
        # part way, so the top stays true.
        apply_book(self.bids, self.asks, bids, asks)

    def best_bid(self) -> Level | None:
        return self.bids.best_level

    def best_ask(self) -> Level | None:
        return self.asks.best_level

    def crossed(self) -> bool:
        if not self.bids.keys or not self.asks.keys:
            return False
        return -self.bids.keys[0] >= self.asks.keys[0]

    def clear(self) -> None:
        self.bids.clear()
        self.asks.clear()
