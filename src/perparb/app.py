"""Running the engine against venues: the real ones (``perparb run``) or the simulator
(``perparb demo``). Both go through exactly this code; only the endpoints differ."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import shutil
import socket
import sys
import tempfile
import time
from collections.abc import Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp
import msgspec

from perparb.api.state import Rates
from perparb.config import ConfigError, Settings
from perparb.engine import Engine
from perparb.feeds.booksync import SYNCED
from perparb.feeds.runtime import Backoff, Tap, VenueFeed
from perparb.instruments.overrides import apply_overrides, load_overrides
from perparb.instruments.registry import Registry
from perparb.instruments.snapshot import load_registry
from perparb.model import Instrument
from perparb.replay import SWEEP_NS
from perparb.scanner.alerts import Alerter, AlertRule
from perparb.scanner.core import Scanner, ScanSettings
from perparb.store.capture import CaptureWriter
from perparb.store.ledger import LedgerError
from perparb.store.recorder import RotatingWriter
from perparb.view import render

if TYPE_CHECKING:
    from perparb.paper.assembly import Trading
    from perparb.store.parquet import ParquetSink

log = logging.getLogger("perparb")

T = TypeVar("T")
Endpoints = dict[str, dict[str, str]]


def build_registry(settings: Settings) -> Registry:
    path = settings.instruments_file
    if path is None:
        return load_registry()
    try:
        return load_registry(Path(path))
    except OSError as exc:
        raise ConfigError(f"instruments_file: cannot read {path}: {exc.strerror}") from None
    except msgspec.DecodeError as exc:
        raise ConfigError(f"instruments_file: {path} is not an instrument snapshot: {exc}") from None


def scan_settings(settings: Settings) -> ScanSettings:
    sc = settings.scanner
    return ScanSettings(
        min_edge_bps=sc.min_edge_bps, max_quote_age_ms=sc.max_quote_age_ms,
        venue_max_age_ms={v: s.max_quote_age_ms for v, s in settings.venues.items() if s.max_quote_age_ms},
        taker_fees={v: s.taker_fee for v, s in settings.venues.items() if s.taker_fee is not None},
        max_notional=sc.max_notional, funding_notional=sc.funding_notional,
        funding_horizon_h=sc.funding_horizon_h, funding_min_apr=sc.funding_min_apr,
        funding_max_age_ms=sc.funding_max_age_ms, funding_intervals=sc.funding_intervals,
        funding_min_open_interest_quote=sc.funding_min_open_interest_quote,
        funding_min_volume_quote=sc.funding_min_volume_quote,
        evict_after_ms=sc.evict_after_ms, quote_groups=sc.quote_groups, ambiguity_ratio=sc.ambiguity_ratio,
        max_funding_rate=sc.max_funding_rate, clock_window_s=sc.clock_window_s,
    )


def build_engine(settings: Settings, registry: Registry) -> Engine:
    return Engine(registry, settings.enabled_venues(), Scanner(scan_settings(settings)))


def build_alerter(settings: Settings) -> Alerter | None:
    a = settings.alerts
    if not a.rules and not a.urls:
        return None
    # URLs without rules still deliver trading alerts (leg risk, the kill switch).
    rules = [AlertRule(**r.model_dump()) for r in a.rules]
    return Alerter(rules, [u.get_secret_value() for u in a.urls], a.cooldown_s)


def build_paper(settings: Settings, engine: Engine, alerter: Alerter | None = None,
                scratch: Path | None = None, live_confirmed: bool = False) -> Trading | None:
    """Paper trading over the engine when ``paper.enabled`` and ``execution.mode = "paper"``,
    journaled to the ledger of ``storage`` (``scratch``: a throw-away SQLite file instead,
    for the demo, unless a ledger is configured explicitly)."""
    live = settings.execution.mode == "live"
    if live:
        from perparb.execution.gate import live_gate

        missing = live_gate(settings, live_confirmed)
        if missing:  # never paper trading in place of the live trading asked for
            raise ConfigError("live trading refused; missing: " + "; ".join(missing))
    elif not settings.paper.enabled:
        return None
    from perparb.paper import build_trading
    from perparb.store.ledger import SqliteLedger, ledger_from_settings

    st = settings.storage
    explicit = st.ledger is not None or st.postgres_url is not None
    ledger = SqliteLedger(scratch) if scratch is not None and not explicit else ledger_from_settings(st)
    return build_trading(settings, engine, alerter=alerter, venues=settings.enabled_venues(), ledger=ledger,
                         live=live)


class Session:
    """One engine with its venue feeds."""

    def __init__(self, settings: Settings, endpoints: Endpoints | None = None,
                 registry: Registry | None = None, capture: Path | None = None, api: bool = False,
                 config_path: Path | None = None, scratch_ledger: bool = False, record: Path | None = None,
                 live_confirmed: bool = False) -> None:
        self.settings = settings
        # Started with --confirm-live (the third condition of the live-trading gate).
        self.live_confirmed = live_confirmed
        self.config_path = config_path
        self.api_enabled = api
        self.metadata_retry_s = (1.0, 60.0)  # backoff base and cap for a venue down at start
        self.api_server: Any = None
        self.api_port = 0
        self.rates = Rates()
        self._overrides_mtime = 0.0
        self.registry = registry or build_registry(settings)
        self.engine = build_engine(settings, self.registry)
        self.endpoints = endpoints or {}
        self.feeds: dict[str, VenueFeed] = {}
        self.tasks: list[asyncio.Task[None]] = []
        self.http: aiohttp.ClientSession | None = None
        self.started_ns = 0
        key = "--capture"
        if capture is None and settings.storage.capture:
            key = "storage.dir"
            capture = Path(settings.storage.dir) / time.strftime("capture-%Y%m%dT%H%M%SZ.jsonl.zst", time.gmtime())
        try:
            self.capture = CaptureWriter(capture) if capture else None
        except OSError as exc:
            raise ConfigError(f"{key}: cannot write {capture}: {exc.strerror}") from None
        self.record: RotatingWriter | None = None
        if record is not None:
            try:
                self.record = RotatingWriter(record, settings.storage.max_bytes)
            except OSError as exc:
                raise ConfigError(f"--record: cannot write to {record}: {exc.strerror}") from None
        self.writers = [w for w in (self.capture, self.record) if w is not None]
        self.alerter = build_alerter(settings)
        if self.alerter is not None:
            self.engine.scanner.listeners.append(self.alerter)
        # The demo's market is invented afresh each run: its journal is a throw-away file, so
        # one demo never restores another's positions (unless a ledger is configured).
        self._scratch = Path(tempfile.mkdtemp(prefix="perparb-demo-ledger-")) if scratch_ledger else None
        try:
            self.trading = build_paper(settings, self.engine, self.alerter,
                                       self._scratch / "ledger.sqlite" if self._scratch else None, live_confirmed)
        except (OSError, LedgerError) as exc:
            raise ConfigError(f"storage.ledger: cannot open the trading ledger: {exc}") from None
        self.parquet: ParquetSink | None = None
        st = settings.storage
        if st.parquet_dir is not None:
            from perparb.store.parquet import ParquetSink  # pyarrow loads only when asked for

            self.parquet = ParquetSink(st.parquet_dir, st.book_depth, st.book_interval_s, threaded=True)
            self.parquet.attach(self.engine)
            if self.trading is not None:
                self.trading.fill_listeners.append(self.parquet.on_fill)

    def _tap(self) -> Tap | None:
        if len(self.writers) < 2:
            return self.writers[0].write if self.writers else None
        a, b = (w.write for w in self.writers)

        def both(venue: str, src: str, raw: str | bytes, recv_ns: int, path: str | None = None) -> None:
            a(venue, src, raw, recv_ns, path)
            b(venue, src, raw, recv_ns, path)
        return both

    def _urls(self, venue: str) -> tuple[str, str]:
        adapter = self.engine.adapters[venue]
        vs = self.settings.venues[venue]
        ep = self.endpoints.get(venue, {})
        return (vs.ws_url or ep.get("ws_url") or adapter.ws_url,
                vs.rest_url or ep.get("rest_url") or adapter.rest_url)

    async def start(self) -> None:
        """Open the API (a port that cannot be had ends the start), load each venue's
        metadata, then connect its feeds."""
        self.started_ns = time.time_ns()
        if self.api_enabled:
            try:
                await self._start_api()
            except OSError as exc:
                a = self.settings.api
                host = isinstance(exc, socket.gaierror)  # the name does not resolve
                key, flag = ("api.host", "--host") if host else ("api.port", "--port")
                raise ConfigError(f"{key}: cannot serve the API on {a.host}:{a.port}: {exc.strerror or exc} "
                                  f"(choose another with {flag} or {key}, or run without the API: --no-api)") from None
        self.http = aiohttp.ClientSession()
        for venue in self.engine.adapters:
            ws_url, rest_url = self._urls(venue)
            feed = VenueFeed(self.engine, venue, [], ws_url, rest_url, books=self.settings.venues[venue].books,
                             http=self.http, tap=self._tap())
            loaded = await feed.load_metadata()
            self.apply_overrides()  # after every metadata load: the user's word wins
            feed.instruments = self._select(venue)
            if not loaded:
                # Down at start: stream what the snapshot knows, and load the contract list
                # when the venue answers again.
                self.engine.status[venue].last_error = "instrument metadata unavailable; retrying"
                log.warning("%s: instrument metadata unavailable; streaming the %d contracts the snapshot knows "
                            "and retrying", venue, len(feed.instruments))
                self.tasks.append(asyncio.create_task(self._load_metadata_later(feed)))
            if not feed.instruments:
                log.warning("%s: none of %s is listed; not connecting%s", venue, ",".join(self.settings.assets),
                            "" if loaded else " until its metadata loads")
                if loaded:  # health names the reason it never connects
                    self.engine.status[venue].last_error = f"lists none of {','.join(self.settings.assets)}"
                continue
            self.feeds[venue] = feed
        self.tasks += [asyncio.create_task(f.run()) for f in self.feeds.values()]
        if self.trading is not None:
            from perparb.execution.live import LiveStartError

            try:
                await self.trading.start_live()
            except LiveStartError as exc:
                raise ConfigError(f"live trading cannot start: {exc}") from None
            self.engine.advance(time.time_ns())
            self.trading.start()

    def _select(self, venue: str) -> list[Instrument]:
        return self.registry.select(venue, self.settings.assets, inverse=self.engine.adapters[venue].prefers_inverse)

    async def _load_metadata_later(self, feed: VenueFeed) -> None:
        """Retry a venue's metadata with backoff until it loads, then refresh its selection."""
        backoff = Backoff(*self.metadata_retry_s)
        while True:
            await asyncio.sleep(backoff.next())
            if await feed.load_metadata():
                break
        self.apply_overrides()
        venue = feed.venue
        chosen = self._select(venue)
        st = self.engine.status[venue]
        if st.last_error.startswith("instrument metadata unavailable"):
            st.last_error = ""
        log.warning("%s: instrument metadata loaded; %d contracts selected", venue, len(chosen))
        if venue in self.feeds:
            if {i.venue_symbol for i in chosen} != {i.venue_symbol for i in feed.instruments}:
                feed.reselect(chosen)
        elif chosen:
            feed.instruments = chosen
            self.feeds[venue] = feed
            self.tasks.append(asyncio.create_task(feed.run()))

    async def _start_api(self) -> None:
        import uvicorn

        from perparb.api.app import ApiContext, create_app, exposure_warning

        warning = exposure_warning(self.settings.api)
        if warning:
            log.warning("%s", warning)
        ctx = ApiContext(self.engine, self.settings.api, self.rates, self.alerter, self.reload, trading=self.trading)
        self.api_context = ctx
        app = create_app(ctx)
        a = self.settings.api
        # No per-message deflate: compressing every client's stream costs the engine's CPU.
        config = uvicorn.Config(app, host=a.host, port=a.port, log_level="warning", lifespan="off",
                                ws="websockets-sansio", ws_per_message_deflate=False, access_log=False)
        server = uvicorn.Server(config)
        server.capture_signals = contextlib.nullcontext  # type: ignore[method-assign, assignment]  # CLI owns signals
        # Bind here: uvicorn answers a bind failure with sys.exit, which no task can contain.
        family = socket.AF_INET6 if ":" in a.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((a.host, a.port))
        except OSError:
            sock.close()
            raise
        sock.set_inheritable(True)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            if serving.done():
                serving.result()
                raise OSError(f"API server on {a.host}:{a.port} stopped during start-up")
            await asyncio.sleep(0.02)
        self.api_server = server
        self.tasks += [serving, asyncio.create_task(ctx.hub.run())]
        self.api_port = server.servers[0].sockets[0].getsockname()[1]
        # News, not a problem: INFO in the log, and said once on stderr so a user starting demo sees it.
        log.info("API and dashboard on http://%s:%d/", a.host, self.api_port)
        print(f"API and dashboard on http://{a.host}:{self.api_port}/", file=sys.stderr, flush=True)

    def apply_overrides(self, path: Path | None = None) -> dict[str, Any]:
        """Apply the instrument overrides file; bad entries are logged with their line."""
        path = path or self.settings.instrument_overrides
        if path is None:
            return {"applied": 0, "errors": []}
        overrides, errors = load_overrides(Path(path))
        changed, more = apply_overrides(self.registry, overrides, self._derive)
        errors += more
        for inst in changed:  # the scanner re-learns these under their (new) asset
            self.engine.scanner.forget(inst.venue, inst.venue_symbol)
        for e in errors:
            log.warning("instrument overrides: %s", e)
        with contextlib.suppress(OSError):
            self._overrides_mtime = Path(path).stat().st_mtime
        return {"applied": len(changed), "errors": errors}

    def _derive(self, venue: str, symbol: str) -> Instrument | None:
        adapter = self.engine.adapters.get(venue)
        return adapter.derive(symbol) if adapter is not None else None

    def _overrides_changed(self) -> bool:
        path = self.settings.instrument_overrides
        if path is None:
            return False
        try:
            return Path(path).stat().st_mtime != self._overrides_mtime
        except OSError:
            return False

    async def reload(self) -> dict[str, Any]:
        """Re-read alert rules and instrument overrides from the configuration file."""
        done: dict[str, Any] = {}
        if self.config_path is not None:
            from perparb.config import load_settings

            fresh = load_settings(self.config_path)
            if self.alerter is not None and fresh.alerts.rules:
                self.alerter.rules = [AlertRule(**r.model_dump()) for r in fresh.alerts.rules]
                self.alerter.cooldown_ns = int(fresh.alerts.cooldown_s * 1e9)
                done["alerts"] = len(self.alerter.rules)
            self.settings.instrument_overrides = fresh.instrument_overrides
        if self.settings.instrument_overrides is not None:
            done["instrument_overrides"] = self.apply_overrides()
        return {"reloaded": done}

    async def stop(self) -> None:
        if self.api_server is not None:
            self.api_server.should_exit = True
        for f in self.feeds.values():
            f.stop()
        for t in self.tasks:
            t.cancel()
        for t in self.tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await t
        if self.http is not None:
            await self.http.close()
        for w in self.writers:
            w.close()
        if self.parquet is not None:
            self.parquet.close()
        if self.alerter is not None:
            self.alerter.close()
        if self.trading is not None:
            await self.trading.close_live()
            self.trading.close()
        if self._scratch is not None:
            shutil.rmtree(self._scratch, ignore_errors=True)

    async def run(self, duration: float | None, view: bool = False) -> dict[str, Any]:
        try:
            await self.start()
            await self._watch(duration, view)
            return self.summary()
        finally:
            await self.stop()

    async def _watch(self, duration: float | None, view: bool) -> None:
        deadline = None if duration is None else time.monotonic() + duration
        live = None
        if view:
            from rich.live import Live

            live = Live(render(self), refresh_per_second=4, transient=False)
            live.start()
        try:
            while deadline is None or time.monotonic() < deadline:
                await asyncio.sleep(SWEEP_NS / 1e9)
                self.engine.advance(time.time_ns())
                self.engine.scanner.sweep(self.engine.now_ns, self.engine.status)
                if self.trading is not None:
                    self.trading.on_tick(self.engine.now_ns)
                self.rates.sample(self.engine, time.time_ns())
                for w in self.writers:
                    w.tick()
                if self.parquet is not None:
                    self.parquet.tick()
                if self._overrides_changed():
                    log.warning("instrument overrides changed: %s", self.apply_overrides())
                if live:
                    live.update(render(self))
        finally:
            if live:
                live.stop()

    def summary(self) -> dict[str, Any]:
        e = self.engine
        venues = {}
        for v, st in e.status.items():
            books = [sb for (bv, _), sb in e.books.items() if bv == v]
            venues[v] = {
                "connected": st.connected, "ever_connected": st.connected_since_ns > 0, "messages": st.messages,
                "decode_errors": st.decode_errors, "decode_errors_by_reason": dict(st.errors_by_reason),
                "unknown_symbols": st.unknown_symbols,
                "reconnects": st.reconnects, "books_synced": sum(sb.state == SYNCED for sb in books),
                "books": len(books), "book_resyncs": sum(sb.resyncs for sb in books),
                "book_gaps": sum(sb.gaps for sb in books),
            }
        return {
            "venues_connected": sum(1 for x in venues.values() if x["ever_connected"]),
            "messages": sum(st.messages for st in e.status.values()),
            "opportunities": e.scanner.opened,
            "opportunities_by_kind": dict(sorted(e.scanner.lifecycle.opened.items())),
            "open_opportunities": len(e.scanner.lifecycle.active),
            "rejections": dict(sorted(e.scanner.rejections.items())),
            "duration_s": round((time.time_ns() - self.started_ns) / 1e9, 3),
            "venues": venues,
            **({"paper": self.trading.summary()} if self.trading is not None else {}),
        }


# Assets the demo adds to the default ones when none are configured: PEPE trades as
# 1000PEPE (Binance, Bybit), kPEPE (Hyperliquid) and PEPE (OKX, Gate), the normalization
# perparb is for.
DEMO_EXTRA_ASSETS = ("PEPE",)


def demo_settings(settings: Settings) -> Settings:
    if "assets" in settings.model_fields_set:
        return settings
    return settings.model_copy(update={"assets": [*settings.assets, *DEMO_EXTRA_ASSETS]})


async def demo(settings: Settings, duration: float | None, seed: int, view: bool,
               capture: Path | None = None, api: bool = False, config_path: Path | None = None,
               record: Path | None = None) -> dict[str, Any]:
    from perparb.sim.server import Simulator

    settings = demo_settings(settings)
    registry = build_registry(settings)
    sim = Simulator(registry, settings.enabled_venues(), settings.assets, seed=seed)
    await sim.start()
    try:
        session = Session(settings, sim.endpoints(), registry, capture, api, config_path, scratch_ledger=True,
                          record=record)
        return await session.run(duration, view)
    finally:
        await sim.stop()


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run on uvloop where it is installed."""
    if sys.platform != "win32":
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.run(coro)
    return asyncio.run(coro)
