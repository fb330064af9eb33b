"""The local Auth0-compatible issuer over real sockets (uvicorn on 127.0.0.1:0).

Discovery, JWKS, every way of getting a token and every Auth0-shaped refusal; the
proxy verifying the issuer's tokens through its JWKS URL, across a key rotation; and
the `rrdev issuer` commands through Typer's CliRunner.
"""

from __future__ import annotations

import base64
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from typer.testing import CliRunner

from rrdev.cli.issuer import issuer_app, issuer_banner
from rrdev.core.errors import EnvVarError, ProfileError
from rrdev.core.keyset import Keyset
from rrdev.core.model import IssuerClient, IssuerConfig, Secret
from rrdev.core.profile import load_profile, parse_profile
from rrdev.servers.issuer.app import IssuerApp
from rrdev.servers.issuer.config import issuer_config_for
from rrdev.servers.issuer.keys import KeysetWatcher
from rrdev.servers.proxy import ProxyApp
from rrdev.servers.runner import ProxyServer

ISSUER = "https://rrdev.local/"
AUD = "https://api.rrdev.local"
OTHER_AUD = "https://billing.rrdev.local"
READER_SECRET = "s3cret-reader-Value-7Qx"
OTHER_SECRET = "s3cret-other-Value-9Zk"
WRONG_SECRET = "wrong-guess-Secret-4Lm"
SECRETS = (READER_SECRET, OTHER_SECRET, WRONG_SECRET)

