"""Live execution through ccxt against the simulator's Binance USDⓈ-M order endpoints.

The contract is 1000PEPEUSDT: one contract is 1000 PEPE and its price is per 1000 PEPE,
so every quantity and price the test expects is converted by hand from the simulator's
native book."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import math
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest

from perparb.book import OrderBook
from perparb.bus import EXECUTIONS, ORDERS, InProcessBus
from perparb.bus.messages import CancelOrder, Fill, Message, Order, OrderUpdate
from perparb.execution.live import LiveExecution, LiveStartError, make_exchange
from perparb.instruments.registry import Registry
from perparb.model import Instrument
from perparb.sim.server import Simulator, SimVenue

KEY, SECRET = "test-key-7f3a", "test-secret-91c2"
PEPE = Instrument(venue="binance", venue_symbol="1000PEPEUSDT", symbol="PEPE/USDT:USDT", asset="PEPE", quote="USDT",
                  settle="USDT", price_scale=1000.0, tick_size=1e-7, lot_size=1.0, min_qty=2.0, min_notional=5.0,
                  taker_fee=0.0005, maker_fee=0.0002)


@dataclass
class _Synced:
    book: OrderBook


@dataclass
class View:
    """The part of MarketView execution reads: instruments, and books in canonical units."""

    sv: SimVenue
    now_ns: int = 1_000
    calls: list[Any] = field(default_factory=list)

    def instrument(self, venue: str, venue_symbol: str) -> Instrument | None:
        return self.sv.instruments.get(venue_symbol) if venue == "binance" else None

    def book(self, venue: str, venue_symbol: str) -> _Synced | None:
        sb = self.sv.books.get(venue_symbol)
        if sb is None:
            return None
        inst = sb.inst
        bids, asks = sb.levels()
        book = OrderBook()
        book.load([(inst.px(p), inst.qty(q, p)) for p, q in bids], [(inst.px(p), inst.qty(q, p)) for p, q in asks])
        return _Synced(book)

    def funding(self, venue: str, venue_symbol: str) -> None:
        return None

    def is_stale(self, venue: str, venue_symbol: str) -> bool:
        return False

    def call_at(self, at_ns: int, callback: Callable[[int], None]) -> None:
        self.calls.append((at_ns, callback))


@pytest.fixture
async def sim() -> AsyncIterator[SimVenue]:
    s = Simulator(Registry([PEPE]), ["binance"], ["PEPE", "BTC"], seed=5, tick_s=0.05)
    await s.start()
    sv = s.venues["binance"]
    while not all(b.bids and b.asks for b in sv.books.values()):
        await asyncio.sleep(0.02)
    s.pause()  # the book stays as it is for the rest of the test
    await asyncio.sleep(0.1)  # let a step already under way finish
    assert sv.orders is not None
    sv.orders.add_account(KEY, SECRET, balance=10_000.0)
    yield sv
    await s.stop()


async def _live(sv: SimVenue, secret: str = SECRET) -> tuple[LiveExecution, list[Message], InProcessBus]:
    bus = InProcessBus()
    seen: list[Message] = []
    bus.subscribe(EXECUTIONS, seen.append)
    live = LiveExecution(bus, View(sv), {"binance": make_exchange("binance", KEY, secret, rest_url=sv.rest_url)},
                         poll_s=0.05)
    if secret == SECRET:
        await live.start()
    else:  # start() would refuse the keys; the markets are all an order needs
        await live.exchanges["binance"].load_markets()
    return live, seen, bus


def _order(oid: str, side: str, qty: float, order_type: str = "market", limit_px: float | None = None,
           reduce_only: bool = False) -> Order:
    return Order(id=oid, intent_id=f"i-{oid}", strategy="s", ts_ns=1_000, venue="binance", symbol=PEPE.symbol,
                 venue_symbol=PEPE.venue_symbol, side=side, qty=qty, order_type=order_type, limit_px=limit_px,
                 reduce_only=reduce_only)


def _walk(levels: list[tuple[float, float]], contracts: float) -> tuple[float, float]:
    """(contracts filled, native VWAP) walking the simulator's native levels."""
    left, cost = contracts, 0.0
    for px, qty in levels:
        take = min(left, qty)
        cost += take * px
        left -= take
        if left <= 0:
            break
    done = contracts - left
    return done, cost / done


