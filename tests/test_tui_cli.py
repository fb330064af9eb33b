"""`rrdev tui` and `rrdev up --tui` on the command line: options, and errors reported
before the inspector takes the terminal."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from proxy_support import profile_text
from typer.testing import CliRunner

from rrdev.cli.app import app

runner = CliRunner()


def test_tui_help_lists_the_keys() -> None:
    result = runner.invoke(app, ["tui", "--help"])
    assert result.exit_code == 0
    assert "--demo" in result.output and "filter" in result.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tui", "--demo", "rrdev.toml"], "drop the PROFILE argument"),
        (["tui", "--demo", "--target", "http://127.0.0.1:9"], "--target does not apply to --demo"),
        (["up", "--tui", "--log-file", "x.jsonl"], "--log-file cannot be combined with --tui"),
    ],
)
def test_conflicting_options_are_usage_errors(args: list[str], message: str) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output


def test_a_broken_profile_fails_before_textual_loads(tmp_path: Path) -> None:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text("http://127.0.0.1:9").replace('"deny"', '"maybe"', 1))
    code = (
        "import sys, json\n"
        "from typer.testing import CliRunner\n"
        "from rrdev.cli.app import app\n"
        f"result = CliRunner().invoke(app, ['tui', {str(profile)!r}])\n"
        "print(json.dumps([result.exit_code, result.output,"
        " [m for m in sys.modules if m.split('.')[0] == 'textual']]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    exit_code, output, textual = json.loads(out.stdout)
    assert exit_code == 3
    assert f"{profile}:" in output and "proxy.default_effect" in output
    assert textual == []


def test_a_port_in_use_is_exit_3_without_taking_the_terminal(tmp_path: Path) -> None:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text("http://127.0.0.1:9"))
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = runner.invoke(app, ["up", str(profile), "--tui", "--port", str(port)])
    assert result.exit_code == 3
    assert "already in use" in result.output