CONFIG = IssuerConfig(
    issuer=ISSUER,
    clients=(
        IssuerClient("reader", Secret(READER_SECRET), (AUD,), ("read:products", "write:products")),
        IssuerClient("other", Secret(OTHER_SECRET), (OTHER_AUD,), ()),
    ),
    token_lifetime_seconds=600,
)


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("RRDEV_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RRDEV_PROFILE", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    return tmp_path / "home"


class Clock:
    """Epoch time moved by hand (the issuer's only notion of time)."""

    def __init__(self) -> None:
        import time

        self.offset = 0.0
        self._time = time.time

    def __call__(self) -> float:
        return self._time() + self.offset


@dataclass
class Running:
    app: IssuerApp
    url: str
    clock: Clock
    events: list[tuple[str, str]] = field(default_factory=list)

    @property
    def token_url(self) -> str:
        return self.url + "/oauth/token"

    @property
    def jwks_url(self) -> str:
        return self.url + "/.well-known/jwks.json"


async def run_issuer(home: Path) -> AsyncIterator[Running]:
    clock = Clock()
    events: list[tuple[str, str]] = []

    def record(kind: str, message: str) -> None:
        events.append((kind, message))

    app = IssuerApp(CONFIG, keys=KeysetWatcher(home, on_event=record), clock=clock, on_event=record)
    server = ProxyServer(app, "127.0.0.1", 0, graceful_timeout=1)
    await server.start()
    app.base_url = server.url
    try:
        yield Running(app, server.url, clock, events)
    finally:
        await server.stop()


# One issuer for the tests that only send requests (stopping uvicorn costs ~0.2 s);
# tests that rotate or break its keyset get their own (``fresh_issuer``).
module_loop = pytest.mark.asyncio(loop_scope="module")


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def issuer(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Running]:
    async for running in run_issuer(tmp_path_factory.mktemp("issuer-home")):
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def fresh_issuer(home: Path) -> AsyncIterator[Running]:
    async for running in run_issuer(home):
        yield running


@pytest_asyncio.fixture(loop_scope="module")
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
        yield client


def body(**overrides: Any) -> dict[str, Any]:
    params: dict[str, Any] = {
        "grant_type": "client_credentials",
        "client_id": "reader",
        "client_secret": READER_SECRET,
        "audience": AUD,
    }
    params.update(overrides)
    return {k: v for k, v in params.items() if v is not None}


async def verified_claims(http: httpx.AsyncClient, running: Running, token: str) -> dict[str, Any]:
    jwks = (await http.get(running.jwks_url)).json()
    kid = jwt.get_unverified_header(token)["kid"]
    key = next(k for k in jwks["keys"] if k["kid"] == kid)
    return jwt.decode(
        token,
        jwt.PyJWK(key, algorithm="RS256"),
        algorithms=["RS256"],
        audience=AUD,
        issuer=ISSUER,
    )


def assert_no_secret(response: httpx.Response, running: Running | None = None) -> None:
    shown = response.text + json.dumps(dict(response.headers))
    if running is not None:
        shown += json.dumps(running.events)
    for secret in SECRETS:
        assert secret not in shown


# ------------------------------------------------------------------ discovery and JWKS


@module_loop
async def test_discovery_names_the_configured_issuer_and_real_urls(
    issuer: Running, http: httpx.AsyncClient
) -> None:
    response = await http.get(issuer.url + "/.well-known/openid-configuration")
    assert response.status_code == 200
    doc = response.json()
    assert doc["issuer"] == ISSUER  # not the port it listens on
    assert doc["jwks_uri"] == issuer.jwks_url
    assert doc["token_endpoint"] == issuer.token_url
    assert doc["grant_types_supported"] == ["client_credentials"]
    assert set(doc["token_endpoint_auth_methods_supported"]) == {
        "client_secret_basic",
        "client_secret_post",
        "private_key_jwt",
    }


@module_loop
async def test_jwks_publishes_the_public_signing_key(
    issuer: Running, http: httpx.AsyncClient
) -> None:
    response = await http.get(issuer.jwks_url)
    assert response.status_code == 200
    keys = response.json()["keys"]
    assert [k["kid"] for k in keys] == [issuer.app.keyset().signing_kid]
    assert keys[0]["kty"] == "RSA" and keys[0]["alg"] == "RS256" and keys[0]["use"] == "sig"
    assert not {"d", "p", "q", "dp", "dq", "qi"} & set(keys[0])  # public members only


@module_loop
async def test_unknown_path_and_wrong_method(issuer: Running, http: httpx.AsyncClient) -> None:
    missing = await http.get(issuer.url + "/authorize")
    assert missing.status_code == 404 and missing.json()["error"] == "not_found"
    get_token = await http.get(issuer.token_url)
    assert get_token.status_code == 405 and get_token.headers["allow"] == "POST"
    assert set(get_token.json()) == {"error", "error_description"}


# ------------------------------------------------------------------ token endpoint: success


@module_loop
async def test_token_with_json_body(issuer: Running, http: httpx.AsyncClient) -> None:
    response = await http.post(issuer.token_url, json=body())
    assert response.status_code == 200, response.text
    answer = response.json()
    assert set(answer) == {"access_token", "token_type", "expires_in", "scope"}
    assert answer["token_type"] == "Bearer"
    assert answer["expires_in"] == 600
    assert answer["scope"] == "read:products write:products"  # all allowed: none requested
    assert response.headers["cache-control"] == "no-store"
    claims = await verified_claims(http, issuer, answer["access_token"])
    assert claims["iss"] == ISSUER
    assert claims["aud"] == AUD
    assert claims["sub"] == "reader@clients"
    assert claims["azp"] == "reader"
    assert claims["gty"] == "client-credentials"
    assert claims["scope"] == "read:products write:products"
    assert claims["exp"] - claims["iat"] == 600
    header = jwt.get_unverified_header(answer["access_token"])
    assert header["alg"] == "RS256" and header["kid"]
    assert_no_secret(response, issuer)
    assert issuer.events[-1][0] == "token_issued"


@module_loop
async def test_token_with_form_body(issuer: Running, http: httpx.AsyncClient) -> None:
    response = await http.post(issuer.token_url, data=body(scope="read:products"))
    assert response.status_code == 200, response.text
    assert response.json()["scope"] == "read:products"


@module_loop
async def test_token_with_http_basic(issuer: Running, http: httpx.AsyncClient) -> None:
    params = body(client_id=None, client_secret=None)
    response = await http.post(issuer.token_url, data=params, auth=("reader", READER_SECRET))
    assert response.status_code == 200, response.text
    claims = await verified_claims(http, issuer, response.json()["access_token"])
    assert claims["sub"] == "reader@clients"


@module_loop
async def test_scope_is_the_requested_subset_of_the_allowed(
    issuer: Running, http: httpx.AsyncClient
) -> None:
    response = await http.post(
        issuer.token_url, json=body(scope="write:products delete:everything")
    )
    assert response.status_code == 200
    assert response.json()["scope"] == "write:products"
    claims = await verified_claims(http, issuer, response.json()["access_token"])
    assert claims["scope"] == "write:products"


# ------------------------------------------------------------------ token endpoint: refusals

CLIENT_CREDENTIALS = "grant_type=client_credentials&client_id=reader"
REFUSALS = [
    # (id, request kwargs, status, error, description fragment)
    (
        "wrong-secret",
        {"json": body(client_secret=WRONG_SECRET)},
        401,
        "access_denied",
        "Unauthorized",
    ),
    (
        "unknown-client",
        {"json": body(client_id="nobody", client_secret=WRONG_SECRET)},
        401,
        "access_denied",
        "Unauthorized",
    ),
    (
        "wrong-basic-secret",
        {"data": body(client_id=None, client_secret=None), "auth": ("reader", WRONG_SECRET)},
        401,
        "access_denied",
        "Unauthorized",
    ),
    (
        "disallowed-audience",
        {"json": body(audience=OTHER_AUD)},
        403,
        "access_denied",
        f'Client is not authorized to access "{OTHER_AUD}". You need to create a '
        '"client-grant" associated to this API.',
    ),
    (
        "unknown-audience",
        {"json": body(audience="https://nowhere.example")},
        403,
        "access_denied",
        "Service not enabled within domain: https://nowhere.example",
    ),
    (
        "unsupported-grant",
        {"json": body(grant_type="password")},
        400,
        "unsupported_grant_type",
        "Unsupported grant type: password",
    ),
    (
        "bad-json",
        {
            "content": b'{"grant_type": "client_credentials", "client_secret": "'
            + READER_SECRET.encode(),
            "headers": {"content-type": "application/json"},
        },
        400,
        "invalid_request",
        "not valid JSON",
    ),
    (
        "json-not-an-object",
        {"json": [READER_SECRET]},
        400,
        "invalid_request",
        "JSON object",
    ),
    (
        "json-non-string",
        {"json": body(audience=["a", "b"])},
        400,
        "invalid_request",
        "must be a string",
    ),
    (
        "bad-form",
        {
            "content": f"{CLIENT_CREDENTIALS}&{READER_SECRET}".encode(),
            "headers": {"content-type": "application/x-www-form-urlencoded"},
        },
        400,
        "invalid_request",
        "not a valid form",
    ),
    (
        "form-bad-utf8",
        {
            "content": f"{CLIENT_CREDENTIALS}&client_secret=%ff{READER_SECRET}".encode(),
            "headers": {"content-type": "application/x-www-form-urlencoded"},
        },
        400,
        "invalid_request",
        "not a valid form",
    ),
    (
        "repeated-parameter",
        {
            "content": f"{CLIENT_CREDENTIALS}&client_id=other".encode(),
            "headers": {"content-type": "application/x-www-form-urlencoded"},
        },
        400,
        "invalid_request",
        "more than once",
    ),
    (
        "repeated-unknown-parameter",
        {
            "content": f"{CLIENT_CREDENTIALS}&{READER_SECRET}=1&{READER_SECRET}=2".encode(),
            "headers": {"content-type": "application/x-www-form-urlencoded"},
        },
        400,
        "invalid_request",
        "A parameter is given more than once",
    ),
    (
        "swapped-id-and-secret",  # the log must not show the secret sent as client_id
        {"json": body(client_id=READER_SECRET, client_secret="reader")},
        401,
        "access_denied",
        "Unauthorized",
    ),
    ("missing-grant", {"json": body(grant_type=None)}, 400, "invalid_request", "grant_type"),
    ("missing-client", {"json": body(client_id=None)}, 400, "invalid_request", "client_id"),
    ("missing-secret", {"json": body(client_secret=None)}, 400, "invalid_request", "client_secret"),
    ("missing-audience", {"json": body(audience=None)}, 400, "invalid_request", "audience"),
    (
        "two-auth-methods",
        {"json": body(client_id=None), "auth": ("reader", READER_SECRET)},
        400,
        "invalid_request",
        "not both",
    ),
    (
        "malformed-basic",
        {
            "json": body(client_id=None, client_secret=None),
            "headers": {"authorization": "Basic !!"},
        },
        400,
        "invalid_request",
        "Basic",
    ),
    (
        "unsupported-content-type",
        {"content": READER_SECRET.encode(), "headers": {"content-type": "text/plain"}},
        400,
        "invalid_request",
        "Content-Type",
    ),
    (
        "oversized",
        {"content": b"x" * 70_000, "headers": {"content-type": "application/json"}},
        413,
        "invalid_request",
        "larger than 65536 bytes",
    ),
]


@pytest.mark.parametrize(
    ("kwargs", "status", "error", "description"),
    [r[1:] for r in REFUSALS],
    ids=[r[0] for r in REFUSALS],
)
@module_loop
async def test_refusals_have_auth0_shape_and_never_echo_the_secret(
    issuer: Running,
    http: httpx.AsyncClient,
    kwargs: dict[str, Any],
    status: int,
    error: str,
    description: str,
) -> None:
    response = await http.post(issuer.token_url, **kwargs)
    assert response.status_code == status, response.text
    answer = response.json()
    assert set(answer) == {"error", "error_description"}
    assert answer["error"] == error
    assert description in answer["error_description"]
    assert_no_secret(response, issuer)
    assert issuer.events and issuer.events[-1][0] == "token_refused"


@module_loop
async def test_wrong_basic_secret_gets_a_basic_challenge(
    issuer: Running, http: httpx.AsyncClient
) -> None:
    params = body(client_id=None, client_secret=None)
    response = await http.post(issuer.token_url, data=params, auth=("reader", WRONG_SECRET))
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Basic")


@module_loop
async def test_oversized_body_without_length_is_refused_while_reading(
    issuer: Running, http: httpx.AsyncClient
) -> None:
    async def chunks() -> AsyncIterator[bytes]:  # chunked: no Content-Length to check first
        for _ in range(40):
            yield b"x" * 4096

    response = await http.post(
        issuer.token_url, content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert response.json()["error"] == "invalid_request"


def test_a_client_without_audiences_gets_the_profiles_own(home: Path) -> None:
    profile = parse_profile(
        '[proxy_credential]\njwks_uri = "https://x/jwks"\nissuer = "https://x/"\n'
        'audience = "https://api.x"\n'
        '[issuer]\n[[issuer.clients]]\nclient_id = "svc"\nclient_secret = "${SVC_SECRET}"\n'
    )
    config = issuer_config_for(profile)
    assert config.clients[0].audiences == ("https://api.x",)
    with pytest.raises(EnvVarError, match="SVC_SECRET"):  # resolved at start, not later
        IssuerApp(config, keys=Keyset.generate(), env={})


def test_a_profile_without_issuer_clients_is_refused_with_an_example() -> None:
    profile = parse_profile('[proxy_credential]\nauth_type = "none"\n', "p.toml")
    with pytest.raises(ProfileError, match=r"p\.toml.*no \[issuer\]") as caught:
        issuer_config_for(profile)
    assert "[[issuer.clients]]" in caught.value.hint


def test_banner_never_prints_a_profile_secret(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        '[proxy_credential]\nauth_type = "none"\n[issuer]\n'
        '[[issuer.clients]]\nclient_id = "svc"\nclient_secret = "${SVC_SECRET}"\n'
        'audiences = ["https://api.x"]\n'
        '[[issuer.clients]]\nclient_id = "literal"\nclient_secret = "literal-Secret-99"\n'
        'audiences = ["https://api.x"]\n'
    )
    config = issuer_config_for(load_profile(path))
    urls = IssuerApp(config, keys=Keyset.generate(), env={"SVC_SECRET": "resolved-Value-1"}).urls(
        "http://127.0.0.1:8788"
    )
    text = issuer_banner(config, urls, source=str(path), demo=False)
    assert '"client_secret=$SVC_SECRET"' in text
    assert "resolved-Value-1" not in text and "literal-Secret-99" not in text
    assert "http://127.0.0.1:8788/.well-known/jwks.json" in text
    swapped = IssuerConfig(config.issuer, config.clients[::-1])
    shown = issuer_banner(swapped, urls, source=str(path), demo=False)
    assert "literal-Secret-99" not in shown and "$CLIENT_SECRET" in shown


# ------------------------------------------------------------------ the proxy, across a rotation


def proxy_profile(path: Path, jwks_url: str) -> Path:
    path.write_text(
        f"""
[target]
base_url = "http://127.0.0.1:9"

[proxy_credential]
jwks_uri = "{jwks_url}"
issuer = "{ISSUER}"
audience = "{AUD}"

[proxy]
default_effect = "deny"
"""
    )
    return path


async def status_through(
    http: httpx.AsyncClient, proxy: ProxyServer, token: str
) -> tuple[int, str]:
    # No allow rule: a verified token gets 403 (default_denied), a refused one 401.
    response = await http.get(proxy.url + "/x", headers={"Authorization": f"Bearer {token}"})
    return response.status_code, response.json()["reason"]


async def rotate_through_the_proxy(
    issuer: Running, http: httpx.AsyncClient, tmp_path: Path, home: Path
) -> dict[str, Any]:
    """Tokens before, during and after a rotation's grace period, through a real proxy
    that fetches the issuer's JWKS over HTTP (jwks ttl 0.2 s)."""
    import asyncio

    profile = load_profile(proxy_profile(tmp_path / "p.toml", issuer.jwks_url))
    # A key cache faster than a profile may ask for (at least 1 s between fetches),
    # set on the model directly so that the rotation takes a fraction of a second.
    cred = replace(profile.proxy_credential, jwks_ttl_seconds=0.2, jwks_refetch_interval_seconds=0)
    app = ProxyApp(replace(profile, proxy_credential=cred))
    proxy = ProxyServer(app, "127.0.0.1", 0, graceful_timeout=1)
    await proxy.start()
    seen: dict[str, Any] = {}
    try:
        old = (await http.post(issuer.token_url, json=body())).json()["access_token"]
        seen["old before"] = await status_through(http, proxy, old)

        result = CliRunner().invoke(issuer_app, ["rotate", "--grace", "60"])
        assert result.exit_code == 0, result.output
        new_kid = result.stdout.strip()
        old_kid = jwt.get_unverified_header(old)["kid"]
        # Signed by the old key during the grace period, first shown after it.
        claims = jwt.decode(old, options={"verify_signature": False}) | {"jti": "unseen"}
        unseen_old = Keyset.load(home / "keyset.json").sign(claims, kid=old_kid)

        new = (await http.post(issuer.token_url, json=body())).json()["access_token"]
        seen["new kid"] = jwt.get_unverified_header(new)["kid"] == new_kid  # no restart
        seen["new during"] = await status_through(http, proxy, new)
        seen["old during"] = await status_through(http, proxy, old)

        issuer.clock.offset = 61  # the grace period is over: the old key leaves the JWKS
        seen["kids after"] = [k["kid"] for k in (await http.get(issuer.jwks_url)).json()["keys"]]
        seen["new kid value"] = new_kid
        await asyncio.sleep(0.25)  # the proxy's copy of the JWKS is now older than its ttl
        seen["unseen old after"] = await status_through(http, proxy, unseen_old)
        seen["new after"] = await status_through(http, proxy, new)
        seen["old after"] = await status_through(http, proxy, old)
    finally:
        await proxy.stop()
    return seen


ACCEPTED = (403, "default_denied")  # verified; no allow rule in the test profile
DROPPED = (401, "key_not_found")


@module_loop
async def test_proxy_verifies_issuer_tokens_across_a_rotation(
    fresh_issuer: Running, http: httpx.AsyncClient, tmp_path: Path, home: Path
) -> None:
    seen = await rotate_through_the_proxy(fresh_issuer, http, tmp_path, home)
    assert seen["old before"] == ACCEPTED
    assert seen["new kid"] is True
    assert "keyset_reloaded" in {k for k, _ in fresh_issuer.events}
    assert seen["new during"] == ACCEPTED
    assert seen["old during"] == ACCEPTED  # the grace period
    assert seen["kids after"] == [seen["new kid value"]]
    assert seen["unseen old after"] == DROPPED
    assert seen["new after"] == ACCEPTED


@module_loop
async def test_a_token_verified_before_its_key_was_dropped_is_refused_after(
    fresh_issuer: Running, http: httpx.AsyncClient, tmp_path: Path, home: Path
) -> None:
    seen = await rotate_through_the_proxy(fresh_issuer, http, tmp_path, home)
    assert seen["old after"] == DROPPED


# ------------------------------------------------------------------ keyset problems and the CLI


def corrupt(home: Path) -> Path:
    path = home / "keyset.json"
    path.write_text('{"format": "rrdev-keyset", "version": 1, "keys": [')
    return path


def test_issuer_jwks_prints_the_public_jwks(home: Path) -> None:
    result = CliRunner().invoke(issuer_app, ["jwks"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == Keyset.load_or_create().jwks()


def test_a_corrupt_keyset_is_reported_with_its_path_and_kept(home: Path) -> None:
    Keyset.load_or_create()
    path = corrupt(home)
    runner = CliRunner()
    for argv in (["jwks"], ["rotate"], ["serve", "--port", "0"]):
        result = runner.invoke(issuer_app, argv)
        assert result.exit_code == 3, (argv, result.output)
        assert str(path) in result.stderr
        assert "--reset" in result.stderr
    assert path.read_text().endswith("[")  # never replaced behind the user's back


def test_rotate_reset_replaces_a_corrupt_keyset(home: Path) -> None:
    Keyset.load_or_create()
    corrupt(home)
    runner = CliRunner()
    reset = runner.invoke(issuer_app, ["rotate", "--reset"])
    assert reset.exit_code == 0, reset.output
    assert Keyset.load(home / "keyset.json").signing_kid == reset.stdout.strip()
    assert runner.invoke(issuer_app, ["rotate", "--reset", "--grace", "5"]).exit_code == 2


def test_rotate_keeps_the_previous_key_for_the_grace_period(home: Path) -> None:
    first = Keyset.load_or_create().signing_kid
    result = CliRunner().invoke(issuer_app, ["rotate", "--grace", "120"])
    assert result.exit_code == 0, result.output
    keyset = Keyset.load(home / "keyset.json")
    assert keyset.signing_kid == result.stdout.strip() != first
    assert [k["kid"] for k in keyset.jwks()["keys"]] == [keyset.signing_kid, first]
    assert first in result.stderr and "120s grace" in result.stderr


@module_loop
async def test_a_running_issuer_keeps_serving_when_the_keyset_turns_corrupt(
    fresh_issuer: Running, http: httpx.AsyncClient, home: Path
) -> None:
    before = (await http.get(fresh_issuer.jwks_url)).json()
    path = corrupt(home)
    assert (await http.get(fresh_issuer.jwks_url)).json() == before
    response = await http.post(fresh_issuer.token_url, json=body())
    assert response.status_code == 200
    path.unlink()
    await http.get(fresh_issuer.jwks_url)
    assert (await http.get(fresh_issuer.jwks_url)).json() == before
    failures = [m for k, m in fresh_issuer.events if k == "keyset_failed"]
    assert len(failures) == 2  # once when corrupt, once when gone: not per request
    assert str(path) in failures[0] and "disappeared" in failures[1]


def test_serve_refuses_a_port_in_use(home: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = CliRunner().invoke(issuer_app, ["serve", "--port", str(port)])
    assert result.exit_code == 3, result.output
    assert "already in use" in result.stderr


def test_basic_credentials_are_decoded_like_rfc_6749() -> None:
    from rrdev.servers.issuer.grant import _basic_credentials

    encoded = base64.b64encode(b"reader:a%2Bb").decode()
    assert _basic_credentials(f"Basic {encoded}") == ("reader", ("a%2Bb", "a+b"))
    assert _basic_credentials("Bearer abc") is None


def test_serve_falls_back_to_the_demo_clients_only_without_a_profile(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rrdev.cli.issuer import _issuer_profile

    monkeypatch.chdir(tmp_path)
    profile, demo = _issuer_profile(None)
    assert demo and profile.issuer is not None
    assert [c.client_id for c in profile.issuer.clients] == ["demo-reader", "demo-admin"]
    with pytest.raises(ProfileError, match="not found"):
        _issuer_profile("missing.toml")  # a named profile never falls back


def test_notes_say_how_a_profiles_proxy_accepts_local_tokens(tmp_path: Path) -> None:
    from rrdev.cli.issuer import profile_notes
    from rrdev.servers.issuer.config import IssuerUrls

    path = tmp_path / "p.toml"
    path.write_text(
        '[proxy_credential]\njwks_uri = "https://t.auth0.com/.well-known/jwks.json"\n'
        'issuer = "https://t.auth0.com/"\naudience = "https://api.x"\n'
        '[issuer]\n[[issuer.clients]]\nclient_id = "svc"\nclient_secret = "${S}"\n'
    )
    profile = load_profile(path)
    urls = IssuerUrls(ISSUER, "http://127.0.0.1:8788")
    notes = profile_notes(profile, issuer_config_for(profile), urls)
    assert "https://t.auth0.com/" in notes[0] and "--issuer" in notes[0]
    assert f"--jwks {urls.jwks}" in notes[1]
