"""The claim checks of verification: expiry, not-before, issued-at, the lifetime (when
``max_lifetime_seconds`` is set), issuer (any of ``issuers``; a ``{tenantid}`` template
only for a tenant of the allow-list), subject, audience (in Cognito mode client_id and
token_use instead), and the sender constraint. Provider-specific hints come from
``rrdev.core.providers``.

They run once the signature holds, so every result is trustworthy: ``check_claims``
runs all of them and reports the first failure. ``exp``, ``iss`` and ``aud``
(Cognito: ``client_id``) are required; ``iss`` and ``aud`` are compared exactly;
times are checked against the injected ``now``. Types are checked as Auth0's own
middleware does: ``exp``, ``nbf`` and ``iat`` are numbers (not booleans, not
strings), ``iss`` and ``sub`` strings, ``aud`` a string or an array of strings; any
other type is ``claim_malformed`` naming the claim. A future ``iat`` is accepted
(the checklist says so): ``exp`` and ``nbf`` bound a token's validity, and refusing
it would turn ordinary clock skew into a 401 for every fresh token. A token carrying
``cnf`` (DPoP- or mTLS-bound, RFC 7800/8705/9449) is refused as a plain bearer token
(``token_sender_constrained``) unless the profile sets
``accept_sender_constrained_as_bearer``. ``StepFailure`` (built by ``fail``) is how
any step of ``rrdev.core.verify`` reports that it failed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from rrdev.core.model import ProxyCredential
from rrdev.core.providers import (
    COGNITO_ID_TOKEN_HINT,
    audience_hint,
    expected_issuers,
    issuer_accepted,
    issuer_hint,
    issuer_tenant,
    missing_audience_hint,
)
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
    return bool(cred.accepted_client_ids)


def check_claims(
    claims: Mapping[str, Any], cred: ProxyCredential, now: float, steps: list[VerifyStep]
) -> None:
    """Run every claim check even after one fails (the signature held, so each result
    is trustworthy and a person wants to see all problems at once); the first failure
    is the reason reported."""
    # The order is the checklist's (rrdev.core.verify.step_names).
    checks: list[Callable[[], VerifyStep]] = [
        lambda: _check_expiry(claims, cred.leeway_seconds, now),
        lambda: _check_not_before(claims, cred.leeway_seconds, now),
        lambda: _check_issued_at(claims, cred.leeway_seconds, now),
    ]
    limit = cred.max_lifetime_seconds
    if limit is not None:
        checks.append(lambda: _check_lifetime(claims, limit))
    checks += [
        lambda: _check_issuer(claims, cred),
        lambda: _check_subject(claims),
    ]
    if cognito_mode(cred):
        checks += [lambda: _check_client_id(claims, cred), lambda: _check_token_use(claims, cred)]
    else:
        checks.append(lambda: _check_audience(claims, cred))
    checks.append(lambda: _check_sender_constraint(claims, cred))
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
    if not _is_finite_number(value):
        raise fail(
            step,
            "claim_malformed",
            f"the {name} claim is {_json_kind(value)}, not a number of seconds since the epoch",
            f"the issuer must write {name} as a JSON number (RFC 7519 NumericDate)",
            expected=expected,
            actual=_json_text(value),
        )
    return float(value)


def _is_finite_number(value: Any) -> bool:
    """A JSON number that fits a float: not a boolean (``true`` is an int in Python),
    not infinite, not an integer too large to compare (``10**400``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


def _json_kind(value: Any) -> str:
    """'a string ("tomorrow")', 'a boolean (true)', ... as the token's JSON has it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        kind = "a boolean"
    elif isinstance(value, (int, float)):
        kind = "a number" if _is_finite_number(value) else "a number out of range"
    else:
        kinds = {str: "a string", list: "an array", dict: "an object"}
        kind = next((n for t, n in kinds.items() if isinstance(value, t)), "a value")
    return f"{kind} ({_json_text(value)})"


def _json_text(value: Any) -> str:
    """The value as JSON text, clipped: claim values end up in 401 bodies and logs."""
    try:
        text = json.dumps(value, ensure_ascii=True)
    except (TypeError, ValueError):
        text = repr(value)
    return clip(text, 60, quote=False)


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
            f"the {name} claim is {_json_kind(value)}, not a string",
            f"the issuer must write {name} as a JSON string",
            expected=expected,
            actual=_json_text(value),
        )
    return value


def _check_issued_at(claims: Mapping[str, Any], leeway: float, now: float) -> VerifyStep:
    expected = "a number, when present (a future iat is accepted)"
    if "iat" not in claims:
        return VerifyStep("issued_at", "passed", expected, "(absent)", "iat is optional")
    iat = _numeric_date(claims, "iat", "issued_at", expected)
    detail = ""
    if iat > now + leeway:
        detail = (
            f"issued {humanize_delta(iat - now)} in the future: the clocks of this machine "
            "and the issuer disagree; accepted, since exp and nbf bound the token's validity"
        )
    return VerifyStep("issued_at", "passed", expected, iso_time(iat), detail)


def _check_lifetime(claims: Mapping[str, Any], limit: int) -> VerifyStep:
    """``max_lifetime_seconds``: a token valid for longer than the profile allows (an
    issuer misconfigured to hand out day-long tokens) is refused; ``iat`` is required
    then, or the lifetime could not be told."""
    expected = f"exp - iat at most {limit}s ({humanize_delta(limit)})"
    hint = "shorten the token lifetime at the issuer, or raise max_lifetime_seconds"
    _require(claims, "iat", "lifetime", expected, "the profile sets max_lifetime_seconds: " + hint)
    _require(claims, "exp", "lifetime", expected, "tokens without an expiry live forever")
    iat = _numeric_date(claims, "iat", "lifetime", expected)
    exp = _numeric_date(claims, "exp", "lifetime", expected)
    lifetime = exp - iat
    actual = f"{lifetime:g}s ({humanize_delta(lifetime)})"
    if lifetime > limit:
        raise fail(
            "lifetime",
            "token_lifetime_too_long",
            f"the token is valid for {humanize_delta(lifetime)} (exp - iat = {lifetime:g}s); "
            f"the profile allows at most {limit}s",
            hint,
            expected=expected,
            actual=actual,
        )
    return VerifyStep("lifetime", "passed", expected, actual)


def _check_subject(claims: Mapping[str, Any]) -> VerifyStep:
    expected = "a string, when present"
    if "sub" not in claims:
        return VerifyStep("subject", "passed", expected, "(absent)", "sub is optional")
    sub = _string_claim(claims, "sub", "subject", expected)
    return VerifyStep("subject", "passed", expected, clip(sub, quote=False))


def _check_sender_constraint(claims: Mapping[str, Any], cred: ProxyCredential) -> VerifyStep:
    """A ``cnf`` token is bound to a key its holder must prove (DPoP) or to a client
    certificate (mTLS). rrdev checks neither proof, so accepting it as a plain bearer
    token would let whoever copied it use it: refused unless the profile opts in."""
    expected = (
        "accepted as a bearer token (accept_sender_constrained_as_bearer)"
        if cred.accept_sender_constrained_as_bearer
        else "no cnf claim (a plain bearer token)"
    )
    if "cnf" not in claims:
        return VerifyStep("sender_constraint", "passed", expected, "(absent)")
    kind = _binding_kind(claims["cnf"])
    if cred.accept_sender_constrained_as_bearer:
        detail = "the binding is not checked: the profile accepts such tokens as bearer tokens"
        return VerifyStep("sender_constraint", "passed", expected, kind, detail)
    raise fail(
        "sender_constraint",
        "token_sender_constrained",
        f"the token is sender-constrained ({kind}): its holder must prove possession of "
        "the bound key, which a plain Bearer request cannot do and rrdev does not check",
        "send a plain bearer access token (no cnf claim), or set "
        "proxy_credential.accept_sender_constrained_as_bearer = true to accept it "
        "without checking the binding",
        expected=expected,
        actual=kind,
    )


#: cnf members (RFC 7800 §3, RFC 8705 §3.1, RFC 9449 §6) -> what the token is bound to.
_BINDINGS = {
    "jkt": "DPoP-bound: cnf.jkt, RFC 9449",
    "x5t#S256": "bound to a client certificate: cnf.x5t#S256, mutual TLS, RFC 8705",
    "jwk": "bound to a proof-of-possession key: cnf.jwk, RFC 7800",
    "jwe": "bound to a proof-of-possession key: cnf.jwe, RFC 7800",
    "kid": "bound to a proof-of-possession key: cnf.kid, RFC 7800",
    "jku": "bound to a proof-of-possession key: cnf.jku, RFC 7800",
}


def _binding_kind(cnf: Any) -> str:
    if isinstance(cnf, dict):
        for member, kind in _BINDINGS.items():
            if member in cnf:
                return kind
        return "cnf with members " + ", ".join(clip(str(k), 20) for k in list(cnf)[:5])
    return f"cnf is {_json_kind(cnf)}"


def _check_issuer(claims: Mapping[str, Any], cred: ProxyCredential) -> VerifyStep:
    expected = expected_issuers(cred)
    _require(claims, "iss", "issuer", expected, "configure the issuer to set iss")
    iss = _string_claim(claims, "iss", "issuer", expected)
    if not cred.accepted_issuers:
        # Fail closed: without an issuer any tenant sharing the JWKS would pass.
        raise fail(
            "issuer",
            "issuer_mismatch",
            "the profile sets no issuer, so rrdev accepts no token",
            f"set proxy_credential.issuer (this token's is {clip(iss)})",
            expected=expected,
            actual=clip(iss, quote=False),
        )
    if issuer_accepted(iss, claims, cred):
        return VerifyStep("issuer", "passed", expected, iss)
    tenant = issuer_tenant(iss, cred)
    if tenant is not None:
        raise _tenant_failure(iss, tenant, claims, cred, expected)
    raise fail(
        "issuer",
        "issuer_mismatch",
        f"the token's issuer is {clip(iss)}; the profile expects "
        + " or ".join(repr(i) for i in cred.accepted_issuers),
        issuer_hint(iss, cred) or _issuer_hint(iss, cred.accepted_issuers[0]),
        expected=expected,
        actual=clip(iss, quote=False),
    )


def _tenant_failure(
    iss: str, tenant: str, claims: Mapping[str, Any], cred: ProxyCredential, expected: str
) -> StepFailure:
    """The issuer fits a ``{tenantid}`` template: say whether the tenant is not allowed,
    or the token's ``tid`` disagrees with its issuer (never accepted either way)."""
    actual = clip(iss, quote=False)
    if tenant not in cred.tenants:
        return fail(
            "issuer",
            "tenant_not_allowed",
            f"the token comes from tenant {clip(tenant)}, which is not in proxy_credential.tenants",
            "if callers from that tenant should get in, add its id to proxy_credential."
            "tenants; otherwise the token is from another organisation's directory",
            expected=expected,
            actual=actual,
        )
    tid = claims.get("tid")
    if "tid" not in claims:
        return fail(
            "issuer",
            "claim_missing",
            "the token has no tid claim; a multi-tenant issuer ({tenantid}) needs it",
            "Entra ID access tokens carry tid: is this token from another issuer?",
            expected=expected,
            actual=actual,
        )
    return fail(
        "issuer",
        "issuer_mismatch",
        f"the token's tid {clip(tid)} does not match the tenant in its issuer {clip(tenant)}",
        "the issuer and tid of a genuine Entra ID token agree: this token was not issued "
        "as it claims",
        expected=expected,
        actual=actual,
    )


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
        missing_audience_hint(claims)
        or "ask the token endpoint for your API identifier as the audience (Auth0 and most "
        "servers read the audience parameter; for servers that read aud, rrdev's [auth] "
        "takes extra = { aud = '...' }); for Cognito access tokens set "
        "proxy_credential.client_id instead of audience",
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
            audience_hint(auds, claims, cred) or _audience_hint(auds, cred.audience),
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
        f"the aud claim is {_json_kind(aud)}, not a string or an array of strings",
        "the issuer must write aud as a JSON string or an array of strings",
        expected=expected,
        actual=_json_text(aud),
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
    """The app client the token was issued to must be in the allow-list: an access
    token's ``client_id``; with ``token_use = "id"``, an ID token's ``aud``."""
    allowed = cred.accepted_client_ids
    expected = " | ".join(allowed)
    claim = "aud" if cred.token_use == "id" else "client_id"
    if claim == "client_id" and claim not in claims and claims.get("token_use") == "id":
        raise fail(
            "client_id",
            "claim_missing",
            "the token has no client_id claim: it is a Cognito ID token (token_use 'id')",
            COGNITO_ID_TOKEN_HINT,
            expected=expected,
            actual="(absent)",
        )
    _require(claims, claim, "client_id", expected, COGNITO_ID_TOKEN_HINT)
    client_id = _string_claim(claims, claim, "client_id", expected)
    if client_id not in allowed:
        raise fail(
            "client_id",
            "client_id_mismatch",
            f"the token was issued to app client {clip(client_id)}; the profile expects {expected}",
            "get a token with one of those app clients, or add it to "
            "proxy_credential.client_id (a list for several)",
            expected=expected,
            actual=clip(client_id, quote=False),
        )
    return VerifyStep("client_id", "passed", expected, client_id)


def _check_token_use(claims: Mapping[str, Any], cred: ProxyCredential) -> VerifyStep:
    if cred.token_use is None:
        return VerifyStep("token_use", "skipped", detail="the profile sets no token_use")
    expected = cred.token_use
    hint = f"send a token with token_use {expected!r} (Cognito: the access token)"
    if expected == "access" and claims.get("token_use") == "id":
        hint = COGNITO_ID_TOKEN_HINT
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
