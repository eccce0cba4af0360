"""The bus: typed, versioned messages published by channel.

Strategies, risk and execution talk only through it, so the in-process implementation
here (the default) can be swapped for a broker (NATS JetStream, Kafka) without touching
them: every message is a msgspec Struct from ``perparb.bus.messages`` that encodes to
msgpack unchanged.

Channels, in the order work flows:

``opportunities``  scanner lifecycle events (OpportunityEvent)
``trade_orders``   strategies' intents: both legs of a pair (TradeIntent)
``orders``         legs the risk engine approved, for execution (Order, CancelOrder)
``executions``     what execution did with them (OrderUpdate, Fill)
``ledger``         everything the journal recorded besides fills (FundingPayment, Transfer)
``risk``           risk decisions and state (RiskReject, KillSwitch, LegRiskEvent)
``portfolio``      derived views for readers (PositionUpdate, PnlUpdate)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Protocol

from perparb.bus.messages import Message

OPPORTUNITIES = "opportunities"
TRADE_ORDERS = "trade_orders"
ORDERS = "orders"
EXECUTIONS = "executions"
LEDGER = "ledger"
RISK = "risk"
PORTFOLIO = "portfolio"
MARKET_DATA = "market_data"
CHANNELS = (MARKET_DATA, OPPORTUNITIES, TRADE_ORDERS, ORDERS, EXECUTIONS, LEDGER, RISK, PORTFOLIO)

Handler = Callable[[Message], None]


class Bus(Protocol):
    def publish(self, channel: str, msg: Message) -> None: ...

    def subscribe(self, channel: str, handler: Handler) -> None: ...


class InProcessBus:
    """Synchronous and deterministic.

    Handlers run in the order they subscribed. A message published from inside a handler
    is queued and delivered after the current message has reached every subscriber, so
    each subscriber sees the messages of all channels in one global publish order (the
    order a single-partition broker stream would give), and no handler re-enters itself.
    """

    def __init__(self) -> None:
        self._subs: dict[str, list[Handler]] = {c: [] for c in CHANNELS}
        self._queue: deque[tuple[str, Message]] = deque()
        self._dispatching = False
        self.published: dict[str, int] = dict.fromkeys(CHANNELS, 0)

    def subscribe(self, channel: str, handler: Handler) -> None:
        if channel not in self._subs:
            raise KeyError(f"unknown bus channel {channel!r}; channels: {', '.join(CHANNELS)}")
        self._subs[channel].append(handler)

    def publish(self, channel: str, msg: Message) -> None:
        if channel not in self._subs:
            raise KeyError(f"unknown bus channel {channel!r}; channels: {', '.join(CHANNELS)}")
        self.published[channel] += 1
        if not self._subs[channel]:
            return
        self._queue.append((channel, msg))
        if self._dispatching:
            return
        self._dispatching = True
        try:
            while self._queue:
                ch, m = self._queue.popleft()
                for handler in self._subs[ch]:
                    handler(m)
        finally:
            self._dispatching = False
            self._queue.clear()
