"""Rebuild the bundled instrument snapshot from recorded REST metadata responses.

Offline counterpart of ``perparb markets --refresh``: the same venue ``parse_metadata``
code, fed from saved responses instead of the network. Each venue lists its sources in
``scripts/snapshot_sources/<venue>.txt``: REST path, file under the fixtures folder, data
date and scope (``full`` or ``excerpt``), tab-separated, oldest first. A ``full`` list
replaces everything older; an ``excerpt`` replaces the contracts it has and keeps the older
ones it lacks. Every contract's ``source`` names the file it came from.

    python scripts/build_snapshot.py ../shared/fixtures
"""

from __future__ import annotations

import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import msgspec

from perparb.instruments.registry import Registry
from perparb.instruments.snapshot import Snapshot, SourceInfo, bundled_path, save_snapshot
from perparb.venues import venue_class, venue_ids
from perparb.venues.base import DecodeError

SOURCES = Path(__file__).with_name("snapshot_sources")


@dataclass
class Source:
    venue: str
    path: str
    file: str
    date: str
    scope: str


def sources(venue: str) -> list[Source]:
    out = []
    f = SOURCES / f"{venue}.txt"
    for line in (f.read_text().splitlines() if f.exists() else []):
        if line.strip() and not line.startswith("#"):
            path, name, date, scope = (x.strip() for x in line.split("\t"))
            if scope not in ("full", "excerpt"):
                raise ValueError(f"{f.name}: scope must be full or excerpt, got {scope!r}")
            out.append(Source(venue, path, name, date, scope))
    return out


def build(fixtures: Path) -> Snapshot:
    registry = Registry()
    infos: dict[str, list[SourceInfo]] = {}
    for venue in venue_ids():
        adapter = venue_class(venue)(registry)
        table = registry.venue_table(venue)
        for src in sources(venue):
            found = []
            for line in (fixtures / src.file).read_bytes().splitlines():
                # Some files hold several responses; a line that is not this metadata is skipped.
                try:
                    found += adapter.parse_metadata(src.path, line)
                except DecodeError:
                    continue
            if not found:
                raise SystemExit(f"{venue}: {src.file} yielded no contracts")
            if src.scope == "full":
                table.clear()
            table.update({i.venue_symbol: msgspec.structs.replace(i, source=src.file) for i in found})
        used = Counter(i.source for i in table.values())
        infos[venue] = [SourceInfo(file=s.file, path=s.path, date=s.date, scope=s.scope, contracts=used[s.file])
                        for s in reversed(sources(venue)) if used[s.file]]
        if not table:
            del infos[venue]
    return Snapshot(built_ns=time.time_ns(), sources={v: s[0].date for v, s in infos.items()},
                    instruments=registry.all(), venues=infos)


if __name__ == "__main__":
    snap = build(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/fixtures"))
    save_snapshot(snap, bundled_path())
    print(f"{len(snap.instruments)} instruments written to {bundled_path()}")
    for venue, infos in snap.venues.items():
        print(f"  {venue:12} " + "; ".join(f"{s.contracts} from {s.date} ({s.scope})" for s in infos))
