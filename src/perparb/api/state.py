"""Read-only views of a running engine, as plain JSON-able data.

The REST API, the WebSocket snapshots and the metrics all read the engine through these
functions, so every surface shows the same numbers.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

import msgspec

from perparb.engine import Engine
from perparb.feeds.booksync import INVALID, RESYNCING, SYNCED
from perparb.model import Opportunity
from perparb.scanner.funding import HOURS_PER_YEAR, funding_timing
from perparb.scanner.legs import Leg
from perparb.scanner.spread import evaluate_pair


class Rates:
    """Messages per second per venue over the last few seconds (sampled by the watch loop)."""

    def __init__(self, window_s: float = 5.0) -> None:
        self.window_ns = int(window_s * 1e9)
        self.samples: deque[tuple[int, dict[str, int]]] = deque()

    def sample(self, engine: Engine, now_ns: int) -> None:
        self.samples.append((now_ns, {v: st.messages for v, st in engine.status.items()}))
        while len(self.samples) > 2 and now_ns - self.samples[0][0] > self.window_ns:
            self.samples.popleft()

    def rate(self, venue: str) -> float:
        if len(self.samples) < 2:
            return 0.0
        (t0, m0), (t1, m1) = self.samples[0], self.samples[-1]
        return (m1.get(venue, 0) - m0.get(venue, 0)) / ((t1 - t0) / 1e9) if t1 > t0 else 0.0


class SpreadSeries:
    """Top-of-book gross spread both ways, sampled each second for the pairs someone asked
    about in the last ``keep_s`` (the dashboard's chart starts full instead of empty)."""

    def __init__(self, keep_s: float = 900.0) -> None:
        self.keep_ns = int(keep_s * 1e9)
        self.wanted: dict[tuple[str, str, str], int] = {}  # pair -> last asked (engine time)
        self.points: dict[tuple[str, str, str], deque[tuple[int, float | None, float | None]]] = {}

    def want(self, pair: tuple[str, str, str], now_ns: int) -> None:
        self.wanted[pair] = now_ns

    def sample(self, engine: Engine) -> None:
        now = engine.now_ns
        for pair, asked in list(self.wanted.items()):
            if now - asked > self.keep_ns:
                del self.wanted[pair]
                self.points.pop(pair, None)
                continue
            legs = engine.scanner.legs.get(pair[0], {})
            a = next((leg for leg in legs.values() if leg.venue == pair[1]), None)
            b = next((leg for leg in legs.values() if leg.venue == pair[2]), None)
            if a is None or b is None:
                continue
            (a_bid, a_ask), (b_bid, b_ask) = a.top(), b.top()
            ab = (b_bid[0] - a_ask[0]) / a_ask[0] * 1e4 if a_ask and b_bid else None
            ba = (a_bid[0] - b_ask[0]) / b_ask[0] * 1e4 if b_ask and a_bid else None
            self.points.setdefault(pair, deque(maxlen=int(self.keep_ns // 1_000_000_000))).append((now, ab, ba))

    def series(self, pair: tuple[str, str, str]) -> list[dict[str, Any]]:
        return [{"ts_ns": t, "a_to_b_gross_bps": ab, "b_to_a_gross_bps": ba} for t, ab, ba in self.points.get(pair, ())]


STALE = "stale"


def venue_health(engine: Engine, venue: str) -> dict[str, Any]:
    """A venue's state judged by its data, not only its socket: ``connected`` venues whose
    newest price data (or, before any, the connection itself) is older than the scanner's
    staleness limit are ``stale``, with the reason. Ages are in engine time."""
    st = engine.status[venue]
    now = engine.now_ns
    limit_ns = engine.scanner.max_age_ns(venue)
    last = engine.scanner.venue_data_ns.get(venue, 0)
    out: dict[str, Any] = {"state": st.state, "data_age_ms": round((now - last) / 1e6, 1) if last else None,
                           "stale_after_ms": limit_ns / 1e6, "stale": False, "reason": None}
    if not st.connected:
        out["reason"] = st.state + (f" ({st.last_error})" if st.last_error else "")
    elif now - max(last, st.connected_since_ns) > limit_ns:
        out["state"], out["stale"] = STALE, True
        out["reason"] = (f"no price data for {out['data_age_ms']:.0f} ms (limit {limit_ns / 1e6:.0f} ms)" if last
                         else f"no price data since connecting {(now - st.connected_since_ns) / 1e6:.0f} ms ago "
                              f"(limit {limit_ns / 1e6:.0f} ms)")
    return out


def health(engine: Engine) -> tuple[str, dict[str, dict[str, Any]]]:
    """``ok`` (every venue connected with fresh data), ``degraded`` (some venue stale or
    down) or ``unavailable`` (none connected), and each venue's health."""
    per = {v: venue_health(engine, v) for v in engine.status}
    if not any(st.connected for st in engine.status.values()):
        return "unavailable", per
    return ("degraded" if any(h["reason"] for h in per.values()) else "ok"), per


def venues(engine: Engine, rates: Rates | None = None, now_ns: int | None = None) -> list[dict[str, Any]]:
    now_ns = now_ns or time.time_ns()
    out = []
    for v, st in engine.status.items():
        books = [sb for (bv, _), sb in engine.books.items() if bv == v]
        h = venue_health(engine, v)
        out.append({
            "venue": v, "state": h["state"], "connected": st.connected, "stale": h["stale"],
            "data_age_ms": h["data_age_ms"], "stale_after_ms": h["stale_after_ms"], "reason": h["reason"],
            "messages": st.messages,
            "messages_per_s": round(rates.rate(v), 2) if rates else None,
            "last_message_age_ms": round((now_ns - st.last_msg_ns) / 1e6, 1) if st.last_msg_ns else None,
            "reconnects": st.reconnects, "decode_errors": st.decode_errors,
            "decode_errors_by_reason": dict(st.errors_by_reason), "unknown_symbols": st.unknown_symbols,
            "last_error": st.last_error,
            "books": {"total": len(books), "synced": sum(sb.state == SYNCED for sb in books),
                      "resyncing": sum(sb.state == RESYNCING for sb in books),
                      "invalid": sum(sb.state == INVALID for sb in books),
                      "one_sided": sum(sb.state == SYNCED and not (sb.book.bids and sb.book.asks) for sb in books)},
            "book_resyncs": sum(sb.resyncs for sb in books), "book_gaps": sum(sb.gaps for sb in books),
            "checksum_failures": sum(sb.checksum_failures for sb in books),
            "checksums_verified": sum(sb.checksums_ok for sb in books),
            "crossed_books": sum(sb.crossed for sb in books),
        })
    return out


def books(engine: Engine, venue: str | None = None, asset: str | None = None) -> list[dict[str, Any]]:
    """Each book's sync state and counters."""
    rows = []
    for (v, sym), sb in sorted(engine.books.items()):
        inst = engine.adapters[v].table.get(sym)
        if (venue and v != venue) or (asset and (inst is None or inst.asset != asset.upper())):
            continue
        bid, ask = sb.book.best_bid(), sb.book.best_ask()
        rows.append({
            "venue": v, "venue_symbol": sym, "symbol": inst.symbol if inst else None, "state": sb.state,
            "family": sb.family, "seq": sb.seq, "levels": len(sb.book.bids) + len(sb.book.asks),
            "best_bid": bid[0] if bid else None, "best_ask": ask[0] if ask else None,
            "one_sided": bid is None or ask is None,
            "age_ms": round((engine.now_ns - sb.last_ns) / 1e6, 1) if sb.last_ns else None,
            "resyncs": sb.resyncs, "gaps": sb.gaps, "checksum_failures": sb.checksum_failures,
            "checksums_verified": sb.checksums_ok, "crossed": sb.crossed,
        })
    return rows


def instruments(engine: Engine, asset: str | None = None, venue: str | None = None) -> list[dict[str, Any]]:
    rows = []
    for i in engine.registry.all():
        if (asset and i.asset.upper() != asset.upper()) or (venue and i.venue != venue):
            continue
        row = msgspec.structs.asdict(i)
        row["ambiguous"] = engine.scanner.ambiguous.get((i.venue, i.venue_symbol))
        rows.append(row)
    return rows


def _leg_price(leg: Leg, now_ns: int) -> dict[str, Any]:
    bid, ask = leg.top()
    state = leg.book.state if leg.book is not None else "quote"
    return {
        "venue": leg.venue, "symbol": leg.inst.symbol, "venue_symbol": leg.inst.venue_symbol,
        "bid_px": bid[0] if bid else None, "bid_qty": bid[1] if bid else None,
        "ask_px": ask[0] if ask else None, "ask_qty": ask[1] if ask else None,
        "mid_px": (bid[0] + ask[0]) / 2 if bid and ask else None,
        "age_ms": round((now_ns - leg.last_ns) / 1e6, 1) if leg.last_ns else None, "book": state,
    }


def prices(engine: Engine, asset: str | None = None) -> dict[str, list[dict[str, Any]]]:
    now = engine.now_ns
    legs = engine.scanner.legs
    assets = [asset.upper()] if asset else sorted(legs)
    return {a: [_leg_price(leg, now) for leg in legs.get(a, {}).values()] for a in assets if a in legs}


def best_prices(engine: Engine, asset: str) -> dict[str, Any] | None:
    rows = prices(engine, asset).get(asset.upper())
    if not rows:
        return None
    bids = [r for r in rows if r["bid_px"] is not None]
    asks = [r for r in rows if r["ask_px"] is not None]
    best_bid = max(bids, key=lambda r: r["bid_px"]) if bids else None
    best_ask = min(asks, key=lambda r: r["ask_px"]) if asks else None
    return {"asset": asset.upper(),
            "best_bid": {k: best_bid[k] for k in ("venue", "bid_px", "bid_qty")} if best_bid else None,
            "best_ask": {k: best_ask[k] for k in ("venue", "ask_px", "ask_qty")} if best_ask else None}


# Fields that mean something for one kind only; the other kind would carry them as zeros.
FUNDING_ONLY = ("apr", "predicted_apr", "net_carry_quote", "funding_quote", "horizon_h", "long_rate",
                "short_rate", "long_predicted_rate", "short_predicted_rate", "long_interval_h", "short_interval_h",
                "long_next_funding_ns", "short_next_funding_ns")
SPREAD_ONLY = ("top_size_base",)


def opportunity(o: Opportunity, kind_specific: bool = True) -> dict[str, Any]:
    """An opportunity as the API and the WebSocket show it: only the fields of its kind
    (``kind_specific=False`` keeps every field, as ``scan --json`` always has)."""
    d = msgspec.structs.asdict(o)
    d["alive_s"] = round((o.ts_ns - o.first_seen_ns) / 1e9, 3)
    if o.kind == "funding":
        d["long_venue"], d["short_venue"] = o.buy_venue, o.sell_venue
        d.update(funding_timing(o))
    if kind_specific:
        for key in SPREAD_ONLY if o.kind == "funding" else FUNDING_ONLY:
            del d[key]
    return d


SORT_KEYS = ("edge_bps", "size_base", "notional_quote", "apr", "net_carry_quote", "alive_s", "asset")


def opportunities(engine: Engine, kind: str | None = None, min_edge_bps: float | None = None,
                  min_size: float | None = None, min_apr: float | None = None, asset: str | None = None,
                  venue: str | None = None, sort: str = "edge_bps", descending: bool = True,
                  limit: int = 500) -> list[dict[str, Any]]:
    rows = []
    for o in engine.scanner.lifecycle.active.values():
        if kind and o.kind != kind:
            continue
        if asset and o.asset != asset.upper():
            continue
        if venue and venue not in (o.buy_venue, o.sell_venue):
            continue
        if min_edge_bps is not None and o.edge_bps < min_edge_bps:
            continue
        if min_size is not None and o.size_base < min_size:
            continue
        if min_apr is not None and (o.kind != "funding" or o.apr < min_apr):
            continue
        rows.append(opportunity(o))
    # A spread row has no apr or carry: it sorts below every funding row on those keys.
    rows.sort(key=lambda r: r.get(sort, float("-inf")), reverse=descending)
    return rows[:limit]


def spread(engine: Engine, asset: str, venue_a: str, venue_b: str,
           series: SpreadSeries | None = None) -> dict[str, Any] | None:
    """The executable spread both ways right now, at any edge (no threshold)."""
    legs = engine.scanner.legs.get(asset.upper(), {})
    a = next((leg for leg in legs.values() if leg.venue == venue_a), None)
    b = next((leg for leg in legs.values() if leg.venue == venue_b), None)
    if a is None or b is None:
        return None
    sc = engine.scanner
    out: dict[str, Any] = {"asset": asset.upper(), "venue_a": venue_a, "venue_b": venue_b}
    for name, buy, sell in (("a_to_b", a, b), ("b_to_a", b, a)):
        bt, st = buy.top(), sell.top()
        ask, bid = bt[1], st[0]
        row: dict[str, Any] = {"buy_venue": buy.venue, "sell_venue": sell.venue,
                               "top_gross_bps": (bid[0] - ask[0]) / ask[0] * 1e4 if ask and bid else None}
        opp: Opportunity | None = None
        reason: str | None = "no_gap"
        if ask and bid and bid[0] > ask[0]:
            opp, reason = evaluate_pair(asset.upper(), buy, sell, bt, st, sc.fee(buy.inst), sc.fee(sell.inst),
                                        -1e9, sc.settings.max_notional, engine.now_ns)
        row["executable"] = opportunity(opp) if opp else None
        row["reason"] = None if opp else reason
        out[name] = row
    if series is not None:
        pair = (asset.upper(), venue_a, venue_b)
        series.want(pair, engine.now_ns)
        out["series"] = series.series(pair)
    lc, now = sc.lifecycle, engine.now_ns
    ab, ba = f"spread:{asset.upper()}:{venue_a}:{venue_b}", f"spread:{asset.upper()}:{venue_b}:{venue_a}"
    out["history"] = {
        "a_to_b": _history(lc.stats.get(ab)), "b_to_a": _history(lc.stats.get(ba)),
        "stats_a_to_b": {"hour": lc.summary(ab, now, 60), "day": lc.summary(ab, now, 1440)} if ab in lc.stats else None,
        "stats_b_to_a": {"hour": lc.summary(ba, now, 60), "day": lc.summary(ba, now, 1440)} if ba in lc.stats else None,
    }
    return out


def _history(stats: Any) -> list[dict[str, Any]]:
    if stats is None:
        return []
    out = []
    for b in stats.buckets:
        if b.edges:
            out.append({"minute_ns": b.minute * 60_000_000_000, "max_edge_bps": max(b.edges),
                        "min_edge_bps": min(b.edges), "samples": len(b.edges), "open_s": b.open_ns / 1e9})
    return out


def stats(engine: Engine, asset: str | None = None, kind: str | None = None) -> list[dict[str, Any]]:
    """Rolling statistics per (kind, asset, venue pair, direction) over the last hour and
    the last day (engine time): the share of the time observed that it was open, and the
    median net edge while it was open."""
    now, lc = engine.now_ns, engine.scanner.lifecycle
    rows = []
    for oid in sorted(lc.stats):
        k, a, buy, sell = oid.split(":", 3)
        if (asset and a != asset.upper()) or (kind and k != kind):
            continue
        rows.append({"id": oid, "kind": k, "asset": a, "buy_venue": buy, "sell_venue": sell,
                     "open_now": oid in lc.active, "hour": lc.summary(oid, now, 60), "day": lc.summary(oid, now, 1440)})
    return rows


def funding(engine: Engine) -> dict[str, dict[str, dict[str, Any]]]:
    matrix: dict[str, dict[str, dict[str, Any]]] = {}
    for asset, legs in engine.scanner.legs.items():
        for leg in legs.values():
            f = leg.funding
            if f is None:
                continue
            matrix.setdefault(asset, {})[leg.venue] = {
                "symbol": leg.inst.symbol, "rate": f.rate, "predicted_rate": f.predicted_rate,
                "interval_h": f.interval_h, "rate_per_hour": f.rate / f.interval_h if f.interval_h else None,
                "apr": f.rate / f.interval_h * HOURS_PER_YEAR if f.interval_h else None,
                "next_funding_ns": f.next_funding_ns, "mark_px": f.mark_px, "index_px": f.index_px,
                "age_ms": round((engine.now_ns - f.recv_ns) / 1e6, 1),
            }
    return dict(sorted(matrix.items()))


def summary(engine: Engine) -> dict[str, Any]:
    sc = engine.scanner
    active = sc.lifecycle.active.values()
    best = max((o for o in active if o.kind == "spread"), key=lambda o: o.edge_bps, default=None)
    return {
        "venues": len(engine.status), "venues_connected": sum(st.connected for st in engine.status.values()),
        "messages": sum(st.messages for st in engine.status.values()),
        "assets": len(sc.legs), "instruments": len(engine.registry),
        "open_opportunities": {"spread": sum(o.kind == "spread" for o in active),
                               "funding": sum(o.kind == "funding" for o in active)},
        "opportunities_opened": dict(sc.lifecycle.opened),
        "best_spread": opportunity(best) if best else None,
        "rejections": dict(sc.rejections), "engine_time_ns": engine.now_ns,
    }
