"""Gate USDT futures adapter against real recorded messages.

Every expected value is computed here from the raw JSON (json module) and the recorded
contracts response (quanto_multiplier, funding_interval, funding_next_apply), never taken
from the adapter's own output.
"""

from __future__ import annotations

import json
from collections import defaultdict

import msgspec
import pytest

from conftest import fixture_files, fixture_lines
from conftest import same as _same
from perparb.feeds.booksync import SYNCED, SyncedBook
from perparb.instruments.registry import Registry
from perparb.model import BookDelta, BookSnapshot, Funding, Instrument, Quote, Trade
from perparb.venues import venue_class
from perparb.venues.base import DecodeError
from perparb.venues.gate import Gate

CONTRACTS_PATH = "/api/v4/futures/usdt/contracts"
CONTRACTS = "cryptofeed_2023-05-24_rest_v4_futures_usdt_contracts_full.jsonl"
REST_BOOKS = "cryptofeed_2023-05-24_rest_v4_futures_usdt_order_book_with_id.jsonl"
# Line order of REST_BOOKS, per SOURCE.md.
REST_BOOK_CONTRACTS = ("RDNT_USDT", "OMG_USDT", "PHB_USDT", "FRONT_USDT", "QUICK_USDT", "WOO_USDT", "ZRX_USDT",
                       "SFP_USDT", "DIA_USDT", "LIT_USDT")
BOOK_UPDATES = "cryptofeed_2023-05-24_ws_v4_usdt_futures.order_book_update.jsonl"
BOOK_TICKER = "cryptofeed_2023-05-24_ws_v4_usdt_futures.book_ticker.jsonl"
CRAWLER = "crypto-msg-parser-tests_gate-futures_2021-2022_samples.jsonl"
TARDIS = "tardis-node-tests_gate-io-futures_2020-2023_samples.jsonl"
MS = 1_000_000
S = 1_000_000_000
RECV = 123
REL = 1e-12


def _raw_contracts() -> list[dict]:
    [line] = fixture_lines("gate", CONTRACTS)
    return json.loads(line)


RAW = {c["name"]: c for c in _raw_contracts()}


def _gate() -> Gate:
    v = Gate(Registry())
    [line] = fixture_lines("gate", CONTRACTS)
    v.registry.add_many(v.parse_metadata(CONTRACTS_PATH, line))
    return v


@pytest.fixture
def gate() -> Gate:
    return _gate()


def _qm(sym: str) -> float:
    return float(RAW[sym]["quanto_multiplier"])


def _symbol(sym: str) -> str:
    base, quote = sym.split("_")
    return f"{base}/{quote}:USDT"


def _levels(sym: str, rows: list[dict]) -> list[tuple[float, float]]:
    return [(float(r["p"]), float(r["s"]) * _qm(sym)) for r in rows]


def _next_settle_ms(sym: str, now_ms: int) -> int:
    """The contract's first settlement after now: funding_next_apply stepped by funding_interval."""
    anchor, step = RAW[sym]["funding_next_apply"] * 1000, RAW[sym]["funding_interval"] * 1000
    k = 0
    while anchor + k * step > now_ms:
        k -= 1
    while anchor + k * step <= now_ms:
        k += 1
    return anchor + k * step


