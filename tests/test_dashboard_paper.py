"""The dashboard's paper-trading section in Chromium, over a paper run producing fills:
positions per pair with both legs and liquidation distance, PnL split, equity curve, fills,
risk limits with utilisation, and the kill switch (token asked for, API called).

Set-up from tests/dashboard_helpers.py (simulator, Session with the API, Debian's Chromium via
Playwright); screenshots go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest

from dashboard_helpers import SHOTS, Dash, open_dashboard

TOKEN = "paper-s3cret"

pytestmark = pytest.mark.timeout(120)


@pytest.fixture
async def paper_dash() -> AsyncIterator[Dash]:
    async with open_dashboard({
        "api.token": TOKEN, "scanner.min_edge_bps": -1000,
        # small accounts, so each leg has a liquidation price within reach to show
        "paper.collateral": {"USDT": 1500.0, "USDC": 1500.0, "USD": 1500.0},
        # enter on any quoted pair and hold it through the test: fills and open legs come at once
        "strategies": [{"name": "eager", "kind": "spread", "entry_edge_bps": -1000, "exit_edge_bps": -1000,
                        "stop_bps": 100_000, "max_hold_s": 600, "notional": 2000, "max_open": 2,
                        "cooldown_s": 1}],
    }, viewport={"width": 1366, "height": 1000},
        # a refused token is answered 401: the page shows it, the console logs the request
        console_ok=lambda text: "401" in text) as d:
        yield d


async def _api(page: Any, path: str) -> Any:
    return await page.evaluate(f"async () => (await fetch('{path}')).json()")


async def test_paper_section_shows_pairs_pnl_equity_fills_risk_and_kill_switch(paper_dash: Dash) -> None:
    d, page = paper_dash, paper_dash.page
    section = page.locator("[data-testid=paper]")

    async def fills() -> bool:
        return await page.locator("[data-testid=paper-fill]").count() > 0

    await d.wait(fills, timeout=40, what="paper fills in the dashboard")

    async def pair() -> bool:
        return await page.locator("[data-testid=paper-pair][data-legs='2']").count() > 0

    await d.wait(pair, timeout=30, what="an open pair with both legs")
    await section.scroll_into_view_if_needed()
    await d.wait(fills, timeout=5, what="fills after scrolling")
    legs = await page.evaluate("""() => [...document.querySelectorAll('[data-testid=paper-leg]')].map(tr => ({
        venue: tr.dataset.venue, asset: tr.dataset.asset, side: tr.dataset.side, dist: tr.dataset.liqDistance,
        cells: [...tr.querySelectorAll('td')].map(td => td.textContent)}))""")
    first_pair = await page.locator("[data-testid=paper-pair][data-legs='2']").first.get_attribute("data-asset")
    both = [leg for leg in legs if leg["asset"] == first_pair]
    assert {leg["side"] for leg in both} == {"long", "short"}, both
    assert len({leg["venue"] for leg in both}) == 2
    for leg in both:  # liquidation distance shown, as a percentage of the mark
        assert leg["dist"] and 0 < float(leg["dist"]) < 1, leg
        assert leg["cells"][-1] == f"{float(leg['dist']) * 100:.1f}%"

    # PnL split: fees shown (negative: paid) equal the sum of every fill's fee so far (all USDT here)
    pnl = await _api(page, "/api/paper/pnl")
    all_fills = await _api(page, "/api/paper/fills?limit=2000")
    assert all(f["fee_asset"] == "USDT" for f in all_fills)
    assert pnl["fees"] == pytest.approx(sum(f["fee"] for f in all_fills), rel=1e-9, abs=1e-9)
    for key in ("spread", "realized", "unrealized", "funding", "fees", "net", "equity"):
        assert await page.locator(f"[data-testid=paper-pnl] [data-k={key}]").count() == 1, key

    async def shown_fees() -> bool:
        v = await page.locator("[data-testid=paper-pnl] [data-k=fees]").get_attribute("data-v")
        return bool(v) and float(v or 0) < 0

    await d.wait(shown_fees, what="fees paid in the PnL split")

    async def curve() -> bool:
        return int(await page.locator("[data-testid=paper-equity]").get_attribute("data-points") or 0) > 1

    await d.wait(curve, timeout=15, what="equity curve points")
    assert await page.locator("[data-testid=paper-equity] canvas").count() > 0

    async def risk_rows() -> bool:
        return await page.locator("[data-testid=risk-row][data-limit=max_gross_notional]").count() == 1

    await d.wait(risk_rows, what="risk limits with utilisation")
    used = await page.locator("[data-testid=risk-row][data-limit=max_gross_notional]").get_attribute("data-used")
    assert used is not None and float(used) > 0
    await d.shot("paper-10-dashboard")
    await section.screenshot(path=str(SHOTS / "paper-11-section.png"))

    # Kill switch: a wrong token is refused and said so; the right one engages it.
    page.once("dialog", lambda dlg: asyncio.ensure_future(dlg.accept("wrong")))
    await page.locator("[data-testid=kill-btn]").click()

    async def refused() -> bool:
        return "HTTP 401" in await page.locator("[data-testid=kill-msg]").inner_text()

    await d.wait(refused, what="the refused token message")
    assert (await _api(page, "/api/paper/risk"))["kill_switch"]["killed"] is False
    page.once("dialog", lambda dlg: asyncio.ensure_future(dlg.accept(TOKEN)))
    await page.locator("[data-testid=kill-btn]").click()

    async def killed() -> bool:
        return await page.locator("[data-testid=kill-state]").get_attribute("data-killed") == "true"

    await d.wait(killed, what="the kill switch engaged")
    risk = await _api(page, "/api/paper/risk")
    assert risk["kill_switch"]["killed"] is True and risk["kill_switch"]["reason"] == "dashboard"
    assert "KILLED" in await page.locator("[data-testid=kill-state]").inner_text()
    await section.screenshot(path=str(SHOTS / "paper-20-killed.png"))
    # The token is remembered for this tab: resume does not ask again.
    await page.locator("[data-testid=resume-btn]").click()

    async def resumed() -> bool:
        return await page.locator("[data-testid=kill-state]").get_attribute("data-killed") == "false"

    await d.wait(resumed, what="trading resumed")
    assert (await _api(page, "/api/paper/risk"))["kill_switch"]["killed"] is False
