"""Fuzz: real recorded messages of every venue, mutated the ways exchanges and networks
break them, through `perparb decode` and through the engine.

Seeded and bounded (a few hundred mutations per venue). Whatever the input: nothing
raises, no event with a non-finite or non-positive price or a negative or non-finite size
gets out, and every line that was rejected is reported with its number.
"""

from __future__ import annotations

import functools
import json
import math
import random
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from conftest import FIXTURES
from perparb.cli import app
from perparb.engine import Engine
from perparb.instruments.registry import Registry
from perparb.instruments.snapshot import load_registry
from perparb.model import BookDelta, BookSnapshot, Funding, Quote, Trade
from perparb.scanner.core import Scanner, ScanSettings
from perparb.venues import venue_class, venue_ids
from perparb.venues.base import DecodeError

SEED = 20240609
PER_VENUE = 320  # mutated lines per venue
MAX_LINE = 16_000  # recorded lines longer than this (whole REST dumps) are not mutated
ENVELOPES = (b"%s", b'{"code":"200000","data":%s}')  # bare recorded metadata arrays, as the venue wraps them


def registry_for(venue: str) -> Registry:
    """The bundled snapshot plus the contracts the venue's recorded metadata describes
    (KuCoin and MEXC are not in the snapshot)."""
    registry = load_registry()
    for body in metadata_bodies(venue):
        adapter = venue_class(venue)(registry)
        for meta in adapter.metadata_paths:
            specs = adapter.parse_metadata(meta, body)
            if specs:
                registry.add_many(specs)
                break
    return registry


@functools.cache
def metadata_bodies(venue: str) -> list[bytes]:
    """The venue's recorded metadata responses (bare arrays wrapped as the venue sends them)."""
    bodies = []
    adapter = venue_class(venue)(load_registry())
    for path in sorted((FIXTURES / venue).glob("*.jsonl")):
        for line in path.read_bytes().splitlines():
            for env, meta in ((e, m) for e in ENVELOPES for m in adapter.metadata_paths):
                try:
                    specs = adapter.parse_metadata(meta, env % line.strip())
                except (DecodeError, ValueError):
                    continue
                if specs:
                    bodies.append(env % line.strip())
                    break
    return bodies


def recorded(venue: str) -> list[bytes]:
    lines = []
    for path in sorted((FIXTURES / venue).glob("*.jsonl")):
        lines += [ln.strip() for ln in path.read_bytes().splitlines() if ln.strip() and len(ln) < MAX_LINE]
    return lines


def _streams_events(venue: str) -> bool:
    adapter = venue_class(venue)(registry_for(venue))
    for line in recorded(venue):
        try:
            if adapter.decode(line, 0):
                return True
        except DecodeError:
            pass
    return False


# Venues with recorded market data (CoinDCX has recorded metadata only).
VENUES = [v for v in venue_ids() if _streams_events(v)] if FIXTURES.is_dir() else []


# -- mutations -----------------------------------------------------------------------------
def _leaves(obj: Any, path: tuple = ()) -> list[tuple]:
    """Paths to every scalar and every list in a JSON value."""
    out: list[tuple] = []
    if isinstance(obj, dict):
        for k, v in obj.items():
            out += _leaves(v, (*path, k))
    elif isinstance(obj, list):
        out.append(path)
        for i, v in enumerate(obj):
            out += _leaves(v, (*path, i))
    else:
        out.append(path)
    return out


def _set(obj: Any, path: tuple, value: Any) -> Any:
    if not path:
        return value
    parent = obj
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return obj


def _numeric(obj: Any) -> list[tuple]:
    def is_num(v: Any) -> bool:
        return (isinstance(v, int | float) and not isinstance(v, bool)) or (
            isinstance(v, str) and re.fullmatch(r"-?\d+(\.\d+)?([eE][-+]?\d+)?", v) is not None)
    out = []
    for p in _leaves(obj):
        v = obj
        for k in p:
            v = v[k]
        if is_num(v):
            out.append(p)
    return out


def _with_value(values: list[Any]) -> Callable[[Any, random.Random], Any]:
    """Replace a random number (JSON number or number-as-text) with one of ``values``,
    keeping text as text."""
    def mutate(obj: Any, rng: random.Random) -> Any:
        paths = _numeric(obj)
        if not paths:
            return None
        p = rng.choice(paths)
        v = obj
        for k in p:
            v = v[k]
        new = rng.choice(values)
        return _set(obj, p, str(new) if isinstance(v, str) else new)
    return mutate


