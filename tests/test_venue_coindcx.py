"""CoinDCX futures adapter.

No CoinDCX message has been recorded yet (there is no ``fixtures/coindcx``), so the messages
here are the examples of the official API documentation (docs.coindcx.com, "Futures
Sockets" and "Futures End Points"), wrapped the way the Socket.IO stream delivers them
(``data`` is JSON text), plus SYNTHETIC variations marked as such. Expected values are
computed here from the raw JSON (json module) and the instrument responses, never taken
from the adapter.
"""

from __future__ import annotations

import json
import re

import pytest

from perparb.feeds.booksync import SYNCED, SyncedBook
from perparb.instruments.registry import Registry
from perparb.model import BookDelta, BookSnapshot, Funding, Instrument, Trade
from perparb.venues import venue_class
from perparb.venues.base import DecodeError
from perparb.venues.coindcx import ACTIVE_PATH, DETAIL_PATH, CoinDcx

MS = 1_000_000
REL = 1e-12


def _detail_path(pair: str) -> str:
    return f"{DETAIL_PATH}?pair={pair}&margin_currency_short_name=USDT"


# Docs example of "Get instrument details" (B-AAVE_USDT), verbatim values.
DOC_AAVE = {"instrument": {
    "settle_currency_short_name": "USDT", "quote_currency_short_name": "USDT", "position_currency_short_name": "AAVE",
    "underlying_currency_short_name": "AAVE", "status": "active", "pair": "B-AAVE_USDT", "kind": "perpetual",
    "settlement": "never", "max_leverage_long": 10.0, "max_leverage_short": 10.0, "unit_contract_value": 1.0,
    "price_increment": 0.01, "quantity_increment": 0.1, "min_trade_size": 0.1, "min_price": 4.557,
    "max_price": 2878.2, "min_quantity": 0.1, "max_quantity": 950000.0, "min_notional": 6.0, "maker_fee": 0.025,
    "taker_fee": 0.075, "safety_percentage": 2.0, "quanto_to_settle_multiplier": 1.0, "is_inverse": False,
    "is_quanto": False, "allow_post_only": False, "allow_hidden": False, "max_market_order_quantity": 1250.0,
    "funding_frequency": 8, "max_notional": 320000.0, "expiry_time": 2548162800000, "exit_only": False,
    "multiplier_up": 8.0, "multiplier_down": 8.0, "liquidation_fee": 1.0, "margin_currency_short_name": "USDT",
    "time_in_force_options": ["good_till_cancel", "immediate_or_cancel", "fill_or_kill"],
    "order_types": ["market_order", "limit_order"],
    "dynamic_position_leverage_details": {"5": 15000000.0, "25": 50000.0},
    "dynamic_safety_margin_details": {"50000": 1.5, "15000000": 10.0},
}}


def _synthetic_detail(pair: str, base: str, tick: float, lot: float, hours: int, **kw: object) -> dict:
    """SYNTHETIC: the docs' shape with other values."""
    d = json.loads(json.dumps(DOC_AAVE))["instrument"]
    d.update(pair=pair, underlying_currency_short_name=base, position_currency_short_name=base, price_increment=tick,
             quantity_increment=lot, min_quantity=lot, funding_frequency=hours, **kw)
    return {"instrument": d}


DETAILS = {
    "B-AAVE_USDT": DOC_AAVE,
    "B-ETH_USDT": _synthetic_detail("B-ETH_USDT", "ETH", 0.01, 0.001, 8),
    "B-NTRN_USDT": _synthetic_detail("B-NTRN_USDT", "NTRN", 0.0001, 1.0, 4),
    "B-1000SHIB_USDT": _synthetic_detail("B-1000SHIB_USDT", "1000SHIB", 0.000001, 1.0, 8),
    "B-ID_USDT": _synthetic_detail("B-ID_USDT", "ID", 0.0001, 1.0, 8),
    "B-OLD_USDT": _synthetic_detail("B-OLD_USDT", "OLD", 0.001, 1.0, 8, status="inactive"),
    "B-EXIT_USDT": _synthetic_detail("B-EXIT_USDT", "EXIT", 0.001, 1.0, 8, exit_only=True),
}
# Docs example of "Get active instruments" (its first entries).
DOC_ACTIVE = ["B-VANRY_USDT", "B-BOME_USDT", "B-BTCDOM_USDT", "B-IOTX_USDT", "B-LPT_USDT", "B-ENA_USDT"]


