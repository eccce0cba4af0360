"""The spread scanner and the engine around it, on hand-made instruments and quotes.

Expected numbers are worked out in the test from the definition: buying on A at A's ask and
selling on B at B's bid,

    gross bps = (B bid - A ask) / A ask x 1e4
    net bps   = gross - (taker fee A + taker fee B) x 1e4
    size      = min(A ask qty, B bid qty)        (canonical units)
    notional  = size x A ask
"""

from __future__ import annotations

import json

import pytest

from perparb.engine import Engine
from perparb.instruments import Registry, canonical_symbol, load_registry
from perparb.model import Instrument, Opportunity, Quote, VenueStatus
from perparb.scanner.spread import SpreadScanner
from perparb.venues.binance import Binance

MS = 1_000_000
SEC = 1_000_000_000
T0 = 1_700_000_000 * SEC


def inst(venue: str, asset: str = "BTC", quote: str = "USDT", *, venue_symbol: str | None = None,
         taker_fee: float = 0.0005, status: str = "active", price_scale: float = 1.0) -> Instrument:
    return Instrument(
        venue=venue, venue_symbol=venue_symbol or f"{asset}{quote}", symbol=canonical_symbol(asset, quote, quote),
        asset=asset, quote=quote, settle=quote, taker_fee=taker_fee, status=status, price_scale=price_scale,
    )


def quote(i: Instrument, bid: float, ask: float, bid_qty: float = 1.0, ask_qty: float = 1.0,
          recv_ns: int = T0) -> Quote:
    return Quote(venue=i.venue, symbol=i.symbol, venue_symbol=i.venue_symbol, bid_px=bid, bid_qty=bid_qty,
                 ask_px=ask, ask_qty=ask_qty, ts_exchange_ns=recv_ns, recv_ns=recv_ns)


def connected(*venues: str) -> dict[str, VenueStatus]:
    return {v: VenueStatus(venue=v, state="connected", connected=True) for v in venues}


def net_bps(buy_ask: float, sell_bid: float, fee_buy: float, fee_sell: float) -> tuple[float, float]:
    gross = (sell_bid - buy_ask) / buy_ask * 1e4
    return gross, gross - (fee_buy + fee_sell) * 1e4


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, str, float, int]] = []

    def __call__(self, event: str, opp: Opportunity) -> None:
        self.events.append((event, opp.id, opp.edge_bps, opp.ts_ns))

    @property
    def kinds(self) -> list[str]:
        return [e[0] for e in self.events]


BN = inst("binance")
OKX = inst("okx", venue_symbol="BTC-USDT-SWAP")
STATUS = connected("binance", "okx")


# -- one profitable pair -------------------------------------------------------------------
def test_profitable_pair_opens_one_opportunity() -> None:
    sc = SpreadScanner()
    rec = Recorder()
    sc.listeners.append(rec)
    sc.on_quote(BN, quote(BN, 100.0, 100.1, bid_qty=9.0, ask_qty=2.0), T0, STATUS)
    sc.on_quote(OKX, quote(OKX, 100.5, 100.6, bid_qty=1.5, ask_qty=9.0), T0 + 1, STATUS)

    # 0.4 / 100.1 x 1e4 = 39.96 bps gross, 10 bps fees -> 29.96 net
    gross, net = net_bps(100.1, 100.5, 0.0005, 0.0005)
    assert gross == pytest.approx(39.96004, abs=1e-4)
    assert net == pytest.approx(29.96004, abs=1e-4)

    best = sc.best()
    assert len(best) == 1
    o = best[0]
    assert o.id == "spread:BTC:binance:okx"
    assert o.kind == "spread"
    assert o.asset == "BTC"
    assert (o.buy_venue, o.sell_venue) == ("binance", "okx")
    assert (o.buy_symbol, o.sell_symbol) == ("BTC/USDT:USDT", "BTC/USDT:USDT")
    assert (o.buy_px, o.sell_px) == (100.1, 100.5)
    assert o.gross_bps == pytest.approx(gross)
    assert o.edge_bps == pytest.approx(net)
    assert o.peak_edge_bps == pytest.approx(net)
    assert o.size_base == 1.5  # min(2.0 asked on binance, 1.5 bid on okx)
    assert o.notional_quote == pytest.approx(1.5 * 100.1)
    assert o.first_seen_ns == T0 + 1
    assert o.ts_ns == T0 + 1
    assert sc.opened == 1
    assert rec.kinds == ["open"]
    assert sum(sc.rejections.values()) == 0


