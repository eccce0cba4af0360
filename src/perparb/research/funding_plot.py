"""Pictures of a funding-history ranking: a PNG (matplotlib, Agg) and one HTML page (plotly).

Per asset, the cumulative funding a short perpetual collected on each venue over the
window (Σ rate, in percent of notional: the slope is the carry), and the net APR of each
venue and of the best venue pairs.
"""

from __future__ import annotations

import html
from datetime import UTC, datetime
from pathlib import Path

from perparb.research.funding import PAIR_COLUMNS, VENUE_COLUMNS, Result, VenueStats


def _cumulative(s: VenueStats) -> tuple[list[datetime], list[float]]:
    xs, ys, total = [], [], 0.0
    for t, r, _ in s.series:
        total += r * 100.0
        xs.append(datetime.fromtimestamp(t / 1000, UTC))
        ys.append(total)
    return xs, ys


def write_png(result: Result, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.dates as mdates
    import matplotlib.pyplot as plt

    assets = sorted({s.asset for s in result.venues})
    fig, axes = plt.subplots(max(1, len(assets)), 2, figsize=(13, 3.6 * max(1, len(assets))), squeeze=False,
                             gridspec_kw={"width_ratios": [3, 1]})
    for row, asset in zip(axes, assets or [""], strict=True):
        curve, bars = row
        stats = sorted((s for s in result.venues if s.asset == asset), key=lambda s: -s.net_apr)
        for s in stats:
            xs, ys = _cumulative(s)
            curve.plot(xs, ys, label=f"{s.venue} ({s.intervals_h} h)", linewidth=1.2)
        curve.set_title(f"{asset}: cumulative funding, short perpetual")
        curve.set_ylabel("% of notional")
        curve.grid(alpha=0.3)
        locator = mdates.AutoDateLocator()
        curve.xaxis.set_major_locator(locator)
        curve.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))
        if stats:
            curve.legend(fontsize=8, loc="upper left")
        names = [f"{s.venue} ({s.side})" for s in stats]
        values = [s.net_apr for s in stats]
        bars.barh(names[::-1], values[::-1], color=["tab:green" if v > 0 else "tab:red" for v in values[::-1]])
        bars.set_title(f"{asset}: net APR % after fees")
        bars.axvline(0, color="black", linewidth=0.6)
        bars.grid(axis="x", alpha=0.3)
    fig.suptitle(f"Funding {result.summary()['start'][:10]} to {result.summary()['end'][:10]}")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
    return path


def _fmt(v: object) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def _table(cols: tuple[str, ...], rows: list[dict[str, object]], tid: str) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_fmt(r[c]))}</td>" for c in cols) + "</tr>" for r in rows)
    return f'<table id="{tid}"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>'


def write_html(result: Result, path: Path) -> Path:
    """One self-contained page (plotly.js inlined, no network): the curves and both rankings."""
    import plotly.graph_objects as go

    charts = []
    for n, asset in enumerate(sorted({s.asset for s in result.venues})):
        fig = go.Figure()
        for s in sorted((s for s in result.venues if s.asset == asset), key=lambda s: -s.net_apr):
            xs, ys = _cumulative(s)
            fig.add_trace(go.Scatter(x=xs, y=ys, mode="lines", name=f"{s.venue} ({s.intervals_h} h)"))
        fig.update_layout(title=f"{asset}: cumulative funding, short perpetual (% of notional)", height=380,
                          margin={"l": 50, "r": 20, "t": 50, "b": 40})
        charts.append(fig.to_html(full_html=False, include_plotlyjs=n == 0, div_id=f"cumulative-{asset}"))
    summary = result.summary()
    skipped = "".join(f"<li>{html.escape(s['venue'])} {html.escape(s['asset'])}: {html.escape(s['reason'])}</li>"
                      for s in result.skipped)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>perparb funding history</title>
<style>body{{font-family:sans-serif;margin:20px}}table{{border-collapse:collapse;font-size:12px;margin-bottom:20px}}
td,th{{border:1px solid #ccc;padding:3px 6px;text-align:right}}</style></head><body>
<h1>Funding carry {html.escape(summary['start'])} to {html.escape(summary['end'])}</h1>
<h2>Venue pairs (long the lower, short the higher)</h2>{_table(PAIR_COLUMNS, summary['pairs'], 'pairs')}
<h2>Asset x venue</h2>{_table(VENUE_COLUMNS, summary['venues'], 'venues')}
{''.join(charts)}
<h2>Skipped</h2><ul>{skipped or '<li>none</li>'}</ul></body></html>"""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path
