"""EngineView: the engine's state as execution and accounting read it."""

from __future__ import annotations

from paper_helpers import MS, T0, Market, S, inst
from perparb.execution import MarketView
from perparb.paper.market import EngineView

BTC = inst()


def test_engine_view_reads_books_funding_instruments_and_the_clock() -> None:
    m = Market(BTC)
    view: MarketView = m.view
    assert view.instrument("okx", BTC.venue_symbol) == BTC and view.instrument("okx", "NOPE") is None
    assert view.book("okx", BTC.venue_symbol) is None and view.is_stale("okx", BTC.venue_symbol)
    m.snapshot(BTC, [(99.0, 1.0)], [(101.0, 2.0)], at=T0 + S)
    sb = view.book("okx", BTC.venue_symbol)
    assert sb is not None and sb.book.best_ask() == (101.0, 2.0)
    assert view.now_ns == T0 + S and not view.is_stale("okx", BTC.venue_symbol)
    assert m.view.mark_px("okx", BTC.venue_symbol) == 100.0  # mid, no mark published
    m.funding(BTC, 0.0001, T0 + 8 * 3600 * S, at=T0 + 2 * S, mark=100.5)
    assert view.funding("okx", BTC.venue_symbol).rate == 0.0001  # type: ignore[union-attr]
    assert m.view.mark_px("okx", BTC.venue_symbol) == 100.5  # the venue's mark wins
    fired: list[tuple[int, int]] = []
    view.call_at(T0 + 3 * S, lambda due: fired.append((due, view.now_ns)))
    m.advance(T0 + 4 * S)
    assert fired == [(T0 + 3 * S, T0 + 3 * S)]


def test_staleness_follows_the_scanner_limits_and_the_connection() -> None:
    m = Market(BTC)
    m.engine.scanner.settings.venue_max_age_ms["okx"] = 500.0
    view = EngineView(m.engine)  # reads the limits when built
    m.snapshot(BTC, [(99.0, 1.0)], [(101.0, 2.0)], at=T0)
    m.advance(T0 + 500 * MS)
    assert not view.is_stale("okx", BTC.venue_symbol)
    m.advance(T0 + 501 * MS)
    assert view.is_stale("okx", BTC.venue_symbol)
    m.snapshot(BTC, [(99.0, 1.0)], [(101.0, 2.0)], at=T0 + 600 * MS)
    assert not view.is_stale("okx", BTC.venue_symbol)
    m.engine.set_connected("okx", False, T0 + 600 * MS)
    assert view.is_stale("okx", BTC.venue_symbol)
