"""Wrong or noisy text a new user hit (issue 14), each fixed and pinned here: the HS*
hint, the format row of a malformed token, ``check --against`` coverage, and the TOML
escape error of a regex in a double-quoted string."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from factories import hmac_token, make_cred, verify
from typer.testing import CliRunner

from rrdev.checks.against import deciding_from_message
from rrdev.cli.app import app

ROOT = Path(__file__).resolve().parent.parent
AUTH0 = str(ROOT / "profiles" / "auth0.toml")


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("RRDEV_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RRDEV_PROFILE", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def explain_json(runner: CliRunner, token: str) -> dict[str, Any]:
    result = runner.invoke(app, ["explain", token, "-p", AUTH0, "--offline", "--json"])
    assert result.exit_code == 1, result.output
    return json.loads(result.stdout)


def step(body: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in body["checks"] if s["name"] == name)


# ------------------------------------------------------------------ HS* hint


def test_hs256_hint_says_what_the_profile_allows(runner: CliRunner) -> None:
    body = explain_json(runner, hmac_token(b"a shared secret"))
    assert body["reason"] == "algorithm_not_allowed"
    hint = body["hint"]
    assert "remove HS*" not in hint  # profiles/auth0.toml lists no HS* algorithm
    assert "allows only RS256" in hint and "shared secret" in hint


async def test_hs256_hint_names_the_profile_s_own_hs_entry() -> None:
    # A credential built in code (the parser refuses HS*) that lists one: the old advice.
    cred = make_cred(algorithms=("RS256", "HS256"))
    result = await verify(hmac_token(b"a shared secret"), cred)
    assert result.reason == "algorithm_not_allowed"
    assert result.hint.startswith("remove HS* from proxy_credential.algorithms")


# ------------------------------------------------------------------ the format row


@pytest.mark.parametrize(
    ("token", "seen"),
    [("abc.def", "2 dot-separated parts, 7 bytes"), ("a.b.c", "3 dot-separated parts, 5 bytes")],
)
def test_format_row_shows_what_was_seen(runner: CliRunner, token: str, seen: str) -> None:
    body = explain_json(runner, token)
    row = step(body, "format")
    assert row["status"] == "failed"
    assert row["actual"] == seen and row["expected"] != row["actual"]
    text = runner.invoke(app, ["explain", token, "-p", AUTH0, "--offline"]).stdout
    line = next(x for x in text.splitlines() if "format" in x)
    assert line.count("three base64url parts") == 1 and seen in line


# ------------------------------------------------------------------ --against coverage

MESSAGES = [
    (
        "allowed by proxy 'read-catalog'",
        (
            ("proxy_credential", "default"),
            ("target_credential", "default"),
            ("proxy", "read-catalog"),
            ("target", "default"),
        ),
    ),
    (
        "allowed by proxy credential 'a', target 'b'",
        (
            ("proxy_credential", "a"),
            ("target_credential", "default"),
            ("proxy", "default"),
            ("target", "b"),
        ),
    ),
    (
        "allowed: every scope's default effect is allow",
        tuple((s, "default") for s in ("proxy_credential", "target_credential", "proxy", "target")),
    ),
    ("OK", None),  # a deployed gateway's own wording: not read as rrdev's
    ("allowed by proxy 'a', somewhere 'b'", None),
    ("allowed by proxy read-catalog", None),
]


@pytest.mark.parametrize(("message", "deciding"), MESSAGES)
def test_the_granted_message_names_the_deciding_rules(message: str, deciding: Any) -> None:
    assert deciding_from_message(message) == deciding


# ------------------------------------------------------------------ TOML escapes


def test_a_regex_in_a_double_quoted_string_gets_the_single_quote_hint(
    runner: CliRunner, tmp_path: Path
) -> None:
    demo = (ROOT / "rrdev" / "data" / "demo.toml").read_text(encoding="utf-8")
    rule = '\n[[target.rules]]\neffect = "allow"\npath = "^/api/\\d+$"\n'
    (tmp_path / "bad.toml").write_text(demo + rule, encoding="utf-8")
    result = runner.invoke(app, ["validate", "bad.toml", "--json"])
    assert result.exit_code == 3
    (entry,) = json.loads(result.stdout)
    line = demo.count("\n") + 4
    assert entry["errors"] == [f"bad.toml:{line}: invalid TOML: Invalid character 'd' in string"]
    assert "single-quoted literal strings" in entry["hints"][0]
    assert "'^/api/\\d+$'" in entry["hints"][0]
    fixed = demo + rule.replace('"^/api/\\d+$"', "'^/api/\\d+$'")
    (tmp_path / "good.toml").write_text(fixed, encoding="utf-8")
    assert runner.invoke(app, ["validate", "good.toml"]).exit_code == 0


def test_other_toml_errors_get_no_regex_hint(runner: CliRunner, tmp_path: Path) -> None:
    (tmp_path / "bad.toml").write_text('name = "unterminated\n', encoding="utf-8")
    (entry,) = json.loads(runner.invoke(app, ["validate", "bad.toml", "--json"]).stdout)
    assert entry["hints"] == [""]


def test_validate_counts_one_rule_in_the_singular() -> None:
    result = CliRunner().invoke(app, ["validate", "profiles/google.toml"])
    assert "(1 rule)" in result.output, result.output
    assert "1 rules" not in result.output
