"""OKX SWAP adapter against real recorded messages.

Expected values are computed here from the raw JSON and the instruments response (ctVal,
ctMult, ctType), never taken from the adapter.
"""

from __future__ import annotations

import json

import msgspec
import pytest

from conftest import fixture_files, fixture_lines
from conftest import same as _same
from perparb.instruments.registry import Registry
from perparb.model import BookDelta, BookSnapshot, Funding, Instrument, Quote, Trade
from perparb.venues import venue_class
from perparb.venues.base import DecodeError
from perparb.venues.okx import Okx

META_PATH = "/api/v5/public/instruments?instType=SWAP"
INSTRUMENT_FILES = (
    "cryptofeed_2022-05-13_rest_v5_public_instruments_SWAP_full.jsonl",
    "nautilus_rest_v5_public_instruments_SWAP_2025-10_excerpt.jsonl",
)
BOOKS_UNI = "cryptofeed_2022-05-13_ws_v5_public_books_UNI-USD-SWAP.jsonl"
REL = 1e-12


def _specs() -> dict[str, dict]:
    """instId → contract facts read straight from the instruments responses (later files win)."""
    out = {}
    for name in INSTRUMENT_FILES:
        for line in fixture_lines("okx", name):
            for d in json.loads(line)["data"]:
                base, quote = (d.get("instFamily") or d["uly"]).split("-")
                out[d["instId"]] = {
                    "ct": float(d["ctVal"]) * float(d["ctMult"]),
                    "inverse": d["ctType"] == "inverse",
                    "symbol": f"{base}/{quote}:{d['settleCcy']}",
                }
    return out


SPECS = _specs()


def _okx() -> Okx:
    v = Okx(Registry())
    for name in INSTRUMENT_FILES:
        for line in fixture_lines("okx", name):
            v.registry.add_many(v.parse_metadata(META_PATH, line))
    return v


@pytest.fixture
def okx() -> Okx:
    return _okx()


def _qty(sym: str, px: float, sz: float) -> float:
    s = SPECS[sym]
    return sz * s["ct"] / px if s["inverse"] else sz * s["ct"]


def _levels(sym: str, rows: list[list[str]]) -> list[tuple[float, float]]:
    return [(float(r[0]), _qty(sym, float(r[0]), float(r[1]))) for r in rows]


BOOK_CHANNELS = {"books", "books-l2-tbt", "books50-l2-tbt"}


def _expected(msg: object) -> tuple[list[tuple[type, dict]], list[str]]:
    """(events as (type, fields), unknown symbols) the adapter should produce for one message."""
    if not isinstance(msg, dict) or "event" in msg or "data" not in msg:
        return [], []
    channel = msg["arg"]["channel"]
    events: list[tuple[type, dict]] = []
    unknown: list[str] = []
    for d in msg["data"]:
        sym = d.get("instId") or msg["arg"]["instId"]
        if channel == "funding-rate" and not d.get("fundingRate"):
            continue
        if channel not in BOOK_CHANNELS | {"books5", "bbo-tbt", "tickers", "funding-rate", "trades"}:
            continue
        if sym not in SPECS:
            unknown.append(sym)
            continue
        common = {"venue": "okx", "venue_symbol": sym, "symbol": SPECS[sym]["symbol"]}
        ts = int(d["ts"]) * 1_000_000 if "ts" in d else 0
        if channel in BOOK_CHANNELS or channel == "books5":
            fields = {**common, "bids": _levels(sym, d["bids"]), "asks": _levels(sym, d["asks"]),
                      "seq": d.get("seqId", 0), "checksum": d.get("checksum") or None, "ts_exchange_ns": ts}
            if channel == "books5" or msg.get("action") == "snapshot":
                events.append((BookSnapshot, fields))
            else:
                events.append((BookDelta, {**fields, "first_seq": d.get("seqId", 0),
                                           "prev_seq": d.get("prevSeqId")}))
        elif channel == "bbo-tbt":
            (bp, bq), (ap, aq) = (map(float, d["bids"][0][:2]), map(float, d["asks"][0][:2]))
            events.append((Quote, {**common, "bid_px": bp, "bid_qty": _qty(sym, bp, bq), "ask_px": ap,
                                   "ask_qty": _qty(sym, ap, aq), "ts_exchange_ns": ts}))
        elif channel == "tickers":
            bp, ap = float(d["bidPx"]), float(d["askPx"])
            events.append((Quote, {**common, "bid_px": bp, "bid_qty": _qty(sym, bp, float(d["bidSz"])),
                                   "ask_px": ap, "ask_qty": _qty(sym, ap, float(d["askSz"])),
                                   "ts_exchange_ns": ts}))
        elif channel == "funding-rate":
            at = int(d["fundingTime"])
            hours = (int(d["nextFundingTime"]) - at) / 3_600_000 if d.get("nextFundingTime") else 8.0
            events.append((Funding, {**common, "rate": float(d["fundingRate"]),
                                     "predicted_rate": float(d["nextFundingRate"]) if d.get("nextFundingRate")
                                     else None,
                                     "next_funding_ns": at * 1_000_000, "interval_h": hours,
                                     "ts_exchange_ns": ts}))
        else:
            px = float(d["px"])
            events.append((Trade, {**common, "px": px, "qty": _qty(sym, px, float(d["sz"])), "side": d["side"],
                                   "trade_id": d["tradeId"], "ts_exchange_ns": ts}))
    return events, unknown




