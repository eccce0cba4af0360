"""Canonical names, unit conversions and the instrument registry.

Every expected number is worked out by hand in the test (the arithmetic is spelled out next
to it), never taken from what the code returned.
"""

from __future__ import annotations

import json

import pytest

from conftest import fixture_path
from perparb.instruments import Registry, canonical_symbol, load_registry, split_multiple
from perparb.instruments.snapshot import bundled_path, load_snapshot
from perparb.model import Instrument


# -- split_multiple -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("base", "asset", "scale"),
    [
        ("1000PEPE", "PEPE", 1000.0),  # Binance / Bybit
        ("kPEPE", "PEPE", 1000.0),  # Hyperliquid
        ("1000000MOG", "MOG", 1_000_000.0),
        ("1MBABYDOGE", "BABYDOGE", 1_000_000.0),
        ("100BONK", "BONK", 100.0),
        ("10000LADYS", "LADYS", 10_000.0),
        ("1INCH", "1INCH", 1.0),  # a token whose name starts with a digit, not a multiple
        ("XBT", "BTC", 1.0),  # BitMEX / Kraken spelling
        ("BTC", "BTC", 1.0),
        ("ETH", "ETH", 1.0),
    ],
)
def test_split_multiple(base: str, asset: str, scale: float) -> None:
    got_asset, got_scale = split_multiple(base)
    assert got_asset == asset
    assert got_scale == scale
    assert isinstance(got_scale, float)


def test_split_multiple_alias_inside_a_multiple() -> None:
    assert split_multiple("1000XBT") == ("BTC", 1000.0)


def test_canonical_symbol() -> None:
    assert canonical_symbol("BTC", "USDT", "USDT") == "BTC/USDT:USDT"
    assert canonical_symbol("BTC", "USD", "BTC") == "BTC/USD:BTC"  # inverse, coin-settled
    assert canonical_symbol("PEPE", "USDC", "USDC") == "PEPE/USDC:USDC"


# -- Instrument conversions ----------------------------------------------------------------
def _inst(**kw: object) -> Instrument:
    base: dict[str, object] = dict(venue="v", venue_symbol="X", symbol="BTC/USDT:USDT", asset="BTC",
                                   quote="USDT", settle="USDT")
    base.update(kw)
    return Instrument(**base)  # type: ignore[arg-type]


def test_linear_one_coin_contract() -> None:
    inst = _inst()
    assert inst.px(65000.5) == 65000.5
    assert inst.qty(2.5, 65000.5) == 2.5
    assert inst.native_px(65000.5) == 65000.5
    assert inst.native_qty(2.5, 65000.5) == 2.5


def test_contract_sized_linear() -> None:
    # OKX BTC-USDT-SWAP: one contract is 0.01 BTC.
    inst = _inst(venue_symbol="BTC-USDT-SWAP", contract_size=0.01)
    assert inst.px(60000.0) == 60000.0  # price is already per BTC
    assert inst.qty(3, 60000.0) == pytest.approx(0.03)  # 3 contracts x 0.01 BTC
    assert inst.qty(250, 60000.0) == pytest.approx(2.5)  # 250 x 0.01
    assert inst.native_qty(0.03, 60000.0) == pytest.approx(3)  # 0.03 BTC / 0.01
    assert inst.native_qty(inst.qty(17, 60000.0), 60000.0) == pytest.approx(17)


def test_scaled_contract() -> None:
    # Binance 1000PEPEUSDT: price is per 1000 PEPE, quantity in units of 1000 PEPE.
    inst = _inst(venue_symbol="1000PEPEUSDT", symbol="PEPE/USDT:USDT", asset="PEPE", price_scale=1000.0)
    assert inst.px(0.012345) == pytest.approx(0.000012345)  # 0.012345 / 1000
    assert inst.qty(5, 0.012345) == pytest.approx(5000)  # 5 x 1000 PEPE
    assert inst.native_px(0.000012345) == pytest.approx(0.012345)
    assert inst.native_qty(5000, 0.000012345) == pytest.approx(5)
    # Round trips.
    assert inst.native_px(inst.px(0.0071)) == pytest.approx(0.0071)
    assert inst.qty(inst.native_qty(123456.0, 1e-5), 0.01) == pytest.approx(123456.0)
    # Value is preserved: native px x native qty == canonical px x canonical qty.
    assert inst.px(0.012345) * inst.qty(5, 0.012345) == pytest.approx(0.012345 * 5)


def test_scaled_contract_with_contract_size() -> None:
    # A venue listing 1000PEPE whose contract is 10 units of 1000PEPE: one contract is 10,000 PEPE.
    inst = _inst(asset="PEPE", price_scale=1000.0, contract_size=10.0)
    assert inst.qty(2, 0.0123) == pytest.approx(20_000)  # 2 x 10 x 1000
    assert inst.native_qty(20_000, 0.0000123) == pytest.approx(2)


