"""The rule engine (DESIGN.md §3): pure, no I/O.

``evaluate(scopes, facts, claims)`` -> a ``Decision`` holding the full trace: every
rule of every scope, every condition with what it compared (already redacted, §2.7).

Decisions: the request is allowed only if every scope allows; within a scope any
matching deny wins, else any matching allow, else the scope's default. ``priority``
only orders the trace and picks which matching rule is *named* as deciding.

Patterns are ``LinearRegex`` values (RE2: time linear in the text). ``prepare`` returns
a ``RuleRun`` whose ``weight`` bounds its regex work before any is done (each pattern's
cost per character times the characters it will search), so a caller on an event loop
can hand a heavy evaluation to a worker thread (``explain.decide``'s ``offload``).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import lru_cache
from typing import Any

from rrdev.core.model import PairCondition, PathCondition, Profile, Rule
from rrdev.core.records import (
    ConditionKind,
    ConditionOutcome,
    Decision,
    Effect,
    RequestFacts,
    RuleOutcome,
    Scope,
    ScopeOutcome,
)
from rrdev.core.redact import DEFAULT_REDACTOR, Redactor
from rrdev.core.regex import LinearRegex

__all__ = ["INLINE_WEIGHT", "RuleRun", "evaluate", "evaluate_profile", "prepare"]

#: Longest single ``compared`` entry; traces are read by people, not diffed.
MAX_COMPARED_CHARS = 120
#: Most ``compared`` entries per condition (a `.*` name pattern could list everything).
MAX_COMPARED_ITEMS = 8

#: The loader normalises the gateway's spellings, but accepting both here costs nothing.
_ABSENT = frozenset({"must_absent", "absent"})

#: The regex work (``LinearRegex.cost`` x characters searched) up to which a request's
#: rules may run on the caller's event loop: about 2 ms of RE2 at its measured worst
#: (~20 ns per unit, when its DFA gives up and it falls back to the NFA). A normal
#: request weighs a few thousand at most (the seed's DELETE: about 1,000).
INLINE_WEIGHT = 100_000

# (name, value texts the value pattern is searched in, displayable value)
_Entry = tuple[str, tuple[str, ...], Any]
_Scopes = Iterable[tuple[Scope, Effect, Sequence[Rule]]]


def evaluate(
    scopes: _Scopes,
    facts: RequestFacts,
    claims: Mapping[str, Any] | None,
    redactor: Redactor = DEFAULT_REDACTOR,
) -> Decision:
    """Evaluate ``scopes`` (as ``Profile.scopes()`` returns them, in fixed order)
    against one request. ``claims`` are the *verified* claims, or ``None`` when there
    is no token (token conditions then see no claims)."""
    return RuleRun(scopes, facts, claims, redactor)()


def evaluate_profile(
    profile: Profile,
    facts: RequestFacts,
    claims: Mapping[str, Any] | None,
    redactor: Redactor = DEFAULT_REDACTOR,
) -> Decision:
    """``evaluate`` over a profile's four scopes."""
    return evaluate(profile.scopes(), facts, claims, redactor)


def prepare(
    profile: Profile,
    facts: RequestFacts,
    claims: Mapping[str, Any] | None,
    redactor: Redactor = DEFAULT_REDACTOR,
) -> RuleRun:
    """A profile's evaluation for one request, to weigh before running it."""
    return RuleRun(_profile_plan(profile), facts, claims, redactor)


#: Profile -> its ``_Plan``, made once per profile, not per request. Keyed by identity,
#: the profile kept so an id is never reused while its entry lives.
_PLANS: dict[int, tuple[Profile, _Plan]] = {}


def _profile_plan(profile: Profile) -> _Plan:
    hit = _PLANS.get(id(profile))
    if hit is not None and hit[0] is profile:
        return hit[1]
    plan = _Plan(profile.scopes())
    if len(_PLANS) >= 64:  # old profiles after many reloads
        _PLANS.clear()
    _PLANS[id(profile)] = (profile, plan)
    return plan


