"""One test per known attack on JWT verification, each named for it.

Every token here is real: signed with real keys (the attacker's or the issuer's),
then bent the way the attack needs. A passing test means rrdev refuses it with
the stated reason, without fetching or opening anything the token names.
"""

from __future__ import annotations

import base64
import builtins
import datetime
import io
import json
import os
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID
from factories import (
    AUDIENCE,
    ISSUER,
    JWKS_URI,
    NOW,
    b64json,
    b64url,
    default_claims,
    default_jwks,
    ec_key,
    hmac_token,
    jwk_of,
    make_cred,
    make_jwks,
    make_token,
    raw_token,
    rsa_key,
    sign_segments,
    verify,
)
from pytest_httpx import HTTPXMock

from rrdev.clients.jwks import JwksCache
from rrdev.core.errors import KeyNotFound

ATTACKER_URL = "https://attacker.example/.well-known/jwks.json"


def attacker_key() -> Any:
    return rsa_key("attacker")


def step(ver: Any, name: str) -> Any:
    return next(s for s in ver.steps if s.name == name)


# ------------------------------------------------------------ algorithm attacks


@pytest.mark.parametrize("alg", ["none", "None", "NONE", "nOnE"])
@pytest.mark.parametrize("signature", ["", b64url(b"whatever")])
@pytest.mark.parametrize("allowed", [("RS256",), ("RS256", "none", "None", "NONE", "nOnE")])
async def test_alg_none_unsigned_token(alg: str, signature: str, allowed: tuple[str, ...]) -> None:
    token = raw_token({"alg": alg, "typ": "JWT", "kid": "k1"}, default_claims(), signature)
    ver = await verify(token, make_cred(algorithms=allowed))
    assert ver.reason == "algorithm_not_allowed"
    assert not ver.ok
    assert step(ver, "key").status == "skipped"


@pytest.mark.parametrize("allowed", [("RS256", "HS256"), ("HS256",), ("RS256",)])
@pytest.mark.parametrize(
    "pem_format",
    [serialization.PublicFormat.SubjectPublicKeyInfo, serialization.PublicFormat.PKCS1],
)
async def test_hs256_signed_with_the_rsa_public_key_as_hmac_secret(
    allowed: tuple[str, ...], pem_format: serialization.PublicFormat
) -> None:
    # The classic algorithm-confusion attack: the public key is public, so an
    # attacker can HMAC with it and hope the verifier uses it as a shared secret.
    pem = rsa_key().public_key().public_bytes(serialization.Encoding.PEM, pem_format)
    token = hmac_token(pem, default_claims(scope="admin"), kid="k1")
    ver = await verify(token, make_cred(algorithms=allowed))
    assert ver.reason == "algorithm_not_allowed"
    assert step(ver, "signature").status == "skipped"
    # Defence in depth: the key cache itself never hands out a key for HS*.
    with pytest.raises(KeyNotFound):
        await JwksCache(default_jwks()).get_key("k1", "HS256")


async def test_oct_key_in_jwks_with_kid_matching_an_hs256_token() -> None:
    secret = b"a-shared-secret-the-attacker-also-knows!"
    jwks = make_jwks({"kty": "oct", "kid": "hs1", "k": b64url(secret), "alg": "HS256"})
    token = hmac_token(secret, kid="hs1")
    for allowed in [("HS256",), ("RS256", "HS256")]:
        ver = await verify(token, make_cred(algorithms=allowed), jwks)
        assert ver.reason == "algorithm_not_allowed"
    with pytest.raises(KeyNotFound):
        await JwksCache(jwks).get_key("hs1", "HS256")


async def test_alg_header_that_is_not_a_string() -> None:
    token = make_token(rsa_key(), headers={"alg": ["RS256"]})
    ver = await verify(token)
    assert ver.reason == "algorithm_not_allowed"


