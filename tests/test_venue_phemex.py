"""Phemex USDT-M adapter against recorded messages.

Expected values are computed here from the raw JSON with the json module, never taken from
the adapter. USDT-M sizes (``Rq``) are base-coin quantities, so a contract is one unit of the
base; the recorded product list (2021) predates the USDT-M products and yields none, and the
2021 websocket recordings are the LEGACY coin-margined contract API, which this adapter does
not decode (see the module docstring).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

import msgspec
import pytest

from conftest import fixture_files, fixture_lines
from conftest import same as _same
from perparb.feeds.booksync import SYNCED, SyncedBook
from perparb.instruments.registry import Registry
from perparb.model import BookDelta, BookSnapshot, Funding, Instrument, Trade
from perparb.venues import venue_class
from perparb.venues.base import DecodeError
from perparb.venues.phemex import Phemex

META_PATH = "/public/products"
PRODUCTS_2021 = "cryptofeed_2021-07-03_rest_exchange_public_cfg_v2_products_full.jsonl"
TARDIS = "tardis-node-tests_phemex_2020-2022_samples.jsonl"
LEGACY = ("LEGACY_contract_Ep_cryptofeed_2021-07-03_ws_orderbook.jsonl",
          "LEGACY_contract_Ep_cryptofeed_2021-07-03_ws_trades.jsonl")
RECV = 123
REL = 1e-12
HOUR_NS = 3_600_000_000_000

# In the shape of GET /public/products (data.perpProductsV2), as the API docs and clients show it.
PRODUCTS = {"code": 0, "msg": "", "data": {"products": [
    {"symbol": "BTCUSD", "type": "Perpetual", "settleCurrency": "BTC", "quoteCurrency": "USD", "contractSize": 1.0,
     "priceScale": 4, "status": "Listed"}], "perpProductsV2": [
    {"symbol": "BTCUSDT", "type": "PerpetualV2", "baseCurrency": "BTC", "quoteCurrency": "USDT",
     "settleCurrency": "USDT", "tickSize": "0.1", "qtyStepSize": "0.001", "minOrderValueRv": "1",
     "priceScale": 0, "ratioScale": 0, "status": "Listed", "fundingInterval": 28800},
    {"symbol": "1000PEPEUSDT", "type": "PerpetualV2", "baseCurrency": "1000PEPE", "quoteCurrency": "USDT",
     "settleCurrency": "USDT", "tickSize": "0.0000001", "qtyStepSize": "1", "minOrderValueRv": "1",
     "status": "Listed", "fundingInterval": 14400},
    {"symbol": "LUNAUSDT", "type": "PerpetualV2", "baseCurrency": "LUNA", "quoteCurrency": "USDT",
     "settleCurrency": "USDT", "tickSize": "0.0001", "qtyStepSize": "0.1", "status": "Delisted",
     "fundingInterval": 28800},
]}}


@pytest.fixture
def venue() -> Phemex:
    return Phemex(Registry())


def _next_8h_ns(ts_ns: int) -> int:
    """Phemex settles at 00:00, 08:00, 16:00 UTC: the first such time after ts."""
    t = datetime.fromtimestamp(ts_ns // 1_000_000_000, UTC)
    hour = (t.hour // 8 + 1) * 8
    day = datetime(t.year, t.month, t.day, tzinfo=UTC).timestamp()
    return int(day + hour * 3600) * 1_000_000_000


def _canonical(sym: str) -> str:
    base = sym[:-4]
    return f"{base}/USDT:USDT"


def _expected(msg: dict) -> list[tuple[type, dict]]:
    if "orderbook_p" in msg:
        sym = msg["symbol"]
        common = {"venue": "phemex", "venue_symbol": sym, "symbol": _canonical(sym), "recv_ns": RECV,
                  "ts_exchange_ns": msg["timestamp"],
                  "bids": [(float(p), float(q)) for p, q in msg["orderbook_p"]["bids"]],
                  "asks": [(float(p), float(q)) for p, q in msg["orderbook_p"]["asks"]]}
        if msg["type"] == "snapshot":
            return [(BookSnapshot, {**common, "seq": msg["sequence"]})]
        return [(BookDelta, {**common, "seq": msg["sequence"], "first_seq": msg["sequence"]})]
    if "trades_p" in msg:
        if msg["type"] == "snapshot":
            return []
        return [(Trade, {"venue_symbol": msg["symbol"], "symbol": _canonical(msg["symbol"]), "px": float(p),
                         "qty": float(q), "side": side.lower(), "ts_exchange_ns": ts})
                for ts, side, p, q in msg["trades_p"]]
    if msg.get("method") == "perp_market24h_pack_p.update":
        out = []
        for (sym, _o, _h, _l, _c, _v, _t, _oi, index, mark, rate, pred) in msg["data"]:
            out.append((Funding, {"venue_symbol": sym, "symbol": _canonical(sym), "rate": float(rate),
                                  "predicted_rate": float(pred), "mark_px": float(mark), "index_px": float(index),
                                  "interval_h": 8.0, "next_funding_ns": _next_8h_ns(msg["timestamp"]),
                                  "ts_exchange_ns": msg["timestamp"]}))
        return out
    return []  # acks, and the legacy contract API (book / trades / market24h keys)




MESSAGE_FILES = [p for p in fixture_files("phemex") if "products" not in p.name]


def test_fixture_set_is_what_this_test_expects() -> None:
    newer = ["DoraJar-44-Phemex_2025-08_rest_exchange_public_cfg_v2_products_full.jsonl",
             "DoraJar-44-Phemex_2025-08_rest_public_products_full.jsonl"]
    assert sorted(p.name for p in fixture_files("phemex")) == sorted([*LEGACY, PRODUCTS_2021, TARDIS, *newer])


@pytest.mark.parametrize("path", MESSAGE_FILES, ids=lambda p: p.name)
def test_every_recorded_message(venue: Phemex, path) -> None:
    for n, line in enumerate(fixture_lines("phemex", path.name), 1):
        expected = _expected(json.loads(line))
        events = venue.parse(line, RECV)
        where = f"{path.name}:{n}"
        assert [type(e) for e in events] == [t for t, _ in expected], where
        for ev, (_, fields) in zip(events, expected, strict=True):
            for key, value in fields.items():
                assert _same(getattr(ev, key), value), f"{where} {key}: {getattr(ev, key)!r} != {value!r}"
        assert venue.take_problems() == [], where


def test_recordings_cover_the_usdt_m_event_types(venue: Phemex) -> None:
    events = [e for line in fixture_lines("phemex", TARDIS) for e in venue.parse(line, 0)]
    # No Quote: Phemex has no BBO channel, quotes come from the synced book.
    assert {type(e) for e in events} == {BookSnapshot, BookDelta, Funding, Trade}


def test_legacy_contract_api_gives_no_events(venue: Phemex) -> None:
    # Ep-scaled integers and contract counts of the coin-margined API: they would need the legacy
    # product list's priceScale and contractSize, which instruments do not carry. Not decoded.
    for name in LEGACY:
        lines = fixture_lines("phemex", name)
        assert len(lines) > 10
        assert all(venue.parse(line, 0) == [] for line in lines)
    legacy_tardis = [x for x in fixture_lines("phemex", TARDIS) if b'"book"' in x or b'"trades"' in x
                     or b'"market24h"' in x]
    assert len(legacy_tardis) == 7 and all(venue.parse(x, 0) == [] for x in legacy_tardis)
    assert venue.take_problems() == []


def test_hand_checked_values(venue: Phemex) -> None:
    lines = fixture_lines("phemex", TARDIS)
    [snap] = venue.parse(lines[7], 0)
    assert snap.bids[0] == (16543.7, 0.825) and snap.asks == [(16548.0, 1.453)]
    assert snap.symbol == "BTC/USDT:USDT" and snap.ts_exchange_ns == 1669198850490348246
    sol, btc = venue.parse(lines[10], 0)
    assert (btc.rate, btc.predicted_rate, btc.mark_px, btc.index_px) == (0.0001, 0.0001, 16554.73942506,
                                                                         16553.56998432)
    assert btc.next_funding_ns == 1669219200 * 1_000_000_000  # 2022-11-23 16:00 UTC
    assert sol.symbol == "SOL/USDT:USDT"


def test_recorded_book_replays_without_resync(venue: Phemex) -> None:
    msgs = [json.loads(x) for x in fixture_lines("phemex", TARDIS) if b'"orderbook_p"' in x]
    assert [m["type"] for m in msgs] == ["snapshot", "incremental"]
    assert msgs[1]["sequence"] - msgs[0]["sequence"] == 12  # not contiguous, by design
    sb = SyncedBook(Phemex.book_sync)
    for m in msgs:
        for ev in venue.parse(json.dumps(m), 0):
            assert (sb.on_snapshot(ev) if type(ev) is BookSnapshot else sb.on_delta(ev))
    assert sb.state == SYNCED and (sb.gaps, sb.resyncs) == (0, 0)
    book: dict[tuple[str, float], float] = {}
    for m in msgs:
        if m["type"] == "snapshot":
            book.clear()
        for side in ("bids", "asks"):
            for p, q in m["orderbook_p"][side]:
                book[(side, float(p))] = float(q)
    want_bids = sorted(((p, q) for (s, p), q in book.items() if s == "bids" and q), reverse=True)
    want_asks = sorted((p, q) for (s, p), q in book.items() if s == "asks" and q)
    assert sb.book.bids.top(100) == want_bids and sb.book.asks.top(100) == want_asks


def _book_msg(seq: int, kind: str = "incremental", sym: str = "BTCUSDT") -> bytes:
    return json.dumps({"depth": 30, "orderbook_p": {"asks": [["20702.9", "0.718"]], "bids": [["20700.5", "1.6"]]},
                       "sequence": seq, "symbol": sym, "timestamp": 1666854171201355264, "type": kind}).encode()


def test_sequence_rule(venue: Phemex) -> None:
    [snap] = venue.parse(_book_msg(77668100, "snapshot"), 0)
    sb = SyncedBook(Phemex.book_sync)
    assert sb.on_snapshot(snap)
    # Increasing but not contiguous (the docs' own samples jump 77668172 -> 77668209): accepted.
    for seq in (77668172, 77668209):
        [d] = venue.parse(_book_msg(seq), 0)
        assert d.prev_seq is None and d.first_seq == d.seq == seq and sb.on_delta(d)
    # A repeated or older sequence means the stream is out of order: the book is invalidated.
    [stale] = venue.parse(_book_msg(77668209), 0)
    assert stale.prev_seq == -1 and not sb.on_delta(stale) and sb.gaps == 1
    # A new snapshot resets the rule.
    [snap2] = venue.parse(_book_msg(77668300, "snapshot"), 0)
    [after] = venue.parse(_book_msg(77668301), 0)
    assert sb.on_snapshot(snap2) and sb.on_delta(after) and after.prev_seq is None


def test_unknown_symbol_gives_no_event_and_a_problem(venue: Phemex) -> None:
    assert venue.parse(_book_msg(1, "snapshot", "BTCUSD"), 0) == []
    assert venue.take_problems() == ["unknown symbol 'BTCUSD' on phemex"]


def test_funding_pack_only_for_subscribed_symbols(venue: Phemex) -> None:
    line = next(x for x in fixture_lines("phemex", TARDIS) if b"perp_market24h_pack_p" in x)
    assert len(venue.parse(line, 0)) == 2
    venue.connections([venue.instrument("BTCUSDT")])  # type: ignore[list-item]
    assert [f.venue_symbol for f in venue.parse(line, 0)] == ["BTCUSDT"]


def test_funding_uses_fields_header_and_instrument_interval(venue: Phemex) -> None:
    venue.registry.add_many(venue.parse_metadata(META_PATH, json.dumps(PRODUCTS)))
    fields = ["symbol", "markRp", "indexRp", "fundingRateRr", "predFundingRateRr"]
    ts = 1666862556850547000  # 2022-10-27 09:22 UTC
    msg = {"data": [["1000PEPEUSDT", "0.0011", "0.00109", "-0.0003", ""]], "fields": fields,
           "method": "perp_market24h_pack_p.update", "timestamp": ts, "type": "snapshot"}
    [f] = venue.parse(json.dumps(msg), 0)
    assert (f.symbol, f.rate, f.predicted_rate, f.interval_h) == ("PEPE/USDT:USDT", -0.0003, None, 4.0)
    assert f.mark_px == pytest.approx(0.0011 / 1000, rel=REL)
    assert f.next_funding_ns == (ts // (4 * HOUR_NS) + 1) * 4 * HOUR_NS  # 12:00 UTC


def test_acks_pong_and_errors(venue: Phemex) -> None:
    assert venue.parse(b'{"error":null,"id":1234,"result":{"status":"success"}}', 0) == []
    assert venue.parse(b'{"error":null,"id":0,"result":"pong"}', 0) == []
    assert venue.take_problems() == []
    assert venue.parse(b'{"error":{"code":6001,"message":"invalid argument"},"id":5,"result":null}', 0) == []
    [problem] = venue.take_problems()
    assert "invalid argument" in problem and "phemex" in problem


@pytest.mark.parametrize("raw", [
    fixture_lines("phemex", TARDIS)[7][:-30],
    _book_msg(5).replace(b'"0.718"', b'"abc"'),
    _book_msg(5).replace(b'"incremental"', b'"delta"'),
    b'{"data":[["BTCUSDT","1"]],"method":"perp_market24h_pack_p.update","timestamp":1,"type":"incremental"}',
    b'{"data":[["BTCUSDT","1","1","1","1","1","1","0","x","1","0.1","0.1"]],'
    b'"method":"perp_market24h_pack_p.update","timestamp":1}',
    b'{"sequence":1,"symbol":"BTCUSDT","trades_p":[[1,"Buy","abc","1"]],"type":"incremental"}',
    b"<html>bad gateway</html>",
])
def test_malformed_raises_decode_error(venue: Phemex, raw: bytes) -> None:
    with pytest.raises(DecodeError, match="phemex"):
        venue.parse(raw, 0)


# -- instruments -----------------------------------------------------------------------------
def test_derive() -> None:
    v = Phemex(Registry())
    btc = v.derive("BTCUSDT")
    assert btc is not None and (btc.symbol, btc.asset, btc.contract_size, btc.status) == (
        "BTC/USDT:USDT", "BTC", 1.0, "derived")
    pepe = v.derive("1000PEPEUSDT")
    assert pepe is not None and (pepe.asset, pepe.price_scale) == ("PEPE", 1000.0)
    usdc = v.derive("BTCUSDC")
    assert usdc is not None and usdc.symbol == "BTC/USDC:USDC"
    assert [v.derive(s) for s in ("sBTCUSDT", ".BTCUSDT", "BTCUSD", "USDT")] == [None] * 4


def test_2021_product_list_has_no_usdt_m_products(venue: Phemex) -> None:
    [line] = fixture_lines("phemex", PRODUCTS_2021)
    assert "perpProductsV2" not in json.loads(line)["data"]
    assert venue.parse_metadata("/exchange/public/cfg/v2/products", line) == []


def test_metadata_fields(venue: Phemex) -> None:
    got = {i.venue_symbol: i for i in venue.parse_metadata(META_PATH, json.dumps(PRODUCTS))}
    assert sorted(got) == ["1000PEPEUSDT", "BTCUSDT", "LUNAUSDT"]  # not the legacy BTCUSD
    btc = got["BTCUSDT"]
    assert (btc.symbol, btc.contract_size, btc.tick_size, btc.lot_size, btc.min_qty, btc.min_notional) == (
        "BTC/USDT:USDT", 1.0, 0.1, 0.001, 0.001, 1.0)
    assert (btc.funding_interval_h, btc.status, btc.taker_fee, btc.source) == (8.0, "active", 0.0006, "phemex")
    pepe = got["1000PEPEUSDT"]
    assert (pepe.asset, pepe.price_scale, pepe.funding_interval_h) == ("PEPE", 1000.0, 4.0)
    assert got["LUNAUSDT"].status == "inactive"
    with pytest.raises(DecodeError, match="phemex"):
        venue.parse_metadata(META_PATH, b'{"code":10500,"msg":"busy","data":{}}')
    assert venue.parse_metadata("/md/v2/orderbook?symbol=BTCUSDT", b"{}") == []


def test_metadata_round_trip(venue: Phemex) -> None:
    originals = sorted(venue.parse_metadata(META_PATH, json.dumps(PRODUCTS)), key=lambda i: i.venue_symbol)
    bodies = venue.sim_metadata(originals)
    assert list(bodies) == [META_PATH]
    back = Phemex(Registry()).parse_metadata(META_PATH, bodies[META_PATH])
    assert back == originals


# -- simulator -------------------------------------------------------------------------------
@pytest.mark.parametrize("sym", ["BTCUSDT", "1000PEPEUSDT"])
def test_sim_encoders_round_trip(venue: Phemex, sym: str) -> None:
    inst: Instrument = venue.instrument(sym)  # type: ignore[assignment]
    s = inst.price_scale
    assert venue.sim_quote(inst, (1.0, 1.0), (2.0, 1.0), 1, 0) is None  # no BBO channel
    bids, asks = [(101.5, 12.0), (101.25, 0.5)], [(101.75, 3.0)]
    [snap] = venue.parse(venue.sim_book(inst, True, bids, asks, 500, -1, 500, 1_700_000_000_000), 0)
    assert type(snap) is BookSnapshot and snap.seq == 500 and snap.ts_exchange_ns == 1_700_000_000_000_000_000
    assert _same(snap.bids, [(p / s, q * s) for p, q in bids]) and _same(snap.asks, [(101.75 / s, 3.0 * s)])
    [delta] = venue.parse(venue.sim_book(inst, False, [], [(101.75, 0.0)], 501, 500, 501, 1_700_000_000_100), 0)
    assert type(delta) is BookDelta and (delta.seq, delta.prev_seq, delta.asks) == (501, None, [(101.75 / s, 0.0)])
    for full in (True, False):
        raw = venue.sim_funding(inst, 0.000125, 1_700_006_400_000, 101.6, 101.55, 1_700_000_000_000, full)
        assert ("fields" in json.loads(raw)) is full
        [f] = venue.parse(raw, 0)
        assert (f.rate, f.predicted_rate, f.interval_h) == (0.000125, 0.000125, 8.0)
        assert f.mark_px == pytest.approx(101.6 / s, rel=REL) and f.index_px == pytest.approx(101.55 / s, rel=REL)
        assert f.next_funding_ns == _next_8h_ns(1_700_000_000_000_000_000)


def test_sim_handle(venue: Phemex) -> None:
    venue.sim_metadata([venue.instrument("BTCUSDT"), venue.instrument("ETHUSDT")])  # type: ignore[list-item]
    [pong], topics = venue.sim_handle(Phemex.heartbeat_text or "")
    assert json.loads(pong) == {"error": None, "id": 0, "result": "pong"} and topics == []
    assert venue.parse(pong, 0) == []
    ok = {"error": None, "id": 3, "result": {"status": "success"}}
    for method, params, want in (
            ("orderbook_p.subscribe", ["BTCUSDT"], [("book", "BTCUSDT")]),
            ("trade_p.subscribe", ["ETHUSDT"], [("trade", "ETHUSDT")]),
            ("perp_market24h_pack_p.subscribe", [], [("funding", "BTCUSDT"), ("funding", "ETHUSDT")]),
            ("orderbook_p.unsubscribe", [], [])):
        [reply], topics = venue.sim_handle(json.dumps({"id": 3, "method": method, "params": params}))
        assert json.loads(reply) == ok and topics == want
        assert venue.parse(reply, 0) == []
    [err], topics = venue.sim_handle(json.dumps({"id": 4, "method": "nope.subscribe", "params": []}))
    assert json.loads(err)["error"] and topics == []
    assert venue.sim_handle("not json") == ([], [])


def test_connections_and_resubscribe(venue: Phemex) -> None:
    insts = [venue.instrument(f"C{n}USDT") for n in range(25)]
    conns = venue.connections(insts)  # type: ignore[arg-type]
    assert [len(c.instruments) for c in conns] == [19, 6]
    assert all(len(c.subscribe) <= 20 and c.path == "/" for c in conns)
    msgs = [[json.loads(m) for m in c.subscribe] for c in conns]
    assert [m["method"] for c in msgs for m in c].count("perp_market24h_pack_p.subscribe") == 1
    books = [m["params"][0] for c in msgs for m in c if m["method"] == "orderbook_p.subscribe"]
    assert books == [f"C{n}USDT" for n in range(25)]
    assert venue.connections(insts, books=False)[0].subscribe == conns[0].subscribe  # the book is the quote
    resub = [json.loads(m) for m in venue.resubscribe_book(insts[20])]  # type: ignore[arg-type]
    assert resub[0] == {"id": 0, "method": "orderbook_p.unsubscribe", "params": []}
    assert [m["params"] for m in resub[1:]] == [[f"C{n}USDT"] for n in range(19, 25)]


def test_card() -> None:
    assert venue_class("phemex") is Phemex
    assert (Phemex.id, Phemex.ws_url, Phemex.rest_url, Phemex.book_sync) == (
        "phemex", "wss://ws.phemex.com", "https://api.phemex.com", "in_stream")
    assert json.loads(Phemex.heartbeat_text or "") == {"id": 0, "method": "server.ping", "params": []}
    assert Phemex.heartbeat_s < 30 and Phemex.metadata_paths == (META_PATH,)
    assert (Phemex.taker_fee, Phemex.maker_fee, Phemex.sim_has_sequence) == (0.0006, 0.0001, False)
    assert msgspec.json.decode(Phemex.heartbeat_text or "")["method"] == "server.ping"
