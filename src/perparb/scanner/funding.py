"""Funding carry: long where funding is low, short where it is high.

Rates are per settlement interval; each contract's own interval turns them into per-hour
rates (a 1 h contract at 0.01 % pays eight times what an 8 h contract at 0.01 % pays per
day). A positive rate means longs pay shorts. Over a horizon, each leg receives funding
at the settlements it actually has before the horizon (from its next settlement time and
its interval), at the current rate for the first settlement and the venue's predicted
rate for later ones where it publishes one. The expected net carry subtracts entry and
exit taker fees on both legs and the cost of crossing each book at the chosen size
(entry, and the same again estimated for the exit), measured against the mid prices.
"""

from __future__ import annotations

from perparb.model import Funding, Level, Opportunity
from perparb.scanner.legs import BELOW_MIN_SIZE, BELOW_THRESHOLD, DepthCache, Leg
from perparb.scanner.spread import vwap_cost, worst_px

HOUR_NS = 3_600_000_000_000
HOURS_PER_YEAR = 24 * 365


def settlements(f: Funding, now_ns: int, horizon_ns: int) -> int:
    """How many settlements of ``f``'s contract fall in (now, now + horizon]."""
    step = int(f.interval_h * HOUR_NS)
    if step <= 0:
        return 0
    t = f.next_funding_ns
    if t <= now_ns:  # the venue has not published the next time yet: roll forward
        t += ((now_ns - t) // step + 1) * step
    end = now_ns + horizon_ns
    return 0 if t > end else int((end - t) // step) + 1


def rate_sum(f: Funding, n: int) -> float:
    """Sum of the rates of the next ``n`` settlements."""
    if n <= 0:
        return 0.0
    later = f.predicted_rate if f.predicted_rate is not None else f.rate
    return f.rate + later * (n - 1)


def next_settlement_in_s(next_ns: int, interval_h: float, now_ns: int) -> float | None:
    """Seconds from ``now_ns`` (engine time) to the leg's next settlement; a published time
    already passed rolls forward by whole intervals. None when the venue gave no time."""
    if next_ns <= 0:
        return None
    step = int(interval_h * HOUR_NS)
    if next_ns <= now_ns and step > 0:
        next_ns += ((now_ns - next_ns) // step + 1) * step
    return (next_ns - now_ns) / 1e9


def break_even_h(o: Opportunity) -> float | None:
    """Hours until the carry pays the entry and exit costs, at the horizon's average carry:
    horizon * (funding - net carry) / funding. None when the carry is not positive."""
    if o.funding_quote <= 0.0:
        return None
    return o.horizon_h * (o.funding_quote - o.net_carry_quote) / o.funding_quote


def funding_timing(o: Opportunity) -> dict[str, float | None]:
    """The countdowns to each leg's next settlement at ``o.ts_ns`` and the break-even time."""
    return {"long_next_funding_in_s": next_settlement_in_s(o.long_next_funding_ns, o.long_interval_h, o.ts_ns),
            "short_next_funding_in_s": next_settlement_in_s(o.short_next_funding_ns, o.short_interval_h, o.ts_ns),
            "break_even_h": break_even_h(o)}


def hourly(f: Funding) -> float:
    return f.rate / f.interval_h if f.interval_h > 0 else 0.0


def carry_at(fl: Funding, fs: Funding, asks: list[Level], bids: list[Level], mid_l: float, mid_s: float,
             size: float, fee_l: float, fee_s: float, horizon_h: float,
             now_ns: int) -> tuple[float, float, float, float]:
    """(cost, proceeds, funding received, net carry) of ``size`` long at ``asks`` and short
    at ``bids`` to the horizon, after fees and crossing both books on entry and exit."""
    cost, proceeds = vwap_cost(asks, size), vwap_cost(bids, size)
    crossing = (cost - size * mid_l) + (size * mid_s - proceeds)
    fees = fee_l * cost + fee_s * proceeds
    horizon_ns = int(horizon_h * HOUR_NS)
    received = (size * mid_s * rate_sum(fs, settlements(fs, now_ns, horizon_ns))
                - size * mid_l * rate_sum(fl, settlements(fl, now_ns, horizon_ns)))
    return cost, proceeds, received, received - 2.0 * (fees + crossing)


def evaluate_carry(asset: str, long: Leg, short: Leg, fee_l: float, fee_s: float, notional: float,
                   horizon_h: float, min_apr: float, now_ns: int,
                   depth: DepthCache | None = None) -> tuple[Opportunity | None, str | None]:
    fl, fs = long.funding, short.funding
    assert fl is not None and fs is not None
    apr = (hourly(fs) - hourly(fl)) * HOURS_PER_YEAR
    predicted_apr = None
    if fl.predicted_rate is not None or fs.predicted_rate is not None:
        pl = fl.predicted_rate if fl.predicted_rate is not None else fl.rate
        ps = fs.predicted_rate if fs.predicted_rate is not None else fs.rate
        predicted_apr = (ps / fs.interval_h - pl / fl.interval_h) * HOURS_PER_YEAR
    if apr < min_apr:
        return None, BELOW_THRESHOLD
    if depth is None:
        depth = DepthCache()
    asks, bids = depth.asks(long), depth.bids(short)
    la, lb, sa, sb = long.best_ask(), long.best_bid(), short.best_ask(), short.best_bid()
    if not asks or not bids or la is None or lb is None or sa is None or sb is None:
        return None, BELOW_MIN_SIZE
    mid_l, mid_s = (la[0] + lb[0]) / 2, (sa[0] + sb[0]) / 2
    size = notional / mid_l
    if depth.ask_size(long) < size or depth.bid_size(short) < size:
        return None, BELOW_MIN_SIZE  # the books cannot fill the chosen size
    cost, proceeds, received, net = carry_at(fl, fs, asks, bids, mid_l, mid_s, size, fee_l, fee_s, horizon_h, now_ns)
    if net <= 0.0:
        return None, BELOW_THRESHOLD
    return Opportunity(
        id=f"funding:{asset}:{long.venue}:{short.venue}", kind="funding", asset=asset, buy_venue=long.venue,
        sell_venue=short.venue, buy_symbol=long.inst.symbol, sell_symbol=short.inst.symbol,
        buy_px=cost / size, sell_px=proceeds / size, size_base=size, notional_quote=size * mid_l,
        gross_bps=received / (size * mid_l) * 1e4, edge_bps=net / (size * mid_l) * 1e4, apr=apr,
        predicted_apr=predicted_apr, net_carry_quote=net, funding_quote=received, horizon_h=horizon_h,
        basis_bps=(mid_s - mid_l) / mid_l * 1e4, long_rate=fl.rate, short_rate=fs.rate,
        long_predicted_rate=fl.predicted_rate, short_predicted_rate=fs.predicted_rate,
        long_interval_h=fl.interval_h, short_interval_h=fs.interval_h,
        long_next_funding_ns=fl.next_funding_ns, short_next_funding_ns=fs.next_funding_ns, ts_ns=now_ns,
        net_profit_quote=net, buy_worst_px=worst_px(asks, size), sell_worst_px=worst_px(bids, size),
    ), None
