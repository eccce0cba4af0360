"""Bitget v2 USDT-FUTURES adapter against real recorded messages.

Expected values are computed here from the raw JSON (json module) and the recorded contracts
response, never taken from the adapter. USDT-FUTURES sizes are base-coin units (no
multiplier field exists), so a size is its own quantity; a scaled ticker divides prices and
multiplies sizes by its multiple.
"""

from __future__ import annotations

import json
import re
import zlib
from decimal import Decimal

import msgspec
import pytest

from conftest import check_events as _check
from conftest import fixture_files, fixture_lines
from perparb.feeds.booksync import SYNCED, SyncedBook
from perparb.instruments.registry import Registry
from perparb.model import BookDelta, BookSnapshot, Funding, Instrument, Quote, Trade
from perparb.venues import venue_class
from perparb.venues.base import DecodeError
from perparb.venues.bitget import Bitget

V1_PATH = "/api/mix/v1/market/contracts?productType=umcbl"
V2_PATH = "/api/v2/mix/market/contracts?productType=USDT-FUTURES"
V1_CONTRACTS = "LEGACY_v1_mix_cryptofeed_2022-04-07_rest_api_mix_v1_market_contracts_umcbl_full.jsonl"
BOOKS = {"DASHUSDT": "LEGACY_v1_mix_cryptofeed_2022-04-07_ws_books_DASHUSDT.jsonl",
         "UNIUSDT": "LEGACY_v1_mix_cryptofeed_2022-04-07_ws_books_UNIUSDT.jsonl"}
TARDIS_V2 = "tardis-node-tests_bitget-futures-v2_2024-10_2024-11_samples.jsonl"
TARDIS_V3 = "tardis-node-tests_bitget-futures-v3-UTA_2026-04_samples.jsonl"
DOC = "DOCEXAMPLE_JKorf-Bitget.Net_v2_USDT-FUTURES_books5_ticker.jsonl"
MS = 1_000_000
RECV = 123
REL = 1e-12


def _v1_raw() -> dict:
    [line] = fixture_lines("bitget", V1_CONTRACTS)
    return json.loads(line)


def _specs() -> dict[str, dict]:
    """Websocket symbol → facts read straight from the recorded v1 contracts response."""
    out = {}
    for c in _v1_raw()["data"]:
        ws = c["symbol"].removesuffix("_UMCBL")
        out[ws] = {"symbol": f"{c['baseCoin']}/{c['quoteCoin']}:{c['supportMarginCoins'][0]}", "scale": 1.0,
                   # v1 states no interval; 8 h was Bitget's schedule for every contract then.
                   "interval": float(c.get("fundInterval", 8))}
    return out


SPECS = _specs()


def _units(sym: str) -> dict | None:
    """Facts of a symbol: the recorded contracts, else its spelling (…USDT, base units), else None."""
    if sym in SPECS:
        return SPECS[sym]
    if not sym.endswith("USDT"):
        return None
    base = sym[:-4]
    m = re.fullmatch(r"(10+)([A-Z][A-Z0-9]*)", base)
    asset, scale = (m.group(2), float(m.group(1))) if m else (base, 1.0)
    return {"symbol": f"{asset}/USDT:USDT", "scale": scale, "interval": 8.0}


def _bitget() -> Bitget:
    v = Bitget(Registry())
    [line] = fixture_lines("bitget", V1_CONTRACTS)
    v.registry.add_many(v.parse_metadata(V1_PATH, line))
    return v


@pytest.fixture
def bitget() -> Bitget:
    return _bitget()


def _levels(rows: list[list[str]], scale: float) -> list[tuple[float, float]]:
    return [(float(r[0]) / scale, float(r[1]) * scale) for r in rows]


def _text(rows: list[list[str]]) -> list[tuple[str, str]]:
    return [(r[0], r[1]) for r in rows]


