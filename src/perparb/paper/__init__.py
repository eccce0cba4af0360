"""Paper trading: the market as trading sees it, accounting, and the assembly of the pipeline."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from perparb.paper.assembly import Trading


def build_trading(*args: Any, **kwargs: Any) -> Trading:
    """See ``perparb.paper.assembly.build_trading`` (imported on use: ``perparb.paper.market``
    and the strategies are imported by modules the assembly itself imports)."""
    from perparb.paper.assembly import build_trading as build

    return build(*args, **kwargs)