def test_direction_follows_the_prices() -> None:
    # Now okx is cheap and binance rich: buy okx, sell binance.
    sc = SpreadScanner()
    sc.on_quote(BN, quote(BN, 200.9, 201.0, bid_qty=0.7, ask_qty=5.0), T0, STATUS)
    sc.on_quote(OKX, quote(OKX, 199.9, 200.0, bid_qty=5.0, ask_qty=3.0), T0, STATUS)
    [o] = sc.best()
    assert o.id == "spread:BTC:okx:binance"
    assert (o.buy_venue, o.sell_venue, o.buy_px, o.sell_px) == ("okx", "binance", 200.0, 200.9)
    _, net = net_bps(200.0, 200.9, 0.0005, 0.0005)  # 45 - 10 = 35 bps
    assert o.edge_bps == pytest.approx(35.0)
    assert o.edge_bps == pytest.approx(net)
    assert o.size_base == 0.7
    assert o.notional_quote == pytest.approx(0.7 * 200.0)


def test_below_threshold_when_fees_eat_the_gap() -> None:
    sc = SpreadScanner()
    sc.on_quote(BN, quote(BN, 99.9, 100.0), T0, STATUS)
    sc.on_quote(OKX, quote(OKX, 100.05, 100.2), T0, STATUS)
    gross, net = net_bps(100.0, 100.05, 0.0005, 0.0005)
    assert gross > 0 > net  # 5 bps gross, -5 net
    assert sc.best() == []
    assert sc.active == {}
    assert sc.rejections["below_threshold"] == 1
    assert sc.opened == 0


def test_min_edge_threshold() -> None:
    _, net = net_bps(100.1, 100.5, 0.0005, 0.0005)  # 29.96 bps
    for threshold, opens in ((net - 0.5, True), (net + 0.5, False), (30.0, False), (29.0, True)):
        sc = SpreadScanner(min_edge_bps=threshold)
        sc.on_quote(BN, quote(BN, 100.0, 100.1), T0, STATUS)
        sc.on_quote(OKX, quote(OKX, 100.5, 100.6), T0, STATUS)
        assert bool(sc.best()) is opens, threshold
        assert sc.rejections["below_threshold"] == (0 if opens else 1)


# -- legs that may not be used -------------------------------------------------------------
def test_stale_quote_rejected() -> None:
    sc = SpreadScanner(max_age_ms=1000)
    now = T0 + 3 * SEC
    sc.on_quote(OKX, quote(OKX, 100.5, 100.6, recv_ns=now), now, STATUS)  # fresh
    sc.on_quote(BN, quote(BN, 100.0, 100.1, recv_ns=T0), now, STATUS)  # 3 s old > 1 s
    assert sc.best() == []
    assert dict(sc.rejections) == {"stale": 1}


def test_age_limit_is_inclusive() -> None:
    sc = SpreadScanner(max_age_ms=1000)
    now = T0 + SEC  # exactly 1000 ms old: still usable
    sc.on_quote(OKX, quote(OKX, 100.5, 100.6, recv_ns=now), now, STATUS)
    sc.on_quote(BN, quote(BN, 100.0, 100.1, recv_ns=T0), now, STATUS)
    assert len(sc.best()) == 1


def test_per_venue_max_age_override() -> None:
    now = T0 + 200 * MS  # both quotes are 200 ms old
    plain = SpreadScanner(max_age_ms=5000)
    strict = SpreadScanner(max_age_ms=5000, venue_max_age_ms={"binance": 100})
    for sc in (plain, strict):
        sc.on_quote(OKX, quote(OKX, 100.5, 100.6, recv_ns=T0), now, STATUS)
        sc.on_quote(BN, quote(BN, 100.0, 100.1, recv_ns=T0), now, STATUS)
    assert len(plain.best()) == 1
    assert strict.best() == []
    assert dict(strict.rejections) == {"stale": 1}  # binance only; okx keeps the 5 s default


