"""The scanner on hand-built books whose right answers are worked out here, by hand."""

from __future__ import annotations

import math

import pytest

from perparb.feeds.booksync import SyncedBook
from perparb.model import BookSnapshot, Funding, Instrument, Opportunity, Quote, VenueStatus
from perparb.scanner.core import Scanner, ScanSettings
from perparb.scanner.funding import settlements

S = 1_000_000_000  # ns per second
NOW = 1_700_000_000 * S
FEE = 0.0005


def inst(venue: str, asset: str = "BTC", quote: str = "USDT", **kw: object) -> Instrument:
    args: dict[str, object] = dict(venue=venue, venue_symbol=f"{asset}{quote}", symbol=f"{asset}/{quote}:{quote}",
                                   asset=asset, quote=quote, settle=quote, taker_fee=FEE)
    args.update(kw)
    return Instrument(**args)  # type: ignore[arg-type]


def book(i: Instrument, bids: list[tuple[float, float]], asks: list[tuple[float, float]],
         recv_ns: int = NOW) -> SyncedBook:
    sb = SyncedBook("in_stream")
    sb.on_snapshot(BookSnapshot(venue=i.venue, symbol=i.symbol, venue_symbol=i.venue_symbol, bids=bids, asks=asks,
                                ts_exchange_ns=recv_ns, recv_ns=recv_ns))
    return sb


def quote(i: Instrument, bid: float, bid_qty: float, ask: float, ask_qty: float, recv_ns: int = NOW) -> Quote:
    return Quote(i.venue, i.symbol, i.venue_symbol, bid, bid_qty, ask, ask_qty, recv_ns, recv_ns)


def connected(*venues: str) -> dict[str, VenueStatus]:
    return {v: VenueStatus(venue=v, connected=True) for v in venues}


STATUS = connected("aaa", "bbb", "ccc")

# The worked example. Venue aaa sells (asks) cheaper than venue bbb buys (bids).
A_BIDS = [(99.9, 1.0)]
A_ASKS = [(100.0, 1.0), (100.5, 2.0), (101.0, 5.0)]
B_BIDS = [(101.0, 1.5), (100.8, 1.0), (100.0, 10.0)]
B_ASKS = [(101.1, 1.0)]
# exit per unit = half of each spread + exit fees: 0.5*(0.1 + 0.1) + 0.0005*99.9 + 0.0005*101.1
EXIT = 0.1 + 0.04995 + 0.05055


def scanner_with_books(min_edge_bps: float = 10.0, a_kw: dict | None = None, b_kw: dict | None = None,
                       **settings: object) -> tuple[Scanner, list[tuple[str, Opportunity]]]:
    sc = Scanner(ScanSettings(min_edge_bps=min_edge_bps, **settings))  # type: ignore[arg-type]
    events: list[tuple[str, Opportunity]] = []
    sc.listeners.append(lambda e, o: events.append((e, o)))
    a, b = inst("aaa", **(a_kw or {})), inst("bbb", **(b_kw or {}))
    sc.on_book(a, book(a, A_BIDS, A_ASKS), NOW, STATUS)
    sc.on_book(b, book(b, B_BIDS, B_ASKS), NOW, STATUS)
    return sc, events


