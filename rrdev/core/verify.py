"""Token -> ``Verification``: verified claims, or a rejection with a stable reason.

``verify_token`` never raises for a bad token. It walks a fixed checklist and
stops at the first failure before the signature holds (later steps are ``skipped``);
once the signature holds, every claim check runs and the first failure is reported:

    format -> header -> algorithm -> key -> signature -> expiry -> not_before
           -> issuer -> audience          (Cognito mode: client_id, token_use)

Security choices, each regression-tested in ``tests/test_attacks.py``:

* the acceptable algorithms come from the profile, never from the token; ``none``
  (any spelling) and every HS* algorithm are refused, because rrdev verifies only
  with asymmetric keys from the JWKS and never uses a public key as an HMAC secret;
* keys come only from the configured JWKS: ``jku``, ``x5u``, ``jwk`` and ``x5c``
  headers are refused outright (never fetched, never trusted), and so is any
  ``crit`` extension (rrdev understands none);
* ``exp``, ``iss`` and ``aud`` (Cognito: ``client_id``) are required; ``iss`` and
  ``aud`` are compared exactly; times are checked against the injected ``now``.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from jwt import PyJWK, PyJWS
from jwt.exceptions import InvalidSignatureError, PyJWTError

from rrdev.core.errors import JwksUnavailable, KeyNotFound, TokenInputError
from rrdev.core.jwk import ALGORITHM_KEY_TYPES, KeySource
from rrdev.core.model import ProxyCredential
from rrdev.core.records import Verification, VerifyStep
from rrdev.core.redact import fingerprint
from rrdev.core.tokens import DecodedToken, clip, decode_unverified, humanize_delta

__all__ = ["FORBIDDEN_HEADERS", "cognito_mode", "iso_time", "step_names", "verify_token"]

#: Header parameters that point at keys. Honouring any of them would let the
#: token choose the key that verifies it, so they are refused, never followed.
FORBIDDEN_HEADERS = ("jku", "x5u", "jwk", "x5c")

_COMMON_STEPS = ("format", "header", "algorithm", "key", "signature", "expiry", "not_before")
#: Auth0 client IDs: 32 letters and digits. An aud like this is almost always
#: an ID token (or a token requested without an audience), not an API token.
_CLIENT_ID = re.compile(r"[A-Za-z0-9]{32}")

# HMAC is not even registered: a token can never steer us into it.
_JWS = PyJWS(algorithms=list(ALGORITHM_KEY_TYPES))


class _Failure(Exception):
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


def _fail(
    name: str,
    reason: str,
    message: str,
    hint: str = "",
    *,
    expected: str = "",
    actual: str = "",
    unavailable: bool = False,
) -> _Failure:
    step = VerifyStep(name, "failed", expected, actual, message)
    return _Failure(step, reason, message, hint, unavailable=unavailable)


def cognito_mode(cred: ProxyCredential) -> bool:
    """Cognito access tokens carry no ``aud``: ``client_id`` replaces it."""
    return cred.client_id is not None


def step_names(cred: ProxyCredential) -> tuple[str, ...]:
    """The checklist, in order, for this credential."""
    last = ("client_id", "token_use") if cognito_mode(cred) else ("audience",)
    return (*_COMMON_STEPS, "issuer", *last)


async def verify_token(
    token: str,
    cred: ProxyCredential,
    jwks: KeySource,
    *,
    now: float | None = None,
) -> Verification:
    """Verify ``token`` against ``cred`` with keys from ``jwks``, as of ``now``
    (epoch seconds, default: the current time)."""
    now = time.time() if now is None else now
    steps: list[VerifyStep] = []
    decoded: DecodedToken | None = None
    try:
        decoded = _check_format(token, cred, steps)
        await _check_signed(decoded, cred, jwks, steps)
        _check_claims(decoded.claims, cred, now, steps)
    except _Failure as failure:
        if failure.step not in steps:
            steps.append(failure.step)
        skipped = [VerifyStep(n, "skipped") for n in step_names(cred)[len(steps) :]]
        return Verification(
            steps=(*steps, *skipped),
            reason=failure.reason,
            message=failure.message,
            hint=failure.hint,
            # Unverified, for display only (Verification's contract).
            claims=decoded.claims if decoded else None,
            header=decoded.header if decoded else None,
            fingerprint=fingerprint(token) if token else None,
            unavailable=failure.unavailable,
        )
    return Verification(
        steps=tuple(steps),
        claims=decoded.claims,
        header=decoded.header,
        fingerprint=fingerprint(token),
    )


# ------------------------------------------------------------- format & header


def _check_format(token: str, cred: ProxyCredential, steps: list[VerifyStep]) -> DecodedToken:
    expected = "three base64url parts; JSON header and payload"
    try:
        decoded = decode_unverified(token, max_bytes=cred.max_token_bytes)
    except TokenInputError as error:
        raise _fail("format", error.reason, error.message, error.hint, expected=expected) from None
    steps.append(VerifyStep("format", "passed", expected, f"{len(token)} bytes"))
    return decoded


async def _check_signed(
    decoded: DecodedToken, cred: ProxyCredential, jwks: KeySource, steps: list[VerifyStep]
) -> None:
    steps.append(_check_header(decoded.header))
    alg = _check_algorithm(decoded.header, cred)
    steps.append(VerifyStep("algorithm", "passed", ", ".join(cred.algorithms), alg))
    key, step = await _find_key(decoded, alg, cred, jwks)
    steps.append(step)
    steps.append(_check_signature(decoded, key, alg, cred))


def _check_header(header: Mapping[str, Any]) -> VerifyStep:
    expected = "no " + ", ".join(FORBIDDEN_HEADERS) + " or crit"
    actual = ", ".join(sorted(header))
    present = [p for p in FORBIDDEN_HEADERS if p in header]
    if present:
        raise _fail(
            "header",
            "header_rejected",
            f"the token header carries {', '.join(present)}: rrdev never fetches or "
            "trusts a key named by the token itself",
            "keys come only from the profile's jwks_uri; real issuers do not need these",
            expected=expected,
            actual=actual,
        )
    if "crit" in header:
        raise _fail(
            "header",
            "header_rejected",
            f"the token marks {clip(header['crit'])} as critical; rrdev understands no "
            "JWS extensions, so it must refuse the token",
            expected=expected,
            actual=actual,
        )
    if "b64" in header:
        raise _fail(
            "header",
            "header_rejected",
            "unencoded payloads (b64) are not supported",
            expected=expected,
            actual=actual,
        )
    if "kid" in header and not isinstance(header["kid"], str):
        raise _fail(
            "header",
            "header_rejected",
            "the kid header is not a string",
            expected=expected,
            actual=actual,
        )
    return VerifyStep("header", "passed", expected, actual)


# ------------------------------------------------------------------- algorithm


def _check_algorithm(header: Mapping[str, Any], cred: ProxyCredential) -> str:
    """The token's alg, if the profile allows it and rrdev can verify it."""
    alg = header.get("alg")
    allowed = ", ".join(cred.algorithms) or "(nothing)"

    def refuse(message: str, hint: str) -> _Failure:
        return _fail(
            "algorithm",
            "algorithm_not_allowed",
            message,
            hint,
            expected=allowed,
            actual=clip(alg, quote=False),
        )

    if not isinstance(alg, str) or not alg:
        raise refuse("the token header names no algorithm (alg)", "")
    if alg.lower() == "none":
        raise refuse(
            f"the token is unsigned (alg {clip(alg)}); rrdev always refuses unsigned tokens",
            "real issuers always sign their tokens: this one is forged or a test artefact",
        )
    if alg not in cred.algorithms:
        shown = clip(alg, quote=False)
        raise refuse(
            f"the token is signed with {shown}; the profile allows {allowed}",
            _HMAC_HINT
            if alg.startswith("HS")
            else f"if your issuer really signs with {shown}, add it to proxy_credential.algorithms",
        )
    if alg.startswith("HS"):
        raise refuse(
            f"{alg} is a shared-secret (HMAC) algorithm; rrdev verifies only with the "
            "JWKS's public keys and never uses a public key as an HMAC secret",
            _HMAC_HINT,
        )
    if alg not in ALGORITHM_KEY_TYPES:
        raise refuse(
            f"rrdev cannot verify {alg}",
            "supported: " + ", ".join(ALGORITHM_KEY_TYPES),
        )
    return alg