def test_disconnected_venue_rejected() -> None:
    status = {"binance": VenueStatus(venue="binance", connected=False), **connected("okx")}
    sc = SpreadScanner()
    sc.on_quote(OKX, quote(OKX, 100.5, 100.6), T0, status)
    sc.on_quote(BN, quote(BN, 100.0, 100.1), T0, status)
    assert sc.best() == []
    assert dict(sc.rejections) == {"disconnected": 1}


def test_venue_without_status_is_usable() -> None:
    sc = SpreadScanner()
    sc.on_quote(OKX, quote(OKX, 100.5, 100.6), T0, {})
    sc.on_quote(BN, quote(BN, 100.0, 100.1), T0, {})
    assert len(sc.best()) == 1


@pytest.mark.parametrize(("bid", "ask"), [(100.2, 100.1), (100.1, 100.1), (0.0, 100.1)])
def test_crossed_quote_rejected(bid: float, ask: float) -> None:
    sc = SpreadScanner()
    sc.on_quote(OKX, quote(OKX, 100.5, 100.6), T0, STATUS)
    sc.on_quote(BN, quote(BN, bid, ask), T0, STATUS)
    assert sc.best() == []
    assert dict(sc.rejections) == {"crossed": 1}


@pytest.mark.parametrize(("status", "reason"), [("derived", "unverified"), ("inactive", "inactive")])
def test_unverified_or_inactive_contract_rejected(status: str, reason: str) -> None:
    bn = inst("binance", status=status)
    sc = SpreadScanner()
    sc.on_quote(OKX, quote(OKX, 100.5, 100.6), T0, STATUS)
    sc.on_quote(bn, quote(bn, 100.0, 100.1), T0, STATUS)
    assert sc.best() == []
    assert dict(sc.rejections) == {reason: 1}


def test_different_quote_currencies_never_pair() -> None:
    okx_usd = inst("okx", quote="USD", venue_symbol="BTC-USD-SWAP")
    sc = SpreadScanner()
    sc.on_quote(BN, quote(BN, 100.0, 100.1), T0, STATUS)
    sc.on_quote(okx_usd, quote(okx_usd, 150.0, 150.1), T0, STATUS)  # a 50 % "gap" in another currency
    assert sc.best() == []
    assert sum(sc.rejections.values()) == 0


def test_same_venue_never_pairs_with_itself() -> None:
    a = inst("binance", venue_symbol="BTCUSDT")
    b = inst("binance", venue_symbol="BTCUSDT_ALT")
    sc = SpreadScanner()
    sc.on_quote(a, quote(a, 100.0, 100.1), T0, STATUS)
    sc.on_quote(b, quote(b, 120.0, 120.1), T0, STATUS)
    assert sc.best() == []
    assert len(sc.quotes["BTC"]) == 2  # both legs are kept, they just never pair


def test_assets_do_not_mix() -> None:
    eth = inst("okx", asset="ETH", venue_symbol="ETH-USDT-SWAP")
    sc = SpreadScanner()
    sc.on_quote(BN, quote(BN, 100.0, 100.1), T0, STATUS)
    sc.on_quote(eth, quote(eth, 3000.0, 3000.5), T0, STATUS)
    assert sc.best() == []


def test_taker_fee_override_per_venue() -> None:
    bn = inst("binance", taker_fee=0.0005)
    okx = inst("okx", venue_symbol="BTC-USDT-SWAP", taker_fee=0.0005)
    # 8 bps gross: 10 bps of instrument fees make it a loss, 0.0001 + 0.0002 = 3 bps keep 5 bps.
    q_bn, q_okx = quote(bn, 99.9, 100.0), quote(okx, 100.08, 100.2)
    gross, net_default = net_bps(100.0, 100.08, 0.0005, 0.0005)
    _, net_override = net_bps(100.0, 100.08, 0.0001, 0.0002)
    assert gross == pytest.approx(8.0)
    assert net_default == pytest.approx(-2.0)
    assert net_override == pytest.approx(5.0)

    default = SpreadScanner()
    cheap = SpreadScanner(taker_fees={"binance": 0.0001, "okx": 0.0002})
    for sc in (default, cheap):
        sc.on_quote(bn, q_bn, T0, STATUS)
        sc.on_quote(okx, q_okx, T0, STATUS)
    assert default.best() == []
    [o] = cheap.best()
    assert o.gross_bps == pytest.approx(gross)
    assert o.edge_bps == pytest.approx(net_override)
    assert cheap.fee(bn) == 0.0001
    assert default.fee(bn) == 0.0005


