"""The per-level loops, compiled and in Python, against books written out by hand."""

from __future__ import annotations

import os
import random
import shutil

import pytest

from perparb import levels
from perparb.book import OrderBook

IMPLS = [pytest.param((levels.py_apply_side, levels.py_apply_text), id="python")]
if levels.COMPILED:
    IMPLS.append(pytest.param((levels.apply_side, levels.apply_text), id="compiled"))


def test_compiled_form_is_built_where_a_compiler_exists() -> None:
    # `pip install -e .` builds perparb._levels; only a machine without a C compiler runs Python alone.
    # CI installs from a fresh clone, so there it must be built; a working checkout installed
    # before the module existed needs `make setup` (or `pip install -e .`) once.
    if shutil.which("cc") is None and shutil.which("gcc") is None:
        pytest.skip("no C compiler on this machine")
    if not levels.COMPILED and os.environ.get("CI") != "true":
        pytest.skip("perparb._levels is not built in this checkout: run `make setup` or `pip install -e .`")
    assert levels.COMPILED


@pytest.mark.parametrize("impl", IMPLS)
def test_side_inserts_updates_and_removes(impl: tuple) -> None:
    apply_side, _ = impl
    book: dict[float, float] = {}
    keys: list[float] = []
    apply_side(book, keys, -1.0, [(10.0, 1.0), (9.0, 2.0), (11.0, 3.0)])  # bids: best (highest) first
    assert keys == [-11.0, -10.0, -9.0]
    assert book == {10.0: 1.0, 9.0: 2.0, 11.0: 3.0}
    apply_side(book, keys, -1.0, [(10.0, 0.0), (12.0, 0.0), (9.0, 5.0)])  # removing an absent level is a no-op
    assert keys == [-11.0, -9.0]
    assert book == {11.0: 3.0, 9.0: 5.0}
    asks: dict[float, float] = {}
    akeys: list[float] = []
    apply_side(asks, akeys, 1.0, [[3.5, 1.0], [2.5, 1.0]])  # decoded lists work as pairs too
    assert akeys == [2.5, 3.5]


@pytest.mark.parametrize("impl", IMPLS)
def test_side_refuses_a_nan_price(impl: tuple) -> None:
    apply_side, _ = impl
    book: dict[float, float] = {}
    keys: list[float] = []
    with pytest.raises(ValueError):
        apply_side(book, keys, 1.0, [(float("nan"), 1.0)])
    assert keys == []
    assert book == {}


@pytest.mark.parametrize("impl", IMPLS)
def test_text_side_keeps_the_venue_text_in_price_order(impl: tuple) -> None:
    _, apply_text = impl
    keys: list[float] = []
    texts: list[tuple[str, str]] = []
    apply_text(keys, texts, -1.0, [("10.50", "1"), ("9.9", "2"), ("11", "3")])
    assert texts == [("11", "3"), ("10.50", "1"), ("9.9", "2")]
    # the same price written another way replaces the text; size "0" removes; absent removal ignored
    apply_text(keys, texts, -1.0, [("10.5", "4"), ("11", "0.0"), ("8", "0")])
    assert texts == [("10.5", "4"), ("9.9", "2")]
    assert keys == [-10.5, -9.9]
    with pytest.raises(ValueError):
        apply_text(keys, texts, -1.0, [("nan", "1")])
    with pytest.raises(ValueError):
        apply_text(keys, texts, -1.0, [("1.0", "x")])


@pytest.mark.skipif(not levels.COMPILED, reason="compiled form not built")
def test_compiled_and_python_agree_on_a_long_random_session() -> None:
    rng = random.Random(7)
    sides = [({}, []), ({}, [])]
    texts = [([], []), ([], [])]
    prices = [round(100 + i * 0.5, 1) for i in range(60)]
    for _ in range(3000):
        changes = [(rng.choice(prices), rng.choice([0.0, 0.0, rng.uniform(0.1, 5)])) for _ in range(rng.randint(1, 8))]
        text_changes = [(f"{p:.1f}", "0" if q == 0.0 else f"{q:.4f}") for p, q in changes]
        levels.py_apply_side(sides[0][0], sides[0][1], -1.0, changes)
        levels.apply_side(sides[1][0], sides[1][1], -1.0, changes)
        levels.py_apply_text(texts[0][0], texts[0][1], 1.0, text_changes)
        levels.apply_text(texts[1][0], texts[1][1], 1.0, text_changes)
    assert sides[0] == sides[1]
    assert texts[0] == texts[1]
    assert sides[0][1] == sorted(-p for p in sides[0][0])