async def test_place_fill_rest_cancel_positions_balance(sim: SimVenue) -> None:
    live, seen, bus = await _live(sim)
    try:
        bids, asks = sim.books["1000PEPEUSDT"].levels()
        # 2,000,500.7 PEPE is 2000.5007 contracts: rounded down to the lot, 2000 contracts.
        filled, vwap = _walk(asks, 2000.0)
        assert filled == 2000.0
        bus.publish(ORDERS, _order("o1", "buy", 2_000_500.7))
        await live.idle()
        fills = [m for m in seen if isinstance(m, Fill)]
        ups = [m for m in seen if isinstance(m, OrderUpdate)]
        assert len(fills) == 1 and [u.status for u in ups] == ["filled"]
        f = fills[0]
        assert (f.venue, f.symbol, f.side, f.liquidity, f.order_id, f.intent_id, f.id) == \
            ("binance", "PEPE/USDT:USDT", "buy", "taker", "o1", "i-o1", "o1-1")
        assert f.qty == pytest.approx(2_000_000.0, rel=1e-12)
        assert f.px == pytest.approx(vwap / 1000.0, rel=1e-9)
        assert f.fee == pytest.approx(2_000_000.0 * vwap / 1000.0 * 0.0005, rel=1e-9)
        assert f.fee_asset == "USDT"
        assert ups[0].filled_qty == pytest.approx(2_000_000.0) and ups[0].avg_px == pytest.approx(vwap / 1000.0)

        # A post-only buy five ticks under the best bid rests; it is listed, then canceled.
        seen.clear()
        rest_px_native = round(bids[0][0] - 5 * PEPE.tick_size, 7)
        bus.publish(ORDERS, _order("o2", "buy", 1_000_000.0, "post_only", rest_px_native / 1000.0))
        await live.idle()
        assert [(type(m).__name__, getattr(m, "status", "")) for m in seen] == [("OrderUpdate", "accepted")]
        assert sim.orders is not None
        [acct] = sim.orders.accounts.values()
        [resting] = [o for o in acct.orders.values() if o.status == "NEW"]
        assert float(resting.price) == pytest.approx(rest_px_native) and float(resting.qty) == 1000.0
        assert resting.client_id == "o2" and resting.tif == "GTX"
        assert await live.open_orders("binance") == [str(resting.order_id)]
        bus.publish(ORDERS, CancelOrder(order_id="o2", venue="binance", ts_ns=2_000))
        await live.idle()
        assert [(type(m).__name__, getattr(m, "status", "")) for m in seen] == \
            [("OrderUpdate", "accepted"), ("OrderUpdate", "canceled")]
        assert await live.open_orders("binance") == []
        assert resting.status == "CANCELED"

        # The position is the market order's, in PEPE at the price per PEPE.
        [(sym, qty, entry)] = await live.positions("binance")
        assert sym == "PEPE/USDT:USDT" and qty == pytest.approx(2_000_000.0) and entry == pytest.approx(vwap / 1000)
        # Balance: the starting 10,000 USDT less the taker fee, plus the unrealized PnL at
        # the simulator's mark (the venue's mid, native).
        mark = float(f"{PEPE.native_px(sim.model.venue_mid('binance', 'PEPE')):.10g}")
        want = 10_000.0 - 2000.0 * vwap * 0.0005 + (mark - vwap) * 2000.0
        assert (await live.balances("binance"))["USDT"] == pytest.approx(want, rel=1e-9)

        # Closing it: reduce-only market sell of the whole position at the bid side's VWAP.
        seen.clear()
        sold, vwap_sell = _walk(bids, 2000.0)
        assert sold == 2000.0
        bus.publish(ORDERS, _order("o3", "sell", 2_000_000.0, reduce_only=True))
        await live.idle()
        [f3] = [m for m in seen if isinstance(m, Fill)]
        assert f3.qty == pytest.approx(2_000_000.0) and f3.px == pytest.approx(vwap_sell / 1000.0, rel=1e-9)
        assert await live.positions("binance") == []
        realized = (vwap_sell - vwap) * 2000.0
        fees = 2000.0 * vwap * 0.0005 + 2000.0 * vwap_sell * 0.0005
        assert (await live.balances("binance"))["USDT"] == pytest.approx(10_000.0 + realized - fees, rel=1e-9)
    finally:
        await live.close()


