"""rules.py against DESIGN.md §3: decisions, deciding rule, conditions, claims, trace."""

from __future__ import annotations

import json
from typing import Any

import pytest

from rrdev.core.model import (
    PairCondition,
    PathCondition,
    Pattern,
    Profile,
    Proxy,
    ProxyCredential,
    Rule,
    Target,
    TargetCredential,
)
from rrdev.core.records import Decision, RequestFacts, RuleOutcome
from rrdev.core.rules import evaluate, evaluate_profile

TOKEN = "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"


def pat(source: str, flags: str = "") -> Pattern:
    return Pattern(source, flags)


def path(source: str, presence: str = "must_exist", flags: str = "") -> PathCondition:
    return PathCondition(pat(source, flags), presence)  # type: ignore[arg-type]


def pair(
    name: str, value: str | None = None, presence: str = "must_exist", flags: str = ""
) -> PairCondition:
    val = pat(value, flags) if value is not None else None
    return PairCondition(pat(name, flags), val, presence)  # type: ignore[arg-type]


def rule(scope: str, index: int, effect: str, **kw: Any) -> Rule:
    return Rule(scope, index, effect, **kw)  # type: ignore[arg-type]


def facts(
    method: str = "GET",
    p: str = "/",
    headers: tuple[tuple[str, str], ...] = (),
    query: tuple[tuple[str, str], ...] = (),
) -> RequestFacts:
    return RequestFacts(method=method, path=p, raw_path=p, headers=headers, query=query)


def scopes(**by_scope: tuple[str, tuple[Rule, ...]]) -> list[Any]:
    """All four scopes in fixed order; unnamed ones default to allow with no rules."""
    order = ("proxy_credential", "target_credential", "proxy", "target")
    return [(s, *by_scope.get(s, ("allow", ()))) for s in order]


def only(r: Rule, f: RequestFacts, claims: Any = None) -> RuleOutcome:
    """Evaluate one rule alone and return its trace entry."""
    decision = evaluate(scopes(proxy=("deny", (r,))), f, claims)
    return next(s for s in decision.scopes if s.scope == "proxy").rules[0]


# ------------------------------------------------------------ seed example

SEED = scopes(
    proxy=(
        "deny",
        (
            rule(
                "proxy",
                0,
                "allow",
                id="allow-all",
                methods=("GET", "POST", "PUT", "PATCH", "DELETE"),
                path=path(".*"),
                priority=1,
            ),
            rule(
                "proxy",
                1,
                "allow",
                id="read-catalog",
                methods=("GET",),
                path=path(r"^/api/v1/(users|products|orders)(/.*)?$"),
                priority=10,
            ),
            rule(
                "proxy",
                2,
                "deny",
                id="scope-gate",
                methods=("DELETE",),
                token=(pair("^scope$", "delete:resources", "must_absent"),),
            ),
        ),
    )
)


@pytest.mark.parametrize(
    ("method", "p", "claims", "allowed", "deciding", "insufficient_scope"),
    [
        ("GET", "/api/v1/products", {"scope": "read:users"}, True, "read-catalog", False),
        ("POST", "/other", {"scope": "read:users"}, True, "allow-all", False),
        ("DELETE", "/api/v1/products/1", {"scope": "read:users"}, False, "scope-gate", True),
        ("DELETE", "/api/v1/products/1", None, False, "scope-gate", True),
        (
            "DELETE",
            "/api/v1/products/1",
            {"scope": "read:users delete:resources"},
            True,
            "allow-all",
            False,
        ),
        ("OPTIONS", "/api/v1/products", {"scope": "read:users"}, False, "default", False),
    ],
)
def test_seed_worked_example(
    method: str, p: str, claims: Any, allowed: bool, deciding: str, insufficient_scope: bool
) -> None:
    decision = evaluate(SEED, facts(method, p), claims)
    assert decision.allowed is allowed
    assert decision.deciding_rule == deciding
    assert decision.token_condition_decided is insufficient_scope
    if not allowed:
        assert decision.deciding == (("proxy", deciding),)
        assert decision.deciding_scope == "proxy"


