"""The per-level loops of book updates, compiled where possible.

``apply_side`` applies (price, size) changes to one side of an ``OrderBook`` (a dict price →
size plus the ascending list of ``price * sign``) and ``apply_book`` to both sides of one
at once, refreshing each side's ``best_level`` and saying whether the book is then crossed; ``apply_text`` applies the venue's (price, size)
strings to one side of a checksum text book (ascending keys and the text at the same
index). Native levels become normalized ones (``Instrument.levels``) in one pass:
``to_levels`` from rows of numbers, ``text_levels`` from the venue's text rows (reading
each number once and keeping the (price, size) strings for the checksum book),
``obj_levels`` from level objects (Gate's ``{"p", "s"}``) and ``id_rows`` from BitMEX's
orderBookL2 rows (level ids mapped to prices). ``levels_ok`` is the one-pass plausibility
test of a list of levels (``perparb.validate``); ``crc32_text`` the OKX/Bitget checksum over
the top levels' text (``perparb.feeds.booksync.crc32_interleaved``).

``perparb._levels`` is their C form, built on install with the machine's compiler; where
it is not built these Python loops run, with the same results on numbers (``COMPILED``
says which one is in use; on a row that is not numbers the compiled ``to_levels`` raises
TypeError at once, the Python one leaves it to the plausibility check).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Sequence
from typing import Any

INF = float("inf")


def py_apply_side(levels: dict[float, float], keys: list[float], sign: float,
                  changes: Sequence[Sequence[float]]) -> None:
    for px, qty in changes:
        if qty > 0.0:
            if px not in levels:
                if px != px:
                    raise ValueError("NaN price")
                insort(keys, px * sign)
            levels[px] = qty
        elif px in levels:
            del levels[px]
            del keys[bisect_left(keys, px * sign)]


def py_apply_book(bid_side: Any, ask_side: Any, bids: Sequence[Sequence[float]], asks: Sequence[Sequence[float]],
                  ) -> bool:
    try:
        py_apply_side(bid_side.levels, bid_side.keys, -1.0, bids)
        py_apply_side(ask_side.levels, ask_side.keys, 1.0, asks)
    finally:  # a level no book can hold stops the loop part way; the top stays true
        for side, sign in ((bid_side, -1.0), (ask_side, 1.0)):
            keys = side.keys
            if keys:
                px = keys[0] * sign
                side.best_level = px, side.levels[px]
            else:
                side.best_level = None
    bk, ak = bid_side.keys, ask_side.keys
    return bool(bk) and bool(ak) and -bk[0] >= ak[0]


def py_apply_text(keys: list[float], texts: list[tuple[str, str]], sign: float,
                  changes: Sequence[Sequence[str]]) -> None:
    for px_text, sz_text in changes:
        k = float(px_text) * sign
        i = bisect_left(keys, k)
        here = i < len(keys) and keys[i] == k
        if float(sz_text) > 0.0:
            if here:
                texts[i] = (px_text, sz_text)
            elif k != k:
                raise ValueError(f"NaN price {px_text!r}")
            else:
                keys.insert(i, k)
                texts.insert(i, (px_text, sz_text))
        elif here:
            del keys[i]
            del texts[i]


def py_to_levels(rows: Sequence[Sequence[float]], scale: float, contract_size: float,
                 inverse: bool) -> list[tuple[float, float]]:
    s, c = scale, contract_size
    if inverse:
        return [(r[0] / s, r[1] * c / r[0] if r[0] else 0.0) for r in rows]
    if s == 1.0:
        return [(r[0], r[1] * c) for r in rows]
    return [(r[0] / s, r[1] * c * s) for r in rows]


def py_text_levels(rows: Sequence[Sequence[str]], scale: float, contract_size: float, inverse: bool,
                   ) -> tuple[list[tuple[float, float]], list[tuple[str, str]]]:
    texts = [(r[0], r[1]) for r in rows]
    return py_to_levels([(float(p), float(q)) for p, q in texts], scale, contract_size, inverse), texts


def py_obj_levels(rows: Sequence[Any], scale: float, contract_size: float, inverse: bool,
                  ) -> list[tuple[float, float]]:
    return py_to_levels([(r.p, r.s) for r in rows], scale, contract_size, inverse)


def py_id_rows(rows: Sequence[Any], ids: dict[int, float], mode: int, scale: float, contract_size: float,
               inverse: bool) -> tuple[list[tuple[float, float]], list[tuple[float, float]]] | None:
    sides: tuple[list[tuple[float, float]], list[tuple[float, float]]] = ([], [])
    for r in rows:
        if r.side not in ("Buy", "Sell"):
            raise ValueError(f"unknown side {r.side!r}")
        price = r.price
        if mode == 0:
            if price is None:
                raise ValueError(f"partial row {r.id} has no price")
            ids[r.id] = price
        elif mode == 1:
            known = ids.pop(r.id, None)
            if price is None:
                price = known
        elif price is None:
            price = ids.get(r.id)
        else:
            ids[r.id] = price
        if price is None:
            return None  # an id never seen
        sides[r.side == "Sell"].append((price, 0.0 if mode == 1 else r.size))
    if mode == 0:
        sides[0].sort(reverse=True)
        sides[1].sort()
    return (py_to_levels(sides[0], scale, contract_size, inverse),
            py_to_levels(sides[1], scale, contract_size, inverse))


def py_levels_ok(levels: Sequence[Sequence[float]]) -> bool:
    for level in levels:
        if type(level) not in (tuple, list) or len(level) != 2:
            return False
        px, qty = level
        if type(px) is not float or type(qty) is not float or not (0.0 < px < INF and 0.0 <= qty < INF):
            return False
    return True


def py_crc32_text(bids: list[tuple[str, str]], asks: list[tuple[str, str]], depth: int) -> int:
    from perparb.feeds.booksync import py_crc32_interleaved  # the checksum's own module

    return py_crc32_interleaved(bids, asks, depth)


try:
    from perparb._levels import (
        apply_book,
        apply_side,
        apply_text,
        crc32_text,
        id_rows,
        levels_ok,
        obj_levels,
        text_levels,
        to_levels,
    )

    COMPILED = True
except ImportError:  # no compiler at install time: the same loops in Python
    apply_side, apply_text, to_levels, levels_ok = py_apply_side, py_apply_text, py_to_levels, py_levels_ok
    apply_book, text_levels, crc32_text = py_apply_book, py_text_levels, py_crc32_text
    obj_levels, id_rows = py_obj_levels, py_id_rows
    COMPILED = False
