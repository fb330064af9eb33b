"""`--demo` and the options it cannot use: each is refused by name (exit 2), never
silently ignored; `--host` (loopback) is honoured; the demo-only ports need --demo."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rrdev.cli.app import app

runner = CliRunner()

DEMO_REFUSALS = [
    (["--target", "http://127.0.0.1:9"], "--target does not apply to --demo", "echo backend"),
    (["--jwks", __file__], "--jwks does not apply to --demo", "local issuer"),
    (["--offline"], "--offline does not apply to --demo", "offline already"),
    (["--host", "0.0.0.0"], "--host 0.0.0.0 does not apply to --demo", "loopback only"),
]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        yield busy.getsockname()[1]


@pytest.mark.parametrize(
    "command", [["up", "--demo"], ["tui", "--demo"], ["up", "--tui", "--demo"]]
)
@pytest.mark.parametrize(("extra", "message", "why"), DEMO_REFUSALS)
def test_an_option_the_demo_cannot_use_is_refused_by_name(
    command: list[str], extra: list[str], message: str, why: str, busy_port: int
) -> None:
    # The port is taken: a demo that ignored the option would fail to start (exit 3).
    result = runner.invoke(app, [*command, *extra, "--port", str(busy_port)])
    assert result.exit_code == 2, result.output
    assert message in result.output and why in result.output
    assert f"drop {extra[0]}" in result.output


@pytest.mark.parametrize("command", ["up", "tui"])
@pytest.mark.parametrize("option", ["--issuer-port", "--backend-port"])
def test_the_demo_ports_need_the_demo(command: str, option: str, tmp_path: Path) -> None:
    result = runner.invoke(app, [command, str(tmp_path / "rrdev.toml"), option, "0"])
    assert result.exit_code == 2, result.output
    assert f"{option} only applies with --demo" in result.output
    assert "add --demo" in result.output


def test_up_demo_listens_on_the_loopback_host_it_is_given(tmp_path: Path) -> None:
    env = {**os.environ, "RRDEV_HOME": str(tmp_path / "home"), "NO_COLOR": "1", "COLUMNS": "300"}
    ports = ["--port", "0", "--issuer-port", "0", "--backend-port", "0"]
    process = subprocess.Popen(
        [sys.executable, "-m", "rrdev", "up", "--demo", "--host", "127.0.0.2", *ports],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        banner = _banner(process)
        assert "proxy     http://127.0.0.2:" in banner, banner
        assert "http://127.0.0.1:" not in banner
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def _banner(process: subprocess.Popen[str]) -> str:
    lines: list[str] = []
    deadline = time.monotonic() + 20
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        lines.append(line)
        if line.startswith("Ctrl+C to stop") or not line:
            break
    text = "".join(lines)
    return text if "Ctrl+C" in text else text + (process.stderr.read() if process.stderr else "")
