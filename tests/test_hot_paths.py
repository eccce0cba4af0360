"""The fast forms of level conversion and checksum text books give the same answers as the
formulas written out here."""

from __future__ import annotations

import zlib

import pytest

from perparb.feeds.booksync import SyncedBook, crc32_interleaved
from perparb.model import BookDelta, BookSnapshot, Instrument


def _inst(**kw: object) -> Instrument:
    return Instrument(venue="x", venue_symbol="X", symbol="X/USDT:USDT", asset="X", quote="USDT", settle="USDT",
                      **kw)  # type: ignore[arg-type]


def test_levels_inverse_contracts_become_coins() -> None:
    inst = _inst(inverse=True, contract_size=100.0)
    # 10 contracts of 100 USD at 5.0 USD per coin are 200 coins; a zero price carries nothing
    assert inst.levels([[5.0, 10.0, 0.0, 3.0], [4.0, 0.0]]) == [(5.0, 200.0), (4.0, 0.0)]


def test_levels_linear_with_multiple_and_contract_size() -> None:
    inst = _inst(contract_size=0.01, price_scale=1000.0)
    # 1000PEPE-style: price per one PEPE is 12 / 1000; 3 contracts of 0.01 * 1000 PEPE are 30 PEPE
    (px, qty), = inst.levels([[12.0, 3.0]])
    assert px == pytest.approx(0.012)
    assert qty == pytest.approx(30.0)


def test_levels_plain_linear_keep_values_exactly() -> None:
    inst = _inst(contract_size=0.1)
    assert inst.levels([(7.5, 20.0)]) == [(7.5, 20.0 * 0.1)]


def test_crc32_interleaves_and_the_longer_side_continues() -> None:
    bids = [("3.1", "1"), ("3.0", "2"), ("2.9", "5")]
    asks = [("3.2", "4")]
    text = "3.1:1:3.2:4:3.0:2:2.9:5"
    expected = zlib.crc32(text.encode())
    expected = expected - (1 << 32) if expected >= 1 << 31 else expected
    assert crc32_interleaved(bids, asks) == expected
    # only the top `depth` levels of each side count
    assert crc32_interleaved(bids, asks, depth=1) == _signed(zlib.crc32(b"3.1:1:3.2:4"))


def _signed(crc: int) -> int:
    return crc - (1 << 32) if crc >= 1 << 31 else crc



def test_checksum_book_keeps_best_first_through_inserts_and_removals() -> None:
    sb = SyncedBook("in_stream", crc32_interleaved)
    snap_text = ([("10.0", "1"), ("9.5", "2")], [("10.5", "3"), ("11", "4")])
    snap = BookSnapshot(venue="x", symbol="X", venue_symbol="X", bids=[(10.0, 1.0), (9.5, 2.0)],
                        asks=[(10.5, 3.0), (11.0, 4.0)], raw_levels=snap_text,
                        checksum=_signed(zlib.crc32(b"10.0:1:10.5:3:9.5:2:11:4")), ts_exchange_ns=0, recv_ns=0)
    assert sb.on_snapshot(snap)
    # a better bid arrives, 9.5 leaves, a new ask between the two; the venue's text is kept as sent
    text = ([("10.2", "7"), ("9.5", "0")], [("10.75", "1")])
    expected = _signed(zlib.crc32(b"10.2:7:10.5:3:10.0:1:10.75:1:11:4"))
    delta = BookDelta(venue="x", symbol="X", venue_symbol="X", bids=[(10.2, 7.0), (9.5, 0.0)], asks=[(10.75, 1.0)],
                      raw_levels=text, checksum=expected, ts_exchange_ns=0, recv_ns=0)
    assert sb.on_delta(delta)
    assert sb.checksums_ok == 2
    # the same delta's text with a wrong checksum breaks the book
    bad = BookDelta(venue="x", symbol="X", venue_symbol="X", bids=[], asks=[(11.0, 0.0)],
                    raw_levels=([], [("11", "0")]), checksum=expected, ts_exchange_ns=0, recv_ns=0)
    assert not sb.on_delta(bad)
    assert sb.checksum_failures == 1