def test_seed_allow_names_one_rule_per_scope() -> None:
    decision = evaluate(SEED, facts("GET", "/api/v1/products"), {"scope": "read:users"})
    assert decision.deciding == (
        ("proxy_credential", "default"),
        ("target_credential", "default"),
        ("proxy", "read-catalog"),
        ("target", "default"),
    )
    assert decision.deciding_scope is None


# ------------------------------------------------------- scopes and deciding


def _deny(scope: str, index: int = 0, **kw: Any) -> Rule:
    return rule(scope, index, "deny", **kw)


def _allow(scope: str, index: int = 0, **kw: Any) -> Rule:
    return rule(scope, index, "allow", **kw)


@pytest.mark.parametrize(
    ("config", "allowed", "deciding"),
    [
        # a target deny denies even though the proxy allows
        (
            {"proxy": ("allow", (_allow("proxy"),)), "target": ("allow", (_deny("target"),))},
            False,
            (("target", "target[0]"),),
        ),
        # several scopes deny: the first in fixed order decides
        (
            {
                "target": ("allow", (_deny("target"),)),
                "proxy": ("allow", (_deny("proxy"),)),
                "target_credential": ("allow", (_deny("target_credential"),)),
            },
            False,
            (("target_credential", "target_credential[0]"),),
        ),
        # a default deny in an earlier scope beats a rule deny in a later one
        (
            {"proxy_credential": ("deny", ()), "target": ("allow", (_deny("target"),))},
            False,
            (("proxy_credential", "default"),),
        ),
        # priority never changes a decision: a priority-0 deny beats a priority-1000 allow
        (
            {"proxy": ("allow", (_allow("proxy", 0, priority=1000), _deny("proxy", 1)))},
            False,
            (("proxy", "proxy[1]"),),
        ),
        # among matching denies, the highest priority is named
        (
            {
                "proxy": (
                    "allow",
                    (_deny("proxy", 0, priority=5), _deny("proxy", 1, id="hi", priority=9)),
                )
            },
            False,
            (("proxy", "hi"),),
        ),
        # equal priorities: the first in the file is named
        (
            {"proxy": ("allow", (_deny("proxy", 0, id="first"), _deny("proxy", 1, id="second")))},
            False,
            (("proxy", "first"),),
        ),
        # allow: one entry per scope, each its highest-priority matching allow or default
        (
            {
                "proxy_credential": ("deny", (_allow("proxy_credential", 0, id="pc"),)),
                "proxy": (
                    "deny",
                    (
                        _allow("proxy", 0, id="low", priority=1),
                        _allow("proxy", 1, id="tie-a", priority=7),
                        _allow("proxy", 2, id="tie-b", priority=7),
                    ),
                ),
            },
            True,
            (
                ("proxy_credential", "pc"),
                ("target_credential", "default"),
                ("proxy", "tie-a"),
                ("target", "default"),
            ),
        ),
        # a non-matching deny leaves the scope to its allow rules
        (
            {"proxy": ("deny", (_deny("proxy", 0, methods=("PUT",)), _allow("proxy", 1)))},
            True,
            (
                ("proxy_credential", "default"),
                ("target_credential", "default"),
                ("proxy", "proxy[1]"),
                ("target", "default"),
            ),
        ),
    ],
)
def test_scope_combination_and_deciding_rule(
    config: dict[str, Any], allowed: bool, deciding: tuple[tuple[str, str], ...]
) -> None:
    decision = evaluate(scopes(**config), facts(), None)
    assert decision.allowed is allowed
    assert decision.deciding == deciding
    assert [s.scope for s in decision.scopes] == [
        "proxy_credential",
        "target_credential",
        "proxy",
        "target",
    ]


