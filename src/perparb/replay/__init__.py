"""Replay: capture files through the same decoders, books, registry and scanner as live.

Records are merged by ``recv_ns`` and handed to the engine as the live transport would;
the engine's clock is the recorded time, so the same input always gives byte-identical
output. REST records feed the registry (metadata) or the books (snapshots) in order.

Bad input never stops a replay: lines that are not records, and records whose receive time
is far outside the clock of the records around them, are skipped and counted (``ReadReport``
names each file and line); a file cut short ends where it was cut; a file that cannot be
read is reported and the others go on. A jump of the recorded clock costs one sweep,
whatever its size.

Tardis.dev CSV files (``.csv``, ``.csv.gz``; ``perparb.replay.tardis``) are inputs too: their
rows arrive as normalized events, merged with the captures by receive time, and enter the
engine after its clock has moved to that time, through the same books, scanner and paper
pipeline.
"""

from __future__ import annotations

import heapq
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol

import msgspec

from perparb.bus.messages import Fill
from perparb.engine import Engine
from perparb.instruments.registry import Registry
from perparb.instruments.snapshot import load_registry
from perparb.model import BookDelta, BookSnapshot, Opportunity
from perparb.replay.tardis import Batch, Symbols, TardisFile, is_tardis
from perparb.scanner.core import Scanner
from perparb.scanner.funding import funding_timing
from perparb.store.capture import ReadReport, Record, merge_captures

if TYPE_CHECKING:
    from perparb.config import Settings
    from perparb.paper.assembly import Trading
    from perparb.store.parquet import ParquetSink

log = logging.getLogger("perparb.replay")
SWEEP_NS = 250_000_000  # the live session re-checks everything this often


