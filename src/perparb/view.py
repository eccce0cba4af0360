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
    for o in e.scanner.best(12):
        opps.add_row(o.asset, o.buy_venue, f"{o.buy_px:.6g}", o.sell_venue, f"{o.sell_px:.6g}", f"{o.size_base:.6g}",
                     f"{o.notional_quote:,.0f}", f"{o.gross_bps:.2f}", f"[bold green]{o.edge_bps:.2f}[/]",
                     f"{(o.ts_ns - o.first_seen_ns) / 1e9:.1f}")
    rej = ", ".join(f"{k} {v}" for k, v in sorted(e.scanner.rejections.items())) or "none"
    return Group(venues, opps, f"suppressed candidates: {rej}    opportunities opened: {e.scanner.opened}")