def _expected(msg: dict) -> tuple[list[tuple[type, dict]], list[str]]:
    """(events as (type, fields), unknown contracts) one recorded message should give."""
    if msg.get("event") not in ("update", "all"):
        return [], []
    chan, res = msg["channel"], msg["result"]
    push_ms = msg.get("time_ms") or msg["time"] * 1000
    out: list[tuple[type, dict]] = []
    unknown: list[str] = []

    def known(sym: str) -> bool:
        if sym in RAW:
            return True
        unknown.append(sym)
        return False

    def common(sym: str) -> dict:
        return {"venue": "gate", "venue_symbol": sym, "symbol": _symbol(sym), "recv_ns": RECV}

    if chan == "futures.order_book_update" and known(res["s"]):
        out.append((BookDelta, {**common(res["s"]), "bids": _levels(res["s"], res["b"]),
                                "asks": _levels(res["s"], res["a"]), "first_seq": res["U"], "seq": res["u"],
                                "prev_seq": res["U"] - 1, "ts_exchange_ns": res["t"] * MS}))
    elif chan == "futures.book_ticker" and res["b"] and res["a"] and known(res["s"]):
        sym, qm = res["s"], _qm(res["s"])
        out.append((Quote, {**common(sym), "bid_px": float(res["b"]), "bid_qty": float(res["B"]) * qm,
                            "ask_px": float(res["a"]), "ask_qty": float(res["A"]) * qm,
                            "ts_exchange_ns": res["t"] * MS}))
    elif chan == "futures.tickers":
        items = [res] if isinstance(res, dict) else [t for x in res for t in (x if isinstance(x, list) else [x])]
        for t in items:
            sym = t["contract"]
            if not t.get("funding_rate") or not known(sym):
                continue
            out.append((Funding, {**common(sym), "rate": float(t["funding_rate"]), "predicted_rate": None,
                                  "interval_h": RAW[sym]["funding_interval"] / 3600,
                                  "next_funding_ns": _next_settle_ms(sym, push_ms) * MS,
                                  "mark_px": float(t["mark_price"]), "index_px": float(t["index_price"]),
                                  "ts_exchange_ns": push_ms * MS}))
    elif chan == "futures.trades":
        for t in res:
            sym = t["contract"]
            if known(sym):
                out.append((Trade, {**common(sym), "px": float(t["price"]), "qty": abs(t["size"]) * _qm(sym),
                                    "side": "buy" if t["size"] > 0 else "sell", "trade_id": str(t["id"]),
                                    "ts_exchange_ns": t.get("create_time_ms", t["create_time"] * 1000) * MS}))
    elif chan == "futures.order_book" and msg["event"] == "all":
        sym = res["contract"]
        if known(sym):
            out.append((BookSnapshot, {**common(sym), "bids": _levels(sym, res["bids"]),
                                       "asks": _levels(sym, res["asks"]), "seq": res.get("id", 0),
                                       "ts_exchange_ns": (res.get("t") or push_ms) * MS}))
    elif chan == "futures.order_book":
        sym = res[0]["c"]
        assert all(c["c"] == sym for c in res)  # every recorded update is about one contract
        if known(sym):
            bids = [(float(c["p"]), c["s"] * _qm(sym)) for c in res if c["s"] >= 0]
            asks = [(float(c["p"]), -c["s"] * _qm(sym)) for c in res if c["s"] <= 0]
            out.append((BookDelta, {**common(sym), "bids": bids, "asks": asks, "first_seq": res[0]["id"],
                                    "seq": res[-1]["id"], "prev_seq": None, "ts_exchange_ns": push_ms * MS}))
    return out, unknown




def _check(gate: Gate, line: bytes, where: str) -> list:
    expected, unknown = _expected(json.loads(line))
    events = gate.parse(line, recv_ns=RECV)
    problems = gate.take_problems()
    assert [type(e) for e in events] == [t for t, _ in expected], where
    for ev, (_, fields) in zip(events, expected, strict=True):
        for key, value in fields.items():
            assert _same(getattr(ev, key), value), f"{where} {key}: {getattr(ev, key)!r} != {value!r}"
    assert len(problems) == len(unknown), (where, problems)
    for sym, text in zip(unknown, problems, strict=True):
        assert sym in text and "gate" in text, where
    return events


MESSAGE_FILES = [p for p in fixture_files("gate") if "_rest_" not in p.name]


def test_fixture_set_is_what_this_test_expects() -> None:
    names = {p.name for p in fixture_files("gate")}
    assert {CONTRACTS, REST_BOOKS, BOOK_UPDATES, BOOK_TICKER, CRAWLER, TARDIS,
            "NidWare-listing-arb-checker_2025-02_rest_v4_futures_usdt_contracts_PYREPR_full.jsonl"} == names
    assert len(MESSAGE_FILES) == 4


