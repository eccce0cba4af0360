"""The per-level loops of book updates, compiled where possible.

``apply_side`` applies (price, size) changes to one side of an ``OrderBook`` (a dict price →
size plus the ascending list of ``price * sign``); ``apply_text`` applies the venue's
(price, size) strings to one side of a checksum text book (ascending keys and the text at
the same index). ``perparb._levels`` is their C form, built on install with the machine's
compiler; where it is not built these Python loops run, with exactly the same results
(``COMPILED`` says which one is in use).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Sequence


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


try:
    from perparb._levels import apply_side, apply_text

    COMPILED = True
except ImportError:  # no compiler at install time: the same loops in Python
    apply_side, apply_text = py_apply_side, py_apply_text
    COMPILED = False
