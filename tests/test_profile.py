"""The profile loader: the shipped auth0 profile, line numbers, every error's
file/line/key/message, and profile discovery."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from rrdev.core.errors import EnvVarError, ProfileError
from rrdev.core.model import Profile, Secret, Target
from rrdev.core.profile import (
    build_line_index,
    check_problems,
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
    code = f"from rrdev.core.profile import load_profile; load_profile({str(AUTH0)!r})"
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
        auth_type = "oauth2"  # <-
        """,
        "proxy_credential.auth_type",
        "expected one of 'jwtVerify', 'none', 'apiKey', 'bearer', 'basicAuth', 'jwt', got 'oauth2'",
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


#: Problems of a [[checks]] entry: the profile loads, the check carries the problem
#: (file, line, key, message), and only that check fails in `rrdev check`.
CHECK_PROBLEM_CASES = [
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
    pytest.param(
        """
        [[proxy.rules]]
        id = "scope-gate-delete"
        effect = "deny"

        [[checks]]
        name = "x"
        expect = { status = 403, rule = "scope-gate-delet" }  # <-
        """,
        "checks[0].expect.rule",
        "unknown rule 'scope-gate-delet'; did you mean 'scope-gate-delete'?",
        id="check-expect-unknown-rule",
    ),
    pytest.param(
        """
        [[target.rules]]
        effect = "deny"

        [target]
        base_url = "https://x"

        [[checks]]
        name = "x"

        [[checks]]
        name = "y"

        [checks.expect]
        rule = "target[1]"  # <-
        """,
        "checks[1].expect.rule",
        "unknown rule 'target[1]'; did you mean 'target[0]'?",
        id="check-expect-unknown-unnamed-rule",
    ),
    pytest.param(
        """
        [[checks]]
        name = "x"
        expect = { rule = "defualt" }  # <-
        """,
        "checks[0].expect.rule",
        "unknown rule 'defualt'; did you mean 'default'?",
        id="check-expect-default-typo",
    ),
]


@pytest.mark.parametrize(("text", "key", "message"), CHECK_PROBLEM_CASES)
def test_check_problems_do_not_fail_the_profile(text: str, key: str, message: str) -> None:
    profile = parse(text)
    [problem] = check_problems(profile)
    assert problem.file == FILE
    assert problem.key == key
    assert message in problem.message
    assert problem.line == marked_line(text)
    assert str(problem).startswith(f"{FILE}:{problem.line}: {key}: ")


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


@pytest.mark.parametrize(
    "rule",
    ["read-catalog", "proxy[1]", "target_credential[0]", "default"],
)
def test_check_expect_rule_names_a_rule_or_default(rule: str) -> None:
    profile = parse(
        f"""
        [[proxy.rules]]
        id = "read-catalog"
        effect = "allow"

        [[proxy.rules]]
        effect = "deny"

        [[target_credential.rules]]
        effect = "allow"

        [[checks]]
        name = "x"
        expect = {{ rule = "{rule}" }}
        """
    )
    assert profile.checks[0].expect == {"rule": rule}


def test_check_expect_unknown_rule_hint_lists_the_rules() -> None:
    text = """
    [[proxy.rules]]
    id = "read-catalog"
    effect = "allow"

    [[proxy.rules]]
    effect = "deny"

    [[checks]]
    name = "x"
    expect = { rule = "nope" }
    """
    [problem] = check_problems(parse(text))
    assert problem.message == "unknown rule 'nope'"
    assert "This profile's rules: read-catalog, proxy[1]" in problem.hint
    assert "'default'" in problem.hint
    [problem] = check_problems(parse('[[checks]]\nname = "x"\nexpect = { rule = "nope" }\n'))
    assert "This profile's rules: none" in problem.hint


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


