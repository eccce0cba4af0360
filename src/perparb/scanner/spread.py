"""Cross-venue price spreads, executable at a stated size, net of every cost we know.

Buy on A at A's asks and sell on B at B's bids, walking both books level by level. A unit
is worth taking only if its own (marginal) net edge clears the threshold:

    marginal = (bid_B·(1 - fee_B) - ask_A·(1 + fee_A) - exit) / ask_A

where ``exit`` per unit is the estimated cost of unwinding later: crossing half of each
venue's current spread (selling A at its bid and buying B at its ask once the prices
have converged) plus taker fees on both exit legs. The walk stops at the first level
whose marginal edge is below the threshold, so losing units are never averaged into a
profitable top. The size is then rounded down to what both legs can order (lot size,
minimum quantity, minimum notional); a size that cannot be ordered is no opportunity.
"""

from __future__ import annotations

import math

from perparb.model import Instrument, Level, Opportunity
from perparb.scanner.legs import BELOW_MIN_SIZE, BELOW_THRESHOLD, DEPTH, DepthCache, Leg

__all__ = ["DEPTH", "evaluate_pair", "orderable", "vwap_cost", "worst_px"]


def orderable(inst: Instrument, size: float, px: float) -> float:
    """The largest base quantity ≤ ``size`` one order on ``inst`` can carry (0: none)."""
    native = inst.native_qty(size, px)
    lot = inst.lot_size
    if lot > 0.0:
        native = math.floor(native / lot + 1e-9) * lot
    if native <= 0.0 or native < inst.min_qty:
        return 0.0
    base = inst.qty(native, px)
    if inst.min_notional and base * px < inst.min_notional:
        return 0.0
    return min(base, size)


def vwap_cost(levels: list[Level], size: float) -> float:
    """Cost of ``size`` taken from ``levels`` (price, qty), best first."""
    left, cost = size, 0.0
    for px, qty in levels:
        take = qty if qty < left else left
        cost += take * px
        left -= take
        if left <= 0.0:
            break
    return cost


def worst_px(levels: list[Level], size: float) -> float:
    """The price of the last level ``size`` reaches in ``levels`` (price, qty), best first."""
    left, last = size, 0.0
    for px, qty in levels:
        last = px
        left -= qty
        if left <= 0.0:
            break
    return last


def top_unit_clears(a_top: tuple[Level | None, Level | None], b_top: tuple[Level | None, Level | None],
                    fee_a: float, fee_b: float, min_edge_bps: float) -> bool:
    """Whether the first unit (a's best ask against b's best bid) clears the threshold net
    of both fees and the exit: the test that rejects most candidates, before any depth."""
    (a_bid, a_ask), (b_bid, b_ask) = a_top, b_top
    if a_ask is None or a_bid is None or b_bid is None or b_ask is None:
        return False
    pa, pb = a_ask[0], b_bid[0]
    exit_unit = 0.5 * ((pa - a_bid[0]) + (b_ask[0] - pb)) + fee_a * a_bid[0] + fee_b * b_ask[0]
    return not (pb * (1.0 - fee_b) - pa * (1.0 + fee_a) - exit_unit) / pa < min_edge_bps * 1e-4


def exit_cost(a_top: tuple[Level, Level], b_top: tuple[Level, Level], fee_a: float, fee_b: float) -> float:
    """Estimated cost per unit of unwinding later (half of each venue's spread, taker fees
    on both exit legs); ``*_top`` are (best bid, best ask)."""
    (a_bid, a_ask), (b_bid, b_ask) = a_top, b_top
    return 0.5 * ((a_ask[0] - a_bid[0]) + (b_ask[0] - b_bid[0])) + fee_a * a_bid[0] + fee_b * b_ask[0]


def net_at(asks: list[Level], bids: list[Level], size: float, fee_a: float, fee_b: float,
           exit_unit: float) -> tuple[float, float, float]:
    """(cost, proceeds, net) of buying ``size`` from ``asks`` and selling it into ``bids``,
    after taker fees on both legs and the exit estimate: the scanner's figure at a size."""
    cost, proceeds = vwap_cost(asks, size), vwap_cost(bids, size)
    return cost, proceeds, proceeds * (1.0 - fee_b) - cost * (1.0 + fee_a) - exit_unit * size


