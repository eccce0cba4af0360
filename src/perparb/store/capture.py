"""Capture format v1: what the transport handed to the engine, exactly, one JSON object per
line, ordered by ``recv_ns``; plain ``.jsonl`` or zstd-compressed ``.jsonl.zst``.

    {"recv_ns": <int>, "venue": "<id>", "src": "ws", "raw": "<message text as received>"}
    {"recv_ns": <int>, "venue": "<id>", "src": "rest", "path": "<path?query>", "raw": "<body>"}

For POST requests with a JSON body the body's fields are written as query parameters
(``/info?type=meta``). Replay re-enters the engine at the same point the live transport
does, so everything downstream runs exactly as it did live.

Reading never stops at a bad line: lines that are not records are skipped and reported
with their file and line number, a final line or zstd frame cut short (what a crash leaves)
is read as the end of the file, and a file that cannot be read at all is reported by name
while the other files go on (``ReadReport``).
"""

from __future__ import annotations

import heapq
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

import msgspec
import zstandard


class Record(msgspec.Struct, omit_defaults=True):
    recv_ns: int
    venue: str
    src: str
    raw: str
    path: str | None = None


# A record this far from the receive times around it is a broken clock, not a quiet session
# (the engine's clock_window_s, whose default this is).
WINDOW_NS = 600_000_000_000
MAX_PROBLEMS = 1000


_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(Record)


