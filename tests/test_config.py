"""``load_settings``: defaults, files, ``${ENV}`` secrets, environment and flag overrides."""

from __future__ import annotations

from collections.abc import Callable
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
    # A trader's starting point, not 0 and unlimited (README: Configuration).
    assert (s.scanner.min_edge_bps, s.scanner.max_notional) == (2.0, 50_000.0)
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
    # PERPARB_HOME (set for every test by conftest) stays: it names no setting.
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


# -- precedence: defaults < file < environment < --set < flags ------------------------------
PRECEDENCE = [
    # key, file TOML, environment, --set value, flag value, read back, expected per layer
    ("assets", 'assets = ["ada"]\n', "dot", "link", "xrp", lambda s: s.assets,
     (["ADA"], ["DOT"], ["LINK"], ["XRP"])),
    ("scanner.min_edge_bps", "[scanner]\nmin_edge_bps = 1.5\n", "2.5", "1000", 4.5,
     lambda s: s.scanner.min_edge_bps, (1.5, 2.5, 1000.0, 4.5)),
    ("api.host", '[api]\nhost = "127.0.0.11"\n', "127.0.0.12", "127.0.0.13", "127.0.0.14",
     lambda s: s.api.host, ("127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14")),
    ("api.port", "[api]\nport = 9001\n", "9002", "9003", 9004, lambda s: s.api.port, (9001, 9002, 9003, 9004)),
    ("venues", "[venues.binance]\n[venues.okx]\n[venues.bybit]\n", "okx", "bybit", ["binance"],
     lambda s: s.enabled_venues(), (["binance", "okx", "bybit"], ["okx"], ["bybit"], ["binance"])),
]


@pytest.mark.parametrize(("key", "text", "env_value", "set_value", "flag", "read", "expected"), PRECEDENCE,
                         ids=[p[0] for p in PRECEDENCE])
def test_each_layer_beats_the_one_below(tmp_path: Path, key: str, text: str, env_value: str, set_value: str,
                                        flag: object, read: Callable[[Settings], object], expected: tuple) -> None:
    path = _write(tmp_path, "c.toml", text)
    env = {"PERPARB_" + key.upper().replace(".", "__"): env_value}
    get = read
    assert get(load_settings(path, env={})) == expected[0]
    assert get(load_settings(path, env=env)) == expected[1]
    assert get(load_settings(path, env=env, sets={key: set_value})) == expected[2]
    # A flag not given (None) changes nothing: the --set value stays.
    assert get(load_settings(path, {key: None}, env=env, sets={key: set_value})) == expected[2]
    assert get(load_settings(path, {key: flag}, env=env, sets={key: set_value})) == expected[3]


def test_venue_list_layers_keep_each_venues_settings(tmp_path: Path) -> None:
    path = _write(tmp_path, "c.toml", "[venues.binance]\ntaker_fee = 0.0004\n[venues.okx]\n")
    s = load_settings(path, env={"PERPARB_VENUES": "okx", "PERPARB_VENUES__OKX__TAKER_FEE": "0.0003"},
                      sets={"venues": "binance,okx"})
    assert s.enabled_venues() == ["binance", "okx"]
    assert s.venues["binance"].taker_fee == 0.0004
    assert s.venues["okx"].taker_fee == 0.0003


def test_set_reads_json_lists() -> None:
    s = load_settings(env={}, sets={"api.cors_origins": '["https://a.example", "https://b.example"]',
                                    "scanner.quote_groups": "[]"})
    assert s.api.cors_origins == ["https://a.example", "https://b.example"]
    assert s.scanner.quote_groups == []


def test_bad_set_value_names_key_and_source() -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(env={}, sets={"scanner.max_quote_age_ms": "-5"})
    assert "scanner.max_quote_age_ms" in _flat(exc)
    assert "--set scanner.max_quote_age_ms" in _flat(exc)


# -- which PERPARB_* variables are settings ------------------------------------------------
def test_readme_token_example_works(tmp_path: Path) -> None:
    path = _write(tmp_path, "c.toml", '[api]\ntoken = "${PERPARB_TOKEN}"\n')
    s = load_settings(path, env={"PERPARB_TOKEN": "t0k-9"})
    assert s.api.token is not None and s.api.token.get_secret_value() == "t0k-9"


