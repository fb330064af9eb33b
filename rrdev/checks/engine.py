"""Smoke checks (``rrdev check``): a profile's ``[[checks]]`` run like tests.

Each check is a request (method, path, headers, query, body, a token) and an expected
answer. ``run_checks`` turns every check into a ``CheckRequest`` first (tokens fetched,
minted or read from the environment, so a missing variable or an unreachable token
endpoint stops the run before anything is sent: ``rrdev.checks.tokens``), then hands
them, one at a time, to a ``CheckRunner``:

* ``DryRunner`` (the default, ``rrdev.checks.dry``): ``explain.decide`` -- verification
  and rules, nothing forwarded. ``expect = "allowed"`` and ``expect = 200`` both mean
  "would be forwarded"; an expected status rrdev itself never answers (404, 201, ...)
  can only be the backend's, so a dry run checks that the request would reach it.
* ``LiveRunner`` (``--live``, ``rrdev.checks.live``): the profile's proxy (``ProxyApp`` +
  ``ProxyServer``) runs in-process on 127.0.0.1, port 0, in front of the real target (or
  ``--target``); each check goes through it over loopback with httpx and gets the
  backend's real answer. The proxy's ``RequestRecord`` supplies the reason, the
  deciding rules and the explanation.
* ``AgainstRunner`` (``--against URL``, ``rrdev.checks.against``): each check goes to an
  already running proxy or the deployed gateway. Statuses are always compared;
  ``reason`` and ``rule`` only when the answer carries rrdev's JSON error body
  (``{"status", "reason", ...}``).

With ``offline`` the local keyset stands in for the real issuer: the dry run verifies
with its JWKS, the live proxy too, and ``token = "auth"`` is minted from
``[auth].scope`` with the profile's ``iss``/``aud`` instead of fetched.

A network failure (JWKS, token endpoint, target or ``--against`` URL unreachable) is
raised once as a ``NetworkError`` instead of failing every check. Results are frozen
values (``rrdev.checks.model``); ``junit_xml`` (``rrdev.checks.junit``) and
``CheckRun.to_dict`` are the machine-readable reports.

Rule coverage (``rrdev.checks.coverage``): a rule is *exercised* when it decided at least
one check (``Decision.deciding``: for a denial the denying rule, for an allow each
scope's deciding rule).
"""

from __future__ import annotations

import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Protocol

from rrdev.checks.against import AgainstRunner, http_client
from rrdev.checks.coverage import rule_coverage
from rrdev.checks.dry import dry_runner
from rrdev.checks.live import live_runner
from rrdev.checks.model import (
    GRANTED_FAILURES,
    CheckOptions,
    CheckRequest,
    CheckResult,
    CheckRun,
    Expectation,
    Mode,
    Outcome,
    ProfileReport,
)
from rrdev.checks.tokens import TokenSource, prepare
from rrdev.core.errors import NetworkError, ProfileError
from rrdev.core.model import CheckSpec, Profile
from rrdev.core.netaddr import is_loopback_url

__all__ = [
    "CheckRunner",
    "judge",
    "open_runner",
    "run_check",
    "run_checks",
    "run_profile",
    "unrunnable",
]

#: Statuses rrdev's decision itself can answer; any other expected status is the backend's.
DECISION_STATUSES = frozenset({400, 401, 403, 421, 503})
#: rrdev reasons that mean "the run cannot go on", not "this check failed".
NETWORK_REASONS = frozenset(
    {
        "jwks_unavailable",
        "discovery_unavailable",
        "discovery_issuer_mismatch",
        "upstream_unreachable",
    }
)
CONFIG_REASONS = frozenset({"upstream_credential_unavailable"})
_DOT_SEGMENT = re.compile(r"(^|/)\.{1,2}(/|$)")
#: The outcome of a check whose spec has a problem: nothing was sent.
NOT_RUN_STATUS = 0
NOT_RUN_REASON = "check_invalid"


# ------------------------------------------------------------------ runners


class CheckRunner(Protocol):
    """Sends one prepared check and reports what came back."""

    mode: Mode

    async def run(self, request: CheckRequest) -> Outcome: ...


