"""The bundled instrument map: built from the newest recorded metadata of every venue, with
each venue's data date, as ``perparb markets`` shows it. Expected values come from the raw
recorded responses (json module), never from the map itself."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from typer.testing import CliRunner

from conftest import fixture_lines
from perparb.cli import app
from perparb.instruments.snapshot import bundled_path, load_snapshot, save_snapshot

runner = CliRunner()
VENUES = ["binance", "bitget", "bitmex", "bybit", "coindcx", "deribit", "dydx", "gate", "hyperliquid", "kucoin",
          "mexc", "okx", "phemex"]
BINANCE = "alphadogs-coinbase-python_2025-12_rest_fapi_v1_exchangeInfo_full.jsonl"
BYBIT = "haroonriyadh-trading_system_2026-02_rest_v5_market_instruments-info_linear_REKEYED_excerpt.jsonl"
OKX = "pcdogyu-open-nof1_2025-11_rest_v5_public_instruments_SWAP_WRAPPED_full.jsonl"
MEXC = "arbitrack_2025-08_rest_api_v1_contract_detail_full.jsonl"
KUCOIN = "ccxt-static-markets_2023-2025_rest_api_v1_contracts_active_INFO-EXTRACTED_excerpt.jsonl"
PHEMEX = "DoraJar-44-Phemex_2025-08_rest_public_products_full.jsonl"


def _rows(*args: str) -> list[dict]:
    result = runner.invoke(app, ["markets", "--json", *args])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def _raw(venue: str, name: str) -> object:
    [line] = fixture_lines(venue, name)
    return json.loads(line)


def _day(ms: float) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d")


def test_markets_json_lists_all_13_venues_with_their_data_date() -> None:
    rows = _rows()
    assert sorted({r["venue"] for r in rows}) == VENUES
    assert all(r["venue_symbol"] and r["data_date"] and r["data_source"].startswith(r["venue"] + "/")
               for r in rows)
    by = {(r["venue"], r["venue_symbol"]): r for r in rows}
    # The dates are the recorded responses' own: Binance serverTime, OKX's stored updated_at.
    binance = _raw("binance", BINANCE)
    assert by[("binance", "BTCUSDT")]["data_date"] == _day(binance["serverTime"]) == "2025-12-24"  # type: ignore[index]
    okx = _raw("okx", OKX)
    assert by[("okx", "BTC-USDT-SWAP")]["data_date"] == _day(okx["updated_at"] * 1000) == "2025-11-03"  # type: ignore[index]
    assert by[("binance", "BTCUSDT")]["data_source"] == f"binance/{BINANCE}"


def test_newest_full_lists_replace_older_ones() -> None:
    rows = _rows()
    count = {v: sum(r["venue"] == v for r in rows) for v in VENUES}
    binance = _raw("binance", BINANCE)
    assert count["binance"] == sum(s["contractType"] == "PERPETUAL" for s in binance["symbols"])  # type: ignore[index]
    okx = _raw("okx", OKX)
    assert count["okx"] == sum(bool(i["ctVal"]) for i in okx["instruments"])  # type: ignore[index]
    assert count["mexc"] == len(_raw("mexc", MEXC)["data"]) == 786  # type: ignore[index]
    assert count["phemex"] == len(_raw("phemex", PHEMEX)["data"]["perpProductsV2"]) == 602  # type: ignore[index]
    assert count["bybit"] == len(_raw("bybit", BYBIT)) == 555  # type: ignore[arg-type]
    assert count["kucoin"] == len(_raw("kucoin", KUCOIN)) == 9  # type: ignore[arg-type]
    # Binance's 2021 list had KEEPUSDT (since delisted); the 2025-12 list replaces it.
    assert not any(r["venue_symbol"] == "KEEPUSDT" for r in rows)


def test_1000pepe_on_binance_and_bybit_is_pepe_scaled_by_1000() -> None:
    rows = _rows("--asset", "PEPE")
    by = {(r["venue"], r["venue_symbol"]): r for r in rows}
    binance = {s["symbol"]: s for s in _raw("binance", BINANCE)["symbols"]}  # type: ignore[index]
    bybit = _raw("bybit", BYBIT)
    assert binance["1000PEPEUSDT"]["baseAsset"] == "1000PEPE"
    assert bybit["1000PEPEUSDT"]["baseCoin"] == "1000PEPE"  # type: ignore[index]
    for venue in ("binance", "bybit"):
        r = by[(venue, "1000PEPEUSDT")]
        assert (r["asset"], r["symbol"], r["price_scale"], r["contract_size"]) == ("PEPE", "PEPE/USDT:USDT", 1000, 1)
    okx = next(i for i in _raw("okx", OKX)["instruments"] if i["instId"] == "PEPE-USDT-SWAP")  # type: ignore[index]
    assert by[("okx", "PEPE-USDT-SWAP")]["contract_size"] == float(okx["ctVal"]) * float(okx["ctMult"])
    assert (by[("hyperliquid", "kPEPE")]["price_scale"], by[("phemex", "u1000PEPEUSDT")]["price_scale"]) == (1000, 1000)
    assert {"binance", "bybit", "okx", "gate", "hyperliquid", "mexc", "phemex", "coindcx", "dydx"} <= {
        r["venue"] for r in rows}


def test_kucoin_and_mexc_contract_sizes_are_the_recorded_ones() -> None:
    by = {(r["venue"], r["venue_symbol"]): r for r in _rows()}
    for c in _raw("kucoin", KUCOIN):  # type: ignore[attr-defined]
        r = by[("kucoin", c["symbol"])]
        assert (r["contract_size"], r["inverse"]) == (abs(c["multiplier"]), c["isInverse"])
    for c in _raw("mexc", MEXC)["data"]:  # type: ignore[index]
        r = by[("mexc", c["symbol"])]
        assert (r["contract_size"], r["inverse"]) == (c["contractSize"], c["settleCoin"] != c["quoteCoin"])


def test_table_names_each_venues_data_and_says_when_a_venue_has_none(tmp_path, monkeypatch) -> None:
    out = runner.invoke(app, ["markets", "--venue", "mexc"], env={"COLUMNS": "250"}).stdout
    assert f"mexc: 786 contracts as of 2025-08 (full, mexc/{MEXC})" in " ".join(out.split())
    # A snapshot without CoinDCX: markets says so instead of listing anything for it.
    snap = load_snapshot(bundled_path())
    snap.instruments = [i for i in snap.instruments if i.venue != "coindcx"]
    del snap.venues["coindcx"]
    save_snapshot(snap, tmp_path / "instruments.json")
    monkeypatch.setenv("PERPARB_HOME", str(tmp_path))
    text = " ".join(runner.invoke(app, ["markets", "--venue", "coindcx"]).stdout.split())
    assert "coindcx: no recorded metadata" in text
    [row] = _rows("--venue", "coindcx")
    assert row["venue_symbol"] is None and "no recorded metadata" in row["note"]
