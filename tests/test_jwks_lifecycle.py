"""The JWKS lifecycle with an injected clock: key-set versions (what the verified-token
cache is keyed on), stale key sets and ``jwks_max_stale_seconds``, outage events,
timings changed in place, one shared fetch for every waiter, and the profile key.

The JWKS endpoint is a third-party remote here, so it is mocked with pytest-httpx; the
loopback versions of the attacks are in tests/test_attack_key_removal.py and
tests/test_attack_jwks_outage.py.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories import (
    AUDIENCE,
    ISSUER,
    JWKS_URI,
    NOW,
    FakeClock,
    default_jwks,
    jwk_of,
    make_cred,
    make_jwks,
    make_token,
    rsa_key,
    verify,
)
from pytest_httpx import HTTPXMock
from typer.testing import CliRunner

from rrdev.clients.jwks import JwksCache, JwksClients
from rrdev.core.errors import JwksUnavailable, ProfileError
from rrdev.core.explain import JwksVerifier
from rrdev.core.jwk import staleness
from rrdev.core.profile import parse_profile
from rrdev.servers.proxy import CachingVerifier

DOWN = httpx.ConnectError("Connection refused")


class Events(list[tuple[str, str]]):
    def __call__(self, kind: str, message: str) -> None:
        self.append((kind, message))

    @property
    def kinds(self) -> list[str]:
        return [kind for kind, _ in self]


def remote(clock: FakeClock, events: Events | None = None, **kw: Any) -> JwksCache:
    return JwksCache(JWKS_URI, clock=clock, on_event=events, **kw)


def rotated() -> dict[str, Any]:
    """k1 gone, k2 in its place."""
    return make_jwks(jwk_of(rsa_key("b"), "k2"))


# ------------------------------------------------------------------ staleness (pure)


@pytest.mark.parametrize(
    ("failing_since", "now", "expected"),
    [
        (None, 5000, None),  # no failure: never stale, however old
        (1100, 1500, None),  # failed within the TTL (an unknown-kid probe): not stale yet
        (1100, 1600, (0, 900)),  # ... stale from the TTL's end
        (1100, 1700, (100, 800)),
        (1800, 1700, None),  # TTL over, no failed fetch yet: not stale, a refresh is due
        (1800, 1800, (0, 900)),  # stale from the first failure after the TTL
        (1800, 2699, (899, 1)),
        (1800, 2700, (900, 0)),  # no longer served
        (1800, 9000, (7200, 0)),
    ],
)
def test_staleness_counts_from_the_later_of_ttl_end_and_first_failure(
    failing_since: float | None, now: float, expected: tuple[float, float] | None
) -> None:
    stale = staleness(
        source="s",
        fetched_at=1000,
        ttl=600,
        failing_since=failing_since,
        max_stale=900,
        now=now,
        problem="unreachable",
    )
    if expected is None:
        assert stale is None
        return
    assert stale is not None
    assert (stale.stale_for, stale.remaining) == expected
    assert stale.served == (expected[1] > 0)


def test_the_stale_note_says_for_how_long_more() -> None:
    stale = staleness(
        source=JWKS_URI, fetched_at=0, ttl=600, failing_since=600, max_stale=900, now=642.5
    )
    assert stale is not None
    note = stale.note()
    assert note.startswith(f"stale key set: the JWKS at {JWKS_URI} is failing")
    assert "served stale for 42s and is served for 14m18s more" in note
    assert "jwks_max_stale_seconds = 900" in note and "503 jwks_unavailable" in note


# ------------------------------------------------------------------ key-set versions


async def test_the_version_moves_only_when_the_keys_change(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=JWKS_URI, json=default_jwks())
    httpx_mock.add_response(url=JWKS_URI, json=default_jwks())
    httpx_mock.add_response(url=JWKS_URI, json=rotated())
    clock, events = FakeClock(), Events()
    cache = remote(clock, events, ttl=600)
    assert cache.key_set_version() is None  # nothing held yet
    await cache.get_key("k1", "RS256")
    first = cache.key_set_version()
    assert first is not None
    clock.advance(600)
    assert cache.key_set_version() is None  # past the TTL: a refresh is due
    await cache.get_key("k1", "RS256")  # the same keys again
    assert cache.key_set_version() == first
    assert events == []
    clock.advance(600)
    await cache.get_key("k2", "RS256")  # k1 removed, k2 added
    assert cache.key_set_version() not in (None, first)
    assert events.kinds == ["jwks_changed"]
    assert "removed k1; added k2" in events[0][1]
    await cache.aclose()


async def test_invalidate_moves_the_version() -> None:
    cache = JwksCache(default_jwks(), clock=FakeClock())
    await cache.get_key("k1", "RS256")
    before = cache.key_set_version()
    cache.invalidate()
    await cache.get_key("k1", "RS256")
    assert cache.key_set_version() not in (None, before)


async def test_verified_tokens_are_forgotten_when_a_refetch_drops_their_key(
    httpx_mock: HTTPXMock,
) -> None:
    both = make_jwks(jwk_of(rsa_key(), "k1"), jwk_of(rsa_key("b"), "k2"))
    httpx_mock.add_response(url=JWKS_URI, json=both)
    httpx_mock.add_response(url=JWKS_URI, json=rotated(), is_reusable=True)
    clock = FakeClock()
    cache = remote(clock, ttl=600, refetch_interval=0)
    verifier = CachingVerifier(JwksVerifier(make_cred(), cache), keys=cache)
    old = make_token(rsa_key(), kid="k1")
    assert (await verifier.verify(old, NOW)).ok
    assert (await verifier.verify(old, NOW)).ok and len(verifier) == 1
    # An unknown kid makes the cache refetch: k1 is gone from the new key set.
    assert (await verifier.verify(make_token(rsa_key("c"), kid="k3"), NOW)).reason == (
        "key_not_found"
    )
    refused = await verifier.verify(old, NOW)
    assert refused.reason == "key_not_found"
    assert "the JWKS has no key with kid 'k1'" in refused.message
    await cache.aclose()


async def test_without_a_key_source_the_cache_keeps_its_max_age() -> None:
    cache = JwksCache(default_jwks(), clock=FakeClock())
    verifier = CachingVerifier(JwksVerifier(make_cred(), cache), max_age=10)
    token = make_token(rsa_key())
    assert (await verifier.verify(token, NOW)).ok
    assert len(verifier) == 1


# ------------------------------------------------------------------ stale key sets


async def test_a_stale_key_set_is_served_with_a_warning_then_refused(
    httpx_mock: HTTPXMock,
) -> None:
    httpx_mock.add_response(url=JWKS_URI, json=default_jwks())
    httpx_mock.add_exception(DOWN, url=JWKS_URI, is_reusable=True)
    clock, events = FakeClock(), Events()
    cache = remote(clock, events, ttl=600, refetch_interval=30, max_stale=900)
    token = make_token(rsa_key())
    assert (await verify(token, jwks=cache)).ok
    assert cache.status().stale is None

    clock.advance(600)  # the TTL ends; the refresh fails: stale from now
    ver = await verify(token, jwks=cache)
    assert ver.ok
    (warning,) = ver.warnings
    assert warning.startswith(f"stale key set: the JWKS at {JWKS_URI} is failing (unreachable")
    assert "is served for 15m00s more (jwks_max_stale_seconds = 900)" in warning
    key_step = next(s for s in ver.steps if s.name == "key")
    assert key_step.status == "passed" and "stale key set" in key_step.detail
    assert events.kinds == ["jwks_stale"]
    stale = cache.status().stale
    assert stale is not None and stale.served and stale.remaining == 900

    clock.advance(899)
    assert (await verify(token, jwks=cache)).ok
    assert events.kinds == ["jwks_stale"]  # said once per outage

    clock.advance(1)  # jwks_max_stale_seconds reached
    ver = await verify(token, jwks=cache)
    assert ver.reason == "jwks_unavailable" and ver.unavailable
    assert "the last good key set, stale for 15m00s, is no longer served" in ver.message
    assert "jwks_max_stale_seconds = 900" in ver.message
    assert "raise jwks_max_stale_seconds" in ver.hint
    assert events.kinds == ["jwks_stale", "jwks_unavailable"]
    status = cache.status()
    assert status.stale is not None and not status.stale.served
    # Refreshes are still tried, once per refetch interval, not per request.
    fetches = len(httpx_mock.get_requests())
    assert (await verify(token, jwks=cache)).reason == "jwks_unavailable"
    assert len(httpx_mock.get_requests()) == fetches
    await cache.aclose()


async def test_the_first_good_fetch_ends_the_outage(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=JWKS_URI, json=default_jwks())
    httpx_mock.add_exception(DOWN, url=JWKS_URI)
    httpx_mock.add_exception(DOWN, url=JWKS_URI)
    httpx_mock.add_response(url=JWKS_URI, json=default_jwks())
    clock, events = FakeClock(), Events()
    cache = remote(clock, events, ttl=60, refetch_interval=10, max_stale=30)
    token = make_token(rsa_key())
    assert (await verify(token, jwks=cache)).ok
    clock.advance(60)
    assert (await verify(token, jwks=cache)).ok  # stale, served
    clock.advance(40)
    assert (await verify(token, jwks=cache)).reason == "jwks_unavailable"
    clock.advance(10)
    ver = await verify(token, jwks=cache)
    assert ver.ok and ver.warnings == ()
    assert events.kinds == ["jwks_stale", "jwks_unavailable", "jwks_recovered"]
    assert "fetched again after failing for 50s" in events[-1][1]
    assert cache.status().stale is None and cache.status().last_error is None
    await cache.aclose()


async def test_a_failed_probe_within_the_ttl_does_not_shorten_it(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=JWKS_URI, json=default_jwks())
    httpx_mock.add_exception(DOWN, url=JWKS_URI, is_reusable=True)
    clock = FakeClock()
    cache = remote(clock, ttl=600, refetch_interval=0, max_stale=60)
    await cache.get_key("k1", "RS256")
    clock.advance(10)
    assert (await verify(make_token(rsa_key("b"), kid="k9"), jwks=cache)).reason == (
        "key_not_found"
    )  # that refetch failed
    clock.advance(580)  # 590 s after the fetch: within the TTL, still fresh
    ver = await verify(make_token(rsa_key()), jwks=cache)
    assert ver.ok and ver.warnings == ()
    clock.advance(60)  # 650 s: stale for 50 s of the 60 allowed
    ver = await verify(make_token(rsa_key()), jwks=cache)
    assert ver.ok and ver.warnings
    clock.advance(10)
    assert (await verify(make_token(rsa_key()), jwks=cache)).reason == "jwks_unavailable"
    await cache.aclose()


async def test_verifications_with_a_stale_key_set_are_not_cached(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=JWKS_URI, json=default_jwks())
    httpx_mock.add_exception(DOWN, url=JWKS_URI, is_reusable=True)
    clock = FakeClock()
    cache = remote(clock, ttl=600, max_stale=900)
    verifier = CachingVerifier(JwksVerifier(make_cred(), cache), keys=cache)
    token = make_token(rsa_key())
    assert (await verifier.verify(token, NOW)).ok and len(verifier) == 1
    clock.advance(600)
    assert (await verifier.verify(token, NOW)).warnings  # re-verified: stale, warned
    assert len(verifier) == 0
    clock.advance(900)
    assert (await verifier.verify(token, NOW)).reason == "jwks_unavailable"
    await cache.aclose()


async def test_a_cold_cache_that_cannot_fetch_is_unavailable_at_once(
    httpx_mock: HTTPXMock,
) -> None:
    httpx_mock.add_exception(DOWN, url=JWKS_URI)
    events = Events()
    cache = remote(FakeClock(), events)
    with pytest.raises(JwksUnavailable):
        await cache.get_key("k1", "RS256")
    assert cache.status().stale is None
    assert events == []  # nothing stale is served: the 503s say it all
    await cache.aclose()


# ------------------------------------------------------------------ timings in place


async def test_configure_keeps_the_keys(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=JWKS_URI, json=default_jwks())
    httpx_mock.add_exception(DOWN, url=JWKS_URI, is_reusable=True)
    clock = FakeClock()
    cache = remote(clock, ttl=600)
    await cache.get_key("k1", "RS256")
    version = cache.key_set_version()
    cache.configure(ttl=60, refetch_interval=5, max_stale=120)
    assert cache.refetch_interval == 5
    assert cache.key_set_version() == version  # the keys are still the ones fetched
    clock.advance(60)  # the new TTL applies: the refresh fails, the keys are served stale
    assert (await cache.get_key("k1", "RS256")).key_id == "k1"
    stale = cache.staleness()
    assert stale is not None and stale.max_stale == 120
    await cache.aclose()


# ------------------------------------------------------------------ one shared fetch


async def test_waiters_on_a_cold_cache_are_released_together(httpx_mock: HTTPXMock) -> None:
    """100 requests on an empty cache wait for one fetch, and all resume in the loop turn
    after it ends (a lock releases them one turn at a time)."""
    answer = asyncio.Event()

    async def slow_jwks(request: httpx.Request) -> httpx.Response:
        await answer.wait()
        return httpx.Response(200, json=default_jwks())

    httpx_mock.add_callback(slow_jwks, url=JWKS_URI)
    cache = remote(FakeClock())
    waiters = [asyncio.ensure_future(cache.get_key("k1", "RS256")) for _ in range(100)]
    while not httpx_mock.get_requests():
        await asyncio.sleep(0)
    answer.set()
    turns = 0
    while not all(w.done() for w in waiters):
        await asyncio.sleep(0)
        turns += 1
    assert turns <= 10, f"the last waiter resumed {turns} loop turns after the fetch"
    assert {w.result().key_id for w in waiters} == {"k1"}
    assert len(httpx_mock.get_requests()) == 1
    await cache.aclose()


async def test_a_waiter_that_goes_away_does_not_cancel_the_fetch(httpx_mock: HTTPXMock) -> None:
    answer = asyncio.Event()

    async def slow_jwks(request: httpx.Request) -> httpx.Response:
        await answer.wait()
        return httpx.Response(200, json=default_jwks())

    httpx_mock.add_callback(slow_jwks, url=JWKS_URI)
    cache = remote(FakeClock())
    first = asyncio.ensure_future(cache.get_key("k1", "RS256"))
    second = asyncio.ensure_future(cache.get_key("k1", "RS256"))
    while not httpx_mock.get_requests():
        await asyncio.sleep(0)
    first.cancel()
    answer.set()
    assert (await second).key_id == "k1"
    assert first.cancelled()
    await cache.aclose()


async def test_caches_share_their_http_clients(httpx_mock: HTTPXMock) -> None:
    other = "https://other.example.auth0.com/.well-known/jwks.json"
    httpx_mock.add_response(url=JWKS_URI, json=default_jwks())
    httpx_mock.add_response(url=other, json=default_jwks())
    clients = JwksClients()
    made: list[httpx.AsyncClient] = []
    original = clients.client_for

    async def recording(url: str) -> httpx.AsyncClient:
        client = await original(url)
        made.append(client)
        return client

    clients.client_for = recording  # type: ignore[method-assign]
    first = JwksCache(JWKS_URI, clients=clients)
    second = JwksCache(other, clients=clients)
    await first.get_key("k1", "RS256")
    await second.get_key("k1", "RS256")
    await first.aclose()
    await second.aclose()
    assert made[0] is made[1]
    assert not made[0].is_closed  # the owner closes shared clients, not each cache
    await clients.aclose()
    assert made[0].is_closed


async def test_the_http_client_is_made_off_the_event_loop(
    httpx_mock: HTTPXMock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loading the trust store takes 50-150 ms: it happens in a worker thread, once."""
    import rrdev.clients.jwks

    threads: list[threading.Thread] = []
    real = rrdev.clients.jwks._new_client

    def recording(trust_env: bool) -> httpx.AsyncClient:
        threads.append(threading.current_thread())
        return real(trust_env)

    monkeypatch.setattr(rrdev.clients.jwks, "_new_client", recording)
    httpx_mock.add_response(url=JWKS_URI, json=default_jwks(), is_reusable=True)
    clients = JwksClients()
    for _ in range(3):
        cache = JwksCache(JWKS_URI, clients=clients)
        await cache.get_key("k1", "RS256")
        await cache.aclose()
    await clients.aclose()
    assert len(threads) == 1
    assert threads[0] is not threading.main_thread()


