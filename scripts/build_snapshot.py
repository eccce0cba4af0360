"""Rebuild the bundled instrument snapshot from recorded REST metadata responses.

Offline counterpart of ``perparb markets --refresh``: the same venue ``parse_metadata``
code, fed from saved responses instead of the network. Each venue lists its sources in
``scripts/snapshot_sources/<venue>.txt`` (REST path, tab, file under the fixtures
folder); later lines override earlier ones, so older recordings come first.

    python scripts/build_snapshot.py ../shared/fixtures
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from perparb.instruments.registry import Registry
from perparb.instruments.snapshot import Snapshot, bundled_path, save_snapshot
from perparb.venues import venue_class
from perparb.venues.base import DecodeError

SOURCES = Path(__file__).with_name("snapshot_sources")


def sources() -> list[tuple[str, str, str]]:
    out = []
    for f in sorted(SOURCES.glob("*.txt")):
        for line in f.read_text().splitlines():
            if line.strip() and not line.startswith("#"):
                path, name = line.split("\t")
                out.append((f.stem, path.strip(), name.strip()))
    return out


def build(fixtures: Path) -> Snapshot:
    registry = Registry()
    used = {}
    for venue, path, name in sources():
        adapter = venue_class(venue)(registry)
        for line in (fixtures / name).read_bytes().splitlines():
            # Some files hold several responses; a line that is not this metadata is skipped.
            try:
                registry.add_many(adapter.parse_metadata(path, line))
            except DecodeError:
                continue
        used[f"{venue} {path} {name}"] = name
    return Snapshot(built_ns=time.time_ns(), sources=used, instruments=registry.all())


if __name__ == "__main__":
    snap = build(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/fixtures"))
    save_snapshot(snap, bundled_path())
    print(f"{len(snap.instruments)} instruments written to {bundled_path()}")