@pytest.mark.parametrize("path", MESSAGE_FILES, ids=lambda p: p.name)
def test_every_recorded_message(gate: Gate, path) -> None:
    lines = fixture_lines("gate", path.name)
    assert lines
    for n, line in enumerate(lines, 1):
        _check(gate, line, f"{path.name}:{n}")


def test_recordings_cover_every_event_type(gate: Gate) -> None:
    seen: dict[type, int] = defaultdict(int)
    for path in MESSAGE_FILES:
        for line in fixture_lines("gate", path.name):
            for ev in gate.parse(line, 0):
                seen[type(ev)] += 1
    assert set(seen) == {Quote, BookSnapshot, BookDelta, Funding, Trade}
    # The cryptofeed session: 352 order_book_update and 75 book_ticker pushes (SOURCE.md).
    assert seen[BookDelta] >= 352 and seen[Quote] >= 75


def test_hand_checked_values(gate: Gate) -> None:
    crawler = fixture_lines("gate", CRAWLER)
    [btc] = gate.parse(crawler[1], 0)  # 50 contracts of BTC_USDT, 0.0001 BTC each
    assert (btc.px, btc.side, btc.trade_id) == (56233.3, "buy", "15366793")
    assert btc.qty == pytest.approx(0.005, rel=REL)
    assert btc.ts_exchange_ns == 1_616_327_563_918 * MS
    [mob] = gate.parse(crawler[2], 0)  # price as a JSON number, size -90: the taker sold
    assert (mob.px, mob.side) == (0.836, "sell") and mob.qty == pytest.approx(90 * _qm("MOB_USDT"), rel=REL)
    [f] = gate.parse(crawler[14], 0)  # 2022-06-02 09:38:35 UTC; 8 h contract → 16:00 UTC
    assert (f.venue_symbol, f.rate, f.predicted_rate, f.interval_h) == ("BTC_USDT", -0.00004, None, 8.0)
    assert f.next_funding_ns == 1_654_185_600 * S and (f.mark_px, f.index_px) == (29908.0, 29908.95)
    [q] = gate.parse(crawler[8], 0)
    assert (q.bid_px, q.ask_px) == (31709.2, 31709.3)
    assert (q.bid_qty, q.ask_qty) == pytest.approx((119926 * 0.0001, 56231 * 0.0001), rel=REL)
    tardis = fixture_lines("gate", TARDIS)
    assert gate.parse(tardis[17], 0) == []  # BSW_USDT with both sides empty ("" prices)
    [nested] = gate.parse(tardis[14], 0)  # 2021: the ticker list nested in another list
    assert (nested.venue_symbol, nested.rate) == ("BSV_USDT", 0.000962)
    [delta] = gate.parse(tardis[12], 0)  # legacy update: 227.2 ends at 0 on both sides; -4925 is an ask
    assert delta.bids[-1] == (227.2, 0.0) and delta.asks == [(227.2, 0.0), (227.55, 4925 * _qm("ETH_USDT"))]
    assert (delta.first_seq, delta.seq, delta.prev_seq) == (363072474, 363072479, None)
    assert gate.take_problems() == []


def test_recorded_settlement_times_sit_on_the_interval_grid() -> None:
    # What the funding-time fallback (no contracts response) relies on.
    assert {c["funding_next_apply"] % c["funding_interval"] for c in RAW.values()} == {0}


def test_settlement_time_without_contracts_response() -> None:
    from perparb.instruments.snapshot import load_registry

    v = Gate(Registry(load_registry().for_venue("gate")))  # the bundled snapshot: no funding_next_apply
    line = fixture_lines("gate", CRAWLER)[14]
    [f] = v.parse(line, 0)
    assert f.next_funding_ns == 1_654_185_600 * S


