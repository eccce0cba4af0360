"""``perparb backtest``: the paper-trading pipeline over recorded inputs, with a report.

The inputs go through ``perparb.replay.replay`` with paper trading on (the same decoders,
books, scanner, strategies, risk and simulated execution as live, on recorded time); an
``Observer`` watches the bus and samples equity on a fixed engine-time grid. The report
directory gets ``metrics.json``, ``report.html`` and the data behind them (fills, funding
payments, the equity curve, the round trips).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import msgspec

from perparb.backtest.metrics import METRIC_KEYS, Point, compute, curve
from perparb.backtest.observer import Observer, RoundTrip
from perparb.replay import FILL_KEYS
from perparb.store.capture import ReadReport

if TYPE_CHECKING:
    from perparb.bus.messages import Fill, FundingPayment
    from perparb.config import Settings

DEFAULT_STEP_S = 60.0


@dataclass
class Result:
    inputs: list[str]
    step_s: float
    summary: dict[str, Any]
    metrics: dict[str, Any]
    capital: Decimal
    points: list[Point]
    trips: list[RoundTrip]
    unwound: list[RoundTrip]
    still_open: list[RoundTrip]
    entry_edges: list[float]
    lifetimes_s: list[float]
    fills: list[Fill] = field(default_factory=list)
    funding: list[FundingPayment] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def run(paths: list[Path], settings: Settings, step_s: float = DEFAULT_STEP_S,
        report: ReadReport | None = None, progress: Callable[[int, int], None] | None = None) -> Result:
    """Backtest ``paths`` (whatever ``perparb replay`` reads) with ``settings``.
    ``progress(records, now_ns)`` is called on every sweep of recorded time."""
    from perparb.app import build_registry, scan_settings
    from perparb.replay import replay
    from perparb.scanner.core import Scanner

    registry = build_registry(settings)
    report = report if report is not None else ReadReport()
    obs = Observer(max(1, int(step_s * 1e9)))
    obs.progress = progress
    summary = replay(paths, Scanner(scan_settings(settings)), registry, None, report, paper=settings,
                     observer=obs)
    end_ns = obs.engine.now_ns if obs.engine is not None else 0
    final = obs.sample(end_ns)
    capital = obs.capital()
    grid = [s for s in obs.samples if s.ts_ns <= end_ns]
    points = curve(capital, obs.first_ns or end_ns, grid, final)
    traded = sum((Decimal(repr(f.qty)) * Decimal(repr(f.px)) for f in obs.fills), Decimal(0))
    metrics = compute(capital, points, grid, step_s, traded, obs.trips)
    summary = {**summary, "round_trips": len(obs.trips), "capital": float(capital),
               "start_ns": points[0].ts_ns, "end_ns": points[-1].ts_ns}
    return Result(inputs=[str(p) for p in paths], step_s=step_s, summary=summary, metrics=metrics,
                  capital=capital, points=points, trips=obs.trips, unwound=obs.unwound,
                  still_open=[t for t in obs.open_trips.values() if t.opened], entry_edges=obs.entry_edges,
                  lifetimes_s=obs.lifetimes_s, fills=obs.fills, funding=obs.funding,
                  problems=list(report.problems))


def metrics_json(metrics: dict[str, Any]) -> str:
    return json.dumps({k: metrics[k] for k in METRIC_KEYS}, indent=2) + "\n"


def _d(x: Decimal) -> str:
    return format(x, "f")


def write(result: Result, out: Path) -> Path:
    """Everything into ``out``; returns the HTML page."""
    from perparb.backtest.report import write_html

    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(metrics_json(result.metrics))
    (out / "summary.json").write_text(json.dumps(result.summary, indent=2, sort_keys=True) + "\n")
    enc = msgspec.json.Encoder()
    with (out / "fills.jsonl").open("wb") as fh:
        for f in result.fills:
            fh.write(enc.encode({k: getattr(f, k) for k in FILL_KEYS}) + b"\n")
    with (out / "funding.jsonl").open("wb") as fh:
        for fp in result.funding:
            fh.write(enc.encode({k: getattr(fp, k) for k in ("id", "ts_ns", "venue", "symbol", "rate", "position_qty",
                                                             "mark_px", "amount", "asset")}) + b"\n")
    with (out / "equity.csv").open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["ts_ns", "equity", "spread_pnl", "funding_pnl", "fees", "net_pnl", "drawdown",
                    "gross_exposure", "net_exposure"])
        for p in result.points:
            s = p.sample
            w.writerow([p.ts_ns, _d(p.equity), _d(s.spread), _d(s.funding), _d(s.fees), _d(s.pnl), repr(float(p.drawdown)),
                        _d(s.gross), _d(s.net)])
    with (out / "round_trips.csv").open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow(["id", "strategy", "pair", "opened_ns", "closed_ns", "entry_edge_bps", "spread_pnl",
                    "funding_pnl", "fees", "net_pnl", "traded_notional", "fills"])
        for t in result.trips:
            w.writerow([t.id, t.strategy, t.pair, t.opened_ns, t.closed_ns,
                        "" if t.entry_edge_bps is None else repr(t.entry_edge_bps), _d(t.spread), _d(t.funding),
                        _d(t.fees), _d(t.net), _d(t.notional), t.fills])
    return write_html(result, out)