async def test_es256_token_pointing_at_an_rsa_kid_key_type_confusion() -> None:
    token = make_token(ec_key("attacker"), alg="ES256", kid="k1")
    ver = await verify(token, make_cred(algorithms=("RS256", "ES256")))
    assert ver.reason == "key_not_found"


async def test_psychic_signature_all_zero_ecdsa() -> None:
    # CVE-2022-21449: r = s = 0 verified on some JVMs for any message.
    header, payload = b64json({"alg": "ES256", "kid": "ec1"}), b64json(default_claims())
    token = f"{header}.{payload}.{b64url(bytes(64))}"
    jwks = make_jwks(jwk_of(ec_key(), "ec1", "ES256"))
    ver = await verify(token, make_cred(algorithms=("ES256",)), jwks)
    assert ver.reason == "signature_invalid"


# ---------------------------------------------------- keys named by the token


@pytest.mark.parametrize("param", ["jku", "x5u"])
async def test_jku_and_x5u_header_injection_is_never_fetched(
    httpx_mock: HTTPXMock, param: str
) -> None:
    attacker_jwks = make_jwks(jwk_of(attacker_key(), "k1"))
    httpx_mock.add_response(url=ATTACKER_URL, json=attacker_jwks, is_optional=True)
    httpx_mock.add_response(url=JWKS_URI, json=default_jwks(), is_optional=True)
    token = make_token(attacker_key(), headers={param: ATTACKER_URL})
    ver = await verify(token, jwks=JwksCache(JWKS_URI))
    assert ver.reason == "header_rejected"
    assert param in ver.message
    assert httpx_mock.get_requests(url=ATTACKER_URL) == []
    assert httpx_mock.get_requests() == []  # refused before any key lookup


async def test_embedded_jwk_header_with_the_attackers_key() -> None:
    token = make_token(attacker_key(), headers={"jwk": jwk_of(attacker_key(), "k1")})
    ver = await verify(token)
    assert ver.reason == "header_rejected"
    assert "jwk" in ver.message