def test_token_condition_decided_only_for_the_deciding_rule() -> None:
    # target_credential denies without a token condition; the later token deny is not it
    config = scopes(
        target_credential=("allow", (_deny("target_credential"),)),
        proxy=("allow", (_deny("proxy", token=(pair("^sub$"),)),)),
    )
    decision = evaluate(config, facts(), {"sub": "x"})
    assert decision.deciding == (("target_credential", "target_credential[0]"),)
    assert decision.token_condition_decided is False
    assert decision.scopes[2].token_condition_decided is True  # the proxy's own verdict


# ---------------------------------------------------------------- conditions

HDRS = (
    ("x-env", "production"),
    ("authorization", f"Bearer {TOKEN}"),
    ("x-note", "line1\nline2"),
)
QRY = (("page", "2"), ("debug", "true"))


@pytest.mark.parametrize(
    ("kw", "f", "matched"),
    [
        ({}, facts("PATCH", "/anything"), True),  # no conditions match anything
        ({"methods": ("GET", "PUT")}, facts("GET"), True),
        ({"methods": ("GET", "PUT")}, facts("POST"), False),
        ({"methods": ("GET",)}, facts("get"), False),  # exact, as sent
        ({"path": path("/admin")}, facts(p="/api/admin/users"), True),  # searched
        ({"path": path("^/admin")}, facts(p="/api/admin/users"), False),
        ({"path": path("/admin", "must_absent")}, facts(p="/api/admin"), False),
        ({"path": path("/admin", "must_absent")}, facts(p="/api/users"), True),
        ({"path": path("/ADMIN")}, facts(p="/admin"), False),
        ({"path": path("/ADMIN", flags="i")}, facts(p="/admin"), True),
        # header names are case-insensitive even without the i flag
        ({"headers": (pair("^X-Env$", "^production$"),)}, facts(headers=HDRS), True),
        ({"headers": (pair("^x-env$", "^Production$"),)}, facts(headers=HDRS), False),
        ({"headers": (pair("x-env"),)}, facts(headers=HDRS), True),  # any value
        ({"headers": (pair("x-env", "staging"),)}, facts(headers=HDRS), False),
        ({"headers": (pair("x-env", "prod", "must_absent"),)}, facts(headers=HDRS), False),
        ({"headers": (pair("x-tenant", None, "must_absent"),)}, facts(headers=HDRS), True),
        ({"headers": (pair("x-note", "line1.line2"),)}, facts(headers=HDRS), False),
        ({"headers": (pair("x-note", "line1.line2", flags="s"),)}, facts(headers=HDRS), True),
        ({"headers": (pair("x-note", "^line2$"),)}, facts(headers=HDRS), False),
        ({"headers": (pair("x-note", "^line2$", flags="m"),)}, facts(headers=HDRS), True),
        ({"query": (pair("^page$", "^2$"),)}, facts(query=QRY), True),
        ({"query": (pair("^PAGE$"),)}, facts(query=QRY), False),  # query names: as written
        ({"query": (pair("^debug$", "true", "must_absent"),)}, facts(query=QRY), False),
        ({"query": (pair("^debug$", "false", "must_absent"),)}, facts(query=QRY), True),
        # AND: one failing condition fails the rule
        (
            {"methods": ("GET",), "path": path("^/x"), "query": (pair("page"),)},
            facts("GET", "/x", query=QRY),
            True,
        ),
        (
            {"methods": ("GET",), "path": path("^/x"), "query": (pair("page"),)},
            facts("GET", "/y", query=QRY),
            False,
        ),
    ],
)
def test_request_conditions(kw: dict[str, Any], f: RequestFacts, matched: bool) -> None:
    assert only(rule("proxy", 0, "allow", **kw), f).matched is matched


