"""The instrument registry: the one place that knows what a venue contract is."""

from __future__ import annotations

from collections.abc import Iterable

from perparb.model import Instrument


class Registry:
    def __init__(self, instruments: Iterable[Instrument] = ()) -> None:
        self._by_venue: dict[str, dict[str, Instrument]] = {}
        self.add_many(instruments)

    def add(self, inst: Instrument) -> None:
        self._by_venue.setdefault(inst.venue, {})[inst.venue_symbol] = inst

    def add_many(self, instruments: Iterable[Instrument]) -> None:
        for inst in instruments:
            self.add(inst)

    def get(self, venue: str, venue_symbol: str) -> Instrument | None:
        table = self._by_venue.get(venue)
        return table.get(venue_symbol) if table else None

    def venue_table(self, venue: str) -> dict[str, Instrument]:
        """The live symbol table of one venue; parsers keep a reference for fast lookups."""
        return self._by_venue.setdefault(venue, {})

    def venues(self) -> list[str]:
        return sorted(self._by_venue)

    def all(self) -> list[Instrument]:
        return [i for v in sorted(self._by_venue) for _, i in sorted(self._by_venue[v].items())]

    def for_venue(self, venue: str) -> list[Instrument]:
        return [i for _, i in sorted(self._by_venue.get(venue, {}).items())]

    def by_asset(self, asset: str) -> list[Instrument]:
        return [i for i in self.all() if i.asset == asset]

    def select(self, venue: str, assets: Iterable[str], settle: str | None = "USDT",
               inverse: bool = False) -> list[Instrument]:
        """Active perpetuals of ``venue`` for ``assets``; one per asset, preferring ``settle``
        (or, with ``inverse``, the inverse contract where the asset has one)."""
        wanted = {a.upper() for a in assets}
        best: dict[str, Instrument] = {}

        def preferred(i: Instrument) -> bool:
            return i.inverse if inverse else i.settle == settle

        for inst in self.for_venue(venue):
            if inst.asset.upper() not in wanted or inst.status not in ("active", "derived"):
                continue
            cur = best.get(inst.asset)
            if cur is None or (preferred(inst) and not preferred(cur)):
                best[inst.asset] = inst
        return [best[a] for a in sorted(best)]

    def __len__(self) -> int:
        return sum(len(t) for t in self._by_venue.values())
