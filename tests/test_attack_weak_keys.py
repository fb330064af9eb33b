"""Attack: a JWKS that publishes a key nobody should trust, and a token signed with it.

RFC 7518 §3.3 says an RSA key under 2048 bits MUST NOT be used; a 1024-bit modulus is
within reach of a determined attacker, and a public exponent of 1 lets anyone forge a
signature with no key at all. An EC key on the wrong curve for its declared algorithm,
or an OKP key on a key-agreement curve, is a misconfigured JWKS. rrdev ignores such
keys when the JWKS loads (a console line says which and why), and a token whose kid
points at one gets 401 ``key_unusable`` naming the key -- never a forwarded request.

Everything runs over real loopback sockets: a JWKS server, ``rrdev up`` (uvicorn) and
an echo backend that must receive nothing.
"""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from factories import b64json, b64url, default_claims, jwk_of, make_token, rsa_key
from keys_support import (
    assert_forwarded,
    assert_refused,
    good_jwk,
    p384_key,
    proxy_with_jwks,
    send,
    weak_rsa_key,
)
from proxy_support import Backend, wait_for

pytestmark = pytest.mark.usefixtures("keyset")

#: DER prefix of a SHA-256 DigestInfo (RFC 8017 §9.2 note 1).
SHA256_DIGEST_INFO = bytes.fromhex("3031300d060960864801650304020105000420")


def ignored_events(events: list[tuple[str, str]]) -> list[str]:
    return [message for kind, message in events if kind == "jwks_key_ignored"]


async def test_a_1024_bit_rsa_key_never_verifies_and_is_named(
    tmp_path: Path, backend: Backend
) -> None:
    weak = jwk_of(weak_rsa_key(), "weak", "RS256")
    async with proxy_with_jwks(tmp_path, backend, weak, good_jwk()) as (proxy, _jwks):
        answer = await send(proxy, make_token(weak_rsa_key(), kid="weak"))
        body = assert_refused(answer, "key_unusable", backend)
        assert body["message"].startswith(
            "RSA key 'weak' is 1024 bits; RFC 7518 requires at least 2048"
        )
        assert "at least 2048 bits" in body["hint"]
        assert "1024 bits" in (answer.header("www-authenticate") or "")
        (line,) = ignored_events(proxy.events)  # what `rrdev up` prints on the console
        assert "RSA key 'weak' is 1024 bits" in line and "401 key_unusable" in line
        await wait_for(lambda: len(proxy.records) == 1)
        record = proxy.records[0]
        assert record.reason == "key_unusable" and record.upstream_status is None
        verification = record.explanation.verification
        assert verification is not None
        key_step = next(s for s in verification.steps if s.name == "key")
        assert key_step.status == "failed" and key_step.actual.startswith("ignored in ")

        # Control: the same proxy and JWKS forward a token signed with the strong key.
        assert_forwarded(await send(proxy, make_token(rsa_key())), backend)


async def test_a_weak_key_is_not_picked_for_a_token_without_kid(
    tmp_path: Path, backend: Backend
) -> None:
    weak = jwk_of(weak_rsa_key(), None, None)
    async with proxy_with_jwks(tmp_path, backend, weak) as (proxy, _jwks):
        body = assert_refused(
            await send(proxy, make_token(weak_rsa_key(), kid=None)), "key_unusable", backend
        )
        assert "RSA key (no kid) is 1024 bits" in body["message"]


def forged_with_exponent_one(kid: str) -> str:
    """With e = 1 an RSA "signature" is its own verification: the PKCS#1 v1.5 encoded
    digest, computed by anyone, no private key needed."""
    header, payload = b64json({"alg": "RS256", "kid": kid}), b64json(default_claims())
    digest = hashlib.sha256(f"{header}.{payload}".encode()).digest()
    suffix = b"\x00" + SHA256_DIGEST_INFO + digest
    encoded = b"\x00\x01" + b"\xff" * (256 - 2 - len(suffix)) + suffix
    return f"{header}.{payload}.{b64url(encoded)}"


async def test_an_rsa_key_with_public_exponent_one_cannot_be_used_to_forge(
    tmp_path: Path, backend: Backend
) -> None:
    modulus = jwk_of(rsa_key("exponent-one"))["n"]
    broken = {"kty": "RSA", "kid": "e1", "use": "sig", "n": modulus, "e": "AQ"}
    async with proxy_with_jwks(tmp_path, backend, broken, good_jwk()) as (proxy, _jwks):
        body = assert_refused(
            await send(proxy, forged_with_exponent_one("e1")), "key_unusable", backend
        )
        assert "RSA key 'e1' has public exponent 1" in body["message"]


async def test_a_p384_key_served_for_es256_is_ignored(tmp_path: Path, backend: Backend) -> None:
    declared = jwk_of(p384_key(), "ec", "ES256")  # P-384, but declared for ES256 (P-256)
    undeclared = jwk_of(p384_key(), "ec2", None)  # P-384 without alg: an ES384 key
    algorithms = 'algorithms = ["ES256", "ES384"]'
    async with proxy_with_jwks(
        tmp_path, backend, declared, undeclared, proxy_credential=algorithms
    ) as (proxy, _jwks):
        body = assert_refused(
            await send(proxy, make_token(p384_key(), kid="ec", alg="ES256")),
            "key_unusable",
            backend,
        )
        assert (
            "EC key 'ec' is on curve P-384 but declared for ES256, which needs P-256"
            in (body["message"])
        )
        (line,) = ignored_events(proxy.events)
        assert "EC key 'ec'" in line
        # Undeclared, the key fits no ES256 token (the curve decides): no key, not a weak one.
        body = assert_refused(
            await send(proxy, make_token(p384_key(), kid="ec2", alg="ES256")),
            "key_not_found",
            backend,
        )
        assert "its curve P-384 does not fit ES256" in body["message"]
        # Control: the same key verifies what it is for.
        assert_forwarded(await send(proxy, make_token(p384_key(), kid="ec2", alg="ES384")), backend)


def okp_jwk(public: Any, crv: str, kid: str) -> dict[str, Any]:
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return {"kty": "OKP", "crv": crv, "x": x, "kid": kid, "use": "sig"}


async def test_an_x25519_key_agreement_key_is_not_a_signing_key(
    tmp_path: Path, backend: Backend
) -> None:
    agreement = okp_jwk(x25519.X25519PrivateKey.generate().public_key(), "X25519", "okp")
    algorithms = 'algorithms = ["RS256", "EdDSA"]'
    async with proxy_with_jwks(
        tmp_path, backend, agreement, good_jwk(), proxy_credential=algorithms
    ) as (proxy, _jwks):
        signer = ed25519.Ed25519PrivateKey.generate()
        token = make_token(signer, kid="okp", alg="EdDSA")  # type: ignore[arg-type]
        body = assert_refused(await send(proxy, token), "key_unusable", backend)
        assert "OKP key 'okp' is on 'X25519', a key-agreement curve" in body["message"]