class RuleRun:
    """One request's rule evaluation, prepared: calling it evaluates (-> ``Decision``
    with the full trace); ``verdict()`` decides without building the trace (it is built
    on first read of ``Decision.scopes``, by the same evaluator); ``weight`` bounds the
    regex work either takes (in ``LinearRegex.cost`` units) without doing any. Pure, so
    it may run on any thread."""

    __slots__ = ("_ctx", "_plan")

    def __init__(
        self,
        scopes: _Scopes | _Plan,
        facts: RequestFacts,
        claims: Mapping[str, Any] | None,
        redactor: Redactor = DEFAULT_REDACTOR,
    ) -> None:
        self._plan = scopes if isinstance(scopes, _Plan) else _Plan(scopes)
        self._ctx = _Context(facts, claims, redactor)

    @property
    def weight(self) -> int:
        # Each pattern's cost times the characters it will search, summed over every
        # rule: the costs per character are added up once per profile (``_Costs``), so
        # a request only multiplies a few sums.
        costs = self._plan.costs
        ctx = self._ctx
        weight = costs.path * len(ctx.facts.path)
        for kind, (names, values) in costs.pairs:
            name_chars, value_chars = ctx.chars(kind)
            weight += names * name_chars + values * value_chars
        return weight

    def __call__(self) -> Decision:
        return _decide(self._plan.scopes, self._ctx)

    def verdict(self) -> Decision:
        """The same Decision, its trace (``scopes``) left to build on first read."""
        return _verdict(self._plan, self._ctx)


def _verdict(plan: _Plan, ctx: _Context) -> Decision:
    # The hot path: each scope stops at its deciding rule and the request at the first
    # denying scope; no outcome object is made. ``_decide`` shares every match below.
    deciding: list[tuple[Scope, str]] = []
    for scope, default, ordered in plan.steps:
        rule = _deciding_rule(ordered, ctx) if ordered.rules else None
        effect = rule.effect if rule is not None else default
        name = rule.name if rule is not None else "default"
        if effect == "deny":
            token_decided = bool(rule is not None and rule.token)
            return Decision.lazy(False, ((scope, name),), token_decided, _tracer(plan.scopes, ctx))
        deciding.append((scope, name))
    return Decision.lazy(True, tuple(deciding), False, _tracer(plan.scopes, ctx))


def _tracer(scopes: _Scopes, ctx: _Context) -> Callable[[], tuple[ScopeOutcome, ...]]:
    return lambda: _decide(scopes, ctx).scopes


def _deciding_rule(ordered: _Ordered, ctx: _Context) -> Rule | None:
    """§3: the first matching deny in trace order, else the first matching allow."""
    for rule in ordered.denies:
        if _matches(rule, ctx):
            return rule
    for rule in ordered.allows:
        if _matches(rule, ctx):
            return rule
    return None


def _decide(scopes: _Scopes, ctx: _Context) -> Decision:
    outcomes = tuple(_evaluate_scope(s, default, rules, ctx) for s, default, rules in scopes)
    denying = next((o for o in outcomes if o.effect == "deny"), None)
    if denying is not None:
        return Decision(
            allowed=False,
            scopes=outcomes,
            deciding=((denying.scope, denying.decided_by),),
            token_condition_decided=denying.token_condition_decided,
        )
    return Decision(
        allowed=True, scopes=outcomes, deciding=tuple((o.scope, o.decided_by) for o in outcomes)
    )


# ------------------------------------------------------------------- scopes


class _Context:
    """One request's inputs. Entry lists are built once per request, and only when a
    condition of that kind asks for them."""

    __slots__ = (
        "_chars",
        "_claim_entries",
        "_header_entries",
        "_query_entries",
        "claims",
        "facts",
        "redactor",
    )

    def __init__(
        self, facts: RequestFacts, claims: Mapping[str, Any] | None, redactor: Redactor
    ) -> None:
        self.facts = facts
        self.claims = claims
        self.redactor = redactor
        self._claim_entries: list[_Entry] | None = None
        self._header_entries: list[_Entry] | None = None
        self._query_entries: list[_Entry] | None = None
        self._chars: dict[str, tuple[int, int]] = {}

    def claim_entries(self) -> list[_Entry]:
        if self._claim_entries is None:
            self._claim_entries = _claim_entries(self.claims)
        return self._claim_entries

    def header_entries(self) -> list[_Entry]:
        if self._header_entries is None:
            self._header_entries = [(n, (v,), v) for n, v in self.facts.headers]
        return self._header_entries

    def query_entries(self) -> list[_Entry]:
        if self._query_entries is None:
            self._query_entries = [(n, (v,), v) for n, v in self.facts.query]
        return self._query_entries

    def chars(self, kind: ConditionKind) -> tuple[int, int]:
        """(characters in all names, in all value texts) of the header, query or token
        entries: what a pair condition's name and value patterns will search."""
        if kind not in self._chars:
            if kind == "token":
                self._chars[kind] = _claim_chars(self.claims)
            else:
                self._chars[kind] = _entry_chars(_ENTRIES[kind](self))
        return self._chars[kind]


