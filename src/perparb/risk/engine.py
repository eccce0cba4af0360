"""The risk engine: between a strategy's intent and the orders that carry it out.

Pre-trade, every leg of an intent is checked before any goes out (size, notional, book
synchronized and fresh), then the position the intent would leave (with every in-flight
order assumed filled) against the limits: per asset, per venue, gross and net notional,
leverage, initial margin and liquidation distance per venue account, and VaR. One failing
leg refuses the whole intent: both legs go out together or neither does. A limit that is
already exceeded does not block a trade that reduces it.

Portfolio limits are checked on the clock: a daily loss (since 00:00 UTC, engine time) or
a drawdown from the peak beyond its limit engages the kill switch. While it is engaged,
no intent that opens risk is approved; reductions (closing a pair, unwinding a lone leg,
flattening) still go out, since refusing them would leave positions unhedged.

Every refusal is a ``RiskReject`` on the ``risk`` channel, counted by reason.
"""

from __future__ import annotations

import logging
import math
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from msgspec.structs import replace

from perparb.bus import EXECUTIONS, LEDGER, ORDERS, RISK, TRADE_ORDERS, Bus
from perparb.bus.messages import (
    BUY,
    MARKET,
    SELL,
    CancelOrder,
    Fill,
    FundingPayment,
    KillSwitch,
    Leg,
    LegRiskEvent,
    Message,
    Order,
    OrderUpdate,
    RiskReject,
    TradeIntent,
    Transfer,
)
from perparb.execution import MarketView
from perparb.feeds.booksync import SYNCED
from perparb.risk.exposure import Exposure, Key
from perparb.risk.legs import LegGuard
from perparb.risk.var import PriceHistory, historical_var, parametric_var
from perparb.trading_settings import ExecutionSettings, MarginRates, PaperSettings, RiskSettings

log = logging.getLogger("perparb.risk")

DAY_NS = 86_400_000_000_000
REDUCING = frozenset({"close", "unwind", "flatten"})
# Every reason an intent can be refused, in the order the checks run.
REASONS = ("killed", "bad_order", "unknown_symbol", "unsynced_book", "stale_quote", "max_order_notional",
           "nothing_to_reduce", "max_asset_notional", "max_venue_notional", "max_gross_notional",
           "max_net_notional", "max_leverage", "insufficient_margin", "liquidation_distance", "max_var")
MAX_FLATTEN_TRIES = 5