@pytest.mark.parametrize("effect", ["allow", "deny"])
def test_presence_flips_the_condition_not_the_effect(effect: str) -> None:
    r = rule("proxy", 0, effect, path=path("^/secret", "must_absent"))
    default = "deny" if effect == "allow" else "allow"
    outside = evaluate(scopes(proxy=(default, (r,))), facts(p="/public"), None)
    inside = evaluate(scopes(proxy=(default, (r,))), facts(p="/secret"), None)
    assert outside.scopes[2].effect == effect  # rule matched: its own effect applies
    assert inside.scopes[2].effect == default


# -------------------------------------------------------------------- claims

CLAIMS: dict[str, Any] = {
    "sub": "auth0|123",
    "scope": "read:users delete:resources",
    "permissions": ["read:users", "write:orders"],
    "tier": 42,
    "ratio": 1.5,
    "email_verified": True,
    "suspended": False,
    "nickname": None,
    "app_metadata": {"role": "admin", "org": {"roles": ["owner", "billing"]}},
    "https://example.com/roles": ["editor", "viewer"],
    "https://example.com/plan": "pro",
    "a.b": "dotted-key",
}


@pytest.mark.parametrize(
    ("claim", "value", "matched"),
    [
        ("^sub$", r"^auth0\|123$", True),  # string
        ("^scope$", "delete:resources", True),  # space-separated: whole string, searched
        ("^scope$", "^read:users delete:resources$", True),
        ("^scope$", "^delete:resources$", False),  # not split into words
        ("^permissions$", "^write:orders$", True),  # array: any element
        ("^permissions$", "^write$", False),
        ("^tier$", "^42$", True),  # numbers by JSON text
        ("^ratio$", r"^1\.5$", True),
        ("^email_verified$", "^true$", True),  # booleans by JSON text
        ("^email_verified$", "^True$", False),
        ("^suspended$", "^false$", True),
        ("^nickname$", "^null$", True),
        (r"^app_metadata\.role$", "^admin$", True),  # nested dotted path
        (r"^app_metadata\.org\.roles$", "^billing$", True),  # nested array
        ("^app_metadata$", '"role":"admin"', True),  # object by its JSON text
        ("role$", "^admin$", True),  # name pattern searched, not anchored
        (r"^https://example\.com/roles$", "^viewer$", True),  # namespaced array
        (r"^https://example\.com/plan$", "^pro$", True),  # namespaced string
        ("^com/roles$", None, False),  # top-level names are never split
        (r"^a\.b$", "^dotted-key$", True),
        ("^b$", None, False),
        ("^nickname$", None, True),  # no value pattern: the name alone
        ("^missing$", None, False),
    ],
)
def test_claim_shapes(claim: str, value: str | None, matched: bool) -> None:
    r = rule("proxy", 0, "allow", token=(pair(claim, value),))
    assert only(r, facts(), CLAIMS).matched is matched
    absent = rule("proxy", 0, "allow", token=(pair(claim, value, "must_absent"),))
    assert only(absent, facts(), CLAIMS).matched is not matched


@pytest.mark.parametrize("claims", [None, {}])
def test_no_claims(claims: dict[str, Any] | None) -> None:
    exist = only(rule("proxy", 0, "allow", token=(pair("sub"),)), facts(), claims)
    absent = only(
        rule("proxy", 0, "allow", token=(pair("sub", None, "must_absent"),)), facts(), claims
    )
    assert (exist.matched, absent.matched) == (False, True)
    expected = ("no verified claims",) if claims is None else ("no claim matches /sub/",)
    assert exist.conditions[0].compared == expected


# --------------------------------------------------------------------- trace


def test_trace_lists_every_rule_by_priority_then_file_order() -> None:
    rules = (
        _allow("proxy", 0, priority=0),
        _deny("proxy", 1, priority=5, methods=("PUT",)),
        _allow("proxy", 2, priority=5),
        _allow("proxy", 3, priority=10, path=path("^/nope")),
    )
    decision = evaluate(scopes(proxy=("deny", rules)), facts(), None)
    proxy = decision.scopes[2]
    assert [r.name for r in proxy.rules] == ["proxy[3]", "proxy[1]", "proxy[2]", "proxy[0]"]
    assert [r.matched for r in proxy.rules] == [False, False, True, True]
    assert proxy.decided_by == "proxy[2]"  # highest-priority matching allow
    assert [len(s.rules) for s in decision.scopes] == [0, 0, 4, 0]


