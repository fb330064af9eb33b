"""Make it pass: from a refusal, the token change that would let the request through.

Pure: ``propose_fix`` reads the refusal's ``Explanation`` (its verification and rule
trace) and the profile's rules, and says what token would pass, when rrdev can see it:
a fresh one for an expired (or not-yet-valid) token, the right audience or issuer, a
claim value an allow rule requires or a deny rule's ``must_absent`` condition wants, or
a token at all. ``fixed_claims`` applies a proposal to the claims of the token that was
refused. Nothing here signs or sends: the TUI mints (local issuer) or says what to ask
the provider for (``FixProposal.summary``).

Patterns are regular expressions; a value can only be proposed when its pattern is a
literal (``delete:resources``, ``^admin$``): anything else is "not visible" and the
proposal says so instead of guessing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from rrdev.core.model import PairCondition, Profile, Rule
from rrdev.core.records import Explanation, RuleOutcome, ScopeOutcome

__all__ = ["ClaimEdit", "FixProposal", "fixed_claims", "propose_fix"]

#: Claims that hold space-separated words (OAuth2's ``scope``; Okta's is ``scp``).
_WORD_CLAIMS = frozenset({"scope", "scp"})
#: Characters that make a pattern more than a literal.
_REGEX_CHARS = frozenset(".^$*+?{}[]\\|()")
#: Lifetime of a fresh token when the refused one had none to copy.
DEFAULT_LIFETIME_SECONDS = 3600


@dataclass(frozen=True)
class ClaimEdit:
    """One change to a claim: ``add`` a value (a word to a scope string, an element to
    an array, else the value itself), ``remove`` one (``value`` None: the claim), or
    ``set`` it outright."""

    claim: str
    action: Literal["add", "remove", "set"]
    value: Any = None


@dataclass(frozen=True)
class FixProposal:
    """What would make a refused request pass. ``possible`` False: rrdev cannot see a
    token change that would (``summary`` says why). ``fresh``: new ``iat``/``exp``, no
    ``nbf``. ``new_token``: none was sent; mint one with the profile's identity."""

    summary: str
    edits: tuple[ClaimEdit, ...] = ()
    fresh: bool = False
    new_token: bool = False
    possible: bool = True


def _impossible(summary: str) -> FixProposal:
    return FixProposal(summary, possible=False)


def propose_fix(expl: Explanation, profile: Profile) -> FixProposal:
    """The token change that would let the request ``expl`` refused through."""
    if expl.allowed:
        return _impossible("the request passed: nothing to fix")
    if expl.reason == "token_missing":
        return FixProposal("send a token (none was sent)", new_token=True, fresh=True)
    if expl.status == 401:
        return _token_fix(expl, profile)
    if expl.status == 403 and expl.decision is not None:
        return _rule_fix(expl, profile)
    return _impossible(f"{expl.reason} does not depend on the token: {expl.message}")


# ------------------------------------------------------------------ 401


def _token_fix(expl: Explanation, profile: Profile) -> FixProposal:
    reason = expl.reason
    cred = profile.proxy_credential
    if reason in ("token_expired", "token_not_yet_valid"):
        what = "expired" if reason == "token_expired" else "not valid yet"
        return FixProposal(f"a fresh token (this one is {what})", fresh=True)
    if reason == "audience_mismatch" and cred.audience:
        aud = cred.audience[0]
        return FixProposal(f"a token for audience {aud}", (ClaimEdit("aud", "set", aud),))
    issuers = cred.accepted_issuers()
    if reason == "issuer_mismatch" and issuers and "{" not in issuers[0]:
        iss = issuers[0]
        return FixProposal(f"a token from issuer {iss}", (ClaimEdit("iss", "set", iss),))
    return _impossible(f"{reason}: {expl.message} (a new token from the right issuer)")


# ------------------------------------------------------------------ 403


def _rule_fix(expl: Explanation, profile: Profile) -> FixProposal:
    assert expl.decision is not None
    scope_name = expl.decision.deciding_scope
    scope = next((s for s in expl.decision.scopes if s.scope == scope_name), None)
    if scope is None:
        return _impossible("no denying scope in the trace")
    rules = {r.name: r for r in profile.all_rules() if r.scope == scope.scope}
    denies = [o for o in scope.rules if o.matched and o.effect == "deny"]
    if denies:
        return _lift_denies(denies, rules)
    return _meet_an_allow(scope, rules)


def _lift_denies(denies: list[RuleOutcome], rules: Mapping[str, Rule]) -> FixProposal:
    """Every matching deny must stop matching: flip one of its token conditions."""
    edits: list[ClaimEdit] = []
    for outcome in denies:
        rule = rules.get(outcome.name)
        edit = next((e for c in rule.token if (e := _flip(c)) is not None), None) if rule else None
        if edit is None:
            return _impossible(
                f"deny rule {outcome.name} holds whatever the token says "
                "(no token condition rrdev can satisfy)"
            )
        edits.append(edit)
    return FixProposal(_describe(edits), tuple(edits))


