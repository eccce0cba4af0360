"""Hyperliquid adapter against real recorded messages.

Expected values are computed here from the raw JSON (json module) and the ``meta`` response
(szDecimals, coin names), never taken from the adapter.
"""

from __future__ import annotations

import json
import re

import msgspec
import pytest

from conftest import check_events as _check
from conftest import fixture_files, fixture_lines
from conftest import same as _same
from perparb.feeds.booksync import SYNCED, SyncedBook
from perparb.instruments.registry import Registry
from perparb.model import BookSnapshot, Funding, Quote, Trade
from perparb.venues import venue_class
from perparb.venues.base import DecodeError
from perparb.venues.hyperliquid import Hyperliquid

META_PATH = "/info?type=meta"
META = "hl-python-sdk-cassette_2023-07-17_rest_info_meta.jsonl"
# REST recordings: the POST body each one answered, written as captures record it.
REST = {
    META: META_PATH,
    "hl-python-sdk-cassette_2023-07-17_rest_info_l2Book_DYDX.jsonl": "/info?type=l2Book&coin=DYDX",
    "nautilus_rest_info_l2Book_BTC_2025-10_excerpt.jsonl": "/info?type=l2Book&coin=BTC",
    "hl-python-sdk-cassette_2023-07-17_rest_info_allMids.jsonl": "/info?type=allMids",
    "hl-python-sdk-cassette_2023-07-17_rest_info_fundingHistory_BTC.jsonl": "/info?type=fundingHistory&coin=BTC",
}
TARDIS = "tardis-node-tests_hyperliquid_2024-10_2025-06_samples.jsonl"
HOUR_NS = 3_600_000_000_000
RECV = 1_730_160_007_700_000_123  # 2024-10-29 00:00:07.7 UTC
REL = 1e-12

UNIVERSE = {a["name"]: a for a in json.loads(fixture_lines("hyperliquid", META)[0])["universe"]}


def _units(coin: str) -> tuple[str, float]:
    """(canonical symbol, scale): a k prefix is 1000 units of the coin; margin and quote are USDC."""
    m = re.fullmatch(r"k([A-Z][A-Z0-9]*)", coin)
    return (f"{m.group(1)}/USDC:USDC", 1000.0) if m else (f"{coin}/USDC:USDC", 1.0)


def _hl() -> Hyperliquid:
    v = Hyperliquid(Registry())
    v.registry.add_many(v.parse_metadata(META_PATH, fixture_lines("hyperliquid", META)[0]))
    return v


@pytest.fixture
def hl() -> Hyperliquid:
    return _hl()


def _levels(rows: list[dict], scale: float) -> list[tuple[float, float]]:
    return [(float(r["px"]) / scale, float(r["sz"]) * scale) for r in rows]


def _book(d: dict) -> tuple[type, dict]:
    symbol, scale = _units(d["coin"])
    return BookSnapshot, {"venue": "hyperliquid", "venue_symbol": d["coin"], "symbol": symbol,
                          "bids": _levels(d["levels"][0], scale), "asks": _levels(d["levels"][1], scale), "seq": 0,
                          "checksum": None, "ts_exchange_ns": d["time"] * 1_000_000, "recv_ns": RECV}


