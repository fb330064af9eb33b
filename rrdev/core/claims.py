"""The claim checks of verification: expiry, not-before, issuer, audience, and in
Cognito mode client_id and token_use.

They run once the signature holds, so every result is trustworthy: ``check_claims``
runs all of them and reports the first failure. ``exp``, ``iss`` and ``aud``
(Cognito: ``client_id``) are required; ``iss`` and ``aud`` are compared exactly;
times are checked against the injected ``now``. ``StepFailure`` (built by ``fail``)
is how any step of ``rrdev.core.verify`` reports that it failed.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from rrdev.core.model import ProxyCredential
from rrdev.core.records import VerifyStep
from rrdev.core.tokens import clip, humanize_delta

__all__ = ["StepFailure", "check_claims", "cognito_mode", "fail", "iso_time"]

#: Auth0 client IDs: 32 letters and digits. An aud like this is almost always
#: an ID token (or a token requested without an audience), not an API token.
_CLIENT_ID = re.compile(r"[A-Za-z0-9]{32}")


class StepFailure(Exception):
    """Internal: one failed step, with the reason the whole verification reports."""

    def __init__(
        self,
        step: VerifyStep,
        reason: str,
        message: str,
        hint: str = "",
        *,
        unavailable: bool = False,
    ) -> None:
        super().__init__(message)
        self.step = step
        self.reason = reason
        self.message = message
        self.hint = hint
        self.unavailable = unavailable


def fail(
    name: str,
    reason: str,
    message: str,
    hint: str = "",
    *,
    expected: str = "",
    actual: str = "",
    unavailable: bool = False,
) -> StepFailure:
    step = VerifyStep(name, "failed", expected, actual, message)
    return StepFailure(step, reason, message, hint, unavailable=unavailable)


def cognito_mode(cred: ProxyCredential) -> bool:
    """Cognito access tokens carry no ``aud``: ``client_id`` replaces it."""
    return cred.client_id is not None


def check_claims(
    claims: Mapping[str, Any], cred: ProxyCredential, now: float, steps: list[VerifyStep]
) -> None:
    """Run every claim check even after one fails (the signature held, so each result
    is trustworthy and a person wants to see all problems at once); the first failure
    is the reason reported."""
    checks: list[Callable[[], VerifyStep]] = [
        lambda: _check_expiry(claims, cred.leeway_seconds, now),
        lambda: _check_not_before(claims, cred.leeway_seconds, now),
        lambda: _check_issuer(claims, cred),
    ]
    if cognito_mode(cred):
        checks += [lambda: _check_client_id(claims, cred), lambda: _check_token_use(claims, cred)]
    else:
        checks.append(lambda: _check_audience(claims, cred))
    first: StepFailure | None = None
    for check in checks:
        try:
            steps.append(check())
        except StepFailure as failure:
            steps.append(failure.step)
            first = first or failure
    if first is not None:
        raise first


def _require(claims: Mapping[str, Any], name: str, step: str, expected: str, hint: str) -> Any:
    if name not in claims:
        raise fail(
            step,
            "claim_missing",
            f"the token has no {name} claim; rrdev requires it",
            hint,
            expected=expected,
            actual="(absent)",
        )
    return claims[name]


def _numeric_date(claims: Mapping[str, Any], name: str, step: str, expected: str) -> float:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not _finite(value):
        raise fail(
            step,
            "claim_malformed",
            f"{name} is {clip(value)}, not a number of seconds since the epoch",
            expected=expected,
            actual=clip(value),
        )
    return float(value)


def _finite(value: float) -> bool:
    # An integer past float range (exp = 1e400 written out) overflows math.isfinite.
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _leeway_note(leeway: float) -> str:
    return f" (leeway {leeway:g}s)" if leeway else ""


def _check_expiry(claims: Mapping[str, Any], leeway: float, now: float) -> VerifyStep:
    expected = f"later than now, {iso_time(now)}{_leeway_note(leeway)}"
    _require(
        claims,
        "exp",
        "expiry",
        expected,
        "configure the issuer to set exp: tokens without an expiry stay valid forever",
    )
    exp = _numeric_date(claims, "exp", "expiry", expected)
    if now >= exp + leeway:
        raise fail(
            "expiry",
            "token_expired",
            f"the token expired {humanize_delta(now - exp)} ago at {iso_time(exp)}",
            "get a fresh token (`rrdev token fetch`, or `rrdev token mint` offline)",
            expected=expected,
            actual=iso_time(exp),
        )
    detail = ""
    if now >= exp:
        detail = f"expired {humanize_delta(now - exp)} ago; accepted within the leeway"
    return VerifyStep("expiry", "passed", expected, f"{iso_time(exp)}", detail)


def _check_not_before(claims: Mapping[str, Any], leeway: float, now: float) -> VerifyStep:
    expected = f"not later than now, {iso_time(now)}{_leeway_note(leeway)}"
    if "nbf" not in claims:
        return VerifyStep("not_before", "passed", expected, "(absent)", "nbf is optional")
    nbf = _numeric_date(claims, "nbf", "not_before", expected)
    if nbf > now + leeway:
        raise fail(
            "not_before",
            "token_not_yet_valid",
            f"the token is valid in {humanize_delta(nbf - now)}, at {iso_time(nbf)}",
            "if the clocks of this machine and the issuer disagree, fix the clock or "
            "set proxy_credential.leeway_seconds",
            expected=expected,
            actual=iso_time(nbf),
        )
    return VerifyStep("not_before", "passed", expected, iso_time(nbf))


def _string_claim(claims: Mapping[str, Any], name: str, step: str, expected: str) -> str:
    value = claims[name]
    if not isinstance(value, str):
        raise fail(
            step,
            "claim_malformed",
            f"{name} is {clip(value)}, not a string",
            expected=expected,
            actual=clip(value),
        )
    return value


def _check_issuer(claims: Mapping[str, Any], cred: ProxyCredential) -> VerifyStep:
    expected = cred.issuer or "(not set in the profile)"
    _require(claims, "iss", "issuer", expected, "configure the issuer to set iss")
    iss = _string_claim(claims, "iss", "issuer", expected)
    if cred.issuer is None:
        # Fail closed: without an issuer any tenant sharing the JWKS would pass.
        raise fail(
            "issuer",
            "issuer_mismatch",
            "the profile sets no issuer, so rrdev accepts no token",
            f"set proxy_credential.issuer (this token's is {clip(iss)})",
            expected=expected,
            actual=clip(iss, quote=False),
        )
    if iss != cred.issuer:
        raise fail(
            "issuer",
            "issuer_mismatch",
            f"the token's issuer is {clip(iss)}; the profile expects {cred.issuer!r}",
            _issuer_hint(iss, cred.issuer),
            expected=expected,
            actual=clip(iss, quote=False),
        )
    return VerifyStep("issuer", "passed", expected, iss)


def _issuer_hint(actual: str, expected: str) -> str:
    if actual.rstrip("/") != expected.rstrip("/"):
        return (
            "the token comes from another issuer or tenant: get a token from "
            f"{expected}, or change proxy_credential.issuer"
        )
    with_slash = actual if actual.endswith("/") else expected
    if "auth0.com" in actual:
        return f"Auth0 issuers end with a slash: use {with_slash!r}"
    return f"issuers are compared exactly, trailing slash included: the token says {clip(actual)}"


def _check_audience(claims: Mapping[str, Any], cred: ProxyCredential) -> VerifyStep:
    expected = " | ".join(cred.audience) or "(not set in the profile)"
    _require(
        claims,
        "aud",
        "audience",
        expected,
        "request the token with audience=<your API identifier>; for Cognito access "
        "tokens set proxy_credential.client_id instead of audience",
    )
    auds = _audience_list(claims["aud"], expected)
    shown = ", ".join(clip(a) for a in auds[:5]) + (", ..." if len(auds) > 5 else "") or "[]"
    if not cred.audience:
        raise fail(
            "audience",
            "audience_mismatch",
            "the profile sets no audience, so rrdev accepts no token",
            f"set proxy_credential.audience (this token's is {shown})",
            expected=expected,
            actual=shown,
        )
    matched = [a for a in auds if a in cred.audience]
    if not matched:
        raise fail(
            "audience",
            "audience_mismatch",
            f"the token's audience is {shown}; the profile expects {expected}",
            _audience_hint(auds, cred.audience),
            expected=expected,
            actual=shown,
        )
    return VerifyStep("audience", "passed", expected, shown)


def _audience_list(aud: Any, expected: str) -> list[str]:
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list) and all(isinstance(a, str) for a in aud):
        return aud
    raise fail(
        "audience",
        "claim_malformed",
        f"aud is {clip(aud)}, not a string or a list of strings",
        expected=expected,
        actual=clip(aud),
    )


def _audience_hint(auds: list[str], expected: tuple[str, ...]) -> str:
    if any(_CLIENT_ID.fullmatch(a) for a in auds):
        return (
            "the audience must be the API identifier, not the application's client ID "
            f"(expected {expected[0]!r}): is this an ID token?"
        )
    for want in expected:
        for got in auds:
            if got.rstrip("/") == want.rstrip("/"):
                return f"audiences are compared exactly, trailing slash included: use {want!r}"
    return (
        "request the token with the audience set to "
        + " or ".join(repr(e) for e in expected)
        + ", or add the token's audience to proxy_credential.audience"
    )


# ------------------------------------------------------------------ Cognito


def _check_client_id(claims: Mapping[str, Any], cred: ProxyCredential) -> VerifyStep:
    expected = str(cred.client_id)
    hint = "send the Cognito access token, not the ID token"
    if "client_id" not in claims and claims.get("token_use") == "id":
        raise fail(
            "client_id",
            "claim_missing",
            "the token has no client_id claim: it is a Cognito ID token (token_use 'id')",
            hint,
            expected=expected,
            actual="(absent)",
        )
    _require(claims, "client_id", "client_id", expected, hint)
    client_id = _string_claim(claims, "client_id", "client_id", expected)
    if client_id != cred.client_id:
        raise fail(
            "client_id",
            "client_id_mismatch",
            f"the token was issued to app client {clip(client_id)}; the profile expects "
            f"{cred.client_id!r}",
            "get a token with that app client, or change proxy_credential.client_id",
            expected=expected,
            actual=clip(client_id, quote=False),
        )
    return VerifyStep("client_id", "passed", expected, client_id)


def _check_token_use(claims: Mapping[str, Any], cred: ProxyCredential) -> VerifyStep:
    if cred.token_use is None:
        return VerifyStep("token_use", "skipped", detail="the profile sets no token_use")
    expected = cred.token_use
    hint = f"send a token with token_use {expected!r} (Cognito: the access token)"
    _require(claims, "token_use", "token_use", expected, hint)
    token_use = _string_claim(claims, "token_use", "token_use", expected)
    if token_use != expected:
        raise fail(
            "token_use",
            "token_use_mismatch",
            f"the token's token_use is {clip(token_use)}; the profile expects {expected!r}",
            hint,
            expected=expected,
            actual=clip(token_use, quote=False),
        )
    return VerifyStep("token_use", "passed", expected, token_use)


# ------------------------------------------------------------------- helpers


def iso_time(epoch: float) -> str:
    """``2026-11-28T23:10:00Z``; huge or odd values fall back to the number."""
    try:
        return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        return f"{epoch:g} (epoch seconds)"