def _meet_an_allow(scope: ScopeOutcome, rules: Mapping[str, Rule]) -> FixProposal:
    """The default denied: the highest-priority allow rule whose only failing
    conditions are token conditions rrdev can satisfy."""
    for outcome in scope.rules:  # trace order: priority first
        rule = rules.get(outcome.name)
        if outcome.effect != "allow" or rule is None:
            continue
        edits = _satisfy(outcome, rule)
        if edits:
            return FixProposal(_describe(edits), tuple(edits))
    return _impossible(
        f"no allow rule in scope {scope.scope} would match this request with another token"
    )


def _satisfy(outcome: RuleOutcome, rule: Rule) -> list[ClaimEdit] | None:
    """Edits that make every failing token condition of ``rule`` hold; None when a
    condition on something else failed or a pattern is not a literal."""
    if any(not c.held and c.kind != "token" for c in outcome.conditions):
        return None
    token_outcomes = [c for c in outcome.conditions if c.kind == "token"]
    edits = []
    for cond, seen in zip(rule.token, token_outcomes, strict=False):
        if seen.held:
            continue
        edit = _make_hold(cond)
        if edit is None:
            return None
        edits.append(edit)
    return edits or None


def _make_hold(cond: PairCondition) -> ClaimEdit | None:
    """The edit after which ``cond`` holds."""
    name = _literal(cond.name.source)
    if name is None:
        return None
    value = _literal(cond.value.source) if cond.value is not None else None
    if cond.value is not None and value is None:
        return None
    if cond.presence in ("must_absent", "absent"):
        return ClaimEdit(name, "remove", value)
    return ClaimEdit(name, "add", value if value is not None else True)


def _flip(cond: PairCondition) -> ClaimEdit | None:
    """The edit after which ``cond`` (in a deny rule that matched) no longer holds."""
    edit = _make_hold(cond)
    if edit is None:
        return None
    if edit.action == "remove":  # it held because the value was absent: add it
        return ClaimEdit(edit.claim, "add", edit.value if edit.value is not None else True)
    return ClaimEdit(edit.claim, "remove", None if edit.value is True else edit.value)


def _literal(source: str) -> str | None:
    """The text a pattern matches when it is a literal: anchors, the scope-word idiom
    ``(^| )word( |$)`` and escaped punctuation (``Orders\\.Write``) allowed."""
    text = source.removeprefix("(^| )").removesuffix("( |$)")
    text = text.removeprefix("^").removesuffix("$")
    out: list[str] = []
    escaped = False
    for ch in text:
        if escaped:
            if ch.isalnum():  # \d, \w, \b: a class or an assertion, not text
                return None
            out.append(ch)
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch in _REGEX_CHARS:
            return None
        else:
            out.append(ch)
    return "".join(out) if out and not escaped else None


def _describe(edits: list[ClaimEdit]) -> str:
    parts = []
    for edit in edits:
        if edit.action == "add" and edit.value is not True:
            parts.append(f"{edit.claim} with {edit.value}")
        elif edit.action == "add":
            parts.append(f"a {edit.claim} claim")
        elif edit.value is not None:
            parts.append(f"{edit.claim} without {edit.value}")
        else:
            parts.append(f"no {edit.claim} claim")
    return "a token with " + ", ".join(parts)


# ------------------------------------------------------------------ applying


def fixed_claims(claims: Mapping[str, Any], proposal: FixProposal, now: float) -> dict[str, Any]:
    """``claims`` (of the refused token) changed as ``proposal`` says."""
    out = dict(claims)
    for edit in proposal.edits:
        _apply(out, edit)
    if proposal.fresh:
        iat, exp = out.get("iat"), out.get("exp")
        lifetime = exp - iat if _number(iat) and _number(exp) and exp > iat else None
        out["iat"] = int(now)
        out["exp"] = int(now + (lifetime or DEFAULT_LIFETIME_SECONDS))
        out.pop("nbf", None)
    return out


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _apply(claims: dict[str, Any], edit: ClaimEdit) -> None:
    current = claims.get(edit.claim)
    if edit.action == "set":
        claims[edit.claim] = edit.value
    elif edit.action == "add":
        claims[edit.claim] = _added(edit.claim, current, edit.value)
    elif edit.value is None or current is None:
        claims.pop(edit.claim, None)
    else:
        claims[edit.claim] = _removed(current, edit.value)


def _added(name: str, current: Any, value: Any) -> Any:
    if isinstance(current, list):
        return current if value in current else [*current, value]
    if isinstance(current, str) and (name in _WORD_CLAIMS or " " in current):
        words = current.split()
        return current if value in words else " ".join([*words, str(value)])
    return value


def _removed(current: Any, value: Any) -> Any:
    if isinstance(current, list):
        return [v for v in current if v != value]
    if isinstance(current, str):
        return " ".join(w for w in current.split() if value not in w)
    return current
