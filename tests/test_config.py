"""``load_settings``: defaults, files, ``${ENV}`` secrets, environment and flag overrides."""

from __future__ import annotations

from pathlib import Path

import pytest

from perparb.config import ConfigError, Settings, load_settings, venues_from_flag

TOML = """\
assets = ["btc", "eth"]
log_level = "INFO"

[scanner]
min_edge_bps = 2.5
max_quote_age_ms = 1500

[venues.binance]
taker_fee = 0.0004
max_quote_age_ms = 800

[venues.okx]
enabled = false

[api]
port = 9001
"""

YAML = """\
assets: [sol]
scanner:
  min_edge_bps: 1.25
venues:
  bybit:
    books: false
  okx: {}
storage:
  dir: /tmp/perparb-data
  capture: true
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    p = tmp_path / name
    p.write_text(text)
    return p


def _flat(exc: pytest.ExceptionInfo[ConfigError]) -> str:
    return str(exc.value)


def test_defaults() -> None:
    s = load_settings(env={})
    assert isinstance(s, Settings)
    assert sorted(s.venues) == ["binance", "bybit", "okx"]
    assert s.enabled_venues() == ["binance", "okx", "bybit"]
    assert s.assets == ["BTC", "ETH", "SOL"]
    assert s.scanner.min_edge_bps == 0.0
    assert s.scanner.max_quote_age_ms == 5000.0
    assert (s.api.host, s.api.port, s.api.token) == ("127.0.0.1", 8000, None)
    assert s.storage.dir == Path("data")
    assert s.storage.capture is False
    assert s.instruments_file is None
    assert s.log_level == "WARNING"
    b = s.venues["binance"]
    assert (b.enabled, b.books, b.ws_url, b.taker_fee, b.api_key) == (True, True, None, None, None)


def test_toml_file(tmp_path: Path) -> None:
    s = load_settings(_write(tmp_path, "perparb.toml", TOML), env={})
    assert s.assets == ["BTC", "ETH"]  # upper-cased
    assert s.log_level == "INFO"
    assert s.scanner.min_edge_bps == 2.5
    assert s.scanner.max_quote_age_ms == 1500.0
    assert s.venues["binance"].taker_fee == 0.0004
    assert s.venues["binance"].max_quote_age_ms == 800.0
    assert s.venues["okx"].enabled is False
    assert s.enabled_venues() == ["binance"]
    assert s.api.port == 9001


@pytest.mark.parametrize("suffix", [".yaml", ".yml"])
def test_yaml_file(tmp_path: Path, suffix: str) -> None:
    s = load_settings(_write(tmp_path, "perparb" + suffix, YAML), env={})
    assert s.assets == ["SOL"]
    assert s.scanner.min_edge_bps == 1.25
    assert s.scanner.max_quote_age_ms == 5000.0  # not in the file: default
    assert s.venues["bybit"].books is False
    assert s.venues["okx"].books is True
    assert sorted(s.venues) == ["bybit", "okx"]
    assert s.storage.dir == Path("/tmp/perparb-data")
    assert s.storage.capture is True


def test_empty_yaml_is_defaults(tmp_path: Path) -> None:
    s = load_settings(_write(tmp_path, "empty.yaml", ""), env={})
    assert s.assets == ["BTC", "ETH", "SOL"]


def test_env_substitution(tmp_path: Path) -> None:
    text = '[venues.binance]\napi_key = "${BN_KEY}"\napi_secret = "pre-${BN_SECRET}-post"\n'
    s = load_settings(_write(tmp_path, "c.toml", text), env={"BN_KEY": "k-123", "BN_SECRET": "s3cr3t"})
    b = s.venues["binance"]
    assert b.api_key is not None and b.api_key.get_secret_value() == "k-123"
    assert b.api_secret is not None and b.api_secret.get_secret_value() == "pre-s3cr3t-post"


def test_env_substitution_yaml_list(tmp_path: Path) -> None:
    text = "api:\n  cors_origins: ['http://${HOST_A}', 'http://b']\n"
    s = load_settings(_write(tmp_path, "c.yaml", text), env={"HOST_A": "a.example"})
    assert s.api.cors_origins == ["http://a.example", "http://b"]


def test_env_substitution_unset_names_key_and_variable(tmp_path: Path) -> None:
    text = '[venues.binance]\napi_key = "${PERPARB_TEST_UNSET_KEY}"\n'
    with pytest.raises(ConfigError) as exc:
        load_settings(_write(tmp_path, "c.toml", text), env={})
    msg = _flat(exc)
    assert "venues.binance.api_key" in msg
    assert "PERPARB_TEST_UNSET_KEY" in msg


def test_env_overrides() -> None:
    s = load_settings(env={"PERPARB_SCANNER__MIN_EDGE_BPS": "3", "PERPARB_ASSETS": "btc,eth"})
    assert s.scanner.min_edge_bps == 3.0
    assert s.assets == ["BTC", "ETH"]


def test_env_overrides_from_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # PERPARB_HOME (set for every test by conftest) is a known problem; see
    # test_perparb_home_is_not_a_setting.
    monkeypatch.delenv("PERPARB_HOME", raising=False)
    monkeypatch.setenv("PERPARB_SCANNER__MIN_EDGE_BPS", "3")
    monkeypatch.setenv("PERPARB_ASSETS", "btc,eth")
    s = load_settings()
    assert s.scanner.min_edge_bps == 3.0
    assert s.assets == ["BTC", "ETH"]


def test_fixtures_variable_is_not_a_setting() -> None:
    s = load_settings(env={"PERPARB_FIXTURES": "/somewhere"})
    assert s.assets == ["BTC", "ETH", "SOL"]


def test_perparb_home_is_not_a_setting() -> None:
    s = load_settings(env={"PERPARB_HOME": "/tmp/perparb-home"})
    assert s.assets == ["BTC", "ETH", "SOL"]


def test_env_overrides_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "c.toml", TOML)
    s = load_settings(path, env={"PERPARB_SCANNER__MIN_EDGE_BPS": "3", "PERPARB_VENUES__BINANCE__TAKER_FEE": "0.0002"})
    assert s.scanner.min_edge_bps == 3.0  # env beats the file's 2.5
    assert s.scanner.max_quote_age_ms == 1500.0  # the rest of the file's table survives
    assert s.venues["binance"].taker_fee == 0.0002
    assert s.venues["binance"].max_quote_age_ms == 800.0
    assert s.assets == ["BTC", "ETH"]


def test_flags_win_over_env_and_file(tmp_path: Path) -> None:
    path = _write(tmp_path, "c.toml", TOML)
    env = {"PERPARB_SCANNER__MIN_EDGE_BPS": "3", "PERPARB_ASSETS": "xrp"}
    s = load_settings(path, overrides={"scanner.min_edge_bps": 7.5, "assets": "sol,doge"}, env=env)
    assert s.scanner.min_edge_bps == 7.5
    assert s.assets == ["SOL", "DOGE"]
    assert s.scanner.max_quote_age_ms == 1500.0


def test_unset_flags_leave_env_and_file_alone(tmp_path: Path) -> None:
    path = _write(tmp_path, "c.toml", TOML)
    s = load_settings(path, overrides={"scanner.min_edge_bps": None, "assets": None},
                      env={"PERPARB_SCANNER__MIN_EDGE_BPS": "3"})
    assert s.scanner.min_edge_bps == 3.0
    assert s.assets == ["BTC", "ETH"]


def test_venues_flag_enables_exactly_those() -> None:
    s = load_settings(overrides={"venues": venues_from_flag("okx, bybit")}, env={})
    assert sorted(s.enabled_venues()) == ["bybit", "okx"]
    assert "binance" not in s.enabled_venues()


def test_venues_flag_keeps_file_settings_of_chosen_venue(tmp_path: Path) -> None:
    text = '[venues.binance]\nws_url = "ws://127.0.0.1:9100"\ntaker_fee = 0.0004\n[venues.okx]\n'
    s = load_settings(_write(tmp_path, "c.toml", text), overrides={"venues": venues_from_flag("binance")}, env={})
    assert s.enabled_venues() == ["binance"]
    assert s.venues["binance"].ws_url == "ws://127.0.0.1:9100"
    assert s.venues["binance"].taker_fee == 0.0004


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("[scanner]\nmax_quote_age_ms = -1\n", "scanner.max_quote_age_ms"),
        ("[scanner]\nmin_edge_bpz = 3\n", "scanner.min_edge_bpz"),
        ("colour = 'red'\n", "colour"),
        ("[venues.binance]\ntaker_fee = 0.5\n", "venues.binance.taker_fee"),
        ("[venues.binance]\nfoo = 1\n", "venues.binance.foo"),
        ("[api]\nport = 70000\n", "api.port"),
    ],
)
def test_bad_value_names_the_key(tmp_path: Path, text: str, key: str) -> None:
    path = _write(tmp_path, "bad.toml", text)
    with pytest.raises(ConfigError) as exc:
        load_settings(path, env={})
    msg = _flat(exc)
    assert key in msg
    assert str(path) in msg


def test_unknown_venue_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(_write(tmp_path, "bad.toml", "[venues.nosuchex]\nenabled = true\n"), env={})
    msg = _flat(exc)
    assert "venues" in msg
    assert "nosuchex" in msg


def test_bad_env_value_names_the_key() -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(env={"PERPARB_SCANNER__MAX_QUOTE_AGE_MS": "-1"})
    assert "scanner.max_quote_age_ms" in _flat(exc)


def test_bad_flag_venue_is_named() -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(overrides={"venues": venues_from_flag("binance,nosuchex")}, env={})
    assert "nosuchex" in _flat(exc)


def test_unreadable_or_unparsable_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read"):
        load_settings(tmp_path / "missing.toml", env={})
    with pytest.raises(ConfigError, match="not valid"):
        load_settings(_write(tmp_path, "broken.toml", "[scanner\n"), env={})
    with pytest.raises(ConfigError, match="not valid"):
        load_settings(_write(tmp_path, "broken.yaml", "a: [1, 2\n"), env={})
    with pytest.raises(ConfigError, match="top level"):
        load_settings(_write(tmp_path, "list.yaml", "- 1\n- 2\n"), env={})
    with pytest.raises(ConfigError, match=r"\.toml"):
        load_settings(_write(tmp_path, "c.json", "{}"), env={})


def test_secret_never_shown(tmp_path: Path) -> None:
    secret = "SUPERSECRET-4f2a9"
    token = "TOKEN-77e1c"
    text = '[venues.binance]\napi_key = "${BN_KEY}"\napi_secret = "${BN_SECRET}"\n[api]\ntoken = "' + token + '"\n'
    s = load_settings(_write(tmp_path, "c.toml", text), env={"BN_KEY": secret, "BN_SECRET": secret + "-s"})
    for shown in (repr(s), str(s), s.model_dump_json(), repr(s.model_dump()), repr(s.venues["binance"])):
        assert secret not in shown
        assert token not in shown
    # ...but the program can still read it.
    key = s.venues["binance"].api_key
    assert key is not None and key.get_secret_value() == secret
