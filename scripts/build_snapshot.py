"""Rebuild the bundled instrument snapshot from recorded REST metadata responses.

Offline counterpart of ``perparb markets --refresh``: the same venue ``parse_metadata``
code, fed from saved responses instead of the network. Later files override earlier
ones, so list older recordings first.

    python scripts/build_snapshot.py ../shared/fixtures
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from perparb.instruments.registry import Registry
from perparb.instruments.snapshot import Snapshot, bundled_path, save_snapshot
from perparb.venues import venue_class

# (venue, REST path the response answered, file under the fixtures folder)
SOURCES = [
    ("binance", "/fapi/v1/exchangeInfo", "binance/cryptofeed_2021-07-22_rest_fapi_v1_exchangeInfo_full.jsonl"),
    ("binance", "/fapi/v1/exchangeInfo", "binance/nautilus_rest_fapi_v1_exchangeInfo_2022-02-19_excerpt.jsonl"),
    ("okx", "/api/v5/public/instruments?instType=SWAP", "okx/cryptofeed_2022-05-13_rest_v5_public_instruments_SWAP_full.jsonl"),
    ("okx", "/api/v5/public/instruments?instType=SWAP", "okx/nautilus_rest_v5_public_instruments_SWAP_2025-10_excerpt.jsonl"),
    ("bybit", "/v5/market/instruments-info?category=linear&limit=1000", "bybit/DOCEXAMPLE_bybit-docs_v5_rest_market.jsonl"),
]


def build(fixtures: Path) -> Snapshot:
    registry = Registry()
    sources = {}
    for venue, path, name in SOURCES:
        adapter = venue_class(venue)(registry)
        for line in (fixtures / name).read_bytes().splitlines():
            # Some files hold several responses; only instrument lists describe contracts.
            if b'"contractType"' in line or b'"instType"' in line or b'"symbols"' in line:
                registry.add_many(adapter.parse_metadata(path, line))
        sources[f"{venue} {path}"] = name
    return Snapshot(built_ns=time.time_ns(), sources=sources, instruments=registry.all())


if __name__ == "__main__":
    snap = build(Path(sys.argv[1] if len(sys.argv) > 1 else "../shared/fixtures"))
    save_snapshot(snap, bundled_path())
    print(f"{len(snap.instruments)} instruments written to {bundled_path()}")