# -- books ---------------------------------------------------------------------------------
def _session() -> list[tuple[float, str, bytes]]:
    """The cryptofeed session in arrival order: websocket pushes by time_ms, each REST
    snapshot at its `current` (when Gate answered)."""
    out = [(json.loads(line)["time_ms"] / 1000, "ws", line) for line in fixture_lines("gate", BOOK_UPDATES)]
    for sym, line in zip(REST_BOOK_CONTRACTS, fixture_lines("gate", REST_BOOKS), strict=True):
        out.append((json.loads(line)["current"], sym, line))
    return sorted(out, key=lambda x: x[0])


def _rebuild() -> dict[str, tuple[dict[float, float], dict[float, float], int]]:
    """Gate's documented procedure, applied independently: (bids, asks, pushes applied) per contract."""
    snaps = {sym: json.loads(line) for sym, line in zip(REST_BOOK_CONTRACTS, fixture_lines("gate", REST_BOOKS),
                                                         strict=True)}
    books = {}
    pushes = defaultdict(list)
    for line in fixture_lines("gate", BOOK_UPDATES):
        msg = json.loads(line)
        if msg["event"] == "update":
            pushes[msg["result"]["s"]].append(msg["result"])
    for sym, snap in snaps.items():
        qm = _qm(sym)
        bids = {float(r["p"]): r["s"] * qm for r in snap["bids"]}
        asks = {float(r["p"]): r["s"] * qm for r in snap["asks"]}
        last, applied = None, 0
        for r in pushes[sym]:
            if r["u"] < snap["id"] + 1:
                continue  # already in the snapshot
            if last is None:
                assert r["U"] <= snap["id"] + 1 <= r["u"], sym
            else:
                assert r["U"] == last + 1, sym
            for side, rows in ((bids, r["b"]), (asks, r["a"])):
                for row in rows:
                    if row["s"]:
                        side[float(row["p"])] = row["s"] * qm
                    else:
                        side.pop(float(row["p"]), None)
            last, applied = r["u"], applied + 1
        books[sym] = (bids, asks, applied)
    return books


def test_recorded_session_replays_with_zero_resyncs(gate: Gate) -> None:
    books = {sym: SyncedBook(Gate.book_sync, gate.book_checksum()) for sym in REST_BOOK_CONTRACTS}
    path = "/api/v4/futures/usdt/order_book?contract={}&limit=100&with_id=true"
    for _, src, raw in _session():
        events = gate.parse(raw, 0) if src == "ws" else gate.parse_rest(path.format(src), raw, 0)
        for ev in events:
            sb = books[ev.venue_symbol]
            assert (sb.on_snapshot(ev) if type(ev) is BookSnapshot else sb.on_delta(ev)), ev.venue_symbol
    want = _rebuild()
    for sym, sb in books.items():
        assert (sb.state, sb.gaps, sb.resyncs, sb.crossed) == (SYNCED, 0, 0, 0), sym
        bids, asks, _ = want[sym]
        got_bids = dict(sb.book.bids.top(10_000))
        got_asks = dict(sb.book.asks.top(10_000))
        assert got_bids.keys() == bids.keys() and got_asks.keys() == asks.keys(), sym
        assert all(got_bids[p] == pytest.approx(q, rel=REL) for p, q in bids.items()), sym
        assert all(got_asks[p] == pytest.approx(q, rel=REL) for p, q in asks.items()), sym
    # Nine contracts bridged with a push straddling id + 1. DIA_USDT's two pushes (u = id - 1
    # and u = id) are both already in its snapshot and no later push was recorded: its book is
    # the snapshot, waiting for a push with U == id + 1. The adapter passes the u == id push
    # on (the state machine applies it, which rewrites the sizes the snapshot already has).
    assert sorted(s for s, (_, _, n) in want.items() if n == 0) == ["DIA_USDT"]
    assert sum(n for _, _, n in want.values()) == 316  # of 352 pushes; the rest predate their snapshot
    dia = json.loads(fixture_lines("gate", REST_BOOKS)[REST_BOOK_CONTRACTS.index("DIA_USDT")])
    assert books["DIA_USDT"].seq == dia["id"]


