"""The rules view's counts (``R``): per rule, how often it matched and decided.

Pure: no Textual. Counts come from the records' rule traces, the same
``Decision`` the proxy decided with. A rule "decided" a request when it is that
request's deciding rule in its scope (DESIGN.md §3): for a denial the one denying
rule, for an allow each scope's allowing rule. Rules of the profile that no record
mentions are listed with zeros, so a rule that never decides stands out; names seen
only in the traffic (a log file opened without its profile, a rule since removed) are
listed after them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from rrdev.core.model import Profile
from rrdev.core.records import SCOPES, RequestRecord, Scope

__all__ = ["RuleHits", "count_rule_hits"]


@dataclass(frozen=True)
class RuleHits:
    """One rule's line in the rules view."""

    scope: Scope
    name: str
    effect: str
    matched: int = 0
    decided_allow: int = 0
    decided_deny: int = 0
    notes: str = ""
    #: False for a rule that only the traffic names (not in the profile in force)
    in_profile: bool = True

    @property
    def decided(self) -> int:
        return self.decided_allow + self.decided_deny

    @property
    def filter_query(self) -> str:
        """The traffic filter that shows the requests this rule decided."""
        return f'rule:"{self.name}"' if " " in self.name else f"rule:{self.name}"


def count_rule_hits(
    records: Iterable[RequestRecord], profile: Profile | None = None
) -> list[RuleHits]:
    """Every rule of ``profile`` (then any other rule a trace names), by scope in
    DESIGN.md §3's order, with its counts over ``records``."""
    counts: dict[tuple[Scope, str], list[int]] = {}
    effects: dict[tuple[Scope, str], str] = {}
    for record in records:
        _count(record, counts, effects)
    rows = _profile_rows(profile, counts)
    known = {(row.scope, row.name) for row in rows}
    for key in sorted(counts.keys() - known, key=lambda k: (SCOPES.index(k[0]), k[1])):
        rows.append(_row(key, effects.get(key, "?"), counts[key], "", in_profile=False))
    rows.sort(key=lambda row: SCOPES.index(row.scope))  # stable: file order within a scope
    return rows


def _count(
    record: RequestRecord,
    counts: dict[tuple[Scope, str], list[int]],
    effects: dict[tuple[Scope, str], str],
) -> None:
    decision = record.explanation.decision
    if decision is None:
        return
    for scope in decision.scopes:
        for rule in scope.rules:
            if rule.matched:
                key = (scope.scope, rule.name)
                counts.setdefault(key, [0, 0, 0])[0] += 1
                effects[key] = rule.effect
    column = 1 if decision.allowed else 2
    for scope_name, name in decision.deciding:
        if name != "default":
            counts.setdefault((scope_name, name), [0, 0, 0])[column] += 1


def _profile_rows(
    profile: Profile | None, counts: dict[tuple[Scope, str], list[int]]
) -> list[RuleHits]:
    if profile is None:
        return []
    return [
        _row((rule.scope, rule.name), rule.effect, counts.get((rule.scope, rule.name)), rule.notes)
        for rule in profile.all_rules()
    ]


def _row(
    key: tuple[Scope, str],
    effect: str,
    count: list[int] | None,
    notes: str,
    *,
    in_profile: bool = True,
) -> RuleHits:
    matched, allow, deny = count or (0, 0, 0)
    return RuleHits(key[0], key[1], effect, matched, allow, deny, notes, in_profile)
