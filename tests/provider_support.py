"""Real parts for the provider tests: a proxy (``rrdev up``'s uvicorn on loopback)
verifying against a loopback JWKS with a provider-shaped ``[proxy_credential]``, tokens
signed with a real RSA key and shaped like each provider's, and the checks every
refusal must pass (JSON body, challenge, nothing forwarded)."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from factories import make_jwks, make_token, rsa_key
from keys_support import ERROR_KEYS, good_jwk, serve_jwks
from proxy_support import Backend, RawResponse, RunningProxy, bearer, raw_request, run_proxy

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OTHER_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
API_CLIENT = "6e74172b-be56-4843-9ff4-e66a39bb12e3"
GRAPH = "00000003-0000-0000-c000-000000000000"
POOL = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123"
APP_CLIENT = "1example23456789abcdefghi"
OKTA = "https://dev-123456.okta.com/oauth2/default"

ENTRA = f"""
issuer = ["https://login.microsoftonline.com/{{tenantid}}/v2.0",
          "https://sts.windows.net/{{tenantid}}/"]
tenants = ["{TENANT}"]
audience = ["{API_CLIENT}", "api://{API_CLIENT}"]
provider = "entra"
"""
COGNITO = f"""
issuer = "{POOL}"
client_id = ["{APP_CLIENT}", "2another0client1id"]
token_use = "access"
provider = "cognito"
"""
OKTA_CREDENTIAL = f'issuer = "{OKTA}"\naudience = "api://default"\nprovider = "okta"\n'

#: Allow everything authenticated (the tests here are about who gets in).
ALLOW_ALL = """
[[proxy.rules]]
id = "allow-authenticated"
effect = "allow"
path = { pattern = ".*" }
"""


def profile(backend_url: str, jwks_uri: str, credential: str, rules: str) -> str:
    return (
        f'[target]\nname = "backend"\nbase_url = "{backend_url}"\n\n'
        f'[proxy_credential]\njwks_uri = "{jwks_uri}"\n{credential}\n'
        '[proxy]\nname = "provider-proxy"\ndefault_effect = "deny"\n\n'
        f"{rules}"
    )


@asynccontextmanager
async def provider_proxy(
    tmp_path: Path, backend: Backend, credential: str, rules: str = ALLOW_ALL
) -> AsyncIterator[RunningProxy]:
    """``rrdev up`` in front of ``backend`` with ``credential`` lines (issuer, audience
    or client_id, ...) verifying against a loopback JWKS holding ``rsa_key()`` as k1."""
    async with serve_jwks(make_jwks(good_jwk())) as jwks:
        path = tmp_path / "provider.toml"
        path.write_text(profile(backend.url, jwks.url, credential, rules))
        async with run_proxy(path, offline=False) as proxy:
            yield proxy


def signed(claims: dict[str, Any], **headers: Any) -> str:
    return make_token(rsa_key(), claims, headers=headers or None)


def live(**claims: Any) -> dict[str, Any]:
    """``iat``/``exp`` around the real clock (the proxy checks against it)."""
    now = int(time.time())
    return {"iat": now - 10, "exp": now + 600} | claims


def entra_v2(tenant: str = TENANT, **claims: Any) -> dict[str, Any]:
    base = {
        "iss": f"https://login.microsoftonline.com/{tenant}/v2.0",
        "aud": API_CLIENT,
        "tid": tenant,
        "ver": "2.0",
        "oid": "00000000-0000-0000-0000-00000000a11c",
    }
    return live(**(base | claims))


def entra_v1(tenant: str = TENANT, **claims: Any) -> dict[str, Any]:
    v1 = {"iss": f"https://sts.windows.net/{tenant}/", "aud": f"api://{API_CLIENT}", "ver": "1.0"}
    return entra_v2(tenant, **(v1 | claims))


def cognito_access(**claims: Any) -> dict[str, Any]:
    base = {
        "iss": POOL,
        "sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "client_id": APP_CLIENT,
        "token_use": "access",
        "scope": "orders/read",
    }
    return live(**(base | claims))


def cognito_id(**claims: Any) -> dict[str, Any]:
    base = {
        "iss": POOL,
        "sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "aud": APP_CLIENT,
        "token_use": "id",
        "email": "ada@example.com",
    }
    return live(**(base | claims))


async def get(proxy: RunningProxy, token: str | None, path: str = "/orders") -> RawResponse:
    headers = list(bearer(token).items()) if token is not None else []
    return await raw_request(proxy.port, "GET", path, headers)


def refused(answer: RawResponse, status: int, reason: str, backend: Backend) -> dict[str, Any]:
    """rrdev's own refusal (JSON body with every key, the gateway headers, RFC 6750
    challenge on a 401) and nothing reached the backend."""
    assert answer.status == status, answer.body
    assert answer.header("content-type") == "application/json"
    body = answer.json()
    assert set(body) == ERROR_KEYS
    assert (body["status"], body["reason"]) == (status, reason)
    assert body["message"] and body["hint"]
    assert answer.header("requestrocket-proxy-code") == "proxy-access-denied"
    challenge = answer.header("www-authenticate") or ""
    if status == 401:
        assert challenge.startswith('Bearer realm="rrdev", error="invalid_token"'), challenge
    assert backend.hits == 0 and backend.seen == []
    return body


def forwarded(answer: RawResponse, backend: Backend) -> None:
    assert answer.status == 200, answer.body
    assert answer.header("requestrocket-proxy-code") == "proxy-access-granted"
    assert backend.hits == 1
    backend.hits = 0
    backend.seen.clear()
