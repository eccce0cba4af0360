"""MEXC futures adapter against the recorded messages.

Most tests use DETAIL below, shaped as MEXC's documented /api/v1/contract/detail answer
(BTC_USDT with the documentation's values, ETH_USDT illustrative ones; BTC_USD left out so its
pushes exercise the unknown-symbol path). The recorded contract detail of 2025-08
(RECORDED_DETAIL) lists all three: with it, through the bundled snapshot, every recorded push
decodes. Every expected value is computed here from the raw JSON (json module), never taken
from the adapter's output.
"""

from __future__ import annotations

import asyncio
import json
from collections import defaultdict

import msgspec
import pytest

from conftest import check_events, fixture_files, fixture_lines
from conftest import same as _same
from perparb.config import load_settings
from perparb.feeds.booksync import SYNCED, SyncedBook
from perparb.instruments.registry import Registry
from perparb.instruments.snapshot import load_registry
from perparb.model import BookDelta, BookSnapshot, Funding, Instrument, Trade
from perparb.sim.server import Simulator
from perparb.venues import venue_class
from perparb.venues.base import DecodeError
from perparb.venues.mexc import Mexc
from test_sim_integration import ASSETS, Running
from test_sim_integration import test_reconnects_after_the_venue_drops_the_connection as _reconnect_case
from test_sim_integration import test_sequence_gap_marks_the_book_invalid_and_resyncs as _gap_case
from test_sim_integration import test_streams_books_and_funding_equal_the_venue as _stream_case

DETAIL_PATH = "/api/v1/contract/detail"
FUNDING_PATH = "/api/v1/contract/funding_rate"
DETAIL = {"success": True, "code": 0, "data": [
    {"symbol": "BTC_USDT", "displayNameEn": "BTC_USDT SWAP", "baseCoin": "BTC", "quoteCoin": "USDT",
     "settleCoin": "USDT", "contractSize": 0.0001, "priceScale": 2, "volScale": 0, "priceUnit": 0.5, "volUnit": 1,
     "minVol": 1, "maxVol": 5000000, "takerFeeRate": 0.0006, "makerFeeRate": 0.0002, "state": 0, "apiAllowed": False},
    {"symbol": "ETH_USDT", "displayNameEn": "ETH_USDT SWAP", "baseCoin": "ETH", "quoteCoin": "USDT",
     "settleCoin": "USDT", "contractSize": 0.01, "priceUnit": 0.01, "volUnit": 1, "minVol": 1, "state": 0},
]}
SPECS = {c["symbol"]: c for c in DETAIL["data"]}
CRAWLER = "crypto-msg-parser-tests_mexc-contract_2021-2022_samples.jsonl"
TARDIS = "tardis-node-tests_mexc-futures_samples_mostly-doc-derived.jsonl"
DOC = "DOCEXAMPLE_JKorf-Mexc.Net_contract_ticker_depth_funding.jsonl"
MS = 1_000_000
HOUR_MS = 3_600_000
RECV = 123
REL = 1e-12


def _mexc(detail: dict = DETAIL) -> Mexc:
    v = Mexc(Registry())
    v.registry.add_many(v.parse_metadata(DETAIL_PATH, json.dumps(detail)))
    return v


@pytest.fixture
def mexc() -> Mexc:
    return _mexc()


def _symbol(sym: str, specs: dict = SPECS) -> str:
    base, quote = sym.split("_")
    return f"{base}/{quote}:{specs[sym]['settleCoin']}"


def _qty(sym: str, px: float, vol: float, specs: dict = SPECS) -> float:
    """Base units of ``vol`` contracts: coin-margined contracts (settled in the base coin) are
    worth contractSize USD each."""
    c = specs[sym]
    return vol * c["contractSize"] / px if c["settleCoin"] != c["quoteCoin"] else vol * c["contractSize"]


def _levels(sym: str, rows: list[list[float]], specs: dict = SPECS) -> list[tuple[float, float]]:
    return [(float(r[0]), _qty(sym, float(r[0]), r[1], specs)) for r in rows]


