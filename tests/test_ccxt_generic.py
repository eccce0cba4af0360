"""The generic ccxt.pro venue (``ccxt:<exchange id>``).

Metadata: recorded OKX instruments responses go through ccxt's own ``parse_market`` and
then the adapter; contract sizes are checked against the raw ``ctVal``. Streams: ccxt.pro's
``binanceusdm`` is pointed at the simulator's Binance endpoints (offline), and the books it
produces through the engine must equal the simulator's.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Callable

import aiohttp
import ccxt
import pytest

from conftest import fixture_lines
from perparb.engine import Engine
from perparb.feeds.booksync import SYNCED
from perparb.feeds.runtime import VenueFeed
from perparb.instruments.registry import Registry
from perparb.instruments.snapshot import load_registry
from perparb.model import BookSnapshot, Funding, Quote
from perparb.sim.server import Simulator
from perparb.venues import venue_class, venue_ids
from perparb.venues.base import DecodeError
from perparb.venues.ccxt_generic import METADATA_PATH, CcxtVenue, interval_hours
from perparb.venues.ccxt_generic.transport import (
    book_message,
    funding_message,
    markets_message,
    override_urls,
    ticker_message,
)

OKX_FILES = (
    "cryptofeed_2022-05-13_rest_v5_public_instruments_SWAP_full.jsonl",
    "nautilus_rest_v5_public_instruments_SWAP_2025-10_excerpt.jsonl",
)
MS = 1_000_000
REL = 1e-12


def _okx_raw() -> dict[str, dict]:
    """instId → raw OKX instrument, later recordings win."""
    return {d["instId"]: d for name in OKX_FILES for line in fixture_lines("okx", name)
            for d in json.loads(line)["data"]}


OKX_RAW = _okx_raw()


def _okx_venue() -> tuple[CcxtVenue, dict[str, dict]]:
    """The adapter loaded with the OKX instruments as ccxt parses them; ccxt symbol → raw."""
    ex = ccxt.okx()
    markets = {d["instId"]: ex.parse_market(d) for d in OKX_RAW.values()}
    v = venue_class("ccxt:okx")(Registry())
    v.registry.add_many(v.parse_metadata(METADATA_PATH, markets_message(list(markets.values()), ex.precisionMode)))
    return v, {m["symbol"]: OKX_RAW[i] for i, m in markets.items()}


# -- the factory -----------------------------------------------------------------------------
def test_factory_builds_one_class_per_exchange() -> None:
    cls = venue_class("ccxt:bingx")
    assert issubclass(cls, CcxtVenue) and cls.id == "ccxt:bingx" and cls.exchange_id == "bingx"
    assert venue_class("ccxt:bingx") is cls
    assert cls.book_sync == "full" and cls.metadata_paths == (METADATA_PATH,)
    assert cls.taker_fee == CcxtVenue.taker_fee  # ccxt lists no bingx fee: the default
    assert venue_class("ccxt:okx").taker_fee == ccxt.okx().fees["trading"]["taker"]  # ccxt's base tier
    assert not any(v.startswith("ccxt:") for v in venue_ids())  # built on demand, not listed
    with pytest.raises(KeyError, match="nosuchexchange"):
        venue_class("ccxt:nosuchexchange")


# -- metadata through ccxt's own parse_market ------------------------------------------------
def test_okx_markets_from_recorded_instruments() -> None:
    v, raw_by_symbol = _okx_venue()
    assert len(v.table) == len(raw_by_symbol) == len(OKX_RAW)
    for sym, d in raw_by_symbol.items():
        inst = v.table[sym]
        base, quote = (d.get("instFamily") or d["uly"]).split("-")
        m = re.fullmatch(r"(10+)([A-Z][A-Z0-9]*)", base)
        asset, scale = (m.group(2), float(m.group(1))) if m else (base, 1.0)
        assert inst.symbol == f"{asset}/{quote}:{d['settleCcy']}", sym
        assert inst.contract_size == pytest.approx(float(d["ctVal"]) * float(d["ctMult"]), rel=REL), sym
        assert inst.inverse == (d["ctType"] == "inverse"), sym
        assert (inst.price_scale, inst.tick_size, inst.lot_size, inst.min_qty) == (
            scale, float(d["tickSz"]), float(d["lotSz"]), float(d["minSz"])), sym
        assert inst.status == ("active" if d["state"] == "live" else "inactive"), sym
    btc = v.table["BTC/USD:BTC"]
    assert (btc.inverse, btc.contract_size, btc.settle) == (True, 100.0, "BTC")


def test_only_perpetual_swaps_become_instruments() -> None:
    ex = ccxt.okx()
    swap = ex.parse_market(OKX_RAW["BTC-USDT-SWAP"])
    dated = {**swap, "symbol": "BTC/USDT:USDT-250328", "expiry": 1743148800000}
    spot = {**swap, "symbol": "BTC/USDT", "swap": False, "type": "spot", "settle": None}
    v = venue_class("ccxt:okx")(Registry())
    out = v.parse_metadata(METADATA_PATH, markets_message([swap, dated, spot], ex.precisionMode))
    assert [i.venue_symbol for i in out] == ["BTC/USDT:USDT"]
    assert v.parse_metadata("/api/v5/public/instruments?instType=SWAP", b"{}") == []


# -- parse -----------------------------------------------------------------------------------
def test_order_book_units() -> None:
    v, raw = _okx_venue()
    ob = {"symbol": "BTC/USD:BTC", "timestamp": 1_700_000_000_123, "nonce": 77, "datetime": "x",
          "bids": [[43000.5, 10.0, 3], [43000.0, 2.0, 1]], "asks": [[43001.0, 7.0, 2]]}
    [snap] = v.parse(book_message(ob), 5)
    ct = float(raw["BTC/USD:BTC"]["ctVal"])  # USD per contract (inverse)
    assert type(snap) is BookSnapshot and snap.symbol == "BTC/USD:BTC" and snap.seq == 77
    assert snap.bids == [(43000.5, pytest.approx(10 * ct / 43000.5, rel=REL)),
                         (43000.0, pytest.approx(2 * ct / 43000.0, rel=REL))]
    assert snap.asks == [(43001.0, pytest.approx(7 * ct / 43001.0, rel=REL))]
    assert (snap.ts_exchange_ns, snap.recv_ns) == (1_700_000_000_123 * MS, 5)
    eth = raw["ETH/USDT:USDT"]
    [e] = v.parse(book_message({"symbol": "ETH/USDT:USDT", "bids": [[2000.0, 3.0]], "asks": []}), 0)
    assert e.bids == [(2000.0, pytest.approx(3 * float(eth["ctVal"]), rel=REL))] and e.seq == 0


def test_ticker_and_funding() -> None:
    v, raw = _okx_venue()
    ct = float(raw["ETH/USDT:USDT"]["ctVal"])
    t = {"symbol": "ETH/USDT:USDT", "timestamp": 1_700_000_000_000, "bid": 2000.5, "bidVolume": 4.0, "ask": 2001.0,
         "askVolume": 6.0, "last": 2000.7}
    [q] = v.parse(ticker_message(t), 1)
    assert type(q) is Quote and (q.bid_px, q.ask_px) == (2000.5, 2001.0)
    assert q.bid_qty == pytest.approx(4 * ct, rel=REL) and q.ask_qty == pytest.approx(6 * ct, rel=REL)
    assert v.parse(ticker_message({**t, "bidVolume": None}), 0) == []  # one-sided: no quote
    f = {"symbol": "ETH/USDT:USDT", "timestamp": 1_700_000_000_000, "fundingRate": 0.0001,
         "fundingTimestamp": 1_700_006_400_000, "nextFundingRate": 0.00012, "interval": "4h", "markPrice": 2000.6,
         "indexPrice": 2000.4}
    [g] = v.parse(funding_message(f), 0)
    assert type(g) is Funding and (g.rate, g.predicted_rate, g.interval_h) == (0.0001, 0.00012, 4.0)
    assert (g.next_funding_ns, g.mark_px, g.index_px) == (1_700_006_400_000 * MS, 2000.6, 2000.4)
    [h] = v.parse(funding_message({**f, "interval": None, "nextFundingRate": None}), 0)
    assert (h.interval_h, h.predicted_rate) == (v.table["ETH/USDT:USDT"].funding_interval_h, None)
    assert v.parse(funding_message({**f, "fundingRate": None}), 0) == []
    assert (interval_hours("8h"), interval_hours("30m"), interval_hours("1d"), interval_hours(None)) == (
        8.0, 0.5, 24.0, None)


def test_unknown_and_malformed() -> None:
    v, _ = _okx_venue()
    assert v.parse(book_message({"symbol": "NOPE/USDT:USDT", "bids": [], "asks": []}), 0) == []
    [p] = v.take_problems()
    assert "NOPE/USDT:USDT" in p and "ccxt:okx" in p
    for bad in ('{"watch":"order_book","symbol":"BTC/USD:BTC","bids":"x","asks":[]}', '{"watch":"trades"}',
                "not json", '{"watch":"ticker"}'):
        with pytest.raises(DecodeError, match="ccxt:okx"):
            v.parse(bad, 0)


def test_override_urls() -> None:
    urls = {"api": {"rest": "https://fapi.binance.com/fapi/v1", "ws": {"linear": "wss://fstream.binance.com/ws"},
                    "list": ["https://a.example/x"], "n": 3}, "www": "https://www.binance.com"}
    out = override_urls(urls, "ws://127.0.0.1:9", "http://127.0.0.1:8/")
    assert out["api"]["rest"] == "http://127.0.0.1:8/fapi/v1"
    assert out["api"]["ws"]["linear"] == "ws://127.0.0.1:9/ws"
    assert out["api"]["list"] == ["http://127.0.0.1:8/x"] and out["api"]["n"] == 3
    assert override_urls(urls, "", "") == urls


# -- ccxt.pro against the simulator ----------------------------------------------------------
VENUE = "ccxt:binanceusdm"


async def _wait(cond: Callable[[], bool], what: str, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _run_against_sim(books: bool, check: Callable[[Simulator, Engine, list[str]], None]) -> None:
    sim = Simulator(load_registry(), ["binance"], ["BTC", "ETH"], seed=5, tick_s=0.05)
    await sim.start()
    ep = sim.endpoints()["binance"]
    engine = Engine(Registry(), [VENUE], books=books)
    raws: list[str] = []
    async with aiohttp.ClientSession() as http:
        feed = VenueFeed(engine, VENUE, [], ep["ws_url"], ep["rest_url"], books=books, http=http,
                         tap=lambda v, src, raw, ns, path: raws.append(raw) if src == "ws" else None)
        try:
            await feed.load_metadata()
            feed.instruments = engine.registry.select(VENUE, ["BTC", "ETH"])
            assert [i.venue_symbol for i in feed.instruments] == ["BTC/USDT:USDT", "ETH/USDT:USDT"]
            task = asyncio.create_task(feed.run())
            try:
                await _check_loop(sim, engine, raws, books, check)
            finally:
                feed.stop()
                task.cancel()
                await asyncio.gather(task, return_exceptions=True)
        finally:
            await sim.stop()


async def _check_loop(sim: Simulator, engine: Engine, raws: list[str], books: bool,
                      check: Callable[[Simulator, Engine, list[str]], None]) -> None:
    st = engine.status[VENUE]
    if books:
        await _wait(lambda: len(engine.books) == 2 and all(sb.state == SYNCED for sb in engine.books.values()),
                    "books synced")
    await _wait(lambda: st.messages > 40, "traffic")
    sim.pause()
    await asyncio.sleep(0.6)  # let what is in flight arrive
    assert st.connected and st.decode_errors == 0 and st.unknown_symbols == 0, st
    check(sim, engine, raws)


async def test_ccxt_books_equal_the_simulator() -> None:
    def check(sim: Simulator, engine: Engine, raws: list[str]) -> None:
        for sym, simbook in sim.venues["binance"].books.items():
            inst = simbook.inst
            sb = engine.books[(VENUE, inst.symbol)]  # ccxt's symbol is the canonical one here
            assert sb.state == SYNCED and sb.resyncs == 0, sym
            bids, asks = simbook.levels()
            want = [(inst.px(p), inst.qty(q, p)) for p, q in bids + asks]
            got = sb.book.bids.top(10_000) + sb.book.asks.top(10_000)
            assert len(got) == len(want), sym
            for (gp, gq), (wp, wq) in zip(got, want, strict=True):
                assert gp == pytest.approx(wp, rel=1e-12) and gq == pytest.approx(wq, rel=1e-9), sym
        kinds = {json.loads(r)["watch"] for r in raws}
        assert "order_book" in kinds and kinds <= {"order_book", "funding_rate"}  # books, no tickers

    await _run_against_sim(True, check)


async def test_ccxt_quotes_equal_the_simulator() -> None:
    def check(sim: Simulator, engine: Engine, raws: list[str]) -> None:
        adapter = engine.adapters[VENUE]
        last: dict[str, Quote] = {}
        for raw in raws:
            for ev in adapter.parse(raw, 0):
                if type(ev) is Quote:
                    last[ev.venue_symbol] = ev
        for sym, simbook in sim.venues["binance"].books.items():
            inst = simbook.inst
            q = last[inst.symbol]
            (bp, bq), (ap, aq) = simbook.top()
            assert (q.bid_px, q.ask_px) == (pytest.approx(inst.px(bp)), pytest.approx(inst.px(ap))), sym
            assert (q.bid_qty, q.ask_qty) == (pytest.approx(inst.qty(bq, bp)), pytest.approx(inst.qty(aq, ap))), sym

    await _run_against_sim(False, check)
