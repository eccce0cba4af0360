"""Long recordings: capture format v1 in zstd files rotated hourly, within a disk budget.

A file covers one UTC hour of receive time (``recv_ns``, the engine's clock) and is named
after its first record, ``capture-YYYYMMDDTHHMMSS.nnnnnnnnnZ.jsonl.zst``: names of fixed
width, so sorting the names sorts the time. Whole zstd frames are flushed to the OS at least
every ``flush_s``, so a killed process loses at most that much and every file, the one being
written included, replays (a frame cut short reads as the end of the file). With a budget
(``max_bytes``) the oldest files are deleted first, never the one being written.
"""

from __future__ import annotations

import glob
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO

import msgspec
import zstandard

from perparb.store.capture import Record

HOUR_NS = 3_600_000_000_000
PREFIX = "capture-"
SUFFIX = ".jsonl.zst"

_enc = msgspec.json.Encoder()


def file_name(recv_ns: int) -> str:
    """``capture-20261202T163712.123456789Z.jsonl.zst`` for the first record's receive time."""
    secs, ns = divmod(recv_ns, 1_000_000_000)
    return f"{PREFIX}{time.strftime('%Y%m%dT%H%M%S', time.gmtime(secs))}.{ns:09d}Z{SUFFIX}"


def recorded_files(directory: Path) -> list[Path]:
    """The rotated files of a recording directory, oldest first."""
    return sorted(p for p in directory.glob(f"{PREFIX}*{SUFFIX}") if p.is_file())


class RotatingWriter:
    """``CaptureWriter``'s interface (``write``, ``tick``, ``close``) over hourly files.

    ``clock`` (monotonic seconds) only paces the flushes: what is written, and where, follows
    the records' own receive times."""

    def __init__(self, directory: Path, max_bytes: int | None = None, flush_s: float = 1.0,
                 level: int = 3, clock: Callable[[], float] = time.monotonic) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.directory = directory
        self.max_bytes = max_bytes
        self.flush_s = flush_s
        self.clock = clock
        self._cctx = zstandard.ZstdCompressor(level=level)
        self._fh: IO[bytes] | None = None
        self._zst: zstandard.ZstdCompressionWriter | None = None
        self._hour = -1
        self._dirty = False
        self._flushed_at = clock()
        self.path: Path | None = None  # the file being written
        self.records = 0
        self.files = 0
        self.deleted: list[Path] = []

    def write(self, venue: str, src: str, raw: str | bytes, recv_ns: int, path: str | None = None) -> None:
        hour = recv_ns // HOUR_NS
        if hour > self._hour:  # a receive time that steps back stays in the current file
            self._rotate(recv_ns, hour)
        text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        assert self._zst is not None
        self._zst.write(_enc.encode(Record(recv_ns=recv_ns, venue=venue, src=src, raw=text, path=path)) + b"\n")
        self._dirty = True
        self.records += 1
        if self.clock() - self._flushed_at >= self.flush_s:
            self.flush()

    def tick(self) -> None:
        """Called on the session's timer: flushes when a quiet feed left data waiting."""
        if self._dirty and self.clock() - self._flushed_at >= self.flush_s:
            self.flush()

    def flush(self) -> None:
        """End the current zstd frame and hand it to the OS (a kill -9 then loses none of it)."""
        self._flushed_at = self.clock()
        if self._zst is None or not self._dirty:
            return
        self._zst.flush(zstandard.FLUSH_FRAME)
        assert self._fh is not None
        self._fh.flush()
        self._dirty = False
        self.enforce_budget()

    def _rotate(self, recv_ns: int, hour: int) -> None:
        self._close_file()
        path = self.directory / file_name(recv_ns)
        self._fh = path.open("xb")  # never overwrite: a name is one first record's time
        self._zst = self._cctx.stream_writer(self._fh, closefd=False)
        self.path, self._hour = path, hour
        self.files += 1
        self.enforce_budget()

    def _close_file(self) -> None:
        if self._zst is not None and self._fh is not None:
            self._zst.close()  # ends the frame
            self._fh.close()
        self._zst = self._fh = None
        self._dirty = False

    def enforce_budget(self) -> None:
        """Delete the oldest files until the recording fits ``max_bytes``; the file being
        written is never deleted, even when it alone is over the budget."""
        if self.max_bytes is None:
            return
        files = recorded_files(self.directory)
        sizes = {p: p.stat().st_size for p in files}
        total = sum(sizes.values())
        for p in files:
            if total <= self.max_bytes:
                break
            if p == self.path:
                continue
            p.unlink(missing_ok=True)
            total -= sizes[p]
            self.deleted.append(p)

    def close(self) -> None:
        self._close_file()
        self.enforce_budget()

    def __enter__(self) -> RotatingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


INPUT_SUFFIXES = (".jsonl", ".jsonl.zst", ".csv", ".csv.gz")  # captures and Tardis.dev CSV files


def capture_inputs(args: list[str]) -> list[Path]:
    """Replay inputs named by files, directories (their capture and Tardis CSV files, in name
    order: a recording's time order) and quoted globs. Raises ``FileNotFoundError`` naming an
    argument that matches nothing."""
    out: list[Path] = []
    for arg in args:
        p = Path(arg)
        if p.is_dir():
            found = sorted(f for f in p.iterdir() if f.is_file() and f.name.endswith(INPUT_SUFFIXES))
        elif p.exists():
            found = [p]
        elif any(c in arg for c in "*?["):
            found = sorted(Path(f) for f in glob.glob(arg) if Path(f).is_file())
        else:
            found = []
        if not found:
            raise FileNotFoundError(f"{arg}: no such capture file, directory of captures or matching glob")
        out.extend(found)
    return out
