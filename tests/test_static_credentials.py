"""Static proxy credentials: ``apiKey``, ``bearer``, ``basicAuth`` and ``jwt`` beside
``jwtVerify``, over real loopback sockets (docs/proxy.md, "Static proxy credentials").

Each type is accepted with the right secret and refused (401 ``credential_missing`` /
``credential_invalid``) without it; the secret never reaches the backend (neither the
caller's Authorization nor the apiKey query parameter), nor a record or an error body.
"""

from __future__ import annotations

import base64
from pathlib import Path

import pytest
from proxy_support import Backend, header_values, profile_text, raw_request, run_proxy, wait_for

from rrdev.core.errors import ProfileError
from rrdev.core.explain import IncomingRequest, decide
from rrdev.core.profile import load_profile, parse_profile, profile_warnings

KEY = "rk_live_5f1d0c8e9a7b4e2f"
PATH = "/api/v1/products"

PROFILES = {
    "apiKey": 'auth_type = "apiKey"\nsecret = "${PROXY_KEY}"\n',
    "bearer": 'auth_type = "bearer"\nsecret = "${PROXY_KEY}"\n',
    "jwt": 'auth_type = "jwt"\nsecret = "${PROXY_KEY}"\n',
    "basicAuth": 'auth_type = "basicAuth"\nusername = "svc"\npassword = "${PROXY_KEY}"\n',
}


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


#: (auth_type, request target, headers) that must be accepted
ACCEPTED = [
    ("apiKey", PATH, [("Authorization", KEY)]),
    ("apiKey", f"{PATH}?apiKey={KEY}&page=2", []),
    ("apiKey", f"{PATH}?page=2&APIKEY={KEY}", []),
    ("bearer", PATH, [("Authorization", f"Bearer {KEY}")]),
    ("bearer", PATH, [("Authorization", f"bearer {KEY}")]),
    ("jwt", PATH, [("Authorization", f"Bearer {KEY}")]),
    ("basicAuth", PATH, [("Authorization", basic("svc", KEY))]),
]

#: (auth_type, request target, headers, reason) that must be refused
REFUSED = [
    ("apiKey", PATH, [], "credential_missing"),
    ("apiKey", PATH, [("Authorization", KEY + "x")], "credential_invalid"),
    ("apiKey", PATH, [("Authorization", f"Bearer {KEY}")], "credential_invalid"),
    ("apiKey", f"{PATH}?apiKey={KEY[:-1]}", [], "credential_invalid"),
    # a right key does not cover for a wrong one sent beside it
    ("apiKey", f"{PATH}?apiKey=wrong", [("Authorization", KEY)], "credential_invalid"),
    ("bearer", PATH, [], "credential_missing"),
    ("bearer", f"{PATH}?apiKey={KEY}", [], "credential_missing"),
    ("bearer", PATH, [("Authorization", KEY)], "credential_invalid"),
    ("bearer", PATH, [("Authorization", "Bearer not-the-key")], "credential_invalid"),
    ("jwt", PATH, [("Authorization", f"Basic {KEY}")], "credential_invalid"),
    ("basicAuth", PATH, [], "credential_missing"),
    ("basicAuth", PATH, [("Authorization", basic("svc", "nope"))], "credential_invalid"),
    ("basicAuth", PATH, [("Authorization", basic("other", KEY))], "credential_invalid"),
    ("basicAuth", PATH, [("Authorization", "Basic %%%not-base64")], "credential_invalid"),
    ("basicAuth", PATH, [("Authorization", f"Bearer {KEY}")], "credential_invalid"),
]


