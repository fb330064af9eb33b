"""Test factories: real keys, real signed tokens, JWKS documents and credentials.

Tokens are built by hand (not with ``jwt.encode``) so tests can sign anything,
including claims and headers a well-behaved library would refuse to produce.
Keys are expensive to generate: ``rsa_key(name)``/``ec_key(name)`` hand out one
key per name for the whole session; ``make_rsa_key()`` always makes a new one.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import hmac
import json
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm, get_default_algorithms

from rrdev.clients.jwks import JwksCache
from rrdev.core.model import ProxyCredential
from rrdev.core.records import Verification
from rrdev.core.verify import verify_token

#: A fixed "now" for every test: 2027-01-15T08:00:00Z.
NOW = 1_800_000_000
ISSUER = "https://tenant.example.auth0.com/"
AUDIENCE = "https://api.myapp.com"
JWKS_URI = "https://tenant.example.auth0.com/.well-known/jwks.json"
CLIENT_ID = "Zx8Qm2LkP0aB7cD9eF1gH3iJ5kL6mN4o"  # Auth0-shaped: 32 alphanumerics
SUBJECT = f"{CLIENT_ID}@clients"

#: Pass as a claim override to leave that claim out: ``make_token(key, exp=OMIT)``.
OMIT: Any = object()

PrivateKey = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey


# ------------------------------------------------------------------ keys


def make_rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def make_ec_key(curve: ec.EllipticCurve | None = None) -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(curve or ec.SECP256R1())


@functools.cache
def rsa_key(name: str = "default") -> rsa.RSAPrivateKey:
    """One RSA key per name, shared by the whole test session."""
    return make_rsa_key()


@functools.cache
def ec_key(name: str = "default") -> ec.EllipticCurvePrivateKey:
    return make_ec_key()


def jwk_of(
    key: PrivateKey | PublicKey, kid: str | None = "k1", alg: str | None = "RS256", **extra: Any
) -> dict[str, Any]:
    """The public JWK of ``key`` (a private key is reduced to its public half).
    ``alg``/``kid`` None leave the member out; ``extra`` adds or overrides members."""
    public = key.public_key() if isinstance(key, PrivateKey) else key
    if isinstance(public, rsa.RSAPublicKey):
        jwk: dict[str, Any] = RSAAlgorithm.to_jwk(public, as_dict=True)
    else:
        jwk = ECAlgorithm.to_jwk(public, as_dict=True)
    jwk.pop("key_ops", None)
    jwk["use"] = "sig"
    if kid is not None:
        jwk["kid"] = kid
    if alg is not None:
        jwk["alg"] = alg
    jwk.update(extra)
    return jwk


def make_jwks(*entries: dict[str, Any]) -> dict[str, Any]:
    return {"keys": list(entries)}


# ---------------------------------------------------------------- tokens


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64json(value: Any) -> str:
    return b64url(json.dumps(value, separators=(",", ":")).encode("utf-8"))


def default_claims(**overrides: Any) -> dict[str, Any]:
    """An Auth0-like M2M access token's claims around ``NOW``."""
    claims: dict[str, Any] = {
        "iss": ISSUER,
        "sub": SUBJECT,
        "aud": AUDIENCE,
        "iat": NOW - 60,
        "exp": NOW + 3600,
        "azp": CLIENT_ID,
        "gty": "client-credentials",
        "scope": "read:users",
    }
    return _apply(claims, overrides)


def _apply(base: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for name, value in overrides.items():
        if value is OMIT:
            out.pop(name, None)
        else:
            out[name] = value
    return out


def make_token(
    private_key: PrivateKey,
    claims: dict[str, Any] | None = None,
    *,
    kid: str | None = "k1",
    alg: str = "RS256",
    headers: dict[str, Any] | None = None,
    **claim_overrides: Any,
) -> str:
    """A token signed with ``private_key``. ``claims`` replaces the defaults;
    keyword overrides apply on top (``OMIT`` removes a claim); ``headers`` adds
    to or overrides ``{"alg", "typ", "kid"}`` (``kid=None``: no kid)."""
    payload = _apply(default_claims() if claims is None else claims, claim_overrides)
    header: dict[str, Any] = {"alg": alg, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    header.update(headers or {})
    return sign_segments(private_key, alg, b64json(header), b64json(payload))


def sign_segments(private_key: PrivateKey, alg: str, header_b64: str, payload_b64: str) -> str:
    """Sign already-encoded segments with ``alg`` (asymmetric algorithms)."""
    algorithm = get_default_algorithms()[alg]
    signing_input = f"{header_b64}.{payload_b64}".encode("ascii")
    signature = algorithm.sign(signing_input, private_key)
    return f"{header_b64}.{payload_b64}.{b64url(signature)}"


def raw_token(
    header: dict[str, Any] | str, payload: dict[str, Any] | str, signature: str = ""
) -> str:
    """Assemble a token by hand; str parts are used as already-encoded text."""
    head = header if isinstance(header, str) else b64json(header)
    body = payload if isinstance(payload, str) else b64json(payload)
    return f"{head}.{body}.{signature}"


def hmac_token(
    secret: bytes,
    claims: dict[str, Any] | None = None,
    *,
    kid: str | None = "k1",
    alg: str = "HS256",
) -> str:
    """An HS* token with an arbitrary secret (PyJWT refuses PEM secrets; attackers don't)."""
    digest = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}[alg]
    header: dict[str, Any] = {"alg": alg, "typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    head, body = b64json(header), b64json(default_claims() if claims is None else claims)
    mac = hmac.new(secret, f"{head}.{body}".encode("ascii"), digest).digest()
    return f"{head}.{body}.{b64url(mac)}"


# ----------------------------------------------------------- credentials


def make_cred(**overrides: Any) -> ProxyCredential:
    """An Auth0-style jwtVerify proxy credential matching ``default_claims``."""
    fields: dict[str, Any] = {
        "jwks_uri": JWKS_URI,
        "audience": (AUDIENCE,),
        "issuer": ISSUER,
    }
    fields.update(overrides)
    return ProxyCredential(**fields)


def default_jwks() -> dict[str, Any]:
    """The JWKS matching ``make_token(rsa_key())``: kid ``k1``, RS256."""
    return make_jwks(jwk_of(rsa_key(), "k1", "RS256"))


async def verify(
    token: str,
    cred: ProxyCredential | None = None,
    jwks: JwksCache | dict[str, Any] | None = None,
    *,
    now: float = NOW,
) -> Verification:
    """``verify_token`` with the defaults above (a dict JWKS is wrapped in a cache)."""
    cache = jwks if isinstance(jwks, JwksCache) else JwksCache(jwks or default_jwks())
    return await verify_token(token, cred or make_cred(), cache, now=now)


class FakeClock:
    """A monotonic clock tests move by hand: ``JwksCache(..., clock=clock)``."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds
