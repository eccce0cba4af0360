"""Bybit v5 linear adapter against recorded messages.

Expected values are computed here from the raw JSON with the json module, never taken from
the adapter's own output.
"""

from __future__ import annotations

import itertools
import json

import pytest

from conftest import fixture_files, fixture_lines
from perparb.instruments.registry import Registry
from perparb.model import BookDelta, BookSnapshot, Funding, Instrument, Quote, Trade
from perparb.venues.base import DecodeError
from perparb.venues.bybit import Bybit

META_PATH = "/v5/market/instruments-info?category=linear&limit=1000"
MS = 1_000_000
RECV = 123


def _doc_instruments() -> list[Instrument]:
    reader = Bybit(Registry())
    out = []
    for line in fixture_lines("bybit", "DOCEXAMPLE_bybit-docs_v5_rest_market.jsonl"):
        rows = json.loads(line)["result"].get("list", [])
        if rows and "contractType" in rows[0]:
            out += reader.parse_metadata(META_PATH, line)
    return out


@pytest.fixture
def venue() -> Bybit:
    return Bybit(Registry(_doc_instruments()))


def _wire(msg: dict) -> str:
    return json.dumps(msg, separators=(",", ":"))  # compact, as Bybit sends


def _levels(raw: list[list[str]]) -> list[tuple[float, float]]:
    return [(float(p), float(q)) for p, q in raw]


class _Reference:
    """What each recorded message should normalize to, worked out from the raw JSON."""

    def __init__(self) -> None:
        self.top: dict[str, dict[str, list[str] | None]] = {}
        self.tickers: dict[str, dict[str, str]] = {}

    def check(self, msg: dict, events: list) -> None:
        topic = msg.get("topic", "")
        sym = topic.rpartition(".")[2]
        if sym == "BTCUSD":  # inverse perpetual: not this adapter's
            assert events == []
        elif topic.startswith("orderbook.1."):
            self._top(msg, events)
        elif topic.startswith("orderbook."):
            self._book(msg, events)
        elif topic.startswith("tickers."):
            self._ticker(msg, events)
        elif topic.startswith("publicTrade."):
            self._trades(msg, events)
        else:
            assert events == [], msg

    def _book(self, msg: dict, events: list) -> None:
        d = msg["data"]
        (ev,) = events
        assert (ev.venue_symbol, ev.ts_exchange_ns, ev.recv_ns) == (d["s"], msg["ts"] * MS, RECV)
        assert ev.bids == _levels(d["b"]) and ev.asks == _levels(d["a"])
        if msg["type"] == "snapshot" or d["u"] == 1:
            assert isinstance(ev, BookSnapshot) and ev.seq == d["u"]
        else:
            assert isinstance(ev, BookDelta)
            assert (ev.first_seq, ev.seq, ev.prev_seq) == (d["u"], d["u"], d["u"] - 1)

    def _top(self, msg: dict, events: list) -> None:
        d = msg["data"]
        top = self.top.setdefault(d["s"], {"b": None, "a": None})
        if msg["type"] == "snapshot":
            top.update(b=None, a=None)
        for side in ("b", "a"):
            for p, q in d[side]:
                cur = top[side]
                if float(q) != 0:
                    top[side] = [p, q]
                elif cur is not None and float(cur[0]) == float(p):
                    top[side] = None
        b, a = top["b"], top["a"]
        if b is None or a is None:
            assert events == []
            return
        (ev,) = events
        assert isinstance(ev, Quote)
        assert (ev.bid_px, ev.bid_qty, ev.ask_px, ev.ask_qty) == (float(b[0]), float(b[1]), float(a[0]), float(a[1]))
        assert ev.ts_exchange_ns == msg["ts"] * MS

    def _ticker(self, msg: dict, events: list) -> None:
        d = msg["data"]
        if msg["type"] == "snapshot":
            self.tickers[d["symbol"]] = dict(d)
        else:
            self.tickers[d["symbol"]].update(d)
        state = self.tickers[d["symbol"]]
        (ev,) = events
        assert isinstance(ev, Funding)
        assert ev.rate == float(state["fundingRate"])
        assert ev.predicted_rate is None
        assert ev.next_funding_ns == int(state["nextFundingTime"]) * MS
        assert ev.mark_px == float(state["markPrice"]) and ev.index_px == float(state["indexPrice"])
        assert ev.interval_h == float(state.get("fundingIntervalHour", 8))
        assert ev.ts_exchange_ns == msg["ts"] * MS

    def _trades(self, msg: dict, events: list) -> None:
        assert len(events) == len(msg["data"])
        for ev, t in zip(events, msg["data"], strict=True):
            assert isinstance(ev, Trade)
            assert (ev.px, ev.qty, ev.trade_id) == (float(t["p"]), float(t["v"]), t["i"])
            assert ev.side == t["S"].lower()
            assert ev.ts_exchange_ns == t["T"] * MS