def _expected(msg: object) -> tuple[list[tuple[type, dict]], list[str]]:
    """(events as (type, fields), unknown symbols) one recorded message should give."""
    if not isinstance(msg, dict) or "event" in msg or "data" not in msg:
        return [], []
    arg = msg["arg"]
    channel = arg.get("channel")  # v3 (UTA) frames say "topic"
    if channel not in ("books", "books1", "books5", "books15", "ticker", "trade"):
        return [], []
    if arg["instType"] == "mc" and channel in ("ticker", "trade"):
        return [], []  # v1 shapes: capitalRate/nextSettleTime tickers, array trades
    sym = arg["instId"]
    units = _units(sym)
    if units is None:
        return [], [sym] if msg["data"] else []
    scale = units["scale"]
    common = {"venue": "bitget", "venue_symbol": sym, "symbol": units["symbol"], "recv_ns": RECV}
    out: list[tuple[type, dict]] = []
    for d in msg["data"]:
        ts = int(d.get("ts") or msg["ts"]) * MS
        if channel == "books1":
            if d["bids"] and d["asks"]:
                (bp, bq), (ap, aq) = _levels(d["bids"][:1], scale)[0], _levels(d["asks"][:1], scale)[0]
                out.append((Quote, {**common, "bid_px": bp, "bid_qty": bq, "ask_px": ap, "ask_qty": aq,
                                    "ts_exchange_ns": ts}))
        elif channel.startswith("books"):
            book = {**common, "bids": _levels(d["bids"], scale), "asks": _levels(d["asks"], scale),
                    "checksum": d.get("checksum") or None, "ts_exchange_ns": ts}
            full = channel == "books" and msg["action"] == "snapshot"
            book["raw_levels"] = (_text(d["bids"]), _text(d["asks"])) if full or d.get("checksum") else None
            if channel != "books" or msg["action"] == "snapshot":
                out.append((BookSnapshot, {**book, "seq": d.get("seq", 0)}))
            else:
                out.append((BookDelta, {**book, "first_seq": d.get("seq", 0), "seq": d.get("seq", 0),
                                        "prev_seq": d.get("pseq") or None}))
        elif channel == "ticker":
            out.append((Funding, {**common, "rate": float(d["fundingRate"]), "predicted_rate": None,
                                  "interval_h": units["interval"],
                                  "next_funding_ns": int(d["nextFundingTime"]) * MS,
                                  "mark_px": float(d["markPrice"]) / scale,
                                  "index_px": float(d["indexPrice"]) / scale, "ts_exchange_ns": ts}))
        else:
            px = float(d["price"]) / scale
            out.append((Trade, {**common, "px": px, "qty": float(d["size"]) * scale, "side": d["side"],
                                "trade_id": d["tradeId"], "ts_exchange_ns": ts}))
    return out, []






MESSAGE_FILES = [p for p in fixture_files("bitget") if "_rest_" not in p.name]


def test_fixture_set_is_what_this_test_expects() -> None:
    names = {p.name for p in fixture_files("bitget")}
    assert {V1_CONTRACTS, *BOOKS.values(), TARDIS_V2, TARDIS_V3, DOC} <= names
    newer = "kiwiiiii-eth-crypto-signal-bot_2026-07_rest_v2_mix_market_contracts_USDT-FUTURES_excerpt.jsonl"
    assert newer in names and len(MESSAGE_FILES) == len(names) - 2


@pytest.mark.parametrize("path", MESSAGE_FILES, ids=lambda p: p.name)
def test_every_recorded_message(bitget: Bitget, path) -> None:
    lines = fixture_lines("bitget", path.name)
    assert lines
    for n, line in enumerate(lines, 1):
        where = f"{path.name}:{n}"
        expected, unknown = _expected(json.loads(line))
        _check(bitget.parse(line, recv_ns=RECV), expected, where)
        problems = bitget.take_problems()
        assert len(problems) == len(unknown), (where, problems)
        for sym, text in zip(unknown, problems, strict=True):
            assert repr(sym) in text and "bitget" in text, where


