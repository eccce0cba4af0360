"""``perparb report``: what the ledger says paper (or live) trading did.

Everything is read from the journal (``perparb.store.ledger``) and folded by the same
exact accounting as the running system (``perparb.paper.account.Accounts``): open
positions per pair with both legs, the PnL split (spread realized and unrealized, funding,
fees), the trade log, funding payments and the equity curve.

Marks: the ledger holds no market data, so a contract is marked at the last price the
journal knows for it (its latest fill price or the mark price of its latest funding
payment); coin amounts (inverse contracts) are valued at the latest such price of the coin.
The equity curve has one point per journal event that moves money (fill, funding payment,
transfer), in exact decimals until printing.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, localcontext
from pathlib import Path
from typing import Any

from perparb.bus.messages import Fill, FundingPayment, Message, Transfer
from perparb.paper.account import _CTX, STABLE, Accounts, dec
from perparb.paper.blotter import pairs

ZERO = Decimal(0)


@dataclass
class Report:
    pnl: dict[str, Decimal] = field(default_factory=dict)  # USD-equivalent
    legs: list[dict[str, Any]] = field(default_factory=list)
    trades: list[Fill] = field(default_factory=list)
    funding: list[FundingPayment] = field(default_factory=list)
    transfers: list[Transfer] = field(default_factory=list)
    curve: list[dict[str, Any]] = field(default_factory=list)
    events: int = 0

    @property
    def pairs(self) -> list[dict[str, Any]]:
        return pairs(self.legs)


class _Marks:
    def __init__(self) -> None:
        self.contract: dict[tuple[str, str], Decimal] = {}
        self.coin: dict[str, Decimal] = {}

    def see(self, venue: str, symbol: str, px: float) -> None:
        if px > 0:
            d = dec(px)
            self.contract[(venue, symbol)] = d
            self.coin[symbol.split("/", 1)[0]] = d

    def usd(self, asset: str) -> Decimal:
        return Decimal(1) if asset in STABLE else self.coin.get(asset, ZERO)


def _totals(acc: Accounts, marks: _Marks) -> dict[str, Decimal]:
    t = dict.fromkeys(("collateral", "realized", "unrealized", "funding", "fees", "equity"), ZERO)
    with localcontext(_CTX):
        for a in acc.accounts.values():
            for asset, amount in a.transfers.items():
                t["collateral"] += amount * marks.usd(asset)
            for asset, amount in a.collateral.items():
                t["equity"] += amount * marks.usd(asset)
        for pos in acc.positions.values():
            px = marks.usd(pos.settle)
            m = marks.contract.get((pos.venue, pos.symbol))
            u = pos.unrealized(m) if pos.size != 0 and m else ZERO
            t["realized"] += pos.realized * px
            t["unrealized"] += u * px
            t["funding"] += pos.funding * px
            t["fees"] += pos.fees * px
            t["equity"] += u * px
        t["spread"] = t["realized"] + t["unrealized"]
        t["net"] = t["spread"] + t["funding"] - t["fees"]
    return t


def build(events: Iterable[Message]) -> Report:
    acc = Accounts()
    marks = _Marks()
    r = Report()
    for msg in events:
        r.events += 1
        if isinstance(msg, Fill):
            marks.see(msg.venue, msg.symbol, msg.px)
            if acc.apply(msg):
                r.trades.append(msg)
        elif isinstance(msg, FundingPayment):
            marks.see(msg.venue, msg.symbol, msg.mark_px)
            if acc.apply(msg):
                r.funding.append(msg)
        elif isinstance(msg, Transfer):
            if acc.apply(msg):
                r.transfers.append(msg)
        else:
            continue
        t = _totals(acc, marks)
        point = {"ts_ns": msg.ts_ns, **{k: t[k] for k in ("equity", "spread", "funding", "fees", "net")}}
        if r.curve and r.curve[-1]["ts_ns"] == msg.ts_ns:
            r.curve[-1] = point  # events of one instant are one point
        else:
            r.curve.append(point)
    r.pnl = _totals(acc, marks)
    with localcontext(_CTX):
        for pos in sorted(acc.open_positions(), key=lambda p: (p.asset, p.venue, p.symbol)):
            m = marks.contract.get((pos.venue, pos.symbol))
            qty = pos.qty(m) if m else ZERO
            unreal = pos.unrealized(m) if m else ZERO
            r.legs.append({"asset": pos.asset, "venue": pos.venue, "symbol": pos.symbol,
                           "venue_symbol": pos.venue_symbol, "side": "long" if pos.size > 0 else "short",
                           "qty": qty, "avg_entry_px": pos.entry, "mark_px": m,
                           "notional": abs(qty) * (m or ZERO), "unrealized_pnl": unreal,
                           "realized_pnl": pos.realized, "funding_pnl": pos.funding, "fees": pos.fees,
                           "settle": pos.settle, "liquidation_distance": None})
    return r


# -- output -----------------------------------------------------------------------------
def utc(ts_ns: int) -> str:
    return datetime.fromtimestamp(ts_ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


def money(x: Decimal | float | None, places: int = 2) -> str:
    return "-" if x is None else f"{Decimal(x):,.{places}f}"


def plain(x: Decimal | None) -> str:
    """A decimal as written, without exponent or trailing zeros (quantities, prices)."""
    if x is None:
        return "-"
    s = format(x.normalize(), "f")
    return s


def as_json(r: Report) -> dict[str, Any]:
    """``--json``: numbers as floats (the exact decimals are in the ledger)."""
    def f(x: Any) -> Any:
        return float(x) if isinstance(x, Decimal) else x

    def leg(d: dict[str, Any]) -> dict[str, Any]:
        return {k: f(v) for k, v in d.items()}

    return {
        "events": r.events,
        "pnl": {k: float(v) for k, v in r.pnl.items()},
        "pairs": [{**{k: f(v) for k, v in p.items() if k != "legs"}, "legs": [leg(x) for x in p["legs"]]}
                  for p in r.pairs],
        "trades": [{"id": t.id, "ts_ns": t.ts_ns, "venue": t.venue, "symbol": t.symbol, "side": t.side,
                    "qty": t.qty, "px": t.px, "fee": t.fee, "fee_asset": t.fee_asset, "liquidity": t.liquidity,
                    "order_id": t.order_id, "intent_id": t.intent_id, "strategy": t.strategy} for t in r.trades],
        "funding": [{"id": p.id, "ts_ns": p.ts_ns, "venue": p.venue, "symbol": p.symbol, "rate": p.rate,
                     "position_qty": p.position_qty, "mark_px": p.mark_px, "amount": p.amount, "asset": p.asset}
                    for p in r.funding],
        "curve": [{k: f(v) for k, v in pt.items()} for pt in r.curve],
    }


def pnl_rows(r: Report) -> list[tuple[str, Decimal]]:
    p = r.pnl
    return [("spread (realized)", p["realized"]), ("spread (unrealized)", p["unrealized"]),
            ("spread", p["spread"]), ("funding", p["funding"]), ("fees", -p["fees"]), ("net", p["net"]),
            ("collateral in", p["collateral"]), ("equity", p["equity"])]


def print_text(r: Report, source: str, console: Any) -> None:
    from rich.table import Table

    span = f"{utc(r.curve[0]['ts_ns'])} to {utc(r.curve[-1]['ts_ns'])} UTC" if r.curve else "no money moved"
    console.print(f"ledger {source}: {r.events} events, {len(r.trades)} fills, {len(r.funding)} funding payments; "
                  f"{span}", highlight=False, markup=False)
    t = Table(title="Open positions per pair", title_justify="left")
    for col in ("pair", "venue", "symbol", "side", "qty", "entry", "mark", "unrealized", "settle"):
        t.add_column(col, justify="right" if col in ("qty", "entry", "mark", "unrealized") else "left")
    for p in r.pairs:
        for i, leg in enumerate(p["legs"]):
            t.add_row(p["asset"] + ("" if p["hedged"] else " (unhedged)") if i == 0 else "", leg["venue"],
                      leg["symbol"], leg["side"], plain(leg["qty"]), plain(leg["avg_entry_px"]),
                      plain(leg["mark_px"]), money(leg["unrealized_pnl"]), leg["settle"])
    if not r.pairs:
        t.add_row("(none)", "", "", "", "", "", "", "", "")
    console.print(t)
    s = Table(title="PnL (USD-equivalent)", title_justify="left")
    s.add_column("")
    s.add_column("amount", justify="right")
    for name, v in pnl_rows(r):
        s.add_row(name, money(v))
    console.print(s)
    log = Table(title="Trade log", title_justify="left")
    for col in ("time (UTC)", "venue", "symbol", "side", "qty", "px", "fee", "liq", "order", "strategy"):
        log.add_column(col, justify="right" if col in ("qty", "px", "fee") else "left")
    for f in r.trades:
        log.add_row(utc(f.ts_ns), f.venue, f.symbol, f.side, plain(dec(f.qty)), plain(dec(f.px)),
                    f"{plain(dec(f.fee))} {f.fee_asset}", f.liquidity, f.order_id, f.strategy)
    console.print(log)
    if r.funding:
        fu = Table(title="Funding payments", title_justify="left")
        for col in ("time (UTC)", "venue", "symbol", "rate", "position", "mark", "amount"):
            fu.add_column(col)
        for fp in r.funding:
            fu.add_row(utc(fp.ts_ns), fp.venue, fp.symbol, plain(dec(fp.rate)), plain(dec(fp.position_qty)),
                       plain(dec(fp.mark_px)), f"{plain(dec(fp.amount))} {fp.asset}")
        console.print(fu)


def write_html(r: Report, source: str, out_dir: Path) -> Path:
    """One self-contained page (plotly.js inlined once, no network): equity curve, PnL
    split, positions, and the tables."""
    import plotly.graph_objects as go

    out_dir.mkdir(parents=True, exist_ok=True)
    times = [datetime.fromtimestamp(p["ts_ns"] / 1e9, UTC) for p in r.curve]
    eq = go.Figure()
    eq.add_trace(go.Scatter(x=times, y=[float(p["equity"]) for p in r.curve], name="equity", mode="lines"))
    eq.add_trace(go.Scatter(x=times, y=[float(p["net"]) for p in r.curve], name="net PnL", mode="lines",
                            yaxis="y2"))
    eq.update_layout(title="Equity curve", yaxis={"title": "equity"},
                     yaxis2={"title": "net PnL", "overlaying": "y", "side": "right"}, height=380,
                     legend={"orientation": "h", "y": -0.2})
    split = [(n, float(v)) for n, v in pnl_rows(r)[:6]]
    pn = go.Figure(go.Bar(x=[n for n, _ in split], y=[v for _, v in split],
                          marker_color=["#2e7d32" if v >= 0 else "#c62828" for _, v in split]))
    pn.update_layout(title="PnL split (USD-equivalent)", height=380)
    labels = [f"{leg['asset']} {leg['venue']} {leg['side']}" for p in r.pairs for leg in p["legs"]]
    values = [float(leg["notional"]) * (1 if leg["side"] == "long" else -1) for p in r.pairs for leg in p["legs"]]
    po = go.Figure(go.Bar(x=values, y=labels, orientation="h",
                          marker_color=["#1565c0" if v >= 0 else "#ef6c00" for v in values]))
    po.update_layout(title="Open positions (signed notional at the mark)", height=max(260, 60 + 40 * len(labels)))
    charts = [eq.to_html(full_html=False, include_plotlyjs=True, div_id="equity-curve"),
              pn.to_html(full_html=False, include_plotlyjs=False, div_id="pnl-split"),
              po.to_html(full_html=False, include_plotlyjs=False, div_id="positions")]

    def table(head: list[str], rows: list[list[str]], tid: str) -> str:
        th = "".join(f"<th>{html.escape(h)}</th>" for h in head)
        body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
        return f'<table id="{tid}"><thead><tr>{th}</tr></thead><tbody>{body}</tbody></table>'

    pos_rows = [[p["asset"], leg["venue"], leg["symbol"], leg["side"], plain(leg["qty"]), plain(leg["avg_entry_px"]),
                 plain(leg["mark_px"]), money(leg["unrealized_pnl"]), leg["settle"]]
                for p in r.pairs for leg in p["legs"]]
    trade_rows = [[utc(f.ts_ns), f.venue, f.symbol, f.side, plain(dec(f.qty)), plain(dec(f.px)),
                   f"{plain(dec(f.fee))} {f.fee_asset}", f.liquidity, f.order_id, f.strategy] for f in r.trades]
    page = f"""<!doctype html>
