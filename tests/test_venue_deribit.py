"""Deribit adapter against real recorded messages.

Expected values are computed here from the raw JSON (json module) and the recorded
``public/get_instrument`` answer, never taken from the adapter. Inverse perpetuals count
``amount`` in USD (base qty = amount ÷ price), linear USDC ones in the base coin; funding is
stated per hour (``funding_8h`` ÷ 8) with the next whole hour as the next funding time.
"""

from __future__ import annotations

import json

import msgspec
import pytest

from conftest import check_events as _check
from conftest import fixture_files, fixture_lines
from conftest import same as _same
from perparb.feeds.booksync import SYNCED, SyncedBook
from perparb.instruments.registry import Registry
from perparb.model import BookDelta, BookSnapshot, Funding, Instrument, Quote, Trade
from perparb.venues import venue_class
from perparb.venues.base import DecodeError
from perparb.venues.deribit import Deribit

META_PATH = "/api/v2/public/get_instruments?currency=any&kind=future"
ONE_PATH = "/api/v2/public/get_instrument?instrument_name=BTC-PERPETUAL"
BOOK_PATH = "/api/v2/public/get_order_book?instrument_name=BTC-PERPETUAL&depth=20"
REST = "nautilus_rest_v2_public_get_order_book_and_get_instrument_BTC-PERPETUAL_2025-12.jsonl"
NAUTILUS_WS = "nautilus_ws_v2_BTC-PERPETUAL_ticker_quote_trades_book-grouped_2025-12_2026-01.jsonl"
TARDIS = "tardis-node-tests_deribit_perpetual_2019-2022_samples.jsonl"
SYNTHETIC = "SYNTHETIC_nautilus_ws_book_BTC-PERPETUAL_100ms_snapshot_change.jsonl"
MS = 1_000_000
HOUR_MS = 3_600_000
RECV = 123
REL = 1e-12


def _rest_lines() -> tuple[bytes, bytes]:
    book, instrument = fixture_lines("deribit", REST)
    return book, instrument


RAW_INSTRUMENT = json.loads(_rest_lines()[1])["result"]


def _units(name: str) -> dict | None:
    """How one instrument's amounts read: the recorded instrument, a USDC linear name, else None."""
    if name == RAW_INSTRUMENT["instrument_name"]:
        r = RAW_INSTRUMENT
        return {"symbol": f"{r['base_currency']}/{r['quote_currency']}:{r['settlement_currency']}",
                "inverse": r["instrument_type"] == "reversed"}
    if name.endswith("_USDC-PERPETUAL"):
        return {"symbol": f"{name.split('_')[0]}/USDC:USDC", "inverse": False}
    return None


def _qty(units: dict, px: float, amount: float) -> float:
    return amount / px if units["inverse"] else amount


def _deribit() -> Deribit:
    v = Deribit(Registry())
    v.registry.add_many(v.parse_metadata(ONE_PATH, _rest_lines()[1]))
    return v


@pytest.fixture
def deribit() -> Deribit:
    return _deribit()