def test_recordings_cover_every_event_type(bitget: Bitget) -> None:
    seen: dict[type, int] = {}
    for path in MESSAGE_FILES:
        for line in fixture_lines("bitget", path.name):
            for ev in bitget.parse(line, 0):
                seen[type(ev)] = seen.get(type(ev), 0) + 1
    # No USDT-FUTURES trade was recorded: the v2 one is COIN-FUTURES (unknown here), the v1 ones are
    # arrays (not decoded); see test_hand_checked_values for trade values.
    assert set(seen) == {Quote, BookSnapshot, BookDelta, Funding}
    # DASHUSDT 1 + 97, UNIUSDT 1 + 95 (SOURCE.md), plus the v2 samples.
    assert seen[BookDelta] >= 97 + 95


def test_hand_checked_values(bitget: Bitget) -> None:
    lines = fixture_lines("bitget", TARDIS_V2)
    # The one recorded v2 trade is a COIN-FUTURES contract; as a USDT-FUTURES one it reads:
    [trade] = bitget.parse(lines[2].replace(b'"COIN-FUTURES"', b'"USDT-FUTURES"').replace(b"DOGEUSD", b"LTCUSDT"), 0)
    assert (trade.px, trade.qty, trade.side, trade.trade_id) == (0.168385, 447.0, "buy", "1235671063871070209")
    [snap] = bitget.parse(lines[3], 0)  # BELUSDT: not in the 2022 contracts, derived from its name
    assert (snap.symbol, snap.bids, snap.asks, snap.seq) == ("BEL/USDT:USDT", [(0.542, 468.0), (0.5419, 1576.0)],
                                                            [(0.5426, 51.0)], 0)
    assert bitget.table["BELUSDT"].status == "derived"
    [delta] = bitget.parse(lines[4], 0)  # levels trimmed by tardis: the checksum is kept, not checkable
    assert (delta.checksum, delta.prev_seq, delta.raw_levels) == (-1258619028, None,
                                                                  ([("5.081", "536.2")], [("5.085", "144.6")]))
    [funding] = bitget.parse(lines[7], 0)
    assert (funding.venue_symbol, funding.rate, funding.interval_h) == ("STORJUSDT", 0.0001, 8.0)
    assert funding.next_funding_ns == 1_730_361_600_000 * MS and funding.ts_exchange_ns == 1_730_332_823_155 * MS
    assert bitget.parse(lines[8], 0) == []  # books1 with no bids: no quote
    [q] = bitget.parse(lines[5], 0)
    assert (q.symbol, q.bid_px, q.bid_qty, q.ask_px, q.ask_qty) == ("ADA/USDT:USDT", 0.3553, 112096.0, 0.3555, 10230.0)
    assert bitget.table["ADAUSDT"].status == "active"  # in the 2022 contracts


def test_funding_interval_comes_from_the_contract(bitget: Bitget) -> None:
    ticker = fixture_lines("bitget", DOC)[3]
    [f] = bitget.parse(ticker, 0)
    assert (f.venue_symbol, f.interval_h, f.rate) == ("BTCUSDT", 8.0, 0.00001)
    body = _v2_contracts([_contract("BTCUSDT", fundInterval="4")])
    bitget.registry.add_many(bitget.parse_metadata(V2_PATH, body))
    [g] = bitget.parse(ticker, 0)
    assert (g.interval_h, g.next_funding_ns, g.mark_px, g.index_px) == (4.0, 1_695_722_400_000 * MS, 27000.0, 25702.4)


def test_scaled_symbol_in_asset_units(bitget: Bitget) -> None:
    push = {"action": "snapshot", "arg": {"instType": "USDT-FUTURES", "channel": "books1", "instId": "1000PEPEUSDT"},
            "data": [{"asks": [["0.012347", "2500"]], "bids": [["0.012345", "1500"]], "checksum": 0, "seq": 9,
                      "ts": "1700000000005"}], "ts": 1700000000006}
    [q] = bitget.parse(json.dumps(push), 1)
    assert (q.symbol, q.venue_symbol) == ("PEPE/USDT:USDT", "1000PEPEUSDT")
    assert (q.bid_px, q.ask_px) == (pytest.approx(0.000012345, rel=REL), pytest.approx(0.000012347, rel=REL))
    assert (q.bid_qty, q.ask_qty) == (1_500_000.0, 2_500_000.0)
    inst = bitget.table["1000PEPEUSDT"]
    assert (inst.asset, inst.price_scale, inst.status) == ("PEPE", 1000.0, "derived")


