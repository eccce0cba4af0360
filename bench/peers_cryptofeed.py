"""cryptofeed's side of ``bench/peers.py``. Runs under the benchmark's own virtualenv (with
cryptofeed installed), never under perparb's: it imports nothing from perparb.

Each exchange class processes recorded messages exactly as it does live: its
``message_handler`` is called with the raw text and a receive timestamp. Symbol tables are
loaded from the recorded REST metadata of the same session, and REST book snapshots come
from the recorded ones (the feed's HTTP read is answered from the file), so no network is
touched. Sequence checks are always on in cryptofeed; checksums are turned on where it
offers them (``checksum_validation=True``).

Protocol: one JSON request per stdin line ``{"row": ..., "seconds": ...}`` answered by one
JSON line ``{"messages", "seconds", "msgs_per_s", "levels", "resets"}``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sys
import time
from pathlib import Path
from typing import Any

from cryptofeed.defines import L2_BOOK, TICKER
from cryptofeed.exchanges import OKX, BinanceFutures, Bitget, Bitmex, GateioFutures
from cryptofeed.symbols import Symbols

from peers_snapshots import snapshot_symbols

logging.disable(logging.CRITICAL)  # cryptofeed logs every reset; the count is what we want


def _lines(path: Path) -> list[str]:
    return [ln.strip() for ln in path.read_text().splitlines() if ln.strip()]


class _Recorded:
    """Stands in for the feed's HTTP connection: answers REST snapshot reads from the file."""

    def __init__(self, by_symbol: dict[str, str]) -> None:
        self.by_symbol = by_symbol

    async def read(self, url: str, **_: Any) -> str:
        for sym, text in self.by_symbol.items():
            if f"={sym}&" in url or url.endswith(f"={sym}"):
                return text
        raise KeyError(f"no recorded snapshot for {url}")


def _load_symbols(cls: Any, data: Any) -> None:
    syms, info = cls._parse_symbol_data(data)
    Symbols.set(cls.id, syms, info)


