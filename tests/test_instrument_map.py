"""The cross-venue map: overrides files in every format, the ambiguity guard, observed
funding-interval changes, and the size of the bundled map."""

from __future__ import annotations

import json
from collections import defaultdict
from pathlib import Path

import pytest

from perparb.engine import Engine
from perparb.instruments.overrides import apply_overrides, load_overrides, parse_overrides
from perparb.instruments.registry import Registry
from perparb.instruments.snapshot import load_registry
from perparb.model import Instrument, Quote, VenueStatus
from perparb.scanner.core import Scanner, ScanSettings

S = 1_000_000_000
NOW = 1_800_000_000 * S


def inst(venue: str, sym: str, asset: str, **kw: object) -> Instrument:
    args: dict[str, object] = dict(venue=venue, venue_symbol=sym, symbol=f"{asset}/USDT:USDT", asset=asset,
                                   quote="USDT", settle="USDT")
    args.update(kw)
    return Instrument(**args)  # type: ignore[arg-type]


LINES = """# trackers' format
PEPE:1000PEPEUSDT:binance
NEIROETH:NEIROUSDT:binance   # the other NEIRO
this line is wrong
BONK:1000BONKUSDT:bybit
"""


def test_line_format_reports_bad_lines_and_loads_the_rest() -> None:
    overrides, errors = parse_overrides(LINES, ".txt")
    assert [(o.asset, o.venue_symbol, o.venue) for o in overrides] == [
        ("PEPE", "1000PEPEUSDT", "binance"), ("NEIROETH", "NEIROUSDT", "binance"), ("BONK", "1000BONKUSDT", "bybit")]
    assert errors == ["line 4: expected BASE:NATIVE_SYMBOL:venue, got 'this line is wrong'"]


@pytest.mark.parametrize(("suffix", "text"), [
    (".toml", '[[mapping]]\nvenue = "okx"\nvenue_symbol = "PEPE-USDT-SWAP"\nasset = "pepe"\ncontract_size = 10000000\n'
              '[[mapping]]\nvenue = "okx"\nasset = "X"\n'),
    (".yaml", "- {venue: okx, venue_symbol: PEPE-USDT-SWAP, asset: pepe, contract_size: 10000000}\n- {venue: okx, asset: X}\n"),
    (".json", json.dumps({"mappings": [{"venue": "okx", "venue_symbol": "PEPE-USDT-SWAP", "asset": "pepe",
                                        "contract_size": 1e7}, {"venue": "okx", "asset": "X"}]})),
    (".csv", "venue,venue_symbol,asset,contract_size\nokx,PEPE-USDT-SWAP,pepe,10000000\nokx,,X,\n"),
])
def test_structured_formats(suffix: str, text: str) -> None:
    overrides, errors = parse_overrides(text, suffix)
    [o] = overrides
    assert (o.venue, o.venue_symbol, o.asset, o.contract_size) == ("okx", "PEPE-USDT-SWAP", "PEPE", 1e7)
    [err] = errors
    assert ("entry 2" in err or "line 3" in err) and "venue_symbol" in err


def test_bad_structured_file_is_one_clear_error() -> None:
    overrides, errors = parse_overrides("[[mapping]\n", ".toml")
    assert overrides == [] and errors[0].startswith("not valid TOML")


def test_apply_infers_the_scale_and_remaps() -> None:
    reg = Registry([inst("binance", "1000PEPEUSDT", "PEPE", price_scale=1000.0),
                    inst("binance", "NEIROUSDT", "NEIRO")])
    overrides, _ = parse_overrides(LINES, ".txt")
    changed, errors = apply_overrides(reg, overrides)
    assert {(i.venue_symbol, i.asset, i.price_scale) for i in changed} == {
        ("1000PEPEUSDT", "PEPE", 1000.0), ("NEIROUSDT", "NEIROETH", 1.0)}
    assert reg.get("binance", "NEIROUSDT").symbol == "NEIROETH/USDT:USDT"  # type: ignore[union-attr]
    assert len(errors) == 1 and "1000BONKUSDT" in errors[0]  # bybit contract unknown here


def test_apply_can_derive_unknown_contracts() -> None:
    reg = Registry()

    def derive(venue: str, sym: str) -> Instrument | None:
        return inst(venue, sym, "BONK", price_scale=1000.0, status="derived") if sym == "1000BONKUSDT" else None

    changed, errors = apply_overrides(reg, parse_overrides("BONK:1000BONKUSDT:bybit\n", ".txt")[0], derive)
    assert errors == [] and changed[0].price_scale == 1000.0 and reg.get("bybit", "1000BONKUSDT") is not None


def test_load_names_the_file(tmp_path: Path) -> None:
    p = tmp_path / "map.txt"
    p.write_text("nope\n")
    _, errors = load_overrides(p)
    assert errors == ["map.txt: line 1: expected BASE:NATIVE_SYMBOL:venue, got 'nope'"]


# -- ambiguity guard -------------------------------------------------------------------------
def q(i: Instrument, bid: float, ask: float) -> Quote:
    return Quote(i.venue, i.symbol, i.venue_symbol, bid, 1e9, ask, 1e9, NOW, NOW)