def _grid_next_ms(now_ms: int, hours: float = 8.0) -> int:
    """Next multiple of the interval since the epoch, strictly after now."""
    step = int(hours * HOUR_MS)
    return (now_ms // step + 1) * step


def _expected(msg: dict, specs: dict = SPECS) -> tuple[list[tuple[type, dict]], list[str]]:
    chan = msg.get("channel", "")
    data = msg.get("data")
    out: list[tuple[type, dict]] = []
    unknown: list[str] = []

    def known(sym: str) -> bool:
        if sym in specs:
            return True
        unknown.append(sym)
        return False

    def common(sym: str) -> dict:
        return {"venue": "mexc", "venue_symbol": sym, "symbol": _symbol(sym, specs), "recv_ns": RECV}

    if chan in ("push.depth", "push.depth.full") and known(msg["symbol"]):
        sym = msg["symbol"]
        book = {**common(sym), "bids": _levels(sym, data["bids"], specs), "asks": _levels(sym, data["asks"], specs),
                "ts_exchange_ns": msg["ts"] * MS}
        if chan == "push.depth.full":
            out.append((BookSnapshot, {**book, "seq": data["version"]}))
        else:
            first = data.get("begin", data["version"])
            out.append((BookDelta, {**book, "first_seq": first, "seq": data["version"], "prev_seq": first - 1}))
    elif chan == "push.deal" and known(msg["symbol"]):
        sym = msg["symbol"]
        for d in data if isinstance(data, list) else [data]:
            out.append((Trade, {**common(sym), "px": float(d["p"]), "qty": _qty(sym, float(d["p"]), d["v"], specs),
                                "side": {1: "buy", 2: "sell"}[d["T"]], "trade_id": d.get("i", ""),
                                "ts_exchange_ns": d["t"] * MS}))
    elif chan == "push.ticker" and known(data["symbol"]):
        ts = data["timestamp"]
        out.append((Funding, {**common(data["symbol"]), "rate": data["fundingRate"], "predicted_rate": None,
                              "interval_h": 8.0, "next_funding_ns": _grid_next_ms(ts) * MS,
                              "mark_px": float(data["fairPrice"]), "index_px": float(data["indexPrice"]),
                              "ts_exchange_ns": ts * MS}))
    elif chan == "push.funding.rate" and known(data["symbol"]):
        next_ms = data.get("nextSettleTime") or _grid_next_ms(msg["ts"])
        out.append((Funding, {**common(data["symbol"]), "rate": data["rate"], "predicted_rate": None,
                              "interval_h": 8.0, "next_funding_ns": next_ms * MS, "mark_px": None,
                              "index_px": None, "ts_exchange_ns": msg["ts"] * MS}))
    return out, unknown




MESSAGE_FILES = [p for p in fixture_files("mexc") if "_rest_" not in p.name]  # streams; metadata apart


@pytest.mark.parametrize("path", MESSAGE_FILES, ids=lambda p: p.name)
def test_every_recorded_message(mexc: Mexc, path) -> None:
    lines = fixture_lines("mexc", path.name)
    assert lines
    for n, line in enumerate(lines, 1):
        where = f"{path.name}:{n}"
        expected, unknown = _expected(json.loads(line))
        events = mexc.parse(line, recv_ns=RECV)
        problems = mexc.take_problems()
        assert [type(e) for e in events] == [t for t, _ in expected], where
        for ev, (_, fields) in zip(events, expected, strict=True):
            for key, value in fields.items():
                assert _same(getattr(ev, key), value), f"{where} {key}: {getattr(ev, key)!r} != {value!r}"
        assert len(problems) == len(unknown), (where, problems)
        for sym, text in zip(unknown, problems, strict=True):
            assert sym in text and "mexc" in text, where


RECORDED_DETAIL = "arbitrack_2025-08_rest_api_v1_contract_detail_full.jsonl"


def test_fixture_set_is_what_this_test_expects() -> None:
    assert {p.name for p in MESSAGE_FILES} == {CRAWLER, TARDIS, DOC}
    assert [p.name for p in fixture_files("mexc") if "_rest_" in p.name] == [RECORDED_DETAIL]


@pytest.mark.parametrize("path", MESSAGE_FILES, ids=lambda p: p.name)
def test_every_recorded_message_decodes_with_the_bundled_snapshot(path) -> None:
    """The recorded streams against the real contract sizes, as the bundled map has them:
    every symbol they name (BTC_USDT, ETH_USDT and the coin-margined BTC_USD) is listed in
    the recorded contract detail, so every push decodes."""
    [raw] = fixture_lines("mexc", RECORDED_DETAIL)
    real = {c["symbol"]: c for c in json.loads(raw)["data"]}
    venue = Mexc(load_registry())
    decoded = 0
    for n, line in enumerate(fixture_lines("mexc", path.name), 1):
        expected, unknown = _expected(json.loads(line), real)
        assert unknown == [], f"{path.name}:{n}"
        check_events(venue.parse(line, recv_ns=RECV), expected, f"{path.name}:{n}")
        assert venue.take_problems() == []
        decoded += len(expected)
    assert decoded > 0


def test_coin_margined_depth_in_base_units_from_the_recorded_contract_size() -> None:
    [raw] = fixture_lines("mexc", RECORDED_DETAIL)
    btc_usd = next(c for c in json.loads(raw)["data"] if c["symbol"] == "BTC_USD")
    line = next(ln for ln in fixture_lines("mexc", CRAWLER)
                if b'"push.depth"' in ln and b'"BTC_USD"' in ln)
    msg = json.loads(line)
    [delta] = Mexc(load_registry()).parse(line, RECV)
    px, vol = msg["data"]["asks"][0][:2] if msg["data"]["asks"] else msg["data"]["bids"][0][:2]
    level = (delta.asks or delta.bids)[0]
    # 100 USD contracts: vol * 100 / price BTC.
    assert level[0] == float(px) and level[1] == pytest.approx(vol * btc_usd["contractSize"] / px, rel=REL)


def test_recordings_cover_every_event_type_but_quotes(mexc: Mexc) -> None:
    seen: dict[type, int] = defaultdict(int)
    for path in MESSAGE_FILES:
        for line in fixture_lines("mexc", path.name):
            for ev in mexc.parse(line, 0):
                seen[type(ev)] += 1
    # MEXC has no best bid/offer channel: quotes come from the synced book.
    assert set(seen) == {BookSnapshot, BookDelta, Funding, Trade}
    assert mexc.sim_quote(mexc.table["BTC_USDT"], (1.0, 1.0), (2.0, 1.0), 1, 1) is None


def test_hand_checked_values(mexc: Mexc) -> None:
    crawler = fixture_lines("mexc", CRAWLER)
    [deal] = mexc.parse(crawler[0], 0)  # 32 contracts of 0.0001 BTC, T=2: the taker sold
    assert (deal.px, deal.side, deal.symbol) == (39766.5, "sell", "BTC/USDT:USDT")
    assert deal.qty == pytest.approx(0.0032, rel=REL) and deal.ts_exchange_ns == 1_646_999_591_755 * MS
    [d] = mexc.parse(crawler[2], 0)
    assert (d.first_seq, d.seq, d.prev_seq) == (4702740808, 4702740808, 4702740807)
    assert d.asks == [(39961.0, 0.0), (39961.5, 0.0)] and _same(d.bids, [(39962.5, 5.8272)])
    [f] = mexc.parse(crawler[11], 0)  # 2022-06-02 10:32:23 UTC → the 16:00 UTC settlement
    assert (f.rate, f.mark_px, f.index_px, f.interval_h) == (0.000072, 29911.1, 29926.9, 8.0)
    assert f.next_funding_ns == 1_654_185_600_000 * MS
    tardis = fixture_lines("mexc", TARDIS)
    first, second = mexc.parse(tardis[0], 0)  # a 2025 push with a list of deals and ids
    assert (first.trade_id, first.side, second.trade_id, second.side) == ("13064218826", "sell", "13064218827", "buy")
    [merged] = mexc.parse(tardis[3], 0)  # begin == end == version
    assert (merged.first_seq, merged.seq, merged.prev_seq) == (96801931, 96801931, 96801930)
    [settle] = mexc.parse(tardis[7], 0)
    assert settle.next_funding_ns == 1_587_445_200_000 * MS and settle.rate == 0.0012
    doc = fixture_lines("mexc", DOC)
    [eth] = mexc.parse(doc[1], 0)  # data.symbol ETH_USDT under a BTC_USDT envelope: the data's own wins
    assert eth.venue_symbol == "ETH_USDT"
    assert mexc.take_problems() == []


def test_funding_interval_and_settlement_grid_from_the_funding_rate_endpoint(mexc: Mexc) -> None:
    body = {"success": True, "code": 0, "data": [
        {"symbol": "BTC_USDT", "fundingRate": 0.0001, "collectCycle": 4, "nextSettleTime": 1_654_182_000_000},
        {"symbol": "NOPE_USDT", "fundingRate": 0.0001, "collectCycle": 1, "nextSettleTime": 1}]}
    [btc] = mexc.parse_metadata(FUNDING_PATH, json.dumps(body))
    assert (btc.venue_symbol, btc.funding_interval_h) == ("BTC_USDT", 4.0)
    mexc.registry.add_many([btc])
    # The ticker at 10:32:23 UTC: the grid is 15:00 UTC stepped by 4 h → 11:00 UTC.
    [f] = mexc.parse(fixture_lines("mexc", CRAWLER)[11], 0)
    assert (f.interval_h, f.next_funding_ns) == (4.0, 1_654_167_600_000 * MS)
    # A later detail response keeps the interval.
    mexc.registry.add_many(mexc.parse_metadata(DETAIL_PATH, json.dumps(DETAIL)))
    assert mexc.table["BTC_USDT"].funding_interval_h == 4.0
    # A push that says its cycle wins.
    push = {"channel": "push.funding.rate", "symbol": "ETH_USDT", "ts": 1_700_000_000_000,
            "data": {"symbol": "ETH_USDT", "rate": -0.0002, "collectCycle": 2}}
    [g] = mexc.parse(json.dumps(push), 0)
    assert (g.interval_h, g.rate, g.next_funding_ns) == (2.0, -0.0002, _grid_next_ms(1_700_000_000_000, 2) * MS)


# -- books ---------------------------------------------------------------------------------
def _rest_body(version: int, asks: list, bids: list, wrapped: bool = True) -> bytes:
    body = {"asks": asks, "bids": bids, "version": version, "timestamp": 1_587_442_021_000}
    return json.dumps({"success": True, "code": 0, "data": body} if wrapped else body).encode()


def test_version_chain(mexc: Mexc) -> None:
    """The recorded (doc-derived) pushes 96801927, 96801930, 96801931 against a snapshot at 96801926."""
    tardis = fixture_lines("mexc", TARDIS)
    path = mexc.book_snapshot_path(mexc.table["BTC_USDT"])
    assert path == "/api/v1/contract/depth/BTC_USDT?limit=1000"
    sb = SyncedBook(Mexc.book_sync)
    [early] = mexc.parse(tardis[1], 0)
    assert sb.on_delta(early)  # buffered until the snapshot
    [snap] = mexc.parse_rest(path, _rest_body(96801926, [[6859.5, 10, 1], [6861.0, 4]], [[6858.5, 1, 1]]), 0)
    assert sb.on_snapshot(snap) and sb.state == SYNCED and sb.seq == 96801927
    assert sb.book.best_bid() == pytest.approx((6858.5, 42 * 0.0001), rel=REL)  # 96801927 applied
    [merged] = mexc.parse(json.dumps({"channel": "push.depth", "symbol": "BTC_USDT", "ts": 1, "data": {
        "asks": [], "bids": [[6858.0, 5, 1]], "begin": 96801928, "end": 96801929, "version": 96801929}}), 0)
    assert sb.on_delta(merged) and sb.seq == 96801929
    [jump] = mexc.parse(tardis[3], 0)  # 96801931 after 96801929: 96801930 is missing
    assert not sb.on_delta(jump) and sb.gaps == 1
    assert mexc.parse(tardis[2], 0)[0].prev_seq == 96801929  # the one that would have chained


def test_rest_depth_shapes(mexc: Mexc) -> None:
    path = "/api/v1/contract/depth/BTC_USDT?limit=1000"
    for wrapped in (True, False):  # as served, and as MEXC's page prints it
        [snap] = mexc.parse_rest(path, _rest_body(7, [[3968.5, 121], [3968.6, 160, 4]], [[3968.4, 179, 4]],
                                                  wrapped), RECV)
        assert (snap.seq, snap.venue_symbol, snap.recv_ns, snap.ts_exchange_ns) == (
            7, "BTC_USDT", RECV, 1_587_442_021_000 * MS)
        assert _same(snap.asks, _levels("BTC_USDT", [[3968.5, 121], [3968.6, 160]]))
        assert _same(snap.bids, _levels("BTC_USDT", [[3968.4, 179]]))
    assert mexc.parse_rest(DETAIL_PATH, json.dumps(DETAIL), 0) == []
    with pytest.raises(DecodeError, match="mexc"):
        mexc.parse_rest(path, b'{"success":false,"code":1001,"message":"Contract does not exist!"}', 0)
    with pytest.raises(DecodeError, match="mexc"):
        mexc.parse_rest(path, _rest_body(7, [], [])[:-10], 0)
    assert mexc.parse_rest("/api/v1/contract/depth/NOPE_USDT", _rest_body(7, [], []), 0) == []
    assert mexc.take_problems() == ["unknown symbol 'NOPE_USDT' on mexc"]


# -- metadata ------------------------------------------------------------------------------
def test_metadata_fields(mexc: Mexc) -> None:
    assert set(mexc.table) == set(SPECS)
    for sym, c in SPECS.items():
        inst = mexc.table[sym]
        assert (inst.symbol, inst.asset, inst.quote, inst.settle, inst.inverse) == (
            _symbol(sym), c["baseCoin"], c["quoteCoin"], c["settleCoin"], False)
        assert (inst.contract_size, inst.tick_size, inst.lot_size, inst.min_qty) == (
            c["contractSize"], c["priceUnit"], c["volUnit"], c["minVol"])
        assert (inst.status, inst.funding_interval_h, inst.source, inst.taker_fee) == ("active", 8.0, "mexc", 0.0002)


def test_metadata_statuses_types_and_inverse() -> None:
    base = DETAIL["data"][0]
    rows = [dict(base, symbol="A_USDT", baseCoin="A", state=4), dict(base, symbol="B_USDT", baseCoin="B", state=3),
            dict(base, symbol="C_USDT", baseCoin="C", futureType=2),
            dict(base, symbol="1000PEPE_USDT", baseCoin="PEPE", contractSize=10),
            dict(base, symbol="BTC_USD", quoteCoin="USD", settleCoin="BTC", contractSize=100)]
    v = _mexc({"success": True, "code": 0, "data": rows})
    assert {s: i.status for s, i in v.table.items()} == {"A_USDT": "inactive", "B_USDT": "inactive",
                                                          "1000PEPE_USDT": "active", "BTC_USD": "active"}
    pepe = v.table["1000PEPE_USDT"]
    assert (pepe.symbol, pepe.asset, pepe.price_scale) == ("PEPE/USDT:USDT", "PEPE", 1000.0)
    assert pepe.qty(3, 0.012) == pytest.approx(30_000.0, rel=REL)  # 3 contracts of 10 x 1000 PEPE
    inv = v.table["BTC_USD"]
    assert (inv.symbol, inv.inverse) == ("BTC/USD:BTC", True)
    [d] = v.parse(json.dumps({"channel": "push.depth", "symbol": "BTC_USD", "ts": 1,
                              "data": {"asks": [[40000, 8, 1]], "bids": [], "version": 5}}), 0)
    assert d.asks == [pytest.approx((40000.0, 8 * 100 / 40000), rel=REL)]  # 8 contracts of 100 USD


def test_metadata_round_trip(mexc: Mexc) -> None:
    originals = sorted(mexc.table.values(), key=lambda i: i.venue_symbol)
    originals[0] = msgspec.structs.replace(originals[0], funding_interval_h=4.0, status="inactive", tick_size=1e-7)
    bodies = mexc.sim_metadata(originals)
    assert set(bodies) == {*Mexc.metadata_paths, "/api/v3/exchangeInfo"}  # ccxt's spot list, empty
    assert json.loads(bodies["/api/v3/exchangeInfo"]) == {"symbols": []}
    back = Mexc(Registry())
    for path in Mexc.metadata_paths:  # detail first, then funding_rate
        back.registry.add_many(back.parse_metadata(path, bodies[path]))
    assert sorted(back.table.values(), key=lambda i: i.venue_symbol) == originals


def test_metadata_errors_and_other_paths(mexc: Mexc) -> None:
    assert mexc.parse_metadata("/api/v1/contract/depth/BTC_USDT", json.dumps(DETAIL)) == []
    for path in Mexc.metadata_paths:
        with pytest.raises(DecodeError, match="mexc"):
            mexc.parse_metadata(path, b'{"success":false,"code":510,"message":"Excessive frequency"}')
        with pytest.raises(DecodeError, match="mexc"):
            mexc.parse_metadata(path, json.dumps(DETAIL)[:-20])
    with pytest.raises(DecodeError, match="mexc"):  # a funding_rate body under the detail path
        mexc.parse_metadata(DETAIL_PATH, b'{"success":true,"code":0,"data":[{"symbol":"BTC_USDT","collectCycle":8}]}')


# -- protocol odds and ends -----------------------------------------------------------------
def test_acks_pong_and_other_channels(mexc: Mexc) -> None:
    quiet = [b'{"channel":"pong","data":1587453241453}', b'{"channel":"rs.sub.depth","data":"success","ts":1}',
             b'{"channel":"push.kline","data":{"symbol":"BTC_USDT","c":1},"symbol":"BTC_USDT","ts":1}',
             b'{ "channel": "pong", "data": 1 }']
    quiet += [line for line in fixture_lines("mexc", TARDIS) if b"index.price" in line or b"fair.price" in line]
    assert all(mexc.parse(q, 0) == [] for q in quiet) and mexc.take_problems() == []
    assert mexc.parse(b'{"channel":"rs.error","data":"Contract doesn\'t exist!","ts":"1"}', 0) == []
    [problem] = mexc.take_problems()
    assert "Contract doesn't exist!" in problem and "mexc" in problem


DEPTH = fixture_lines("mexc", CRAWLER)[2]


@pytest.mark.parametrize("raw", [
    DEPTH[:-20],
    b"<html>bad gateway</html>",
    b"",
    b"[1,2]",
    b'{"data":1}',
    DEPTH.replace(b"39961.5", b'"abc"'),
    b'{"channel":"push.depth","data":{"asks":[],"bids":[]},"symbol":"BTC_USDT","ts":1}',  # no version
    b'{"channel":"push.depth","data":{"asks":[[1]],"bids":[],"version":2},"symbol":"BTC_USDT","ts":1}',
    b'{"channel":"push.deal","data":{"p":"x","v":1,"T":1,"t":1},"symbol":"BTC_USDT","ts":1}',
    b'{"channel":"push.funding.rate","data":{"symbol":"BTC_USDT","rate":"high"},"ts":1}',
])
def test_malformed_raises_decode_error(mexc: Mexc, raw: bytes) -> None:
    with pytest.raises(DecodeError, match="mexc"):
        mexc.parse(raw, 0)


# -- simulator -------------------------------------------------------------------------------
@pytest.mark.parametrize("sym", ["BTC_USDT", "ETH_USDT"])
def test_sim_encoders_round_trip(mexc: Mexc, sym: str) -> None:
    inst: Instrument = mexc.table[sym]
    cs = SPECS[sym]["contractSize"]
    bids, asks = [(101.5, 12.0), (101.25, 0.0)], [(101.75, 3.5)]
    [d] = mexc.parse(mexc.sim_book(inst, False, bids, asks, 530, 529, 530, 1_700_000_000_100), 9)
    assert type(d) is BookDelta and (d.first_seq, d.seq, d.prev_seq, d.recv_ns) == (530, 530, 529, 9)
    assert _same(d.bids, [(p, s * cs) for p, s in bids]) and _same(d.asks, [(p, s * cs) for p, s in asks])
    assert d.ts_exchange_ns == 1_700_000_000_100 * MS
    [merged] = mexc.parse(mexc.sim_book(inst, False, bids, asks, 540, 530, 531, 1), 0)
    assert (merged.first_seq, merged.seq, merged.prev_seq) == (531, 540, 530)
    [gap] = mexc.parse(mexc.sim_book(inst, False, bids, asks, 545, 544, 545, 1), 0)
    assert gap.prev_seq == 544
    [full] = mexc.parse(mexc.sim_book(inst, True, bids[:1], asks, 546, -1, 546, 1), 0)
    assert type(full) is BookSnapshot and full.seq == 546

    path = mexc.book_snapshot_path(inst)
    assert path is not None and mexc.sim_rest_book(path) == sym
    assert mexc.sim_rest_book(DETAIL_PATH) is None
    [snap] = mexc.parse_rest(path, mexc.sim_rest_book_body(inst, bids[:1], asks, 499, 1_700_000_000_050), 5)
    assert (snap.seq, snap.recv_ns, snap.ts_exchange_ns) == (499, 5, 1_700_000_000_050 * MS)
    assert _same(snap.bids, [(101.5, 12.0 * cs)]) and _same(snap.asks, [(101.75, 3.5 * cs)])

    [f] = mexc.parse(mexc.sim_funding(inst, 0.000125, 1_700_006_400_000, 101.6, 101.55, 1_700_000_000_000), 0)
    assert (f.rate, f.predicted_rate, f.interval_h) == (0.000125, None, 8.0)
    assert (f.next_funding_ns, f.ts_exchange_ns) == (1_700_006_400_000 * MS, 1_700_000_000_000 * MS)


def test_sim_handle(mexc: Mexc) -> None:
    [conn] = mexc.connections([mexc.table["BTC_USDT"], mexc.table["ETH_USDT"]])
    assert conn.path == "/edge"
    topics = []
    for m in conn.subscribe:
        sent = json.loads(m)
        assert sent["gzip"] is False
        replies, t = mexc.sim_handle(m)
        assert [json.loads(r) for r in replies] == [{"channel": f"rs.{sent['method']}", "data": "success",
                                                     "ts": json.loads(replies[0])["ts"]}]
        assert all(mexc.parse(r, 0) == [] for r in replies)
        topics += t
    assert sorted(topics) == sorted((k, s) for s in ("BTC_USDT", "ETH_USDT") for k in ("book", "funding"))
    replies, t = mexc.sim_handle(Mexc.heartbeat_text or "")
    assert json.loads(replies[0])["channel"] == "pong" and t == [] and mexc.parse(replies[0], 0) == []
    replies, t = mexc.sim_handle('{"method":"unsub.depth","param":{"symbol":"BTC_USDT"}}')
    assert json.loads(replies[0])["channel"] == "rs.unsub.depth" and t == []
    assert mexc.sim_handle('{"method":"sub.deal","param":{"symbol":"ETH_USDT"}}')[1] == [("trade", "ETH_USDT")]
    assert mexc.sim_handle("not json") == ([], [])
    assert mexc.take_problems() == []


def test_connections(mexc: Mexc) -> None:
    insts = sorted(mexc.table.values(), key=lambda i: i.venue_symbol)
    [conn] = mexc.connections(insts)
    assert conn.instruments == insts
    assert [json.loads(m) for m in conn.subscribe] == [
        {"method": m, "param": p, "gzip": False} for i in insts
        for m, p in (("sub.depth", {"symbol": i.venue_symbol, "compress": False}),
                     ("sub.funding.rate", {"symbol": i.venue_symbol}))]
    [no_books] = mexc.connections(insts, books=False)
    assert [json.loads(m)["method"] for m in no_books.subscribe] == ["sub.funding.rate"] * len(insts)


def test_card() -> None:
    assert venue_class("mexc") is Mexc
    assert (Mexc.id, Mexc.ws_url, Mexc.rest_url, Mexc.book_sync) == (
        "mexc", "wss://contract.mexc.com", "https://api.mexc.com", "rest_bridged")
    assert (Mexc.heartbeat_text, Mexc.heartbeat_s, Mexc.silence_s) == ('{"method":"ping"}', 15.0, 30.0)
    assert (Mexc.taker_fee, Mexc.maker_fee, Mexc.metadata_paths) == (0.0002, 0.0, (DETAIL_PATH, FUNDING_PATH))


# -- over real websockets against the simulator --------------------------------------------------
class _Running(Running):
    """test_sim_integration's harness over the bundled snapshot's recorded MEXC contracts."""

    def __init__(self) -> None:
        registry = load_registry()
        assert registry.get("mexc", "BTC_USDT") is not None
        self.venues = ["mexc"]
        self.registry = registry
        self.sim = Simulator(registry, self.venues, ASSETS, seed=3, tick_s=0.05)
        self.settings = load_settings(None, {"venues": self.venues, "assets": ",".join(ASSETS)}, env={})


@pytest.mark.parametrize("case", [_stream_case, _reconnect_case, _gap_case], ids=["stream", "reconnect", "gap"])
async def test_against_the_simulator(case) -> None:
    async with _Running() as r:
        assert len(r.sim.venues["mexc"].books) == 2
        await case(r)
        await asyncio.sleep(0)
