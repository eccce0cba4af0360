"""The ledger journal on SQLite and on the real PostgreSQL server, and the journaling bus."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from conftest import PG_URL
from perparb.bus import EXECUTIONS, LEDGER, ORDERS, RISK, InProcessBus
from perparb.bus.messages import Fill, FundingPayment, KillSwitch, Message, Order, OrderUpdate, Transfer
from perparb.config import StorageSettings
from perparb.store.ledger import (
    JournaledBus,
    Ledger,
    LedgerError,
    OrderFold,
    PostgresLedger,
    SqliteLedger,
    ledger_path,
)


def _order(n: int, qty: float = 0.3, ts: int = 1) -> Order:
    return Order(id=f"o{n}", intent_id=f"i{n}", strategy="s", ts_ns=ts, venue="okx", symbol="BTC/USDT:USDT",
                 venue_symbol="BTC-USDT-SWAP", side="buy", qty=qty, order_type="ioc", limit_px=100.1)


def _fill(n: int, order: str = "o1", qty: float = 0.1, px: float = 100.1, fee: float = 0.005005) -> Fill:
    return Fill(id=f"{order}-{n}", ts_ns=10 + n, venue="okx", symbol="BTC/USDT:USDT", venue_symbol="BTC-USDT-SWAP",
                side="buy", qty=qty, px=px, fee=fee, fee_asset="USDT", liquidity="taker", order_id=order,
                intent_id="i1")


EVENTS: list[Message] = [
    Transfer(id="t1", ts_ns=0, venue="okx", asset="USDT", amount=10_000.0, note="paper start"),
    _order(1),
    _fill(1),
    _fill(2, qty=0.2, px=100.05, fee=0.010005),
    OrderUpdate(order_id="o1", intent_id="i1", ts_ns=12, venue="okx", symbol="BTC/USDT:USDT", status="filled",
                filled_qty=0.30000000000000004, avg_px=100.06666666666666),
    FundingPayment(id="fund:okx:BTC-USDT-SWAP:100", ts_ns=100, venue="okx", symbol="BTC/USDT:USDT",
                   venue_symbol="BTC-USDT-SWAP", position_qty=0.3, mark_px=100.2, rate=0.0001, amount=-0.003006,
                   asset="USDT"),
    KillSwitch(ts_ns=200, engaged=True, reason="manual"),
]


@pytest.fixture(params=["sqlite", "postgres"])
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    if request.param == "sqlite":
        led: Ledger = SqliteLedger(tmp_path / "ledger.sqlite")
    else:
        led = PostgresLedger(PG_URL, schema=request.getfixturevalue("pg_schema"))
    yield led
    led.close()


def test_events_round_trip_in_order_and_amounts_are_stored_exactly(ledger: Ledger) -> None:
    assert ledger.append(EVENTS) == [True] * len(EVENTS)
    back = [m for _, m in ledger.events()]
    assert back == EVENTS
    seqs = [s for s, _ in ledger.events()]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(EVENTS)
    assert [m for _, m in ledger.events(after_seq=seqs[2])] == EVENTS[3:]
    # Exact columns: the decimal each float was written as, not its binary expansion.
    if isinstance(ledger, SqliteLedger):
        rows = ledger.db.execute("SELECT qty, px, amount FROM journal WHERE kind = 'fill' ORDER BY seq").fetchall()
        fee_sum = ledger.db.execute("SELECT amount FROM journal WHERE kind = 'fill'").fetchall()
        total = sum(Decimal(a) for (a,) in fee_sum)
    else:
        rows = ledger.db.execute("SELECT qty::text, px::text, amount::text FROM journal WHERE kind = 'fill' "
                                 "ORDER BY seq").fetchall()
        (total,) = ledger.db.execute("SELECT sum(amount) FROM journal WHERE kind = 'fill'").fetchone()  # type: ignore[misc]
    assert rows == [("0.1", "100.1", "0.005005"), ("0.2", "100.05", "0.010005")]
    assert total == Decimal("0.01501")  # float addition would give 0.015009999999999999


def test_a_fill_appended_twice_is_journaled_once(ledger: Ledger) -> None:
    assert ledger.append([_order(1), _fill(1)]) == [True, True]
    assert ledger.append([_fill(1), _fill(2)]) == [False, True]
    assert [m.id for _, m in ledger.events() if isinstance(m, Fill)] == ["o1-1", "o1-2"]
    assert ledger.counts["duplicates"] == 1 and ledger.counts["written"] == 3


def test_the_journal_is_append_only(ledger: Ledger) -> None:
    ledger.append(EVENTS[:3])
    with pytest.raises(Exception, match="append-only"):
        ledger.db.execute("UPDATE journal SET qty = '5' WHERE kind = 'fill'")  # type: ignore[attr-defined]
    with pytest.raises(Exception, match="append-only"):
        ledger.db.execute("DELETE FROM journal")  # type: ignore[attr-defined]


def test_sqlite_is_wal_and_survives_reopening(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    led = SqliteLedger(path, sync="full")
    assert led.db.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert led.db.execute("PRAGMA synchronous").fetchone() == (2,)  # FULL
    led.append(EVENTS)
    led.close()
    again = SqliteLedger(path)
    assert again.db.execute("PRAGMA synchronous").fetchone() == (1,)  # NORMAL, the default
    assert [m for _, m in again.events()] == EVENTS
    with pytest.raises(ValueError, match="ledger_sync"):
        SqliteLedger(path, sync="sometimes")


def test_where_the_sqlite_ledger_lives(tmp_path: Path) -> None:
    assert ledger_path(StorageSettings()) == Path(os.environ["PERPARB_HOME"]) / "ledger.sqlite"
    assert ledger_path(StorageSettings(dir=tmp_path)) == tmp_path / "ledger.sqlite"
    assert ledger_path(StorageSettings(dir=tmp_path, ledger=tmp_path / "x.db")) == tmp_path / "x.db"


def test_orders_fold_open_orders_and_counts_fills_of_unknown_orders(caplog: pytest.LogCaptureFixture) -> None:
    fold = OrderFold()
    for m in [_order(1), _order(2), _fill(1), OrderUpdate(order_id="o2", intent_id="i2", ts_ns=3, venue="okx",
                                                           symbol="BTC/USDT:USDT", status="accepted"),
              _fill(1, order="o2", qty=0.1, px=99.0), _fill(2, order="o2", qty=0.1, px=101.0),
              OrderUpdate(order_id="o1", intent_id="i1", ts_ns=3, venue="okx", symbol="BTC/USDT:USDT",
                          status="expired", filled_qty=0.1), _fill(1, order="ghost")]:
        fold.apply(m)
    (oo,) = fold.open_orders()
    assert oo.order.id == "o2" and oo.status == "accepted" and oo.fills == 2
    assert oo.filled_qty == pytest.approx(0.2) and oo.avg_px == pytest.approx(100.0)
    assert fold.counts["unknown_order_fills"] == 1
    assert "unknown order ghost" in caplog.text


def test_journaled_bus_writes_before_any_subscriber_sees_the_message(tmp_path: Path) -> None:
    led = SqliteLedger(tmp_path / "l.sqlite")
    reader = sqlite3.connect(tmp_path / "l.sqlite")
    inner = InProcessBus()
    bus = JournaledBus(inner, led)
    seen: list[tuple[str, int]] = []
    # A reader on another connection already finds the fill committed when it is told of it.
    inner.subscribe(EXECUTIONS, lambda m: seen.append(
        (m.id, reader.execute("SELECT count(*) FROM journal WHERE ref = ?", (m.id,)).fetchone()[0])))  # type: ignore[attr-defined]
    bus.publish(ORDERS, _order(1))
    bus.publish(EXECUTIONS, _fill(1))
    bus.publish(EXECUTIONS, _fill(1))  # a duplicate is neither journaled again nor delivered again
    assert seen == [("o1-1", 1)]
    assert bus.counts["duplicates"] == 1
    # Restore: a new bus over the same journal knows the open order and its fill.
    bus2 = JournaledBus(InProcessBus(), SqliteLedger(tmp_path / "l.sqlite"))
    events = bus2.restore()
    assert [m for _, m in events] == [_order(1), _fill(1)]
    (oo,) = bus2.orders.open_orders()
    assert oo.order == _order(1) and oo.filled_qty == 0.1 and oo.fills == 1


def test_a_ledger_write_failure_engages_the_kill_switch_and_withholds_new_orders(tmp_path: Path) -> None:
    path = tmp_path / "l.sqlite"
    led = SqliteLedger(path, busy_timeout_s=0.05)
    inner = InProcessBus()
    bus = JournaledBus(inner, led)
    got: list[Message] = []
    for ch in (ORDERS, EXECUTIONS, RISK, LEDGER):
        inner.subscribe(ch, got.append)
    blocker = sqlite3.connect(path, isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # another writer holds the database: our writes fail
    bus.publish(ORDERS, _order(1, ts=7))
    bus.publish(EXECUTIONS, _fill(1, order="o0"))
    assert [type(m).__name__ for m in got] == ["KillSwitch", "OrderUpdate", "Fill"]
    ks, rej, fill = got
    assert isinstance(ks, KillSwitch) and ks.engaged and ks.reason == "ledger_write_failed" and ks.ts_ns == 7
    assert isinstance(rej, OrderUpdate) and rej.status == "rejected" and rej.reason.startswith("ledger_write_failed")
    assert fill == _fill(1, order="o0")  # a fill that happened is still told (risk must see it)
    assert bus.counts["write_failures"] == 2 and bus.counts["withheld_orders"] == 1 and bus.halted
    blocker.execute("ROLLBACK")
    bus.publish(ORDERS, _order(2))
    assert [m for _, m in led.events()] == [_order(2)]  # writes resume; the switch stays engaged
    assert sum(isinstance(m, KillSwitch) for m in got) == 1


def test_unreadable_ledger_is_named(tmp_path: Path) -> None:
    bad = tmp_path / "not-a-db.sqlite"
    bad.write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LedgerError, match=r"not-a-db\.sqlite"):
        SqliteLedger(bad)
