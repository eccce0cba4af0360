"""The Grafana dashboard in deploy/ only queries metrics the API really exports."""

from __future__ import annotations

import json
import re
from pathlib import Path

from fastapi.testclient import TestClient

from perparb.api.app import ApiContext, create_app
from perparb.config import ApiSettings
from perparb.scanner.alerts import Alerter, AlertRule
from test_api import make_engine

ROOT = Path(__file__).resolve().parents[1]


def test_every_dashboard_metric_is_exported() -> None:
    dash = json.loads((ROOT / "deploy" / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dash["panels"] for t in p["targets"]]
    used = {m for e in exprs for m in re.findall(r"\b(perparb_[a-z_]+)", e)}
    alerter = Alerter([AlertRule()], [])
    engine = make_engine(alerter)
    engine.scanner.rejections["stale"] += 1  # so that every labelled family has a sample
    with TestClient(create_app(ApiContext(engine, ApiSettings(), alerter=alerter))) as c:
        text = c.get("/metrics").text
    exported = set(re.findall(r"^(perparb_[a-z_]+?)(?:\{| )", text, flags=re.M))
    missing = {m for m in used if m not in exported}
    assert not missing, missing
    assert len(used) >= 10
