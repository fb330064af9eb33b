"""The profile loader: the shipped auth0 profile, line numbers, every error's
file/line/key/message, and profile discovery."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rrdev.errors import EnvVarError, ProfileError
from rrdev.model import Profile, Secret, Target
from rrdev.profile import (
    build_line_index,
    discover_profile,
    line_of,
    load_profile,
    parse_profile,
    profile_warnings,
)

ROOT = Path(__file__).resolve().parent.parent
AUTH0 = ROOT / "profiles" / "auth0.toml"
FILE = "profiles/x.toml"

#: A valid proxy credential, so error cases only show what they are about.
JWT = """
[proxy_credential]
jwks_uri = "https://tenant.example/.well-known/jwks.json"
issuer = "https://tenant.example/"
audience = "https://api.example"
"""


NO_AUTH = '\n[proxy_credential]\nauth_type = "none"\n'


def parse(text: str) -> Profile:
    """Parse a snippet; one without a [proxy_credential] gets auth_type "none" appended
    (after the snippet, so the lines an error case marks stay where they are)."""
    text = textwrap.dedent(text)
    if "[proxy_credential" not in text:
        text += NO_AUTH
    return parse_profile(text, FILE)


def marked_line(text: str) -> int:
    """The 1-based line carrying the ``# <-`` marker: where the error must point."""
    lines = textwrap.dedent(text).splitlines()
    return next(n for n, line in enumerate(lines, 1) if "# <-" in line)


@pytest.fixture(scope="module")
def auth0() -> Profile:
    return load_profile(AUTH0)


# ------------------------------------------------------------------ the shipped profile


def test_auth0_profile_sections(auth0: Profile) -> None:
    assert auth0.path == str(AUTH0)
    assert auth0.proxy.name == "my-api-auth0-protected"
    assert auth0.proxy.alias == "my-api"
    assert auth0.display_name == "my-api"
    assert auth0.proxy.region == "us-east-1"
    assert auth0.proxy.default_effect == "deny"
    assert (auth0.proxy.listen_host, auth0.proxy.listen_port) == ("127.0.0.1", 8787)
    assert auth0.target.name == "my-backend-api"
    assert auth0.target.base_url == "https://api.myapp.com"
    assert auth0.target.test_path == "/health"
    assert auth0.target.default_effect == "allow"
    tc = auth0.target_credential
    assert (tc.name, tc.auth_type, tc.prefix) == ("backend-service-token", "bearer", "Bearer")
    assert tc.writes_authorization
    pc = auth0.proxy_credential
    assert pc.name == "auth0-jwt-verify"
    assert pc.auth_type == "jwtVerify"
    assert pc.jwks_uri == "https://YOUR_TENANT.us.auth0.com/.well-known/jwks.json"
    assert pc.audience == ("https://api.myapp.com",)
    assert pc.issuer == "https://YOUR_TENANT.us.auth0.com/"
    assert pc.algorithms == ("RS256",)
    assert pc.default_effect == "allow"


def test_auth0_profile_rules(auth0: Profile) -> None:
    rules = auth0.proxy.rules
    assert [(r.name, r.effect, r.priority) for r in rules] == [
        ("allow-authenticated", "allow", 1),
        ("read-catalog", "allow", 10),
        ("scope-gate-delete", "deny", 0),
    ]
    assert rules[0].methods == ("GET", "POST", "PUT", "PATCH", "DELETE")
    assert rules[1].methods == ("GET",)
    assert rules[2].methods == ("DELETE",)
    assert rules[1].path is not None and rules[1].path.pattern.search("/api/v1/products/7")
    assert not rules[1].path.pattern.search("/api/v2/reports")
    (gate,) = rules[2].token
    assert gate.presence == "must_absent"
    assert gate.name.search("scope") and not gate.name.search("scopes")
    assert gate.value is not None and gate.value.search("read:products delete:resources")
    assert [r.scope for r in auth0.all_rules()] == ["proxy"] * 3
    assert all(r.line is not None for r in rules)


