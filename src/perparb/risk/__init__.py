"""Risk: pre-trade checks, portfolio limits, VaR, leg risk and the kill switch."""

from perparb.risk.engine import REASONS, RiskEngine

__all__ = ["REASONS", "RiskEngine"]