def test_gap_in_the_recorded_chain_is_detected(gate: Gate) -> None:
    lines = [line for line in fixture_lines("gate", BOOK_UPDATES) if b'"RDNT_USDT"' in line]
    snap = fixture_lines("gate", REST_BOOKS)[0]
    sb = SyncedBook(Gate.book_sync)
    path = "/api/v4/futures/usdt/order_book?contract=RDNT_USDT&limit=100&with_id=true"
    [s] = gate.parse_rest(path, snap, 0)
    assert sb.on_snapshot(s)
    applied = [d for line in lines for d in gate.parse(line, 0) if d.seq > s.seq]
    assert sb.on_delta(applied[0]) and sb.on_delta(applied[1])
    assert not sb.on_delta(applied[3])  # applied[2] lost
    assert sb.gaps == 1


def test_rest_book_snapshots(gate: Gate) -> None:
    lines = fixture_lines("gate", REST_BOOKS)
    for sym, line in zip(REST_BOOK_CONTRACTS, lines, strict=True):
        raw = json.loads(line)
        path = gate.book_snapshot_path(gate.table[sym])
        assert path == f"/api/v4/futures/usdt/order_book?contract={sym}&limit=100&with_id=true"
        [snap] = gate.parse_rest(path, line, RECV)
        assert type(snap) is BookSnapshot and (snap.venue_symbol, snap.symbol, snap.seq) == (sym, _symbol(sym), raw["id"])
        assert _same(snap.bids, _levels(sym, raw["bids"])) and _same(snap.asks, _levels(sym, raw["asks"]))
        assert snap.ts_exchange_ns == round(raw["update"] * 1000) * MS and snap.recv_ns == RECV
    assert gate.parse_rest("/api/v4/futures/usdt/contracts", lines[0], 0) == []
    assert gate.take_problems() == []


# -- metadata ------------------------------------------------------------------------------
def test_metadata_fields(gate: Gate) -> None:
    assert len(gate.table) == len(RAW) == 302 and {c["type"] for c in RAW.values()} == {"direct"}
    for sym, c in RAW.items():
        inst = gate.table[sym]
        assert (inst.symbol, inst.settle, inst.inverse, inst.price_scale) == (_symbol(sym), "USDT", False, 1.0), sym
        assert inst.contract_size == float(c["quanto_multiplier"]), sym
        assert (inst.tick_size, inst.min_qty, inst.lot_size) == (float(c["order_price_round"]),
                                                                 float(c["order_size_min"]), 1.0), sym
        assert inst.funding_interval_h == c["funding_interval"] / 3600, sym
        assert inst.status == ("inactive" if c["in_delisting"] else "active"), sym
    btc = gate.table["BTC_USDT"]
    assert (btc.asset, btc.quote, btc.contract_size, btc.tick_size, btc.taker_fee, btc.source) == (
        "BTC", "USDT", 0.0001, 0.1, Gate.taker_fee, "gate")
    assert [s for s, c in RAW.items() if c["in_delisting"]] == ["COCOS_USDT"]
    assert gate.table["1INCH_USDT"].asset == "1INCH"


def test_metadata_statuses_and_types() -> None:
    base = RAW["BTC_USDT"]
    rows = [dict(base, name="A_USDT", status="trading"), dict(base, name="B_USDT", status="delisting"),
            dict(base, name="C_USDT", status="prelaunch"), dict(base, name="D_USDT", status="delisted"),
            dict(base, name="E_USDT", type="inverse"), dict(base, name="1000F_USDT", status="trading",
                                                            enable_decimal=True, order_size_min="0.5")]
    got = {i.venue_symbol: i for i in Gate(Registry()).parse_metadata(CONTRACTS_PATH, json.dumps(rows))}
    assert {s: i.status for s, i in got.items()} == {"A_USDT": "active", "B_USDT": "inactive",
                                                      "C_USDT": "inactive", "D_USDT": "inactive",
                                                      "1000F_USDT": "active"}
    scaled = got["1000F_USDT"]
    assert (scaled.symbol, scaled.asset, scaled.price_scale, scaled.min_qty, scaled.lot_size) == (
        "F/USDT:USDT", "F", 1000.0, 0.5, 0.5)