def test_every_recorded_message(venue: Bybit) -> None:
    files = fixture_files("bybit")
    assert len(files) >= 5
    checked = 0
    for path in files:
        ref = _Reference()
        for line in fixture_lines("bybit", path.name):
            ref.check(json.loads(line), venue.parse(line, RECV))
            checked += 1
    assert checked == sum(len(fixture_lines("bybit", p.name)) for p in files)


def test_metadata_from_docs() -> None:
    insts = {i.venue_symbol: i for i in _doc_instruments()}
    assert set(insts) == {"BTCUSDT", "BIOUSDT"}
    for line in fixture_lines("bybit", "DOCEXAMPLE_bybit-docs_v5_rest_market.jsonl"):
        for row in json.loads(line)["result"].get("list", []):
            if "contractType" not in row:
                continue
            i = insts[row["symbol"]]
            assert (i.asset, i.quote, i.settle) == (row["baseCoin"], row["quoteCoin"], row["settleCoin"])
            assert i.tick_size == float(row["priceFilter"]["tickSize"])
            assert i.lot_size == float(row["lotSizeFilter"]["qtyStep"])
            assert i.min_qty == float(row["lotSizeFilter"]["minOrderQty"])
            assert i.min_notional == float(row["lotSizeFilter"]["minNotionalValue"])
            assert i.funding_interval_h == row["fundingInterval"] / 60
            assert i.status == ("active" if row["status"] == "Trading" else "inactive")
            assert (i.source, i.taker_fee, i.maker_fee) == ("bybit", 0.00055, 0.0002)


def test_xrp_ob500_sequence_chains(venue: Bybit) -> None:
    lines = fixture_lines("bybit", "nautilus_bybit-histdata_2024-12-01_orderbook.500.XRPUSDT_linear.jsonl")
    events = [ev for line in lines for ev in venue.parse(line, RECV)]
    assert isinstance(events[0], BookSnapshot)
    assert len(events) == 50 and all(isinstance(e, BookDelta) for e in events[1:])
    for prev, cur in itertools.pairwise(events):
        assert cur.prev_seq == prev.seq
    assert events[0].symbol == "XRP/USDT:USDT"


def test_ticker_delta_keeps_earlier_fields(venue: Bybit) -> None:
    snap, delta = fixture_lines("bybit", "UNATTRIBUTED_live-capture_2026-08-13_v5_public_linear_BTCUSDT.jsonl")[1:3]
    s, d = json.loads(snap)["data"], json.loads(delta)["data"]
    assert "fundingRate" not in d and "markPrice" not in d  # the delta really omits them
    venue.parse(snap, RECV)
    (f,) = venue.parse(delta, RECV)
    assert f.rate == float(s["fundingRate"]) and f.mark_px == float(s["markPrice"])
    assert f.index_px == float(d["indexPrice"])