def test_walks_both_books_while_every_unit_clears_the_threshold() -> None:
    _, events = scanner_with_books(min_edge_bps=10.0)
    [(event, o)] = events
    assert event == "open" and o.id == "spread:BTC:aaa:bbb" and (o.buy_venue, o.sell_venue) == ("aaa", "bbb")
    # Level by level: (100 vs 101) marginal = (101*0.9995 - 100*1.0005 - EXIT)/100 = 69.9 bps: take 1.0;
    # (100.5 vs 101) = (100.9495 - 100.55025 - 0.2005)/100.5 = 19.78 bps: take the 0.5 left at 101;
    # (100.5 vs 100.8) = (100.7496 - 100.55025 - 0.2005)/100.5 < 0: stop.
    assert pytest.approx(0.2005) == EXIT
    assert o.size_base == pytest.approx(1.5)
    cost, proceeds = 100.0 * 1.0 + 100.5 * 0.5, 101.0 * 1.5
    assert o.buy_px == pytest.approx(cost / 1.5) and o.sell_px == pytest.approx(101.0)
    assert o.notional_quote == pytest.approx(150.25)
    assert o.gross_bps == pytest.approx((proceeds - cost) / cost * 1e4)
    net = proceeds * 0.9995 - cost * 1.0005 - EXIT * 1.5
    assert net == pytest.approx(0.798375)
    assert o.edge_bps == pytest.approx(net / cost * 1e4)  # 53.14 bps
    assert o.top_size_base == pytest.approx(1.0)


def test_thin_books_top_level_profitable_but_not_the_stated_size() -> None:
    # At 25 bps the second step (19.78 bps) no longer clears: only the top unit is reported.
    sc, events = scanner_with_books(min_edge_bps=25.0)
    [(_, o)] = events
    assert o.size_base == pytest.approx(1.0)
    assert o.edge_bps == pytest.approx((101.0 * 0.9995 - 100.0 * 1.0005 - EXIT) / 100.0 * 1e4)
    # At 70 bps not even the top unit (69.9 bps) clears: no opportunity, counted below threshold.
    sc, events = scanner_with_books(min_edge_bps=70.0)
    assert events == [] and sc.rejections["below_threshold"] == 1


def test_max_notional_caps_the_walk() -> None:
    _, events = scanner_with_books(min_edge_bps=10.0, max_notional=50.0)
    [(_, o)] = events
    assert o.size_base == pytest.approx(0.5) and o.notional_quote == pytest.approx(50.0)


def test_lot_size_rounds_the_size_down_on_both_legs() -> None:
    _, events = scanner_with_books(min_edge_bps=10.0, a_kw={"lot_size": 1.0})
    [(_, o)] = events
    assert o.size_base == pytest.approx(1.0)
    assert o.notional_quote == pytest.approx(100.0) and o.sell_px == pytest.approx(101.0)


def test_minimum_notional_above_the_opportunity_suppresses_it() -> None:
    sc, events = scanner_with_books(min_edge_bps=10.0, b_kw={"min_notional": 200.0})  # 1.5 x 101 = 151.5 < 200
    assert events == []
    assert sc.rejections["below_min_size"] >= 1


def test_minimum_quantity_in_contracts() -> None:
    # ctVal 0.01 BTC: 1.5 BTC = 150 contracts; a 200-contract minimum makes it unorderable.
    sc, events = scanner_with_books(min_edge_bps=10.0, b_kw={"contract_size": 0.01, "min_qty": 200.0})
    assert events == [] and sc.rejections["below_min_size"] >= 1


def test_stale_leg_is_suppressed_and_counted() -> None:
    sc = Scanner(ScanSettings(min_edge_bps=10.0, max_quote_age_ms=1000.0))
    a, b = inst("aaa"), inst("bbb")
    sc.on_book(a, book(a, A_BIDS, A_ASKS, recv_ns=NOW - 2 * S), NOW, STATUS)  # 2 s old
    sc.on_book(b, book(b, B_BIDS, B_ASKS), NOW, STATUS)
    assert not sc.lifecycle.active
    assert sc.rejections["stale"] == 1  # the one direction with a visible gap


def test_per_venue_age_overrides_the_default() -> None:
    sc = Scanner(ScanSettings(min_edge_bps=10.0, max_quote_age_ms=5000.0, venue_max_age_ms={"aaa": 500.0}))
    a, b = inst("aaa"), inst("bbb")
    sc.on_book(a, book(a, A_BIDS, A_ASKS, recv_ns=NOW - S), NOW, STATUS)
    sc.on_book(b, book(b, B_BIDS, B_ASKS), NOW, STATUS)
    assert not sc.lifecycle.active and sc.rejections["stale"] == 1


