"""``perparb markets --refresh``: rebuild the instrument snapshot from the venues' REST APIs."""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import aiohttp
import msgspec

from perparb.instruments.registry import Registry
from perparb.instruments.snapshot import Snapshot, SourceInfo, save_snapshot
from perparb.venues import venue_ids

log = logging.getLogger("perparb.instruments")


def user_snapshot_path() -> Path:
    return Path(os.environ.get("PERPARB_HOME", Path.home() / ".perparb")) / "instruments.json"


async def refresh_snapshot(out: Path | None = None, venues: list[str] | None = None,
                           endpoints: dict[str, dict[str, str]] | None = None) -> Path:
    """Load every venue's metadata exactly as a live session does (same REST calls, same
    parsers) and write the result as the snapshot used from then on."""
    from perparb.engine import Engine
    from perparb.feeds.runtime import VenueFeed

    engine = Engine(Registry(), venues or venue_ids())
    sources: dict[str, str] = {}
    infos: dict[str, list[SourceInfo]] = {}
    async with aiohttp.ClientSession() as http:
        for vid, adapter in engine.adapters.items():
            ep = (endpoints or {}).get(vid, {})
            feed = VenueFeed(engine, vid, [], ep.get("ws_url", adapter.ws_url), ep.get("rest_url", adapter.rest_url),
                             http=http)
            before = len(engine.registry.for_venue(vid))
            await feed.load_metadata()
            table = engine.registry.venue_table(vid)
            if len(table) > before:
                sources[vid] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                where = f"live {ep.get('rest_url', adapter.rest_url)}"
                table.update({k: msgspec.structs.replace(i, source=where) for k, i in table.items()})
                infos[vid] = [SourceInfo(file=where, path=" ".join(adapter.metadata_paths), date=sources[vid],
                                         scope="full", contracts=len(table))]
            else:
                log.warning("%s: no instruments loaded (offline, or the venue refused)", vid)
    if not len(engine.registry):
        raise RuntimeError("no venue answered; the snapshot was not changed")
    target = out or user_snapshot_path()
    save_snapshot(Snapshot(built_ns=time.time_ns(), sources=sources, instruments=engine.registry.all(), venues=infos),
                  target)
    return target
