"""What a backtest watches while the replay runs: it reads the bus and the engine, and never
publishes, so the fills are the ones ``perparb replay --paper`` makes.

- Equity samples on a fixed grid of engine time (multiples of ``step_ns`` since the epoch):
  an engine timer at each grid time folds the accounting (the ledger's fold of fills,
  funding payments and transfers) with the books' marks as they stand at that instant.
- Round trips: a strategy's pair position from its opening intent until every leg it
  opened is flat again, with its own fills (closes, unwinds and hedges sent on its behalf
  included) and its share of the funding paid on its legs.
- Opportunities: the net edge each entry was taken at, and the lifetime of every
  opportunity that closed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from typing import TYPE_CHECKING

from perparb.bus import EXECUTIONS, LEDGER, OPPORTUNITIES, TRADE_ORDERS
from perparb.bus.messages import BUY, Fill, FundingPayment, Message, OpportunityEvent, TradeIntent, Transfer
from perparb.paper.account import _CTX, STABLE, Position, dec, parse_symbol
from perparb.paper.market import mark_px

if TYPE_CHECKING:
    from perparb.engine import Engine
    from perparb.paper.assembly import Trading

ZERO = Decimal(0)
ONE = Decimal(1)


@dataclass
class Sample:
    """One point of the curve; money in USD-equivalent, exact."""

    ts_ns: int
    spread: Decimal  # realized + unrealized trading PnL
    funding: Decimal  # received (+) / paid (-)
    fees: Decimal  # paid
    gross: Decimal  # sum of |notional| of open legs at the mark
    net: Decimal  # sum of signed notionals

    @property
    def pnl(self) -> Decimal:
        return self.spread + self.funding - self.fees


@dataclass
class RoundTrip:
    id: str  # the opening intent's id
    strategy: str
    asset: str
    opened_ns: int
    entry_edge_bps: float | None
    legs: dict[tuple[str, str], Position] = field(default_factory=dict)  # (venue, symbol)
    opened: set[tuple[str, str]] = field(default_factory=set)  # legs that ever held a position
    sides: dict[tuple[str, str], str] = field(default_factory=dict)  # leg -> long | short
    closed_ns: int = 0
    spread: Decimal = ZERO  # in USD-equivalent once closed; settle units while open
    funding: Decimal = ZERO
    fees: Decimal = ZERO
    notional: Decimal = ZERO  # traded, sum of |qty * px|
    fills: int = 0

    @property
    def pair(self) -> str:
        longs = sorted(v for (v, _), s in self.sides.items() if s == "long")
        shorts = sorted(v for (v, _), s in self.sides.items() if s == "short")
        return f"{self.asset} long {'+'.join(longs) or '-'} / short {'+'.join(shorts) or '-'}"

    @property
    def net(self) -> Decimal:
        return self.spread + self.funding - self.fees

    @property
    def both_legs(self) -> bool:
        return "long" in self.sides.values() and "short" in self.sides.values()

    def flat(self) -> bool:
        return bool(self.opened) and all(p.size == 0 for p in self.legs.values())


class Observer:
    def __init__(self, step_ns: int) -> None:
        self.step_ns = step_ns
        self.samples: list[Sample] = []
        self.fills: list[Fill] = []
        self.funding: list[FundingPayment] = []
        self.transfers: list[Transfer] = []
        self.open_trips: dict[str, RoundTrip] = {}
        self.trips: list[RoundTrip] = []  # closed with both legs: the round trips
        self.unwound: list[RoundTrip] = []  # flat again without ever holding both legs
        self.entry_edges: list[float] = []
        self.lifetimes_s: list[float] = []
        self.records = 0
        self.first_ns = 0
        self.engine: Engine | None = None
        self.trading: Trading | None = None
        self._trip_of: dict[str, str] = {}  # intent id -> round trip id
        self._by_pair: dict[tuple[str, str], str] = {}  # (strategy, opportunity id) -> open round trip
        self._edges: dict[str, float] = {}  # open opportunity id -> its latest net edge
        self._marks: dict[tuple[str, str], Decimal] = {}  # the last mark seen per contract
        self._coin: dict[str, Decimal] = {}
        self._grid_started = False
        self.progress: Callable[[int, int], None] | None = None  # (records, now_ns) on each sweep

    # -- replay.Observer ----------------------------------------------------------------
    def start(self, engine: Engine, trading: Trading | None) -> None:
        self.engine, self.trading = engine, trading
        if trading is None:
            return
        bus = trading.bus
        bus.subscribe(OPPORTUNITIES, self._on_opportunity)
        bus.subscribe(TRADE_ORDERS, self._on_intent)
        bus.subscribe(EXECUTIONS, self._on_execution)
        bus.subscribe(LEDGER, self._on_ledger)

    def sweep(self, now_ns: int, records: int) -> None:
        self.records = records
        if not self._grid_started and self.engine is not None:  # the first record, not applied yet
            self._grid_started = True
            self.first_ns = now_ns
            self.engine.call_at(-(-now_ns // self.step_ns) * self.step_ns, self._sample_at)
        if self.progress is not None:
            self.progress(records, now_ns)

    # -- equity -----------------------------------------------------------------------------
    def _sample_at(self, due: int) -> None:
        self.samples.append(self.sample(due))
        assert self.engine is not None
        self.engine.call_at(due + self.step_ns, self._sample_at)

    def mark(self, pos: Position) -> Decimal | None:
        key = (pos.venue, pos.symbol)
        if self.trading is not None and pos.venue_symbol:
            px = mark_px(self.trading.view, pos.venue, pos.venue_symbol)
            if px:
                self._marks[key] = m = dec(px)
                self._coin[pos.asset] = m
        return self._marks.get(key)

    def usd(self, asset: str) -> Decimal:
        return ONE if asset in STABLE else self._coin.get(asset, ZERO)

    def sample(self, now: int) -> Sample:
        spread = funding = fees = gross = net = ZERO
        if self.trading is not None:
            book = self.trading.accounting.book
            with localcontext(_CTX):
                marks = {k: self.mark(p) for k, p in sorted(book.positions.items()) if p.size != 0}
                for key, pos in sorted(book.positions.items()):
                    px = self.usd(pos.settle)
                    m = marks.get(key)
                    u = pos.unrealized(m) if m else ZERO
                    spread += (pos.realized + u) * px
                    funding += pos.funding * px
                    fees += pos.fees * px
                    if m:
                        value = pos.notional(m) * px  # in settle: quote, or coins for inverse
                        gross += value
                        net += value if pos.size > 0 else -value
        return Sample(now, spread, funding, fees, gross, net)

    def capital(self) -> Decimal:
        """The collateral deposited in the paper accounts, USD-equivalent (coins at their
        last mark)."""
        with localcontext(_CTX):
            return sum((dec(t.amount) * self.usd(t.asset) for t in self.transfers), ZERO)

    # -- bus --------------------------------------------------------------------------------
    def _on_opportunity(self, msg: Message) -> None:
        if not isinstance(msg, OpportunityEvent):
            return
        o = msg.opp
        if msg.event == "close":
            self._edges.pop(o.id, None)
            self.lifetimes_s.append((o.ts_ns - o.first_seen_ns) / 1e9)
        else:
            self._edges[o.id] = o.edge_bps

    def _on_intent(self, msg: Message) -> None:
        if not isinstance(msg, TradeIntent):
            return
        if msg.action == "open":
            edge = self._edges.get(msg.opportunity_id)
            trip = RoundTrip(id=msg.id, strategy=msg.strategy, asset=msg.asset, opened_ns=msg.ts_ns,
                             entry_edge_bps=edge)
            if edge is not None:
                self.entry_edges.append(edge)
            self.open_trips[msg.id] = trip
            self._trip_of[msg.id] = msg.id
            self._by_pair[(msg.strategy, msg.opportunity_id)] = msg.id
            return
        root = self._trip_of.get(msg.parent_id) if msg.parent_id else None
        if root is None and msg.action == "close":
            root = self._by_pair.get((msg.strategy, msg.opportunity_id))
        if root is not None and root in self.open_trips:
            self._trip_of[msg.id] = root

    def _trip_for(self, f: Fill) -> RoundTrip | None:
        root = self._trip_of.get(f.intent_id)
        trip = self.open_trips.get(root) if root is not None else None
        if trip is not None:
            return trip
        # Orders of no strategy's intent (the kill switch flattening): the oldest round trip
        # holding the contract on the other side.
        for t in self.open_trips.values():
            pos = t.legs.get((f.venue, f.symbol))
            if pos is not None and pos.size != 0 and (pos.size > 0) != (f.side == BUY):
                return t
        return None

    def _on_execution(self, msg: Message) -> None:
        if not isinstance(msg, Fill):
            return
        self.fills.append(msg)
        trip = self._trip_for(msg)
        if trip is None:
            return
        key = (msg.venue, msg.symbol)
        pos = trip.legs.get(key)
        if pos is None:
            base, _, settle = parse_symbol(msg.symbol)
            pos = trip.legs[key] = Position(msg.venue, msg.symbol, msg.venue_symbol, base, settle,
                                            inverse=settle == base)
        q, px = dec(msg.qty), dec(msg.px)
        with localcontext(_CTX):
            if key not in trip.opened:
                trip.opened.add(key)
                trip.sides[key] = "long" if msg.side == BUY else "short"
            trip.spread += pos.trade(q if msg.side == BUY else -q, px) * self.usd(pos.settle)
            trip.fees += dec(msg.fee) * self.usd(msg.fee_asset)
            trip.notional += q * px
        trip.fills += 1
        if trip.flat():
            self._close(trip, msg.ts_ns)

    def _on_ledger(self, msg: Message) -> None:
        if isinstance(msg, Transfer):
            self.transfers.append(msg)
        elif isinstance(msg, FundingPayment):
            self.funding.append(msg)
            key = (msg.venue, msg.symbol)
            holders = [t for t in self.open_trips.values() if t.legs.get(key) and t.legs[key].size != 0]
            with localcontext(_CTX):
                total = sum((abs(t.legs[key].size) for t in holders), ZERO)
                for t in holders:  # shared contracts: by the size each round trip holds
                    t.funding += dec(msg.amount) * self.usd(msg.asset) * abs(t.legs[key].size) / total

    def _close(self, trip: RoundTrip, now: int) -> None:
        trip.closed_ns = now
        del self.open_trips[trip.id]
        (self.trips if trip.both_legs else self.unwound).append(trip)
