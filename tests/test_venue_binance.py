"""Binance USDⓈ-M adapter against real recorded messages.

Every expected value is computed here from the raw JSON (json module) and the exchangeInfo
response, never taken from the adapter's own output.
"""

from __future__ import annotations

import json
import re

import msgspec
import pytest

from conftest import check_events as _check
from conftest import fixture_files, fixture_lines
from perparb.instruments.registry import Registry
from perparb.model import BookDelta, BookSnapshot, Funding, Instrument, Quote, Trade
from perparb.venues import venue_class
from perparb.venues.base import DecodeError
from perparb.venues.binance import Binance

INFO_PATH = "/fapi/v1/exchangeInfo"
FUNDING_INFO_PATH = "/fapi/v1/fundingInfo"
EXCHANGE_INFO = "cryptofeed_2021-07-22_rest_fapi_v1_exchangeInfo_full.jsonl"
EXCHANGE_INFO_2022 = "nautilus_rest_fapi_v1_exchangeInfo_2022-02-19_excerpt.jsonl"
REST_DEPTH = "cryptofeed_2021-07-22_rest_fapi_v1_depth_limit1000.jsonl"
REST_DEPTH_SYMBOLS = ("SUSHIUSDT", "AKROUSDT", "KEEPUSDT", "CTKUSDT")  # line order, per SOURCE.md
DOC_REST = "DOCEXAMPLE_nautilus_rest_fapi_depth_premiumIndex_bookTicker_fundingRate.jsonl"
DOC_REST_PATHS = (  # line order of DOC_REST
    "/fapi/v1/depth?symbol=BTCUSDT&limit=1000",
    "/fapi/v1/premiumIndex?symbol=BTCUSDT",
    "/fapi/v1/ticker/bookTicker?symbol=BTCUSDT",
    "/fapi/v1/fundingRate?symbol=BTCUSDT",
)
MS = 1_000_000
RECV = 123
REL = 1e-12


def _raw_info(name: str = EXCHANGE_INFO) -> dict:
    [line] = fixture_lines("binance", name)
    return json.loads(line)


# venue symbol → raw exchangeInfo entry, perpetuals only
PERPS = {s["symbol"]: s for s in _raw_info()["symbols"] if s["contractType"] == "PERPETUAL"}


def _binance() -> Binance:
    v = Binance(Registry())
    [line] = fixture_lines("binance", EXCHANGE_INFO)
    v.registry.add_many(v.parse_metadata(INFO_PATH, line))
    return v


@pytest.fixture
def binance() -> Binance:
    return _binance()


def _canonical(base: str, quote: str, settle: str) -> tuple[str, float]:
    """(canonical symbol, price scale) of a venue base name: 1000PEPE is PEPE scaled 1000, 1INCH is 1INCH."""
    m = re.fullmatch(r"(10+)([A-Z][A-Z0-9]*)", base)
    if m:
        return f"{m.group(2)}/{quote}:{settle}", float(m.group(1))
    return f"{base}/{quote}:{settle}", 1.0


def _units(venue_symbol: str) -> tuple[str, float]:
    """(canonical symbol, price scale), from exchangeInfo or, failing that, the symbol's spelling."""
    if venue_symbol in PERPS:
        s = PERPS[venue_symbol]
        return _canonical(s["baseAsset"], s["quoteAsset"], s["marginAsset"])
    quote = next(q for q in ("USDT", "USDC") if venue_symbol.endswith(q))
    return _canonical(venue_symbol[: -len(quote)], quote, quote)


def _levels(rows: list[list[str]], scale: float) -> list[tuple[float, float]]:
    return [(float(p) / scale, float(q) * scale) for p, q in rows]


