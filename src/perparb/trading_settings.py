"""Trading configuration: ``[execution]``, ``[risk]``, ``[paper]`` and ``[[strategies]]``.

Every limit is checked at start: a negative size, a NaN, a confidence outside (0, 1) or a
maintenance margin above the initial one is refused with the key named, since a risk
engine running on an impossible limit would either block everything or nothing.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


Rate = Annotated[float, Field(ge=0, lt=1)]


class ExecutionSettings(_Model):
    mode: Literal["paper", "live"] = "paper"
    latency_ms: float = Field(default=50.0, ge=0, le=60_000)  # order reaches the venue after this (engine time)
    venue_latency_ms: dict[str, Annotated[float, Field(ge=0, le=60_000)]] = {}
    # One leg filled and the other not after this long: the filled leg is unwound or hedged.
    leg_timeout_ms: float = Field(default=2_000.0, gt=0, le=3_600_000)
    leg_risk_action: Literal["unwind", "hedge"] = "unwind"
    # Fee-rate overrides keyed by venue or "venue:venue_symbol" (the contract wins).
    taker_fee: dict[str, Annotated[float, Field(ge=0, lt=0.01)]] = {}
    maker_fee: dict[str, Annotated[float, Field(gt=-0.01, lt=0.01)]] = {}
    post_only_tif_ms: float = Field(default=60_000.0, ge=0)


class MarginRates(_Model):
    initial: float = Field(default=0.1, gt=0, le=1)
    maintenance: float = Field(default=0.05, gt=0, lt=1)

    @model_validator(mode="after")
    def _order(self) -> MarginRates:
        if self.maintenance >= self.initial:
            raise ValueError(f"maintenance margin rate {self.maintenance} must be below the initial rate "
                             f"{self.initial}")
        return self


class PaperSettings(_Model):
    enabled: bool = True
    # Starting collateral of every venue account, by settlement asset (USDT, USDC, USD, a coin).
    collateral: dict[str, Annotated[float, Field(ge=0)]] = {"USDT": 100_000.0, "USDC": 100_000.0,
                                                            "USD": 100_000.0}
    margin: MarginRates = MarginRates()
    venue_margin: dict[str, MarginRates] = {}  # per-venue margin rates


class RiskSettings(_Model):
    """Amounts are in the quote currency (USD-equivalent), fractions are of one (0.1 = 10 %)."""

    max_order_notional: float = Field(default=50_000.0, gt=0)
    max_asset_notional: float = Field(default=100_000.0, gt=0)  # gross, one asset across venues
    max_venue_notional: float = Field(default=200_000.0, gt=0)  # gross, one venue
    max_gross_notional: float = Field(default=500_000.0, gt=0)
    max_net_notional: float = Field(default=25_000.0, gt=0)  # |sum of signed notionals|: directional exposure
    max_leverage: float = Field(default=5.0, gt=0, le=200)  # a venue's gross notional / its equity
    min_liquidation_distance: float = Field(default=0.05, ge=0, lt=1)
    max_quote_age_ms: float = Field(default=2_000.0, gt=0)  # stale-quote guard on both legs
    max_daily_loss: float = Field(default=5_000.0, gt=0)  # since 00:00 UTC (engine time)
    max_drawdown: float = Field(default=0.1, gt=0, le=1)  # from the peak equity
    var_confidence: float = Field(default=0.99, gt=0, lt=1)
    var_horizon_s: float = Field(default=60.0, gt=0)
    var_sample_s: float = Field(default=1.0, gt=0)  # mid prices are sampled this often (engine time)
    var_window: int = Field(default=3_600, ge=10, le=1_000_000)  # samples kept per contract
    max_var: float = Field(default=0.0, ge=0)  # 0: VaR is reported but does not block entries
    kill_on_breach: bool = True  # daily loss or drawdown beyond its limit engages the kill switch
    flatten_on_kill: bool = False

    @model_validator(mode="after")
    def _horizon(self) -> RiskSettings:
        if self.var_horizon_s < self.var_sample_s:
            raise ValueError(f"var_horizon_s ({self.var_horizon_s}) is shorter than var_sample_s "
                             f"({self.var_sample_s})")
        return self


_KIND_DEFAULTS = {
    # entry_edge_bps, exit_edge_bps, stop_bps, max_hold_s
    "spread": (3.0, 0.0, 30.0, 120.0),
    "funding": (1.0, 0.0, 50.0, 7 * 86_400.0),
}


class StrategySettings(_Model):
    """One strategy instance. ``spread``: enter when an opportunity's net edge is at least
    ``entry_edge_bps``; exit when the mid gap is back to ``exit_edge_bps`` or less, after
    ``max_hold_s``, or when it widened ``stop_bps`` beyond entry. ``funding``: enter when the
    expected net carry to the horizon is at least ``entry_edge_bps`` of the notional; exit when
    the carry still expected falls below ``exit_edge_bps``, the basis moved ``stop_bps`` against
    the position, or after ``max_hold_s``."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    kind: Literal["spread", "funding"]
    enabled: bool = True
    assets: list[str] = []  # empty: every asset
    venues: list[str] = []  # both legs among these; empty: any venue
    entry_edge_bps: float | None = None
    exit_edge_bps: float | None = None
    stop_bps: float | None = Field(default=None, gt=0)
    max_hold_s: float | None = Field(default=None, gt=0)
    min_apr: float = 0.0  # funding: annualized differential floor (0.1 = 10 %)
    min_size_base: float = Field(default=0.0, ge=0)  # the opportunity must offer at least this
    min_notional: float = Field(default=0.0, ge=0)
    notional: float = Field(default=2_000.0, gt=0)  # quote currency per position (capped by the opportunity)
    max_open: int = Field(default=3, ge=1, le=10_000)  # positions open at once
    cooldown_s: float = Field(default=5.0, ge=0)  # before re-entering a venue pair it just left
    order_type: Literal["market", "ioc"] = "market"
    slippage_bps: float = Field(default=10.0, ge=0, le=10_000)  # ioc limit beyond the quoted price

    @model_validator(mode="after")
    def _defaults(self) -> StrategySettings:
        entry, exit_, stop, hold = _KIND_DEFAULTS[self.kind]
        self.entry_edge_bps = entry if self.entry_edge_bps is None else self.entry_edge_bps
        self.exit_edge_bps = exit_ if self.exit_edge_bps is None else self.exit_edge_bps
        self.stop_bps = stop if self.stop_bps is None else self.stop_bps
        self.max_hold_s = hold if self.max_hold_s is None else self.max_hold_s
        if self.exit_edge_bps > self.entry_edge_bps:
            raise ValueError(f"exit_edge_bps ({self.exit_edge_bps}) is above entry_edge_bps "
                             f"({self.entry_edge_bps}): every entry would exit at once")
        self.assets = [a.upper() for a in self.assets]
        return self

    # Typed accessors once defaults are filled in.
    @property
    def entry(self) -> float:
        return float(self.entry_edge_bps or 0.0)

    @property
    def exit_at(self) -> float:
        return float(self.exit_edge_bps or 0.0)

    @property
    def stop(self) -> float:
        return float(self.stop_bps or 0.0)

    @property
    def max_hold_ns(self) -> int:
        return int((self.max_hold_s or 0.0) * 1e9)


def _unique_names(v: list[StrategySettings]) -> list[StrategySettings]:
    seen: set[str] = set()
    for s in v:
        if s.name in seen:
            raise ValueError(f"strategy name {s.name!r} is used twice; names must be unique")
        seen.add(s.name)
    return v


def default_strategies() -> list[StrategySettings]:
    return [StrategySettings(name="spread", kind="spread"), StrategySettings(name="carry", kind="funding")]


Strategies = Annotated[list[StrategySettings], AfterValidator(_unique_names)]
