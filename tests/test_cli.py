"""The CLI contract (DESIGN.md §4) through Typer's CliRunner: explain, token, validate.

The seed's scenarios run against profiles/auth0.toml twice: with --offline (the local
keyset stands in for Auth0) and with tokens signed by an outside key whose JWKS is a
file given with --jwks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from factories import CLIENT_ID, jwk_of, make_jwks, make_token, rsa_key
from typer.testing import CliRunner

from rrdev.cli.app import _only_command, app, build_app

ROOT = Path(__file__).resolve().parent.parent
AUTH0 = str(ROOT / "profiles" / "auth0.toml")
ISS = "https://YOUR_TENANT.us.auth0.com/"
AUD = "https://api.myapp.com"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("RRDEV_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RRDEV_PROFILE", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def run(runner: CliRunner, *args: str, stdin: str | None = None) -> Any:
    return runner.invoke(app, list(args), input=stdin)


def mint(runner: CliRunner, *args: str) -> str:
    result = run(runner, "token", "mint", "-p", AUTH0, *args)
    assert result.exit_code == 0, result.output
    return result.stdout.strip()


def explain_json(runner: CliRunner, token: str | None, *args: str) -> tuple[int, dict[str, Any]]:
    argv = ["explain", *([token] if token else []), "-p", AUTH0, "--json", *args]
    result = run(runner, *argv)
    return result.exit_code, json.loads(result.stdout)


# ------------------------------------------------------- the seed, offline

OFFLINE_CASES = [
    # (mint args, method, path, status, reason, deciding rule)
    (["--scope", "read:products"], "GET", "/api/v1/products", 200, "allowed", "read-catalog"),
    (["--scope", "read:products"], "POST", "/api/v1/orders", 200, "allowed", "allow-authenticated"),
    (
        ["--scope", "read:products"],
        "DELETE",
        "/api/v1/products/1",
        403,
        "rule_denied",
        "scope-gate-delete",
    ),
    (
        ["--scope", "read:products delete:resources"],
        "DELETE",
        "/api/v1/products/1",
        200,
        "allowed",
        "allow-authenticated",
    ),
    (["--scope", "read:products"], "OPTIONS", "/api/v1/products", 403, "default_denied", "default"),
]


@pytest.mark.parametrize(("mint_args", "method", "path", "status", "reason", "rule"), OFFLINE_CASES)
def test_seed_scenarios_offline(
    runner: CliRunner,
    mint_args: list[str],
    method: str,
    path: str,
    status: int,
    reason: str,
    rule: str,
) -> None:
    token = mint(runner, *mint_args)
    code, out = explain_json(runner, token, "--offline", "-X", method, "--path", path)
    assert (out["status"], out["reason"], out["deciding_rule"]) == (status, reason, rule)
    assert code == (0 if status == 200 else 1)
    assert set(out) >= {
        "status",
        "reason",
        "message",
        "hint",
        "trace",
        "checks",
        "www_authenticate",
    }
    assert token not in json.dumps(out)


def test_scope_gate_denial_is_explained_for_people(runner: CliRunner) -> None:
    token = mint(runner, "--scope", "read:products")
    result = run(
        runner, "explain", token, "-p", AUTH0, "--offline", "-X", "DELETE", "--path", "/x/1"
    )
    assert result.exit_code == 1
    text = result.stdout
    assert "403 rule_denied" in text
    assert "scope-gate-delete" in text and "deciding rule" in text
    assert "DELETE operations require delete:resources scope" in text
    assert 'scope="read:products"' in text
    assert 'error="insufficient_scope"' in text
    assert token not in text


def test_token_from_stdin_pipes_like_the_readme(runner: CliRunner) -> None:
    token = mint(runner, "--scope", "read:products")
    result = run(
        runner,
        *("explain", "-", "-p", AUTH0, "--offline", "--json", "-X", "DELETE"),
        *("--path", "/api/v1/products/1"),
        stdin=token + "\n",
    )
    assert json.loads(result.stdout)["deciding_rule"] == "scope-gate-delete"


def test_expired_token_says_when_it_expired(runner: CliRunner) -> None:
    token = mint(runner, "--expires-in", "-252")
    code, out = explain_json(runner, token, "--offline", "--path", "/api/v1/products")
    assert code == 1
    assert (out["status"], out["reason"]) == (401, "token_expired")
    assert "expired 4m1" in out["message"] and "ago at" in out["message"]
    assert out["www_authenticate"].startswith('Bearer realm="rrdev", error="invalid_token"')
    failed = [c["name"] for c in out["checks"] if c["status"] == "failed"]
    assert failed == ["expiry"]


def test_client_id_as_audience_gets_the_hint(runner: CliRunner) -> None:
    token = mint(runner, "--aud", CLIENT_ID)
    code, out = explain_json(runner, token, "--offline", "--path", "/api/v1/products")
    assert (code, out["status"], out["reason"]) == (1, 401, "audience_mismatch")
    assert "API identifier" in out["hint"] and "client ID" in out["hint"]


def test_not_yet_valid_token(runner: CliRunner) -> None:
    token = mint(runner, "--not-before", "600")
    code, out = explain_json(runner, token, "--offline")
    assert (code, out["reason"]) == (1, "token_not_yet_valid")


def test_at_evaluates_as_of_another_time(runner: CliRunner) -> None:
    token = mint(runner, "--expires-in", "3600")
    assert explain_json(runner, token, "--offline", "--path", "/api/v1/products")[0] == 0
    code, out = explain_json(
        runner, token, "--offline", "--path", "/api/v1/products", "--at", "+2h"
    )
    assert (code, out["reason"]) == (1, "token_expired")


def test_no_token_is_401_without_error_code(runner: CliRunner) -> None:
    code, out = explain_json(runner, None, "--offline")
    assert (code, out["status"], out["reason"]) == (1, 401, "token_missing")
    assert out["www_authenticate"] == 'Bearer realm="rrdev"'


def test_ambiguous_path_is_400(runner: CliRunner) -> None:
    token = mint(runner)
    code, out = explain_json(runner, token, "--offline", "--path", "/api/v1/../admin")
    assert (code, out["status"], out["reason"]) == (1, 400, "ambiguous_path")


def test_headers_and_query_reach_the_rules(runner: CliRunner, tmp_path: Path) -> None:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(
        '[proxy_credential]\nauth_type = "none"\n'
        '[proxy]\ndefault_effect = "deny"\n'
        "[[proxy.rules]]\n"
        'id = "tenant-acme"\neffect = "allow"\n'
        'headers = [{ name = "^x-tenant$", value = "^acme$" }]\n'
        'query = [{ name = "^debug$", presence = "must_absent" }]\n'
    )
    ok = run(runner, "explain", "--json", "-H", "X-Tenant: acme", "--query", "page=2")
    assert json.loads(ok.stdout)["deciding_rule"] == "tenant-acme"
    assert ok.exit_code == 0
    debug = run(runner, "explain", "--json", "-H", "X-Tenant: acme", "--path", "/x?debug=1")
    assert json.loads(debug.stdout)["reason"] == "default_denied"


# --------------------------------------------- an outside key, --jwks FILE


@pytest.fixture
def outside_jwks(tmp_path: Path) -> str:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(make_jwks(jwk_of(rsa_key("outside"), kid="outside-1"))))
    return str(path)


def outside_token(**claims: Any) -> str:
    import time

    now = int(time.time())
    base = {"iss": ISS, "aud": AUD, "sub": "svc@clients", "iat": now, "exp": now + 600}
    return make_token(rsa_key("outside"), base | claims, kid="outside-1")


JWKS_FILE_CASES = [
    ({"scope": "read:products"}, "GET", "/api/v1/products", 200, "allowed"),
    ({"scope": "read:products"}, "DELETE", "/api/v1/products/1", 403, "rule_denied"),
    ({"scope": "delete:resources"}, "DELETE", "/api/v1/products/1", 200, "allowed"),
    ({"exp": 1_000_000_000}, "GET", "/api/v1/products", 401, "token_expired"),
    ({"aud": CLIENT_ID}, "GET", "/api/v1/products", 401, "audience_mismatch"),
    ({"iss": ISS.rstrip("/")}, "GET", "/api/v1/products", 401, "issuer_mismatch"),
]


@pytest.mark.parametrize(("claims", "method", "path", "status", "reason"), JWKS_FILE_CASES)
def test_seed_scenarios_with_an_outside_key_and_jwks_file(
    runner: CliRunner,
    outside_jwks: str,
    claims: dict[str, Any],
    method: str,
    path: str,
    status: int,
    reason: str,
) -> None:
    token = outside_token(**claims)
    code, out = explain_json(runner, token, "--jwks", outside_jwks, "-X", method, "--path", path)
    assert (out["status"], out["reason"]) == (status, reason)
    assert code == (0 if status == 200 else 1)


def test_local_keyset_token_is_unknown_to_the_outside_jwks(
    runner: CliRunner, outside_jwks: str
) -> None:
    token = mint(runner)
    code, out = explain_json(runner, token, "--jwks", outside_jwks)
    assert (code, out["reason"]) == (1, "key_not_found")
    assert "outside-1" in out["hint"]


def test_unreachable_jwks_is_503_and_exit_4(runner: CliRunner) -> None:
    token = outside_token()
    code, out = explain_json(runner, token, "--jwks", "http://127.0.0.1:9/jwks.json")
    assert (code, out["status"], out["reason"]) == (4, 503, "jwks_unavailable")


# ------------------------------------------------------------ token decode


def test_decode_marks_unverified_and_humanises_times(runner: CliRunner) -> None:
    token = mint(runner, "--scope", "read:products")
    result = run(runner, "token", "decode", token)
    assert result.exit_code == 0
    assert "UNVERIFIED" in result.stdout
    assert "read:products" in result.stdout
    assert "(in 59m" in result.stdout or "(in 1h" in result.stdout
    assert token not in result.stdout


def test_decode_json(runner: CliRunner) -> None:
    token = mint(runner, "--claim", "tier=3", "--claim", "team=blue")
    out = json.loads(run(runner, "token", "decode", "--json", token).stdout)
    assert out["verified"] is False
    assert out["claims"]["tier"] == 3 and out["claims"]["team"] == "blue"
    assert out["header"]["alg"] == "RS256"


@pytest.mark.parametrize("garbage", ["not-a-jwt", "a.b", "e30.e30.e30.e30", "x.y.z"])
def test_decode_malformed_exits_1_without_traceback(runner: CliRunner, garbage: str) -> None:
    result = run(runner, "token", "decode", garbage)
    assert result.exit_code == 1
    assert "error:" in result.stderr
    assert "Traceback" not in result.output


def test_mint_without_profile_uses_demo_identity(runner: CliRunner) -> None:
    result = run(runner, "token", "mint", "--scope", "s")
    claims = json.loads(run(runner, "token", "decode", "--json", result.stdout.strip()).stdout)
    assert claims["claims"]["iss"] == "https://rrdev.local/"


# ---------------------------------------------------------------- validate


def test_validate_shipped_profile_warns_about_unset_secrets(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("BACKEND_SERVICE_TOKEN", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET"):
        monkeypatch.delenv(name, raising=False)
    result = run(runner, "validate", AUTH0)
    assert result.exit_code == 0
    assert "BACKEND_SERVICE_TOKEN" in result.stdout
    assert run(runner, "validate", AUTH0, "--strict").exit_code == 3


def test_validate_broken_profile_names_file_line_key(runner: CliRunner, tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text(
        '[proxy_credential]\nauth_type = "none"\n\n[[proxy.rules]]\neffect = "allow"\n'
        'methd = ["GET"]\n'
    )
    result = run(runner, "validate", str(broken), "--json")
    assert result.exit_code == 3
    (entry,) = json.loads(result.stdout)
    assert "broken.toml:6" in entry["errors"][0]
    assert "proxy.rules[0].methd" in entry["errors"][0]
    assert "did you mean 'methods'" in entry["errors"][0]


def test_explain_with_broken_profile_exits_3(runner: CliRunner, tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text('[proxy_credential]\nauth_type = "none"\n[[proxy.rules]]\neffect = "maybe"\n')
    result = run(runner, "explain", "-p", str(broken))
    assert result.exit_code == 3
    assert "broken.toml:4" in result.stderr
    assert "Traceback" not in result.output


def test_no_profile_anywhere_exits_3_with_hint(runner: CliRunner) -> None:
    result = run(runner, "explain")
    assert result.exit_code == 3
    assert "RRDEV_PROFILE" in result.stderr


def test_profile_discovered_from_environment(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RRDEV_PROFILE", AUTH0)
    token = mint(runner, "--scope", "read:products")
    result = run(runner, "explain", token, "--offline", "--json", "--path", "/api/v1/users")
    assert json.loads(result.stdout)["deciding_rule"] == "read-catalog"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-H", "no-colon"], "is not 'Name: value'"),
        (["--query", "novalue"], "is not 'name=value'"),
        (["--at", "yesterday-ish"], "is not a time"),
    ],
)
def test_usage_errors_exit_2(runner: CliRunner, args: list[str], message: str) -> None:
    result = run(runner, "explain", "-p", AUTH0, "--offline", *args)
    assert result.exit_code == 2
    assert message in result.stderr


# -------------------------------------------------------------------- init


def test_init_writes_a_starter_whose_checks_pass(runner: CliRunner, tmp_path: Path) -> None:
    result = run(runner, "init")
    assert result.exit_code == 0, result.output
    written = tmp_path / "rrdev.toml"
    assert "TODO" in written.read_text()
    assert run(runner, "validate").exit_code == 0  # discovered as ./rrdev.toml
    checked = run(runner, "check", "--offline", "--require-coverage", "--json")
    assert checked.exit_code == 0, checked.output


def test_init_refuses_to_overwrite_without_force(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "mine.toml").write_text("# mine\n")
    result = run(runner, "init", "mine.toml")
    assert result.exit_code == 3
    assert "already exists" in result.stderr
    assert (tmp_path / "mine.toml").read_text() == "# mine\n"
    assert run(runner, "init", "mine.toml", "--force").exit_code == 0
    assert "[proxy_credential]" in (tmp_path / "mine.toml").read_text()


@pytest.mark.parametrize(
    ("header", "shown", "hidden"),
    [
        ("mysupersecretapikey12345", "a bare value, not shown", "mysupersecret"),
        ("Basic dXNlcjpwYXNzd29yZA==", "scheme: Basic", "dXNlcjpw"),
        ("Token=abc123secret xyz", "a bare value, not shown", "abc123secret"),
    ],
)
def test_a_non_bearer_authorization_is_never_echoed(
    runner: CliRunner, header: str, shown: str, hidden: str
) -> None:
    code, out = explain_json(runner, None, "--offline", "-H", f"Authorization: {header}")
    assert (code, out["reason"]) == (1, "token_malformed")
    assert shown in out["message"]
    assert hidden not in json.dumps(out)


def test_empty_stdin_is_a_usage_error(runner: CliRunner) -> None:
    result = run(runner, "explain", "-", "-p", AUTH0, "--offline", stdin="")
    assert result.exit_code == 2
    assert "stdin" in result.stderr


# ------------------------------------------------------ front-end polish


def test_version_flag(runner: CliRunner) -> None:
    result = run(runner, "--version")
    assert result.exit_code == 0
    assert result.stdout.startswith("rrdev ")


@pytest.mark.parametrize("command", [["explain", "-p", AUTH0], ["up", AUTH0], ["check", AUTH0]])
def test_a_missing_jwks_file_is_a_config_error_up_front(
    runner: CliRunner, command: list[str]
) -> None:
    result = run(runner, *command, "--jwks", "/nonexistent/jwks.json")
    assert result.exit_code == 3
    assert "no such file" in result.stderr


def test_validate_prints_user_text_verbatim(runner: CliRunner, tmp_path: Path) -> None:
    """Rich markup and emoji codes in messages must not eat the user's text."""
    lines = ["[proxy_credential]", 'auth_type = "none"', *["#"] * 96, "[[proxy.rules]]"]
    (tmp_path / "p.toml").write_text("\n".join([*lines, 'effect = "[red]x"']) + "\n")
    (tmp_path / "q.toml").write_text('[proxy]\ndefault_effect = "deny"\n')
    result = run(runner, "validate", "p.toml", "q.toml")
    assert result.exit_code == 3
    assert "p.toml:100:" in result.stdout
    assert "'[red]x'" in result.stdout
    assert "no [proxy_credential] section" in result.stdout