def _expected(msg: object) -> list[tuple[type, dict]]:
    """Events (type, fields) one recorded websocket message should normalize to."""
    stream = ""
    if isinstance(msg, dict) and "stream" in msg:
        stream, msg = msg["stream"], msg["data"]
    items = msg if isinstance(msg, list) else [msg]
    out: list[tuple[type, dict]] = []
    for d in items:
        kind = d.get("e") if isinstance(d, dict) else None
        if kind not in ("bookTicker", "depthUpdate", "markPriceUpdate", "aggTrade", "trade"):
            continue  # acks, 24hrTicker, forceOrder
        symbol, scale = _units(d["s"])
        common = {"venue": "binance", "venue_symbol": d["s"], "symbol": symbol, "recv_ns": RECV}
        if kind == "bookTicker":
            out.append((Quote, {**common, "bid_px": float(d["b"]) / scale, "bid_qty": float(d["B"]) * scale,
                                "ask_px": float(d["a"]) / scale, "ask_qty": float(d["A"]) * scale,
                                "ts_exchange_ns": d["E"] * MS}))
        elif kind == "depthUpdate":
            book = {**common, "bids": _levels(d["b"], scale), "asks": _levels(d["a"], scale),
                    "ts_exchange_ns": d["E"] * MS, "checksum": None}
            # Partial depth (<sym>@depth5/10/20[@100ms]) carries the whole top N every time.
            if re.fullmatch(r"[a-z0-9]+@depth\d+(@\d+ms)?", stream):
                out.append((BookSnapshot, {**book, "seq": d["u"]}))
            else:
                out.append((BookDelta, {**book, "first_seq": d["U"], "seq": d["u"], "prev_seq": d.get("pu")}))
        elif kind == "markPriceUpdate":
            if not d.get("r"):
                continue  # no funding rate (delivery contracts): no Funding event
            out.append((Funding, {**common, "rate": float(d["r"]), "predicted_rate": None, "interval_h": 8.0,
                                  "next_funding_ns": d["T"] * MS, "mark_px": float(d["p"]) / scale,
                                  "index_px": float(d["i"]) / scale if "i" in d else None,
                                  "ts_exchange_ns": d["E"] * MS}))
        else:
            trade = {**common, "px": float(d["p"]) / scale, "qty": float(d["q"]) * scale,
                     "side": "sell" if d["m"] else "buy", "ts_exchange_ns": d["T"] * MS}
            tid = d.get("a" if kind == "aggTrade" else "t")
            if tid is not None:  # one 2019 aggTrade (tardis sample) carries no "a"
                trade["trade_id"] = str(tid)
            out.append((Trade, trade))
    return out




MESSAGE_FILES = [p for p in fixture_files("binance") if "_rest_" not in p.name]


def test_fixture_set_is_what_this_test_expects() -> None:
    names = {p.name for p in fixture_files("binance")}
    assert {EXCHANGE_INFO, EXCHANGE_INFO_2022, REST_DEPTH, DOC_REST} <= names
    newer = {"alphadogs-coinbase-python_2025-12_rest_fapi_v1_exchangeInfo_full.jsonl",
             "baouih-binance_2025-03_rest_fapi_v1_exchangeInfo_full.jsonl"}  # newer metadata
    assert newer <= names and len(MESSAGE_FILES) == len(names) - 4 - len(newer)


@pytest.mark.parametrize("path", MESSAGE_FILES, ids=lambda p: p.name)
def test_every_recorded_message(binance: Binance, path) -> None:
    lines = fixture_lines("binance", path.name)
    assert lines
    for n, line in enumerate(lines, 1):
        _check(binance.parse(line, recv_ns=RECV), _expected(json.loads(line)), f"{path.name}:{n}")
    assert binance.take_problems() == []


def test_recordings_cover_every_event_type(binance: Binance) -> None:
    seen: dict[type, int] = {}
    for path in MESSAGE_FILES:
        for line in fixture_lines("binance", path.name):
            for ev in binance.parse(line, 0):
                seen[type(ev)] = seen.get(type(ev), 0) + 1
    assert set(seen) == {Quote, BookSnapshot, BookDelta, Funding, Trade}
    # The cryptofeed session alone: 613 bookTicker, 764 depthUpdate, 91 aggTrade (SOURCE.md).
    assert seen[Quote] >= 613 and seen[BookDelta] >= 764 and seen[Trade] >= 91


