"""Canonical asset names: one name per underlying token, whatever a venue calls it.

Venues rename small-priced tokens by a multiple: ``1000PEPE`` (Binance, Bybit), ``kPEPE``
(Hyperliquid), ``1MBABYDOGE``, ``1000000MOG``. The canonical asset is the token itself
(``PEPE``) and ``price_scale`` is the multiple.
"""

from __future__ import annotations

import re

# Venue spellings of one token that are not multiples.
ALIASES = {"XBT": "BTC"}

# Tickers that begin with a digit but are token names, not multiples.
NOT_MULTIPLES = frozenset({"1INCH", "1000SATS_SPOT"})

_NUMERIC = re.compile(r"^(10{1,8})([A-Z][A-Z0-9]*)$")
_MILLION = re.compile(r"^1M([A-Z][A-Z0-9]*)$")
_KILO = re.compile(r"^k([A-Z][A-Z0-9]*)$")


def split_multiple(base: str) -> tuple[str, float]:
    """Return (canonical asset, price scale) for a venue's base-currency name."""
    if base in NOT_MULTIPLES:
        return base, 1.0
    m = _NUMERIC.match(base)
    if m:
        return ALIASES.get(m.group(2), m.group(2)), float(m.group(1))
    m = _MILLION.match(base)
    if m:
        return ALIASES.get(m.group(1), m.group(1)), 1_000_000.0
    m = _KILO.match(base)
    if m:
        return ALIASES.get(m.group(1), m.group(1)), 1000.0
    return ALIASES.get(base, base), 1.0


def canonical_symbol(asset: str, quote: str, settle: str) -> str:
    """ccxt unified notation for a perpetual: ``BTC/USDT:USDT``, ``BTC/USD:BTC``."""
    return f"{asset}/{quote}:{settle}"