def test_trace_conditions_report_description_held_and_compared() -> None:
    r = rule(
        "proxy",
        0,
        "deny",
        id="gate",
        notes="needs delete scope",
        priority=3,
        methods=("DELETE",),
        path=path("^/api/"),
        headers=(pair("^authorization$", "^Bearer "),),
        query=(pair("^access_token$"),),
        token=(pair("^scope$", "delete:resources", "must_absent"),),
    )
    f = facts("GET", "/api/v1/x", headers=HDRS, query=(("access_token", TOKEN),))
    outcome = only(r, f, {"scope": "read:users"})
    assert (outcome.name, outcome.id, outcome.notes, outcome.priority) == (
        "gate",
        "gate",
        "needs delete scope",
        3,
    )
    assert not outcome.matched
    got = [(c.kind, c.description, c.held, c.compared) for c in outcome.conditions]
    assert got == [
        ("methods", "methods in [DELETE]", False, ("GET",)),  # failed, yet the rest ran
        ("path", "path ~ /^/api// must_exist", True, ("/api/v1/x",)),
        (
            "header",
            "header /^authorization$/ = /^Bearer / must_exist",
            True,
            ('authorization="[redacted]"',),
        ),
        (
            "query",
            "query parameter /^access_token$/ must_exist",
            True,
            ('access_token="[redacted]"',),
        ),
        (
            "token",
            "claim /^scope$/ = /delete:resources/ must_absent",
            True,
            ('scope="read:users"',),
        ),
    ]


def test_trace_never_contains_the_token() -> None:
    r = rule("proxy", 0, "allow", headers=(pair("authorization", "Bearer"),))
    decision = evaluate(scopes(proxy=("deny", (r,))), facts(headers=HDRS), None)
    assert decision.allowed
    text = json.dumps(decision.to_dict())
    assert TOKEN not in text
    assert "[redacted]" in text


def test_trace_compared_values_are_short() -> None:
    r = rule("proxy", 0, "allow", headers=(pair("x-long"),), token=(pair("^big$"),))
    f = facts(headers=(("x-long", "v" * 500),))
    outcome = only(r, f, {"big": ["x" * 300]})
    assert all(len(c.compared[0]) <= 120 for c in outcome.conditions)
    assert outcome.conditions[0].compared[0].startswith('x-long="vvv')
    assert outcome.matched


def test_trace_caps_the_number_of_compared_entries() -> None:
    many = tuple((f"x-h{i}", str(i)) for i in range(20))
    outcome = only(rule("proxy", 0, "allow", headers=(pair("^x-h"),)), facts(headers=many))
    assert len(outcome.conditions[0].compared) == 9
    assert outcome.conditions[0].compared[-1] == "... 12 more"


def test_evaluate_profile_uses_the_profiles_scopes() -> None:
    gate = _deny("target", 0, id="no-admin", path=path("^/admin"))
    profile = Profile(
        path="p.toml",
        proxy=Proxy(default_effect="deny", rules=(_allow("proxy", 0, id="all"),)),
        target=Target(rules=(gate,)),
        target_credential=TargetCredential(),
        proxy_credential=ProxyCredential(),
    )
    allowed = evaluate_profile(profile, facts(p="/public"), None)
    denied = evaluate_profile(profile, facts(p="/admin/x"), None)
    assert isinstance(allowed, Decision)
    assert (allowed.allowed, allowed.deciding_rule) == (True, "all")
    assert (denied.allowed, denied.deciding) == (False, (("target", "no-admin"),))
