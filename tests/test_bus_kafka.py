"""Kafka-specific behaviour that needs no broker (the contract suite needs one:
PERPARB_TEST_KAFKA=host:port)."""

from __future__ import annotations

import socket

import pytest

from perparb.bus.kafka import KafkaBus, bootstrap_of
from perparb.bus.nats import BusUnavailable


def test_url_to_bootstrap_servers() -> None:
    assert bootstrap_of("kafka://10.0.0.5:9092") == "10.0.0.5:9092"
    assert bootstrap_of("kafka://broker:9093/") == "broker:9093"


async def test_broker_unavailable_at_start_names_the_address() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    url = f"kafka://127.0.0.1:{port}"  # bound then released: nothing listens there
    with pytest.raises(BusUnavailable, match=f"Kafka broker unavailable at {url}"):
        await KafkaBus.connect(url, "engine")
