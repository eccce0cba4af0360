"""The terminal view of a running session (rich)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.console import Group
from rich.table import Table

from perparb.feeds.booksync import SYNCED

if TYPE_CHECKING:
    from perparb.app import Session


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
    return Group(venues, opps, carry, f"suppressed candidates: {rej}    opportunities opened: {e.scanner.opened}")
