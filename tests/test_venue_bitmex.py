"""BitMEX adapter against real recorded messages.

Expected values are computed here from the raw JSON (json module) and the instrument
responses (multiplier, underlyingToPositionMultiplier, quoteToSettleMultiplier, isInverse,
isQuanto), never taken from the adapter.
"""

from __future__ import annotations

import calendar
import json
from datetime import datetime

import msgspec
import pytest

from conftest import fixture_files, fixture_lines
from conftest import same as _same
from perparb.feeds.booksync import INVALID, SYNCED, SyncedBook
from perparb.instruments.registry import Registry
from perparb.model import BookDelta, BookSnapshot, Funding, Instrument, Quote, Trade
from perparb.venues import venue_class
from perparb.venues.base import DecodeError
from perparb.venues.bitmex import Bitmex

ACTIVE_PATH = "/api/v1/instrument/active"
ACTIVE_2021 = "cryptofeed_2021-07-22_rest_api_v1_instrument_active_full.jsonl"
XBTUSD_2024 = "nautilus_rest_api_v1_instrument_XBTUSD_single-element-not-array.jsonl"
CCXT_2026 = "ccxt-static-markets_2026_rest_api_v1_instrument_active_INFO-EXTRACTED_excerpt.jsonl"
METADATA = ((ACTIVE_PATH, ACTIVE_2021), ("/api/v1/instrument?symbol=XBTUSD", XBTUSD_2024))  # older first
L2 = "cryptofeed_2021-07-22_ws_realtime_orderBookL2.jsonl"
TARDIS = "tardis-node-tests_bitmex_2019-2022_samples.jsonl"
RECV = 123
REL = 1e-12


def _raw_instruments() -> list[dict]:
    out = []
    for _, name in METADATA:
        for line in fixture_lines("bitmex", name):
            body = json.loads(line)
            out += body if isinstance(body, list) else [body]
    return out


def _specs() -> dict[str, dict]:
    """symbol → contract facts read straight from the instrument responses (later files win)."""
    out = {}
    for d in _raw_instruments():
        if d["typ"] not in ("FFWCSX", "FFWCSF"):
            continue  # dated futures
        if d["isInverse"]:
            size = d["multiplier"] / d["underlyingToSettleMultiplier"]  # USD per contract
        elif d["isQuanto"]:
            size = d["multiplier"] / d["quoteToSettleMultiplier"]
        else:
            size = 1 / d["underlyingToPositionMultiplier"]
        asset = "BTC" if d["underlying"] == "XBT" else d["underlying"]
        settle = {"XBt": "BTC", "USDt": "USDT"}[d["settlCurrency"]]
        out[d["symbol"]] = {
            "size": size, "inverse": d["isInverse"], "quanto": d["isQuanto"],
            "symbol": f"{asset}/{d['quoteCurrency']}:{settle}", "asset": asset, "quote": d["quoteCurrency"],
            "settle": settle, "state": d["state"], "tick": d["tickSize"], "lot": d["lotSize"],
            "taker": d["takerFee"], "maker": d["makerFee"],
            "interval_h": (_ns(d["fundingInterval"]) - _ns("2000-01-01T00:00:00.000Z")) / 3.6e12,
        }
    return out


