"""``perparb backtest --sweep``: one backtest per combination of setting values, in parallel
processes, each with its own settings built through the ``--set`` layer.

Output: ``sweep.csv`` and ``sweep.json`` (one row per combination: the values, then the
metrics), and for a two-key grid ``heatmap.png`` (return) and ``sweep.html`` (heatmaps of
return and Sharpe, and the table).
"""

from __future__ import annotations

import csv
import html
import itertools
import json
import multiprocessing
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import TYPE_CHECKING, Any

from perparb.backtest.metrics import METRIC_KEYS

if TYPE_CHECKING:
    from perparb.config import Settings


class SweepError(ValueError):
    pass


def parse_grid(items: list[str]) -> list[tuple[str, list[str]]]:
    """``key=v1,v2`` items into (key, values), keys in the order given."""
    grid: list[tuple[str, list[str]]] = []
    for item in items:
        key, eq, values = item.partition("=")
        key = key.strip()
        vals = [v.strip() for v in values.split(",") if v.strip()]
        if not eq or not key or not vals:
            raise SweepError(f"--sweep {item!r}: expected KEY=V1,V2,..., e.g. strategies.spread.entry_edge_bps=2,4")
        if any(k == key for k, _ in grid):
            raise SweepError(f"--sweep {key}: given twice; put all its values in one --sweep")
        grid.append((key, vals))
    return grid


def combinations(grid: list[tuple[str, list[str]]]) -> list[dict[str, str]]:
    keys = [k for k, _ in grid]
    return [dict(zip(keys, combo, strict=True)) for combo in itertools.product(*(v for _, v in grid))]


def _one(index: int, paths: list[Path], settings: Settings, step_s: float) -> tuple[int, dict[str, Any]]:
    from perparb.backtest import run

    return index, run(paths, settings, step_s).metrics


def run_sweep(paths: list[Path], runs: list[tuple[dict[str, str], Settings]], step_s: float, jobs: int,
              done: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Metrics of every combination, in the grid's order (whatever order they finish in)."""
    results: dict[int, dict[str, Any]] = {}
    # spawn: the parent may be running threads (the progress display) that fork would copy mid-lock
    with ProcessPoolExecutor(max_workers=max(1, jobs), mp_context=multiprocessing.get_context("spawn")) as pool:
        futures = [pool.submit(_one, i, paths, settings, step_s) for i, (_, settings) in enumerate(runs)]
        for fut in as_completed(futures):
            i, metrics = fut.result()
            results[i] = metrics
            if done is not None:
                done(len(results))
    return [{**values, **results[i]} for i, (values, _) in enumerate(runs)]


def _value(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return text


def write(rows: list[dict[str, Any]], grid: list[tuple[str, list[str]]], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    keys = [k for k, _ in grid]
    written = [out / "sweep.csv", out / "sweep.json"]
    with written[0].open("w", newline="") as fh:
        w = csv.writer(fh, lineterminator="\n")
        w.writerow([*keys, *METRIC_KEYS])
        for r in rows:
            w.writerow([*(r[k] for k in keys), *("" if r[m] is None else r[m] for m in METRIC_KEYS)])
    body = [{**{k: _value(r[k]) for k in keys}, **{m: r[m] for m in METRIC_KEYS}} for r in rows]
    written[1].write_text(json.dumps(body, indent=2) + "\n")
    if len(grid) == 2:
        written += heatmaps(rows, grid, out)
    return written


def _heatmap(rows: list[dict[str, Any]], grid: list[tuple[str, list[str]]], metric: str, scale: float,
             unit: str) -> Any:
    from matplotlib.figure import Figure

    (ky, ys), (kx, xs) = grid
    cells = {(r[ky], r[kx]): r[metric] for r in rows}
    data = [[float("nan") if cells[(y, x)] is None else cells[(y, x)] * scale for x in xs] for y in ys]
    fig = Figure(figsize=(1.6 + 1.1 * len(xs), 1.4 + 0.6 * len(ys)), layout="constrained")
    ax = fig.subplots()
    im = ax.imshow(data, cmap="RdYlGn", aspect="auto")
    ax.set_xticks(range(len(xs)), xs)
    ax.set_yticks(range(len(ys)), ys)
    ax.set_xlabel(kx)
    ax.set_ylabel(ky)
    for i, row in enumerate(data):
        for j, v in enumerate(row):
            ax.text(j, i, "-" if v != v else f"{v:.3g}", ha="center", va="center", fontsize="small")
    fig.colorbar(im, ax=ax, label=f"{metric}{unit}")
    ax.set_title(f"{metric}{unit}")
    return fig


def heatmaps(rows: list[dict[str, Any]], grid: list[tuple[str, list[str]]], out: Path) -> list[Path]:
    import io

    import matplotlib

    from perparb.backtest.report import STYLE, table

    matplotlib.rcParams["svg.hashsalt"] = "perparb"
    png = out / "heatmap.png"
    _heatmap(rows, grid, "return", 100, " (%)").savefig(png, format="png", dpi=110, metadata={"Software": None})
    charts = []
    for metric, scale, unit in (("return", 100, " (%)"), ("sharpe", 1, ""), ("max_drawdown", 100, " (%)")):
        buf = io.StringIO()
        _heatmap(rows, grid, metric, scale, unit).savefig(buf, format="svg", metadata={"Date": None})
        text = buf.getvalue()
        charts.append(f'<div class="chart" id="heatmap-{metric}">{text[text.index("<svg"):]}</div>')
    keys = [k for k, _ in grid]
    trs = [[*(str(r[k]) for k in keys), *("-" if r[m] is None else f"{r[m]:.6g}" for m in METRIC_KEYS)]
           for r in rows]
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>perparb backtest sweep</title><style>{STYLE}</style></head>
<body><h1>perparb backtest sweep</h1><p>{html.escape(" by ".join(keys))}: {len(rows)} combinations</p>
<div class="charts">{"".join(charts)}</div>
{table([*keys, *METRIC_KEYS], trs, "sweep")}
</body></html>
"""
    page_path = out / "sweep.html"
    page_path.write_text(page, encoding="utf-8")
    return [png, page_path]
