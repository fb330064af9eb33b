"""``[[checks]]`` -> ``CheckSpec``: the request, its token (``auth``, ``none``, a token,
``${ENV}`` or ``{ mint = { ... } }``) and the expected outcome, all typed at load. A
check's ``expect.rule`` must name one of the profile's rules.

Checks never block the proxy: a check that cannot be read (or names a rule that does
not exist) loads as a ``CheckSpec`` carrying a ``CheckProblem`` instead of failing the
profile. ``rrdev check`` fails that check alone, ``validate`` reports it as an error,
``up``/``tui``/``explain`` warn and run.
"""

from __future__ import annotations

import math
from dataclasses import replace
from typing import Any

from rrdev.core.errors import ProfileError
from rrdev.core.model import CheckProblem, CheckSpec, Profile
from rrdev.core.profile.reading import _Ctx, _did_you_mean, _kind, _method, _Table

CHECK_KEYS = ("name", "method", "path", "headers", "query", "body", "token", "expect")
EXPECT_KEYS = ("status", "reason", "rule")
#: The name a check's ``expect.rule`` uses when a scope's default_effect decided.
DEFAULT_RULE_NAME = "default"
#: ``token = { mint = { ... } }``: what rrdev.checks.tokens passes on to ``keyset.mint_token``.
MINT_KEYS = ("scope", "expires_in", "not_before", "claims", "sub", "aud", "iss")


def _checks(root: _Table) -> tuple[CheckSpec, ...]:
    """Every ``[[checks]]`` entry; one that cannot be read carries its problem."""
    value = root.data.get("checks")
    if value is None:
        return ()
    if not isinstance(value, list):
        problem = _problem(
            root.ctx,
            ProfileError(
                f"expected a list of tables ([[checks]]), got {_kind(value)}",
                line=root.ctx.line("checks"),
                key="checks",
            ),
        )
        return (CheckSpec(name="checks", token="none", line=problem.line, problem=problem),)
    return tuple(_check_or_problem(root.ctx, f"checks[{n}]", v) for n, v in enumerate(value))


def _check_or_problem(ctx: _Ctx, key: str, value: Any) -> CheckSpec:
    try:
        return _check(_Table.make(ctx, key, value, CHECK_KEYS))
    except ProfileError as exc:
        name = value.get("name") if isinstance(value, dict) else None
        return CheckSpec(
            name=name if isinstance(name, str) and name.strip() else key,
            token="none",
            line=ctx.line(key),
            problem=_problem(ctx, exc),
        )


def _problem(ctx: _Ctx, exc: ProfileError) -> CheckProblem:
    return CheckProblem(exc.detail, ctx.file, exc.line, exc.key, exc.hint)


def _check(t: _Table) -> CheckSpec:
    path = t.str_or("path", "/")
    if not path.startswith("/"):
        t.fail("path", f"must start with '/', got {path!r}")
    return CheckSpec(
        name=t.req_str("name"),
        method=_method(t, "method", t.str_or("method", "GET")),
        path=path,
        headers=t.str_table("headers"),
        query=t.str_table("query"),
        body=t.opt_str("body"),
        token=_check_token(t),
        expect=_check_expect(t),
        line=t.ctx.line(t.key),
    )


def _check_token(t: _Table) -> Any:
    value = t.data.get("token", "auth")
    if isinstance(value, str):
        t.ctx.secret(t.at("token"), value)  # a malformed ${...} fails now, not at run time
        return value
    if isinstance(value, dict) and list(value) == ["mint"] and isinstance(value["mint"], dict):
        _mint_spec(_Table.make(t.ctx, f"{t.at('token')}.mint", value["mint"], MINT_KEYS))
        return value
    t.fail(
        "token",
        "expected 'auth', 'none', a token, '${ENV}' or { mint = { ... } }, "
        f"got {_kind(value)}",
    )


def _mint_spec(m: _Table) -> None:
    """``{ mint = { scope, expires_in, not_before, claims, sub, aud, iss } }``: typed
    here so a typo fails at load (``expires_in`` may be negative: an expired token)."""
    m.opt_str("scope")
    m.opt_str("sub")
    m.opt_str("iss")
    for name in ("expires_in", "not_before"):
        seconds = m._typed(name, (int, float), "a number of seconds")
        if seconds is not None and not math.isfinite(seconds):
            m.fail(name, f"must be a finite number of seconds, got {seconds}")
    if isinstance(m.data.get("aud"), list):
        m.str_list("aud")
    else:
        m._typed("aud", (str,), "a string or a list of strings")
    m._typed("claims", (dict,), "a table of claims")


def _check_expect(t: _Table) -> Any:
    value = t.data.get("expect", "allowed")
    if value == "allowed":
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        _status(t, "expect", value)
        return value
    if isinstance(value, dict):
        e = _Table.make(t.ctx, t.at("expect"), value, EXPECT_KEYS)
        if e.has("status"):
            _status(e, "status", e.integer("status", 0, 100, 599))
        e.opt_str("reason")
        e.opt_str("rule")
        return value
    got = repr(value) if isinstance(value, str) else _kind(value)
    t.fail(
        "expect",
        f"expected 'allowed', a status code or {{ status = ..., reason = ..., rule = ... }}, "
        f"got {got}",
    )


def _status(t: _Table, name: str, value: int) -> None:
    if not 100 <= value <= 599:
        t.fail(name, f"expected an HTTP status code (100-599), got {value}")


def _with_expected_rules_checked(ctx: _Ctx, profile: Profile) -> Profile:
    """A check's ``expect.rule`` must name a rule of this profile (or ``default``):
    a typo would otherwise pass ``validate`` and only fail in ``rrdev check``. A check
    naming another carries that problem (the profile itself is fine)."""
    names = [rule.name for rule in profile.all_rules()]
    valid = [*names, DEFAULT_RULE_NAME]
    checks = list(profile.checks)
    for index, check in enumerate(checks):
        if check.problem is not None or not isinstance(check.expect, dict):
            continue
        rule = check.expect.get("rule")
        if rule is None or rule in valid:
            continue
        key = f"checks[{index}].expect.rule"
        listed = ", ".join(names) if names else "none"
        problem = CheckProblem(
            f"unknown rule {rule!r}{_did_you_mean(rule, valid)}",
            ctx.file,
            ctx.line(key),
            key,
            f"rule names the deciding rule: a rule's id (or <scope>[<index>] for one "
            f"without an id), or {DEFAULT_RULE_NAME!r} for a scope's default_effect. "
            f"This profile's rules: {listed}",
        )
        checks[index] = replace(check, problem=problem)
    return replace(profile, checks=tuple(checks))


def check_problems(profile: Profile) -> tuple[CheckProblem, ...]:
    """Every check's problem, in file order."""
    return tuple(c.problem for c in profile.checks if c.problem is not None)


def check_problem_warning(check: CheckSpec) -> str:
    """How ``up``, ``tui`` and ``explain`` mention a check that cannot run."""
    return f"check {check.name!r} cannot run ({check.problem}); the proxy is not affected"