def test_v3_and_v1_other_shapes_give_nothing(bitget: Bitget) -> None:
    for name in (TARDIS_V3, *(p.name for p in MESSAGE_FILES if "_ws_ticker_" in p.name or "_ws_trade_" in p.name)):
        assert all(bitget.parse(line, 0) == [] for line in fixture_lines("bitget", name)), name
    assert bitget.take_problems() == []


def test_acks_pong_and_errors(bitget: Bitget) -> None:
    assert bitget.parse("pong", 0) == []
    assert bitget.parse(b"pong\n", 0) == []
    assert bitget.parse(fixture_lines("bitget", DOC)[0], 0) == []
    assert bitget.take_problems() == []
    assert bitget.parse(b'{"event":"error","code":"30016","msg":"Param error"}', 0) == []
    [problem] = bitget.take_problems()
    assert "bitget" in problem and "30016" in problem and "Param error" in problem
    candle = b'{"action":"update","arg":{"instType":"USDT-FUTURES","channel":"candle1m","instId":"BTCUSDT"},"data":[]}'
    assert bitget.parse(candle, 0) == []


def test_json_with_spaces_is_still_read(bitget: Bitget) -> None:
    raw = json.loads(fixture_lines("bitget", DOC)[3])
    spaced = json.dumps(raw, indent=1)
    [f] = bitget.parse(spaced, 0)
    assert (f.venue_symbol, f.rate) == ("BTCUSDT", 0.00001)


BOOK_LINE = fixture_lines("bitget", BOOKS["UNIUSDT"])[2]


@pytest.mark.parametrize("raw", [
    BOOK_LINE[:-40],
    b"<html>bad gateway</html>",
    b'{"action":"update","arg":{"instType":"USDT-FUTURES","channel":"books","instId":"BTCUSDT"},"data":[{"asks":"x"}]}',
    b'{"action":"update","arg":{"instType":"USDT-FUTURES","channel":"trade","instId":"BTCUSDT"},'
    b'"data":[{"ts":"1","price":"abc","size":"1","side":"buy","tradeId":"1"}]}',
    b'{"action":"snapshot","arg":{"instType":"USDT-FUTURES","channel":"ticker","instId":"BTCUSDT"},'
    b'"data":[{"instId":"BTCUSDT","fundingRate":"abc","nextFundingTime":"1","ts":"1"}]}',
    b'{"event":',
])
def test_malformed_raises_decode_error(bitget: Bitget, raw: bytes) -> None:
    with pytest.raises(DecodeError, match="bitget"):
        bitget.parse(raw, 0)


# -- books: the recorded sessions through the shared state machine -------------------------------
def _crc(bids: list[tuple[str, str]], asks: list[tuple[str, str]]) -> int:
    """Bitget's checksum, written out: CRC32 of bid1:size:ask1:size:… over 25 levels, signed."""
    parts = [x for i in range(25) for side in (bids, asks) if i < len(side) for x in side[i]]
    crc = zlib.crc32(":".join(parts).encode())
    return crc - (1 << 32) if crc >= 1 << 31 else crc


class DictBook:
    def __init__(self) -> None:
        self.bids: dict[float, float] = {}
        self.asks: dict[float, float] = {}

    def apply(self, bids: list[list[str]], asks: list[list[str]], reset: bool = False) -> None:
        if reset:
            self.bids, self.asks = {}, {}
        for side, rows in ((self.bids, bids), (self.asks, asks)):
            for px, sz in rows:
                if float(sz) == 0:
                    side.pop(float(px), None)
                else:
                    side[float(px)] = float(sz)


def _replay(v: Bitget, lines: list[bytes]) -> SyncedBook:
    sb = SyncedBook(v.book_sync, v.book_checksum())
    for n, line in enumerate(lines):
        for ev in v.parse(line, 0):
            ok = sb.on_snapshot(ev) if type(ev) is BookSnapshot else sb.on_delta(ev)
            assert ok and sb.state == SYNCED, n
    return sb


