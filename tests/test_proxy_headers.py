"""What the backend receives (DESIGN.md §2.5): the target credential, exactly one
Authorization, additional headers, filters, hop-by-hop headers, Host and X-Forwarded-*."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import httpx
import pytest
from proxy_support import (
    Backend,
    bearer,
    header_values,
    mint,
    profile_text,
    raw_request,
    run_proxy,
)

pytestmark = pytest.mark.usefixtures("keyset")

BACKEND_TOKEN = "backend-service-token-0123"


async def forward(
    tmp_path: Path,
    backend: Backend,
    *,
    headers: list[tuple[str, str]] | None = None,
    token: str | None = None,
    path: str = "/api/v1/products",
    **sections: str,
) -> tuple[httpx.Response, Any]:
    """Send one request through a proxy for a profile with ``sections``; return the
    response and the proxy's records."""
    profile = tmp_path / "p.toml"
    profile.write_text(profile_text(backend.url, **sections))
    sent = list(headers or [])
    if token is not None:
        sent.append(("Authorization", f"Bearer {token}"))
    async with run_proxy(profile) as proxy, httpx.AsyncClient() as client:
        response = await client.get(f"{proxy.url}{path}", headers=sent)
    return response, proxy.records


# ------------------------------------------------------------------ credentials


async def test_bearer_credential_replaces_the_callers_authorization(
    tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RR_BACKEND_TOKEN", BACKEND_TOKEN)
    credential = 'auth_type = "bearer"\ntoken = "${RR_BACKEND_TOKEN}"\n'
    response, _ = await forward(tmp_path, backend, token=mint(), credential=credential)
    echo = response.json()
    assert header_values(echo, "authorization") == [f"Bearer {BACKEND_TOKEN}"]


async def test_bearer_prefix_and_forward_authorization_as(
    tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RR_BACKEND_TOKEN", BACKEND_TOKEN)
    caller = mint()
    credential = 'auth_type = "bearer"\ntoken = "${RR_BACKEND_TOKEN}"\nprefix = "Token"\n'
    proxy = 'forward_authorization_as = "X-Original-Authorization"\n'
    spoofed = [("X-Original-Authorization", "Bearer forged")]
    response, _ = await forward(
        tmp_path, backend, headers=spoofed, token=caller, credential=credential, proxy=proxy
    )
    echo = response.json()
    assert header_values(echo, "authorization") == [f"Token {BACKEND_TOKEN}"]
    # the caller's own value, never a header the caller sent under that name
    assert header_values(echo, "x-original-authorization") == [f"Bearer {caller}"]


async def test_basic_credential(
    tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RR_PASSWORD", "s3cret:pw")
    credential = 'auth_type = "basic"\nusername = "svc"\npassword = "${RR_PASSWORD}"\n'
    response, _ = await forward(tmp_path, backend, token=mint(), credential=credential)
    expected = "Basic " + base64.b64encode(b"svc:s3cret:pw").decode()
    assert header_values(response.json(), "authorization") == [expected]


async def test_api_key_header_keeps_the_callers_authorization(
    tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RR_API_KEY", "key-123")
    caller = mint()
    credential = 'auth_type = "api_key"\napi_key = "${RR_API_KEY}"\nheader = "X-API-Key"\n'
    spoofed = [("x-api-key", "caller-chosen")]
    response, _ = await forward(
        tmp_path, backend, headers=spoofed, token=caller, credential=credential
    )
    echo = response.json()
    assert header_values(echo, "x-api-key") == ["key-123"]
    assert header_values(echo, "authorization") == [f"Bearer {caller}"]


async def test_api_key_query_parameter_is_appended(
    tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RR_API_KEY", "key 1/2")
    credential = 'auth_type = "api_key"\napi_key = "${RR_API_KEY}"\nquery_param = "api_key"\n'
    response, records = await forward(
        tmp_path,
        backend,
        token=mint(),
        path="/api/v1/products?b=%2F&api_key=forged",
        credential=credential,
    )
    assert response.json()["raw_path"] == "/api/v1/products?b=%2F&api_key=key%201%2F2"
    assert ("api_key", "[redacted]") in records[0].query


async def test_forward_authorization_false(tmp_path: Path, backend: Backend) -> None:
    response, _ = await forward(
        tmp_path, backend, token=mint(), proxy="forward_authorization = false\n"
    )
    assert header_values(response.json(), "authorization") == []


async def test_unset_credential_variable_is_502_naming_it(tmp_path: Path, backend: Backend) -> None:
    credential = 'auth_type = "bearer"\ntoken = "${RR_SURELY_UNSET_VAR}"\n'
    response, records = await forward(tmp_path, backend, token=mint(), credential=credential)
    assert response.status_code == 502
    body = response.json()
    assert body["reason"] == "upstream_credential_unavailable"
    assert "RR_SURELY_UNSET_VAR" in body["message"]
    assert backend.hits == 0
    assert records[0].reason == "upstream_credential_unavailable"


async def test_oauth2_credential_with_unset_secret_is_502_naming_it(
    tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The token endpoint itself is tested in test_proxy_oauth2.py.
    monkeypatch.delenv("RR_SECRET", raising=False)
    credential = (
        'auth_type = "oauth2"\ntoken_url = "https://idp.example/token"\n'
        'client_id = "abc"\nclient_secret = "${RR_SECRET}"\n'
    )
    response, _ = await forward(tmp_path, backend, token=mint(), credential=credential)
    assert response.status_code == 502
    body = response.json()
    assert body["reason"] == "upstream_credential_unavailable"
    assert "RR_SECRET" in body["message"]
    assert backend.hits == 0


# ------------------------------------------------------------------ added and removed headers


async def test_additional_headers_from_claims(tmp_path: Path, backend: Backend) -> None:
    proxy = (
        'additional_headers = { "X-User-Id" = "{claims.sub}", "X-Tenant" = '
        '"tenant={claims.app.tenant}", "X-Roles" = "{claims.https://example.com/roles}", '
        '"X-Static" = "rrdev", "X-Missing" = "{claims.nope}" }\n'
    )
    token = mint(app={"tenant": "acme"}, **{"https://example.com/roles": ["admin", "ops"]})
    spoofed = [("X-User-Id", "forged")]
    response, records = await forward(tmp_path, backend, headers=spoofed, token=token, proxy=proxy)
    echo = response.json()
    assert header_values(echo, "x-user-id") == ["user-1@clients"]
    assert header_values(echo, "x-tenant") == ["tenant=acme"]
    assert header_values(echo, "x-roles") == ["admin,ops"]
    assert header_values(echo, "x-static") == ["rrdev"]
    assert header_values(echo, "x-missing") == []
    assert any("X-Missing" in note and "nope" in note for note in records[0].notes)


async def test_header_filters_strip_case_insensitively(tmp_path: Path, backend: Backend) -> None:
    proxy = 'header_filters = ["X-Debug", "authorization"]\n'
    sent = [("x-debug", "1"), ("X-DEBUG", "2"), ("X-Kept", "yes")]
    response, _ = await forward(tmp_path, backend, headers=sent, token=mint(), proxy=proxy)
    echo = response.json()
    assert header_values(echo, "x-debug") == []
    assert header_values(echo, "authorization") == []  # a filter strips the caller's token
    assert header_values(echo, "x-kept") == ["yes"]


async def test_hop_by_hop_request_headers_are_dropped(tmp_path: Path, backend: Backend) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(profile_text(backend.url))
    sent = [
        ("Authorization", f"Bearer {mint()}"),
        ("Connection", "keep-alive, X-Conn-Named"),
        ("X-Conn-Named", "drop"),
        ("Keep-Alive", "timeout=5"),
        ("TE", "trailers"),
        ("Trailer", "X-Checksum"),
        ("Upgrade", "h2c"),
        ("Proxy-Authorization", "Basic cHJveHk6cHc="),
        ("X-End-To-End", "keep"),
    ]
    async with run_proxy(profile) as proxy:
        answer = await raw_request(proxy.port, "GET", "/api/v1/products", sent)
    echo = answer.json()
    names = {k.lower() for k, _ in echo["headers"]}
    for name in ("x-conn-named", "keep-alive", "te", "trailer", "upgrade", "proxy-authorization"):
        assert name not in names
    assert header_values(echo, "x-end-to-end") == ["keep"]
    assert header_values(echo, "connection") in ([], ["keep-alive"])  # aiohttp's own, if any


async def test_hop_by_hop_response_headers_are_dropped(tmp_path: Path, backend: Backend) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(profile_text(backend.url))
    async with run_proxy(profile) as proxy, httpx.AsyncClient() as client:
        response = await client.get(f"{proxy.url}/hop", headers=bearer(mint()))
    assert response.text == "hop"
    for name in ("keep-alive", "proxy-authenticate", "trailer", "upgrade", "x-hop-named"):
        assert name not in response.headers
    assert response.headers["x-end-to-end"] == "keep me"


async def test_host_and_x_forwarded_headers(tmp_path: Path, backend: Backend) -> None:
    sent = [("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "forged")]
    response, _ = await forward(tmp_path, backend, headers=sent, token=mint())
    echo = response.json()
    assert header_values(echo, "host") == [f"127.0.0.1:{backend.port}"]
    assert header_values(echo, "x-forwarded-for") == ["203.0.113.9, 127.0.0.1"]
    assert header_values(echo, "x-forwarded-proto") == ["http"]
    [forwarded_host] = header_values(echo, "x-forwarded-host")
    assert forwarded_host.startswith("127.0.0.1:") and forwarded_host != f"127.0.0.1:{backend.port}"


async def test_base_url_path_prefix_is_kept(tmp_path: Path, backend: Backend) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(profile_text(backend.url + "/v2/"))
    async with run_proxy(profile) as proxy, httpx.AsyncClient() as client:
        response = await client.get(f"{proxy.url}/items?id=1", headers=bearer(mint()))
    assert response.json()["raw_path"] == "/v2/items?id=1"


async def test_request_body_and_content_headers_pass_unchanged(
    tmp_path: Path, backend: Backend
) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(profile_text(backend.url))
    async with run_proxy(profile) as proxy, httpx.AsyncClient() as client:
        response = await client.post(
            f"{proxy.url}/api/v1/products",
            content=b"{}" * 1000,
            headers={**bearer(mint()), "Content-Type": "application/json"},
        )
    echo = response.json()
    assert echo["body_len"] == 2000
    assert header_values(echo, "content-length") == ["2000"]
    assert header_values(echo, "content-type") == ["application/json"]
    assert header_values(echo, "user-agent") == [f"python-httpx/{httpx.__version__}"]
    assert proxy.records[0].bytes_in == 2000