def _wrong_type(obj: Any, rng: random.Random) -> Any:
    paths = [p for p in _leaves(obj) if p]
    return _set(obj, rng.choice(paths), rng.choice([{}, [], True, None, "x", 1, [[1, 2]], {"a": 1}])) if paths \
        else None


def _missing(obj: Any, rng: random.Random) -> Any:
    keyed = [p for p in _leaves(obj) if p and isinstance(p[-1], str)]
    if not keyed:
        return None
    p = rng.choice(keyed)
    parent = obj
    for key in p[:-1]:
        parent = parent[key]
    if isinstance(parent, dict):
        parent.pop(p[-1], None)
    return obj


def _empty_arrays(obj: Any, rng: random.Random) -> Any:
    lists = [p for p in _leaves(obj) if p and isinstance(_get(obj, p), list)]
    return _set(obj, rng.choice(lists), []) if lists else None


def _get(obj: Any, path: tuple) -> Any:
    for k in path:
        obj = obj[k]
    return obj


JSON_MUTATIONS = {
    "wrong_type": _wrong_type,
    "missing_field": _missing,
    "huge_number": _with_value([1e308, -1e308, 10**30, "1e999", 99999999999999999999999999999]),
    "nan_inf": _with_value(["NaN", "nan", "Infinity", "-Infinity", "inf"]),
    "zero_negative": _with_value([0, -1, -0.0, "0", "-5", "-0.000001"]),
    "empty_arrays": _empty_arrays,
}


