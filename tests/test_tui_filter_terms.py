"""The TUI filter's `rule:` and `alias:` terms on records whose decisions the real rule
engine made over the demo's profile: `rule:` names a rule exactly (any case) and matches
any rule that decided or matched; `alias:` is the answering profile's alias, exact."""

from __future__ import annotations

from dataclasses import replace

import pytest

from rrdev.core.records import Explanation, RequestFacts, RequestRecord
from rrdev.core.rules import evaluate_profile
from rrdev.servers.demo import load_demo_profile
from rrdev.tui.filters import FilterError, parse_filter
from rrdev.tui.workbench.navigation import complete_filter

PROFILE = load_demo_profile()
READER = {"sub": "demo-reader@clients", "scope": "read:products"}


def _record(method: str, claims: dict[str, str], alias: str | None = None) -> RequestRecord:
    path = "/api/v1/products"
    facts = RequestFacts(method=method, path=path, raw_path=path, headers=(), query=())
    decision = evaluate_profile(PROFILE, facts, claims)
    status, reason = (200, "allowed") if decision.allowed else (403, "rule_denied")
    return RequestRecord(
        time=1_700_000_000.0,
        method=method,
        path=path,
        query=(),
        status=status,
        reason=reason,
        deciding_rule=decision.deciding_rule,
        explanation=Explanation(status, reason, "", decision=decision),
        subject=claims["sub"],
        alias=alias,
    )


GET = _record("GET", READER)  # read-catalog decides; allow-authenticated matched too
DELETE = _record("DELETE", READER)  # scope-gate-delete denies
RECORDS = {"get": GET, "delete": DELETE}


def _matching(query: str, records: dict[str, RequestRecord] = RECORDS) -> set[str]:
    flt = parse_filter(query)
    return {name for name, record in records.items() if flt.matches(record)}


def test_the_records_are_what_the_engine_decided() -> None:
    assert GET.deciding_rule == "read-catalog" and GET.status == 200
    assert DELETE.deciding_rule == "scope-gate-delete" and DELETE.status == 403


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("rule:scope-gate-delete", {"delete"}),
        ("rule:SCOPE-GATE-DELETE", {"delete"}),
        ("rule:scope-gate", set()),  # exact: a prefix names no rule
        ("rule:gate", set()),
        ("rule:read-catalog", {"get"}),
        ("rule:allow-authenticated", {"get", "delete"}),  # matched in both, decided neither
        ("rule:read-catalog,scope-gate-delete", {"get", "delete"}),
        ("-rule:read-catalog", {"delete"}),
        ("rule:default", {"get"}),  # the scopes without rules allowed by default
    ],
)
def test_rule_names_a_rule_that_decided_or_matched(query: str, expected: set[str]) -> None:
    assert _matching(query) == expected


ALIASED = {
    "orders": replace(GET, alias="orders"),
    "orders-v2": replace(GET, alias="orders-v2"),
    "none": GET,  # one profile served, or a 421 that named none
}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("alias:orders", {"orders"}),
        ("alias:ORDERS", {"orders"}),
        ("alias:order", set()),
        ("alias:orders,orders-v2", {"orders", "orders-v2"}),
        ("-alias:orders", {"orders-v2", "none"}),
    ],
)
def test_alias_is_exact(query: str, expected: set[str]) -> None:
    assert _matching(query, ALIASED) == expected


def test_alias_needs_a_value_and_is_offered_when_misspelt() -> None:
    with pytest.raises(FilterError, match="alias: needs a value"):
        parse_filter("alias:")
    with pytest.raises(FilterError, match="did you mean 'alias:'"):
        parse_filter("alais:orders")


@pytest.mark.parametrize(
    ("typed", "completed"),
    [("al", "alias:"), ("alias:or", "alias:orders"), ("-alias:orders,b", "-alias:orders,billing")],
)
def test_the_filter_bar_completes_alias_and_served_aliases(typed: str, completed: str) -> None:
    assert complete_filter(typed, aliases=("orders", "billing")) == completed
