"""Hot reload of the profile, and the verified-token cache."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from proxy_support import (
    SEED_RULES,
    Backend,
    bearer,
    mint,
    profile_text,
    run_proxy,
    wait_for,
)

from rrdev.core.records import Verification, VerifyStep
from rrdev.servers.proxy import CachingVerifier

pytestmark = pytest.mark.usefixtures("keyset")

DENY_PRODUCTS = """
[[proxy.rules]]
id = "freeze-products"
effect = "deny"
path = { pattern = "^/api/v1/products" }
notes = "products are frozen"
"""


def rewrite(path: Path, text: str) -> None:
    """Write a new version whose change the stat check cannot miss (size differs),
    atomically, as editors do: the background watcher must never see half a file."""
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    partial.replace(path)


async def test_rule_edit_applies_to_the_next_request(tmp_path: Path, backend: Backend) -> None:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text(backend.url))
    token = mint()
    async with run_proxy(profile) as proxy, httpx.AsyncClient() as client:
        before = await client.get(f"{proxy.url}/api/v1/products", headers=bearer(token))
        rewrite(profile, profile_text(backend.url, rules=SEED_RULES + DENY_PRODUCTS))
        await asyncio.sleep(0.1)  # past reload_interval (0.05 s in tests)
        after = await client.get(f"{proxy.url}/api/v1/products", headers=bearer(token))
    assert before.status_code == 200
    assert after.status_code == 403
    assert after.json()["trace"]["deciding_rule"] == "freeze-products"
    assert [kind for kind, _ in proxy.events] == ["reloaded"]
    assert str(profile) in proxy.events[0][1]


async def test_a_listen_edit_says_a_restart_is_needed(tmp_path: Path, backend: Backend) -> None:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text(backend.url))
    async with run_proxy(profile) as proxy, httpx.AsyncClient() as client:
        rewrite(profile, profile_text(backend.url, proxy='listen = "127.0.0.1:18999"'))
        await asyncio.sleep(0.1)
        answer = await client.get(f"{proxy.url}/api/v1/products", headers=bearer(mint()))
    assert answer.status_code == 200  # still served where it listened
    ((kind, message),) = proxy.events
    assert kind == "reloaded"
    assert "listen changed to 127.0.0.1:18999: restart" in message


async def test_broken_edit_keeps_the_last_good_profile(tmp_path: Path, backend: Backend) -> None:
    profile = tmp_path / "rrdev.toml"
    good = profile_text(backend.url)
    profile.write_text(good)
    broken = good.replace('default_effect = "deny"', 'default_effect = "maybe"')
    async with run_proxy(profile) as proxy, httpx.AsyncClient() as client:
        rewrite(profile, broken)
        await asyncio.sleep(0.1)
        response = await client.get(f"{proxy.url}/api/v1/products", headers=bearer(mint()))
        await wait_for(lambda: bool(proxy.events))
    assert response.status_code == 200  # still the good profile
    kind, message = proxy.events[0]
    assert kind == "reload_failed"
    line = broken.splitlines().index('default_effect = "maybe"') + 1
    assert f"{profile}:{line}" in message
    assert "proxy.default_effect" in message


async def test_background_watcher_reloads_without_a_request(
    tmp_path: Path, backend: Backend
) -> None:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text(backend.url))
    async with run_proxy(profile) as proxy:
        rewrite(profile, profile_text(backend.url, rules=SEED_RULES + DENY_PRODUCTS))
        await wait_for(lambda: bool(proxy.events))
    assert proxy.events[0][0] == "reloaded"


async def test_reload_drops_verified_tokens_and_a_changed_jwks(
    tmp_path: Path, backend: Backend
) -> None:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text(backend.url))
    async with run_proxy(profile, offline=False, reload_interval=0) as proxy:
        state = proxy.app._state
        assert state.verifier is not None and state.jwks is not None
        moved = profile_text(backend.url, jwks_uri="http://127.0.0.1:9/other.json")
        rewrite(profile, moved)
        assert await proxy.app.check_reload(force=True)
        new = proxy.app._state
        assert new.verifier is not state.verifier  # verified tokens dropped
        assert new.jwks is not state.jwks  # jwks_uri changed: a fresh key cache
        rewrite(profile, moved + "\n# a comment\n")
        assert await proxy.app.check_reload(force=True)
        assert proxy.app._state.jwks is new.jwks  # same jwks_uri: keys kept


# ------------------------------------------------------------------ the token cache


def ok(exp: int | None) -> Verification:
    return Verification(steps=(VerifyStep("signature", "passed"),), claims={"exp": exp})


def failed() -> Verification:
    return Verification(steps=(), reason="signature_invalid", message="bad")


class CountingVerifier:
    def __init__(self, result: Verification) -> None:
        self.result = result
        self.calls = 0

    async def verify(self, token: str, now: float) -> Verification:
        self.calls += 1
        return self.result


async def test_cache_reuses_a_success_until_exp() -> None:
    inner = CountingVerifier(ok(exp=1000))
    cache = CachingVerifier(inner)
    assert (await cache.verify("t", 900)).ok
    assert (await cache.verify("t", 999)).ok
    assert inner.calls == 1
    await cache.verify("t", 1000)  # expired: asked again (and not cached)
    await cache.verify("t", 1001)
    assert inner.calls == 3


async def test_cache_never_keeps_failures() -> None:
    inner = CountingVerifier(failed())
    cache = CachingVerifier(inner)
    await cache.verify("t", 1)
    await cache.verify("t", 1)
    assert inner.calls == 2 and len(cache) == 0


async def test_cache_is_bounded_and_clearable() -> None:
    cache = CachingVerifier(CountingVerifier(ok(exp=10**10)), max_entries=2)
    for token in ("a", "b", "c"):
        await cache.verify(token, 1)
    assert len(cache) == 2
    cache.clear()
    assert len(cache) == 0


async def test_repeated_requests_verify_the_signature_once(
    tmp_path: Path, backend: Backend
) -> None:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text(backend.url))
    token = mint()
    async with run_proxy(profile) as proxy, httpx.AsyncClient() as client:
        verifier = proxy.app._state.verifier
        assert verifier is not None
        counter = CountingVerifier(ok(exp=0))
        real = verifier.inner

        async def counted(token: str, now: float) -> Verification:
            counter.calls += 1
            return await real.verify(token, now)

        counter.verify = counted  # type: ignore[method-assign]
        verifier.inner = counter
        for _ in range(3):
            response = await client.get(f"{proxy.url}/api/v1/products", headers=bearer(token))
            assert response.status_code == 200
    assert counter.calls == 1