def _expected(msg: dict) -> tuple[list[tuple[type, dict]], list[str]]:
    """(events as (type, fields), unknown instruments) one recorded notification should give."""
    if msg.get("method") != "subscription":
        return [], []
    channel, data = msg["params"]["channel"], msg["params"]["data"]
    kind = channel.split(".")[0]
    items = data if isinstance(data, list) else [data]
    out: list[tuple[type, dict]] = []
    unknown: list[str] = []
    for d in items:
        name = d["instrument_name"]
        units = _units(name)
        if units is None:
            unknown.append(name)
            continue
        common = {"venue": "deribit", "venue_symbol": name, "symbol": units["symbol"], "recv_ns": RECV,
                  "ts_exchange_ns": d["timestamp"] * MS}
        if kind == "book" and len(channel.split(".")) == 3:
            def rows(side: list, u: dict = units) -> list[tuple[float, float]]:
                return [(p, 0.0 if a == "delete" else _qty(u, p, q)) for a, p, q in side]
            book = {**common, "bids": rows(d["bids"]), "asks": rows(d["asks"]), "checksum": None}
            if d.get("type") == "snapshot" or ("type" not in d and "prev_change_id" not in d):
                out.append((BookSnapshot, {**book, "seq": d["change_id"]}))
            else:
                out.append((BookDelta, {**book, "first_seq": d["change_id"], "seq": d["change_id"],
                                        "prev_seq": d["prev_change_id"]}))
        elif kind == "book":  # grouped: whole top N, [price, amount]
            out.append((BookSnapshot, {**common, "seq": d["change_id"],
                                       "bids": [(p, _qty(units, p, q)) for p, q in d["bids"]],
                                       "asks": [(p, _qty(units, p, q)) for p, q in d["asks"]]}))
        elif kind == "quote":
            bp, ap = d["best_bid_price"], d["best_ask_price"]
            out.append((Quote, {**common, "bid_px": bp, "bid_qty": _qty(units, bp, d["best_bid_amount"]),
                                "ask_px": ap, "ask_qty": _qty(units, ap, d["best_ask_amount"])}))
        elif kind == "ticker":
            next_hour = (d["timestamp"] // HOUR_MS + 1) * HOUR_MS
            out.append((Funding, {**common, "rate": d["funding_8h"] / 8, "predicted_rate": None,
                                  "interval_h": 1.0, "next_funding_ns": next_hour * MS,
                                  "mark_px": d["mark_price"], "index_px": d["index_price"]}))
        elif kind == "trades":
            out.append((Trade, {**common, "px": d["price"], "qty": _qty(units, d["price"], d["amount"]),
                                "side": d["direction"], "trade_id": d["trade_id"]}))
    return out, unknown






MESSAGE_FILES = [p for p in fixture_files("deribit") if "_rest_" not in p.name]


def test_fixture_set_is_what_this_test_expects() -> None:
    names = {p.name for p in fixture_files("deribit")}
    assert names == {REST, NAUTILUS_WS, TARDIS, SYNTHETIC,
                     "ccxt-static-markets_2023_rest_api_v2_public_get_instruments_INFO-EXTRACTED_excerpt.jsonl"}


@pytest.mark.parametrize("path", MESSAGE_FILES, ids=lambda p: p.name)
def test_every_recorded_message(deribit: Deribit, path) -> None:
    lines = fixture_lines("deribit", path.name)
    assert lines
    for n, line in enumerate(lines, 1):
        where = f"{path.name}:{n}"
        expected, unknown = _expected(json.loads(line))
        _check(deribit.parse(line, recv_ns=RECV), expected, where)
        problems = deribit.take_problems()
        assert len(problems) == len(unknown), (where, problems)
        for name, text in zip(unknown, problems, strict=True):
            assert repr(name) in text and "deribit" in text, where
    assert deribit.outbox == []


def test_recordings_cover_every_event_type(deribit: Deribit) -> None:
    seen: dict[type, int] = {}
    for path in MESSAGE_FILES:
        for line in fixture_lines("deribit", path.name):
            for ev in deribit.parse(line, 0):
                seen[type(ev)] = seen.get(type(ev), 0) + 1
    assert set(seen) == {Quote, BookSnapshot, BookDelta, Funding, Trade}


def test_amounts_are_usd_not_contracts(deribit: Deribit) -> None:
    # The 2025 trades state both: amount (USD) = contracts x contract_size (10 USD).
    [_, _, trades, _] = fixture_lines("deribit", NAUTILUS_WS)
    raw = json.loads(trades)["params"]["data"]
    assert [t["amount"] for t in raw] == [t["contracts"] * RAW_INSTRUMENT["contract_size"] for t in raw]
    small, big = deribit.parse(trades, 0)
    assert (small.px, small.qty, small.side, small.trade_id) == (92294.5, 10.0 / 92294.5, "sell", "403691824")
    assert big.qty == pytest.approx(750.0 / 92288.5, rel=REL)
    inst = deribit.table["BTC-PERPETUAL"]
    assert (inst.contract_size, inst.lot_size, inst.min_qty, inst.inverse) == (1.0, 10.0, 10.0, True)


def test_funding_is_per_hour(deribit: Deribit) -> None:
    [ticker, *_] = fixture_lines("deribit", NAUTILUS_WS)
    [f] = deribit.parse(ticker, 0)
    # funding_8h 0.00001742 over 8 hours; timestamp 1765541474086 is 12:11:14 UTC → next hour 13:00.
    assert (f.rate, f.interval_h, f.predicted_rate) == (0.00001742 / 8, 1.0, None)
    assert f.next_funding_ns == 1_765_544_400_000 * MS
    assert (f.mark_px, f.index_px) == (92281.78, 92263.55)


def test_linear_usdc_perpetual_is_derived_in_base_units(deribit: Deribit) -> None:
    [snap] = deribit.parse(fixture_lines("deribit", TARDIS)[-1], 0)
    assert (snap.symbol, snap.seq, snap.asks) == ("LINK/USDC:USDC", 1232767964, [])
    assert snap.bids[0] == (7.562, 34.0)
    inst = deribit.table["LINK_USDC-PERPETUAL"]
    assert (inst.inverse, inst.contract_size, inst.settle, inst.status, inst.funding_interval_h) == (
        False, 1.0, "USDC", "derived", 1.0)
    assert deribit.derive("ETH-PERPETUAL") is None  # inverse: known only from metadata
    assert deribit.derive("BTC-27DEC24") is None


# -- books -------------------------------------------------------------------------------------
def test_synthetic_book_replays_and_equals_a_rebuild(deribit: Deribit) -> None:
    lines = fixture_lines("deribit", SYNTHETIC)
    sb = SyncedBook(deribit.book_sync, deribit.book_checksum())
    bids: dict[float, float] = {}
    asks: dict[float, float] = {}
    for line in lines:
        d = json.loads(line)["params"]["data"]
        if d["type"] == "snapshot":
            bids, asks = {}, {}
        for side, rows in ((bids, d["bids"]), (asks, d["asks"])):
            for action, px, usd in rows:
                if action == "delete":
                    side.pop(px, None)
                else:
                    side[px] = usd / px
        for ev in deribit.parse(line, 0):
            assert (sb.on_snapshot(ev) if type(ev) is BookSnapshot else sb.on_delta(ev)) and sb.state == SYNCED
    assert (sb.gaps, sb.resyncs, sb.seq) == (0, 0, 123456790)
    assert _same(sb.book.bids.top(100), sorted(bids.items(), reverse=True))
    assert _same(sb.book.asks.top(100), sorted(asks.items()))
    assert len(sb.book.bids) == 5 and len(sb.book.asks) == 4  # one new bid at an existing price, one ask deleted


def test_recorded_raw_frames_that_do_not_chain_are_a_gap() -> None:
    # tardis kept two ETH-PERPETUAL raw frames 54 s apart: the second's prev_change_id is not the
    # first's change_id, so replaying them must be caught (a true resync, not a false one).
    v = Deribit(Registry())
    eth = {**RAW_INSTRUMENT, "instrument_name": "ETH-PERPETUAL", "base_currency": "ETH", "contract_size": 1.0,
           "tick_size": 0.05, "min_trade_amount": 1.0}
    v.registry.add_many(v.parse_metadata(META_PATH, json.dumps({"jsonrpc": "2.0", "result": [eth]})))
    first, second = (json.loads(line) for line in fixture_lines("deribit", TARDIS)[2:4])
    assert second["params"]["data"]["prev_change_id"] != first["params"]["data"]["change_id"]
    [snap] = v.parse(json.dumps(first), 0)
    [delta] = v.parse(json.dumps(second), 0)
    assert type(snap) is BookSnapshot and type(delta) is BookDelta
    assert snap.bids[0] == pytest.approx((217.8, 1895.0 / 217.8), rel=REL)
    sb = SyncedBook(v.book_sync)
    assert sb.on_snapshot(snap) and not sb.on_delta(delta) and sb.gaps == 1


def test_rest_order_book(deribit: Deribit) -> None:
    line = _rest_lines()[0]
    r = json.loads(line)["result"]
    [snap] = deribit.parse_rest(BOOK_PATH, line, RECV)
    _check([snap], [(BookSnapshot, {
        "venue": "deribit", "venue_symbol": "BTC-PERPETUAL", "symbol": "BTC/USD:BTC", "seq": r["change_id"],
        "bids": [(p, a / p) for p, a in r["bids"]], "asks": [(p, a / p) for p, a in r["asks"]],
        "ts_exchange_ns": r["timestamp"] * MS, "recv_ns": RECV, "checksum": None})], "get_order_book")
    assert deribit.parse_rest("/api/v2/public/ticker?instrument_name=BTC-PERPETUAL", line, 0) == []
    assert deribit.parse_metadata(BOOK_PATH, line) == []
    with pytest.raises(DecodeError, match="deribit"):
        deribit.parse_rest(BOOK_PATH, b'{"jsonrpc":"2.0","id":3,"error":{"message":"bad","code":10001}}', 0)


# -- protocol ----------------------------------------------------------------------------------
def test_test_request_is_answered_through_the_outbox(deribit: Deribit) -> None:
    assert deribit.parse(b'{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"heartbeat"}}', 0) == []
    assert deribit.outbox == []
    assert deribit.parse(b'{"jsonrpc":"2.0","method":"heartbeat","params":{"type":"test_request"}}', 0) == []
    [reply] = deribit.outbox
    msg = json.loads(reply)
    assert (msg["jsonrpc"], msg["method"], msg["params"]) == ("2.0", "public/test", {})
    assert isinstance(msg["id"], int)
    assert deribit.take_problems() == []


def test_replies_and_errors(deribit: Deribit) -> None:
    ack = b'{"jsonrpc":"2.0","id":2,"result":["book.BTC-PERPETUAL.100ms"],"usIn":1,"usOut":2,"usDiff":1,"testnet":false}'
    assert deribit.parse(ack, 0) == []
    assert deribit.parse(b'{"jsonrpc":"2.0","id":1,"result":"ok"}', 0) == []
    assert deribit.take_problems() == []
    err = b'{"jsonrpc":"2.0","id":7,"error":{"message":"Invalid params","code":-32602},"testnet":false}'
    assert deribit.parse(err, 0) == []
    [problem] = deribit.take_problems()
    assert "deribit" in problem and "-32602" in problem and "Invalid params" in problem
    other = b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"perpetual.BTC-PERPETUAL.100ms",' \
            b'"data":{"interest":0.004,"timestamp":1571386349530,"index_price":7872.88}}}'
    assert deribit.parse(other, 0) == []