MESSAGE_FILES = [p for p in fixture_files("okx") if "instruments" not in p.name]


@pytest.mark.parametrize("path", MESSAGE_FILES, ids=lambda p: p.name)
def test_every_recorded_message(okx: Okx, path) -> None:
    for n, line in enumerate(fixture_lines("okx", path.name), 1):
        expected, unknown = _expected(json.loads(line))
        events = okx.parse(line, recv_ns=123)
        problems = okx.take_problems()
        where = f"{path.name}:{n}"
        assert [type(e) for e in events] == [t for t, _ in expected], where
        for ev, (_, fields) in zip(events, expected, strict=True):
            assert ev.recv_ns == 123, where
            for key, value in fields.items():
                assert _same(getattr(ev, key), value), f"{where} {key}: {getattr(ev, key)!r} != {value!r}"
        assert len(problems) == len(unknown), (where, problems)
        for sym, text in zip(unknown, problems, strict=True):
            assert sym in text and "okx" in text, where


def test_recordings_cover_every_event_type(okx: Okx) -> None:
    seen: dict[type, int] = {}
    for path in MESSAGE_FILES:
        for line in fixture_lines("okx", path.name):
            for ev in okx.parse(line, 0):
                seen[type(ev)] = seen.get(type(ev), 0) + 1
    assert set(seen) == {Quote, BookSnapshot, BookDelta, Funding, Trade}


def test_uni_inverse_book_session(okx: Okx) -> None:
    events = [e for line in fixture_lines("okx", BOOKS_UNI) for e in okx.parse(line, 0)]
    assert [type(e) for e in events] == [BookSnapshot] + [BookDelta] * 92
    # 2022 frames have no seqId/prevSeqId: no chain to check, every checksum present.
    assert all(e.prev_seq is None and e.seq == 0 for e in events[1:])
    assert all(e.checksum for e in events)
    # First update, first ask: ["5.158","129",...]; UNI-USD-SWAP is 10 USD per contract.
    assert events[1].asks[0] == pytest.approx((5.158, 129 * 10 / 5.158), rel=REL)
    assert events[1].symbol == "UNI/USD:UNI"


def test_hand_checked_values(okx: Okx) -> None:
    trade = okx.parse(b'{"arg":{"channel":"trades","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP",'
                      b'"tradeId":"219066264","px":"43568.8","sz":"7","side":"buy","ts":"1646312440645"}]}', 5)
    assert trade[0].qty == pytest.approx(0.07, rel=REL)  # 7 contracts of 0.01 BTC
    assert trade[0].ts_exchange_ns == 1_646_312_440_645_000_000
    [ticker] = [e for line in fixture_lines("okx", "cryptofeed_2022-05-13_ws_v5_public_tickers_UNI-USD-SWAP.jsonl")
                for e in okx.parse(line, 0)]
    assert (ticker.bid_px, ticker.ask_px) == (5.134, 5.142)
    assert ticker.bid_qty == pytest.approx(96 * 10 / 5.134, rel=REL)


