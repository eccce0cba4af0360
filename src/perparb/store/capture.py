"""Capture format v1: what the transport handed to the engine, exactly, one JSON object per
line, ordered by ``recv_ns``; plain ``.jsonl`` or zstd-compressed ``.jsonl.zst``.

    {"recv_ns": <int>, "venue": "<id>", "src": "ws", "raw": "<message text as received>"}
    {"recv_ns": <int>, "venue": "<id>", "src": "rest", "path": "<path?query>", "raw": "<body>"}

For POST requests with a JSON body the body's fields are written as query parameters
(``/info?type=meta``). Replay re-enters the engine at the same point the live transport
does, so everything downstream runs exactly as it did live.
"""

from __future__ import annotations

import heapq
import io
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


class CaptureError(ValueError):
    pass


_enc = msgspec.json.Encoder()
_dec = msgspec.json.Decoder(Record)


def _open_read(path: Path) -> IO[bytes]:
    fh = path.open("rb")
    if path.suffix == ".zst":
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(fh, closefd=True))
    return fh


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

    def write(self, venue: str, src: str, raw: str | bytes, recv_ns: int, path: str | None = None) -> None:
        text = raw if isinstance(raw, str) else raw.decode("utf-8", "replace")
        line = _enc.encode(Record(recv_ns=recv_ns, venue=venue, src=src, raw=text, path=path)) + b"\n"
        (self._zst or self._fh).write(line)
        self.records += 1

    def close(self) -> None:
        if self._zst is not None:
            self._zst.close()
        else:
            self._fh.close()

    def __enter__(self) -> CaptureWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_capture(path: Path) -> Iterator[Record]:
    """Records of one file; a bad line raises CaptureError naming the file and line."""
    with _open_read(path) as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = _dec.decode(line)
            except (msgspec.DecodeError, msgspec.ValidationError) as exc:
                raise CaptureError(f"{path}:{n}: not a capture record: {exc}") from None
            if rec.src not in ("ws", "rest") or (rec.src == "rest" and not rec.path):
                raise CaptureError(f"{path}:{n}: src must be 'ws', or 'rest' with a path")
            yield rec


def merge_captures(paths: Iterable[Path]) -> Iterator[Record]:
    """All records of several files in ``recv_ns`` order (files are each ordered; ties keep
    the order of the files given)."""
    its = [((r.recv_ns, i, r) for r in read_capture(p)) for i, p in enumerate(paths)]
    return (r for _, _, r in heapq.merge(*its, key=lambda x: (x[0], x[1])))