def test_inverse_messages_are_not_ours(venue: Bybit) -> None:
    lines = fixture_lines("bybit", "tardis-node-tests_bybit-v5_2023-04_samples.jsonl")
    inverse = [line for line in lines if json.loads(line).get("topic", "").endswith(".BTCUSD")]
    assert len(inverse) == 3  # one trade batch, a ticker snapshot and a ticker delta
    for line in inverse:
        assert venue.parse(line, RECV) == []
    problems = venue.take_problems()
    assert problems and all("BTCUSD" in p for p in problems)


def test_derive() -> None:
    v = Bybit(Registry())
    perp = v.derive("BTCPERP")
    assert perp is not None and (perp.asset, perp.symbol, perp.status) == ("BTC", "BTC/USDC:USDC", "derived")
    usdc = v.derive("ETHUSDC")
    assert usdc is not None and usdc.symbol == "ETH/USDC:USDC"
    assert v.derive("BTCUSD") is None and v.derive("BTCUSDT-21FEB25") is None and v.derive("USDT") is None


def test_scaled_symbol_in_underlying_units(venue: Bybit) -> None:
    book = {"topic": "orderbook.50.1000PEPEUSDT", "type": "snapshot", "ts": 1700000000000,
            "data": {"s": "1000PEPEUSDT", "b": [["0.012345", "2000"]], "a": [["0.012350", "150"]], "u": 7, "seq": 9}}
    (snap,) = venue.parse(_wire(book), RECV)
    assert snap.symbol == "PEPE/USDT:USDT"
    assert snap.bids == [pytest.approx((0.012345 / 1000, 2000 * 1000))]
    assert snap.asks == [pytest.approx((0.012350 / 1000, 150 * 1000))]
    trade = {"topic": "publicTrade.1000PEPEUSDT", "type": "snapshot", "ts": 1700000000001,
             "data": [{"T": 1700000000000, "s": "1000PEPEUSDT", "S": "Sell", "v": "300", "p": "0.01234", "i": "x1"}]}
    (t,) = venue.parse(_wire(trade), RECV)
    assert (t.px, t.qty, t.side) == (pytest.approx(0.01234 / 1000), pytest.approx(300_000), "sell")


def test_level1_zero_at_top_clears_side(venue: Bybit) -> None:
    def msg(kind: str, b: list, a: list, u: int) -> str:
        return _wire({"topic": "orderbook.1.ETHUSDT", "ts": 1000 + u, "type": kind,
                           "data": {"s": "ETHUSDT", "b": b, "a": a, "u": u, "seq": u}})

    (q,) = venue.parse(msg("snapshot", [["3000.1", "2"]], [["3000.2", "1"]], 5), RECV)
    assert (q.bid_px, q.ask_qty) == (3000.1, 1.0)
    assert venue.parse(msg("delta", [["3000.1", "0"]], [], 6), RECV) == []  # bid side unknown now
    (q,) = venue.parse(msg("delta", [["2999.9", "4"]], [["2999.5", "0"]], 7), RECV)  # stale zero ignored
    assert (q.bid_px, q.bid_qty, q.ask_px, q.ask_qty) == (2999.9, 4.0, 3000.2, 1.0)
    # u == 1 is a restart: the message replaces the state whatever its type says.
    assert venue.parse(msg("delta", [["10", "1"]], [], 1), RECV) == []


def test_book_u1_is_snapshot(venue: Bybit) -> None:
    msg = {"topic": "orderbook.50.BTCUSDT", "type": "delta", "ts": 1,
           "data": {"s": "BTCUSDT", "b": [["1", "2"]], "a": [], "u": 1, "seq": 3}}
    (ev,) = venue.parse(_wire(msg), RECV)
    assert isinstance(ev, BookSnapshot) and ev.seq == 1
    assert venue.parse(json.dumps(msg, indent=1), RECV) == [ev]  # spaced-out JSON is still read


