"""OIDC discovery: a profile with ``issuer`` and no ``jwks_uri`` finds its JWKS through
``{issuer}/.well-known/openid-configuration`` (served here through pytest-httpx), cached
like the JWKS, refused when it names another issuer or a non-https ``jwks_uri``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from factories import (
    AUDIENCE,
    ISSUER,
    JWKS_URI,
    FakeClock,
    default_jwks,
    make_cred,
    make_token,
    rsa_key,
    verify,
)
from pytest_httpx import HTTPXMock
from typer.testing import CliRunner

from rrdev.cli.app import app
from rrdev.clients.jwks import JwksCache
from rrdev.core.errors import ProfileError
from rrdev.core.oidc import DiscoverySource, discovery_url, jwks_source_of
from rrdev.core.profile import load_profile

DISCOVERY_URL = "https://tenant.example.auth0.com/.well-known/openid-configuration"


def document(**overrides: Any) -> dict[str, Any]:
    return {"issuer": ISSUER, "jwks_uri": JWKS_URI, **overrides}


def discovered(clock: FakeClock, **kw: Any) -> JwksCache:
    return JwksCache(DiscoverySource(ISSUER, kw.pop("discovery_ttl", 3600)), clock=clock, **kw)


def urls(httpx_mock: HTTPXMock) -> list[str]:
    return [str(r.url) for r in httpx_mock.get_requests()]


# ------------------------------------------------------------------ the source


def test_discovery_url_drops_the_trailing_slash() -> None:
    assert discovery_url(ISSUER) == DISCOVERY_URL
    assert discovery_url("https://x.okta.com/oauth2/default") == (
        "https://x.okta.com/oauth2/default/.well-known/openid-configuration"
    )


def test_jwks_uri_wins_over_discovery() -> None:
    assert jwks_source_of(make_cred()) == JWKS_URI
    source = jwks_source_of(make_cred(jwks_uri=None, discovery_ttl_seconds=60))
    assert source == DiscoverySource(ISSUER, 60)


# ------------------------------------------------------------------ fetching and caching


async def test_discovery_finds_the_jwks_and_the_token_verifies(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=DISCOVERY_URL, json=document())
    httpx_mock.add_response(url=JWKS_URI, json=default_jwks())
    cache = discovered(FakeClock())
    ver = await verify(make_token(rsa_key()), make_cred(jwks_uri=None), cache)
    assert ver.ok, ver.message
    assert urls(httpx_mock) == [DISCOVERY_URL, JWKS_URI]
    assert cache.source == f"{JWKS_URI} (discovered from {DISCOVERY_URL})"
    await cache.aclose()


async def test_the_document_is_cached_for_its_own_ttl(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=DISCOVERY_URL, json=document(), is_reusable=True)
    httpx_mock.add_response(url=JWKS_URI, json=default_jwks(), is_reusable=True)
    clock = FakeClock()
    cache = discovered(clock, ttl=600, discovery_ttl=3600)
    token, cred = make_token(rsa_key()), make_cred(jwks_uri=None)
    assert (await verify(token, cred, cache)).ok
    assert (await verify(token, cred, cache)).ok  # second call: nothing fetched
    assert urls(httpx_mock) == [DISCOVERY_URL, JWKS_URI]
    clock.advance(600)  # the JWKS's TTL, not the document's: only the keys again
    assert (await verify(token, cred, cache)).ok
    assert urls(httpx_mock) == [DISCOVERY_URL, JWKS_URI, JWKS_URI]
    clock.advance(3000)  # now the document's too
    assert (await verify(token, cred, cache)).ok
    assert urls(httpx_mock)[-2:] == [DISCOVERY_URL, JWKS_URI]
    await cache.aclose()


async def test_a_document_naming_another_issuer_is_refused(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=DISCOVERY_URL, json=document(issuer="https://evil.example/"))
    cache = discovered(FakeClock())
    ver = await verify(make_token(rsa_key()), make_cred(jwks_uri=None), cache)
    assert ver.unavailable and ver.reason == "discovery_issuer_mismatch"
    assert "'https://evil.example/'" in ver.message and repr(ISSUER) in ver.message
    assert urls(httpx_mock) == [DISCOVERY_URL]  # its jwks_uri was never fetched
    await cache.aclose()


async def test_a_trailing_slash_difference_is_a_mismatch_and_said_so(
    httpx_mock: HTTPXMock,
) -> None:
    httpx_mock.add_response(url=DISCOVERY_URL, json=document(issuer=ISSUER.rstrip("/")))
    cache = discovered(FakeClock())
    ver = await verify(make_token(rsa_key()), make_cred(jwks_uri=None), cache)
    assert ver.reason == "discovery_issuer_mismatch"
    assert "differ only by the trailing slash" in ver.message
    await cache.aclose()


@pytest.mark.parametrize(
    ("answer", "problem"),
    [
        ({"status_code": 404, "json": {"error": "nope"}}, "it answered HTTP 404"),
        ({"content": b"<html>not json</html>"}, "the response is not JSON"),
        ({"json": ["a", "list"]}, "the document is not a JSON object"),
        ({"json": {"issuer": ISSUER}}, 'the document has no "jwks_uri" string'),
        ({"json": {"jwks_uri": JWKS_URI}}, 'the document has no "issuer" string'),
    ],
)
async def test_an_unusable_document_is_503_discovery_unavailable(
    httpx_mock: HTTPXMock, answer: dict[str, Any], problem: str
) -> None:
    httpx_mock.add_response(url=DISCOVERY_URL, **answer)
    cache = discovered(FakeClock())
    ver = await verify(make_token(rsa_key()), make_cred(jwks_uri=None), cache)
    assert ver.unavailable and ver.reason == "discovery_unavailable"
    assert problem in ver.message and DISCOVERY_URL in ver.message
    assert DISCOVERY_URL in ver.hint  # the hint names the URL to check
    await cache.aclose()


@pytest.mark.parametrize(
    "jwks_uri",
    [
        "http://tenant.example.auth0.com/.well-known/jwks.json",
        "ftp://tenant.example.auth0.com/jwks.json",
        "https://user:pw@tenant.example.auth0.com/jwks.json",
        "/etc/passwd",
    ],
)
async def test_a_jwks_uri_that_is_not_https_is_refused(
    httpx_mock: HTTPXMock, jwks_uri: str
) -> None:
    httpx_mock.add_response(url=DISCOVERY_URL, json=document(jwks_uri=jwks_uri))
    cache = discovered(FakeClock())
    ver = await verify(make_token(rsa_key()), make_cred(jwks_uri=None), cache)
    assert ver.reason == "discovery_unavailable"
    assert "is refused" in ver.message
    assert urls(httpx_mock) == [DISCOVERY_URL]
    await cache.aclose()


async def test_a_stale_document_is_used_within_max_stale_then_refused(
    httpx_mock: HTTPXMock,
) -> None:
    httpx_mock.add_response(url=DISCOVERY_URL, json=document())
    httpx_mock.add_response(url=JWKS_URI, json=default_jwks())
    clock = FakeClock()
    cache = discovered(clock, ttl=600, discovery_ttl=600, max_stale=900)
    token, cred = make_token(rsa_key()), make_cred(jwks_uri=None)
    assert (await verify(token, cred, cache)).ok

    clock.advance(600)  # both expired; discovery fails, the JWKS still answers
    httpx_mock.add_response(url=DISCOVERY_URL, status_code=500)
    httpx_mock.add_response(url=JWKS_URI, json=default_jwks())
    assert (await verify(token, cred, cache)).ok  # the last good jwks_uri is used

    # Past max_stale for the document: it is no longer used, so the keys cannot be
    # refreshed; the keys fetched with it follow the JWKS's own stale rules.
    clock.advance(1000)
    httpx_mock.add_response(url=DISCOVERY_URL, status_code=500)
    ver = await verify(token, cred, cache)
    assert ver.ok and "stale key set" in ver.warnings[0]
    clock.advance(901)
    httpx_mock.add_response(url=DISCOVERY_URL, status_code=500)
    ver = await verify(token, cred, cache)
    assert ver.unavailable and ver.reason == "discovery_unavailable"
    assert "the last good document, stale for" in ver.message
    assert "is no longer served" in ver.message
    assert [u for u in urls(httpx_mock) if u == JWKS_URI] == [JWKS_URI, JWKS_URI]
    await cache.aclose()


# ------------------------------------------------------------------ profiles


def discovery_profile(tmp_path: Path, credential: str) -> Path:
    path = tmp_path / "rrdev.toml"
    path.write_text(
        '[target]\nbase_url = "http://127.0.0.1:9000"\n\n'
        f'[proxy_credential]\naudience = "{AUDIENCE}"\n{credential}\n'
    )
    return path


def test_a_profile_with_an_issuer_and_no_jwks_uri_loads(tmp_path: Path) -> None:
    prof = load_profile(discovery_profile(tmp_path, f'issuer = "{ISSUER}"'))
    cred = prof.proxy_credential
    assert cred.jwks_uri is None and cred.discovery_ttl_seconds == 3600
    path = discovery_profile(tmp_path, f'issuer = "{ISSUER}"\ndiscovery_ttl_seconds = 60')
    assert load_profile(path).proxy_credential.discovery_ttl_seconds == 60


@pytest.mark.parametrize(
    ("credential", "line", "words"),
    [
        ('issuer = "https://login.microsoftonline.com/{tenantid}/v2.0"', 6, "template"),
        ('issuer = ["https://a.example/", "https://b.example/"]', 6, "lists 2 issuers"),
        ('issuer = "http://tenant.example.com/"', 6, "plain http"),
        ('issuer = "https://t.example/?x=1"', 6, "?query"),
        ("", 4, "or an 'issuer' to discover it from"),
        (f'issuer = "{ISSUER}"\ndiscovery_ttl_seconds = 0', 7, "between 1 and 86400"),
    ],
)
def test_discovery_needs_one_concrete_https_issuer(
    tmp_path: Path, credential: str, line: int, words: str
) -> None:
    with pytest.raises(ProfileError) as caught:
        load_profile(discovery_profile(tmp_path, credential))
    assert caught.value.line == line
    assert words in str(caught.value)


def test_validate_says_discovery_will_be_used(tmp_path: Path) -> None:
    path = discovery_profile(tmp_path, f'issuer = "{ISSUER}"')
    result = CliRunner(env={"COLUMNS": "400"}).invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert f"jwks_uri: discovered from {DISCOVERY_URL}" in result.output


def test_validate_refuses_a_template_issuer_without_jwks_uri(tmp_path: Path) -> None:
    credential = 'issuer = "https://login.microsoftonline.com/{tenantid}/v2.0"'
    result = CliRunner(env={"COLUMNS": "400"}).invoke(
        app, ["validate", str(discovery_profile(tmp_path, credential))]
    )
    assert result.exit_code == 3
    assert "rrdev.toml:6: proxy_credential.issuer" in result.output
    assert "discovery needs one concrete issuer" in result.output


def test_explain_discovers_the_jwks(httpx_mock: HTTPXMock, tmp_path: Path) -> None:
    httpx_mock.add_response(url=DISCOVERY_URL, json=document())
    httpx_mock.add_response(url=JWKS_URI, json=default_jwks())
    path = discovery_profile(tmp_path, f'issuer = "{ISSUER}"')
    token = make_token(rsa_key())
    result = CliRunner(env={"COLUMNS": "400"}).invoke(
        app, ["explain", "-p", str(path), "--at", "2027-01-15T08:00:00Z", token, "--json"]
    )
    assert result.exit_code == 0, result.output
    assert urls(httpx_mock) == [DISCOVERY_URL, JWKS_URI]


def test_explain_reports_a_mismatch_as_503(httpx_mock: HTTPXMock, tmp_path: Path) -> None:
    httpx_mock.add_response(url=DISCOVERY_URL, json=document(issuer="https://evil.example/"))
    path = discovery_profile(tmp_path, f'issuer = "{ISSUER}"')
    result = CliRunner(env={"COLUMNS": "400"}).invoke(
        app, ["explain", "-p", str(path), make_token(rsa_key())]
    )
    assert result.exit_code == 4
    assert "discovery_issuer_mismatch" in result.output


def test_check_online_discovers_the_jwks(
    httpx_mock: HTTPXMock, tmp_path: Path, keyset: Path
) -> None:
    from rrdev.core.keyset import Keyset

    httpx_mock.add_response(url=DISCOVERY_URL, json=document())
    httpx_mock.add_response(url=JWKS_URI, json=Keyset.load_or_create().jwks())
    path = discovery_profile(tmp_path, f'issuer = "{ISSUER}"')
    with path.open("a") as profile:
        profile.write(
            '\n[[checks]]\nname = "a minted token verifies"\ntoken = { mint = {} }\n'
            'expect = "allowed"\n'
        )
    result = CliRunner(env={"COLUMNS": "400"}).invoke(app, ["check", str(path)])
    assert result.exit_code == 0, result.output
    assert "1 check: 1 passed, 0 failed" in result.output
    assert urls(httpx_mock) == [DISCOVERY_URL, JWKS_URI]