def basis_bps(a_top: tuple[Level, Level], b_top: tuple[Level, Level]) -> float:
    """Mid of b against mid of a, bps of a's mid."""
    mid_a, mid_b = (a_top[0][0] + a_top[1][0]) / 2, (b_top[0][0] + b_top[1][0]) / 2
    return (mid_b - mid_a) / mid_a * 1e4


def evaluate_pair(asset: str, a: Leg, b: Leg, a_top: tuple[Level | None, Level | None],
                  b_top: tuple[Level | None, Level | None], fee_a: float, fee_b: float, min_edge_bps: float,
                  max_notional: float, now_ns: int,
                  depth: DepthCache | None = None) -> tuple[Opportunity | None, str | None]:
    """Buy on ``a``, sell on ``b``. Both legs already passed the gates and b's best bid is
    above a's best ask; ``*_top`` are their (best bid, best ask). Returns the opportunity,
    or the reason there is none."""
    (a_bid, a_ask), (b_bid, b_ask) = a_top, b_top
    if a_ask is None or a_bid is None or b_bid is None or b_ask is None:
        return None, BELOW_THRESHOLD
    exit_unit = exit_cost((a_bid, a_ask), (b_bid, b_ask), fee_a, fee_b)
    threshold = min_edge_bps * 1e-4
    pa, pb = a_ask[0], b_bid[0]
    if (pb * (1.0 - fee_b) - pa * (1.0 + fee_a) - exit_unit) / pa < threshold:
        return None, BELOW_THRESHOLD  # not even the top unit: no need to look deeper
    if depth is None:
        depth = DepthCache()
    asks, bids = depth.asks(a), depth.bids(b)
    size = cost = proceeds = top_size = 0.0
    i = j = 0
    qa, qb = asks[0][1], bids[0][1]
    while True:
        pa, pb = asks[i][0], bids[j][0]
        if (pb * (1.0 - fee_b) - pa * (1.0 + fee_a) - exit_unit) / pa < threshold:
            break
        q = qa if qa < qb else qb
        if i == 0 and j == 0:
            top_size = q
        if max_notional > 0.0 and cost + q * pa >= max_notional:
            q = (max_notional - cost) / pa
            size += q
            cost += q * pa
            proceeds += q * pb
            break
        size += q
        cost += q * pa
        proceeds += q * pb
        qa -= q
        qb -= q
        if qa <= 0.0:
            i += 1
            if i == len(asks):
                break
            qa = asks[i][1]
        if qb <= 0.0:
            j += 1
            if j == len(bids):
                break
            qb = bids[j][1]
    if size <= 0.0:
        return None, BELOW_THRESHOLD
    # Round to what both legs can order; the second pass makes each leg carry the other's size.
    px_a, px_b = cost / size, proceeds / size
    s = min(orderable(a.inst, size, px_a), orderable(b.inst, size, px_b))
    s = min(orderable(a.inst, s, px_a), orderable(b.inst, s, px_b)) if s > 0.0 else 0.0
    if s <= 0.0:
        return None, BELOW_MIN_SIZE
    cost, proceeds, net = net_at(asks, bids, s, fee_a, fee_b, exit_unit)
    top = min(top_size, s)
    return Opportunity(
        id=f"spread:{asset}:{a.venue}:{b.venue}", kind="spread", asset=asset, buy_venue=a.venue,
        sell_venue=b.venue, buy_symbol=a.inst.symbol, sell_symbol=b.inst.symbol, buy_px=cost / s,
        sell_px=proceeds / s, size_base=s, notional_quote=cost, top_size_base=top,
        gross_bps=(proceeds - cost) / cost * 1e4, edge_bps=net / cost * 1e4, ts_ns=now_ns,
        net_profit_quote=net, buy_worst_px=worst_px(asks, s), sell_worst_px=worst_px(bids, s),
        basis_bps=basis_bps((a_bid, a_ask), (b_bid, b_ask)),
    ), None
