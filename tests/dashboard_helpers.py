"""The dashboard end to end, for the browser tests: simulator -> feeds -> engine -> API -> /ws
-> the page in Chromium.

Everything runs in the test's event loop: simulated venues, a Session with the API on a free
port, and Playwright's async API driving Debian's Chromium (never a downloaded browser).
Screenshots go to test-artifacts/screenshots/.

Needs the built dashboard (`make setup` runs the npm build into src/perparb/api/static) and
/usr/bin/chromium (`make browser`, or `apt-get install chromium`).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from perparb.app import Session
from perparb.config import load_settings
from perparb.instruments.snapshot import load_registry
from perparb.sim.server import Simulator

ROOT = Path(__file__).resolve().parents[1]
INDEX = ROOT / "src" / "perparb" / "api" / "static" / "index.html"
SHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("PERPARB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VENUES = ["binance", "okx", "bybit"]
ASSETS = ["BTC", "ETH", "SOL"]
VIEWPORT = {"width": 1366, "height": 768}


def require_browser() -> None:
    if not INDEX.exists():
        pytest.fail(f"the dashboard is not built ({INDEX} is missing): run `make setup` "
                    "(it runs `cd web && npm ci && npm run build`)")
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"!!! CHROMIUM NOT FOUND AT {CHROMIUM}: THE DASHBOARD BROWSER TESTS DID NOT RUN !!! "
                    "Install it with `sudo apt-get install chromium` (or `make browser` as root), "
                    "or point PERPARB_CHROMIUM at a Chromium binary.")
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        pytest.fail("the playwright package is missing: run `make setup` (pip install -e '.[dev]')")


async def wait_for(cond: Callable[[], Awaitable[bool]], timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not await cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        await asyncio.sleep(0.1)


class Dash:
    """A simulator, a session serving the API and dashboard, and a Chromium page on it."""

    def __init__(self, sim: Simulator, session: Session, page: Any) -> None:
        self.sim = sim
        self.session = session
        self.page = page

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.session.api_port}/"

    async def wait(self, cond: Callable[[], Awaitable[bool]], timeout: float = 10.0, what: str = "condition") -> None:
        """wait_for, with a screenshot of the page when it times out."""
        try:
            await wait_for(cond, timeout, what)
        except AssertionError:
            await self.shot("FAILED-" + re.sub(r"[^a-z0-9]+", "-", what.lower()).strip("-"))
            raise

    async def shot(self, name: str) -> Path:
        SHOTS.mkdir(parents=True, exist_ok=True)
        path = SHOTS / f"{name}.png"
        await self.page.screenshot(path=str(path))
        return path

    async def api(self, path: str) -> Any:
        return await self.page.evaluate("async (p) => (await fetch(p)).json()", path)

    async def rows(self) -> list[dict[str, str]]:
        """Every visible opportunity row, read from the DOM in one go: {column: text}."""
        return await self.page.evaluate("""() => [...document.querySelectorAll('[data-testid=opp-row]')].map(tr => {
            const o = {id: tr.dataset.id, state: tr.dataset.state, asset_attr: tr.dataset.asset, kind: tr.dataset.kind};
            for (const td of tr.querySelectorAll('td')) {
                o[td.dataset.col] = td.textContent;
                if (td.dataset.value !== undefined) o[td.dataset.col + '@'] = td.dataset.value;
            }
            return o; })""")

    async def column(self, col: str) -> list[float]:
        """A column's numbers, open rows only (closed ones sort below them, on their own)."""
        return [number(r[col]) for r in await self.rows() if r["state"] == "open"]

    async def venue_states(self) -> dict[str, str]:
        return await self.page.evaluate("""() => Object.fromEntries([...document.querySelectorAll(
            '[data-testid=venue-table] tbody tr')].map(tr => [tr.dataset.venue, tr.dataset.state]))""")


def number(text: str) -> float:
    """A number as the table shows it: '1,234.50', '-3.20', '+0.80', '683.2k', '1.25M'."""
    t = text.replace(",", "").strip()
    scale = {"k": 1e3, "M": 1e6}.get(t[-1:], 1.0)
    return float(t.rstrip("kM")) * scale


def hms(text: str) -> int:
    h, m, s = (int(x) for x in text.split(":"))
    return h * 3600 + m * 60 + s


@contextlib.asynccontextmanager
async def open_dashboard(overrides: dict[str, Any], venues: list[str] | None = None, assets: list[str] | None = None,
                         viewport: dict[str, int] | None = None,
                         console_ok: Callable[[str], bool] = lambda text: False) -> AsyncIterator[Dash]:
    """Simulated ``venues`` quoting ``assets``, a Session with the API and the settings
    ``overrides``, and the dashboard open in Chromium; page errors (and console errors that
    ``console_ok`` does not excuse) fail the test when it ends."""
    require_browser()
    from playwright.async_api import async_playwright

    venues, assets = venues or VENUES, assets or ASSETS
    registry = load_registry()
    sim = Simulator(registry, venues, assets, seed=11, tick_s=0.1)
    settings = load_settings(None, {"venues": venues, "assets": ",".join(assets), "api.port": 0, **overrides}, env={})
    await sim.start()
    session = Session(settings, sim.endpoints(), registry, api=True)
    runner = asyncio.create_task(session.run(None))  # start, then the watch loop (rates, sweeps)
    profile = tempfile.mkdtemp(prefix="perparb-chromium-")
    try:
        deadline = time.monotonic() + 30
        while not session.api_port:
            if runner.done():
                runner.result()
            assert time.monotonic() < deadline, "the API server did not start"
            await asyncio.sleep(0.05)
        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, viewport=viewport or VIEWPORT)
            try:
                page = context.pages[0] if context.pages else await context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" and not console_ok(m.text)
                        else None)
                d = Dash(sim, session, page)
                await page.goto(d.url)
                await page.wait_for_selector("[data-testid=ws-status][data-state=live]", timeout=30_000)
                yield d
                assert not errors, f"errors in the page (uncaught or on the console): {errors}"
            finally:
                await context.close()
    finally:
        runner.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await runner
        await sim.stop()
        shutil.rmtree(profile, ignore_errors=True)
