"""The bus on NATS JetStream (nats-py).

Subjects: market data on ``md.<venue>.<kind>.<asset>`` (core NATS, at-most-once, with a
per-publisher sequence number per venue so gaps are seen); every other channel on the
subject of its own name. Channels in ``DURABLE`` live on a JetStream stream each
(``PERPARB_<CHANNEL>``): published with ``Nats-Msg-Id`` so the stream drops duplicates,
retried until the stream acknowledges, read through a durable pull consumer named after
the bus (``<name>_<channel>``) so a restarted process resumes where it left off, and
deduplicated by message id on the way in.

``publish`` and ``subscribe`` are synchronous like the in-process bus; the work happens
on the event loop the bus was connected on. ``await settle()`` waits until subscriptions
are live and everything published so far has reached the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections import deque
from collections.abc import Callable
from typing import Any

import nats
from nats.aio.client import Client
from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy, StorageType
from nats.js.errors import NotFoundError

from perparb.bus import CHANNELS, MARKET_DATA, Handler
from perparb.bus.wire import (
    DURABLE,
    BusUnavailable,
    GapHandler,
    GapTracker,
    SeenIds,
    check_channel,
    decode_md,
    decode_msg,
    encode_md,
    encode_msg,
    md_subject,
    message_id,
)

log = logging.getLogger(__name__)

MSG_ID = "Nats-Msg-Id"
MD_BATCH = 256  # events per broker message at most

__all__ = ["BusUnavailable", "NatsBus", "stream_name"]


def stream_name(channel: str) -> str:
    return f"PERPARB_{channel.upper()}"


class NatsBus:
    def __init__(self, nc: Client, name: str, on_gap: GapHandler | None = None,
                 on_state: Callable[[bool], None] | None = None) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream()
        self.name = name
        self.publisher = f"{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.gaps = GapTracker(on_gap)
        self.on_state = on_state
        self.errors: dict[str, int] = {}  # counted by kind: decode, handler, publish_retry
        self.published: dict[str, int] = dict.fromkeys(CHANNELS, 0)
        self.duplicates = 0  # durable messages dropped on the way in as already seen
        self._subs: dict[str, list[Handler]] = {c: [] for c in CHANNELS}
        self._seen = {c: SeenIds() for c in DURABLE}
        self._md_seq: dict[str, int] = {}  # subject -> last sequence number published
        self._md: list[tuple[str, Any]] = []  # market data waiting for the writer: subject, event
        self._out: deque[tuple[str, str, bytes, str]] = deque()  # channel, subject, payload, msg id
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._setup: list[asyncio.Task[None]] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._streams: set[str] = set()
        self._closed = False
        self._writer = asyncio.create_task(self._write())

    @classmethod
    async def connect(cls, url: str = "nats://127.0.0.1:4222", name: str = "perparb", *,
                      on_gap: GapHandler | None = None, on_state: Callable[[bool], None] | None = None,
                      connect_timeout: float = 2.0, reconnect_wait: float = 0.25,
                      reconnect_wait_max: float = 5.0) -> NatsBus:
        holder: list[NatsBus] = []

        async def disconnected() -> None:
            if holder and holder[0].on_state:
                holder[0].on_state(False)

        async def reconnected() -> None:
            nc.options["reconnect_time_wait"] = reconnect_wait
            if holder and holder[0].on_state:
                holder[0].on_state(True)

        async def error(e: Exception) -> None:
            # Called after each failed reconnect attempt: back off exponentially, capped.
            if nc.is_reconnecting:
                nc.options["reconnect_time_wait"] = min(nc.options["reconnect_time_wait"] * 2,
                                                        reconnect_wait_max)
            log.warning("NATS %s: %s", url, e)

        nc = Client()
        try:
            # nats-py annotates the waits as int; it takes fractions of a second.
            waits: dict[str, Any] = {"connect_timeout": connect_timeout, "reconnect_time_wait": reconnect_wait}
            await nc.connect(servers=[url], name=name, max_reconnect_attempts=1, allow_reconnect=True,
                             disconnected_cb=disconnected, reconnected_cb=reconnected, error_cb=error, **waits)
        except Exception as e:
            raise BusUnavailable(f"NATS broker unavailable at {url}: {e or type(e).__name__}") from e
        # Give up at start (above), never once running: reconnect forever with backoff.
        nc.options["max_reconnect_attempts"] = -1
        bus = cls(nc, name, on_gap, on_state)
        holder.append(bus)
        return bus

    @property
    def connected(self) -> bool:
        return bool(self.nc.is_connected)

    def _count(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    # publishing

    def publish(self, channel: str, msg: Any) -> None:
        check_channel(channel)
        self.published[channel] += 1
        if channel == MARKET_DATA:
            self._md.append((md_subject(msg), msg))
        else:
            payload = encode_msg(msg)
            mid = message_id(channel, msg, payload) if channel in DURABLE else ""
            self._out.append((channel, channel, payload, mid))
        self._idle.clear()
        self._wake.set()

    async def _write(self) -> None:
        while True:
            if self._md:
                await self._write_md()
            if not self._out:
                if self._md:
                    continue
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            channel, subject, payload, mid = self._out[0]
            if not mid:
                try:
                    await self.nc.publish(subject, payload)
                except Exception as e:  # at-most-once: a message the client cannot buffer is lost
                    self._count("publish_dropped")
                    log.warning("dropped %s message: %s", channel, e)
                self._out.popleft()
                continue
            await self._publish_durable(channel, subject, payload, mid)
            self._out.popleft()

    async def _write_md(self) -> None:
        """Everything published since the last pass, one broker message per subject."""
        batch, self._md = self._md, []
        by_subject: dict[str, list[Any]] = {}
        for subject, ev in batch:
            by_subject.setdefault(subject, []).append(ev)
        for subject, evs in by_subject.items():
            for i in range(0, len(evs), MD_BATCH):
                await self._send_md(subject, evs[i:i + MD_BATCH])

    async def _send_md(self, subject: str, evs: list[Any]) -> None:
        seq = self._md_seq.get(subject, 0) + 1
        payload = encode_md(self.publisher, seq, evs)
        if len(payload) > self.nc.max_payload and len(evs) > 1:  # deep books: split the batch
            half = len(evs) // 2
            await self._send_md(subject, evs[:half])
            await self._send_md(subject, evs[half:])
            return
        self._md_seq[subject] = seq + len(evs) - 1
        try:
            await self.nc.publish(subject, payload)
        except Exception as e:  # at-most-once: what the client cannot send is lost (a gap)
            self._count("publish_dropped")
            log.warning("dropped %d market-data events on %s: %s", len(evs), subject, e)

    async def _publish_durable(self, channel: str, subject: str, payload: bytes, mid: str) -> None:
        delay = 0.05
        while True:
            try:
                await self._ensure_stream(channel)
                await self.js.publish(subject, payload, headers={MSG_ID: mid}, timeout=2.0)
                return
            except Exception as e:  # broker away or stream not ready: keep it, retry with backoff
                if self._closed and self.nc.is_closed:
                    raise
                self._count("publish_retry")
                log.warning("%s publish not acknowledged (%s); retrying in %.2fs", channel, e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)

    async def _ensure_stream(self, channel: str) -> None:
        name = stream_name(channel)
        if name in self._streams:
            return
        try:
            await self.js.stream_info(name)
        except NotFoundError:
            await self.js.add_stream(name=name, subjects=[channel], storage=StorageType.FILE,
                                     duplicate_window=120.0)
        self._streams.add(name)

    # subscribing

    def subscribe(self, channel: str, handler: Handler) -> None:
        check_channel(channel)
        first = not self._subs[channel]
        self._subs[channel].append(handler)
        if first:
            self._setup.append(asyncio.create_task(self._start(channel)))

    async def _start(self, channel: str) -> None:
        if channel == MARKET_DATA:
            await self.nc.subscribe("md.>", cb=self._on_md, pending_msgs_limit=1_000_000,
                                    pending_bytes_limit=512 * 1024 * 1024)
        elif channel in DURABLE:
            await self._ensure_stream(channel)
            psub = await self.js.pull_subscribe(
                channel, durable=f"{self.name}_{channel}", stream=stream_name(channel),
                config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT, deliver_policy=DeliverPolicy.ALL,
                                      ack_wait=10.0, max_ack_pending=100_000))
            self._tasks.append(asyncio.create_task(self._pull(channel, psub)))
        else:
            async def on_msg(m: Msg) -> None:
                self._deliver(channel, m.data)

            await self.nc.subscribe(channel, cb=on_msg)

    async def _on_md(self, m: Msg) -> None:
        try:
            env = decode_md(m.data)
        except Exception as e:
            self._count("decode")
            log.warning("undecodable market data on %s: %s", m.subject, e)
            return
        self.gaps.check(env)
        for ev in env.evs:
            self._dispatch(MARKET_DATA, ev)

    async def _pull(self, channel: str, psub: JetStreamContext.PullSubscription) -> None:
        delay = 0.05
        while not self._closed:
            try:
                msgs = await psub.fetch(512, timeout=1.0)
            except nats.errors.TimeoutError:
                continue
            except asyncio.CancelledError:
                raise
            except Exception as e:
                if self._closed:
                    return
                log.warning("%s consumer: %s; retrying in %.2fs", channel, e, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            delay = 0.05
            for m in msgs:
                self._deliver(channel, m.data)
                with contextlib.suppress(Exception):  # unacked: redelivered, then deduplicated
                    await m.ack()

    def _deliver(self, channel: str, data: bytes) -> None:
        try:
            msg = decode_msg(data)
        except Exception as e:
            self._count("decode")
            log.warning("undecodable message on %s: %s", channel, e)
            return
        if channel in DURABLE and not self._seen[channel].add(message_id(channel, msg, data)):
            self.duplicates += 1
            return
        self._dispatch(channel, msg)

    def _dispatch(self, channel: str, msg: Any) -> None:
        for handler in self._subs[channel]:
            try:
                handler(msg)
            except Exception:
                self._count("handler")
                log.exception("bus handler failed on %s", channel)

    # lifecycle

    async def settle(self) -> None:
        """Subscriptions live and everything published so far handed to the broker."""
        while self._setup:
            await self._setup.pop(0)
        await self._idle.wait()
        await self.nc.flush()

    async def close(self) -> None:
        """Flush what is queued (and the acks of what was consumed), then disconnect."""
        if self._closed:
            return
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.settle(), 10.0)
        self._closed = True
        for t in (*self._tasks, self._writer):
            t.cancel()
        for t in (*self._tasks, self._writer):
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        with contextlib.suppress(Exception):
            await self.nc.drain()
        with contextlib.suppress(Exception):
            await self.nc.close()

