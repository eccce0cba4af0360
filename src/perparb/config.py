"""Configuration: one TOML or YAML file, validated, with ``${ENV_VAR}`` secrets.

Precedence, lowest first: defaults, the file, ``PERPARB_*`` environment variables
(``PERPARB_SCANNER__MIN_EDGE_BPS=3``, ``PERPARB_ASSETS=BTC,ETH``; ``__`` separates levels),
``--set key=value``, then the explicit command-line flags. A ``PERPARB_*`` variable is a
setting only when its name starts with a top-level settings key (``PERPARB_API__PORT``)
and the file does not reference it as ``${...}``; every other one (``PERPARB_TOKEN``,
``PERPARB_HOME``) is left alone, free for substitution. ``venues`` given as a list
(``--venues``, ``--set venues=a,b``, ``PERPARB_VENUES``) enables exactly those venues and
keeps their settings. A bad value fails at start with the key, where it came from, and
the problem.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator

from perparb.trading_settings import (
    ExecutionSettings,
    PaperSettings,
    RiskSettings,
    Strategies,
    default_strategies,
)
from perparb.venues import venue_class, venue_ids


class ConfigError(ValueError):
    pass


class _Model(BaseModel):
    # NaN and infinities pass every comparison a bound makes; refuse them at the door.
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)


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
    api_password: SecretStr | None = None  # the passphrase some venues add (OKX, KuCoin, Bitget)
    sandbox: bool = False  # live orders go to the venue's testnet or demo-trading environment


class ScannerSettings(_Model):
    # Where a trader starts: below ~2 bps net a spread does not survive latency and slippage,
    # and 50,000 per opportunity is a size one account can take on most venues' books.
    min_edge_bps: float = 2.0
    max_quote_age_ms: float = Field(default=5000.0, gt=0)
    max_notional: float = Field(default=50_000.0, ge=0)  # cap on the size walked; 0 = none
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
    max_funding_rate: float = Field(default=0.05, gt=0, le=1)  # |rate| per interval; beyond is a decode error
    clock_window_s: float = Field(default=600.0, gt=0, le=31_536_000)  # venue timestamps vs the engine clock


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
    max_bytes: int | None = Field(default=None, gt=0)  # disk budget of a --record directory
    # Normalized history in Parquet (perparb query reads it); book snapshots: top levels, how often.
    parquet_dir: Path | None = None
    book_depth: int = Field(default=5, ge=0)
    book_interval_s: float = Field(default=1.0, gt=0)
    # The trading ledger: SQLite at `ledger` (default: dir/ledger.sqlite when dir is set, else
    # $PERPARB_HOME/ledger.sqlite), or PostgreSQL when postgres_url is set (it may hold a password).
    ledger: Path | None = None
    postgres_url: SecretStr | None = None
    postgres_schema: str = Field(default="public", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    # normal: a commit survives the process being killed; full: also an OS crash (fsync per commit).
    ledger_sync: Literal["normal", "full"] = "normal"


DEFAULT_VENUES = ("binance", "okx", "bybit")


def _default_venues() -> dict[str, VenueSettings]:
    return {v: VenueSettings() for v in DEFAULT_VENUES}


class Settings(_Model):
    venues: dict[str, VenueSettings] = Field(default_factory=_default_venues)
    assets: list[str] = ["BTC", "ETH", "SOL"]
    scanner: ScannerSettings = ScannerSettings()
    api: ApiSettings = ApiSettings()
    storage: StorageSettings = StorageSettings()
    alerts: AlertSettings = AlertSettings()
    execution: ExecutionSettings = ExecutionSettings()
    risk: RiskSettings = RiskSettings()
    paper: PaperSettings = PaperSettings()
    strategies: Strategies = Field(default_factory=default_strategies)
    instruments_file: Path | None = None
    # Mapping overrides (BASE:NATIVE_SYMBOL:venue lines, TOML, YAML, JSON or CSV); reloaded
    # when the file changes or on POST /api/config/reload.
    instrument_overrides: Path | None = None
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "WARNING"

    @field_validator("log_level", mode="before")
    @classmethod
    def _level(cls, v: Any) -> Any:
        return v.strip().upper() if isinstance(v, str) else v

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
            v = [str(a).strip().upper() for a in v if str(a).strip()]
            if not v:
                raise ValueError("name at least one asset, e.g. BTC,ETH")
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


def _set(tree: dict[str, Any], dotted: str, value: Any) -> str:
    """Set a dotted key; returns it as validation names it. An entry of a list of named
    tables is addressed by its name or index (``strategies.spread.entry_edge_bps``); the
    default strategies are the list when no file gives one."""
    keys = dotted.split(".")
    if keys[0] == "strategies" and len(keys) > 2 and not isinstance(tree.get("strategies"), list):
        tree["strategies"] = [s.model_dump() for s in default_strategies()]
    node: Any = tree
    path: list[str] = []
    for k in keys[:-1]:
        if isinstance(node, list):
            node, k = _entry(node, k, ".".join(path))
        else:
            nxt = node.get(k)
            if not isinstance(nxt, dict | list):
                nxt = node[k] = {}
            node = nxt
        path.append(k)
    if isinstance(node, list):
        raise ConfigError(f"{dotted}: name a key inside an entry of {'.'.join(path)}")
    node[keys[-1]] = value
    return ".".join([*path, keys[-1]])


def _entry(items: list[Any], key: str, where: str) -> tuple[dict[str, Any], str]:
    """The table of ``items`` named ``key`` (or at index ``key``) and its index."""
    for i, item in enumerate(items):
        if isinstance(item, dict) and item.get("name") == key:
            return item, str(i)
    if key.isdigit() and int(key) < len(items) and isinstance(items[int(key)], dict):
        return items[int(key)], key
    names = ", ".join(str(x.get("name")) for x in items if isinstance(x, dict)) or "none"
    raise ConfigError(f"{where}.{key}: no entry named {key!r} in {where} (there are: {names})")


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


def _referenced(node: Any) -> set[str]:
    """The variables a file names in ``${...}``."""
    if isinstance(node, dict):
        return set().union(*(_referenced(v) for v in node.values())) if node else set()
    if isinstance(node, list):
        return set().union(*(_referenced(v) for v in node)) if node else set()
    return set(_ENV_REF.findall(node)) if isinstance(node, str) else set()


def env_settings(env: Mapping[str, str], referenced: Collection[str] = ()) -> list[tuple[str, str, str]]:
    """``(dotted key, value, variable)`` for the ``PERPARB_*`` variables that are settings."""
    out = []
    for name, value in sorted(env.items()):
        if not name.startswith("PERPARB_") or name in referenced:
            continue
        dotted = name[len("PERPARB_"):].lower().replace("__", ".")
        if dotted.split(".")[0] in Settings.model_fields:
            out.append((dotted, value, name))
    return out


def _parse_text(value: Any) -> Any:
    """Environment and ``--set`` values are text; ``[...]`` and ``{...}`` are read as JSON
    (``--set 'api.cors_origins=["https://a.example"]'``), the rest is left to validation."""
    if isinstance(value, str) and value.strip()[:1] in ("[", "{"):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _enable_only(tree: dict[str, Any], names: list[str]) -> None:
    venues = tree["venues"] if isinstance(tree.get("venues"), dict) else {}
    for name in dict.fromkeys([*venues, *names]):  # a set's order would vary per run
        entry = venues.get(name)
        venues[name] = {**(entry if isinstance(entry, dict) else {}), "enabled": name in names}
    tree["venues"] = venues


def load_settings(path: Path | None = None, overrides: Mapping[str, Any] | None = None,
                  env: Mapping[str, str] | None = None, sets: Mapping[str, Any] | None = None) -> Settings:
    """Defaults < ``path`` < ``env`` (``PERPARB_*``) < ``sets`` (``--set``) < ``overrides``
    (explicit flags; a None value is a flag not given and changes nothing)."""
    env = os.environ if env is None else env
    raw = read_file(path) if path else {}
    tree: dict[str, Any] = _substitute(raw, "", env)
    # A file's [venues] table is the venue list; without one, the default venues. The
    # environment and flags refine that list.
    tree.setdefault("venues", {v: {} for v in DEFAULT_VENUES})
    origin: dict[str, str] = {}
    layers: list[tuple[str, Any, str]] = [(k, _parse_text(v), f"environment {n}")
                                          for k, v, n in env_settings(env, _referenced(raw))]
    layers += [(k, _parse_text(v), f"--set {k}") for k, v in (sets or {}).items()]
    layers += [(k, v, "command-line flag") for k, v in (overrides or {}).items() if v is not None]
    for dotted, value, source in layers:
        if dotted == "venues" and isinstance(value, str | list):
            names = venues_from_flag(value) if isinstance(value, str) else [str(n) for n in value]
            _enable_only(tree, names)
        else:
            origin[_set(tree, dotted, value)] = source
        origin[dotted] = source
    try:
        settings = Settings.model_validate(tree)
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"]) or "(top level)"
            lines.append(f"  {key}: {err['msg']}{_from(key, origin)}")
        source = f"config file {path}" if path else "configuration"
        raise ConfigError(f"{source} is not valid:\n" + "\n".join(lines)) from None
    _check_paths(settings, origin)
    return settings


def _from(key: str, origin: Mapping[str, str]) -> str:
    """`` (from <source>)`` for a key (or a parent of it) set outside the file."""
    parts = key.split(".")
    for n in range(len(parts), 0, -1):
        src = origin.get(".".join(parts[:n]))
        if src:
            return f" (from {src})"
    return ""


def _check_paths(settings: Settings, origin: Mapping[str, str]) -> None:
    """Files the settings name must exist, and the capture directory must be writable."""
    # A missing instrument_overrides file is not an error: it is read when it appears.
    problems = []
    value = settings.instruments_file
    if value is not None and not Path(value).is_file():
        what = "is a directory" if Path(value).is_dir() else "does not exist"
        problems.append(f"  instruments_file: {value} {what}{_from('instruments_file', origin)}")
    if settings.storage.capture:
        problem = writable_dir_problem(Path(settings.storage.dir))
        if problem:
            problems.append(f"  storage.dir: {problem}{_from('storage.dir', origin)}")
    if problems:
        raise ConfigError("configuration is not valid:\n" + "\n".join(problems))


def writable_dir_problem(folder: Path) -> str | None:
    """Why files cannot be created in ``folder`` (created if missing), or None."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        return f"cannot create directory {folder}: {existing} is not a directory"
    if not os.access(existing, os.W_OK | os.X_OK):
        return f"directory {existing} is not writable"
    return None


def venues_from_flag(names: str) -> list[str]:
    """``--venues binance,okx``: exactly these venues are enabled; their settings are kept.
    Pass the result as the ``venues`` override of ``load_settings``."""
    return [n.strip() for n in names.split(",") if n.strip()]