def test_metadata_round_trip(gate: Gate) -> None:
    originals = sorted(gate.table.values(), key=lambda i: i.venue_symbol)
    originals[0] = msgspec.structs.replace(originals[0], funding_interval_h=4.0, tick_size=1e-8, status="inactive")
    originals[1] = msgspec.structs.replace(originals[1], lot_size=0.1, min_qty=0.1, funding_interval_h=1.0)
    bodies = gate.sim_metadata(originals)
    assert list(bodies) == [CONTRACTS_PATH]
    assert b'"order_price_round":"0.00000001"' in bodies[CONTRACTS_PATH]
    back = Gate(Registry()).parse_metadata(CONTRACTS_PATH, bodies[CONTRACTS_PATH])
    assert back == originals


def test_metadata_other_paths_and_errors(gate: Gate) -> None:
    [line] = fixture_lines("gate", CONTRACTS)
    assert gate.parse_metadata("/api/v4/futures/usdt/order_book?contract=BTC_USDT", line) == []
    with pytest.raises(DecodeError, match="gate"):
        gate.parse_metadata(CONTRACTS_PATH, line[:-100])
    with pytest.raises(DecodeError, match="gate"):
        gate.parse_metadata(CONTRACTS_PATH, b'{"label":"INVALID_PARAM_VALUE","message":"settle"}')
    with pytest.raises(DecodeError, match="gate"):  # a REST book under the contracts path
        gate.parse_metadata(CONTRACTS_PATH, fixture_lines("gate", REST_BOOKS)[0])


# -- protocol odds and ends -----------------------------------------------------------------
def test_acks_pongs_and_other_channels(gate: Gate) -> None:
    acks = [line for line in fixture_lines("gate", BOOK_UPDATES) if b'"event":"subscribe"' in line]
    assert len(acks) == 10 and all(gate.parse(a, 0) == [] for a in acks)
    assert gate.parse(b'{"time":1545404023,"time_ms":1545404023123,"channel":"futures.pong","event":"",'
                      b'"result":null}', 0) == []
    assert gate.parse(b'{ "time": 1, "channel": "futures.order_book_update", "event": "subscribe", '
                      b'"result": {"status": "success"} }', 0) == []
    candles = [line for line in fixture_lines("gate", CRAWLER) if b"candlesticks" in line]
    assert len(candles) == 4 and all(gate.parse(c, 0) == [] for c in candles)
    assert gate.take_problems() == []
    err = (b'{"time":1,"time_ms":1000,"channel":"futures.order_book_update","event":"subscribe",'
           b'"error":{"code":2,"message":"unknown contract NOPE_USDT"},"result":null}')
    assert gate.parse(err, 0) == []
    [problem] = gate.take_problems()
    assert "NOPE_USDT" in problem and "gate" in problem


def test_non_compact_json_still_decodes(gate: Gate) -> None:
    line = fixture_lines("gate", BOOK_TICKER)[1]
    pretty = json.dumps(json.loads(line), indent=1)
    assert gate.parse(pretty, 0) == gate.parse(line, 0) != []


UPDATE = fixture_lines("gate", BOOK_UPDATES)[11]


@pytest.mark.parametrize("raw", [
    UPDATE[:-30],
    b"<html>bad gateway</html>",
    b"",
    b"[1,2]",
    UPDATE.replace(b'"p":"0.3047"', b'"p":"abc"'),
    UPDATE.replace(b'"U":203083178', b'"U":"x"'),
    b'{"time":1,"channel":"futures.tickers","event":"update","result":[{"contract":"BTC_USDT","funding_rate":"x"}]}',
    b'{"time":1,"channel":"futures.trades","event":"update","result":[{"contract":"BTC_USDT","price":"1"}]}',
    b'{"time":1,"channel":"futures.book_ticker","event":"update","result":{"s":"BTC_USDT","b":"1x","B":1,'
    b'"a":"2","A":1,"t":1}}',
])
def test_malformed_raises_decode_error(gate: Gate, raw: bytes) -> None:
    with pytest.raises(DecodeError, match="gate"):
        gate.parse(raw, 0)