class OpportunityWriter:
    """``--opportunities-out``: one JSON object per lifecycle event (a stable interface)."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.enc = msgspec.json.Encoder()
        self.events = 0

    def __call__(self, event: str, o: Opportunity) -> None:
        row: dict[str, object] = {"event": event, "id": o.id, "kind": o.kind, "asset": o.asset, "ts_ns": o.ts_ns,
                                  "first_seen_ns": o.first_seen_ns}
        if event == "close":
            row["close_reason"] = o.close_reason
        if o.kind == "spread":
            row.update(buy_venue=o.buy_venue, sell_venue=o.sell_venue, buy_symbol=o.buy_symbol,
                       sell_symbol=o.sell_symbol, buy_px=o.buy_px, sell_px=o.sell_px, size_base=o.size_base,
                       notional_quote=o.notional_quote, top_size_base=o.top_size_base, gross_bps=o.gross_bps,
                       edge_bps=o.edge_bps, net_profit_quote=o.net_profit_quote, buy_worst_px=o.buy_worst_px,
                       sell_worst_px=o.sell_worst_px)
        else:
            row.update(long_venue=o.buy_venue, short_venue=o.sell_venue, long_symbol=o.buy_symbol,
                       short_symbol=o.sell_symbol, apr=o.apr, predicted_apr=o.predicted_apr,
                       net_carry_quote=o.net_carry_quote, funding_quote=o.funding_quote, horizon_h=o.horizon_h,
                       size_base=o.size_base, notional_quote=o.notional_quote, basis_bps=o.basis_bps,
                       long_rate=o.long_rate, short_rate=o.short_rate, long_interval_h=o.long_interval_h,
                       short_interval_h=o.short_interval_h, long_next_funding_ns=o.long_next_funding_ns,
                       short_next_funding_ns=o.short_next_funding_ns, long_predicted_rate=o.long_predicted_rate,
                       short_predicted_rate=o.short_predicted_rate, net_profit_quote=o.net_profit_quote,
                       buy_px=o.buy_px, sell_px=o.sell_px, buy_worst_px=o.buy_worst_px,
                       sell_worst_px=o.sell_worst_px, **funding_timing(o))
        self.fh.write(self.enc.encode(row) + b"\n")
        self.events += 1


FILL_KEYS = ("id", "ts_ns", "venue", "symbol", "side", "qty", "px", "fee", "liquidity", "order_id", "intent_id")


class FillWriter:
    """``--fills-out``: one JSON object per fill, exactly ``FILL_KEYS`` in that order (a
    stable interface): ``qty`` in units of the asset, ``px`` per unit, ``fee`` in the
    settlement currency."""

    def __init__(self, fh: IO[bytes]) -> None:
        self.fh = fh
        self.enc = msgspec.json.Encoder()
        self.fills = 0

    def __call__(self, f: Fill) -> None:
        row = {k: getattr(f, k) for k in FILL_KEYS}
        self.fh.write(self.enc.encode(row) + b"\n")
        self.fills += 1


def _inputs(paths: list[Path], engine: Engine, report: ReadReport, window_ns: int) -> Iterator[Record | Batch]:
    """Capture records and Tardis batches of every input, merged by receive time (ties keep
    the order of the inputs given)."""
    captures = [p for p in paths if not is_tardis(p)]
    streams: list[Iterator[Record | Batch]] = [merge_captures(captures, report, window_ns)] if captures else []
    symbols = Symbols(engine.registry)
    streams += [TardisFile(p, symbols, engine.limits, report).batches() for p in paths if is_tardis(p)]
    if len(streams) == 1:
        return streams[0]
    keyed = [((r.recv_ns, i, r) for r in s) for i, s in enumerate(streams)]
    return (r for _, _, r in heapq.merge(*keyed, key=lambda x: (x[0], x[1])))


class Observer(Protocol):
    """Watches a replay without taking part in it (``perparb backtest``): ``start`` once the
    pipeline is built, ``sweep`` at the first record (before it is applied) and after every
    sweep of recorded time."""

    def start(self, engine: Engine, trading: Trading | None) -> None: ...

    def sweep(self, now_ns: int, records: int) -> None: ...


def replay(paths: Iterable[Path], scanner: Scanner | None = None, registry: Registry | None = None,
           opportunities_out: IO[bytes] | None = None, report: ReadReport | None = None,
           paper: Settings | None = None, fills_out: IO[bytes] | None = None,
           parquet: ParquetSink | None = None, observer: Observer | None = None) -> dict[str, Any]:
    """With ``paper`` (the settings), the trading pipeline runs over the capture too, on
    recorded time: the same capture always gives the same fills."""
    engine = Engine(registry or load_registry(), [], scanner)
    report = report if report is not None else ReadReport()
    window_ns = int(engine.scanner.settings.clock_window_s * 1e9)
    writer = OpportunityWriter(opportunities_out) if opportunities_out is not None else None
    if writer:
        engine.scanner.listeners.append(writer)
    if parquet is not None:
        parquet.attach(engine)
    trading = None
    if paper is not None:
        from perparb.paper import build_trading

        trading = build_trading(paper, engine, venues=[])
        if fills_out is not None:
            trading.fill_listeners.append(FillWriter(fills_out))
        if parquet is not None:
            trading.fill_listeners.append(parquet.on_fill)
    if observer is not None:
        observer.start(engine, trading)
    records = skipped = batches = 0
    unknown: set[str] = set()
    streamed: set[tuple[str, str]] = set()  # books fed by Tardis data
    last_sweep = 0
    paths = list(paths)
    tardis_paths = [p for p in paths if is_tardis(p)]
    for rec in _inputs(paths, engine, report, window_ns):
        if isinstance(rec, Batch):
            batches += 1
        else:
            records += 1
        if rec.recv_ns - last_sweep >= SWEEP_NS:  # as the live session does, on recorded time
            if last_sweep:
                engine.advance(rec.recv_ns)
                engine.scanner.sweep(rec.recv_ns, engine.status)
                if trading is not None:
                    trading.on_tick(rec.recv_ns)
            if observer is not None:
                observer.sweep(rec.recv_ns, records + batches)
            last_sweep = rec.recv_ns
        v = rec.venue
        if v not in engine.adapters:
            try:
                engine.add_venue(v)
            except KeyError as exc:
                if v not in unknown:
                    unknown.add(v)
                    log.warning("capture: %s", exc.args[0])
                skipped += 1
                continue
            engine.set_connected(v, True, rec.recv_ns)
            if trading is not None:
                trading.add_venue(v)
        if isinstance(rec, Batch):
            if rec.broken is not None:
                engine.drop_book(v, rec.broken)
            for ev in rec.events:
                if type(ev) in (BookSnapshot, BookDelta) and (v, ev.venue_symbol) not in streamed:
                    streamed.add((v, ev.venue_symbol))
                    engine.stream_book(v, ev.venue_symbol)
            if rec.events:
                engine.on_events(v, rec.events, rec.recv_ns)
            else:
                engine.advance(rec.recv_ns)
        elif rec.src == "ws":
            engine.on_message(v, rec.raw, rec.recv_ns)
        else:
            engine.on_rest(v, rec.path or "", rec.raw, rec.recv_ns)
        engine.requests[v].clear()  # what a live transport would fetch is already recorded
    by_channel: Counter[str] = Counter()
    for (_, channel), n in engine.event_counts.items():
        by_channel[channel] += n
    out = {
        "records": records, "skipped": skipped, "venues": sorted(engine.adapters),
        "events": sum(by_channel.values()), "events_by_channel": dict(sorted(by_channel.items())),
        "opportunities": engine.scanner.opened, "events_written": writer.events if writer else 0,
        "decode_errors": sum(s.decode_errors for s in engine.status.values()),
        "decode_errors_by_reason": dict(sorted(sum((Counter(s.errors_by_reason) for s in engine.status.values()),
                                                    Counter()).items())),
        "book_resyncs": sum(sb.resyncs for sb in engine.books.values()),
        "unknown_symbols": sum(s.unknown_symbols for s in engine.status.values()),
        "bad_lines": report.bad_lines, "truncated": report.truncated, "unreadable": report.unreadable,
    }
    if tardis_paths:
        out.update(tardis_rows=report.rows, tardis_messages=batches,
                   tardis_unknown_symbols=dict(sorted(report.unknown_symbols.items())),
                   tardis_skipped=dict(sorted(report.skipped.items())))
    if trading is not None:
        out["paper"] = trading.summary()
    if parquet is not None:
        parquet.close()
        out["parquet_rows"] = parquet.rows
    return out