def test_unsynced_book_never_feeds_an_opportunity() -> None:
    sc = Scanner(ScanSettings(min_edge_bps=10.0))
    a, b = inst("aaa"), inst("bbb")
    sb = book(a, A_BIDS, A_ASKS)
    sc.on_book(b, book(b, B_BIDS, B_ASKS), NOW, STATUS)
    sb.resyncing()  # keeps its levels until the new snapshot, but is not synced
    sc.on_book(a, sb, NOW, STATUS)
    assert not sc.lifecycle.active and sc.rejections["unsynced"] == 1


def test_crossed_leg_is_suppressed() -> None:
    sc = Scanner(ScanSettings(min_edge_bps=10.0))
    a, b = inst("aaa"), inst("bbb")
    sc.on_quote(b, quote(b, 101.0, 1.0, 101.1, 1.0), NOW, STATUS)
    sc.on_quote(a, quote(a, 100.2, 1.0, 100.0, 1.0), NOW, STATUS)  # a's own bid above its ask
    assert not sc.lifecycle.active and sc.rejections["crossed"] == 1


def test_disconnected_venue_is_suppressed() -> None:
    status = connected("aaa", "bbb")
    status["bbb"].connected = False
    sc = Scanner(ScanSettings(min_edge_bps=10.0))
    a, b = inst("aaa"), inst("bbb")
    sc.on_book(a, book(a, A_BIDS, A_ASKS), NOW, status)
    sc.on_book(b, book(b, B_BIDS, B_ASKS), NOW, status)
    assert not sc.lifecycle.active and sc.rejections["disconnected"] == 1


def test_ambiguous_mapping_is_never_paired() -> None:
    sc = Scanner(ScanSettings(min_edge_bps=10.0))
    sc.ambiguous[("bbb", "BTCUSDT")] = "marked by hand"
    a, b = inst("aaa"), inst("bbb")
    sc.on_book(a, book(a, A_BIDS, A_ASKS), NOW, STATUS)
    sc.on_book(b, book(b, B_BIDS, B_ASKS), NOW, STATUS)
    assert not sc.lifecycle.active and sc.rejections["ambiguous"] == 1


def test_a_mark_lifted_during_an_evaluation_counts_for_the_pairs_after_it() -> None:
    """The gates of a leg run once per evaluation, but a gap wide enough to re-check the
    mapping can mark or clear legs part way through: pairs after it see the new marks."""
    sc = Scanner(ScanSettings(min_edge_bps=-1e6))
    status = connected("aaa", "bbb", "ccc", "ddd")
    a, b, c, d = inst("aaa"), inst("bbb"), inst("ccc"), inst("ddd")
    books = {i.venue: book(i, bids, asks) for i, bids, asks in (
        (a, [(100.0, 1.0)], [(100.2, 1.0)]), (b, [(100.0, 1.0)], [(100.2, 1.0)]),
        (c, [(100.0, 1.0)], [(100.2, 1.0)]), (d, [(99.9, 1.0)], [(100.1, 1.0)]))}
    for i in (a, b, c, d):
        sc.on_book(i, books[i.venue], NOW, status)
    assert not sc.rejections and not sc.ambiguous  # nothing crosses
    # aaa jumps tenfold: its bid is far above every ask, so the mapping is checked and aaa marked.
    sc.on_book(a, book(a, [(999.0, 1.0)], [(1001.0, 1.0)]), NOW, status)
    assert set(sc.ambiguous) == {("aaa", "BTCUSDT")} and sc.rejections["ambiguous"] == 3
    # ccc's book falls tenfold without an evaluation yet; then aaa comes back to the others' price.
    books["ccc"].on_snapshot(BookSnapshot(venue="ccc", symbol=c.symbol, venue_symbol=c.venue_symbol,
                                          bids=[(10.0, 1.0)], asks=[(10.1, 1.0)], ts_exchange_ns=NOW, recv_ns=NOW))
    sc.on_book(a, book(a, [(100.5, 1.0)], [(100.6, 1.0)]), NOW, status)
    # Legs in order bbb, ccc, ddd: bbb→aaa still sees aaa marked; ccc→aaa is wide, so the check
    # runs again (mids 100.55, 100.1, 10.05, 100.0: median 100.05): aaa is cleared, ccc marked;
    # ddd→aaa sees aaa cleared and is reported.
    assert set(sc.ambiguous) == {("ccc", "BTCUSDT")} and sc.rejections["ambiguous"] == 5
    assert list(sc.lifecycle.active) == ["spread:BTC:ddd:aaa"]


