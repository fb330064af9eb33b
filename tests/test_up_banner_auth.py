"""`rrdev up`'s banner says how callers authenticate and what the backend receives,
both clearly labelled, with no secret printed (a real `rrdev up` in a child process)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from proxy_support import AUDIENCE, ISSUER, profile_text, start_up

from rrdev.core.auth_summary import backend_auth, caller_auth
from rrdev.core.profile import load_profile

pytestmark = pytest.mark.usefixtures("keyset")

BACKEND_SECRET = "backend-s3cret-value-7781"
PROXY_SECRET = "proxy-s3cret-value-4410"
ENV = {"RR_BACKEND_SECRET": BACKEND_SECRET, "RR_PROXY_SECRET": PROXY_SECRET}

JWT_TO_BEARER = {
    "credential": 'auth_type = "bearer"\ntoken = "${RR_BACKEND_SECRET}"\n',
}
STATIC_TO_API_KEY = {
    "proxy_credential": 'auth_type = "bearer"\nsecret = "${RR_PROXY_SECRET}"\n',
    "credential": 'auth_type = "api_key"\nheader = "X-Api-Key"\napi_key = "${RR_BACKEND_SECRET}"\n',
}
NONE_TO_NONE = {"proxy_credential": 'auth_type = "none"\n'}


async def _banner(tmp_path: Path, name: str, **sections: str) -> list[str]:
    profile = tmp_path / f"{name}.toml"
    profile.write_text(profile_text("http://127.0.0.1:9", **sections))
    up = await start_up(profile, ENV, port=0)
    up.process.send_signal(signal.SIGINT)
    code, rest, err = await up.finish()
    assert code == 0, err
    text = "".join(up.banner) + rest
    assert BACKEND_SECRET not in text + err and PROXY_SECRET not in text + err
    return text.splitlines()


def _row(lines: list[str], label: str) -> str:
    found = [line.strip() for line in lines if line.strip().startswith(label + " ")]
    assert len(found) == 1, lines
    return found[0]


async def test_jwt_callers_and_a_bearer_backend(tmp_path: Path) -> None:
    lines = await _banner(tmp_path, "jwt", **JWT_TO_BEARER)
    callers = _row(lines, "callers")
    assert "jwtVerify" in callers and f"issuer {ISSUER}" in callers
    assert f"audience {AUDIENCE}" in callers and "RS256" in callers
    assert _row(lines, "JWKS").endswith("http://127.0.0.1:9/jwks.json")
    backend = _row(lines, "backend")
    assert "bearer (backend-cred)" in backend and "in place of the caller's" in backend
    assert not any(line.strip().startswith("credential ") for line in lines)


async def test_a_static_caller_secret_and_an_api_key_backend(tmp_path: Path) -> None:
    lines = await _banner(tmp_path, "static", **STATIC_TO_API_KEY)
    assert _row(lines, "callers").startswith("callers    bearer, a static secret")
    assert "Authorization: Bearer <token>" in _row(lines, "callers")
    backend = _row(lines, "backend")
    assert "api_key (backend-cred): the key in header X-Api-Key" in backend
    assert "the caller's Authorization (the proxy's own secret) is not forwarded" in backend
    assert not any(line.strip().startswith("JWKS ") for line in lines)


async def test_no_authentication_is_said_plainly(tmp_path: Path) -> None:
    lines = await _banner(tmp_path, "open", **NONE_TO_NONE)
    assert "none: no authentication" in _row(lines, "callers")
    assert "no credential of rrdev's; the caller's Authorization as sent" in _row(lines, "backend")


async def test_several_profiles_label_both_sides_per_alias(tmp_path: Path) -> None:
    first, second = tmp_path / "a.toml", tmp_path / "b.toml"
    first.write_text(profile_text("http://127.0.0.1:9", proxy='alias = "a"', **JWT_TO_BEARER))
    second.write_text(profile_text("http://127.0.0.1:9", proxy='alias = "b"', **NONE_TO_NONE))
    up = await start_up([str(first), str(second)], ENV, port=0)
    up.process.send_signal(signal.SIGINT)
    code, rest, err = await up.finish()
    assert code == 0, err
    text = "".join(up.banner) + rest
    assert text.count("    callers ") == 2 and text.count("    backend ") == 2
    assert "none: no authentication" in text and f"issuer {ISSUER}" in text
    assert BACKEND_SECRET not in text


@pytest.mark.parametrize(
    ("proxy_credential", "credential", "proxy", "callers", "backend"),
    [
        (
            'jwks_uri = "http://127.0.0.1:9/j"\nissuer = "https://a/"\n'
            'client_id = "app1"\ntoken_use = "access"\nalgorithms = ["RS256", "ES256"]\n',
            "",
            'forward_authorization = false\nforward_authorization_as = "X-Original"',
            "jwtVerify, a Bearer JWT: issuer https://a/, client_id app1, token_use access, "
            "RS256/ES256",
            "no credential of rrdev's; the caller's Authorization is not forwarded "
            "(it goes on as X-Original)",
        ),
        (
            'auth_type = "basicAuth"\nusername = "${U}"\npassword = "${P}"\n',
            'auth_type = "basic"\nusername = "${U}"\npassword = "${P}"\n',
            "",
            "basicAuth, a static secret: Authorization: Basic base64(username:password)",
            "basic (backend-cred): Authorization: Basic <username:password>, "
            "in place of the caller's",
        ),
        (
            'auth_type = "apiKey"\nsecret = "${K}"\nquery_param = "key"\n',
            'auth_type = "api_key"\nquery_param = "k"\napi_key = "${K}"\n',
            "",
            "apiKey, a static secret: Authorization: <key>, or ?key=<key>",
            "api_key (backend-cred): the key in query parameter k; the caller's "
            "Authorization (the proxy's own secret) is not forwarded",
        ),
        (
            'auth_type = "none"\n',
            "",
            'header_filters = ["Authorization"]',
            "none: no authentication, every request goes on to the rules",
            "no credential of rrdev's; the caller's Authorization is stripped "
            "(proxy.header_filters)",
        ),
    ],
)
def test_the_two_lines_for_each_kind(
    tmp_path: Path, proxy_credential: str, credential: str, proxy: str, callers: str, backend: str
) -> None:
    path = tmp_path / "p.toml"
    text = profile_text(
        "http://127.0.0.1:9", proxy_credential=proxy_credential, credential=credential, proxy=proxy
    )
    path.write_text(text)
    profile = load_profile(path)
    assert caller_auth(profile.proxy_credential) == callers
    assert backend_auth(profile) == backend