def test_order_book_reads_best_levels_with_either_form(monkeypatch: pytest.MonkeyPatch) -> None:
    for impl in (levels.py_apply_book, levels.apply_book):
        monkeypatch.setattr("perparb.book.apply_book", impl)
        book = OrderBook()
        book.load([(99.0, 1.0), (100.0, 2.0)], [(101.0, 3.0), (102.0, 4.0)])
        book.apply([(100.0, 0.0)], [(100.5, 1.5)])
        assert book.best_bid() == (99.0, 1.0)
        assert book.best_ask() == (100.5, 1.5)
        assert book.bids.top(5) == [(99.0, 1.0)]
        assert not book.crossed()


CONVERT = [pytest.param(levels.py_to_levels, id="python")]
OK = [pytest.param(levels.py_levels_ok, id="python")]
if levels.COMPILED:
    CONVERT.append(pytest.param(levels.to_levels, id="compiled"))
    OK.append(pytest.param(levels.levels_ok, id="compiled"))


@pytest.mark.parametrize("to_levels", CONVERT)
def test_native_rows_to_levels(to_levels) -> None:
    # inverse: 10 contracts of 100 USD at 4.0 are 250 coins; a zero price carries nothing
    assert to_levels([[4.0, 10.0, 0.0, 2.0], (0.0, 3.0)], 1.0, 100.0, True) == [(4.0, 250.0), (0.0, 0.0)]
    # linear, 1000-unit multiple: price per one unit / 1000, 2 contracts of 0.5 * 1000 units
    assert to_levels([[2500.0, 2.0]], 1000.0, 0.5, False) == [(2.5, 1000.0)]
    assert to_levels([(7.25, 3.0)], 1.0, 0.1, False) == [(7.25, 3.0 * 0.1)]
    assert to_levels([], 1.0, 1.0, False) == []


@pytest.mark.parametrize("levels_ok", OK)
def test_levels_ok_accepts_only_finite_positive_prices_and_sizes(levels_ok) -> None:
    assert levels_ok([(1.0, 0.0), (2.5, 3.0)])
    assert levels_ok([])
    inf, nan = float("inf"), float("nan")
    for bad in ([(0.0, 1.0)], [(-1.0, 1.0)], [(inf, 1.0)], [(nan, 1.0)], [(1.0, -0.5)], [(1.0, inf)],
                [(1.0, nan)], [(1.0, 2.0), (1.0, 2.0, 3.0)], [("1.0", 2.0)]):
        assert not levels_ok(bad), bad


@pytest.mark.parametrize("impl", IMPLS)
def test_text_prices_read_as_python_reads_them(impl: tuple) -> None:
    _, apply_text = impl
    texts_in = ["1.5", "1.", ".25", "1_000", "1e2", " 7 ", "0.30000000000000004", "123456789.123456789"]
    keys: list[float] = []
    texts: list[tuple[str, str]] = []
    apply_text(keys, texts, 1.0, [(t, "1") for t in texts_in])
    assert keys == sorted(float(t) for t in texts_in)
    # sizes: "0.000" removes, "-1" is not positive either, "0.0001" keeps
    apply_text(keys, texts, 1.0, [("1.5", "0.000"), ("1e2", "-1"), (".25", "0.0001")])
    assert keys == sorted(float(t) for t in texts_in if t not in ("1.5", "1e2"))
    for bad in ("1.2.3", "", "-", "abc"):
        with pytest.raises(ValueError):
            apply_text(keys, texts, 1.0, [(bad, "1")])
        with pytest.raises(ValueError):
            apply_text(keys, texts, 1.0, [("5", bad)])


def test_checksum_text_crc_compiled_and_python_agree_with_zlib() -> None:
    import zlib

    from perparb.feeds.booksync import py_crc32_interleaved

    rng = random.Random(3)
    impls = [py_crc32_interleaved] + ([levels.crc32_text] if levels.COMPILED else [])
    for _ in range(200):
        bids = [(f"{100 - i * 0.1:.1f}", f"{rng.uniform(0, 9):.3f}") for i in range(rng.randint(0, 40))]
        asks = [(f"{101 + i * 0.1:.1f}", str(rng.randint(1, 500))) for i in range(rng.randint(0, 40))]
        parts = []
        for i in range(25):
            if i < len(bids):
                parts += bids[i]
            if i < len(asks):
                parts += asks[i]
        crc = zlib.crc32(":".join(parts).encode())
        expected = crc - (1 << 32) if crc >= 1 << 31 else crc
        for impl in impls:
            assert impl(bids, asks, 25) == expected


