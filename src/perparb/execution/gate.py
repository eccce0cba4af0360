"""The live-trading gate: real orders only when three things hold.

1. The configuration sets ``execution.mode = "live"``.
2. Every enabled venue has an API key and secret (``venues.<id>.api_key`` and
   ``api_secret``, normally ``"${BINANCE_API_KEY}"``-style references to the
   environment), and ccxt can trade it.
3. The command was started with ``--confirm-live``.

Asking for live trading (the mode or the flag) with any condition missing refuses to
start, naming each missing condition: perparb never falls back to paper trading when
live was asked for, and never trades live by accident when it was not.
"""

from __future__ import annotations

import re
from typing import Any

from perparb.bus import Bus
from perparb.config import Settings
from perparb.execution import MarketView
from perparb.execution.live import LiveExecution, make_exchange

CONFIRM_FLAG = "--confirm-live"


def execution_mode(settings: Settings) -> str:
    return str(getattr(getattr(settings, "execution", None), "mode", "paper"))


def live_requested(settings: Settings, confirmed: bool) -> bool:
    return confirmed or execution_mode(settings) == "live"


def _secret(value: Any) -> str:
    return value.get_secret_value().strip() if value is not None else ""


def live_gate(settings: Settings, confirmed: bool) -> list[str]:
    """The conditions for live trading that do not hold (empty: live trading may start)."""
    from perparb.scanner.once import ccxt_id

    missing = []
    mode = execution_mode(settings)
    if mode != "live":
        missing.append(f'configuration: execution.mode is "{mode}", not "live" (set execution.mode = "live")')
    venues = settings.enabled_venues()
    if not venues:
        missing.append("API keys: no venue is enabled")
    for v in venues:
        vs = settings.venues[v]
        env = re.sub(r"[^A-Z0-9]+", "_", v.upper()).strip("_")
        for key, name in (("api_key", "API_KEY"), ("api_secret", "API_SECRET")):
            if not _secret(getattr(vs, key)):
                missing.append(f'API keys: venues.{v}.{key} is not set (e.g. {key} = "${{{env}_{name}}}")')
        if ccxt_id(v) is None:
            missing.append(f"API keys: venue {v} has no ccxt exchange to trade it with")
    if not confirmed:
        missing.append(f"confirmation: the command was not started with {CONFIRM_FLAG}")
    return missing


def build_live_execution(settings: Settings, bus: Bus, view: MarketView, poll_s: float = 1.0) -> LiveExecution:
    """Live execution for every enabled venue. Call only once ``live_gate`` came back empty."""
    exchanges = {}
    for v in settings.enabled_venues():
        vs = settings.venues[v]
        exchanges[v] = make_exchange(v, _secret(vs.api_key), _secret(vs.api_secret), _secret(vs.api_password),
                                     vs.rest_url or "", vs.sandbox)
    return LiveExecution(bus, view, exchanges, poll_s=poll_s)