def _expected(msg: object) -> list[tuple[type, dict]]:
    if not isinstance(msg, dict) or "channel" not in msg:
        return []
    chan, d = msg["channel"], msg["data"]
    if chan == "l2Book":
        return [_book(d)]
    if chan == "bbo":
        if len(d["bbo"]) != 2 or None in d["bbo"]:
            return []
        symbol, scale = _units(d["coin"])
        (bp, bq), (ap, aq) = _levels(d["bbo"], scale)
        return [(Quote, {"venue_symbol": d["coin"], "symbol": symbol, "bid_px": bp, "bid_qty": bq, "ask_px": ap,
                         "ask_qty": aq, "ts_exchange_ns": d["time"] * 1_000_000})]
    if chan == "trades":
        out = []
        for t in d:
            symbol, scale = _units(t["coin"])
            out.append((Trade, {"venue_symbol": t["coin"], "symbol": symbol, "px": float(t["px"]) / scale,
                                "qty": float(t["sz"]) * scale, "side": {"B": "buy", "A": "sell"}[t["side"]],
                                "trade_id": str(t["tid"]), "ts_exchange_ns": t["time"] * 1_000_000}))
        return out
    if chan == "activeAssetCtx":
        symbol, scale = _units(d["coin"])
        c = d["ctx"]
        return [(Funding, {"venue_symbol": d["coin"], "symbol": symbol, "rate": float(c["funding"]),
                           "predicted_rate": None, "interval_h": 1.0,
                           "next_funding_ns": (RECV // HOUR_NS + 1) * HOUR_NS,
                           "mark_px": float(c["markPx"]) / scale, "index_px": float(c["oraclePx"]) / scale,
                           "ts_exchange_ns": 0})]
    return []  # subscriptionResponse, allMids, allDexsAssetCtxs






MESSAGE_FILES = [p for p in fixture_files("hyperliquid") if p.name not in REST and "_rest_" not in p.name]


def test_fixture_set_is_what_this_test_expects() -> None:
    names = {p.name for p in fixture_files("hyperliquid")}
    newer = "vj0246-Crypto_2026_rest_info_meta_full.jsonl"  # newer metadata
    assert set(REST) <= names and newer in names and len(MESSAGE_FILES) == len(names) - len(REST) - 1 == 4


@pytest.mark.parametrize("path", MESSAGE_FILES, ids=lambda p: p.name)
def test_every_recorded_message(hl: Hyperliquid, path) -> None:
    for n, line in enumerate(fixture_lines("hyperliquid", path.name), 1):
        _check(hl.parse(line, RECV), _expected(json.loads(line)), f"{path.name}:{n}")
    # Coins missing from the 2023 meta (HYPE, FXS, MOODENG...) are derived from their names.
    assert hl.take_problems() == []


@pytest.mark.parametrize("name", sorted(REST))
def test_every_recorded_rest_response(hl: Hyperliquid, name: str) -> None:
    path = REST[name]
    for line in fixture_lines("hyperliquid", name):
        body = json.loads(line)
        events = hl.parse_rest(path, line, RECV)
        if "type=l2Book" in path:
            _check(events, [_book(body)], name)
        else:
            assert events == [], name
        if name != META:
            assert hl.parse_metadata(path, line) == []
        if isinstance(body, dict):
            assert hl.parse(line, RECV) == []  # not a websocket push: no channel
        else:
            with pytest.raises(DecodeError, match="hyperliquid"):
                hl.parse(line, RECV)  # no websocket push is a bare array
    assert hl.take_problems() == []


def test_recordings_cover_every_event_type(hl: Hyperliquid) -> None:
    seen = {type(e) for p in MESSAGE_FILES for line in fixture_lines("hyperliquid", p.name)
            for e in hl.parse(line, RECV)}
    assert seen == {BookSnapshot, Funding, Trade}  # the only recorded bbo has one side
    [q] = hl.parse(b'{"channel":"bbo","data":{"coin":"BTC","time":1750948919838,"bbo":[{"px":"107575.0","sz":"3.87947",'
                   b'"n":17},{"px":"107576.0","sz":"0.1","n":1}]}}', RECV)
    assert (q.bid_px, q.bid_qty, q.ask_px, q.ask_qty) == (107575.0, 3.87947, 107576.0, 0.1)


# -- books -----------------------------------------------------------------------------------
def test_recorded_books_replay_as_whole_snapshots(hl: Hyperliquid) -> None:
    sb: dict[str, SyncedBook] = {}
    books: list[tuple[dict, BookSnapshot]] = []
    for name, path in REST.items():
        if "type=l2Book" in path:
            [line] = fixture_lines("hyperliquid", name)
            books.append((json.loads(line), hl.parse_rest(path, line, RECV)[0]))
    for p in MESSAGE_FILES:
        for line in fixture_lines("hyperliquid", p.name):
            msg = json.loads(line)
            if msg.get("channel") == "l2Book":
                books.append((msg["data"], hl.parse(line, RECV)[0]))
    assert len(books) == 5
    for raw, ev in books:
        book = sb.setdefault(ev.venue_symbol, SyncedBook(Hyperliquid.book_sync))
        assert book.on_snapshot(ev) and book.state == SYNCED and book.resyncs == 0
        _, scale = _units(raw["coin"])
        want = _levels(raw["levels"][0], scale) + _levels(raw["levels"][1], scale)
        assert _same(book.book.bids.top(100) + book.book.asks.top(100), want), raw["coin"]
    assert sb["SHIA"].book.best_bid() is None  # the recorded empty book


def test_kpepe_is_thousand_pepe(hl: Hyperliquid) -> None:
    inst = hl.table["kPEPE"]
    assert (inst.symbol, inst.asset, inst.price_scale, inst.status) == ("PEPE/USDC:USDC", "PEPE", 1000.0, "active")
    [book] = hl.parse(b'{"channel":"l2Book","data":{"coin":"kPEPE","time":1,"levels":[[{"px":"0.001565","sz":"1000",'
                      b'"n":1}],[{"px":"0.001566","sz":"20","n":1}]]}}', 0)
    # 1000 kPEPE units at 0.001565 per 1000 PEPE: 1,000,000 PEPE at 0.000001565.
    assert book.bids == [(pytest.approx(0.000001565, rel=REL), 1_000_000.0)]
    assert book.asks == [(pytest.approx(0.000001566, rel=REL), 20_000.0)]


def test_funding_is_hourly_and_settles_at_the_next_full_hour(hl: Hyperliquid) -> None:
    ctx = (b'{"channel":"activeAssetCtx","data":{"coin":"BTC","ctx":{"funding":"0.0000125","openInterest":"1.0",'
           b'"oraclePx":"77605.0","markPx":"77562.0","midPx":null,"premium":null,"impactPxs":null}}}')
    at = 1_761_786_491_067_000_000  # 2025-10-30 01:08:11 UTC
    [f] = hl.parse(ctx, at)
    assert (f.rate, f.predicted_rate, f.interval_h) == (0.0000125, None, 1.0)
    assert f.next_funding_ns == 1_761_789_600_000_000_000  # 02:00 UTC
    assert (f.mark_px, f.index_px, f.ts_exchange_ns, f.recv_ns) == (77562.0, 77605.0, 0, at)
    [g] = hl.parse(ctx, 1_761_789_600_000_000_000)  # exactly on the hour: the next one
    assert g.next_funding_ns == 1_761_793_200_000_000_000
    assert hl.parse(b'{"channel":"activeAssetCtx","data":{"coin":"BTC","ctx":{"funding":null}}}', at) == []


# -- unknown and malformed ----------------------------------------------------------------------
@pytest.mark.parametrize("coin", ["@107", "xyz:TSLA", "PURR/USDC"])
def test_spot_and_hip3_names_are_unknown(hl: Hyperliquid, coin: str) -> None:
    raw = json.dumps({"channel": "l2Book", "data": {"coin": coin, "time": 1, "levels": [[], []]}})
    assert hl.parse(raw, 0) == []
    [problem] = hl.take_problems()
    assert coin in problem and "hyperliquid" in problem


def test_derived_coin(hl: Hyperliquid) -> None:
    inst = hl.derive("kBONK")
    assert inst is not None and (inst.symbol, inst.price_scale, inst.status, inst.funding_interval_h) == (
        "BONK/USDC:USDC", 1000.0, "derived", 1.0)


def test_acks_pong_and_errors(hl: Hyperliquid) -> None:
    assert hl.parse(fixture_lines("hyperliquid", "JKorf-HyperLiquid.Net_ws_l2Book_HYPE_2025-12_trimmed.jsonl")[0], 0) == []
    assert hl.parse(b'{"channel":"pong"}', 0) == []
    assert hl.take_problems() == []
    assert hl.parse(b'{"channel":"error","data":"Invalid subscription {\\"type\\":\\"l2Bok\\"}"}', 0) == []
    [problem] = hl.take_problems()
    assert "Invalid subscription" in problem and "hyperliquid" in problem


@pytest.mark.parametrize("raw", [
    fixture_lines("hyperliquid", TARDIS)[5][:-30],
    b'{"channel":"l2Book","data":{"coin":"BTC","time":1,"levels":[[]]}}',
    b'{"channel":"l2Book","data":{"coin":"BTC","time":1,"levels":[[{"px":"x","sz":"1","n":1}],[]]}}',
    b'{"channel":"trades","data":[{"coin":"BTC","side":"C","px":"1","sz":"1","time":1,"tid":1}]}',
    b'{"channel":"activeAssetCtx","data":{"coin":"BTC","ctx":{"funding":"abc"}}}',
    b"not json",
    b'{"channel":"l2Bo',
])
def test_malformed_raises_decode_error(hl: Hyperliquid, raw: bytes) -> None:
    with pytest.raises(DecodeError, match="hyperliquid"):
        hl.parse(raw, 0)


def test_non_compact_json_is_still_read(hl: Hyperliquid) -> None:
    [t] = hl.parse(b'{ "channel": "trades", "data": [{"coin": "ETH", "side": "A", "px": "1903.5", "sz": "2", '
                   b'"time": 5, "tid": 9}]}', 0)
    assert (t.px, t.qty, t.side, t.trade_id) == (1903.5, 2.0, "sell", "9")


# -- metadata and REST ----------------------------------------------------------------------------
def test_metadata_fields(hl: Hyperliquid) -> None:
    assert set(hl.table) == set(UNIVERSE)
    for coin, a in UNIVERSE.items():
        i = hl.table[coin]
        symbol, scale = _units(coin)
        assert (i.symbol, i.price_scale, i.contract_size, i.quote, i.settle, i.inverse) == (
            symbol, scale, 1.0, "USDC", "USDC", False)
        assert i.lot_size == i.min_qty == pytest.approx(10.0 ** -a["szDecimals"], rel=REL)
        assert i.tick_size == pytest.approx(10.0 ** -(6 - a["szDecimals"]), rel=REL)
        assert (i.funding_interval_h, i.status, i.taker_fee, i.maker_fee) == (1.0, "active", 0.00045, 0.00015)
    body = json.dumps({"universe": [{"name": "OLD", "szDecimals": 1, "maxLeverage": 3, "isDelisted": True}]})
    [old] = Hyperliquid(Registry()).parse_metadata(META_PATH, body)
    assert old.status == "inactive"


def test_metadata_only_for_the_native_dex(hl: Hyperliquid) -> None:
    line = fixture_lines("hyperliquid", META)[0]
    assert hl.parse_metadata("/info?type=meta&dex=xyz", line) == []
    assert hl.parse_metadata("/info?type=allMids", line) == []
    with pytest.raises(DecodeError, match="hyperliquid"):
        hl.parse_metadata(META_PATH, b'{"error":"busy"}')


def test_metadata_round_trip(hl: Hyperliquid) -> None:
    originals = sorted(hl.table.values(), key=lambda i: i.venue_symbol)
    originals[0] = msgspec.structs.replace(originals[0], status="inactive")
    bodies = hl.sim_metadata(originals)
    assert list(bodies) == [META_PATH]
    assert Hyperliquid(Registry()).parse_metadata(META_PATH, bodies[META_PATH]) == originals


def test_rest_request_turns_the_capture_path_into_a_post(hl: Hyperliquid) -> None:
    method, path, body = hl.rest_request(META_PATH)
    assert (method, path, json.loads(body or b"")) == ("POST", "/info", {"type": "meta"})
    method, path, body = hl.rest_request("/info?type=l2Book&coin=kPEPE")
    assert (method, path, json.loads(body or b"")) == ("POST", "/info", {"type": "l2Book", "coin": "kPEPE"})
    assert hl.rest_request("/other") == ("GET", "/other", None)


# -- simulator ------------------------------------------------------------------------------------
@pytest.mark.parametrize("coin", ["BTC", "kPEPE"])
def test_sim_encoders_round_trip(hl: Hyperliquid, coin: str) -> None:
    inst = hl.table[coin]
    _, scale = _units(coin)
    sim = Hyperliquid(Registry([inst]))
    [q] = hl.parse(sim.sim_quote(inst, (101.5, 12.0), (101.75, 3.0), 77, 1_700_000_000_123), 9)
    assert (q.bid_px, q.ask_px, q.bid_qty, q.ask_qty) == pytest.approx((101.5 / scale, 101.75 / scale, 12 * scale,
                                                                        3 * scale), rel=REL)
    assert q.ts_exchange_ns == 1_700_000_000_123_000_000

    bids, asks = [(101.5, 12.0), (101.25, 0.5)], [(101.75, 3.0)]
    [snap] = hl.parse(sim.sim_book(inst, True, bids, asks, 500, -1, 500, 1_700_000_000_000), 0)
    assert _same(snap.bids, [(p / scale, s * scale) for p, s in bids])
    # A delta tick goes out as the whole book, with the change applied.
    [after] = hl.parse(sim.sim_book(inst, False, [(101.25, 0.0), (101.0, 7.0)], [(101.75, 0.0), (102.0, 1.0)],
                                    501, 500, 501, 1_700_000_000_100), 0)
    assert type(after) is BookSnapshot
    assert _same(after.bids, [(101.5 / scale, 12 * scale), (101.0 / scale, 7 * scale)])
    assert _same(after.asks, [(102.0 / scale, 1 * scale)])

    [f] = hl.parse(sim.sim_funding(inst, 0.0000125, 1_700_002_800_000, 101.6, 101.55, 1_700_000_000_000),
                   1_700_000_000_000_000_000)
    assert (f.rate, f.interval_h, f.next_funding_ns) == (0.0000125, 1.0, 1_700_002_800_000_000_000)
    assert (f.mark_px, f.index_px) == pytest.approx((101.6 / scale, 101.55 / scale), rel=REL)


def test_sim_book_keeps_twenty_levels_per_side(hl: Hyperliquid) -> None:
    inst = hl.table["ETH"]
    bids = [(1000.0 - i, 1.0) for i in range(25)]
    msg = json.loads(hl.sim_book(inst, True, bids, [], 1, -1, 1, 0))
    assert len(msg["data"]["levels"][0]) == 20 and msg["data"]["levels"][0][0]["px"] == "1000.0"


def test_sim_handle(hl: Hyperliquid) -> None:
    assert hl.sim_handle('{"method":"ping"}') == (['{"channel":"pong"}'], [])
    assert hl.parse('{"channel":"pong"}', 0) == []
    topics = []
    for kind in ("l2Book", "bbo", "activeAssetCtx", "trades"):
        req = {"method": "subscribe", "subscription": {"type": kind, "coin": "ETH"}}
        [reply], got = hl.sim_handle(json.dumps(req))
        assert json.loads(reply) == {"channel": "subscriptionResponse", "data": req}
        assert hl.parse(reply, 0) == []
        topics += got
    assert topics == [("book", "ETH"), ("quote", "ETH"), ("funding", "ETH"), ("trade", "ETH")]
    [reply], got = hl.sim_handle(json.dumps({"method": "unsubscribe", "subscription": {"type": "l2Book", "coin": "ETH"}}))
    assert got == [] and json.loads(reply)["data"]["method"] == "unsubscribe"
    assert hl.sim_handle("not json") == ([], [])


def test_connections(hl: Hyperliquid) -> None:
    insts = [hl.table["BTC"], hl.table["kPEPE"]]
    [conn] = hl.connections(insts)
    assert conn.path == "/ws" and conn.instruments == insts
    assert [json.loads(m) for m in conn.subscribe] == [
        {"method": "subscribe", "subscription": {"type": t, "coin": c}}
        for c in ("BTC", "kPEPE") for t in ("l2Book", "activeAssetCtx")]
    [quotes_only] = hl.connections(insts, books=False)
    assert {json.loads(m)["subscription"]["type"] for m in quotes_only.subscribe} == {"bbo", "activeAssetCtx"}
    assert hl.resubscribe_book(insts[0]) == []  # the next push is a whole book


def test_card() -> None:
    assert venue_class("hyperliquid") is Hyperliquid
    assert (Hyperliquid.id, Hyperliquid.ws_url, Hyperliquid.rest_url, Hyperliquid.book_sync) == (
        "hyperliquid", "wss://api.hyperliquid.xyz", "https://api.hyperliquid.xyz", "full")
    assert (Hyperliquid.heartbeat_text, Hyperliquid.metadata_paths, Hyperliquid.sim_has_sequence) == (
        '{"method":"ping"}', (META_PATH,), False)
    assert Hyperliquid.heartbeat_s < 60  # the server drops clients silent for 60 s