BOOK = [pytest.param(levels.py_apply_book, id="python")]
TEXT_LEVELS = [pytest.param(levels.py_text_levels, id="python")]
if levels.COMPILED:
    BOOK.append(pytest.param(levels.apply_book, id="compiled"))
    TEXT_LEVELS.append(pytest.param(levels.text_levels, id="compiled"))


@pytest.mark.parametrize("apply_book", BOOK)
def test_book_applies_both_sides_keeps_the_top_and_says_when_it_crossed(apply_book) -> None:
    book = OrderBook()
    b, a = book.bids, book.asks
    assert apply_book(b, a, [(99.0, 1.0), (100.0, 2.0)], [(101.0, 3.0)]) is False
    assert (b.keys, a.keys, b.levels, a.levels) == ([-100.0, -99.0], [101.0], {99.0: 1.0, 100.0: 2.0}, {101.0: 3.0})
    assert (b.best_level, a.best_level) == ((100.0, 2.0), (101.0, 3.0))
    assert apply_book(b, a, [], []) is False
    assert apply_book(b, a, [(101.0, 1.0)], []) is True  # bid at the ask: crossed
    assert b.best_level == (101.0, 1.0)
    assert apply_book(b, a, [(101.0, 0.0)], [(101.0, 0.0), (102.0, 1.0)]) is False
    assert (b.keys, a.keys, b.best_level, a.best_level) == ([-100.0, -99.0], [102.0], (100.0, 2.0), (102.0, 1.0))
    assert apply_book(b, a, [], [(100.0, 1.0)]) is True  # ask at the bid: crossed
    assert apply_book(b, a, [], [(100.0, 0.0)]) is False
    assert apply_book(b, a, [(100.0, 0.0), (99.0, 0.0)], []) is False  # one side empty
    assert (b.best_level, a.best_level) == (None, (102.0, 1.0))
    # a NaN price stops the loop part way; what was applied before it shows on top
    with pytest.raises(ValueError):
        apply_book(b, a, [(98.0, 1.0)], [(101.5, 2.0), (float("nan"), 1.0)])
    assert (b.best_level, a.best_level) == ((98.0, 1.0), (101.5, 2.0))


@pytest.mark.parametrize("text_levels", TEXT_LEVELS)
def test_text_rows_read_once_into_levels_and_text(text_levels) -> None:
    # OKX rows carry two more fields; inverse: 10 contracts of 100 USD at 4.0 are 250 coins
    lv, tx = text_levels([["4.0", "10", "0", "2"], ["5", "0"]], 1.0, 100.0, True)
    assert lv == [(4.0, 250.0), (5.0, 0.0)]
    assert tx == [("4.0", "10"), ("5", "0")]
    # linear, 1000-unit multiple: price per one unit / 1000, 2 contracts of 0.5 * 1000 units
    assert text_levels([["2500", "2"]], 1000.0, 0.5, False) == ([(2.5, 1000.0)], [("2500", "2")])
    assert text_levels([("7.25", "3")], 1.0, 0.1, False)[0] == [(7.25, 3.0 * 0.1)]
    assert text_levels([], 1.0, 1.0, False) == ([], [])
    for bad in ([["abc", "1"]], [["1", ""]], [["1"]]):
        with pytest.raises((ValueError, IndexError)):
            text_levels(bad, 1.0, 1.0, False)


def test_compiled_text_numbers_are_exactly_pythons_float() -> None:
    # The compiled reader divides the digits by a power of ten where both are exact
    # doubles; everywhere else it defers to float(). Either way it must be float(text).
    if not levels.COMPILED:
        pytest.skip("compiled form not built")
    rng = random.Random(11)
    texts = ["0", "-0", "0.0", "5.", ".5", "-1.25", "9007199254740992", "9007199254740993", "0.1", "0.3",
             "123456789012345678", "1." + "0" * 22 + "1", "0." + "0" * 21 + "7", "0." + "0" * 22 + "7",
             "99999999999999999999.5", "1e5", "-.5", "00012.3400"]
    for _ in range(20000):
        whole = str(rng.randint(0, 10 ** rng.randint(0, 12)))
        frac = "".join(rng.choice("0123456789") for _ in range(rng.randint(0, 12)))
        texts.append(f"{rng.choice(['', '-'])}{whole}.{frac}" if frac or rng.random() < 0.2 else whole)
    rows = [(t, "1") for t in texts]
    got, _ = levels.text_levels(rows, 1.0, 1.0, False)
    for t, (px, _qty) in zip(texts, got, strict=True):
        want = float(t)
        assert px == want and str(px) == str(want), t  # also the sign of zero