def _spec(pair: str) -> dict:
    """(canonical symbol, price scale, contract size, interval) straight from the detail JSON."""
    d = DETAILS[pair]["instrument"]
    m = re.fullmatch(r"(10+)([A-Z][A-Z0-9]*)", d["underlying_currency_short_name"])
    asset, scale = (m.group(2), float(m.group(1))) if m else (d["underlying_currency_short_name"], 1.0)
    return {"symbol": f"{asset}/{d['quote_currency_short_name']}:{d['settle_currency_short_name']}", "scale": scale,
            "ct": float(d["unit_contract_value"]), "hours": float(d["funding_frequency"])}


def _coindcx() -> CoinDcx:
    v = CoinDcx(Registry())
    for pair, body in DETAILS.items():
        v.registry.add_many(v.parse_metadata(_detail_path(pair), json.dumps(body)))
    return v


@pytest.fixture
def dcx() -> CoinDcx:
    return _coindcx()


def _frame(event: str, body: dict) -> str:
    """An event as the stream delivers it: [event, {"event": event, "data": "<JSON text>"}]."""
    return json.dumps([event, {"event": event, "data": json.dumps(body)}])


# Docs example of the futures "Get Orderbook" event; "s" added (third-party captures carry the
# market name there; the docs' example omits it).
DOC_DEPTH = {"ts": 1705913767265, "vs": 53727235,
             "asks": {"2410": "112.442", "2409.77": "55.997", "2409.78": "5.912"},
             "bids": {"2409.76": "12.417", "2409.75": "1.516", "2409.74": "15.876"}, "pr": "futures", "s": "ETHUSDT"}
# Docs example of "Get Current Prices" (socket): B-UNI carries only send times, B-LDO only a mark price.
DOC_PRICES_SOCKET = {"vs": 29358821, "ts": 1707384027242, "pr": "futures", "pST": 1707384027230, "prices": {
    "B-UNI_USDT": {"bmST": 1707384027000, "cmRT": 1707384027149},
    "B-LDO_USDT": {"mp": 2.87559482, "bmST": 1707384027000, "cmRT": 1707384027149}}}
# Docs example of "Get Current Prices RT" (REST), which has the same prices map, pushed as an event.
DOC_PRICES_RT = {"ts": 1720429586580, "vs": 54009972, "prices": {
    "B-NTRN_USDT": {"fr": 5e-05, "h": 0.4027, "l": 0.3525, "v": 18568384.9349, "ls": 0.4012, "pc": 4.834,
                    "mkt": "NTRNUSDT", "btST": 1720429583629, "ctRT": 1720429584517, "skw": -207, "mp": 0.40114525,
                    "efr": 5e-05, "bmST": 1720429586000, "cmRT": 1720429586117},
    "B-1000SHIB_USDT": {"fr": -0.00011894, "h": 0.017099, "l": 0.014712, "v": 358042914.374195, "ls": 0.016909,
                        "pc": 2.578, "mkt": "1000SHIBUSDT", "btST": 1720429586359, "ctRT": 1720429586517,
                        "skw": -207, "mp": 0.01691261, "efr": -9.115e-05, "bmST": 1720429586000,
                        "cmRT": 1720429586117}}}
# Docs example of "Get New Trade".
DOC_TRADE = {"T": 1705516361108, "RT": 1705516416271.6133, "p": "0.3473", "q": "40", "m": 1, "s": "B-ID_USDT",
             "pr": "f"}


