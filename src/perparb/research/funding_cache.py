"""The funding-history cache: one Parquet dataset partitioned by venue and asset.

``DIR/venue=<venue>/asset=<asset>/rates.parquet`` holds the settled rates of that venue's
contracts for the asset (columns ``symbol``, ``ts`` (timestamp, ms, UTC), ``rate``), and
``_coverage.json`` beside it the time ranges already fetched per symbol, so a later run
asks the venue only for what is missing. A range fetched with no settlement in it is
covered too: nothing is asked twice. Files are replaced atomically; names starting with
``_`` are ignored by Parquet readers (pyarrow, DuckDB ``hive_partitioning``).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

SCHEMA = pa.schema([("symbol", pa.string()), ("ts", pa.timestamp("ms", tz="UTC")), ("rate", pa.float64())])
Range = tuple[int, int]  # inclusive, ms


def default_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "perparb" / "funding"


def subtract(want: Range, have: list[Range]) -> list[Range]:
    """The parts of ``want`` outside every range of ``have``."""
    out, lo = [], want[0]
    for a, b in sorted(have):
        if b < lo or a > want[1]:
            continue
        if a > lo:
            out.append((lo, a - 1))
        lo = max(lo, b + 1)
        if lo > want[1]:
            break
    if lo <= want[1]:
        out.append((lo, want[1]))
    return out


def merge(ranges: list[Range]) -> list[Range]:
    out: list[list[int]] = []
    for a, b in sorted(ranges):
        if out and a <= out[-1][1] + 1:
            out[-1][1] = max(out[-1][1], b)
        else:
            out.append([a, b])
    return [(a, b) for a, b in out]


class FundingCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def _dir(self, venue: str, asset: str) -> Path:
        return self.root / f"venue={venue}" / f"asset={asset}"

    def coverage(self, venue: str, asset: str, symbol: str) -> list[Range]:
        path = self._dir(venue, asset) / "_coverage.json"
        if not path.exists():
            return []
        return [(int(a), int(b)) for a, b in json.loads(path.read_text()).get(symbol, [])]

    def missing(self, venue: str, asset: str, symbol: str, lo: int, hi: int) -> list[Range]:
        return subtract((lo, hi), self.coverage(venue, asset, symbol))

    def load(self, venue: str, asset: str, symbol: str) -> list[tuple[int, float]]:
        """Settled rates of one contract, oldest first: (ms, rate)."""
        path = self._dir(venue, asset) / "rates.parquet"
        if not path.exists():
            return []
        t = pq.read_table(path, schema=SCHEMA)
        mask = pc.equal(t["symbol"], symbol)
        t = t.filter(mask)
        return sorted(zip(t["ts"].cast(pa.int64()).to_pylist(), t["rate"].to_pylist(), strict=True))

    def store(self, venue: str, asset: str, symbol: str, rows: list[tuple[int, float]], lo: int, hi: int) -> None:
        """Adds the rows fetched for [lo, hi] (a row already cached is replaced) and marks the range covered."""
        d = self._dir(venue, asset)
        d.mkdir(parents=True, exist_ok=True)
        path = d / "rates.parquet"
        kept: dict[tuple[str, int], float] = {}
        if path.exists():
            t = pq.read_table(path, schema=SCHEMA)
            for s, ts, r in zip(t["symbol"].to_pylist(), t["ts"].cast(pa.int64()).to_pylist(),
                                t["rate"].to_pylist(), strict=True):
                kept[(s, ts)] = r
        for ts, r in rows:
            kept[(symbol, ts)] = r
        keys = sorted(kept)
        table = pa.table({"symbol": pa.array([k[0] for k in keys], pa.string()),
                          "ts": pa.array([k[1] for k in keys], pa.int64()).cast(SCHEMA.field("ts").type),
                          "rate": pa.array([kept[k] for k in keys], pa.float64())}, schema=SCHEMA)
        tmp = d / "_rates.parquet.tmp"
        pq.write_table(table, tmp)
        os.replace(tmp, path)
        cov_path = d / "_coverage.json"
        cov = json.loads(cov_path.read_text()) if cov_path.exists() else {}
        cov[symbol] = [list(r) for r in merge([*(tuple(x) for x in cov.get(symbol, [])), (lo, hi)])]
        tmp = d / "_coverage.json.tmp"
        tmp.write_text(json.dumps(cov, sort_keys=True))
        os.replace(tmp, cov_path)
