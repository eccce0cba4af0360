"""The bus on Kafka (aiokafka): the same channels as topics (``market_data``,
``trade_orders``, ``executions``, ...), the same wire format and guarantees as NATS.

Market data is keyed by venue (per-venue order within a partition) and read without a
consumer group from the end of the topic: at-most-once, with the envelope's sequence
numbers telling a consumer what it missed. Durable channels are keyed by the channel
name (one partition holds them in publish order), produced with ``acks=all`` by an
idempotent producer and retried until acknowledged, carry their message id in the
``msg_id`` header, and are read by a consumer group ``<bus name>_<channel>`` that
commits after handling, so a restarted process resumes where it left off; message ids
already seen are dropped. Derived views (``opportunities``, ``portfolio``) are read like
market data.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import uuid
from collections import deque
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient, NewTopic

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


def bootstrap_of(url: str) -> str:
    return url.removeprefix("kafka://").rstrip("/")


class KafkaBus:
    def __init__(self, producer: AIOKafkaProducer, bootstrap: str, name: str, topic_prefix: str = "",
                 on_gap: GapHandler | None = None) -> None:
        self.producer = producer
        self.bootstrap = bootstrap
        self.name = name
        self.prefix = topic_prefix
        self.publisher = f"{name}-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        self.gaps = GapTracker(on_gap)
        self.errors: dict[str, int] = {}
        self.published: dict[str, int] = dict.fromkeys(CHANNELS, 0)
        self.duplicates = 0
        self._subs: dict[str, list[Handler]] = {c: [] for c in CHANNELS}
        self._seen = {c: SeenIds() for c in DURABLE}
        self._md_seq: dict[str, int] = {}
        self._out: deque[tuple[str, bytes, bytes, str]] = deque()  # channel, key, payload, msg id
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._setup: list[asyncio.Task[None]] = []
        self._consumers: list[AIOKafkaConsumer] = []
        self._tasks: list[asyncio.Task[None]] = []
        self._topics_made: set[str] = set()
        self._closed = False
        self._writer = asyncio.create_task(self._write())

    @classmethod
    async def connect(cls, url: str = "kafka://127.0.0.1:9092", name: str = "perparb", *,
                      topic_prefix: str = "", on_gap: GapHandler | None = None) -> KafkaBus:
        bootstrap = bootstrap_of(url)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", enable_idempotence=True,
                                    linger_ms=1, retry_backoff_ms=100)
        try:
            await producer.start()
        except Exception as e:
            with contextlib.suppress(Exception):
                await producer.stop()
            raise BusUnavailable(f"Kafka broker unavailable at {url}: {e or type(e).__name__}") from e
        return cls(producer, bootstrap, name, topic_prefix, on_gap)

    def topic(self, channel: str) -> str:
        return f"{self.prefix}{channel}"

    def _count(self, kind: str) -> None:
        self.errors[kind] = self.errors.get(kind, 0) + 1

    # publishing

    def publish(self, channel: str, msg: Any) -> None:
        check_channel(channel)
        self.published[channel] += 1
        if channel == MARKET_DATA:
            subject = md_subject(msg)
            seq = self._md_seq.get(subject, 0) + 1
            self._md_seq[subject] = seq
            self._out.append((channel, msg.venue.encode(), encode_md(self.publisher, seq, [msg]), ""))
        else:
            payload = encode_msg(msg)
            mid = message_id(channel, msg, payload) if channel in DURABLE else ""
            self._out.append((channel, channel.encode(), payload, mid))
        self._idle.clear()
        self._wake.set()

    async def _write(self) -> None:
        while True:
            if not self._out:
                self._idle.set()
                self._wake.clear()
                await self._wake.wait()
                continue
            channel, key, payload, mid = self._out[0]
            if not mid:
                try:
                    await self.producer.send(self.topic(channel), payload, key=key)
                except Exception as e:  # at-most-once
                    self._count("publish_dropped")
                    log.warning("dropped %s message: %s", channel, e)
            else:
                delay = 0.05
                while True:
                    try:
                        await self._ensure_topic(channel)
                        await self.producer.send_and_wait(self.topic(channel), payload, key=key,
                                                          headers=[("msg_id", mid.encode())])
                        break
                    except Exception as e:
                        self._count("publish_retry")
                        log.warning("%s publish not acknowledged (%s); retrying in %.2fs", channel, e, delay)
                        await asyncio.sleep(delay)
                        delay = min(delay * 2, 2.0)
            self._out.popleft()

    async def _ensure_topic(self, channel: str) -> None:
        topic = self.topic(channel)
        if topic in self._topics_made:
            return
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            if topic not in await admin.list_topics():
                with contextlib.suppress(Exception):  # created meanwhile by another process
                    await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        finally:
            await admin.close()
        self._topics_made.add(topic)

    # subscribing

    def subscribe(self, channel: str, handler: Handler) -> None:
        check_channel(channel)
        first = not self._subs[channel]
        self._subs[channel].append(handler)
        if first:
            self._setup.append(asyncio.create_task(self._start(channel)))

    async def _start(self, channel: str) -> None:
        await self._ensure_topic(channel)
        topic = self.topic(channel)
        if channel in DURABLE:
            consumer = AIOKafkaConsumer(topic, bootstrap_servers=self.bootstrap,
                                        group_id=f"{self.name}_{channel}", enable_auto_commit=False,
                                        auto_offset_reset="earliest")
            await consumer.start()
            # The coordinator joins the group in the background; once assigned, reading
            # resumes from the group's commit.
            for _ in range(600):
                if consumer.assignment():
                    break
                await asyncio.sleep(0.05)
        else:
            consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None,
                                        enable_auto_commit=False)
            await consumer.start()
            parts = sorted(consumer.partitions_for_topic(topic) or {0})
            tps = [TopicPartition(topic, p) for p in parts]
            consumer.assign(tps)
            await consumer.seek_to_end(*tps)
            for tp in tps:  # resolve the end now, so what is published after settle() is seen
                await consumer.position(tp)
        self._consumers.append(consumer)
        self._tasks.append(asyncio.create_task(self._consume(channel, consumer)))

    async def _consume(self, channel: str, consumer: AIOKafkaConsumer) -> None:
        durable = channel in DURABLE
        while not self._closed:
            try:
                batches = await consumer.getmany(timeout_ms=500, max_records=1024)
            except asyncio.CancelledError:
                raise
            except Exception as e:
                log.warning("%s consumer: %s", channel, e)
                await asyncio.sleep(0.5)
                continue
            for records in batches.values():
                for rec in records:
                    if rec.value is not None:
                        self._deliver(channel, rec.value)
            if durable and batches:
                with contextlib.suppress(Exception):  # uncommitted: redelivered, then deduplicated
                    await consumer.commit()

    def _deliver(self, channel: str, data: bytes) -> None:
        try:
            if channel == MARKET_DATA:
                env = decode_md(data)
                self.gaps.check(env)
                for ev in env.evs:
                    self._dispatch(channel, ev)
                return
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
        while self._setup:
            await self._setup.pop(0)
        await self._idle.wait()
        await self.producer.flush()

    async def close(self) -> None:
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
        for c in self._consumers:
            with contextlib.suppress(Exception):
                await c.stop()
        with contextlib.suppress(Exception):
            await self.producer.stop()
