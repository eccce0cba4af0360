"""perparb funding-history against the simulator's funding-history endpoints: statistics
worked out here from the simulator's generated series, the interval change, the Parquet
cache (no refetch, partial refetch), skipped venues, and the command's outputs."""

from __future__ import annotations

import csv
import io
import json
import math
import statistics
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from typer.testing import CliRunner

from perparb.cli import app
from perparb.instruments.snapshot import load_registry
from perparb.research.funding import default_until, funding_history
from perparb.sim.server import Simulator

HOUR = 3_600_000
DAY = 24 * HOUR
VENUES = ["binance", "okx", "bybit", "gate", "bitget", "hyperliquid", "bitmex", "mexc", "dydx", "kucoin", "deribit"]
ASSETS = ["BTC", "ETH"]
LISTED = {(v, a) for v in VENUES for a in ASSETS} - {("deribit", "ETH")}  # Deribit: BTC_USDT-PERPETUAL only


@pytest.fixture
async def sim():
    s = Simulator(load_registry(), [*VENUES, "coindcx", "phemex"], ASSETS, seed=11, tick_s=1.0)
    await s.start()
    try:
        yield s
    finally:
        await s.stop()


def _endpoints(sim: Simulator) -> dict[str, str]:
    return {v: sv.rest_url for v, sv in sim.venues.items()}


def _requests(sim: Simulator) -> dict[str, list[str]]:
    return {v: list(sv.funding_history.requests) for v, sv in sim.venues.items()}


def _clear(sim: Simulator) -> None:
    for sv in sim.venues.values():
        sv.funding_history.requests.clear()


def _expected(rows: list[tuple[int, float]], start: int, end: int, taker: float) -> dict[str, float]:
    """The ranking's numbers, from the raw series: interval = time since the previous settlement."""
    win = [(t, r, (t - rows[i - 1][0]) / HOUR) for i, (t, r) in enumerate(rows) if start < t <= end]
    aprs = [r * 8760 / h * 100 for _, r, h in win]
    hours = sum(h for _, _, h in win)
    mean_apr = sum(r for _, r, _ in win) * 8760 / hours * 100
    m = sum(aprs) / len(aprs)
    std = math.sqrt(sum((a - m) ** 2 for a in aprs) / (len(aprs) - 1))
    srt = sorted(aprs)
    mid = len(srt) // 2
    median = srt[mid] if len(srt) % 2 else (srt[mid - 1] + srt[mid]) / 2
    best = run = 0
    for _, r, _ in win:
        run = run + 1 if r > 0 else 0
        best = max(best, run)
    fee = 2 * taker * 8760 / hours * 100
    return {"n": len(win), "hours": hours, "mean_apr": mean_apr, "median_apr": median, "std_apr": std,
            "share_positive": sum(1 for _, r, _ in win if r > 0) / len(win), "longest_positive_streak": best,
            "fee_apr": fee, "net_apr": abs(mean_apr) - fee}


async def test_statistics_equal_formulas_over_the_simulated_history(sim: Simulator, tmp_path: Path) -> None:
    registry = load_registry()
    until = default_until()
    res = await funding_history(VENUES, ASSETS, registry, tmp_path, 20, until, _endpoints(sim), pace_s=0.0)
    start = until - 20 * DAY
    got = {(s.venue, s.asset): s for s in res.venues}
    # BitMEX: XBTUSDT and ETHUSDT; Deribit's USDT perpetual is BTC's alone.
    assert set(got) == LISTED
    assert res.skipped == [{"venue": "deribit", "asset": "ETH",
                            "reason": "no ETH perpetual on deribit in the instrument registry"}]
    for (venue, asset), s in got.items():
        inst = registry.select(venue, [asset])[0]
        assert s.symbol == inst.venue_symbol
        rows = sim.venues[venue].funding_history.rows(inst.venue_symbol, start - 2 * DAY, until)
        want = _expected(rows, start, until, inst.taker_fee)
        for key, value in want.items():
            assert getattr(s, key) == pytest.approx(value, rel=1e-9, abs=1e-9), (venue, asset, key)
    # Ranked by net APR, best first, and the ranks are 1..n.
    assert [s.rank for s in res.venues] == list(range(1, len(res.venues) + 1))
    assert [s.net_apr for s in res.venues] == sorted((s.net_apr for s in res.venues), reverse=True)
    # Every venue pair of an asset, long the lower mean and short the higher.
    n_btc, n_eth = len(VENUES), len(VENUES) - 1
    assert len(res.pairs) == n_btc * (n_btc - 1) // 2 + n_eth * (n_eth - 1) // 2
    for p in res.pairs:
        assert p.short_mean_apr >= p.long_mean_apr
        assert p.net_apr == pytest.approx(p.short_mean_apr - p.long_mean_apr - p.fee_apr)
    # Binance and OKX settle together every 8 h: the pair's means are the venues' own.
    bo = next(p for p in res.pairs if p.asset == "BTC" and {p.long_venue, p.short_venue} == {"binance", "okx"})
    means = {v: got[(v, "BTC")].mean_apr for v in ("binance", "okx")}
    assert (bo.long_mean_apr, bo.short_mean_apr) == pytest.approx(sorted(means.values()))
    assert bo.fee_apr == pytest.approx(2 * (0.0005 + 0.0005) * 8760 / (20 * 24) * 100)


