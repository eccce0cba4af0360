"""``perparb report`` over a ledger written here with known fills, funding and transfers;
every number it prints is worked out below by hand."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import pytest

from perparb import report as rep
from perparb.bus.messages import Fill, FundingPayment, Transfer
from perparb.store.ledger import SqliteLedger

PERPARB = str(Path(sys.executable).with_name("perparb"))
ROOT = Path(__file__).resolve().parents[1]
SHOTS = ROOT / "test-artifacts" / "screenshots"
CHROMIUM = os.environ.get("PERPARB_CHROMIUM", "/usr/bin/chromium")
S = 1_000_000_000
T0 = 1_700_000_000 * S
BN, OK = "BTCUSDT", "BTC-USDT-SWAP"
SYM = "BTC/USDT:USDT"


def _fill(n: int, ts: int, venue: str, vs: str, side: str, qty: float, px: float, fee: float) -> Fill:
    return Fill(id=f"o{n}-1", ts_ns=ts, venue=venue, symbol=SYM, venue_symbol=vs, side=side, qty=qty, px=px,
                fee=fee, fee_asset="USDT", liquidity="taker", order_id=f"o{n}", intent_id="i1", strategy="spread")


EVENTS = [
    Transfer(id="dep-bn", ts_ns=T0, venue="binance", asset="USDT", amount=1000.0),
    Transfer(id="dep-ok", ts_ns=T0, venue="okx", asset="USDT", amount=1000.0),
    _fill(1, T0 + 1 * S, "binance", BN, "buy", 0.2, 60_000.0, 6.0),
    _fill(2, T0 + 2 * S, "okx", OK, "sell", 0.2, 60_100.0, 6.01),
    # long pays a positive rate: -0.2 * 60,050 * 0.0001; the short receives 0.2 * 60,080 * 0.0003
    FundingPayment(id="f-bn", ts_ns=T0 + 3 * S, venue="binance", symbol=SYM, venue_symbol=BN, position_qty=0.2,
                   mark_px=60_050.0, rate=0.0001, amount=-1.201, asset="USDT"),
    FundingPayment(id="f-ok", ts_ns=T0 + 4 * S, venue="okx", symbol=SYM, venue_symbol=OK, position_qty=-0.2,
                   mark_px=60_080.0, rate=0.0003, amount=3.6048, asset="USDT"),
    _fill(3, T0 + 5 * S, "binance", BN, "sell", 0.1, 60_200.0, 3.01),
]
# By hand. binance: 0.1 long left at 60,000, realized 0.1 * (60,200 - 60,000) = 20, marked at its
# last fill 60,200: unrealized 0.1 * 200 = 20. okx: 0.2 short at 60,100, marked at its last funding
# mark 60,080: unrealized -0.2 * (60,080 - 60,100) = 4.
REALIZED, UNREALIZED = Decimal("20"), Decimal("24")
FUNDING = Decimal("-1.201") + Decimal("3.6048")
FEES = Decimal("6.0") + Decimal("6.01") + Decimal("3.01")
NET = REALIZED + UNREALIZED + FUNDING - FEES  # 31.3838
EQUITY = Decimal("2000") + NET


@pytest.fixture
def ledger(tmp_path: Path) -> Path:
    path = tmp_path / "ledger.sqlite"
    lg = SqliteLedger(path)
    assert all(lg.append(EVENTS))
    lg.close()
    return path


def test_report_numbers_match_the_hand_worked_ledger(ledger: Path) -> None:
    lg = SqliteLedger(ledger)
    r = rep.build(m for _, m in lg.events())
    lg.close()
    p = r.pnl
    assert (p["realized"], p["unrealized"], p["funding"], p["fees"]) == (REALIZED, UNREALIZED, FUNDING, FEES)
    assert p["net"] == NET == Decimal("31.3838") and p["equity"] == EQUITY and p["collateral"] == 2000
    (pair,) = r.pairs
    assert pair["hedged"] and pair["net_qty"] == Decimal("-0.1")
    (long, short) = pair["legs"]
    assert (long["venue"], long["side"], long["qty"], long["avg_entry_px"], long["mark_px"]) == \
        ("binance", "long", Decimal("0.1"), Decimal("60000"), Decimal("60200"))
    assert (short["venue"], short["side"], short["qty"], short["avg_entry_px"], short["mark_px"]) == \
        ("okx", "short", Decimal("-0.2"), Decimal("60100"), Decimal("60080"))
    assert [f.id for f in r.trades] == ["o1-1", "o2-1", "o3-1"]
    # the curve: after both opening fills nothing is marked away from entry: net = -fees = -12.01
    by_ts = {pt["ts_ns"]: pt for pt in r.curve}
    assert by_ts[T0 + 2 * S]["net"] == Decimal("-12.01")
    assert r.curve[-1]["net"] == NET and r.curve[-1]["equity"] == EQUITY


def test_report_command_prints_positions_pnl_split_and_trade_log(ledger: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PERPARB_HOME": str(tmp_path / "home"), "COLUMNS": "200"}
    out = subprocess.run([PERPARB, "report", "--ledger", str(ledger)], capture_output=True, text=True, env=env,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    lines = {ln.split("│")[1].strip(): ln for ln in text.splitlines() if ln.count("│") >= 3}
    assert "31.38" in lines["net"] and "15.02" in lines["fees"] and "2.40" in lines["funding"]
    assert "20.00" in lines["spread (realized)"] and "24.00" in lines["spread (unrealized)"]
    assert "2,031.38" in lines["equity"]
    for order in ("o1", "o2", "o3"):
        assert f" {order} " in text
    assert "60080" in text and "-0.2" in text  # the short leg at its mark

    js = subprocess.run([PERPARB, "report", "--ledger", str(ledger), "--json"], capture_output=True, text=True,
                        env=env, timeout=60)
    body = json.loads(js.stdout)
    assert body["pnl"]["net"] == float(NET) and body["pnl"]["fees"] == float(FEES)
    assert [t["order_id"] for t in body["trades"]] == ["o1", "o2", "o3"]
    assert [leg["venue"] for leg in body["pairs"][0]["legs"]] == ["binance", "okx"]

    missing = subprocess.run([PERPARB, "report", "--ledger", str(tmp_path / "nope.sqlite")], capture_output=True,
                             text=True, env=env, timeout=60)
    assert missing.returncode == 2 and "no ledger at" in missing.stderr


async def test_report_html_is_one_page_with_the_plots(ledger: Path, tmp_path: Path) -> None:
    env = {**os.environ, "PERPARB_HOME": str(tmp_path / "home")}
    out_dir = tmp_path / "html"
    r = subprocess.run([PERPARB, "report", "--ledger", str(ledger), "--html", str(out_dir)], capture_output=True,
                       text=True, env=env, timeout=60)
    assert r.returncode == 0, r.stderr
    page = (out_dir / "report.html").read_text()
    for div in ("equity-curve", "pnl-split", "positions"):
        assert f'id="{div}"' in page and re.search(rf'Plotly\.newPlot\(\s*"{div}"', page), div
    assert "<script src=" not in page  # plotly.js is inlined: the page works offline
    assert "31.38" in page and "o3" in page
    if not (os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK)):
        pytest.skip(f"!!! CHROMIUM NOT FOUND AT {CHROMIUM}: THE REPORT SCREENSHOT WAS NOT TAKEN !!!")
    from playwright.async_api import async_playwright

    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True,
                                           args=["--no-sandbox", "--disable-gpu"])
        try:
            pg = await browser.new_page(viewport={"width": 1366, "height": 1100})
            errors: list[str] = []
            pg.on("pageerror", lambda exc: errors.append(str(exc)))
            await pg.goto((out_dir / "report.html").as_uri())
            await pg.wait_for_selector("#equity-curve .main-svg", timeout=15_000)
            assert await pg.locator("#pnl-split .main-svg").count() > 0
            assert await pg.locator("#positions .main-svg").count() > 0
            SHOTS.mkdir(parents=True, exist_ok=True)
            await pg.screenshot(path=str(SHOTS / "report.png"), full_page=True)
            assert not errors, errors
        finally:
            await browser.close()


def test_report_reads_the_postgresql_ledger_when_storage_postgres_url_is_set(pg_schema: str, tmp_path: Path) -> None:
    from conftest import PG_URL
    from perparb.store.ledger import PostgresLedger

    lg = PostgresLedger(PG_URL, schema=pg_schema)
    assert all(lg.append(EVENTS))
    lg.close()
    env = {**os.environ, "PERPARB_HOME": str(tmp_path / "home")}
    out = subprocess.run([PERPARB, "report", "--json", "--set", f"storage.postgres_url={PG_URL}",
                          "--set", f"storage.postgres_schema={pg_schema}"], capture_output=True, text=True, env=env,
                         timeout=60)
    assert out.returncode == 0, out.stderr
    body = json.loads(out.stdout)
    assert body["pnl"]["net"] == float(NET) and body["pnl"]["equity"] == float(EQUITY)
    assert [t["order_id"] for t in body["trades"]] == ["o1", "o2", "o3"]