def test_malformed_rest_book_raises_decode_error(gate: Gate) -> None:
    path = gate.book_snapshot_path(gate.table["RDNT_USDT"])
    assert path is not None
    with pytest.raises(DecodeError, match="gate"):
        gate.parse_rest(path, fixture_lines("gate", REST_BOOKS)[0][:-20], 0)
    with pytest.raises(DecodeError, match="gate"):  # without with_id=true there is no id to bridge from
        gate.parse_rest(path, b'{"current":1.0,"update":1.0,"asks":[],"bids":[]}', 0)


def test_unknown_contracts_give_nothing_and_a_problem(gate: Gate) -> None:
    line = fixture_lines("gate", BOOK_UPDATES)[11].replace(b"RDNT_USDT", b"NOPE_USDT")
    assert gate.parse(line, 0) == []
    assert gate.take_problems() == ["unknown symbol 'NOPE_USDT' on gate"]
    assert gate.parse_rest("/api/v4/futures/usdt/order_book?contract=NOPE_USDT&limit=100&with_id=true",
                           fixture_lines("gate", REST_BOOKS)[0], 0) == []
    assert gate.take_problems() == ["unknown symbol 'NOPE_USDT' on gate"]


# -- simulator -------------------------------------------------------------------------------
@pytest.mark.parametrize("sym", ["BTC_USDT", "PEPE_USDT"])
def test_sim_encoders_round_trip(gate: Gate, sym: str) -> None:
    inst: Instrument = gate.table[sym]
    qm = _qm(sym)
    [q] = gate.parse(gate.sim_quote(inst, (101.5, 12.0), (101.75, 3.5), 77, 1_700_000_000_123), 9)
    assert type(q) is Quote and (q.venue_symbol, q.recv_ns, q.bid_px, q.ask_px) == (sym, 9, 101.5, 101.75)
    assert (q.bid_qty, q.ask_qty) == pytest.approx((12.0 * qm, 3.5 * qm), rel=REL)
    assert q.ts_exchange_ns == 1_700_000_000_123 * MS

    bids, asks = [(101.5, 12.0), (101.25, 0.0)], [(101.75, 3.0)]
    [d] = gate.parse(gate.sim_book(inst, False, bids, asks, 530, 500, 501, 1_700_000_000_100), 0)
    assert type(d) is BookDelta and (d.first_seq, d.seq, d.prev_seq) == (501, 530, 500)
    assert _same(d.bids, [(p, s * qm) for p, s in bids]) and _same(d.asks, [(p, s * qm) for p, s in asks])
    [gap] = gate.parse(gate.sim_book(inst, False, bids, asks, 534, 533, 534, 1), 0)
    assert gap.prev_seq == 533
    [full] = gate.parse(gate.sim_book(inst, True, bids[:1], asks, 535, -1, 535, 1_700_000_000_200), 0)
    assert type(full) is BookSnapshot and full.seq == 535 and full.ts_exchange_ns == 1_700_000_000_200 * MS

    path = gate.book_snapshot_path(inst)
    assert path is not None and gate.sim_rest_book(path) == sym
    assert gate.sim_rest_book(CONTRACTS_PATH) is None
    [snap] = gate.parse_rest(path, gate.sim_rest_book_body(inst, bids[:1], asks, 499, 1_700_000_000_050), 5)
    assert (snap.seq, snap.recv_ns, snap.ts_exchange_ns) == (499, 5, 1_700_000_000_050 * MS)
    assert _same(snap.bids, [(101.5, 12.0 * qm)]) and _same(snap.asks, [(101.75, 3.0 * qm)])

    # The simulator's next settlement is on the grid, which is what Gate's ticker implies.
    [f] = gate.parse(gate.sim_funding(inst, 0.000125, 1_700_006_400_000, 101.6, 101.55, 1_700_000_000_000), 0)
    assert (f.rate, f.predicted_rate, f.interval_h, f.mark_px, f.index_px) == (0.000125, None, 8.0, 101.6, 101.55)
    assert (f.next_funding_ns, f.ts_exchange_ns) == (1_700_006_400_000 * MS, 1_700_000_000_000 * MS)


