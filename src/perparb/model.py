"""Normalized events and instruments.

Downstream of the instrument registry every quantity is in units of the underlying asset,
every price is per one unit of it, and every timestamp is integer nanoseconds. Each event
carries the venue's own timestamp (``ts_exchange_ns``) and the local receive time
(``recv_ns``); nothing downstream reads the wall clock.
"""

from __future__ import annotations

from collections.abc import Sequence

import msgspec

from perparb.levels import to_levels

Level = tuple[float, float]
# Price and size exactly as the venue wrote them: checksums are computed over this text.
TextLevels = tuple[list[tuple[str, str]], list[tuple[str, str]]]


class Instrument(msgspec.Struct, kw_only=True, frozen=True):
    """One venue contract and how to turn its native units into comparable ones.

    ``contract_size`` is what one native quantity unit is worth: coin units of the quoted
    instrument for linear contracts (OKX ``ctVal``, Gate ``quanto_multiplier``), USD for
    inverse ones. ``price_scale`` is how many units of the canonical asset one unit of the
    venue's base stands for (1000 for ``1000PEPE`` and ``kPEPE``).
    Native ``tick_size``, ``lot_size`` and ``min_qty`` stay in the venue's own units.
    """

    venue: str
    venue_symbol: str
    symbol: str
    asset: str
    quote: str
    settle: str
    inverse: bool = False
    contract_size: float = 1.0
    price_scale: float = 1.0
    tick_size: float = 0.0
    lot_size: float = 0.0
    min_qty: float = 0.0
    min_notional: float = 0.0
    taker_fee: float = 0.0005
    maker_fee: float = 0.0002
    funding_interval_h: float = 8.0
    status: str = "active"
    source: str = ""

    def px(self, native_px: float) -> float:
        """Price per one unit of the canonical asset."""
        return native_px / self.price_scale

    def qty(self, native_qty: float, native_px: float) -> float:
        """Quantity in units of the canonical asset."""
        if self.inverse:
            return native_qty * self.contract_size / native_px if native_px else 0.0
        return native_qty * self.contract_size * self.price_scale

    def levels(self, rows: Sequence[Sequence[float]]) -> list[Level]:
        """Native ``[px, qty, ...]`` rows as normalized levels: ``px`` and ``qty`` of every
        row, in one pass (compiled: ``perparb.levels``) because this runs for every level of
        every book message."""
        return to_levels(rows, self.price_scale, self.contract_size, self.inverse)

    def native_px(self, px: float) -> float:
        return px * self.price_scale

    def native_qty(self, qty: float, px: float) -> float:
        if self.inverse:
            return qty * px / self.contract_size
        return qty / (self.contract_size * self.price_scale)


class Quote(msgspec.Struct, tag="quote", tag_field="type", gc=False):
    """Best bid and ask. Positional construction is allowed (hot path), in this field order."""

    venue: str
    symbol: str
    venue_symbol: str
    bid_px: float
    bid_qty: float
    ask_px: float
    ask_qty: float
    ts_exchange_ns: int
    recv_ns: int


class BookSnapshot(msgspec.Struct, tag="book_snapshot", tag_field="type", kw_only=True, gc=False):
    """A full book. ``seq`` is the venue's sequence of this state (0 when it has none)."""

    venue: str
    symbol: str
    venue_symbol: str
    bids: list[Level]
    asks: list[Level]
    seq: int = 0
    checksum: int | None = None
    raw_levels: TextLevels | None = None
    ts_exchange_ns: int
    recv_ns: int


class BookDelta(msgspec.Struct, tag="book_delta", tag_field="type", kw_only=True, gc=False):
    """Absolute level sizes; a size of 0 removes the level.

    ``first_seq``..``seq`` is the range of venue updates this message covers and
    ``prev_seq`` the ``seq`` the previous message must have had (None: the venue
    gives no chain for this message). ``checksum`` and ``raw_levels`` (the levels as
    the venue wrote them, native units) are set only when the venue sent a checksum.
    """

    venue: str
    symbol: str
    venue_symbol: str
    bids: list[Level]
    asks: list[Level]
    first_seq: int = 0
    seq: int = 0
    prev_seq: int | None = None
    checksum: int | None = None
    raw_levels: TextLevels | None = None
    ts_exchange_ns: int
    recv_ns: int