@pytest.mark.parametrize(("status", "reason"), [("inactive", "inactive"), ("derived", "unverified")])
def test_inactive_or_unverified_contract_is_suppressed(status: str, reason: str) -> None:
    sc, events = scanner_with_books(min_edge_bps=10.0, b_kw={"status": status})
    assert events == [] and sc.rejections[reason] == 1


def test_no_visible_gap_is_not_a_candidate() -> None:
    sc = Scanner(ScanSettings(min_edge_bps=0.0))
    a, b = inst("aaa"), inst("bbb")
    sc.on_quote(a, quote(a, 99.9, 1.0, 100.0, 1.0), NOW, STATUS)
    sc.on_quote(b, quote(b, 99.95, 1.0, 100.05, 1.0), NOW, STATUS)
    assert not sc.lifecycle.active and not sc.rejections


def test_same_venue_and_different_assets_never_pair() -> None:
    sc = Scanner(ScanSettings(min_edge_bps=-1000.0))
    a1, a2 = inst("aaa"), inst("aaa", quote="USDC")
    sc.on_quote(a1, quote(a1, 99.9, 1.0, 100.0, 1.0), NOW, STATUS)
    sc.on_quote(a2, quote(a2, 101.0, 1.0, 101.1, 1.0), NOW, STATUS)
    e = inst("bbb", asset="ETH")
    sc.on_quote(e, quote(e, 200.0, 1.0, 200.1, 1.0), NOW, STATUS)
    assert not sc.lifecycle.active


def test_quote_groups_decide_what_pairs() -> None:
    a, b = inst("aaa", quote="USDT"), inst("bbb", quote="USD", settle="BTC", inverse=True, contract_size=100.0)
    for groups, expected in (([["USD", "USDT", "USDC"]], 1), ([], 0)):
        sc = Scanner(ScanSettings(min_edge_bps=10.0, quote_groups=groups))
        sc.on_book(a, book(a, A_BIDS, A_ASKS), NOW, STATUS)
        sc.on_book(b, book(b, B_BIDS, B_ASKS), NOW, STATUS)
        assert len(sc.lifecycle.active) == expected


def test_inverse_contract_against_a_linear_one() -> None:
    # bbb is inverse: 100 USD contracts. Its book is already normalized (BTC per level), but
    # its lot is one contract: 1.5 BTC at 101 = 151.5 USD = 1.515 contracts -> 1 contract.
    a = inst("aaa")
    b = inst("bbb", quote="USD", settle="BTC", inverse=True, contract_size=100.0, lot_size=1.0, symbol="BTC/USD:BTC")
    sc = Scanner(ScanSettings(min_edge_bps=10.0))
    sc.on_book(a, book(a, A_BIDS, A_ASKS), NOW, STATUS)
    sc.on_book(b, book(b, B_BIDS, B_ASKS), NOW, STATUS)
    [o] = sc.lifecycle.active.values()
    # px used for b's rounding is its VWAP over the walked size (101): 100 USD / 101 = 0.990099 BTC.
    assert o.size_base == pytest.approx(100.0 / 101.0)
    assert o.buy_symbol == "BTC/USDT:USDT" and o.sell_symbol == "BTC/USD:BTC"


