"""User overrides of the instrument map, from a file the user edits and reloads.

Formats, by file extension:
- ``.txt`` / ``.map`` / ``.conf``: one ``BASE:NATIVE_SYMBOL:venue`` per line (``#`` starts a
  comment), the format existing trackers use: ``PEPE:1000PEPEUSDT:binance``.
- ``.toml``: ``[[mapping]]`` tables; ``.yaml``/``.yml``/``.json``: a list of mappings, or
  ``{"mappings": [...]}``; ``.csv``: a header row then one mapping per row.
A mapping has ``venue``, ``venue_symbol``, ``asset`` and optionally ``price_scale``,
``contract_size`` and ``status`` (``inactive`` excludes a contract from pairing).
When ``price_scale`` is not given it is inferred: ``1000PEPEUSDT`` mapped to ``PEPE`` keeps
the 1000 its name says; mapped to another asset name, the scale is 1.
A bad entry is reported with its line (or entry) number and the rest still loads.
"""

from __future__ import annotations

import csv
import io
import json
import tomllib
from pathlib import Path
from typing import Any

import msgspec
import yaml

from perparb.instruments.canonical import canonical_symbol, split_multiple
from perparb.instruments.registry import Registry
from perparb.model import Instrument


class Override(msgspec.Struct, kw_only=True):
    venue: str
    venue_symbol: str
    asset: str
    price_scale: float | None = None
    contract_size: float | None = None
    status: str | None = None
    where: str = ""  # "line 3" / "entry 2", for messages


LINE_SUFFIXES = (".txt", ".map", ".conf", ".list")


def _entry(d: Any, where: str) -> Override:
    if not isinstance(d, dict):
        raise ValueError("expected a table with venue, venue_symbol and asset")
    missing = [k for k in ("venue", "venue_symbol", "asset") if not str(d.get(k, "")).strip()]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")
    unknown = set(d) - {"venue", "venue_symbol", "asset", "price_scale", "contract_size", "status"}
    if unknown:
        raise ValueError(f"unknown field(s) {', '.join(sorted(unknown))}")

    def num(key: str) -> float | None:
        v = d.get(key)
        if v in (None, ""):
            return None
        f = float(v)
        if not f > 0:
            raise ValueError(f"{key} must be positive")
        return f

    status = d.get("status") or None
    if status not in (None, "active", "inactive"):
        raise ValueError("status must be active or inactive")
    return Override(venue=str(d["venue"]).strip(), venue_symbol=str(d["venue_symbol"]).strip(),
                    asset=str(d["asset"]).strip().upper(), price_scale=num("price_scale"),
                    contract_size=num("contract_size"), status=status, where=where)


def parse_overrides(text: str, suffix: str) -> tuple[list[Override], list[str]]:
    """(overrides, errors); each error names its line or entry."""
    out: list[Override] = []
    errors: list[str] = []
    suffix = suffix.lower()
    if suffix in LINE_SUFFIXES:
        for n, line in enumerate(text.splitlines(), 1):
            line = line.split("#", 1)[0].strip()
            if not line:
                continue
            parts = [p.strip() for p in line.split(":")]
            if len(parts) != 3 or not all(parts):
                errors.append(f"line {n}: expected BASE:NATIVE_SYMBOL:venue, got {line!r}")
                continue
            out.append(Override(asset=parts[0].upper(), venue_symbol=parts[1], venue=parts[2], where=f"line {n}"))
        return out, errors
    if suffix == ".csv":
        rows = csv.DictReader(io.StringIO(text))
        for n, row in enumerate(rows, 2):
            try:
                out.append(_entry({k.strip(): v for k, v in row.items() if k and v not in (None, "")}, f"line {n}"))
            except ValueError as exc:
                errors.append(f"line {n}: {exc}")
        return out, errors
    try:
        if suffix == ".toml":
            data: Any = tomllib.loads(text).get("mapping", [])
        elif suffix in (".yaml", ".yml"):
            data = yaml.safe_load(text) or []
        elif suffix == ".json":
            data = json.loads(text)
        else:
            return [], [f"unsupported overrides file type {suffix!r} (use .txt, .toml, .yaml, .json or .csv)"]
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError) as exc:
        return [], [f"not valid {suffix[1:].upper()}: {exc}"]
    if isinstance(data, dict):
        data = data.get("mappings", [])
    if not isinstance(data, list):
        return [], ["expected a list of mappings"]
    for n, d in enumerate(data, 1):
        try:
            out.append(_entry(d, f"entry {n}"))
        except (ValueError, TypeError) as exc:
            errors.append(f"entry {n}: {exc}")
    return out, errors


def load_overrides(path: Path) -> tuple[list[Override], list[str]]:
    try:
        text = path.read_text()
    except OSError as exc:
        return [], [f"cannot read {path}: {exc.strerror}"]
    overrides, errors = parse_overrides(text, path.suffix)
    return overrides, [f"{path.name}: {e}" for e in errors]


def apply_overrides(registry: Registry, overrides: list[Override],
                    derive: Any = None) -> tuple[list[Instrument], list[str]]:
    """Apply to ``registry``; ``derive(venue, symbol)`` may build a contract the registry does
    not know yet. Returns (changed instruments, errors)."""
    changed: list[Instrument] = []
    errors: list[str] = []
    for o in overrides:
        inst = registry.get(o.venue, o.venue_symbol)
        if inst is None and derive is not None:
            inst = derive(o.venue, o.venue_symbol)
        if inst is None:
            errors.append(f"{o.where}: {o.venue} has no contract {o.venue_symbol!r} (and its name does not say its "
                          "units): add contract_size and price_scale in a structured file, or load its metadata")
            continue
        native_base = _native_base(inst)
        natural_asset, natural_scale = split_multiple(native_base) if native_base else (inst.asset, inst.price_scale)
        scale = o.price_scale if o.price_scale is not None else (natural_scale if natural_asset == o.asset else 1.0)
        new = msgspec.structs.replace(
            inst, asset=o.asset, symbol=canonical_symbol(o.asset, inst.quote, inst.settle), price_scale=scale,
            contract_size=o.contract_size if o.contract_size is not None else inst.contract_size,
            status=o.status or inst.status, source=f"override {o.where}")
        registry.add(new)
        changed.append(new)
    return changed, errors


def _native_base(inst: Instrument) -> str:
    """The base as the venue spells it: the symbol minus separators and quote suffixes."""
    s = inst.venue_symbol
    for sep in ("-", "_", "/"):
        if sep in s:
            return s.split(sep)[0]
    for q in (inst.quote + "M", inst.quote, "PERP", "USDTM", "USDT", "USDC", "USD"):
        if s.endswith(q) and len(s) > len(q):
            return s[: -len(q)]
    return s