def test_malformed_raises(venue: Bybit) -> None:
    with pytest.raises(DecodeError, match="bybit"):
        venue.parse(b'{"topic":"orderbook.50.BTCUSDT","type":"delta","ts":1,"data":{"s":"BTCUSDT","b":[["1"', RECV)
    with pytest.raises(DecodeError, match="bybit"):
        venue.parse(b"not json", RECV)
    with pytest.raises(DecodeError, match="bybit"):
        venue.parse(b'{"topic":"tickers.BTCUSDT","type":"delta","data":{"symbol":"BTCUSDT","fundingRate":"x"}}', RECV)


def test_failed_ack_is_a_problem(venue: Bybit) -> None:
    raw = '{"success":false,"ret_msg":"error:handler not found,topic:foo.BTCUSDT","conn_id":"c","op":"subscribe"}'
    assert venue.parse(raw, RECV) == []
    assert any("handler not found" in p for p in venue.take_problems())


PEPE = Instrument(venue="bybit", venue_symbol="1000PEPEUSDT", symbol="PEPE/USDT:USDT", asset="PEPE", quote="USDT",
                  settle="USDT", price_scale=1000.0, tick_size=0.0000001, lot_size=100.0, min_qty=100.0,
                  min_notional=5.0, taker_fee=0.00055, maker_fee=0.0002, funding_interval_h=4.0, source="bybit")
ETHPERP = Instrument(venue="bybit", venue_symbol="ETHPERP", symbol="ETH/USDC:USDC", asset="ETH", quote="USDC",
                     settle="USDC", tick_size=0.01, lot_size=0.01, min_qty=0.01, min_notional=0.0,
                     taker_fee=0.00055, maker_fee=0.0002, funding_interval_h=8.0, status="inactive", source="bybit")


def test_metadata_round_trip() -> None:
    insts = [*_doc_instruments(), PEPE, ETHPERP]
    v = Bybit(Registry())
    (path, body), = v.sim_metadata(insts).items()
    assert path == META_PATH and path in Bybit.metadata_paths
    assert v.parse_metadata(path, body) == insts


def test_sim_encoders_round_trip() -> None:
    sim, feed = Bybit(Registry()), Bybit(Registry([PEPE]))
    (q,) = feed.parse(sim.sim_quote(PEPE, (0.012345, 7000.0), (0.01235, 300.0), 11, 1_700_000_000_000), RECV)
    assert (q.bid_px, q.bid_qty, q.ask_px, q.ask_qty) == pytest.approx(
        (PEPE.px(0.012345), PEPE.qty(7000.0, 0.012345), PEPE.px(0.01235), PEPE.qty(300.0, 0.01235)))
    assert q.ts_exchange_ns == 1_700_000_000_000 * MS

    bids, asks = [(0.0123, 100.0), (0.0122, 50.5)], [(0.0124, 10.0)]
    (s,) = feed.parse(sim.sim_book(PEPE, True, bids, asks, 40, 0, 40, 5), RECV)
    (d,) = feed.parse(sim.sim_book(PEPE, False, [(0.0123, 0.0)], [], 41, 40, 41, 6), RECV)
    assert isinstance(s, BookSnapshot) and s.seq == 40
    assert s.bids == [pytest.approx((PEPE.px(p), PEPE.qty(n, p))) for p, n in bids]
    assert s.asks == [pytest.approx((PEPE.px(p), PEPE.qty(n, p))) for p, n in asks]
    assert isinstance(d, BookDelta) and (d.seq, d.prev_seq) == (41, 40) and d.bids == [(PEPE.px(0.0123), 0.0)]

    first = sim.sim_funding(PEPE, 0.0001, 1_700_003_600_000, 0.0125, 0.01251, 7)
    second = sim.sim_funding(PEPE, -0.00025, 1_700_003_600_000, 0.0125, 0.01249, 8, full=False)
    assert json.loads(first)["type"] == "snapshot"
    delta = json.loads(second)
    assert delta["type"] == "delta" and set(delta["data"]) == {"symbol", "fundingRate", "indexPrice"}
    feed.parse(first, RECV)
    (f,) = feed.parse(second, RECV)
    assert (f.rate, f.next_funding_ns, f.interval_h) == (-0.00025, 1_700_003_600_000 * MS, 4.0)
    assert (f.mark_px, f.index_px) == pytest.approx((PEPE.px(0.0125), PEPE.px(0.01249)))