def test_hand_checked_values(binance: Binance) -> None:
    lines = fixture_lines("binance", "crypto-msg-parser-tests_binance-usdm-futures_2021-2022_samples.jsonl")
    [agg] = binance.parse(lines[0], 0)
    assert (agg.px, agg.qty, agg.side, agg.trade_id) == (58665.0, 0.043, "buy", "389551486")
    btc, eth = binance.parse(lines[2], 0)  # !markPrice@arr
    assert (btc.venue_symbol, btc.rate, btc.interval_h) == ("BTCUSDT", 0.00058959, 8.0)
    assert (eth.symbol, eth.mark_px, eth.index_px) == ("ETH/USDT:USDT", 1981.15704420, 1978.08197502)
    assert eth.next_funding_ns == 1_617_321_600_000 * MS
    [top20] = binance.parse(lines[4], 0)
    assert type(top20) is BookSnapshot and top20.seq == 1437010882721
    assert top20.bids[0] == (2886.71, 0.454) and top20.asks[-1] == (2886.74, 0.181)
    [delta] = binance.parse(lines[3], 0)
    assert (delta.first_seq, delta.seq, delta.prev_seq) == (475776377463, 475776380184, 475776377452)
    tardis = fixture_lines("binance", "tardis-node-tests_binance-futures_2019-2021_samples.jsonl")
    [liq_side] = binance.parse(tardis[6], 0)  # "m":true, insurance-fund trade
    assert (liq_side.side, liq_side.trade_id, liq_side.ts_exchange_ns) == ("sell", "73701056", 1596034530235 * MS)
    [old] = binance.parse(tardis[2], 0)  # 2019 markPriceUpdate: no index price
    assert old.index_px is None and old.rate == 0.0001


def test_acks_tickers_and_liquidations_give_nothing(binance: Binance) -> None:
    assert binance.parse(b'{"result":null,"id":1}', 0) == []
    assert binance.parse('{"result":["btcusdt@bookTicker"],"id":3}', 0) == []
    tardis = fixture_lines("binance", "tardis-node-tests_binance-futures_2019-2021_samples.jsonl")
    kinds = [json.loads(line)["data"]["e"] for line in tardis]
    quiet = [line for line, kind in zip(tardis, kinds, strict=True) if kind in ("24hrTicker", "forceOrder")]
    assert len(quiet) == 3
    assert all(binance.parse(line, 0) == [] for line in quiet)
    assert binance.take_problems() == []


# -- REST ----------------------------------------------------------------------------------
def test_rest_depth_snapshots(binance: Binance) -> None:
    lines = fixture_lines("binance", REST_DEPTH)
    assert len(lines) == len(REST_DEPTH_SYMBOLS)
    for sym, line in zip(REST_DEPTH_SYMBOLS, lines, strict=True):
        raw = json.loads(line)
        [snap] = binance.parse_rest(f"/fapi/v1/depth?symbol={sym}&limit=1000", line, RECV)
        symbol, scale = _units(sym)
        _check([snap], [(BookSnapshot, {
            "venue": "binance", "venue_symbol": sym, "symbol": symbol, "seq": raw["lastUpdateId"],
            "bids": _levels(raw["bids"], scale), "asks": _levels(raw["asks"], scale),
            "ts_exchange_ns": raw["E"] * MS, "recv_ns": RECV, "checksum": None})], sym)
    assert binance.take_problems() == []


def test_doc_rest_examples(binance: Binance) -> None:
    lines = fixture_lines("binance", DOC_REST)
    assert len(lines) == len(DOC_REST_PATHS)
    raw = json.loads(lines[0])
    [snap] = binance.parse_rest(DOC_REST_PATHS[0], lines[0], 7)
    assert (snap.seq, snap.bids, snap.asks) == (raw["lastUpdateId"], [(4.0, 431.0)], [(4.000002, 12.0)])
    assert snap.ts_exchange_ns == raw["E"] * MS
    for path, line in zip(DOC_REST_PATHS, lines, strict=True):
        assert binance.parse_metadata(path, line) == []
    for path, line in zip(DOC_REST_PATHS[1:], lines[1:], strict=True):
        assert binance.parse_rest(path, line, 0) == []  # premiumIndex etc. are not books


def test_rest_depth_path_matters(binance: Binance) -> None:
    line = fixture_lines("binance", REST_DEPTH)[0]
    assert binance.parse_rest("/fapi/v1/ticker/bookTicker?symbol=SUSHIUSDT", line, 0) == []
    assert binance.book_snapshot_path(binance.table["SUSHIUSDT"]) == "/fapi/v1/depth?symbol=SUSHIUSDT&limit=1000"


