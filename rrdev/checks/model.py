"""The values of a check run: options, expectations, requests, outcomes and reports.

All frozen. ``CheckOptions`` says how to run (validated when built: a bad combination of
options is an ``RrdevError`` before anything runs); ``Expectation`` is a check's
``expect``; ``CheckRequest`` what a check sends; ``Outcome`` what it got;
``CheckResult``, ``ProfileReport`` and ``CheckRun`` the verdicts, with ``to_dict`` as
the machine-readable report (``rrdev check --json``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from rrdev.checks.coverage import RuleCoverage
from rrdev.core.errors import RrdevError
from rrdev.core.explain import IncomingRequest
from rrdev.core.model import CheckSpec
from rrdev.core.records import Explanation, Scope

__all__ = [
    "GRANTED_FAILURES",
    "CheckOptions",
    "CheckRequest",
    "CheckResult",
    "CheckRun",
    "Expectation",
    "Mode",
    "Outcome",
    "ProfileReport",
    "check_against_url",
]

Mode = Literal["dry", "live", "against"]

#: rrdev's own answers after access was granted (the backend is the problem).
GRANTED_FAILURES = frozenset(
    {"upstream_unreachable", "upstream_timeout", "upstream_credential_unavailable"}
)


@dataclass(frozen=True)
class CheckOptions:
    """How to run: ``mode`` dry (default), live or against (``against`` is the URL).

    ``offline``: the local keyset stands in for the issuer. ``target`` (live only)
    replaces the profile's ``base_url``; ``jwks`` (dry, live) replaces its
    ``jwks_uri``. ``now`` (dry only) evaluates as of that epoch time; minted tokens
    are minted relative to it. ``timeout`` bounds each HTTP request (seconds).
    ``require_coverage``: an unexercised rule fails the run.
    """

    mode: Mode = "dry"
    against: str | None = None
    offline: bool = False
    target: str | None = None
    jwks: str | None = None
    now: float | None = None
    timeout: float = 30.0
    require_coverage: bool = False

    def __post_init__(self) -> None:
        if self.mode == "against":
            check_against_url(self.against or "")
        if self.mode != "against" and self.against:
            raise RrdevError("--against URL and --live cannot be combined")
        if self.target and self.mode != "live":
            raise RrdevError(
                "--target applies to --live only",
                "a dry run forwards nothing; with --against the remote side picks the backend",
            )
        if self.jwks and self.mode == "against":
            raise RrdevError("--jwks does not apply to --against: the remote side verifies")
        if self.now is not None and self.mode != "dry":
            raise RrdevError(
                "--at applies to dry runs only", "a live proxy or gateway uses the real time"
            )
        if self.require_coverage and self.mode == "against":
            raise RrdevError(
                "--require-coverage cannot be used with --against",
                "answers the backend sent through carry no rule trace; check coverage "
                "in a dry run (the default) or with --live",
            )


@dataclass(frozen=True)
class Expectation:
    """A check's ``expect``: "allowed" (``allowed``), or a status with optional
    ``reason`` and ``rule`` (the deciding rule's name)."""

    allowed: bool = False
    status: int | None = None
    reason: str | None = None
    rule: str | None = None

    @classmethod
    def parse(cls, value: Any) -> Expectation:
        if value == "allowed":
            return cls(allowed=True)
        if isinstance(value, int):
            return cls(status=value)
        data: Mapping[str, Any] = value
        return cls(status=data.get("status"), reason=data.get("reason"), rule=data.get("rule"))

    def __str__(self) -> str:
        parts = ["allowed"] if self.allowed else []
        parts += [str(self.status)] if self.status is not None else []
        parts += [self.reason] if self.reason else []
        text = " ".join(parts)
        if self.rule:
            text += f" · {self.rule}" if text else f"rule {self.rule}"
        return text or "anything"

    def names(self, status: int | None, reason: str | None) -> bool:
        """Whether this expectation asks for exactly that status or reason."""
        return (status is not None and self.status == status) or (
            reason is not None and self.reason == reason
        )

    def to_dict(self) -> dict[str, Any]:
        if self.allowed:
            return {"allowed": True}
        return {"status": self.status, "reason": self.reason, "rule": self.rule}


@dataclass(frozen=True)
class CheckRequest:
    """One check as a request: raw path and query as sent, headers (with the bearer
    token), body. ``check`` is the spec it came from, ``index`` its position."""

    check: CheckSpec
    index: int
    method: str
    raw_path: str
    raw_query: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None

    def incoming(self) -> IncomingRequest:
        return IncomingRequest(self.method, self.raw_path, self.raw_query, self.headers)

    @property
    def target(self) -> str:
        return self.raw_path + (f"?{self.raw_query}" if self.raw_query else "")


@dataclass(frozen=True)
class Outcome:
    """What a check got.

    ``reason`` is rrdev's reason code ("allowed" when forwarded), or None when the
    answer carries none (a deployed gateway's or a backend's own response). ``granted``
    says whether the gateway let the request through (None: cannot tell). ``deciding``
    lists the deciding ``(scope, rule)`` pairs; ``traced`` whether they are known at
    all (an answer without an rrdev trace leaves coverage unknown). ``explanation`` is
    the full one when available (dry run, live), a partial one from an error body, or
    None. ``message`` is rrdev's message or the ``requestrocket-proxy-message`` header.
    """

    status: int
    reason: str | None
    granted: bool | None
    deciding: tuple[tuple[Scope, str], ...] = ()
    traced: bool = True
    explanation: Explanation | None = None
    message: str = ""

    @classmethod
    def from_explanation(cls, expl: Explanation, status: int | None = None) -> Outcome:
        return cls(
            status=expl.status if status is None else status,
            reason=expl.reason,
            granted=expl.allowed,
            deciding=expl.decision.deciding if expl.decision else (),
            explanation=expl,
            message=expl.message,
        )

    @property
    def rule(self) -> str | None:
        """The deciding rule as a 403, ``explain`` and the TUI name it."""
        if not self.deciding:
            return None
        names = [name for _scope, name in self.deciding]
        if not self.granted:
            return names[0]
        return next((n for n in names if n != "default"), "default")

    @property
    def rule_names(self) -> frozenset[str]:
        return frozenset(name for _scope, name in self.deciding)

    def __str__(self) -> str:
        parts = [str(self.status)]
        if self.reason and self.reason != "allowed":
            parts.append(self.reason)
        elif self.reason == "allowed":
            parts.append("(forwarded)" if self.status != 200 else "allowed")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "rule": self.rule,
            "granted": self.granted,
            "deciding": [{"scope": s, "rule": r} for s, r in self.deciding],
            "message": self.message,
        }


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict. ``problems`` (empty when it passed) say what differed;
    ``notes`` what could not be checked, or why a result may surprise."""

    profile: str
    suite: str
    name: str
    index: int
    line: int | None
    method: str
    target: str
    expected: Expectation
    outcome: Outcome
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def where(self) -> str:
        return f"{self.profile}:{self.line}" if self.line else self.profile

    def to_dict(self) -> dict[str, Any]:
        expl = self.outcome.explanation
        return {
            "name": self.name,
            "index": self.index,
            "line": self.line,
            "request": f"{self.method} {self.target}",
            "passed": self.passed,
            "expected": self.expected.to_dict(),
            "got": self.outcome.to_dict(),
            "problems": list(self.problems),
            "notes": list(self.notes),
            "seconds": round(self.seconds, 6),
            "explanation": expl.to_dict() if expl is not None else None,
        }


@dataclass(frozen=True)
class ProfileReport:
    """One profile's results and rule coverage. ``coverage_known`` is False when some
    answer carried no rule trace (``--against``): unexercised rules are then only
    "not seen"."""

    profile: str
    name: str
    mode: Mode
    results: tuple[CheckResult, ...]
    coverage: tuple[RuleCoverage, ...]
    coverage_known: bool = True

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    @property
    def unexercised(self) -> tuple[RuleCoverage, ...]:
        return tuple(c for c in self.coverage if not c.exercised)

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "name": self.name,
            "mode": self.mode,
            "passed": not self.failed,
            "results": [r.to_dict() for r in self.results],
            "coverage": {
                "known": self.coverage_known,
                "rules": [c.to_dict() for c in self.coverage],
                "unexercised": [c.describe() for c in self.unexercised],
            },
        }


@dataclass(frozen=True)
class CheckRun:
    """Every profile's report; ``exit_code`` is the command's (0 passed, 1 failed)."""

    reports: tuple[ProfileReport, ...]
    require_coverage: bool = False

    @property
    def results(self) -> tuple[CheckResult, ...]:
        return tuple(r for report in self.reports for r in report.results)

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    @property
    def coverage_failed(self) -> bool:
        return self.require_coverage and any(r.unexercised for r in self.reports)

    @property
    def passed(self) -> bool:
        return not self.failed and not self.coverage_failed

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def to_dict(self) -> dict[str, Any]:
        results = self.results
        return {
            "passed": self.passed,
            "exit_code": self.exit_code,
            "summary": {
                "profiles": len(self.reports),
                "checks": len(results),
                "passed": sum(1 for r in results if r.passed),
                "failed": len(self.failed),
                "unexercised_rules": sum(len(r.unexercised) for r in self.reports),
                "require_coverage": self.require_coverage,
            },
            "profiles": [r.to_dict() for r in self.reports],
        }


def check_against_url(url: str) -> str:
    """``--against``: an absolute http(s) URL, or a usage error."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise RrdevError(
            f"--against {url!r} is not an http(s) base URL",
            "e.g. --against http://127.0.0.1:8787 or --against https://my-api.requestrocket.io",
        )
    return url
