"""Which value each command ends up with for every setting it exposes as a flag:
defaults < config file < PERPARB_* environment < --set < the flag itself. And every
configuration problem ends the command with exit 2 and a message naming the key."""

from __future__ import annotations

import socket
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import perparb.cli as cli
from perparb.config import Settings

runner = CliRunner()
REAL_SETTINGS = cli._settings


def _oneline(text: str) -> str:
    return " ".join(text.split())


# setting: (flag, file TOML, env value, --set value, flag value, read back, expected per layer)
KEYS: dict[str, tuple[str, str, str, str, str, Callable[[Settings], Any], tuple[Any, Any, Any, Any]]] = {
    "assets": ("--assets", 'assets = ["ada"]\n', "dot", "link", "xrp", lambda s: s.assets,
               (["ADA"], ["DOT"], ["LINK"], ["XRP"])),
    "venues": ("--venues", "[venues.binance]\n[venues.okx]\n[venues.bybit]\n", "okx", "bybit", "binance",
               lambda s: s.enabled_venues(), (["binance", "okx", "bybit"], ["okx"], ["bybit"], ["binance"])),
    "scanner.min_edge_bps": ("--min-edge-bps", "[scanner]\nmin_edge_bps = 1.5\n", "2.5", "1000", "4.5",
                             lambda s: s.scanner.min_edge_bps, (1.5, 2.5, 1000.0, 4.5)),
    "api.host": ("--host", '[api]\nhost = "127.0.0.11"\n', "127.0.0.12", "127.0.0.13", "127.0.0.14",
                 lambda s: s.api.host, ("127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14")),
    "api.port": ("--port", "[api]\nport = 9001\n", "9002", "9003", "9004", lambda s: s.api.port,
                 (9001, 9002, 9003, 9004)),
}
ALL = list(KEYS)
COMMANDS: dict[str, tuple[list[str], list[str]]] = {  # base arguments, settings exposed as flags
    "demo": (["demo"], ALL),
    "run": (["run"], ALL),
    "serve": (["serve"], ALL),
    "serve --sim": (["serve", "--sim"], ALL),
    "scan": (["scan", "--once"], ["assets", "venues", "scanner.min_edge_bps"]),
    "sim": (["sim"], ["assets", "venues"]),
    "replay": (["replay", "{capture}"], ["scanner.min_edge_bps"]),
}
CASES = [(c, k) for c, (_, keys) in COMMANDS.items() for k in keys]


class _Stop(Exception):
    pass


def _settings_of(monkeypatch: pytest.MonkeyPatch, args: list[str], env: dict[str, str]) -> Settings:
    """The settings a command would run with (it stops right after building them)."""
    seen: list[Settings] = []

    def spy(*a: Any, **kw: Any) -> Settings:
        seen.append(REAL_SETTINGS(*a, **kw))
        raise typer.Exit(0)

    monkeypatch.setattr(cli, "_settings", spy)
    result = runner.invoke(cli.app, args, env=env)
    assert result.exit_code == 0, (args, result.output)
    assert len(seen) == 1
    return seen[0]


@pytest.mark.parametrize(("command", "key"), CASES, ids=[f"{c}:{k}" for c, k in CASES])
def test_file_then_env_then_set_then_flag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: str,
                                          key: str) -> None:
    flag, text, env_value, set_value, flag_value, read, expected = KEYS[key]
    capture = tmp_path / "empty.jsonl"
    capture.write_text("")
    base = [a.replace("{capture}", str(capture)) for a in COMMANDS[command][0]]
    config = tmp_path / "c.toml"
    config.write_text(text)
    env = {"PERPARB_" + key.upper().replace(".", "__"): env_value}
    layers = [
        ([*base, "--config", str(config)], {}),
        ([*base, "--config", str(config)], env),
        ([*base, "--config", str(config), "--set", f"{key}={set_value}"], env),
        ([*base, "--config", str(config), "--set", f"{key}={set_value}", flag, flag_value], env),
    ]
    for n, (args, environment) in enumerate(layers):
        assert read(_settings_of(monkeypatch, args, environment)) == expected[n], (command, key, n)