def mutate(line: bytes, rng: random.Random) -> tuple[str, bytes]:
    kind = rng.choice([*JSON_MUTATIONS, "truncated", "binary", "long", "broken_unicode", "raw_nan"])
    if kind == "truncated":
        return kind, line[: rng.randrange(max(1, len(line)))]
    if kind == "binary":
        return kind, bytes(rng.randrange(256) for _ in range(rng.randrange(1, 300))).replace(b"\n", b" ")
    if kind == "long":
        pad = b"9" * rng.choice([10_000, 200_000])
        return kind, line.replace(b'"', b'"' + pad, 1) if rng.random() < 0.5 else line[:-1] + b',"x":"' + pad + b'"}'
    if kind == "broken_unicode":
        at = rng.randrange(len(line))
        return kind, line[:at] + rng.choice([b"\xff\xfe", b"\xc3", b"\xed\xa0\x80", b"\\ud800"]) + line[at:]
    if kind == "raw_nan":  # bare NaN tokens, as some encoders write them
        return kind, re.sub(rb'"(-?\d+\.\d+)"', lambda m: rng.choice([b"NaN", b"Infinity", m.group(0)]), line)
    try:
        obj = json.loads(line)
    except ValueError:
        return "truncated", line[: len(line) // 2]
    out = JSON_MUTATIONS[kind](obj, rng)
    if out is None:
        return "binary", b"\x00" + line
    return kind, json.dumps(out).encode()


def mutated(venue: str) -> list[bytes]:
    rng = random.Random(f"{SEED}:{venue}")
    lines = recorded(venue)
    return [mutate(rng.choice(lines), rng)[1].replace(b"\n", b" ") for _ in range(PER_VENUE)]


# -- what may come out ---------------------------------------------------------------------
def plausible_row(row: dict) -> bool:
    """A decoded event as printed (JSON: NaN and infinities print as null)."""
    def px(x: Any) -> bool:
        return isinstance(x, int | float) and math.isfinite(x) and x > 0

    def qty(x: Any) -> bool:
        return isinstance(x, int | float) and math.isfinite(x) and x >= 0

    t = row["type"]
    if t == "quote":
        return all((px(row[f"{s}_px"]) or (row[f"{s}_px"] == 0 and row[f"{s}_qty"] == 0)) and qty(row[f"{s}_qty"])
                   for s in ("bid", "ask"))
    if t in ("book_snapshot", "book_delta"):
        return all(px(p) and qty(q) for p, q in row["bids"] + row["asks"])
    if t == "trade":
        return px(row["px"]) and qty(row["qty"])
    if t == "funding":
        return (isinstance(row["rate"], float) and abs(row["rate"]) <= 0.05
                and (row["predicted_rate"] is None or abs(row["predicted_rate"]) <= 0.05)
                and row["interval_h"] > 0 and all(row[k] is None or px(row[k]) for k in ("mark_px", "index_px")))
    return False


def plausible_event(ev: object) -> bool:
    if isinstance(ev, Quote):
        return plausible_row({"type": "quote", "bid_px": ev.bid_px, "bid_qty": ev.bid_qty, "ask_px": ev.ask_px,
                              "ask_qty": ev.ask_qty})
    if isinstance(ev, BookSnapshot | BookDelta):
        return plausible_row({"type": "book_delta", "bids": list(ev.bids), "asks": list(ev.asks)})
    if isinstance(ev, Trade):
        return plausible_row({"type": "trade", "px": ev.px, "qty": ev.qty})
    if isinstance(ev, Funding):
        return plausible_row({"type": "funding", "rate": ev.rate, "predicted_rate": ev.predicted_rate,
                              "interval_h": ev.interval_h, "mark_px": ev.mark_px, "index_px": ev.index_px})
    return False


def rejected_lines(venue: str, lines: list[bytes], registry: Registry) -> set[int]:
    """Line numbers the decode path refuses, decoded one by one in a fresh adapter."""
    adapter = venue_class(venue)(registry)
    bad = set()
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            adapter.decode(line.strip(), 0)
        except DecodeError:
            bad.add(n)
    return bad


# -- the tests -----------------------------------------------------------------------------
def test_every_venue_with_recorded_market_data_is_fuzzed() -> None:
    assert set(venue_ids()) - set(VENUES) <= {"coindcx"}


@pytest.mark.parametrize("venue", VENUES)
def test_decode_survives_mutated_messages(venue: str, tmp_path: Path) -> None:
    lines = mutated(venue)
    path = tmp_path / "fuzz.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    meta = []
    for i, body in enumerate(metadata_bodies(venue)):
        (tmp_path / f"meta{i}.json").write_bytes(body)
        meta += ["--metadata", str(tmp_path / f"meta{i}.json")]
    result = CliRunner().invoke(app, ["decode", "--venue", venue, str(path), *meta])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    rows = [json.loads(x) for x in result.stdout.splitlines()]
    assert [r for r in rows if not plausible_row(r)] == []
    reported = {int(m) for m in re.findall(r"^line (\d+): ", result.stderr, re.M)}
    rejected = rejected_lines(venue, lines, registry_for(venue))
    assert rejected, "the mutations must break some lines"
    assert rejected <= reported  # every rejected line named (unknown symbols are reported too)
    assert result.exit_code == 1


@pytest.mark.parametrize("venue", VENUES)
def test_engine_survives_mutated_messages(venue: str) -> None:
    lines = mutated(venue)
    clean = recorded(venue)
    # Recorded times go back to 2019: the clock window is widened to keep them, so that the
    # values, not the dates, are what the engine judges here.
    engine = Engine(registry_for(venue), [venue], Scanner(ScanSettings(clock_window_s=20 * 365 * 86_400)))
    engine.set_connected(venue, True, 0)
    seen: list[object] = []
    handle = engine.on_event

    def spy(ev: object) -> None:
        seen.append(ev)
        handle(ev)

    engine.on_event = spy  # type: ignore[method-assign]
    recv = 1_700_000_000_000_000_000
    rng = random.Random(SEED)
    for n, line in enumerate(lines):
        # Clean messages between the broken ones keep books and funding alive.
        engine.on_message(venue, rng.choice(clean), recv + 2 * n)
        engine.on_message(venue, line, recv + 2 * n + 1)
    assert seen, "some messages must get through"
    assert [ev for ev in seen if not plausible_event(ev)] == []
    st = engine.status[venue]
    assert st.messages == 2 * len(lines) and st.decode_errors > 0
    assert sum(st.errors_by_reason.values()) == st.decode_errors
    for sb in engine.books.values():
        for side in (sb.book.bids, sb.book.asks):
            assert len(side.keys) == len(side.levels)
            assert all(math.isfinite(p) and p > 0 and math.isfinite(q) and q > 0 for p, q in side.top(10_000))
    for f in engine.funding.values():
        assert plausible_event(f)