METHOD_WARNING_CASES = [
    # (rule methods, check method, [(key, message)])
    ('["GET", "DELETE"]', "POST", []),
    ('["propfind", "MKCOL", "REPORT"]', "OPTIONS", []),  # WebDAV, upper-cased at load
    (
        '["GETT"]',
        "GET",
        [
            (
                "proxy.rules[0].methods[0]",
                "'GETT' is not a standard HTTP method; did you mean 'GET'? "
                "(rule 'reads' matches only GETT requests)",
            )
        ],
    ),
    (
        '["GET", "DELTE"]',
        "PSOT",
        [
            (
                "proxy.rules[0].methods[1]",
                "'DELTE' is not a standard HTTP method; did you mean 'DELETE'?",
            ),
            ("checks[0].method", "'PSOT' is not a standard HTTP method; did you mean 'POST'?"),
        ],
    ),
    (
        '["X-CUSTOM"]',
        "GET",
        [
            (
                "proxy.rules[0].methods[0]",
                "'X-CUSTOM' is not a standard HTTP method (rule 'reads'",
            )
        ],
    ),
]


@pytest.mark.parametrize(("methods", "check_method", "expected"), METHOD_WARNING_CASES)
def test_profile_warnings_flag_nonstandard_methods(
    methods: str, check_method: str, expected: list[tuple[str, str]]
) -> None:
    text = f"""
    [[proxy.rules]]
    id = "reads"
    effect = "allow"
    methods = {methods}

    [[checks]]
    name = "c"
    method = "{check_method}"
    """
    profile = parse(text)
    warnings = profile_warnings(profile, env={})
    assert [w.key for w in warnings] == [key for key, _ in expected]
    lines = textwrap.dedent(text).splitlines()
    for warning, (key, message) in zip(warnings, expected, strict=True):
        assert message in warning.message
        assert warning.file == FILE
        written = "methods =" if key.startswith("proxy") else "method ="
        assert warning.line == next(n for n, x in enumerate(lines, 1) if x.startswith(written))


def test_shipped_profiles_warn_about_nothing_but_unset_variables(auth0: Profile) -> None:
    from rrdev.servers.demo import load_demo_profile

    assert profile_warnings(load_demo_profile(), env={}) == []
    assert all("environment variable" in w.message for w in profile_warnings(auth0, env={}))


def test_demo_refetches_the_local_jwks_quickly_after_a_rotation() -> None:
    """``rrdev issuer rotate`` in the demo: a token with the new kid must not be refused
    for the default 30 s refetch interval."""
    from rrdev.servers.demo import load_demo_profile

    cred = load_demo_profile().proxy_credential
    assert cred.jwks_refetch_interval_seconds == 1


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


# ------------------------------------------------------------------ forwarding constraints

