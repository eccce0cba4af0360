"""Venue adapters register themselves here; the engine finds them by id, never by import."""

from __future__ import annotations

import importlib
import pkgutil
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from perparb.venues.base import Venue

_VENUES: dict[str, type[Venue]] = {}
_loaded = False


def register(cls: type[Venue]) -> type[Venue]:
    _VENUES[cls.id] = cls
    return cls


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in pkgutil.iter_modules(__path__):
        if mod.name != "base" and not mod.name.startswith("_"):
            importlib.import_module(f"{__name__}.{mod.name}")


def venue_class(venue_id: str) -> type[Venue]:
    _load()
    try:
        return _VENUES[venue_id]
    except KeyError:
        raise KeyError(f"unknown venue {venue_id!r}; known: {', '.join(sorted(_VENUES))}") from None


def venue_ids() -> list[str]:
    _load()
    return sorted(_VENUES)