async def test_interval_change_inside_the_history(sim: Simulator, tmp_path: Path) -> None:
    """Bybit settles every 8 h until change_ms and every 4 h after: each settlement's APR
    uses its own interval."""
    fh = sim.venues["bybit"].funding_history
    change = fh.change_ms
    assert change is not None
    until = default_until()
    start = change - 10 * DAY
    days = (until - start) / DAY
    res = await funding_history(["bybit"], ["BTC"], load_registry(), tmp_path, days, until, _endpoints(sim),
                                pace_s=0.0)
    [s] = res.venues
    rows = [(t, r) for t, r in fh.rows("BTCUSDT", start + 1, until)]
    # The periods: 8 h up to and including the settlement at change_ms, 4 h after it.
    hours = [8.0 if t <= change else 4.0 for t, _ in rows]
    assert hours.count(8.0) == 10 * 3 and hours.count(4.0) == (until - change) // (4 * HOUR)
    aprs = [r * 8760 / h * 100 for (_, r), h in zip(rows, hours, strict=True)]
    assert s.n == len(rows)
    assert s.intervals_h == "8->4" and s.interval_h == 4.0
    assert s.hours == pytest.approx(sum(hours)) == pytest.approx((rows[-1][0] - start) / HOUR)
    assert s.median_apr == pytest.approx(statistics.median(aprs))
    assert s.mean_apr == pytest.approx(sum(r for _, r in rows) * 8760 / sum(hours) * 100)
    # Taking every settlement as 8 h would be visibly wrong.
    assert statistics.median(r * 1095 * 100 for _, r in rows) != pytest.approx(s.median_apr, rel=1e-3)
    # A 4 h settlement's rate is about half an 8 h one's: APRs stay on one scale across the change.
    before = [a for a, h in zip(aprs, hours, strict=True) if h == 8.0]
    after = [a for a, h in zip(aprs, hours, strict=True) if h == 4.0]
    assert abs(statistics.mean(before) - statistics.mean(after)) < 20


async def test_cache_fetches_only_missing_ranges(sim: Simulator, tmp_path: Path) -> None:
    registry = load_registry()
    until = default_until()
    first = await funding_history(VENUES, ASSETS, registry, tmp_path, 10, until, _endpoints(sim), pace_s=0.0)
    assert all(_requests(sim)[v] for v in VENUES)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(f"venue={v}" for v in VENUES)
    assert not (tmp_path / "venue=deribit" / "asset=ETH").exists()
    assert (tmp_path / "venue=binance" / "asset=BTC" / "rates.parquet").exists()

    # The same window again: answered from the cache, not one HTTP request to any venue.
    _clear(sim)
    again = await funding_history(VENUES, ASSETS, registry, tmp_path, 10, until, _endpoints(sim), pace_s=0.0)
    assert _requests(sim) == {v: [] for v in sim.venues}
    assert [s.row() for s in again.venues] == [s.row() for s in first.venues]

    # Twice the days: only the older part is asked for.
    _clear(sim)
    longer = await funding_history(VENUES, ASSETS, registry, tmp_path, 20, until, _endpoints(sim), pace_s=0.0)
    new_lo, new_hi = until - 20 * DAY - DAY, until - 10 * DAY - DAY - 1  # the window plus a day before it
    binance = [r for r in _requests(sim)["binance"] if "/fundingRate" in r]
    assert len(binance) == len(ASSETS)
    for r in binance:
        q = parse_qs(urlsplit(r.split(" ", 1)[1]).query)
        assert (int(q["startTime"][0]), int(q["endTime"][0])) == (new_lo, new_hi)
    for r in (r for r in _requests(sim)["bybit"] if "/funding/history" in r):
        q = parse_qs(urlsplit(r.split(" ", 1)[1]).query)
        assert new_lo <= int(q["startTime"][0]) <= int(q["endTime"][0]) <= new_hi
    for r in (r for r in _requests(sim)["okx"] if "funding-rate-history" in r):
        assert int(parse_qs(urlsplit(r.split(" ", 1)[1]).query)["after"][0]) <= new_hi + 1
    # The result equals a fresh download of the whole window.
    fresh = await funding_history(VENUES, ASSETS, registry, tmp_path / "fresh", 20, until, _endpoints(sim),
                                  pace_s=0.0)
    assert [s.row() for s in longer.venues] == [s.row() for s in fresh.venues]