def test_auth0_profile_secrets_auth_and_checks(auth0: Profile) -> None:
    token = auth0.target_credential.token
    assert isinstance(token, Secret)
    assert token.raw == "${BACKEND_SERVICE_TOKEN}"
    assert token.key == "target_credential.token"
    assert token.references == ("BACKEND_SERVICE_TOKEN",)
    assert auth0.auth is not None
    assert auth0.auth.kind == "auth0"
    client = auth0.auth.client
    assert client.domain == "YOUR_TENANT.us.auth0.com"
    assert client.client_id is not None and client.client_id.references == ("AUTH0_CLIENT_ID",)
    assert client.client_secret is not None
    assert client.client_secret.references == ("AUTH0_CLIENT_SECRET",)
    assert (client.audience, client.scope) == ("https://api.myapp.com", "read:products")
    names = [c.name for c in auth0.checks]
    assert "DELETE with delete:resources is allowed" in names
    assert "a GET outside the catalog is allowed by the allow-all rule" in names
    by_name = {c.name: c for c in auth0.checks}
    refused = by_name["DELETE without delete:resources is refused"]
    assert refused.method == "DELETE"
    assert refused.token == {"mint": {"scope": "read:products"}}
    assert refused.expect == {"status": 403, "reason": "rule_denied", "rule": "scope-gate-delete"}
    assert by_name["DELETE with delete:resources is allowed"].expect == "allowed"
    assert isinstance(refused.expect, dict)  # plain python data, not tomlkit items


