"""The backtest's page: one self-contained HTML file, every plot an inline SVG drawn by
matplotlib (no script, no network), then the tables."""

from __future__ import annotations

import html
import io
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perparb.backtest.metrics import METRIC_KEYS

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from perparb.backtest import Result
    from perparb.backtest.observer import RoundTrip

ZERO = Decimal(0)
STYLE = """body{font-family:system-ui,sans-serif;margin:1.5rem;color:#222;max-width:1400px}
table{border-collapse:collapse;margin:.5rem 0 1.5rem}td,th{border-bottom:1px solid #ddd;padding:.2rem .6rem;
text-align:right}th{background:#f3f3f3}td:first-child,th:first-child{text-align:left}
.charts{display:grid;grid-template-columns:1fr 1fr;gap:1rem}.chart svg{width:100%;height:auto}
.note{color:#666;font-size:.9rem}"""


def utc(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S")


def _figure(rows: int = 1, height: float = 3.6, sharex: bool = False) -> tuple[Figure, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(7.2, height), layout="constrained")
    axes = fig.subplots(rows, 1, sharex=sharex, squeeze=False)[:, 0]
    for ax in axes:
        ax.grid(True, alpha=0.3)
    return fig, axes


def svg(fig: Figure, chart_id: str) -> str:
    import matplotlib

    matplotlib.rcParams["svg.hashsalt"] = "perparb"  # the same page for the same backtest
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return f'<div class="chart" id="{chart_id}">{text[text.index("<svg"):]}</div>'


def _times(r: Result) -> list[datetime]:
    return [datetime.fromtimestamp(p.ts_ns / 1e9, UTC) for p in r.points]


def equity_chart(r: Result) -> str:
    fig, (eq, dd) = _figure(2, 4.6, sharex=True)
    t = _times(r)
    eq.plot(t, [float(p.equity) for p in r.points], color="#1565c0", lw=1.2)
    eq.set_title("Equity (marked to market)")
    eq.ticklabel_format(axis="y", useOffset=False, style="plain")
    dd.fill_between(t, [-float(p.drawdown) * 100 for p in r.points], 0, color="#c62828", alpha=0.4, step="post")
    dd.set_title("Drawdown from peak (%)")
    return svg(fig, "equity-drawdown")


def pnl_chart(r: Result) -> str:
    fig, (ax,) = _figure()
    t = _times(r)
    for name, values, color in (
            ("spread", [p.sample.spread for p in r.points], "#1565c0"),
            ("funding", [p.sample.funding for p in r.points], "#2e7d32"),
            ("fees", [-p.sample.fees for p in r.points], "#c62828"),
            ("net", [p.sample.pnl for p in r.points], "#222222")):
        ax.plot(t, [float(v) for v in values], label=name, color=color, lw=1.6 if name == "net" else 1.0)
    ax.set_title("PnL split (USD-equivalent; fees as a cost)")
    ax.legend(loc="upper left", fontsize="small")
    return svg(fig, "pnl-split")


def exposure_chart(r: Result) -> str:
    fig, (ax,) = _figure()
    t = _times(r)
    ax.step(t, [float(p.sample.gross) for p in r.points], where="post", label="gross", color="#ef6c00")
    ax.step(t, [float(p.sample.net) for p in r.points], where="post", label="net", color="#6a1b9a")
    ax.set_title("Exposure at the mark (USD-equivalent)")
    ax.legend(loc="upper left", fontsize="small")
    return svg(fig, "exposure")


def histogram(values: list[float], title: str, xlabel: str, chart_id: str, log_x: bool = False) -> str:
    import math

    fig, (ax,) = _figure()
    if values:
        if log_x and min(values) > 0 and max(values) > min(values):
            lo, hi = math.log10(min(values)), math.log10(max(values))
            bins: Any = [10 ** (lo + (hi - lo) * i / 30) for i in range(31)]
            ax.set_xscale("log")
        else:
            bins = 30
        ax.hist(values, bins=bins, color="#1565c0", alpha=0.8)
    else:
        ax.text(0.5, 0.5, "none", ha="center", va="center", transform=ax.transAxes)
    ax.set_title(f"{title} (n = {len(values)})")
    ax.set_xlabel(xlabel)
    return svg(fig, chart_id)


def per_pair(trips: list[RoundTrip]) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str], list[RoundTrip]] = defaultdict(list)
    for t in trips:
        groups[(t.pair, t.strategy)].append(t)
    rows = []
    for (pair, strategy), ts in sorted(groups.items()):
        rows.append({"pair": pair, "strategy": strategy, "round_trips": len(ts),
                     "wins": sum(1 for t in ts if t.net > 0),
                     "spread": sum((t.spread for t in ts), ZERO), "funding": sum((t.funding for t in ts), ZERO),
                     "fees": sum((t.fees for t in ts), ZERO), "net": sum((t.net for t in ts), ZERO),
                     "notional": sum((t.notional for t in ts), ZERO),
                     "hold_s": sum((t.closed_ns - t.opened_ns) / 1e9 for t in ts) / len(ts)})
    return rows


