"""The workbench's pure parts, table-driven: no Textual."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from rrdev.core.records import Decision, Explanation, RequestRecord, RuleOutcome, ScopeOutcome
from rrdev.tui.workbench.dry_run import DryRunForm, FormError
from rrdev.tui.workbench.export import curl_command, har_document, jsonl_text
from rrdev.tui.workbench.logfile import _parse_lines
from rrdev.tui.workbench.navigation import (
    FilterHistory,
    complete_filter,
    next_refusal,
    next_sort_key,
    sort_items,
)
from rrdev.tui.workbench.rule_hits import count_rule_hits


def _decision(allowed: bool, rule: str) -> Decision:
    outcome = RuleOutcome(rule, 0, "allow" if allowed else "deny", 0, "", True, ())
    scope = ScopeOutcome("proxy", "deny", "allow" if allowed else "deny", rule, (outcome,))
    return Decision(allowed, (scope,), (("proxy", rule),))


def record(status: int = 200, reason: str = "allowed", method: str = "GET", **kw: object):
    allowed = reason == "allowed"
    expl = Explanation(status, reason, "m", decision=_decision(allowed, "gate"))
    base = RequestRecord(1.0, method, "/p", (), status, reason, "gate", expl, total_ms=1.0)
    return replace(base, **kw)  # type: ignore[arg-type]


def test_curl_redacts_the_token_unless_given() -> None:
    rec = record(request_headers=(("authorization", "[redacted]"), ("host", "h"), ("x-a", "1")))
    command = curl_command(rec, "http://127.0.0.1:1")
    assert '"Authorization: Bearer $TOKEN"' in command and "# the token is redacted" in command
    assert "host:" not in command and "'x-a: 1'" in command
    with_token = curl_command(rec, "http://127.0.0.1:1", token="abc.def.ghi")
    assert "'Authorization: Bearer abc.def.ghi'" in with_token and "$TOKEN" not in with_token
    hostile = curl_command(rec, "http://127.0.0.1:1", token="x'$(touch /tmp/p)")
    assert "'Authorization: Bearer x'\"'\"'$(touch /tmp/p)'" in hostile  # quoted, inert


def test_curl_names_what_it_could_not_rebuild() -> None:
    rec = record(
        method="POST",
        query=(("api_key", "[redacted]"),),
        request_headers=(("cookie", "[redacted]"),),
        bytes_in=12,
    )
    command = curl_command(rec, "http://127.0.0.1:1")
    assert "-X POST" in command
    assert "header cookie was redacted" in command
    assert "query parameter was redacted" in command and "(12 bytes)" in command


def test_har_has_the_required_fields() -> None:
    log = har_document([record(403, "rule_denied")], "http://127.0.0.1:1")["log"]
    entry = log["entries"][0]
    assert log["version"] == "1.2"
    assert entry["response"]["statusText"] == "Forbidden"
    assert entry["startedDateTime"] == "1970-01-01T00:00:01.000Z"


def test_a_log_round_trips_and_bad_lines_are_counted() -> None:
    records = [record(), record(403, "rule_denied")]
    lines = [*jsonl_text(records).splitlines(), "{", "", '{"x": 1}']
    contents = _parse_lines("f", lines)
    assert contents.skipped == 2 and contents.first_bad_line == 3
    assert [r.status for r in contents.records] == [200, 403]
    assert contents.records[1].explanation.decision == records[1].explanation.decision


def test_rule_hits_count_matches_and_decisions() -> None:
    rows = count_rule_hits([record(), record(), record(403, "rule_denied")])
    (gate,) = rows
    assert (gate.matched, gate.decided_allow, gate.decided_deny) == (3, 2, 1)
    assert not gate.in_profile and gate.filter_query == "rule:gate"


@pytest.mark.parametrize(
    ("current", "backwards", "expected"),
    [(1, False, 2), (2, False, 4), (4, False, 2), (4, True, 2), (2, True, 4), (None, False, 2)],
)
def test_next_refusal_wraps(current: int | None, backwards: bool, expected: int) -> None:
    items = [(1, record()), (2, record(401, "token_missing")), (3, record()), (4, record(403))]
    items[3] = (4, record(403, "rule_denied"))
    assert next_refusal(items, current, backwards=backwards) == expected


def test_no_refusal_is_none() -> None:
    assert next_refusal([(1, record())], 1) is None


def test_sort() -> None:
    items = [(1, record(403, method="GET")), (2, record(200, method="DELETE"))]
    assert [s for s, _ in sort_items(items, "status")] == [2, 1]
    assert [s for s, _ in sort_items(items, "method")] == [2, 1]
    assert [s for s, _ in sort_items(items, "time")] == [1, 2]
    assert next_sort_key("subject") == "time" and next_sort_key("time") == "method"


def test_history_walks_like_a_shell() -> None:
    history = FilterHistory()
    for query in ("a:1", "b:2", "a:1"):
        history.add(query)
    assert history.entries == ["b:2", "a:1"]
    assert history.previous("a:1") == "b:2"
    assert history.previous("b:2") is None
    assert history.next() == "a:1" and history.next() == ""


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        ("sta", "status:"),
        ("-me", "-method:"),
        ("status:403 ru", "status:403 rule:"),
        ("rule:sc", "rule:scope-gate"),
        ("method:del", "method:delETE"),
        ("reason:token_e", "reason:token_expired"),
        ("rule:scope-gate", None),
        ("free", None),
        ("", None),
    ],
)
def test_completion(typed: str, expected: str | None) -> None:
    got = complete_filter(typed, rules=["scope-gate"], reasons=["token_expired"])
    assert got == expected


@pytest.mark.parametrize(
    ("form", "problem"),
    [(DryRunForm(method=""), "method"), (DryRunForm(headers="nocolon"), "headers")],
)
def test_bad_form_says_which_field(form: DryRunForm, problem: str) -> None:
    with pytest.raises(FormError, match=problem):
        form.request()


def test_form_builds_the_request() -> None:
    request = DryRunForm("delete", "/a?b=1", "X-A: 1; X-B: 2", "Bearer t.t.t").request()
    assert (request.method, request.raw_path, request.raw_query) == ("DELETE", "/a", "b=1")
    assert request.headers == (("X-A", "1"), ("X-B", "2"), ("Authorization", "Bearer t.t.t"))


def test_curl_of_a_log_record_uses_the_headers_the_rules_saw() -> None:
    from rrdev.core.records import RequestFacts

    facts = RequestFacts("GET", "/p", "/p", (), (("authorization", "[redacted]"),))
    rec = record()
    rec = replace(rec, explanation=replace(rec.explanation, request=facts))
    assert "Bearer $TOKEN" in curl_command(rec, "http://127.0.0.1:1")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["tui", "--open", "missing.jsonl"], "cannot read the log file missing.jsonl"),
        (["tui", "--log", "x.jsonl", "--demo"], "--open shows a log file"),
    ],
)
def test_open_errors_are_plain(
    args: list[str], message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from rrdev.cli.app import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output