async def test_venue_refusals_become_rejections(sim: SimVenue) -> None:
    live, seen, bus = await _live(sim)
    try:
        bids, asks = sim.books["1000PEPEUSDT"].levels()
        # 300,000 PEPE = 300 contracts, about 3.6 USDT: under the 5 USDT minimum notional.
        assert 300 * asks[0][0] < 5.0
        bus.publish(ORDERS, _order("small", "buy", 300_000.0))
        # A post-only buy at the best ask would cross.
        bus.publish(ORDERS, _order("cross", "buy", 1_000_000.0, "post_only", asks[0][0] / 1000.0))
        # A reduce-only sell with no position.
        bus.publish(ORDERS, _order("reduce", "sell", 1_000_000.0, reduce_only=True))
        # 10,000 USDT at 20x margin cannot carry a position worth far more than 200,000 USDT.
        huge = math.ceil(1_000_000.0 / asks[0][0]) * 1000.0
        bus.publish(ORDERS, _order("huge", "buy", huge, "post_only", bids[-1][0] / 1000.0))
        # Under one contract after rounding: refused before anything is sent.
        bus.publish(ORDERS, _order("dust", "buy", 999.0))
        # 1,500 PEPE is one whole contract, under the minimum of two.
        bus.publish(ORDERS, _order("one", "buy", 1_500.0))
        await live.idle()
        got = {m.order_id: m.reason for m in seen if isinstance(m, OrderUpdate)}
        assert [m for m in seen if isinstance(m, Fill)] == []
        assert all(m.status == "rejected" for m in seen if isinstance(m, OrderUpdate))
        assert got["small"] == ("invalid_order: Order's notional must be no smaller than 5 (unless you choose "
                                "reduce only). (-4164)")
        assert got["cross"].endswith("(-5022)")
        assert got["reduce"] == "invalid_order: ReduceOnly Order is rejected. (-2022)"
        assert got["huge"] == "insufficient_margin: Margin is insufficient. (-2019)"
        assert got["dust"].startswith("lot_size: ")
        assert got["one"] == "min_qty: Quantity less than the minimum order quantity. (1.0 native < 2.0)"
        assert live.rejections["lot_size"] == 1 and live.rejections["insufficient_margin"] == 1
    finally:
        await live.close()


async def test_wrong_secret_is_rejected_with_binance_code(sim: SimVenue) -> None:
    live, seen, bus = await _live(sim, secret="not-the-secret")
    try:
        bus.publish(ORDERS, _order("o1", "buy", 1_000_000.0))
        await live.idle()
        [u] = seen
        assert isinstance(u, OrderUpdate) and u.status == "rejected"
        assert u.reason == "auth: Signature for this request is not valid. (-1022)"
        # Starting with these keys stops at the venue's refusal, naming the key.
        with pytest.raises(LiveStartError) as refused:
            await live.start()
        assert str(refused.value) == ("venues.binance.api_key: the venue refused the API key "
                                      "(Signature for this request is not valid. (-1022))")
    finally:
        await live.close()


async def _signed(sv: SimVenue, method: str, path: str, params: dict[str, Any], secret: str = SECRET,
                  key: str | None = KEY) -> tuple[int, Any]:
    query = urlencode(params)
    sig = hmac.new(secret.encode(), query.encode(), hashlib.sha256).hexdigest()
    headers = {"X-MBX-APIKEY": key} if key is not None else {}
    async with aiohttp.ClientSession() as s, s.request(method, f"{sv.rest_url}{path}?{query}&signature={sig}",
                                                       headers=headers) as r:
        return r.status, await r.json()