async def test_venues_without_history_are_reported_skipped(sim: Simulator, tmp_path: Path) -> None:
    until = default_until()
    res = await funding_history(["coindcx", "phemex", "bitmex", "binance"], ["BTC", "SOL"], load_registry(),
                                tmp_path, 3, until, _endpoints(sim), pace_s=0.0)
    skipped = {(s["venue"], s["asset"]): s["reason"] for s in res.skipped}
    assert set(skipped) == {("coindcx", "*"), ("phemex", "*"), ("bitmex", "SOL"), ("binance", "SOL")}
    assert "no ccxt exchange class 'coindcx'" in skipped[("coindcx", "*")]
    assert "ccxt phemex has fetchFundingRateHistory, but its paging is not supported" in skipped[("phemex", "*")]
    assert skipped[("bitmex", "SOL")] == "no SOL perpetual on bitmex in the instrument registry"
    # The registry has SOLUSDT but the venue's live markets (the simulator lists BTC and ETH) do not.
    assert skipped[("binance", "SOL")] == "SOLUSDT is not among binance's perpetual markets"
    assert {(s.venue, s.asset) for s in res.venues} == {("bitmex", "BTC"), ("binance", "BTC")}
    assert _requests(sim)["coindcx"] == [] and _requests(sim)["phemex"] == []


def test_cli_table_csv_json_plot_and_html(tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["funding-history", "--sim", "--days", "5", "--venues", "binance,okx,bybit,coindcx", "--assets",
            "BTC,ETH", "--cache", str(tmp_path / "cache")]
    res = runner.invoke(app, [*base, "--csv", "--plot", str(tmp_path / "f.png"), "--html", str(tmp_path / "f.html")])
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.stdout.splitlines() if ln]
    rows = list(csv.DictReader(io.StringIO("\n".join(lines))))
    assert lines[0].split(",") == [
        "rank", "asset", "venue", "symbol", "interval_h", "intervals_h", "n", "first", "last", "hours", "mean_apr",
        "median_apr", "std_apr", "share_positive", "longest_positive_streak", "longest_positive_streak_h",
        "taker_fee", "fee_apr", "net_apr", "side"]
    assert sorted((r["venue"], r["asset"]) for r in rows) == sorted(
        (v, a) for v in ("binance", "okx", "bybit") for a in ("BTC", "ETH"))
    assert [int(r["rank"]) for r in rows] == list(range(1, 7))
    assert "skipped coindcx *: no ccxt exchange class 'coindcx'" in res.stderr
    png = (tmp_path / "f.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    page = (tmp_path / "f.html").read_text()
    assert '<table id="pairs">' in page and '<table id="venues">' in page and "cumulative-BTC" in page

    res = runner.invoke(app, [*base, "--csv", "--pairs"])
    assert res.exit_code == 0, res.output
    pairs = list(csv.DictReader(io.StringIO(res.stdout)))
    assert list(pairs[0]) == ["rank", "asset", "long_venue", "short_venue", "long_symbol", "short_symbol", "hours",
                              "long_mean_apr", "short_mean_apr", "spread_apr", "fee_apr", "net_apr"]
    assert len(pairs) == 2 * 3

    res = runner.invoke(app, [*base, "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    assert set(doc) == {"start", "end", "days", "venues", "pairs", "skipped"}
    assert doc["days"] == 5 and len(doc["venues"]) == 6 and len(doc["pairs"]) == 6
    assert doc["skipped"][0]["venue"] == "coindcx"

    res = runner.invoke(app, base)
    assert res.exit_code == 0, res.output
    for heading in ("Funding carry per asset x venue", "Venue pairs per asset", "mean", "median", "std",
                    "positive %", "longest streak", "net"):
        assert heading in res.stdout


def test_cli_rejects_bad_flags(tmp_path: Path) -> None:
    runner = CliRunner()
    res = runner.invoke(app, ["funding-history", "--days", "0", "--cache", str(tmp_path)])
    assert res.exit_code == 2 and "--days 0: must be more than 0" in res.stderr
    res = runner.invoke(app, ["funding-history", "--until", "yesterday", "--cache", str(tmp_path)])
    assert res.exit_code == 2 and "--until 'yesterday'" in res.stderr
