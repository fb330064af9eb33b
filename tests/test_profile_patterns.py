"""Rule patterns at load time: every place a profile supplies a regex is compiled for
RE2, and a pattern RE2 cannot run in linear time is refused with the file, the line,
the dotted key and a hint showing an equivalent; ``rrdev validate`` says the same."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rrdev.cli.app import app
from rrdev.core.errors import ProfileError
from rrdev.core.model import Pattern, Profile
from rrdev.core.profile import parse_profile

FILE = "profiles/x.toml"
NO_AUTH = '\n[proxy_credential]\nauth_type = "none"\n'


def parse(text: str) -> Profile:
    return parse_profile(textwrap.dedent(text) + NO_AUTH, FILE)


def marked_line(text: str) -> int:
    lines = textwrap.dedent(text).splitlines()
    return next(n for n, line in enumerate(lines, 1) if "# <-" in line)


# (snippet with the offending line marked, dotted key, in the message, in the hint)
REFUSED = [
    pytest.param(
        """
        [[proxy.rules]]
        effect = "allow"
        path = "^/api/(?!admin)"  # <-
        """,
        "proxy.rules[0].path",
        "uses a negative lookahead ('(?!')",
        "deny path '^/api/admin'",
        id="path-shorthand",
    ),
    pytest.param(
        """
        [[proxy.rules]]
        id = "catalog"
        effect = "allow"
        path = { pattern = "^/(\\\\w+)/\\\\1$", presence = "must_exist" }  # <-
        """,
        "proxy.rules[0].path.pattern",
        "uses a backreference ('\\\\1'), which needs backtracking; rrdev matches patterns in "
        "linear time (RE2) and does not support it (rule 'catalog')",
        "'aa|bb'",
        id="path-table-names-rule",
    ),
    pytest.param(
        """
        [target]
        base_url = "https://backend.example"
        [[target.rules]]
        effect = "deny"
        path = { path = { pattern = "(?<=/v1)/admin" }, presence = "present" }  # <-
        """,
        "target.rules[0].path.path.pattern",
        "uses a lookbehind ('(?<=')",
        "'(?<=a)b' finds what 'ab' finds",
        id="path-gateway-shape",
    ),
    pytest.param(
        """
        [[proxy.rules]]
        effect = "deny"
        headers = [
          { name = "^x-tenant$", value = "acme" },
          { name = "^x-(?>role)$" },  # <-
        ]
        """,
        "proxy.rules[0].headers[1].name",
        "uses an atomic group ('(?>')",
        "write '(?:' instead",
        id="header-name",
    ),
    pytest.param(
        """
        [[proxy_credential.rules]]
        effect = "deny"
        headers = [{ name = "^x-role$", value = "^(admin)++$" }]  # <-
        """,
        "proxy_credential.rules[0].headers[0].value",
        "uses a possessive quantifier ('++')",
        "drop the extra '+'",
        id="header-value",
    ),
    pytest.param(
        """
        [[target_credential.rules]]
        effect = "deny"
        query = [{ name = "^debug(?=$)", presence = "must_absent" }]  # <-
        """,
        "target_credential.rules[0].query[0].name",
        "uses a lookahead ('(?=')",
        "'a(?=b)' finds what 'ab' finds",
        id="query-name",
    ),
    pytest.param(
        """
        [[proxy.rules]]
        effect = "allow"
        query = [{ name = "^mode$", value = { pattern = "^(?(1)a|b)$", flags = "i" } }]  # <-
        """,
        "proxy.rules[0].query[0].value.pattern",
        "uses a conditional group ('(?(')",
        "one rule (or one condition) per branch",
        id="query-value-table",
    ),
    pytest.param(
        """
        [[proxy.rules]]
        effect = "deny"
        token = [{ claim = "^(?P<c>scope)(?P=c)$" }]  # <-
        """,
        "proxy.rules[0].token[0].claim",
        "uses a backreference ('(?P=')",
        "spell the repeats out",
        id="token-claim",
    ),
    pytest.param(
        """
        [[proxy.rules]]
        id = "scope-gate"
        effect = "deny"
        methods = ["DELETE"]
        token = [{ claim = "^scope$", value = "(?<!read:)delete", presence = "absent" }]  # <-
        """,
        "proxy.rules[0].token[0].value",
        "uses a negative lookbehind ('(?<!'), which needs backtracking",
        'presence = "must_absent"',
        id="token-value",
    ),
    pytest.param(
        """
        [[proxy.rules]]
        effect = "allow"
        path = "^/api/v{,3}/"  # <-
        """,
        "proxy.rules[0].path",
        "uses '{,3}', which Python reads as a repeat ({0,n}) and RE2 as literal text",
        "write {0,3}",
        id="ambiguous-repeat",
    ),
    pytest.param(
        """
        [[proxy.rules]]
        effect = "allow"
        path = "^/files/.+\\\\Z"  # <-
        """,
        "proxy.rules[0].path",
        "is not supported by rrdev's linear-time regex engine (RE2): invalid escape sequence",
        "write \\z",
        id="python-only-escape",
    ),
]


@pytest.mark.parametrize(("text", "key", "message", "hint"), REFUSED)
def test_refused_pattern_names_file_line_key_and_hint(
    text: str, key: str, message: str, hint: str
) -> None:
    with pytest.raises(ProfileError) as caught:
        parse(text)
    error = caught.value
    assert (error.file, error.line, error.key) == (FILE, marked_line(text), key)
    assert str(error).startswith(f"{FILE}:{marked_line(text)}: {key}: pattern ")
    assert message in error.detail
    assert hint in error.hint
    assert error.exit_code == 3


def test_every_condition_pattern_is_compiled_for_re2() -> None:
    profile = parse(
        """
        [[proxy.rules]]
        effect = "allow"
        path = { pattern = "^/API/", flags = "i" }
        headers = [{ name = "^x-tenant$", value = { pattern = "^acme$", flags = "i" } }]
        query = [{ name = "^mode$", value = "^(a|b)$" }]
        token = [{ claim = "^scope$", value = "\\\\bread\\\\b", flags = "s" }]
        """
    )
    (rule,) = profile.proxy.rules
    assert rule.path is not None
    patterns: list[Pattern] = [rule.path.pattern]
    for cond in (*rule.headers, *rule.query, *rule.token):
        patterns += [cond.name] + ([cond.value] if cond.value is not None else [])
    shown = [(str(p), p.regex.flags) for p in patterns]
    assert shown == [
        ("/^/API//i", "i"),
        ("/^x-tenant$/i", "i"),  # header names always ignore case
        ("/^acme$/i", "i"),
        ("/^mode$/", ""),
        ("/^(a|b)$/", ""),
        ("/^scope$/s", "s"),
        ("/\\bread\\b/s", "s"),
    ]
    assert rule.path.pattern.search("/api/x")
    value = rule.token[0].value
    assert value is not None and value.search("read:users write:users")


# ------------------------------------------------------------------ rrdev validate

BAD = """\
[proxy_credential]
auth_type = "none"

[[proxy.rules]]
id = "no-admin"
effect = "allow"
path = { pattern = "^/api/(?!admin)" }
"""


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("RRDEV_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "1000")
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.toml").write_text(BAD)
    return CliRunner()


def test_validate_explains_a_refused_pattern(runner: CliRunner) -> None:
    result = runner.invoke(app, ["validate", "bad.toml"])
    assert result.exit_code == 3
    lines = result.stdout.splitlines()
    assert lines[1] == (
        "  error: bad.toml:7: proxy.rules[0].path.pattern: pattern '^/api/(?!admin)' uses a "
        "negative lookahead ('(?!'), which needs backtracking; rrdev matches patterns in "
        "linear time (RE2) and does not support it (rule 'no-admin')"
    )
    assert lines[2].startswith("  hint: exclude it with a rule or condition of its own")
    assert "deny wins within a scope" in lines[2]


def test_validate_json_carries_the_hint(runner: CliRunner) -> None:
    result = runner.invoke(app, ["validate", "bad.toml", "--json"])
    assert result.exit_code == 3
    (entry,) = json.loads(result.stdout)
    assert "negative lookahead" in entry["errors"][0]
    assert len(entry["hints"]) == 1 and 'presence = "must_absent"' in entry["hints"][0]