def test_sim_sizes_are_whole_contracts_or_decimal_text(gate: Gate) -> None:
    inst = gate.table["BTC_USDT"]
    msg = json.loads(gate.sim_book(inst, False, [(1.0, 12.0)], [(2.0, 0.5)], 2, 1, 2, 1))
    assert msg["result"]["b"] == [{"p": "1", "s": 12}] and msg["result"]["a"] == [{"p": "2", "s": "0.5"}]


def test_sim_handle(gate: Gate) -> None:
    [conn] = gate.connections([gate.table["BTC_USDT"], gate.table["ETH_USDT"]])
    assert conn.path == "/v4/ws/usdt"
    topics = []
    for m in conn.subscribe:
        replies, t = gate.sim_handle(m)
        [ack] = [json.loads(r) for r in replies]
        assert (ack["channel"], ack["event"], ack["result"]) == (json.loads(m)["channel"], "subscribe",
                                                                 {"status": "success"})
        assert all(gate.parse(r, 0) == [] for r in replies)
        topics += t
    assert sorted(topics) == sorted((k, s) for s in ("BTC_USDT", "ETH_USDT") for k in ("quote", "book", "funding"))
    replies, t = gate.sim_handle(Gate.heartbeat_text or "")
    [pong] = [json.loads(r) for r in replies]
    assert pong["channel"] == "futures.pong" and t == [] and gate.parse(replies[0], 0) == []
    unsub = json.dumps({"time": 1, "channel": "futures.tickers", "event": "unsubscribe", "payload": ["BTC_USDT"]})
    replies, t = gate.sim_handle(unsub)
    assert [json.loads(r)["event"] for r in replies] == ["unsubscribe"] and t == []
    trades = json.dumps({"time": 1, "channel": "futures.trades", "event": "subscribe", "payload": ["ETH_USDT"]})
    assert gate.sim_handle(trades)[1] == [("trade", "ETH_USDT")]
    assert gate.sim_handle("not json") == ([], [])
    assert gate.take_problems() == []


def test_connections(gate: Gate) -> None:
    insts = sorted(gate.table.values(), key=lambda i: i.venue_symbol)[:60]
    [conn] = gate.connections(insts)
    assert conn.instruments == insts
    msgs = [json.loads(m) for m in conn.subscribe]
    assert all(m["event"] == "subscribe" and isinstance(m["time"], int) for m in msgs)
    by_chan = defaultdict(list)
    for m in msgs:
        by_chan[m["channel"]].append(m["payload"])
    syms = [i.venue_symbol for i in insts]
    assert [s for p in by_chan["futures.book_ticker"] for s in p] == syms
    assert [s for p in by_chan["futures.tickers"] for s in p] == syms
    assert by_chan["futures.order_book_update"] == [[s, "100ms", "100"] for s in syms]
    assert all(len(p) <= 50 for p in by_chan["futures.book_ticker"])
    [no_books] = gate.connections(insts, books=False)
    assert all(json.loads(m)["channel"] != "futures.order_book_update" for m in no_books.subscribe)


def test_card() -> None:
    assert venue_class("gate") is Gate
    assert (Gate.id, Gate.ws_url, Gate.rest_url, Gate.book_sync) == (
        "gate", "wss://fx-ws.gateio.ws", "https://api.gateio.ws", "rest_bridged")
    assert json.loads(Gate.heartbeat_text or "") == {"time": 0, "channel": "futures.ping"}
    assert (Gate.heartbeat_s, Gate.silence_s, Gate.taker_fee, Gate.maker_fee) == (10.0, 30.0, 0.0005, 0.0002)
    assert Gate.metadata_paths == (CONTRACTS_PATH,)
