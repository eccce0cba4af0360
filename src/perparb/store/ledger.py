"""The ledger: an append-only journal of everything that moves money or orders.

Orders, cancels, order updates, fills (with their fees), funding payments, transfers and
kill-switch events are appended in the order they happened; positions, balances and open
orders are folds of it (``perparb.paper.account``, ``OrderFold``), never stored state.
Amounts are exact: each float is read as the Decimal of its shortest repr (``0.1`` is
``Decimal("0.1")``) and stored as TEXT (SQLite) or NUMERIC (PostgreSQL); the message itself
is kept as JSON, whose floats round-trip exactly.

Backends: SQLite in WAL mode (the default, ``$PERPARB_HOME/ledger.sqlite``) and PostgreSQL
(psycopg 3) when ``storage.postgres_url`` is set. Durability: with ``sync = "normal"`` (the
default) a commit is in the WAL file, which survives the process being killed (kill -9)
but not necessarily an operating-system crash or power loss; ``sync = "full"`` fsyncs every
commit (and sets ``synchronous_commit = on`` on PostgreSQL, ``off`` under ``normal``),
which survives those too at a much lower append rate (see BENCHMARKS.md).

Every id'd event (order, fill, funding payment, transfer) is unique by (kind, id): appending
it twice writes it once, so a restart that replays its input cannot duplicate a fill.

``JournaledBus`` wraps the bus so that every journaled message is written (committed)
before any subscriber sees it. If a write fails, trading halts instead of continuing
unrecorded: a ``KillSwitch(engaged=True, reason="ledger_write_failed")`` is published,
new orders are withheld (answered with a ``rejected`` update), and facts that already
happened (fills, updates, funding) still reach readers so risk sees the exposure.
"""

from __future__ import annotations

import logging
import os
import sqlite3
from collections import Counter
from collections.abc import Iterable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import msgspec

from perparb.bus import EXECUTIONS, ORDERS, RISK, Bus, Handler
from perparb.bus.messages import (
    CancelOrder,
    Fill,
    FundingPayment,
    KillSwitch,
    Message,
    Order,
    OrderUpdate,
    TradingMessage,
    Transfer,
)
from perparb.execution import OpenOrder

if TYPE_CHECKING:
    from perparb.config import StorageSettings

log = logging.getLogger("perparb.ledger")

JOURNALED = (Order, CancelOrder, OrderUpdate, Fill, FundingPayment, Transfer, KillSwitch)
TERMINAL = frozenset({"rejected", "filled", "canceled", "expired"})
_decoder = msgspec.json.Decoder(TradingMessage)
_encoder = msgspec.json.Encoder()


class LedgerError(RuntimeError):
    """A journal write or read failed."""


def dec(x: float | None) -> Decimal | None:
    """The exact decimal a float was written as (its shortest repr)."""
    return None if x is None else Decimal(repr(float(x)))


def _text(x: float | None) -> str | None:
    d = dec(x)
    return None if d is None else format(d, "f")


def default_path() -> Path:
    return Path(os.environ.get("PERPARB_HOME", Path.home() / ".perparb")) / "ledger.sqlite"


Row = tuple[int, str, str | None, str | None, str | None, str | None, str | None,
            float | None, float | None, float | None, str | None, bytes]


def _row(msg: Message) -> Row:
    """(ts_ns, kind, ref, venue, symbol, order_id, side, qty, px, amount, asset, body)."""
    body = _encoder.encode(msg)
    if isinstance(msg, Fill):
        return (msg.ts_ns, "fill", msg.id, msg.venue, msg.symbol, msg.order_id, msg.side, msg.qty, msg.px, msg.fee,
                msg.fee_asset, body)
    if isinstance(msg, OrderUpdate):
        return (msg.ts_ns, "order_update", None, msg.venue, msg.symbol, msg.order_id, msg.status, msg.filled_qty,
                msg.avg_px, None, None, body)
    if isinstance(msg, Order):
        return (msg.ts_ns, "order", msg.id, msg.venue, msg.symbol, msg.id, msg.side, msg.qty, msg.limit_px, None,
                None, body)
    if isinstance(msg, FundingPayment):
        return (msg.ts_ns, "funding_payment", msg.id, msg.venue, msg.symbol, None, None, msg.position_qty,
                msg.mark_px, msg.amount, msg.asset, body)
    if isinstance(msg, Transfer):
        return (msg.ts_ns, "transfer", msg.id, msg.venue, None, None, None, None, None, msg.amount, msg.asset, body)
    if isinstance(msg, CancelOrder):
        return (msg.ts_ns, "cancel", None, msg.venue, None, msg.order_id, None, None, None, None, None, body)
    if isinstance(msg, KillSwitch):
        return (msg.ts_ns, "kill_switch", None, None, None, None, "engaged" if msg.engaged else "resumed", None, None,
                None, msg.reason, body)
    raise LedgerError(f"the ledger does not journal {type(msg).__name__} messages")