# ------------------------------------------------------------------ the profile key

PROFILE = f"""\
[proxy_credential]
jwks_uri = "{JWKS_URI}"
issuer = "{ISSUER}"
audience = "{AUDIENCE}"
"""


def test_jwks_max_stale_seconds_defaults_to_fifteen_minutes() -> None:
    assert parse_profile(PROFILE, "p.toml").proxy_credential.jwks_max_stale_seconds == 900
    text = PROFILE + "jwks_max_stale_seconds = 120.5\n"
    assert parse_profile(text, "p.toml").proxy_credential.jwks_max_stale_seconds == 120.5


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("0", "must be a finite number greater than 0, got 0"),
        ("-5", "must be a finite number greater than 0, got -5"),
        ("86401", "must be at most 86400 (a day), got 86401"),
        ('"1h"', "expected a number, got a string"),
    ],
)
def test_jwks_max_stale_seconds_is_validated(value: str, message: str) -> None:
    text = PROFILE + f"jwks_max_stale_seconds = {value}\n"
    with pytest.raises(ProfileError) as caught:
        parse_profile(text, "p.toml")
    error = caught.value
    assert (error.file, error.line, error.key) == (
        "p.toml",
        5,
        "proxy_credential.jwks_max_stale_seconds",
    )
    assert message in error.detail


def test_validate_reports_a_bad_jwks_max_stale_seconds(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rrdev.cli.app import app

    monkeypatch.chdir(tmp_path)
    (tmp_path / "p.toml").write_text(PROFILE + "jwks_max_stale_seconds = 0\n")
    result = CliRunner().invoke(app, ["validate", "p.toml"])
    assert result.exit_code == 3
    assert "p.toml:5" in result.output
    assert "proxy_credential.jwks_max_stale_seconds" in result.output


def test_explain_says_why_it_has_no_stale_key_set(tmp_path: Path) -> None:
    """A one-shot explain cannot serve stale keys: it says so next to the 503 (exit 4)."""
    from rrdev.cli.app import app

    dead = "http://127.0.0.1:9/.well-known/jwks.json"  # the discard port: refused
    profile = tmp_path / "p.toml"
    profile.write_text(PROFILE.replace(JWKS_URI, dead) + "jwks_max_stale_seconds = 120\n")
    token = make_token(rsa_key())
    result = CliRunner().invoke(app, ["explain", token, "-p", str(profile)])
    assert result.exit_code == 4
    assert "503 jwks_unavailable" in result.stdout
    assert "jwks_max_stale_seconds (120s)" in result.stderr
