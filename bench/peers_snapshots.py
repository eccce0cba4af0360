"""Which recorded REST book snapshot belongs to which contract (both sides of
``bench/peers.py`` use this; standard library only, as cryptofeed's virtualenv runs it too).

The snapshot files hold the venue's responses in request order, and a response does not
name its contract. A snapshot belongs to the contract whose stream bridges its id: an
update with ``U <= id + 1`` and ``u >= id`` (Binance ``lastUpdateId``, Gate ``id``).
Pairing them by position instead seeds some books with another contract's snapshot."""

from __future__ import annotations

import json
from collections.abc import Iterable


def snapshot_symbols(stream: Iterable[str | bytes], snapshots: Iterable[str | bytes]) -> dict[str, str | bytes]:
    """Contract -> its snapshot line, for every snapshot some contract's stream bridges."""
    ranges: dict[str, list[tuple[int, int]]] = {}
    for line in stream:
        msg = json.loads(line)
        d = msg.get("data", msg.get("result")) if isinstance(msg, dict) else None
        if isinstance(d, dict) and {"s", "U", "u"} <= d.keys():
            ranges.setdefault(d["s"], []).append((d["U"], d["u"]))
    out: dict[str, str | bytes] = {}
    for snap in snapshots:
        body = json.loads(snap)
        sid = body.get("lastUpdateId", body.get("id"))
        if not isinstance(sid, int):
            continue
        for sym, rs in ranges.items():
            if sym not in out and any(first <= sid + 1 and last >= sid for first, last in rs):
                out[sym] = snap
                break
    return out