def test_auth0_profile_loads_without_environment() -> None:
    code = f"from rrdev.profile import load_profile; load_profile({str(AUTH0)!r})"
    result = subprocess.run(
        [sys.executable, "-c", code], env={}, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(
    ("key", "starts_with"),
    [
        ("proxy", "[proxy]"),
        ("proxy.default_effect", 'default_effect = "deny"'),
        ("target.base_url", "base_url ="),
        ("target_credential.token", "token ="),
        ("proxy_credential.audience", "audience ="),
        ("proxy.rules[0]", "[[proxy.rules]]"),
        ("proxy.rules[1].priority", "priority = 10"),
        ("proxy.rules[2].id", 'id = "scope-gate-delete"'),
        ("proxy.rules[2].token[0].value", "token = [{"),
        ("checks[1].expect.rule", "expect = {"),
        ("auth.client_secret", "client_secret ="),
        # not in the file: the nearest enclosing key
        ("proxy.rules[2].headers", "[[proxy.rules]]"),
    ],
)
def test_auth0_line_numbers(auth0: Profile, key: str, starts_with: str) -> None:
    line = line_of(auth0, key)
    assert line is not None
    assert AUTH0.read_text().splitlines()[line - 1].startswith(starts_with)


def test_line_of_unknown_key_is_none(auth0: Profile) -> None:
    assert line_of(auth0, "nowhere.at.all") is None
    assert line_of({"a": 3}, "a.b[2].c") == 3


# ------------------------------------------------------------------ the line index


def test_line_index_handles_toml_shapes() -> None:
    text = textwrap.dedent(
        '''\
        title = """
        [not_a_table]
        fake = 1
        """
        a.b."c.d" = 1
        'lit' = 2
        [t]
        arr = [
          { name = "x",
            value = "y" },
          # a comment
          { name = "z" },
        ]
        inl = { k = { deep = [1, 2] }, s = "}" }
        [[aot]]
        x = 1
        [[aot.sub]]
        y = 2
        [[aot]]
        x = 3
        [aot.tab]
        z = 4
        '''
    )
    index = build_line_index(text)
    assert "not_a_table" not in index and "fake" not in index
    assert index["title"] == 1
    assert index["a.b.c.d"] == 5
    assert index["lit"] == 6
    assert index["t"] == 7
    assert index["t.arr"] == 8
    assert index["t.arr[0]"] == 9
    assert index["t.arr[0].value"] == 10
    assert index["t.arr[1]"] == 12
    assert index["t.arr[1].name"] == 12
    assert index["t.inl.k.deep[1]"] == 14
    assert index["t.inl.s"] == 14
    assert index["aot[0].x"] == 16
    assert index["aot[0].sub[0].y"] == 18
    assert index["aot[1]"] == 19
    assert index["aot[1].x"] == 20
    assert index["aot[1].tab.z"] == 22


# ------------------------------------------------------------------ errors


ERROR_CASES = [
    pytest.param(
        """
        [proxy]
        defualt_effect = "deny"  # <-
        """,
        "proxy.defualt_effect",
        "unknown key 'defualt_effect'; did you mean 'default_effect'?",
        id="unknown-key",
    ),
    pytest.param(
        """
        [targett]  # <-
        base_url = "https://x"
        """,
        "targett",
        "unknown section 'targett'; did you mean 'target'?",
        id="unknown-section",
    ),
    pytest.param(
        """
        [proxy]
        name = 3  # <-
        """,
        "proxy.name",
        "expected a string, got an integer",
        id="wrong-type",
    ),
    pytest.param(
        """
        [proxy]
        forward_authorization = "yes"  # <-
        """,
        "proxy.forward_authorization",
        "expected a boolean (true or false), got a string",
        id="wrong-type-bool",
    ),
    pytest.param(
        """
        [[proxy.rules]]
        effect = "allow"
        methods = ["GET", 7]  # <-
        """,
        "proxy.rules[0].methods[1]",
        "expected a string, got an integer",
        id="wrong-type-list-element",
    ),
    pytest.param(
        """
        [[proxy.rules]]
        effect = "allow"
        [[proxy.rules]]
        effect = "allow"
        [[proxy.rules]]
        id = "gate"
        effect = "deny"
        token = [{ claim = "^scope$", value = "delete:(" }]  # <-
        """,
        "proxy.rules[2].token[0].value",
        "invalid regular expression 'delete:(': missing ), unterminated subpattern at "
        "position 7 (rule 'gate')",
        id="invalid-regex-names-rule",
    ),
    pytest.param(
        """
        [target]
        base_url = "https://backend.example"
        [[target.rules]]
        effect = "deny"
        headers = [
          { name = "x-ok", value = "fine" },
          { name = "x-bad", value = "[" },  # <-
        ]
        """,
        "target.rules[0].headers[1].value",
        "invalid regular expression '['",
        id="invalid-regex-multiline-array",
    ),
    pytest.param(
        """
        [[proxy.rules]]
        effect = "allow"
        path = { pattern = "x", flags = "ix" }  # <-
        """,
        "proxy.rules[0].path.flags",
        "unknown regular-expression flag 'x' in 'ix'",
        id="bad-flags",
    ),
    pytest.param(
        """
        [[proxy.rules]]
        effect = "allow"
        priority = 1001  # <-
        """,
        "proxy.rules[0].priority",
        "must be between 0 and 1000, got 1001",
        id="priority-out-of-range",
    ),
    pytest.param(
        """
        [[proxy.rules]]  # <-
        methods = ["GET"]
        """,
        "proxy.rules[0].effect",
        "missing required key 'effect'",
        id="missing-effect",
    ),
    pytest.param(
        """
        [[proxy.rules]]
        effect = "permit"  # <-
        """,
        "proxy.rules[0].effect",
        "expected one of 'allow', 'deny', got 'permit'",
        id="bad-effect",
    ),
    pytest.param(
        """
        [[proxy.rules]]
        effect = "deny"
        query = [{ name = "debug", presence = "exists" }]  # <-
        """,
        "proxy.rules[0].query[0].presence",
        "expected 'must_exist' or 'must_absent', got 'exists'",
        id="bad-presence",
    ),
    pytest.param(
        """
        [[proxy.rules]]
        effect = "deny"
        token = [{ value = "admin" }]  # <-
        """,
        "proxy.rules[0].token[0].claim",
        "missing required key 'claim'",
        id="token-without-claim",
    ),
    pytest.param(
        """
        [proxy_credential]
        jwks_uri = "https://t/.well-known/jwks.json"
        issuer = "https://t/"
        audience = "https://api"
        algorithms = ["RS256", "HS256"]  # <-
        """,
        "proxy_credential.algorithms[1]",
        "algorithm 'HS256' is refused",
        id="hs256-refused",
    ),
    pytest.param(
        """
        [proxy_credential]
        jwks_uri = "https://t/.well-known/jwks.json"
        issuer = "https://t/"
        audience = "https://api"
        algorithms = ["none"]  # <-
        """,
        "proxy_credential.algorithms[0]",
        "algorithm 'none' is refused",
        id="none-refused",
    ),
    pytest.param(
        """
        [proxy_credential]
        jwks_uri = "https://t/.well-known/jwks.json"
        issuer = "https://t/"
        audience = "https://api"
        algorithms = ["RS265"]  # <-
        """,
        "proxy_credential.algorithms[0]",
        "unknown algorithm 'RS265'; did you mean",
        id="unknown-algorithm",
    ),
    pytest.param(
        """
        [proxy_credential]  # <-
        jwks_uri = "https://t/.well-known/jwks.json"
        issuer = "https://t/"
        """,
        "proxy_credential.audience",
        "needs 'audience' (or 'client_id' for Cognito access tokens)",
        id="jwt-verify-without-audience",
    ),
    pytest.param(
        """
        [proxy_credential]
        auth_type = "api_key"  # <-
        """,
        "proxy_credential.auth_type",
        "expected 'jwtVerify' or 'none', got 'api_key'",
        id="proxy-auth-type",
    ),
    pytest.param(
        """
        [target_credential]  # <-
        auth_type = "bearer"
        """,
        "target_credential.token",
        "auth_type = 'bearer' needs 'token'",
        id="bearer-without-token",
    ),
    pytest.param(
        """
        [target_credential]
        token = "${T}"  # <-
        """,
        "target_credential.token",
        "'token' is only used with auth_type = 'bearer' (this one is 'none')",
        id="token-with-default-none",
    ),
    pytest.param(
        """
        [target_credential]
        auth_type = "api_key"
        api_key = "${K}"
        header = "X-Key"  # <-
        query_param = "key"
        """,
        "target_credential.header",
        "needs exactly one of 'header' or 'query_param'",
        id="api-key-both-places",
    ),
    pytest.param(
        """
        [target_credential]  # <-
        auth_type = "oauth2"
        token_url = "https://idp/token"
        client_id = "${ID}"
        """,
        "target_credential.client_secret",
        "auth_type = 'oauth2' needs 'client_secret'",
        id="oauth2-without-secret",
    ),
    pytest.param(
        """
        [target_credential]
        auth_type = "bearer"
        token = "${BROKEN"  # <-
        """,
        "target_credential.token",
        "malformed environment reference",
        id="malformed-env-ref",
    ),
    pytest.param(
        """
        [proxy]
        listen = "127.0.0.1:70000"  # <-
        """,
        "proxy.listen",
        "port must be between 1 and 65535, got 70000",
        id="bad-listen-port",
    ),
    pytest.param(
        """
        [proxy]
        listen = "8787"  # <-
        """,
        "proxy.listen",
        "expected 'host:port', got '8787'",
        id="bad-listen-shape",
    ),
    pytest.param(
        """
        [proxy]
        additional_headers = { "X User" = "x" }  # <-
        """,
        "proxy.additional_headers.X User",
        "'X User' is not a valid HTTP header name",
        id="bad-header-name",
    ),
    pytest.param(
        """
        [target]  # <-
        name = "t"
        """,
        "target.base_url",
        "missing required key 'base_url'",
        id="target-without-base-url",
    ),
    pytest.param(
        """
        [target]
        base_url = "ftp://files.example"  # <-
        """,
        "target.base_url",
        "expected an http:// or https:// URL, got 'ftp://files.example'",
        id="target-base-url-scheme",
    ),
    pytest.param(
        """
        [target]
        base_url = "https://x"
        timeout_seconds = 0  # <-
        """,
        "target.timeout_seconds",
        "must be a finite number greater than 0, got 0",
        id="timeout-not-positive",
    ),
    pytest.param(
        """
        [auth]  # <-
        client_id = "${ID}"
        """,
        "auth.kind",
        "cannot tell how to get a token",
        id="auth-kind-unknown",
    ),
    pytest.param(
        """
        [[checks]]  # <-
        path = "/"
        """,
        "checks[0].name",
        "missing required key 'name'",
        id="check-without-name",
    ),
    pytest.param(
        """
        [[checks]]
        name = "x"
        expect = "denied"  # <-
        """,
        "checks[0].expect",
        "expected 'allowed', a status code",
        id="check-bad-expect",
    ),
]


@pytest.mark.parametrize(("text", "key", "message"), ERROR_CASES)
def test_profile_errors(text: str, key: str, message: str) -> None:
    with pytest.raises(ProfileError) as caught:
        parse(text)
    error = caught.value
    assert error.file == FILE
    assert error.key == key
    assert message in error.detail
    assert error.line == marked_line(text)
    assert str(error).startswith(f"{FILE}:{error.line}: {key}: ")
    assert error.exit_code == 3


def test_invalid_regex_message_matches_the_documented_shape() -> None:
    text = """
    [[proxy.rules]]
    effect = "deny"
    token = [{ claim = "scope", value = "delete:(" }]  # <-
    """
    with pytest.raises(ProfileError) as caught:
        parse(text)
    assert str(caught.value) == (
        f"{FILE}:{marked_line(text)}: proxy.rules[0].token[0].value: invalid regular "
        "expression 'delete:(': missing ), unterminated subpattern at position 7"
    )


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512", "none"])
def test_refused_algorithms_explain_why(alg: str) -> None:
    with pytest.raises(ProfileError) as caught:
        parse(JWT + f'algorithms = ["{alg}"]\n')
    assert "refused" in caught.value.detail
    assert ("forge" in caught.value.hint) and caught.value.hint


def test_duplicate_rule_ids_name_both_lines() -> None:
    text = textwrap.dedent(
        """
        [[proxy.rules]]
        id = "same"
        effect = "allow"

        [[target.rules]]
        id = "same"
        effect = "deny"

        [target]
        base_url = "https://backend.example"
        """
    )
    with pytest.raises(ProfileError) as caught:
        parse_profile(text + NO_AUTH, FILE)
    error = caught.value
    assert error.key == "target.rules[0].id"
    assert error.line == 7
    assert "duplicate rule id 'same'" in error.detail
    assert "line 3" in error.detail and "line 7" in error.detail
    assert "proxy.rules[0]" in error.detail


def test_toml_syntax_error_has_the_line() -> None:
    text = '[proxy]\nname = "x"\nalias = \n'
    with pytest.raises(ProfileError) as caught:
        parse_profile(text + NO_AUTH, FILE)
    assert caught.value.file == FILE
    assert caught.value.line == 3
    assert caught.value.detail.startswith("invalid TOML: ")
    assert " at line " not in caught.value.detail  # the position lives in file:line


def test_load_profile_missing_file_names_it(tmp_path: Path) -> None:
    missing = tmp_path / "nope.toml"
    with pytest.raises(ProfileError) as caught:
        load_profile(missing)
    assert caught.value.file == str(missing)
    assert "not found" in caught.value.detail


def test_load_profile_unreadable_file_names_it(tmp_path: Path) -> None:
    with pytest.raises(ProfileError) as caught:
        load_profile(tmp_path)  # a directory
    assert caught.value.file == str(tmp_path)
    assert "cannot read profile" in caught.value.detail


# ------------------------------------------------------------------ accepted shapes


def test_sections_absent_give_model_defaults() -> None:
    with pytest.raises(ProfileError, match=r"no \[proxy_credential\] section") as caught:
        parse_profile("", FILE)
    assert caught.value.key == "proxy_credential"
    empty = parse("")
    assert empty.target == Target()
    assert empty.proxy.default_effect == "allow"
    assert empty.target_credential.auth_type == "none"
    assert empty.auth is None and empty.issuer is None and empty.checks == ()
    only = parse(JWT + '[target]\nbase_url = "http://127.0.0.1:9000"\n')
    assert only.proxy_credential.audience == ("https://api.example",)
    assert only.target.base_url == "http://127.0.0.1:9000"


@pytest.mark.parametrize(
    ("written", "normalised"),
    [
        ("must_exist", "must_exist"),
        ("must_absent", "must_absent"),
        ("present", "must_exist"),
        ("absent", "must_absent"),
    ],
)
def test_presence_spellings(written: str, normalised: str) -> None:
    profile = parse(
        f"""
        [[proxy.rules]]
        effect = "deny"
        path = {{ pattern = "^/admin", presence = "{written}" }}
        headers = [{{ name = "x-debug", presence = "{written}" }}]
        """
    )
    (rule,) = profile.proxy.rules
    assert rule.path is not None and rule.path.presence == normalised
    assert rule.headers[0].presence == normalised


@pytest.mark.parametrize(
    "path",
    [
        '"^/api/"',
        '{ pattern = "^/api/" }',
        '{ pattern = { pattern = "^/api/" }, presence = "must_exist" }',
        '{ path = { pattern = "^/api/" }, presence = "must_exist" }',
    ],
    ids=["shorthand", "table", "pattern-table", "gateway-nested"],
)
def test_path_shapes(path: str) -> None:
    profile = parse(f'[[proxy.rules]]\neffect = "allow"\npath = {path}\n')
    condition = profile.proxy.rules[0].path
    assert condition is not None
    assert condition.presence == "must_exist"
    assert condition.pattern.source == "^/api/"
    assert condition.pattern.search("/api/x") and not condition.pattern.search("/v2/api/")


def test_path_both_shapes_at_once_is_an_error() -> None:
    with pytest.raises(ProfileError) as caught:
        parse('[[proxy.rules]]\neffect = "allow"\npath = { pattern = "a", path = "b" }\n')
    assert "exactly one of 'pattern' or 'path'" in caught.value.detail


def test_rule_fields_and_flags() -> None:
    profile = parse(
        """
        [[target_credential.rules]]
        effect = "allow"
        methods = ["get", "Post"]
        path = { pattern = "^/API", flags = "si" }
        headers = [{ name = "^x-tenant$", value = { pattern = "acme", flags = "i" } }]
        query = [{ name = "mode", value = "^fast$" }]
        token = [{ claim = "roles", value = "admin", presence = "absent" }]
        notes = "why"
        """
    )
    (rule,) = profile.target_credential.rules
    assert rule.name == "target_credential[0]"
    assert rule.methods == ("GET", "POST")
    assert rule.path is not None and rule.path.pattern.flags == "is"
    assert rule.path.pattern.search("/api/x")
    header = rule.headers[0]
    assert header.name.search("X-Tenant")  # header names always match case-insensitively
    assert header.value is not None and header.value.search("ACME")
    query = rule.query[0]
    assert not query.name.search("MODE")  # query names do not
    assert query.value is not None and query.value.flags == ""
    assert rule.token[0].presence == "must_absent"
    assert rule.notes == "why"
    assert rule.priority == 0


def test_proxy_options() -> None:
    profile = parse(
        """
        [proxy]
        listen = "[::1]:9999"
        additional_headers = { "X-User-Id" = "{claims.sub}", "X-Env" = "dev" }
        header_filters = ["X-Debug"]
        forward_authorization = false
        forward_authorization_as = "X-Original-Authorization"
        preflight_requires_auth = true
        """
    )
    proxy = profile.proxy
    assert (proxy.listen_host, proxy.listen_port) == ("::1", 9999)
    headers = dict(proxy.additional_headers)
    assert headers["X-User-Id"].uses_claims and not headers["X-Env"].uses_claims
    assert proxy.header_filters == ("X-Debug",)
    assert proxy.forward_authorization is False
    assert proxy.forward_authorization_as == "X-Original-Authorization"
    assert proxy.preflight_requires_auth is True


@pytest.mark.parametrize("spelling", ["jwtVerify", "jwt_verify", "JWTVERIFY", "jwtverify"])
def test_proxy_auth_type_spellings(spelling: str) -> None:
    profile = parse(JWT + f'auth_type = "{spelling}"\n')
    assert profile.proxy_credential.auth_type == "jwtVerify"


def test_proxy_credential_options() -> None:
    profile = parse(
        """
        [proxy_credential]
        jwks_uri = "https://cognito/.well-known/jwks.json"
        issuer = "https://cognito/pool"
        client_id = "abc"
        token_use = "access"
        algorithms = ["RS256", "ES256", "EdDSA"]
        leeway_seconds = 5
        """
    )
    pc = profile.proxy_credential
    assert pc.audience == ()
    assert (pc.client_id, pc.token_use) == ("abc", "access")
    assert pc.algorithms == ("RS256", "ES256", "EdDSA")
    assert pc.leeway_seconds == 5.0
    several = parse(JWT.replace('"https://api.example"', '["https://a", "https://b"]'))
    assert several.proxy_credential.audience == ("https://a", "https://b")


@pytest.mark.parametrize(
    ("body", "kind"),
    [
        ('token = "${API_TOKEN}"', "static"),
        ('token_url = "https://idp/token"\nclient_id = "${I}"\nclient_secret = "${S}"', "oauth2"),
        ('domain = "t.auth0.com"\nclient_id = "${I}"\nclient_secret = "${S}"', "auth0"),
        ('kind = "local"\naudience = "https://api"', "local"),
    ],
)
def test_auth_kind_inference(body: str, kind: str) -> None:
    profile = parse(f"[auth]\n{body}\n")
    assert profile.auth is not None and profile.auth.kind == kind


def test_target_credential_kinds() -> None:
    basic = parse('[target_credential]\nauth_type = "basic"\nusername = "u"\npassword = "${P}"\n')
    assert basic.target_credential.password is not None
    assert basic.target_credential.password.key == "target_credential.password"
    api = parse('[target_credential]\nauth_type = "api_key"\napi_key = "${K}"\nquery_param = "k"\n')
    assert api.target_credential.query_param == "k"
    assert not api.target_credential.writes_authorization
    oauth = parse(
        """
        [target_credential]
        auth_type = "oauth2"
        token_url = "https://idp/oauth2/token"
        client_id = "${ID}"
        client_secret = "${SECRET}"
        scope = "backend"
        client_auth = "client_secret_basic"
        """
    )
    client = oauth.target_credential.oauth2
    assert client is not None
    assert client.token_url == "https://idp/oauth2/token"
    assert client.client_auth == "client_secret_basic"
    assert client.client_secret is not None and client.client_secret.references == ("SECRET",)


def test_issuer_and_checks() -> None:
    profile = parse(
        """
        [issuer]
        token_lifetime_seconds = 600
        [[issuer.clients]]
        client_id = "ci"
        client_secret = "${CI_SECRET}"
        audiences = ["https://api"]
        scopes = ["read:products"]

        [[checks]]
        name = "defaults"

        [[checks]]
        name = "everything"
        method = "post"
        path = "/x"
        headers = { "X-A" = "1" }
        query = { q = "2" }
        body = "{}"
        token = "none"
        expect = 404
        """
    )
    assert profile.issuer is not None
    assert profile.issuer.issuer == "https://rrdev.local/"
    assert profile.issuer.token_lifetime_seconds == 600
    (client,) = profile.issuer.clients
    assert client.client_secret.key == "issuer.clients[0].client_secret"
    assert client.audiences == ("https://api",)
    first, second = profile.checks
    assert (first.method, first.path, first.token, first.expect) == ("GET", "/", "auth", "allowed")
    assert first.line == 10
    assert second.method == "POST"
    assert (second.headers, second.query) == ((("X-A", "1"),), (("q", "2"),))
    assert (second.body, second.token, second.expect) == ("{}", "none", 404)


# ------------------------------------------------------------------ secrets and warnings


def test_profile_warnings_list_unset_references(auth0: Profile) -> None:
    warnings = profile_warnings(auth0, env={"AUTH0_CLIENT_ID": "abc", "AUTH0_CLIENT_SECRET": ""})
    assert [w.key for w in warnings] == ["target_credential.token", "auth.client_secret"]
    first = warnings[0]
    assert "BACKEND_SERVICE_TOKEN" in first.message
    assert first.file == str(AUTH0)
    assert first.line == line_of(auth0, "target_credential.token")
    everything = {"BACKEND_SERVICE_TOKEN": "t", "AUTH0_CLIENT_ID": "i", "AUTH0_CLIENT_SECRET": "s"}
    assert profile_warnings(auth0, env=everything) == []


def test_profile_warnings_cover_checks_and_tls() -> None:
    profile = parse(
        """
        [target]
        base_url = "https://self-signed.local"
        verify = false
        [[checks]]
        name = "static token"
        token = "${CHECK_TOKEN}"
        """
    )
    keys = [w.key for w in profile_warnings(profile, env={})]
    assert keys == ["checks[0].token", "target.verify"]


def test_secret_resolve_names_key_and_variable(auth0: Profile) -> None:
    token = auth0.target_credential.token
    assert token is not None
    assert token.resolve({"BACKEND_SERVICE_TOKEN": "s3cr3t"}) == "s3cr3t"
    with pytest.raises(EnvVarError) as caught:
        token.resolve({})
    error = caught.value
    assert error.key == "target_credential.token"
    assert "BACKEND_SERVICE_TOKEN" in str(error)
    assert error.file == str(AUTH0)
    assert error.line == line_of(auth0, "target_credential.token")
    assert "s3cr3t" not in repr(token)


# ------------------------------------------------------------------ discovery


def test_discover_explicit_wins(tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text("")
    (tmp_path / "env.toml").write_text("")
    (tmp_path / "rrdev.toml").write_text("")
    env = {"RRDEV_PROFILE": "env.toml"}
    assert discover_profile("mine.toml", env, tmp_path) == tmp_path / "mine.toml"
    assert discover_profile(None, env, tmp_path) == tmp_path / "env.toml"
    assert discover_profile(None, {}, tmp_path) == tmp_path / "rrdev.toml"
    assert discover_profile(None, {"RRDEV_PROFILE": ""}, tmp_path) == tmp_path / "rrdev.toml"


def test_discover_explicit_absolute(tmp_path: Path) -> None:
    target = tmp_path / "abs.toml"
    target.write_text("")
    assert discover_profile(str(target), {}, Path("/")) == target


@pytest.mark.parametrize(
    ("explicit", "env", "message"),
    [
        ("missing.toml", {}, "profile missing.toml not found"),
        (None, {"RRDEV_PROFILE": "gone.toml"}, "from RRDEV_PROFILE"),
        (None, {}, "no profile given"),
    ],
)
def test_discover_errors(
    tmp_path: Path, explicit: str | None, env: dict[str, str], message: str
) -> None:
    with pytest.raises(ProfileError) as caught:
        discover_profile(explicit, env, tmp_path)
    assert message in caught.value.detail
    hint = caught.value.hint
    assert "--profile" in hint and "RRDEV_PROFILE" in hint and "rrdev.toml" in hint


# ------------------------------------------------------------------ the table itself


def test_every_error_case_has_one_marker() -> None:
    for case in ERROR_CASES:
        text = case.values[0]
        assert isinstance(text, str)
        assert len(re.findall("# <-", text)) == 1, case.id
