"""One evaluator: the proxy's fast verdict equals the full trace's, on generated input.

``RuleRun.verdict()`` (the hot path: stops at each scope's deciding rule, builds no
outcome) and ``RuleRun()`` (every rule, every condition traced) share each condition's
match; these properties hold them to the same verdict, deciding rules and
``token_condition_decided`` for generated rules (all four scopes, both effects, equal and
different priorities, methods, path, header, query and token conditions with both
presences) against generated requests and claims, and check that the verdict's lazily
built trace is exactly the traced one.
"""

from __future__ import annotations

import asyncio
import pickle
from typing import Any

from fuzzing import examples
from hypothesis import given
from hypothesis import strategies as st

from rrdev.core.explain import IncomingRequest, decide
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
from rrdev.core.records import SCOPES, Decision, RequestFacts
from rrdev.core.rules import RuleRun

# Small alphabets so generated conditions and requests often meet.
_PATTERNS = ["", ".*", "^/a", "b", "^/a/b$", "[0-9]+", "x|y", "^$"]
_PATHS = ["/", "/a", "/a/b", "/b/1", "/x", "/a/2"]
_NAMES = ["a", "b", "x-y", "scope"]
_VALUES = ["", "1", "b", "x", "read y", "2"]
_METHODS = ["GET", "POST", "DELETE", "get"]

# Compiled once: RE2 compilation per example would dominate the run.
_COMPILED = [Pattern(source, flags) for source in _PATTERNS for flags in ("", "i")]
patterns = st.sampled_from(_COMPILED)
presences = st.sampled_from(["must_exist", "must_absent"])
pairs = st.builds(PairCondition, patterns, st.none() | patterns, presences)


@st.composite
def rules(draw: st.DrawFn, scope: str, index: int) -> Rule:
    return Rule(
        scope,  # type: ignore[arg-type]
        index,
        draw(st.sampled_from(["allow", "deny"])),
        id=draw(st.none() | st.just(f"{scope}-{index}")),
        methods=tuple(draw(st.lists(st.sampled_from(_METHODS), max_size=2, unique=True))),
        path=draw(st.none() | st.builds(PathCondition, patterns, presences)),
        headers=tuple(draw(st.lists(pairs, max_size=2))),
        query=tuple(draw(st.lists(pairs, max_size=2))),
        token=tuple(draw(st.lists(pairs, max_size=2))),
        priority=draw(st.sampled_from([0, 0, 1, 5])),
    )


@st.composite
def scope_lists(draw: st.DrawFn) -> list[tuple[Any, Any, tuple[Rule, ...]]]:
    out = []
    for scope in SCOPES:
        count = draw(st.integers(0, 4))
        out.append(
            (
                scope,
                draw(st.sampled_from(["allow", "deny"])),
                tuple(draw(rules(scope, i)) for i in range(count)),
            )
        )
    return out


entries = st.tuples(st.sampled_from(_NAMES), st.sampled_from(_VALUES))
requests = st.builds(
    lambda method, path, query, headers: RequestFacts(method, path, path, query, headers),
    st.sampled_from(_METHODS),
    st.sampled_from(_PATHS),
    st.lists(entries, max_size=3).map(tuple),
    st.lists(entries, max_size=3).map(tuple),
)
claim_values = st.sampled_from(_VALUES) | st.integers(0, 3) | st.lists(st.sampled_from(_VALUES))
claim_sets = st.none() | st.dictionaries(
    st.sampled_from(_NAMES), claim_values | st.dictionaries(st.sampled_from(_NAMES), claim_values)
)


@given(scope_lists(), requests, claim_sets)
@examples(1.0)
def test_fast_verdict_equals_the_traced_one(scopes: Any, facts: RequestFacts, claims: Any) -> None:
    traced = RuleRun(scopes, facts, claims)()
    fast = RuleRun(scopes, facts, claims).verdict()
    assert fast.allowed is traced.allowed
    assert fast.deciding == traced.deciding
    assert fast.deciding_rule == traced.deciding_rule
    assert fast.token_condition_decided is traced.token_condition_decided
    assert "scopes" not in fast.__dict__  # nothing traced until someone reads it
    assert fast.scopes == traced.scopes
    assert fast == traced
    assert fast.to_dict() == traced.to_dict()


@given(scope_lists(), requests, claim_sets)
@examples(0.5)
def test_deciding_rule_is_the_first_matching_deny_else_allow(
    scopes: Any, facts: RequestFacts, claims: Any
) -> None:
    """§3 read off the trace independently: the verdict names what the trace shows."""
    fast = RuleRun(scopes, facts, claims).verdict()
    denying = [o for o in fast.scopes if o.effect == "deny"]
    assert fast.allowed is not denying
    for outcome in fast.scopes:
        matched = [r for r in outcome.rules if r.matched]
        winner = next((r for r in matched if r.effect == "deny"), None) or next(
            (r for r in matched if r.effect == "allow"), None
        )
        assert outcome.decided_by == (winner.name if winner else "default")
    if denying:
        assert fast.deciding == ((denying[0].scope, denying[0].decided_by),)


@given(scope_lists(), requests, claim_sets)
@examples(0.25)
def test_a_lazy_decision_pickles_as_the_traced_one(
    scopes: Any, facts: RequestFacts, claims: Any
) -> None:
    fast = RuleRun(scopes, facts, claims).verdict()
    copied = pickle.loads(pickle.dumps(fast))
    assert type(copied) is Decision
    assert copied == RuleRun(scopes, facts, claims)()


def _profile(scopes: Any) -> Profile:
    from dataclasses import replace

    base = Profile(
        path="p.toml",
        proxy=Proxy(),
        target=Target(),
        target_credential=TargetCredential(),
        proxy_credential=ProxyCredential(auth_type="none"),
    )
    by_scope = {scope: (default, rules) for scope, default, rules in scopes}
    parts = {}
    for scope in SCOPES:
        default, rules = by_scope[scope]
        parts[scope] = replace(getattr(base, scope), default_effect=default, rules=rules)
    return replace(base, **parts)


@given(scope_lists(), requests)
@examples(0.25)
def test_decide_answers_as_the_traced_rules_do(scopes: Any, facts: RequestFacts) -> None:
    """Through ``explain.decide`` (auth "none"): a refusal names the traced verdict's
    deciding rule and its body carries the full trace."""
    profile = _profile(scopes)
    request = IncomingRequest(facts.method, facts.path, "", facts.headers)
    expl = asyncio.run(decide(profile, request, None, now=0.0))
    traced = RuleRun(profile.scopes(), expl.request and _facts_of(expl, facts), None)()
    assert (expl.status == 200) is traced.allowed
    assert expl.deciding_rule == traced.deciding_rule
    if not traced.allowed:
        assert expl.error_body()["trace"] == traced.to_dict()


def _facts_of(expl: Any, facts: RequestFacts) -> RequestFacts:
    # decide lower-cases header names; the rules saw these.
    headers = tuple((k.lower(), v) for k, v in facts.headers)
    return RequestFacts(facts.method, facts.path, facts.path, (), headers)
