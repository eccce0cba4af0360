"""Operating the API safely: reloading a broken configuration, health that reflects data
age, and who may open the /ws stream."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from perparb.api.app import ApiContext, create_app
from perparb.app import Session
from perparb.config import load_settings

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def test_reloading_a_broken_config_is_a_4xx_naming_the_key(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    good = f'[api]\ntoken = "{TOKEN}"\n[[alerts.rules]]\nmin_edge_bps = 5\n'
    path.write_text(good)
    settings = load_settings(path, env={})
    session = Session(settings, config_path=path)
    ctx = ApiContext(session.engine, settings.api, alerter=session.alerter, reload=session.reload)
    with TestClient(create_app(ctx)) as c:
        assert c.post("/api/config/reload", headers=AUTH).status_code == 200
        path.write_text(good.replace("min_edge_bps = 5", "min_edge_bps = nan") + 'log_level = "verbose"\n')
        r = c.post("/api/config/reload", headers=AUTH)
        assert r.status_code == 400
        detail = r.json()["detail"]
        assert "alerts.rules.0.min_edge_bps" in detail
        assert "log_level" in detail
        assert TOKEN not in r.text
        path.write_text("[scanner\n")
        r = c.post("/api/config/reload", headers=AUTH)
        assert r.status_code == 400
        assert "not valid" in r.json()["detail"]
    # The rules in force are still the ones last loaded successfully.
    assert session.alerter is not None
    assert [r.min_edge_bps for r in session.alerter.rules] == [5.0]
