"""``[auth] extra``: form parameters rrdev does not know, e.g. ``aud`` for the servers that
read it instead of ``audience``; and audience hints that say what rrdev really asked for.

The token endpoint is real (``token_endpoint_support.AudTokenEndpoint`` on 127.0.0.1):
it reads ``aud`` and ignores ``audience``, as the open-source OAuth2 test servers do.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from proxy_support import Backend, mint, profile_text, run_proxy
from token_endpoint_support import (
    CLIENT_ID,
    ISSUER,
    SECRET,
    AudTokenEndpoint,
    serving,
    serving_in_thread,
)
from typer.testing import CliRunner

from rrdev.cli.app import app
from rrdev.clients.oauth2 import token_request
from rrdev.core.errors import EnvVarError, ProfileError
from rrdev.core.model import OAuth2Client, Secret
from rrdev.core.profile import load_profile, parse_profile
from rrdev.core.tokens import decode_unverified

API = "https://api.myapp.com"


@pytest.fixture(autouse=True)
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, keyset: Path) -> None:
    monkeypatch.setenv("RR_CLIENT_SECRET", SECRET)
    monkeypatch.setenv("RR_AUD", API)
    monkeypatch.setenv("RRDEV_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("RRDEV_PROFILE", raising=False)
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def endpoint() -> Iterator[tuple[str, AudTokenEndpoint]]:
    server = AudTokenEndpoint()
    with serving_in_thread(server) as url:
        yield url, server


def write(tmp_path: Path, url: str, auth_lines: str, checks: str = "") -> Path:
    path = tmp_path / "rrdev.toml"
    path.write_text(
        "[target]\nbase_url = 'http://127.0.0.1:9'\n"
        f"[proxy_credential]\njwks_uri = '{url}/jwks.json'\n"
        f"issuer = '{ISSUER}'\naudience = '{API}'\n"
        "[[proxy.rules]]\neffect = 'allow'\n"
        f"[auth]\ntoken_url = '{url}/token'\nclient_id = '{CLIENT_ID}'\n"
        f"client_secret = '${{RR_CLIENT_SECRET}}'\n{auth_lines}\n{checks}"
    )
    return path


def claims_of(token: str) -> dict[str, Any]:
    return dict(decode_unverified(token).claims)


# ------------------------------------------------------------------ sent for real


def test_token_fetch_sends_extra_aud_and_gets_an_audience_bound_token(
    endpoint: tuple[str, AudTokenEndpoint], tmp_path: Path
) -> None:
    url, server = endpoint
    profile = write(tmp_path, url, "extra = { aud = '${RR_AUD}', tenant = 'acme' }")
    result = CliRunner().invoke(app, ["token", "fetch", "-p", str(profile)])
    assert result.exit_code == 0, result.output
    assert claims_of(result.stdout.strip())["aud"] == API
    assert server.seen == [
        {
            "grant_type": "client_credentials",
            "client_id": CLIENT_ID,
            "client_secret": "***",
            "aud": API,
            "tenant": "acme",
        }
    ]
    assert "warning" not in result.stderr


def test_the_token_is_cached_per_extra_value(
    endpoint: tuple[str, AudTokenEndpoint], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url, server = endpoint
    profile = str(write(tmp_path, url, "extra = { aud = '${RR_AUD}' }"))
    first = CliRunner().invoke(app, ["token", "fetch", "-p", profile]).stdout.strip()
    assert CliRunner().invoke(app, ["token", "fetch", "-p", profile]).stdout.strip() == first
    monkeypatch.setenv("RR_AUD", "https://other.api")
    other = CliRunner().invoke(app, ["token", "fetch", "-p", profile]).stdout.strip()
    assert claims_of(other)["aud"] == "https://other.api"
    assert len(server.seen) == 2  # a token for another aud is never taken from the cache


def test_an_ignored_audience_is_named_as_sent_with_the_extra_fix(
    endpoint: tuple[str, AudTokenEndpoint], tmp_path: Path
) -> None:
    url, server = endpoint
    profile = write(tmp_path, url, f"audience = '{API}'")
    result = CliRunner().invoke(app, ["token", "fetch", "-p", str(profile)])
    assert result.exit_code == 0, result.output
    assert server.seen[0]["audience"] == API and "aud" not in claims_of(result.stdout.strip())
    warning = " ".join(result.stderr.split())
    assert f"rrdev asked for this token with audience='{API}' and got it without aud" in warning
    assert f"extra = {{ aud = '{API}' }}" in warning


def test_explain_auth_hint_says_what_rrdev_sent(
    endpoint: tuple[str, AudTokenEndpoint], tmp_path: Path
) -> None:
    url, _ = endpoint
    profile = write(tmp_path, url, f"audience = '{API}'")
    result = CliRunner().invoke(app, ["explain", "-p", str(profile), "--auth", "--json"])
    assert result.exit_code == 1, result.output
    answer = json.loads(result.stdout)
    assert answer["status"] == 401 and answer["reason"] == "claim_missing"
    assert "request the token with audience" not in answer["hint"]
    assert f"audience='{API}'" in answer["hint"] and "extra = { aud" in answer["hint"]


def test_check_hint_says_what_rrdev_sent(
    endpoint: tuple[str, AudTokenEndpoint], tmp_path: Path
) -> None:
    url, _ = endpoint
    check = (
        "[[checks]]\nname = 'no aud'\npath = '/x'\n"
        "expect = { status = 401, reason = 'claim_missing' }\n"
    )
    profile = write(tmp_path, url, f"audience = '{API}'", check)
    result = CliRunner().invoke(app, ["check", str(profile), "--json"])
    assert result.exit_code == 0, result.output
    hint = json.loads(result.stdout)["profiles"][0]["results"][0]["explanation"]["hint"]
    assert f"audience='{API}'" in hint and "ignored that parameter" in hint


def test_a_token_without_aud_from_elsewhere_gets_the_generic_hint(
    endpoint: tuple[str, AudTokenEndpoint], tmp_path: Path
) -> None:
    url, _ = endpoint
    profile = write(tmp_path, url, f"audience = '{API}'")
    from rrdev.core.keyset import Keyset

    token = Keyset.load_or_create().sign({"iss": ISSUER, "sub": "x", "iat": 1, "exp": 4e9})
    result = CliRunner().invoke(app, ["explain", token, "-p", str(profile), "--json"])
    hint = json.loads(result.stdout)["hint"]
    assert "audience=<" not in hint and "extra = { aud = '...' }" in hint


async def test_the_oauth2_target_credential_sends_extra_too(
    backend: Backend, tmp_path: Path
) -> None:
    server = AudTokenEndpoint()
    async with serving(server) as url:
        credential = (
            f"auth_type = 'oauth2'\ntoken_url = '{url}/token'\nclient_id = '{CLIENT_ID}'\n"
            "client_secret = '${RR_CLIENT_SECRET}'\nextra = { aud = 'https://backend.api' }\n"
        )
        path = tmp_path / "proxy.toml"
        path.write_text(profile_text(backend.url, credential=credential))
        async with run_proxy(path) as proxy, httpx.AsyncClient(trust_env=False) as http:
            answer = await http.get(
                proxy.url + "/api", headers={"Authorization": f"Bearer {mint()}"}
            )
        assert answer.status_code == 200
        sent = dict(backend.seen[-1]["headers"])["Authorization"].removeprefix("Bearer ")
        assert claims_of(sent)["aud"] == "https://backend.api"
        assert server.seen[0]["aud"] == "https://backend.api"


# ------------------------------------------------------------------ the profile


AUTH_HEAD = (
    "[proxy_credential]\nauth_type = 'none'\n[auth]\ntoken_url = 'https://idp.test/token'\n"
    "client_id = 'c'\nclient_secret = '${S}'\n"
)


@pytest.mark.parametrize(
    "name",
    [
        "grant_type",
        "client_id",
        "client_secret",
        "client_assertion",
        "client_assertion_type",
        "audience",
        "scope",
        "resource",
    ],
)
def test_extra_may_not_replace_what_rrdev_sends(name: str) -> None:
    text = AUTH_HEAD + f"extra = {{ {name} = 'x' }}\n"
    with pytest.raises(ProfileError) as caught:
        parse_profile(text, "p.toml")
    assert caught.value.file == "p.toml" and caught.value.line == 7
    assert caught.value.key == f"auth.extra.{name}"


def test_extra_values_are_strings() -> None:
    with pytest.raises(ProfileError, match="expected a string, got an integer") as caught:
        parse_profile(AUTH_HEAD + "extra = { aud = 3 }\n", "p.toml")
    assert caught.value.key == "auth.extra.aud"
    with pytest.raises(ProfileError, match="expected a table of strings"):
        parse_profile(AUTH_HEAD + "extra = 'aud=x'\n", "p.toml")


def test_validate_reports_a_refused_extra_key_with_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(AUTH_HEAD + "extra = { client_id = 'other' }\n")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 3
    assert f"{path}:7: auth.extra.client_id: extra may not set 'client_id'" in result.stdout


def test_the_target_credential_refuses_the_same_keys() -> None:
    text = (
        "[proxy_credential]\nauth_type = 'none'\n[target_credential]\nauth_type = 'oauth2'\n"
        "token_url = 'https://idp.test/token'\nclient_id = 'c'\nclient_secret = '${S}'\n"
        "extra = { grant_type = 'password' }\n"
    )
    with pytest.raises(ProfileError, match="extra may not set 'grant_type'"):
        parse_profile(text, "p.toml")


def test_an_unset_extra_variable_names_its_key(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(AUTH_HEAD + "extra = { aud = '${RR_UNSET_AUD}' }\n")
    client = load_profile(path).auth.client  # type: ignore[union-attr]
    with pytest.raises(EnvVarError, match="RR_UNSET_AUD") as caught:
        token_request(client, {"S": "s"})
    assert caught.value.key == "auth.extra.aud"


def test_auth0_json_bodies_carry_extra_and_cache_keys_differ() -> None:
    base = OAuth2Client(
        domain="https://tenant.test", client_id=Secret("c"), client_secret=Secret("s")
    )
    with_extra = OAuth2Client(
        domain="https://tenant.test",
        client_id=Secret("c"),
        client_secret=Secret("s"),
        extra=(("organization", Secret("org_1")),),
    )
    assert json.loads(token_request(with_extra).body)["organization"] == "org_1"
    assert token_request(base).cache_key != token_request(with_extra).cache_key
