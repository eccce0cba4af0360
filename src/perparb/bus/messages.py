"""Messages on the bus: the trading pipeline's shared vocabulary.

Units as everywhere downstream of the instrument registry: quantities in units of the
canonical asset (``qty`` is always positive; ``side`` says the direction), prices per
one unit of it, integer-nanosecond engine timestamps, ccxt unified symbols. Money on the
bus is float; the ledger re-reads it exactly (Decimal of the float's shortest repr).

Every message carries ``v`` (schema version). A consumer that sees a larger ``v`` than
it knows must ignore fields it does not know, never guess; fields are only ever added.
Ids are deterministic strings made from engine time and counters, never random, so a
replay produces the same ids.
"""

from __future__ import annotations

import msgspec

from perparb.model import Opportunity

SCHEMA_VERSION = 1

BUY, SELL = "buy", "sell"
MARKET, IOC, POST_ONLY = "market", "ioc", "post_only"  # order types
TAKER, MAKER = "taker", "maker"


class Message(msgspec.Struct, kw_only=True, tag_field="type"):
    v: int = SCHEMA_VERSION


class OpportunityEvent(Message, tag="opportunity"):
    event: str  # open | update | close
    opp: Opportunity


class Leg(msgspec.Struct, kw_only=True):
    """One leg of an intent, as a strategy wants it."""

    venue: str
    symbol: str  # canonical, e.g. PEPE/USDT:USDT
    venue_symbol: str  # the venue's own, e.g. 1000PEPEUSDT
    side: str  # buy | sell
    qty: float  # base units, > 0
    order_type: str = MARKET
    limit_px: float | None = None  # per base unit; required for ioc and post_only
    reduce_only: bool = False


class TradeIntent(Message, tag="intent"):
    """Both legs of a pair (or one leg, for an unwind), decided together."""

    id: str
    ts_ns: int
    strategy: str
    action: str  # open | close | unwind | hedge | flatten
    asset: str
    legs: list[Leg]
    opportunity_id: str = ""
    reason: str = ""  # why (entry edge, convergence, stop, time limit, kill switch ...)
    parent_id: str = ""  # the pair intent a leg-risk follow-up (unwind, hedge) belongs to


class Order(Message, tag="order"):
    """A leg the risk engine approved, addressed to one venue's execution."""

    id: str
    intent_id: str
    strategy: str
    ts_ns: int  # when it was sent (engine time)
    venue: str
    symbol: str
    venue_symbol: str
    side: str
    qty: float
    order_type: str = MARKET
    limit_px: float | None = None
    reduce_only: bool = False


class CancelOrder(Message, tag="cancel"):
    order_id: str
    venue: str
    ts_ns: int


class OrderUpdate(Message, tag="order_update"):
    """Execution's word on an order. ``status``: accepted | rejected | partially_filled |
    filled | canceled | expired. ``reason`` (venue-style) on rejected, canceled, expired."""

    order_id: str
    intent_id: str
    ts_ns: int
    venue: str
    symbol: str
    status: str
    filled_qty: float = 0.0  # cumulative
    avg_px: float = 0.0
    reason: str = ""


class Fill(Message, tag="fill"):
    """One execution against the book. ``fee`` is in the settlement currency (``fee_asset``:
    USDT/USDC/USD for linear contracts, the coin for inverse ones); positive = paid."""

    id: str
    ts_ns: int
    venue: str
    symbol: str
    venue_symbol: str
    side: str
    qty: float
    px: float
    fee: float
    fee_asset: str
    liquidity: str  # taker | maker
    order_id: str
    intent_id: str
    strategy: str = ""


class FundingPayment(Message, tag="funding_payment"):
    """Funding at one settlement: ``amount`` > 0 received, < 0 paid, in ``asset`` (the
    settlement currency; the coin for inverse contracts). Longs pay a positive rate."""

    id: str
    ts_ns: int
    venue: str
    symbol: str
    venue_symbol: str
    position_qty: float  # signed base units at the settlement
    mark_px: float
    rate: float
    amount: float
    asset: str


class Transfer(Message, tag="transfer"):
    """Collateral in (> 0) or out (< 0) of a venue account."""

    id: str
    ts_ns: int
    venue: str
    asset: str
    amount: float
    note: str = ""


class RiskReject(Message, tag="risk_reject"):
    intent_id: str
    ts_ns: int
    strategy: str
    reason: str  # a short counted key: max_position, max_leverage, stale_quote, killed ...
    detail: str = ""


class KillSwitch(Message, tag="kill_switch"):
    ts_ns: int
    engaged: bool  # True: no new orders; False: resumed
    reason: str  # manual, max_daily_loss, max_drawdown, ledger_write_failed ...
    flatten: bool = False


class LegRiskEvent(Message, tag="leg_risk"):
    """One leg of a pair filled and the other did not within ``leg_timeout_ms``."""

    intent_id: str
    ts_ns: int
    strategy: str
    venue: str
    symbol: str
    unhedged_qty: float  # signed base units left without the other leg
    action: str  # unwind | hedge | none
    detail: str = ""


class PositionUpdate(Message, tag="position"):
    ts_ns: int
    venue: str
    symbol: str
    qty: float  # signed base units
    avg_entry_px: float
    mark_px: float
    unrealized_pnl: float
    realized_pnl: float
    liquidation_px: float | None
    liquidation_distance: float | None  # fraction of the mark price
    # Added in place (defaults keep older producers valid). Money in ``settle`` (the coin
    # for inverse contracts); ``realized_pnl`` is spread PnL only, funding and fees apart.
    venue_symbol: str = ""
    settle: str = ""
    notional: float = 0.0  # |position| at the mark, in the quote currency
    funding_pnl: float = 0.0
    fees: float = 0.0
    initial_margin: float = 0.0  # in settle
    maintenance_margin: float = 0.0  # in settle
    leverage: float = 0.0  # the venue account's gross notional / its equity


class PnlUpdate(Message, tag="pnl"):
    ts_ns: int
    equity: float  # quote currency (USD-equivalent), marked
    spread_pnl: float  # realized + unrealized, before funding and fees
    funding_pnl: float
    fees: float  # paid (positive) ; equity = collateral put in + spread_pnl + funding_pnl - fees
    realized_pnl: float = 0.0  # the realized part of spread_pnl
    unrealized_pnl: float = 0.0
    collateral: float = 0.0  # transfers in, USD-equivalent


TradingMessage = (OpportunityEvent | TradeIntent | Order | CancelOrder | OrderUpdate | Fill | FundingPayment
                  | Transfer | RiskReject | KillSwitch | LegRiskEvent | PositionUpdate | PnlUpdate)