def test_instrument_taker_fee_is_used() -> None:
    bn = inst("binance", taker_fee=0.0002)
    okx = inst("okx", venue_symbol="BTC-USDT-SWAP", taker_fee=0.0007)
    sc = SpreadScanner()
    sc.on_quote(bn, quote(bn, 99.9, 100.0), T0, STATUS)
    sc.on_quote(okx, quote(okx, 100.2, 100.3), T0, STATUS)
    [o] = sc.best()
    _, net = net_bps(100.0, 100.2, 0.0002, 0.0007)  # 20 - 9 = 11 bps
    assert o.edge_bps == pytest.approx(11.0)
    assert o.edge_bps == pytest.approx(net)


# -- lifecycle -----------------------------------------------------------------------------
def test_open_update_close() -> None:
    sc = SpreadScanner()
    rec = Recorder()
    sc.listeners.append(rec)
    t1, t2, t3, t4 = T0, T0 + 100 * MS, T0 + 200 * MS, T0 + 300 * MS
    sc.on_quote(BN, quote(BN, 99.9, 100.0, recv_ns=t1), t1, STATUS)
    sc.on_quote(OKX, quote(OKX, 100.3, 100.4, recv_ns=t1), t1, STATUS)  # 30 - 10 = 20 bps: open
    _, e1 = net_bps(100.0, 100.3, 0.0005, 0.0005)
    sc.on_quote(OKX, quote(OKX, 100.5, 100.6, recv_ns=t2), t2, STATUS)  # 50 - 10 = 40 bps: update, peak
    _, e2 = net_bps(100.0, 100.5, 0.0005, 0.0005)
    [o] = sc.best()
    assert o.first_seen_ns == t1
    assert o.ts_ns == t2
    assert o.edge_bps == pytest.approx(e2) == pytest.approx(40.0)
    assert o.peak_edge_bps == pytest.approx(e2)

    sc.on_quote(OKX, quote(OKX, 100.2, 100.3, recv_ns=t3), t3, STATUS)  # 20 - 10 = 10 bps: update, peak kept
    _, e3 = net_bps(100.0, 100.2, 0.0005, 0.0005)
    [o] = sc.best()
    assert o.first_seen_ns == t1
    assert o.ts_ns == t3
    assert o.edge_bps == pytest.approx(e3) == pytest.approx(10.0)
    assert o.peak_edge_bps == pytest.approx(e2)

    sc.on_quote(OKX, quote(OKX, 99.95, 100.05, recv_ns=t4), t4, STATUS)  # okx bid below binance ask: gone
    assert sc.best() == []
    assert sc.active == {}

    oid = "spread:BTC:binance:okx"
    assert rec.kinds == ["open", "update", "update", "close"]
    assert [e[1] for e in rec.events] == [oid] * 4
    assert [e[2] for e in rec.events[:3]] == pytest.approx([e1, e2, e3])
    assert rec.events[3][3] == t4  # closed at the time the gap disappeared
    assert sc.opened == 1


def test_reopen_counts_again() -> None:
    sc = SpreadScanner()
    rec = Recorder()
    sc.listeners.append(rec)
    sc.on_quote(BN, quote(BN, 99.9, 100.0), T0, STATUS)
    sc.on_quote(OKX, quote(OKX, 100.3, 100.4), T0, STATUS)
    sc.on_quote(OKX, quote(OKX, 99.95, 100.05), T0 + 1, STATUS)
    sc.on_quote(OKX, quote(OKX, 100.3, 100.4), T0 + 2, STATUS)
    assert rec.kinds == ["open", "close", "open"]
    assert sc.opened == 2
    [o] = sc.best()
    assert o.first_seen_ns == T0 + 2  # a new opportunity, not the old one