def test_json_with_spaces_is_still_read(deribit: Deribit) -> None:
    quote = json.loads(fixture_lines("deribit", NAUTILUS_WS)[1])
    [q] = deribit.parse(json.dumps(quote, indent=2), 0)
    assert (q.bid_px, q.bid_qty) == (92288.0, 133440.0 / 92288.0)


QUOTE_LINE = fixture_lines("deribit", NAUTILUS_WS)[1]


@pytest.mark.parametrize("raw", [
    QUOTE_LINE[:-20],
    b"<html>bad gateway</html>",
    b"",
    b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"book.BTC-PERPETUAL.100ms",'
    b'"data":{"type":"change","instrument_name":"BTC-PERPETUAL","change_id":2,"prev_change_id":1,"bids":"x","asks":[]}}}',
    b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"trades.BTC-PERPETUAL.100ms",'
    b'"data":[{"instrument_name":"BTC-PERPETUAL","price":"abc","amount":10,"direction":"buy"}]}}',
    b'{"jsonrpc":"2.0","method":"subscription","params":{"channel":"quote.BTC-PERPETUAL","data":{"timestamp":1}}}',
])
def test_malformed_raises_decode_error(deribit: Deribit, raw: bytes) -> None:
    with pytest.raises(DecodeError, match="deribit"):
        deribit.parse(raw, 0)


