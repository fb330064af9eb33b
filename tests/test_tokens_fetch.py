"""Client-credentials fetch (rrdev.core.tokens): Auth0 and generic OAuth2 token endpoints
mocked with pytest-httpx, every refusal and every kind of garbage, the secret never
shown; `rrdev token fetch`/`clear` and `explain --auth` through Typer's CliRunner; and
the same against the local issuer's /oauth/token over a real socket.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, quote_plus

import httpx
import pytest
from typer.testing import CliRunner

from rrdev.cli.app import app
from rrdev.clients.caller import caller_token, fetch_caller_token
from rrdev.clients.oauth2 import (
    FetchedToken,
    TokenFetchError,
    token_request,
)
from rrdev.clients.token_cache import TokenCache
from rrdev.clients.token_fetch import fetch_token
from rrdev.core.errors import EnvVarError, ProfileError
from rrdev.core.keyset import Keyset, mint_token
from rrdev.core.model import OAuth2Client, Secret
from rrdev.core.profile import load_profile

SECRET = "MARKER-s3cr3t-Value+/=:&x"  # characters that need encoding, and a marker
CLIENT_ID = "Zx8Qm2LkP0aB7cD9eF1gH3iJ5kL6mN4o"
AUDIENCE = "https://api.myapp.com"
ISSUER = "https://tenant.example.auth0.com/"
DOMAIN = "tenant.example.auth0.com"
AUTH0_URL = f"https://{DOMAIN}/oauth/token"
OKTA_URL = "https://dev-1.okta.com/oauth2/default/v1/token"
NOW = 1_800_000_000.0


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RR_CLIENT_ID", CLIENT_ID)
    monkeypatch.setenv("RR_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("RRDEV_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("RRDEV_PROFILE", raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


def auth0(**overrides: Any) -> OAuth2Client:
    fields: dict[str, Any] = {
        "domain": DOMAIN,
        "client_id": Secret("${RR_CLIENT_ID}", key="auth.client_id"),
        "client_secret": Secret("${RR_CLIENT_SECRET}", key="auth.client_secret"),
        "audience": AUDIENCE,
    }
    fields.update(overrides)
    return OAuth2Client(**fields)


def generic(**overrides: Any) -> OAuth2Client:
    return auth0(**{"domain": None, "token_url": OKTA_URL, "audience": None, **overrides})


def jwt_like(**claims: Any) -> str:
    """A JWT-shaped token (not verified by fetch_token)."""

    def seg(value: Any) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    payload = {"iss": ISSUER, "aud": AUDIENCE, "exp": int(NOW) + 86400, **claims}
    return f"{seg({'alg': 'RS256', 'typ': 'JWT'})}.{seg(payload)}.c2ln"


TOKEN = jwt_like(scope="read:products")


def ok_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "access_token": TOKEN,
        "token_type": "Bearer",
        "expires_in": 86400,
        "scope": "read:products",
    }
    body.update(overrides)
    return {k: v for k, v in body.items() if v is not None}


def form(request: httpx.Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(request.content.decode(), strict_parsing=True).items()}


def shown(exc: BaseException) -> str:
    """Everything an error could ever show."""
    parts = [str(exc), repr(exc), getattr(exc, "hint", ""), str(vars(exc))]
    return "\n".join(parts)


def cached_files(tmp_path: Path) -> list[Path]:
    directory = tmp_path / "cache" / "tokens"
    return sorted(directory.iterdir()) if directory.exists() else []


# ------------------------------------------------------------------ the requests


async def test_auth0_posts_json_to_the_domain_with_https(httpx_mock: Any) -> None:
    httpx_mock.add_response(url=AUTH0_URL, method="POST", json=ok_body())
    token = await fetch_token(auth0(scope="read:products"), now=NOW)
    request = httpx_mock.get_request()
    assert request.headers["content-type"] == "application/json"
    assert request.headers["accept"] == "application/json"
    assert "authorization" not in request.headers
    assert json.loads(request.content) == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "audience": AUDIENCE,
        "scope": "read:products",
    }
    assert token.access_token == TOKEN
    assert token.token_type == "Bearer"
    assert token.expires_at == NOW + 86400
    assert token.obtained_at == NOW
    assert token.scope == "read:products"
    assert token.raw == {"token_type": "Bearer", "expires_in": 86400, "scope": "read:products"}
    assert token.from_cache is False
    assert TOKEN not in repr(token)


@pytest.mark.parametrize(
    ("domain", "url"),
    [
        (DOMAIN, AUTH0_URL),
        (f"https://{DOMAIN}/", AUTH0_URL),
        ("http://127.0.0.1:8788", "http://127.0.0.1:8788/oauth/token"),
        (f"https://{DOMAIN}/oauth/token", AUTH0_URL),
    ],
)
def test_auth0_token_url_from_domain(domain: str, url: str) -> None:
    assert token_request(auth0(domain=domain)).url == url


async def test_generic_client_secret_post_is_a_form(httpx_mock: Any) -> None:
    httpx_mock.add_response(url=OKTA_URL, json=ok_body(access_token="opaque-okta-token"))
    client = generic(scope="api:read", resource="https://api.example.com", audience="api://x")
    token = await fetch_token(client, now=NOW)
    request = httpx_mock.get_request()
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert "authorization" not in request.headers
    assert form(request) == {
        "grant_type": "client_credentials",
        "client_id": CLIENT_ID,
        "client_secret": SECRET,
        "audience": "api://x",
        "resource": "https://api.example.com",
        "scope": "api:read",
    }
    assert token.access_token == "opaque-okta-token"  # opaque is fine outside Auth0


async def test_generic_client_secret_basic_sends_the_secret_only_in_the_header(
    httpx_mock: Any,
) -> None:
    httpx_mock.add_response(url=OKTA_URL, json=ok_body())
    await fetch_token(generic(client_auth="client_secret_basic", scope="api:read"), now=NOW)
    request = httpx_mock.get_request()
    scheme, _, value = request.headers["authorization"].partition(" ")
    assert scheme == "Basic"
    # RFC 6749 §2.3.1: each half form-encoded before Basic encoding.
    decoded = base64.b64decode(value).decode()
    assert decoded == f"{CLIENT_ID}:MARKER-s3cr3t-Value%2B%2F%3D%3A%26x"
    assert form(request) == {"grant_type": "client_credentials", "scope": "api:read"}
    assert SECRET.encode() not in request.content


async def test_auth0_client_secret_basic_keeps_the_json_body(httpx_mock: Any) -> None:
    httpx_mock.add_response(url=AUTH0_URL, json=ok_body())
    await fetch_token(auth0(client_auth="client_secret_basic"), now=NOW)
    request = httpx_mock.get_request()
    assert request.headers["authorization"].startswith("Basic ")
    assert json.loads(request.content) == {"grant_type": "client_credentials", "audience": AUDIENCE}


async def test_timeout_is_configurable(httpx_mock: Any) -> None:
    httpx_mock.add_response(url=AUTH0_URL, json=ok_body())
    await fetch_token(auth0(), now=NOW, timeout=2.5)
    assert httpx_mock.get_request().extensions["timeout"]["read"] == 2.5


async def test_outbound_calls_honour_the_proxy_environment(
    httpx_mock: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://corp-proxy.example:3128")
    httpx_mock.add_response(
        url=AUTH0_URL, proxy_url="http://corp-proxy.example:3128/", json=ok_body()
    )
    token = await fetch_token(auth0(), now=NOW)
    assert token.access_token == TOKEN


async def test_injected_client_is_used(httpx_mock: Any) -> None:
    httpx_mock.add_response(url=AUTH0_URL, json=ok_body())
    async with httpx.AsyncClient(headers={"X-Injected": "yes"}) as http:
        await fetch_token(auth0(), http=http, now=NOW)
    assert httpx_mock.get_request().headers["x-injected"] == "yes"


def test_unset_secret_is_an_env_var_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RR_CLIENT_SECRET")
    with pytest.raises(EnvVarError) as caught:
        token_request(auth0())
    assert "RR_CLIENT_SECRET" in str(caught.value) and caught.value.exit_code == 3


def test_request_repr_and_cache_key_hold_no_secret() -> None:
    request = token_request(generic(client_auth="client_secret_basic"))
    assert SECRET not in repr(request)
    assert "MARKER" not in repr(request) and "Basic" not in repr(request)
    assert SECRET not in request.cache_key and CLIENT_ID not in request.cache_key
    assert request.env_refs == ("RR_CLIENT_ID", "RR_CLIENT_SECRET")


def test_cache_key_depends_on_url_client_audience_and_scope() -> None:
    base = token_request(auth0()).cache_key
    assert token_request(auth0()).cache_key == base
    others = [
        auth0(domain="other.auth0.com"),
        auth0(audience="https://other"),
        auth0(scope="read:x"),
        auth0(client_id=Secret("another-client")),
    ]
    assert all(token_request(c).cache_key != base for c in others)
    assert token_request(auth0(client_secret=Secret("rotated-secret"))).cache_key == base


# ------------------------------------------------------------------ provider refusals


REFUSALS = [
    pytest.param(
        403,
        {
            "error": "access_denied",
            "error_description": f'Client is not authorized to access "{AUDIENCE}". You need '
            'to create a "client-grant" associated to this API.',
        },
        ["access_denied", "Client is not authorized"],
        "Machine To Machine Applications",
        id="not-authorised-for-the-api",
    ),
    pytest.param(
        403,
        {"error": "access_denied", "error_description": "Service not found: https://api.typo"},
        ["Service not found: https://api.typo"],
        "Identifier",
        id="unknown-audience",
    ),
    pytest.param(
        401,
        {"error": "access_denied", "error_description": "Unauthorized"},
        ["401", "Unauthorized"],
        "${RR_CLIENT_SECRET}",
        id="auth0-wrong-secret",
    ),
    pytest.param(
        401,
        {"error": "invalid_client", "error_description": "Invalid client secret"},
        ["invalid_client", "Invalid client secret"],
        "client_id/client_secret",
        id="invalid-client",
    ),
    pytest.param(
        403,
        {"error": "unauthorized_client", "error_description": "Grant type not allowed"},
        ["unauthorized_client"],
        "Grant Types",
        id="grant-not-enabled",
    ),
    pytest.param(
        403,
        {"error": "invalid_scope", "error_description": "scope delete:all is not valid"},
        ["invalid_scope"],
        "scope",
        id="invalid-scope",
    ),
    pytest.param(
        429,
        {"error": "too_many_requests", "error_description": "Global limit has been reached"},
        ["429", "too_many_requests"],
        "rate-limiting",
        id="rate-limited",
    ),
    pytest.param(503, {"error": "temporarily_unavailable"}, ["503"], "try again", id="5xx"),
]


@pytest.mark.parametrize(("status", "body", "shows", "hint"), REFUSALS)
async def test_auth0_refusals_are_shown_as_sent_with_a_hint(
    httpx_mock: Any, tmp_path: Path, status: int, body: dict[str, Any], shows: list[str], hint: str
) -> None:
    httpx_mock.add_response(url=AUTH0_URL, status_code=status, json=body)
    with pytest.raises(TokenFetchError) as caught:
        await fetch_token(auth0(), cache=TokenCache(), now=NOW)
    error = caught.value
    assert error.exit_code == 4
    assert error.status == status
    assert AUTH0_URL in error.message
    for text in shows:
        assert text in error.message
    assert hint in error.hint
    assert SECRET not in shown(error)
    assert cached_files(tmp_path) == []


async def test_invalid_client_on_a_generic_server_suggests_the_other_client_auth(
    httpx_mock: Any,
) -> None:
    httpx_mock.add_response(url=OKTA_URL, status_code=401, json={"error": "invalid_client"})
    with pytest.raises(TokenFetchError) as caught:
        await fetch_token(generic(), now=NOW)
    assert "client_auth = 'client_secret_basic'" in caught.value.hint
    assert caught.value.error == "invalid_client"


async def test_entra_id_error_suggests_dot_default_scope(httpx_mock: Any) -> None:
    description = "AADSTS1002012: The provided value for scope api://x is not valid."
    httpx_mock.add_response(
        url=OKTA_URL,
        status_code=400,
        json={"error": "invalid_scope", "error_description": description},
    )
    with pytest.raises(TokenFetchError) as caught:
        await fetch_token(generic(scope="api://x"), now=NOW)
    assert "AADSTS1002012" in caught.value.message
    assert "/.default" in caught.value.hint


async def test_provider_text_echoing_the_secret_is_scrubbed(httpx_mock: Any) -> None:
    httpx_mock.add_response(
        url=OKTA_URL,
        status_code=400,
        json={"error": "invalid_request", "error_description": f"bad client_secret={SECRET}"},
    )
    with pytest.raises(TokenFetchError) as caught:
        await fetch_token(generic(), now=NOW)
    assert SECRET not in shown(caught.value)
    assert "[redacted]" in caught.value.message


async def test_html_error_page_says_the_url_is_wrong(httpx_mock: Any) -> None:
    httpx_mock.add_response(
        url=AUTH0_URL, status_code=404, html="<html><body>Not Found</body></html>"
    )
    with pytest.raises(TokenFetchError) as caught:
        await fetch_token(auth0(), now=NOW)
    assert "HTML page" in caught.value.message
    assert "domain" in caught.value.hint


# ------------------------------------------------------------------ bad answers


GARBAGE = [
    pytest.param({"html": "<!doctype html><title>Login</title>"}, "HTML page", id="html-200"),
    pytest.param({"text": "{not json"}, "not JSON", id="invalid-json"),
    pytest.param({"json": ["a", "list"]}, "not an object", id="json-array"),
    pytest.param({"json": ok_body(access_token=None)}, "without an access_token", id="no-token"),
    pytest.param({"json": ok_body(access_token="")}, "without an access_token", id="empty-token"),
    pytest.param({"json": ok_body(expires_in=None)}, "without expires_in", id="no-expires-in"),
    pytest.param({"json": ok_body(expires_in="soon")}, "expires_in = 'soon'", id="word-expiry"),
    pytest.param({"json": ok_body(expires_in=-5)}, "not a positive", id="negative-expiry"),
    pytest.param(
        {"json": ok_body(expires_in=10**400)}, "cannot tell how long", id="expiry-past-float"
    ),
    pytest.param({"json": ok_body(access_token="a b")}, "whitespace", id="token-with-space"),
    pytest.param({"status_code": 302, "headers": {"Location": "https://x/"}}, "redirect", id="302"),
]


@pytest.mark.parametrize(("response", "problem"), GARBAGE)
async def test_garbage_answers_are_clear_errors_and_nothing_is_cached(
    httpx_mock: Any, tmp_path: Path, response: dict[str, Any], problem: str
) -> None:
    httpx_mock.add_response(url=AUTH0_URL, **response)
    with pytest.raises(TokenFetchError) as caught:
        await fetch_token(auth0(), cache=TokenCache(), now=NOW)
    assert problem in caught.value.message
    assert caught.value.exit_code == 4
    assert SECRET not in shown(caught.value)
    assert cached_files(tmp_path) == []


async def test_expires_in_as_a_string_is_accepted(httpx_mock: Any) -> None:
    # Entra ID's v1 endpoint sends "3599".
    httpx_mock.add_response(url=OKTA_URL, json=ok_body(expires_in="3599"))
    token = await fetch_token(generic(), now=NOW)
    assert token.expires_at == NOW + 3599


@pytest.mark.parametrize(
    ("exception", "problem"),
    [
        (httpx.ReadTimeout("timed out"), "did not answer within 10s"),
        (httpx.ConnectTimeout("timed out"), "did not answer within 10s"),
        (httpx.ConnectError("Name or service not known"), "cannot connect"),
        (httpx.RemoteProtocolError("peer closed connection"), "failed"),
    ],
)
async def test_network_failures(
    httpx_mock: Any, tmp_path: Path, exception: Exception, problem: str
) -> None:
    httpx_mock.add_exception(exception, url=AUTH0_URL)
    with pytest.raises(TokenFetchError) as caught:
        await fetch_token(auth0(), cache=TokenCache(), now=NOW)
    assert problem in caught.value.message
    assert caught.value.status is None
    assert cached_files(tmp_path) == []


async def test_auth0_opaque_token_says_set_audience(httpx_mock: Any) -> None:
    httpx_mock.add_response(url=AUTH0_URL, json=ok_body(access_token="v2.local.opaque-token"))
    with pytest.raises(TokenFetchError) as caught:
        await fetch_token(auth0(audience=None), now=NOW)
    assert "opaque" in caught.value.message
    assert "no audience was sent" in caught.value.hint and "set audience" in caught.value.hint


async def test_auth0_encrypted_token_is_named(httpx_mock: Any) -> None:
    httpx_mock.add_response(url=AUTH0_URL, json=ok_body(access_token="a.b.c.d.e"))
    with pytest.raises(TokenFetchError) as caught:
        await fetch_token(auth0(), now=NOW)
    assert "JWE" in caught.value.message


# ------------------------------------------------------------------ cache through fetch_token


async def test_second_fetch_is_served_from_the_cache(httpx_mock: Any, tmp_path: Path) -> None:
    httpx_mock.add_response(url=AUTH0_URL, json=ok_body())
    first = await fetch_token(auth0(), cache=TokenCache(), now=NOW)
    second = await fetch_token(auth0(), cache=TokenCache(), now=NOW + 3600)
    assert len(httpx_mock.get_requests()) == 1
    assert (first.from_cache, second.from_cache) == (False, True)
    assert second.access_token == TOKEN and second.expires_at == first.expires_at
    files = cached_files(tmp_path)
    assert len(files) == 1 and SECRET not in files[0].read_text()


async def test_cached_token_is_refetched_shortly_before_expiry(httpx_mock: Any) -> None:
    httpx_mock.add_response(url=AUTH0_URL, json=ok_body(), is_reusable=True)
    await fetch_token(auth0(), cache=TokenCache(), now=NOW)
    await fetch_token(auth0(), cache=TokenCache(), now=NOW + 86400 - 61)
    assert len(httpx_mock.get_requests()) == 1
    await fetch_token(auth0(), cache=TokenCache(), now=NOW + 86400 - 59)
    assert len(httpx_mock.get_requests()) == 2


# ------------------------------------------------------------------ caller_token


def write_profile(tmp_path: Path, auth: str, extra: str = "") -> Path:
    path = tmp_path / "rrdev.toml"
    path.write_text(
        "[target]\nbase_url = 'http://127.0.0.1:9'\n"
        "[proxy_credential]\n"
        f"jwks_uri = 'https://{DOMAIN}/.well-known/jwks.json'\n"
        f"issuer = '{ISSUER}'\naudience = '{AUDIENCE}'\n"
        "[[proxy.rules]]\neffect = 'allow'\n"
        f"{auth}\n{extra}"
    )
    return path


AUTH0_SECTION = (
    f"[auth]\ndomain = '{DOMAIN}'\nclient_id = '${{RR_CLIENT_ID}}'\n"
    f"client_secret = '${{RR_CLIENT_SECRET}}'\naudience = '{AUDIENCE}'\nscope = 'read:products'\n"
)


async def test_caller_token_fetches_once_then_uses_the_cache(
    httpx_mock: Any, tmp_path: Path
) -> None:
    httpx_mock.add_response(url=AUTH0_URL, json=ok_body())
    profile = load_profile(write_profile(tmp_path, AUTH0_SECTION))
    assert await caller_token(profile) == TOKEN
    assert await caller_token(profile) == TOKEN
    assert len(httpx_mock.get_requests()) == 1
    httpx_mock.add_response(url=AUTH0_URL, json=ok_body())
    assert await caller_token(profile, use_cache=False) == TOKEN
    assert len(httpx_mock.get_requests()) == 2


async def test_caller_token_without_auth_is_a_profile_error(tmp_path: Path) -> None:
    profile = load_profile(write_profile(tmp_path, ""))
    with pytest.raises(ProfileError) as caught:
        await caller_token(profile)
    assert "no [auth] section" in str(caught.value) and caught.value.exit_code == 3
    assert "[auth]" in caught.value.hint


async def test_caller_token_with_unset_secret_names_the_variable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("RR_CLIENT_SECRET")
    profile = load_profile(write_profile(tmp_path, AUTH0_SECTION))
    with pytest.raises(EnvVarError) as caught:
        await caller_token(profile)
    assert "RR_CLIENT_SECRET" in str(caught.value) and "auth.client_secret" in str(caught.value)


async def test_caller_token_endpoint_failure_is_a_token_fetch_error(
    httpx_mock: Any, tmp_path: Path
) -> None:
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=AUTH0_URL)
    profile = load_profile(write_profile(tmp_path, AUTH0_SECTION))
    with pytest.raises(TokenFetchError) as caught:
        await caller_token(profile)
    assert caught.value.exit_code == 4


async def test_static_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RR_STATIC", f"Bearer {TOKEN}")
    profile = load_profile(write_profile(tmp_path, "[auth]\ntoken = '${RR_STATIC}'\n"))
    fetched = await fetch_caller_token(profile)
    assert fetched.access_token == TOKEN
    assert fetched.expires_at == NOW + 86400 and fetched.scope == "read:products"


async def test_local_kind_takes_its_defaults_from_the_issuer_section(
    httpx_mock: Any, tmp_path: Path
) -> None:
    httpx_mock.add_response(url="http://127.0.0.1:8788/oauth/token", json=ok_body())
    issuer = (
        "[issuer]\n[[issuer.clients]]\nclient_id = 'local-reader'\n"
        "client_secret = '${RR_CLIENT_SECRET}'\n"
    )
    profile = load_profile(write_profile(tmp_path, "[auth]\nkind = 'local'\n", issuer))
    assert await caller_token(profile, use_cache=False) == TOKEN
    assert json.loads(httpx_mock.get_request().content) == {
        "grant_type": "client_credentials",
        "client_id": "local-reader",
        "client_secret": SECRET,
        "audience": AUDIENCE,
    }


# ------------------------------------------------------------------ the CLI


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def test_cli_fetch_prints_only_the_token_and_caches_it(
    httpx_mock: Any, runner: CliRunner, tmp_path: Path
) -> None:
    httpx_mock.add_response(url=AUTH0_URL, json=ok_body())
    profile = str(write_profile(tmp_path, AUTH0_SECTION))
    first = runner.invoke(app, ["token", "fetch", "-p", profile])
    assert first.exit_code == 0, first.output
    assert first.stdout == TOKEN + "\n"
    second = runner.invoke(app, ["token", "fetch", "--profile", profile])
    assert second.exit_code == 0 and second.stdout == TOKEN + "\n"
    assert len(httpx_mock.get_requests()) == 1  # the second came from the cache
    cleared = runner.invoke(app, ["token", "clear"])
    assert cleared.exit_code == 0
    assert "removed 1 cached token from" in cleared.stdout
    assert "no cached tokens" in runner.invoke(app, ["token", "clear"]).stdout


def test_cli_fetch_json_redacts_the_token_unless_asked(
    httpx_mock: Any, runner: CliRunner, tmp_path: Path
) -> None:
    httpx_mock.add_response(url=AUTH0_URL, json=ok_body())
    profile = str(write_profile(tmp_path, AUTH0_SECTION))
    result = runner.invoke(app, ["token", "fetch", "-p", profile, "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert TOKEN not in result.stdout
    assert doc["access_token"] == "[redacted]"
    assert doc["fingerprint"].startswith("sha256:")
    assert doc["token_url"] == AUTH0_URL and doc["kind"] == "auth0"
    assert doc["from_cache"] is False and doc["jwt"] is True
    assert doc["claims"]["aud"] == AUDIENCE and doc["claims"]["exp"] == int(NOW) + 86400
    assert doc["expires_in"] > 0 and doc["expires_at"].endswith("Z")
    assert doc["response"] == {
        "token_type": "Bearer",
        "expires_in": 86400,
        "scope": "read:products",
    }
    shown_token = runner.invoke(app, ["token", "fetch", "-p", profile, "--json", "--show-token"])
    doc = json.loads(shown_token.stdout)
    assert doc["access_token"] == TOKEN and doc["from_cache"] is True


def test_cli_no_cache_asks_every_time_and_stores_nothing(
    httpx_mock: Any, runner: CliRunner, tmp_path: Path
) -> None:
    httpx_mock.add_response(url=AUTH0_URL, json=ok_body(), is_reusable=True)
    profile = str(write_profile(tmp_path, AUTH0_SECTION))
    for _ in range(2):
        assert runner.invoke(app, ["token", "fetch", "-p", profile, "--no-cache"]).exit_code == 0
    assert len(httpx_mock.get_requests()) == 2
    assert cached_files(tmp_path) == []


def test_cli_provider_error_exit_4_with_hint_and_no_secret(
    httpx_mock: Any, runner: CliRunner, tmp_path: Path
) -> None:
    httpx_mock.add_response(
        url=AUTH0_URL,
        status_code=403,
        json={"error": "access_denied", "error_description": "Service not found: " + AUDIENCE},
    )
    profile = str(write_profile(tmp_path, AUTH0_SECTION))
    result = runner.invoke(app, ["token", "fetch", "-p", profile])
    assert result.exit_code == 4
    assert result.stdout == ""
    assert "Service not found" in result.stderr and "hint:" in result.stderr
    assert SECRET not in result.output
    assert "Traceback" not in result.output


def test_cli_profile_errors_exit_3(
    runner: CliRunner, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    no_auth = runner.invoke(app, ["token", "fetch", "-p", str(write_profile(tmp_path, ""))])
    assert no_auth.exit_code == 3 and "[auth]" in no_auth.stderr
    monkeypatch.delenv("RR_CLIENT_SECRET")
    unset = runner.invoke(
        app, ["token", "fetch", "-p", str(write_profile(tmp_path, AUTH0_SECTION))]
    )
    assert unset.exit_code == 3 and "RR_CLIENT_SECRET" in unset.stderr


def test_cli_corrupt_cache_file_is_a_warning_not_a_failure(
    httpx_mock: Any, runner: CliRunner, tmp_path: Path
) -> None:
    httpx_mock.add_response(url=AUTH0_URL, json=ok_body(), is_reusable=True)
    profile = str(write_profile(tmp_path, AUTH0_SECTION))
    assert runner.invoke(app, ["token", "fetch", "-p", profile]).exit_code == 0
    [path] = cached_files(tmp_path)
    path.write_text("{garbage")
    result = runner.invoke(app, ["token", "fetch", "-p", profile])
    assert result.exit_code == 0 and result.stdout == TOKEN + "\n"
    assert "warning:" in result.stderr and "corrupted" in result.stderr
    assert len(httpx_mock.get_requests()) == 2


# ------------------------------------------------------------------ explain --auth


def test_explain_auth_sends_the_fetched_token(
    httpx_mock: Any, runner: CliRunner, tmp_path: Path, keyset: Path
) -> None:
    local = Keyset.load_or_create()
    token = mint_token(local, issuer=ISSUER, audience=AUDIENCE, scope="read:products")
    httpx_mock.add_response(url=AUTH0_URL, json=ok_body(access_token=token))
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(local.jwks()))
    profile = str(write_profile(tmp_path, AUTH0_SECTION))
    args = ["explain", "-p", profile, "--auth", "--jwks", str(jwks), "--json"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["reason"] == "allowed"
    assert runner.invoke(app, args).exit_code == 0
    assert len(httpx_mock.get_requests()) == 1  # cached, like token fetch
    # Without a token (and without --auth) nothing is sent: the 401 stays testable.
    missing = runner.invoke(app, ["explain", "-p", profile, "--jwks", str(jwks), "--json"])
    assert missing.exit_code == 1
    assert json.loads(missing.stdout)["reason"] == "token_missing"


def test_explain_auth_offline_mints_with_the_auth_scope(
    runner: CliRunner, tmp_path: Path, keyset: Path
) -> None:
    profile = str(write_profile(tmp_path, AUTH0_SECTION))
    result = runner.invoke(app, ["explain", "-p", profile, "--auth", "--offline", "--json"])
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["reason"] == "allowed"
    assert doc["token"]["claims"]["scope"] == "read:products"


def test_explain_auth_with_a_token_is_a_usage_error(runner: CliRunner, tmp_path: Path) -> None:
    profile = str(write_profile(tmp_path, AUTH0_SECTION))
    result = runner.invoke(app, ["explain", "some.token.here", "-p", profile, "--auth"])
    assert result.exit_code == 2
    assert "not both" in result.stderr


def test_explain_auth_endpoint_down_is_exit_4(
    httpx_mock: Any, runner: CliRunner, tmp_path: Path
) -> None:
    httpx_mock.add_exception(httpx.ConnectError("refused"), url=AUTH0_URL)
    profile = str(write_profile(tmp_path, AUTH0_SECTION))
    result = runner.invoke(app, ["explain", "-p", profile, "--auth"])
    assert result.exit_code == 4
    assert "cannot connect to the token endpoint" in result.stderr


# ------------------------------------------------------------------ the local issuer, real socket


@dataclass
class ThreadedIssuer:
    url: str
    events: list[tuple[str, str]] = field(default_factory=list)

    @property
    def issued(self) -> int:
        return sum(1 for kind, _ in self.events if kind == "token_issued")


@pytest.fixture
def local_issuer(keyset: Path) -> Iterator[ThreadedIssuer]:
    """The local issuer on 127.0.0.1:<free port>, in a thread with its own loop (the
    CLI runs asyncio.run on this one). No httpx_mock here: the socket is real."""
    from rrdev.core.model import IssuerClient, IssuerConfig
    from rrdev.servers.issuer.app import IssuerApp
    from rrdev.servers.runner import ProxyServer

    config = IssuerConfig(
        issuer=ISSUER,
        clients=(
            IssuerClient(CLIENT_ID, Secret("${RR_CLIENT_SECRET}"), (AUDIENCE,), ("read:products",)),
        ),
        token_lifetime_seconds=600,
    )
    events: list[tuple[str, str]] = []
    started = threading.Event()
    holder: dict[str, Any] = {}

    async def serve() -> None:
        app_ = IssuerApp(config, on_event=lambda kind, message: events.append((kind, message)))
        server = ProxyServer(app_, "127.0.0.1", 0, graceful_timeout=1)
        await server.start()
        holder["url"], holder["stop"] = server.url, asyncio.Event()
        holder["loop"] = asyncio.get_running_loop()
        started.set()
        await holder["stop"].wait()
        await server.stop()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield ThreadedIssuer(holder["url"], events)
    finally:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(10)


def test_cli_fetch_from_the_local_issuer_over_a_socket(
    local_issuer: ThreadedIssuer, runner: CliRunner, tmp_path: Path
) -> None:
    auth = AUTH0_SECTION.replace(f"domain = '{DOMAIN}'", f"domain = '{local_issuer.url}'")
    profile = str(write_profile(tmp_path, auth))
    first = runner.invoke(app, ["token", "fetch", "-p", profile])
    assert first.exit_code == 0, first.output
    token = first.stdout.strip()
    claims = json.loads(runner.invoke(app, ["token", "decode", token, "--json"]).stdout)["claims"]
    assert claims["aud"] == AUDIENCE and claims["sub"] == f"{CLIENT_ID}@clients"
    second = runner.invoke(app, ["token", "fetch", "-p", profile])
    assert second.stdout.strip() == token
    assert local_issuer.issued == 1  # the second came from the cache
    assert SECRET not in json.dumps(local_issuer.events)


def test_generic_basic_auth_against_the_local_issuer(
    local_issuer: ThreadedIssuer, tmp_path: Path
) -> None:
    client = generic(
        token_url=local_issuer.url + "/oauth/token",
        client_auth="client_secret_basic",
        audience=AUDIENCE,
    )
    fetched = asyncio.run(fetch_token(client))
    assert fetched.scope == "read:products" and fetched.lifetime == 600
    assert isinstance(fetched, FetchedToken)


def test_local_issuer_refusal_over_a_socket(
    local_issuer: ThreadedIssuer, runner: CliRunner, tmp_path: Path
) -> None:
    auth = AUTH0_SECTION.replace(f"domain = '{DOMAIN}'", f"domain = '{local_issuer.url}'")
    auth = auth.replace(f"audience = '{AUDIENCE}'", "audience = 'https://not-an-api'")
    profile = str(write_profile(tmp_path, auth))
    result = runner.invoke(app, ["token", "fetch", "-p", profile])
    assert result.exit_code == 4
    assert "Service not enabled" in result.stderr
    assert "Identifier" in result.stderr
    assert cached_files(tmp_path) == []


@pytest.mark.parametrize(
    "response",
    [
        {"status_code": 401, "json": {"error": "invalid_client", "error_description": SECRET}},
        {"status_code": 400, "text": f"client_secret={SECRET}"},
        {"status_code": 500, "html": f"<pre>{SECRET}</pre>"},
        {"json": {"access_token": "", "echo": SECRET}},
        {"json": ok_body(expires_in=None, echo=SECRET)},
        {"status_code": 302, "headers": {"Location": f"https://x/?s={SECRET}"}},
    ],
)
def test_the_secret_never_appears_in_any_output(
    httpx_mock: Any,
    runner: CliRunner,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    response: dict[str, Any],
) -> None:
    httpx_mock.add_response(url=OKTA_URL, **response)
    auth = (
        f"[auth]\ntoken_url = '{OKTA_URL}'\nclient_id = '${{RR_CLIENT_ID}}'\n"
        "client_secret = '${RR_CLIENT_SECRET}'\n"
    )
    profile = str(write_profile(tmp_path, auth))
    with caplog.at_level(logging.DEBUG):
        result = runner.invoke(app, ["token", "fetch", "-p", profile, "--json"])
    assert result.exit_code == 4
    files = "".join(p.read_text() for p in tmp_path.rglob("*") if p.is_file())
    everything = result.output + caplog.text + files
    for form_of_secret in (SECRET, quote_plus(SECRET)):
        assert form_of_secret not in everything


# ------------------------------------------------------------------ tokens in unexpected answers

LEAKED = "gho_MARKERleakedAccessToken0123456789"
FORM_TOKEN = f"access_token={LEAKED}&token_type=bearer"


async def test_a_form_encoded_200_is_described_never_quoted(httpx_mock: Any) -> None:
    httpx_mock.add_response(
        url=OKTA_URL,
        content=FORM_TOKEN.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded; charset=utf-8"},
    )
    with pytest.raises(TokenFetchError) as caught:
        await fetch_token(generic(), now=NOW)
    error = caught.value
    assert error.message == (
        f"the token endpoint {OKTA_URL} answered HTTP 200 with {len(FORM_TOKEN)} bytes of "
        "application/x-www-form-urlencoded, not JSON"
    )
    assert "form-encoded" in error.hint
    assert LEAKED not in shown(error)


@pytest.mark.parametrize(
    "response",
    [
        pytest.param({"text": f"token={LEAKED}"}, id="text-plain"),
        pytest.param({"content": LEAKED.encode()}, id="no-content-type"),
        pytest.param({"text": f'{{"access_token": "{LEAKED}"'}, id="cut-off-json"),
    ],
)
async def test_no_2xx_body_is_ever_quoted(httpx_mock: Any, response: dict[str, Any]) -> None:
    httpx_mock.add_response(url=OKTA_URL, **response)
    with pytest.raises(TokenFetchError) as caught:
        await fetch_token(generic(), now=NOW)
    assert "not JSON" in caught.value.message
    assert LEAKED not in shown(caught.value)


ERROR_BODIES = [
    pytest.param(
        {"json": {"access_token": LEAKED, "refresh_token": LEAKED + "r", "note": "odd"}},
        ["[redacted]", "odd"],
        id="json-without-error-field",
    ),
    pytest.param(
        {"json": {"detail": {"id_token": LEAKED}, "clientSecret": LEAKED}},
        ["[redacted]", "detail"],
        id="nested-and-camel-case",
    ),
    pytest.param(
        {"text": f"error=invalid_grant&error_description=nope&access_token={LEAKED}"},
        ["invalid_grant", "(nope)"],
        id="form-error",
    ),
    pytest.param(
        {"text": f"{FORM_TOKEN}&refresh_token={LEAKED}"},
        ["access_token=[redacted]", "token_type=bearer"],
        id="form-without-error-field",
    ),
    pytest.param(
        {"text": f"upstream said access_token: {LEAKED}, client_secret={LEAKED}"},
        ["access_token: [redacted]", "client_secret=[redacted]"],
        id="free-text",
    ),
    pytest.param(
        {"json": {"error": "invalid_request", "error_description": f"token={LEAKED} bad"}},
        ["invalid_request", "token=[redacted] bad"],
        id="description-quoting-a-token",
    ),
]


@pytest.mark.parametrize(("response", "shows"), ERROR_BODIES)
async def test_error_bodies_are_quoted_with_secret_fields_blanked(
    httpx_mock: Any, response: dict[str, Any], shows: list[str]
) -> None:
    httpx_mock.add_response(url=OKTA_URL, status_code=400, **response)
    with pytest.raises(TokenFetchError) as caught:
        await fetch_token(generic(), now=NOW)
    error = caught.value
    assert error.status == 400
    for text in shows:
        assert text in error.message
    assert LEAKED not in shown(error)


async def test_a_redirect_to_a_url_carrying_a_token_is_blanked(httpx_mock: Any) -> None:
    location = f"https://app.example/cb#access_token={LEAKED}&state=1"
    httpx_mock.add_response(url=OKTA_URL, status_code=302, headers={"Location": location})
    with pytest.raises(TokenFetchError) as caught:
        await fetch_token(generic(), now=NOW)
    assert "https://app.example/cb#access_token=[redacted]&state=1" in caught.value.message
    assert LEAKED not in shown(caught.value)


def test_the_token_response_keeps_no_secret_named_member(httpx_mock: Any) -> None:
    body = ok_body(refreshToken="r-" + LEAKED, id_token="i-" + LEAKED, token_type="Bearer")
    httpx_mock.add_response(url=OKTA_URL, json=body)
    token = asyncio.run(fetch_token(generic(), now=NOW))
    assert set(token.raw) == {"token_type", "expires_in", "scope"}


def test_cli_fetch_of_a_form_encoded_token_shows_no_token(
    httpx_mock: Any, runner: CliRunner, tmp_path: Path
) -> None:
    httpx_mock.add_response(
        url=OKTA_URL,
        content=FORM_TOKEN.encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    auth = (
        f"[auth]\ntoken_url = '{OKTA_URL}'\nclient_id = '${{RR_CLIENT_ID}}'\n"
        "client_secret = '${RR_CLIENT_SECRET}'\n"
    )
    result = runner.invoke(app, ["token", "fetch", "-p", str(write_profile(tmp_path, auth))])
    assert result.exit_code == 4
    assert result.stdout == ""
    assert "application/x-www-form-urlencoded, not JSON" in result.stderr
    assert LEAKED not in result.output
    assert cached_files(tmp_path) == []
