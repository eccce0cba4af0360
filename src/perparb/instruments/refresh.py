"""``perparb markets --refresh``: rebuild the instrument snapshot from the venues' REST APIs."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import aiohttp

from perparb.instruments.registry import Registry
from perparb.instruments.snapshot import Snapshot, save_snapshot
from perparb.venues import venue_class, venue_ids

log = logging.getLogger("perparb.instruments")


def user_snapshot_path() -> Path:
    return Path(os.environ.get("PERPARB_HOME", Path.home() / ".perparb")) / "instruments.json"


async def refresh_snapshot(out: Path | None = None) -> Path:
    registry = Registry()
    sources: dict[str, str] = {}
    async with aiohttp.ClientSession() as http:
        for vid in venue_ids():
            adapter = venue_class(vid)(registry)
            for path in adapter.metadata_paths:
                try:
                    async with http.get(adapter.rest_url + path, timeout=aiohttp.ClientTimeout(total=20)) as r:
                        body = await r.read()
                        r.raise_for_status()
                except (aiohttp.ClientError, TimeoutError) as exc:
                    log.warning("%s %s: %s", vid, path, exc)
                    continue
                registry.add_many(adapter.parse_metadata(path, body))
                sources[f"{vid} {path}"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    if not len(registry):
        raise RuntimeError("no venue answered; the snapshot was not changed")
    target = out or user_snapshot_path()
    save_snapshot(Snapshot(built_ns=time.time_ns(), sources=sources, instruments=registry.all()), target)
    return target
