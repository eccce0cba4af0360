"""The dashboard end to end: simulator -> feeds -> engine -> API -> /ws -> the page in Chromium.

Everything runs in this test's event loop: three simulated venues, a Session with the API on
a free port, and Playwright's async API driving Debian's Chromium (never a downloaded
browser). Screenshots of each state go to test-artifacts/screenshots/.

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

pytestmark = pytest.mark.timeout(60)


def _require_browser() -> None:
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

    async def rows(self) -> list[dict[str, str]]:
        """Every visible opportunity row, read from the DOM in one go: {column: text}."""
        return await self.page.evaluate("""() => [...document.querySelectorAll('[data-testid=opp-row]')].map(tr => {
            const o = {id: tr.dataset.id, state: tr.dataset.state, asset_attr: tr.dataset.asset};
            for (const td of tr.querySelectorAll('td')) o[td.dataset.col] = td.textContent;
            return o; })""")

    async def column(self, col: str) -> list[float]:
        return [number(r[col]) for r in await self.rows()]

    async def venue_states(self) -> dict[str, str]:
        return await self.page.evaluate("""() => Object.fromEntries([...document.querySelectorAll(
            '[data-testid=venue-table] tbody tr')].map(tr => [tr.dataset.venue, tr.dataset.state]))""")


def number(text: str) -> float:
    """A number as the table shows it: '1,234.50', '-3.20', '683.2k', '1.25M'."""
    t = text.replace(",", "").strip()
    scale = {"k": 1e3, "M": 1e6}.get(t[-1:], 1.0)
    return float(t.rstrip("kM")) * scale


def hms(text: str) -> int:
    h, m, s = (int(x) for x in text.split(":"))
    return h * 3600 + m * 60 + s


@pytest.fixture
async def dash() -> AsyncIterator[Dash]:
    _require_browser()
    from playwright.async_api import async_playwright

    registry = load_registry()
    sim = Simulator(registry, VENUES, ASSETS, seed=11, tick_s=0.1)
    settings = load_settings(None, {
        "venues": VENUES, "assets": ",".join(ASSETS), "api.port": 0,
        "scanner.min_edge_bps": -1000,  # every crossing pair is an opportunity: the table certainly fills
        "alerts.rules": [{"name": "carry", "kind": "funding", "min_apr": 0.2}],
    }, env={})
    await sim.start()
    session = Session(settings, sim.endpoints(), registry, api=True)
    runner = asyncio.create_task(session.run(None))  # start, then the watch loop (rates, sweeps)
    profile = tempfile.mkdtemp(prefix="perparb-chromium-")
    try:
        deadline = time.monotonic() + 15
        while not session.api_port:
            if runner.done():
                runner.result()
            assert time.monotonic() < deadline, "the API server did not start"
            await asyncio.sleep(0.05)
        async with async_playwright() as pw:
            context = await pw.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS, viewport=VIEWPORT)
            try:
                page = context.pages[0] if context.pages else await context.new_page()
                errors: list[str] = []
                page.on("pageerror", lambda exc: errors.append(str(exc)))
                page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                d = Dash(sim, session, page)
                await page.goto(d.url)
                await page.wait_for_selector("[data-testid=ws-status][data-state=live]", timeout=10_000)
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


async def test_opportunities_table_fills_from_the_simulator(dash: Dash) -> None:
    page = dash.page

    async def filled() -> bool:
        return len([r for r in await dash.rows() if r["state"] == "open"]) >= 3

    await dash.wait(filled, timeout=20, what="three open spread opportunities in the table")
    rows = await dash.rows()
    for r in rows:
        assert r["asset"] in ASSETS and r["asset_attr"] == r["asset"], r
        assert r["buy_venue"] in VENUES and r["sell_venue"] in VENUES and r["buy_venue"] != r["sell_venue"], r
        assert number(r["size_base"]) > 0 and number(r["notional_quote"]) > 0, r
        number(r["edge_bps"]), number(r["gross_bps"])  # numbers, not placeholders
        assert re.fullmatch(r"open|closed: \w+", r["status"]), r
        assert r["id"].startswith(f"spread:{r['asset']}:"), r
    # The rows are the server's opportunities. Under load every row of one read may close
    # before the API answers, so read both again until they overlap.
    async def same_ids() -> bool:
        shown = {r["id"] for r in await dash.rows() if r["state"] == "open"}
        api = await page.evaluate("() => fetch('/api/opportunities?kind=spread').then(r => r.json())")
        return bool(shown & {o["id"] for o in api})

    await dash.wait(same_ids, timeout=20, what="an open row that the API also lists")
    await dash.shot("01-opportunities-spread")

    # The funding view shows carry rows with APR and net carry.
    await page.click("[data-testid=tab-funding]")
    await dash.wait(lambda: _has_rows(dash), what="funding carry rows")
    frows = await dash.rows()
    assert all(r["id"].startswith("funding:") for r in frows)
    assert all(r["apr"].endswith("%") and re.fullmatch(r"[+-]?[\d,]+\.\d\d", r["net_carry_quote"]) for r in frows), frows
    assert {"Long", "Short", "APR", "Net carry"} <= set(await page.locator("[data-testid=opp-table] th").all_inner_texts())
    await dash.shot("02-opportunities-funding")

    # "Alive" ticks: read just before waiting, since rows opened before the funding view may
    # all have closed by now (the simulated spreads last a few seconds).
    await page.click("[data-testid=tab-spread]")

    async def open_spreads() -> dict[str, str]:
        return {r["id"]: r["alive_s"] for r in await dash.rows() if r["state"] == "open" and r["id"].startswith("spread:")}

    async def ticked() -> bool:
        # Under load all the rows of one read can close before the next: read again until
        # one row open at both reads shows a different time alive.
        alive = await open_spreads()
        await asyncio.sleep(1.2)
        later = await open_spreads()
        return any(i in later and later[i] != a for i, a in alive.items())

    await dash.wait(ticked, timeout=20, what="the time alive of an open spread row to tick")


async def _truthy(aw: Awaitable[object]) -> bool:
    return bool(await aw)


async def _has_rows(dash: Dash) -> bool:
    return len(await dash.rows()) > 0


async def test_closed_rows_linger_with_their_reason_then_go(dash: Dash) -> None:
    await dash.page.click("[data-testid=tab-all]")

    async def closed() -> bool:
        return any(r["state"] == "closed" for r in await dash.rows())

    await dash.wait(closed, timeout=20, what="an opportunity closing (greyed row with its reason)")
    row = next(r for r in await dash.rows() if r["state"] == "closed")
    assert re.fullmatch(r"closed: [a-z_]+", row["status"]), row
    await dash.shot("03-closed-row")

    async def gone() -> bool:  # removed, or reopened under the same id
        return all(r["id"] != row["id"] or r["state"] == "open" for r in await dash.rows())

    await dash.wait(gone, timeout=12, what=f"closed row {row['id']} to leave the table")


async def test_sorting_by_a_column_reorders_rows(dash: Dash) -> None:
    page = dash.page
    await page.click("[data-testid=tab-all]")

    async def enough() -> bool:
        return len(await dash.rows()) >= 4

    await dash.wait(enough, what="at least four rows to sort")
    edge = page.locator("[data-testid=opp-th-edge_bps]")
    assert await edge.get_attribute("aria-sort") == "descending"  # the default order
    values = await dash.column("edge_bps")
    assert values == sorted(values, reverse=True), values

    await edge.click()
    assert await edge.get_attribute("aria-sort") == "ascending"
    values = await dash.column("edge_bps")
    assert values == sorted(values), values
    await dash.shot("04-sorted-net-edge-ascending")

    await page.click("[data-testid=opp-th-notional_quote]")
    values = await dash.column("notional_quote")
    assert values == sorted(values, reverse=True), values
    await page.click("[data-testid=opp-th-notional_quote]")
    values = await dash.column("notional_quote")
    assert values == sorted(values), values

    await page.click("[data-testid=opp-th-asset]")  # text columns start ascending
    assets = [r["asset"] for r in await dash.rows()]
    assert assets == sorted(assets) and len(set(assets)) > 1, assets


async def test_filters_by_asset_edge_and_venue(dash: Dash) -> None:
    page = dash.page
    await page.click("[data-testid=tab-all]")

    async def several_assets() -> bool:
        return len({r["asset"] for r in await dash.rows()}) >= 2

    await dash.wait(several_assets, what="rows for two assets")
    target = (await dash.rows())[0]["asset"]
    await page.fill("[data-testid=filter-asset]", target.lower())
    rows = await dash.rows()
    assert rows and {r["asset"] for r in rows} == {target}, rows
    await dash.shot("05-filtered-asset")

    await page.fill("[data-testid=filter-asset]", "")
    await page.select_option("[data-testid=filter-venue]", "okx")
    rows = await dash.rows()
    assert rows and all("okx" in (r["buy_venue"], r["sell_venue"]) for r in rows), rows

    await page.select_option("[data-testid=filter-venue]", "")
    await page.fill("[data-testid=filter-min-edge]", "0")
    assert all(number(r["edge_bps"]) >= 0 for r in await dash.rows())

    await page.fill("[data-testid=filter-min-edge]", "")
    await page.fill("[data-testid=filter-min-apr]", "10")  # %: only funding rows at >= 10 % APR
    rows = await dash.rows()
    assert all(r["id"].startswith("funding:") and number(r["apr"].rstrip("%")) >= 10 for r in rows), rows

    await page.fill("[data-testid=filter-min-apr]", "")
    await page.fill("[data-testid=filter-asset]", "NOPE")
    assert await dash.rows() == []
    assert await page.locator("[data-testid=opp-empty]").is_visible()


async def test_funding_matrix_has_badges_and_live_countdowns(dash: Dash) -> None:
    page = dash.page

    async def full() -> bool:
        texts = await page.locator("[data-testid=funding-countdown]").all_inner_texts()
        return len(texts) == len(ASSETS) * len(VENUES) and all(re.fullmatch(r"\d+:\d\d:\d\d", t) for t in texts)

    await dash.wait(full, what="a countdown in every funding cell")
    api = await page.evaluate("() => fetch('/api/funding').then(r => r.json())")
    for asset in ASSETS:
        for venue in VENUES:
            cell = page.locator(f"[data-testid=funding-cell-{asset}-{venue}]")
            badge = await cell.locator("[data-testid=funding-interval]").inner_text()
            assert badge == f"{api[asset][venue]['interval_h']:g}h", (asset, venue, badge)
            assert re.fullmatch(r"-?\d+\.\d{4}%", await cell.locator("[data-testid=funding-rate]").inner_text())
            assert re.fullmatch(r"-?\d+\.\d%", await cell.locator("[data-testid=funding-apr]").inner_text())
    before = [hms(t) for t in await page.locator("[data-testid=funding-countdown]").all_inner_texts()]
    await dash.shot("06-funding-matrix")
    await asyncio.sleep(2.2)
    after = [hms(t) for t in await page.locator("[data-testid=funding-countdown]").all_inner_texts()]
    assert all(a < b for a, b in zip(after, before, strict=True)), (before, after)
    # Within a second or so of the real time to the settlement.
    next_ms = api["BTC"]["binance"]["next_funding_ns"] / 1e6
    shown = hms(await page.locator("[data-testid=funding-cell-BTC-binance] [data-testid=funding-countdown]").inner_text())
    assert abs(shown - (next_ms / 1000 - time.time())) < 3


async def test_venue_panel_shows_a_venue_going_down(dash: Dash) -> None:
    page = dash.page

    async def all_up() -> bool:
        states = await dash.venue_states()
        return states == dict.fromkeys(VENUES, "connected")

    await dash.wait(all_up, what="all three venues connected")

    async def rates() -> bool:
        cells = await page.locator("[data-testid=venue-table] td[data-col=rate]").all_inner_texts()
        return len(cells) == 3 and all(number(c) > 0 for c in cells)

    await dash.wait(rates, what="a message rate for every venue")
    okx = page.locator("[data-testid=venue-row-okx]")
    assert (await okx.locator("td[data-col=books]").inner_text()) == "3/3"
    await dash.shot("07-venues-all-connected")

    t0 = time.monotonic()
    await dash.sim.venues["okx"].stop()

    async def okx_down() -> bool:
        return (await dash.venue_states()).get("okx") != "connected"

    await dash.wait(okx_down, timeout=10, what="okx shown disconnected")
    took = time.monotonic() - t0
    states = await dash.venue_states()
    assert states["binance"] == states["bybit"] == "connected", states
    assert states["okx"] in ("disconnected", "connecting"), states
    assert await page.locator("[data-testid=venue-state-okx]").inner_text() in ("disconnected", "connecting")
    await dash.wait(lambda: _header_says(dash, "venues 2/3"), timeout=5, what="the header to count 2/3 venues")
    await asyncio.sleep(1.0)  # let okx's rows close (greyed, reason shown) for the screenshot
    await dash.shot("08-venue-okx-down")
    assert took < 10, took


async def _header_says(dash: Dash, text: str) -> bool:
    return await dash.page.locator("[data-testid=hdr-venues]").inner_text() == text


async def test_spread_chart_plots_a_chosen_pair(dash: Dash) -> None:
    page = dash.page
    await dash.wait(lambda: _has_option(dash, "ETH"), what="the asset picker to list ETH")
    await page.select_option("[data-testid=spread-asset]", "ETH")
    await page.select_option("[data-testid=spread-venue-a]", "bybit")
    await page.select_option("[data-testid=spread-venue-b]", "okx")
    chart = page.locator("[data-testid=spread-chart]")
    assert await chart.get_attribute("data-pair") == "ETH/bybit/okx"

    async def plotted() -> bool:
        return int(await chart.get_attribute("data-points") or 0) >= 3

    await dash.wait(plotted, timeout=10, what="three polled spread points")
    box = await chart.locator("canvas").first.bounding_box()
    assert box and box["width"] > 300 and box["height"] > 100, box
    assert "buy bybit → sell okx" in await page.locator("[data-testid=spread-now-ab]").inner_text()
    assert "buy okx → sell bybit" in await page.locator("[data-testid=spread-now-ba]").inner_text()
    assert re.search(r"-?\d+\.\d\d bps gross", await page.locator("[data-testid=spread-now-ab]").inner_text())
    await dash.shot("09-spread-chart")


async def _has_option(dash: Dash, value: str) -> bool:
    return await dash.page.locator(f"[data-testid=spread-asset] option[value={value}]").count() == 1


async def test_rejections_alerts_and_paper_panels(dash: Dash) -> None:
    page = dash.page

    async def rejections() -> bool:
        return await page.locator("[data-testid=rejections] .bar").count() > 0

    await dash.wait(rejections, what="rejection counts")
    first = page.locator("[data-testid=rejections] .bar").first
    assert int(await first.get_attribute("data-count") or 0) > 0

    async def alerts() -> bool:
        return await page.locator("[data-testid=alert-item]").count() > 0

    await dash.wait(alerts, timeout=15, what="an alert from the funding rule")
    assert "funding carry" in await page.locator("[data-testid=alert-item]").first.inner_text()
    # The session paper-trades by default: the panel shows the PnL split, not "not enabled".
    paper = await page.locator("[data-testid=paper]").inner_text()
    assert "realized" in paper and "not enabled" not in paper, paper
    await dash.shot("10-dashboard")