async def test_signature_timestamp_and_key_checks(sim: SimVenue) -> None:
    now = int(time.time() * 1000)
    ok = {"timestamp": now, "recvWindow": 5000}
    status, body = await _signed(sim, "GET", "/fapi/v3/account", ok)
    assert status == 200 and body["assets"][0]["walletBalance"] == "10000"
    # The HMAC computed with the wrong secret: Binance's -1022.
    assert await _signed(sim, "GET", "/fapi/v3/account", ok, secret="wrong") == \
        (400, {"code": -1022, "msg": "Signature for this request is not valid."})
    # Older than recvWindow, or too far ahead of the server's clock: -1021.
    code = (await _signed(sim, "GET", "/fapi/v3/account", {"timestamp": now - 6000, "recvWindow": 5000}))[1]["code"]
    assert code == -1021
    assert (await _signed(sim, "GET", "/fapi/v3/account", {"timestamp": now + 5000}))[1]["code"] == -1021
    assert (await _signed(sim, "GET", "/fapi/v3/account", {"recvWindow": 5000}))[1] == \
        {"code": -1102, "msg": "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed."}
    # Unknown key, no key header.
    assert await _signed(sim, "GET", "/fapi/v3/account", ok, key="someone-else") == \
        (401, {"code": -2015, "msg": "Invalid API-key, IP, or permissions for action."})
    assert (await _signed(sim, "GET", "/fapi/v3/account", ok, key=None))[1]["code"] == -2014
    # A signed order without its quantity, and a cancel of an order that does not exist.
    status, body = await _signed(sim, "POST", "/fapi/v1/order",
                                 {"symbol": "1000PEPEUSDT", "side": "BUY", "type": "MARKET", **ok})
    assert (status, body["code"]) == (400, -1102) and "'quantity'" in body["msg"]
    assert await _signed(sim, "DELETE", "/fapi/v1/order", {"symbol": "1000PEPEUSDT", "orderId": 42, **ok}) == \
        (400, {"code": -2011, "msg": "Unknown order sent."})
    # Under the minimum quantity (2 contracts), and off the lot step.
    status, body = await _signed(sim, "POST", "/fapi/v1/order",
                                 {"symbol": "1000PEPEUSDT", "side": "BUY", "type": "MARKET", "quantity": "1", **ok})
    assert (status, body) == (400, {"code": -1013, "msg": "Filter failure: LOT_SIZE"})
    status, body = await _signed(sim, "POST", "/fapi/v1/order",
                                 {"symbol": "1000PEPEUSDT", "side": "BUY", "type": "MARKET", "quantity": "10.5", **ok})
    assert body["code"] == -1111


async def test_restore_after_restart(sim: SimVenue) -> None:
    """Orders the journal had open when the process died: one filled at the venue meanwhile,
    one still resting, one that never reached the venue."""
    bids, asks = sim.books["1000PEPEUSDT"].levels()
    filled, vwap = _walk(asks, 1000.0)
    assert filled == 1000.0
    rest_native = round(bids[0][0] - 5 * PEPE.tick_size, 7)
    before = make_exchange("binance", KEY, SECRET, rest_url=sim.rest_url)
    try:
        await before.load_markets()
        await before.create_order("1000PEPE/USDT:USDT", "market", "buy", 1000, None, {"clientOrderId": "r1"})
        await before.create_order("1000PEPE/USDT:USDT", "limit", "buy", 1000, rest_native,
                                  {"clientOrderId": "r2", "postOnly": True})
    finally:
        await before.close()
    from perparb.execution import OpenOrder

    live, seen, bus = await _live(sim)
    try:
        live.restore([OpenOrder(order=_order("r1", "buy", 1_000_000.0), status="sent"),
                      OpenOrder(order=_order("r2", "buy", 1_000_000.0, "post_only", rest_native / 1000), status="accepted"),
                      OpenOrder(order=_order("r3", "buy", 1_000_000.0), status="sent")])
        await live.idle()
        fills = [m for m in seen if isinstance(m, Fill)]
        ups = {m.order_id: (m.status, m.reason) for m in seen if isinstance(m, OrderUpdate)}
        assert [(f.id, f.order_id) for f in fills] == [("r1-1", "r1")]
        assert fills[0].qty == pytest.approx(1_000_000.0) and fills[0].px == pytest.approx(vwap / 1000, rel=1e-9)
        assert ups == {"r1": ("filled", ""), "r3": ("rejected", "lost: the venue does not know the order")}
        assert set(live.live) == {"r2"}
        bus.publish(ORDERS, CancelOrder(order_id="r2", venue="binance", ts_ns=3_000))
        await live.idle()
        assert [(m.order_id, m.status) for m in seen if isinstance(m, OrderUpdate)][-1] == ("r2", "canceled")
        assert await live.open_orders("binance") == []
    finally:
        await live.close()
