"""Attack: take the JWKS endpoint down so the proxy trusts an old key set forever.

With the issuer's JWKS unreachable, rrdev cannot learn that a key was revoked. It keeps
serving its last good key set for at most ``jwks_max_stale_seconds`` after the copy went
stale (past its TTL while fetches fail), saying so on the console, in each request's
explanation and in the status, then answers 503 ``jwks_unavailable`` (never 401, never
forwarded) until the endpoint answers again. Driven over real loopback sockets.
"""

from __future__ import annotations

import asyncio
import signal
from pathlib import Path

import httpx
import pytest
from jwks_server import jwtverify_lines, key_set, run_jwks_server, signed
from proxy_support import Backend, bearer, profile_text, run_proxy, start_up, wait_for

pytestmark = pytest.mark.usefixtures("keyset")

PATH = "/api/v1/products"
TTL = 1  # the smallest TTL and refetch interval a profile accepts
MAX_STALE = 1.5
TIMINGS = (
    f"jwks_ttl_seconds = {TTL}\njwks_refetch_interval_seconds = 1\n"
    f"jwks_max_stale_seconds = {MAX_STALE}\n"
)


async def test_stale_keys_are_served_with_a_warning_then_refused_with_503(
    tmp_path: Path, backend: Backend
) -> None:
    async with run_jwks_server(key_set("k1")) as jwks:
        profile = tmp_path / "rrdev.toml"
        profile.write_text(
            profile_text(backend.url, proxy_credential=jwtverify_lines(jwks.url, TIMINGS))
        )
        token = signed("k1")
        async with run_proxy(profile, offline=False) as proxy, httpx.AsyncClient() as client:
            assert (
                await client.get(f"{proxy.url}{PATH}", headers=bearer(token))
            ).status_code == 200
            await jwks.stop()
            await asyncio.sleep(TTL + 0.1)

            stale = await client.get(f"{proxy.url}{PATH}", headers=bearer(token))
            await wait_for(lambda: len(proxy.records) == 2)
            stale_record = proxy.records[-1]
            status = proxy.app.jwks_status()
            hits = backend.hits
            await asyncio.sleep(MAX_STALE)

            refused = await client.get(f"{proxy.url}{PATH}", headers=bearer(token))
            await wait_for(lambda: len(proxy.records) == 3)
            after_refusal = proxy.app.jwks_status()
            hits_after_refusal = backend.hits

            await jwks.start()  # the same port again
            await asyncio.sleep(1.05)  # the refetch interval since the last failed fetch
            recovered = await client.get(f"{proxy.url}{PATH}", headers=bearer(token))

    # Stale, but within jwks_max_stale_seconds: served, and said so.
    assert stale.status_code == 200
    verification = stale_record.explanation.verification
    assert verification is not None
    (warning,) = verification.warnings
    assert warning.startswith(f"stale key set: the JWKS at {jwks.url} is failing (unreachable")
    assert "jwks_max_stale_seconds = 1.5" in warning
    assert status is not None and status.stale is not None and status.stale.served
    stale_events = [m for kind, m in proxy.events if kind == "jwks_stale"]
    assert len(stale_events) == 1 and "served for" in stale_events[0]

    # Past it: 503 jwks_unavailable, and the backend received nothing.
    assert refused.status_code == 503
    body = refused.json()
    assert set(body) == {"status", "reason", "message", "hint", "trace"}
    assert body["reason"] == "jwks_unavailable"
    assert "the last good key set, stale for" in body["message"]
    assert "is no longer served (jwks_max_stale_seconds = 1.5)" in body["message"]
    assert "raise jwks_max_stale_seconds" in body["hint"]
    assert "www-authenticate" not in refused.headers  # not the caller's fault
    assert refused.headers["requestrocket-proxy-code"] == "proxy-access-denied"
    assert hits_after_refusal == hits
    assert after_refusal is not None and after_refusal.stale is not None
    assert not after_refusal.stale.served
    assert any(kind == "jwks_unavailable" for kind, _ in proxy.events)

    # The endpoint is back: the next request fetches and passes, without a warning.
    assert recovered.status_code == 200
    assert backend.hits == hits + 1
    assert [kind for kind, _ in proxy.events if kind.startswith("jwks")] == [
        "jwks_stale",
        "jwks_unavailable",
        "jwks_recovered",
    ]


async def test_rrdev_up_warns_on_the_console(tmp_path: Path, backend: Backend) -> None:
    async with run_jwks_server(key_set("k1")) as jwks:
        profile = tmp_path / "rrdev.toml"
        profile.write_text(
            profile_text(backend.url, proxy_credential=jwtverify_lines(jwks.url, TIMINGS))
        )
        token = signed("k1")
        up = await start_up(profile, {}, port=0)
        async with httpx.AsyncClient() as client:
            assert (await client.get(f"{up.url}{PATH}", headers=bearer(token))).status_code == 200
            await jwks.stop()
            await asyncio.sleep(TTL + 0.1)
            stale = await client.get(f"{up.url}{PATH}", headers=bearer(token))
            await asyncio.sleep(MAX_STALE + 0.1)
            refused = await client.get(f"{up.url}{PATH}", headers=bearer(token))
        up.process.send_signal(signal.SIGINT)
        code, out, err = await up.finish()
    assert (stale.status_code, refused.status_code) == (200, 503)
    assert code == 0, err
    assert f"warning: JWKS stale: stale key set: the JWKS at {jwks.url} is failing" in err
    assert f"JWKS unavailable: the JWKS at {jwks.url} is failing" in err
    lines = [line for line in out.splitlines() if PATH in line]
    assert "200" in lines[1] and "stale JWKS" in lines[1]
    assert "503" in lines[2] and "jwks_unavailable" in lines[2]