def _ns(iso: str) -> int:
    dt = datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ")
    return (calendar.timegm(dt.timetuple()) * 1000 + dt.microsecond // 1000) * 1_000_000


SPECS = _specs()


def _bitmex() -> Bitmex:
    v = Bitmex(Registry())
    for path, name in METADATA:
        for line in fixture_lines("bitmex", name):
            v.registry.add_many(v.parse_metadata(path, line))
    return v


@pytest.fixture
def bitmex() -> Bitmex:
    return _bitmex()


def _qty(sym: str, px: float, size: float) -> float:
    s = SPECS[sym]
    return size * s["size"] / px if s["inverse"] else size * s["size"]


class Expect:
    """An independent reading of the protocol: id → price per symbol, funding merged per symbol."""

    def __init__(self) -> None:
        self.ids: dict[str, dict[int, float]] = {}
        self.funding: dict[str, dict] = {}

    def events(self, msg: dict) -> tuple[list[tuple[type, dict]], list[str]]:
        table = msg.get("table")
        out: list[tuple[type, dict]] = []
        unknown: list[str] = []
        if table == "orderBookL2":
            groups: list[tuple[str, list[dict]]] = []
            for r in msg["data"]:
                if groups and groups[-1][0] == r["symbol"]:
                    groups[-1][1].append(r)
                else:
                    groups.append((r["symbol"], [r]))
            if not groups and msg["action"] == "partial" and msg.get("filter", {}).get("symbol"):
                groups = [(msg["filter"]["symbol"], [])]
            for sym, rows in groups:
                if sym not in SPECS:
                    unknown.append(sym)
                    continue
                ev = self._book(sym, msg["action"], rows)
                if ev:
                    out.append(ev)
        elif table == "quote":
            for r in msg["data"]:
                if r["symbol"] not in SPECS:
                    unknown.append(r["symbol"])
                    continue
                s = r["symbol"]
                out.append((Quote, {**self._common(s), "bid_px": float(r["bidPrice"]),
                                    "bid_qty": _qty(s, r["bidPrice"], r["bidSize"]), "ask_px": float(r["askPrice"]),
                                    "ask_qty": _qty(s, r["askPrice"], r["askSize"]),
                                    "ts_exchange_ns": _ns(r["timestamp"])}))
        elif table == "trade":
            for r in msg["data"]:
                s = r["symbol"]
                if s not in SPECS:
                    unknown.append(s)
                    continue
                out.append((Trade, {**self._common(s), "px": float(r["price"]), "qty": _qty(s, r["price"], r["size"]),
                                    "side": r["side"].lower(), "trade_id": r["trdMatchID"],
                                    "ts_exchange_ns": _ns(r["timestamp"])}))
        elif table == "instrument":
            for r in msg["data"]:
                s = r["symbol"]
                if s not in SPECS:
                    unknown.append(s)
                    continue
                state = self.funding.setdefault(s, {})
                if msg["action"] == "partial":
                    state.clear()
                fields = ("fundingRate", "indicativeFundingRate", "fundingTimestamp", "fundingInterval",
                          "markPrice", "indicativeSettlePrice")
                news = msg["action"] == "partial" or any(k in r for k in fields)
                state.update({k: r[k] for k in fields if k in r})
                if not news or state.get("fundingRate") is None or not state.get("fundingTimestamp"):
                    continue
                hours = ((_ns(state["fundingInterval"]) - _ns("2000-01-01T00:00:00.000Z")) / 3.6e12
                         if state.get("fundingInterval") else SPECS[s]["interval_h"])
                out.append((Funding, {**self._common(s), "rate": state["fundingRate"],
                                      "predicted_rate": state.get("indicativeFundingRate"), "interval_h": hours,
                                      "next_funding_ns": _ns(state["fundingTimestamp"]),
                                      "mark_px": state.get("markPrice"), "index_px": state.get("indicativeSettlePrice"),
                                      "ts_exchange_ns": _ns(r["timestamp"]) if "timestamp" in r else 0}))
        return out, unknown

    def _common(self, sym: str) -> dict:
        return {"venue": "bitmex", "venue_symbol": sym, "symbol": SPECS[sym]["symbol"], "recv_ns": RECV}

    def _book(self, sym: str, action: str, rows: list[dict]) -> tuple[type, dict] | None:
        ts = _ns(rows[0]["timestamp"]) if rows and "timestamp" in rows[0] else 0
        bids: list[tuple[float, float]] = []
        asks: list[tuple[float, float]] = []
        if action == "partial":
            self.ids[sym] = {r["id"]: float(r["price"]) for r in rows}
            for r in rows:
                (bids if r["side"] == "Buy" else asks).append((float(r["price"]), _qty(sym, r["price"], r["size"])))
            return BookSnapshot, {**self._common(sym), "bids": sorted(bids, reverse=True), "asks": sorted(asks),
                                  "seq": 0, "ts_exchange_ns": ts}
        if sym not in self.ids:
            return None  # before the partial
        ids = self.ids[sym]
        for r in rows:
            price = float(r["price"]) if "price" in r else ids.get(r["id"])
            if price is None:  # an id never seen: the book is lost
                del self.ids[sym]
                return BookDelta, {**self._common(sym), "bids": [], "asks": [], "prev_seq": -1, "ts_exchange_ns": ts}
            if action == "delete":
                ids.pop(r["id"], None)
                size = 0.0
            else:
                ids[r["id"]] = price
                size = _qty(sym, price, r["size"])
            (bids if r["side"] == "Buy" else asks).append((price, size))
        return BookDelta, {**self._common(sym), "bids": bids, "asks": asks, "prev_seq": None, "first_seq": 0,
                           "seq": 0, "ts_exchange_ns": ts}




def _check(v: Bitmex, expect: Expect, line: bytes, where: str) -> list:
    msg = json.loads(line) if line.strip() != b"pong" else None
    expected, unknown = expect.events(msg) if isinstance(msg, dict) else ([], [])
    events = v.parse(line, RECV)
    problems = v.take_problems()
    assert [type(e) for e in events] == [t for t, _ in expected], where
    for ev, (_, fields) in zip(events, expected, strict=True):
        for key, value in fields.items():
            assert _same(getattr(ev, key), value), f"{where} {key}: {getattr(ev, key)!r} != {value!r}"
    assert len(problems) == len(unknown), (where, problems)
    for sym, text in zip(unknown, problems, strict=True):
        assert sym in text and "bitmex" in text, where
    return events


MESSAGE_FILES = [p for p in fixture_files("bitmex") if "_rest_" not in p.name]
REST_FILES = [p for p in fixture_files("bitmex") if "_rest_" in p.name]


def test_fixture_set_is_what_this_test_expects() -> None:
    assert {p.name for p in REST_FILES} == {ACTIVE_2021, XBTUSD_2024,
                                           "ccxt-static-markets_2026_rest_api_v1_instrument_active_INFO-EXTRACTED_excerpt.jsonl"}
    assert len(MESSAGE_FILES) == 5


def test_ccxt_extracted_objects_with_string_numbers_parse_as_the_venues_own() -> None:
    """ccxt stored BitMEX's numbers as JSON strings; the parser reads them as numbers."""
    rows = {r["symbol"]: r for r in json.loads(fixture_lines("bitmex", CCXT_2026)[0])}
    got = {i.venue_symbol: i for i in Bitmex(Registry()).parse_metadata(ACTIVE_PATH, fixture_lines("bitmex", CCXT_2026)[0])}
    assert set(got) == set(rows)
    xbtusd, r = got["XBTUSD"], rows["XBTUSD"]
    # Inverse: multiplier / underlyingToSettleMultiplier USD per contract.
    assert xbtusd.inverse and xbtusd.contract_size == float(r["multiplier"]) / float(r["underlyingToSettleMultiplier"])
    xbtusdt, r = got["XBTUSDT"], rows["XBTUSDT"]
    assert not xbtusdt.inverse and xbtusdt.contract_size == 1 / float(r["underlyingToPositionMultiplier"])
    assert xbtusdt.lot_size == float(r["lotSize"]) and xbtusdt.symbol == "BTC/USDT:USDT"


@pytest.mark.parametrize("path", MESSAGE_FILES, ids=lambda p: p.name)
def test_every_recorded_message(bitmex: Bitmex, path) -> None:
    expect = Expect()
    lines = fixture_lines("bitmex", path.name)
    for n, line in enumerate(lines, 1):
        _check(bitmex, expect, line, f"{path.name}:{n}")


def test_recordings_cover_every_event_type(bitmex: Bitmex) -> None:
    seen: set[type] = set()
    for path in MESSAGE_FILES:
        for line in fixture_lines("bitmex", path.name):
            seen |= {type(e) for e in bitmex.parse(line, 0)}
    assert seen == {Quote, BookSnapshot, BookDelta, Trade}  # funding: only the tardis partial of dated futures
    [f] = bitmex.parse(b'{"table":"instrument","action":"partial","data":[{"symbol":"XBTUSD","fundingRate":0.0001,'
                       b'"indicativeFundingRate":0.0001,"fundingTimestamp":"2021-07-23T04:00:00.000Z",'
                       b'"fundingInterval":"2000-01-01T08:00:00.000Z","timestamp":"2021-07-22T22:36:07.000Z"}]}', 0)
    assert type(f) is Funding


def test_control_messages_give_nothing(bitmex: Bitmex) -> None:
    lines = fixture_lines("bitmex", "cryptofeed_2021-07-22_ws_realtime_control.jsonl")
    assert all(bitmex.parse(line, 0) == [] for line in lines)
    assert bitmex.take_problems() == []
    assert bitmex.parse("pong", 0) == [] and bitmex.parse(b"pong\n", 0) == []


# -- books -----------------------------------------------------------------------------------
def test_recorded_l2_session_replays_never_crossed_and_equals_an_independent_rebuild(bitmex: Bitmex) -> None:
    books: dict[str, SyncedBook] = {}
    ids: dict[str, dict[int, tuple[float, str]]] = {}
    sides: dict[str, dict[str, dict[float, float]]] = {}
    for n, line in enumerate(fixture_lines("bitmex", L2), 1):
        msg = json.loads(line)
        touched = {r["symbol"] for r in msg["data"]}
        if msg["action"] == "partial":
            for sym in touched:
                ids[sym], sides[sym] = {}, {"Buy": {}, "Sell": {}}
        for r in msg["data"]:  # the rebuild: keyed rows straight from the JSON
            sym = r["symbol"]
            if msg["action"] in ("partial", "insert"):
                ids[sym][r["id"]] = (r["price"], r["side"])
                sides[sym][r["side"]][r["price"]] = r["size"]
            elif msg["action"] == "update":
                sides[sym][r["side"]][ids[sym][r["id"]][0]] = r["size"]
            else:
                price, _ = ids[sym].pop(r["id"])
                del sides[sym][r["side"]][price]
        for ev in bitmex.parse(line, n):
            sb = books.setdefault(ev.venue_symbol, SyncedBook(Bitmex.book_sync))
            ok = sb.on_snapshot(ev) if type(ev) is BookSnapshot else sb.on_delta(ev)
            assert ok, (n, ev.venue_symbol)
        for sym in touched:  # top of book after every message
            want_bids = sorted(sides[sym]["Buy"].items(), reverse=True)[:25]
            want_asks = sorted(sides[sym]["Sell"].items())[:25]
            assert want_bids[0][0] < want_asks[0][0], (n, sym)
            got = books[sym].book
            assert [p for p, _ in got.bids.top(25)] == [p for p, _ in want_bids], (n, sym)
            assert [p for p, _ in got.asks.top(25)] == [p for p, _ in want_asks], (n, sym)
    assert bitmex.take_problems() == []
    assert sorted(books) == sorted(sides) == ["ADAUSDT", "BCHUSD", "EOSUSDT", "MATICUSDT", "SOLUSDT", "TRXUSDT",
                                              "UNIUSDT", "XBTUSD"]
    for sym, sb in books.items():
        assert (sb.state, sb.resyncs, sb.gaps, sb.crossed) == (SYNCED, 0, 0, 0), sym
        want = [(float(p), _qty(sym, p, s)) for p, s in sorted(sides[sym]["Buy"].items(), reverse=True)]
        want += [(float(p), _qty(sym, p, s)) for p, s in sorted(sides[sym]["Sell"].items())]
        got = sb.book.bids.top(100_000) + sb.book.asks.top(100_000)
        assert _same(got, want), sym
    assert len(books["XBTUSD"].book.bids) + len(books["XBTUSD"].book.asks) > 9000


def test_xbtusd_inverse_values_by_hand(bitmex: Bitmex) -> None:
    lines = fixture_lines("bitmex", L2)
    [snap] = bitmex.parse(lines[1], 0)
    # First XBTUSD row: {"id":8700000000,"side":"Sell","size":600000,"price":1000000}: 600000 USD at 1e6,
    # the highest ask, so last in best-first order.
    assert snap.asks[-1][0] == 1_000_000.0 and snap.asks[-1][1] == pytest.approx(0.6, rel=REL)
    assert snap.symbol == "BTC/USD:BTC" and snap.seq == 0 and snap.ts_exchange_ns == 0
    assert all(a[0] < b[0] for a, b in zip(snap.asks, snap.asks[1:], strict=False))
    assert all(a[0] > b[0] for a, b in zip(snap.bids, snap.bids[1:], strict=False))


def test_rows_before_the_partial_are_ignored(bitmex: Bitmex) -> None:
    update = b'{"table":"orderBookL2","action":"update","data":[{"symbol":"XBTUSD","id":8799145550,"side":"Buy","size":1}]}'
    assert bitmex.parse(update, 0) == [] and bitmex.take_problems() == []


def _partial(sym: str = "XBTUSD") -> bytes:
    return (b'{"table":"orderBookL2","action":"partial","keys":["symbol","id","side"],"filter":{"symbol":"'
            + sym.encode() + b'"},"data":[{"symbol":"' + sym.encode() + b'","id":8799000000,"side":"Sell",'
            b'"size":100,"price":10000},{"symbol":"' + sym.encode() + b'","id":8799000100,"side":"Buy","size":200,'
            b'"price":9999}]}')


def test_unknown_level_id_breaks_the_chain_and_forgets_the_book(bitmex: Bitmex) -> None:
    sb = SyncedBook(Bitmex.book_sync)
    [snap] = bitmex.parse(_partial(), 0)
    assert sb.on_snapshot(snap)
    [lost] = bitmex.parse(b'{"table":"orderBookL2","action":"update","data":[{"symbol":"XBTUSD","id":1,"side":"Buy",'
                          b'"size":5}]}', 0)
    assert (lost.bids, lost.asks, lost.prev_seq) == ([], [], -1)
    assert not sb.on_delta(lost) and sb.state == INVALID and sb.gaps == 1
    # Until a new partial, rows are ignored (the book is being resubscribed).
    assert bitmex.parse(b'{"table":"orderBookL2","action":"delete","data":[{"symbol":"XBTUSD","id":8799000000,'
                        b'"side":"Sell"}]}', 0) == []
    [again] = bitmex.parse(_partial(), 0)
    assert sb.on_snapshot(again) and sb.state == SYNCED


def test_rows_with_a_price_need_no_map(bitmex: Bitmex) -> None:
    bitmex.parse(_partial(), 0)
    # Current BitMEX sends price and timestamp on every row: an unseen id with a price is fine.
    [d] = bitmex.parse(b'{"table":"orderBookL2","action":"update","data":[{"symbol":"XBTUSD","id":5,"side":"Buy",'
                       b'"size":300,"price":9998.5,"timestamp":"2022-02-14T08:06:54.742Z"}]}', 0)
    assert d.prev_seq is None and d.bids == [(9998.5, pytest.approx(300 / 9998.5, rel=REL))]
    assert d.ts_exchange_ns == _ns("2022-02-14T08:06:54.742Z")
    [gone] = bitmex.parse(b'{"table":"orderBookL2","action":"delete","data":[{"symbol":"XBTUSD","id":5,"side":"Buy"}]}', 0)
    assert gone.bids == [(9998.5, 0.0)]


def test_unsubscribe_ack_forgets_the_book(bitmex: Bitmex) -> None:
    bitmex.parse(_partial(), 0)
    unsub, _ = bitmex.resubscribe_book(bitmex.table["XBTUSD"])
    assert bitmex.parse(b'{"success":true,"unsubscribe":"orderBookL2:XBTUSD","request":' + unsub.encode() + b"}", 0) == []
    assert bitmex.parse(b'{"table":"orderBookL2","action":"update","data":[{"symbol":"XBTUSD","id":8799000000,'
                        b'"side":"Sell","size":1}]}', 0) == []


def test_multi_symbol_message_gives_one_event_per_symbol(bitmex: Bitmex) -> None:
    bitmex.parse(_partial("XBTUSD"), 0)
    bitmex.parse(_partial("ETHUSD"), 0)
    evs = bitmex.parse(b'{"table":"orderBookL2","action":"update","data":[{"symbol":"XBTUSD","id":8799000000,'
                       b'"side":"Sell","size":1},{"symbol":"ETHUSD","id":8799000000,"side":"Sell","size":2}]}', 0)
    assert [(e.venue_symbol, e.asks[0][0]) for e in evs] == [("XBTUSD", 10000.0), ("ETHUSD", 10000.0)]
    assert evs[1].asks[0][1] == pytest.approx(2 * SPECS["ETHUSD"]["size"], rel=REL)  # quanto: not / price


# -- funding ------------------------------------------------------------------------------------
def test_instrument_updates_merge_and_only_funding_news_emits(bitmex: Bitmex) -> None:
    [f] = bitmex.parse(b'{"table":"instrument","action":"partial","keys":["symbol"],"data":[{"symbol":"XBTUSD",'
                       b'"fundingRate":0.00011,"indicativeFundingRate":0.000125,"fundingTimestamp":'
                       b'"2024-11-25T04:00:00.000Z","fundingInterval":"2000-01-01T08:00:00.000Z","markPrice":97849.76,'
                       b'"indicativeSettlePrice":97843.77,"lastPrice":97893.7,"timestamp":"2024-11-24T23:33:19.034Z"}]}', 7)
    assert (f.rate, f.predicted_rate, f.interval_h) == (0.00011, 0.000125, 8.0)
    assert f.next_funding_ns == _ns("2024-11-25T04:00:00.000Z") and f.ts_exchange_ns == _ns("2024-11-24T23:33:19.034Z")
    assert (f.mark_px, f.index_px, f.symbol) == (97849.76, 97843.77, "BTC/USD:BTC")
    assert bitmex.parse(b'{"table":"instrument","action":"update","data":[{"symbol":"XBTUSD","lastPrice":97900,'
                        b'"timestamp":"2024-11-24T23:33:20.000Z"}]}', 8) == []
    [g] = bitmex.parse(b'{"table":"instrument","action":"update","data":[{"symbol":"XBTUSD","markPrice":97850.5,'
                       b'"timestamp":"2024-11-24T23:33:21.000Z"}]}', 9)
    assert (g.rate, g.predicted_rate, g.mark_px, g.index_px) == (0.00011, 0.000125, 97850.5, 97843.77)
    # BitMEX shortens the interval in volatile markets: the new value comes in the table.
    [h] = bitmex.parse(b'{"table":"instrument","action":"update","data":[{"symbol":"XBTUSD","fundingInterval":'
                       b'"2000-01-01T02:00:00.000Z","fundingTimestamp":"2024-11-25T00:00:00.000Z"}]}', 10)
    assert (h.interval_h, h.next_funding_ns, h.ts_exchange_ns) == (2.0, _ns("2024-11-25T00:00:00.000Z"), 0)


def test_metadata_funding_interval_comes_from_the_field(bitmex: Bitmex) -> None:
    row = json.loads(fixture_lines("bitmex", XBTUSD_2024)[0])
    row["fundingInterval"] = "2000-01-01T04:00:00.000Z"
    [inst] = Bitmex(Registry()).parse_metadata(ACTIVE_PATH, json.dumps([row]))
    assert inst.funding_interval_h == 4.0


# -- unknown and malformed ----------------------------------------------------------------------
def test_unknown_symbols_give_no_events_and_a_problem(bitmex: Bitmex) -> None:
    for raw in (b'{"table":"quote","action":"insert","data":[{"timestamp":"2021-07-22T22:36:09.712Z","symbol":"XBTU21",'
                b'"bidSize":1,"bidPrice":1,"askPrice":2,"askSize":1}]}',
                b'{"table":"trade","action":"insert","data":[{"timestamp":"2021-07-22T22:36:09.712Z","symbol":"XBTU21",'
                b'"side":"Buy","size":1,"price":1,"trdMatchID":"x"}]}',
                _partial("XBTU21")):
        assert bitmex.parse(raw, 0) == []
        [problem] = bitmex.take_problems()
        assert "XBTU21" in problem and "bitmex" in problem


def test_error_message_is_a_problem(bitmex: Bitmex) -> None:
    assert bitmex.parse(b'{"status":400,"error":"Unknown table: orderBookL3","meta":{},"request":{"op":"subscribe",'
                        b'"args":["orderBookL3:XBTUSD"]}}', 0) == []
    [problem] = bitmex.take_problems()
    assert "Unknown table" in problem and "bitmex" in problem


@pytest.mark.parametrize("raw", [
    fixture_lines("bitmex", L2)[5][:-60],
    b'{"table":"orderBookL2","action":"partial","data":[{"symbol":"XBTUSD","id":1,"side":"Buy","size":1}]}',
    b'{"table":"orderBookL2","action":"insert","data":[{"symbol":"XBTUSD","id":"x","side":"Buy","size":1,"price":1}]}',
    b'{"table":"orderBookL2","action":"partial","data":[{"symbol":"XBTUSD","id":1,"side":"Up","size":1,"price":1}]}',
    b'{"table":"quote","action":"insert","data":[{"symbol":"XBTUSD","bidPrice":"abc","bidSize":1,"askPrice":1,'
    b'"askSize":1,"timestamp":"2021-07-22T22:36:09.712Z"}]}',
    b'{"table":"trade","action":"insert","data":[{"symbol":"XBTUSD","side":"Buy","size":1,"price":1,'
    b'"timestamp":"yesterday"}]}',
    b"<html>502 bad gateway</html>",
    b'{"table":"orderBo',
])
def test_malformed_raises_decode_error(bitmex: Bitmex, raw: bytes) -> None:
    bitmex.parse(_partial(), 0)
    with pytest.raises(DecodeError, match="bitmex"):
        bitmex.parse(raw, 0)


def test_non_compact_json_is_still_read(bitmex: Bitmex) -> None:
    [q] = bitmex.parse(b'{ "table": "quote", "action": "insert", "data": [{"symbol": "XBTUSD", "bidPrice": 100, '
                       b'"bidSize": 200, "askPrice": 101, "askSize": 300, "timestamp": "2021-07-22T22:36:09.712Z"}]}', 0)
    assert (q.bid_px, q.bid_qty) == (100.0, 2.0)


# -- metadata -----------------------------------------------------------------------------------
def test_metadata_fields(bitmex: Bitmex) -> None:
    assert set(bitmex.table) == set(SPECS)
    for sym, s in SPECS.items():
        i = bitmex.table[sym]
        assert (i.symbol, i.asset, i.quote, i.settle, i.inverse) == (s["symbol"], s["asset"], s["quote"], s["settle"],
                                                                      s["inverse"]), sym
        assert i.contract_size == pytest.approx(s["size"], rel=REL), sym
        assert (i.tick_size, i.lot_size, i.min_qty, i.taker_fee, i.maker_fee) == (
            s["tick"], s["lot"], s["lot"], s["taker"], s["maker"]), sym
        assert i.funding_interval_h == s["interval_h"] == 8.0
        pairable = s["state"] == "Open" and not s["quanto"] and s["quote"] in ("USD", "USDT", "USDC")
        assert i.status == ("active" if pairable else "inactive"), sym
    xbt = bitmex.table["XBTUSD"]  # the 2024 response overrides 2021's
    assert (xbt.symbol, xbt.contract_size, xbt.tick_size, xbt.taker_fee, xbt.status) == (
        "BTC/USD:BTC", 1.0, 0.1, 0.0005, "active")
    assert bitmex.table["ETHUSD"].status == "inactive"  # quanto: never paired
    assert bitmex.table["XBTEUR"].status == "inactive"  # EUR-quoted
    assert "XBTU21" not in bitmex.table and "ETHU21" not in bitmex.table  # dated futures
    assert [i.venue_symbol for i in bitmex.registry.select("bitmex", ["BTC", "ETH"])] == ["XBTUSD"]


def test_linear_contract_from_multiplier() -> None:
    row = {"symbol": "XBTUSDT", "typ": "FFWCSX", "state": "Open", "underlying": "XBT", "quoteCurrency": "USDT",
           "settlCurrency": "USDt", "isInverse": False, "isQuanto": False, "multiplier": 1,
           "underlyingToPositionMultiplier": 1000000, "lotSize": 100, "tickSize": 0.5, "makerFee": 0.0002,
           "takerFee": 0.00075, "fundingInterval": "2000-01-01T08:00:00.000Z"}
    [i] = Bitmex(Registry()).parse_metadata(ACTIVE_PATH, json.dumps([row]))
    assert (i.symbol, i.contract_size, i.status, i.inverse) == ("BTC/USDT:USDT", 1e-6, "active", False)
    assert i.qty(2_000_000, 65000.0) == pytest.approx(2.0, rel=REL)  # 2M contracts = 2 BTC


def test_metadata_round_trip(bitmex: Bitmex) -> None:
    originals = sorted(bitmex.table.values(), key=lambda i: i.venue_symbol)
    bodies = bitmex.sim_metadata(originals)
    assert list(bodies) == [ACTIVE_PATH]
    back = Bitmex(Registry()).parse_metadata(ACTIVE_PATH, bodies[ACTIVE_PATH])
    assert back == originals


def test_metadata_ignores_other_paths_and_rejects_garbage(bitmex: Bitmex) -> None:
    assert bitmex.parse_metadata("/api/v1/orderBook/L2?symbol=XBTUSD", b"[]") == []
    with pytest.raises(DecodeError, match="bitmex"):
        bitmex.parse_metadata(ACTIVE_PATH, b'{"error":{"message":"Not Found"}}')


# -- simulator ------------------------------------------------------------------------------------
@pytest.mark.parametrize("sym", ["XBTUSD", "SOLUSDT"])
def test_sim_encoders_round_trip(bitmex: Bitmex, sym: str) -> None:
    inst: Instrument = bitmex.table[sym]
    sim = Bitmex(Registry([inst]))
    [q] = bitmex.parse(sim.sim_quote(inst, (101.5, 1200.0), (102.0, 300.0), 77, 1_700_000_000_123), 9)
    assert (q.bid_px, q.ask_px) == (101.5, 102.0)
    assert q.bid_qty == pytest.approx(_qty(sym, 101.5, 1200), rel=REL)
    assert q.ask_qty == pytest.approx(_qty(sym, 102.0, 300), rel=REL)
    assert q.ts_exchange_ns == 1_700_000_000_123_000_000

    # A partial on subscribe, then insert / update / delete messages keyed by level id.
    bids, asks = [(101.5, 1200.0), (101.0, 500.0)], [(102.0, 300.0)]
    [snap] = bitmex.parse(sim.sim_book(inst, True, bids, asks, 500, -1, 500, 1_700_000_000_000), 0)
    assert type(snap) is BookSnapshot
    assert _same(snap.bids, [(p, _qty(sym, p, s)) for p, s in bids])
    assert _same(snap.asks, [(p, _qty(sym, p, s)) for p, s in asks])
    frames = sim.sim_book(inst, False, [(101.0, 0.0), (101.5, 900.0)], [(102.5, 100.0)], 501, 500, 501,
                          1_700_000_000_100)
    # Prices rise: the new ask first, then the bids adding before removing (never crossed or one-sided).
    assert [json.loads(f)["action"] for f in frames] == ["insert", "update", "delete"]
    ins, upd, dele = (bitmex.parse(f, 0)[0] for f in frames)
    assert _same(ins.asks, [(102.5, _qty(sym, 102.5, 100))]) and ins.ts_exchange_ns == 1_700_000_000_100_000_000
    assert _same(upd.bids, [(101.5, _qty(sym, 101.5, 900))])  # the update row has no price: the id says it
    assert _same(dele.bids, [(101.0, 0.0)])
    # A gap: the next insert never arrives, and the first row naming it breaks the chain.
    lost = sim.sim_book(inst, False, [], [(103.0, 50.0)], 505, 503, 505, 1_700_000_000_200)
    assert lost == []
    [broken] = bitmex.parse(sim.sim_book(inst, False, [], [(103.0, 0.0)], 506, 505, 506, 1_700_000_000_300)[0], 0)
    assert type(broken) is BookDelta and broken.prev_seq == -1

    [f] = bitmex.parse(sim.sim_funding(inst, 0.000125, 1_700_006_400_000, 101.6, 101.55, 1_700_000_000_000), 0)
    assert (f.rate, f.predicted_rate, f.interval_h) == (0.000125, 0.000125, inst.funding_interval_h)
    assert (f.next_funding_ns, f.mark_px, f.index_px) == (1_700_006_400_000_000_000, 101.6, 101.55)
    # A later tick sends only what changed; the adapter merges it.
    [g] = bitmex.parse(sim.sim_funding(inst, 0.0002, 1_700_006_400_000, 101.6, 101.55, 1_700_000_001_000,
                                       full=False), 0)
    assert (g.rate, g.next_funding_ns, g.mark_px) == (0.0002, 1_700_006_400_000_000_000, 101.6)
    same = sim.sim_funding(inst, 0.0002, 1_700_006_400_000, 101.6, 101.55, 1_700_000_002_000, full=False)
    assert "fundingRate" not in same and bitmex.parse(same, 0) == []


def test_sim_handle(bitmex: Bitmex) -> None:
    assert bitmex.sim_handle("ping") == (["pong"], [])
    args = ["orderBookL2:XBTUSD", "quote:XBTUSD", "instrument:XBTUSD", "trade:XBTUSD"]
    req = {"op": "subscribe", "args": args}
    replies, topics = bitmex.sim_handle(json.dumps(req))
    assert [json.loads(r) for r in replies] == [{"success": True, "subscribe": a, "request": req} for a in args]
    assert topics == [("book", "XBTUSD"), ("quote", "XBTUSD"), ("funding", "XBTUSD"), ("trade", "XBTUSD")]
    assert all(bitmex.parse(r, 0) == [] for r in replies) and bitmex.take_problems() == []
    replies, topics = bitmex.sim_handle(json.dumps({"op": "unsubscribe", "args": args[:1]}))
    assert [json.loads(r)["unsubscribe"] for r in replies] == args[:1] and topics == []
    assert bitmex.sim_handle("not json") == ([], [])


def test_connections_and_resubscribe(bitmex: Bitmex) -> None:
    insts = sorted(bitmex.table.values(), key=lambda i: i.venue_symbol)[:12]
    [conn] = bitmex.connections(insts)
    assert conn.path == "/realtime" and conn.instruments == insts
    msgs = [json.loads(m) for m in conn.subscribe]
    assert all(m["op"] == "subscribe" and len(m["args"]) <= 20 for m in msgs)
    sent = sorted(a for m in msgs for a in m["args"])
    assert sent == sorted(f"{t}:{i.venue_symbol}" for i in insts for t in ("orderBookL2", "quote", "instrument"))
    [no_books] = bitmex.connections(insts, books=False)
    assert all(not a.startswith("orderBookL2") for m in no_books.subscribe for a in json.loads(m)["args"])
    unsub, sub = bitmex.resubscribe_book(bitmex.table["XBTUSD"])
    assert json.loads(unsub) == {"op": "unsubscribe", "args": ["orderBookL2:XBTUSD"]}
    assert json.loads(sub) == {"op": "subscribe", "args": ["orderBookL2:XBTUSD"]}


def test_card() -> None:
    assert venue_class("bitmex") is Bitmex
    assert (Bitmex.id, Bitmex.ws_url, Bitmex.rest_url, Bitmex.book_sync, Bitmex.sim_has_sequence) == (
        "bitmex", "wss://ws.bitmex.com", "https://www.bitmex.com", "keyed", True)
    assert (Bitmex.heartbeat_text, Bitmex.heartbeat_s, Bitmex.metadata_paths) == ("ping", 5.0, (ACTIVE_PATH,))
    assert Bitmex(Registry()).derive("XBTUSDT") is None  # contract sizes need metadata
    assert msgspec.json.decode(Bitmex(Registry()).sim_metadata([])[ACTIVE_PATH]) == []
