"""Prometheus metrics. Counters that the engine already keeps are read at scrape time (a
custom collector), so the hot path pays nothing for them; the tick-to-opportunity
histogram is observed by an opportunity listener."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from perparb.model import Opportunity

if TYPE_CHECKING:
    from perparb.api.hub import Hub
    from perparb.engine import Engine
    from perparb.paper.assembly import Trading
    from perparb.scanner.alerts import Alerter


class EngineCollector(Collector):
    def __init__(self, engine: Engine, hub: Hub | None, alerter: Alerter | None) -> None:
        self.engine, self.hub, self.alerter = engine, hub, alerter

    def collect(self) -> Iterator[Metric]:
        e = self.engine
        now = time.time_ns()
        msgs = CounterMetricFamily("perparb_messages", "Raw messages received", labels=["venue"])
        events = CounterMetricFamily("perparb_events", "Normalized events by venue and channel",
                                     labels=["venue", "channel"])
        errors = CounterMetricFamily("perparb_decode_errors", "Messages that failed to decode", labels=["venue"])
        reasons = CounterMetricFamily("perparb_decode_errors_by_reason", "Messages dropped, by venue and reason "
                                      "(malformed, error, bad_price, bad_size, bad_funding_rate, bad_timestamp, "
                                      "bad_value)", labels=["venue", "reason"])
        unknown = CounterMetricFamily("perparb_unknown_symbols", "Messages naming an unknown contract",
                                      labels=["venue"])
        reconnects = CounterMetricFamily("perparb_reconnects", "Websocket reconnects", labels=["venue"])
        connected = GaugeMetricFamily("perparb_venue_connected", "1 when the venue is connected", labels=["venue"])
        age = GaugeMetricFamily("perparb_quote_age_seconds", "Time since the venue's last message", labels=["venue"])
        resyncs = CounterMetricFamily("perparb_book_resyncs", "Book resynchronizations", labels=["venue"])
        gaps = CounterMetricFamily("perparb_book_gaps", "Sequence gaps detected", labels=["venue"])
        checks = CounterMetricFamily("perparb_book_checksum_failures", "Book checksum mismatches", labels=["venue"])
        crossed = CounterMetricFamily("perparb_book_crossed", "Books found crossed", labels=["venue"])
        for v, st in e.status.items():
            msgs.add_metric([v], st.messages)
            errors.add_metric([v], st.decode_errors)
            for reason, n in sorted(st.errors_by_reason.items()):
                reasons.add_metric([v, reason], n)
            unknown.add_metric([v], st.unknown_symbols)
            reconnects.add_metric([v], st.reconnects)
            connected.add_metric([v], 1.0 if st.connected else 0.0)
            if st.last_msg_ns:
                age.add_metric([v], max(0.0, (now - st.last_msg_ns) / 1e9))
            books = [sb for (bv, _), sb in e.books.items() if bv == v]
            resyncs.add_metric([v], sum(sb.resyncs for sb in books))
            gaps.add_metric([v], sum(sb.gaps for sb in books))
            checks.add_metric([v], sum(sb.checksum_failures for sb in books))
            crossed.add_metric([v], sum(sb.crossed for sb in books))
        for (v, channel), n in sorted(e.event_counts.items()):
            events.add_metric([v, channel], n)
        yield from (msgs, events, errors, reasons, unknown, reconnects, connected, age, resyncs, gaps, checks, crossed)
        opened = CounterMetricFamily("perparb_opportunities", "Opportunities opened", labels=["kind"])
        for kind in ("spread", "funding"):
            opened.add_metric([kind], e.scanner.lifecycle.opened.get(kind, 0))
        open_now = GaugeMetricFamily("perparb_opportunities_open", "Opportunities open now", labels=["kind"])
        for kind in ("spread", "funding"):
            open_now.add_metric([kind], sum(o.kind == kind for o in e.scanner.lifecycle.active.values()))
        rejected = CounterMetricFamily("perparb_suppressed_candidates", "Candidates suppressed, by reason",
                                       labels=["reason"])
        for reason, n in sorted(e.scanner.rejections.items()):
            rejected.add_metric([reason], n)
        yield from (opened, open_now, rejected)
        yield from self._data_health()
        alerts = CounterMetricFamily("perparb_alerts", "Alerts by outcome", labels=["outcome"])
        if self.alerter is not None:
            for outcome, n in sorted(self.alerter.counts.items()):
                alerts.add_metric([outcome], n)
        yield alerts
        clients = GaugeMetricFamily("perparb_websocket_clients", "Connected WebSocket clients")
        clients.add_metric([], len(self.hub.clients) if self.hub else 0)
        yield clients

    def _data_health(self) -> Iterator[Metric]:
        from perparb.api.state import venue_health

        age = GaugeMetricFamily("perparb_venue_data_age_seconds",
                                "Age of the venue's newest price data (engine time)", labels=["venue"])
        stale = GaugeMetricFamily("perparb_venue_stale",
                                  "1 when the venue is connected but its data is older than the staleness limit",
                                  labels=["venue"])
        for v in self.engine.status:
            h = venue_health(self.engine, v)
            if h["data_age_ms"] is not None:
                age.add_metric([v], max(0.0, h["data_age_ms"] / 1e3))
            stale.add_metric([v], 1.0 if h["stale"] else 0.0)
        yield from (age, stale)


class TradingCollector(Collector):
    """Paper trading: orders, fills, every risk refusal by reason (0 when none), execution
    rejections, leg risk, the kill switch and the portfolio figures risk watches."""

    def __init__(self, trading: Trading) -> None:
        self.trading = trading

    def collect(self) -> Iterator[Metric]:
        t = self.trading
        risk = t.risk
        orders = CounterMetricFamily("perparb_paper_orders", "Orders sent (paper)")
        orders.add_metric([], t.counts["orders"])
        fills = CounterMetricFamily("perparb_paper_fills", "Fills (paper)")
        fills.add_metric([], t.counts["fills"])
        refused = CounterMetricFamily("perparb_risk_rejections", "Intents refused by the risk engine, by reason",
                                      labels=["reason"])
        for reason, n in risk.rejection_counts().items():
            refused.add_metric([reason], n)
        approved = CounterMetricFamily("perparb_risk_approved", "Intents the risk engine approved")
        approved.add_metric([], risk.approved)
        venue = CounterMetricFamily("perparb_execution_rejections", "Orders the (simulated) venue rejected, by reason",
                                    labels=["reason"])
        for reason, n in sorted(t.execution.rejections.items()):
            venue.add_metric([reason], n)
        legs = CounterMetricFamily("perparb_leg_risk_events", "Pairs whose legs did not fill alike, by action",
                                   labels=["action"])
        for action in ("unwind", "hedge", "none"):
            legs.add_metric([action], risk.guard.counts.get(action, 0))
        unhedged = GaugeMetricFamily("perparb_unhedged_pairs", "Pairs left with one leg unhedged now")
        unhedged.add_metric([], len(risk.guard.unhedged()))
        killed = GaugeMetricFamily("perparb_kill_switch_engaged", "1 while the kill switch is engaged")
        killed.add_metric([], 1.0 if risk.killed else 0.0)
        equity = GaugeMetricFamily("perparb_paper_equity", "Equity of the paper accounts (quote currency)")
        equity.add_metric([], risk.equity())
        var = GaugeMetricFamily("perparb_var", "Value at risk of the current positions (quote currency)",
                                labels=["method"])
        for method, v in (("historical", risk.var_historical), ("parametric", risk.var_parametric)):
            if v is not None:
                var.add_metric([method], v)
        yield from (orders, fills, refused, approved, venue, legs, unhedged, killed, equity, var)


class Metrics:
    def __init__(self, engine: Engine, hub: Hub | None = None, alerter: Alerter | None = None,
                 trading: Trading | None = None) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(EngineCollector(engine, hub, alerter))
        if trading is not None:
            self.registry.register(TradingCollector(trading))
        self.latency = Histogram(
            "perparb_tick_to_opportunity_seconds", "From receiving the message that changed an opportunity "
            "to publishing it", registry=self.registry,
            buckets=(1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 5e-2, 0.1, 1.0))
        engine.scanner.listeners.append(self._observe)

    def _observe(self, event: str, o: Opportunity) -> None:
        # ts_ns is the receive time of the message that produced this event (live mode).
        if event != "close":
            self.latency.observe(max(0.0, (time.time_ns() - o.ts_ns) / 1e9))
