"""The in-process bus and the engine's timers: the ordering guarantees trading relies on."""

from __future__ import annotations

import msgspec
import pytest

from perparb.bus import EXECUTIONS, ORDERS, TRADE_ORDERS, InProcessBus
from perparb.bus.messages import SCHEMA_VERSION, Fill, Leg, Order, TradeIntent, TradingMessage
from perparb.engine import Engine
from perparb.instruments.registry import Registry


def _order(n: int) -> Order:
    return Order(id=f"o{n}", intent_id="i1", strategy="s", ts_ns=n, venue="binance", symbol="BTC/USDT:USDT",
                 venue_symbol="BTCUSDT", side="buy", qty=0.5)


def test_handlers_run_in_subscription_order_and_nested_publishes_queue() -> None:
    bus = InProcessBus()
    seen: list[str] = []

    def risk(msg: object) -> None:
        seen.append(f"risk:{msg.id}")  # type: ignore[attr-defined]
        bus.publish(ORDERS, _order(1))
        bus.publish(ORDERS, _order(2))
        seen.append("risk:done")

    bus.subscribe(TRADE_ORDERS, risk)
    bus.subscribe(TRADE_ORDERS, lambda m: seen.append(f"audit:{m.id}"))  # type: ignore[attr-defined]
    bus.subscribe(ORDERS, lambda m: seen.append(f"exec:{m.id}"))  # type: ignore[attr-defined]
    intent = TradeIntent(id="i1", ts_ns=1, strategy="s", action="open", asset="BTC",
                         legs=[Leg(venue="binance", symbol="BTC/USDT:USDT", venue_symbol="BTCUSDT", side="buy",
                                   qty=0.5)])
    bus.publish(TRADE_ORDERS, intent)
    # The intent reaches every subscriber before the orders risk published while handling it.
    assert seen == ["risk:i1", "risk:done", "audit:i1", "exec:o1", "exec:o2"]
    assert bus.published[ORDERS] == 2 and bus.published[TRADE_ORDERS] == 1


def test_unknown_channel_is_named() -> None:
    bus = InProcessBus()
    with pytest.raises(KeyError, match="unknown bus channel 'fills'"):
        bus.publish("fills", _order(1))
    with pytest.raises(KeyError, match="unknown bus channel"):
        bus.subscribe("fills", lambda m: None)


def test_messages_round_trip_through_msgpack_with_their_type_and_version() -> None:
    fill = Fill(id="f1", ts_ns=5, venue="okx", symbol="ETH/USDT:USDT", venue_symbol="ETH-USDT-SWAP", side="sell",
                qty=0.25, px=3000.5, fee=0.375625, fee_asset="USDT", liquidity="taker", order_id="o1",
                intent_id="i1")
    raw = msgspec.msgpack.encode(fill)
    back = msgspec.msgpack.decode(raw, type=TradingMessage)
    assert back == fill and back.v == SCHEMA_VERSION
    assert msgspec.msgpack.decode(raw)["type"] == "fill"


def test_engine_timers_fire_in_due_order_before_later_messages() -> None:
    engine = Engine(Registry(), [])
    fired: list[tuple[str, int, int]] = []
    engine.call_at(300, lambda due: fired.append(("b", due, engine.now_ns)))
    engine.call_at(100, lambda due: fired.append(("a", due, engine.now_ns)))
    engine.call_at(300, lambda due: fired.append(("c", due, engine.now_ns)))  # same due: scheduling order
    engine.advance(99)
    assert fired == []
    engine.advance(1000)
    assert fired == [("a", 100, 100), ("b", 300, 300), ("c", 300, 300)]
    assert engine.now_ns == 1000


def test_a_failing_timer_does_not_stop_the_others() -> None:
    engine = Engine(Registry(), [])
    fired: list[int] = []

    def boom(due: int) -> None:
        raise RuntimeError("bad")

    engine.call_at(10, boom)
    engine.call_at(20, fired.append)
    engine.advance(50)
    assert fired == [20]


def test_exec_channel_exists() -> None:
    bus = InProcessBus()
    got: list[object] = []
    bus.subscribe(EXECUTIONS, got.append)
    bus.publish(EXECUTIONS, _order(3))
    assert got == [_order(3)]