<html><head><meta charset="utf-8"><title>perparb report</title>
<style>body{{font-family:system-ui,sans-serif;margin:1.5rem;color:#222}}table{{border-collapse:collapse;
margin:.5rem 0 1.5rem}}td,th{{border-bottom:1px solid #ddd;padding:.2rem .6rem;text-align:right}}
th{{background:#f3f3f3}}.charts{{display:grid;grid-template-columns:1fr 1fr;gap:1rem}}</style></head>
<body><h1>perparb report</h1>
<p>{html.escape(source)}: {r.events} events, {len(r.trades)} fills, {len(r.funding)} funding payments</p>
{table(["", "amount"], [[n, money(v)] for n, v in pnl_rows(r)], "pnl")}
<div class="charts"><div>{charts[0]}</div><div>{charts[1]}</div></div>
{charts[2]}
<h2>Open positions per pair</h2>
{table(["asset", "venue", "symbol", "side", "qty", "entry", "mark", "unrealized", "settle"], pos_rows, "open-positions")}
<h2>Trade log</h2>
{table(["time (UTC)", "venue", "symbol", "side", "qty", "px", "fee", "liquidity", "order", "strategy"], trade_rows,
       "trades")}
</body></html>
"""
    path = out_dir / "report.html"
    path.write_text(page, encoding="utf-8")
    return path