@pytest.mark.parametrize("sym", sorted(BOOKS))
def test_legacy_v1_books_replay_with_every_checksum(bitget: Bitget, sym: str) -> None:
    lines = fixture_lines("bitget", BOOKS[sym])
    pushes = [json.loads(line) for line in lines if b'"data"' in line]
    assert [m["action"] for m in pushes] == ["snapshot"] + ["update"] * (len(pushes) - 1)
    assert all(m["data"][0]["checksum"] != 0 for m in pushes)
    sb = _replay(bitget, lines)
    # fixtures/README: 98/98 (DASHUSDT) and 96/96 (UNIUSDT) checksums match.
    assert sb.checksums_ok == len(pushes) == {"DASHUSDT": 98, "UNIUSDT": 96}[sym]
    assert (sb.gaps, sb.resyncs, sb.crossed, sb.checksum_failures) == (0, 0, 0, 0)

    ref = DictBook()
    for m in pushes:
        [d] = m["data"]
        ref.apply(d["bids"], d["asks"], reset=m["action"] == "snapshot")
    assert sb.book.bids.top(10_000) == sorted(ref.bids.items(), reverse=True)
    assert sb.book.asks.top(10_000) == sorted(ref.asks.items())
    # An independent CRC32 over the rebuilt book's own strings equals the last message's checksum.
    strings: dict[str, dict[float, tuple[str, str]]] = {"bids": {}, "asks": {}}
    for m in pushes:
        [d] = m["data"]
        if m["action"] == "snapshot":
            strings = {"bids": {}, "asks": {}}
        for side in ("bids", "asks"):
            for px, sz in d[side]:
                if float(sz) == 0:
                    strings[side].pop(float(px), None)
                else:
                    strings[side][float(px)] = (px, sz)
    bids = [strings["bids"][p] for p in sorted(strings["bids"], reverse=True)[:25]]
    asks = [strings["asks"][p] for p in sorted(strings["asks"])[:25]]
    assert _crc(bids, asks) == pushes[-1]["data"][0]["checksum"]


def _as_v2(sym: str) -> list[bytes]:
    """The recorded v1 session in today's v2 frame: snapshot checksum 0 and seq/pseq chained."""
    out = []
    for line in fixture_lines("bitget", BOOKS[sym]):
        m = json.loads(line)
        m["arg"]["instType"] = "USDT-FUTURES"
        if "data" in m:
            [d] = m["data"]
            n = len(out)
            d["seq"] = 1000 + 7 * n
            if m["action"] == "snapshot":
                d["checksum"] = 0
            else:
                d["pseq"] = 1000 + 7 * (n - 1)
            m["ts"] = int(d["ts"]) + 1
            out.append(json.dumps(m, separators=(",", ":")).encode())
    return out


def test_v2_frames_checksum_updates_after_a_zero_checksum_snapshot(bitget: Bitget) -> None:
    lines = _as_v2("UNIUSDT")
    sb = _replay(bitget, lines)
    assert sb.checksums_ok == len(lines) - 1  # every update; the snapshot says 0
    assert (sb.gaps, sb.resyncs, sb.checksum_failures) == (0, 0, 0)
    assert sb.seq == 1000 + 7 * (len(lines) - 1)


def test_v2_pseq_break_and_bad_checksum_invalidate(bitget: Bitget) -> None:
    lines = _as_v2("DASHUSDT")
    sb = SyncedBook(bitget.book_sync, bitget.book_checksum())
    [snap] = bitget.parse(lines[0], 0)
    assert sb.on_snapshot(snap)
    [skipped] = bitget.parse(lines[2], 0)  # lines[1] lost
    assert skipped.prev_seq == 1000 + 7 and not sb.on_delta(skipped) and sb.gaps == 1

    sb = SyncedBook(bitget.book_sync, bitget.book_checksum())
    assert sb.on_snapshot(bitget.parse(lines[0], 0)[0])
    m = json.loads(lines[1])
    m["data"][0]["checksum"] += 1
    [bad] = bitget.parse(json.dumps(m), 0)
    assert not sb.on_delta(bad) and sb.checksum_failures == 1

    m = json.loads(lines[1])
    m["data"][0]["pseq"] = 0  # service restart: numbering starts over, accepted unchained
    [restart] = bitget.parse(json.dumps(m), 0)
    assert restart.prev_seq is None


