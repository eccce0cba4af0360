"""Long recordings: hourly rotation by receive time, the disk budget, frames flushed every
second, and a real recorder killed with SIGKILL whose files all replay."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perparb.cli import app
from perparb.store.capture import ReadReport, merge_captures, read_capture
from perparb.store.recorder import RotatingWriter

HOUR = 3_600_000_000_000
T0 = 1_795_305_600 * 1_000_000_000  # 2026-11-22 00:00:00 UTC, an hour boundary
assert T0 % HOUR == 0


class Clock:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def _name(recv_ns: int) -> str:
    s, ns = divmod(recv_ns, 1_000_000_000)
    return datetime.fromtimestamp(s, UTC).strftime("capture-%Y%m%dT%H%M%S") + f".{ns:09d}Z.jsonl.zst"


def _raw(i: int) -> str:
    # Incompressible but the same every time: the budget test writes the same bytes twice.
    return json.dumps({"i": i, "pad": random.Random(i).randbytes(48).hex()})


def _read(path: Path) -> tuple[list[int], ReadReport]:
    report = ReadReport()
    return [r.recv_ns for r in read_capture(path, report)], report


def test_files_rotate_on_the_hour_of_receive_time_and_names_sort_by_time(tmp_path: Path) -> None:
    times = [T0 + 5, T0 + 60 * 10**9,         # hour 0
             T0 + HOUR, T0 + HOUR + 7,         # hour 1: the boundary itself opens it
             T0 + 3 * HOUR + 2,                # hour 3 (nothing in hour 2)
             T0 + 3 * HOUR - 10]               # steps back a little: stays in the current file
    with RotatingWriter(tmp_path, clock=Clock()) as w:
        for i, t in enumerate(times):
            w.write("binance", "ws", _raw(i), t)
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == [_name(T0 + 5), _name(T0 + HOUR), _name(T0 + 3 * HOUR + 2)]
    assert names[0] == "capture-20261122T000000.000000005Z.jsonl.zst"
    got = [_read(tmp_path / n)[0] for n in names]
    assert got == [times[0:2], times[2:4], times[4:6]]
    # Name order is time order: the whole directory merges back to the written records.
    assert [r.recv_ns for r in merge_captures([tmp_path / n for n in names])] == times


def _hours(w: RotatingWriter, counts: list[int]) -> None:
    i = 0
    for h, n in enumerate(counts):
        for k in range(n):
            w.write("okx", "ws", _raw(i), T0 + h * HOUR + k * 1_000_000)
            i += 1


def test_disk_budget_deletes_the_oldest_files_first(tmp_path: Path) -> None:
    counts = [40, 40, 40, 80]  # the last hour is the largest
    free = tmp_path / "free"
    with RotatingWriter(free, clock=Clock()) as w:
        _hours(w, counts)
    files = sorted(free.iterdir())
    sizes = [p.stat().st_size for p in files]
    assert len(sizes) == 4 and sizes[3] > sizes[0]
    # zstd output is a function of its input: the same records make the same files again.
    budget = sizes[1] + sizes[2] + sizes[3] - 1  # all four do not fit, nor the last three
    kept = tmp_path / "kept"
    with RotatingWriter(kept, max_bytes=budget, clock=Clock()) as w:
        _hours(w, counts)
    assert sorted(p.name for p in kept.iterdir()) == [files[2].name, files[3].name]
    assert sum(p.stat().st_size for p in kept.iterdir()) == sizes[2] + sizes[3] <= budget
    assert [p.name for p in w.deleted] == [files[0].name, files[1].name]


def test_disk_budget_never_deletes_the_file_being_written(tmp_path: Path) -> None:
    clock = Clock()
    w = RotatingWriter(tmp_path, max_bytes=1, clock=clock)
    _hours(w, [10, 10, 10])
    clock.t = 1.0
    w.tick()  # flushes the current file, then applies the budget
    assert w.path is not None
    assert list(tmp_path.iterdir()) == [w.path]  # over budget alone, and kept
    recs, report = _read(w.path)
    assert len(recs) == 10 and not report.unreadable
    w.close()
    assert list(tmp_path.iterdir()) == [w.path]  # the newest file stays after closing too


def test_whole_frames_reach_the_file_every_second(tmp_path: Path) -> None:
    clock = Clock()
    w = RotatingWriter(tmp_path, clock=clock)
    w.write("bybit", "ws", _raw(0), T0 + 1)
    assert w.path is not None
    assert _read(w.path)[0] == []  # still in the compressor
    clock.t = 0.99
    w.tick()
    assert _read(w.path)[0] == []
    clock.t = 1.0
    w.tick()  # a second since the last flush: the frame is ended and handed to the OS
    recs, report = _read(w.path)
    assert recs == [T0 + 1] and report.truncated == 0 and not report.unreadable
    clock.t = 1.5
    w.write("bybit", "ws", _raw(1), T0 + 2)
    assert _read(w.path)[0] == [T0 + 1]
    clock.t = 2.0
    w.write("bybit", "ws", _raw(2), T0 + 3)  # a busy feed flushes on write
    assert _read(w.path)[0] == [T0 + 1, T0 + 2, T0 + 3]
    w.close()


def test_replay_takes_a_directory_or_a_glob_and_merges_by_receive_time(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    with RotatingWriter(rec, clock=Clock()) as w:
        for i, t in enumerate([T0 + 1, T0 + HOUR + 1, T0 + 2 * HOUR + 1]):
            w.write("nosuchvenue", "ws", _raw(i), t)
    runner = CliRunner()
    for arg in ([str(rec)], [str(rec / "capture-*.jsonl.zst")], [str(p) for p in sorted(rec.iterdir())]):
        result = runner.invoke(app, ["replay", *arg, "--json"])
        assert result.exit_code == 0, result.output
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        assert summary["records"] == 3 and summary["unreadable"] == [] and summary["truncated"] == 0
    missing = runner.invoke(app, ["replay", str(tmp_path / "nothing-*.zst")])
    assert missing.exit_code == 2
    assert "nothing-*.zst" in missing.output


def _replay_dir(rec: Path) -> tuple[list[int], ReadReport]:
    report = ReadReport()
    files = sorted(rec.iterdir())
    return [r.recv_ns for r in merge_captures(files, report)], report


@pytest.mark.timeout(240)
def test_a_recorder_killed_with_sigkill_leaves_every_file_replayable(tmp_path: Path) -> None:
    rec = tmp_path / "rec"
    exe = Path(sys.executable).with_name("perparb")
    proc = subprocess.Popen([str(exe), "record", "--sim", "--venues", "binance,okx", "--assets", "BTC",
                             "--out", str(rec)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # While it runs, never closing a file, the records keep arriving on disk: frames
        # are flushed as it goes, not at the end.
        seen: list[int] = []
        deadline = time.monotonic() + 180
        while len(seen) < 3 and time.monotonic() < deadline:
            time.sleep(0.5)
            if rec.exists() and any(rec.iterdir()):
                n = len(_replay_dir(rec)[0])
                if n > (seen[-1] if seen else 0):
                    seen.append(n)
        assert len(seen) == 3, "the recorder never flushed three times"
        assert proc.poll() is None
        before_kill = _replay_dir(rec)[0]
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == -signal.SIGKILL
    after, report = _replay_dir(rec)
    assert not report.unreadable and report.bad_lines == 0
    # Everything on disk before the kill survives it, in order.
    assert after[: len(before_kill)] == before_kill and len(after) >= len(before_kill) > 0
    result = subprocess.run([str(exe), "replay", str(rec), "--json"], capture_output=True, text=True, timeout=120,
                            check=False)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["records"] == len(after) and summary["decode_errors"] == 0
    assert set(summary["venues"]) == {"binance", "okx"}


def test_demo_records_to_a_directory_and_keeps_its_single_capture_file(tmp_path: Path) -> None:
    """--record DIR and --capture FILE together: both get every record."""
    exe = Path(sys.executable).with_name("perparb")
    rec, cap = tmp_path / "rec", tmp_path / "one.jsonl.zst"
    proc = subprocess.run([str(exe), "demo", "--duration", "2", "--no-api", "--json", "--venues", "binance,okx",
                           "--assets", "BTC", "--record", str(rec), "--capture", str(cap)],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    recorded, report = _replay_dir(rec)
    single = [r.recv_ns for r in read_capture(cap)]
    assert recorded == single and len(single) > 10 and not report.unreadable and report.truncated == 0
    assert all(p.name.startswith("capture-") and p.name.endswith(".jsonl.zst") for p in rec.iterdir())