def test_sweep_closes_when_a_leg_goes_stale() -> None:
    sc = SpreadScanner(max_age_ms=1000)
    rec = Recorder()
    sc.listeners.append(rec)
    sc.on_quote(BN, quote(BN, 99.9, 100.0, recv_ns=T0), T0, STATUS)
    sc.on_quote(OKX, quote(OKX, 100.3, 100.4, recv_ns=T0), T0, STATUS)
    sc.sweep(T0 + 500 * MS, STATUS)  # 500 ms: still fresh -> update
    assert len(sc.best()) == 1
    sc.sweep(T0 + 1500 * MS, STATUS)  # 1.5 s > 1 s: both legs stale
    assert sc.best() == []
    assert rec.kinds == ["open", "update", "close"]
    assert rec.events[-1][3] == T0 + 1500 * MS
    assert sc.rejections["stale"] == 2


def test_sweep_closes_when_a_venue_disconnects() -> None:
    sc = SpreadScanner()
    rec = Recorder()
    sc.listeners.append(rec)
    sc.on_quote(BN, quote(BN, 99.9, 100.0), T0, STATUS)
    sc.on_quote(OKX, quote(OKX, 100.3, 100.4), T0, STATUS)
    down = {**STATUS, "okx": VenueStatus(venue="okx", connected=False)}
    sc.sweep(T0 + 1, down)
    assert sc.best() == []
    assert rec.kinds == ["open", "close"]
    assert sc.rejections["disconnected"] == 1


def test_sweep_with_per_venue_age() -> None:
    sc = SpreadScanner(max_age_ms=10_000, venue_max_age_ms={"okx": 250})
    rec = Recorder()
    sc.listeners.append(rec)
    sc.on_quote(BN, quote(BN, 99.9, 100.0, recv_ns=T0), T0, STATUS)
    sc.on_quote(OKX, quote(OKX, 100.3, 100.4, recv_ns=T0), T0, STATUS)
    sc.sweep(T0 + 300 * MS, STATUS)
    assert rec.kinds == ["open", "close"]
    assert dict(sc.rejections) == {"stale": 1}


def test_best_orders_by_edge() -> None:
    bybit = inst("bybit")
    status = connected("binance", "okx", "bybit")
    sc = SpreadScanner()
    sc.on_quote(BN, quote(BN, 99.9, 100.0), T0, status)  # cheapest
    sc.on_quote(OKX, quote(OKX, 100.3, 100.4), T0, status)  # 20 bps over binance
    sc.on_quote(bybit, quote(bybit, 100.6, 100.7), T0, status)  # richest
    # binance->bybit: 60 - 10 = 50 bps; binance->okx: 30 - 10 = 20; okx->bybit: 0.2/100.4 = 19.92 - 10 = 9.92
    best = sc.best()
    assert [o.id for o in best] == ["spread:BTC:binance:bybit", "spread:BTC:binance:okx", "spread:BTC:okx:bybit"]
    assert [o.edge_bps for o in best] == pytest.approx([50.0, 20.0, 0.2 / 100.4 * 1e4 - 10])
    assert [o.id for o in sc.best(1)] == ["spread:BTC:binance:bybit"]


# -- renamed multiples ---------------------------------------------------------------------
def _bookticker(sym: str, b: str, bq: str, a: str, aq: str, e_ms: int) -> str:
    return json.dumps({"stream": f"{sym.lower()}@bookTicker", "data": {
        "e": "bookTicker", "u": 1, "s": sym, "b": b, "B": bq, "a": a, "A": aq, "T": e_ms - 1, "E": e_ms}},
        separators=(",", ":"))