def _entry_chars(entries: list[_Entry]) -> tuple[int, int]:
    return (
        sum(len(name) for name, _texts, _raw in entries),
        sum(len(text) for _name, texts, _raw in entries for text in texts),
    )


_ENTRIES: dict[str, Callable[[_Context], list[_Entry]]] = {
    "header": _Context.header_entries,
    "query": _Context.query_entries,
    "token": _Context.claim_entries,
}


def _priority_key(rule: Rule) -> int:
    return -rule.priority


_PAIR_KINDS: tuple[ConditionKind, ...] = ("header", "query", "token")


class _Costs:
    """A rule set's regex cost per character searched: of its path patterns, and of
    its header, query and token conditions' (name, value) patterns."""

    __slots__ = ("pairs", "path")

    def __init__(self, rules: Sequence[Rule]) -> None:
        self.path = sum(r.path.pattern.regex.cost for r in rules if r.path is not None)
        pairs = []
        for kind in _PAIR_KINDS:
            conds = [c for r in rules for c in _conditions_of(r, kind)]
            names = sum(_name_regex(c, kind).cost for c in conds)
            values = sum(c.value.regex.cost for c in conds if c.value is not None)
            if names or values:
                pairs.append((kind, (names, values)))
        self.pairs: tuple[tuple[ConditionKind, tuple[int, int]], ...] = tuple(pairs)


def _conditions_of(rule: Rule, kind: ConditionKind) -> tuple[PairCondition, ...]:
    return {"header": rule.headers, "query": rule.query, "token": rule.token}[kind]


def _name_regex(cond: PairCondition, kind: ConditionKind) -> LinearRegex:
    return _ignorecase(cond.name.regex) if kind == "header" else cond.name.regex


class _Ordered:
    """A scope's rules worked out once: deny and allow rules, each in trace order."""

    __slots__ = ("allows", "denies", "rules")

    def __init__(self, rules: Sequence[Rule]) -> None:
        ordered = sorted(rules, key=_priority_key)
        self.rules = len(ordered)
        self.denies = tuple(r for r in ordered if r.effect == "deny")
        self.allows = tuple(r for r in ordered if r.effect == "allow")


class _Plan:
    """The four scopes worked out once (per profile, not per request): each scope's
    rules in trace order, and the regex costs per character ``RuleRun.weight`` uses."""

    __slots__ = ("costs", "scopes", "steps")

    def __init__(self, scopes: _Scopes) -> None:
        self.scopes = tuple(scopes)
        self.steps = tuple((s, default, _ordered(rules)) for s, default, rules in self.scopes)
        self.costs = _Costs([rule for _s, _d, rules in self.scopes for rule in rules])


#: A profile's rule tuples -> their trace order, worked out once per profile, not per
#: request. Keyed by identity (hashing a rule tuple would hash every pattern); the
#: tuple itself is kept so an id is never reused while its entry lives.
_ORDERS: dict[int, tuple[Sequence[Rule], _Ordered]] = {}


def _ordered(rules: Sequence[Rule]) -> _Ordered:
    hit = _ORDERS.get(id(rules))
    if hit is not None and hit[0] is rules:
        return hit[1]
    split = _Ordered(rules)
    if len(_ORDERS) >= 256:  # old profiles after many reloads
        _ORDERS.clear()
    _ORDERS[id(rules)] = (rules, split)
    return split


def _evaluate_scope(
    scope: Scope, default: Effect, rules: Sequence[Rule], ctx: _Context
) -> ScopeOutcome:
    # sorted() is stable, so equal priorities keep file order: the first matching rule
    # of an effect in trace order is exactly §3's deciding rule for that effect.
    ordered = sorted(rules, key=_priority_key)
    traced = [(rule, _evaluate_rule(rule, ctx)) for rule in ordered]
    matched = [rule for rule, outcome in traced if outcome.matched]
    deciding = next((r for r in matched if r.effect == "deny"), None) or next(
        (r for r in matched if r.effect == "allow"), None
    )
    return ScopeOutcome(
        scope=scope,
        default_effect=default,
        effect=deciding.effect if deciding else default,
        decided_by=deciding.name if deciding else "default",
        rules=tuple(outcome for _rule, outcome in traced),
        token_condition_decided=bool(deciding and deciding.effect == "deny" and deciding.token),
    )