class CaptureWriter:
    """Appends records; ``.zst`` paths are compressed. Writes are buffered, not per message."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fh: IO[bytes] = path.open("wb")
        self._zst = None
        if path.suffix == ".zst":
            self._zst = zstandard.ZstdCompressor(level=3).stream_writer(self._fh)
        self.records = 0
        self._flushed_at = time.monotonic()

    def write(self, venue: str, src: str, raw: str | bytes, recv_ns: int, path: str | None = None) -> None:
        text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        line = _enc.encode(Record(recv_ns=recv_ns, venue=venue, src=src, raw=text, path=path)) + b"\n"
        (self._zst or self._fh).write(line)
        self.records += 1

    def tick(self) -> None:
        """On the session's timer: about once a second, end the zstd frame and hand the data
        to the OS, so a killed process leaves a file that replays up to that point."""
        if time.monotonic() - self._flushed_at < 1.0:
            return
        self._flushed_at = time.monotonic()
        if self._zst is not None:
            self._zst.flush(zstandard.FLUSH_FRAME)
        self._fh.flush()

    def close(self) -> None:
        if self._zst is not None:
            self._zst.close()
        else:
            self._fh.close()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class ReadReport:
    """What reading captures skipped, and why. Every problem names the file and the line."""

    def __init__(self) -> None:
        self.bad_lines = 0  # lines that are not capture records, or records out of time order
        self.truncated = 0  # files that ended inside a line or a zstd frame (what a crash leaves)
        self.unreadable: list[str] = []  # files that could not be read at all
        self.bytes_read = 0  # from disk (compressed), for progress
        self.problems: list[str] = []  # the first MAX_PROBLEMS messages
        # Tardis.dev CSV inputs (perparb.replay.tardis): rows read, rows of symbols the registry
        # does not know ("exchange symbol" -> rows), rows left out by design (reason -> rows).
        self.rows = 0
        self.unknown_symbols: Counter[str] = Counter()
        self.skipped: Counter[str] = Counter()

    def note(self, text: str) -> None:
        if len(self.problems) < MAX_PROBLEMS:
            self.problems.append(text)

    def bad(self, path: Path, n: int, what: str) -> None:
        self.bad_lines += 1
        self.note(f"{path}:{n}: {what}")


def _lines(path: Path, report: ReadReport) -> Iterator[tuple[int, bytes, bool]]:
    """Numbered lines of a file without their newline, and whether the line ended (False
    for a last line the file was cut inside)."""
    n = 0
    cut = [False]  # a zstd frame that never ended
    try:
        with path.open("rb") as fh:
            raw = _counted(fh, report)
            chunks = _zstd_chunks(raw, cut) if path.suffix == ".zst" else raw
            rest = b""
            for chunk in chunks:
                parts = (rest + chunk).split(b"\n")
                rest = parts.pop()
                for line in parts:
                    n += 1
                    yield n, line, True
            if rest:
                yield n + 1, rest, False  # read as a truncated final line
            elif cut[0]:
                report.truncated += 1
                report.note(f"{path}:{n + 1}: zstd frame cut short, read as the end of the file")
    except zstandard.ZstdError as exc:
        if n == 0:
            report.unreadable.append(str(path))
            report.note(f"{path}: not a zstd file ({exc})")
        else:
            report.truncated += 1
            report.note(f"{path}:{n + 1}: zstd data broken ({exc}), read as the end of the file")
    except OSError as exc:
        report.unreadable.append(str(path))
        report.note(f"{path}: {exc.strerror or exc}")


def _counted(fh: IO[bytes], report: ReadReport) -> Iterator[bytes]:
    for data in iter(lambda: fh.read(1 << 20), b""):
        report.bytes_read += len(data)
        yield data


def _zstd_chunks(raw: Iterator[bytes], cut: list[bool]) -> Iterator[bytes]:
    """Decompressed data of every zstd frame; ``cut[0]`` ends True if the last frame never
    ended (its writer was killed)."""
    dobj = zstandard.ZstdDecompressor().decompressobj()
    for data in raw:
        chunk = data
        while chunk:
            cut[0] = True
            yield dobj.decompress(chunk)
            if not dobj.eof:
                break
            chunk, cut[0] = dobj.unused_data, False
            dobj = zstandard.ZstdDecompressor().decompressobj()


def _records(path: Path, report: ReadReport) -> Iterator[tuple[int, Record]]:
    for n, line, ended in _lines(path, report):
        if not line or line.isspace():
            continue
        try:
            rec = _dec.decode(line)
        except (msgspec.DecodeError, msgspec.ValidationError, UnicodeDecodeError) as exc:
            if not ended:  # the last line, cut short by a crash
                report.truncated += 1
                report.note(f"{path}:{n}: truncated final line, read as the end of the file")
            else:
                report.bad(path, n, f"not a capture record: {exc}")
            continue
        if rec.src not in ("ws", "rest") or (rec.src == "rest" and not rec.path):
            report.bad(path, n, "src must be 'ws', or 'rest' with a path")
            continue
        yield n, rec


def read_capture(path: Path, report: ReadReport | None = None, window_ns: int = WINDOW_NS) -> Iterator[Record]:
    """Records of one file, in its order, leaving out (and reporting) lines that are not
    records and records whose receive time is far outside the file's own clock.

    A record more than ``window_ns`` ahead of the one before it stands only if the next
    record confirms the jump (a session that was quiet for a while); one that the file then
    goes back from, or that no record follows, is a bad line, and so is one more than
    ``window_ns`` behind the record before it. So a bad clock never moves the replay's clock.
    """
    report = report if report is not None else ReadReport()
    prev: int | None = None  # receive time of the last record given out
    held: tuple[int, Record] | None = None  # a jump waiting for the next record
    for n, rec in _records(path, report):
        t = rec.recv_ns
        if held is not None:
            hn, h = held
            held = None
            if t < h.recv_ns - window_ns:
                report.bad(path, hn, _off(h.recv_ns, prev, "ahead of the records around it"))
            else:
                prev = h.recv_ns
                yield h
        if prev is not None and t < prev - window_ns:
            report.bad(path, n, _off(t, prev, "behind the record before it"))
            continue
        if prev is None or t > prev + window_ns:
            held = (n, rec)
            continue
        prev = t
        yield rec
    if held is not None:
        hn, h = held
        if prev is None:
            yield h  # the file's only record
        else:
            report.bad(path, hn, _off(h.recv_ns, prev, "ahead of the record before it, and no record follows"))


def _off(t: int, ref: int | None, where: str) -> str:
    return f"recv_ns {t} is {abs(t - (ref or 0)) / 1e9:.0f} s {where}"


def merge_captures(paths: Iterable[Path], report: ReadReport | None = None,
                   window_ns: int = WINDOW_NS) -> Iterator[Record]:
    """All records of several files in ``recv_ns`` order (files are each ordered; ties keep
    the order of the files given). What is left out is in ``report``."""
    report = report if report is not None else ReadReport()
    files = list(paths)
    if len(files) == 1:  # already in order: no merge, no key per record
        return read_capture(files[0], report, window_ns)
    its = [((r.recv_ns, i, r) for r in read_capture(p, report, window_ns)) for i, p in enumerate(files)]
    return (r for _, _, r in heapq.merge(*its, key=lambda x: (x[0], x[1])))