class Trade(msgspec.Struct, tag="trade", tag_field="type", kw_only=True, gc=False):
    venue: str
    symbol: str
    venue_symbol: str
    px: float
    qty: float
    side: str  # taker side: buy | sell
    trade_id: str
    ts_exchange_ns: int
    recv_ns: int


class Funding(msgspec.Struct, tag="funding", tag_field="type", kw_only=True, gc=False):
    """Funding state of one contract.

    ``rate`` is the rate for the upcoming settlement at ``next_funding_ns`` (per interval,
    not annualized); ``predicted_rate`` the one after it where the venue publishes one.
    """

    venue: str
    symbol: str
    venue_symbol: str
    rate: float
    predicted_rate: float | None = None
    interval_h: float
    next_funding_ns: int
    mark_px: float | None = None
    index_px: float | None = None
    open_interest: float | None = None  # base units, where the venue's funding channel gives it
    volume_24h_quote: float | None = None  # quote currency traded in 24 h, where given
    ts_exchange_ns: int
    recv_ns: int


MarketEvent = Quote | BookSnapshot | BookDelta | Trade | Funding


class VenueStatus(msgspec.Struct, kw_only=True):
    venue: str
    state: str = "disconnected"  # connecting | connected | disconnected
    connected: bool = False
    messages: int = 0
    decode_errors: int = 0
    errors_by_reason: dict[str, int] = {}  # the decode errors by reason (malformed, bad_price, ...)
    unknown_symbols: int = 0
    reconnects: int = 0
    last_msg_ns: int = 0
    connected_since_ns: int = 0
    last_error: str = ""


class Opportunity(msgspec.Struct, kw_only=True):
    """An executable opportunity, as of ``ts_ns`` (engine time).

    Spread: buy ``size_base`` on ``buy_venue`` at the volume-weighted ``buy_px``, sell it
    on ``sell_venue`` at ``sell_px``; ``edge_bps`` is net of taker fees on both legs and the
    estimated exit cost, ``gross_bps`` before them; ``top_size_base`` is what the top
    levels alone allow.
    Funding: long on ``buy_venue``, short on ``sell_venue``; ``apr`` is the annualized
    funding differential from each contract's own interval, ``net_carry_quote`` the
    expected carry to ``horizon_h`` after fees both ways and crossing the spread at
    ``size_base``; ``edge_bps`` is that carry in bps of ``notional_quote``.
    Both: ``net_profit_quote`` is the expected net profit in quote currency at ``size_base``
    (spread: size times net edge; funding: the net carry), and ``buy_worst_px`` /
    ``sell_worst_px`` the worst book level each leg reaches at that size.
    """

    id: str
    kind: str  # spread | funding
    asset: str
    buy_venue: str
    sell_venue: str
    buy_symbol: str
    sell_symbol: str
    buy_px: float = 0.0
    sell_px: float = 0.0
    size_base: float = 0.0
    notional_quote: float = 0.0
    top_size_base: float = 0.0
    gross_bps: float = 0.0
    edge_bps: float = 0.0
    apr: float = 0.0
    predicted_apr: float | None = None
    net_carry_quote: float = 0.0
    funding_quote: float = 0.0
    horizon_h: float = 0.0
    basis_bps: float = 0.0
    long_rate: float = 0.0
    short_rate: float = 0.0
    long_predicted_rate: float | None = None
    short_predicted_rate: float | None = None
    long_interval_h: float = 0.0
    short_interval_h: float = 0.0
    long_next_funding_ns: int = 0
    short_next_funding_ns: int = 0
    first_seen_ns: int = 0
    ts_ns: int = 0
    peak_edge_bps: float = 0.0
    net_profit_quote: float = 0.0
    buy_worst_px: float = 0.0
    sell_worst_px: float = 0.0
    close_reason: str = ""  # on close: the gate or threshold that ended it, or "no_gap"