def test_same_ticker_different_token_is_never_paired() -> None:
    status = {v: VenueStatus(venue=v, connected=True) for v in ("a", "b", "c")}
    sc = Scanner(ScanSettings(min_edge_bps=-1e6, ambiguity_ratio=1.5))
    x, y, z = inst("a", "NEIROUSDT", "NEIRO"), inst("b", "NEIROUSDT", "NEIRO"), inst("c", "NEIRO-USDT", "NEIRO")
    sc.on_quote(x, q(x, 0.00100, 0.00101), NOW, status)
    sc.on_quote(y, q(y, 0.00100, 0.00101), NOW, status)
    sc.on_quote(z, q(z, 0.0800, 0.0801), NOW, status)  # 80x the others: a different token
    assert ("c", "NEIRO-USDT") in sc.ambiguous and ("a", "NEIROUSDT") not in sc.ambiguous
    assert "x79" in sc.ambiguous[("c", "NEIRO-USDT")]
    assert not [o for o in sc.lifecycle.active.values() if "c" in (o.buy_venue, o.sell_venue)]
    assert sc.rejections["ambiguous"] >= 1


def test_an_unscaled_multiple_is_caught() -> None:
    # A 1000x contract mapped without its scale: price 1000x the others.
    status = {v: VenueStatus(venue=v, connected=True) for v in ("a", "b")}
    sc = Scanner(ScanSettings(min_edge_bps=-1e6))
    a, b = inst("a", "PEPEUSDT", "PEPE"), inst("b", "1000PEPEUSDT", "PEPE")  # price_scale forgotten
    sc.on_quote(a, q(a, 0.0000120, 0.0000121), NOW, status)
    sc.on_quote(b, q(b, 0.0120, 0.0121), NOW, status)
    assert not sc.lifecycle.active
    assert set(sc.ambiguous) == {("a", "PEPEUSDT"), ("b", "1000PEPEUSDT")}  # two venues: neither can be trusted


# -- funding interval observed from settlements ----------------------------------------------
def test_interval_change_is_picked_up_from_consecutive_funding_times() -> None:
    engine = Engine(load_registry(), ["binance"])
    t = 1_800_000_000_000

    def mark(next_ms: int, recv_ms: int) -> str:
        return json.dumps({"stream": "btcusdt@markPrice@1s", "data": {
            "e": "markPriceUpdate", "E": recv_ms, "s": "BTCUSDT", "p": "100", "i": "100", "r": "0.0001",
            "T": next_ms}})

    engine.on_message("binance", mark(t + 1000, t), t * 1_000_000)
    assert engine.funding[("binance", "BTCUSDT")].interval_h == 8.0
    # The settlement passed; the next one is 4 h later, not 8 h.
    engine.on_message("binance", mark(t + 1000 + 4 * 3_600_000, t + 2000), (t + 2000) * 1_000_000)
    assert engine.funding[("binance", "BTCUSDT")].interval_h == 4.0
    assert engine.registry.get("binance", "BTCUSDT").funding_interval_h == 4.0  # type: ignore[union-attr]


def test_bundled_map_covers_450_contracts_on_two_or_more_venues() -> None:
    venues_of: dict[str, set[str]] = defaultdict(set)
    reg = load_registry()
    for i in reg.all():
        if i.status == "active":
            venues_of[i.asset].add(i.venue)
    multi = [i for i in reg.all() if i.status == "active" and len(venues_of[i.asset]) >= 2]
    assert len(multi) >= 450, len(multi)
    # Renamed multiples map to one asset with the right scale.
    pepe = {(i.venue, i.venue_symbol): i.price_scale for i in reg.all() if i.asset == "SHIB"}
    assert pepe.get(("binance", "1000SHIBUSDT")) == 1000.0


async def test_refresh_rebuilds_the_snapshot_from_the_venues(tmp_path: Path) -> None:
    from perparb.instruments.refresh import refresh_snapshot
    from perparb.instruments.snapshot import load_snapshot
    from perparb.sim.server import Simulator

    sim = Simulator(load_registry(), ["binance", "okx", "hyperliquid"], ["BTC", "ETH"], seed=1)
    await sim.start()
    try:
        path = await refresh_snapshot(tmp_path / "instruments.json", ["binance", "okx", "hyperliquid"],
                                      sim.endpoints())
    finally:
        await sim.stop()
    snap = load_snapshot(path)
    got = {(i.venue, i.venue_symbol, i.contract_size) for i in snap.instruments}
    want = {(i.venue, i.venue_symbol, i.contract_size) for sv in sim.venues.values() for i in sv.instruments.values()}
    assert got == want and set(snap.sources) == {"binance", "okx", "hyperliquid"}  # POST /info included


async def test_reload_applies_overrides_and_alert_rules_without_restart(tmp_path: Path) -> None:
    from perparb.app import Session
    from perparb.config import load_settings

    overrides = tmp_path / "map.txt"
    overrides.write_text("SUSHIX:SUSHIUSDT:binance\n")
    config = tmp_path / "perparb.toml"
    config.write_text(f'instrument_overrides = "{overrides}"\n[venues.binance]\n'
                      '[alerts]\n[[alerts.rules]]\nmin_edge_bps = 5\n')
    session = Session(load_settings(config, env={}), config_path=config)
    assert session.apply_overrides()["applied"] == 1
    assert session.registry.get("binance", "SUSHIUSDT").asset == "SUSHIX"  # type: ignore[union-attr]
    # The user edits both files; a reload picks the changes up (a bad line is reported, the rest loads).
    overrides.write_text("SUSHI:SUSHIUSDT:binance\nnot a mapping\n")
    config.write_text(config.read_text().replace("min_edge_bps = 5", "min_edge_bps = 9"))
    result = await session.reload()
    assert result["reloaded"]["alerts"] == 1 and session.alerter is not None
    assert session.alerter.rules[0].min_edge_bps == 9
    assert result["reloaded"]["instrument_overrides"]["applied"] == 1
    assert "line 2" in result["reloaded"]["instrument_overrides"]["errors"][0]
    assert session.registry.get("binance", "SUSHIUSDT").asset == "SUSHI"  # type: ignore[union-attr]
