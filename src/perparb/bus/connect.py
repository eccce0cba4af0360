"""A bus from a ``--bus`` URL: ``nats://host:4222``, ``kafka://host:9092``, or nothing for
the in-process bus (the default)."""

from __future__ import annotations

from typing import Any

from perparb.bus import InProcessBus


async def connect_bus(url: str | None, name: str, **kw: Any) -> Any:
    """``name`` is the role (collector, engine ...): durable consumers are named after it,
    so a restarted role resumes where it left off. Keyword options go to the backend."""
    if not url:
        return InProcessBus()
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme == "nats":
        from perparb.bus.nats import NatsBus

        return await NatsBus.connect(url, name, **kw)
    if scheme == "kafka":
        from perparb.bus.kafka import KafkaBus

        return await KafkaBus.connect(url, name, **kw)
    raise ValueError(f"unsupported bus URL {url!r}: use nats://host:4222 or kafka://host:9092, "
                     "or leave it out for the in-process bus")