async def test_x5c_header_with_the_attackers_certificate(httpx_mock: HTTPXMock) -> None:
    key = attacker_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "tenant.example.auth0.com")])
    start = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(start)
        .not_valid_after(start + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    der = cert.public_bytes(serialization.Encoding.DER)
    token = make_token(key, headers={"x5c": [base64.b64encode(der).decode()]})
    ver = await verify(token, jwks=JwksCache(JWKS_URI))
    assert ver.reason == "header_rejected"
    assert "x5c" in ver.message
    assert httpx_mock.get_requests() == []


@pytest.mark.parametrize(
    "headers",
    [
        {"crit": ["exp-ext"], "exp-ext": 1},
        {"crit": ["b64"], "b64": True},
        {"crit": []},
        {"crit": "nonsense"},
    ],
    ids=["unknown-extension", "b64", "empty", "not-a-list"],
)
async def test_crit_extension_we_do_not_understand(headers: dict[str, Any]) -> None:
    ver = await verify(make_token(rsa_key(), headers=headers))
    assert ver.reason == "header_rejected"


@pytest.mark.parametrize(
    "kid",
    [
        "../../../../etc/passwd",
        "/dev/null",
        "..\\..\\windows\\win.ini",
        "' OR '1'='1' --",
        "k1'; DROP TABLE keys; --",
        "k1\x00",
        "https://attacker.example/key.pem",
    ],
)
async def test_kid_path_traversal_and_injection_is_just_an_unknown_key(
    kid: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jwks_file = tmp_path / "jwks.json"
    jwks_file.write_text(json.dumps(default_jwks()))
    opened: list[str] = []

    def spy(real: Any) -> Any:
        def wrapper(file: Any, *args: Any, **kwargs: Any) -> Any:
            opened.append(os.fspath(file) if not isinstance(file, int) else str(file))
            return real(file, *args, **kwargs)

        return wrapper

    monkeypatch.setattr(builtins, "open", spy(builtins.open))
    monkeypatch.setattr(io, "open", spy(io.open))
    monkeypatch.setattr(os, "open", spy(os.open))
    ver = await verify(make_token(attacker_key(), kid=kid), jwks=JwksCache(str(jwks_file)))
    assert ver.reason == "key_not_found"
    assert set(opened) <= {str(jwks_file)}


# ------------------------------------------------------- signature tampering


async def test_signature_stripped_two_segments() -> None:
    token = make_token(rsa_key()).rsplit(".", 1)[0]
    ver = await verify(token)
    assert ver.reason == "token_malformed"
    assert "this has 2" in ver.message


async def test_signature_stripped_empty_third_segment() -> None:
    token = make_token(rsa_key()).rsplit(".", 1)[0] + "."
    ver = await verify(token)
    assert ver.reason == "signature_invalid"
    assert "no signature" in ver.message


async def test_payload_tampered_after_signing() -> None:
    header, _payload, signature = make_token(rsa_key()).split(".")
    forged = b64json(default_claims(scope="read:users delete:everything"))
    ver = await verify(f"{header}.{forged}.{signature}")
    assert ver.reason == "signature_invalid"
    # The forged claims are shown for display only, never as verified.
    assert not ver.ok and ver.claims is not None


async def test_header_tampered_after_signing() -> None:
    _header, payload, signature = make_token(rsa_key()).split(".")
    forged = b64json({"alg": "RS256", "typ": "JWT", "kid": "k1", "x": 1})
    ver = await verify(f"{forged}.{payload}.{signature}")
    assert ver.reason == "signature_invalid"


async def test_token_signed_by_a_different_key_with_the_same_kid() -> None:
    ver = await verify(make_token(attacker_key(), kid="k1"))
    assert ver.reason == "signature_invalid"


# --------------------------------------------------------- encoding attacks


def _non_canonical_variants(token: str) -> dict[str, str]:
    header, payload, signature = token.split(".")
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # 256 bytes -> 342 chars: the last char carries 4 unused bits. Setting one
    # yields other text that decodes to the same bytes.
    last = alphabet.index(signature[-1])
    twin = signature[:-1] + alphabet[last ^ 1]
    assert twin != signature
    standard = signature.replace("-", "+").replace("_", "/")
    assert standard != signature
    return {
        "padding": f"{header}.{payload}.{signature}==",
        "padded-payload": f"{header}.{payload}{'=' * (-len(payload) % 4) or '=='}.{signature}",
        "standard-alphabet": f"{header}.{payload}.{standard}",
        "unused-bits": f"{header}.{payload}.{twin}",
        "whitespace": f"{header}.{payload[:10]} {payload[10:]}.{signature}",
        "line-break": f"{header}.{payload}.\n{signature}",
    }


@pytest.mark.parametrize(
    "variant",
    ["padding", "padded-payload", "standard-alphabet", "unused-bits", "whitespace", "line-break"],
)
async def test_non_canonical_base64(variant: str) -> None:
    token = _non_canonical_variants(make_token(rsa_key()))[variant]
    ver = await verify(token)
    assert ver.reason == "token_malformed", ver.message


@pytest.mark.parametrize(
    ("header", "payload", "message"),
    [
        (b64url(b"not json"), b64json(default_claims()), "the header is not valid JSON"),
        (b64json({"alg": "RS256"}), b64url(b"[1, 2]"), "the payload is not a JSON object"),
        (b64json("RS256"), b64json(default_claims()), "the header is not a JSON object"),
        (b64json({"alg": "RS256"}), b64url(b"\xff\xfe{}"), "the payload is not UTF-8"),
        (b64json({"alg": "RS256"}), b64url(b'{"exp": NaN}'), "the payload is not valid JSON"),
        (b64json({"alg": "RS256"}), "", "the payload is not valid JSON"),
    ],
    ids=["header-text", "payload-array", "header-string", "not-utf8", "nan", "empty-payload"],
)
async def test_non_json_header_or_payload(header: str, payload: str, message: str) -> None:
    token = sign_segments(rsa_key(), "RS256", header, payload)
    ver = await verify(token)
    assert ver.reason == "token_malformed"
    assert message in ver.message


async def test_duplicate_json_keys_parser_differential() -> None:
    # {"aud": "<ours>", "aud": "<other>"}: parsers disagree on which one wins.
    body = json.dumps(default_claims())[:-1] + ', "aud": "https://evil.example"}'
    token = sign_segments(
        rsa_key(), "RS256", b64json({"alg": "RS256", "kid": "k1"}), b64url(body.encode())
    )
    ver = await verify(token)
    assert ver.reason == "token_malformed"
    assert "repeats the key 'aud'" in ver.message


async def test_oversized_token_is_refused_before_any_work(httpx_mock: HTTPXMock) -> None:
    token = make_token(rsa_key(), padding="x" * 20000)
    ver = await verify(token, jwks=JwksCache(JWKS_URI))
    assert ver.reason == "token_too_large"
    assert ver.claims is None
    assert httpx_mock.get_requests() == []


# ------------------------------------------------------------- claim attacks


async def test_expired_token_accepted_only_within_leeway() -> None:
    token = make_token(rsa_key(), exp=NOW - 10)
    assert (await verify(token)).reason == "token_expired"
    assert (await verify(token, make_cred(leeway_seconds=5))).reason == "token_expired"
    assert (await verify(token, make_cred(leeway_seconds=10))).reason == "token_expired"
    assert (await verify(token, make_cred(leeway_seconds=11))).ok


@pytest.mark.parametrize(
    ("aud", "accepted"),
    [
        (["https://other.example", AUDIENCE], True),
        ([AUDIENCE], True),
        (["https://other.example", "https://another.example"], False),
        ([], False),
        ([AUDIENCE.upper()], False),
        ([AUDIENCE + "/"], False),
        ([AUDIENCE + ".evil.example"], False),
    ],
)
async def test_audience_array_must_contain_the_configured_audience(
    aud: list[str], accepted: bool
) -> None:
    ver = await verify(make_token(rsa_key(), aud=aud))
    assert ver.ok is accepted
    if not accepted:
        assert ver.reason == "audience_mismatch"


@pytest.mark.parametrize(
    "iss",
    [
        ISSUER.rstrip("/"),
        ISSUER + "/",
        ISSUER.upper(),
        "https://tenant.example.auth0.com.evil.example/",
        "http://tenant.example.auth0.com/",
        " " + ISSUER,
    ],
)
async def test_issuer_variations_including_trailing_slash_are_refused(iss: str) -> None:
    ver = await verify(make_token(rsa_key(), iss=iss))
    assert ver.reason == "issuer_mismatch"


async def test_issuer_as_list_to_confuse_comparison() -> None:
    ver = await verify(make_token(rsa_key(), iss=[ISSUER]))
    assert ver.reason == "claim_malformed"


async def test_huge_exp_that_is_not_finite() -> None:
    # 1e400 parses as infinity in Python's json; an "eternal" token must not pass.
    body = json.dumps(default_claims())[:-1]
    body = body.replace(f'"exp": {NOW + 3600}', '"exp": 1e400') + "}"
    token = sign_segments(
        rsa_key(), "RS256", b64json({"alg": "RS256", "kid": "k1"}), b64url(body.encode())
    )
    ver = await verify(token)
    assert ver.reason == "claim_malformed"


async def test_huge_claim_values_are_not_echoed_into_messages() -> None:
    # Every message can end up in a 401 body, a log line and the TUI.
    huge = "https://" + "a" * 12000 + ".example/"
    for ver in [
        await verify(make_token(rsa_key(), iss=huge)),
        await verify(make_token(rsa_key(), aud=[huge])),
        await verify(make_token(rsa_key(), kid=huge)),
    ]:
        assert not ver.ok
        assert len(ver.message) < 400 and len(ver.hint) < 400
        assert all(len(s.actual) < 400 for s in ver.steps)