# -- metadata ------------------------------------------------------------------------------------
def _contract(sym: str, **kw: str) -> dict:
    base = {"symbol": sym, "baseCoin": sym[:-4], "quoteCoin": "USDT", "buyLimitPriceRatio": "0.01",
            "sellLimitPriceRatio": "0.01", "feeRateUpRatio": "0.005", "makerFeeRate": "0.0002",
            "takerFeeRate": "0.0006", "openCostUpRatio": "0.01", "supportMarginCoins": ["USDT"],
            "minTradeNum": "0.001", "priceEndStep": "1", "volumePlace": "3", "pricePlace": "1",
            "sizeMultiplier": "0.001", "symbolType": "perpetual", "minTradeUSDT": "5", "maxSymbolOrderNum": "999999",
            "maxProductOrderNum": "999999", "maxPositionNum": "150", "symbolStatus": "normal", "offTime": "-1",
            "limitOpenTime": "-1", "deliveryTime": "", "deliveryStartTime": "", "deliveryPeriod": "",
            "launchTime": "", "fundInterval": "8", "minLever": "1", "maxLever": "125", "posLimit": "0.05",
            "maintainTime": ""}
    return {**base, **kw}


def _v2_contracts(rows: list[dict]) -> bytes:
    return json.dumps({"code": "00000", "msg": "success", "requestTime": 1695793701269, "data": rows}).encode()


def test_v1_metadata_fields(bitget: Bitget) -> None:
    raw = _v1_raw()["data"]
    assert len(bitget.table) == len(raw) == 51
    for c in raw:
        inst = bitget.table[c["symbol"].removesuffix("_UMCBL")]
        tick = float(Decimal(c["priceEndStep"]) * Decimal(10) ** -int(c["pricePlace"]))
        lot = float(Decimal(10) ** -int(c["volumePlace"]))
        assert (inst.symbol, inst.tick_size, inst.lot_size, inst.min_qty) == (
            SPECS[inst.venue_symbol]["symbol"], tick, lot, float(c["minTradeNum"])), c["symbol"]
        assert (inst.taker_fee, inst.maker_fee) == (float(c["takerFeeRate"]), float(c["makerFeeRate"]))
        assert (inst.contract_size, inst.inverse, inst.status, inst.funding_interval_h) == (1.0, False, "active", 8.0)
    btc = bitget.table["BTCUSDT"]
    assert (btc.asset, btc.settle, btc.tick_size, btc.lot_size, btc.source) == ("BTC", "USDT", 0.5, 0.001, "bitget")


def test_v2_metadata_fields() -> None:
    rows = [
        _contract("BTCUSDT"),
        _contract("ETHUSDT", pricePlace="2", priceEndStep="1", sizeMultiplier="0.01", minTradeNum="0.01",
                  fundInterval="4", takerFeeRate="0.0005"),
        _contract("LUNAUSDT", symbolStatus="off"),
        _contract("XYZUSDT", symbolStatus="maintain"),
        _contract("1000BONKUSDT", pricePlace="6", priceEndStep="5", volumePlace="0", sizeMultiplier="100"),
        _contract("BTCUSDT0329", symbolType="delivery"),
    ]
    specs = {i.venue_symbol: i for i in Bitget(Registry()).parse_metadata(V2_PATH, _v2_contracts(rows))}
    assert sorted(specs) == sorted(r["symbol"] for r in rows if r["symbolType"] == "perpetual")
    btc, eth, bonk = specs["BTCUSDT"], specs["ETHUSDT"], specs["1000BONKUSDT"]
    assert (btc.tick_size, btc.lot_size, btc.min_qty, btc.min_notional, btc.funding_interval_h) == (
        0.1, 0.001, 0.001, 5.0, 8.0)
    assert (eth.tick_size, eth.lot_size, eth.funding_interval_h, eth.taker_fee) == (0.01, 0.01, 4.0, 0.0005)
    assert (bonk.symbol, bonk.price_scale, bonk.tick_size, bonk.lot_size) == ("BONK/USDT:USDT", 1000.0, 5e-06, 100.0)
    assert {s: i.status for s, i in specs.items()} == {
        "BTCUSDT": "active", "ETHUSDT": "active", "LUNAUSDT": "inactive", "XYZUSDT": "inactive",
        "1000BONKUSDT": "active"}


