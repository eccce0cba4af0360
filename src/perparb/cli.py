"""The ``perparb`` command line."""

from __future__ import annotations

import contextlib
import json
import logging
import sys
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import Annotated, Any, NoReturn, TypeVar

import msgspec
import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from perparb.config import ConfigError, Settings, load_settings, venues_from_flag
from perparb.instruments.snapshot import load_registry
from perparb.model import BookDelta, BookSnapshot
from perparb.venues import venue_class, venue_ids
from perparb.venues.base import DecodeError, Venue

app = typer.Typer(help="perparb: cross-exchange perpetual futures arbitrage.", no_args_is_help=True,
                  add_completion=False, pretty_exceptions_enable=False)
bench_app = typer.Typer(help="Measure decode and book throughput.", no_args_is_help=True)
app.add_typer(bench_app, name="bench")

err = Console(stderr=True)
T = TypeVar("T")


def _error(message: str, code: int = 2) -> NoReturn:
    """A plain-text complaint on stderr (the message is never read as rich markup), then exit."""
    err.print(Text("error: ", style="red") + Text(message), highlight=False, soft_wrap=True)
    raise typer.Exit(code)


def _flags_as_flags() -> None:
    """Help shows ``--json`` rather than ``--json <bool>`` and ``CAPTURE...`` rather than
    ``{CAPTURE...}...``: typer 0.2x labels every parameter with its Python type."""
    from typer.core import TyperArgument, TyperOption

    option_type = TyperOption.display_type_rich

    def option_display(self: TyperOption, ctx: Any) -> str | None:
        return None if self.is_flag or self.count else option_type(self, ctx)

    argument_type = TyperArgument.display_type_rich

    def argument_display(self: TyperArgument, ctx: Any) -> str | None:
        return None if self.metavar else argument_type(self, ctx)

    def argument_usage(self: TyperArgument) -> str:
        name = self.metavar or (self.name or "").upper()
        if self.nargs != 1 and not name.endswith("..."):
            name += "..."
        return name if self.required else f"[{name}]"

    TyperOption.display_type_rich = option_display  # type: ignore[method-assign]
    TyperArgument.display_type_rich = argument_display  # type: ignore[method-assign, assignment]
    TyperArgument._usage_display_name = argument_usage  # type: ignore[method-assign]


_flags_as_flags()

ConfigOpt = Annotated[Path | None, typer.Option("--config", "-c", help="TOML or YAML configuration file.")]
VenuesOpt = Annotated[str | None, typer.Option(
    help="Comma-separated venue ids (overrides the config): " + ", ".join(venue_ids()) + ", or ccxt:<exchange id>.")]
AssetsOpt = Annotated[str | None, typer.Option(help="Comma-separated canonical assets, e.g. BTC,ETH,SOL.")]
DurationOpt = Annotated[float | None, typer.Option(help="Run this many seconds, then print a summary.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")]
EdgeOpt = Annotated[float | None, typer.Option(help="Minimum net edge in basis points.")]
CaptureOpt = Annotated[Path | None, typer.Option(
    help="Record every raw message and REST response to this capture file (.jsonl or .jsonl.zst).")]
RecordOpt = Annotated[Path | None, typer.Option(
    help="Record to this directory: capture files rotated hourly, within storage.max_bytes.")]
HostOpt = Annotated[str | None, typer.Option(help="API and dashboard address (default 127.0.0.1).")]
PortOpt = Annotated[int | None, typer.Option(help="API and dashboard port (default 8000; 0 picks a free one).")]
NoApiOpt = Annotated[bool, typer.Option("--no-api", help="Do not start the API and dashboard.")]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", help="Override any setting: --set scanner.max_quote_age_ms=2000 (repeatable).")]


def _settings(config: Path | None, venues: str | None, assets: str | None,
              min_edge_bps: float | None = None, sets: list[str] | None = None, host: str | None = None,
              port: int | None = None) -> Settings:
    """Defaults < config file < PERPARB_* environment < --set < explicit flags."""
    set_values: dict[str, Any] = {}
    for item in sets or []:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            _error(f"--set {item!r}: expected KEY=VALUE, e.g. scanner.min_edge_bps=2")
        set_values[key.strip()] = value.strip()
    # A flag left at its default (None) is not given: it must not hide a --set value.
    flags: dict[str, Any] = {"assets": assets, "scanner.min_edge_bps": min_edge_bps, "api.host": host,
                             "api.port": port, "venues": venues_from_flag(venues) if venues else None}
    try:
        settings = load_settings(config, flags, sets=set_values)
    except ConfigError as exc:
        _config_error(exc)
    logging.basicConfig(level=settings.log_level, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return settings


def _config_error(exc: ConfigError) -> NoReturn:
    _error(str(exc))


def _run(coro: Coroutine[Any, Any, T]) -> T:
    """Run a command's engine; a setting found wrong only now (a busy port, an unreadable
    instruments file, an unwritable capture) ends it like a bad config file: exit 2."""
    from perparb.app import run_async

    try:
        return run_async(coro)
    except ConfigError as exc:
        _config_error(exc)


def _session(cls: Any, settings: Settings, **kw: Any) -> Any:
    """A Session; settings it cannot use (the instruments file, the capture) exit 2."""
    try:
        return cls(settings, **kw)
    except ConfigError as exc:
        _config_error(exc)


def _finish(summary: dict[str, Any], as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True))
    else:
        typer.echo(f"venues connected: {summary['venues_connected']}/{len(summary['venues'])}   "
                   f"messages: {summary['messages']}   opportunities opened: {summary['opportunities']}   "
                   f"open now: {summary['open_opportunities']}")
        for v, s in summary["venues"].items():
            typer.echo(f"  {v:10s} messages {s['messages']:>8}  books synced {s['books_synced']}/{s['books']}  "
                       f"resyncs {s['book_resyncs']}  reconnects {s['reconnects']}  decode errors {s['decode_errors']}")
    if summary["venues_connected"] == 0:
        _error("no venue connected", 1)


