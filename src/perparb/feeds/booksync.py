"""Book synchronization: one state machine for every venue family.

- ``rest_bridged`` (Binance, Gate, KuCoin, MEXC): diffs are buffered until a REST snapshot
  arrives; diffs that end before it are dropped, the first applied one must straddle it
  (``first_seq <= snapshot.seq + 1``, ``seq >= snapshot.seq``) and each later one must
  chain (``prev_seq``).
- ``in_stream`` (OKX, Bybit, Bitget, Deribit): the venue sends the snapshot in the stream;
  diffs before it are dropped, later ones must chain.

A break in the chain or a crossed book marks the book invalid at once and asks for a
resync; an invalid book never feeds the scanner.
"""

from __future__ import annotations

from collections import deque

from perparb.book import OrderBook
from perparb.model import BookDelta, BookSnapshot

SYNCED, RESYNCING, INVALID = "synced", "resyncing", "invalid"
MAX_BUFFER = 2000


class SyncedBook:
    __slots__ = ("book", "bridge", "buffer", "checksum_failures", "crossed", "family", "gaps", "last_ns",
                 "resyncs", "seq", "state")

    def __init__(self, family: str) -> None:
        self.family = family
        self.book = OrderBook()
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
        self.book.load(ev.bids, ev.asks)
        self.seq = ev.seq
        self.last_ns = ev.recv_ns
        self.state = SYNCED
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
        self.book.apply(ev.bids, ev.asks)
        self.seq = ev.seq
        self.last_ns = ev.recv_ns
        return self._check()

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
        return False

    def resyncing(self) -> None:
        """A resync was requested (or the connection restarted)."""
        self.state = RESYNCING
        self.buffer.clear()
