"""Token -> ``Verification``: verified claims, or a rejection with a stable reason.

``verify_token`` never raises for a bad token. It walks a fixed checklist and
stops at the first failure before the signature holds (later steps are ``skipped``);
once the signature holds, every claim check runs and the first failure is reported:

    format -> header -> algorithm -> key -> signature -> expiry -> not_before
           -> issued_at -> [lifetime] -> issuer -> subject -> audience -> sender_constraint
                   (lifetime only with max_lifetime_seconds; Cognito mode: client_id,
                    token_use for audience)

Security choices, each regression-tested in ``tests/test_attacks.py``:

* the acceptable algorithms come from the profile, never from the token; ``none``
  (any spelling) and every HS* algorithm are refused, because rrdev verifies only
  with asymmetric keys from the JWKS and never uses a public key as an HMAC secret;
* keys come only from the configured JWKS: ``jku``, ``x5u``, ``jwk`` and ``x5c``
  headers are refused outright (never fetched, never trusted), and so is any
  ``crit`` extension (rrdev understands none);
* weak JWKS keys (RSA under 2048 bits, a curve that does not fit the key's ``alg``)
  are never used: a token naming one gets ``key_unusable``, and the key's length is
  checked again before its signature is (a second line);
* claim types are checked (``rrdev.core.claims``), and a sender-constrained
  (``cnf``) token is refused as a bearer token unless the profile opts in;
* ``exp``, ``iss`` and ``aud`` (Cognito: ``client_id``) are required; ``iss`` and
  ``aud`` are compared exactly; times are checked against the injected ``now``.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from jwt import PyJWK
from jwt.exceptions import InvalidAlgorithmError, InvalidKeyError, PyJWTError

from rrdev.core.claims import StepFailure, check_claims, cognito_mode, fail
from rrdev.core.errors import JwksUnavailable, KeyNotFound, KeyUnusable, TokenInputError
from rrdev.core.jwk import ALGORITHM_KEY_TYPES, KeySource
from rrdev.core.model import ProxyCredential
from rrdev.core.providers import issuer_accepted, signature_hint
from rrdev.core.records import Verification, VerifyStep
from rrdev.core.redact import fingerprint
from rrdev.core.tokens import DecodedToken, clip, decode_unverified

__all__ = ["FORBIDDEN_HEADERS", "step_names", "verify_token"]

#: Header parameters that point at keys. Honouring any of them would let the
#: token choose the key that verifies it, so they are refused, never followed.
FORBIDDEN_HEADERS = ("jku", "x5u", "jwk", "x5c")

_SIGNED_STEPS = (
    *("format", "header", "algorithm", "key", "signature"),
    *("expiry", "not_before", "issued_at"),
)

# HMAC is not among them: a token can never steer us into it. Short keys are refused
# when the JWKS is read (rrdev.core.key_checks), and again before a signature is checked.
_VERIFYING = frozenset(ALGORITHM_KEY_TYPES)


def step_names(cred: ProxyCredential) -> tuple[str, ...]:
    """The checklist, in order, for this credential."""
    audience = ("client_id", "token_use") if cognito_mode(cred) else ("audience",)
    lifetime = ("lifetime",) if cred.max_lifetime_seconds is not None else ()
    return (*_SIGNED_STEPS, *lifetime, "issuer", "subject", *audience, "sender_constraint")


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
    warnings: list[str] = []
    decoded: DecodedToken | None = None
    try:
        decoded = _check_format(token, cred, steps)
        await _check_signed(decoded, cred, jwks, steps, warnings)
        check_claims(decoded.claims, cred, now, steps)
    except StepFailure as failure:
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
            warnings=tuple(warnings),
        )
    return Verification(
        steps=tuple(steps),
        claims=decoded.claims,
        header=decoded.header,
        fingerprint=fingerprint(token),
        warnings=tuple(warnings),
    )


# ------------------------------------------------------------- format & header


def _check_format(token: str, cred: ProxyCredential, steps: list[VerifyStep]) -> DecodedToken:
    expected = "three base64url parts; JSON header and payload"
    try:
        decoded = decode_unverified(token, max_bytes=cred.max_token_bytes)
    except TokenInputError as error:
        seen = _token_shape(token)
        raise fail(
            "format", error.reason, error.message, error.hint, expected=expected, actual=seen
        ) from None
    steps.append(VerifyStep("format", "passed", expected, f"{len(token)} bytes"))
    return decoded


def _token_shape(token: str) -> str:
    """What a malformed token looked like, without showing any of it."""
    if not token:
        return "an empty token"
    parts = token.count(".") + 1
    return f"{parts} dot-separated part{'s' * (parts != 1)}, {len(token)} bytes"


async def _check_signed(
    decoded: DecodedToken,
    cred: ProxyCredential,
    jwks: KeySource,
    steps: list[VerifyStep],
    warnings: list[str],
) -> None:
    steps.append(_check_header(decoded.header))
    alg = _check_algorithm(decoded.header, cred)
    steps.append(VerifyStep("algorithm", "passed", ", ".join(cred.algorithms), alg))
    key, step = await _find_key(decoded, alg, cred, jwks)
    stale = jwks.staleness()
    if stale is not None and stale.served:
        # The key came from a copy past its TTL: say so wherever this is explained.
        warnings.append(stale.note())
        step = replace(step, detail="from a stale key set: the JWKS is failing")
    steps.append(step)
    steps.append(_check_signature(decoded, key, alg, cred))


def _check_header(header: Mapping[str, Any]) -> VerifyStep:
    expected = "no " + ", ".join(FORBIDDEN_HEADERS) + " or crit"
    actual = ", ".join(sorted(header))
    present = [p for p in FORBIDDEN_HEADERS if p in header]
    if present:
        raise fail(
            "header",
            "header_rejected",
            f"the token header carries {', '.join(present)}: rrdev never fetches or "
            "trusts a key named by the token itself",
            "keys come only from the profile's jwks_uri; real issuers do not need these",
            expected=expected,
            actual=actual,
        )
    if "crit" in header:
        raise fail(
            "header",
            "header_rejected",
            f"the token marks {clip(header['crit'])} as critical; rrdev understands no "
            "JWS extensions, so it must refuse the token",
            expected=expected,
            actual=actual,
        )
    if "b64" in header:
        raise fail(
            "header",
            "header_rejected",
            "unencoded payloads (b64) are not supported",
            expected=expected,
            actual=actual,
        )
    if "kid" in header and not isinstance(header["kid"], str):
        raise fail(
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

    def refuse(message: str, hint: str) -> StepFailure:
        return fail(
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
            _hmac_hint(cred)
            if alg.startswith("HS")
            else f"if your issuer really signs with {shown}, add it to proxy_credential.algorithms",
        )
    if alg.startswith("HS"):
        raise refuse(
            f"{alg} is a shared-secret (HMAC) algorithm; rrdev verifies only with the "
            "JWKS's public keys and never uses a public key as an HMAC secret",
            _hmac_hint(cred),
        )
    if alg not in ALGORITHM_KEY_TYPES:
        raise refuse(
            f"rrdev cannot verify {alg}",
            "supported: " + ", ".join(ALGORITHM_KEY_TYPES),
        )
    return alg


_SIGN_WITH_RS256 = "have the issuer sign with RS256 (Auth0: API settings -> Signing Algorithm)"


def _hmac_hint(cred: ProxyCredential) -> str:
    """An HS* token's hint: what the profile really allows, and why HS* cannot be added."""
    allowed = ", ".join(cred.algorithms) or "nothing"
    if any(a.upper().startswith("HS") for a in cred.algorithms):
        return f"remove HS* from proxy_credential.algorithms and {_SIGN_WITH_RS256}"
    return (
        f"the profile allows only {allowed}; HS* tokens are signed with a shared secret, "
        f"which a JWKS's public keys cannot verify (rrdev never accepts them): "
        f"{_SIGN_WITH_RS256}"
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
    except KeyUnusable as error:
        raise fail(
            "key",
            error.reason,
            error.message,
            error.hint,
            expected=expected,
            actual="ignored in " + jwks.source,
        ) from None
    except KeyNotFound as error:
        raise fail(
            "key",
            error.reason,
            error.message,
            _key_hint(error, decoded.claims, cred, jwks),
            expected=expected,
            actual="not in " + jwks.source,
        ) from None
    except JwksUnavailable as error:  # or discovery_unavailable / discovery_issuer_mismatch
        raise fail(
            "key",
            error.reason,
            error.message,
            error.hint,
            expected=expected,
            actual=error.problem,
            unavailable=True,
        ) from None
    actual = f"{key.key_type} key from {jwks.source}"
    return key, VerifyStep("key", "passed", expected, actual, _ignored_note(jwks))


def _ignored_note(jwks: KeySource) -> str:
    """The key row also says which other keys of the JWKS rrdev ignores, and why."""
    ignored = jwks.status().ignored
    if not ignored:
        return ""
    return "the JWKS also has keys rrdev ignores: " + "; ".join(ignored)


def _key_hint(
    error: KeyNotFound, claims: Mapping[str, Any], cred: ProxyCredential, jwks: KeySource
) -> str:
    kids = error.known_kids
    hint = "the JWKS has kids: " + ", ".join(kids) if kids else "the JWKS has no usable keys"
    graph = signature_hint({}, claims)
    if graph:
        return f"{hint}; {graph}"
    iss = claims.get("iss")
    if isinstance(iss, str) and cred.issuer and not issuer_accepted(iss, claims, cred):
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
        raise fail(
            "signature",
            "signature_invalid",
            "the token has no signature (its third part is empty)",
            "the token was stripped or truncated: use the complete token",
            expected=expected,
            actual="empty",
        )
    try:
        matches = _signature_matches(decoded, key, alg, cred.algorithms)
    except (PyJWTError, ValueError, TypeError) as error:
        raise _signature_failure(
            decoded, alg, expected, f"could not be checked ({error})"
        ) from None
    if not matches:
        raise _signature_failure(decoded, alg, expected, "does not match")
    return VerifyStep("signature", "passed", expected, "valid")


def _signature_matches(
    decoded: DecodedToken, key: PyJWK, alg: str, allowed: tuple[str, ...]
) -> bool:
    """What ``PyJWS.decode_complete`` would check of the signature, on the segments
    ``decode_unverified`` already decoded (strictly: canonical base64url, no b64 or
    crit header, as the header step made sure): PyJWT would decode the token again,
    one character at a time, the larger part of a cold verification and of every
    refusal of a forged signature. The algorithm is the profile's and the key's,
    both checked again here, never the token's alone; short keys are refused."""
    if alg not in allowed or alg not in _VERIFYING or alg != key.algorithm_name:
        raise InvalidAlgorithmError(f"{alg} is not allowed for this key")
    algorithm = key.Algorithm
    prepared = algorithm.prepare_key(key.key)
    too_short = algorithm.check_key_length(prepared)
    if too_short:
        raise InvalidKeyError(too_short)
    return bool(algorithm.verify(decoded.signing_input, prepared, decoded.signature))


def _signature_failure(decoded: DecodedToken, alg: str, expected: str, what: str) -> StepFailure:
    kid = decoded.header.get("kid")
    return fail(
        "signature",
        "signature_invalid",
        f"the {alg} signature {what} the JWKS key {clip(kid)}",
        signature_hint(decoded.header, decoded.claims)
        or "the token was changed after signing, or was signed by a different key that "
        "uses the same kid (another environment, or the local keyset?)",
        expected=expected,
        actual="invalid",
    )
