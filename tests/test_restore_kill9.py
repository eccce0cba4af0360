"""kill -9 mid-run, restart: positions, balances and open orders come back exactly, and no
fill is lost or duplicated (a real subprocess, a real SIGKILL, the real SQLite journal)."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import pytest

from conftest import PG_URL

DRIVER = Path(__file__).resolve().parent / "paper_driver.py"
STEPS = 900


def _run(ledger: Path | str, *extra: str) -> dict:  # type: ignore[type-arg]
    out = subprocess.run([sys.executable, str(DRIVER), str(ledger), str(STEPS), *extra], capture_output=True,
                         text=True, timeout=300, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["final"]  # type: ignore[no-any-return]


def _rows(ledger: Path | str, kind: str) -> list[tuple[str, str, str, str, str]]:
    if isinstance(ledger, str):  # postgresql://...#schema
        import psycopg

        url, _, schema = ledger.partition("#")
        with psycopg.connect(url) as pg:
            return pg.execute(f'SELECT ref, side, qty::text, px::text, amount::text FROM "{schema}".journal '  # type: ignore[return-value]
                              "WHERE kind = %s ORDER BY seq", (kind,)).fetchall()
    db = sqlite3.connect(ledger)
    return db.execute("SELECT ref, side, qty, px, amount FROM journal WHERE kind = ? ORDER BY seq", (kind,)).fetchall()


@pytest.fixture(params=["sqlite", "postgres"])
def ledgers(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Path | str, Path | str]:
    """Where the uninterrupted run and the killed one journal."""
    if request.param == "sqlite":
        return tmp_path / "whole.sqlite", tmp_path / "killed.sqlite"
    schema = request.getfixturevalue("pg_schema")
    return f"{PG_URL}#{schema}_whole", f"{PG_URL}#{schema}_killed"


def test_kill_9_mid_run_then_restart_restores_exactly(ledgers: tuple[Path | str, Path | str]) -> None:
    whole, killed = ledgers
    expected = _run(whole)

    proc = subprocess.Popen([sys.executable, str(DRIVER), str(killed), str(STEPS), "--sleep-ms", "3"],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("step ") and int(line.split()[1]) >= STEPS // 3:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    orders_at_kill = len(_rows(killed, "order"))
    assert 0 < orders_at_kill < STEPS  # it really died mid-run
    fills_at_kill = _rows(killed, "fill")

    resumed = _run(killed)

    # The restarted run ends exactly where the uninterrupted one did.
    assert resumed["positions"] == expected["positions"]
    assert resumed["collateral"] == expected["collateral"]
    assert resumed["open_orders"] == expected["open_orders"]
    assert resumed["counts"]["unknown_fills"] == 0
    fills = _rows(killed, "fill")
    assert fills == _rows(whole, "fill")  # same fills, same order, none lost, none twice
    assert fills[: len(fills_at_kill)] == fills_at_kill
    assert len({f[0] for f in fills}) == len(fills)
    assert _rows(killed, "funding_payment") == _rows(whole, "funding_payment")
    assert len(_rows(killed, "order")) == STEPS

    # An independent recomputation from the journal's fills: exact rationals, average cost.
    qty = cost = realized = Fraction(0)
    fees = Decimal(0)
    for _, side, q_text, px_text, fee_text in fills:
        q, px = Fraction(Decimal(q_text)), Fraction(Decimal(px_text))
        signed = q if side == "buy" else -q
        fees += Decimal(fee_text)
        if qty == 0 or (qty > 0) == (signed > 0):
            qty, cost = qty + signed, cost + signed * px
            continue
        closed = min(abs(signed), abs(qty))
        entry = cost / qty
        realized += closed * (px - entry) * (1 if qty > 0 else -1)
        cost -= entry * closed * (1 if qty > 0 else -1)
        qty -= closed * (1 if qty > 0 else -1)
        rest = abs(signed) - closed
        if qty == 0:
            cost = Fraction(0)
        if rest:
            qty = rest if signed > 0 else -rest
            cost = qty * px
    funding = sum((Decimal(r[4]) for r in _rows(killed, "funding_payment")), Decimal(0))
    size, _, real, fund, fee = resumed["positions"]["okx|BTC/USDT:USDT"]
    assert Decimal(size) == Decimal(qty.numerator) / Decimal(qty.denominator)
    assert Decimal(fee) == fees and Decimal(fund) == funding
    assert abs(Fraction(Decimal(real)) - realized) < Fraction(1, 10**15)
    collateral = Fraction(100_000) + realized - Fraction(fees) + Fraction(funding)
    assert abs(Fraction(Decimal(resumed["collateral"]["okx|USDT"])) - collateral) < Fraction(1, 10**15)