def _close(actual: object, expected: object) -> bool:
    """Equal up to float rounding, through lists and tuples."""
    if isinstance(expected, list | tuple):
        return (isinstance(actual, list | tuple) and len(actual) == len(expected)
                and all(_close(a, e) for a, e in zip(actual, expected, strict=True)))
    return actual == pytest.approx(expected, rel=REL)


def _next_funding_ns(ts_ms: int, hours: float) -> int:
    step = int(hours * 3_600_000)
    return (ts_ms - ts_ms % step + step) * MS


# -- books -----------------------------------------------------------------------------------
def test_depth_snapshot(dcx: CoinDcx) -> None:
    [snap] = dcx.parse(_frame("depth-snapshot", DOC_DEPTH), 123)
    spec = _spec("B-ETH_USDT")
    raw = json.loads(json.loads(_frame("depth-snapshot", DOC_DEPTH))[1]["data"])
    want_bids = sorted(((float(p) / spec["scale"], float(q) * spec["ct"] * spec["scale"])
                        for p, q in raw["bids"].items()), reverse=True)
    want_asks = sorted((float(p) / spec["scale"], float(q) * spec["ct"] * spec["scale"]) for p, q in raw["asks"].items())
    assert type(snap) is BookSnapshot
    assert (snap.venue, snap.venue_symbol, snap.symbol) == ("coindcx", "B-ETH_USDT", "ETH/USDT:USDT")
    assert _close(snap.bids, want_bids) and _close(snap.asks, want_asks)
    assert snap.bids[0][0] == 2409.76 and snap.asks[0][0] == 2409.77  # best first, whatever the map order
    assert (snap.seq, snap.ts_exchange_ns, snap.recv_ns) == (53727235, 1705913767265 * MS, 123)
    assert dcx.take_problems() == []


def test_scaled_book_and_string_numbers(dcx: CoinDcx) -> None:
    body = {"ts": "1705913767265", "vs": "7", "asks": {"0.016910": "1000"}, "bids": {"0.016909": "52000"},
            "s": "1000SHIBUSDT"}  # SYNTHETIC: numbers as text, a 1000-multiple market
    [snap] = dcx.parse(_frame("depth-snapshot", body), 0)
    assert snap.symbol == "SHIB/USDT:USDT" and snap.venue_symbol == "B-1000SHIB_USDT"
    assert _close(snap.bids, [(0.016909 / 1000, 52000 * 1000.0)])
    assert _close(snap.asks, [(0.016910 / 1000, 1000 * 1000.0)])
    assert (snap.seq, snap.ts_exchange_ns) == (7, 1705913767265 * MS)


def test_depth_update_is_an_unchained_delta(dcx: CoinDcx) -> None:
    body = {"ts": 1705913767300, "vs": 53727236, "asks": {"2409.77": "0"}, "bids": {"2409.76": "3.5"},
            "s": "ETHUSDT"}  # SYNTHETIC: spot-style incremental event, not documented for futures
    [d] = dcx.parse(_frame("depth-update", body), 0)
    assert type(d) is BookDelta and d.prev_seq is None and d.seq == 53727236
    assert d.asks == [(2409.77, 0.0)] and _close(d.bids, [(2409.76, 3.5)])


def test_books_replay_through_the_shared_state_machine(dcx: CoinDcx) -> None:
    """SYNTHETIC sequence: whole books replace each other with no false resync."""
    sb = SyncedBook(CoinDcx.book_sync, dcx.book_checksum())
    frames = []
    for n in range(20):
        bids = {f"{2400 - k - n * 0.5:.2f}": f"{1 + k + n}" for k in range(5)}
        asks = {f"{2401 + k + n * 0.5:.2f}": f"{2 + k}" for k in range(5)}
        frames.append({"ts": 1705913767265 + n, "vs": 100 + n * 7, "bids": bids, "asks": asks, "s": "ETHUSDT"})
    for f in frames:
        for ev in dcx.parse(_frame("depth-snapshot", f), 0):
            assert type(ev) is BookSnapshot
            assert sb.on_snapshot(ev)
    assert sb.state == SYNCED and sb.resyncs == 0 and sb.gaps == 0
    last = frames[-1]
    want = sorted(((float(p), float(q)) for p, q in last["bids"].items()), reverse=True)
    assert _close(sb.book.bids.top(100), want)
    assert _close(sb.book.asks.top(100), sorted((float(p), float(q)) for p, q in last["asks"].items()))