def test_1000pepe_against_pepe() -> None:
    bn_pepe = Instrument(venue="binance", venue_symbol="1000PEPEUSDT", symbol="PEPE/USDT:USDT", asset="PEPE",
                         quote="USDT", settle="USDT", price_scale=1000.0, taker_fee=0.0005)
    okx_pepe = Instrument(venue="okx", venue_symbol="PEPE-USDT-SWAP", symbol="PEPE/USDT:USDT", asset="PEPE",
                          quote="USDT", settle="USDT", contract_size=100_000.0, taker_fee=0.0005)
    reg = Registry([bn_pepe, okx_pepe])
    [q_bn] = Binance(reg).parse(_bookticker("1000PEPEUSDT", "0.012340", "5000", "0.012345", "7000", 1_700_000_000_000),
                                T0)
    assert isinstance(q_bn, Quote)
    # Per PEPE: 0.012345 USDT per 1000 PEPE = 0.000012345; 7000 lots of 1000 = 7,000,000 PEPE.
    assert q_bn.ask_px == pytest.approx(0.000012345, rel=1e-12)
    assert q_bn.bid_px == pytest.approx(0.000012340, rel=1e-12)
    assert q_bn.ask_qty == pytest.approx(7_000_000)
    assert q_bn.bid_qty == pytest.approx(5_000_000)

    q_okx = Quote(venue="okx", symbol="PEPE/USDT:USDT", venue_symbol="PEPE-USDT-SWAP", bid_px=0.0000125,
                  bid_qty=9_000_000.0, ask_px=0.0000126, ask_qty=9_000_000.0, ts_exchange_ns=T0, recv_ns=T0)
    sc = SpreadScanner()
    sc.on_quote(bn_pepe, q_bn, T0, STATUS)
    sc.on_quote(okx_pepe, q_okx, T0, STATUS)

    [o] = sc.best()
    # (0.0000125 - 0.000012345) / 0.000012345 x 1e4 = 125.557 bps gross, 115.557 net
    gross = (0.0000125 - 0.000012345) / 0.000012345 * 1e4
    assert gross == pytest.approx(125.557, abs=1e-3)
    assert o.id == "spread:PEPE:binance:okx"
    assert o.gross_bps == pytest.approx(gross)
    assert o.edge_bps == pytest.approx(gross - 10.0)
    assert o.size_base == pytest.approx(7_000_000)  # all of binance's 7000 x 1000 PEPE
    assert o.notional_quote == pytest.approx(86.415)  # 7,000,000 x 0.000012345
    assert (o.buy_symbol, o.sell_symbol) == ("PEPE/USDT:USDT", "PEPE/USDT:USDT")


def test_1000pepe_without_normalization_would_not_pair() -> None:
    # The reverse direction (buy okx at 0.0000126, sell binance at 0.00001234) is a loss: no
    # second opportunity, and nothing compares 0.0123 against 0.0000125.
    bn_pepe = Instrument(venue="binance", venue_symbol="1000PEPEUSDT", symbol="PEPE/USDT:USDT", asset="PEPE",
                         quote="USDT", settle="USDT", price_scale=1000.0)
    reg = Registry([bn_pepe])
    [q_bn] = Binance(reg).parse(_bookticker("1000PEPEUSDT", "0.012650", "10", "0.012660", "10", 1), T0)
    okx_pepe = inst("okx", asset="PEPE", venue_symbol="PEPE-USDT-SWAP")
    q_okx = quote(okx_pepe, 0.0000125, 0.0000126, 1e6, 1e6)
    sc = SpreadScanner()
    sc.on_quote(bn_pepe, q_bn, T0, STATUS)
    sc.on_quote(okx_pepe, q_okx, T0, STATUS)
    [o] = sc.best()
    # buy okx at 0.0000126, sell binance at 0.01265 / 1000 = 0.00001265: 39.68 - 10 bps
    assert o.id == "spread:PEPE:okx:binance"
    assert o.edge_bps == pytest.approx((0.00001265 - 0.0000126) / 0.0000126 * 1e4 - 10)
    assert o.size_base == pytest.approx(10_000)  # min(1e6 on okx, 10 x 1000 on binance)


# -- the engine: raw messages in ------------------------------------------------------------
def _bybit_top(sym: str, bid: str, bid_qty: str, ask: str, ask_qty: str, ts_ms: int, u: int = 1000) -> str:
    return json.dumps({"topic": f"orderbook.1.{sym}", "ts": ts_ms, "type": "snapshot",
                       "data": {"s": sym, "b": [[bid, bid_qty]], "a": [[ask, ask_qty]], "u": u, "seq": 77},
                       "cts": ts_ms - 2}, separators=(",", ":"))


@pytest.fixture
def engine() -> Engine:
    # Fees fixed here so the expected edge does not depend on the snapshot's fee data.
    eng = Engine(load_registry(), ["binance", "bybit"],
                 scanner=SpreadScanner(taker_fees={"binance": 0.0004, "bybit": 0.00055}))
    eng.set_connected("binance", True, T0)
    eng.set_connected("bybit", True, T0)
    return eng


