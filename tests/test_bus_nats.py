"""NATS-specific behaviour: the broker missing at start, and lost and back mid-run."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import pytest
from tests.nats_server import NatsServer, nats_server_binary
from tests.test_bus_contract import fill, quote, until

from perparb.bus import EXECUTIONS, MARKET_DATA
from perparb.bus.nats import BusUnavailable, NatsBus


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_broker_unavailable_at_start_names_the_address() -> None:
    url = f"nats://127.0.0.1:{free_port()}"  # bound then released: nothing listens there
    with pytest.raises(BusUnavailable, match=f"NATS broker unavailable at {url}"):
        await NatsBus.connect(url, "engine", connect_timeout=1.0)


async def test_broker_restart_mid_run_reconnects_and_keeps_durable_messages(tmp_path: Path) -> None:
    nats_server_binary()
    server = NatsServer(tmp_path)
    server.start()
    states: list[bool] = []
    pub = await NatsBus.connect(server.url, "execution", reconnect_wait=0.05, reconnect_wait_max=0.5)
    engine = await NatsBus.connect(server.url, "engine", on_state=states.append, reconnect_wait=0.05,
                                   reconnect_wait_max=0.5)
    fills: list[object] = []
    quotes: list[object] = []
    engine.subscribe(EXECUTIONS, fills.append)
    engine.subscribe(MARKET_DATA, quotes.append)
    await engine.settle()
    try:
        pub.publish(EXECUTIONS, fill(1))
        await pub.settle()
        await until(lambda: len(fills) == 1, "the first fill")

        server.stop()  # same port and store directory when it comes back
        await until(lambda: not engine.connected and states == [False], "the engine to see the broker gone")
        pub.publish(EXECUTIONS, fill(2))  # held and retried by the publisher until the stream acknowledges
        await asyncio.sleep(0.3)
        server.start()
        # The state callback runs once the client has resubscribed, just after it reconnects.
        await until(lambda: engine.connected and pub.connected and len(states) == 2, "both to reconnect")
        assert states == [False, True]
        await pub.settle()
        await until(lambda: len(fills) == 2, "the fill published while the broker was down")
        for n in range(3):
            pub.publish(MARKET_DATA, quote("binance", n))
        await pub.settle()
        await until(lambda: len(quotes) == 3, "market data after the restart")
        assert [f.id for f in fills] == ["f1", "f2"]  # type: ignore[attr-defined]
    finally:
        await pub.close()
        await engine.close()
        server.stop()
