"""The ``perparb`` command line, through typer's CliRunner (and the installed script where
the real output streams matter). Expected values come from the raw input lines."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from conftest import fixture_path
from perparb.cli import app

runner = CliRunner()

BOOK_TICKER = ('{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":400900217,"s":"BTCUSDT",'
               '"b":"65012.30","B":"1.234","a":"65012.40","A":"0.567","T":1700000000123,"E":1700000000125}}')
ACK = '{"result":null,"id":1}'
MALFORMED = '{"e":"bookTicker","u":400900218,"s":"BTCUSDT","b":"650'
DEPTH = ('{"e":"depthUpdate","E":1700000000200,"T":1700000000199,"s":"ETHUSDT","U":157,"u":160,"pu":149,'
         '"b":[["1800.50","2.5"],["1799.00","0"]],"a":[["1800.60","1.75"]]}')

QUOTE_KEYS = {"type", "venue", "symbol", "venue_symbol", "bid_px", "bid_qty", "ask_px", "ask_qty",
              "ts_exchange_ns", "recv_ns"}
DELTA_KEYS = {"type", "venue", "symbol", "venue_symbol", "bids", "asks", "first_seq", "seq", "prev_seq",
              "checksum", "ts_exchange_ns", "recv_ns"}
MARKET_KEYS = {"venue", "venue_symbol", "symbol", "asset", "contract_size", "price_scale", "inverse", "settle",
               "funding_interval_h", "status", "data_date", "data_source"}
OKX_SWAPS = "pcdogyu-open-nof1_2025-11_rest_v5_public_instruments_SWAP_WRAPPED_full.jsonl"  # the bundled list


def _file(tmp_path: Path, name: str, lines: list[str]) -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


def _oneline(text: str) -> str:
    """Rich may wrap long error lines; compare on the text with the wrapping undone."""
    return " ".join(text.split())


def _json_lines(text: str) -> list[dict]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


# -- help ----------------------------------------------------------------------------------
@pytest.mark.parametrize("cmd", [[], ["demo"], ["run"], ["sim"], ["decode"], ["markets"], ["bench"],
                                 ["bench", "decode"], ["bench", "book"]])
def test_help(cmd: list[str]) -> None:
    result = runner.invoke(app, [*cmd, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.stdout
    assert "--help" in result.stdout


def test_no_arguments_shows_help() -> None:
    result = runner.invoke(app, [])
    assert "Usage" in result.output
    for name in ("demo", "run", "sim", "decode", "markets", "bench"):
        assert name in result.output


# -- decode --------------------------------------------------------------------------------
def _check_quote(ev: dict, raw_line: str) -> None:
    d = json.loads(raw_line)["data"]
    assert set(ev) == QUOTE_KEYS
    assert ev["type"] == "quote"
    assert ev["venue"] == "binance"
    assert ev["venue_symbol"] == d["s"] == "BTCUSDT"
    assert ev["symbol"] == "BTC/USDT:USDT"
    assert ev["bid_px"] == float(d["b"])
    assert ev["bid_qty"] == float(d["B"])
    assert ev["ask_px"] == float(d["a"])
    assert ev["ask_qty"] == float(d["A"])
    assert ev["ts_exchange_ns"] == d["E"] * 1_000_000  # event time, ms -> ns
    assert isinstance(ev["recv_ns"], int) and ev["recv_ns"] > 0


def _check_delta(ev: dict, raw_line: str) -> None:
    d = json.loads(raw_line)
    assert set(ev) == DELTA_KEYS
    assert ev["type"] == "book_delta"
    assert (ev["venue"], ev["venue_symbol"], ev["symbol"]) == ("binance", "ETHUSDT", "ETH/USDT:USDT")
    assert ev["bids"] == [[float(p), float(q)] for p, q in d["b"]]
    assert ev["asks"] == [[float(p), float(q)] for p, q in d["a"]]
    assert (ev["first_seq"], ev["seq"], ev["prev_seq"]) == (d["U"], d["u"], d["pu"])
    assert ev["checksum"] is None
    assert ev["ts_exchange_ns"] == d["E"] * 1_000_000


def test_decode_mixed_file(tmp_path: Path) -> None:
    # Line 3 is blank (skipped, but still counted), line 4 is malformed.
    path = _file(tmp_path, "mixed.jsonl", [BOOK_TICKER, ACK, "", MALFORMED, DEPTH])
    result = runner.invoke(app, ["decode", "--venue", "binance", str(path)])
    assert result.exit_code == 1  # some lines were malformed; the rest was still decoded
    events = _json_lines(result.stdout)
    assert len(events) == 2
    _check_quote(events[0], BOOK_TICKER)
    _check_delta(events[1], DEPTH)
    err = _oneline(result.stderr)
    assert "line 4" in err
    for n in (1, 2, 3, 5):
        assert f"line {n}:" not in err


def test_decode_good_file_exits_zero(tmp_path: Path) -> None:
    path = _file(tmp_path, "good.jsonl", [BOOK_TICKER, ACK, DEPTH])
    result = runner.invoke(app, ["decode", "--venue", "binance", str(path)])
    assert result.exit_code == 0, result.output
    events = _json_lines(result.stdout)
    assert [e["type"] for e in events] == ["quote", "book_delta"]
    _check_quote(events[0], BOOK_TICKER)
    assert result.stderr.strip() == ""


def test_decode_acks_only_prints_nothing(tmp_path: Path) -> None:
    path = _file(tmp_path, "acks.jsonl", [ACK, '{"result":null,"id":2}'])
    result = runner.invoke(app, ["decode", "--venue", "binance", str(path)])
    assert result.exit_code == 0
    assert result.stdout == ""


def test_decode_real_streams(tmp_path: Path) -> None:
    """The installed script: market data on stdout only, the complaint on stderr only."""
    path = _file(tmp_path, "mixed.jsonl", [BOOK_TICKER, ACK, MALFORMED, DEPTH])
    exe = Path(sys.executable).with_name("perparb")
    proc = subprocess.run([str(exe), "decode", "--venue", "binance", str(path)], capture_output=True, text=True,
                          timeout=60, check=False)
    assert proc.returncode == 1
    events = _json_lines(proc.stdout)
    assert [e["type"] for e in events] == ["quote", "book_delta"]
    _check_quote(events[0], BOOK_TICKER)
    _check_delta(events[1], DEPTH)
    assert "line 3" in _oneline(proc.stderr)
    assert "quote" not in proc.stderr


def test_decode_unknown_venue(tmp_path: Path) -> None:
    path = _file(tmp_path, "x.jsonl", [BOOK_TICKER])
    result = runner.invoke(app, ["decode", "--venue", "nosuch", str(path)])
    assert result.exit_code == 2
    assert "nosuch" in _oneline(result.stderr)
    assert result.stdout == ""


def test_decode_missing_file(tmp_path: Path) -> None:
    result = runner.invoke(app, ["decode", "--venue", "binance", str(tmp_path / "absent.jsonl")])
    assert result.exit_code == 2


OKX_META = json.dumps({"code": "0", "msg": "", "data": [{
    "instId": "FOOX-USDT-SWAP", "instType": "SWAP", "settleCcy": "USDT", "ctType": "linear", "ctVal": "10",
    "ctMult": "1", "tickSz": "0.001", "lotSz": "1", "minSz": "1", "state": "live", "uly": "FOOX-USDT",
    "instFamily": "FOOX-USDT"}]})
OKX_BBO = json.dumps({"arg": {"channel": "bbo-tbt", "instId": "FOOX-USDT-SWAP"}, "data": [{
    "asks": [["2.5", "4", "0", "1"]], "bids": [["2.4", "3", "0", "2"]], "ts": "1700000000000", "seqId": 5}]},
    separators=(",", ":"))


def test_decode_metadata_adds_symbol(tmp_path: Path) -> None:
    msgs = _file(tmp_path, "okx.jsonl", [OKX_BBO])
    meta = _file(tmp_path, "instruments.json", [OKX_META])

    without = runner.invoke(app, ["decode", "--venue", "okx", str(msgs)])
    assert without.exit_code == 0  # an unknown symbol is a problem report, not a malformed line
    assert without.stdout == ""
    assert "FOOX-USDT-SWAP" in _oneline(without.stderr)

    result = runner.invoke(app, ["decode", "--venue", "okx", "--metadata", str(meta), str(msgs)])
    assert result.exit_code == 0, result.output
    [ev] = _json_lines(result.stdout)
    assert ev["type"] == "quote"
    assert (ev["venue"], ev["venue_symbol"], ev["symbol"]) == ("okx", "FOOX-USDT-SWAP", "FOOX/USDT:USDT")
    # ctVal 10: 3 contracts bid = 30 FOOX, 4 asked = 40 FOOX; prices are already per FOOX.
    assert (ev["bid_px"], ev["bid_qty"], ev["ask_px"], ev["ask_qty"]) == (2.4, 30.0, 2.5, 40.0)
    assert ev["ts_exchange_ns"] == 1_700_000_000_000 * 1_000_000
    assert result.stderr.strip() == ""


def test_decode_metadata_of_another_venue_is_rejected(tmp_path: Path) -> None:
    msgs = _file(tmp_path, "okx.jsonl", [OKX_BBO])
    meta = _file(tmp_path, "instruments.json", ['{"code":"0","msg":"","data":[]}'])
    result = runner.invoke(app, ["decode", "--venue", "okx", "--metadata", str(meta), str(msgs)])
    assert result.exit_code == 2
    assert "metadata" in _oneline(result.stderr)


BINANCE_META = json.dumps({"timezone": "UTC", "symbols": [{
    "symbol": "1000FOOBUSD", "pair": "1000FOOBUSD", "contractType": "PERPETUAL", "status": "TRADING",
    "baseAsset": "1000FOO", "quoteAsset": "BUSD", "marginAsset": "BUSD",
    "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.0001"},
                {"filterType": "LOT_SIZE", "stepSize": "1", "minQty": "1"}]}]})
BINANCE_FOO = ('{"e":"bookTicker","u":1,"s":"1000FOOBUSD","b":"1.5000","B":"2","a":"1.6000","A":"3",'
               '"T":1700000000000,"E":1700000000001}')


def test_decode_binance_exchange_info_metadata(tmp_path: Path) -> None:
    msgs = _file(tmp_path, "bn.jsonl", [BINANCE_FOO])
    meta = _file(tmp_path, "exchangeInfo.json", [BINANCE_META])
    result = runner.invoke(app, ["decode", "--venue", "binance", "--metadata", str(meta), str(msgs)])
    assert result.exit_code == 0, result.output
    [ev] = _json_lines(result.stdout)
    # Base 1000FOO: prices per 1000 FOO -> per FOO, quantities in 1000 FOO -> FOO.
    assert ev["symbol"] == "FOO/BUSD:BUSD"
    assert ev["bid_px"] == pytest.approx(0.0015)
    assert ev["bid_qty"] == pytest.approx(2000)
    assert ev["ask_px"] == pytest.approx(0.0016)
    assert ev["ask_qty"] == pytest.approx(3000)


def test_decode_binance_funding_info_metadata(tmp_path: Path) -> None:
    mark = ('{"e":"markPriceUpdate","E":1700000000000,"s":"BTCUSDT","p":"65000.10","i":"64990.00",'
            '"P":"65001.00","r":"0.00012500","T":1700006400000}')
    msgs = _file(tmp_path, "bn.jsonl", [mark])
    meta = _file(tmp_path, "fundingInfo.json", ['[{"symbol":"BTCUSDT","fundingIntervalHours":4}]'])
    plain = _json_lines(runner.invoke(app, ["decode", "--venue", "binance", str(msgs)]).stdout)
    result = runner.invoke(app, ["decode", "--venue", "binance", "--metadata", str(meta), str(msgs)])
    assert result.exit_code == 0, result.output
    [ev] = _json_lines(result.stdout)
    assert ev["type"] == "funding"
    assert ev["interval_h"] == 4.0  # from the metadata file
    assert plain[0]["interval_h"] == 8.0  # Binance's default without it
    assert ev["rate"] == 0.000125
    assert ev["next_funding_ns"] == 1_700_006_400_000 * 1_000_000


# -- markets -------------------------------------------------------------------------------
def test_markets_json_uni() -> None:
    result = runner.invoke(app, ["markets", "--json", "--asset", "UNI"])
    assert result.exit_code == 0, result.output
    rows = _json_lines(result.stdout)
    assert rows
    for row in rows:
        assert set(row) == MARKET_KEYS
        assert row["asset"] == "UNI"

    raw = json.loads(fixture_path("okx", OKX_SWAPS).read_text().splitlines()[0])
    spec = next(r for r in raw["instruments"] if r["instId"] == "UNI-USD-SWAP")
    assert spec["ctType"] == "inverse" and spec["ctValCcy"] == "USD"
    [inv] = [r for r in rows if (r["venue"], r["venue_symbol"]) == ("okx", "UNI-USD-SWAP")]
    assert inv["inverse"] is True
    assert inv["contract_size"] == float(spec["ctVal"]) * float(spec["ctMult"]) == 10.0
    assert inv["settle"] == spec["settleCcy"] == "UNI"
    assert inv["symbol"] == "UNI/USD:UNI"
    assert inv["price_scale"] == 1.0
    # updated_at 1762153295 of the stored list is 2025-11-03.
    assert (inv["data_date"], inv["data_source"]) == ("2025-11-03", f"okx/{OKX_SWAPS}")

    lin = [r for r in rows if r["venue_symbol"] == "UNI-USDT-SWAP"]
    assert lin and lin[0]["inverse"] is False and lin[0]["settle"] == "USDT"


def test_markets_filters_case_insensitive_and_by_venue() -> None:
    lower = _json_lines(runner.invoke(app, ["markets", "--json", "--asset", "uni"]).stdout)
    upper = _json_lines(runner.invoke(app, ["markets", "--json", "--asset", "UNI"]).stdout)
    assert lower == upper
    okx = _json_lines(runner.invoke(app, ["markets", "--json", "--venue", "okx", "--asset", "BTC"]).stdout)
    assert okx and {r["venue"] for r in okx} == {"okx"}
    assert any(r["venue_symbol"] == "BTC-USDT-SWAP" and r["contract_size"] == 0.01 for r in okx)


def test_markets_table() -> None:
    n = len(_json_lines(runner.invoke(app, ["markets", "--json", "--asset", "UNI"]).stdout))
    result = runner.invoke(app, ["markets", "--asset", "UNI"], env={"COLUMNS": "250"})
    assert result.exit_code == 0
    assert f"{n} contracts" in result.stdout
    assert "UNI-USD-SWAP" in result.stdout


# -- bench ---------------------------------------------------------------------------------
def test_bench_decode(tmp_path: Path) -> None:
    path = _file(tmp_path, "bench.jsonl", [BOOK_TICKER, ACK, MALFORMED, DEPTH])
    result = runner.invoke(app, ["bench", "decode", "--venue", "binance", str(path), "--min-seconds", "0.2"])
    assert result.exit_code == 0, result.output
    [out] = _json_lines(result.stdout)
    assert {"venue", "messages", "seconds", "msgs_per_s"} <= set(out)
    assert out["venue"] == "binance"
    assert out["file"] == "bench.jsonl"
    # The malformed line is left out: each pass decodes 3 lines giving 2 events.
    assert out["messages"] > 0
    assert out["messages"] % 3 == 0
    assert out["events"] == out["messages"] // 3 * 2
    assert out["seconds"] > 0
    assert out["msgs_per_s"] == pytest.approx(out["messages"] / out["seconds"], rel=0.01)


def test_bench_decode_unknown_venue(tmp_path: Path) -> None:
    path = _file(tmp_path, "bench.jsonl", [BOOK_TICKER])
    result = runner.invoke(app, ["bench", "decode", "--venue", "nosuch", str(path), "--min-seconds", "0.01"])
    assert result.exit_code == 2
    assert "nosuch" in _oneline(result.stderr)


# -- configuration errors ------------------------------------------------------------------
@pytest.mark.parametrize(("cmd", "name", "text", "key"), [
    (["demo", "--duration", "0.1"], "bad.toml", "[scanner]\nmax_quote_age_ms = -1\n", "scanner.max_quote_age_ms"),
    (["run", "--duration", "0.1"], "bad.yaml", "scanner:\n  min_edge_bpz: 3\n", "scanner.min_edge_bpz"),
    (["sim", "--duration", "0.1"], "bad.toml", "[venues.nosuchex]\n", "nosuchex"),
])
def test_bad_config_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cmd: list[str], name: str,
                            text: str, key: str) -> None:
    monkeypatch.delenv("PERPARB_HOME", raising=False)
    path = tmp_path / name
    path.write_text(text)
    result = runner.invoke(app, [*cmd, "--config", str(path)])
    assert result.exit_code == 2
    err = _oneline(result.stderr)
    assert key in err
    assert "Traceback" not in result.output


def test_unset_secret_variable_exits_2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERPARB_HOME", raising=False)
    monkeypatch.delenv("PERPARB_TEST_NO_SUCH_VAR", raising=False)
    path = tmp_path / "c.toml"
    path.write_text('[venues.binance]\napi_key = "${PERPARB_TEST_NO_SUCH_VAR}"\n')
    result = runner.invoke(app, ["run", "--config", str(path)])
    assert result.exit_code == 2
    err = _oneline(result.stderr)
    assert "venues.binance.api_key" in err
    assert "PERPARB_TEST_NO_SUCH_VAR" in err
