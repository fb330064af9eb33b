"""The JWS algorithms rrdev knows, written once: what each verifies with, and what a
signed client assertion may use. Everything else (the profile's allowed list, the key
checks' curves, the issuer's discovery document) is derived from these tables.

No HS* anywhere: rrdev verifies with public keys only, so no token can make it check an
HMAC against something a JWKS published.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["ALGORITHM_KEY_TYPES", "ASSERTION_ALGORITHMS", "SIGNING_CURVES"]

#: The algorithms rrdev can verify, with the key type (and curves) each needs.
ALGORITHM_KEY_TYPES: Mapping[str, tuple[str, frozenset[str] | None]] = {
    "RS256": ("RSA", None),
    "RS384": ("RSA", None),
    "RS512": ("RSA", None),
    "PS256": ("RSA", None),
    "PS384": ("RSA", None),
    "PS512": ("RSA", None),
    "ES256": ("EC", frozenset({"P-256"})),
    "ES384": ("EC", frozenset({"P-384"})),
    "ES512": ("EC", frozenset({"P-521"})),
    "ES256K": ("EC", frozenset({"secp256k1"})),
    "EdDSA": ("OKP", frozenset({"Ed25519", "Ed448"})),
}

#: What a private_key_jwt client assertion may be signed with (what Okta and Entra
#: accept): rrdev signs with these, and its local issuer verifies nothing else.
ASSERTION_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "ES256")


def _curves_by_key_type() -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    for key_type, curves in ALGORITHM_KEY_TYPES.values():
        for curve in sorted(curves or ()):
            if curve not in found.setdefault(key_type, []):
                found[key_type].append(curve)
    return {key_type: tuple(curves) for key_type, curves in found.items() if curves}


#: The curves each key type may be on for a signature rrdev verifies (EC, OKP).
SIGNING_CURVES: Mapping[str, tuple[str, ...]] = _curves_by_key_type()