@app.command()
def demo(duration: DurationOpt = None, as_json: JsonOpt = False, seed: int = 7, config: ConfigOpt = None,
         venues: VenuesOpt = None, assets: AssetsOpt = None, min_edge_bps: EdgeOpt = None,
         set_: SetOpt = None, capture: CaptureOpt = None, host: HostOpt = None, port: PortOpt = None,
         no_api: NoApiOpt = False, record: RecordOpt = None) -> None:
    """Simulator + feeds + scanner + API in one process, offline, with a live terminal view."""
    from perparb.app import demo as run_demo

    settings = _settings(config, venues, assets, min_edge_bps, set_, host, port)
    view = not as_json and sys.stdout.isatty()
    summary = _run(run_demo(settings, duration, seed, view, capture, not no_api, config, record))
    _finish(summary, as_json)


@app.command()
def run(config: ConfigOpt = None, venues: VenuesOpt = None, assets: AssetsOpt = None,
        duration: DurationOpt = None, as_json: JsonOpt = False, min_edge_bps: EdgeOpt = None,
        set_: SetOpt = None, capture: CaptureOpt = None, host: HostOpt = None, port: PortOpt = None,
        no_api: NoApiOpt = False, record: RecordOpt = None,
        confirm_live: Annotated[bool, typer.Option(
            "--confirm-live", help="Allow real orders (also needs execution.mode = \"live\" and API keys).")]
        = False) -> None:
    """Stream the real venues, scan them, and serve the API (needs internet)."""
    from perparb.app import Session
    from perparb.execution.gate import live_gate, live_requested

    settings = _settings(config, venues, assets, min_edge_bps, set_, host, port)
    if live_requested(settings, confirm_live):
        missing = live_gate(settings, confirm_live)
        if missing:
            err.print("[red]error:[/] live trading refused; missing:\n" + "\n".join(f"  {m}" for m in missing),
                      highlight=False)
            raise typer.Exit(2)
        err.print(f"[yellow]live trading:[/] real orders on {', '.join(settings.enabled_venues())}", highlight=False)
    view = not as_json and sys.stdout.isatty()
    summary = _run(_session(Session, settings, capture=capture, api=not no_api, config_path=config, record=record,
                            live_confirmed=confirm_live).run(duration, view))
    _finish(summary, as_json)


@app.command()
def record(
    out: Annotated[Path, typer.Option(help="Directory of the recording (capture files rotated hourly).")],
    venues: VenuesOpt = None, assets: AssetsOpt = None, config: ConfigOpt = None, set_: SetOpt = None,
    duration: DurationOpt = None, as_json: JsonOpt = False,
    max_bytes: Annotated[int | None, typer.Option(
        help="Disk budget in bytes: the oldest files go first (default storage.max_bytes).", min=1)] = None,
    sim: Annotated[bool, typer.Option("--sim", help="Record the built-in simulator instead of the venues.")]
    = False, seed: int = 7,
) -> None:
    """Record every venue's raw messages for as long as it runs, without the API."""
    from perparb.app import Session
    from perparb.app import demo as run_demo

    sets = [*(set_ or []), *([f"storage.max_bytes={max_bytes}"] if max_bytes else [])]
    settings = _settings(config, venues, assets, None, sets)
    if sim:
        summary = _run(run_demo(settings, duration, seed, False, None, False, config, out))
    else:
        summary = _run(_session(Session, settings, api=False, config_path=config, record=out).run(duration, False))
    _finish(summary, as_json)


@app.command()
def serve(config: ConfigOpt = None, venues: VenuesOpt = None, assets: AssetsOpt = None,
          duration: DurationOpt = None, min_edge_bps: EdgeOpt = None, set_: SetOpt = None,
          capture: CaptureOpt = None, host: HostOpt = None, port: PortOpt = None,
          sim: Annotated[bool, typer.Option("--sim", help="Against the built-in simulator instead of the venues.")]
          = False, seed: int = 7) -> None:
    """The API, WebSocket stream and dashboard over a running engine, without the terminal view."""
    from perparb.app import Session
    from perparb.app import demo as run_demo

    settings = _settings(config, venues, assets, min_edge_bps, set_, host, port)
    if sim:
        summary = _run(run_demo(settings, duration, seed, False, capture, True, config))
    else:
        summary = _run(_session(Session, settings, capture=capture, api=True, config_path=config).run(duration, False))
    _finish(summary, False)


