"""The command line's error paths and help text: plain-text errors (no rich markup left in them),
unknown venues named with the known ones, flags shown as flags, and `scan` without `--once`."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from perparb.cli import app

runner = CliRunner()
WIDE = {"COLUMNS": "400", "TERM": "xterm-256color"}
# The native venues, as listed in the README.
VENUES = ["binance", "bitget", "bitmex", "bybit", "coindcx", "deribit", "dydx", "gate", "hyperliquid", "kucoin",
          "mexc", "okx", "phemex"]
MARKUP = re.compile(r"\[/?(red|bold|green|yellow)?\]")


def _oneline(text: str) -> str:
    """Undo rich's wrapping and the help panels' borders, so that phrases compare whole."""
    return " ".join(text.replace("│", " ").split())


def _no_markup(text: str) -> None:
    assert "[red]" not in text
    assert "[/]" not in text
    assert not MARKUP.search(text), text


def test_markets_unknown_venue_names_the_known_ones() -> None:
    result = runner.invoke(app, ["markets", "--venue", "foo"])
    assert result.exit_code == 2
    assert result.stdout == ""  # no empty table pretending to be an answer
    err = _oneline(result.stderr)
    assert err.startswith("error: unknown venue 'foo'")
    for v in VENUES:
        assert v in err
    _no_markup(result.stderr)


def test_markets_known_venue_still_lists() -> None:
    result = runner.invoke(app, ["markets", "--venue", "okx", "--json"])
    assert result.exit_code == 0
    assert '"venue": "okx"' in result.stdout


def test_set_without_equals_is_plain_text() -> None:
    result = runner.invoke(app, ["replay", "--set", "[red]nokey", str(Path(__file__))])
    assert result.exit_code == 2
    err = _oneline(result.stderr)
    # The user's own brackets survive as typed; nothing is read as markup.
    assert "error: --set '[red]nokey': expected KEY=VALUE" in err


def test_unreachable_api_error_is_plain_text() -> None:
    # Port 1 on loopback: nothing listens there, the connection is refused at once.
    result = runner.invoke(app, ["kill", "--url", "http://127.0.0.1:1", "--token", "t"])
    assert result.exit_code == 1
    err = _oneline(result.stderr)
    assert err.startswith("error: cannot reach http://127.0.0.1:1")
    _no_markup(result.stderr)


def test_kill_without_token_is_plain_text(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PERPARB_API__TOKEN", raising=False)
    monkeypatch.delenv("PERPARB_HOME", raising=False)
    result = runner.invoke(app, ["kill", "--url", "http://127.0.0.1:1"])
    assert result.exit_code == 2
    assert _oneline(result.stderr).startswith("error: no token")
    _no_markup(result.stderr)


def test_decode_unknown_venue_is_plain_text(tmp_path: Path) -> None:
    f = tmp_path / "m.jsonl"
    f.write_text("{}\n")
    result = runner.invoke(app, ["decode", str(f), "--venue", "nosuch"])
    assert result.exit_code == 2
    assert _oneline(result.stderr).startswith("error: unknown venue 'nosuch'")
    _no_markup(result.stderr)


def test_scan_without_once_explains_itself() -> None:
    result = runner.invoke(app, ["scan"])
    assert result.exit_code == 2
    err = _oneline(result.stderr)
    assert err.startswith("error:")
    assert "--once" in err
    assert "perparb run" in err and "perparb demo" in err
    _no_markup(result.stderr)


@pytest.mark.parametrize("cmd", [["demo"], ["run"], ["serve"], ["scan"], ["replay"], ["markets"], ["kill"],
                                 ["decode"], ["sim"]])
def test_help_shows_flags_as_flags(cmd: list[str]) -> None:
    result = runner.invoke(app, [*cmd, "--help"], env=WIDE)
    assert result.exit_code == 0
    out = _oneline(result.stdout)
    assert "<bool>" not in out
    assert "{" not in out and "}" not in out
    assert "--help Show this message and exit." in out  # a flag: no type label between name and help


def test_replay_usage_names_the_captures() -> None:
    result = runner.invoke(app, ["replay", "--help"], env=WIDE, prog_name="perparb")
    out = _oneline(result.stdout)
    assert "Usage: perparb replay [OPTIONS] CAPTURE..." in out
    assert "--json Print the summary as one JSON object." in out
    assert "--paper Paper-trade the capture" in out


@pytest.mark.parametrize("cmd", ["demo", "run", "serve", "scan", "sim"])
def test_venues_help_lists_the_valid_ids(cmd: str) -> None:
    result = runner.invoke(app, [cmd, "--help"], env=WIDE)
    out = _oneline(result.stdout)
    listed = out.split("--venues", 1)[1]
    assert ", ".join(VENUES) + ", or ccxt:<exchange id>" in listed


def test_api_line_is_info_yet_shown_on_stderr() -> None:
    """The installed script: the address is said on stderr once, and the log has it at INFO, not WARNING."""
    exe = Path(sys.executable).with_name("perparb")
    quiet = subprocess.run([str(exe), "demo", "--duration", "1", "--port", "0", "--json", "--venues", "binance,okx",
                            "--assets", "BTC"], capture_output=True, text=True, timeout=120)
    assert quiet.returncode == 0, quiet.stderr
    lines = [ln for ln in quiet.stderr.splitlines() if "API and dashboard on" in ln]
    assert len(lines) == 1
    assert re.fullmatch(r"API and dashboard on http://127\.0\.0\.1:\d+/", lines[0])
    assert not [ln for ln in quiet.stderr.splitlines() if "WARNING" in ln and "API and dashboard" in ln]
    verbose = subprocess.run([str(exe), "demo", "--duration", "1", "--port", "0", "--json", "--venues", "binance,okx",
                              "--assets", "BTC", "--set", "log_level=INFO"], capture_output=True, text=True,
                             timeout=120)
    assert verbose.returncode == 0, verbose.stderr
    logged = [ln for ln in verbose.stderr.splitlines() if "perparb: API and dashboard on" in ln]
    assert len(logged) == 1
    assert " INFO perparb: " in logged[0]


def test_demo_with_the_default_thresholds_still_finds_and_fills() -> None:
    """2 bps and 50,000 by default: the offline demo still opens opportunities and paper-fills
    them within its first 20 seconds."""
    exe = Path(sys.executable).with_name("perparb")
    proc = subprocess.run([str(exe), "demo", "--duration", "20", "--no-api", "--json"], capture_output=True,
                          text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads(proc.stdout)
    assert summary["opportunities"] > 0
    assert summary["paper"]["fills"] > 0


def test_summary_line_says_opened_and_open_now() -> None:
    from perparb.cli import _finish

    summary = {"venues_connected": 1, "venues": {"okx": {"messages": 5, "books_synced": 1, "books": 1,
                                                         "book_resyncs": 0, "reconnects": 0, "decode_errors": 0}},
               "messages": 5, "opportunities": 12, "open_opportunities": 3}
    import contextlib
    import io

    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        _finish(summary, False)
    assert out.getvalue().splitlines()[0] == ("venues connected: 1/1   messages: 5   opportunities opened: 12   "
                                              "open now: 3")