def test_piped_output_is_not_hard_wrapped_at_80_columns(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("COLUMNS", raising=False)
    token = mint(runner, "--scope", "read:products")
    result = run(runner, "explain", token, "-p", AUTH0, "--offline", "-X", "DELETE")
    hint = next(line for line in result.stdout.splitlines() if "hint:" in line)
    assert hint.rstrip().endswith('(the token has scope="read:products")')


# ------------------------------------------------------- the single-command root


@pytest.mark.parametrize(
    "args",
    [
        ["explain", "--help"],
        ["explain", "--bogus"],
        ["explain", "-X"],
        ["explain", "-", "--offline", "-p", AUTH0, "--path", "/api/v1/products"],
        ["explain", "-", "--offline", "-p", AUTH0, "-X", "DELETE", "--path", "/api/v1/products/1"],
        ["validate", AUTH0, "--json"],
        ["version"],
    ],
    ids=["help", "bad-option", "missing-value", "allowed", "refused", "validate", "version"],
)
def test_a_root_with_one_command_answers_as_the_full_app(
    runner: CliRunner, args: list[str]
) -> None:
    """``main`` gives ``rrdev explain ...`` a root holding explain alone (Typer then builds
    one command's options, not the whole tree's): same output, same exit code."""
    token = mint(runner, "--scope", "read:products")
    full = runner.invoke(app, args, input=token)
    alone = runner.invoke(build_app(only=args[0]), args, input=token)
    assert (alone.exit_code, alone.output) == (full.exit_code, full.output)
    assert full.exit_code in (0, 1, 2)


@pytest.mark.parametrize(
    ("argv", "env", "only"),
    [
        (["explain", "-p", "x.toml"], {}, "explain"),
        (["up"], {}, "up"),
        (["token", "mint"], {}, None),
        (["--version"], {}, None),
        ([], {}, None),
        (["explian"], {}, None),
        (["explain"], {"_RRDEV_COMPLETE": "complete_bash"}, None),
    ],
)
def test_only_the_named_top_level_command_is_built(
    monkeypatch: pytest.MonkeyPatch, argv: list[str], env: dict[str, str], only: str | None
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert _only_command(argv) == only
