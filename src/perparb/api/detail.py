"""One opportunity's drill-down: its per-minute history, both books' depth to the size, the
slippage curve (net edge against size) and, for funding pairs, each leg's funding history.

Every figure is the scanner's own: the curve walks the same book levels with the same
formulas (``spread.net_at``, ``funding.carry_at``) the scanner used to find the pair, in
perparb's units (base quantities, prices per base unit, bps of the buy leg's notional).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from perparb.api.state import opportunity
from perparb.engine import Engine
from perparb.model import Level
from perparb.scanner.funding import carry_at
from perparb.scanner.legs import DEPTH, Leg
from perparb.scanner.lifecycle import MINUTE_NS
from perparb.scanner.spread import exit_cost, net_at, worst_px

CURVE_POINTS = 20
HISTORY_MINUTES = 60


class DetailError(Exception):
    """A request the drill-down cannot answer; ``status`` is the HTTP status to give."""

    def __init__(self, status: int, text: str) -> None:
        super().__init__(text)
        self.status = status


class DepthLevel(BaseModel):
    px: float = Field(description="Price per base unit")
    qty: float = Field(description="Base quantity at this level")
    cum_qty: float = Field(description="Base quantity from the best level to this one")
    cum_notional_quote: float = Field(description="Quote cost (asks) or proceeds (bids) of cum_qty")


class DepthSide(BaseModel):
    venue: str
    symbol: str
    side: str = Field(description="asks (the buy or long leg) or bids (the sell or short leg)")
    levels: list[DepthLevel] = Field(description="Best first, up to the level the size reaches")
    available_base: float = Field(description=f"Base quantity in the top {DEPTH} levels (what the scanner walks)")


class CurvePoint(BaseModel):
    size_base: float
    notional_quote: float = Field(description="Quote cost of the buy leg (funding: size at the long leg's mid)")
    buy_vwap: float
    sell_vwap: float
    buy_worst_px: float
    sell_worst_px: float
    gross_bps: float = Field(description="Before costs (funding: the funding received to the horizon)")
    edge_bps: float = Field(description="Net edge at this size, bps of notional_quote")
    net_profit_quote: float = Field(description="Net profit at this size, quote currency")


class MinutePoint(BaseModel):
    minute_ns: int = Field(description="Start of the minute, engine time")
    min_edge_bps: float
    max_edge_bps: float
    median_edge_bps: float
    median_basis_bps: float | None = Field(description="Median basis (sell mid against buy mid), bps")
    samples: int
    open_s: float = Field(description="Seconds of the minute the pair was open (closed spells)")


class FundingPointModel(BaseModel):
    ts_ns: int = Field(description="Engine time of the last update in that minute")
    rate: float = Field(description="Rate for the upcoming settlement, per interval")
    predicted_rate: float | None
    interval_h: float
    next_funding_ns: int


class FundingLeg(BaseModel):
    venue: str
    symbol: str
    points: list[FundingPointModel] = Field(description="Oldest first; one point per minute and settlement")


class PairHistory(BaseModel):
    minutes: list[MinutePoint] = Field(description=f"The last {HISTORY_MINUTES} minutes with samples, oldest first")
    hour: dict[str, Any] | None = Field(description="As /api/stats: open share and median net edge, last hour")
    day: dict[str, Any] | None = Field(description="The same over the last day")


class OpportunityDetail(BaseModel):
    id: str
    kind: str = Field(description="spread or funding")
    asset: str
    buy_venue: str = Field(description="Buy (spread) or long (funding) venue")
    sell_venue: str = Field(description="Sell (spread) or short (funding) venue")
    now_ns: int = Field(description="Engine time of this answer")
    open: dict[str, Any] | None = Field(description="The open opportunity as /api/opportunities shows it, or null")
    size_base: float = Field(description="The largest size of the curve and the depth shown")
    size_source: str = Field(description="request (?size=), opportunity (its size), or depth (what both books hold)")
    fees: dict[str, float] = Field(description="Taker fee rates used, buy and sell legs")
    exit_cost_per_unit: float | None = Field(description="Spread: estimated unwind cost per base unit, quote")
    depth: dict[str, DepthSide] = Field(description="buy: the buy leg's asks; sell: the sell leg's bids")
    slippage: list[CurvePoint] = Field(description=f"{CURVE_POINTS} sizes from size/{CURVE_POINTS} to size, "
                                       "each at most what both books hold")
    history: PairHistory
    funding: dict[str, FundingLeg] | None = Field(description="Funding pairs: long and short legs' history")


def split_id(engine: Engine, oid: str) -> tuple[str, str, str, str]:
    """``kind:asset:buy:sell``; venue ids may hold a colon (``ccxt:kraken``), so the split
    between the two venues is the one that names two known venues."""
    parts = oid.split(":", 2)
    if len(parts) != 3 or parts[0] not in ("spread", "funding"):
        raise DetailError(400, f"opportunity id {oid!r} is not kind:asset:buy_venue:sell_venue")
    kind, asset, rest = parts
    bits = rest.split(":")
    for i in range(1, len(bits)):
        buy, sell = ":".join(bits[:i]), ":".join(bits[i:])
        if buy in engine.status and sell in engine.status and buy != sell:
            return kind, asset.upper(), buy, sell
    raise DetailError(404, f"opportunity id {oid!r} does not name two known venues")


def _leg(engine: Engine, asset: str, venue: str, symbol: str | None) -> Leg | None:
    legs = [leg for leg in engine.scanner.legs.get(asset, {}).values() if leg.venue == venue]
    return next((leg for leg in legs if leg.inst.symbol == symbol), legs[0] if legs else None)


def depth_side(leg: Leg, levels: list[Level], side: str, size: float) -> DepthSide:
    out: list[DepthLevel] = []
    cum = notional = 0.0
    for px, qty in levels:
        if cum >= size and out:
            break
        cum += qty
        notional += px * qty
        out.append(DepthLevel(px=px, qty=qty, cum_qty=cum, cum_notional_quote=notional))
    return DepthSide(venue=leg.venue, symbol=leg.inst.symbol, side=side, levels=out,
                     available_base=sum(q for _, q in levels))


def sizes(size: float, available: float) -> list[float]:
    return [k * size / CURVE_POINTS for k in range(1, CURVE_POINTS + 1) if k * size / CURVE_POINTS <= available]


def detail(engine: Engine, oid: str, size: float | None = None) -> OpportunityDetail:
    kind, asset, buy_venue, sell_venue = split_id(engine, oid)
    oid = f"{kind}:{asset}:{buy_venue}:{sell_venue}"
    sc, now = engine.scanner, engine.now_ns
    opp = sc.lifecycle.active.get(oid)
    buy = _leg(engine, asset, buy_venue, opp.buy_symbol if opp else None)
    sell = _leg(engine, asset, sell_venue, opp.sell_symbol if opp else None)
    if buy is None or sell is None:
        missing = buy_venue if buy is None else sell_venue
        raise DetailError(404, f"{asset} is not quoted on {missing}")
    asks, bids = buy.asks(DEPTH), sell.bids(DEPTH)
    available = min(sum(q for _, q in asks), sum(q for _, q in bids))
    if size is not None:
        source = "request"
    elif opp is not None:
        size, source = opp.size_base, "opportunity"
    else:
        size, source = available, "depth"
    fee_b, fee_s = sc.fee(buy.inst), sc.fee(sell.inst)
    bt, st = buy.top(), sell.top()
    exit_unit: float | None = None
    curve: list[CurvePoint] = []
    b_bid, b_ask = bt
    s_bid, s_ask = st
    if b_bid is not None and b_ask is not None and s_bid is not None and s_ask is not None and size > 0:
        if kind == "spread":
            exit_unit = exit_cost((b_bid, b_ask), (s_bid, s_ask), fee_b, fee_s)
            for q in sizes(size, available):
                cost, proceeds, net = net_at(asks, bids, q, fee_b, fee_s, exit_unit)
                curve.append(_point(q, cost, cost, proceeds, (proceeds - cost), net, asks, bids))
        elif buy.funding is not None and sell.funding is not None:
            mid_l, mid_s = (b_bid[0] + b_ask[0]) / 2, (s_bid[0] + s_ask[0]) / 2
            h = sc.settings.funding_horizon_h
            for q in sizes(size, available):
                cost, proceeds, received, net = carry_at(buy.funding, sell.funding, asks, bids, mid_l, mid_s, q,
                                                         fee_b, fee_s, h, now)
                curve.append(_point(q, q * mid_l, cost, proceeds, received, net, asks, bids))
    lc = sc.lifecycle
    stats = lc.stats.get(oid)
    minutes: list[MinutePoint] = []
    if stats is not None:
        lo = now // MINUTE_NS - HISTORY_MINUTES
        for b in stats.buckets:
            if b.minute > lo and b.edges:
                edges, bases = sorted(b.edges), sorted(b.bases)
                minutes.append(MinutePoint(
                    minute_ns=b.minute * MINUTE_NS, min_edge_bps=edges[0], max_edge_bps=edges[-1],
                    median_edge_bps=_median(edges), median_basis_bps=_median(bases) if bases else None,
                    samples=len(edges), open_s=b.open_ns / 1e9))
    funding = None
    if kind == "funding":
        funding = {name: FundingLeg(venue=leg.venue, symbol=leg.inst.symbol, points=[
            FundingPointModel(ts_ns=t, rate=r, predicted_rate=p, interval_h=i, next_funding_ns=n)
            for t, r, p, i, n in leg.funding_hist]) for name, leg in (("long", buy), ("short", sell))}
    return OpportunityDetail(
        id=oid, kind=kind, asset=asset, buy_venue=buy_venue, sell_venue=sell_venue, now_ns=now,
        open=opportunity(opp) if opp is not None else None, size_base=size, size_source=source,
        fees={"buy": fee_b, "sell": fee_s}, exit_cost_per_unit=exit_unit,
        depth={"buy": depth_side(buy, asks, "asks", size), "sell": depth_side(sell, bids, "bids", size)},
        slippage=curve,
        history=PairHistory(minutes=minutes, hour=lc.summary(oid, now, 60), day=lc.summary(oid, now, 1440)),
        funding=funding)


def _point(q: float, notional: float, cost: float, proceeds: float, gross: float, net: float,
           asks: list[Level], bids: list[Level]) -> CurvePoint:
    return CurvePoint(size_base=q, notional_quote=notional, buy_vwap=cost / q, sell_vwap=proceeds / q,
                      buy_worst_px=worst_px(asks, q), sell_worst_px=worst_px(bids, q),
                      gross_bps=gross / notional * 1e4, edge_bps=net / notional * 1e4, net_profit_quote=net)


def _median(xs: list[float]) -> float:
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2
