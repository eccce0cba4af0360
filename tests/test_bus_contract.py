"""One contract for every bus backend: the in-process bus, NATS JetStream on a private
loopback nats-server, and Kafka when PERPARB_TEST_KAFKA=host:port names a broker.

Broker-only clauses (durable resume, duplicates, market-data gaps) are skipped for the
in-process bus, which holds nothing across a restart and cannot lose or repeat messages.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import msgspec
import pytest
from tests.nats_server import NatsServer

from perparb.bus import EXECUTIONS, MARKET_DATA, PORTFOLIO, TRADE_ORDERS, InProcessBus
from perparb.bus.messages import Fill, Leg, OrderUpdate, PositionUpdate, TradeIntent
from perparb.model import BookSnapshot, Funding, Quote

KAFKA = os.environ.get("PERPARB_TEST_KAFKA", "")
BACKENDS = ["inprocess", "nats", "kafka"]


def fill(n: int) -> Fill:
    return Fill(id=f"f{n}", ts_ns=1_000 + n, venue="bybit", symbol="ETH/USDT:USDT", venue_symbol="ETHUSDT",
                side="buy" if n % 2 else "sell", qty=0.01 * n, px=3000.0 + n, fee=0.0001 * n, fee_asset="USDT",
                liquidity="taker", order_id=f"o{n}", intent_id=f"i{n}", strategy="spread")


def quote(venue: str, n: int) -> Quote:
    return Quote(venue, "BTC/USDT:USDT", "BTCUSDT", 60_000.0 + n, 1.5, 60_000.5 + n, 2.0, 10 * n, 10 * n + 3)


async def until(cond: Callable[[], bool], what: str, limit: float = 30.0) -> None:
    loop = asyncio.get_running_loop()
    end = loop.time() + limit
    while not cond():
        if loop.time() > end:
            raise AssertionError(f"gave up waiting for {what}")
        await asyncio.sleep(0.01)


class InProcess:
    broker = False

    def __init__(self) -> None:
        self.shared = InProcessBus()

    async def bus(self, name: str, **kw: Any) -> Any:
        return self.shared

    async def settle(self, bus: Any) -> None:
        return None

    async def close(self, bus: Any) -> None:
        return None

    async def stop(self) -> None:
        return None


class Nats:
    broker = True

    def __init__(self, root: Path) -> None:
        self.server = NatsServer(root)
        self.server.start()
        self.open: list[Any] = []

    async def bus(self, name: str, **kw: Any) -> Any:
        from perparb.bus.nats import NatsBus

        bus = await NatsBus.connect(self.server.url, name, **kw)
        self.open.append(bus)
        return bus

    async def settle(self, bus: Any) -> None:
        await bus.settle()

    async def close(self, bus: Any) -> None:
        await bus.close()

    async def raw_md(self, payloads: list[bytes]) -> None:
        import nats

        nc = await nats.connect(self.server.url)
        for p in payloads:
            await nc.publish("md.binance.quote.BTC", p)
        await nc.flush()
        await nc.close()

    async def raw_durable(self, channel: str, payloads: list[tuple[str, bytes]]) -> None:
        import nats

        nc = await nats.connect(self.server.url)
        js = nc.jetstream()
        for mid, p in payloads:
            await js.publish(channel, p, headers={"Nats-Msg-Id": mid})
        await nc.close()

    async def stop(self) -> None:
        for bus in self.open:
            await bus.close()
        self.server.stop()


class Kafka:
    broker = True

    def __init__(self, bootstrap: str) -> None:
        self.bootstrap = bootstrap
        self.group_prefix = f"t{os.getpid()}{id(self)}"
        self.topic_prefix = f"perparb_test_{os.getpid()}_{id(self)}_"
        self.open: list[Any] = []

    async def bus(self, name: str, **kw: Any) -> Any:
        from perparb.bus.kafka import KafkaBus

        bus = await KafkaBus.connect(f"kafka://{self.bootstrap}", f"{self.group_prefix}{name}",
                                     topic_prefix=self.topic_prefix, **kw)
        self.open.append(bus)
        return bus

    async def settle(self, bus: Any) -> None:
        await bus.settle()

    async def close(self, bus: Any) -> None:
        await bus.close()

    async def raw_md(self, payloads: list[bytes]) -> None:
        from aiokafka import AIOKafkaProducer

        prod = AIOKafkaProducer(bootstrap_servers=self.bootstrap)
        await prod.start()
        for p in payloads:
            await prod.send_and_wait(f"{self.topic_prefix}market_data", p, key=b"binance")
        await prod.stop()

    async def raw_durable(self, channel: str, payloads: list[tuple[str, bytes]]) -> None:
        from aiokafka import AIOKafkaProducer

        prod = AIOKafkaProducer(bootstrap_servers=self.bootstrap)
        await prod.start()
        for mid, p in payloads:
            await prod.send_and_wait(f"{self.topic_prefix}{channel}", p, headers=[("msg_id", mid.encode())])
        await prod.stop()

    async def stop(self) -> None:
        for bus in self.open:
            await bus.close()


@pytest.fixture(params=BACKENDS)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    if request.param == "inprocess":
        b: Any = InProcess()
    elif request.param == "nats":
        b = Nats(tmp_path / "nats")
    else:
        if not KAFKA:
            pytest.skip("Kafka contract tests skipped: set PERPARB_TEST_KAFKA=host:port to run them against a broker")
        b = Kafka(KAFKA)
    try:
        yield b
    finally:
        await b.stop()


def broker_only(backend: Any) -> None:
    if not backend.broker:
        pytest.skip("in-process bus: nothing to resume, deduplicate or lose")


async def test_typed_round_trip_in_order_per_channel(backend: Any) -> None:
    pub = await backend.bus("collector")
    sub = await backend.bus("engine")
    got: dict[str, list[Any]] = {MARKET_DATA: [], EXECUTIONS: [], PORTFOLIO: [], TRADE_ORDERS: []}
    for ch, seen in got.items():
        sub.subscribe(ch, seen.append)
    await backend.settle(sub)

    book = BookSnapshot(venue="okx", symbol="SOL/USDT:USDT", venue_symbol="SOL-USDT-SWAP",
                        bids=[(150.25, 3.0), (150.2, 1.0)], asks=[(150.3, 2.5)], seq=77, checksum=-12,
                        ts_exchange_ns=5, recv_ns=9)
    funding = Funding(venue="okx", symbol="SOL/USDT:USDT", venue_symbol="SOL-USDT-SWAP", rate=0.0001,
                      interval_h=8.0, next_funding_ns=28_800_000_000_000, mark_px=150.27, ts_exchange_ns=6,
                      recv_ns=10)
    md = [quote("binance", n) for n in range(300)] + [book, funding]
    fills = [fill(n) for n in range(1, 101)]
    update = OrderUpdate(order_id="o1", intent_id="i1", ts_ns=7, venue="bybit", symbol="ETH/USDT:USDT",
                         status="partially_filled", filled_qty=0.004, avg_px=3001.0)
    intent = TradeIntent(id="i9", ts_ns=11, strategy="spread", action="open", asset="ETH",
                         legs=[Leg(venue="bybit", symbol="ETH/USDT:USDT", venue_symbol="ETHUSDT", side="buy",
                                   qty=0.5, order_type="ioc", limit_px=3001.5),
                               Leg(venue="okx", symbol="ETH/USDT:USDT", venue_symbol="ETH-USDT-SWAP",
                                   side="sell", qty=0.5)],
                         opportunity_id="opp-1", reason="entry edge 12bp")
    pos = PositionUpdate(ts_ns=12, venue="bybit", symbol="ETH/USDT:USDT", qty=-0.25, avg_entry_px=3002.0,
                         mark_px=3003.0, unrealized_pnl=-0.25, realized_pnl=0.0, liquidation_px=None,
                         liquidation_distance=None, settle="USDT")
    for ev in md:
        pub.publish(MARKET_DATA, ev)
    for f in fills:
        pub.publish(EXECUTIONS, f)
    pub.publish(EXECUTIONS, update)
    pub.publish(TRADE_ORDERS, intent)
    pub.publish(PORTFOLIO, pos)
    await backend.settle(pub)
    await until(lambda: len(got[MARKET_DATA]) >= len(md) and len(got[EXECUTIONS]) >= len(fills) + 1
                and got[TRADE_ORDERS] and got[PORTFOLIO], "every message")

    # Structs compare field by field: the same type and values came back, in publish order.
    assert got[MARKET_DATA] == md
    assert [type(m) for m in got[MARKET_DATA][-2:]] == [BookSnapshot, Funding]
    assert got[EXECUTIONS] == [*fills, update]
    assert [m.id for m in got[EXECUTIONS][:-1]] == [f"f{n}" for n in range(1, 101)]
    assert got[TRADE_ORDERS] == [intent] and got[TRADE_ORDERS][0].legs[0].limit_px == 3001.5
    assert got[PORTFOLIO] == [pos] and got[PORTFOLIO][0].liquidation_px is None
    assert all(m.v == 1 for ch in (EXECUTIONS, TRADE_ORDERS, PORTFOLIO) for m in got[ch])


async def test_unknown_channel_is_refused_by_name(backend: Any) -> None:
    bus = await backend.bus("engine")
    with pytest.raises(KeyError, match="fills"):
        bus.publish("fills", fill(1))
    with pytest.raises(KeyError, match="fills"):
        bus.subscribe("fills", print)


async def test_durable_consumer_resumes_after_restart_without_duplicates(backend: Any) -> None:
    broker_only(backend)
    pub = await backend.bus("execution")
    first: list[Fill] = []
    engine = await backend.bus("engine")
    engine.subscribe(EXECUTIONS, first.append)
    await backend.settle(engine)
    for n in range(1, 6):
        pub.publish(EXECUTIONS, fill(n))
    await backend.settle(pub)
    await until(lambda: len(first) >= 5, "the first five fills")
    await backend.close(engine)  # the engine stops (its acks flushed) ...

    for n in range(6, 11):
        pub.publish(EXECUTIONS, fill(n))
    pub.publish(EXECUTIONS, fill(3))  # ... a publisher retry of an old fill (same id) ...
    await backend.settle(pub)

    again: list[Fill] = []
    engine2 = await backend.bus("engine")  # ... and comes back under the same name
    engine2.subscribe(EXECUTIONS, again.append)
    await backend.settle(engine2)
    await until(lambda: len(again) >= 5, "the five fills published while the engine was away")
    marker = fill(99)
    pub.publish(EXECUTIONS, marker)
    await backend.settle(pub)
    await until(lambda: bool(again) and again[-1] == marker, "the marker fill")
    assert [f.id for f in first] == ["f1", "f2", "f3", "f4", "f5"]
    assert [f.id for f in again] == ["f6", "f7", "f8", "f9", "f10", "f99"]


async def test_redelivered_message_is_consumed_once(backend: Any) -> None:
    """The same fill arriving twice under different transport ids (a duplicate the broker
    could not catch) reaches handlers once: consumers deduplicate by the message's id."""
    broker_only(backend)
    from perparb.bus.wire import encode_msg

    got: list[Fill] = []
    engine = await backend.bus("engine")
    engine.subscribe(EXECUTIONS, got.append)
    await backend.settle(engine)
    payload = encode_msg(fill(4))
    await backend.raw_durable(EXECUTIONS, [("a", payload), ("b", payload), ("c", encode_msg(fill(5)))])
    await until(lambda: len(got) >= 2, "two distinct fills")
    await until(lambda: engine.duplicates >= 1, "the duplicate to be dropped")
    assert [f.id for f in got] == ["f4", "f5"]
    assert msgspec.structs.asdict(got[0]) == msgspec.structs.asdict(fill(4))