# -- scaled symbols (1000PEPE) -----------------------------------------------------------------
def test_1000pepe_normalizes_to_pepe_units(binance: Binance) -> None:
    assert "1000PEPEUSDT" not in PERPS  # 2021 exchangeInfo: the symbol is derived from its name
    ticker = {"e": "bookTicker", "u": 1, "s": "1000PEPEUSDT", "b": "0.0123450", "B": "1500", "a": "0.0123470",
              "A": "2500", "T": 1_700_000_000_000, "E": 1_700_000_000_005}
    [q] = binance.parse(json.dumps({"stream": "1000pepeusdt@bookTicker", "data": ticker}), 1)
    assert (q.symbol, q.venue_symbol) == ("PEPE/USDT:USDT", "1000PEPEUSDT")
    assert q.bid_px == pytest.approx(0.0000123450, rel=REL) and q.ask_px == pytest.approx(0.0000123470, rel=REL)
    assert (q.bid_qty, q.ask_qty) == (1_500_000.0, 2_500_000.0)
    assert q.ts_exchange_ns == 1_700_000_000_005 * MS

    depth = {"e": "depthUpdate", "E": 1_700_000_000_100, "T": 1_700_000_000_099, "s": "1000PEPEUSDT", "U": 10,
             "u": 12, "pu": 9, "b": [["0.0123450", "2"], ["0.0123440", "0"]], "a": [["0.0123470", "0.5"]]}
    [d] = binance.parse(json.dumps({"stream": "1000pepeusdt@depth@100ms", "data": depth}), 1)
    assert type(d) is BookDelta and d.symbol == "PEPE/USDT:USDT"
    assert (d.first_seq, d.seq, d.prev_seq) == (10, 12, 9)
    assert d.bids == [pytest.approx((0.000012345, 2000.0), rel=REL), pytest.approx((0.000012344, 0.0), rel=REL)]
    assert d.asks == [pytest.approx((0.000012347, 500.0), rel=REL)]
    inst = binance.table["1000PEPEUSDT"]
    assert (inst.asset, inst.price_scale, inst.status) == ("PEPE", 1000.0, "derived")
    assert binance.take_problems() == []


def test_1000shib_from_exchange_info(binance: Binance) -> None:
    raw = PERPS["1000SHIBUSDT"]
    assert raw["baseAsset"] == "1000SHIB"
    inst = binance.table["1000SHIBUSDT"]
    assert (inst.symbol, inst.asset, inst.price_scale) == ("SHIB/USDT:USDT", "SHIB", 1000.0)
    one_inch = binance.table["1INCHUSDT"]
    assert (one_inch.asset, one_inch.price_scale) == ("1INCH", 1.0)


# -- funding interval -----------------------------------------------------------------------
MARK_BTC = fixture_lines("binance", "crypto-msg-parser-tests_binance-usdm-futures_2021-2022_samples.jsonl")[2]


def test_funding_info_changes_the_interval(binance: Binance) -> None:
    assert [f.interval_h for f in binance.parse(MARK_BTC, 0)] == [8.0, 8.0]
    specs = binance.parse_metadata(FUNDING_INFO_PATH, b'[{"symbol":"BTCUSDT","fundingIntervalHours":4}]')
    assert [(i.venue_symbol, i.funding_interval_h) for i in specs] == [("BTCUSDT", 4.0)]
    binance.registry.add_many(specs)
    btc, eth = binance.parse(MARK_BTC, 0)
    assert (btc.venue_symbol, btc.interval_h) == ("BTCUSDT", 4.0)
    assert (eth.venue_symbol, eth.interval_h) == ("ETHUSDT", 8.0)
    # A later exchangeInfo refresh keeps the interval fundingInfo gave.
    [line] = fixture_lines("binance", EXCHANGE_INFO)
    binance.registry.add_many(binance.parse_metadata(INFO_PATH, line))
    assert binance.table["BTCUSDT"].funding_interval_h == 4.0
    # Symbols fundingInfo names that we do not know are skipped; a known symbol it no
    # longer names is back to the default 8 h.
    specs = binance.parse_metadata(FUNDING_INFO_PATH, b'[{"symbol":"NOPEUSDT","fundingIntervalHours":1}]')
    assert [(i.venue_symbol, i.funding_interval_h) for i in specs] == [("BTCUSDT", 8.0)]


def test_funding_info_symbol_dropped_from_the_list_goes_back_to_8h(binance: Binance) -> None:
    binance.registry.add_many(
        binance.parse_metadata(FUNDING_INFO_PATH, b'[{"symbol":"BTCUSDT","fundingIntervalHours":4}]'))
    binance.registry.add_many(
        binance.parse_metadata(FUNDING_INFO_PATH, b'[{"symbol":"ETHUSDT","fundingIntervalHours":4}]'))
    btc, eth = binance.parse(MARK_BTC, 0)
    assert (btc.interval_h, eth.interval_h) == (8.0, 4.0)