# -- funding ---------------------------------------------------------------------------------
def test_current_prices_funding(dcx: CoinDcx) -> None:
    events = dcx.parse(_frame("currentPrices@futures#update", DOC_PRICES_RT), 5)
    assert [type(e) for e in events] == [Funding, Funding]
    for f in events:
        raw = DOC_PRICES_RT["prices"][f.venue_symbol]
        spec = _spec(f.venue_symbol)
        assert f.symbol == spec["symbol"]
        assert f.rate == raw["efr"] and f.predicted_rate is None
        assert f.interval_h == spec["hours"]  # NTRN lists 4 h: not assumed 8
        assert f.next_funding_ns == _next_funding_ns(DOC_PRICES_RT["ts"], spec["hours"])
        assert f.next_funding_ns > f.ts_exchange_ns == DOC_PRICES_RT["ts"] * MS
        assert f.mark_px == pytest.approx(raw["mp"] / spec["scale"], rel=REL) and f.index_px is None
    assert events[0].interval_h == 4.0 and events[1].venue_symbol == "B-1000SHIB_USDT"


def test_current_prices_merge_changed_fields(dcx: CoinDcx) -> None:
    # Docs socket example: B-UNI only send times (nothing), B-LDO a mark but never a rate yet (nothing).
    assert dcx.parse(_frame("currentPrices@futures#update", DOC_PRICES_SOCKET), 0) == []
    dcx.parse(_frame("currentPrices@futures#update", DOC_PRICES_RT), 0)
    # SYNTHETIC: later pushes carry only what changed.
    mark_only = {"ts": 1720429587580, "prices": {"B-NTRN_USDT": {"mp": 0.41, "bmST": 1, "cmRT": 2}}}
    [f] = dcx.parse(_frame("currentPrices@futures#update", mark_only), 0)
    assert (f.rate, f.mark_px) == (5e-05, 0.41)
    fr_only = {"ts": 1720429588580, "prices": {"B-NTRN_USDT": {"fr": 7e-05}}}
    [g] = dcx.parse(_frame("currentPrices@futures#update", fr_only), 0)
    assert g.rate == 5e-05  # efr still stands for the upcoming settlement
    times_only = {"ts": 1720429589580, "prices": {"B-NTRN_USDT": {"bmST": 3, "cmRT": 4}}}
    assert dcx.parse(_frame("currentPrices@futures#update", times_only), 0) == []
    fresh = CoinDcx(dcx.registry)  # a venue that sends fr before any efr
    [h] = fresh.parse(_frame("currentPrices@futures#update", fr_only), 0)
    assert h.rate == 7e-05 and h.mark_px is None


# -- trades ----------------------------------------------------------------------------------
def test_new_trade(dcx: CoinDcx) -> None:
    [t] = dcx.parse(_frame("new-trade", DOC_TRADE), 9)
    spec = _spec("B-ID_USDT")
    assert type(t) is Trade and t.symbol == spec["symbol"]
    assert t.px == pytest.approx(float(DOC_TRADE["p"]) / spec["scale"], rel=REL)
    assert t.qty == pytest.approx(float(DOC_TRADE["q"]) * spec["ct"] * spec["scale"], rel=REL)
    assert t.side == "sell"  # m = 1: the buyer was the maker, so the taker sold
    assert t.ts_exchange_ns == DOC_TRADE["T"] * MS and t.recv_ns == 9
    [b] = dcx.parse(_frame("new-trade", {**DOC_TRADE, "m": 0}), 0)
    assert b.side == "buy"