OBJ = [pytest.param(levels.py_obj_levels, id="python")]
IDS = [pytest.param(levels.py_id_rows, id="python")]
if levels.COMPILED:
    OBJ.append(pytest.param(levels.obj_levels, id="compiled"))
    IDS.append(pytest.param(levels.id_rows, id="compiled"))


class _PS:
    def __init__(self, p: float, s: float) -> None:
        self.p, self.s = p, s


class _Row:
    def __init__(self, id: int, side: str, size: float = 0.0, price: float | None = None) -> None:
        self.id, self.side, self.size, self.price = id, side, size, price


@pytest.mark.parametrize("obj_levels", OBJ)
def test_level_objects_to_levels(obj_levels) -> None:
    # Gate: 3 contracts of 0.01 coins at 25000; inverse: 10 contracts of 100 USD at 4.0 = 250 coins
    assert obj_levels([_PS(25000.0, 3.0), _PS(24999.5, 0.0)], 1.0, 0.01, False) == [(25000.0, 0.03), (24999.5, 0.0)]
    assert obj_levels([_PS(4.0, 10.0)], 1.0, 100.0, True) == [(4.0, 250.0)]
    assert obj_levels([_PS(2500.0, 2.0)], 1000.0, 0.5, False) == [(2.5, 1000.0)]
    assert obj_levels([], 1.0, 1.0, False) == []
    with pytest.raises(AttributeError):
        obj_levels([object()], 1.0, 1.0, False)


@pytest.mark.parametrize("id_rows", IDS)
def test_id_rows_keep_the_id_map_and_convert_per_side(id_rows) -> None:
    ids: dict[int, float] = {}
    # partial: rows in any order come out best first; XBTUSD-like inverse, 1 USD contracts
    partial = [_Row(1, "Sell", 200.0, 40000.0), _Row(2, "Buy", 400.0, 39990.0), _Row(3, "Sell", 100.0, 40010.0),
               _Row(4, "Buy", 80.0, 39995.0)]
    bids, asks = id_rows(partial, ids, 0, 1.0, 1.0, True)
    assert bids == [(39995.0, 80.0 / 39995.0), (39990.0, 400.0 / 39990.0)]
    assert asks == [(40000.0, 200.0 / 40000.0), (40010.0, 100.0 / 40010.0)]
    assert ids == {1: 40000.0, 2: 39990.0, 3: 40010.0, 4: 39995.0}
    # update without prices: the map gives them; an insert with a price records it
    assert id_rows([_Row(2, "Buy", 500.0), _Row(5, "Sell", 10.0, 40020.0)], ids, 2, 1.0, 1.0, True) == (
        [(39990.0, 500.0 / 39990.0)], [(40020.0, 10.0 / 40020.0)])
    assert ids[5] == 40020.0
    # delete: size 0 at the mapped price, and the id is forgotten
    assert id_rows([_Row(1, "Sell")], ids, 1, 1.0, 1.0, True) == ([], [(40000.0, 0.0)])
    assert 1 not in ids
    # an id never seen: None (an insert was lost), on update and on delete
    assert id_rows([_Row(99, "Buy", 1.0)], ids, 2, 1.0, 1.0, True) is None
    assert id_rows([_Row(98, "Sell")], ids, 1, 1.0, 1.0, True) is None
    with pytest.raises(ValueError):
        id_rows([_Row(7, "Buy", 1.0)], {}, 0, 1.0, 1.0, False)  # a partial row without a price
    with pytest.raises(ValueError):
        id_rows([_Row(2, "Both", 1.0, 1.0)], ids, 2, 1.0, 1.0, False)
    # linear with a multiple: price per unit / 1000, size * contract * 1000
    assert id_rows([_Row(8, "Buy", 2.0, 2500.0)], {}, 0, 1000.0, 0.5, False) == ([(2.5, 1000.0)], [])
