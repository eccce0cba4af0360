"""perparb: cross-exchange perpetual futures arbitrage."""

__version__ = "0.1.0"
