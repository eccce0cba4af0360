"""--bus URLs to buses."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from tests.nats_server import NatsServer
from tests.test_bus_contract import fill, until

from perparb.bus import EXECUTIONS, InProcessBus
from perparb.bus.connect import connect_bus
from perparb.bus.nats import NatsBus
from perparb.bus.wire import BusUnavailable


async def test_no_url_is_the_in_process_bus() -> None:
    assert isinstance(await connect_bus(None, "engine"), InProcessBus)
    assert isinstance(await connect_bus("", "engine"), InProcessBus)


async def test_unknown_scheme_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"unsupported bus URL 'redis://h:6379'"):
        await connect_bus("redis://h:6379", "engine")
    with pytest.raises(ValueError, match="unsupported bus URL 'h:4222'"):
        await connect_bus("h:4222", "engine")


async def test_kafka_url_reaches_the_kafka_backend() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(BusUnavailable, match=f"Kafka broker unavailable at kafka://127.0.0.1:{port}"):
        await connect_bus(f"kafka://127.0.0.1:{port}", "engine")


async def test_nats_url_names_the_durable_consumer_after_the_role(tmp_path: Path) -> None:
    server = NatsServer(tmp_path)
    server.start()
    try:
        pub = await connect_bus(server.url, "execution")
        engine = await connect_bus(server.url, "engine")
        assert isinstance(pub, NatsBus) and isinstance(engine, NatsBus)
        got: list[object] = []
        engine.subscribe(EXECUTIONS, got.append)
        await engine.settle()
        pub.publish(EXECUTIONS, fill(1))
        await pub.settle()
        await until(lambda: len(got) == 1, "the fill")
        info = await engine.js.consumer_info("PERPARB_EXECUTIONS", "engine_executions")
        assert info.config.durable_name == "engine_executions"
        await pub.close()
        await engine.close()
    finally:
        server.stop()