# -- other messages --------------------------------------------------------------------------
@pytest.mark.parametrize("raw", [
    '["candlestick",{"event":"candlestick","data":"{\\"data\\":[],\\"pr\\":\\"futures\\"}"}]',
    '["price-change",{"event":"price-change","data":"{\\"T\\":1,\\"p\\":\\"0.3\\",\\"pr\\":\\"f\\"}"}]',
    '["balance-update",{"event":"balance-update","data":"[]"}]',
    '["pong"]',
])
def test_other_events_give_nothing(dcx: CoinDcx, raw: str) -> None:
    assert dcx.parse(raw, 0) == [] and dcx.take_problems() == []


def test_unknown_symbols(dcx: CoinDcx) -> None:
    assert dcx.parse(_frame("depth-snapshot", {**DOC_DEPTH, "s": "ETHINR"}), 0) == []
    assert dcx.parse(_frame("new-trade", {**DOC_TRADE, "s": "I-ID_INR"}), 0) == []
    prices = {"ts": 1, "prices": {"KC-BTC_USDT": {"fr": 1e-4}}}
    assert dcx.parse(_frame("currentPrices@futures#update", prices), 0) == []
    problems = dcx.take_problems()
    assert len(problems) == 3 and all("coindcx" in p for p in problems)
    assert "ETHINR" in problems[0] and "I-ID_INR" in problems[1] and "KC-BTC_USDT" in problems[2]
    unlabelled = {k: v for k, v in DOC_DEPTH.items() if k != "s"}  # the docs' example as printed
    assert dcx.parse(_frame("depth-snapshot", unlabelled), 0) == []
    assert "without a market name" in dcx.take_problems()[0]


def test_symbols_not_in_metadata_are_derived(dcx: CoinDcx) -> None:
    [snap] = dcx.parse(_frame("depth-snapshot", {**DOC_DEPTH, "s": "1000PEPEUSDT"}), 0)
    inst = dcx.table["B-1000PEPE_USDT"]
    assert (inst.symbol, inst.price_scale, inst.contract_size, inst.status) == ("PEPE/USDT:USDT", 1000.0, 1.0,
                                                                              "derived")
    assert _close(snap.bids[0], (2409.76 / 1000, 12.417 * 1000))
    assert "1000PEPEUSDT" not in dcx.table  # cached under the pair only
    assert dcx.derive("BTCUSDT") == dcx.derive("B-BTC_USDT") and dcx.derive("BTCUSD") is None


@pytest.mark.parametrize("raw", [
    _frame("depth-snapshot", DOC_DEPTH)[:-30],
    '["depth-snapshot",{"event":"depth-snapshot","data":"{not json"}]',
    _frame("depth-snapshot", {**DOC_DEPTH, "bids": {"2409.76": "x"}}),
    _frame("new-trade", {**DOC_TRADE, "p": "abc"}),
    _frame("currentPrices@futures#update", {"ts": 1, "prices": {"B-ID_USDT": {"fr": "high"}}}),
    '{"event":"depth-snapshot"}',
    "<html>bad gateway</html>",
])
def test_malformed_raises_decode_error(dcx: CoinDcx, raw: str) -> None:
    with pytest.raises(DecodeError, match="coindcx"):
        dcx.parse(raw, 0)


# -- metadata --------------------------------------------------------------------------------
def test_instrument_details(dcx: CoinDcx) -> None:
    aave = dcx.table["B-AAVE_USDT"]
    d = DOC_AAVE["instrument"]
    assert (aave.symbol, aave.asset, aave.quote, aave.settle, aave.inverse) == ("AAVE/USDT:USDT", "AAVE", "USDT",
                                                                                "USDT", False)
    assert (aave.contract_size, aave.tick_size, aave.lot_size, aave.min_qty, aave.min_notional) == (
        d["unit_contract_value"], d["price_increment"], d["quantity_increment"], d["min_quantity"], d["min_notional"])
    assert aave.taker_fee == pytest.approx(d["taker_fee"] / 100, rel=REL)  # the API gives percent
    assert aave.maker_fee == pytest.approx(d["maker_fee"] / 100, rel=REL)
    assert (aave.funding_interval_h, aave.status, aave.source) == (8.0, "active", "coindcx")
    assert dcx.table["B-NTRN_USDT"].funding_interval_h == 4.0
    shib = dcx.table["B-1000SHIB_USDT"]
    assert (shib.asset, shib.price_scale) == ("SHIB", 1000.0)
    assert dcx.table["B-OLD_USDT"].status == "inactive"
    assert dcx.table["B-EXIT_USDT"].status == "inactive"  # exit-only: positions can only shrink
    assert CoinDcx.taker_fee == pytest.approx(d["taker_fee"] / 100) and CoinDcx.maker_fee == pytest.approx(
        d["maker_fee"] / 100)