def test_metadata_errors_and_other_paths(bitget: Bitget) -> None:
    [v1] = fixture_lines("bitget", V1_CONTRACTS)
    with pytest.raises(DecodeError, match="bitget"):
        bitget.parse_metadata(V2_PATH, v1)  # v1 rows have no symbolType: not a v2 answer
    with pytest.raises(DecodeError, match="bitget"):
        bitget.parse_metadata(V2_PATH, b'{"code":"40034","msg":"Parameter does not exist","data":null}')
    with pytest.raises(DecodeError, match="bitget"):
        bitget.parse_metadata(V1_PATH, v1[:-50])
    assert bitget.parse_metadata("/api/v2/mix/market/ticker?symbol=BTCUSDT", v1) == []


def test_metadata_round_trip(bitget: Bitget) -> None:
    originals = sorted(bitget.table.values(), key=lambda i: i.venue_symbol)
    originals[0] = msgspec.structs.replace(originals[0], funding_interval_h=4.0, min_notional=5.0, taker_fee=0.0005)
    originals[1] = msgspec.structs.replace(originals[1], tick_size=1e-8, status="inactive", maker_fee=0.0)
    bodies = bitget.sim_metadata(originals)
    assert list(bodies) == [V2_PATH] == list(Bitget.metadata_paths)
    assert b'"priceEndStep":"1","volumePlace"' in bodies[V2_PATH] and b"e-" not in bodies[V2_PATH]
    back = Bitget(Registry()).parse_metadata(V2_PATH, bodies[V2_PATH])
    assert back == originals


# -- simulator -------------------------------------------------------------------------------------
@pytest.mark.parametrize("sym", ["BTCUSDT", "SHIBUSDT"])
def test_sim_encoders_round_trip(bitget: Bitget, sym: str) -> None:
    inst: Instrument = bitget.table[sym]
    [q] = bitget.parse(bitget.sim_quote(inst, (101.5, 12.0), (101.75, 3.0), 77, 1_700_000_000_123), 9)
    assert type(q) is Quote and (q.bid_px, q.bid_qty, q.ask_px, q.ask_qty) == (101.5, 12.0, 101.75, 3.0)
    assert (q.venue_symbol, q.ts_exchange_ns, q.recv_ns) == (sym, 1_700_000_000_123 * MS, 9)

    bids, asks = [(101.5, 12.0), (101.25, 0.5)], [(101.75, 3.0), (102.0, 1e-05)]
    [snap] = bitget.parse(bitget.sim_book(inst, True, bids, asks, 500, -1, 500, 1_700_000_000_000), 0)
    assert type(snap) is BookSnapshot and (snap.seq, snap.checksum) == (500, None)
    assert (snap.bids, snap.asks) == (bids, asks)
    assert snap.raw_levels == ([("101.5", "12"), ("101.25", "0.5")], [("101.75", "3"), ("102", "0.00001")])
    [delta] = bitget.parse(bitget.sim_book(inst, False, [(101.25, 0.0)], [(101.7, 2.0)], 501, 500, 501,
                                           1_700_000_000_100), 0)
    assert type(delta) is BookDelta
    assert (delta.first_seq, delta.seq, delta.prev_seq, delta.bids, delta.asks) == (
        501, 501, 500, [(101.25, 0.0)], [(101.7, 2.0)])
    # The checksum of the book after the delta, over the strings sent.
    assert delta.checksum == _crc([("101.5", "12")], [("101.7", "2"), ("101.75", "3"), ("102", "0.00001")])
    sb = SyncedBook(bitget.book_sync, bitget.book_checksum())
    assert sb.on_snapshot(snap) and sb.on_delta(delta) and sb.checksums_ok == 1

    [f] = bitget.parse(bitget.sim_funding(inst, 0.000125, 1_700_006_400_000, 101.6, 101.55, 1_700_000_000_000), 0)
    assert (f.rate, f.predicted_rate, f.interval_h, f.mark_px, f.index_px) == (0.000125, None, 8.0, 101.6, 101.55)
    assert (f.next_funding_ns, f.ts_exchange_ns) == (1_700_006_400_000 * MS, 1_700_000_000_000 * MS)


