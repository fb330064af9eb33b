"""The proxy's request flow (DESIGN.md §2) over real sockets: real uvicorn, real JWTs
from the local keyset, a real backend. Headers: test_proxy_headers.py; streaming:
test_proxy_stream.py; reload and the token cache: test_proxy_reload.py; Ctrl+C, port in
use and redaction through `rrdev up`: test_proxy_up.py, test_redaction_canary.py."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest
from proxy_support import (
    Backend,
    bearer,
    free_port,
    header_values,
    mint,
    profile_text,
    raw_request,
    run_proxy,
)

pytestmark = pytest.mark.usefixtures("keyset")


@pytest.fixture
def profile(tmp_path: Path, backend: Backend) -> Path:
    path = tmp_path / "rrdev.toml"
    path.write_text(profile_text(backend.url))
    return path


def assert_gateway_headers(headers: Any, code: str) -> None:
    assert headers["requestrocket-proxy-code"] == code
    assert headers["requestrocket-proxy-message"]


def assert_error(response: httpx.Response, status: int, reason: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"status", "reason", "message", "hint", "trace"}
    assert (body["status"], body["reason"]) == (status, reason)
    return body


# ------------------------------------------------------------------ allowed


async def test_allowed_get_is_forwarded_byte_for_byte(profile: Path, backend: Backend) -> None:
    async with run_proxy(profile) as proxy:
        answer = await raw_request(
            proxy.port,
            "GET",
            "/api/v1/products/a%20b?x=%2Fy&empty=&q=caf%C3%A9",
            [("Authorization", f"Bearer {mint()}")],
        )
    assert answer.status == 200
    echo = answer.json()
    assert echo["raw_path"] == "/api/v1/products/a%20b?x=%2Fy&empty=&q=caf%C3%A9"
    assert answer.header("x-backend") == "echo"  # the backend's headers pass through
    assert answer.header("requestrocket-proxy-code") == "proxy-access-granted"
    [record] = proxy.records
    assert (record.status, record.reason, record.upstream_status) == (200, "allowed", 200)
    assert record.path == "/api/v1/products/a%20b"
    assert ("x", "/y") in record.query
    assert record.deciding_rule == "allow-authenticated"
    assert record.subject == "user-1@clients"
    assert record.expires_at is not None
    assert record.upstream_ms is not None and record.total_ms >= record.upstream_ms


@pytest.mark.parametrize("status", [404, 500, 302])
async def test_backend_status_passes_through_with_granted_code(
    profile: Path, backend: Backend, status: int
) -> None:
    async with run_proxy(profile) as proxy, httpx.AsyncClient() as client:
        response = await client.get(f"{proxy.url}/status/{status}", headers=bearer(mint()))
    assert response.status_code == status
    assert response.text == "from the backend"  # not rrdev's JSON, not followed
    assert_gateway_headers(response.headers, "proxy-access-granted")
    assert proxy.records[0].upstream_status == status


@pytest.mark.parametrize(
    "target",
    [
        *("/a/../b", "/a/%2e%2e/b", "/a%2fb", "/a%252fb", "/a%00b", "/a/./b", "/a%5cb"),
        *("//evil.example/x", "http://evil.example/x", "*"),  # absolute/authority-ish forms
        *("/a/..;/admin", "/a#/../admin"),  # path parameters, a fragment httptools would drop
    ],
)
async def test_ambiguous_paths_are_refused_and_never_forwarded(
    profile: Path, backend: Backend, target: str
) -> None:
    async with run_proxy(profile) as proxy:
        answer = await raw_request(
            proxy.port, "GET", target, [("Authorization", f"Bearer {mint()}")]
        )
    assert answer.status == 400
    body = answer.json()
    assert body["reason"] == "ambiguous_path"
    assert answer.header("content-type") == "application/json"
    assert answer.header("requestrocket-proxy-code") == "proxy-access-denied"
    assert backend.hits == 0
    assert proxy.records[0].reason == "ambiguous_path"
    assert proxy.records[0].upstream_status is None


async def test_head_and_chunked_and_repeated_headers_pass_through(
    profile: Path, backend: Backend
) -> None:
    async with run_proxy(profile) as proxy, httpx.AsyncClient() as client:
        head = await client.head(f"{proxy.url}/api/v1/products", headers=bearer(mint()))
        chunked = await client.get(
            f"{proxy.url}/download?size=100000&chunked=1", headers=bearer(mint())
        )
        hop = await client.get(f"{proxy.url}/hop", headers=bearer(mint()))
    assert head.status_code == 200 and head.content == b""
    assert int(head.headers["content-length"]) > 0  # the backend's, for the GET it would send
    assert chunked.headers.get("transfer-encoding") == "chunked"
    assert chunked.content == b"x" * 100000
    assert hop.headers.get_list("set-cookie") == ["a=1; Path=/", "b=2; Path=/"]


# ------------------------------------------------------------------ 401 / 403 / 503


async def test_no_token_is_401_with_a_bare_challenge(profile: Path, backend: Backend) -> None:
    async with run_proxy(profile) as proxy, httpx.AsyncClient() as client:
        response = await client.get(f"{proxy.url}/api/v1/products")
    assert_error(response, 401, "token_missing")
    assert response.headers["www-authenticate"] == 'Bearer realm="rrdev"'
    assert_gateway_headers(response.headers, "proxy-access-denied")
    assert backend.hits == 0


async def test_expired_token_is_401_invalid_token(profile: Path, backend: Backend) -> None:
    async with run_proxy(profile) as proxy, httpx.AsyncClient() as client:
        response = await client.get(
            f"{proxy.url}/api/v1/products", headers=bearer(mint(expires_in=-60))
        )
    assert_error(response, 401, "token_expired")
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith('Bearer realm="rrdev", error="invalid_token", error_description=')
    assert backend.hits == 0


async def test_delete_without_scope_is_403_naming_the_scope_gate(
    profile: Path, backend: Backend
) -> None:
    async with run_proxy(profile) as proxy, httpx.AsyncClient() as client:
        denied = await client.delete(f"{proxy.url}/api/v1/products/1", headers=bearer(mint()))
        scope = "read:products delete:resources"
        allowed = await client.delete(
            f"{proxy.url}/api/v1/products/1", headers=bearer(mint(scope=scope))
        )
    body = assert_error(denied, 403, "rule_denied")
    assert "scope-gate-delete" in body["message"]
    assert body["trace"]["deciding_rule"] == "scope-gate-delete"
    assert 'error="insufficient_scope"' in denied.headers["www-authenticate"]
    assert_gateway_headers(denied.headers, "proxy-access-denied")
    assert allowed.status_code == 200
    assert allowed.json()["method"] == "DELETE"
    assert [r.status for r in proxy.records] == [403, 200]
    assert proxy.records[0].deciding_rule == "scope-gate-delete"


async def test_unreachable_jwks_is_503(tmp_path: Path, backend: Backend) -> None:
    path = tmp_path / "p.toml"
    path.write_text(profile_text(backend.url, jwks_uri=f"http://127.0.0.1:{free_port()}/jwks"))
    async with run_proxy(path, offline=False) as proxy, httpx.AsyncClient() as client:
        response = await client.get(f"{proxy.url}/api/v1/products", headers=bearer(mint()))
    assert_error(response, 503, "jwks_unavailable")
    assert "www-authenticate" not in response.headers
    assert backend.hits == 0


async def test_jwks_override_from_a_saved_file(tmp_path: Path, backend: Backend) -> None:
    import json

    from rrdev.core.keyset import Keyset

    saved = tmp_path / "jwks.json"
    saved.write_text(json.dumps(Keyset.load_or_create().jwks()))
    path = tmp_path / "p.toml"
    path.write_text(profile_text(backend.url, jwks_uri=f"http://127.0.0.1:{free_port()}/jwks"))
    async with run_proxy(path, offline=False, jwks=str(saved)) as proxy:
        async with httpx.AsyncClient() as client:
            response = await client.get(f"{proxy.url}/api/v1/products", headers=bearer(mint()))
        assert proxy.app.info().jwks == f"{saved} (--jwks)"
    assert response.status_code == 200


async def test_two_authorization_headers_are_400(profile: Path, backend: Backend) -> None:
    token = mint()
    headers = [("Authorization", f"Bearer {token}"), ("Authorization", f"Bearer {token}")]
    async with run_proxy(profile) as proxy, httpx.AsyncClient() as client:
        response = await client.get(f"{proxy.url}/api/v1/products", headers=headers)
    assert_error(response, 400, "duplicate_authorization")
    assert backend.hits == 0


async def test_two_authorization_headers_are_400_without_authentication_too(
    tmp_path: Path, backend: Backend
) -> None:
    path = tmp_path / "p.toml"
    path.write_text(profile_text(backend.url, proxy_credential='auth_type = "none"\n'))
    headers = [("Authorization", "Basic a"), ("Authorization", "Basic b")]
    async with run_proxy(path) as proxy, httpx.AsyncClient() as client:
        response = await client.get(f"{proxy.url}/x", headers=headers)
        single = await client.get(f"{proxy.url}/x", headers={"Authorization": "Basic a"})
    assert_error(response, 400, "duplicate_authorization")
    assert header_values(single.json(), "authorization") == ["Basic a"]


# ------------------------------------------------------------------ the backend fails


async def test_backend_down_is_502(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(profile_text(f"http://127.0.0.1:{free_port()}"))
    async with run_proxy(path) as proxy, httpx.AsyncClient() as client:
        response = await client.get(f"{proxy.url}/api/v1/products", headers=bearer(mint()))
    body = assert_error(response, 502, "upstream_unreachable")
    assert "cannot connect" in body["message"]
    assert body["trace"]["allowed"] is True  # the decision that let it through
    assert_gateway_headers(response.headers, "proxy-access-granted")
    assert proxy.records[0].status == 502 and proxy.records[0].upstream_status is None


async def test_slow_backend_is_504(tmp_path: Path, backend: Backend) -> None:
    path = tmp_path / "p.toml"
    path.write_text(profile_text(backend.url, target="timeout_seconds = 0.3"))
    async with run_proxy(path) as proxy, httpx.AsyncClient() as client:
        response = await client.get(f"{proxy.url}/slow?delay=2", headers=bearer(mint()))
        quick = await client.get(f"{proxy.url}/slow?delay=0", headers=bearer(mint()))
    body = assert_error(response, 504, "upstream_timeout")
    assert "0.3s" in body["message"]
    assert quick.status_code == 200


async def test_target_override_and_preflight(tmp_path: Path, backend: Backend) -> None:
    path = tmp_path / "p.toml"
    path.write_text(profile_text("https://api.example.invalid"))
    preflight = {"Origin": "https://app.example", "Access-Control-Request-Method": "DELETE"}
    async with run_proxy(path, target=backend.url) as proxy, httpx.AsyncClient() as client:
        response = await client.options(f"{proxy.url}/api/v1/products", headers=preflight)
    assert response.status_code == 200
    assert response.json()["method"] == "OPTIONS"
    assert proxy.records[0].preflight is True
    assert proxy.app.info().target_overridden is True


# ------------------------------------------------------------------ websocket


async def test_websocket_handshake_gets_501(profile: Path, backend: Backend) -> None:
    handshake = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
        ("Sec-WebSocket-Version", "13"),
    ]
    async with run_proxy(profile) as proxy:
        answer = await raw_request(proxy.port, "GET", "/socket", handshake)
    assert answer.status == 501
    assert answer.json()["reason"] == "websocket_unsupported"
    assert answer.header("requestrocket-proxy-code") == "proxy-access-denied"
    assert backend.hits == 0
    assert proxy.records[0].status == 501


async def test_upgrade_header_over_plain_http_gets_501_in_process(
    profile: Path, backend: Backend
) -> None:
    from rrdev.core.profile import load_profile
    from rrdev.servers.proxy import Overrides, ProxyApp

    async with ProxyApp(load_profile(profile), overrides=Overrides(offline=True)) as app:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            response = await client.get(
                "/chat", headers={"Upgrade": "websocket", "Connection": "Upgrade"}
            )
    assert_error(response, 501, "websocket_unsupported")


# ------------------------------------------------------------------ in-process (ASGITransport)


async def test_in_process_allowed_and_denied(profile: Path, backend: Backend) -> None:
    from rrdev.core.profile import load_profile
    from rrdev.servers.proxy import Overrides, ProxyApp

    records: list[Any] = []
    app = ProxyApp(load_profile(profile), overrides=Overrides(offline=True), sink=records.append)
    transport = httpx.ASGITransport(app=app, client=("10.0.0.7", 5555))
    try:
        async with httpx.AsyncClient(transport=transport, base_url="http://localhost") as client:
            allowed = await client.get("/api/v1/products?x=%2Fy", headers=bearer(mint()))
            denied = await client.get("/api/v1/products")
    finally:
        await app.aclose()
    echo = allowed.json()
    assert echo["raw_path"] == "/api/v1/products?x=%2Fy"
    assert header_values(echo, "x-forwarded-for") == ["10.0.0.7"]
    assert_error(denied, 401, "token_missing")
    assert [r.status for r in records] == [200, 401]


# ------------------------------------------------------------------ lifecycle


async def test_server_reports_the_port_it_bound(profile: Path) -> None:
    async with run_proxy(profile) as proxy:
        assert proxy.port > 0
        with socket.create_connection(("127.0.0.1", proxy.port), timeout=1):
            pass


def test_port_in_use_is_one_line_and_exit_3(profile: Path) -> None:
    from io import StringIO

    from rich.console import Console

    from rrdev.cli.up import run_up

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        output = StringIO()
        code = run_up(
            str(profile), port=port, offline=True, console=Console(file=output, width=200)
        )
    assert code == 3
    lines = [line for line in output.getvalue().splitlines() if line.strip()]
    assert len(lines) == 1
    assert "already in use" in lines[0] and "Traceback" not in output.getvalue()


def test_engine_modules_import_no_front_end() -> None:
    code = (
        "import sys, rrdev.servers.proxy, rrdev.servers.runner\n"
        "bad = [m for m in sys.modules if m.split('.')[0] in ('rich', 'typer', 'textual')]\n"
        "print(bad)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


async def test_concurrent_requests_share_the_pool(profile: Path, backend: Backend) -> None:
    token = mint()
    async with run_proxy(profile) as proxy, httpx.AsyncClient() as client:
        responses = await asyncio.gather(
            *(
                client.get(f"{proxy.url}/api/v1/products/{n}", headers=bearer(token))
                for n in range(20)
            )
        )
    assert {r.status_code for r in responses} == {200}
    assert len(proxy.records) == 20