def test_non_perpetual_details_are_excluded() -> None:
    v = CoinDcx(Registry())
    body = _synthetic_detail("B-BTC_USDT", "BTC", 0.1, 0.001, 8, kind="future")  # SYNTHETIC
    assert v.parse_metadata(_detail_path("B-BTC_USDT"), json.dumps(body)) == []


def test_active_instruments(dcx: CoinDcx) -> None:
    out = {i.venue_symbol: i for i in dcx.parse_metadata(ACTIVE_PATH, json.dumps(["B-AAVE_USDT", *DOC_ACTIVE]))}
    # Known instruments keep their details; new names are active with base-unit defaults.
    assert out["B-AAVE_USDT"] == dcx.table["B-AAVE_USDT"]
    for pair in DOC_ACTIVE:
        base = pair[2:-5]
        assert (out[pair].symbol, out[pair].status, out[pair].contract_size) == (f"{base}/USDT:USDT", "active", 1.0)
    # Listed before, not listed now: no longer tradable.
    assert out["B-ETH_USDT"].status == "inactive" and out["B-NTRN_USDT"].status == "inactive"
    assert "B-OLD_USDT" not in out  # already inactive


def test_metadata_round_trip(dcx: CoinDcx) -> None:
    originals = sorted(dcx.table.values(), key=lambda i: i.venue_symbol)
    bodies = dcx.sim_metadata(originals)
    back = CoinDcx(Registry())
    got = [j for i in originals for j in back.parse_metadata(CoinDcx.detail_path(i.venue_symbol),
                                                             bodies[CoinDcx.detail_path(i.venue_symbol)])]
    assert got == originals
    listed = json.loads(bodies[ACTIVE_PATH])
    assert listed == [i.venue_symbol for i in originals if i.status == "active"]


def test_metadata_errors_and_other_paths(dcx: CoinDcx) -> None:
    assert dcx.parse_metadata("/exchange/v1/derivatives/futures/data/trades?pair=B-ID_USDT", b"[]") == []
    with pytest.raises(DecodeError, match="coindcx"):
        dcx.parse_metadata(ACTIVE_PATH, b'{"message":"not found"}')


