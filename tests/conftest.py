from __future__ import annotations

import os
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


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    # A snapshot refreshed on the developer's machine must not change test results.
    monkeypatch.setenv("PERPARB_HOME", str(tmp_path_factory.mktemp("perparb-home")))
