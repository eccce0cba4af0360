"""The instrument snapshot bundled with the package, and user snapshots next to it."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import msgspec

from perparb.instruments.registry import Registry
from perparb.model import Instrument


class Snapshot(msgspec.Struct, kw_only=True):
    built_ns: int
    sources: dict[str, str]
    instruments: list[Instrument]


_DECODER = msgspec.json.Decoder(Snapshot)


def bundled_path() -> Path:
    return Path(str(resources.files("perparb.instruments") / "data" / "snapshot.json"))


def default_path() -> Path:
    """The snapshot ``perparb markets --refresh`` wrote, else the bundled one."""
    user = Path(os.environ.get("PERPARB_HOME", Path.home() / ".perparb")) / "instruments.json"
    return user if user.exists() else bundled_path()


def load_snapshot(path: Path | None = None) -> Snapshot:
    return _DECODER.decode((path or default_path()).read_bytes())


def save_snapshot(snapshot: Snapshot, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = msgspec.json.format(msgspec.json.encode(snapshot), indent=1)
    path.write_bytes(data + b"\n")


def load_registry(path: Path | None = None) -> Registry:
    return Registry(load_snapshot(path).instruments)
