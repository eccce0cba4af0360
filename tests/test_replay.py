"""Replays of hand-made captures, with the right answers worked out here.

The captures carry their own REST metadata, so they describe contracts the bundled
snapshot has never seen: 1000PEPE on Binance (price per 1000 PEPE) against PEPE on OKX
(contracts of 10,000,000 PEPE).
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import zstandard
from typer.testing import CliRunner

from perparb.cli import app
from perparb.replay import replay
from perparb.scanner.core import Scanner, ScanSettings
from perparb.store.capture import CaptureWriter, ReadReport

MS = 1_000_000
T0 = 1_800_000_000_000 * MS

BINANCE_INFO = {"symbols": [{
    "symbol": "1000PEPEUSDT", "contractType": "PERPETUAL", "status": "TRADING", "baseAsset": "1000PEPE",
    "quoteAsset": "USDT", "marginAsset": "USDT",
    "filters": [{"filterType": "PRICE_FILTER", "tickSize": "0.0000001"},
                {"filterType": "LOT_SIZE", "stepSize": "1", "minQty": "1"},
                {"filterType": "MIN_NOTIONAL", "notional": "5"}]}]}
OKX_INSTRUMENTS = {"code": "0", "data": [{
    "instId": "PEPE-USDT-SWAP", "instType": "SWAP", "uly": "PEPE-USDT", "instFamily": "PEPE-USDT",
    "settleCcy": "USDT", "ctVal": "10000000", "ctMult": "1", "ctValCcy": "PEPE", "ctType": "linear",
    "tickSz": "0.0000000001", "lotSz": "1", "minSz": "1", "state": "live"}]}


def binance_ticker(bid: str, bid_qty: str, ask: str, ask_qty: str, t_ms: int) -> str:
    return json.dumps({"stream": "1000pepeusdt@bookTicker", "data": {
        "e": "bookTicker", "u": 1, "s": "1000PEPEUSDT", "b": bid, "B": bid_qty, "a": ask, "A": ask_qty,
        "T": t_ms, "E": t_ms}}, separators=(",", ":"))


def okx_bbo(bid: str, bid_sz: str, ask: str, ask_sz: str, t_ms: int) -> str:
    return json.dumps({"arg": {"channel": "bbo-tbt", "instId": "PEPE-USDT-SWAP"}, "data": [{
        "asks": [[ask, ask_sz, "0", "1"]], "bids": [[bid, bid_sz, "0", "1"]], "ts": str(t_ms)}]},
        separators=(",", ":"))


def write_capture(path: Path, records: list[tuple[int, str, str, str, str | None]]) -> Path:
    with CaptureWriter(path) as w:
        for recv_ns, venue, src, raw, rest_path in records:
            w.write(venue, src, raw, recv_ns, rest_path)
    return path


def pepe_capture(path: Path, okx_delay_ms: int = 0) -> Path:
    t_ms = T0 // MS
    return write_capture(path, [
        (T0, "binance", "rest", json.dumps(BINANCE_INFO), "/fapi/v1/exchangeInfo"),
        (T0 + 1, "okx", "rest", json.dumps(OKX_INSTRUMENTS), "/api/v5/public/instruments?instType=SWAP"),
        # Binance: 1000 PEPE at 0.011990 / 0.012000 -> PEPE at 0.00001199 / 0.000012,
        # 500,000 and 400,000 units of 1000 = 5e8 and 4e8 PEPE.
        (T0 + 10 * MS, "binance", "ws", binance_ticker("0.0119900", "500000", "0.0120000", "400000", t_ms), None),
        # OKX: PEPE at 0.00001215 / 0.00001216; 30 and 50 contracts = 3e8 and 5e8 PEPE.
        (T0 + (20 + okx_delay_ms) * MS, "okx", "ws", okx_bbo("0.00001215", "30", "0.00001216", "50", t_ms), None),
        # Binance moves up: the gap is gone.
        (T0 + (2000 + okx_delay_ms) * MS, "binance", "ws",
         binance_ticker("0.0121500", "500000", "0.0121600", "400000", t_ms + 2000), None),
    ])


def expected_pepe() -> dict[str, float]:
    fee = 0.0005
    ask_a, bid_a = 0.012 / 1000, 0.01199 / 1000  # Binance per PEPE
    bid_b, ask_b = 0.00001215, 0.00001216  # OKX per PEPE
    exit_unit = 0.5 * ((ask_a - bid_a) + (ask_b - bid_b)) + fee * bid_a + fee * ask_b
    size = min(4e8, 3e8)  # Binance ask 4e8 PEPE, OKX bid 30 contracts x 1e7
    cost, proceeds = size * ask_a, size * bid_b
    net = proceeds * (1 - fee) - cost * (1 + fee) - exit_unit * size
    return {"size_base": size, "notional_quote": cost, "edge_bps": net / cost * 1e4,
            "gross_bps": (proceeds - cost) / cost * 1e4}


def read_events(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_renamed_multiples_pair_in_common_units(tmp_path: Path) -> None:
    cap = pepe_capture(tmp_path / "pepe.jsonl")
    out = tmp_path / "opps.jsonl"
    with out.open("wb") as fh:
        summary = replay([cap], Scanner(ScanSettings(min_edge_bps=1.0)), opportunities_out=fh)
    assert summary["decode_errors"] == 0 and summary["unknown_symbols"] == 0
    events = read_events(out)
    kinds = [e["event"] for e in events]
    # Opened by OKX's quote, refreshed by the once-a-second update while it lasts, closed by
    # Binance moving up.
    assert kinds[0] == "open" and kinds[-1] == "close" and set(kinds[1:-1]) <= {"update"}
    opened, closed = events[0], events[-1]
    want = expected_pepe()
    assert opened["id"] == "spread:PEPE:binance:okx" and opened["kind"] == "spread" and opened["asset"] == "PEPE"
    assert (opened["buy_venue"], opened["sell_venue"]) == ("binance", "okx")
    assert opened["ts_ns"] == T0 + 20 * MS  # recorded time of the message that opened it, never wall-clock
    for key, value in want.items():
        assert opened[key] == pytest.approx(value, rel=1e-9), key
    assert closed["ts_ns"] == T0 + 2000 * MS and closed["first_seen_ns"] == T0 + 20 * MS


def test_a_stale_venue_never_pairs(tmp_path: Path) -> None:
    # OKX's quote arrives first and Binance's 10 s later: OKX is stale by then.
    t_ms = T0 // MS
    cap = write_capture(tmp_path / "stale.jsonl", [
        (T0, "binance", "rest", json.dumps(BINANCE_INFO), "/fapi/v1/exchangeInfo"),
        (T0 + 1, "okx", "rest", json.dumps(OKX_INSTRUMENTS), "/api/v5/public/instruments?instType=SWAP"),
        (T0 + 10 * MS, "okx", "ws", okx_bbo("0.00001215", "30", "0.00001216", "50", t_ms), None),
        (T0 + 10_010 * MS, "binance", "ws", binance_ticker("0.0119900", "500000", "0.0120000", "400000", t_ms), None),
    ])
    scanner = Scanner(ScanSettings(min_edge_bps=1.0, max_quote_age_ms=5000.0))
    out = tmp_path / "opps.jsonl"
    with out.open("wb") as fh:
        replay([cap], scanner, opportunities_out=fh)
    assert out.read_text() == ""
    assert scanner.rejections["stale"] >= 1


def test_replays_are_byte_identical_and_zstd_reads_the_same(tmp_path: Path) -> None:
    plain = pepe_capture(tmp_path / "pepe.jsonl")
    packed = tmp_path / "pepe.jsonl.zst"
    packed.write_bytes(zstandard.ZstdCompressor().compress(plain.read_bytes()))
    outputs = []
    for cap in (plain, plain, packed):
        out = tmp_path / f"out{len(outputs)}.jsonl"
        with out.open("wb") as fh:
            replay([cap], Scanner(ScanSettings(min_edge_bps=1.0)), opportunities_out=fh)
        outputs.append(out.read_bytes())
    assert outputs[0] == outputs[1] == outputs[2] and outputs[0]


def test_several_captures_merge_by_receive_time(tmp_path: Path) -> None:
    whole = pepe_capture(tmp_path / "pepe.jsonl")
    lines = whole.read_text().splitlines()
    binance = tmp_path / "b.jsonl"
    okx = tmp_path / "o.jsonl"
    binance.write_text("\n".join(ln for ln in lines if '"venue":"binance"' in ln) + "\n")
    okx.write_text("\n".join(ln for ln in lines if '"venue":"okx"' in ln) + "\n")
    outs = []
    for caps in ([whole], [okx, binance]):
        out = tmp_path / f"merged{len(outs)}.jsonl"
        with out.open("wb") as fh:
            replay(caps, Scanner(ScanSettings(min_edge_bps=1.0)), opportunities_out=fh)
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def test_a_bad_capture_line_names_the_file_and_line(tmp_path: Path) -> None:
    cap = tmp_path / "bad.jsonl"
    cap.write_text('{"recv_ns": 1, "venue": "okx", "src": "ws", "raw": "pong"}\nnot json\n')
    report = ReadReport()
    summary = replay([cap], report=report)
    assert summary["records"] == 1 and summary["bad_lines"] == 1
    assert report.problems[0].startswith(f"{cap}:2: not a capture record")


def test_unknown_venue_records_are_skipped_and_counted(tmp_path: Path) -> None:
    cap = write_capture(tmp_path / "x.jsonl", [(T0, "nosuchvenue", "ws", "{}", None)])
    assert replay([cap])["skipped"] == 1


def test_cli_replay_writes_the_documented_fields(tmp_path: Path) -> None:
    cap = pepe_capture(tmp_path / "pepe.jsonl")
    out = tmp_path / "opps.jsonl"
    result = CliRunner().invoke(app, ["replay", str(cap), "--opportunities-out", str(out), "--min-edge-bps", "1",
                                      "--json"], env={"PERPARB_HOME": str(tmp_path)})
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["records"] == 5 and summary["events_written"] == len(out.read_text().splitlines()) >= 2
    opened = read_events(out)[0]
    for key in ("event", "id", "kind", "asset", "ts_ns", "buy_venue", "sell_venue", "size_base", "notional_quote",
                "edge_bps"):
        assert key in opened


def test_funding_events_carry_the_funding_fields(tmp_path: Path) -> None:
    # Binance BTCUSDT (8 h) against Bybit BTCUSDT at 1 h, with deep books from bookTicker/orderbook.1.
    t_ms = T0 // MS
    mark = {"e": "markPriceUpdate", "E": t_ms, "s": "BTCUSDT", "p": "100", "i": "100", "r": "0.0000",
            "T": t_ms + 3_600_000}
    bybit_tickers = {"topic": "tickers.BTCUSDT", "type": "snapshot", "ts": t_ms, "data": {
        "symbol": "BTCUSDT", "fundingRate": "0.0005", "nextFundingTime": str(t_ms + 1_800_000),
        "fundingIntervalHour": "1", "markPrice": "100", "indexPrice": "100"}}
    bybit_top = {"topic": "orderbook.1.BTCUSDT", "type": "snapshot", "ts": t_ms, "data": {
        "s": "BTCUSDT", "b": [["99.99", "1000"]], "a": [["100.01", "1000"]], "u": 1, "seq": 1}}
    cap = write_capture(tmp_path / "f.jsonl", [
        (T0, "binance", "ws", binance_like_ticker("BTCUSDT", t_ms), None),
        (T0 + 1, "binance", "ws", json.dumps({"stream": "btcusdt@markPrice@1s", "data": mark}), None),
        (T0 + 2, "bybit", "ws", json.dumps(bybit_top), None),
        (T0 + 3, "bybit", "ws", json.dumps(bybit_tickers), None),
    ])
    out = tmp_path / "opps.jsonl"
    with out.open("wb") as fh:
        replay([cap], Scanner(ScanSettings(taker_fees={"binance": 0.0001, "bybit": 0.0001})), opportunities_out=fh)
    [opened] = [e for e in read_events(out) if e["kind"] == "funding"]
    assert (opened["long_venue"], opened["short_venue"]) == ("binance", "bybit")
    assert opened["apr"] == pytest.approx((0.0005 / 1 - 0.0) * 24 * 365)
    # 24 settlements of bybit (0.5 h, 1.5 h, ...) at 0.0005 on 10,000 USDT notional; fees and crossing:
    # cost 100 x 100.01, proceeds 100 x 99.99 -> crossing 2, fees 2; entry and exit.
    assert opened["net_carry_quote"] == pytest.approx(10_000 * 0.0005 * 24 - 2 * (2 + 2))
    assert opened["horizon_h"] == 24.0
    for key in ("long_venue", "short_venue", "apr", "net_carry_quote", "horizon_h"):
        assert key in opened


def binance_like_ticker(symbol: str, t_ms: int) -> str:
    return json.dumps({"stream": f"{symbol.lower()}@bookTicker", "data": {
        "e": "bookTicker", "u": 1, "s": symbol, "b": "99.99", "B": "1000", "a": "100.01", "A": "1000",
        "T": t_ms, "E": t_ms}})


async def test_a_recorded_session_replays_cleanly(tmp_path: Path) -> None:
    from perparb.app import demo
    from perparb.config import load_settings

    settings = load_settings(None, {"venues": ["binance", "okx", "bybit"], "assets": "BTC,ETH",
                                    "storage.capture": "true", "storage.dir": str(tmp_path)}, env={})
    live = await demo(settings, 3.0, seed=3, view=False)
    [cap] = list(tmp_path.glob("capture-*.jsonl.zst"))
    out = tmp_path / "opps.jsonl"
    with out.open("wb") as fh:
        summary = replay([cap], opportunities_out=fh)
    assert summary["decode_errors"] == 0 and summary["unknown_symbols"] == 0 and summary["skipped"] == 0
    # Every message the live engine counted is in the capture, plus the REST responses.
    assert summary["records"] >= live["messages"] > 100
    assert set(summary["venues"]) == {"binance", "okx", "bybit"}