def test_sim_handle() -> None:
    v = Bybit(Registry())
    (pong,), topics = v.sim_handle('{"req_id":"p9","op":"ping"}')
    assert json.loads(pong) == {"success": True, "ret_msg": "pong", "conn_id": "sim", "req_id": "p9", "op": "ping"}
    assert topics == []
    assert json.loads(v.sim_handle(Bybit.heartbeat_text)[0][0])["ret_msg"] == "pong"
    sub = {"req_id": "s1", "op": "subscribe",
           "args": ["orderbook.1.BTCUSDT", "orderbook.50.BTCUSDT", "tickers.BTCUSDT", "publicTrade.ETHPERP"]}
    (ack,), topics = v.sim_handle(_wire(sub))
    assert json.loads(ack) == {"success": True, "ret_msg": "", "conn_id": "sim", "req_id": "s1", "op": "subscribe"}
    assert topics == [("quote", "BTCUSDT"), ("book", "BTCUSDT"), ("funding", "BTCUSDT"), ("trade", "ETHPERP")]
    (ack,), topics = v.sim_handle(_wire({**sub, "op": "unsubscribe"}))
    assert json.loads(ack)["op"] == "unsubscribe" and topics == []
    assert v.sim_handle("garbage") == ([], [])


def test_connections_and_resubscribe() -> None:
    v = Bybit(Registry())
    insts = [v.derive(f"COIN{n}USDT") for n in range(7)]
    (conn,) = v.connections(insts)
    assert conn.path == "/v5/public/linear" and conn.instruments == insts
    msgs = [json.loads(m) for m in conn.subscribe]
    assert [len(m["args"]) for m in msgs] == [10, 10, 1]
    assert len({m["req_id"] for m in msgs}) == len(msgs)
    topics = [t for m in conn.subscribe for t in v.sim_handle(m)[1]]
    assert sorted(topics) == sorted((k, i.venue_symbol) for i in insts for k in ("quote", "book", "funding"))
    (no_books,) = v.connections(insts, books=False)
    assert not any("orderbook.50" in m for m in no_books.subscribe)

    unsub, sub = v.resubscribe_book(insts[0])
    assert json.loads(unsub)["op"] == "unsubscribe" and json.loads(sub)["op"] == "subscribe"
    assert json.loads(sub)["args"] == ["orderbook.50.COIN0USDT"]
    assert v.sim_handle(sub)[1] == [("book", "COIN0USDT")]


def test_connections_respect_args_length_cap() -> None:
    v = Bybit(Registry())
    insts = [v.derive(f"LONGNAMEDCOIN{n:04d}USDT") for n in range(600)]
    conns = v.connections(insts)
    assert len(conns) > 1
    assert [i for c in conns for i in c.instruments] == insts
    for c in conns:
        assert sum(len(a) for m in c.subscribe for a in json.loads(m)["args"]) <= 21_000


def test_ticker_open_interest_and_turnover() -> None:
    from perparb.instruments.registry import Registry
    from perparb.venues.bybit import Bybit

    line = next(ln for ln in fixture_lines("bybit", "UNATTRIBUTED_live-capture_2026-08-13_v5_public_linear_BTCUSDT.jsonl")
                if b'"tickers.BTCUSDT"' in ln and b'"snapshot"' in ln)
    raw = json.loads(line)["data"]
    [f] = Bybit(Registry()).parse(line, 0)
    assert f.open_interest == float(raw["openInterest"])  # base units (scale 1)
    assert f.volume_24h_quote == float(raw["turnover24h"])