# -- simulator -------------------------------------------------------------------------------
@pytest.mark.parametrize("pair", ["B-ETH_USDT", "B-1000SHIB_USDT"])
def test_sim_encoders_round_trip(dcx: CoinDcx, pair: str) -> None:
    inst: Instrument = dcx.table[pair]
    spec = _spec(pair)
    bids, asks = [(101.5, 12.0), (101.25, 0.5)], [(101.75, 3.0), (102.0, 1.0)]
    wire = dcx.sim_book(inst, True, bids, asks, 500, -1, 500, 1_700_000_000_000)
    event, body = json.loads(wire)
    assert event == "depth-snapshot" and body["event"] == "depth-snapshot" and isinstance(body["data"], str)
    [snap] = dcx.parse(wire, 0)
    assert type(snap) is BookSnapshot and snap.seq == 500 and snap.ts_exchange_ns == 1_700_000_000_000 * MS
    assert _close(snap.bids, [(p / spec["scale"], q * spec["scale"]) for p, q in bids])
    # A change is sent as the whole new book.
    [after] = dcx.parse(dcx.sim_book(inst, False, [(101.5, 0.0)], [(101.6, 2.0)], 501, 500, 501, 1_700_000_000_100), 0)
    assert type(after) is BookSnapshot and after.seq == 501
    assert _close(after.bids, [(101.25 / spec["scale"], 0.5 * spec["scale"])])
    assert _close([p for p, _ in after.asks], [x / spec["scale"] for x in (101.6, 101.75, 102.0)])

    v = CoinDcx(dcx.registry)
    [f] = v.parse(v.sim_funding(inst, 0.000125, 1_700_006_400_000, 101.6, 101.55, 1_700_000_000_000), 0)
    assert (f.rate, f.predicted_rate, f.interval_h) == (0.000125, None, spec["hours"])
    assert f.mark_px == pytest.approx(101.6 / spec["scale"], rel=REL)
    assert f.next_funding_ns == _next_funding_ns(1_700_000_000_000, spec["hours"])
    # Later pushes carry only what changed; the merged state still gives the whole picture.
    partial = v.sim_funding(inst, 0.000125, 1_700_006_400_000, 101.7, 101.55, 1_700_000_001_000, full=False)
    fields = json.loads(json.loads(partial)[1]["data"])["prices"][pair]
    assert set(fields) == {"mp", "bmST", "cmRT"}
    [g] = v.parse(partial, 0)
    assert (g.rate, g.mark_px) == (0.000125, pytest.approx(101.7 / spec["scale"], rel=REL))


def test_sim_handle(dcx: CoinDcx) -> None:
    dcx.sim_metadata([dcx.table["B-ETH_USDT"], dcx.table["B-ID_USDT"]])
    conns = dcx.connections([dcx.table["B-ETH_USDT"], dcx.table["B-ID_USDT"]])
    topics = [t for msg in conns[0].subscribe for t in dcx.sim_handle(msg)[1]]
    assert topics == [("book", "B-ETH_USDT"), ("book", "B-ID_USDT"), ("funding", "B-ETH_USDT"),
                      ("funding", "B-ID_USDT")]
    assert dcx.sim_handle('["join",{"channelName":"B-ID_USDT@trades-futures"}]') == ([], [("trade", "B-ID_USDT")])
    assert dcx.sim_handle(CoinDcx.heartbeat_text) == ([], [])
    assert dcx.sim_handle('["leave",{"channelName":"B-ID_USDT@orderbook@50-futures"}]') == ([], [])
    assert dcx.sim_handle("not json") == ([], [])


def test_connections_and_resubscribe(dcx: CoinDcx) -> None:
    insts = [dcx.table["B-ETH_USDT"], dcx.table["B-AAVE_USDT"]]
    for books in (True, False):
        [conn] = dcx.connections(insts, books=books)
        assert conn.path == "" and conn.instruments == insts
        assert [json.loads(m) for m in conn.subscribe] == [
            ["join", {"channelName": "B-ETH_USDT@orderbook@50-futures"}],
            ["join", {"channelName": "B-AAVE_USDT@orderbook@50-futures"}],
            ["join", {"channelName": "currentPrices@futures@rt"}]]
    leave, join = dcx.resubscribe_book(insts[0])
    assert json.loads(leave) == ["leave", {"channelName": "B-ETH_USDT@orderbook@50-futures"}]
    assert json.loads(join) == ["join", {"channelName": "B-ETH_USDT@orderbook@50-futures"}]


def test_card() -> None:
    assert venue_class("coindcx") is CoinDcx
    assert (CoinDcx.id, CoinDcx.ws_url, CoinDcx.rest_url, CoinDcx.book_sync) == (
        "coindcx", "wss://stream.coindcx.com", "https://api.coindcx.com", "full")
    assert json.loads(CoinDcx.heartbeat_text or "") == ["ping", {"data": "Ping message"}]
    assert CoinDcx.heartbeat_s == 25.0 and CoinDcx.metadata_paths == (ACTIVE_PATH,)
    assert CoinDcx.sim_has_sequence is False