# -- metadata ----------------------------------------------------------------------------------
def test_metadata_from_the_recorded_instrument(deribit: Deribit) -> None:
    r = RAW_INSTRUMENT
    assert json.loads(_rest_lines()[1])["testnet"] is True  # recorded on testnet; same contract terms
    inst = deribit.table["BTC-PERPETUAL"]
    assert (inst.venue, inst.symbol, inst.asset, inst.quote, inst.settle) == (
        "deribit", "BTC/USD:BTC", "BTC", "USD", "BTC")
    assert (inst.tick_size, inst.lot_size, inst.min_qty) == (r["tick_size"], r["contract_size"], r["min_trade_amount"])
    assert (inst.taker_fee, inst.maker_fee) == (r["taker_commission"], r["maker_commission"])
    assert (inst.status, inst.funding_interval_h, inst.source, inst.price_scale) == ("active", 1.0, "deribit", 1.0)
    with pytest.raises(DecodeError, match="deribit"):  # the other line of the file is not an instrument
        deribit.parse_metadata(ONE_PATH, _rest_lines()[0])


def test_get_instruments_keeps_perpetuals_only() -> None:
    r = RAW_INSTRUMENT
    rows = [
        r,
        {**r, "instrument_name": "BTC-27DEC24", "settlement_period": "month"},
        {**r, "instrument_name": "ETH-PERPETUAL", "base_currency": "ETH", "contract_size": 1.0, "is_active": False},
        {**r, "instrument_name": "BTC_USDC-PERPETUAL", "instrument_type": "linear", "future_type": "linear",
         "quote_currency": "USDC", "counter_currency": "USDC", "settlement_currency": "USDC", "contract_size": 0.001,
         "min_trade_amount": 0.001, "tick_size": 1.0, "maker_commission": 0.0, "taker_commission": 0.0005},
        {**r, "instrument_name": "BTC-27DEC24-100000-C", "kind": "option", "settlement_period": "month"},
    ]
    specs = {i.venue_symbol: i for i in Deribit(Registry()).parse_metadata(
        META_PATH, json.dumps({"jsonrpc": "2.0", "result": rows}))}
    assert sorted(specs) == ["BTC-PERPETUAL", "BTC_USDC-PERPETUAL", "ETH-PERPETUAL"]
    usdc = specs["BTC_USDC-PERPETUAL"]
    assert (usdc.symbol, usdc.inverse, usdc.contract_size, usdc.lot_size, usdc.tick_size) == (
        "BTC/USDC:USDC", False, 1.0, 0.001, 1.0)
    assert specs["ETH-PERPETUAL"].status == "inactive" and specs["BTC-PERPETUAL"].status == "active"
    with pytest.raises(DecodeError, match="deribit"):
        Deribit(Registry()).parse_metadata(META_PATH, b'{"jsonrpc":"2.0","id":1,"error":{"code":11050,"message":"x"}}')