#: Errors about what ``rrdev up`` would forward broken (DESIGN.md §2.5): each case is
#: (text, key, message, hint), all fragments of the error.
FORWARDING_CASES = [
    # -- additional_headers: names rrdev owns
    pytest.param(
        """
        [proxy]
        additional_headers = { Authorization = "Bearer x" }  # <-
        """,
        "proxy.additional_headers.Authorization",
        "'Authorization' cannot be an additional header: the backend gets exactly one "
        "Authorization",
        "use forward_authorization_as",
        id="additional-authorization",
    ),
    pytest.param(
        """
        [proxy]
        additional_headers = { proxy-authorization = "Basic eDp5" }  # <-
        """,
        "proxy.additional_headers.proxy-authorization",
        "cannot be an additional header: it is hop-by-hop",
        "another header name",
        id="additional-proxy-authorization",
    ),
    pytest.param(
        """
        [proxy.additional_headers]
        X-Env = "dev"
        HOST = "api.internal"  # <-
        """,
        "proxy.additional_headers.HOST",
        "'HOST' cannot be an additional header: Host is always the target's",
        "change target.base_url",
        id="additional-host",
    ),
    pytest.param(
        """
        [proxy]
        additional_headers = { Content-Length = "0" }  # <-
        """,
        "proxy.additional_headers.Content-Length",
        "cannot be an additional header: it frames the request body",
        "remove it",
        id="additional-content-length",
    ),
    pytest.param(
        """
        [proxy]
        additional_headers = { Transfer-Encoding = "chunked" }  # <-
        """,
        "proxy.additional_headers.Transfer-Encoding",
        "cannot be an additional header: it frames the request body",
        "remove it",
        id="additional-transfer-encoding",
    ),
    pytest.param(
        """
        [proxy]
        additional_headers = { Connection = "close" }  # <-
        """,
        "proxy.additional_headers.Connection",
        "cannot be an additional header: it is a hop-by-hop header",
        "remove it",
        id="additional-hop-by-hop",
    ),
    pytest.param(
        """
        [proxy]
        additional_headers = { X-Forwarded-For = "10.0.0.1" }  # <-
        """,
        "proxy.additional_headers.X-Forwarded-For",
        "rrdev sets X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host itself",
        "header_filters",
        id="additional-x-forwarded-for",
    ),
    pytest.param(
        """
        [proxy]
        additional_headers = { requestrocket-proxy-code = "proxy-access-granted" }  # <-
        """,
        "proxy.additional_headers.requestrocket-proxy-code",
        "it is the gateway's response header to the caller",
        "another header name",
        id="additional-requestrocket-code",
    ),
    pytest.param(
        """
        [proxy]
        additional_headers = { x-api-key = "static" }  # <-
        [target_credential]
        auth_type = "api_key"
        api_key = "${K}"
        header = "X-API-Key"
        """,
        "proxy.additional_headers.x-api-key",
        "'x-api-key' is the target credential's api-key header (target_credential.header, "
        "line 7): the backend would get two x-api-key headers",
        "rrdev sets the api-key header itself",
        id="additional-api-key-header",
    ),
    pytest.param(
        """
        [proxy.additional_headers]
        X-Tenant = "a"
        x-tenant = "b"  # <-
        """,
        "proxy.additional_headers.x-tenant",
        "duplicate header name 'x-tenant' (header names are case-insensitive): also "
        "proxy.additional_headers.X-Tenant at line 3",
        "keep one",
        id="additional-duplicate-name",
    ),
    # -- additional_headers: names that are not RFC 9110 tokens
    pytest.param(
        """
        [proxy]
        additional_headers = { "X-Env\\n" = "dev" }  # <-
        """,
        "proxy.additional_headers.X-Env\n",
        "'X-Env\\n' is not a valid HTTP header name",
        "RFC 9110 token",
        id="additional-name-trailing-newline",
    ),
    pytest.param(
        """
        [proxy]
        additional_headers = { "X-Env:" = "dev" }  # <-
        """,
        "proxy.additional_headers.X-Env:",
        "'X-Env:' is not a valid HTTP header name",
        "no spaces, colons",
        id="additional-name-colon",
    ),
    pytest.param(
        """
        [proxy]
        additional_headers = { "" = "dev" }  # <-
        """,
        "proxy.additional_headers.",
        "'' is not a valid HTTP header name",
        "RFC 9110 token",
        id="additional-name-empty",
    ),
    # -- additional_headers: values
    pytest.param(
        """
        [proxy]
        additional_headers = { X-Env = "dev\\r\\nX-Admin: true" }  # <-
        """,
        "proxy.additional_headers.X-Env",
        "control character '\\r' in the header value",
        "every forwarded request would fail (502)",
        id="value-crlf",
    ),
    pytest.param(
        """
        [proxy.additional_headers]
        X-Note = \"\"\"first line  # <-
        second line\"\"\"
        """,
        "proxy.additional_headers.X-Note",
        "control character '\\n' in the header value",
        "multi-line",
        id="value-multiline-string",
    ),
    pytest.param(
        """
        [proxy]
        additional_headers = { X-Env = "a\\u0000b" }  # <-
        """,
        "proxy.additional_headers.X-Env",
        "control character '\\x00' in the header value",
        "NUL",
        id="value-nul",
    ),
    pytest.param(
        """
        [proxy]
        additional_headers = { X-Env = "dev\\u007f" }  # <-
        """,
        "proxy.additional_headers.X-Env",
        "control character '\\x7f' in the header value",
        "control characters",
        id="value-del",
    ),
    pytest.param(
        """
        [proxy]
        additional_headers = { X-User = "{claims.sub}\\u0007" }  # <-
        """,
        "proxy.additional_headers.X-User",
        "control character '\\x07' in the header value",
        "control characters",
        id="value-template-static-part",
    ),
    pytest.param(
        """
        [proxy]
        additional_headers = { X-Env = "dev\\u0085" }  # <-
        """,
        "proxy.additional_headers.X-Env",
        "control character '\\x85' in the header value",
        "a backend may refuse or mangle the request",
        id="value-c1-control",
    ),
    # -- additional_headers: placeholders
    pytest.param(
        """
        [proxy]
        additional_headers = { X-User = "{claims.}" }  # <-
        """,
        "proxy.additional_headers.X-User",
        "malformed claim placeholder '{claims.}' (expected {claims.<name>})",
        "{claims.sub}",
        id="placeholder-empty-name",
    ),
    pytest.param(
        """
        [proxy]
        additional_headers = { X-User = "user={claims.sub" }  # <-
        """,
        "proxy.additional_headers.X-User",
        "malformed claim placeholder '{claims.sub'",
        "{claims.sub}",
        id="placeholder-unclosed",
    ),
    pytest.param(
        """
        [proxy]
        additional_headers = { X-User = "{ claims.sub }" }  # <-
        """,
        "proxy.additional_headers.X-User",
        "malformed claim placeholder '{ claims.sub }'",
        "without spaces",
        id="placeholder-spaces",
    ),
    pytest.param(
        """
        [proxy]
        additional_headers = { X-User = "{Claim.sub}" }  # <-
        """,
        "proxy.additional_headers.X-User",
        "malformed claim placeholder '{Claim.sub}'",
        "case-sensitive",
        id="placeholder-misspelt",
    ),
    pytest.param(
        """
        [proxy]
        additional_headers = { X-Plan = "{claims.app..plan}" }  # <-
        """,
        "proxy.additional_headers.X-Plan",
        "malformed claim placeholder '{claims.app..plan}' (empty name in the dotted path)",
        "dotted path",
        id="placeholder-empty-segment",
    ),
    pytest.param(
        """
        [proxy]
        additional_headers = { X-User = "{sub}" }  # <-
        """,
        "proxy.additional_headers.X-User",
        "unknown placeholder '{sub}': only {claims.<name>} is filled in",
        "{claims.sub}",
        id="placeholder-unknown",
    ),
    pytest.param(
        """
        [proxy]
        additional_headers = { X-User = "user-{" }  # <-
        """,
        "proxy.additional_headers.X-User",
        "unclosed '{' in the header value",
        "{claims.<name>}",
        id="placeholder-unclosed-brace",
    ),
    pytest.param(
        """
        [proxy]
        additional_headers = { X-User = "{claims.sub}}" }  # <-
        """,
        "proxy.additional_headers.X-User",
        "unmatched '}' in the header value",
        "{claims.<name>}",
        id="placeholder-stray-brace",
    ),
    # -- target.base_url: what rrdev up refused at start
    pytest.param(
        """
        [target]
        base_url = "http://svc:hunter2@backend.example"  # <-
        """,
        "target.base_url",
        "must not carry user:password@ (rrdev would send it as a second Authorization)",
        "auth_type = 'basic'",
        id="base-url-userinfo",
    ),
    pytest.param(
        """
        [target]
        base_url = "https://svc@backend.example/api"  # <-
        """,
        "target.base_url",
        "must not carry user:password@",
        "auth_type = 'basic'",
        id="base-url-user-only",
    ),
    pytest.param(
        """
        [target]
        base_url = "https://backend.example/api?version=2"  # <-
        """,
        "target.base_url",
        "must not have a query or fragment",
        "base_url + path + the caller's query",
        id="base-url-query",
    ),
    pytest.param(
        """
        [target]
        base_url = "https://backend.example/api#v2"  # <-
        """,
        "target.base_url",
        "must not have a query or fragment",
        "query_param",
        id="base-url-fragment",
    ),
    pytest.param(
        """
        [target]
        base_url = "http://:8080"  # <-
        """,
        "target.base_url",
        "expected an http:// or https:// URL, got 'http://:8080'",
        "",
        id="base-url-no-host",
    ),
    pytest.param(
        """
        [target]
        base_url = "http://[::1"  # <-
        """,
        "target.base_url",
        "not a valid URL: Invalid IPv6 URL",
        "base_url = 'https://",
        id="base-url-broken-ipv6",
    ),
    pytest.param(
        """
        [target]
        base_url = "http://backend.example:99999"  # <-
        """,
        "target.base_url",
        "not a valid URL: Port out of range",
        "base_url = 'https://",
        id="base-url-port-range",
    ),
    pytest.param(
        """
        [target]
        base_url = "http://backend.example/my api"  # <-
        """,
        "target.base_url",
        "must not contain whitespace or control characters",
        "%20",
        id="base-url-space",
    ),
    # -- forward_authorization_as
    pytest.param(
        """
        [proxy]
        forward_authorization_as = "Authorization"  # <-
        """,
        "proxy.forward_authorization_as",
        "'Authorization' cannot be forward_authorization_as: the backend gets exactly one "
        "Authorization",
        "X-Original-Authorization",
        id="forward-as-authorization",
    ),
    pytest.param(
        """
        [proxy]
        forward_authorization_as = "authorization"  # <-
        """,
        "proxy.forward_authorization_as",
        "'authorization' cannot be forward_authorization_as",
        "X-Original-Authorization",
        id="forward-as-authorization-lower-case",
    ),
    pytest.param(
        """
        [proxy]
        forward_authorization_as = "Host"  # <-
        """,
        "proxy.forward_authorization_as",
        "'Host' cannot be forward_authorization_as: Host is always the target's",
        "change target.base_url",
        id="forward-as-host",
    ),
    pytest.param(
        """
        [proxy]
        forward_authorization_as = "X-Forwarded-Host"  # <-
        """,
        "proxy.forward_authorization_as",
        "rrdev sets X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host itself",
        "header_filters",
        id="forward-as-x-forwarded",
    ),
    pytest.param(
        """
        [proxy]
        forward_authorization_as = "X-API-KEY"  # <-
        [target_credential]
        auth_type = "api_key"
        api_key = "${K}"
        header = "x-api-key"
        """,
        "proxy.forward_authorization_as",
        "'X-API-KEY' is the target credential's api-key header",
        "rrdev sets the api-key header itself",
        id="forward-as-api-key-header",
    ),
    pytest.param(
        """
        [proxy]
        additional_headers = { X-Caller = "{claims.sub}" }
        forward_authorization_as = "x-caller"  # <-
        """,
        "proxy.forward_authorization_as",
        "'x-caller' is also an additional header (proxy.additional_headers.X-Caller, line 3): "
        "the backend would get two x-caller headers",
        "another name",
        id="forward-as-additional-header",
    ),
    pytest.param(
        """
        [proxy]
        forward_authorization_as = "X Original"  # <-
        """,
        "proxy.forward_authorization_as",
        "'X Original' is not a valid HTTP header name",
        "RFC 9110 token",
        id="forward-as-bad-name",
    ),
    # -- header_filters
    pytest.param(
        """
        [proxy]
        header_filters = ["X-Debug", "Host"]  # <-
        """,
        "proxy.header_filters[1]",
        "'Host' cannot be filtered: every request needs a Host",
        "remove it",
        id="filter-host",
    ),
    pytest.param(
        """
        [proxy]
        header_filters = [
          "X-Debug",
          "content-length",  # <-
        ]
        """,
        "proxy.header_filters[1]",
        "'content-length' cannot be filtered: it frames the request body",
        "correct framing",
        id="filter-content-length",
    ),
    pytest.param(
        """
        [proxy]
        header_filters = ["Transfer-Encoding"]  # <-
        """,
        "proxy.header_filters[0]",
        "'Transfer-Encoding' cannot be filtered: it frames the request body",
        "correct framing",
        id="filter-transfer-encoding",
    ),
    # -- the api_key credential's own header
    pytest.param(
        """
        [target_credential]
        auth_type = "api_key"
        api_key = "${K}"
        header = "X-Forwarded-For"  # <-
        """,
        "target_credential.header",
        "'X-Forwarded-For' cannot be the api-key header: rrdev sets X-Forwarded-For",
        "header_filters",
        id="api-key-header-reserved",
    ),
    pytest.param(
        """
        [target_credential]
        auth_type = "api_key"
        api_key = "${K}"
        header = "X-Key\\n"  # <-
        """,
        "target_credential.header",
        "'X-Key\\n' is not a valid HTTP header name",
        "RFC 9110 token",
        id="api-key-header-trailing-newline",
    ),
    # -- methods are tokens too
    pytest.param(
        """
        [[proxy.rules]]
        effect = "allow"
        methods = ["GET\\n"]  # <-
        """,
        "proxy.rules[0].methods[0]",
        "'GET\\n' is not a valid HTTP method",
        "",
        id="method-trailing-newline",
    ),
]


