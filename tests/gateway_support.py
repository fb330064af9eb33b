"""Fixtures for push/pull tests: the fake gateway API on loopback and a CLI runner
whose environment holds the API token and the profile's secrets."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fake_gateway import FakeGateway, serve_fake_gateway
from typer.testing import CliRunner

from rrdev.cli.app import app

ROOT = Path(__file__).resolve().parent.parent
AUTH0 = ROOT / "profiles" / "auth0.toml"
SERVICE_TOKEN = "svc-token-first-0123456789"


@dataclass
class Gateway:
    fake: FakeGateway
    url: str
    runner: CliRunner
    tmp: Path

    def profile(self, text: str | None = None) -> Path:
        path = self.tmp / "auth0.toml"
        path.write_text(AUTH0.read_text() if text is None else text)
        return path

    def run(self, *args: str, stdin: str | None = None) -> Any:
        return self.runner.invoke(app, [*args, "--api", self.url], input=stdin)

    def push(self, *args: str) -> Any:
        return self.run("push", str(self.tmp / "auth0.toml"), "--client-id", "c1", *args)

    def changing_calls(self) -> list[tuple[str, str]]:
        return [(m, p) for m, p, _a in self.fake.requests if m in ("POST", "PATCH", "DELETE")]


@pytest.fixture
def gateway(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Gateway]:
    fake = FakeGateway()
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("RRDEV_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("RRDEV_GATEWAY_TOKEN", fake.token)
    monkeypatch.setenv("BACKEND_SERVICE_TOKEN", SERVICE_TOKEN)
    monkeypatch.delenv("RRDEV_GATEWAY_API", raising=False)
    monkeypatch.chdir(tmp_path)
    with serve_fake_gateway(fake) as url:
        gw = Gateway(fake, url, CliRunner(), tmp_path)
        gw.profile()
        yield gw