# -- metadata ------------------------------------------------------------------------------
def _filters(raw: dict) -> dict[str, dict]:
    return {f["filterType"]: f for f in raw["filters"]}


@pytest.mark.parametrize("name", [EXCHANGE_INFO, EXCHANGE_INFO_2022])
def test_metadata_fields(name: str) -> None:
    v = Binance(Registry())
    [line] = fixture_lines("binance", name)
    specs = {i.venue_symbol: i for i in v.parse_metadata(INFO_PATH, line)}
    raw = {s["symbol"]: s for s in json.loads(line)["symbols"]}
    perps = {s for s, r in raw.items() if r["contractType"] == "PERPETUAL"}
    assert set(specs) == perps and len(perps) < len(raw)  # quarterlies (and BTCST's "") left out

    btc, f = specs["BTCUSDT"], _filters(raw["BTCUSDT"])
    assert (btc.venue, btc.symbol, btc.asset, btc.quote, btc.settle) == (
        "binance", "BTC/USDT:USDT", "BTC", "USDT", "USDT")
    assert btc.tick_size == float(f["PRICE_FILTER"]["tickSize"])
    assert btc.lot_size == float(f["LOT_SIZE"]["stepSize"])
    assert btc.min_qty == float(f["LOT_SIZE"]["minQty"])
    assert btc.min_notional == float(f["MIN_NOTIONAL"]["notional"])
    assert raw["BTCUSDT"]["status"] == "TRADING" and btc.status == "active"
    assert (btc.inverse, btc.contract_size, btc.price_scale, btc.funding_interval_h) == (False, 1.0, 1.0, 8.0)
    assert (btc.taker_fee, btc.maker_fee, btc.source) == (Binance.taker_fee, Binance.maker_fee, "binance")

    for sym, inst in specs.items():
        f = _filters(raw[sym])
        assert inst.status == ("active" if raw[sym]["status"] == "TRADING" else "inactive"), sym
        assert (inst.tick_size, inst.lot_size, inst.min_qty) == (
            float(f["PRICE_FILTER"]["tickSize"]), float(f["LOT_SIZE"]["stepSize"]), float(f["LOT_SIZE"]["minQty"])), sym
        r = raw[sym]
        assert (inst.symbol, inst.price_scale) == _canonical(r["baseAsset"], r["quoteAsset"], r["marginAsset"]), sym


def test_metadata_statuses_in_2021_response(binance: Binance) -> None:
    statuses = {s: PERPS[s]["status"] for s in PERPS}
    assert {binance.table[s].status for s in PERPS} == {"active"}
    assert set(statuses.values()) == {"TRADING"}
    # The one PENDING_TRADING symbol of this response has contractType "" and is not a perpetual.
    pending = [s for s in _raw_info()["symbols"] if s["status"] != "TRADING"]
    assert [(s["symbol"], s["contractType"]) for s in pending] == [("BTCSTUSDT", "")]
    assert "BTCSTUSDT" not in binance.table
    halted = dict(PERPS["BTCUSDT"], status="SETTLING")
    [inst] = Binance(Registry()).parse_metadata(INFO_PATH, json.dumps({"symbols": [halted]}))
    assert inst.status == "inactive"


def test_metadata_ignores_other_paths(binance: Binance) -> None:
    [line] = fixture_lines("binance", EXCHANGE_INFO)
    assert binance.parse_metadata("/fapi/v1/depth?symbol=BTCUSDT&limit=1000", line) == []


def test_metadata_body_under_the_wrong_path_is_a_decode_error(binance: Binance) -> None:
    # `perparb decode --metadata FILE` tries the file under every metadata path and skips DecodeErrors.
    [line] = fixture_lines("binance", EXCHANGE_INFO)
    with pytest.raises(DecodeError, match="binance"):
        binance.parse_metadata(FUNDING_INFO_PATH, line)
    with pytest.raises(DecodeError, match="binance"):
        binance.parse_metadata(INFO_PATH, b'[{"symbol":"BTCUSDT","fundingIntervalHours":4}]')


# -- malformed input -------------------------------------------------------------------------
DEPTH_LINE = fixture_lines("binance", "cryptofeed_2021-07-22_fstream_depthUpdate.jsonl")[0]