_HMAC_HINT = (
    "remove HS* from proxy_credential.algorithms and have the issuer sign with RS256 "
    "(Auth0: API settings -> Signing Algorithm)"
)


# ------------------------------------------------------------------ key & signature


async def _find_key(
    decoded: DecodedToken, alg: str, cred: ProxyCredential, jwks: KeySource
) -> tuple[PyJWK, VerifyStep]:
    kid = decoded.header.get("kid")
    expected = (
        f"kid {clip(kid)}" if kid is not None else "the JWKS's only key (the token has no kid)"
    )
    try:
        key = await jwks.get_key(kid, alg)
    except KeyNotFound as error:
        raise _fail(
            "key",
            "key_not_found",
            error.message,
            _key_hint(error, decoded.claims, cred, jwks),
            expected=expected,
            actual="not in " + jwks.source,
        ) from None
    except JwksUnavailable as error:
        raise _fail(
            "key",
            "jwks_unavailable",
            error.message,
            error.hint,
            expected=expected,
            actual=error.problem,
            unavailable=True,
        ) from None
    return key, VerifyStep("key", "passed", expected, f"{key.key_type} key from {jwks.source}")


def _key_hint(
    error: KeyNotFound, claims: Mapping[str, Any], cred: ProxyCredential, jwks: KeySource
) -> str:
    kids = error.known_kids
    hint = "the JWKS has kids: " + ", ".join(kids) if kids else "the JWKS has no usable keys"
    iss = claims.get("iss")
    if isinstance(iss, str) and cred.issuer and iss != cred.issuer:
        return f"{hint}; the token comes from another issuer ({clip(iss)}), not {cred.issuer!r}"
    if error.retry_in is not None:
        return f"{hint}; {_refetch_declined(error.retry_in, jwks)}"
    return f"{hint}; the token may come from another tenant or issuer, or from a rotated key"


