"""`rrdev up --demo`: the issuer, the echo backend and the proxy in one process.

The demo is started in-process on free ports and must answer its own banner's four
requests as the banner says (200, 401, 401, 403), sent exactly as ``demo_requests``
describes them. The blocking front end runs once in a subprocess for Ctrl+C.
"""

from __future__ import annotations

import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from importlib import resources
from pathlib import Path

import httpx
import pytest
from rich.console import Console

from rrdev.cli.demo import banner_text, run_demo
from rrdev.core.redact import REDACTED
from rrdev.servers.demo import (
    DEMO_PROFILE_NAME,
    DemoHandle,
    demo_profile_text,
    demo_requests,
    load_demo_profile,
    start_demo,
)
from rrdev.servers.echo import GREETING


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RRDEV_HOME", str(tmp_path / "home"))
    return tmp_path / "home"


@pytest.fixture
async def demo(home: Path) -> AsyncIterator[DemoHandle]:
    handle = await start_demo(proxy_port=0, issuer_port=0, backend_port=0, graceful_timeout=1)
    try:
        yield handle
    finally:
        await handle.stop()


async def test_the_demo_answers_its_own_banner_requests(demo: DemoHandle) -> None:
    requests = demo_requests(demo)
    assert [r.expected_status for r in requests] == [200, 401, 401, 403]
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        answers = [await http.request(r.method, r.url, headers=list(r.headers)) for r in requests]
    for request, answer in zip(requests, answers, strict=True):
        assert answer.status_code == request.expected_status, (request.title, answer.text)
    allowed, missing, expired, denied = (a.json() for a in answers)

    assert allowed["greeting"] == GREETING
    assert allowed["path"] == "/api/v1/products"
    assert allowed["headers"]["authorization"] == REDACTED  # it arrived; its value is hidden
    assert allowed["headers"]["x-client-id"] == "demo-reader"
    assert demo.reader_token not in answers[0].text

    assert missing["reason"] == "token_missing"
    assert expired["reason"] == "token_expired"
    assert denied["reason"] == "rule_denied"
    assert "scope-gate-delete" in denied["message"]
    assert "delete:resources" in denied["hint"]
    assert "insufficient_scope" in answers[3].headers["www-authenticate"]


async def test_curl_lines_are_ready_to_paste(demo: DemoHandle) -> None:
    allowed, missing, expired, denied = demo_requests(demo)
    products = f"{demo.proxy_url}/api/v1/products"
    assert missing.curl == f"curl -i {products}"
    assert allowed.curl == f"curl -i {products} -H 'Authorization: Bearer {demo.reader_token}'"
    assert expired.curl.endswith(f"Bearer {demo.expired_token}'")
    assert denied.curl.startswith(f"curl -i -X DELETE {products}/1 -H ")
    banner = banner_text(demo)
    for request in (allowed, missing, expired, denied):
        assert "\n" not in request.curl
        assert f"   {request.curl}\n" in banner  # one line each, token unbroken
    assert "demo-admin-secret" in banner  # the public demo secret for the admin client


async def test_the_admin_token_may_delete(demo: DemoHandle) -> None:
    async with httpx.AsyncClient(trust_env=False) as http:
        answer = await http.delete(
            f"{demo.proxy_url}/api/v1/products/1",
            headers={"Authorization": f"Bearer {demo.admin_token}"},
        )
    assert answer.status_code == 200
    assert answer.json()["method"] == "DELETE"


def test_the_demo_profile_ships_inside_the_package() -> None:
    resource = resources.files("rrdev").joinpath("data", "demo.toml")
    assert resource.is_file()
    assert demo_profile_text() == resource.read_text(encoding="utf-8")
    profile = load_demo_profile()
    assert profile.path == DEMO_PROFILE_NAME
    cred = profile.proxy_credential
    assert (cred.issuer, cred.audience) == ("https://rrdev.local/", ("https://api.rrdev.local",))
    assert cred.jwks_uri == "http://127.0.0.1:8788/.well-known/jwks.json"
    assert profile.proxy.default_effect == "deny"
    assert [r.name for r in profile.proxy.rules] == [
        "allow-authenticated",
        "read-catalog",
        "scope-gate-delete",
    ]
    assert profile.auth is not None and profile.auth.kind == "local"
    assert profile.issuer is not None
    assert [c.client_id for c in profile.issuer.clients] == ["demo-reader", "demo-admin"]
    assert len(profile.checks) >= 4


def test_real_urls_replace_the_profiles_defaults() -> None:
    profile = load_demo_profile(
        issuer_url="http://127.0.0.1:40001", backend_url="http://127.0.0.1:40002"
    )
    assert profile.proxy_credential.jwks_uri == "http://127.0.0.1:40001/.well-known/jwks.json"
    assert profile.proxy_credential.issuer == "https://rrdev.local/"  # identity, not port
    assert profile.target.base_url == "http://127.0.0.1:40002"
    assert profile.auth is not None and profile.auth.client.domain == "http://127.0.0.1:40001"


def test_a_port_in_use_is_one_line_and_exit_3(home: Path) -> None:
    out = io.StringIO()
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code = run_demo(
            proxy_port=port,
            issuer_port=0,
            backend_port=0,
            console=Console(file=out, width=300, no_color=True),
        )
    assert code == 3
    lines = out.getvalue().strip().splitlines()
    assert len(lines) == 1
    assert "proxy" in lines[0] and "already in use" in lines[0] and "--port" in lines[0]


def test_ctrl_c_stops_the_demo_cleanly(tmp_path: Path) -> None:
    env = {**os.environ, "RRDEV_HOME": str(tmp_path / "home"), "NO_COLOR": "1"}
    code = (
        "from rrdev.cli.demo import run_demo\n"
        "raise SystemExit(run_demo(proxy_port=0, issuer_port=0, backend_port=0))\n"
    )
    process = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        banner = []
        deadline = time.monotonic() + 20
        assert process.stdout is not None
        while time.monotonic() < deadline:
            line = process.stdout.readline()
            banner.append(line)
            if line.startswith("Ctrl+C to stop") or not line:
                break
        text = "".join(banner)
        assert "Ctrl+C to stop" in text, text + (process.stderr.read() if process.stderr else "")
        curls = [line for line in banner if line.strip().startswith("curl -i")]
        assert len(curls) == 4
        assert all(line.count("Bearer eyJ") == 1 for line in curls if "Bearer" in line)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


@pytest.mark.parametrize(
    ("module", "forbidden"),
    [
        ("rrdev.servers.issuer.app", ("typer", "rich", "textual", "uvicorn", "aiohttp", "httpx")),
        ("rrdev.servers.echo", ("typer", "rich", "textual", "uvicorn", "aiohttp", "httpx")),
        ("rrdev.servers.demo", ("typer", "rich", "textual", "uvicorn", "aiohttp", "httpx")),
        ("rrdev.cli.issuer", ("textual", "uvicorn", "aiohttp", "httpx")),
    ],
)
def test_imports_stay_light(module: str, forbidden: tuple[str, ...]) -> None:
    probe = (
        f"import sys, json\nimport {module}\n"
        "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded = set(json.loads(out.stdout))
    assert loaded.isdisjoint(forbidden), sorted(loaded & set(forbidden))
