"""Rule coverage: which rules of a profile its checks exercise.

A rule is *exercised* when it decided at least one check (``Decision.deciding``: for a
denial the denying rule, for an allow each scope's deciding rule).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rrdev.core.model import Profile, Rule
from rrdev.core.records import Scope

if TYPE_CHECKING:
    from rrdev.checks.model import CheckResult

__all__ = ["RuleCoverage", "rule_coverage"]


@dataclass(frozen=True)
class RuleCoverage:
    """One rule of the profile and the checks it decided (``decided``, by name)."""

    scope: Scope
    index: int
    id: str | None
    notes: str
    line: int | None
    decided: tuple[str, ...] = ()

    @classmethod
    def of(cls, rule: Rule, decided: Sequence[str]) -> RuleCoverage:
        return cls(rule.scope, rule.index, rule.id, rule.notes, rule.line, tuple(decided))

    @property
    def name(self) -> str:
        return self.id or f"{self.scope}[{self.index}]"

    @property
    def exercised(self) -> bool:
        return bool(self.decided)

    def describe(self) -> str:
        """``proxy[2] 'scope-gate-delete' (Scope gate: ...)``: position, id, notes."""
        text = f"{self.scope}[{self.index}]"
        if self.id:
            text += f" '{self.id}'"
        if self.notes:
            text += f" ({self.notes})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "index": self.index,
            "name": self.name,
            "id": self.id,
            "notes": self.notes,
            "line": self.line,
            "exercised": self.exercised,
            "decided": list(self.decided),
        }


def rule_coverage(profile: Profile, results: Sequence[CheckResult]) -> tuple[RuleCoverage, ...]:
    """Every rule of the profile with the checks it decided."""
    decided: dict[tuple[str, str], list[str]] = {}
    for result in results:
        for pair in dict.fromkeys(result.outcome.deciding):
            decided.setdefault(pair, []).append(result.name)
    return tuple(
        RuleCoverage.of(rule, decided.get((rule.scope, rule.name), ()))
        for rule in profile.all_rules()
    )
