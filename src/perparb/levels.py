"""The per-level loops of book updates, compiled where possible.

``apply_side`` applies (price, size) changes to one side of an ``OrderBook`` (a dict price →
size plus the ascending list of ``price * sign``); ``apply_text`` applies the venue's
(price, size) strings to one side of a checksum text book (ascending keys and the text at
the same index); ``to_levels`` turns native rows into normalized levels
(``Instrument.levels``) and ``levels_ok`` is the one-pass plausibility test of a list of
levels (``perparb.validate``); ``crc32_text`` is the OKX/Bitget checksum over the top
levels' text (``perparb.feeds.booksync.crc32_interleaved``). ``perparb._levels`` is their C form, built on install with the machine's
compiler; where it is not built these Python loops run, with the same results on numbers
(``COMPILED`` says which one is in use; on a row that is not numbers the compiled
``to_levels`` raises TypeError at once, the Python one leaves it to the plausibility check).
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Sequence

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
    from perparb._levels import apply_side, apply_text, crc32_text, levels_ok, to_levels

    COMPILED = True
except ImportError:  # no compiler at install time: the same loops in Python
    apply_side, apply_text, to_levels, levels_ok = py_apply_side, py_apply_text, py_to_levels, py_levels_ok
    crc32_text = py_crc32_text
    COMPILED = False