def _refetch_declined(retry_in: float, jwks: KeySource) -> str:
    """Why the JWKS was not refetched for this unknown kid, and when it will be."""
    interval = jwks.refetch_interval
    ago = math.floor(max(0.0, interval - retry_in))  # since the last fetch attempt
    fetched = (
        f"the JWKS was fetched {ago}s ago and"
        if jwks.status().last_error is None
        else f"the last JWKS fetch, {ago}s ago, failed, and the JWKS"
    )
    return (
        f"{fetched} is refetched at most every {interval:g}s on an unknown kid: if the "
        f"issuer just rotated its keys, retry in {math.ceil(retry_in)}s "
        "(the profile's jwks_refetch_interval_seconds)"
    )


def _check_signature(
    decoded: DecodedToken, key: PyJWK, alg: str, cred: ProxyCredential
) -> VerifyStep:
    expected = f"a valid {alg} signature"
    if not decoded.signature:
        raise _fail(
            "signature",
            "signature_invalid",
            "the token has no signature (its third part is empty)",
            "the token was stripped or truncated: use the complete token",
            expected=expected,
            actual="empty",
        )
    try:
        # The PyJWK is bound to ``alg``; the profile's list is checked again here.
        _JWS.decode_complete(decoded.raw, key=key, algorithms=list(cred.algorithms))
    except InvalidSignatureError:
        raise _signature_failure(decoded, alg, expected, "does not match") from None
    except (PyJWTError, ValueError, TypeError) as error:
        raise _signature_failure(
            decoded, alg, expected, f"could not be checked ({error})"
        ) from None
    return VerifyStep("signature", "passed", expected, "valid")


def _signature_failure(decoded: DecodedToken, alg: str, expected: str, what: str) -> _Failure:
    kid = decoded.header.get("kid")
    return _fail(
        "signature",
        "signature_invalid",
        f"the {alg} signature {what} the JWKS key {clip(kid)}",
        "the token was changed after signing, or was signed by a different key that "
        "uses the same kid (another environment, or the local keyset?)",
        expected=expected,
        actual="invalid",
    )


# --------------------------------------------------------------------- claims


def _check_claims(
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
    first: _Failure | None = None
    for check in checks:
        try:
            steps.append(check())
        except _Failure as failure:
            steps.append(failure.step)
            first = first or failure
    if first is not None:
        raise first


def _require(claims: Mapping[str, Any], name: str, step: str, expected: str, hint: str) -> Any:
    if name not in claims:
        raise _fail(
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
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise _fail(
            step,
            "claim_malformed",
            f"{name} is {clip(value)}, not a number of seconds since the epoch",
            expected=expected,
            actual=clip(value),
        )
    return float(value)


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
        raise _fail(
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
        raise _fail(
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
        raise _fail(
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
        raise _fail(
            "issuer",
            "issuer_mismatch",
            "the profile sets no issuer, so rrdev accepts no token",
            f"set proxy_credential.issuer (this token's is {clip(iss)})",
            expected=expected,
            actual=clip(iss, quote=False),
        )
    if iss != cred.issuer:
        raise _fail(
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
        raise _fail(
            "audience",
            "audience_mismatch",
            "the profile sets no audience, so rrdev accepts no token",
            f"set proxy_credential.audience (this token's is {shown})",
            expected=expected,
            actual=shown,
        )
    matched = [a for a in auds if a in cred.audience]
    if not matched:
        raise _fail(
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
    raise _fail(
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
        raise _fail(
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
        raise _fail(
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
        raise _fail(
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
