"""The instrument snapshot bundled with the package, and user snapshots next to it."""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

import msgspec

from perparb.instruments.registry import Registry
from perparb.model import Instrument


class SourceInfo(msgspec.Struct, kw_only=True):
    """One metadata response a venue's contracts came from: what it is and how old its data is."""

    file: str  # under the fixtures folder, or "live <rest url>" for --refresh
    path: str  # the REST path it answered
    date: str  # the data date, as precise as the source allows (2025-12-24, 2025-08, 2023-10..2025-09)
    scope: str  # full: the venue's whole list then; excerpt: some contracts only
    contracts: int = 0  # how many contracts of the snapshot it still provides


class Snapshot(msgspec.Struct, kw_only=True):
    built_ns: int
    sources: dict[str, str]
    instruments: list[Instrument]
    # Per venue, newest source first; a venue missing here has no recorded metadata.
    venues: dict[str, list[SourceInfo]] = {}


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