def _matches(rule: Rule, ctx: _Context) -> bool:
    """Whether every condition of ``rule`` holds, stopping at the first that does not:
    the verdict's path. The trace (``_evaluate_rule``) asks the same ``_holds_*``."""
    if rule.methods and not _holds_method(rule.methods, ctx.facts.method):
        return False
    if rule.path is not None and not _holds_path(rule.path, ctx):
        return False
    # Plain loops: most rules have none of these, and all() would build a generator
    # for each kind on every request.
    for cond in rule.headers:
        if not _holds_header(cond, ctx):
            return False
    for cond in rule.query:
        if not _holds_query(cond, ctx):
            return False
    return not rule.token or all(_holds_token(cond, ctx) for cond in rule.token)


def _evaluate_rule(rule: Rule, ctx: _Context) -> RuleOutcome:
    # Every condition is evaluated, even after one fails: the trace shows them all.
    conditions: list[ConditionOutcome] = []
    if rule.methods:
        conditions.append(_methods(rule.methods, ctx.facts.method))
    if rule.path is not None:
        conditions.append(_path(rule.path, ctx))
    for cond in rule.headers:
        conditions.append(_headers(cond, ctx))
    for cond in rule.query:
        conditions.append(_query(cond, ctx))
    for cond in rule.token:
        conditions.append(_token(cond, ctx))
    return RuleOutcome(
        name=rule.name,
        index=rule.index,
        effect=rule.effect,
        priority=rule.priority,
        notes=rule.notes,
        matched=all(c.held for c in conditions),
        conditions=tuple(conditions),
        id=rule.id,
    )


# --------------------------------------------------------------- conditions
# Each kind has one ``_holds_*`` (the match, used by verdict and trace alike) and one
# trace builder that adds what the condition compared, for people to read.


def _holds_method(methods: tuple[str, ...], method: str) -> bool:
    # Exact: the method as sent ("get" is not "GET"), like the gateway (§2.1).
    return method in methods


def _holds_path(cond: PathCondition, ctx: _Context) -> bool:
    found = bool(cond.pattern.regex.search(ctx.facts.path))
    return found != (cond.presence in _ABSENT)


def _holds_header(cond: PairCondition, ctx: _Context) -> bool:
    return _holds_pair(cond, ctx.header_entries(), _ignorecase(cond.name.regex))


def _holds_query(cond: PairCondition, ctx: _Context) -> bool:
    return _holds_pair(cond, ctx.query_entries(), cond.name.regex)


def _holds_token(cond: PairCondition, ctx: _Context) -> bool:
    return _holds_pair(cond, ctx.claim_entries(), cond.name.regex)


def _holds_pair(cond: PairCondition, entries: Iterable[_Entry], name_re: LinearRegex) -> bool:
    """Shared by headers, query and token: does some entry match name and value?"""
    name_search = name_re.search
    value_search = cond.value.regex.search if cond.value is not None else None
    found = any(
        bool(name_search(name)) and (value_search is None or any(value_search(t) for t in texts))
        for name, texts, _raw in entries
    )
    return found != (cond.presence in _ABSENT)


def _methods(methods: tuple[str, ...], method: str) -> ConditionOutcome:
    return ConditionOutcome(
        kind="methods",
        description=f"methods in [{', '.join(methods)}]",
        held=_holds_method(methods, method),
        compared=(_short(method),),
    )


def _path(cond: PathCondition, ctx: _Context) -> ConditionOutcome:
    return ConditionOutcome(
        kind="path",
        description=f"path ~ {cond.pattern} {cond.presence}",
        held=_holds_path(cond, ctx),
        compared=(_short(ctx.redactor.text(ctx.facts.path)),),
    )


def _headers(cond: PairCondition, ctx: _Context) -> ConditionOutcome:
    name_re = _ignorecase(cond.name.regex)
    held = _holds_header(cond, ctx)
    entries = ctx.header_entries()
    return _pair("header", "header", cond, held, entries, name_re, ctx.redactor.header)


def _query(cond: PairCondition, ctx: _Context) -> ConditionOutcome:
    held = _holds_query(cond, ctx)
    entries = ctx.query_entries()
    return _pair(
        "query", "query parameter", cond, held, entries, cond.name.regex, ctx.redactor.field
    )