async def test_market_data_gap_is_counted_per_venue(backend: Any) -> None:
    broker_only(backend)
    from perparb.bus.wire import MdEnvelope, encode_md

    gaps: list[tuple[str, str, int]] = []
    got: list[Quote] = []
    engine = await backend.bus("engine", on_gap=lambda venue, pub, n: gaps.append((venue, pub, n)))
    engine.subscribe(MARKET_DATA, got.append)
    await backend.settle(engine)
    # Publisher p1 sends 1, 2, 3, then 7 (4-6 lost); p2 its own 1, 2 (its own sequence);
    # p3 batches: 1-3, 4-5, then 9 (6-8 lost).
    seqs = [("p1", 1, 1), ("p1", 2, 1), ("p2", 1, 1), ("p1", 3, 1), ("p3", 1, 3), ("p2", 2, 1), ("p3", 4, 2),
            ("p1", 7, 1), ("p3", 9, 1)]
    await backend.raw_md([encode_md(p, s, [quote("binance", s + i) for i in range(k)]) for p, s, k in seqs])
    await until(lambda: len(got) >= sum(k for _, _, k in seqs), "all twelve quotes")
    assert gaps == [("binance", "p1", 3), ("binance", "p3", 3)]
    assert engine.gaps.gaps == {"binance": 6}
    assert [q.bid_px - 60_000.0 for q in got[4:7]] == [1.0, 2.0, 3.0]  # a batch arrives in order
    assert msgspec.msgpack.decode(encode_md("p1", 7, [quote("binance", 7)]), type=MdEnvelope).seq == 7


async def test_bus_publishing_leaves_no_gap(backend: Any) -> None:
    broker_only(backend)
    gaps: list[tuple[str, str, int]] = []
    got: list[Quote] = []
    engine = await backend.bus("engine", on_gap=lambda venue, pub, n: gaps.append((venue, pub, n)))
    engine.subscribe(MARKET_DATA, got.append)
    await backend.settle(engine)
    a, b = await backend.bus("collector-a"), await backend.bus("collector-b")
    for n in range(500):
        a.publish(MARKET_DATA, quote("binance", n))
        b.publish(MARKET_DATA, quote("okx", n))
    await backend.settle(a)
    await backend.settle(b)
    await until(lambda: len(got) >= 1000, "a thousand quotes")
    assert gaps == [] and engine.gaps.gaps == {}
    assert [q.bid_px for q in got if q.venue == "okx"] == [60_000.0 + n for n in range(500)]