def test_taker_fee_override_changes_the_edge() -> None:
    _, events = scanner_with_books(min_edge_bps=10.0, taker_fees={"aaa": 0.0, "bbb": 0.0})
    [(_, o)] = events
    exit_free = 0.1  # half spreads only
    # Every level now clears until (100.5 vs 100.8): (100.8 - 100.5 - 0.1)/100.5 = 19.9 bps; then
    # (101.0 vs 100.8) = -0.3/101 < 0. Size 1 + 1.5 (0.5 at 101 + 1.0 at 100.8) = 2.5.
    assert o.size_base == pytest.approx(2.5)
    cost, proceeds = 100.0 + 100.5 * 1.5, 101.0 * 1.5 + 100.8 * 1.0
    assert o.edge_bps == pytest.approx((proceeds - cost - exit_free * 2.5) / cost * 1e4)


def test_lifecycle_open_update_close_and_stats() -> None:
    sc = Scanner(ScanSettings(min_edge_bps=10.0, max_quote_age_ms=60_000.0))
    events: list[tuple[str, Opportunity]] = []
    sc.listeners.append(lambda e, o: events.append((e, o)))
    a, b = inst("aaa"), inst("bbb")
    sc.on_quote(a, quote(a, 99.9, 1.0, 100.0, 1.0), NOW, STATUS)
    sc.on_quote(b, quote(b, 101.0, 1.0, 101.1, 1.0), NOW, STATUS)
    sc.on_quote(b, quote(b, 101.5, 1.0, 101.6, 1.0, NOW + 2 * S), NOW + 2 * S, STATUS)  # wider
    sc.on_quote(b, quote(b, 101.6, 1.0, 101.7, 1.0, NOW + 6 * S), NOW + 6 * S, STATUS)  # wider still
    sc.on_quote(b, quote(b, 100.0, 1.0, 100.1, 1.0, NOW + 7 * S), NOW + 7 * S, STATUS)  # gone
    assert [e for e, _ in events] == ["open", "update", "update", "close"]
    opened, updated, last, closed = (o for _, o in events)
    assert updated.first_seen_ns == NOW and updated.ts_ns == NOW + 2 * S
    assert updated.peak_edge_bps == updated.edge_bps > opened.edge_bps
    assert closed.ts_ns == NOW + 7 * S and closed.ts_ns - closed.first_seen_ns == 7 * S
    assert closed.close_reason == "no_gap"
    stats = sc.lifecycle.summary("spread:BTC:aaa:bbb", NOW + 7 * S, 60)
    assert stats is not None and stats["samples"] == 2  # sampled every 5 s: at open and at +6 s, not at +2 s
    assert stats["median_open_edge_bps"] == pytest.approx((opened.edge_bps + last.edge_bps) / 2)
    # Observed from the first quote (NOW) for 7 s, open all of them.
    assert (stats["observed_s"], stats["open_s"], stats["open_fraction"]) == pytest.approx((7.0, 7.0, 1.0))


def test_sweep_closes_when_a_leg_goes_stale_and_evicts_silent_legs() -> None:
    sc = Scanner(ScanSettings(min_edge_bps=10.0, max_quote_age_ms=1000.0, evict_after_ms=60_000.0))
    closed: list[Opportunity] = []
    sc.listeners.append(lambda e, o: closed.append(o) if e == "close" else None)
    a, b = inst("aaa"), inst("bbb")
    sc.on_quote(a, quote(a, 99.9, 1.0, 100.0, 1.0), NOW, STATUS)
    sc.on_quote(b, quote(b, 101.0, 1.0, 101.1, 1.0), NOW, STATUS)
    assert sc.lifecycle.active
    sc.sweep(NOW + 2 * S, STATUS)
    assert not sc.lifecycle.active and closed[0].ts_ns == NOW + 2 * S
    sc.sweep(NOW + 61 * S, STATUS)
    assert sc.legs == {}