@app.command()
def sim(venues: VenuesOpt = None, assets: AssetsOpt = None, seed: int = 7,
        port_base: Annotated[int, typer.Option(help="Venue n listens on port-base + n.")] = 9100,
        duration: DurationOpt = None, config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Serve simulated venues on loopback, speaking each venue's native protocol."""
    import asyncio

    from perparb.app import build_registry
    from perparb.sim.server import Simulator

    settings = _settings(config, venues, assets, sets=set_)

    async def serve() -> None:
        s = Simulator(build_registry(settings), settings.enabled_venues(), settings.assets, seed=seed)
        try:
            await s.start(base_port=port_base)
        except OSError as exc:
            await s.stop()
            raise ConfigError(f"--port-base: cannot listen for the simulated venues on ports {port_base + 1}-"
                              f"{port_base + len(s.venues)}: {exc.strerror or exc}") from None
        for v, ep in s.endpoints().items():
            typer.echo(f"{v:10s} ws {ep['ws_url']}  rest {ep['rest_url']}")
        try:
            await asyncio.sleep(duration if duration is not None else 10**9)
        finally:
            await s.stop()

    _run(serve())


@app.command()
def scan(
    once: Annotated[bool, typer.Option("--once", help="One REST snapshot of books and funding, then exit.")] = False,
    config: ConfigOpt = None, venues: VenuesOpt = None, assets: AssetsOpt = None, min_edge_bps: EdgeOpt = None,
    set_: SetOpt = None, as_json: Annotated[bool, typer.Option("--json", help="One JSON object per opportunity.")]
    = False,
    sim: Annotated[bool, typer.Option("--sim", help="Against the built-in simulator instead of the venues.")] = False,
    seed: int = 7,
) -> None:
    """The current opportunities from one REST snapshot (ccxt) of the configured venues."""
    if not once:
        _error("perparb scan takes one REST snapshot and exits: add --once. To scan continuously, use "
               "`perparb run` (live venues) or `perparb demo` (offline simulator).")
    import asyncio

    from perparb.api.state import opportunity
    from perparb.app import build_registry, scan_settings
    from perparb.scanner.core import Scanner
    from perparb.scanner.once import empty_venues, scan_once

    settings = _settings(config, venues, assets, min_edge_bps, set_)

    async def go() -> tuple[list[dict[str, Any]], dict[str, str], dict[str, list[str]]]:
        endpoints: dict[str, dict[str, str]] = {}
        simulator = None
        if sim:
            from perparb.sim.server import Simulator

            simulator = Simulator(build_registry(settings), settings.enabled_venues(), settings.assets, seed=seed)
            await simulator.start()
            await asyncio.sleep(0.5)  # a few model steps, so the books differ across venues
            endpoints = simulator.endpoints()
        for v, vs in settings.venues.items():
            if vs.rest_url or vs.ws_url:
                endpoints[v] = {"rest_url": vs.rest_url or "", "ws_url": vs.ws_url or ""}
        try:
            engine, names = await scan_once(settings.enabled_venues(), settings.assets,
                                            Scanner(scan_settings(settings)), endpoints)
        finally:
            if simulator:
                await simulator.stop()
        rows = [opportunity(o, kind_specific=False) for o in engine.scanner.best(1000)]
        for r in rows:  # report the venues by the names they were asked for
            for key in ("buy_venue", "sell_venue", "long_venue", "short_venue"):
                if key in r:
                    r[key] = names.get(r[key], r[key])
        seen = {names.get(v, v): f"{st.messages} messages" for v, st in engine.status.items()}
        return rows, seen, empty_venues(engine, names)

    rows, seen, empty = _run(go())
    if empty:  # said first, so that it is never lost under the table
        err.print("no " + "; ".join(f"{' or '.join(what)} from {v}" for v, what in empty.items()), highlight=False)
    if as_json:
        for r in rows:
            typer.echo(json.dumps(r, sort_keys=True))
    else:
        _scan_table(rows, seen)
    if empty:
        raise typer.Exit(1)


def _scan_table(rows: list[dict[str, Any]], seen: dict[str, str]) -> None:
    table = Table(title=f"{len(rows)} opportunities ({', '.join(f'{v}: {n}' for v, n in seen.items())})")
    for col in ("kind", "asset", "buy/long", "sell/short", "size", "notional", "net bps", "APR %", "net carry"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["kind"], r["asset"], r["buy_venue"], r["sell_venue"], f"{r['size_base']:.6g}",
                      f"{r['notional_quote']:,.0f}", f"{r['edge_bps']:.2f}",
                      f"{r['apr'] * 100:.1f}" if r["kind"] == "funding" else "",
                      f"{r['net_carry_quote']:,.2f}" if r["kind"] == "funding" else "")
    Console(width=None if sys.stdout.isatty() else 200).print(table)


@app.command()
def replay(
    captures: Annotated[list[str], typer.Argument(
        help="Capture files (.jsonl or .jsonl.zst), Tardis.dev CSV files (.csv or .csv.gz), directories of them, "
             "or quoted globs.", metavar="CAPTURE")],
    opportunities_out: Annotated[Path | None, typer.Option(
        help="Write every opportunity lifecycle event here, one JSON object per line.")] = None,
    config: ConfigOpt = None, min_edge_bps: EdgeOpt = None, set_: SetOpt = None,
    as_json: JsonOpt = False,
    paper: Annotated[bool, typer.Option(
        "--paper", help="Paper-trade the capture with the configured strategies, risk and simulated execution.")]
    = False,
    fills_out: Annotated[Path | None, typer.Option(
        help="With --paper: write every fill here, one JSON object per line (implies --paper).")] = None,
) -> None:
    """Run captures and Tardis.dev CSV files through the same decoders, books and scanner as live, in recorded time."""
    from perparb.app import build_registry, scan_settings
    from perparb.replay import replay as run_replay
    from perparb.scanner.core import Scanner
    from perparb.store.capture import ReadReport
    from perparb.store.parquet import ParquetSink
    from perparb.store.recorder import capture_inputs

    try:
        paths = capture_inputs(captures)
    except FileNotFoundError as exc:
        _error(str(exc))
    settings = _settings(config, None, None, min_edge_bps, set_)
    try:
        registry = build_registry(settings)
    except ConfigError as exc:
        _config_error(exc)
    out = opportunities_out.open("wb") if opportunities_out else None
    fills = fills_out.open("wb") if fills_out else None
    report = ReadReport()
    st = settings.storage
    sink = ParquetSink(st.parquet_dir, st.book_depth, st.book_interval_s) if st.parquet_dir else None
    try:
        summary = run_replay(paths, Scanner(scan_settings(settings)), registry, out, report,
                             paper=settings if paper or fills is not None else None, fills_out=fills, parquet=sink)
    finally:
        if out:
            out.close()
        if fills:
            fills.close()
    for problem in report.problems:  # each names its file (and line); the replay went on
        err.print(problem, highlight=False, markup=False, soft_wrap=True)
    more = report.bad_lines + report.truncated + len(report.unreadable) - len(report.problems)
    if more > 0:
        err.print(f"... and {more} more", highlight=False, markup=False, soft_wrap=True)
    if as_json:
        typer.echo(json.dumps(summary, sort_keys=True))
    else:
        typer.echo(" ".join(f"{k}: {v}" for k, v in summary.items() if k != "paper"))
        if "paper" in summary:
            p = summary["paper"]
            typer.echo(f"paper: orders {p['orders']} fills {p['fills']} open legs {len(p['open_positions'])} "
                       f"realized {p['realized_pnl']:.2f} funding {p['funding_pnl']:.2f} fees {p['fees']:.2f}")
    if report.unreadable:
        raise typer.Exit(1)


@app.command()
def backtest(
    inputs: Annotated[list[str], typer.Argument(
        help="Capture files (.jsonl or .jsonl.zst), Tardis.dev CSV files (.csv or .csv.gz), directories of them, "
             "or quoted globs.", metavar="INPUT")],
    report_dir: Annotated[Path, typer.Option(
        "--report", help="Directory for report.html, metrics.json and the data behind them.")],
    config: Annotated[Path | None, typer.Option(
        "--config", "-c", help="Strategy configuration (TOML or YAML); without it, the demo's strategies.")] = None,
    set_: SetOpt = None,
    sweep: Annotated[list[str] | None, typer.Option(
        "--sweep", metavar="KEY=V1,V2,...", help="Run a grid: --sweep strategies.spread.entry_edge_bps=2,3,4 (repeatable; any --set key).")]
    = None,
    jobs: Annotated[int, typer.Option("--jobs", help="Parallel processes for --sweep.", min=1)] = 2,
    sample_s: Annotated[float, typer.Option(
        "--sample-s", help="Mark equity to market every this many seconds of engine time.", min=0.001)] = 60.0,
    as_json: Annotated[bool, typer.Option("--json", help="Print the summary as one JSON object.")] = False,
) -> None:
    """Paper-trade recorded inputs through the same engine as live; write an HTML report and metrics."""
    from perparb.store.recorder import capture_inputs

    try:
        paths = capture_inputs(inputs)
    except FileNotFoundError as exc:
        _error(str(exc))
    if sweep:
        _sweep(paths, report_dir, config, set_ or [], sweep, jobs, sample_s, as_json)
        return
    from perparb import backtest as bt
    from perparb.store.capture import ReadReport

    settings = _backtest_settings(config, set_ or [])
    report = ReadReport()
    with _progress(paths, "backtest") as bar:
        def progress(records: int, now_ns: int) -> None:
            bar(report.bytes_read, records)

        try:
            result = bt.run(paths, settings, sample_s, report, progress)
        except ConfigError as exc:
            _config_error(exc)
        bar(report.bytes_read, result.summary["records"])
    for problem in report.problems:  # each names its file (and line); the backtest went on
        err.print(problem, highlight=False, markup=False, soft_wrap=True)
    more = report.bad_lines + report.truncated + len(report.unreadable) - len(report.problems)
    if more > 0:
        err.print(f"... and {more} more", highlight=False, markup=False, soft_wrap=True)
    page = bt.write(result, report_dir)
    s, m = result.summary, result.metrics
    if as_json:
        typer.echo(json.dumps({**s, "metrics": m, "report": str(page)}, sort_keys=True))
    else:
        typer.echo(f"records: {s['records']} bad lines: {s['bad_lines']} truncated: {s['truncated']} "
                   f"unreadable: {len(s['unreadable'])} decode errors: {s['decode_errors']} "
                   f"fills: {len(result.fills)} round trips: {m['trades']}")
        typer.echo("  ".join(f"{k}: {'-' if v is None else (f'{v:.6g}' if isinstance(v, float) else v)}"
                             for k, v in m.items()))
        typer.echo(f"report: {page}")
    if report.unreadable:
        raise typer.Exit(1)


def _backtest_settings(config: Path | None, sets: list[str]) -> Settings:
    """The configuration file's settings; without one, the demo's (its default strategies)."""
    from perparb.app import demo_settings

    settings = _settings(config, None, None, None, sets)
    return settings if config is not None else demo_settings(settings)


@contextlib.contextmanager
def _progress(paths: list[Path], what: str) -> Any:
    """A progress bar on stderr by bytes of captures read; yields ``update(bytes, records)``."""
    from rich.progress import (
        BarColumn,
        DownloadColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from perparb.replay.tardis import is_tardis

    # Bytes of the capture files (Tardis files are counted in records only).
    total = sum(p.stat().st_size for p in paths if p.is_file() and not is_tardis(p))
    with Progress(TextColumn("{task.description}"), BarColumn(), DownloadColumn(), TextColumn("{task.fields[n]}"),
                  TimeElapsedColumn(), TimeRemainingColumn(), console=err, transient=True) as bar:
        task = bar.add_task(what, total=total or None, n="0 records")

        def update(done: int, records: int) -> None:
            bar.update(task, completed=done, n=f"{records:,} records")

        yield update


def _sweep(paths: list[Path], out: Path, config: Path | None, sets: list[str], items: list[str], jobs: int,
           sample_s: float, as_json: bool) -> None:
    from rich.progress import Progress

    from perparb.backtest import sweep as sw

    try:
        grid = sw.parse_grid(items)
    except sw.SweepError as exc:
        _error(str(exc))
    runs = [(combo, _backtest_settings(config, [*sets, *(f"{k}={v}" for k, v in combo.items())]))
            for combo in sw.combinations(grid)]
    with Progress(console=err, transient=True) as bar:
        task = bar.add_task(f"sweep ({len(runs)} backtests, {jobs} processes)", total=len(runs))
        rows = sw.run_sweep(paths, runs, sample_s, jobs, lambda n: bar.update(task, completed=n))
    written = sw.write(rows, grid, out)
    if as_json:
        typer.echo(json.dumps({"rows": rows, "files": [str(p) for p in written]}, sort_keys=True))
    else:
        table = Table(*[k for k, _ in grid], *sw.METRIC_KEYS)
        for r in rows:
            table.add_row(*(r[k] for k, _ in grid),
                          *("-" if r[m] is None else f"{r[m]:.6g}" for m in sw.METRIC_KEYS))
        Console(width=None if sys.stdout.isatty() else 200).print(table)
        typer.echo("wrote " + ", ".join(str(p) for p in written))


@app.command()
def export(
    captures: Annotated[list[str], typer.Argument(
        help="Capture files, Tardis.dev CSV files, directories of them, or quoted globs.", metavar="CAPTURE...")],
    out: Annotated[Path, typer.Option(help="Parquet directory (the --data of perparb query).")],
    config: ConfigOpt = None, set_: SetOpt = None, as_json: JsonOpt = False,
    paper: Annotated[bool, typer.Option("--paper", help="Also paper-trade the captures and export the fills.")]
    = False,
) -> None:
    """Write the normalized events of captures to Parquet, through the same path as replay."""
    from perparb.app import build_registry, scan_settings
    from perparb.replay import replay as run_replay
    from perparb.scanner.core import Scanner
    from perparb.store.capture import ReadReport
    from perparb.store.parquet import ParquetSink
    from perparb.store.recorder import capture_inputs

    try:
        paths = capture_inputs(captures)
    except FileNotFoundError as exc:
        _error(str(exc))
    settings = _settings(config, None, None, None, set_)
    try:
        registry = build_registry(settings)
    except ConfigError as exc:
        _config_error(exc)
    st = settings.storage
    sink = ParquetSink(out, st.book_depth, st.book_interval_s)
    report = ReadReport()
    summary = run_replay(paths, Scanner(scan_settings(settings)), registry, None, report,
                         paper=settings if paper else None, parquet=sink)
    for problem in report.problems:
        err.print(problem, highlight=False, markup=False, soft_wrap=True)
    result = {"records": summary["records"], "rows": sink.rows, "files": sink.files, "out": str(out)}
    if "tardis_rows" in summary:  # Tardis.dev inputs: rows read, and what was left out of them
        result.update({k: summary[k] for k in ("tardis_rows", "tardis_unknown_symbols", "bad_lines")})
    typer.echo(json.dumps(result, sort_keys=True) if as_json else " ".join(f"{k}: {v}" for k, v in result.items()))
    if report.unreadable or sink.errors:
        raise typer.Exit(1)


@app.command()
def query(
    sql: Annotated[str, typer.Argument(help="SQL over the views quotes, books, trades, funding, opportunities, "
                                            "fills.")],
    data: Annotated[Path | None, typer.Option(help="Parquet directory (default storage.parquet_dir).")] = None,
    csv: Annotated[bool, typer.Option("--csv", help="CSV with a header line.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per row.")] = False,
    config: ConfigOpt = None,
) -> None:
    """Run SQL through DuckDB over the Parquet history."""
    import csv as csvlib

    import duckdb

    from perparb.store.query import connect

    if data is None:
        data = _settings(config, None, None).storage.parquet_dir
    if data is None or not data.is_dir():
        _error(f"--data: no Parquet directory {'at ' + str(data) if data else 'given'} "
               "(write one with perparb export or storage.parquet_dir)")
    try:
        cur = connect(data).execute(sql)
        names = [d[0] for d in cur.description or []]
        rows = cur.fetchall()
    except duckdb.Error as exc:
        _error(str(exc), 1)
    if as_json:
        for r in rows:
            typer.echo(json.dumps(dict(zip(names, r, strict=True)), default=str))
    elif csv:
        w = csvlib.writer(sys.stdout, lineterminator="\n")
        w.writerow(names)
        w.writerows(rows)
    else:
        table = Table(*names)
        for r in rows:
            table.add_row(*("" if v is None else str(v) for v in r))
        Console(width=None if sys.stdout.isatty() else 200).print(table)


@app.command("funding-history")
def funding_history(
    assets: AssetsOpt = None,
    days: Annotated[float, typer.Option(help="Length of the window, in days, ending at --until.")] = 90.0,
    venues: Annotated[str | None, typer.Option(
        help="Comma-separated venue ids (default: every venue; those without history are listed as skipped).")]
    = None,
    until: Annotated[str | None, typer.Option(
        help="End of the window: ISO 8601 time (UTC unless it says otherwise) or epoch ms (default: the last "
             "full hour at least 5 minutes ago).")] = None,
    cache: Annotated[Path | None, typer.Option(
        help="Parquet cache directory (default storage.parquet_dir/funding_history, else "
             "~/.cache/perparb/funding).")] = None,
    csv: Annotated[bool, typer.Option("--csv", help="CSV with a header line: the asset x venue ranking "
                                                    "(with --pairs: the venue-pair ranking).")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object: window, venues, pairs, skipped.")]
    = False,
    pairs: Annotated[bool, typer.Option("--pairs", help="--csv writes the venue-pair ranking.")] = False,
    plot: Annotated[Path | None, typer.Option(help="Write a PNG: cumulative funding and net APR per asset.")]
    = None,
    html: Annotated[Path | None, typer.Option(help="Write one self-contained HTML page: plots and rankings.")]
    = None,
    sim: Annotated[bool, typer.Option("--sim", help="Against the built-in simulator instead of the venues.")]
    = False,
    seed: int = 7, config: ConfigOpt = None, set_: SetOpt = None,
) -> None:
    """Funding-rate history of every venue, cached in Parquet, ranked by carry after fees."""
    import csv as csvlib

    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    from perparb.app import build_registry
    from perparb.research.funding import PAIR_COLUMNS, VENUE_COLUMNS
    from perparb.research.funding import funding_history as run_history
    from perparb.research.funding_cache import default_dir
    from perparb.research.funding_fetch import unsupported

    if days <= 0:
        _error(f"--days {days:g}: must be more than 0")
    if csv and as_json:
        _error("--csv and --json: choose one")
    until_ms = _until_ms(until) if until is not None else None
    settings = _settings(config, venues, assets, sets=set_)
    names = settings.enabled_venues() if venues else venue_ids()
    if cache is None:
        pq_dir = settings.storage.parquet_dir
        cache = pq_dir / "funding_history" if pq_dir is not None else default_dir()
    try:
        registry = build_registry(settings)
    except ConfigError as exc:
        _config_error(exc)
    fees = {v: s.taker_fee for v, s in settings.venues.items() if s.taker_fee is not None}
    progress = Progress(TextColumn("{task.description}"), BarColumn(), TimeRemainingColumn(), console=err,
                        transient=True, disable=not err.is_terminal)

    def task(venue: str, asset: str, total: int) -> Any:
        tid = progress.add_task(f"{venue} {asset}", total=total)
        return lambda ms: progress.advance(tid, ms)

    async def go() -> Any:
        endpoints = {v: s.rest_url for v, s in settings.venues.items() if s.rest_url}
        simulator = None
        if sim:
            from perparb.sim.server import Simulator

            simulator = Simulator(registry, [v for v in names if unsupported(v) is None], settings.assets,
                                  seed=seed)
            await simulator.start()
            endpoints.update({v: sv.rest_url for v, sv in simulator.venues.items()})
        try:
            with progress:
                return await run_history(names, settings.assets, registry, cache, days, until_ms, endpoints, fees,
                                         pace_s=0.0 if sim else None, progress=task)
        finally:
            if simulator:
                await simulator.stop()

    try:
        result = _run(go())
    except OSError as exc:
        _error(f"--cache {cache}: {exc.strerror or exc}")
    for s in result.skipped:  # said first, so that it is never lost under the table
        err.print(Text(f"skipped {s['venue']} {s['asset']}: {s['reason']}"), highlight=False, soft_wrap=True)
    summary = result.summary()
    if as_json:
        typer.echo(json.dumps(summary))
    elif csv:
        cols, rows = (PAIR_COLUMNS, summary["pairs"]) if pairs else (VENUE_COLUMNS, summary["venues"])
        w = csvlib.writer(sys.stdout, lineterminator="\n")
        w.writerow(cols)
        w.writerows([round(r[c], 6) if isinstance(r[c], float) else r[c] for c in cols] for r in rows)
    else:
        _funding_tables(summary)
    if plot is not None:
        from perparb.research.funding_plot import write_png

        err.print(f"plot written to {write_png(result, plot)}", highlight=False)
    if html is not None:
        from perparb.research.funding_plot import write_html

        err.print(f"report written to {write_html(result, html)}", highlight=False)
    if not result.venues:
        _error("no funding history from any venue", 1)


def _until_ms(text: str) -> int:
    from datetime import UTC, datetime

    if text.strip().isdigit():
        return int(text)
    try:
        t = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        _error(f"--until {text!r}: expected an ISO 8601 time (2026-01-31T08:00) or epoch milliseconds")
    return int((t if t.tzinfo else t.replace(tzinfo=UTC)).timestamp() * 1000)


def _funding_tables(summary: dict[str, Any]) -> None:
    console = Console(width=None if sys.stdout.isatty() else 220)
    window = f"{summary['start']} to {summary['end']}"
    t = Table(title=f"Funding carry per asset x venue, {window} (APR %, short collects when positive)")
    for col in ("#", "asset", "venue", "symbol", "interval h", "n", "mean", "median", "std", "positive %",
                "longest streak", "fee", "net", "side"):
        t.add_column(col, justify="left" if col in ("asset", "venue", "symbol", "side") else "right")
    for r in summary["venues"]:
        t.add_row(str(r["rank"]), r["asset"], r["venue"], r["symbol"], r["intervals_h"], str(r["n"]),
                  f"{r['mean_apr']:.2f}", f"{r['median_apr']:.2f}", f"{r['std_apr']:.2f}",
                  f"{r['share_positive'] * 100:.0f}",
                  f"{r['longest_positive_streak']} ({r['longest_positive_streak_h']:g} h)",
                  f"{r['fee_apr']:.2f}", f"{r['net_apr']:.2f}", r["side"])
    console.print(t)
    p = Table(title=f"Venue pairs per asset, {window} (APR %: long the lower, short the higher)")
    for col in ("#", "asset", "long", "short", "long mean", "short mean", "spread", "fee", "net", "hours"):
        p.add_column(col, justify="left" if col in ("asset", "long", "short") else "right")
    for r in summary["pairs"]:
        p.add_row(str(r["rank"]), r["asset"], r["long_venue"], r["short_venue"], f"{r['long_mean_apr']:.2f}",
                  f"{r['short_mean_apr']:.2f}", f"{r['spread_apr']:.2f}", f"{r['fee_apr']:.2f}",
                  f"{r['net_apr']:.2f}", f"{r['hours']:g}")
    console.print(p)


UrlOpt = Annotated[str | None, typer.Option(
    help="The running API (default http://<api.host>:<api.port> from the configuration).")]
TokenOpt = Annotated[str | None, typer.Option(
    help="Bearer token (default api.token from the configuration or PERPARB_API__TOKEN).", show_default=False)]


def _post(url: str | None, token: str | None, config: Path | None, path: str, body: dict[str, Any]) -> None:
    import urllib.error
    import urllib.request

    settings = _settings(config, None, None)
    a = settings.api
    host = "127.0.0.1" if a.host in ("0.0.0.0", "::") else a.host
    base = (url or f"http://{host}:{a.port}").rstrip("/")
    token = token or (a.token.get_secret_value() if a.token else None)
    if not token:
        _error("no token: pass --token or set api.token (PERPARB_API__TOKEN)")
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            typer.echo(resp.read().decode())
    except urllib.error.HTTPError as exc:
        _error(f"{base}{path}: HTTP {exc.code}: {exc.read().decode()[:300]}", 1)
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        _error(f"cannot reach {base}: {reason}", 1)


@app.command()
def kill(flatten: Annotated[bool, typer.Option("--flatten", help="Also close every position.")] = False,
         reason: Annotated[str, typer.Option(help="Recorded with the kill switch event.")] = "manual",
         url: UrlOpt = None, token: TokenOpt = None, config: ConfigOpt = None) -> None:
    """Engage the kill switch of a running perparb (POST /api/paper/kill): no new orders."""
    _post(url, token, config, "/api/paper/kill", {"reason": reason, **({"flatten": True} if flatten else {})})


@app.command()
def resume(url: UrlOpt = None, token: TokenOpt = None, config: ConfigOpt = None) -> None:
    """Release the kill switch of a running perparb (POST /api/paper/resume)."""
    _post(url, token, config, "/api/paper/resume", {})


@app.command()
def report(
    ledger: Annotated[Path | None, typer.Option(
        help="SQLite ledger file (default: the one paper trading writes, storage.ledger or "
             "$PERPARB_HOME/ledger.sqlite; storage.postgres_url when set and --ledger is not given).")] = None,
    html_dir: Annotated[Path | None, typer.Option(
        "--html", help="Also write DIR/report.html: one self-contained page with plots.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
    config: ConfigOpt = None, set_: SetOpt = None,
) -> None:
    """Open positions per pair (both legs), PnL split, trade log and equity curve, from the ledger."""
    from perparb import report as rep
    from perparb.store.ledger import LedgerError, ledger_path, open_ledger

    settings = _settings(config, None, None, None, set_)
    st = settings.storage
    url = st.postgres_url.get_secret_value() if st.postgres_url is not None and ledger is None else None
    path = ledger if ledger is not None else ledger_path(st)
    if url is None and not path.is_file():
        _error(f"no ledger at {path}: run paper trading first, or pass --ledger PATH")
    source = f"postgresql ({st.postgres_schema})" if url else str(path)
    try:
        journal = open_ledger(url, path, schema=st.postgres_schema)
        try:
            r = rep.build(m for _, m in journal.events())
        finally:
            journal.close()
    except (LedgerError, OSError, ValueError) as exc:
        _error(f"cannot read the ledger {source}: {exc}")
    if as_json:
        typer.echo(json.dumps(rep.as_json(r), sort_keys=True))
    else:
        rep.print_text(r, source, Console(width=None if sys.stdout.isatty() else 160))
    if html_dir is not None:
        page = rep.write_html(r, source, html_dir)
        err.print(f"wrote {page}", highlight=False, markup=False)


@app.command()
def decode(
    file: Annotated[Path, typer.Argument(help="Raw messages, one per line.", exists=True, dir_okay=False)],
    venue: Annotated[str, typer.Option(help="Venue id.")],
    metadata: Annotated[list[Path] | None, typer.Option(
        help="A REST metadata response describing the venue's contracts (repeatable).")] = None,
) -> None:
    """Print the normalized events of raw venue messages as JSON lines."""
    adapter = _adapter(venue, metadata)
    enc = msgspec.json.Encoder()
    out = sys.stdout.buffer
    bad = 0
    with file.open("rb") as fh:
        for n, line in enumerate(fh, 1):
            line = line.strip()
            if not line:
                continue
            try:
                # No engine clock here: venue timestamps are not held to a window.
                events = adapter.decode(line, time.time_ns())
            except DecodeError as exc:
                bad += 1
                err.print(f"line {n}: {exc}", highlight=False, markup=False, soft_wrap=True)
                continue
            for p in adapter.take_problems():
                err.print(f"line {n}: {p}", highlight=False, markup=False, soft_wrap=True)
            for ev in events:
                if isinstance(ev, BookSnapshot | BookDelta):
                    row = msgspec.to_builtins(ev)
                    del row["raw_levels"]  # native text kept for checksums, not a normalized field
                    out.write(enc.encode(row) + b"\n")
                else:
                    out.write(enc.encode(ev) + b"\n")
    out.flush()
    if bad:
        raise typer.Exit(1)


def _adapter(venue: str, metadata: list[Path] | None) -> Venue:
    try:
        cls = venue_class(venue)  # native ids and generic ones (ccxt:<exchange id>)
    except KeyError:
        _error(f"unknown venue {venue!r}; known: {', '.join(venue_ids())}, or ccxt:<exchange id>")
    registry = load_registry()
    adapter = cls(registry)
    for path in metadata or []:
        raw = path.read_bytes()
        specs = []
        for p in adapter.metadata_paths:  # the file does not say which request it answered
            with contextlib.suppress(DecodeError):
                specs = adapter.parse_metadata(p, raw)
            if specs:
                break
        if not specs:
            _error(f"{path} is not a {venue} metadata response")
        registry.add_many(specs)
    return adapter


@app.command()
def markets(
    venue: Annotated[str | None, typer.Option(help="Only this venue.")] = None,
    asset: Annotated[str | None, typer.Option(help="Only this canonical asset, e.g. PEPE.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per contract.")] = False,
    refresh: Annotated[bool, typer.Option(help="Rebuild the snapshot from the venues' REST APIs (online).")] = False,
    out: Annotated[Path | None, typer.Option(help="Where --refresh writes the snapshot.")] = None,
) -> None:
    """List the instrument map: venue contract → canonical symbol and units."""
    from perparb.venues import venue_ids

    if venue is not None and venue not in venue_ids():
        _error(f"unknown venue {venue!r}; known: {', '.join(venue_ids())}")
    if refresh:
        from perparb.app import run_async
        from perparb.instruments.refresh import refresh_snapshot

        path = run_async(refresh_snapshot(out))
        err.print(f"snapshot written to {path}")
    from perparb.instruments.snapshot import load_snapshot

    snap = load_snapshot()
    dated = {s.file: s for infos in snap.venues.values() for s in infos}
    rows = [i for i in snap.instruments if (venue is None or i.venue == venue)
            and (asset is None or i.asset.upper() == asset.upper())]
    # Venues the snapshot has nothing for are said so, never filled with made-up contracts.
    missing = [v for v in venue_ids() if v not in snap.venues and (venue is None or v == venue)]
    if as_json:
        for i in rows:
            src = dated.get(i.source)
            typer.echo(json.dumps({
                "venue": i.venue, "venue_symbol": i.venue_symbol, "symbol": i.symbol, "asset": i.asset,
                "contract_size": i.contract_size, "price_scale": i.price_scale, "inverse": i.inverse,
                "settle": i.settle, "funding_interval_h": i.funding_interval_h, "status": i.status,
                "data_date": src.date if src else None, "data_source": i.source}))
        for v in missing:
            typer.echo(json.dumps({"venue": v, "venue_symbol": None, "data_date": None, "data_source": None,
                                   "note": "no recorded metadata: contracts are loaded from the venue live"}))
        return
    table = Table(title=f"{len(rows)} contracts")
    for col in ("venue", "native symbol", "symbol", "asset", "contract size", "price scale", "inverse", "settle",
                "funding h", "status", "data date"):
        table.add_column(col)
    for i in rows:
        src = dated.get(i.source)
        table.add_row(i.venue, i.venue_symbol, i.symbol, i.asset, f"{i.contract_size:g}", f"{i.price_scale:g}",
                      "yes" if i.inverse else "", i.settle, f"{i.funding_interval_h:g}", i.status,
                      src.date if src else "")
    # Piped output keeps whole columns rather than the 80-column default.
    console = Console(width=None if sys.stdout.isatty() else 250)
    console.print(table)
    for v, infos in sorted(snap.venues.items()):
        if venue is None or v == venue:
            console.print(f"{v}: " + "; ".join(f"{s.contracts} contracts as of {s.date} ({s.scope}, {s.file})"
                                                for s in infos), highlight=False)
    for v in missing:
        console.print(f"{v}: no recorded metadata; contracts are loaded from the venue live", highlight=False)


@bench_app.command("decode")
def bench_decode(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    venue: Annotated[str, typer.Option(help="Venue id.")],
    min_seconds: Annotated[float, typer.Option(help="Repeat until at least this long.")] = 2.0,
    metadata: Annotated[list[Path] | None, typer.Option(help="REST metadata response (repeatable).")] = None,
) -> None:
    """Steady-state decode throughput of a raw message file (decoder only, no I/O)."""
    from perparb.bench import decode_throughput

    adapter = _adapter(venue, metadata)
    lines = [ln.strip() for ln in file.read_bytes().splitlines() if ln.strip()]
    result = decode_throughput(adapter, lines, min_seconds)
    result["file"] = file.name
    typer.echo(json.dumps(result))


@bench_app.command("book")
def bench_book(
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False)],
    venue: Annotated[str, typer.Option(help="Venue id.")],
    snapshot: Annotated[Path | None, typer.Option(help="REST book snapshots, one per line (Binance, Gate).")] = None,
    min_seconds: Annotated[float, typer.Option(help="Repeat until at least this long.")] = 2.0,
) -> None:
    """Throughput of book updates decoded and applied to validated books."""
    from perparb.bench import book_throughput

    adapter = _adapter(venue, None)
    lines = [ln.strip() for ln in file.read_bytes().splitlines() if ln.strip()]
    snaps = [ln.strip() for ln in snapshot.read_bytes().splitlines() if ln.strip()] if snapshot else []
    result = book_throughput(adapter, lines, snaps, min_seconds)
    result["file"] = file.name
    typer.echo(json.dumps(result))


def main() -> None:
    app()


if __name__ == "__main__":
    main()