@pytest.mark.parametrize("raw", [
    DEPTH_LINE[:-40],  # truncated
    fixture_lines("binance", "cryptofeed_2021-07-22_fstream_bookTicker.jsonl")[0][:-25],
    b'{"e":"bookTicker","s":"BTCUSDT","b":"x","B":"1","a":"2","A":"1","E":1}',
    b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","s":"BTCUSDT","U":1,"u":2,"b":"x","a":[]}}',
    b'{"e":"aggTrade","s":"BTCUSDT","p":"abc","q":"1","T":1,"m":true}',
    b'{"e":"markPriceUpdate","E":1,"p":"1","r":"0.0001","T":2}',  # no symbol
    b'{"stream":"!markPrice@arr","data":[{"e":"markPriceUpdate","s":"BTCUSDT","p":null}]}',
])
def test_malformed_raises_decode_error(binance: Binance, raw: bytes) -> None:
    with pytest.raises(DecodeError, match="binance"):
        binance.parse(raw, 0)


def test_malformed_rest_depth_raises_decode_error(binance: Binance) -> None:
    line = fixture_lines("binance", REST_DEPTH)[0]
    with pytest.raises(DecodeError, match="binance"):
        binance.parse_rest("/fapi/v1/depth?symbol=SUSHIUSDT&limit=1000", line[:-30], 0)
    with pytest.raises(DecodeError, match="binance"):
        binance.parse_rest("/fapi/v1/depth?symbol=SUSHIUSDT&limit=1000", b'{"code":-1121,"msg":"Invalid symbol."}', 0)


def test_non_numeric_funding_rate_raises_decode_error(binance: Binance) -> None:
    with pytest.raises(DecodeError, match="binance"):
        binance.parse(b'{"e":"markPriceUpdate","E":1,"s":"BTCUSDT","p":"1","r":"abc","T":2}', 0)


@pytest.mark.parametrize("raw", [b"<html>bad gateway</html>", b'{"result":null,', b""])
def test_non_json_raises_decode_error(binance: Binance, raw: bytes) -> None:
    with pytest.raises(DecodeError, match="binance"):
        binance.parse(raw, 0)


def test_malformed_metadata_raises_decode_error(binance: Binance) -> None:
    [line] = fixture_lines("binance", EXCHANGE_INFO)
    with pytest.raises(DecodeError, match="binance"):
        binance.parse_metadata(INFO_PATH, line[:-100])
    with pytest.raises(DecodeError, match="binance"):
        binance.parse_metadata(FUNDING_INFO_PATH, b'{"code":-1003,"msg":"Too many requests"}')


# -- simulator -------------------------------------------------------------------------------
@pytest.mark.parametrize("sym", ["BTCUSDT", "1000SHIBUSDT"])
def test_sim_encoders_round_trip(binance: Binance, sym: str) -> None:
    inst: Instrument = binance.table[sym]
    scale = inst.price_scale
    [q] = binance.parse(binance.sim_quote(inst, (101.5, 12.0), (101.75, 3.0), 77, 1_700_000_000_123), 9)
    assert type(q) is Quote and (q.venue_symbol, q.recv_ns) == (sym, 9)
    assert (q.bid_px, q.bid_qty, q.ask_px, q.ask_qty) == pytest.approx(
        (101.5 / scale, 12.0 * scale, 101.75 / scale, 3.0 * scale), rel=REL)
    assert q.ts_exchange_ns == 1_700_000_000_123 * MS

    bids, asks = [(101.5, 12.0), (101.25, 0.5)], [(101.75, 3.0), (102.0, 0.0)]
    [d] = binance.parse(binance.sim_book(inst, False, bids, asks, 530, 500, 501, 1_700_000_000_100), 0)
    assert type(d) is BookDelta and (d.first_seq, d.seq, d.prev_seq) == (501, 530, 500)
    assert d.bids == [pytest.approx((p / scale, s * scale), rel=REL) for p, s in bids]
    assert d.asks == [pytest.approx((p / scale, s * scale), rel=REL) for p, s in asks]
    assert d.ts_exchange_ns == 1_700_000_000_100 * MS

    path = binance.book_snapshot_path(inst)
    assert binance.sim_rest_book(path) == sym
    assert binance.sim_rest_book("/fapi/v1/exchangeInfo") is None
    body = binance.sim_rest_book_body(inst, bids, asks[:1], 499, 1_700_000_000_050)
    [snap] = binance.parse_rest(path, body, 5)
    assert type(snap) is BookSnapshot and (snap.seq, snap.recv_ns) == (499, 5)
    assert snap.bids == [pytest.approx((p / scale, s * scale), rel=REL) for p, s in bids]
    assert snap.asks == [pytest.approx((101.75 / scale, 3.0 * scale), rel=REL)]
    assert snap.ts_exchange_ns == 1_700_000_000_050 * MS

    [f] = binance.parse(binance.sim_funding(inst, 0.000125, 1_700_006_400_000, 101.6, 101.55,
                                            1_700_000_000_000), 0)
    assert (f.rate, f.predicted_rate, f.interval_h) == (0.000125, None, 8.0)
    assert (f.mark_px, f.index_px) == pytest.approx((101.6 / scale, 101.55 / scale), rel=REL)
    assert (f.next_funding_ns, f.ts_exchange_ns) == (1_700_006_400_000 * MS, 1_700_000_000_000 * MS)


