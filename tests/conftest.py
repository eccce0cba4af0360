from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(os.environ.get("PERPARB_FIXTURES", ROOT.parent / "shared" / "fixtures"))


def fixture_path(venue: str, name: str) -> Path:
    path = FIXTURES / venue / name
    if not path.exists():
        pytest.fail(f"recorded fixture missing: {path} (set PERPARB_FIXTURES to the shared fixtures folder)")
    return path


def fixture_lines(venue: str, name: str) -> list[bytes]:
    return [line.rstrip(b"\n") for line in fixture_path(venue, name).read_bytes().splitlines() if line.strip()]


def fixture_files(venue: str) -> list[Path]:
    folder = FIXTURES / venue
    if not folder.is_dir():
        pytest.fail(f"recorded fixtures missing: {folder} (set PERPARB_FIXTURES to the shared fixtures folder)")
    return sorted(folder.glob("*.jsonl"))


@pytest.fixture
async def dash() -> AsyncIterator[object]:
    """The dashboard over three simulated venues, every crossing pair an opportunity (the
    table certainly fills) and a funding alert rule (tests/dashboard_helpers.py)."""
    from dashboard_helpers import open_dashboard

    async with open_dashboard({
        "scanner.min_edge_bps": -1000,
        "alerts.rules": [{"name": "carry", "kind": "funding", "min_apr": 0.2}],
    }) as d:
        yield d


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # A snapshot refreshed on the developer's machine must not change test results.
    monkeypatch.setenv("PERPARB_HOME", str(tmp_path_factory.mktemp("perparb-home")))


REL = 1e-12  # normalized values are computed the same way in tests and code: equal but for rounding


def same(actual: object, expected: object) -> bool:
    """``actual`` equals ``expected``: floats within REL (and floats, not ints), sequences
    element by element, everything else exactly and of the same type."""
    if isinstance(expected, float):
        return isinstance(actual, float) and actual == pytest.approx(expected, rel=REL)
    if isinstance(expected, list | tuple):
        return (isinstance(actual, list | tuple) and len(actual) == len(expected)
                and all(same(a, e) for a, e in zip(actual, expected, strict=True)))
    return actual == expected and type(actual) is type(expected)


def check_events(events: list, expected: list[tuple[type, dict]], where: str) -> None:
    """Events of the expected types, in order, with every expected field equal (``same``)."""
    assert [type(e) for e in events] == [t for t, _ in expected], where
    for ev, (_, fields) in zip(events, expected, strict=True):
        for key, value in fields.items():
            assert same(getattr(ev, key), value), f"{where} {key}: {getattr(ev, key)!r} != {value!r}"


PG_URL = os.environ.get("PERPARB_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema-name prefix on the real PostgreSQL server; every schema whose name
    starts with it is dropped afterwards. Unreachable: a failure under CI=true, else a skip."""
    import uuid

    import psycopg

    try:
        admin = psycopg.connect(PG_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"PostgreSQL at {PG_URL} is unreachable under CI (.ci/run starts it): {exc}")
        pytest.skip(f"PostgreSQL at {PG_URL} is unreachable (outside CI): {exc}")
    prefix = f"perparb_test_{uuid.uuid4().hex[:12]}"
    try:
        yield prefix
    finally:
        for (name,) in admin.execute("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE %s",
                                     (prefix + "%",)).fetchall():
            admin.execute(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
        admin.close()
