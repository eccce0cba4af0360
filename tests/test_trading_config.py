"""Trading settings: defaults, [[strategies]] instances, and impossible limits refused with the key named."""

from __future__ import annotations

from pathlib import Path

import pytest

from perparb.config import ConfigError, load_settings


def _load(tmp_path: Path, text: str):  # type: ignore[no-untyped-def]
    p = tmp_path / "c.toml"
    p.write_text(text)
    return load_settings(p, env={})


def test_defaults_paper_mode_and_both_strategies() -> None:
    s = load_settings(env={})
    assert s.execution.mode == "paper" and s.execution.latency_ms == 50.0
    assert s.execution.leg_risk_action == "unwind"
    assert s.paper.enabled
    assert [(x.name, x.kind) for x in s.strategies] == [("spread", "spread"), ("carry", "funding")]
    # kind defaults filled in
    assert s.strategies[0].entry == 3.0 and s.strategies[1].max_hold_ns == 7 * 86_400 * 10**9


def test_several_instances_with_filters(tmp_path: Path) -> None:
    s = _load(tmp_path, """
[execution]
leg_timeout_ms = 500
leg_risk_action = "hedge"
venue_latency_ms = {okx = 80}

[[strategies]]
name = "btc-fast"
kind = "spread"
assets = ["btc"]
venues = ["binance", "okx"]
entry_edge_bps = 4
exit_edge_bps = 1
notional = 500

[[strategies]]
name = "slow"
kind = "spread"
entry_edge_bps = 10

[[strategies]]
name = "carry"
kind = "funding"
stop_bps = 80
""")
    assert [x.name for x in s.strategies] == ["btc-fast", "slow", "carry"]
    fast = s.strategies[0]
    assert fast.assets == ["BTC"] and fast.venues == ["binance", "okx"] and fast.exit_at == 1.0
    assert s.strategies[2].stop == 80.0
    assert s.execution.leg_timeout_ms == 500 and s.execution.venue_latency_ms == {"okx": 80}


@pytest.mark.parametrize(("text", "key"), [
    ("[risk]\nmax_daily_loss = -5", "risk.max_daily_loss"),
    ("[risk]\nmax_leverage = nan", "risk.max_leverage"),
    ("[risk]\nvar_confidence = 1.0", "risk.var_confidence"),
    ("[risk]\nvar_confidence = 0", "risk.var_confidence"),
    ("[risk]\nmax_drawdown = 1.5", "risk.max_drawdown"),
    ("[risk]\nmin_liquidation_distance = -0.1", "risk.min_liquidation_distance"),
    ("[risk]\nmax_gross_notional = inf", "risk.max_gross_notional"),
    ("[risk]\nvar_horizon_s = 0.5\nvar_sample_s = 1", "risk"),
    ("[execution]\nleg_timeout_ms = 0", "execution.leg_timeout_ms"),
    ("[execution]\nleg_risk_action = \"pray\"", "execution.leg_risk_action"),
    ("[execution]\nmode = \"yolo\"", "execution.mode"),
    ("[paper.margin]\ninitial = 0.05\nmaintenance = 0.1", "paper.margin"),
    ("[[strategies]]\nname = \"a\"\nkind = \"spread\"\nnotional = -1", "strategies.0.notional"),
    ("[[strategies]]\nname = \"a\"\nkind = \"carry\"", "strategies.0.kind"),
    ("[[strategies]]\nname = \"a\"\nkind = \"spread\"\n[[strategies]]\nname = \"a\"\nkind = \"funding\"",
     "strategies"),
    ("[[strategies]]\nname = \"a\"\nkind = \"spread\"\nentry_edge_bps = 1\nexit_edge_bps = 2", "strategies.0"),
])
def test_impossible_limits_are_refused_with_the_key(tmp_path: Path, text: str, key: str) -> None:
    with pytest.raises(ConfigError) as exc:
        _load(tmp_path, text)
    lines = str(exc.value).splitlines()[1:]
    assert any(line.strip().startswith(key + ":") for line in lines), str(exc.value)