def test_engine_raw_messages_to_opportunity(engine: Engine) -> None:
    rec = Recorder()
    engine.scanner.listeners.append(rec)
    engine.on_message("binance", _bookticker("BTCUSDT", "60000.0", "2.0", "60000.1", "1.5", 1_700_000_000_000),
                      T0 + 1_000)
    engine.on_message("bybit", _bybit_top("BTCUSDT", "60100.0", "0.8", "60100.1", "3.0", 1_700_000_000_001),
                      T0 + 2_000)
    assert engine.now_ns == T0 + 2_000
    [o] = engine.scanner.best()
    gross = (60100.0 - 60000.1) / 60000.1 * 1e4  # 16.65 bps
    assert o.id == "spread:BTC:binance:bybit"
    assert (o.buy_venue, o.sell_venue, o.buy_px, o.sell_px) == ("binance", "bybit", 60000.1, 60100.0)
    assert o.gross_bps == pytest.approx(gross)
    assert o.edge_bps == pytest.approx(gross - (0.0004 + 0.00055) * 1e4)  # 16.65 - 9.5
    assert o.size_base == pytest.approx(0.8)  # min(1.5 asked on binance, 0.8 bid on bybit)
    assert o.notional_quote == pytest.approx(0.8 * 60000.1)
    assert o.first_seen_ns == T0 + 2_000
    assert rec.kinds == ["open"]
    for v in ("binance", "bybit"):
        st = engine.status[v]
        assert (st.messages, st.decode_errors, st.unknown_symbols) == (1, 0, 0)


def test_engine_bad_messages_are_counted_not_raised(engine: Engine) -> None:
    engine.on_message("binance", _bookticker("BTCUSDT", "60000.0", "2.0", "60000.1", "1.5", 1), T0)
    engine.on_message("bybit", _bybit_top("BTCUSDT", "60100.0", "0.8", "60100.1", "3.0", 1), T0)
    assert len(engine.scanner.best()) == 1

    # Malformed: truncated JSON, a price that is not a number.
    engine.on_message("binance", '{"e":"bookTicker","u":1,"s":"BTCUSDT","b":"600', T0 + 1)
    engine.on_message("binance", '{"e":"bookTicker","u":1,"s":"BTCUSDT","b":"abc","B":"1","a":"1","A":"1"}',
                      T0 + 2)
    engine.on_message("bybit", "this is not json", T0 + 3)
    engine.on_message("bybit", '{"topic":"orderbook.1.BTCUSDT","type":"snapshot","data":{"s":', T0 + 4)
    # Unknown symbols: neither venue can derive these.
    engine.on_message("binance", _bookticker("NOSUCHCOIN", "1", "1", "2", "1", 1), T0 + 5)
    engine.on_message("bybit", _bybit_top("NOSUCHCOIN", "1", "1", "2", "1", 1), T0 + 6)
    # Acks are neither.
    engine.on_message("binance", '{"result":null,"id":1}', T0 + 7)
    engine.on_message("bybit", '{"success":true,"ret_msg":"","conn_id":"x","req_id":"sub1","op":"subscribe"}',
                      T0 + 8)

    bn, bb = engine.status["binance"], engine.status["bybit"]
    assert (bn.messages, bn.decode_errors, bn.unknown_symbols) == (5, 2, 1)
    assert (bb.messages, bb.decode_errors, bb.unknown_symbols) == (5, 2, 1)
    assert bn.last_error and bb.last_error
    # The opportunity built before is untouched by the garbage.
    [o] = engine.scanner.best()
    assert o.id == "spread:BTC:binance:bybit"


def test_engine_counts_non_json_binance_message(engine: Engine) -> None:
    engine.on_message("binance", "this is not json", T0)
    engine.on_message("binance", "[1, 2", T0)
    assert engine.status["binance"].decode_errors == 2
    assert engine.status["binance"].messages == 2


def test_engine_disconnected_venue_blocks_opportunity() -> None:
    eng = Engine(load_registry(), ["binance", "bybit"])
    eng.set_connected("binance", True, T0)  # bybit never connected
    eng.on_message("binance", _bookticker("BTCUSDT", "60000.0", "2.0", "60000.1", "1.5", 1), T0)
    eng.on_message("bybit", _bybit_top("BTCUSDT", "60500.0", "0.8", "60500.1", "3.0", 1), T0)
    assert eng.scanner.best() == []
    assert eng.scanner.rejections["disconnected"] == 1
