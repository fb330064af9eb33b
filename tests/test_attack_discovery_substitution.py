"""Attack: substitute the OIDC discovery document so the proxy trusts someone else's keys.

A profile that gives only ``issuer`` lets ``{issuer}/.well-known/openid-configuration``
name the JWKS. Whoever controls (or spoofs) that document could point ``jwks_uri`` at
their own keys: a document naming another issuer is refused (503
``discovery_issuer_mismatch``, its keys never fetched), and so is a ``jwks_uri`` that is
plain http off loopback (503 ``discovery_unavailable``: anyone on the path could swap
the keys). Neither forwards anything. Driven over real loopback sockets.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from jwks_server import JwksServer, key_set, run_jwks_server, signed
from proxy_support import AUDIENCE, Backend, bearer, profile_text, run_proxy, wait_for

pytestmark = pytest.mark.usefixtures("keyset")

PATH = "/api/v1/products"
FIELDS = {"status", "reason", "message", "hint", "trace"}


def discovery_only(tmp_path: Path, backend: Backend, server: JwksServer) -> Path:
    """A profile whose JWKS is found through the server's discovery document."""
    profile = tmp_path / "rrdev.toml"
    credential = f'issuer = "{server.issuer}"\naudience = "{AUDIENCE}"\n'
    profile.write_text(profile_text(backend.url, proxy_credential=credential))
    return profile


async def answer(tmp_path: Path, backend: Backend, document: dict[str, Any]) -> tuple[Any, ...]:
    """One request with a token the server's own key signed, under ``document``."""
    async with run_jwks_server(key_set("k1")) as server:
        server.discovery = {"issuer": server.issuer, "jwks_uri": server.url, **document}
        token = signed("k1", iss=server.issuer)
        profile = discovery_only(tmp_path, backend, server)
        async with run_proxy(profile, offline=False) as proxy, httpx.AsyncClient() as client:
            response = await client.get(f"{proxy.url}{PATH}", headers=bearer(token))
            await wait_for(lambda: len(proxy.records) == 1)
        return response, server, proxy.records[0]


async def test_the_real_document_lets_a_valid_token_through(
    tmp_path: Path, backend: Backend
) -> None:
    response, server, _record = await answer(tmp_path, backend, {})
    assert response.status_code == 200
    assert response.headers["requestrocket-proxy-code"] == "proxy-access-granted"
    assert (server.discovery_fetches, server.fetches, backend.hits) == (1, 1, 1)


async def test_a_document_naming_another_issuer_is_refused_with_503(
    tmp_path: Path, backend: Backend
) -> None:
    response, server, record = await answer(tmp_path, backend, {"issuer": "https://evil.example/"})
    assert response.status_code == 503
    body = response.json()
    assert set(body) == FIELDS
    assert body["reason"] == "discovery_issuer_mismatch"
    assert "'https://evil.example/'" in body["message"]
    assert repr(server.issuer) in body["message"]
    assert response.headers["requestrocket-proxy-code"] == "proxy-access-denied"
    assert "www-authenticate" not in response.headers  # not the caller's fault
    assert server.fetches == 0  # the substituted document's keys were never fetched
    assert backend.hits == 0 and backend.seen == []
    assert record.explanation.reason == "discovery_issuer_mismatch"


@pytest.mark.parametrize(
    "jwks_uri",
    ["http://keys.example.invalid/jwks.json", "file:///etc/rrdev/jwks.json"],
)
async def test_a_jwks_uri_off_https_is_refused_with_503(
    tmp_path: Path, backend: Backend, jwks_uri: str
) -> None:
    response, server, _record = await answer(tmp_path, backend, {"jwks_uri": jwks_uri})
    assert response.status_code == 503
    body = response.json()
    assert set(body) == FIELDS
    assert body["reason"] == "discovery_unavailable"
    assert "is refused" in body["message"] and server.issuer in body["message"]
    assert server.fetches == 0 and backend.hits == 0


async def test_no_document_is_503_naming_the_url(tmp_path: Path, backend: Backend) -> None:
    async with run_jwks_server(key_set("k1")) as server:
        token = signed("k1", iss=server.issuer)
        profile = discovery_only(tmp_path, backend, server)  # server.discovery is None: 404
        async with run_proxy(profile, offline=False) as proxy, httpx.AsyncClient() as client:
            response = await client.get(f"{proxy.url}{PATH}", headers=bearer(token))
    url = f"{server.issuer}.well-known/openid-configuration"
    body = response.json()
    assert (response.status_code, body["reason"]) == (503, "discovery_unavailable")
    assert "HTTP 404" in body["message"] and url in body["hint"]
    assert backend.hits == 0