class Ledger(Protocol):
    backend: str
    counts: Counter[str]

    def append(self, msgs: Iterable[Message]) -> list[bool]:
        """Write ``msgs`` in one transaction; True for each written, False for a duplicate
        (same kind and id as one already journaled). Raises LedgerError on failure."""
        ...

    def events(self, after_seq: int = 0) -> Iterator[tuple[int, Message]]: ...

    def close(self) -> None: ...


_SQLITE_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    ts_ns INTEGER NOT NULL,
    kind TEXT NOT NULL,
    ref TEXT,
    venue TEXT, symbol TEXT, order_id TEXT, side TEXT,
    qty TEXT, px TEXT, amount TEXT, asset TEXT,
    body TEXT NOT NULL,
    UNIQUE (kind, ref)
);
CREATE INDEX IF NOT EXISTS journal_order ON journal (order_id);
CREATE TRIGGER IF NOT EXISTS journal_no_update BEFORE UPDATE ON journal
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
CREATE TRIGGER IF NOT EXISTS journal_no_delete BEFORE DELETE ON journal
BEGIN SELECT RAISE(ABORT, 'the journal is append-only'); END;
"""
_SQLITE_INSERT = ("INSERT INTO journal (ts_ns, kind, ref, venue, symbol, order_id, side, qty, px, amount, asset, body) "
                  "VALUES (?,?,?,?,?,?,?,?,?,?,?,?) ON CONFLICT (kind, ref) DO NOTHING")


class SqliteLedger:
    backend = "sqlite"

    def __init__(self, path: Path | str | None = None, sync: str = "normal", busy_timeout_s: float = 5.0) -> None:
        if sync not in ("normal", "full"):
            raise ValueError(f"storage.ledger_sync must be 'normal' or 'full', not {sync!r}")
        self.path = Path(path) if path is not None else default_path()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.counts: Counter[str] = Counter()
        try:
            self.db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False,
                                      timeout=busy_timeout_s)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute(f"PRAGMA synchronous={sync.upper()}")
            self.db.executescript(_SQLITE_SCHEMA)
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot open the ledger {self.path}: {exc}") from exc

    def append(self, msgs: Iterable[Message]) -> list[bool]:
        rows = [_row(m) for m in msgs]
        out: list[bool] = []
        cur = self.db.cursor()
        try:
            cur.execute("BEGIN IMMEDIATE")
            for r in rows:
                cur.execute(_SQLITE_INSERT, (*r[:7], _text(r[7]), _text(r[8]), _text(r[9]), r[10], r[11].decode()))
                out.append(cur.rowcount == 1)
            cur.execute("COMMIT")
        except sqlite3.Error as exc:
            if self.db.in_transaction:
                self.db.execute("ROLLBACK")
            self.counts["failures"] += 1
            raise LedgerError(f"ledger write to {self.path} failed: {exc}") from exc
        self._count(out)
        return out

    def _count(self, out: list[bool]) -> None:
        written = sum(out)
        self.counts["written"] += written
        self.counts["duplicates"] += len(out) - written

    def events(self, after_seq: int = 0) -> Iterator[tuple[int, Message]]:
        # A cursor of its own, read in pages: a long journal is never all in memory at once.
        try:
            cur = self.db.execute("SELECT seq, body FROM journal WHERE seq > ? ORDER BY seq", (after_seq,))
            while rows := cur.fetchmany(1000):
                for seq, body in rows:
                    yield seq, _decoder.decode(body)
        except sqlite3.Error as exc:
            raise LedgerError(f"cannot read the ledger {self.path}: {exc}") from exc

    def close(self) -> None:
        self.db.close()


_PG_SCHEMA = """
CREATE TABLE IF NOT EXISTS journal (
    seq BIGSERIAL PRIMARY KEY,
    ts_ns BIGINT NOT NULL,
    kind TEXT NOT NULL,
    ref TEXT,
    venue TEXT, symbol TEXT, order_id TEXT, side TEXT,
    qty NUMERIC, px NUMERIC, amount NUMERIC, asset TEXT,
    body JSONB NOT NULL,
    raw TEXT NOT NULL,
    UNIQUE (kind, ref)
);
CREATE INDEX IF NOT EXISTS journal_order ON journal (order_id);
CREATE OR REPLACE FUNCTION journal_append_only() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'the journal is append-only'; END $$;
DROP TRIGGER IF EXISTS journal_no_change ON journal;
CREATE TRIGGER journal_no_change BEFORE UPDATE OR DELETE ON journal
FOR EACH ROW EXECUTE FUNCTION journal_append_only();
"""
_PG_INSERT = ("INSERT INTO journal (ts_ns, kind, ref, venue, symbol, order_id, side, qty, px, amount, asset, body, raw) "
              "VALUES (%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s,%s) ON CONFLICT (kind, ref) DO NOTHING")


class PostgresLedger:
    """The journal in PostgreSQL. ``schema`` (created if missing) keeps several ledgers, or
    tests, apart in one database. ``raw`` keeps the message text exactly as encoded (JSONB
    normalizes it), so a restore decodes the very floats that were journaled."""

    backend = "postgres"

    def __init__(self, url: str, schema: str = "public", sync: str = "normal") -> None:
        import psycopg  # only needed when PostgreSQL is configured

        if sync not in ("normal", "full"):
            raise ValueError(f"storage.ledger_sync must be 'normal' or 'full', not {sync!r}")
        self._psycopg = psycopg
        self.counts: Counter[str] = Counter()
        self.schema = schema
        try:
            self.db = psycopg.connect(url, autocommit=True)
            self.db.execute(f'CREATE SCHEMA IF NOT EXISTS "{schema}"')
            self.db.execute(f'SET search_path TO "{schema}"')
            self.db.execute(f"SET synchronous_commit TO {'on' if sync == 'full' else 'off'}")
            with self.db.transaction():
                self.db.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (schema,))
                self.db.execute(_PG_SCHEMA)
        except psycopg.Error as exc:
            raise LedgerError(f"cannot open the PostgreSQL ledger (schema {schema}): {exc}") from exc

    def append(self, msgs: Iterable[Message]) -> list[bool]:
        rows = [_row(m) for m in msgs]
        out: list[bool] = []
        try:
            with self.db.transaction(), self.db.cursor() as cur:
                for r in rows:
                    body = r[11].decode()
                    cur.execute(_PG_INSERT, (*r[:7], dec(r[7]), dec(r[8]), dec(r[9]), r[10], body, body))
                    out.append(cur.rowcount == 1)
        except self._psycopg.Error as exc:
            self.counts["failures"] += 1
            raise LedgerError(f"ledger write to PostgreSQL failed: {exc}") from exc
        written = sum(out)
        self.counts["written"] += written
        self.counts["duplicates"] += len(out) - written
        return out

    def events(self, after_seq: int = 0) -> Iterator[tuple[int, Message]]:
        try:
            rows = self.db.execute("SELECT seq, raw FROM journal WHERE seq > %s ORDER BY seq", (after_seq,)).fetchall()
        except self._psycopg.Error as exc:
            raise LedgerError(f"cannot read the PostgreSQL ledger: {exc}") from exc
        for seq, raw in rows:
            yield seq, _decoder.decode(raw)

    def close(self) -> None:
        self.db.close()


def open_ledger(postgres_url: str | None = None, path: Path | str | None = None, sync: str = "normal",
                schema: str = "public") -> Ledger:
    """PostgreSQL when a URL is given, else SQLite at ``path`` (default $PERPARB_HOME/ledger.sqlite)."""
    if postgres_url:
        return PostgresLedger(postgres_url, schema=schema, sync=sync)
    return SqliteLedger(path, sync=sync)


def ledger_path(storage: StorageSettings) -> Path:
    """``storage.ledger`` if set; else ``storage.dir``/ledger.sqlite when ``storage.dir`` was
    configured; else ``$PERPARB_HOME``/ledger.sqlite (``~/.perparb`` by default)."""
    if storage.ledger is not None:
        return storage.ledger
    if "dir" in storage.model_fields_set:
        return storage.dir / "ledger.sqlite"
    return default_path()


def ledger_from_settings(storage: StorageSettings) -> Ledger:
    url = storage.postgres_url.get_secret_value() if storage.postgres_url is not None else None
    return open_ledger(url, ledger_path(storage), storage.ledger_sync, storage.postgres_schema)


class OrderFold:
    """Orders as the journal knows them: which exist, which are still open, and how much
    of each has filled (for restore and for spotting fills of unknown orders)."""

    def __init__(self) -> None:
        self.known: set[str] = set()
        self.open: dict[str, OpenOrder] = {}
        self.counts: Counter[str] = Counter()

    def apply(self, msg: Message) -> None:
        if isinstance(msg, Order):
            if msg.id not in self.known:
                self.known.add(msg.id)
                self.open[msg.id] = OpenOrder(order=msg)
        elif isinstance(msg, Fill):
            if msg.order_id not in self.known:
                self.counts["unknown_order_fills"] += 1
                log.warning("fill %s on %s %s is for unknown order %s", msg.id, msg.venue, msg.symbol, msg.order_id)
                return
            oo = self.open.get(msg.order_id)
            if oo is not None:
                oo.last_ts_ns = max(oo.last_ts_ns, msg.ts_ns)
                total = oo.filled_qty + msg.qty
                oo.avg_px = (oo.avg_px * oo.filled_qty + msg.px * msg.qty) / total
                oo.filled_qty = total
                oo.fills += 1
        elif isinstance(msg, OrderUpdate):
            if msg.order_id not in self.known:
                self.counts["unknown_order_updates"] += 1
                return
            if msg.status in TERMINAL:
                self.open.pop(msg.order_id, None)
            elif msg.order_id in self.open:
                oo = self.open[msg.order_id]
                oo.status = msg.status
                oo.last_ts_ns = max(oo.last_ts_ns, msg.ts_ns)

    def open_orders(self) -> list[OpenOrder]:
        return list(self.open.values())


class JournaledBus:
    """A bus whose journaled messages are committed before any subscriber sees them."""

    def __init__(self, inner: Bus, ledger: Ledger) -> None:
        self.inner = inner
        self.ledger = ledger
        self.orders = OrderFold()
        self.halted = False
        self.counts: Counter[str] = Counter()  # write_failures, withheld_orders, duplicates

    @property
    def published(self) -> dict[str, int]:
        return getattr(self.inner, "published", {})

    def restore(self) -> list[tuple[int, Message]]:
        """Read the whole journal (on start): the order fold is rebuilt; the events are
        returned for the other folds (accounts) to replay."""
        events = list(self.ledger.events())
        for _, msg in events:
            self.orders.apply(msg)
        return events

    def subscribe(self, channel: str, handler: Handler) -> None:
        self.inner.subscribe(channel, handler)

    def publish(self, channel: str, msg: Message) -> None:
        self.publish_many([(channel, msg)])

    def publish_many(self, items: list[tuple[str, Message]]) -> None:
        journaled = [(ch, m) for ch, m in items if isinstance(m, JOURNALED)]
        written: list[bool] = []
        if journaled:
            try:
                written = self.ledger.append(m for _, m in journaled)
            except (LedgerError, OSError, ValueError) as exc:
                self._failed(items, exc)
                return
        flags = iter(written)
        for ch, m in items:
            if isinstance(m, JOURNALED):
                if not next(flags):
                    self.counts["duplicates"] += 1  # already journaled (a replayed input): not again
                    continue
                self.orders.apply(m)
            self.inner.publish(ch, m)

    def _failed(self, items: list[tuple[str, Message]], exc: Exception) -> None:
        self.counts["write_failures"] += 1
        log.error("ledger write failed, trading halts: %s", exc)
        ts = max((getattr(m, "ts_ns", 0) for _, m in items), default=0)
        if not self.halted:
            self.halted = True
            self.inner.publish(RISK, KillSwitch(ts_ns=ts, engaged=True, reason="ledger_write_failed"))
        for ch, m in items:
            if ch == ORDERS and isinstance(m, Order):
                self.counts["withheld_orders"] += 1
                self.inner.publish(EXECUTIONS, OrderUpdate(
                    order_id=m.id, intent_id=m.intent_id, ts_ns=m.ts_ns, venue=m.venue, symbol=m.symbol,
                    status="rejected", reason="ledger_write_failed: the order was not journaled, so not sent"))
            elif ch == ORDERS and isinstance(m, CancelOrder):
                self.inner.publish(ch, m)  # cancelling reduces risk: let it through
            else:
                if isinstance(m, JOURNALED):
                    self.orders.apply(m)
                self.inner.publish(ch, m)

