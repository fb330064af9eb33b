"""Attack: keep using a token after the issuer removed (or replaced) its signing key.

An issuer drops a key from its JWKS when the key is compromised or retired. A token
signed by that key, verified once while the key was published, must be refused as soon
as rrdev has seen the new key set, not when the verified-token cache would have
expired (up to ``jwks_ttl_seconds`` later). Driven over real loopback sockets: a JWKS
endpoint the test edits, `rrdev up`'s proxy, and an echo backend.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from jwks_server import jwtverify_lines, key_set, run_jwks_server, signed
from proxy_support import Backend, RunningProxy, bearer, profile_text, run_proxy, wait_for

pytestmark = pytest.mark.usefixtures("keyset")

PATH = "/api/v1/products"


async def get(client: httpx.AsyncClient, proxy: RunningProxy, token: str) -> httpx.Response:
    return await client.get(f"{proxy.url}{PATH}", headers=bearer(token))


@pytest.mark.parametrize(
    ("published", "reason", "message"),
    [
        (key_set("k2", "k3"), "key_not_found", "the JWKS has no key with kid 'k1'"),
        (key_set("k1", "k3", replaced=("k1",)), "signature_invalid", "signature"),
    ],
    ids=["key-removed", "key-replaced"],
)
async def test_a_token_verified_before_its_key_went_away_is_refused_at_once(
    tmp_path: Path, backend: Backend, published: dict, reason: str, message: str
) -> None:
    async with run_jwks_server(key_set("k1", "k2")) as jwks:
        profile = tmp_path / "rrdev.toml"
        # A day-long TTL: only the refetch below may tell rrdev about the new key set.
        cred = jwtverify_lines(
            jwks.url, "jwks_ttl_seconds = 86400\njwks_refetch_interval_seconds = 1\n"
        )
        profile.write_text(profile_text(backend.url, proxy_credential=cred))
        stolen = signed("k1")
        async with run_proxy(profile, offline=False) as proxy, httpx.AsyncClient() as client:
            for _ in range(2):  # verified, then served from the verified-token cache
                assert (await get(client, proxy, stolen)).status_code == 200
            assert jwks.fetches == 1

            jwks.document = published  # the issuer rotates: k1 goes, k3 comes
            await asyncio.sleep(1.05)  # the refetch interval (at least 1 s) has passed
            rotated_in = await get(client, proxy, signed("k3"))  # an unknown kid: refetch
            assert rotated_in.status_code == 200
            assert jwks.fetches == 2
            hits = backend.hits

            refused = await get(client, proxy, stolen)
            await wait_for(lambda: len(proxy.records) == 4)

    assert refused.status_code == 401
    body = refused.json()
    assert body["reason"] == reason
    assert message in body["message"]
    assert refused.headers["www-authenticate"].startswith(
        'Bearer realm="rrdev", error="invalid_token"'
    )
    assert refused.headers["requestrocket-proxy-code"] == "proxy-access-denied"
    assert backend.hits == hits  # the backend received nothing
    assert proxy.records[-1].reason == reason
    changed = [message for kind, message in proxy.events if kind == "jwks_changed"]
    assert len(changed) == 1 and "key set changed" in changed[0]
