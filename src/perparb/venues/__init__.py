"""Venue adapters register themselves here; the engine finds them by id, never by import."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from perparb.venues.base import Venue

_VENUES: dict[str, type[Venue]] = {}
# Families of ids built on demand ("ccxt:" + a ccxt exchange id); not listed by venue_ids().
_FACTORIES: dict[str, Callable[[str], type[Venue]]] = {}
_MADE: dict[str, type[Venue]] = {}
_loaded = False
load_errors: dict[str, str] = {}


def register(cls: type[Venue]) -> type[Venue]:
    _VENUES[cls.id] = cls
    return cls


def register_factory(prefix: str, factory: Callable[[str], type[Venue]]) -> None:
    """Serve every id ``prefix + name`` with ``factory(name)`` (raising KeyError if unknown)."""
    _FACTORIES[prefix] = factory


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for mod in pkgutil.iter_modules(__path__):
        if mod.name != "base" and not mod.name.startswith("_"):
            try:
                importlib.import_module(f"{__name__}.{mod.name}")
            except Exception as exc:  # one broken venue module must not take the others down
                load_errors[mod.name] = f"{type(exc).__name__}: {exc}"
                logging.getLogger("perparb.venues").error("venue module %s failed to load: %s", mod.name, exc)


def venue_class(venue_id: str) -> type[Venue]:
    _load()
    cls = _VENUES.get(venue_id) or _MADE.get(venue_id)
    if cls is not None:
        return cls
    for prefix, factory in _FACTORIES.items():
        if venue_id.startswith(prefix):
            cls = _MADE[venue_id] = factory(venue_id[len(prefix):])
            return cls
    raise KeyError(f"unknown venue {venue_id!r}; known: {', '.join(sorted(_VENUES))}"
                   + "".join(f", {p}<name>" for p in sorted(_FACTORIES)))


def venue_ids() -> list[str]:
    _load()
    return sorted(_VENUES)
