"""Every recorded fixture of every venue through `perparb decode`.

The venue tests assert each normalized value against the raw messages; this checks that the
command users script against prints exactly those events for every file, keeps going past
bad lines, and reports problems on stderr with the line number.
"""

from __future__ import annotations

import json
from pathlib import Path

import msgspec
import pytest
from typer.testing import CliRunner

from conftest import FIXTURES
from perparb.cli import app
from perparb.instruments.snapshot import load_registry
from perparb.model import BookDelta, BookSnapshot
from perparb.venues import venue_class, venue_ids
from perparb.venues.base import DecodeError

FILES = sorted((v, p) for v in venue_ids() for p in (FIXTURES / v).glob("*.jsonl")) if FIXTURES.is_dir() else []


def expected(venue: str, path: Path) -> tuple[list[dict], list[int]]:
    adapter = venue_class(venue)(load_registry())
    out, bad = [], []
    for n, line in enumerate(path.read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            events = adapter.parse(line.strip(), 0)
        except DecodeError:
            bad.append(n)
            continue
        for ev in events:
            row = msgspec.to_builtins(ev)
            if isinstance(ev, BookSnapshot | BookDelta):
                del row["raw_levels"]
            out.append(_comparable(json.loads(msgspec.json.encode(row))))  # as JSON: tuples become lists
    return out, bad


def _comparable(row: dict) -> dict:
    del row["recv_ns"]
    if row["type"] == "funding" and row["ts_exchange_ns"] == 0:
        # The message has no time (Hyperliquid, dYdX): the next settlement is computed from
        # the receive time, which differs between the two runs.
        del row["next_funding_ns"]
    return row


def test_every_venue_has_recorded_fixtures_or_says_why() -> None:
    with_files = {v for v, _ in FILES}
    # CoinDCX has no recording at all (its tests use the venue's documented examples).
    assert set(venue_ids()) - with_files <= {"coindcx"}


@pytest.mark.parametrize(("venue", "path"), FILES, ids=[f"{v}/{p.name}" for v, p in FILES])
def test_decode_prints_the_adapters_events(venue: str, path: Path) -> None:
    result = CliRunner().invoke(app, ["decode", "--venue", venue, str(path)])
    want, bad = expected(venue, path)
    got = []
    for line in result.stdout.splitlines():
        row = json.loads(line)
        assert {"type", "venue", "symbol", "venue_symbol", "ts_exchange_ns"} <= set(row)
        got.append(_comparable(row))
    assert got == want
    assert result.exit_code == (1 if bad else 0)
    for n in bad:
        assert f"line {n}:" in result.stderr