def test_sim_metadata_round_trip(binance: Binance) -> None:
    originals = sorted(binance.table.values(), key=lambda i: i.venue_symbol)
    originals[0] = msgspec.structs.replace(originals[0], funding_interval_h=4.0)
    originals[1] = msgspec.structs.replace(originals[1], tick_size=1e-7, lot_size=0.1, min_qty=0.2,
                                           min_notional=100.0)
    bodies = binance.sim_metadata(originals)
    assert set(bodies) == set(Binance.metadata_paths)
    assert json.loads(bodies[FUNDING_INFO_PATH]) == [
        {"symbol": originals[0].venue_symbol, "fundingIntervalHours": 4}]
    back = Binance(Registry())
    for path in Binance.metadata_paths:  # exchangeInfo first, then fundingInfo
        back.registry.add_many(back.parse_metadata(path, bodies[path]))
    assert sorted(back.table.values(), key=lambda i: i.venue_symbol) == originals


def test_sim_handle(binance: Binance) -> None:
    streams = ["btcusdt@bookTicker", "btcusdt@depth@100ms", "ethusdt@markPrice@1s", "ethusdt@aggTrade",
               "ethusdt@kline_1m"]
    replies, topics = binance.sim_handle(json.dumps({"method": "SUBSCRIBE", "params": streams, "id": 7}))
    assert [json.loads(r) for r in replies] == [{"result": None, "id": 7}]
    assert topics == [("quote", "BTCUSDT"), ("book", "BTCUSDT"), ("funding", "ETHUSDT"), ("trade", "ETHUSDT")]
    assert all(binance.parse(r, 0) == [] for r in replies)
    assert binance.sim_handle(json.dumps({"method": "UNSUBSCRIBE", "params": streams, "id": 8})) == ([], [])
    assert binance.sim_handle("not json") == ([], [])


def test_connections(binance: Binance) -> None:
    insts = sorted(binance.table.values(), key=lambda i: i.venue_symbol)
    public, market = binance.connections(insts)
    assert (public.path, market.path) == ("/public/stream", "/market/stream")
    assert public.instruments == insts and market.instruments == insts
    pub = [json.loads(m) for m in public.subscribe]
    mkt = [json.loads(m) for m in market.subscribe]
    assert all(m["method"] == "SUBSCRIBE" and len(m["params"]) <= 200 for m in pub + mkt)
    assert [m["id"] for m in pub] == list(range(1, len(pub) + 1))
    lower = [i.venue_symbol.lower() for i in insts]
    assert [s for m in pub for s in m["params"]] == [x for s in lower for x in (f"{s}@bookTicker", f"{s}@depth@100ms")]
    assert [s for m in mkt for s in m["params"]] == [f"{s}@markPrice@1s" for s in lower]
    no_books, _ = binance.connections(insts, books=False)
    assert all("@depth" not in s for m in no_books.subscribe for s in json.loads(m)["params"])
    # Every stream we subscribe is one the simulator (and the parser) understands.
    _, topics = binance.sim_handle(public.subscribe[0])
    assert {k for k, _ in topics} == {"quote", "book"}


def test_card() -> None:
    assert venue_class("binance") is Binance
    assert (Binance.id, Binance.ws_url, Binance.rest_url, Binance.book_sync) == (
        "binance", "wss://fstream.binance.com", "https://fapi.binance.com", "rest_bridged")
    assert (Binance.heartbeat_text, Binance.taker_fee, Binance.maker_fee) == (None, 0.0005, 0.0002)
    assert Binance.metadata_paths == (INFO_PATH, FUNDING_INFO_PATH)