def money(x: Decimal | float) -> str:
    return f"{Decimal(x):,.2f}"


def metric_text(k: str, v: Any) -> str:
    if v is None:
        return "-"
    if k in ("return", "max_drawdown", "hit_rate"):
        return f"{v * 100:.4f} %"
    if k in ("fees", "funding"):
        return money(v)
    if k == "trades":
        return str(v)
    return f"{v:.4f}"


def table(head: list[str], rows: list[list[str]], tid: str) -> str:
    th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f'<table id="{tid}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'


def write_html(r: Result, out: Path) -> Path:
    s = r.summary
    m = r.metrics
    pairs = per_pair(r.trips)
    pair_rows = [[p["pair"], p["strategy"], str(p["round_trips"]), f"{p['wins'] / p['round_trips'] * 100:.1f} %",
                  money(p["spread"]), money(p["funding"]), money(-p["fees"]), money(p["net"]), money(p["notional"]),
                  f"{p['hold_s']:.1f}"] for p in pairs]
    input_rows = [
        ["records", str(s.get("records", 0))], ["venues", ", ".join(s.get("venues", []))],
        ["bad lines (skipped)", str(s.get("bad_lines", 0))], ["files cut short", str(s.get("truncated", 0))],
        ["unreadable files", str(len(s.get("unreadable", [])))], ["records of unknown venues", str(s.get("skipped", 0))],
        ["decode errors", str(s.get("decode_errors", 0))], ["book resyncs", str(s.get("book_resyncs", 0))],
        ["opportunities opened", str(s.get("opportunities", 0))],
        ["fills", str(len(r.fills))], ["funding payments", str(len(r.funding))],
        ["round trips (both legs opened then closed)", str(len(r.trips))],
        ["unwound (one leg only)", str(len(r.unwound))], ["still open at the end", str(len(r.still_open))],
    ]
    span = f"{utc(r.points[0].ts_ns)} to {utc(r.points[-1].ts_ns)} UTC" if r.points else ""
    problems = "".join(f"<li>{html.escape(p)}</li>" for p in r.problems[:50])
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>perparb backtest</title><style>{STYLE}</style></head>
<body><h1>perparb backtest</h1>
<p>{html.escape(", ".join(r.inputs))}<br>{span}; capital {money(r.capital)} (collateral deposited);
equity sampled every {r.step_s:g} s of engine time</p>
{table(["metric", "value"], [[k, metric_text(k, m[k])] for k in METRIC_KEYS], "metrics")}
<div class="charts">{equity_chart(r)}{pnl_chart(r)}
{histogram(r.entry_edges, "Net edge at entry", "bps", "entry-edges")}
{histogram(r.lifetimes_s, "Opportunity lifetime", "seconds", "lifetimes", log_x=True)}
{exposure_chart(r)}</div>
<h2>Per pair</h2>
{table(["pair", "strategy", "round trips", "hit rate", "spread", "funding", "fees", "net", "traded notional",
        "mean hold (s)"], pair_rows, "pairs")}
<h2>Input</h2>
{table(["", ""], input_rows, "input")}
{f'<p class="note">Skipped input:</p><ul class="note">{problems}</ul>' if problems else ""}
</body></html>
"""
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
