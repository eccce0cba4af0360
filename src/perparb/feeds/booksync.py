"""Book synchronization: one state machine for every venue family.

- ``rest_bridged`` (Binance, Gate, KuCoin, MEXC): diffs are buffered until a REST snapshot
  arrives; diffs that end before it are dropped, the first applied one must straddle it
  (``first_seq <= snapshot.seq + 1``, ``seq >= snapshot.seq``) and each later one must
  chain (``prev_seq``).
- ``in_stream`` (OKX, Bybit, Bitget, Deribit): the venue sends the snapshot in the stream;
  diffs before it are dropped, later ones must chain.

A break in the chain, a checksum mismatch or a crossed book marks the book invalid at
once and asks for a resync; an invalid book never feeds the scanner.

Checksums (OKX, Bitget) are computed over the levels exactly as the venue wrote them, so
a checksummed book also keeps those strings, keyed by native price; a message whose
checksum is 0 or absent is not checked.
"""

from __future__ import annotations

import zlib
from collections import deque
from collections.abc import Callable

from perparb.book import OrderBook
from perparb.levels import apply_book, apply_text, crc32_text
from perparb.model import BookDelta, BookSnapshot, TextLevels

# The venue's checksum of each side's text rows, best first; it reads the depth it covers.
Checksum = Callable[[list[tuple[str, str]], list[tuple[str, str]]], int]

SYNCED, RESYNCING, INVALID = "synced", "resyncing", "invalid"
MAX_BUFFER = 2000


def crc32_interleaved(bids: list[tuple[str, str]], asks: list[tuple[str, str]], depth: int = 25) -> int:
    """OKX/Bitget: CRC32 of ``bid1px:bid1sz:ask1px:ask1sz:...`` over the top ``depth``
    levels (the longer side continues alone), as a signed 32-bit integer."""
    return crc32_text(bids, asks, depth)


def py_crc32_interleaved(bids: list[tuple[str, str]], asks: list[tuple[str, str]], depth: int = 25) -> int:
    """``crc32_interleaved`` in Python: the fallback where perparb._levels is not built."""
    bids, asks = bids[:depth], asks[:depth]
    n = min(len(bids), len(asks))
    parts = [f"{bp}:{bs}:{ap}:{as_}" for (bp, bs), (ap, as_) in zip(bids, asks, strict=False)]
    parts += [f"{p}:{s}" for p, s in bids[n:] or asks[n:]]
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


class _TextSide:
    """One side of the venue's own level strings in price order, best first: ``keys`` are
    the native prices (bids negated, so both ascend) and ``rows`` the text at the same index,
    so the top levels are a slice."""

    __slots__ = ("keys", "rows", "sign")

    def __init__(self, is_bid: bool) -> None:
        self.sign = -1.0 if is_bid else 1.0
        self.keys: list[float] = []
        self.rows: list[tuple[str, str]] = []

    def apply(self, rows: list[tuple[str, str]]) -> None:
        apply_text(self.keys, self.rows, self.sign, rows)

    def top(self, n: int) -> list[tuple[str, str]]:
        return self.rows[:n]

    def clear(self) -> None:
        self.keys.clear()
        self.rows.clear()


class _TextBook:
    """The venue's own level strings, for checksums."""

    __slots__ = ("asks", "bids")

    def __init__(self) -> None:
        self.bids = _TextSide(True)
        self.asks = _TextSide(False)

    def apply(self, levels: TextLevels, reset: bool) -> None:
        b, a = self.bids, self.asks
        if reset:
            b.clear()
            a.clear()
        apply_text(b.keys, b.rows, -1.0, levels[0])
        apply_text(a.keys, a.rows, 1.0, levels[1])

    def top(self, n: int) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
        return self.bids.top(n), self.asks.top(n)