def test_metadata_round_trip(deribit: Deribit) -> None:
    originals = [deribit.table["BTC-PERPETUAL"], msgspec.structs.replace(
        deribit.table["BTC-PERPETUAL"], venue_symbol="ETH-PERPETUAL", symbol="ETH/USD:ETH", asset="ETH",
        settle="ETH", tick_size=0.05, lot_size=1.0, min_qty=1.0, status="inactive")]
    linear = deribit.derive("SOL_USDC-PERPETUAL")
    assert linear is not None
    originals.append(msgspec.structs.replace(linear, status="active", tick_size=0.01, lot_size=0.1, min_qty=0.1))
    bodies = deribit.sim_metadata(originals)
    assert list(bodies) == [META_PATH] == list(Deribit.metadata_paths)
    back = Deribit(Registry()).parse_metadata(META_PATH, bodies[META_PATH])
    assert back == originals


# -- simulator ---------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["BTC-PERPETUAL", "SOL_USDC-PERPETUAL"])
def test_sim_encoders_round_trip(deribit: Deribit, name: str) -> None:
    inst: Instrument | None = deribit.instrument(name)
    assert inst is not None

    def q(px: float, amount: float) -> float:
        return amount / px if inst.inverse else amount

    [quote] = deribit.parse(deribit.sim_quote(inst, (101.5, 120.0), (102.0, 30.0), 77, 1_700_000_000_123), 9)
    assert (quote.bid_px, quote.bid_qty, quote.ask_px, quote.ask_qty) == (101.5, q(101.5, 120.0), 102.0, q(102.0, 30.0))
    assert (quote.ts_exchange_ns, quote.recv_ns) == (1_700_000_000_123 * MS, 9)

    bids, asks = [(101.5, 120.0), (101.0, 50.0)], [(102.0, 30.0)]
    raw_snap = deribit.sim_book(inst, True, bids, asks, 500, -1, 500, 1_700_000_000_000)
    assert [r[0] for r in json.loads(raw_snap)["params"]["data"]["bids"]] == ["new", "new"]
    [snap] = deribit.parse(raw_snap, 0)
    assert type(snap) is BookSnapshot and snap.seq == 500 and snap.bids == [(p, q(p, a)) for p, a in bids]
    raw_delta = deribit.sim_book(inst, False, [(101.0, 0.0), (101.5, 60.0)], [(102.5, 10.0)], 530, 500, 530,
                                 1_700_000_000_100)
    data = json.loads(raw_delta)["params"]["data"]
    assert (data["type"], data["change_id"], data["prev_change_id"]) == ("change", 530, 500)
    assert data["bids"] == [["change", 101.5, 60.0], ["delete", 101.0, 0.0]] and data["asks"] == [["new", 102.5, 10.0]]
    [delta] = deribit.parse(raw_delta, 0)
    assert type(delta) is BookDelta and (delta.first_seq, delta.seq, delta.prev_seq) == (530, 530, 500)
    assert delta.bids == [(101.5, q(101.5, 60.0)), (101.0, 0.0)]

    [f] = deribit.parse(deribit.sim_funding(inst, 0.0000125, 1_700_003_600_000, 101.6, 101.55, 1_700_000_000_000), 0)
    assert f.rate == pytest.approx(0.0000125, rel=REL) and (f.interval_h, f.predicted_rate) == (1.0, None)
    assert (f.mark_px, f.index_px, f.next_funding_ns) == (101.6, 101.55, 1_700_002_800_000 * MS)


