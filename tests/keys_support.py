"""Keys an issuer should never publish, a JWKS served over loopback, and a proxy in
front of an echo backend that verifies against it: the parts of the weak-key,
claim-type and sender-constrained attack tests.

The keys are real (generated once per session); tokens are signed with them by
``factories.make_token``, whose default claims match ``proxy_support``'s profile.
"""

from __future__ import annotations

import functools
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from factories import jwk_of, make_jwks, rsa_key
from proxy_support import (
    AUDIENCE,
    ISSUER,
    SEED_RULES,
    Backend,
    RawResponse,
    RunningProxy,
    bearer,
    profile_text,
    raw_request,
    run_proxy,
)

PATH = "/api/v1/products"
ERROR_KEYS = {"status", "reason", "message", "hint", "trace"}


@functools.cache
def weak_rsa_key() -> rsa.RSAPrivateKey:
    """A real 1024-bit RSA key: RFC 7518 §3.3 says such a key MUST NOT be used."""
    return rsa.generate_private_key(public_exponent=65537, key_size=1024)


@functools.cache
def p384_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP384R1())


@functools.cache
def p256_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def good_jwk() -> dict[str, Any]:
    """The strong key every JWKS here also carries (kid ``k1``, RS256, 2048 bits)."""
    return jwk_of(rsa_key(), "k1", "RS256")


@dataclass
class JwksServer:
    """A JWKS on 127.0.0.1; ``document`` may be replaced while it runs."""

    document: dict[str, Any]
    url: str = ""
    hits: int = 0


@asynccontextmanager
async def serve_jwks(document: dict[str, Any]) -> AsyncIterator[JwksServer]:
    server = JwksServer(document)

    async def handle(_request: web.Request) -> web.Response:
        server.hits += 1
        return web.json_response(server.document)

    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    server.url = f"http://127.0.0.1:{port}/.well-known/jwks.json"
    try:
        yield server
    finally:
        await runner.cleanup()


@asynccontextmanager
async def proxy_with_jwks(
    tmp_path: Path, backend: Backend, *entries: dict[str, Any], proxy_credential: str = ""
) -> AsyncIterator[tuple[RunningProxy, JwksServer]]:
    """``rrdev up`` (real uvicorn on loopback) in front of ``backend``, verifying
    against a loopback JWKS of ``entries``; extra ``[proxy_credential]`` lines may
    follow the defaults."""
    async with serve_jwks(make_jwks(*entries)) as jwks:
        profile = tmp_path / "rrdev.toml"
        credential = (
            f'jwks_uri = "{jwks.url}"\naudience = "{AUDIENCE}"\n'
            f'issuer = "{ISSUER}"\n{proxy_credential}\n'
        )
        profile.write_text(profile_text(backend.url, proxy_credential=credential, rules=SEED_RULES))
        async with run_proxy(profile, offline=False) as proxy:
            yield proxy, jwks


async def send(proxy: RunningProxy, token: str) -> RawResponse:
    """GET the seed's allowed path over a raw loopback socket with ``token``."""
    return await raw_request(proxy.port, "GET", PATH, list(bearer(token).items()))


def assert_refused(answer: RawResponse, reason: str, backend: Backend) -> dict[str, Any]:
    """A 401 rrdev made itself (JSON body, RFC 6750 challenge, gateway headers), and
    nothing reached the backend."""
    assert answer.status == 401, answer.body
    assert answer.header("content-type") == "application/json"
    body = answer.json()
    assert set(body) == ERROR_KEYS
    assert (body["status"], body["reason"]) == (401, reason)
    assert body["message"] and body["hint"]
    challenge = answer.header("www-authenticate") or ""
    assert challenge.startswith('Bearer realm="rrdev", error="invalid_token"'), challenge
    assert answer.header("requestrocket-proxy-code") == "proxy-access-denied"
    assert backend.hits == 0 and backend.seen == []
    return body


def assert_forwarded(answer: RawResponse, backend: Backend) -> None:
    """The control case: the same setup forwards a sound token."""
    assert answer.status == 200, answer.body
    assert answer.header("requestrocket-proxy-code") == "proxy-access-granted"
    assert backend.hits == 1


def live_claims(**overrides: Any) -> dict[str, Any]:
    """Claims valid right now (``rrdev up`` checks times against the real clock)."""
    now = int(time.time())
    claims = {
        "iss": ISSUER,
        "sub": "svc@clients",
        "aud": AUDIENCE,
        "iat": now - 10,
        "exp": now + 600,
        "scope": "read:products",
    }
    return claims | overrides