def test_funding_interval_and_predicted_rate(okx: Okx) -> None:
    [f] = okx.parse(fixture_lines("okx", "DOCEXAMPLE_EDITED_JKorf-OKX.Net_ws_funding-rate_mark-price.jsonl")[1], 0)
    # arg.instId says ETH-USDT; the item's own instId wins.
    assert f.venue_symbol == "BTC-USD-SWAP" and f.symbol == "BTC/USD:BTC"
    assert f.interval_h == 8.0 and f.next_funding_ns == 1_700_726_400_000 * 1_000_000
    four_hours = (b'{"arg":{"channel":"funding-rate","instId":"BTC-USDT-SWAP"},"data":[{"instId":"BTC-USDT-SWAP",'
                  b'"fundingRate":"-0.0002","nextFundingRate":"","method":"current_period",'
                  b'"fundingTime":"1700726400000","nextFundingTime":"1700740800000","ts":"1700724675402"}]}')
    [g] = okx.parse(four_hours, 0)
    assert (g.rate, g.predicted_rate, g.interval_h) == (-0.0002, None, 4.0)


def test_nonperp_recordings_are_unknown(okx: Okx) -> None:
    for path in (p for p in MESSAGE_FILES if p.name.startswith("NONPERP")):
        lines = fixture_lines("okx", path.name)
        assert all(okx.parse(line, 0) == [] for line in lines)
        problems = okx.take_problems()
        assert len(problems) == len(lines) - 1  # every push except the subscribe ack
        assert all(json.loads(lines[1])["arg"]["instId"] in p for p in problems)


def test_acks_pong_and_other_channels(okx: Okx) -> None:
    assert okx.parse("pong", 0) == []
    assert okx.parse(b'{"event":"subscribe","arg":{"channel":"books","instId":"BTC-USDT-SWAP"},"connId":"x"}', 0) == []
    assert okx.parse(b'{"event":"error","code":"60012","msg":"Invalid request","connId":"x"}', 0) == []
    assert okx.parse(b'{"arg":{"channel":"mark-price","instId":"BTC-USDT-SWAP"},"data":[{"markPx":"1"}]}', 0) == []
    assert okx.take_problems() == []


@pytest.mark.parametrize("raw", [
    fixture_lines("okx", BOOKS_UNI)[2][:-40],
    b'{"arg":{"channel":"books","instId":"UNI-USD-SWAP"},"action":"update","data":[{"asks":"x","ts":"1"}]}',
    b'{"arg":{"channel":"trades","instId":"BTC-USDT-SWAP"},"data":[{"px":"abc","sz":"1","side":"buy"}]}',
    b"<html>bad gateway</html>",
])
def test_malformed_raises_decode_error(okx: Okx, raw: bytes) -> None:
    with pytest.raises(DecodeError, match="okx"):
        okx.parse(raw, 0)


# -- metadata ------------------------------------------------------------------------------
def test_metadata_fields(okx: Okx) -> None:
    btc = okx.table["BTC-USD-SWAP"]
    assert (btc.symbol, btc.asset, btc.quote, btc.settle, btc.inverse) == ("BTC/USD:BTC", "BTC", "USD", "BTC", True)
    assert btc.contract_size == 100.0
    eth = okx.table["ETH-USDT-SWAP"]  # 2025 excerpt: fractional lots
    assert (eth.symbol, eth.contract_size, eth.lot_size, eth.min_qty, eth.tick_size) == (
        "ETH/USDT:USDT", 0.1, 0.01, 0.01, 0.01)
    assert eth.status == "active" and eth.source == "okx" and eth.taker_fee == Okx.taker_fee
    assert len(okx.table) == len(SPECS)
    assert all(okx.table[s].contract_size == pytest.approx(spec["ct"], rel=REL) for s, spec in SPECS.items())


def test_metadata_round_trip(okx: Okx) -> None:
    originals = sorted(okx.table.values(), key=lambda i: i.venue_symbol)
    odd = msgspec.structs.replace(originals[0], tick_size=1e-8, min_qty=0.001, status="inactive")
    originals = [odd, *originals[1:]]
    bodies = okx.sim_metadata(originals)
    assert list(bodies) == [META_PATH]
    assert b'"tickSz":"0.00000001"' in bodies[META_PATH]  # plain decimals, as OKX sends them
    back = Okx(Registry()).parse_metadata(META_PATH, bodies[META_PATH])
    assert back == originals


def test_metadata_ignores_other_paths(okx: Okx) -> None:
    assert okx.parse_metadata("/api/v5/market/books?instId=BTC-USDT-SWAP", b"{}") == []