def test_an_update_reevaluates_only_its_asset() -> None:
    sc = Scanner(ScanSettings(min_edge_bps=10.0))
    calls: list[str] = []
    real = sc._pair

    def spy(asset: str, *args: object) -> object:
        calls.append(asset)
        return real(asset, *args)  # type: ignore[arg-type]

    sc._pair = spy  # type: ignore[method-assignment]
    for asset in ("BTC", "ETH", "SOL"):
        for v in ("aaa", "bbb", "ccc"):
            i = inst(v, asset=asset)
            sc.on_quote(i, quote(i, 99.9, 1.0, 100.0, 1.0), NOW, STATUS)
    calls.clear()
    i = inst("ccc", asset="ETH")
    sc.on_quote(i, quote(i, 101.0, 1.0, 101.1, 1.0), NOW, STATUS)
    # ccc now bids above aaa's and bbb's asks: exactly those two candidates are evaluated.
    assert calls == ["ETH"] * 2


# -- funding carry -------------------------------------------------------------------------
H = 3600 * S


def funding(i: Instrument, rate: float, interval_h: float, next_in_h: float, predicted: float | None = None,
            recv_ns: int = NOW) -> Funding:
    return Funding(venue=i.venue, symbol=i.symbol, venue_symbol=i.venue_symbol, rate=rate, predicted_rate=predicted,
                   interval_h=interval_h, next_funding_ns=NOW + int(next_in_h * H), ts_exchange_ns=recv_ns,
                   recv_ns=recv_ns)


def carry_scanner(fee: float = 0.0001, **settings: object) -> tuple[Scanner, Instrument, Instrument]:
    sc = Scanner(ScanSettings(funding_notional=10_000.0, funding_horizon_h=24.0, **settings))  # type: ignore[arg-type]
    x, y = inst("aaa", taker_fee=fee), inst("bbb", taker_fee=fee)
    for i in (x, y):  # books tight and deep around 100
        sc.on_book(i, book(i, [(99.99, 1000.0)], [(100.01, 1000.0)]), NOW, STATUS)
    return sc, x, y


def test_one_hour_interval_against_eight_hours() -> None:
    sc, x, y = carry_scanner()
    sc.on_funding(x, funding(x, 0.0001, 8.0, next_in_h=1.0), NOW, STATUS)   # 0.00125 %/h
    sc.on_funding(y, funding(y, 0.0001, 1.0, next_in_h=0.5), NOW, STATUS)   # 0.01 %/h
    [o] = [o for o in sc.lifecycle.active.values() if o.kind == "funding"]
    assert o.id == "funding:BTC:aaa:bbb" and (o.buy_venue, o.sell_venue) == ("aaa", "bbb")  # long aaa, short bbb
    assert o.apr == pytest.approx((0.0001 / 1 - 0.0001 / 8) * 24 * 365)  # 76.65 %
    # Settlements in 24 h: aaa at 1, 9, 17 h (3); bbb at 0.5, 1.5, ..., 23.5 h (24).
    size = 10_000.0 / 100.0
    received = size * 100.0 * 0.0001 * 24 - size * 100.0 * 0.0001 * 3  # 24 - 3 = 21
    crossing = (size * 100.01 - size * 100.0) + (size * 100.0 - size * 99.99)  # 2
    fees = 0.0001 * size * 100.01 + 0.0001 * size * 99.99  # 2
    assert o.funding_quote == pytest.approx(21.0)
    assert o.net_carry_quote == pytest.approx(received - 2 * (crossing + fees))  # 13
    assert (o.long_interval_h, o.short_interval_h) == (8.0, 1.0)