def test_inverse_contract() -> None:
    # BTC-USD-SWAP style: one contract is 100 USD; coins = contracts x 100 / price.
    inst = _inst(venue_symbol="BTC-USD-SWAP", symbol="BTC/USD:BTC", quote="USD", settle="BTC", inverse=True,
                 contract_size=100.0)
    assert inst.px(50000.0) == 50000.0
    assert inst.qty(10, 50000.0) == pytest.approx(0.02)  # 10 x 100 USD = 1000 USD / 50000
    assert inst.qty(1, 40000.0) == pytest.approx(0.0025)  # 100 / 40000
    assert inst.native_qty(0.02, 50000.0) == pytest.approx(10)  # 0.02 BTC x 50000 / 100
    assert inst.native_qty(inst.qty(37, 61234.5), 61234.5) == pytest.approx(37)
    assert inst.qty(5, 0.0) == 0.0  # no price, no quantity (and no ZeroDivisionError)


# -- Registry.select -----------------------------------------------------------------------
def _okx(sym: str, asset: str, settle: str, status: str = "active", quote: str | None = None) -> Instrument:
    q = quote or ("USD" if settle == asset else settle)
    return Instrument(venue="okx", venue_symbol=sym, symbol=canonical_symbol(asset, q, settle), asset=asset,
                      quote=q, settle=settle, inverse=settle == asset, status=status)


def test_select_prefers_usdt_settled() -> None:
    usd = _okx("UNI-USD-SWAP", "UNI", "UNI")
    usdt = _okx("UNI-USDT-SWAP", "UNI", "USDT")
    for order in ([usd, usdt], [usdt, usd]):
        reg = Registry(order)
        assert reg.select("okx", ["UNI"]) == [usdt]
        assert reg.select("okx", ["uni"]) == [usdt]  # asset names are case-insensitive


def test_select_keeps_usdt_when_it_sorts_first() -> None:
    # The USDT contract sorts before the other one by venue symbol; it must not be replaced.
    first = _okx("BTC-A-USDT", "BTC", "USDT")
    second = _okx("BTC-B-USDC", "BTC", "USDC")
    assert Registry([second, first]).select("okx", ["BTC"]) == [first]


def test_select_skips_inactive() -> None:
    dead = _okx("ETH-USDT-SWAP", "ETH", "USDT", status="inactive")
    alive = _okx("ETH-USDC-SWAP", "ETH", "USDC")
    reg = Registry([dead, alive])
    assert reg.select("okx", ["ETH"]) == [alive]
    assert Registry([dead]).select("okx", ["ETH"]) == []


def test_select_one_per_asset_sorted_and_only_wanted() -> None:
    insts = [_okx("SOL-USDT-SWAP", "SOL", "USDT"), _okx("BTC-USDT-SWAP", "BTC", "USDT"),
             _okx("ETH-USDT-SWAP", "ETH", "USDT"), _okx("BTC-USD-SWAP", "BTC", "BTC")]
    reg = Registry(insts)
    got = reg.select("okx", ["SOL", "BTC"])
    assert [(i.asset, i.venue_symbol) for i in got] == [("BTC", "BTC-USDT-SWAP"), ("SOL", "SOL-USDT-SWAP")]
    assert reg.select("binance", ["BTC"]) == []


def test_registry_lookups() -> None:
    a = _okx("BTC-USDT-SWAP", "BTC", "USDT")
    b = Instrument(venue="binance", venue_symbol="BTCUSDT", symbol="BTC/USDT:USDT", asset="BTC", quote="USDT",
                   settle="USDT")
    reg = Registry([a, b])
    assert len(reg) == 2
    assert reg.get("okx", "BTC-USDT-SWAP") is a
    assert reg.get("okx", "nope") is None
    assert reg.get("nosuch", "BTCUSDT") is None
    assert reg.venues() == ["binance", "okx"]
    assert reg.by_asset("BTC") == [b, a]  # sorted by venue
    # venue_table is live: an instrument added afterwards is visible through it.
    table = reg.venue_table("okx")
    c = _okx("ETH-USDT-SWAP", "ETH", "USDT")
    reg.add(c)
    assert table["ETH-USDT-SWAP"] is c


# -- the bundled snapshot ------------------------------------------------------------------
def test_bundled_snapshot_loads() -> None:
    snap = load_snapshot(bundled_path())
    assert len(snap.instruments) > 0
    reg = load_registry()  # PERPARB_HOME points at an empty folder (conftest): the bundled one
    assert len(reg) == len(snap.instruments)
    assert {"binance", "okx", "bybit"} <= set(reg.venues())

    okx = reg.get("okx", "BTC-USDT-SWAP")
    assert okx is not None
    assert okx.contract_size == 0.01
    assert (okx.asset, okx.quote, okx.settle, okx.inverse) == ("BTC", "USDT", "USDT", False)
    assert okx.symbol == "BTC/USDT:USDT"

    bn = reg.get("binance", "BTCUSDT")
    assert bn is not None
    assert (bn.asset, bn.symbol, bn.price_scale, bn.contract_size) == ("BTC", "BTC/USDT:USDT", 1.0, 1.0)


def test_bundled_okx_inverse_matches_recorded_metadata() -> None:
    raw = json.loads(fixture_path("okx", "pcdogyu-open-nof1_2025-11_rest_v5_public_instruments_SWAP_WRAPPED_full.jsonl")
                     .read_text().splitlines()[0])
    row = next(r for r in raw["instruments"] if r["instId"] == "UNI-USD-SWAP")
    inst = load_registry().get("okx", "UNI-USD-SWAP")
    assert inst is not None
    assert inst.inverse is (row["ctType"] == "inverse")
    assert inst.contract_size == float(row["ctVal"]) * float(row["ctMult"])
    assert inst.settle == row["settleCcy"]