@pytest.mark.parametrize(("text", "key", "message", "hint"), FORWARDING_CASES)
def test_forwarding_errors(text: str, key: str, message: str, hint: str) -> None:
    with pytest.raises(ProfileError) as caught:
        parse(text)
    error = caught.value
    assert error.file == FILE
    assert error.key == key
    assert message in error.detail
    assert hint in error.hint
    assert error.line == marked_line(text)
    assert str(error).startswith(f"{FILE}:{error.line}: {key}: ")
    assert error.exit_code == 3


#: DESIGN.md §2.5 and the proxy: headers rrdev owns upstream.
RESERVED = (
    *("Authorization", "Proxy-Authorization", "Host", "Content-Length", "Transfer-Encoding"),
    *("Connection", "Keep-Alive", "Proxy-Authenticate", "Proxy-Connection", "TE"),
    *("Trailer", "Upgrade", "Expect", "X-Forwarded-For", "X-Forwarded-Proto"),
    *("X-Forwarded-Host", "requestrocket-proxy-code", "requestrocket-proxy-message"),
)


@pytest.mark.parametrize(
    "name", list(dict.fromkeys(n for r in RESERVED for n in (r, r.upper(), r.lower())))
)
def test_every_reserved_name_is_refused_both_ways(name: str) -> None:
    with pytest.raises(ProfileError, match="cannot be an additional header") as caught:
        parse(f'[proxy]\nadditional_headers = {{ "{name}" = "v" }}\n')
    assert caught.value.key == f"proxy.additional_headers.{name}" and caught.value.line == 2
    assert caught.value.hint
    with pytest.raises(ProfileError, match="cannot be forward_authorization_as") as caught:
        parse(f'[proxy]\nforward_authorization_as = "{name}"\n')
    assert caught.value.key == "proxy.forward_authorization_as" and caught.value.line == 2


