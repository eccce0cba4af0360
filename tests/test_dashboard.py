"""The dashboard end to end: simulator -> feeds -> engine -> API -> /ws -> the page in Chromium
(set-up in tests/dashboard_helpers.py, the ``dash`` fixture in tests/conftest.py). Screenshots
of each state go to test-artifacts/screenshots/.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable

import pytest

from dashboard_helpers import ASSETS, VENUES, Dash, hms, number, open_dashboard

# Generous: these run beside other engineers' work on two shared cores.
pytestmark = pytest.mark.timeout(120)


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
    assert all(r["apr"].endswith("%") and re.fullmatch(r"[+-]?[\d,]+\.\d\d", r["net_profit_quote"]) for r in frows), frows
    assert all(re.fullmatch(r"\d+:\d\d:\d\d · \d+:\d\d:\d\d|.*settling.*", r["next_funding"]) for r in frows), frows
    heads = {t.rstrip(" ▲▼") for t in await page.locator("[data-testid=opp-table] th").all_inner_texts()}
    assert {"Long", "Short", "APR", "Net profit", "Carry bps", "Break-even"} <= heads, heads
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

    async def enough() -> bool:
        return len([r for r in await dash.rows() if r["state"] == "open"]) >= 3

    await dash.wait(enough, timeout=30, what="at least three open spread rows to sort")
    edge = page.locator("[data-testid=opp-th-edge_bps]")
    assert await edge.get_attribute("aria-sort") == "descending"  # the spread tab's default order
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

    await page.click("[data-testid=tab-all]")
    await page.click("[data-testid=opp-th-asset]")  # text columns start ascending

    async def assets_sorted() -> bool:
        assets = [r["asset"] for r in await dash.rows() if r["state"] == "open"]
        return assets == sorted(assets) and len(set(assets)) > 1

    await dash.wait(assets_sorted, timeout=20, what="open rows of several assets sorted by name")


def open_above_closed(rows: list[dict[str, str]]) -> bool:
    states = [r["state"] for r in rows]
    return states == sorted(states, key=lambda st: st != "open")


async def test_all_tab_keeps_spread_edge_and_carry_apart_and_ranks_by_net_profit(dash: Dash) -> None:
    page = dash.page
    await page.click("[data-testid=tab-all]")

    async def both_kinds() -> bool:
        return {r["kind"] for r in await dash.rows() if r["state"] == "open"} == {"spread", "funding"}

    await dash.wait(both_kinds, timeout=30, what="open spread and funding rows on the All tab")
    heads = await page.locator("[data-testid=opp-table] th").all_inner_texts()
    cols = [h.rstrip(" ▲▼") for h in heads]
    assert {"Net profit", "Spread net bps", "Carry bps", "APR"} <= set(cols), cols
    # No column holds a spread edge and a carry as one quantity.
    assert "Net bps" not in cols and "Gross bps" not in cols, cols
    profit = page.locator("[data-testid=opp-th-net_profit_quote]")
    assert await profit.get_attribute("aria-sort") == "descending"  # ranked by net profit in quote
    rows = await dash.rows()
    for r in rows:
        if r["kind"] == "spread":
            number(r["spread_edge_bps"])
            assert r["carry_bps"] == "—" and r["apr"] == "—", r
        else:
            assert re.fullmatch(r"-?[\d,]+\.\d\d/\d+(\.\d+)?h", r["carry_bps"]) and r["spread_edge_bps"] == "—", r
        assert re.fullmatch(r"[+-]?\d+\.\d\d", r["net_profit_quote"]), r
    opened = [float(r["net_profit_quote@"]) for r in rows if r["state"] == "open"]
    assert opened == sorted(opened, reverse=True), opened
    assert open_above_closed(rows), [r["state"] for r in rows]
    # Each row's profit is the server's net_profit_quote for that opportunity.
    api = {o["id"]: o for o in await dash.api("/api/opportunities?limit=5000")}

    async def agrees() -> bool:
        now = {r["id"]: float(r["net_profit_quote@"]) for r in await dash.rows() if r["state"] == "open"}
        api.update({o["id"]: o for o in await dash.api("/api/opportunities?limit=5000")})
        return any(i in api and abs(api[i]["net_profit_quote"] - v) < 1e-9 for i, v in now.items())

    await dash.wait(agrees, timeout=20, what="a row's net profit equal to the API's")
    await dash.shot("11-all-tab-profit-ranked")


async def test_hide_closed_min_alive_and_the_fade_setting(dash: Dash) -> None:
    page = dash.page
    await page.click("[data-testid=tab-all]")
    fade = page.locator("[data-testid=setting-closed-fade]")
    assert await fade.input_value() == "6"  # the documented default
    await fade.fill("60")  # closed rows stay a minute: there certainly are some to hide

    async def closed() -> bool:
        return any(r["state"] == "closed" for r in await dash.rows())

    await dash.wait(closed, timeout=40, what="a closed row (fading below the open ones)")
    rows = await dash.rows()
    assert open_above_closed(rows), [r["state"] for r in rows]
    opacity = await page.locator("[data-testid=opp-row][data-state=closed]").first.evaluate(
        "tr => Number(getComputedStyle(tr).opacity)")
    assert 0 < opacity < 1, opacity
    await dash.shot("12-closed-rows-below-open")

    await page.check("[data-testid=filter-hide-closed]")
    rows = await dash.rows()
    assert rows and all(r["state"] == "open" for r in rows), rows
    await dash.shot("13-hide-closed")
    await page.uncheck("[data-testid=filter-hide-closed]")
    await dash.wait(closed, timeout=10, what="closed rows shown again")

    await page.fill("[data-testid=filter-min-alive]", "5")

    async def long_lived() -> bool:
        rows = await dash.rows()
        return bool(rows) and all(float(r["alive_s@"]) >= 5 for r in rows)

    await dash.wait(long_lived, timeout=30, what="only rows alive 5 s or more")
    await dash.shot("14-min-alive-5s")
    await page.fill("[data-testid=filter-min-alive]", "100000")
    await dash.wait(lambda: _no_rows(dash), timeout=10, what="no row alive that long")

    # The fade setting outlives the page.
    assert await page.evaluate("() => localStorage.getItem('perparb.closedFadeS')") == "60"
    await page.reload()
    await page.wait_for_selector("[data-testid=ws-status][data-state=live]", timeout=30_000)
    assert await page.locator("[data-testid=setting-closed-fade]").input_value() == "60"


async def _no_rows(dash: Dash) -> bool:
    return await dash.rows() == []


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
    # On the All tab a spread's net edge and a carry's bps have their own columns.
    assert all(float(r["spread_edge_bps@"] if r["kind"] == "spread" else r["carry_bps@"]) >= 0
               for r in await dash.rows())

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


async def _detail(page) -> dict:  # type: ignore[no-untyped-def]
    """What the drill-down panel shows, read from the DOM in one go."""
    return await page.evaluate("""() => {
        const p = document.querySelector('[data-testid=detail]');
        const rows = (sel) => [...p.querySelectorAll(sel)].map(tr => ({...tr.dataset}));
        return {id: p.dataset.id, loaded: p.dataset.loaded, fetches: Number(p.dataset.fetches || 0),
                size: Number(p.querySelector('[data-testid=detail-size]')?.dataset.value),
                fees: {...(p.querySelector('[data-testid=detail-fees]')?.dataset || {})},
                exit: p.querySelector('[data-testid=detail-exit]')?.dataset.value,
                buy: rows('[data-testid=detail-depth-buy-row]'), sell: rows('[data-testid=detail-depth-sell-row]'),
                curve: rows('[data-testid=detail-curve-row]'),
                chart_points: Number(p.querySelector('[data-testid=detail-history-chart]').dataset.points || 0),
                funding: [...p.querySelectorAll('[data-testid^=detail-funding-]')].map(e => ({
                    testid: e.dataset.testid, points: e.dataset.points}))};
    }""")


def _walk(levels: list[tuple[float, float]], size: float) -> float:
    left, amount = size, 0.0
    for px, qty in levels:
        take = min(qty, left)
        amount += take * px
        left -= take
        if left <= 1e-12:
            break
    assert left <= 1e-9 * max(size, 1.0), (levels, size)  # the depth shown reaches the size
    return amount


async def test_row_drill_down_shows_history_depth_and_slippage_matching_the_api(dash: Dash) -> None:
    page = dash.page
    row = page.locator("[data-testid=opp-row][data-state=open][data-kind=spread]").first
    await row.wait_for(timeout=30_000)
    await row.click()
    panel = page.locator("[data-testid=detail]")
    await panel.wait_for(state="visible", timeout=10_000)

    async def loaded() -> bool:
        d = await _detail(page)
        return d["loaded"] == "true" and len(d["curve"]) > 0 and len(d["buy"]) > 0

    await dash.wait(loaded, timeout=30, what="the drill-down loaded with a slippage curve and depth")
    oid = await panel.get_attribute("data-id")
    assert oid and oid.startswith("spread:"), oid
    selected = await page.evaluate("""(id) => [...document.querySelectorAll('[data-testid=opp-row]')]
        .filter(tr => tr.classList.contains('selected')).map(tr => tr.dataset.id)""", oid)
    assert selected in ([oid], []), selected  # the clicked row is marked (unless it has faded out since)
    async def plotted() -> bool:
        box = await page.locator("[data-testid=detail-history-plot]").bounding_box()
        return bool(box and box["width"] > 300 and box["height"] > 80)

    await dash.wait(plotted, timeout=20, what="the net edge and basis plot laid out in the panel")
    await dash.shot("15-drill-down-spread")

    # Freeze the venues, so the page's numbers and the API's can be compared exactly.
    dash.sim.pause()
    try:
        start = (await _detail(page))["fetches"]

        async def refreshed() -> bool:  # a fetch begun after the pause has landed
            return (await _detail(page))["fetches"] >= start + 2

        await dash.wait(refreshed, timeout=30, what="the drill-down to refresh twice")
        d = await _detail(page)
        api = await dash.api(f"/api/opportunities/{oid}/detail?size={d['size']!r}")
    finally:
        dash.sim.resume()
    # The depth shown is the API's, level by level, to the size.
    assert [(float(x["px"]), float(x["qty"])) for x in d["buy"]] == [(x["px"], x["qty"]) for x in api["depth"]["buy"]["levels"]]
    assert [(float(x["px"]), float(x["qty"])) for x in d["sell"]] == [(x["px"], x["qty"]) for x in api["depth"]["sell"]["levels"]]
    by_size = {p["size_base"]: p for p in api["slippage"]}
    fee_buy, fee_sell, exit_unit = float(d["fees"]["buy"]), float(d["fees"]["sell"]), float(d["exit"])
    assert exit_unit == pytest.approx(api["exit_cost_per_unit"], rel=1e-12)
    asks = [(float(x["px"]), float(x["qty"])) for x in d["buy"]]
    bids = [(float(x["px"]), float(x["qty"])) for x in d["sell"]]
    for p in d["curve"]:
        q = float(p["size"])
        assert float(p["edge"]) == pytest.approx(by_size[q]["edge_bps"], rel=1e-12, abs=1e-9)
        # and the depth-walk formula, worked out here from the levels the panel shows
        cost, proceeds = _walk(asks, q), _walk(bids, q)
        net = proceeds * (1 - fee_sell) - cost * (1 + fee_buy) - exit_unit * q
        assert float(p["buyVwap"]) == pytest.approx(cost / q, rel=1e-9)
        assert float(p["sellVwap"]) == pytest.approx(proceeds / q, rel=1e-9)
        assert float(p["edge"]) == pytest.approx(net / cost * 1e4, rel=1e-6, abs=1e-6)
        assert float(p["profit"]) == pytest.approx(net, rel=1e-6, abs=1e-9)

    # A funding row: its legs' funding history, and the carry's edge plotted live.
    await page.click("[data-testid=tab-funding]")
    frow = page.locator("[data-testid=opp-row][data-state=open][data-kind=funding]").first
    await frow.wait_for(timeout=30_000)
    await frow.click()

    async def funding_loaded() -> bool:
        d = await _detail(page)
        return (d["loaded"] == "true" and (d["id"] or "").startswith("funding:") and d["chart_points"] >= 1
                and {f["testid"] for f in d["funding"]} >= {"detail-funding-long", "detail-funding-short"})

    await dash.wait(funding_loaded, timeout=30, what="a funding pair's drill-down with both legs' funding history")
    d = await _detail(page)
    api = await dash.api(f"/api/opportunities/{d['id']}/detail")
    legs = {f["testid"]: int(f["points"]) for f in d["funding"] if f["points"]}
    assert legs["detail-funding-long"] >= 1 and legs["detail-funding-short"] >= 1, legs
    assert len(api["funding"]["long"]["points"]) >= legs["detail-funding-long"]
    assert await page.locator("[data-testid=detail-funding-plot] path").count() == 2
    assert await page.locator("[data-testid=detail-history-plot] path").count() == 2  # net edge and basis
    await dash.shot("16-drill-down-funding")
    await page.keyboard.press("Escape")
    await panel.wait_for(state="hidden", timeout=10_000)


BOARD_VENUES = ["binance", "okx", "bybit", "bitget", "gate", "hyperliquid"]


@pytest.mark.parametrize("width", [1100, 1600])
async def test_funding_board_scrolls_every_venue_into_view_with_the_asset_column_fixed(width: int) -> None:
    async with open_dashboard({"scanner.min_edge_bps": -1000}, venues=BOARD_VENUES,
                              viewport={"width": width, "height": 900}) as dash:
        page = dash.page

        async def full() -> bool:
            texts = await page.locator("[data-testid=funding-countdown]").all_inner_texts()
            return len(texts) == len(ASSETS) * len(BOARD_VENUES) and all(re.fullmatch(r"\d+:\d\d:\d\d", t) for t in texts)

        await dash.wait(full, timeout=60, what="a countdown in every cell of the funding board")
        scroller = page.locator("[data-testid=funding-scroll]")
        sizes = await scroller.evaluate("e => ({sw: e.scrollWidth, cw: e.clientWidth, ox: getComputedStyle(e).overflowX})")
        assert sizes["ox"] in ("auto", "scroll"), sizes  # no hidden overflow: the board scrolls
        assert sizes["sw"] > sizes["cw"], sizes  # six venues are wider than the panel here
        await dash.shot(f"17-funding-board-{width}")

        last = page.locator(f"[data-testid=funding-venue-{BOARD_VENUES[-1]}]")
        await last.scroll_into_view_if_needed()
        outer = await scroller.bounding_box()
        cell = await page.locator(f"[data-testid=funding-cell-BTC-{BOARD_VENUES[-1]}]").bounding_box()
        assert outer and cell
        assert cell["x"] >= outer["x"] - 1 and cell["x"] + cell["width"] <= outer["x"] + outer["width"] + 1, (outer, cell)
        assert cell["x"] + cell["width"] <= width, (cell, width)  # on screen
        assert await scroller.evaluate("e => e.scrollLeft") > 0
        # The asset column stays at the board's left edge, on top of the scrolled cells.
        asset = await page.locator("[data-testid=funding-asset-BTC]").bounding_box()
        assert asset and abs(asset["x"] - outer["x"]) <= 2, (asset, outer)
        on_top = await page.evaluate("""([x, y]) => document.elementFromPoint(x, y)?.dataset.testid""",
                                     [asset["x"] + asset["width"] / 2, asset["y"] + asset["height"] / 2])
        assert on_top == "funding-asset-BTC", on_top
        await dash.shot(f"18-funding-board-{width}-scrolled")

        # Ranked by the widest APR spread, as the API's rates give it.
        await page.click("[data-testid=funding-sort-widest]")

        async def ranked() -> bool:
            shown = await page.evaluate("""() => [...document.querySelectorAll('[data-testid=funding-row]')].map(tr =>
                [tr.dataset.asset, Number(tr.querySelector('td.widest').dataset.spread)])""")
            api = await dash.api("/api/funding")
            spreads = {a: max(c["apr"] for c in cells.values()) - min(c["apr"] for c in cells.values())
                       for a, cells in api.items()}
            values = [v for _, v in shown]
            return (values == sorted(values, reverse=True) and len(shown) == len(ASSETS)
                    and all(abs(spreads[a] - v) < 1e-12 for a, v in shown))

        await dash.wait(ranked, timeout=30, what="assets ranked by their widest APR spread, as /api/funding gives it")
        assert await page.locator("[data-testid=funding-sort-widest]").get_attribute("aria-sort") == "descending"
        await dash.shot(f"19-funding-board-{width}-by-widest")