def test_sim_handle(deribit: Deribit) -> None:
    [ok, test], topics = deribit.sim_handle(
        '{"jsonrpc":"2.0","id":1,"method":"public/set_heartbeat","params":{"interval":10}}')
    assert json.loads(ok)["result"] == "ok" and topics == []
    assert deribit.parse(ok, 0) == [] and deribit.parse(test, 0) == []
    [answer] = deribit.outbox
    [version], _ = deribit.sim_handle(answer)
    assert json.loads(version)["id"] == json.loads(answer)["id"] and "version" in json.loads(version)["result"]
    channels = ["quote.BTC-PERPETUAL", "book.BTC-PERPETUAL.100ms", "ticker.ETH-PERPETUAL.agg2",
                "trades.ETH-PERPETUAL.100ms", "book.BTC-PERPETUAL.none.10.100ms", "perpetual.BTC-PERPETUAL.100ms"]
    [reply], topics = deribit.sim_handle(json.dumps({"jsonrpc": "2.0", "id": 5, "method": "public/subscribe",
                                                     "params": {"channels": channels}}))
    assert json.loads(reply)["result"] == channels and json.loads(reply)["id"] == 5
    assert topics == [("quote", "BTC-PERPETUAL"), ("book", "BTC-PERPETUAL"), ("funding", "ETH-PERPETUAL"),
                      ("trade", "ETH-PERPETUAL")]
    [reply], topics = deribit.sim_handle(json.dumps({"jsonrpc": "2.0", "id": 6, "method": "public/unsubscribe",
                                                     "params": {"channels": channels[1:2]}}))
    assert json.loads(reply)["result"] == channels[1:2] and topics == []
    [err], _ = deribit.sim_handle('{"jsonrpc":"2.0","id":9,"method":"public/nope","params":{}}')
    assert json.loads(err)["error"]["code"] == -32601
    assert deribit.sim_handle("not json") == ([], [])


def test_connections_and_resubscribe(deribit: Deribit) -> None:
    inst = deribit.table["BTC-PERPETUAL"]
    [conn] = deribit.connections([inst])
    assert conn.path == "/ws/api/v2" and conn.instruments == [inst]
    beat, sub = (json.loads(m) for m in conn.subscribe)
    assert (beat["method"], beat["params"]["interval"]) == ("public/set_heartbeat", 10)
    assert sub["method"] == "public/subscribe" and beat["id"] != sub["id"]
    assert sub["params"]["channels"] == ["quote.BTC-PERPETUAL", "book.BTC-PERPETUAL.100ms",
                                         "ticker.BTC-PERPETUAL.agg2"]
    [no_books] = deribit.connections([inst], books=False)
    assert all(not c.startswith("book.") for c in json.loads(no_books.subscribe[1])["params"]["channels"])
    many = [msgspec.structs.replace(inst, venue_symbol=f"X{n}_USDC-PERPETUAL") for n in range(70)]
    [big] = deribit.connections(many)
    subs = [json.loads(m) for m in big.subscribe[1:]]
    assert all(len(s["params"]["channels"]) <= 100 for s in subs)
    assert len({s["id"] for s in subs}) == len(subs) and sum(len(s["params"]["channels"]) for s in subs) == 210
    # Every channel we subscribe is one the simulator serves.
    _, topics = deribit.sim_handle(conn.subscribe[1])
    assert {k for k, _ in topics} == {"quote", "book", "funding"}

    unsub, resub = (json.loads(m) for m in deribit.resubscribe_book(inst))
    assert (unsub["method"], resub["method"]) == ("public/unsubscribe", "public/subscribe")
    assert unsub["params"] == resub["params"] == {"channels": ["book.BTC-PERPETUAL.100ms"]}
    assert unsub["id"] != resub["id"]


def test_card() -> None:
    assert venue_class("deribit") is Deribit
    assert (Deribit.id, Deribit.ws_url, Deribit.rest_url, Deribit.book_sync) == (
        "deribit", "wss://www.deribit.com", "https://www.deribit.com", "in_stream")
    assert (Deribit.heartbeat_text, Deribit.taker_fee, Deribit.maker_fee) == (None, 0.0005, 0.0)
    assert Deribit.metadata_paths == (META_PATH,)