def test_sim_handle(bitget: Bitget) -> None:
    assert bitget.sim_handle("ping") == (["pong"], [])
    args = [{"instType": "USDT-FUTURES", "channel": c, "instId": s}
            for c, s in (("books1", "BTCUSDT"), ("books", "BTCUSDT"), ("ticker", "ETHUSDT"), ("trade", "ETHUSDT"),
                         ("candle1m", "ETHUSDT"))]
    replies, topics = bitget.sim_handle(json.dumps({"op": "subscribe", "args": args}))
    assert [json.loads(r) for r in replies] == [{"event": "subscribe", "arg": a} for a in args]
    assert topics == [("quote", "BTCUSDT"), ("book", "BTCUSDT"), ("funding", "ETHUSDT"), ("trade", "ETHUSDT")]
    assert all(bitget.parse(r, 0) == [] for r in replies)
    replies, topics = bitget.sim_handle(json.dumps({"op": "unsubscribe", "args": args[1:2]}))
    assert [json.loads(r)["event"] for r in replies] == ["unsubscribe"] and topics == []
    [err], topics = bitget.sim_handle(json.dumps({"op": "login"}))
    assert json.loads(err)["event"] == "error" and topics == []
    assert bitget.sim_handle("not json") == ([], [])


def test_connections_and_resubscribe(bitget: Bitget) -> None:
    insts = sorted(bitget.table.values(), key=lambda i: i.venue_symbol)
    conns = bitget.connections(insts)
    assert [i for c in conns for i in c.instruments] == insts
    sent = []
    for c in conns:
        assert c.path == "/v2/ws/public"
        [msg] = [json.loads(m) for m in c.subscribe]
        assert msg["op"] == "subscribe" and len(msg["args"]) <= 50
        assert {a["instId"] for a in msg["args"]} == {i.venue_symbol for i in c.instruments}
        sent += [(a["instType"], a["channel"], a["instId"]) for a in msg["args"]]
    assert sorted(sent) == sorted(("USDT-FUTURES", ch, i.venue_symbol) for i in insts
                                  for ch in ("books1", "books", "ticker"))
    assert all(a["channel"] != "books" for c in bitget.connections(insts, books=False)
               for a in json.loads(c.subscribe[0])["args"])
    # Every channel we subscribe is one the simulator serves.
    _, topics = bitget.sim_handle(conns[0].subscribe[0])
    assert {k for k, _ in topics} == {"quote", "book", "funding"}

    unsub, sub = bitget.resubscribe_book(bitget.table["BTCUSDT"])
    arg = [{"instType": "USDT-FUTURES", "channel": "books", "instId": "BTCUSDT"}]
    assert json.loads(unsub) == {"op": "unsubscribe", "args": arg}
    assert json.loads(sub) == {"op": "subscribe", "args": arg}


def test_derive() -> None:
    v = Bitget(Registry())
    eth = v.derive("ETHUSDT")
    assert eth is not None and (eth.symbol, eth.contract_size, eth.status) == ("ETH/USDT:USDT", 1.0, "derived")
    assert v.derive("BTCPERP") is None and v.derive("BTCUSD") is None and v.derive("USDT") is None


def test_card() -> None:
    assert venue_class("bitget") is Bitget
    assert (Bitget.id, Bitget.ws_url, Bitget.rest_url, Bitget.book_sync) == (
        "bitget", "wss://ws.bitget.com", "https://api.bitget.com", "in_stream")
    assert (Bitget.heartbeat_text, Bitget.taker_fee, Bitget.maker_fee) == ("ping", 0.0006, 0.0002)
    assert Bitget.heartbeat_s < 30 and Bitget.silence_s > Bitget.heartbeat_s
    assert Bitget.metadata_paths == (V2_PATH,)