class SyncedBook:
    __slots__ = ("book", "bridge", "buffer", "checksum", "checksum_failures", "checksums_ok", "crossed", "family",
                 "gaps", "last_ns", "resyncs", "seq", "sides", "state", "text")

    def __init__(self, family: str, checksum: Checksum | None = None) -> None:
        self.family = family
        self.checksum = checksum
        self.text: _TextBook | None = None
        self.checksums_ok = 0
        self.book = OrderBook()
        # Both sides, for the one compiled call per delta that applies it, refreshes the
        # top of book and says whether the book crossed.
        self.sides = (self.book.bids, self.book.asks)
        self.state = RESYNCING
        self.seq = 0
        self.bridge = False  # the next delta must straddle the REST snapshot
        self.buffer: deque[BookDelta] = deque(maxlen=MAX_BUFFER)
        self.resyncs = 0
        self.gaps = 0
        self.checksum_failures = 0
        self.crossed = 0
        self.last_ns = 0

    def on_snapshot(self, ev: BookSnapshot) -> bool:
        """Load a snapshot; returns False if the book needs another resync."""
        try:
            self.book.load(ev.bids, ev.asks)
        except (TypeError, ValueError):  # levels no book can hold
            return self.invalidate()
        self.seq = ev.seq
        self.last_ns = ev.recv_ns
        self.state = SYNCED
        self.text = None
        if not self._verify(ev, reset=True):
            return False
        if self.family == "rest_bridged":
            self.bridge = True
            pending, self.buffer = self.buffer, deque(maxlen=MAX_BUFFER)
            for d in pending:
                if not self.on_delta(d):
                    return False
        return self._check()

    def on_delta(self, ev: BookDelta) -> bool:
        """Apply a delta; returns False when the book broke and must be resynchronized."""
        if self.state != SYNCED:
            if self.family == "rest_bridged":
                self.buffer.append(ev)
            return True
        if self.bridge:
            if ev.seq < self.seq:
                return True  # ended before the snapshot
            # Binance states U <= lastUpdateId; an event starting right after the snapshot
            # (U == lastUpdateId + 1, as a snapshot taken between events gives) bridges too.
            if ev.first_seq > self.seq + 1 and ev.prev_seq != self.seq:
                return self._break()
            self.bridge = False
        elif ev.prev_seq is not None and ev.prev_seq != self.seq:
            return self._break()
        bids, asks = self.sides
        try:
            crossed = apply_book(bids, asks, ev.bids, ev.asks)
        except (TypeError, ValueError):
            return self.invalidate()
        self.seq = ev.seq
        self.last_ns = ev.recv_ns
        if self.checksum is not None and not self._verify(ev, reset=False):
            return False
        if crossed:
            self.crossed += 1
            return self.invalidate()
        return True

    def _verify(self, ev: BookSnapshot | BookDelta, reset: bool) -> bool:
        if self.checksum is None:
            return True
        if ev.raw_levels is None:
            self.text = None  # the venue stopped sending checksums; stop comparing
            return True
        if self.text is None:
            if not reset:
                return True  # no checksummed snapshot to build on: nothing to compare
            self.text = _TextBook()
        text = self.text
        try:
            text.apply(ev.raw_levels, reset)
        except (TypeError, ValueError):  # level text that is not a number
            return self.invalidate()
        if not ev.checksum:
            return True
        if self.checksum(text.bids.rows, text.asks.rows) != ev.checksum:
            self.checksum_failures += 1
            return self.invalidate()
        self.checksums_ok += 1
        return True

    def _check(self) -> bool:
        if self.book.crossed():
            self.crossed += 1
            return self.invalidate()
        return True

    def _break(self) -> bool:
        self.gaps += 1
        return self.invalidate()

    def invalidate(self) -> bool:
        """Mark the book unusable until a new snapshot; always returns False."""
        self.state = INVALID
        self.resyncs += 1
        self.buffer.clear()
        self.book.clear()
        self.text = None
        return False

    def resyncing(self) -> None:
        """A resync was requested (or the connection restarted)."""
        self.state = RESYNCING
        self.buffer.clear()
