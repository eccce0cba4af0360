"""Configuration: one TOML or YAML file, validated, with ``${ENV_VAR}`` secrets.

Precedence, lowest first: defaults, the file, ``PERPARB_*`` environment variables
(``PERPARB_SCANNER__MIN_EDGE_BPS=3``, ``PERPARB_ASSETS=BTC,ETH``; ``__`` separates levels),
then command-line flags. ``--venues`` enables exactly the listed venues and keeps their
settings. A bad file fails at start with the key and the problem.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from perparb.venues import venue_class, venue_ids


class ConfigError(ValueError):
    pass


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VenueSettings(_Model):
    enabled: bool = True
    ws_url: str | None = None
    rest_url: str | None = None
    books: bool = True
    max_quote_age_ms: float | None = Field(default=None, gt=0)
    taker_fee: float | None = Field(default=None, ge=0, lt=0.01)
    maker_fee: float | None = Field(default=None, gt=-0.01, lt=0.01)
    api_key: SecretStr | None = None
    api_secret: SecretStr | None = None


class ScannerSettings(_Model):
    min_edge_bps: float = 0.0
    max_quote_age_ms: float = Field(default=5000.0, gt=0)
    max_notional: float = Field(default=0.0, ge=0)  # cap on the size walked; 0 = none
    funding_notional: float = Field(default=10_000.0, gt=0)
    funding_horizon_h: float = Field(default=24.0, gt=0)
    funding_min_apr: float = 0.0
    funding_max_age_ms: float = Field(default=600_000.0, gt=0)
    funding_intervals: Literal["any", "matching", "different"] = "any"
    funding_min_open_interest_quote: float = Field(default=0.0, ge=0)
    funding_min_volume_quote: float = Field(default=0.0, ge=0)
    evict_after_ms: float = Field(default=3_600_000.0, gt=0)
    quote_groups: list[list[str]] = [["USD", "USDT", "USDC"]]
    ambiguity_ratio: float = Field(default=1.5, gt=1)


class ApiSettings(_Model):
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, lt=65536)
    token: SecretStr | None = None
    public_read: bool = True
    cors_origins: list[str] = []


class AlertRuleSettings(_Model):
    name: str = "default"
    kind: Literal["spread", "funding"] | None = None
    min_edge_bps: float | None = None
    min_size_base: float | None = None
    min_notional: float | None = None
    min_apr: float | None = None
    assets: list[str] = []
    venues: list[str] = []


class AlertSettings(_Model):
    # Apprise URLs (tgram://…, discord://…, slack://…, mailto://…, json://host/path); they carry
    # tokens, so they are secrets.
    urls: list[SecretStr] = []
    cooldown_s: float = Field(default=300.0, ge=0)
    rules: list[AlertRuleSettings] = []


class StorageSettings(_Model):
    dir: Path = Path("data")
    capture: bool = False  # record every session to dir/capture-<UTC time>.jsonl.zst


DEFAULT_VENUES = ("binance", "okx", "bybit")
# PERPARB_* variables that are not settings.
RESERVED_ENV = frozenset({"PERPARB_HOME", "PERPARB_FIXTURES"})


def _default_venues() -> dict[str, VenueSettings]:
    return {v: VenueSettings() for v in DEFAULT_VENUES}


class Settings(_Model):
    venues: dict[str, VenueSettings] = Field(default_factory=_default_venues)
    assets: list[str] = ["BTC", "ETH", "SOL"]
    scanner: ScannerSettings = ScannerSettings()
    api: ApiSettings = ApiSettings()
    storage: StorageSettings = StorageSettings()
    alerts: AlertSettings = AlertSettings()
    instruments_file: Path | None = None
    # Mapping overrides (BASE:NATIVE_SYMBOL:venue lines, TOML, YAML, JSON or CSV); reloaded
    # when the file changes or on POST /api/config/reload.
    instrument_overrides: Path | None = None
    log_level: str = "WARNING"

    @field_validator("venues")
    @classmethod
    def _known_venues(cls, v: dict[str, VenueSettings]) -> dict[str, VenueSettings]:
        for name in v:
            try:
                venue_class(name)  # native ids, and generic ones such as ccxt:bingx
            except KeyError:
                raise ValueError(f"unknown venue {name!r}; known venues: {', '.join(venue_ids())}, "
                                 "or ccxt:<exchange id>") from None
        return v

    @field_validator("assets", mode="before")
    @classmethod
    def _assets(cls, v: Any) -> Any:
        if isinstance(v, str):
            v = v.split(",")
        if isinstance(v, list):
            return [str(a).strip().upper() for a in v if str(a).strip()]
        return v

    def enabled_venues(self) -> list[str]:
        return [v for v, s in self.venues.items() if s.enabled]


_ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _substitute(node: Any, where: str, env: Mapping[str, str]) -> Any:
    if isinstance(node, dict):
        return {k: _substitute(v, f"{where}.{k}" if where else str(k), env) for k, v in node.items()}
    if isinstance(node, list):
        return [_substitute(v, f"{where}[{i}]", env) for i, v in enumerate(node)]
    if isinstance(node, str):
        def repl(m: re.Match[str]) -> str:
            if m.group(1) not in env:
                raise ConfigError(f"config key {where}: environment variable {m.group(1)} is not set")
            return env[m.group(1)]
        return _ENV_REF.sub(repl, node)
    return node


def _set(tree: dict[str, Any], dotted: str, value: Any) -> None:
    keys = dotted.split(".")
    for k in keys[:-1]:
        nxt = tree.get(k)
        if not isinstance(nxt, dict):
            nxt = tree[k] = {}
        tree = nxt
    tree[keys[-1]] = value


def read_file(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"cannot read config file {path}: {exc.strerror}") from None
    try:
        if path.suffix.lower() == ".toml":
            data: Any = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text) or {}
        else:
            raise ConfigError(f"config file {path}: use .toml, .yaml or .yml")
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as exc:
        raise ConfigError(f"config file {path} is not valid: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path}: the top level must be a table of settings")
    return data


def load_settings(path: Path | None = None, overrides: Mapping[str, Any] | None = None,
                  env: Mapping[str, str] | None = None) -> Settings:
    env = os.environ if env is None else env
    tree: dict[str, Any] = _substitute(read_file(path), "", env) if path else {}
    # A file's [venues] table is the venue list; without one, the default venues. The
    # environment and flags refine that list.
    tree.setdefault("venues", {v: {} for v in DEFAULT_VENUES})
    for name, value in sorted(env.items()):
        if name.startswith("PERPARB_") and name not in RESERVED_ENV:
            _set(tree, name[len("PERPARB_"):].lower().replace("__", "."), value)
    only = None
    for dotted, value in (overrides or {}).items():
        if dotted == "venues" and isinstance(value, list):
            only = value
        elif value is not None:
            _set(tree, dotted, value)
    if only is not None:
        venues = tree["venues"] if isinstance(tree.get("venues"), dict) else {}
        for name in set(venues) | set(only):
            entry = venues.get(name)
            venues[name] = {**(entry if isinstance(entry, dict) else {}), "enabled": name in only}
        tree["venues"] = venues
    try:
        return Settings.model_validate(tree)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"  {key}: {err['msg']}")
        source = f"config file {path}" if path else "configuration"
        raise ConfigError(f"{source} is not valid:\n" + "\n".join(lines)) from None


def venues_from_flag(names: str) -> list[str]:
    """``--venues binance,okx``: exactly these venues are enabled; their settings are kept.
    Pass the result as the ``venues`` override of ``load_settings``."""
    return [n.strip() for n in names.split(",") if n.strip()]