@contextlib.asynccontextmanager
async def open_runner(
    profile: Profile, options: CheckOptions, tokens: TokenSource, now: float
) -> AsyncIterator[CheckRunner]:
    """The runner for ``options.mode``, with everything it holds open closed after."""
    if options.mode == "dry":
        async with dry_runner(profile, options, tokens, now) as dry:
            yield dry
    elif options.mode == "against":
        assert options.against is not None
        # A loopback proxy (`rrdev up`) never goes through HTTP(S)_PROXY; a remote
        # gateway may need it.
        loopback = is_loopback_url(options.against)
        async with http_client(options, trust_env=not loopback) as client:
            yield AgainstRunner(options.against, client)
    else:
        async with live_runner(profile, options) as live:
            yield live


# ------------------------------------------------------------------ judging


def judge(
    request: CheckRequest, outcome: Outcome, expected: Expectation, mode: Mode
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(problems, notes): what differs from ``expected``, and what could not be checked."""
    problems: list[str] = []
    notes: list[str] = []
    _judge_status(outcome, expected, mode, problems, notes)
    if expected.reason is not None:
        if outcome.reason is None:
            notes.append(
                f"reason {expected.reason} not checked: the answer carries no rrdev reason"
            )
        elif outcome.reason != expected.reason:
            problems.append(f"expected reason {expected.reason}, got {outcome.reason}")
    if expected.rule is not None:
        _judge_rule(outcome, expected.rule, problems, notes)
    if mode != "dry" and _DOT_SEGMENT.search(request.raw_path):
        notes.append("httpx removes '.' and '..' path segments before sending; encode them as %2e")
    return tuple(problems), tuple(notes)


def _judge_status(
    outcome: Outcome, expected: Expectation, mode: Mode, problems: list[str], notes: list[str]
) -> None:
    if expected.allowed:
        if outcome.granted is None and mode == "against":
            notes.append("no requestrocket-proxy-code header: 'allowed' judged by the status")
            if outcome.status >= 400:
                problems.append(f"expected allowed, got {outcome}")
        elif not outcome.granted or outcome.reason in GRANTED_FAILURES:
            problems.append(f"expected allowed, got {outcome}")
        return
    status = expected.status
    if status is None:
        return
    if mode == "dry" and status not in DECISION_STATUSES:
        # The backend, not rrdev, gives this answer: a dry run can only say it gets there.
        if not outcome.granted:
            problems.append(f"expected {status} (forwarded to the backend), got {outcome}")
        elif status != 200:
            notes.append(f"the backend's {status} is checked only with --live or --against")
        return
    if outcome.status != status:
        problems.append(f"expected {status}, got {outcome}")


def _judge_rule(outcome: Outcome, rule: str, problems: list[str], notes: list[str]) -> None:
    if not outcome.traced:
        notes.append(f"rule {rule} not checked: the answer carries no rrdev rule trace")
        return
    if not outcome.deciding:
        problems.append(f"expected rule {rule} to decide, but no rule was evaluated ({outcome})")
        return
    # A denial has one deciding rule; an allow one per scope, any of which may be named.
    decided = {outcome.rule} if not outcome.granted else outcome.rule_names
    if rule not in decided:
        problems.append(f"expected rule {rule} to decide, got {outcome.rule}")


def _stop_if_unrunnable(
    profile: Profile, request: CheckRequest, outcome: Outcome, expected: Expectation
) -> None:
    """An answer that means the run cannot go on is reported once, not as N failures
    (unless this check asked for exactly that answer)."""
    if expected.names(outcome.status, outcome.reason):
        return
    message = outcome.message or (outcome.explanation.message if outcome.explanation else "")
    hint = outcome.explanation.hint if outcome.explanation else ""
    where = f" (check {request.check.name!r}, {profile.path})"
    if outcome.reason in NETWORK_REASONS:
        raise NetworkError(f"{outcome.reason}: {message}{where}", hint)
    if outcome.reason in CONFIG_REASONS:
        raise ProfileError(f"cannot forward: {message}", file=profile.path, hint=hint)


async def run_check(
    profile: Profile,
    runner: CheckRunner,
    request: CheckRequest,
    *,
    clock: Callable[[], float],
    tokens: TokenSource | None = None,
) -> CheckResult:
    check = request.check
    expected = Expectation.parse(check.expect)
    started = clock()
    outcome = await runner.run(request)
    seconds = max(clock() - started, 0.0)
    if tokens is not None:
        outcome = tokens.with_fetch_hints(profile, check, outcome)
    _stop_if_unrunnable(profile, request, outcome, expected)
    problems, notes = judge(request, outcome, expected, runner.mode)
    notes = notes + _mint_note(check, outcome, runner.mode)
    return CheckResult(
        profile=profile.path,
        suite=profile.display_name,
        name=check.name,
        index=request.index,
        line=check.line,
        method=request.method,
        target=request.target,
        expected=expected,
        outcome=outcome,
        problems=problems,
        notes=notes,
        seconds=seconds,
    )


def unrunnable(profile: Profile, index: int, check: CheckSpec) -> CheckResult:
    """The failed result of a check whose spec has a problem (nothing was sent)."""
    problem = check.problem
    assert problem is not None
    try:
        expected = Expectation.parse(check.expect)
    except (AttributeError, TypeError, ValueError):
        expected = Expectation()
    return CheckResult(
        profile=profile.path,
        suite=profile.display_name,
        name=check.name,
        index=index,
        line=check.line,
        method=check.method,
        target=check.path,
        expected=expected,
        outcome=Outcome(NOT_RUN_STATUS, NOT_RUN_REASON, None),
        problems=(f"the check cannot run: {problem}",),
        notes=(problem.hint,) if problem.hint else (),
    )


def _mint_note(check: CheckSpec, outcome: Outcome, mode: Mode) -> tuple[str, ...]:
    if not isinstance(check.token, dict):
        return ()
    if outcome.reason in ("key_not_found", "signature_invalid"):
        where = "a proxy sharing this keyset (RRDEV_HOME)" if mode == "against" else "--offline"
        return (f"minted tokens are signed by the local keyset: they verify only with {where}",)
    return ()


# ------------------------------------------------------------------ running


async def run_profile(
    profile: Profile,
    options: CheckOptions,
    tokens: TokenSource,
    *,
    clock: Callable[[], float] = time.time,
) -> ProfileReport:
    """Prepare every check (tokens first), then run them in file order. A check with a
    problem (``CheckSpec.problem``) is not run: it fails, and the others still run."""
    now = options.now if options.now is not None else clock()
    requests = [
        await prepare(profile, n, check, tokens, now)
        for n, check in enumerate(profile.checks)
        if check.problem is None
    ]
    done: dict[int, CheckResult] = {
        n: unrunnable(profile, n, check)
        for n, check in enumerate(profile.checks)
        if check.problem is not None
    }
    if requests:
        async with open_runner(profile, options, tokens, now) as runner:
            for request in requests:
                done[request.index] = await run_check(
                    profile, runner, request, clock=time.perf_counter, tokens=tokens
                )
    results = [done[n] for n in sorted(done)]
    return ProfileReport(
        profile=profile.path,
        name=profile.display_name,
        mode=options.mode,
        results=tuple(results),
        coverage=rule_coverage(profile, results),
        coverage_known=all(r.outcome.traced for r in results),
    )


async def run_checks(
    profiles: Sequence[Profile],
    options: CheckOptions,
    *,
    tokens: TokenSource | None = None,
    clock: Callable[[], float] = time.time,
) -> CheckRun:
    """Run every profile's checks; one combined result. Raises ``NetworkError`` (a
    remote unreachable), ``ProfileError`` (a check that cannot be built) and
    ``RrdevError`` for bad options, each once."""
    tokens = tokens or TokenSource(offline=options.offline)
    reports = [await run_profile(p, options, tokens, clock=clock) for p in profiles]
    return CheckRun(tuple(reports), options.require_coverage)
