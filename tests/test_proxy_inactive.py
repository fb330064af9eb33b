"""``proxy.active = false``: every request is refused with 503 ``proxy_inactive`` and
never forwarded; a hot reload to ``active = true`` resumes forwarding."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from proxy_support import Backend, bearer, mint, profile_text, raw_request, run_proxy, wait_for

from rrdev.core.errors import ProfileError
from rrdev.core.profile import parse_profile, profile_warnings

pytestmark = pytest.mark.usefixtures("keyset")


def rewrite(path: Path, text: str) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    partial.replace(path)


async def test_an_inactive_proxy_refuses_everything_and_forwards_nothing(
    tmp_path: Path, backend: Backend
) -> None:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text(backend.url, proxy="active = false"))
    async with run_proxy(profile) as proxy:
        answers = [
            await raw_request(proxy.port, "GET", "/api/v1/products", list(bearer(mint()).items())),
            await raw_request(proxy.port, "DELETE", "/api/v1/products/1"),
            await raw_request(
                proxy.port,
                "OPTIONS",
                "/api/v1/products",
                [("Origin", "https://app.test"), ("Access-Control-Request-Method", "GET")],
            ),
        ]
        await wait_for(lambda: len(proxy.records) == 3)
    for answer in answers:
        assert answer.status == 503
        body = answer.json()
        assert body["reason"] == "proxy_inactive"
        assert set(body) == {"status", "reason", "message", "hint", "trace"}
        assert "proxy.active" in body["hint"]
        assert answer.header("requestrocket-proxy-code") == "proxy-access-denied"
    assert backend.hits == 0
    assert all(r.reason == "proxy_inactive" and not r.forwarded for r in proxy.records)


async def test_reloading_to_active_resumes_forwarding(tmp_path: Path, backend: Backend) -> None:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text(backend.url, proxy="active = false"))
    headers = list(bearer(mint()).items())
    async with run_proxy(profile) as proxy:
        before = await raw_request(proxy.port, "GET", "/api/v1/products", headers)
        rewrite(profile, profile_text(backend.url, proxy="active = true\n# now serving"))
        await asyncio.sleep(0.1)  # past reload_interval (0.05 s in tests)
        after = await raw_request(proxy.port, "GET", "/api/v1/products", headers)
    assert (before.status, after.status) == (503, 200)
    assert backend.hits == 1
    assert [kind for kind, _ in proxy.events] == ["reloaded"]


def test_active_must_be_a_boolean() -> None:
    with pytest.raises(ProfileError) as caught:
        parse_profile(profile_text("http://127.0.0.1:9", proxy='active = "no"'), "p.toml")
    assert caught.value.key == "proxy.active"
    assert caught.value.line is not None


def test_active_defaults_to_true_and_false_is_a_startup_warning() -> None:
    assert parse_profile(profile_text("http://127.0.0.1:9")).proxy.active is True
    inactive = parse_profile(profile_text("http://127.0.0.1:9", proxy="active = false"))
    assert inactive.proxy.active is False
    assert profile_warnings(inactive, {}) == []  # a choice, not a mistake: no validate noise
