"""``rrdev up`` with a profile that gives only the issuer: the JWKS comes from OIDC
discovery of a real local issuer (discovery document + JWKS on 127.0.0.1)."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest
from jwks_server import key_set, run_jwks_server, signed
from proxy_support import AUDIENCE, Backend, bearer, profile_text, start_up

pytestmark = pytest.mark.usefixtures("keyset")


async def test_rrdev_up_discovers_the_jwks_and_forwards(tmp_path: Path, backend: Backend) -> None:
    async with run_jwks_server(key_set("k1")) as server:
        server.discovery = server.discovery_of()
        profile = tmp_path / "rrdev.toml"
        credential = f'issuer = "{server.issuer}"\naudience = "{AUDIENCE}"\n'
        profile.write_text(profile_text(backend.url, proxy_credential=credential))
        up = await start_up(profile, {}, port=0)
        async with httpx.AsyncClient() as client:
            allowed = await client.get(
                f"{up.url}/api/items", headers=bearer(signed("k1", iss=server.issuer))
            )
            wrong_issuer = await client.get(f"{up.url}/api/items", headers=bearer(signed("k1")))
        up.process.send_signal(signal.SIGINT)
        code, out, err = await up.finish()
    assert code == 0, err
    assert allowed.status_code == 200
    assert allowed.json()["path"] == "/api/items"
    assert wrong_issuer.status_code == 401
    assert wrong_issuer.json()["reason"] == "issuer_mismatch"
    assert (server.discovery_fetches, server.fetches, backend.hits) == (1, 1, 1)
    banner = "".join(up.banner) + out
    assert f"discovered from {server.issuer}.well-known/openid-configuration" in banner
