"""The signature step checks what ``PyJWS.decode_complete`` checks, on the segments
rrdev already decoded (rrdev.core.verify._signature_matches): PyJWT's own second
decoding was the larger part of a cold verification and of every forged-token refusal.
A differential property holds it to PyJWT's verdict on real keys and mutated tokens,
and the second lines (the profile's algorithms, the key's own algorithm, short keys)
are each refused."""

from __future__ import annotations

import jwt as pyjwt
import pytest
from factories import ec_key, jwk_of, rsa_key
from hypothesis import given, settings
from hypothesis import strategies as st
from jwt import PyJWK, PyJWS
from jwt.exceptions import InvalidAlgorithmError, InvalidKeyError, PyJWTError
from keys_support import weak_rsa_key

from rrdev.core.tokens import decode_unverified
from rrdev.core.verify import _signature_matches

ALLOWED = ("RS256", "PS256", "ES256")
JWS = PyJWS(algorithms=list(ALLOWED), options={"enforce_minimum_key_length": True})


def signed(alg: str, claims: dict[str, object] | None = None) -> tuple[str, PyJWK]:
    key = ec_key() if alg.startswith("ES") else rsa_key()
    token = pyjwt.encode(claims or {"sub": "a"}, key, algorithm=alg, headers={"kid": "k1"})
    return token, PyJWK(jwk_of(key, alg=alg))


def pyjwt_says(token: str, key: PyJWK) -> bool:
    try:
        JWS.decode_complete(token, key=key, algorithms=list(ALLOWED))
    except PyJWTError:
        return False
    return True


@pytest.mark.parametrize("alg", ALLOWED)
def test_a_good_signature_matches_and_a_changed_one_does_not(alg: str) -> None:
    token, key = signed(alg)
    assert _signature_matches(decode_unverified(token), key, alg, ALLOWED)
    head, _payload, signature = token.split(".")
    other, _ = signed(alg, {"sub": "b"})
    forged = f"{head}.{other.split('.')[1]}.{signature}"
    assert not _signature_matches(decode_unverified(forged), key, alg, ALLOWED)


@settings(max_examples=150, deadline=None)
@given(
    alg=st.sampled_from(ALLOWED),
    where=st.sampled_from(["header", "payload", "signature"]),
    position=st.integers(min_value=0, max_value=10_000),
    char=st.sampled_from("AQgw_-0z"),
)
def test_the_verdict_is_pyjwts_on_every_changed_character(
    alg: str, where: str, position: int, char: str
) -> None:
    token, key = signed(alg)
    parts = token.split(".")
    index = ["header", "payload", "signature"].index(where)
    segment = parts[index]
    at = position % len(segment)
    parts[index] = segment[:at] + char + segment[at + 1 :]
    changed = ".".join(parts)
    try:
        decoded = decode_unverified(changed)
    except Exception:
        return  # not canonical base64url or not JSON: refused before any signature
    if decoded.header.get("alg") != alg:
        return  # the header step refuses another alg before this one runs
    assert _signature_matches(decoded, key, alg, ALLOWED) == pyjwt_says(changed, key)


def test_an_algorithm_outside_the_profile_is_refused_even_with_a_good_signature() -> None:
    token, key = signed("PS256")
    with pytest.raises(InvalidAlgorithmError):
        _signature_matches(decode_unverified(token), key, "PS256", ("RS256",))


def test_the_key_decides_the_algorithm_not_the_token() -> None:
    token, _ = signed("PS256")
    rs256_key = PyJWK(jwk_of(rsa_key(), alg="RS256"))
    with pytest.raises(InvalidAlgorithmError):
        _signature_matches(decode_unverified(token), rs256_key, "PS256", ALLOWED)


def test_hmac_is_never_used_even_when_the_profile_lists_it() -> None:
    secret = b"s" * 64
    token = pyjwt.encode({"sub": "a"}, secret, algorithm="HS256")
    key = PyJWK({"kty": "oct", "k": pyjwt.utils.base64url_encode(secret).decode(), "alg": "HS256"})
    with pytest.raises(InvalidAlgorithmError):
        _signature_matches(decode_unverified(token), key, "HS256", ("HS256",))


@pytest.mark.filterwarnings("ignore:The RSA key is 1024 bits")
def test_a_short_key_is_refused_before_its_signature_is_checked() -> None:
    weak = weak_rsa_key()
    token = pyjwt.encode({"sub": "a"}, weak, algorithm="RS256")
    key = PyJWK(jwk_of(weak, alg="RS256"))
    with pytest.raises(InvalidKeyError, match="1024 bits"):
        _signature_matches(decode_unverified(token), key, "RS256", ("RS256",))