def test_variables_that_name_no_setting_are_ignored() -> None:
    s = load_settings(env={"PERPARB_TOKEN": "x", "PERPARB_HOME": "/h", "PERPARB_FIXTURES": "/f",
                           "PERPARB_SOMETHING__ELSE": "1", "PERPARB_API_TOKEN": "y"})
    assert s.api.token is None
    assert s.assets == ["BTC", "ETH", "SOL"]


def test_a_variable_the_file_references_is_not_also_a_setting(tmp_path: Path) -> None:
    # PERPARB_LOG_LEVEL names a setting; used as ${...} it is a value source only.
    path = _write(tmp_path, "c.toml", '[venues.binance]\napi_key = "${PERPARB_LOG_LEVEL}"\n')
    s = load_settings(path, env={"PERPARB_LOG_LEVEL": "not-a-level"})
    assert s.log_level == "WARNING"
    assert s.venues["binance"].api_key is not None
    assert s.venues["binance"].api_key.get_secret_value() == "not-a-level"


def test_a_settings_variable_with_a_bad_key_is_named() -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(env={"PERPARB_SCANNER__MIN_EDGE_BPZ": "1"})
    assert "scanner.min_edge_bpz" in _flat(exc)
    assert "PERPARB_SCANNER__MIN_EDGE_BPZ" in _flat(exc)


# -- values refused with their key ---------------------------------------------------------
def test_log_level_names_the_valid_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(_write(tmp_path, "c.toml", 'log_level = "verbose"\n'), env={})
    msg = _flat(exc)
    assert "log_level" in msg
    for level in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        assert level in msg
    assert load_settings(_write(tmp_path, "ok.toml", 'log_level = "info"\n'), env={}).log_level == "INFO"


def _float_keys() -> list[str]:
    from perparb.config import AlertSettings, ScannerSettings, VenueSettings

    keys = []
    for prefix, model in (("scanner", ScannerSettings), ("venues.binance", VenueSettings), ("alerts", AlertSettings)):
        for name, field in model.model_fields.items():
            if "float" in str(field.annotation):
                keys.append(f"{prefix}.{name}")
    return keys


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
@pytest.mark.parametrize("key", _float_keys())
def test_non_finite_numbers_are_refused(tmp_path: Path, key: str, value: str) -> None:
    table, name = key.rsplit(".", 1)
    table = table.replace("venues.binance", 'venues."binance"')
    path = _write(tmp_path, "c.toml", f"[{table}]\n{name} = {value}\n")  # TOML's own nan / inf
    with pytest.raises(ConfigError) as exc:
        load_settings(path, env={})
    assert key in _flat(exc)
    assert "finite" in _flat(exc)
    with pytest.raises(ConfigError) as exc:  # the same from --set text
        load_settings(env={}, sets={key: value})
    assert key in _flat(exc)


def test_non_finite_alert_rule_threshold_is_refused(tmp_path: Path) -> None:
    path = _write(tmp_path, "c.toml", "[[alerts.rules]]\nmin_edge_bps = nan\n")
    with pytest.raises(ConfigError) as exc:
        load_settings(path, env={})
    assert "alerts.rules.0.min_edge_bps" in _flat(exc)


def test_missing_instruments_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(env={}, sets={"instruments_file": str(tmp_path / "nope.json")})
    msg = _flat(exc)
    assert "instruments_file" in msg
    assert "nope.json does not exist" in msg


def test_unwritable_capture_directory_is_named(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    folder = str(blocker / "captures")
    with pytest.raises(ConfigError) as exc:
        load_settings(env={}, sets={"storage.capture": "true", "storage.dir": folder})
    msg = _flat(exc)
    assert "storage.dir" in msg
    assert "not a directory" in msg
    # Without capture the directory is not used, so it is not checked.
    assert load_settings(env={}, sets={"storage.dir": folder}).storage.dir == Path(folder)