class RiskEngine:
    def __init__(self, bus: Bus, view: MarketView, settings: RiskSettings | None = None,
                 execution: ExecutionSettings | None = None, paper: PaperSettings | None = None,
                 venues: Iterable[str] = (), contracts: Callable[[], Iterable[Key]] = tuple,
                 alert: Callable[[str, str, LegRiskEvent | KillSwitch], None] | None = None) -> None:
        self.bus, self.view = bus, view
        self.s = settings or RiskSettings()
        ex = execution or ExecutionSettings()
        self.paper = paper or PaperSettings()
        self.venues = sorted(set(venues))
        self.contracts = contracts
        self._alert = alert
        self.exposure = Exposure(self.paper.collateral, self.mid)
        self.history = PriceHistory(self.s.var_window)
        self.horizon = max(1, round(self.s.var_horizon_s / self.s.var_sample_s))
        self.sample_ns = int(self.s.var_sample_s * 1e9)
        self.next_sample = 0
        self.var_historical: float | None = None
        self.var_parametric: float | None = None
        self.rejections: Counter[str] = Counter()
        self.approved = 0
        self.kills: Counter[str] = Counter()
        self.killed = False
        self.kill_reason = ""
        self.kill_ts = 0
        self.flattening = False
        self._flatten_tries: Counter[Key] = Counter()
        self._flatten_seq = 0
        self.day = -1
        self.day_start_equity = 0.0
        self.peak_equity = 0.0
        self.guard = LegGuard(ex.leg_risk_action, int(ex.leg_timeout_ms * 1e6), self._lot, self._send_intent,
                              self._send_cancel, lambda ev: bus.publish(RISK, ev), view.call_at, self._leg_alert)
        bus.subscribe(TRADE_ORDERS, self._on_intent)
        bus.subscribe(EXECUTIONS, self._on_execution)
        bus.subscribe(LEDGER, self._on_ledger)
        bus.subscribe(RISK, self._on_risk)

    def restore(self, events: Iterable[Message]) -> None:
        """Fold the journal read at start: positions, in-flight orders, funding, transfers,
        and the kill switch as it was last left (a halted system restarts halted)."""
        ex = self.exposure
        for msg in events:
            if isinstance(msg, Order):
                ex.on_order(msg)
                root = msg.intent_id.split(".")[0]
                if root.startswith("flatten-") and root[8:].isdigit():
                    self._flatten_seq = max(self._flatten_seq, int(root[8:]))  # ids never repeat
            elif isinstance(msg, OrderUpdate):
                ex.on_update(msg)
            elif isinstance(msg, Fill):
                ex.on_fill(msg)
            elif isinstance(msg, FundingPayment):
                ex.on_funding(msg)
            elif isinstance(msg, Transfer):
                ex.on_transfer(msg)
            elif isinstance(msg, KillSwitch):
                self.killed, self.kill_reason = msg.engaged, msg.reason if msg.engaged else ""
                self.kill_ts = msg.ts_ns
        if self.killed:
            log.warning("kill switch still engaged from before the restart (%s); perparb resume releases it",
                        self.kill_reason)

    # -- market ---------------------------------------------------------------------------
    def mid(self, venue: str, venue_symbol: str) -> float | None:
        sb = self.view.book(venue, venue_symbol)
        if sb is not None:
            bid, ask = sb.book.best_bid(), sb.book.best_ask()
            if bid is not None and ask is not None:
                return (bid[0] + ask[0]) / 2.0
        f = self.view.funding(venue, venue_symbol)
        return f.mark_px if f is not None and f.mark_px else None

    def margin(self, venue: str) -> MarginRates:
        return self.paper.venue_margin.get(venue, self.paper.margin)

    def _lot(self, leg: Leg) -> float:
        """One lot of the leg's contract in base units: the smallest difference that matters."""
        inst = self.view.instrument(leg.venue, leg.venue_symbol)
        px = self.mid(leg.venue, leg.venue_symbol) or 0.0
        if inst is None or inst.lot_size <= 0.0 or px <= 0.0:
            return 1e-9 * leg.qty
        return inst.qty(inst.lot_size, inst.native_px(px)) * 0.5

    # -- bus ------------------------------------------------------------------------------
    def _on_intent(self, msg: Message) -> None:
        if isinstance(msg, TradeIntent):
            self.submit(msg)

    def _on_execution(self, msg: Message) -> None:
        if isinstance(msg, Fill):
            self.exposure.on_fill(msg)
            self.guard.on_fill(msg)
        elif isinstance(msg, OrderUpdate):
            self.exposure.on_update(msg)
            self.guard.on_update(msg)

    def _on_ledger(self, msg: Message) -> None:
        if isinstance(msg, FundingPayment):
            self.exposure.on_funding(msg)
        elif isinstance(msg, Transfer):
            self.exposure.on_transfer(msg)

    def _on_risk(self, msg: Message) -> None:
        # Another component (the ledger on a failed write) may pull the switch.
        if isinstance(msg, KillSwitch) and msg.engaged and not self.killed:
            self.kill(msg.reason, msg.flatten)

    def _send_intent(self, intent: TradeIntent) -> None:
        self.bus.publish(TRADE_ORDERS, intent)

    def _send_cancel(self, cancel: CancelOrder) -> None:
        self.bus.publish(ORDERS, cancel)

    # -- pre-trade ------------------------------------------------------------------------
    def submit(self, intent: TradeIntent) -> bool:
        """Approve (orders go out on ``orders``) or refuse (``RiskReject``) one intent."""
        now = self.view.now_ns
        legs, refusal = self.check(intent, now)
        if refusal is not None:
            reason, detail = refusal
            self.rejections[reason] += 1
            self.bus.publish(RISK, RiskReject(intent_id=intent.id, ts_ns=now, strategy=intent.strategy,
                                              reason=reason, detail=detail))
            self.guard.rejected(intent.id, now)
            return False
        self.approved += 1
        orders = [Order(id=f"{intent.id}.{i}", intent_id=intent.id, strategy=intent.strategy, ts_ns=now,
                        venue=leg.venue, symbol=leg.symbol, venue_symbol=leg.venue_symbol, side=leg.side,
                        qty=leg.qty, order_type=leg.order_type, limit_px=leg.limit_px, reduce_only=leg.reduce_only)
                   for i, leg in enumerate(legs)]
        for o in orders:
            self.exposure.on_order(o)
        if len(legs) != len(intent.legs):
            intent = replace(intent, legs=legs)
        self.guard.watch(intent, [o.id for o in orders], [o.venue for o in orders], now)
        many = getattr(self.bus, "publish_many", None)
        if many is not None:  # a journaling bus records both legs in one transaction
            many([(ORDERS, o) for o in orders])
        else:
            for o in orders:
                self.bus.publish(ORDERS, o)
        return True

    def check(self, intent: TradeIntent, now: int) -> tuple[list[Leg], tuple[str, str] | None]:
        s = self.s
        reducing = intent.action in REDUCING or all(leg.reduce_only for leg in intent.legs)
        if self.killed and not reducing:
            return [], ("killed", f"kill switch engaged ({self.kill_reason})")
        if not intent.legs:
            return [], ("bad_order", "intent without legs")
        max_age = int(s.max_quote_age_ms * 1e6)
        prices: list[float] = []
        for leg in intent.legs:
            where = f"{leg.venue} {leg.venue_symbol}"
            if leg.side not in (BUY, SELL) or not (leg.qty > 0.0 and math.isfinite(leg.qty)):
                return [], ("bad_order", f"{where}: side {leg.side!r} qty {leg.qty!r}")
            if self.view.instrument(leg.venue, leg.venue_symbol) is None:
                return [], ("unknown_symbol", where)
            sb = self.view.book(leg.venue, leg.venue_symbol)
            mid = self.mid(leg.venue, leg.venue_symbol)
            if sb is None or sb.state != SYNCED or mid is None:
                return [], ("unsynced_book", where)
            if self.view.is_stale(leg.venue, leg.venue_symbol) or now - sb.last_ns > max_age:
                return [], ("stale_quote", f"{where}: last update {(now - sb.last_ns) / 1e6:.0f} ms ago")
            px = leg.limit_px or mid
            if leg.qty * px > s.max_order_notional:
                return [], ("max_order_notional", f"{where}: {leg.qty * px:,.2f} > {s.max_order_notional:,.2f}")
            prices.append(mid)
        if reducing:
            legs = self._reduce_only(intent.legs)
            return (legs, None) if legs else ([], ("nothing_to_reduce", "no position left to reduce"))
        return list(intent.legs), self._limits(intent.legs, prices)

    def _reduce_only(self, legs: list[Leg]) -> list[Leg]:
        """Cap reduce-only legs at the position (less what in-flight reductions already take)."""
        out = []
        for leg in legs:
            if not leg.reduce_only:
                out.append(leg)
                continue
            key = (leg.venue, leg.venue_symbol)
            pos = self.exposure.positions.get(key)
            have = pos.qty if pos is not None else 0.0
            for p in self.exposure.pending.values():
                if p.order.reduce_only and (p.order.venue, p.order.venue_symbol) == key:
                    have += p.signed
            room = -have if leg.side == BUY else have  # what this side can still reduce
            qty = min(leg.qty, max(0.0, room))
            if qty > 1e-12 * leg.qty:
                out.append(leg if qty == leg.qty else replace(leg, qty=qty))
        return out

    def _limits(self, legs: list[Leg], prices: list[float]) -> tuple[str, str] | None:
        s = self.s
        proj = self.exposure.projected()
        before: dict[Key, tuple[str, str, float]] = {}  # key -> (asset, venue, signed notional)
        for key, (pos, q) in proj.items():
            before[key] = (pos.asset, key[0], q * self.exposure.px(*key, pos.avg_px))
        after = dict(before)
        for leg, px in zip(legs, prices, strict=True):
            key = (leg.venue, leg.venue_symbol)
            asset, venue, n = after.get(key, (leg.symbol.split("/")[0], leg.venue, 0.0))
            after[key] = (asset, venue, n + (leg.qty if leg.side == BUY else -leg.qty) * px)

        def gross(book: dict[Key, tuple[str, str, float]], by: int | None = None, name: str = "") -> float:
            return sum(abs(n) for a, v, n in book.values() if by is None or (a, v)[by] == name)

        def grew(pre: float, post: float, limit: float) -> bool:
            return post > limit and post > pre + 1e-9

        for asset in sorted({a for a, _, _ in after.values()}):
            pre, post = gross(before, 0, asset), gross(after, 0, asset)
            if grew(pre, post, s.max_asset_notional):
                return "max_asset_notional", f"{asset}: {post:,.2f} > {s.max_asset_notional:,.2f}"
        venues = sorted({v for _, v, _ in after.values()})
        for venue in venues:
            pre, post = gross(before, 1, venue), gross(after, 1, venue)
            if grew(pre, post, s.max_venue_notional):
                return "max_venue_notional", f"{venue}: {post:,.2f} > {s.max_venue_notional:,.2f}"
        pre, post = gross(before), gross(after)
        if grew(pre, post, s.max_gross_notional):
            return "max_gross_notional", f"{post:,.2f} > {s.max_gross_notional:,.2f}"
        pre_net = abs(sum(n for _, _, n in before.values()))
        post_net = abs(sum(n for _, _, n in after.values()))
        if grew(pre_net, post_net, s.max_net_notional):
            return "max_net_notional", f"{post_net:,.2f} > {s.max_net_notional:,.2f}"
        for venue in venues:
            pre, post = gross(before, 1, venue), gross(after, 1, venue)
            if post <= pre + 1e-9:
                continue
            equity = self.exposure.venue_equity(venue)
            rates = self.margin(venue)
            if equity <= 0.0 or post / equity > s.max_leverage:
                return "max_leverage", f"{venue}: {post:,.2f} on equity {equity:,.2f} > {s.max_leverage:g}x"
            if post * rates.initial > equity:
                return "insufficient_margin", (f"{venue}: initial margin {post * rates.initial:,.2f} > "
                                               f"equity {equity:,.2f}")
            distance = equity / post - rates.maintenance
            if distance < s.min_liquidation_distance:
                return "liquidation_distance", (f"{venue}: {distance:.2%} < "
                                                f"{s.min_liquidation_distance:.2%}")
        var = self.var()
        if s.max_var > 0.0 and var is not None and var > s.max_var:
            return "max_var", f"VaR {var:,.2f} > {s.max_var:,.2f}"
        return None

    # -- the clock ------------------------------------------------------------------------
    def on_tick(self, now: int) -> None:
        if now >= self.next_sample:
            self.next_sample = now - now % self.sample_ns + self.sample_ns
            self._sample()
        eq = self.equity()
        day = now // DAY_NS
        if day != self.day:
            self.day, self.day_start_equity = day, eq
        self.peak_equity = max(self.peak_equity, eq)
        if self.killed:
            if self.flattening:
                self._flatten(now)
            return
        if not self.s.kill_on_breach:
            return
        loss = self.day_start_equity - eq
        if loss > self.s.max_daily_loss:
            self.kill("max_daily_loss", detail=f"lost {loss:,.2f} today > {self.s.max_daily_loss:,.2f}")
        elif self.drawdown() > self.s.max_drawdown:
            self.kill("max_drawdown", detail=f"{self.drawdown():.2%} from the peak {self.peak_equity:,.2f}")

    def _sample(self) -> None:
        mids = {}
        for key in sorted(set(self.contracts()) | set(self.exposure.positions)):
            m = self.mid(*key)
            if m is not None and m > 0.0:
                mids[key] = m
        self.history.sample(mids)
        keys = [k for k, p in sorted(self.exposure.positions.items()) if p.qty]
        series = self.history.aligned(keys) if keys else None
        if not keys:
            self.var_historical = self.var_parametric = 0.0
        elif series is None:
            self.var_historical = self.var_parametric = None
        else:
            w = [self.exposure.positions[k].qty * m[-1] for k, m in zip(keys, series, strict=True)]
            self.var_historical = historical_var(w, series, self.horizon, self.s.var_confidence)
            self.var_parametric = parametric_var(w, series, self.horizon, self.s.var_confidence)

    def var(self) -> float | None:
        vals = [v for v in (self.var_historical, self.var_parametric) if v is not None]
        return max(vals) if vals else None

    def equity(self) -> float:
        return self.exposure.equity(sorted(set(self.venues) | set(self.exposure.venues())))

    def drawdown(self) -> float:
        return (self.peak_equity - self.equity()) / self.peak_equity if self.peak_equity > 0.0 else 0.0

    # -- kill switch ----------------------------------------------------------------------
    def kill(self, reason: str = "manual", flatten: bool | None = None, detail: str = "") -> dict[str, Any]:
        """Stop approving new risk; with ``flatten`` (default ``risk.flatten_on_kill``) also
        close every position. Called by the API, the CLI (through the API) and on a breach."""
        flatten = self.s.flatten_on_kill if flatten is None else flatten
        now = self.view.now_ns
        if not self.killed or (flatten and not self.flattening):
            self.killed = True
            self.kill_reason, self.kill_ts = reason, now
            self.kills[reason] += 1
            msg = KillSwitch(ts_ns=now, engaged=True, reason=reason, flatten=flatten)
            text = f"kill switch engaged: {reason}" + (f" ({detail})" if detail else "") + \
                   ("; flattening every position" if flatten else "")
            log.warning(text)
            self.bus.publish(RISK, msg)
            if self._alert is not None:
                self._alert("kill switch engaged", text, msg)
            if flatten:
                self.flattening = True
                self._flatten_tries.clear()
                self._flatten(now)
        return self.state()

    def resume(self) -> dict[str, Any]:
        """Approve new risk again. The loss that tripped a limit is taken as acknowledged: the
        day's start and the peak are reset to the equity now."""
        if self.killed:
            now = self.view.now_ns
            self.killed = self.flattening = False
            self.kill_reason = ""
            eq = self.equity()
            self.day_start_equity = self.peak_equity = eq
            log.warning("kill switch released")
            self.bus.publish(RISK, KillSwitch(ts_ns=now, engaged=False, reason="manual"))
        return self.state()

    def _flatten(self, now: int) -> None:
        busy = {(p.order.venue, p.order.venue_symbol) for p in self.exposure.pending.values()}
        for pos in self.exposure.open_positions():
            key = (pos.venue, pos.venue_symbol)
            if key in busy or self._flatten_tries[key] >= MAX_FLATTEN_TRIES:
                continue
            self._flatten_tries[key] += 1
            self._flatten_seq += 1
            leg = Leg(venue=pos.venue, symbol=pos.symbol, venue_symbol=pos.venue_symbol,
                      side=SELL if pos.qty > 0 else BUY, qty=abs(pos.qty), order_type=MARKET, reduce_only=True)
            self._send_intent(TradeIntent(id=f"flatten-{self._flatten_seq}", ts_ns=now, strategy="risk",
                                          action="flatten", asset=pos.asset, legs=[leg],
                                          reason=f"kill switch: {self.kill_reason}"))

    def _leg_alert(self, ev: LegRiskEvent) -> None:
        text = (f"leg risk on {ev.venue} {ev.symbol}: {ev.unhedged_qty:+.10g} without its other leg "
                f"(intent {ev.intent_id}, strategy {ev.strategy}); action: {ev.action}. {ev.detail}")
        log.warning(text)
        if self._alert is not None:
            self._alert(f"leg risk: {ev.symbol} {ev.action}", text, ev)

    # -- reading --------------------------------------------------------------------------
    def state(self) -> dict[str, Any]:
        return {"killed": self.killed, "reason": self.kill_reason, "since_ns": self.kill_ts if self.killed else None,
                "flattening": self.flattening}

    def rejection_counts(self) -> dict[str, int]:
        counts = dict.fromkeys(REASONS, 0)
        counts.update(self.rejections)
        return counts

    def snapshot(self) -> dict[str, Any]:
        """Limits in use, their utilisation, rejections and leg risk (for the API and summaries)."""
        s = self.s
        proj = self.exposure.positions
        notional = {k: p.qty * self.exposure.px(*k, p.avg_px) for k, p in proj.items() if p.qty}
        by_asset: dict[str, float] = {}
        by_venue: dict[str, float] = {}
        for (venue, _), n in notional.items():
            by_venue[venue] = by_venue.get(venue, 0.0) + abs(n)
        for k, n in notional.items():
            a = proj[k].asset
            by_asset[a] = by_asset.get(a, 0.0) + abs(n)
        gross = sum(abs(n) for n in notional.values())
        net = abs(sum(notional.values()))
        eq = self.equity()
        leverage = {v: g / self.exposure.venue_equity(v) for v, g in sorted(by_venue.items())
                    if self.exposure.venue_equity(v) > 0}
        return {
            **self.state(),
            "limits": s.model_dump(),
            "utilisation": {
                "gross_notional": gross, "net_notional": net, "asset_notional": dict(sorted(by_asset.items())),
                "venue_notional": dict(sorted(by_venue.items())), "leverage": leverage,
                "equity": eq, "daily_loss": self.day_start_equity - eq if self.day >= 0 else 0.0,
                "drawdown": self.drawdown(), "var_historical": self.var_historical,
                "var_parametric": self.var_parametric,
            },
            "approved": self.approved,
            "rejections": self.rejection_counts(),
            "leg_risk": {"events": dict(sorted(self.guard.counts.items())), "unhedged": self.guard.unhedged()},
            "kills": dict(sorted(self.kills.items())),
        }