def _token(cond: PairCondition, ctx: _Context) -> ConditionOutcome:
    redactor = ctx.redactor

    def show(name: str, value: Any) -> str:
        return redactor.field(name.rsplit(".", 1)[-1], _json(value))

    held = _holds_token(cond, ctx)
    outcome = _pair("token", "claim", cond, held, ctx.claim_entries(), cond.name.regex, show)
    if ctx.claims is None:  # say why nothing matched: there was no verified token
        return ConditionOutcome(
            outcome.kind, outcome.description, outcome.held, ("no verified claims",)
        )
    return outcome


def _pair(
    kind: ConditionKind,
    label: str,
    cond: PairCondition,
    held: bool,
    entries: Iterable[_Entry],
    name_re: LinearRegex,
    show: Callable[[str, Any], str],
) -> ConditionOutcome:
    """A header, query or token condition's trace: the entries whose name matched."""
    compared: list[str] = []
    seen = 0
    for name, _texts, raw in entries:
        if not name_re.search(name):
            continue
        seen += 1
        if seen <= MAX_COMPARED_ITEMS:
            # Headers and query values are strings; claims show their JSON text.
            shown = show(name, raw)
            compared.append(_short(f"{name}={shown}" if kind == "token" else f'{name}="{shown}"'))
    if seen > MAX_COMPARED_ITEMS:
        compared.append(f"... {seen - MAX_COMPARED_ITEMS} more")
    value = f" = {cond.value}" if cond.value is not None else ""
    return ConditionOutcome(
        kind=kind,
        description=f"{label} {cond.name}{value} {cond.presence}",
        held=held,
        compared=tuple(compared) or (f"no {label} matches {cond.name}",),
    )


def _ignorecase(regex: LinearRegex) -> LinearRegex:
    """Header names match case-insensitively whatever flags the profile gave (§3; the
    loader already adds ``i``, so this is the ``Rule`` built in code)."""
    return regex if "i" in regex.flags else _with_ignorecase(regex)


@lru_cache(maxsize=1024)
def _with_ignorecase(regex: LinearRegex) -> LinearRegex:
    # Cached so nothing is compiled per request (LinearRegex hashes by source + flags).
    return regex.with_ignorecase()


# ------------------------------------------------------------------- claims

#: Verified claims -> their entries. The proxy's token cache hands one token's every
#: request the same claims object, so its JSON texts are made once. Keyed by identity,
#: the object kept so an id is never reused while its entry lives; claims are never
#: changed after verification.
_CLAIMS: dict[int, tuple[Mapping[str, Any], list[_Entry], tuple[int, int]]] = {}


def _claim_entries(claims: Mapping[str, Any] | None) -> list[_Entry]:
    return _claims_seen(claims)[1] if claims else []


def _claim_chars(claims: Mapping[str, Any] | None) -> tuple[int, int]:
    return _claims_seen(claims)[2] if claims else (0, 0)


def _claims_seen(
    claims: Mapping[str, Any],
) -> tuple[Mapping[str, Any], list[_Entry], tuple[int, int]]:
    """(claims, their entries, their characters), made once per claims object."""
    hit = _CLAIMS.get(id(claims))
    if hit is not None and hit[0] is claims:
        return hit
    entries = _flatten_claims(claims, "", [])
    if len(_CLAIMS) >= 1024:
        _CLAIMS.clear()
    seen = (claims, entries, _entry_chars(entries))
    _CLAIMS[id(claims)] = seen
    return seen


def _flatten_claims(claims: Mapping[str, Any], prefix: str, out: list[_Entry]) -> list[_Entry]:
    """Every claim by name, plus nested objects' members by dotted path.

    Top-level names are taken whole (``https://example.com/roles`` is one claim); only
    descending into an object adds a dot.
    """
    for key, value in claims.items():
        name = f"{prefix}{key}"
        if isinstance(value, (list, tuple)):
            texts = tuple(_text(v) for v in value)  # any element may match
        else:
            texts = (_text(value),)
        out.append((name, texts, value))
        if isinstance(value, Mapping):
            _flatten_claims(value, f"{name}.", out)
    return out


def _text(value: Any) -> str:
    """What a value pattern is searched in: strings whole, anything else its JSON."""
    return value if isinstance(value, str) else _json(value)


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _short(text: str) -> str:
    return text if len(text) <= MAX_COMPARED_CHARS else text[: MAX_COMPARED_CHARS - 1] + "…"
