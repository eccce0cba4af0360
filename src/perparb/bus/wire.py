"""What broker backends put on the wire, shared by NATS and Kafka.

Trading messages travel as their own msgpack encoding (the ``type`` tag and schema version
``v`` are fields of every Message). Market data travels in an envelope that adds the
schema version, the publisher's id and a per-publisher, per-venue sequence number, so a
consumer that misses messages (at-most-once delivery) knows which venue's books to
treat as unsynced.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Callable

import msgspec

from perparb.bus import CHANNELS, MARKET_DATA
from perparb.bus.messages import SCHEMA_VERSION, Message, TradingMessage
from perparb.model import MarketEvent

# Channels whose messages must survive a consumer or broker restart (durable streams,
# at-least-once, consumed idempotently). The others are derived views or market data,
# republished continuously, so losing some is acceptable and cheaper.
DURABLE = frozenset({"trade_orders", "orders", "executions", "ledger", "risk"})

GapHandler = Callable[[str, str, int], None]  # venue, publisher, messages missed


class BusUnavailable(RuntimeError):
    """The broker could not be reached when the bus started."""


class MdEnvelope(msgspec.Struct, array_like=True, gc=False):
    """Consecutive market-data events of one subject from one publisher (a batch, so a
    burst costs one broker message): ``seq`` is the first event's sequence number in the
    publisher's per-subject sequence, the others follow it one by one."""

    v: int
    pub: str
    seq: int
    evs: list[MarketEvent]


_md_encoder = msgspec.msgpack.Encoder()
_md_decoder = msgspec.msgpack.Decoder(MdEnvelope)
_msg_encoder = msgspec.msgpack.Encoder()
_msg_decoder = msgspec.msgpack.Decoder(TradingMessage)


def check_channel(channel: str) -> None:
    if channel not in CHANNELS:
        raise KeyError(f"unknown bus channel {channel!r}; channels: {', '.join(CHANNELS)}")


def token(text: str) -> str:
    """A subject/topic-safe form of a venue, kind or asset name."""
    return "".join(c if c.isalnum() or c in "-_" else "_" for c in text) or "_"


def md_subject(ev: MarketEvent) -> str:
    kind = type(ev).__struct_config__.tag
    asset = ev.symbol.split("/", 1)[0]
    return f"md.{token(ev.venue)}.{token(str(kind))}.{token(asset)}"


def encode_md(pub: str, seq: int, evs: list[MarketEvent]) -> bytes:
    return _md_encoder.encode(MdEnvelope(v=SCHEMA_VERSION, pub=pub, seq=seq, evs=evs))


def decode_md(data: bytes) -> MdEnvelope:
    return _md_decoder.decode(data)


def encode_msg(msg: Message) -> bytes:
    return _msg_encoder.encode(msg)


def decode_msg(data: bytes) -> Message:
    return _msg_decoder.decode(data)


def message_id(channel: str, msg: Message, payload: bytes) -> str:
    """The id a message is deduplicated by: its own ``id`` where it has one, otherwise a
    digest of its encoding (two byte-identical updates are the same update)."""
    own = getattr(msg, "id", None)
    if isinstance(own, str) and own:
        return f"{channel}:{type(msg).__struct_config__.tag}:{own}"
    return f"{channel}:{hashlib.blake2b(payload, digest_size=16).hexdigest()}"


class SeenIds:
    """Ids already delivered, bounded (oldest forgotten first)."""

    def __init__(self, limit: int = 200_000) -> None:
        self._ids: OrderedDict[str, None] = OrderedDict()
        self._limit = limit

    def add(self, mid: str) -> bool:
        """True when ``mid`` is new."""
        if mid in self._ids:
            return False
        self._ids[mid] = None
        if len(self._ids) > self._limit:
            self._ids.popitem(last=False)
        return True


class GapTracker:
    """Per (publisher, subject) sequence check for market data; misses counted per venue."""

    def __init__(self, on_gap: GapHandler | None = None) -> None:
        self._next: dict[tuple[str, str], int] = {}
        self.gaps: dict[str, int] = {}  # venue -> events missed
        self.on_gap = on_gap

    def check(self, env: MdEnvelope) -> None:
        if not env.evs:
            return
        first = env.evs[0]
        key = (env.pub, md_subject(first))
        expected = self._next.get(key)
        self._next[key] = env.seq + len(env.evs)
        if expected is None or env.seq <= expected:
            return
        missed = env.seq - expected
        self.gaps[first.venue] = self.gaps.get(first.venue, 0) + missed
        if self.on_gap is not None:
            self.on_gap(first.venue, env.pub, missed)


__all__ = ["DURABLE", "MARKET_DATA", "BusUnavailable", "GapTracker", "MdEnvelope", "SeenIds"]
