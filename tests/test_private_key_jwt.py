"""``client_auth = "private_key_jwt"``: rrdev signs an RFC 7523 client assertion per token
request, and the local issuer verifies it, end to end over real loopback sockets
(``rrdev token fetch`` through CliRunner; the proxy's oauth2 target credential)."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from factories import ec_key, rsa_key
from proxy_support import Backend, mint, profile_text, run_proxy
from typer.testing import CliRunner

from rrdev.cli.app import app
from rrdev.clients.oauth2 import TokenFetchError, token_request
from rrdev.clients.token_fetch import request_token
from rrdev.core.errors import ProfileError
from rrdev.core.keyset import Keyset
from rrdev.core.model import IssuerClient, IssuerConfig, OAuth2Client, Secret
from rrdev.core.profile import load_profile, parse_profile
from rrdev.servers.issuer.app import IssuerApp
from rrdev.servers.runner import ProxyServer

pytestmark = pytest.mark.usefixtures("keyset")

ISSUER = "https://rrdev.local/"
API = "https://api.myapp.com"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"


def private_pem(key: Any, password: bytes | None = None) -> bytes:
    encryption: serialization.KeySerializationEncryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


def public_pem(key: Any) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RRDEV_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("RRDEV_PROFILE", raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


def issuer_app(tmp_path: Path, events: list[tuple[str, str]]) -> IssuerApp:
    pem = tmp_path / "svc.pub.pem"
    pem.write_bytes(public_pem(rsa_key("client")))
    config = IssuerConfig(
        issuer=ISSUER,
        clients=(IssuerClient("svc", None, (API,), ("read:products",), public_key_file=str(pem)),),
        token_lifetime_seconds=600,
    )
    return IssuerApp(
        config, keys=Keyset.load_or_create(), on_event=lambda k, m: events.append((k, m))
    )


@pytest.fixture
def threaded_issuer(tmp_path: Path) -> Iterator[tuple[str, list[tuple[str, str]]]]:
    """The local issuer in a thread with its own loop (CliRunner runs asyncio.run)."""
    events: list[tuple[str, str]] = []
    started = threading.Event()
    holder: dict[str, Any] = {}

    async def serve() -> None:
        app_ = issuer_app(tmp_path, events)
        server = ProxyServer(app_, "127.0.0.1", 0, graceful_timeout=1)
        await server.start()
        app_.base_url = server.url
        holder["url"], holder["stop"] = server.url, asyncio.Event()
        holder["loop"] = asyncio.get_running_loop()
        started.set()
        await holder["stop"].wait()
        await server.stop()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield holder["url"], events
    finally:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(10)


def write(tmp_path: Path, auth_lines: str) -> Path:
    path = tmp_path / "rrdev.toml"
    path.write_text(
        "[target]\nbase_url = 'http://127.0.0.1:9'\n"
        "[proxy_credential]\nauth_type = 'none'\n"
        f"[auth]\n{auth_lines}\n"
    )
    return path


def auth_lines(url: str, key_line: str, extra: str = "") -> str:
    return (
        f"token_url = '{url}/oauth/token'\nclient_id = 'svc'\n"
        f"client_auth = 'private_key_jwt'\n{key_line}\naudience = '{API}'\n{extra}"
    )


# ------------------------------------------------------------------ end to end


def test_token_fetch_authenticates_with_a_key_file_at_the_local_issuer(
    threaded_issuer: tuple[str, list[tuple[str, str]]], tmp_path: Path
) -> None:
    url, events = threaded_issuer
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "client.pem").write_bytes(private_pem(rsa_key("client")))
    # relative to the profile file, not to the working directory
    profile = write(tmp_path, auth_lines(url, "private_key_file = 'keys/client.pem'"))
    runner = CliRunner()
    first = runner.invoke(app, ["token", "fetch", "-p", str(profile), "--no-cache"])
    assert first.exit_code == 0, first.output
    claims = jwt.decode(first.stdout.strip(), options={"verify_signature": False})
    assert claims["sub"] == "svc@clients" and claims["aud"] == API
    # a second request signs a new assertion (new jti): the issuer accepts it too
    second = runner.invoke(app, ["token", "fetch", "-p", str(profile), "--no-cache"])
    assert second.exit_code == 0, second.output
    assert [kind for kind, _ in events] == ["token_issued", "token_issued"]


def test_a_wrong_key_is_refused_by_the_issuer_and_reported(
    threaded_issuer: tuple[str, list[tuple[str, str]]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url, events = threaded_issuer
    monkeypatch.setenv("RR_CLIENT_KEY", private_pem(rsa_key("attacker")).decode())
    profile = write(tmp_path, auth_lines(url, "private_key = '${RR_CLIENT_KEY}'"))
    result = CliRunner().invoke(app, ["token", "fetch", "-p", str(profile)])
    assert result.exit_code == 4
    assert "invalid_client" in result.stderr and "Invalid client assertion" in result.stderr
    assert "client assertion (private_key_jwt) was not accepted" in " ".join(result.stderr.split())
    assert [kind for kind, _ in events] == ["token_refused"]
    assert "PRIVATE KEY" not in result.output


async def test_the_oauth2_target_credential_uses_private_key_jwt(
    backend: Backend, tmp_path: Path
) -> None:
    events: list[tuple[str, str]] = []
    issuer = issuer_app(tmp_path, events)
    server = ProxyServer(issuer, "127.0.0.1", 0, graceful_timeout=1)
    await server.start()
    issuer.base_url = server.url
    try:
        (tmp_path / "client.pem").write_bytes(private_pem(rsa_key("client")))
        credential = (
            f"auth_type = 'oauth2'\ntoken_url = '{server.url}/oauth/token'\nclient_id = 'svc'\n"
            "client_auth = 'private_key_jwt'\nprivate_key_file = 'client.pem'\n"
            f"audience = '{API}'\n"
        )
        path = tmp_path / "proxy.toml"
        path.write_text(profile_text(backend.url, credential=credential))
        async with run_proxy(path) as proxy, httpx.AsyncClient(trust_env=False) as http:
            answer = await http.get(
                proxy.url + "/api", headers={"Authorization": f"Bearer {mint()}"}
            )
    finally:
        await server.stop()
    assert answer.status_code == 200
    sent = dict(backend.seen[-1]["headers"])["Authorization"].removeprefix("Bearer ")
    assert jwt.decode(sent, options={"verify_signature": False})["sub"] == "svc@clients"
    assert [kind for kind, _ in events] == ["token_issued"]


# ------------------------------------------------------------------ the assertion


def client(**overrides: Any) -> OAuth2Client:
    fields: dict[str, Any] = {
        "token_url": "https://idp.example.com/oauth2/v1/token",
        "client_id": Secret("svc"),
        "client_auth": "private_key_jwt",
        "private_key": Secret("${RR_KEY}", key="auth.private_key"),
        "scope": "read:products",
    }
    fields.update(overrides)
    return OAuth2Client(**fields)


def test_the_assertion_is_rfc_7523_shaped_and_fresh_per_request() -> None:
    # A PEM pasted into one line of an environment variable keeps literal "\n"s.
    env = {"RR_KEY": private_pem(rsa_key("client")).decode().replace("\n", "\\n")}
    request = token_request(client(key_id="kid-7"), env)
    assert b"client_assertion" not in request.body  # signed only when sent
    now = time.time()
    first, second = request.signed(now), request.signed(now)
    form = {k: v[0] for k, v in parse_qs(first.body.decode()).items()}
    assert form["client_assertion_type"] == ASSERTION_TYPE
    assert "client_secret" not in form and form["client_id"] == "svc"
    token = form["client_assertion"]
    assert jwt.get_unverified_header(token) == {"alg": "RS256", "kid": "kid-7", "typ": "JWT"}
    claims = jwt.decode(
        token,
        rsa_key("client").public_key(),
        algorithms=["RS256"],
        audience="https://idp.example.com/oauth2/v1/token",
    )
    assert claims["iss"] == claims["sub"] == "svc"
    assert claims["exp"] - claims["iat"] == 60 and claims["iat"] == int(now)
    other = parse_qs(second.body.decode())["client_assertion"][0]
    assert jwt.decode(other, options={"verify_signature": False})["jti"] != claims["jti"]
    assert token in first.secrets  # scrubbed from any message
    assert "PRIVATE" not in repr(request) and token not in repr(first)


def test_es256_and_the_algorithm_must_fit_the_key() -> None:
    env = {"RR_KEY": private_pem(ec_key("client")).decode()}
    signed = token_request(client(assertion_algorithm="ES256"), env).signed(time.time())
    token = parse_qs(signed.body.decode())["client_assertion"][0]
    assert jwt.get_unverified_header(token)["alg"] == "ES256"
    with pytest.raises(ProfileError, match="needs an RSA private key") as caught:
        token_request(client(assertion_algorithm="RS256"), env)
    assert caught.value.key == "auth.private_key"
    assert "BEGIN" not in str(caught.value)


@pytest.mark.parametrize(
    ("pem", "message"),
    [
        (b"not a key", "not a PEM private key"),
        (b"ENCRYPTED", "encrypted"),
        (b"PUBLIC", "not a PEM private key"),
    ],
)
def test_unusable_keys_are_profile_errors(pem: bytes, message: str) -> None:
    if pem == b"ENCRYPTED":
        pem = private_pem(rsa_key("client"), b"pw")
    elif pem == b"PUBLIC":
        pem = public_pem(rsa_key("client"))
    with pytest.raises(ProfileError, match=message) as caught:
        token_request(client(), {"RR_KEY": pem.decode()})
    assert caught.value.exit_code == 3


def test_a_missing_key_file_names_the_file(tmp_path: Path) -> None:
    missing = tmp_path / "nope.pem"
    with pytest.raises(ProfileError, match="cannot read the private key file") as caught:
        token_request(client(private_key=None, private_key_file=str(missing)))
    assert caught.value.file == str(missing)


async def test_a_provider_echoing_the_assertion_never_shows_it(httpx_mock: Any) -> None:
    def echo(request: httpx.Request) -> httpx.Response:
        sent = parse_qs(request.content.decode())["client_assertion"][0]
        return httpx.Response(401, json={"error": "invalid_client", "error_description": sent})

    httpx_mock.add_callback(echo, url="https://idp.example.com/oauth2/v1/token")
    request = token_request(client(), {"RR_KEY": private_pem(rsa_key("client")).decode()})
    with pytest.raises(TokenFetchError) as caught:
        await request_token(request)
    shown = f"{caught.value} {caught.value.hint} {caught.value.description}"
    assert "eyJ" not in shown


# ------------------------------------------------------------------ the profile


HEAD = "[proxy_credential]\nauth_type = 'none'\n[auth]\ntoken_url = 'https://idp.test/t'\n"


@pytest.mark.parametrize(
    ("lines", "key", "message"),
    [
        (
            "client_id = 'c'\nclient_auth = 'private_key_jwt'\n",
            "auth.private_key",
            "needs exactly one of 'private_key' (PEM text) or 'private_key_file'",
        ),
        (
            "client_id = 'c'\nclient_auth = 'private_key_jwt'\nprivate_key = '${K}'\n"
            "private_key_file = 'k.pem'\n",
            "auth.private_key_file",
            "needs exactly one of",
        ),
        (
            "client_id = 'c'\nclient_auth = 'private_key_jwt'\nprivate_key = '${K}'\n"
            "client_secret = '${S}'\n",
            "auth.client_secret",
            "never client_secret",
        ),
        (
            "client_id = 'c'\nclient_secret = '${S}'\nprivate_key = '${K}'\n",
            "auth.private_key",
            "only used with client_auth = 'private_key_jwt'",
        ),
        (
            "client_id = 'c'\nclient_auth = 'private_key_jwt'\nprivate_key = '${K}'\n"
            "assertion_algorithm = 'HS256'\n",
            "auth.assertion_algorithm",
            "expected one of 'RS256', 'RS384', 'RS512', 'PS256', 'ES256'",
        ),
        (
            "client_id = 'c'\nclient_auth = 'client_secret_jwt'\n",
            "auth.client_auth",
            "expected one of 'client_secret_post', 'client_secret_basic', 'private_key_jwt'",
        ),
    ],
)
def test_profile_refusals_name_file_line_and_key(lines: str, key: str, message: str) -> None:
    text = HEAD + lines
    with pytest.raises(ProfileError) as caught:
        parse_profile(text, "p.toml")
    assert caught.value.key == key and message in caught.value.detail
    name = key.rsplit(".", 1)[1]
    expected_line = next(
        (n for n, line in enumerate(text.splitlines(), 1) if line.startswith(f"{name} ")), None
    )
    assert caught.value.line == (expected_line or caught.value.line)
    assert caught.value.file == "p.toml"


def test_validate_reports_a_private_key_jwt_problem(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(HEAD + "client_id = 'c'\nclient_auth = 'private_key_jwt'\n")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 3
    assert f"{path}:" in result.stdout and "auth.private_key" in result.stdout


def test_private_key_file_is_relative_to_the_profile(tmp_path: Path) -> None:
    sub = tmp_path / "conf"
    sub.mkdir()
    path = sub / "p.toml"
    path.write_text(
        HEAD + "client_id = 'c'\nclient_auth = 'private_key_jwt'\nprivate_key_file = 'k.pem'\n"
    )
    auth = load_profile(path).auth
    assert auth is not None and auth.client.private_key_file == str(sub / "k.pem")


def test_issuer_clients_may_authenticate_with_a_key_only(tmp_path: Path) -> None:
    text = (
        "[proxy_credential]\nauth_type = 'none'\n[issuer]\n[[issuer.clients]]\n"
        "client_id = 'svc'\npublic_key_file = 'svc.pub.pem'\n"
    )
    path = tmp_path / "p.toml"
    path.write_text(text)
    issuer = load_profile(path).issuer
    assert issuer is not None
    assert issuer.clients[0].public_key_file == str(tmp_path / "svc.pub.pem")
    with pytest.raises(ProfileError, match="missing required key 'client_secret'"):
        parse_profile(text.replace("public_key_file = 'svc.pub.pem'\n", ""), "p.toml")


def test_json_of_discovery_lists_private_key_jwt(tmp_path: Path) -> None:
    app_ = issuer_app(tmp_path, [])
    doc = app_.discovery("http://127.0.0.1:1")
    assert "private_key_jwt" in doc["token_endpoint_auth_methods_supported"]
    assert json.dumps(doc)  # plain JSON


async def test_an_unusable_backend_key_is_a_502_not_a_crash(
    backend: Backend, tmp_path: Path
) -> None:
    credential = (
        "auth_type = 'oauth2'\ntoken_url = 'http://127.0.0.1:9/oauth/token'\nclient_id = 'svc'\n"
        "client_auth = 'private_key_jwt'\nprivate_key_file = 'missing.pem'\n"
    )
    path = tmp_path / "proxy.toml"
    path.write_text(profile_text(backend.url, credential=credential))
    async with run_proxy(path) as proxy, httpx.AsyncClient(trust_env=False) as http:
        [warning] = [w for w in proxy.app.info().warnings if "private key" in w]
        answer = await http.get(proxy.url + "/api", headers={"Authorization": f"Bearer {mint()}"})
    assert "cannot read the private key file" in warning
    assert answer.status_code == 502
    assert answer.json()["reason"] == "upstream_credential_unavailable"
    assert backend.seen == []  # nothing forwarded


def test_validate_warns_about_a_key_file_that_is_not_there(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        HEAD + "client_id = 'c'\nclient_auth = 'private_key_jwt'\nprivate_key_file = 'k.pem'\n"
    )
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0
    assert f"auth.private_key_file: {tmp_path / 'k.pem'} does not exist" in result.stdout