def test_carry_fees_and_spread_can_eat_the_differential() -> None:
    sc, x, y = carry_scanner(fee=0.0005)
    sc.on_funding(x, funding(x, 0.0001, 8.0, next_in_h=1.0), NOW, STATUS)
    sc.on_funding(y, funding(y, 0.0001, 1.0, next_in_h=0.5), NOW, STATUS)
    # fees now 10 per trade: 21 - 2 * (2 + 10) < 0
    assert not [o for o in sc.lifecycle.active.values() if o.kind == "funding"]
    assert sc.rejections["funding_below_threshold"] >= 1


def test_predicted_rate_is_used_after_the_first_settlement() -> None:
    sc, x, y = carry_scanner()
    sc.on_funding(x, funding(x, 0.0, 8.0, next_in_h=1.0), NOW, STATUS)
    sc.on_funding(y, funding(y, 0.0003, 8.0, next_in_h=2.0, predicted=0.0006), NOW, STATUS)
    [o] = [o for o in sc.lifecycle.active.values() if o.kind == "funding"]
    assert o.funding_quote == pytest.approx(10_000.0 * (0.0003 + 0.0006 * 2))  # settlements at 2, 10, 18 h
    assert o.predicted_apr == pytest.approx(0.0006 / 8 * 24 * 365)


def test_stale_funding_is_suppressed() -> None:
    sc, x, y = carry_scanner(funding_max_age_ms=60_000.0)
    sc.on_funding(x, funding(x, 0.0, 8.0, 1.0, recv_ns=NOW - 120 * S), NOW, STATUS)
    sc.on_funding(y, funding(y, 0.001, 8.0, 1.0), NOW, STATUS)
    assert not [o for o in sc.lifecycle.active.values() if o.kind == "funding"]
    assert sc.rejections["funding_stale"] >= 1


def test_interval_filter() -> None:
    for mode, expected in (("matching", 0), ("different", 1), ("any", 1)):
        sc, x, y = carry_scanner(funding_intervals=mode)
        sc.on_funding(x, funding(x, 0.0001, 8.0, 1.0), NOW, STATUS)
        sc.on_funding(y, funding(y, 0.0001, 1.0, 0.5), NOW, STATUS)
        assert len([o for o in sc.lifecycle.active.values() if o.kind == "funding"]) == expected, mode


@pytest.mark.parametrize(("next_in_h", "interval", "horizon", "n"),
                         [(1.0, 8.0, 24.0, 3), (0.5, 1.0, 24.0, 24), (25.0, 8.0, 24.0, 0), (24.0, 8.0, 24.0, 1),
                          (-3.0, 8.0, 24.0, 3)])
def test_settlements_before_the_horizon(next_in_h: float, interval: float, horizon: float, n: int) -> None:
    x = inst("aaa")
    assert settlements(funding(x, 0.0, interval, next_in_h), NOW, int(horizon * H)) == n
    assert math.isfinite(n)


def test_liquidity_floors_apply_where_the_venue_publishes_them() -> None:
    sc, x, y = carry_scanner(funding_min_volume_quote=1e6, funding_min_open_interest_quote=5e5)
    thin = funding(y, 0.0001, 1.0, next_in_h=0.5)
    thin = Funding(**{**{f: getattr(thin, f) for f in thin.__struct_fields__}, "volume_24h_quote": 2e5,
                      "mark_px": 100.0, "open_interest": 1e4})  # volume 200k < 1M
    sc.on_funding(x, funding(x, 0.0001, 8.0, next_in_h=1.0), NOW, STATUS)  # publishes neither: not filtered
    sc.on_funding(y, thin, NOW, STATUS)
    assert not [o for o in sc.lifecycle.active.values() if o.kind == "funding"]
    assert sc.rejections["funding_illiquid"] >= 1
    deep = Funding(**{**{f: getattr(thin, f) for f in thin.__struct_fields__}, "volume_24h_quote": 5e6})
    sc.on_funding(y, deep, NOW, STATUS)  # OI 1e4 x 100 = 1M >= 500k, volume 5M >= 1M
    assert [o.id for o in sc.lifecycle.active.values() if o.kind == "funding"] == ["funding:BTC:aaa:bbb"]
