"""Which signing keys of a JWKS rrdev refuses to trust, and why.

A JWKS may publish keys that are well-formed JSON but unsafe or self-contradictory.
They are ignored when the document is read (``rrdev.core.jwk.read_keys``), each with
a sentence saying which key and why, so a token pointing at one is refused with
``key_unusable`` instead of being verified with a key nobody should trust:

* RSA keys under 2048 bits (RFC 7518 §3.3: "MUST NOT"), or with a public exponent
  that is even or below 3;
* EC and OKP keys on a curve rrdev cannot verify with (X25519/X448 are for key
  agreement, not signatures);
* keys whose declared ``alg`` does not fit them (a P-384 key declared for ES256,
  an RSA key declared for ES256) or is no signature algorithm rrdev verifies;
* keys the cryptography library cannot load (a point not on its curve, a broken
  modulus).

Pure: no I/O, no network.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from jwt import PyJWK
from jwt.exceptions import PyJWTError

from rrdev.core.algorithms import SIGNING_CURVES
from rrdev.core.tokens import clip

__all__ = ["MIN_RSA_BITS", "IgnoredKey", "unusable_reason"]

#: RFC 7518 §3.3: "A key of size 2048 bits or larger MUST be used with these algorithms."
MIN_RSA_BITS = 2048


@dataclass(frozen=True)
class IgnoredKey:
    """A JWKS key rrdev will not verify with: its ``kid`` (None when it has none),
    ``why`` (a sentence naming the key) and ``hint`` (what the issuer should do)."""

    kid: str | None
    why: str
    hint: str


def unusable_reason(
    jwk: dict[str, Any], algorithms: Mapping[str, tuple[str, frozenset[str] | None]]
) -> IgnoredKey | None:
    """Why this signing key (``kty`` RSA, EC or OKP, ``use`` sig) must not be used,
    or None. ``algorithms`` maps each verifiable algorithm to its key type and curves."""
    kid = jwk.get("kid")
    name = f"{jwk.get('kty')} key {clip(kid) if kid is not None else '(no kid)'}"
    problem = (
        _rsa_problem(jwk, name) if jwk["kty"] == "RSA" else _curve_problem(jwk, name)
    ) or _declared_alg_problem(jwk, name, algorithms)
    if problem is None:
        problem = _load_problem(jwk, name)
    if problem is None:
        return None
    why, hint = problem
    return IgnoredKey(kid, why, hint)


def _rsa_problem(jwk: dict[str, Any], name: str) -> tuple[str, str] | None:
    modulus = _b64_int(jwk.get("n"))
    exponent = _b64_int(jwk.get("e"))
    if modulus is None or exponent is None:
        return (
            f"{name} has no valid modulus (n) or exponent (e)",
            "n and e must be unpadded base64url; the JWKS is damaged",
        )
    bits = modulus.bit_length()
    if bits < MIN_RSA_BITS:
        return (
            f"{name} is {bits} bits; RFC 7518 requires at least {MIN_RSA_BITS}",
            f"the issuer must sign with an RSA key of at least {MIN_RSA_BITS} bits "
            "(rotate the signing key): a short key can be factored and tokens forged",
        )
    if exponent < 3 or exponent % 2 == 0:
        return (
            f"{name} has public exponent {exponent}; it must be odd and at least 3",
            "with such an exponent signatures can be forged: the issuer must rotate the key",
        )
    return None


def _curve_problem(jwk: dict[str, Any], name: str) -> tuple[str, str] | None:
    curves = SIGNING_CURVES[jwk["kty"]]
    crv = jwk.get("crv")
    if crv in curves:
        return None
    shown = clip(crv) if crv is not None else "no curve (crv)"
    extra = ", a key-agreement curve" if crv in ("X25519", "X448") else ""
    return (
        f"{name} is on {shown}{extra}; rrdev verifies {jwk['kty']} signatures on "
        + ", ".join(curves),
        "a signing key must be on one of those curves",
    )


def _declared_alg_problem(
    jwk: dict[str, Any],
    name: str,
    algorithms: Mapping[str, tuple[str, frozenset[str] | None]],
) -> tuple[str, str] | None:
    if "alg" not in jwk:
        return None
    alg = jwk["alg"]
    wanted = algorithms.get(alg) if isinstance(alg, str) else None
    if wanted is None:
        return (
            f"{name} is declared for {clip(alg)}, not a signature algorithm rrdev verifies",
            "a JWKS signing key declares RS*, PS*, ES* or EdDSA (or no alg)",
        )
    kty, curves = wanted
    if jwk["kty"] != kty:
        return (
            f"{name} is declared for {alg}, which needs an {kty} key",
            "the key's alg and kty contradict each other: the JWKS is misconfigured",
        )
    if curves is not None and jwk.get("crv") not in curves:
        return (
            f"{name} is on curve {jwk.get('crv')} but declared for {alg}, which needs "
            + " or ".join(sorted(curves))
            + " (RFC 7518 section 3.4)",
            "the key's alg and crv contradict each other: the JWKS is misconfigured",
        )
    return None


def _load_problem(jwk: dict[str, Any], name: str) -> tuple[str, str] | None:
    """A key that passed the checks above but that the cryptography library refuses
    (a point off its curve, say) is reported here rather than on the first token."""
    try:
        PyJWK(jwk, algorithm=jwk.get("alg"))
    except (PyJWTError, ValueError, TypeError) as error:
        return (
            f"{name} cannot be loaded: {clip(str(error), quote=False)}",
            "the JWKS entry is damaged: the issuer must publish it again",
        )
    return None


def _b64_int(value: Any) -> int | None:
    """A base64url-encoded unsigned integer (``n``, ``e``), or None if it is not one."""
    if not isinstance(value, str) or not value or "=" in value:
        return None
    try:
        raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    except (binascii.Error, ValueError):
        return None
    return int.from_bytes(raw, "big")