# -- simulator -------------------------------------------------------------------------------
@pytest.mark.parametrize("sym", ["BTC-USDT-SWAP", "UNI-USD-SWAP"])
def test_sim_encoders_round_trip(okx: Okx, sym: str) -> None:
    inst: Instrument = okx.table[sym]
    [q] = okx.parse(okx.sim_quote(inst, (101.5, 12.0), (101.75, 3.0), 77, 1_700_000_000_123), 9)
    assert (q.bid_px, q.ask_px) == (101.5, 101.75)
    assert q.bid_qty == pytest.approx(_qty(sym, 101.5, 12.0), rel=REL)
    assert q.ask_qty == pytest.approx(_qty(sym, 101.75, 3.0), rel=REL)
    assert q.ts_exchange_ns == 1_700_000_000_123_000_000

    bids, asks = [(101.5, 12.0), (101.25, 0.5)], [(101.75, 3.0)]
    [snap] = okx.parse(okx.sim_book(inst, True, bids, asks, 500, 0, 0, 1_700_000_000_000), 0)
    assert type(snap) is BookSnapshot and snap.seq == 500 and snap.checksum is None
    assert _same(snap.bids, [(p, _qty(sym, p, s)) for p, s in bids])
    [delta] = okx.parse(okx.sim_book(inst, False, [], [(101.75, 0.0)], 530, 500, 501, 1_700_000_000_100), 0)
    assert type(delta) is BookDelta
    assert (delta.first_seq, delta.seq, delta.prev_seq, delta.bids, delta.asks) == (530, 530, 500, [], [(101.75, 0.0)])

    [f] = okx.parse(okx.sim_funding(inst, 0.000125, 1_700_006_400_000, 101.6, 101.55, 1_700_000_000_000), 0)
    assert (f.rate, f.predicted_rate, f.interval_h) == (0.000125, None, 8.0)
    assert f.next_funding_ns == 1_700_006_400_000 * 1_000_000


def test_sim_handle(okx: Okx) -> None:
    assert okx.sim_handle("ping") == (["pong"], [])
    args = [{"channel": "bbo-tbt", "instId": "BTC-USDT-SWAP"}, {"channel": "books", "instId": "BTC-USDT-SWAP"},
            {"channel": "funding-rate", "instId": "ETH-USDT-SWAP"}, {"channel": "trades", "instId": "ETH-USDT-SWAP"}]
    replies, topics = okx.sim_handle(json.dumps({"op": "subscribe", "args": args}))
    assert [json.loads(r) for r in replies] == [{"event": "subscribe", "arg": a, "connId": "sim"} for a in args]
    assert topics == [("quote", "BTC-USDT-SWAP"), ("book", "BTC-USDT-SWAP"), ("funding", "ETH-USDT-SWAP"),
                      ("trade", "ETH-USDT-SWAP")]
    assert all(okx.parse(r, 0) == [] for r in replies)
    replies, topics = okx.sim_handle(json.dumps({"op": "unsubscribe", "args": args[1:2]}))
    assert [json.loads(r)["event"] for r in replies] == ["unsubscribe"] and topics == []
    assert okx.sim_handle("not json") == ([], [])


def test_connections_and_resubscribe(okx: Okx) -> None:
    insts = sorted(okx.table.values(), key=lambda i: i.venue_symbol)[:25]
    [conn] = okx.connections(insts)
    assert conn.path == "/ws/v5/public" and conn.instruments == insts
    msgs = [json.loads(m) for m in conn.subscribe]
    assert all(m["op"] == "subscribe" and len(m["args"]) <= 30 for m in msgs)
    sent = [(a["channel"], a["instId"]) for m in msgs for a in m["args"]]
    assert sorted(sent) == sorted((c, i.venue_symbol) for i in insts for c in ("bbo-tbt", "books", "funding-rate"))
    [no_books] = okx.connections(insts, books=False)
    assert all(a["channel"] != "books" for m in no_books.subscribe for a in json.loads(m)["args"])

    unsub, sub = okx.resubscribe_book(okx.table["BTC-USDT-SWAP"])
    arg = [{"channel": "books", "instId": "BTC-USDT-SWAP"}]
    assert json.loads(unsub) == {"op": "unsubscribe", "args": arg}
    assert json.loads(sub) == {"op": "subscribe", "args": arg}


def test_card() -> None:
    assert venue_class("okx") is Okx
    assert (Okx.id, Okx.name, Okx.ws_url, Okx.rest_url, Okx.book_sync) == (
        "okx", "OKX SWAP", "wss://ws.okx.com:8443", "https://www.okx.com", "in_stream")
    assert (Okx.heartbeat_text, Okx.heartbeat_s, Okx.taker_fee, Okx.maker_fee) == ("ping", 20.0, 0.0005, 0.0002)
    assert Okx.metadata_paths == (META_PATH,)
