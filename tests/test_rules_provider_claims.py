"""Token conditions on each provider's permission claims, table-driven: Entra's ``scp``
(one space-separated string) behaves exactly like Auth0's ``scope``, and Entra's
``roles`` (an array) exactly like Auth0's ``permissions``; Okta's ``scp`` array,
Keycloak's ``realm_access.roles`` and Cognito's ``cognito:groups`` likewise."""

from __future__ import annotations

from typing import Any

import pytest

from rrdev.core.model import PairCondition, Pattern, Rule
from rrdev.core.records import RequestFacts
from rrdev.core.rules import evaluate


def gate(claim: str, value: str, presence: str = "must_exist") -> Rule:
    """An allow rule on one token condition; the proxy scope's default denies."""
    cond = PairCondition(Pattern(claim), Pattern(value), presence)  # type: ignore[arg-type]
    return Rule("proxy", 0, "allow", id="gate", token=(cond,))


def allowed(rule: Rule, claims: dict[str, Any]) -> bool:
    facts = RequestFacts(method="GET", path="/orders", raw_path="/orders")
    order = ("proxy_credential", "target_credential", "proxy", "target")
    scopes = [(s, "deny", (rule,)) if s == "proxy" else (s, "allow", ()) for s in order]
    return evaluate(scopes, facts, claims).allowed


WORD = "(^| )orders:read( |$)"
ANCHORED = "^orders:read$"

CASES = [
    # (claim pattern, value pattern, claims, allowed)
    # Auth0's scope string and Entra's scp string: the same rules, the same answers.
    ("^scope$", WORD, {"scope": "openid orders:read"}, True),
    ("^scp$", WORD, {"scp": "openid orders:read"}, True),
    ("^scope$", WORD, {"scope": "orders:readwrite"}, False),
    ("^scp$", WORD, {"scp": "orders:readwrite"}, False),
    # An unanchored value is searched within the whole string, for both.
    ("^scope$", "orders:read", {"scope": "orders:readwrite"}, True),
    ("^scp$", "orders:read", {"scp": "orders:readwrite"}, True),
    # Auth0's permissions array and Entra's roles array: any element may match.
    ("^permissions$", ANCHORED, {"permissions": ["a", "orders:read"]}, True),
    ("^roles$", ANCHORED, {"roles": ["a", "orders:read"]}, True),
    ("^permissions$", ANCHORED, {"permissions": ["orders:readwrite"]}, False),
    ("^roles$", ANCHORED, {"roles": ["orders:readwrite"]}, False),
    ("^roles$", ANCHORED, {"roles": []}, False),
    # Okta writes scp as an array.
    ("^scp$", ANCHORED, {"scp": ["openid", "orders:read"]}, True),
    ("^scp$", ANCHORED, {"scp": ["openid"]}, False),
    # Keycloak's realm roles, reached by their dotted path; Cognito's groups.
    ("^realm_access\\.roles$", ANCHORED, {"realm_access": {"roles": ["orders:read"]}}, True),
    ("^realm_access\\.roles$", ANCHORED, {"realm_access": {"roles": ["x"]}}, False),
    ("^cognito:groups$", "^admins$", {"cognito:groups": ["staff", "admins"]}, True),
    # A claim that is absent never matches.
    ("^scp$", WORD, {"roles": ["orders:read"]}, False),
    ("^roles$", ANCHORED, {"scp": "orders:read"}, False),
]


@pytest.mark.parametrize(("claim", "value", "claims", "expected"), CASES)
def test_provider_permission_claims(
    claim: str, value: str, claims: dict[str, Any], expected: bool
) -> None:
    assert allowed(gate(claim, value), claims) is expected


@pytest.mark.parametrize(
    ("auth0", "entra"),
    [
        ({"scope": "read delete:resources"}, {"scp": "read delete:resources"}),
        ({"scope": "read"}, {"scp": "read"}),
        ({"permissions": ["delete:resources"]}, {"roles": ["delete:resources"]}),
        ({"permissions": []}, {"roles": []}),
    ],
)
def test_scp_and_roles_answer_as_scope_and_permissions_do(
    auth0: dict[str, Any], entra: dict[str, Any]
) -> None:
    """The seed's scope gate (must_absent) written over either provider's claim."""
    (a_name,) = auth0
    (e_name,) = entra
    for presence in ("must_exist", "must_absent"):
        a = allowed(gate(f"^{a_name}$", "delete:resources", presence), auth0)
        e = allowed(gate(f"^{e_name}$", "delete:resources", presence), entra)
        assert a is e
