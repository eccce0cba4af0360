"""Tardis.dev CSV datasets as normalized events, for replay and backtests.

Tardis ships one file per exchange, data type, day and symbol
(``binance-futures_incremental_book_L2_2024-03-01_BTCUSDT.csv.gz``), gzip'd or plain, with a
header line naming the columns. The data type is recognised from that header:

- ``incremental_book_L2``: ``exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount``.
  Consecutive rows of one symbol with the same ``local_timestamp`` are one venue message:
  snapshot rows (``is_snapshot=true``) become one ``BookSnapshot`` (a new book), the others one
  ``BookDelta`` (absolute sizes, 0 removes the level). Rows before a symbol's first snapshot
  are skipped, as Tardis documents (updates buffered before a reconnection's snapshot).
- ``book_snapshot_N`` (``book_snapshot_25``, ``book_snapshot_5``, …): ``asks[i].price,
  asks[i].amount,bids[i].price,bids[i].amount`` for ``i < N`` after the four common columns;
  each row is a ``BookSnapshot`` of the levels it fills.
- ``quotes``: ``ask_amount,ask_price,bid_price,bid_amount`` → ``Quote``.
- ``trades``: ``id,side,price,amount`` → ``Trade``.
- ``derivative_ticker``: ``funding_timestamp,funding_rate,predicted_funding_rate,open_interest,
  last_price,index_price,mark_price`` → ``Funding`` at the contract's interval (rows without a
  funding rate carry no funding and are skipped).

Times are microseconds since the epoch: ``local_timestamp`` (when Tardis received the
message) becomes ``recv_ns`` — the replay clock, as a live receive time is — and
``timestamp`` (the exchange's) ``ts_exchange_ns``. Each file must be in ``local_timestamp``
order, as Tardis writes them; a row behind the one before it is a bad row.

Exchanges map onto perparb's venues (``EXCHANGES``) and symbols — the venue's own, as Tardis
keeps them — through the instrument registry, exactly as the venue adapter looks them up:
prices and amounts are in the venue's native units (contracts on OKX, Gate, KuCoin, MEXC;
USD on BitMEX and Deribit inverse perpetuals; the ``1000``-prefixed unit on Binance…) and are
converted by the contract's ``Instrument`` into base units and per-unit prices. A symbol the
registry does not know is counted and its rows skipped, never guessed; an exchange with no
perparb venue, a header that is no Tardis data type, or a file that cannot be read is named
and left out while the other inputs go on. A row that cannot be parsed or fails the decode
path's plausibility check (``perparb.validate``) is counted with its file and line; a bad book
row leaves that book unusable until its next snapshot.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from perparb.instruments.registry import Registry
from perparb.model import BookDelta, BookSnapshot, Funding, Instrument, Level, MarketEvent, Quote, Trade
from perparb.validate import Limits, check

if TYPE_CHECKING:
    from perparb.store.capture import ReadReport

US = 1000  # nanoseconds in a microsecond
HOUR_NS = 3_600_000_000_000

# Tardis exchange id -> perparb venue.
EXCHANGES = {
    "binance-futures": "binance",
    "bybit": "bybit",
    "okex-swap": "okx",
    "deribit": "deribit",
    "bitmex": "bitmex",
    "gate-io-futures": "gate",
    "bitget-futures": "bitget",
    "kucoin-futures": "kucoin",
    "hyperliquid": "hyperliquid",
    "dydx-v4": "dydx",
    "phemex": "phemex",
    "mexc-futures": "mexc",
}
# Exchanges Tardis records whose contracts no perparb venue trades.
UNSUPPORTED = {
    "binance-delivery": "Binance COIN-M delivery and perpetual contracts are not one of perparb's venues "
                        "(binance is USDⓈ-M: use binance-futures)",
}
# Deribit's ticker funding in Tardis is ``current_funding``, the instantaneous rate after the
# dead band; perparb's Deribit funding is the trailing ``funding_8h`` per hour. They are not
# the same number, so Tardis' is not used.
NO_FUNDING = {"deribit": "Tardis' deribit funding_rate is current_funding, not funding_8h"}

COMMON = ("exchange", "symbol", "timestamp", "local_timestamp")
LAYOUTS = {
    (*COMMON, "is_snapshot", "side", "price", "amount"): "incremental_book_L2",
    (*COMMON, "ask_amount", "ask_price", "bid_price", "bid_amount"): "quotes",
    (*COMMON, "id", "side", "price", "amount"): "trades",
    (*COMMON, "funding_timestamp", "funding_rate", "predicted_funding_rate", "open_interest", "last_price",
     "index_price", "mark_price"): "derivative_ticker",
}


class Batch:
    """The events of one Tardis message (one or more rows), in receive order. ``broken``
    names a book (venue symbol) that a bad row left unusable until its next snapshot."""

    __slots__ = ("broken", "events", "recv_ns", "venue")

    def __init__(self, recv_ns: int, venue: str, events: list[MarketEvent], broken: str | None = None) -> None:
        self.recv_ns, self.venue, self.events, self.broken = recv_ns, venue, events, broken


class BadRow(ValueError):
    pass


def is_tardis(path: Path) -> bool:
    return path.name.endswith((".csv", ".csv.gz"))


def dataset(header: list[str]) -> str | None:
    """The Tardis data type a header line names, or None."""
    cols = tuple(c.strip() for c in header)
    if cols in LAYOUTS:
        return LAYOUTS[cols]
    rest = cols[len(COMMON):]
    if cols[:len(COMMON)] != COMMON or not rest or len(rest) % 4:
        return None
    n = len(rest) // 4
    want = tuple(f"{side}[{i}].{what}" for i in range(n) for side in ("asks", "bids") for what in ("price", "amount"))
    return f"book_snapshot_{n}" if rest == want else None


class Symbols:
    """Tardis symbols onto registry instruments, as the venue adapter maps its own: the exact
    symbol, else the one symbol of the venue that differs only in case (Tardis upper-cases
    some), else what the adapter derives from the symbol alone. Unknown: None."""

    def __init__(self, registry: Registry) -> None:
        self.registry = registry
        self._cache: dict[tuple[str, str], Instrument | None] = {}
        self._adapters: dict[str, object] = {}

    def get(self, exchange: str, venue: str, symbol: str) -> Instrument | None:
        key = (venue, symbol)
        if key in self._cache:
            inst = self._cache[key]
            if inst is None or self.registry.get(venue, inst.venue_symbol) is inst:
                return inst
        inst = self._cache[key] = self._find(exchange, venue, symbol)
        return inst

    def _find(self, exchange: str, venue: str, symbol: str) -> Instrument | None:
        if exchange == "bitget-futures" and symbol.endswith("_UMCBL"):
            symbol = symbol[:-6]  # Bitget's v1 name of the same USDT-M contract
        table = self.registry.venue_table(venue)
        inst = table.get(symbol)
        if inst is not None:
            return inst
        folded = [i for s, i in table.items() if s.upper() == symbol.upper()]
        if len(folded) == 1:
            return folded[0]
        if folded:
            return None  # two contracts differ only in case: ambiguous
        from perparb.venues import venue_class

        adapter = self._adapters.get(venue)
        if adapter is None:
            adapter = self._adapters[venue] = venue_class(venue)(self.registry)
        derived = adapter.derive(symbol)  # type: ignore[attr-defined]
        if derived is not None:
            self.registry.add(derived)  # as the adapter does: later lookups find it
        return derived


def _f(s: str) -> float:
    return float(s) if s else 0.0


def _us(s: str, name: str) -> int:
    try:
        return int(s) * US
    except ValueError:
        raise BadRow(f"{name} {s!r} is not an integer of microseconds") from None


class TardisFile:
    """One Tardis CSV file as ``Batch``es in receive order. Problems go to ``report``."""

    def __init__(self, path: Path, symbols: Symbols, limits: Limits, report: ReadReport) -> None:
        self.path = path
        self.symbols = symbols
        self.limits = limits
        self.report = report
        self.kind = ""
        self.rows = 0
        self._venues: dict[str, str] = {}
        self._unknown: set[tuple[str, str]] = set()
        self._synced: set[str] = set()  # symbols whose incremental book has had its snapshot
        self._last_ns = 0

    # -- reading -------------------------------------------------------------------------
    def batches(self) -> Iterator[Batch]:
        path, report = self.path, self.report
        try:
            raw = path.open("rb")
        except OSError as exc:
            self._unreadable(exc.strerror or str(exc))
            return
        with raw:
            try:
                gzipped = raw.read(2) == b"\x1f\x8b"  # by content: a .csv may be gzip'd and the reverse
                raw.seek(0)
            except OSError as exc:
                self._unreadable(exc.strerror or str(exc))
                return
            stream: IO[str] = gzip.open(raw, "rt", encoding="utf-8", newline="") if gzipped \
                else io.TextIOWrapper(raw, encoding="utf-8", newline="")  # noqa: SIM115 (closed with raw)
            reader = csv.reader(stream)
            try:
                header = next(reader, None)
            except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as exc:
                self._unreadable(f"not a Tardis CSV file ({exc})")
                return
            kind = dataset(header) if header else None
            if kind is None:
                self._unreadable(f"no Tardis data type has the header {','.join(header or [])[:200]!r} "
                                 "(incremental_book_L2, book_snapshot_N, quotes, trades, derivative_ticker)")
                return
            self.kind = kind
            parse = self._parser(kind)
            rows = self._rows(reader)
            try:
                yield from parse(rows)
            except _FileError as exc:
                self._unreadable(str(exc))
                return
            if self.rows == 0:
                report.note(f"{path}: {kind} file with no rows")

    def _rows(self, reader: Any) -> Iterator[tuple[int, list[str]]]:  # a csv reader
        path, report = self.path, self.report
        while True:
            try:
                row = next(reader)
            except StopIteration:
                return
            except (EOFError, zlib.error, gzip.BadGzipFile) as exc:
                report.truncated += 1
                report.note(f"{path}:{reader.line_num + 1}: gzip data cut short or broken ({exc}), "
                            "read as the end of the file")
                return
            except OSError as exc:
                report.truncated += 1
                report.note(f"{path}:{reader.line_num + 1}: {exc}, read as the end of the file")
                return
            except (csv.Error, UnicodeDecodeError) as exc:
                report.bad(path, reader.line_num, f"not a CSV row: {exc}")
                continue
            if row:
                self.rows += 1
                report.rows += 1
                yield reader.line_num, row

    def _unreadable(self, why: str) -> None:
        self.report.unreadable.append(str(self.path))
        self.report.note(f"{self.path}: {why}")

    def _parser(self, kind: str) -> Callable[[Iterator[tuple[int, list[str]]]], Iterator[Batch]]:
        if kind == "incremental_book_L2":
            return self._incremental
        if kind.startswith("book_snapshot_"):
            return self._snapshots
        return self._simple

    # -- per row -------------------------------------------------------------------------
    def _head(self, n: int, row: list[str], width: int) -> tuple[str, Instrument, int, int] | None:
        """(venue, instrument, ts_exchange_ns, recv_ns) of a row, or None when it is skipped."""
        if len(row) != width:
            raise BadRow(f"{len(row)} columns, the {self.kind} header has {width}")
        exchange, symbol = row[0], row[1]
        venue = self._venues.get(exchange)
        if venue is None:
            venue = self._venues[exchange] = venue_of(exchange)
        ts, recv = _us(row[2], "timestamp"), _us(row[3], "local_timestamp")
        if recv < self._last_ns:
            raise BadRow(f"local_timestamp {row[3]} is behind the row before it ({self._last_ns // US})")
        self._last_ns = recv
        inst = self.symbols.get(exchange, venue, symbol)
        if inst is None:
            self.report.unknown_symbols[f"{exchange} {symbol}"] += 1
            if (exchange, symbol) not in self._unknown:
                self._unknown.add((exchange, symbol))
                self.report.note(f"{self.path}:{n}: unknown symbol {symbol!r} on {exchange} ({venue}): "
                                 "not in the instrument registry; its rows are skipped")
            return None
        return venue, inst, ts, recv

    def _checked(self, n: int, ev: MarketEvent) -> bool:
        problem = check(ev, self.limits, ev.recv_ns)
        if problem is None:
            return True
        reason, field, value = problem
        self.report.bad(self.path, n, f"{field} {value!r} out of bounds ({reason}) for {ev.venue_symbol}")
        return False

    def _simple(self, rows: Iterator[tuple[int, list[str]]]) -> Iterator[Batch]:
        make: Callable[..., Any] = {"quotes": self._quote, "trades": self._trade,
                                                   "derivative_ticker": self._funding}[self.kind]
        width = len(COMMON) + 4 if self.kind != "derivative_ticker" else len(COMMON) + 7
        for n, row in rows:
            try:
                head = self._head(n, row, width)
                if head is None:
                    continue
                ev = make(row, *head)
            except BadRow as exc:
                self.report.bad(self.path, n, str(exc))
                continue
            except ValueError as exc:
                self.report.bad(self.path, n, f"not a number: {exc}")
                continue
            if ev is not None and self._checked(n, ev):
                yield Batch(ev.recv_ns, ev.venue, [ev])

    def _quote(self, row: list[str], venue: str, inst: Instrument, ts: int, recv: int) -> Quote:
        ask_qty, ask_px, bid_px, bid_qty = _f(row[4]), _f(row[5]), _f(row[6]), _f(row[7])
        return Quote(venue, inst.symbol, inst.venue_symbol, inst.px(bid_px), inst.qty(bid_qty, bid_px),
                     inst.px(ask_px), inst.qty(ask_qty, ask_px), ts, recv)

    def _trade(self, row: list[str], venue: str, inst: Instrument, ts: int, recv: int) -> Trade:
        px, amount = float(row[6]), float(row[7])
        side = row[5] if row[5] in ("buy", "sell") else "unknown"
        return Trade(venue=venue, symbol=inst.symbol, venue_symbol=inst.venue_symbol, px=inst.px(px),
                     qty=inst.qty(amount, px), side=side, trade_id=row[4], ts_exchange_ns=ts, recv_ns=recv)

    def _funding(self, row: list[str], venue: str, inst: Instrument, ts: int, recv: int) -> Funding | None:
        if not row[5]:
            self.report.skipped["derivative_ticker rows without a funding rate"] += 1
            return None
        if venue in NO_FUNDING:
            self.report.skipped[f"{venue} funding rows ({NO_FUNDING[venue]})"] += 1
            return None
        interval_h = inst.funding_interval_h
        if row[4]:
            next_ns = _us(row[4], "funding_timestamp")
        else:  # venues that settle on the clock (Hyperliquid, dYdX): the next whole interval
            period = int(interval_h * HOUR_NS)
            next_ns = (recv // period + 1) * period
        mark = float(row[10]) if row[10] else None
        index = float(row[9]) if row[9] else None
        last = float(row[8]) if row[8] else None
        ref = mark or last
        oi = inst.qty(float(row[7]), ref) if row[7] and ref else None
        return Funding(venue=venue, symbol=inst.symbol, venue_symbol=inst.venue_symbol, rate=float(row[5]),
                       predicted_rate=float(row[6]) if row[6] else None, interval_h=interval_h,
                       next_funding_ns=next_ns, mark_px=inst.px(mark) if mark else None,
                       index_px=inst.px(index) if index else None, open_interest=oi, ts_exchange_ns=ts,
                       recv_ns=recv)

    def _snapshots(self, rows: Iterator[tuple[int, list[str]]]) -> Iterator[Batch]:
        depth = int(self.kind.rsplit("_", 1)[1])
        width = len(COMMON) + 4 * depth
        for n, row in rows:
            try:
                head = self._head(n, row, width)
                if head is None:
                    continue
                venue, inst, ts, recv = head
                asks: list[Level] = []
                bids: list[Level] = []
                for i in range(len(COMMON), width, 4):
                    if row[i]:
                        px = float(row[i])
                        asks.append((inst.px(px), inst.qty(float(row[i + 1]), px)))
                    if row[i + 2]:
                        px = float(row[i + 2])
                        bids.append((inst.px(px), inst.qty(float(row[i + 3]), px)))
            except BadRow as exc:
                self.report.bad(self.path, n, str(exc))
                continue
            except ValueError as exc:
                self.report.bad(self.path, n, f"not a number: {exc}")
                continue
            ev = BookSnapshot(venue=venue, symbol=inst.symbol, venue_symbol=inst.venue_symbol, bids=bids, asks=asks,
                              ts_exchange_ns=ts, recv_ns=recv)
            if self._checked(n, ev):
                yield Batch(recv, venue, [ev])
            else:
                yield Batch(recv, venue, [], broken=inst.venue_symbol)

    def _incremental(self, rows: Iterator[tuple[int, list[str]]]) -> Iterator[Batch]:
        group: _Group | None = None
        width = len(COMMON) + 4
        for n, row in rows:
            g = group
            # The common case first: one more level of the message being collected (same
            # exchange, symbol, receive time and kind, compared as text).
            if g is not None and len(row) == width and row[3] == g.lts and row[1] == g.tsym and row[4] == g.snap_s \
                    and row[0] == g.exchange:
                side = row[5]
                try:
                    level = (float(row[6]), float(row[7]))
                except ValueError as exc:
                    yield from self._broken(n, f"not a number: {exc}", row, group)
                    group = None
                    continue
                if side == "bid":
                    g.bids.append(level)
                elif side == "ask":
                    g.asks.append(level)
                else:
                    yield from self._broken(n, f"side {side!r} is neither bid nor ask", row, group)
                    group = None
                continue
            try:
                head = self._head(n, row, width)
                if head is None:
                    continue
                venue, inst, ts, recv = head
                snap = row[4]
                if snap not in ("true", "false"):
                    raise BadRow(f"is_snapshot {snap!r} is neither true nor false")
                side = row[5]
                if side not in ("bid", "ask"):
                    raise BadRow(f"side {side!r} is neither bid nor ask")
                level = (float(row[6]), float(row[7]))
            except BadRow as exc:
                yield from self._broken(n, str(exc), row, group)
                group = None
                continue
            except ValueError as exc:
                yield from self._broken(n, f"not a number: {exc}", row, group)
                group = None
                continue
            if group is not None:
                yield from self._flush(group)
                group = None
            is_snap = snap == "true"
            if not is_snap and inst.venue_symbol not in self._synced:
                self.report.skipped["incremental_book_L2 rows before the symbol's first snapshot"] += 1
                continue
            group = _Group(n, row, venue, inst, ts, recv, is_snap)
            (group.bids if side == "bid" else group.asks).append(level)
        if group is not None:
            yield from self._flush(group)

    def _flush(self, g: _Group) -> Iterator[Batch]:
        inst = g.inst
        # native (price, amount) rows to per-unit prices and base quantities, as adapters do
        bids, asks = inst.levels(g.bids), inst.levels(g.asks)
        ev: BookSnapshot | BookDelta
        if g.snap:
            ev = BookSnapshot(venue=g.venue, symbol=inst.symbol, venue_symbol=g.sym, bids=bids, asks=asks,
                              ts_exchange_ns=g.ts, recv_ns=g.recv)
        else:
            ev = BookDelta(venue=g.venue, symbol=inst.symbol, venue_symbol=g.sym, bids=bids, asks=asks,
                           ts_exchange_ns=g.ts, recv_ns=g.recv)
        if self._checked(g.line, ev):
            if g.snap:
                self._synced.add(g.sym)
            yield Batch(g.recv, g.venue, [ev])
        else:
            self._synced.discard(g.sym)
            yield Batch(g.recv, g.venue, [], broken=g.sym)

    def _broken(self, n: int, why: str, row: list[str], group: _Group | None) -> Iterator[Batch]:
        """A bad incremental row: the message it may be part of is dropped and its book waits
        for the next snapshot (applying the rest would make a book that never existed)."""
        self.report.bad(self.path, n, why)
        known = self._symbol_of(row)
        if group is not None and known is not None and known[1] != group.sym:
            yield from self._flush(group)  # a complete message of another symbol
            group = None
        if group is not None:
            self._synced.discard(group.sym)
            yield Batch(group.recv, group.venue, [], broken=group.sym)
            if known is not None and known[1] == group.sym:
                return
        if known is not None:
            self._synced.discard(known[1])
            yield Batch(self._last_ns, known[0], [], broken=known[1])

    def _symbol_of(self, row: list[str]) -> tuple[str, str] | None:
        venue = self._venues.get(row[0]) if len(row) >= 2 else None
        inst = self.symbols.get(row[0], venue, row[1]) if venue is not None else None
        return (venue, inst.venue_symbol) if venue is not None and inst is not None else None


class _Group:
    """Rows of one incremental message being collected, levels in native units."""

    __slots__ = ("asks", "bids", "exchange", "inst", "line", "lts", "recv", "snap", "snap_s", "sym", "ts", "tsym",
                 "venue")

    def __init__(self, line: int, row: list[str], venue: str, inst: Instrument, ts: int, recv: int,
                 snap: bool) -> None:
        self.line, self.venue, self.inst, self.ts, self.recv, self.snap = line, venue, inst, ts, recv, snap
        self.exchange, self.tsym, self.lts, self.snap_s = row[0], row[1], row[3], row[4]
        self.sym = inst.venue_symbol
        self.bids: list[tuple[float, float]] = []
        self.asks: list[tuple[float, float]] = []


class _FileError(Exception):
    """A problem that makes the rest of the file unusable (an exchange with no venue)."""


def venue_of(exchange: str) -> str:
    """The perparb venue of a Tardis exchange id (raises ``_FileError`` naming the known ones)."""
    venue = EXCHANGES.get(exchange)
    if venue is not None:
        return venue
    if exchange in UNSUPPORTED:
        raise _FileError(f"Tardis exchange {exchange!r}: {UNSUPPORTED[exchange]}")
    raise _FileError(f"unknown Tardis exchange {exchange!r}; perparb maps "
                     + ", ".join(f"{k} ({v})" for k, v in EXCHANGES.items()))