def test_userinfo_password_is_not_echoed() -> None:
    with pytest.raises(ProfileError) as caught:
        parse('[target]\nbase_url = "ftp://svc:hunter2@backend.example"\n')
    assert "hunter2" not in str(caught.value) and "hunter2" not in caught.value.hint


def test_what_forwards_fine_still_loads() -> None:
    """The constraints refuse only what breaks: these are all forwarded as written."""
    profile = parse(
        """
        [proxy]
        header_filters = ["Authorization", "X-Forwarded-For", "Connection", "Cookie"]
        forward_authorization_as = "X-Original-Authorization"
        [proxy.additional_headers]
        X-Json = '{"plan": "pro", "tags": {"a": 1}}'
        X-Tabbed = "a\\tb"
        X-Roles = "{claims.https://example.com/roles}"
        X-Plan = "plan={claims.app_metadata.plan};v=1"
        X-Unicode = "café"
        "!#$%&'*+.^_`|~" = "every tchar"
        [target]
        base_url = "https://backend.example:8443/api/"
        [target_credential]
        auth_type = "api_key"
        api_key = "${K}"
        header = "Authorization"
        """
    )
    headers = dict(profile.proxy.additional_headers)
    assert headers["X-Tabbed"].template == "a\tb"
    assert headers["X-Json"].template == '{"plan": "pro", "tags": {"a": 1}}'
    assert not headers["X-Json"].uses_claims
    assert headers["X-Plan"].uses_claims
    assert profile.proxy.header_filters[:2] == ("Authorization", "X-Forwarded-For")
    assert profile.target.base_url == "https://backend.example:8443/api/"
    assert profile.target_credential.header == "Authorization"


# ------------------------------------------------------------------ the table itself


def test_every_error_case_has_one_marker() -> None:
    for case in [*ERROR_CASES, *FORWARDING_CASES]:
        text = case.values[0]
        assert isinstance(text, str)
        assert len(re.findall("# <-", text)) == 1, case.id
