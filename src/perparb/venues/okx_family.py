"""What OKX and Bitget share.

Both push ``{"arg": {"channel", "instId", ...}, "action": "snapshot" | "update", "data":
[...]}``, take ``{"op": "subscribe" | "unsubscribe", "args": [...]}``, keep a connection
alive with the text ``ping`` (answered ``pong``), and write book levels as text rows
``["px", "size", ...]`` checked by the same CRC32 over the top 25 levels' text
(``perparb.feeds.booksync.crc32_interleaved``). Each venue module keeps its card, its
channel names, its sequence fields and everything else that is its own.

Book rows are decoded once, as text, and read into numbers in one compiled pass
(``perparb.levels.text_levels``) that also returns the (price, size) strings a checksummed
message hands to the checksum book.
"""

from __future__ import annotations

from typing import Generic, TypeVar

import msgspec

from perparb.levels import text_levels
from perparb.model import BookDelta, BookSnapshot, Instrument, Level, MarketEvent
from perparb.venues.base import decode_error, num_text

T = TypeVar("T")
CHANNEL = b'"channel":"'
_enc = msgspec.json.Encoder()


class Arg(msgspec.Struct):
    instType: str = ""
    channel: str = ""
    instId: str = ""


class Push(msgspec.Struct, Generic[T]):
    arg: Arg = msgspec.field(default_factory=Arg)
    data: list[T] = []
    action: str = ""
    ts: int = 0  # Bitget v2 stamps the envelope too


class BookData(msgspec.Struct):
    """One book entry of ``data``. Rows are ``["px", "size", ...]`` (OKX adds two more
    fields); the sequence fields are OKX's (``seqId``/``prevSeqId``) or Bitget's
    (``seq``/``pseq``); ``checksum`` 0 or absent means not provided."""

    asks: list[list[str]] = []
    bids: list[list[str]] = []
    ts: int = 0
    instId: str = ""
    checksum: int = 0
    seqId: int | None = None
    prevSeqId: int | None = None
    seq: int | None = None
    pseq: int | None = None


book_push = msgspec.json.Decoder(Push[BookData], strict=False)


def frame(venue: str, raw: str | bytes) -> bytes | None:
    """The JSON object of a frame as bytes, or None for the ``pong`` heartbeat reply."""
    if isinstance(raw, str):
        raw = raw.encode()
    if raw[:1] != b"{":
        stripped = raw.strip()
        if stripped == b"pong":
            return None
        if stripped[:1] != b"{":
            raise decode_error(venue, ValueError("not JSON"), raw)
        raw = stripped
    return raw


def channel(raw: bytes) -> bytes | None:
    """The ``"channel":"..."`` value of a compact push, found without decoding it."""
    i = raw.find(CHANNEL)
    if i < 0:
        return None
    i += len(CHANNEL)
    return raw[i : raw.find(b'"', i)]


def book_event(venue: str, inst: Instrument, d: BookData, snapshot: bool, keep_text: bool, seq: int,
               prev_seq: int | None, ts_ns: int, recv_ns: int) -> MarketEvent:
    """A book entry as a normalized snapshot or delta; ``keep_text``: the event carries the
    level strings for the checksum book (``raw_levels``)."""
    scale, size, inverse = inst.price_scale, inst.contract_size, inst.inverse
    bids, bid_text = text_levels(d.bids, scale, size, inverse)
    asks, ask_text = text_levels(d.asks, scale, size, inverse)
    raw_levels = (bid_text, ask_text) if keep_text else None
    if snapshot:
        return BookSnapshot(venue=venue, symbol=inst.symbol, venue_symbol=inst.venue_symbol, bids=bids, asks=asks,
                            seq=seq, checksum=d.checksum or None, raw_levels=raw_levels, ts_exchange_ns=ts_ns,
                            recv_ns=recv_ns)
    return BookDelta(venue=venue, symbol=inst.symbol, venue_symbol=inst.venue_symbol, bids=bids, asks=asks,
                     first_seq=seq, seq=seq, prev_seq=prev_seq, checksum=d.checksum or None, raw_levels=raw_levels,
                     ts_exchange_ns=ts_ns, recv_ns=recv_ns)


def op(name: str, args: list[dict[str, str]]) -> str:
    """A subscribe / unsubscribe request."""
    return _enc.encode({"op": name, "args": args}).decode()


def text_row(level: Level, *extra: str) -> list[str]:
    """A native level as the venues write it (the simulator's encoders)."""
    return [num_text(level[0]), num_text(level[1]), *extra]

