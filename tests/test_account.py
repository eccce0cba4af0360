"""Perpetual accounting: positions, PnL split, margin, liquidation and funding, worked out by hand."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from paper_helpers import HOUR, T0, Market, S, Tape, inst
from perparb.bus import EXECUTIONS, LEDGER, PORTFOLIO, InProcessBus
from perparb.bus.messages import Fill, FundingPayment, PnlUpdate, PositionUpdate, Transfer
from perparb.paper.account import Accounting, Accounts, MarginSettings
from perparb.store.ledger import JournaledBus, SqliteLedger

LIN = inst(venue="okx", venue_symbol="BTC-USDT-SWAP")
INV = inst(venue="okx", venue_symbol="BTC-USD-SWAP", symbol="BTC/USD:BTC", quote="USD", settle="BTC", inverse=True,
           contract_size=100.0)

_n = 0


def fill(i, side: str, qty: float, px: float, fee: float = 0.0, ts: int = T0) -> Fill:  # type: ignore[no-untyped-def]
    global _n
    _n += 1
    return Fill(id=f"f{_n}", ts_ns=ts, venue=i.venue, symbol=i.symbol, venue_symbol=i.venue_symbol, side=side,
                qty=qty, px=px, fee=fee, fee_asset=i.settle, liquidity="taker", order_id=f"o{_n}", intent_id="x")


def transfer(venue: str, asset: str, amount: float, n: str = "t1") -> Transfer:
    return Transfer(id=n, ts_ns=T0, venue=venue, asset=asset, amount=amount)


def test_linear_average_entry_realized_pnl_fees_and_a_flip() -> None:
    a = Accounts()
    a.apply(transfer("okx", "USDT", 10_000.0))
    for f in (fill(LIN, "buy", 1.0, 100.0, 0.05), fill(LIN, "buy", 1.0, 110.0, 0.055),
              fill(LIN, "sell", 1.5, 120.0, 0.09), fill(LIN, "sell", 1.0, 90.0, 0.045)):
        a.apply(f)
    pos = a.positions[("okx", LIN.symbol)]
    # entry 105 after the buys; selling 1.5 at 120 realizes 1.5 * 15 = 22.5; selling 1.0 at 90
    # closes the last 0.5 (0.5 * -15 = -7.5) and opens 0.5 short at 90.
    assert pos.size == Decimal("-0.5") and pos.entry == Decimal(90)
    assert pos.realized == Decimal("15.0") and pos.fees == Decimal("0.24")
    assert a.accounts["okx"].collateral["USDT"] == Decimal("10014.76")  # exact: 10000 + 15 - 0.24
    assert pos.unrealized(Decimal(80)) == Decimal(5)  # short 0.5 from 90 marked at 80
    again = fill(LIN, "buy", 0.5, 80.0)
    assert a.apply(again) and not a.apply(again)  # the same fill twice folds once
    assert pos.size == 0 and pos.realized == Decimal("20.0")


def test_inverse_contract_pnl_in_the_coin() -> None:
    a = Accounts()
    a.apply(transfer("okx", "BTC", 1.0))
    a.apply(fill(INV, "buy", 0.2, 50_000.0))  # 10,000 USD of contracts
    a.apply(fill(INV, "buy", 0.1, 40_000.0))  # 4,000 USD more: 14,000 USD for 0.3 BTC
    pos = a.positions[("okx", "BTC/USD:BTC")]
    assert pos.inverse and pos.size == Decimal(14_000) and pos.basis == Decimal("0.3")
    assert abs(pos.entry - Decimal(140_000) / 3) < Decimal("1e-18")  # harmonic average, 46,666.67
    # Selling 7,000 USD of contracts at 56,000 (0.125 BTC): 7000/e - 7000/56000 = 0.15 - 0.125 BTC.
    a.apply(fill(INV, "sell", 0.125, 56_000.0, fee=0.0000625))
    assert pos.realized == Decimal("0.025") and pos.size == Decimal(7000)
    assert a.accounts["okx"].collateral["BTC"] == Decimal("1.0249375")  # 1 + 0.025 - 0.0000625
    assert pos.unrealized(Decimal(70_000)) == Decimal("0.05")  # 0.15 - 7000/70000
    assert pos.qty(Decimal(70_000)) == Decimal("0.1")  # base exposure at the mark


def _accounting(*instruments, margins: MarginSettings | None = None):  # type: ignore[no-untyped-def]
    m = Market(*instruments)
    bus = InProcessBus()
    tape = Tape(bus, PORTFOLIO, LEDGER)
    acct = Accounting(bus, m.view, margins or MarginSettings(maintenance_margin=0.005), mark_interval_ms=60_000)
    return m, bus, tape, acct


@pytest.mark.parametrize(("side", "collateral", "expected"), [
    ("buy", 5_000.0, (50_000 - 5_000) / (1 - 0.005)),  # 5000 + (P - 50000) = 0.005 P
    ("sell", 5_000.0, (50_000 + 5_000) / (1 + 0.005)),  # 5000 + (50000 - P) = 0.005 P
    ("buy", 60_000.0, None),  # more collateral than the position is worth: never liquidated
])
def test_linear_liquidation_price_and_distance(side: str, collateral: float, expected: float | None) -> None:
    m, bus, tape, _ = _accounting(LIN)
    m.snapshot(LIN, [(49_999.0, 5.0)], [(50_001.0, 5.0)], at=T0)  # mark = mid = 50,000
    bus.publish(LEDGER, transfer("okx", "USDT", collateral))
    bus.publish(EXECUTIONS, fill(LIN, side, 1.0, 50_000.0))
    pu = tape.of(PositionUpdate)[-1]
    assert pu.mark_px == 50_000.0 and pu.qty == (1.0 if side == "buy" else -1.0)
    if expected is None:
        assert pu.liquidation_px is None and pu.liquidation_distance is None
        return
    assert pu.liquidation_px == pytest.approx(expected, rel=1e-12)
    assert pu.liquidation_distance == pytest.approx(abs(50_000 - expected) / 50_000, rel=1e-12)
    assert pu.initial_margin == pytest.approx(5_000.0) and pu.maintenance_margin == pytest.approx(250.0)
    assert pu.leverage == pytest.approx(50_000 / collateral)


@pytest.mark.parametrize(("side", "collateral", "expected"), [
    # long 10,000 USD from 50,000 with 0.1 BTC: 0.1 + 10000(1/50000 - 1/P) = 0.005 * 10000 / P
    ("buy", 0.1, 10_000 * 1.005 / (0.1 + 0.2)),
    # short: 0.1 - 10000(1/50000 - 1/P) = 0.005 * 10000 / P  ->  P = 10000 * 0.995 / (0.2 - 0.1)
    ("sell", 0.1, 10_000 * 0.995 / (0.2 - 0.1)),
    ("sell", 0.25, None),  # more coin than the short's entry value: a hedge, never liquidated
])
def test_inverse_liquidation_price(side: str, collateral: float, expected: float | None) -> None:
    m, bus, tape, _ = _accounting(INV)
    m.funding(INV, 0.0, T0 + 8 * HOUR, at=T0, mark=50_000.0)
    m.snapshot(INV, [(49_990.0, 5.0)], [(50_020.0, 5.0)], at=T0)
    bus.publish(LEDGER, transfer("okx", "BTC", collateral))
    bus.publish(EXECUTIONS, fill(INV, side, 0.2, 50_000.0))
    pu = tape.of(PositionUpdate)[-1]
    assert pu.mark_px == 50_000.0 and pu.settle == "BTC" and pu.notional == pytest.approx(10_000.0)
    assert pu.maintenance_margin == pytest.approx(0.005 * 0.2)  # in BTC
    if expected is None:
        assert pu.liquidation_px is None
        return
    assert pu.liquidation_px == pytest.approx(expected, rel=1e-12)
    assert pu.liquidation_distance == pytest.approx(abs(50_000 - expected) / 50_000, rel=1e-12)


def test_funding_paid_at_each_contracts_own_settlements_1h_4h_8h_and_inverse(tmp_path: Path) -> None:
    h8 = inst(venue="okx", venue_symbol="BTC-USDT-SWAP", funding_interval_h=8.0)
    h4 = inst(venue="bybit", venue_symbol="BTCUSDT", funding_interval_h=4.0)
    h1 = inst(venue="hyperliquid", venue_symbol="BTC", symbol="BTC/USDC:USDC", quote="USDC", settle="USDC",
              funding_interval_h=1.0)
    inv = INV
    m = Market(h8, h4, h1, inv)
    ledger = SqliteLedger(tmp_path / "l.sqlite")
    inner = InProcessBus()
    bus = JournaledBus(inner, ledger)
    tape = Tape(inner, LEDGER, PORTFOLIO)
    acct = Accounting(bus, m.view, mark_interval_ms=600_000)
    rate_1h = [-0.00005 * k for k in range(1, 9)]  # a new rate for each hourly settlement
    m.funding(h8, 0.0001, T0 + 8 * HOUR, at=T0, mark=50_000.0)
    m.funding(h4, 0.0002, T0 + 4 * HOUR, at=T0, mark=50_010.0)
    m.funding(h1, rate_1h[0], T0 + HOUR, at=T0, mark=49_990.0)
    m.funding(inv, 0.0001, T0 + 8 * HOUR, at=T0, mark=50_000.0)
    bus.publish(EXECUTIONS, fill(h8, "buy", 1.0, 50_000.0, ts=T0 + S))
    bus.publish(EXECUTIONS, fill(h4, "sell", 2.0, 50_000.0, ts=T0 + S))
    bus.publish(EXECUTIONS, fill(h1, "buy", 0.5, 50_000.0, ts=T0 + S))
    bus.publish(EXECUTIONS, fill(inv, "buy", 0.2, 50_000.0, ts=T0 + S))  # 10,000 USD of contracts
    for hour in range(1, 9):
        at = T0 + hour * HOUR + S  # each venue rolls its next settlement just after one passes
        m.funding(h1, rate_1h[hour] if hour < 8 else 0.0, T0 + (hour + 1) * HOUR, at=at, mark=49_990.0)
        if hour % 4 == 0:
            m.funding(h4, 0.0002, T0 + (hour + 4) * HOUR, at=at, mark=50_010.0)
    m.advance(T0 + 8 * HOUR + 2 * S)
    pays = tape.of(FundingPayment)
    by_venue: dict[str, list[FundingPayment]] = {}
    for p in pays:
        by_venue.setdefault(p.venue_symbol, []).append(p)
    # 8 h long 1 BTC at 50,000, rate 1e-4: pays 5 USDT once.
    assert [(p.ts_ns, p.amount, p.asset) for p in by_venue["BTC-USDT-SWAP"]] == [(T0 + 8 * HOUR, -5.0, "USDT")]
    # 4 h short 2 BTC at 50,010, rate 2e-4: receives 20.004 USDT at 4 h and 8 h.
    assert [p.ts_ns for p in by_venue["BTCUSDT"]] == [T0 + 4 * HOUR, T0 + 8 * HOUR]
    assert all(p.amount == pytest.approx(2 * 50_010 * 0.0002) for p in by_venue["BTCUSDT"])
    # 1 h long 0.5 at 49,990: each hour's own (negative) rate, so the long receives.
    hourly = by_venue["BTC"]
    assert [p.ts_ns for p in hourly] == [T0 + k * HOUR for k in range(1, 9)]
    assert [p.amount for p in hourly] == pytest.approx([0.5 * 49_990 * 0.00005 * k for k in range(1, 9)])
    assert [p.rate for p in hourly] == rate_1h
    # Inverse long 10,000 USD at mark 50,000: 0.2 BTC * 1e-4 paid in BTC.
    (pi,) = by_venue["BTC-USD-SWAP"]
    assert pi.asset == "BTC" and pi.amount == pytest.approx(-0.2 * 0.0001) and pi.position_qty == pytest.approx(0.2)
    # Journaled once each, and the fold of the journal gives the same funding PnL.
    assert ledger.counts["written"] == 4 + 1 + 2 + 8 + 1
    again = Accounts()
    again.replay(msg for _, msg in ledger.events())
    for key, pos in acct.book.positions.items():
        assert again.positions[key].funding == pos.funding != 0
    assert again.positions[("hyperliquid", "BTC/USDC:USDC")].funding == sum(
        Decimal(repr(p.amount)) for p in hourly)


def test_pnl_is_split_into_spread_funding_and_fees() -> None:
    m, bus, tape, _acct = _accounting(LIN)
    m.snapshot(LIN, [(79.0, 5.0)], [(81.0, 5.0)], at=T0)  # mark = mid = 80
    bus.publish(LEDGER, transfer("okx", "USDT", 10_000.0))
    for f in (fill(LIN, "buy", 1.0, 100.0, 0.05), fill(LIN, "buy", 1.0, 110.0, 0.055),
              fill(LIN, "sell", 1.5, 120.0, 0.09), fill(LIN, "sell", 1.0, 90.0, 0.045)):
        bus.publish(EXECUTIONS, f)
    bus.publish(LEDGER, FundingPayment(id="fp1", ts_ns=T0, venue="okx", symbol=LIN.symbol,
                                       venue_symbol=LIN.venue_symbol, position_qty=-0.5, mark_px=80.0, rate=0.001,
                                       amount=0.04, asset="USDT"))
    p = tape.of(PnlUpdate)[-1]
    # realized 22.5 - 7.5 = 15; short 0.5 from 90 at 80: +5 unrealized; funding +0.04; fees 0.24
    assert p.realized_pnl == 15.0 and p.unrealized_pnl == 5.0 and p.spread_pnl == 20.0
    assert p.funding_pnl == 0.04 and p.fees == pytest.approx(0.24)
    assert p.collateral == 10_000.0 and p.equity == pytest.approx(10_000 + 20 + 0.04 - 0.24)
    pu = tape.of(PositionUpdate)[-1]
    assert (pu.realized_pnl, pu.unrealized_pnl, pu.funding_pnl, pu.fees) == (15.0, 5.0, 0.04, pytest.approx(0.24))


def test_restore_folds_the_journal_and_publishes_the_positions_at_once() -> None:
    _m, _bus, tape, acct = _accounting(LIN, INV)
    acct.restore([transfer("okx", "USDT", 1_000.0), fill(LIN, "buy", 0.5, 100.0, 0.025),
                  transfer("okx", "BTC", 1.0, n="t2"), fill(INV, "sell", 0.2, 50_000.0)])
    ups = {p.symbol: p for p in tape.of(PositionUpdate)}
    # No market data yet: no mark, so quantities at entry (the inverse short: 10,000 USD = 0.2 BTC).
    assert ups[LIN.symbol].qty == 0.5 and ups[LIN.symbol].avg_entry_px == 100.0 and ups[LIN.symbol].mark_px == 0.0
    assert ups["BTC/USD:BTC"].qty == -0.2 and ups["BTC/USD:BTC"].avg_entry_px == 50_000.0
    assert acct.book.accounts["okx"].collateral == {"USDT": Decimal("999.975"), "BTC": Decimal(1)}
