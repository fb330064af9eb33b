"""A refusal in plain words, for the top of the Explain tab: one sentence (what was
refused, what the token lacks, what would pass), the command that gets a token that
passes, and why a deny won over an allow that also matched. Pure (no Textual): it
reads the record's trace and decides nothing.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass

from rrdev.cli.render import SCOPE_LABELS
from rrdev.core.records import ConditionOutcome, RequestRecord, RuleOutcome, ScopeOutcome

__all__ = ["Refusal", "describe_refusal"]

#: A token condition's trace text: "claim /^scope$/ = /delete:resources/ must_absent".
_CLAIM = re.compile(
    r"^claim /(?P<name>.+?)/[ims]* = /(?P<value>.+?)/[ims]* (?P<presence>must_absent|absent)$"
)
#: A pattern that is a plain value (no regex syntax but anchors), usable as a claim value.
_LITERAL = re.compile(r"^\^?(?P<word>[\w:./@-]+)\$?$")
_SCOPE_CLAIMS = ("scope", "scp")


@dataclass(frozen=True)
class Refusal:
    """``sentence`` leads; ``commands`` get a token that passes (may be empty);
    ``deny_won`` says why a deny beat an allow in the same scope (or is empty)."""

    sentence: str
    commands: tuple[str, ...]
    deny_won: str
    scope: ScopeOutcome
    rule: RuleOutcome | None


def describe_refusal(record: RequestRecord, profile_ref: str | None) -> Refusal | None:
    """For a 403 decided by the rules; ``None`` for anything else."""
    decision = record.explanation.decision
    if decision is None or decision.allowed or not decision.deciding:
        return None
    scope_name, rule_name = decision.deciding[0]
    scope = next((s for s in decision.scopes if s.scope == scope_name), None)
    if scope is None:
        return None
    rule = next((r for r in scope.rules if r.name == rule_name), None)
    what = f"{record.method} {record.path} was refused"
    where = f"{SCOPE_LABELS[scope_name]} scope"
    if rule is None:
        sentence = f"{what}: no rule of the {where} allows it, and its default is deny."
        return Refusal(sentence, (), "", scope, None)
    missing = _missing_claim(rule)
    if missing is None:
        sentence = f"{what} by rule {rule.name} ({where}): every condition of this deny rule held."
        sentence += " A request that fails any one of them would pass this rule."
        return Refusal(sentence, (), _deny_won(scope, rule), scope, rule)
    claim, value, current = missing
    sentence = (
        f"{what} by rule {rule.name} ({where}): the token's {claim} lacks {value}. "
        f"A token whose {claim} includes {value} would pass."
    )
    commands = _commands(claim, value, current, profile_ref)
    return Refusal(sentence, commands, _deny_won(scope, rule), scope, rule)


def _missing_claim(rule: RuleOutcome) -> tuple[str, str, str] | None:
    """(claim, value, the token's current value) for a deny rule's 'must be absent'
    claim condition whose value is a plain word."""
    for cond in rule.conditions:
        found = _CLAIM.match(cond.description) if cond.kind == "token" else None
        name = _LITERAL.match(found["name"]) if found else None
        value = _LITERAL.match(found["value"]) if found else None
        if name and value:
            return name["word"], value["word"], _current(cond, name["word"])
    return None


def _current(cond: ConditionOutcome, claim: str) -> str:
    for seen in cond.compared:
        name, _, value = seen.partition("=")
        if name == claim:
            return value.strip('"')
    return ""


def _commands(claim: str, value: str, current: str, profile_ref: str | None) -> tuple[str, ...]:
    profile = f" -p {shlex.quote(profile_ref)}" if profile_ref else ""
    if claim in _SCOPE_CLAIMS:
        scopes = " ".join([*current.split(), value]) if value not in current.split() else current
        mint = f"rrdev token mint{profile} --scope {shlex.quote(scopes)}"
        fetch = (
            f'or ask the provider for it: [auth] scope = "{scopes}", '
            f"then rrdev token fetch{profile}"
        )
    else:
        mint = f"rrdev token mint{profile} --claim {shlex.quote(f'{claim}={value}')}"
        fetch = ""
    if profile_ref == "demo" or not fetch:
        return (mint,)
    return (mint, fetch)


def _deny_won(scope: ScopeOutcome, rule: RuleOutcome) -> str:
    allows = [r.name for r in scope.rules if r.matched and r.effect == "allow"]
    if not allows:
        return ""
    names = ", ".join(allows)
    also = "also matches" if len(allows) == 1 else "also match"
    return (
        f"{names} {also} this request, but within a scope a deny wins: "
        f"{rule.name} decides the {SCOPE_LABELS[scope.scope]} scope."
    )