@pytest.fixture
def profile_for(tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    monkeypatch.setenv("PROXY_KEY", KEY)

    def write(auth_type: str) -> Path:
        path = tmp_path / "rrdev.toml"
        path.write_text(profile_text(backend.url, proxy_credential=PROFILES[auth_type]))
        return path

    return write


@pytest.mark.parametrize(("auth_type", "target", "headers"), ACCEPTED)
async def test_the_right_secret_is_accepted_and_never_forwarded(
    profile_for, backend: Backend, auth_type: str, target: str, headers: list
) -> None:
    async with run_proxy(profile_for(auth_type)) as proxy:
        answer = await raw_request(proxy.port, "GET", target, headers)
        await wait_for(lambda: proxy.records)
    assert answer.status == 200, answer.body
    (seen,) = backend.seen
    assert KEY not in repr(seen)  # neither the Authorization nor the query parameter
    assert header_values(seen, "authorization") == []
    assert "apiKey" not in seen["raw_path"].replace("APIKEY", "apiKey")
    if "page=2" in target:
        assert seen["raw_path"] == f"{PATH}?page=2"
    (record,) = proxy.records
    assert record.reason == "allowed" and KEY not in repr(record)
    assert record.explanation.verification is not None
    assert record.explanation.verification.steps[0].status == "passed"


@pytest.mark.parametrize(("auth_type", "target", "headers", "reason"), REFUSED)
async def test_a_missing_or_wrong_secret_is_401_and_never_forwarded(
    profile_for, backend: Backend, auth_type: str, target: str, headers: list, reason: str
) -> None:
    async with run_proxy(profile_for(auth_type)) as proxy:
        answer = await raw_request(proxy.port, "GET", target, headers)
        await wait_for(lambda: proxy.records)
    assert answer.status == 401
    body = answer.json()
    assert body["reason"] == reason
    assert set(body) == {"status", "reason", "message", "hint", "trace"}
    assert answer.header("requestrocket-proxy-code") == "proxy-access-denied"
    challenge = answer.header("www-authenticate") or ""
    expected_scheme = {"apiKey": "ApiKey", "basicAuth": "Basic"}.get(auth_type, "Bearer")
    assert challenge.startswith(f'{expected_scheme} realm="rrdev"')
    assert backend.hits == 0
    sent = [v for _k, v in headers] + [target]
    for value in sent:  # nothing the caller sent as a credential is echoed
        for secretish in (KEY, KEY[:-1], "not-the-key", "nope", "wrong"):
            if secretish in value:
                assert secretish not in answer.body.decode()
                assert secretish not in repr(proxy.records[0])


async def test_an_unset_secret_is_503_for_everyone(
    tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PROXY_KEY", raising=False)
    path = tmp_path / "rrdev.toml"
    path.write_text(profile_text(backend.url, proxy_credential=PROFILES["bearer"]))
    async with run_proxy(path) as proxy:
        assert any("PROXY_KEY" in w for w in proxy.app.info().warnings)
        answer = await raw_request(proxy.port, "GET", PATH, [("Authorization", "Bearer x")])
    assert answer.status == 503
    assert answer.json()["reason"] == "proxy_credential_unavailable"
    assert "PROXY_KEY" in answer.json()["message"]
    assert backend.hits == 0


async def test_explain_judges_static_credentials_too(
    profile_for, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = load_profile(profile_for("apiKey"))
    ok = await decide(profile, IncomingRequest("GET", PATH, f"apiKey={KEY}"), None, now=0)
    missing = await decide(profile, IncomingRequest("GET", PATH), None, now=0)
    assert (ok.status, ok.reason) == (200, "allowed")
    assert (missing.status, missing.reason) == (401, "credential_missing")
    assert KEY not in repr(ok.to_dict())  # the query is redacted in the explanation
    # token conditions see no claims: the seed's DELETE gate (scope must_absent) denies
    delete = await decide(profile, IncomingRequest("DELETE", PATH, f"apiKey={KEY}"), None, now=0)
    assert (delete.status, delete.reason) == (403, "rule_denied")


STATIC_ERRORS = [
    ('auth_type = "bearer"\n', "proxy_credential.secret", "needs 'secret'"),
    ('auth_type = "basicAuth"\npassword = "${P}"\n', "proxy_credential.username", "needs"),
    (
        'auth_type = "bearer"\nsecret = "${P}"\nquery_param = "k"\n',
        "proxy_credential.query_param",
        "only used with auth_type = 'apiKey'",
    ),
    (
        'auth_type = "apiKey"\nsecret = "${P}"\nquery_param = "a&b"\n',
        "proxy_credential.query_param",
        "not a usable query parameter name",
    ),
    (
        'auth_type = "apiKey"\nsecret = "${P}"\nissuer = "https://x/"\n',
        "proxy_credential.issuer",
        "only used with auth_type = 'jwtVerify'",
    ),
    (
        'jwks_uri = "http://127.0.0.1:9/j"\nissuer = "https://x/"\naudience = "a"\n'
        'secret = "${P}"\n',
        "proxy_credential.secret",
        "only used with auth_type",
    ),
]


@pytest.mark.parametrize(("credential", "key", "message"), STATIC_ERRORS)
def test_profile_problems_name_file_line_and_key(credential: str, key: str, message: str) -> None:
    text = profile_text("http://127.0.0.1:9", proxy_credential=credential)
    with pytest.raises(ProfileError) as caught:
        parse_profile(text, "p.toml")
    assert caught.value.key == key
    assert caught.value.file == "p.toml"
    assert caught.value.line is not None
    assert message in caught.value.detail


def test_validate_warns_about_literal_secrets_and_token_conditions() -> None:
    literal = 'auth_type = "apiKey"\nsecret = "hardcoded-key-123"\n'
    profile = parse_profile(profile_text("http://127.0.0.1:9", proxy_credential=literal), "p.toml")
    found = profile_warnings(profile, {})
    messages = [w.message for w in found]
    assert any("literal secret" in m for m in messages)
    assert all("hardcoded-key-123" not in str(w) for w in found)
    token_warning = next(w for w in found if "token conditions" in w.message)
    assert token_warning.key == "proxy.rules[1].token"
    assert token_warning.line is not None
    assert profile.proxy_credential.query_param == "apiKey"  # the documented default


def test_explain_and_check_explain_a_static_credential(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from rrdev.cli.app import app

    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("RRDEV_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("PROXY_KEY", KEY)
    path = tmp_path / "rrdev.toml"
    checks = (
        '\n[[checks]]\nname = "with the key"\npath = "/api/v1/products"\n'
        f'headers = {{ Authorization = "Bearer {KEY}" }}\ntoken = "none"\nexpect = "allowed"\n'
    )
    text = profile_text("http://127.0.0.1:9", proxy_credential=PROFILES["bearer"])
    path.write_text(text + checks)
    runner = CliRunner()
    shown = runner.invoke(app, ["explain", KEY, "-p", str(path), "--path", PATH])
    assert shown.exit_code == 0, shown.output
    assert "Credential" in shown.stdout and "matched (constant-time)" in shown.stdout
    assert KEY not in shown.stdout
    refused = runner.invoke(app, ["explain", "wrong-key", "-p", str(path), "--json"])
    assert refused.exit_code == 1
    assert '"credential_invalid"' in refused.stdout and "wrong-key" not in refused.stdout
    checked = runner.invoke(app, ["check", str(path)])
    assert checked.exit_code == 0, checked.output
