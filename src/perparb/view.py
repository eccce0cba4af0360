"""The terminal view of a running session (rich)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table

from perparb.feeds.booksync import SYNCED

if TYPE_CHECKING:
    from perparb.app import Session
    from perparb.paper.assembly import Trading


def render(session: Session) -> Group:
    e = session.engine
    now = time.time_ns()
    venues = Table(title="venues", expand=True)
    for col in ("venue", "state", "messages", "age ms", "books synced", "resyncs", "reconnects", "errors"):
        venues.add_column(col, justify="left" if col in ("venue", "state") else "right")
    for v, st in e.status.items():
        books = [sb for (bv, _), sb in e.books.items() if bv == v]
        age = f"{(now - st.last_msg_ns) / 1e6:.0f}" if st.last_msg_ns else "-"
        state = f"[green]{st.state}[/]" if st.connected else f"[red]{st.state}[/]"
        venues.add_row(v, state, str(st.messages), age, f"{sum(sb.state == SYNCED for sb in books)}/{len(books)}",
                       str(sum(sb.resyncs for sb in books)), str(st.reconnects),
                       str(st.decode_errors + st.unknown_symbols))
    opps = Table(title="best spread opportunities (net of taker fees both legs)", expand=True)
    for col in ("asset", "buy", "ask", "sell", "bid", "size", "notional", "gross bps", "net bps", "alive s"):
        opps.add_column(col, justify="left" if col in ("asset", "buy", "sell") else "right")
    for o in e.scanner.best(12, kind="spread"):
        opps.add_row(o.asset, o.buy_venue, f"{o.buy_px:.6g}", o.sell_venue, f"{o.sell_px:.6g}", f"{o.size_base:.6g}",
                     f"{o.notional_quote:,.0f}", f"{o.gross_bps:.2f}", f"[bold green]{o.edge_bps:.2f}[/]",
                     f"{(o.ts_ns - o.first_seen_ns) / 1e9:.1f}")
    carry = Table(title="best funding carry (net of fees and spread, to the horizon)", expand=True)
    for col in ("asset", "long", "rate/h", "short", "rate/h", "APR %", "net carry", "horizon h", "basis bps"):
        carry.add_column(col, justify="left" if col in ("asset", "long", "short") else "right")
    for o in e.scanner.best(8, kind="funding"):
        carry.add_row(o.asset, o.buy_venue, f"{o.long_rate / o.long_interval_h * 100:.4f}%", o.sell_venue,
                      f"{o.short_rate / o.short_interval_h * 100:.4f}%", f"{o.apr * 100:.1f}",
                      f"[bold green]{o.net_carry_quote:,.2f}[/]", f"{o.horizon_h:g}", f"{o.basis_bps:.1f}")
    rej = ", ".join(f"{k} {v}" for k, v in sorted(e.scanner.rejections.items())) or "none"
    parts: list[object] = [venues, opps, carry]
    if session.trading is not None:
        parts.append(_paper(session.trading))
    parts.append(f"suppressed candidates: {rej}    opportunities opened: {e.scanner.opened}")
    return Group(*parts)  # type: ignore[arg-type]


def _money(x: float) -> str:
    colour = "green" if x > 0 else "red" if x < 0 else "white"
    return f"[{colour}]{x:,.2f}[/]"


def _paper(t: Trading) -> Table:
    s = t.summary()
    kill = t.risk.state()
    title = (f"paper trading: {s['orders']} orders, {s['fills']} fills; realized {_money(s['realized_pnl'])}, "
             f"unrealized {_money(s['unrealized_pnl'])}, funding {_money(s['funding_pnl'])}, "
             f"fees {_money(-s['fees'])}")
    if kill["killed"]:
        title += f"  [bold red]KILL SWITCH ({kill['reason']})[/]"
    table = Table(title=title, expand=True)
    for col in ("venue", "symbol", "side", "qty", "entry", "mark", "unrealized", "to liquidation"):
        table.add_column(col, justify="left" if col in ("venue", "symbol", "side") else "right")
    for p in t.overview()["positions"][:12]:
        table.add_row(p["venue"], p["symbol"], p["side"], f"{p['size_base']:.6g}", f"{p['avg_entry_px']:.6g}",
                      f"{p['mark_px']:.6g}", _money(p["unrealized_pnl"]),
                      f"{p['liquidation_distance']:.1%}" if p["liquidation_distance"] is not None else "-")
    refused = ", ".join(f"{k} {v}" for k, v in s["rejections"].items()) or "none"
    legs = ", ".join(f"{k} {v}" for k, v in s["leg_risk"].items()) or "none"
    table.caption = f"refused: {refused}    leg risk: {legs}"
    return table