def test_set_survives_every_flag_left_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # The reported case: the flags' defaults used to overwrite these four.
    s = _settings_of(monkeypatch, ["demo", "--set", "scanner.min_edge_bps=1000", "--set", "assets=eth",
                                   "--set", "api.host=127.0.0.9", "--set", "api.port=9999"], {})
    assert (s.scanner.min_edge_bps, s.assets, s.api.host, s.api.port) == (1000.0, ["ETH"], "127.0.0.9", 9999)


# -- configuration problems: exit 2, the key and the problem, no traceback --------------------
def _fails(args: list[str], *expected: str, env: dict[str, str] | None = None) -> None:
    result = runner.invoke(cli.app, args, env=env)
    assert result.exit_code == 2, result.output
    message = _oneline(result.stderr)
    for text in expected:
        assert text in message, message
    assert "Traceback" not in result.output


def test_unknown_log_level(tmp_path: Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('log_level = "verbose"\n')
    _fails(["demo", "--duration", "0.1", "--config", str(path)], "log_level", "DEBUG", "CRITICAL")


@pytest.mark.parametrize("args", [["demo", "--duration", "0.1"], ["scan", "--once", "--sim"],
                                  ["sim", "--duration", "0.1"]])
def test_missing_instruments_file(tmp_path: Path, args: list[str]) -> None:
    _fails([*args, "--set", f"instruments_file={tmp_path / 'gone.json'}"], "instruments_file", "does not exist")


def test_instruments_file_that_is_not_a_snapshot(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text("{\"not\": \"a snapshot\"}")
    capture = tmp_path / "empty.jsonl"
    capture.write_text("")
    _fails(["replay", str(capture), "--set", f"instruments_file={bad}"], "instruments_file", "not an instrument snapshot")
    _fails(["demo", "--duration", "0.1", "--set", f"instruments_file={bad}"], "instruments_file")


def test_unwritable_capture_directory(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    _fails(["demo", "--duration", "0.1", "--set", "storage.capture=true", "--set", f"storage.dir={blocker / 'd'}"],
           "storage.dir", "not a directory")
    _fails(["demo", "--duration", "0.1", "--no-api", "--capture", str(blocker / "d" / "c.jsonl")], "--capture")


def test_nan_threshold(tmp_path: Path) -> None:
    _fails(["demo", "--duration", "0.1", "--set", "scanner.min_edge_bps=nan"], "scanner.min_edge_bps", "finite")
    path = tmp_path / "c.toml"
    path.write_text("[scanner]\nmin_edge_bps = nan\n")
    _fails(["run", "--config", str(path)], "scanner.min_edge_bps", "finite")


@pytest.mark.parametrize("args", [["serve", "--sim"], ["serve", "--venues", "binance"], ["demo"],
                                  ["run", "--venues", "binance"]])
def test_busy_port_is_an_error(args: list[str]) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        _fails([*args, "--duration", "30", "--port", str(port)], "api.port", f"127.0.0.1:{port}")


def test_unresolvable_host_is_named() -> None:
    _fails(["demo", "--duration", "30", "--host", "no-such-host.invalid"], "api.host", "no-such-host.invalid")


def test_no_assets() -> None:
    _fails(["demo", "--duration", "0.1", "--set", "assets="], "assets", "at least one asset")


def test_error_text_is_not_rich_markup(tmp_path: Path) -> None:
    missing = tmp_path / "[bold]x.json"
    result = runner.invoke(cli.app, ["demo", "--set", f"instruments_file={missing}"])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: ")
    assert "[bold]x.json" in _oneline(result.stderr)  # shown as given, not read as markup


def test_busy_simulator_port_is_an_error() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        # Venue n listens on port-base + n: the second venue's port is the busy one.
        _fails(["sim", "--venues", "binance,okx", "--port-base", str(port - 2), "--duration", "30"],
               "--port-base", "in use")
