"""Hot reload and the JWKS cache: replaced caches are closed once no request uses them
(no sockets left behind), and an edit of the timings alone keeps the keys."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import httpx
import pytest
from jwks_server import jwtverify_lines, key_set, run_jwks_server, signed
from proxy_support import Backend, bearer, profile_text, run_proxy, wait_for

pytestmark = pytest.mark.usefixtures("keyset")

PATH = "/api/v1/products"


def rewrite(path: Path, text: str) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    partial.replace(path)


def sockets_to(port: int) -> int:
    """This process's TCP sockets connected to ``port`` (ESTABLISHED or CLOSE_WAIT: each
    holds a file descriptor)."""
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    count = 0
    for line in Path("/proc/self/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        remote_port = int(fields[2].split(":")[1], 16)
        if remote_port == port and fields[3] in ("01", "08") and fields[9] in inodes:
            count += 1
    return count


async def test_reloads_close_the_jwks_caches_they_replace(tmp_path: Path, backend: Backend) -> None:
    async with run_jwks_server(key_set("k1")) as jwks:
        # Each rewrite names another JWKS source, so each reload needs a new key cache.
        sources = [f"{jwks.url}?v={n}" for n in range(13)]
        profile = tmp_path / "rrdev.toml"
        profile.write_text(profile_text(backend.url, proxy_credential=jwtverify_lines(sources[0])))
        token = signed("k1")
        replaced = []
        async with (
            run_proxy(profile, offline=False, reload_interval=0) as proxy,
            httpx.AsyncClient() as client,
        ):
            for source in sources[1:]:
                assert (await client.get(f"{proxy.url}{PATH}", headers=bearer(token))).is_success
                replaced.append(proxy.app._state.jwks)
                rewrite(
                    profile, profile_text(backend.url, proxy_credential=jwtverify_lines(source))
                )
                assert await proxy.app.check_reload(force=True)
            assert (await client.get(f"{proxy.url}{PATH}", headers=bearer(token))).is_success
            await wait_for(lambda: all(cache is not None and cache.closed for cache in replaced))
            await asyncio.sleep(0.05)  # the server sees the closed connections
            open_sockets = sockets_to(jwks.port)
            current = proxy.app._state.jwks
            assert current is not None and not current.closed
        assert current.closed  # shutdown closes the one in use
    assert jwks.fetches == 13
    assert open_sockets <= 1  # the shared client's keep-alive connection, at most


async def test_a_replaced_cache_stays_open_while_a_request_uses_it(
    tmp_path: Path, backend: Backend
) -> None:
    async with (
        run_jwks_server(key_set("k1")) as old_jwks,
        run_jwks_server(key_set("k1")) as new_jwks,
    ):
        profile = tmp_path / "rrdev.toml"
        profile.write_text(
            profile_text(backend.url, proxy_credential=jwtverify_lines(old_jwks.url))
        )
        token = signed("k1")
        async with (
            run_proxy(profile, offline=False, reload_interval=0) as proxy,
            httpx.AsyncClient() as client,
        ):
            old = proxy.app._state.jwks
            assert old is not None
            slow = asyncio.create_task(
                client.get(f"{proxy.url}/slow?delay=0.6", headers=bearer(token))
            )
            await wait_for(lambda: backend.hits == 1)  # verified and forwarded: in flight
            rewrite(
                profile, profile_text(backend.url, proxy_credential=jwtverify_lines(new_jwks.url))
            )
            assert await proxy.app.check_reload(force=True)
            assert (await client.get(f"{proxy.url}{PATH}", headers=bearer(token))).is_success
            assert not old.closed  # the slow request started with it
            assert (await slow).status_code == 200
            await wait_for(lambda: old.closed)


async def test_a_timing_edit_keeps_the_keys_during_an_outage(
    tmp_path: Path, backend: Backend
) -> None:
    def timings(ttl: float, refetch: float) -> str:
        return (
            f"jwks_ttl_seconds = {ttl}\njwks_refetch_interval_seconds = {refetch}\n"
            "jwks_max_stale_seconds = 60\n"
        )

    async with run_jwks_server(key_set("k1")) as jwks:
        profile = tmp_path / "rrdev.toml"
        text = profile_text(backend.url, proxy_credential=jwtverify_lines(jwks.url, timings(30, 2)))
        profile.write_text(text)
        token = signed("k1")
        async with (
            run_proxy(profile, offline=False, reload_interval=0) as proxy,
            httpx.AsyncClient() as client,
        ):
            assert (await client.get(f"{proxy.url}{PATH}", headers=bearer(token))).is_success
            cache = proxy.app._state.jwks
            assert cache is not None
            await jwks.stop()

            # A broken edit changes nothing, not even the timings.
            edited = jwtverify_lines(jwks.url, timings(1, 1))
            broken = profile_text(backend.url, proxy_credential=edited + "leeway_seconds = -1\n")
            rewrite(profile, broken)
            assert not await proxy.app.check_reload(force=True)
            assert cache.refetch_interval == 2

            rewrite(profile, profile_text(backend.url, proxy_credential=edited))
            assert await proxy.app.check_reload(force=True)
            assert proxy.app._state.jwks is cache  # the keys are kept ...
            assert cache.refetch_interval == 1  # ... and the new timings apply
            answer = await client.get(f"{proxy.url}{PATH}", headers=bearer(token))
            await asyncio.sleep(1.1)  # past the new TTL: served stale
            stale = await client.get(f"{proxy.url}{PATH}", headers=bearer(token))
            status = proxy.app.jwks_status()
    assert answer.status_code == 200
    assert stale.status_code == 200
    assert status is not None and status.stale is not None and status.stale.served
    assert jwks.fetches == 1
