"""Perpetual accounting: positions and balances as a fold of the journal, in exact decimals.

``Accounts`` folds ``Transfer``, ``Fill`` and ``FundingPayment`` messages (each float read
as the Decimal of its shortest repr, as the ledger stores it) into, per venue account:
collateral by settlement asset (USDT, USDC, USD, or the coin for inverse contracts) and
per contract a position with average entry, realized spread PnL, funding and fees, all in
the contract's settlement asset. Replaying the journal gives the same state exactly.

Contracts (ccxt symbols ``BASE/QUOTE:SETTLE``; inverse when SETTLE is BASE):

- Linear: ``q`` signed base units, average entry ``e`` (cost-weighted). Reducing by ``c``
  at ``p`` realizes ``sign(q) * c * (p - e)`` in the quote currency. Unrealized at mark
  ``P``: ``q * (P - e)``. Notional ``|q| * P``.
- Inverse: ``N`` signed USD contract value (``qty * px`` of each fill), entry ``e`` the
  harmonic average (``N / sum(n_i / p_i)``). Reducing by ``c`` USD at ``p`` realizes
  ``sign(N) * c * (1/e - 1/p)`` coins. Unrealized ``N * (1/e - 1/P)`` coins. Base exposure
  ``N / P``; notional ``|N|`` USD, ``|N| / P`` coins.

Margin (rates per venue; defaults 10 % initial, 0.5 % maintenance): ``rate * notional`` in
the settlement asset. Leverage of a venue account: gross USD notional / USD equity.

Liquidation (cross margin per venue account and settlement asset, other positions held
at their marks): with ``W = collateral + unrealized(others) - maintenance(others)`` in
the settlement asset and ``m`` the maintenance rate, the price where equity meets
maintenance margin is

- linear, long or short: ``P = (q*e - W) / (q * (1 - m*sign(q)))``
  (long: ``(q*e - W) / (q*(1-m))``, below entry; short: ``(|q|*e + W) / (|q|*(1+m))``, above);
- inverse: ``P = N * (1 + m*sign(N)) / (W + N/e)``
  (long: ``N(1+m) / (W + N/e)``; short: ``|N|(1-m) / (|N|/e - W)``);

and none when that is not a positive price (a long whose collateral covers it entirely,
a short inverse backed by enough coin). Distance: ``|P_mark - P_liq| / P_mark``.

Funding (``Accounting``): at each contract's own settlement time (``next_funding_ns`` of
its funding feed, on the engine clock) a position pays ``position notional at the mark
* rate``: linear ``-q * P * rate`` in the quote currency, inverse ``-(N/P) * rate`` coins;
longs pay a positive rate. The payment is published as a ``FundingPayment`` (journaled by
the journaling bus) and applied when it comes back on the ``ledger`` channel, so the live
fold and a replay of the journal are the same fold.

PnL is split everywhere into spread PnL (realized + unrealized trading), funding PnL and
fees; USD-equivalent totals value coin amounts at the coin's current mark.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from decimal import Context, Decimal, localcontext

from perparb.bus import EXECUTIONS, LEDGER, PORTFOLIO, Bus
from perparb.bus.messages import BUY, Fill, FundingPayment, Message, PnlUpdate, PositionUpdate, Transfer
from perparb.execution import MarketView
from perparb.paper.market import mark_px

log = logging.getLogger("perparb.paper.account")

ZERO = Decimal(0)
ONE = Decimal(1)
_CTX = Context(prec=50)  # divisions (average entry, inverse PnL) far below any money's precision
STABLE = frozenset({"USD", "USDT", "USDC"})


def dec(x: float) -> Decimal:
    return Decimal(repr(float(x)))


def parse_symbol(symbol: str) -> tuple[str, str, str]:
    """(base, quote, settle) of a ccxt unified perpetual symbol ``BASE/QUOTE:SETTLE``."""
    base, _, rest = symbol.partition("/")
    quote, _, settle = rest.partition(":")
    return base, quote, settle or quote


@dataclass
class Position:
    venue: str
    symbol: str
    venue_symbol: str = ""
    asset: str = ""
    settle: str = ""
    inverse: bool = False
    size: Decimal = ZERO  # linear: signed base units; inverse: signed USD contract value
    basis: Decimal = ZERO  # linear: size * entry (signed); inverse: size / entry (signed coins)
    realized: Decimal = ZERO  # spread PnL, in settle
    funding: Decimal = ZERO  # received (+) / paid (-), in settle
    fees: Decimal = ZERO  # paid, in settle

    @property
    def entry(self) -> Decimal:
        if self.size == 0:
            return ZERO
        with localcontext(_CTX):
            return self.basis / self.size if not self.inverse else self.size / self.basis

    def qty(self, mark: Decimal) -> Decimal:
        """Signed base units (inverse: the USD value at the mark)."""
        if not self.inverse:
            return self.size
        with localcontext(_CTX):
            return self.size / mark if mark else ZERO

    @property
    def base_at_entry(self) -> Decimal:
        """Signed base units valued at the entry (what ``qty`` shows before any mark)."""
        return self.basis if self.inverse else self.size

    def unrealized(self, mark: Decimal) -> Decimal:
        if self.size == 0 or not mark:
            return ZERO
        with localcontext(_CTX):
            if self.inverse:
                return self.basis - self.size / mark  # N/e - N/P
            return self.size * mark - self.basis  # q*P - q*e

    def notional(self, mark: Decimal) -> Decimal:
        """|position| at the mark, in settle."""
        with localcontext(_CTX):
            return abs(self.size) / mark if self.inverse and mark else abs(self.size * mark)

    def trade(self, signed: Decimal, px: Decimal) -> Decimal:
        """Apply a fill of ``signed`` base units at ``px``; returns the realized PnL."""
        with localcontext(_CTX):
            delta = signed * px if self.inverse else signed  # the size unit
            d_basis = signed if self.inverse else delta * px  # inverse: coins, n / p = the base qty
            if self.size == 0 or (self.size > 0) == (delta > 0):
                self.size += delta
                self.basis += d_basis
                return ZERO
            closed = min(abs(delta), abs(self.size))
            frac = closed / abs(self.size)
            basis_out = self.basis * frac
            sgn = ONE if self.size > 0 else -ONE
            if self.inverse:
                pnl = sgn * (abs(basis_out) - closed / px)
            else:
                pnl = sgn * (closed * px - abs(basis_out))
            self.size -= sgn * closed
            self.basis -= basis_out
            rest = abs(delta) - closed
            if self.size == 0:
                self.basis = ZERO
            if rest > 0:  # flipped through zero: the rest opens the other way at px
                self.size = -sgn * rest
                self.basis = -sgn * (rest / px if self.inverse else rest * px)
            return pnl


@dataclass
class Account:
    venue: str
    collateral: dict[str, Decimal] = field(default_factory=dict)  # by settlement asset
    transfers: dict[str, Decimal] = field(default_factory=dict)


class Accounts:
    """The fold. ``apply`` takes journal messages in journal order; others are ignored."""

    def __init__(self) -> None:
        self.accounts: dict[str, Account] = {}
        self.positions: dict[tuple[str, str], Position] = {}  # (venue, symbol)
        self.applied: set[str] = set()  # ids of fills, payments and transfers already folded
        self.counts: Counter[str] = Counter()

    def account(self, venue: str) -> Account:
        acc = self.accounts.get(venue)
        if acc is None:
            acc = self.accounts[venue] = Account(venue)
        return acc

    def position(self, venue: str, symbol: str, venue_symbol: str = "") -> Position:
        key = (venue, symbol)
        pos = self.positions.get(key)
        if pos is None:
            base, _, settle = parse_symbol(symbol)
            pos = self.positions[key] = Position(venue, symbol, venue_symbol, base, settle, inverse=settle == base)
        elif venue_symbol and not pos.venue_symbol:
            pos.venue_symbol = venue_symbol
        return pos

    def _credit(self, venue: str, asset: str, amount: Decimal) -> None:
        acc = self.account(venue)
        acc.collateral[asset] = acc.collateral.get(asset, ZERO) + amount

    def apply(self, msg: Message) -> bool:
        """Fold one message; False when it is not an accounting event or was folded before."""
        if isinstance(msg, Fill):
            if msg.id in self.applied:
                return False
            self.applied.add(msg.id)
            pos = self.position(msg.venue, msg.symbol, msg.venue_symbol)
            q = dec(msg.qty)
            pnl = pos.trade(q if msg.side == BUY else -q, dec(msg.px))
            fee = dec(msg.fee)
            pos.realized += pnl
            pos.fees += fee
            self._credit(msg.venue, pos.settle, pnl)
            self._credit(msg.venue, msg.fee_asset, -fee)
            self.counts["fills"] += 1
            return True
        if isinstance(msg, FundingPayment):
            if msg.id in self.applied:
                return False
            self.applied.add(msg.id)
            pos = self.position(msg.venue, msg.symbol, msg.venue_symbol)
            amount = dec(msg.amount)
            pos.funding += amount
            self._credit(msg.venue, msg.asset, amount)
            self.counts["funding_payments"] += 1
            return True
        if isinstance(msg, Transfer):
            if msg.id in self.applied:
                return False
            self.applied.add(msg.id)
            amount = dec(msg.amount)
            self._credit(msg.venue, msg.asset, amount)
            acc = self.account(msg.venue)
            acc.transfers[msg.asset] = acc.transfers.get(msg.asset, ZERO) + amount
            return True
        return False

    def replay(self, msgs: Iterable[Message]) -> None:
        for m in msgs:
            self.apply(m)

    def open_positions(self) -> list[Position]:
        return [p for p in self.positions.values() if p.size != 0]


@dataclass
class MarginSettings:
    initial_margin: float = 0.10
    maintenance_margin: float = 0.005
    venue_initial_margin: dict[str, float] = field(default_factory=dict)
    venue_maintenance_margin: dict[str, float] = field(default_factory=dict)

    def rates(self, venue: str) -> tuple[Decimal, Decimal]:
        return (dec(self.venue_initial_margin.get(venue, self.initial_margin)),
                dec(self.venue_maintenance_margin.get(venue, self.maintenance_margin)))


def liquidation_px(pos: Position, wallet: Decimal, mmr: Decimal) -> Decimal | None:
    """The mark at which ``pos`` is liquidated, ``wallet`` being the collateral available
    to it (see the module docstring); None when no positive price does it."""
    if pos.size == 0:
        return None
    with localcontext(_CTX):
        sgn = ONE if pos.size > 0 else -ONE
        if pos.inverse:
            den = wallet + pos.basis  # W + N/e
            if den == 0:
                return None
            px = pos.size * (ONE + mmr * sgn) / den
        else:
            px = (pos.basis - wallet) / (pos.size * (ONE - mmr * sgn))
    return px if px > 0 else None


class Accounting:
    """The fold, live: applies fills and ledger events from the bus, pays funding at each
    contract's settlements, and publishes PositionUpdate / PnlUpdate on ``portfolio``."""

    def __init__(self, bus: Bus, view: MarketView, margins: MarginSettings | None = None,
                 mark_interval_ms: float = 1000.0, subscribe: bool = True) -> None:
        self.bus = bus
        self.view = view
        self.margins = margins or MarginSettings()
        self.book = Accounts()
        self.mark_interval_ns = int(mark_interval_ms * 1e6)
        self.counts: Counter[str] = Counter()  # funding_rate_unknown, mark_unknown ...
        self._due: dict[tuple[str, str], int] = {}  # next settlement armed per position
        self._seen_rate: dict[tuple[str, str], tuple[int, float]] = {}  # (next_funding_ns, rate) last read
        self._ticking = False
        self._marks: dict[tuple[str, str], Decimal] = {}
        self._asset_px: dict[str, Decimal] = {}
        if subscribe:
            bus.subscribe(EXECUTIONS, self._on_message)
            bus.subscribe(LEDGER, self._on_message)

    # -- input ---------------------------------------------------------------------------
    def restore(self, events: Iterable[Message]) -> None:
        """Fold the journal read at start, then carry on (settlements, marks)."""
        self.book.replay(events)
        open_ = self.book.open_positions()
        for pos in open_:
            self._arm(pos)
        self._start_ticking()
        self.publish(self.view.now_ns, open_)  # readers see the restored state at once

    def _on_message(self, msg: Message) -> None:
        if self.book.apply(msg):
            key = (msg.venue, getattr(msg, "symbol", ""))  # type: ignore[attr-defined]
            pos = self.book.positions.get(key)
            if pos is not None and pos.size != 0:
                self._arm(pos)
                self._start_ticking()
            self.publish(self.view.now_ns, [pos] if pos is not None else [])

    # -- marks -----------------------------------------------------------------------------
    def mark(self, pos: Position) -> Decimal | None:
        px = mark_px(self.view, pos.venue, pos.venue_symbol) if pos.venue_symbol else None
        key = (pos.venue, pos.symbol)
        if px is not None:
            self._marks[key] = dec(px)
        return self._marks.get(key)

    def price_of(self, asset: str) -> Decimal:
        """USD value of one unit of ``asset``: 1 for stablecoins, else a current mark."""
        if asset in STABLE:
            return ONE
        for pos in self.book.positions.values():
            if pos.asset == asset and pos.venue_symbol:
                m = self.mark(pos)
                if m:
                    self._asset_px[asset] = m
                    return m
        return self._asset_px.get(asset, ZERO)  # the last mark seen; 0 before any

    # -- funding -------------------------------------------------------------------------
    def _arm(self, pos: Position) -> None:
        key = (pos.venue, pos.symbol)
        if key in self._due or not pos.venue_symbol:
            return
        f = self.view.funding(pos.venue, pos.venue_symbol)
        if f is None or f.next_funding_ns <= self.view.now_ns:
            return  # armed later, from the periodic mark, once the feed says when
        self._seen_rate[key] = (f.next_funding_ns, f.rate)
        self._due[key] = f.next_funding_ns
        self.view.call_at(f.next_funding_ns, lambda due: self._settle(key, due))

    def _settle(self, key: tuple[str, str], due: int) -> None:
        self._due.pop(key, None)
        pos = self.book.positions.get(key)
        if pos is None or pos.size == 0:
            return
        f = self.view.funding(pos.venue, pos.venue_symbol)
        if f is not None and f.next_funding_ns == due:
            rate = f.rate
        elif self._seen_rate.get(key, (0, 0.0))[0] == due:
            rate = self._seen_rate[key][1]  # the feed moved on before we looked: the rate it showed
        else:
            self.counts["funding_rate_unknown"] += 1
            log.warning("%s %s: no funding rate known for the settlement at %d; not paid", *key, due)
            self._rearm(pos, f, due)
            return
        mark = self.mark(pos)
        if not mark:
            self.counts["mark_unknown"] += 1
            log.warning("%s %s: no mark price at the settlement at %d; not paid", *key, due)
            self._rearm(pos, f, due)
            return
        with localcontext(_CTX):
            base = pos.qty(mark)
            amount = -base * dec(rate) if pos.inverse else -base * mark * dec(rate)
        self.bus.publish(LEDGER, FundingPayment(
            id=f"funding:{pos.venue}:{pos.venue_symbol}:{due}", ts_ns=due, venue=pos.venue, symbol=pos.symbol,
            venue_symbol=pos.venue_symbol, position_qty=float(base), mark_px=float(mark), rate=rate,
            amount=float(amount), asset=pos.settle))
        self._rearm(pos, f, due)

    def _rearm(self, pos: Position, f: object, due: int) -> None:
        if pos.size == 0:
            return
        key = (pos.venue, pos.symbol)
        nxt = getattr(f, "next_funding_ns", 0)
        if nxt > due and key not in self._due:
            self._seen_rate[key] = (nxt, getattr(f, "rate", 0.0))
            self._due[key] = nxt
            self.view.call_at(nxt, lambda d: self._settle(key, d))

    # -- periodic marks ------------------------------------------------------------------
    def _start_ticking(self) -> None:
        if self._ticking or self.mark_interval_ns <= 0:
            return
        self._ticking = True
        self.view.call_at(self.view.now_ns + self.mark_interval_ns, self._tick)

    def _tick(self, now: int) -> None:
        open_ = self.book.open_positions()
        for pos in open_:
            key = (pos.venue, pos.symbol)
            f = self.view.funding(pos.venue, pos.venue_symbol) if pos.venue_symbol else None
            if f is not None and f.next_funding_ns > now and self._due.get(key) == f.next_funding_ns:
                self._seen_rate[key] = (f.next_funding_ns, f.rate)
            self._arm(pos)
        self.publish(now, open_)
        if open_:
            self.view.call_at(now + self.mark_interval_ns, self._tick)
        else:
            self._ticking = False

    # -- output --------------------------------------------------------------------------
    def snapshot(self, pos: Position, now: int) -> PositionUpdate:
        mark = self.mark(pos) or ZERO
        imr, mmr = self.margins.rates(pos.venue)
        upnl = pos.unrealized(mark) if mark else ZERO
        liq = dist = None
        notional = pos.notional(mark) if mark else ZERO
        if pos.size != 0 and mark:
            liq_px = liquidation_px(pos, self.wallet(pos, mmr), mmr)
            if liq_px is not None:
                liq = float(liq_px)
                dist = float(abs(mark - liq_px) / mark)
        with localcontext(_CTX):
            notional_quote = notional * mark if pos.inverse else notional
            return PositionUpdate(
                ts_ns=now, venue=pos.venue, symbol=pos.symbol, qty=float(pos.qty(mark) if mark else pos.base_at_entry),
                avg_entry_px=float(pos.entry), mark_px=float(mark), unrealized_pnl=float(upnl),
                realized_pnl=float(pos.realized), liquidation_px=liq, liquidation_distance=dist,
                venue_symbol=pos.venue_symbol, settle=pos.settle, notional=float(notional_quote),
                funding_pnl=float(pos.funding), fees=float(pos.fees), initial_margin=float(notional * imr),
                maintenance_margin=float(notional * mmr), leverage=float(self.leverage(pos.venue)))

    def wallet(self, pos: Position, mmr: Decimal) -> Decimal:
        """Collateral available to ``pos``: its account's balance in its settlement asset plus
        the other positions' unrealized PnL less their maintenance margin."""
        w = self.book.account(pos.venue).collateral.get(pos.settle, ZERO)
        for other in self.book.open_positions():
            if other is pos or other.venue != pos.venue or other.settle != pos.settle:
                continue
            m = self.mark(other)
            if m:
                w += other.unrealized(m) - other.notional(m) * self.margins.rates(other.venue)[1]
        return w

    def leverage(self, venue: str) -> Decimal:
        gross = equity = ZERO
        acc = self.book.account(venue)
        with localcontext(_CTX):
            for asset, amount in acc.collateral.items():
                equity += amount * self.price_of(asset)
            for pos in self.book.open_positions():
                if pos.venue != venue:
                    continue
                m = self.mark(pos)
                if m:
                    px = self.price_of(pos.settle)
                    equity += pos.unrealized(m) * px
                    gross += pos.notional(m) * px
            return gross / equity if equity > 0 else ZERO

    def totals(self) -> dict[str, Decimal]:
        """USD-equivalent: collateral put in, realized and unrealized spread PnL, funding, fees, equity."""
        t = dict.fromkeys(("collateral", "realized", "unrealized", "funding", "fees", "equity"), ZERO)
        with localcontext(_CTX):
            for acc in self.book.accounts.values():
                for asset, amount in acc.transfers.items():
                    t["collateral"] += amount * self.price_of(asset)
                for asset, amount in acc.collateral.items():
                    t["equity"] += amount * self.price_of(asset)
            for pos in self.book.positions.values():
                px = self.price_of(pos.settle)
                m = self.mark(pos) if pos.size != 0 else None
                u = pos.unrealized(m) if m else ZERO
                t["realized"] += pos.realized * px
                t["unrealized"] += u * px
                t["funding"] += pos.funding * px
                t["fees"] += pos.fees * px
                t["equity"] += u * px
        return t

    def pnl(self, now: int) -> PnlUpdate:
        t = self.totals()
        return PnlUpdate(ts_ns=now, equity=float(t["equity"]), spread_pnl=float(t["realized"] + t["unrealized"]),
                         funding_pnl=float(t["funding"]), fees=float(t["fees"]), realized_pnl=float(t["realized"]),
                         unrealized_pnl=float(t["unrealized"]), collateral=float(t["collateral"]))

    def publish(self, now: int, positions: Iterable[Position]) -> None:
        for pos in positions:
            self.bus.publish(PORTFOLIO, self.snapshot(pos, now))
        self.bus.publish(PORTFOLIO, self.pnl(now))

