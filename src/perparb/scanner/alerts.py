"""Alerts: rules over opportunity events, a cooldown per asset and venue pair, delivery
to the log and to Apprise URLs (Telegram, Discord, Slack, e-mail, generic webhooks).

Matching and cooldowns run on engine time, so a replay alerts exactly as the live run
did. Delivery is I/O: it runs in a worker thread fed by a queue, never on the engine's
path, and a failed delivery is logged and counted.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections import Counter, deque
from typing import Any

import msgspec

from perparb.model import Opportunity

log = logging.getLogger("perparb.alerts")

SECOND_NS = 1_000_000_000


class AlertRule(msgspec.Struct, kw_only=True):
    name: str = "default"
    kind: str | None = None  # spread | funding | None for both
    min_edge_bps: float | None = None
    min_size_base: float | None = None
    min_notional: float | None = None
    min_apr: float | None = None
    assets: list[str] = []
    venues: list[str] = []  # both legs must be among these when given

    def matches(self, o: Opportunity) -> bool:
        if self.kind and o.kind != self.kind:
            return False
        if self.assets and o.asset not in self.assets:
            return False
        if self.venues and (o.buy_venue not in self.venues or o.sell_venue not in self.venues):
            return False
        if self.min_edge_bps is not None and o.edge_bps < self.min_edge_bps:
            return False
        if self.min_size_base is not None and o.size_base < self.min_size_base:
            return False
        if self.min_notional is not None and o.notional_quote < self.min_notional:
            return False
        return self.min_apr is None or (o.kind == "funding" and o.apr >= self.min_apr)


class Alert(msgspec.Struct, kw_only=True):
    ts_ns: int
    rule: str
    kind: str
    asset: str
    buy_venue: str
    sell_venue: str
    title: str
    body: str
    opportunity_id: str


def describe(o: Opportunity) -> tuple[str, str]:
    if o.kind == "funding":
        title = f"{o.asset} funding carry: long {o.buy_venue} / short {o.sell_venue}, APR {o.apr * 100:.1f}%"
        body = (f"long {o.buy_symbol} on {o.buy_venue} ({o.long_rate * 100:.4f}% per {o.long_interval_h:g} h), "
                f"short {o.sell_symbol} on {o.sell_venue} ({o.short_rate * 100:.4f}% per {o.short_interval_h:g} h); "
                f"expected net carry {o.net_carry_quote:,.2f} over {o.horizon_h:g} h on {o.notional_quote:,.0f}")
    else:
        title = f"{o.asset} spread {o.edge_bps:.1f} bps net: buy {o.buy_venue}, sell {o.sell_venue}"
        body = (f"buy {o.size_base:.6g} {o.asset} on {o.buy_venue} at {o.buy_px:.8g}, sell on {o.sell_venue} "
                f"at {o.sell_px:.8g}; notional {o.notional_quote:,.2f}, gross {o.gross_bps:.1f} bps, "
                f"net {o.edge_bps:.1f} bps after fees both ways and exit")
    return title, body


class Alerter:
    """Listens to opportunity events (``scanner.listeners.append(alerter)``)."""

    def __init__(self, rules: list[AlertRule], urls: list[str] | None = None, cooldown_s: float = 300.0,
                 keep: int = 200) -> None:
        self.rules = rules
        self.urls = list(urls or [])
        self.cooldown_ns = int(cooldown_s * SECOND_NS)
        self.last_sent: dict[tuple[str, str, str, str], int] = {}  # (kind, asset, buy, sell) -> ts
        self.recent: deque[Alert] = deque(maxlen=keep)
        self.counts: Counter[str] = Counter()  # sent, suppressed_cooldown, delivered, failed
        self._queue: queue.Queue[Alert | None] = queue.Queue(maxsize=1000)
        self._worker: threading.Thread | None = None

    def __call__(self, event: str, o: Opportunity) -> None:
        if event == "close":
            return
        for rule in self.rules:
            if rule.matches(o):
                self._fire(rule, o)
                return

    def _fire(self, rule: AlertRule, o: Opportunity) -> None:
        key = (o.kind, o.asset, o.buy_venue, o.sell_venue)
        last = self.last_sent.get(key)
        if last is not None and o.ts_ns - last < self.cooldown_ns:
            self.counts["suppressed_cooldown"] += 1
            return
        self.last_sent[key] = o.ts_ns
        title, body = describe(o)
        alert = Alert(ts_ns=o.ts_ns, rule=rule.name, kind=o.kind, asset=o.asset, buy_venue=o.buy_venue,
                      sell_venue=o.sell_venue, title=title, body=body, opportunity_id=o.id)
        self._send(alert)

    def notify(self, ts_ns: int, kind: str, asset: str, title: str, body: str, venues: tuple[str, str] = ("", ""),
               ref: str = "") -> None:
        """An alert that is not about an opportunity (leg risk, the kill switch): no rule, no
        cooldown; delivered like the others."""
        self._send(Alert(ts_ns=ts_ns, rule=kind, kind=kind, asset=asset, buy_venue=venues[0], sell_venue=venues[1],
                         title=title, body=body, opportunity_id=ref))

    def _send(self, alert: Alert) -> None:
        title = alert.title
        self.recent.append(alert)
        self.counts["sent"] += 1
        log.warning("ALERT %s: %s", title, alert.body)
        if self.urls:
            self._start()
            try:
                self._queue.put_nowait(alert)
            except queue.Full:
                self.counts["failed"] += 1
                log.error("alert queue full; dropped %s", title)

    def cooldowns(self, now_ns: int) -> list[dict[str, Any]]:
        """Pairs still cooling down, with the seconds left."""
        out = []
        for (kind, asset, buy, sell), ts in self.last_sent.items():
            left = (ts + self.cooldown_ns - now_ns) / SECOND_NS
            if left > 0:
                out.append({"kind": kind, "asset": asset, "buy_venue": buy, "sell_venue": sell,
                            "seconds_left": round(left, 3)})
        return out

    # -- delivery ------------------------------------------------------------------------
    def _start(self) -> None:
        if self._worker is None:
            self._worker = threading.Thread(target=self._deliver_loop, name="perparb-alerts", daemon=True)
            self._worker.start()

    def _deliver_loop(self) -> None:
        import apprise

        ap = apprise.Apprise()
        for url in self.urls:
            if not ap.add(url):
                log.error("alert URL not understood by Apprise (check its scheme): %s", url.split("://")[0] + "://…")
        while True:
            alert = self._queue.get()
            if alert is None:
                return
            try:
                ok = bool(ap.notify(title=alert.title, body=alert.body))
            except Exception:  # a broken notifier must not stop later alerts
                log.exception("alert delivery raised")
                ok = False
            self.counts["delivered" if ok else "failed"] += 1
            if not ok:
                log.error("alert delivery failed: %s", alert.title)
            self._queue.task_done()

    def flush(self, timeout: float = 10.0) -> None:
        """Wait until queued alerts are delivered (tests, shutdown)."""
        if self._worker is None:
            return
        done = threading.Event()

        def wait() -> None:
            self._queue.join()
            done.set()

        threading.Thread(target=wait, daemon=True).start()
        done.wait(timeout)

    def close(self) -> None:
        if self._worker is not None:
            self._queue.put(None)
            self._worker.join(timeout=5)
            self._worker = None