class Row:
    """One benchmark row: a feed fed every line of a recorded file."""

    seed: list[str] = []  # contracts whose REST snapshot is loaded before each pass

    def __init__(self, fixtures: Path, spec: dict[str, Any]) -> None:
        self.kind = spec["row"]
        self.lines = _lines(fixtures / spec["file"])
        meta = fixtures / spec["metadata"]
        getattr(self, "_setup_" + self.kind)(meta, fixtures / spec["snapshots"] if spec.get("snapshots") else None)
        self.levels_per_pass = 0

    def _feed(self, cls: Any, channel: str, exch_symbols: list[str], **kw: Any) -> Any:
        feed = cls(symbols=[self._std(cls, s) for s in exch_symbols], channels=[channel],
                   callbacks={channel: self._cb}, **kw)
        return feed

    @staticmethod
    def _std(cls: Any, exch: str) -> str:
        return {v: k for k, v in Symbols.get(cls.id)[0].items()}[exch]

    async def _cb(self, obj: Any, receipt: float) -> None:
        delta = getattr(obj, "delta", None)
        if delta:
            self.levels_per_pass += sum(len(v) for v in delta.values())

    # -- setups ---------------------------------------------------------------------------
    def _setup_binance_depth(self, meta: Path, snaps: Path | None) -> None:
        _load_symbols(BinanceFutures, json.loads(meta.read_text()))
        syms = list(dict.fromkeys(json.loads(ln)["data"]["s"] for ln in self.lines))
        recorded = snapshot_symbols(self.lines, _lines(snaps)) if snaps else {}
        self.feed = self._feed(BinanceFutures, L2_BOOK, syms)
        self.feed.http_conn = _Recorded(recorded)
        self.reset = self.feed._reset
        self.seed = list(recorded)

    def _setup_binance_ticker(self, meta: Path, snaps: Path | None) -> None:
        _load_symbols(BinanceFutures, json.loads(meta.read_text()))
        syms = list(dict.fromkeys(json.loads(ln)["data"]["s"] for ln in self.lines))
        self.feed = self._feed(BinanceFutures, TICKER, syms)
        self.reset = lambda: None

    def _setup_okx_books(self, meta: Path, snaps: Path | None) -> None:
        _load_symbols(OKX, [json.loads(meta.read_text())])
        syms = list(dict.fromkeys(json.loads(ln)["arg"]["instId"] for ln in self.lines))
        self.feed = self._feed(OKX, L2_BOOK, syms, checksum_validation=True)
        self.reset = lambda: None  # every pass starts with the recorded snapshot

    def _setup_gate_books(self, meta: Path, snaps: Path | None) -> None:
        _load_symbols(GateioFutures, json.loads(meta.read_text()))
        syms = list(dict.fromkeys(m["result"]["s"] for ln in self.lines
                                  if isinstance((m := json.loads(ln)).get("result"), dict) and "s" in m["result"]))
        recorded = snapshot_symbols(self.lines, _lines(snaps)) if snaps else {}
        self.feed = self._feed(GateioFutures, L2_BOOK, syms)
        self.feed.http_conn = _Recorded(recorded)
        self.reset = self.feed._reset
        self.seed = list(recorded)

    def _setup_bitmex_books(self, meta: Path, snaps: Path | None) -> None:
        # cryptofeed cannot read this file's dated futures; the perpetuals are what we need
        _load_symbols(Bitmex, [e for e in json.loads(meta.read_text()) if e["typ"] == "FFWCSX"])
        syms = list(dict.fromkeys(m["data"][0]["symbol"] for ln in self.lines
                                  if (m := json.loads(ln)).get("table") == "orderBookL2" and m["data"]))
        self.feed = self._feed(Bitmex, L2_BOOK, syms)
        self.reset = self.feed._reset

    def _setup_bitget_books(self, meta: Path, snaps: Path | None) -> None:
        _load_symbols(Bitget, [json.loads(meta.read_text())])
        syms = list(dict.fromkeys(json.loads(ln)["arg"]["instId"] + "_UMCBL" for ln in self.lines
                                  if "arg" in json.loads(ln)))
        self.feed = self._feed(Bitget, L2_BOOK, syms, checksum_validation=True)
        self.reset = lambda: None

    # -- measurement ----------------------------------------------------------------------
    async def _pass(self) -> float:
        """Reset, load the recorded REST snapshots (untimed, as on the perparb side), then
        hand every line to the feed; returns the CPU seconds the lines took."""
        self.reset()
        for sym in self.seed:
            await self.feed._snapshot(sym)
        handler = self.feed.message_handler
        start = time.process_time()
        for line in self.lines:
            await handler(line, None, 1.0)
        return time.process_time() - start

    async def run(self, seconds: float) -> dict[str, Any]:
        messages = levels = 0
        spent = 0.0
        while spent < seconds:
            self.levels_per_pass = 0
            spent += await self._pass()
            messages += len(self.lines)
            levels += self.levels_per_pass
        return {"messages": messages, "seconds": spent, "msgs_per_s": messages / spent,
                "levels_per_s": levels / spent}

    async def check(self) -> int:
        """One pass; how many times cryptofeed's sequence check reset the books (0 expected)."""
        resets = 0
        orig = getattr(self.feed, "_reset", None)

        def counting() -> None:
            nonlocal resets
            resets += 1
            if orig is not None:
                orig()
        if orig is not None:
            self.feed._reset = counting
        await self._pass()
        if orig is not None:
            self.feed._reset = orig
        return resets


async def main() -> None:
    fixtures = Path(sys.argv[1])
    rows: dict[str, Row] = {}
    for raw in sys.stdin:
        req = json.loads(raw)
        name = req["row"]
        try:
            if name not in rows:
                rows[name] = Row(fixtures, req)
                req_resets = await rows[name].check()
            else:
                req_resets = 0
            out = await rows[name].run(req["seconds"])
            out["resets"] = req_resets
        except Exception as exc:  # report, so the table shows why a row is missing
            out = {"error": f"{type(exc).__name__}: {exc}"}
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    asyncio.run(main())
