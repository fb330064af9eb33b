"""Weak JWKS keys, claim types, sender-constrained tokens: table-driven unit tests of
``rrdev.core.key_checks``/``jwk``, ``verify_token`` and ``rrdev explain``.

Keys are real (a real 1024-bit RSA key, a real P-384 key); tokens are really signed.
The loopback attack tests are tests/test_attack_weak_keys.py,
test_attack_claim_types.py and test_attack_sender_constrained.py.
"""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric import ed25519, x25519
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from factories import (
    AUDIENCE,
    ISSUER,
    JWKS_URI,
    NOW,
    OMIT,
    FakeClock,
    b64url,
    default_jwks,
    ec_key,
    jwk_of,
    make_cred,
    make_jwks,
    make_token,
    rsa_key,
    verify,
)
from jwt import PyJWK
from keys_support import p384_key, weak_rsa_key
from pytest_httpx import HTTPXMock
from typer.testing import CliRunner

from rrdev.cli.app import app
from rrdev.clients.jwks import JwksCache
from rrdev.core.errors import KeyNotFound, KeyUnusable
from rrdev.core.jwk import JwksStatus, read_keys
from rrdev.core.verify import verify_token


def step(ver: Any, name: str) -> Any:
    return next(s for s in ver.steps if s.name == name)


def okp_jwk(public: Any, crv: str, kid: str, **extra: Any) -> dict[str, Any]:
    raw = public.public_bytes(Encoding.Raw, PublicFormat.Raw)
    x = base64.urlsafe_b64encode(raw).rstrip(b"=").decode()
    return {"kty": "OKP", "crv": crv, "x": x, "kid": kid, "use": "sig", **extra}


def ed25519_public() -> Any:
    return ed25519.Ed25519PrivateKey.generate().public_key()


# ------------------------------------------------------------------ which keys are ignored


def modulus() -> str:
    return jwk_of(rsa_key())["n"]


IGNORED: list[tuple[str, Any, str]] = [
    # (case, JWK factory, the reason's text)
    (
        "rsa-1024",
        lambda: jwk_of(weak_rsa_key(), "w"),
        "RSA key 'w' is 1024 bits; RFC 7518 requires at least 2048",
    ),
    (
        "rsa-exponent-1",
        lambda: {"kty": "RSA", "kid": "w", "n": modulus(), "e": "AQ"},
        "RSA key 'w' has public exponent 1; it must be odd and at least 3",
    ),
    (
        "rsa-even-exponent",
        lambda: {"kty": "RSA", "kid": "w", "n": modulus(), "e": "AQAA"},
        "RSA key 'w' has public exponent 65536",
    ),
    (
        "rsa-no-modulus",
        lambda: {"kty": "RSA", "kid": "w", "e": "AQAB"},
        "RSA key 'w' has no valid modulus (n) or exponent (e)",
    ),
    (
        "rsa-declared-es256",
        lambda: jwk_of(rsa_key(), "w", "ES256"),
        "RSA key 'w' is declared for ES256, which needs an EC key",
    ),
    (
        "rsa-declared-for-encryption",
        lambda: jwk_of(rsa_key(), "w", "RSA-OAEP"),
        "RSA key 'w' is declared for 'RSA-OAEP', not a signature algorithm rrdev verifies",
    ),
    (
        "rsa-declared-hs256",
        lambda: jwk_of(rsa_key(), "w", "HS256"),
        "declared for 'HS256', not a signature algorithm",
    ),
    (
        "p384-declared-es256",
        lambda: jwk_of(p384_key(), "w", "ES256"),
        "EC key 'w' is on curve P-384 but declared for ES256, which needs P-256",
    ),
    (
        "p256-declared-es512",
        lambda: jwk_of(ec_key(), "w", "ES512"),
        "EC key 'w' is on curve P-256 but declared for ES512, which needs P-521",
    ),
    (
        "ec-unknown-curve",
        lambda: jwk_of(ec_key(), "w", None, crv="P-192"),
        "EC key 'w' is on 'P-192'; rrdev verifies EC signatures on P-256, P-384, P-521",
    ),
    (
        "ec-no-curve",
        lambda: {k: v for k, v in jwk_of(ec_key(), "w", None).items() if k != "crv"},
        "EC key 'w' is on no curve (crv)",
    ),
    (
        "ec-point-off-the-curve",
        lambda: jwk_of(ec_key(), "w", "ES256", y=b64url(b"\x01" * 32)),
        "EC key 'w' cannot be loaded",
    ),
    (
        "okp-x25519",
        lambda: okp_jwk(x25519.X25519PrivateKey.generate().public_key(), "X25519", "w"),
        "OKP key 'w' is on 'X25519', a key-agreement curve",
    ),
    (
        "okp-declared-es256",
        lambda: okp_jwk(ed25519_public(), "Ed25519", "w", alg="ES256"),
        "OKP key 'w' is declared for ES256, which needs an EC key",
    ),
    (
        "alg-not-a-string",
        lambda: jwk_of(rsa_key(), "w", ["RS256"]),
        "RSA key 'w' is declared for ['RS256']",
    ),
]

USABLE: list[tuple[str, Any]] = [
    ("rsa-2048-no-alg", lambda: jwk_of(rsa_key(), "k", None)),
    ("rsa-2048-ps256", lambda: jwk_of(rsa_key(), "k", "PS256")),
    ("p256-es256", lambda: jwk_of(ec_key(), "k", "ES256")),
    ("p384-no-alg", lambda: jwk_of(p384_key(), "k", None)),
    ("p384-es384", lambda: jwk_of(p384_key(), "k", "ES384")),
    ("ed25519-eddsa", lambda: okp_jwk(ed25519_public(), "Ed25519", "k", alg="EdDSA")),
]


@pytest.mark.parametrize(("case", "make", "why"), IGNORED, ids=[c for c, _m, _w in IGNORED])
def test_weak_or_contradictory_keys_are_ignored_with_a_reason(
    case: str, make: Any, why: str
) -> None:
    usable, ignored = read_keys(make_jwks(make(), jwk_of(rsa_key(), "k1")))
    assert [k["kid"] for k in usable] == ["k1"], case
    (key,) = ignored
    assert key.kid == "w"
    assert why in key.why


@pytest.mark.parametrize(("case", "make"), USABLE, ids=[c for c, _m in USABLE])
def test_sound_keys_stay_usable(case: str, make: Any) -> None:
    usable, ignored = read_keys(make_jwks(make()))
    assert ignored == () and len(usable) == 1, case


def test_entries_that_are_no_signing_keys_are_dropped_silently() -> None:
    entries = [
        {"kty": "oct", "kid": "h", "k": "c2VjcmV0"},
        {"kty": ["RSA"], "kid": "listed"},  # unhashable: one entry ignored, not the JWKS
        jwk_of(weak_rsa_key(), "enc", use="enc"),
        "not an object",
    ]
    assert read_keys({"keys": entries}) == ((), ())


# ------------------------------------------------------------------ tokens naming them


async def test_a_token_naming_a_1024_bit_key_is_key_unusable() -> None:
    jwks = make_jwks(jwk_of(weak_rsa_key(), "weak"), jwk_of(rsa_key(), "k1"))
    ver = await verify(make_token(weak_rsa_key(), kid="weak"), jwks=jwks)
    assert ver.reason == "key_unusable"
    assert ver.message == (
        "RSA key 'weak' is 1024 bits; RFC 7518 requires at least 2048; "
        "rrdev ignored it when it read the JWKS"
    )
    assert "rotate the signing key" in ver.hint
    key = step(ver, "key")
    assert (key.status, key.expected, key.actual) == (
        "failed",
        "kid 'weak'",
        "ignored in <inline JWKS>",
    )
    assert step(ver, "signature").status == "skipped"


async def test_a_p384_key_served_for_es256_is_key_unusable() -> None:
    jwks = make_jwks(jwk_of(p384_key(), "ec", "ES256"), jwk_of(p384_key(), "ec2", None))
    cred = make_cred(algorithms=("ES256", "ES384"))
    ver = await verify(make_token(p384_key(), kid="ec", alg="ES256"), cred, jwks)
    assert ver.reason == "key_unusable"
    assert "curve P-384 but declared for ES256, which needs P-256" in ver.message
    # Without a declared alg the key is an ES384 key: an ES256 token finds no key that
    # fits (key_not_found, as before), an ES384 one verifies.
    es256 = await verify(make_token(p384_key(), kid="ec2", alg="ES256"), cred, jwks)
    assert es256.reason == "key_not_found"
    assert "its curve P-384 does not fit ES256" in es256.message
    assert (await verify(make_token(p384_key(), kid="ec2", alg="ES384"), cred, jwks)).ok


async def test_a_token_without_kid_and_only_ignored_keys_is_key_unusable() -> None:
    jwks = make_jwks(jwk_of(weak_rsa_key(), None, None))
    ver = await verify(make_token(weak_rsa_key(), kid=None), jwks=jwks)
    assert ver.reason == "key_unusable"
    assert ver.message.startswith("RSA key (no kid) is 1024 bits")


async def test_a_sound_key_row_names_the_ignored_keys() -> None:
    jwks = make_jwks(jwk_of(weak_rsa_key(), "weak"), jwk_of(rsa_key(), "k1"))
    ver = await verify(make_token(rsa_key()), jwks=jwks)
    assert ver.ok, ver.message
    assert step(ver, "key").detail == (
        "the JWKS also has keys rrdev ignores: RSA key 'weak' is 1024 bits; "
        "RFC 7518 requires at least 2048"
    )
    assert step(verify_plain := await verify(make_token(rsa_key())), "key").detail == ""
    assert verify_plain.ok


async def test_get_key_raises_key_unusable_a_key_not_found() -> None:
    cache = JwksCache(make_jwks(jwk_of(weak_rsa_key(), "weak")))
    with pytest.raises(KeyUnusable) as caught:
        await cache.get_key("weak", "RS256")
    assert isinstance(caught.value, KeyNotFound) and caught.value.reason == "key_unusable"


async def test_an_ignored_kid_does_not_refetch_the_jwks(httpx_mock: HTTPXMock) -> None:
    # An unknown kid refetches (key rotation); a known but ignored one must not, or
    # every such token would hit the issuer.
    httpx_mock.add_response(url=JWKS_URI, json=make_jwks(jwk_of(weak_rsa_key(), "weak")))
    cache = JwksCache(JWKS_URI, clock=FakeClock(), refetch_interval=0)
    for _ in range(3):
        assert (await verify(make_token(weak_rsa_key(), kid="weak"), jwks=cache)).reason == (
            "key_unusable"
        )
    assert len(httpx_mock.get_requests()) == 1


async def test_each_ignored_key_is_reported_once_and_in_the_status(httpx_mock: HTTPXMock) -> None:
    document = make_jwks(jwk_of(weak_rsa_key(), "weak"), jwk_of(rsa_key(), "k1"))
    httpx_mock.add_response(url=JWKS_URI, json=document, is_reusable=True)
    events: list[tuple[str, str]] = []
    clock = FakeClock()
    cache = JwksCache(
        JWKS_URI, clock=clock, ttl=10, refetch_interval=1, on_event=lambda *e: events.append(e)
    )
    assert (await verify(make_token(rsa_key()), jwks=cache)).ok
    clock.advance(11)
    assert (await verify(make_token(rsa_key()), jwks=cache)).ok
    assert len(httpx_mock.get_requests()) == 2
    assert events == [
        (
            "jwks_key_ignored",
            f"{JWKS_URI}: RSA key 'weak' is 1024 bits; RFC 7518 requires at least 2048; "
            "tokens signed with it get 401 key_unusable",
        )
    ]
    status = cache.status()
    assert status.kids == ("k1",) and status.key_count == 1
    assert status.ignored == ("RSA key 'weak' is 1024 bits; RFC 7518 requires at least 2048",)


async def test_a_broken_event_listener_does_not_break_key_fetching() -> None:
    def broken(kind: str, message: str) -> None:
        raise RuntimeError("listener bug")

    cache = JwksCache(
        make_jwks(jwk_of(weak_rsa_key(), "weak"), jwk_of(rsa_key(), "k1")), on_event=broken
    )
    assert (await verify(make_token(rsa_key()), jwks=cache)).ok


class HandsOutAnyKey:
    """A key source that skips the JWKS rules: the second line must still hold."""

    source = "<test>"
    refetch_interval = 30.0

    def __init__(self, key: PyJWK) -> None:
        self.key = key

    async def get_key(self, kid: str | None, alg: str) -> PyJWK:
        return self.key

    def status(self) -> JwksStatus:
        return JwksStatus(self.source, 1, ("weak",), 0.0, None)

    def staleness(self) -> None:
        return None


async def test_pyjws_also_refuses_a_short_rsa_key_it_is_handed() -> None:
    key = PyJWK(jwk_of(weak_rsa_key(), "weak"), algorithm="RS256")
    token = make_token(weak_rsa_key(), kid="weak")
    ver = await verify_token(token, make_cred(), HandsOutAnyKey(key), now=NOW)
    assert ver.reason == "signature_invalid"
    assert "could not be checked" in ver.message and "1024 bits" in ver.message


# ------------------------------------------------------------------ claim types


MALFORMED: list[tuple[str, Any, str, str]] = [
    # (claim, value, failing step, message)
    ("exp", True, "expiry", "the exp claim is a boolean (true), not a number of seconds"),
    ("exp", False, "expiry", "the exp claim is a boolean (false)"),
    ("exp", "1800003600", "expiry", 'the exp claim is a string ("1800003600")'),
    ("exp", None, "expiry", "the exp claim is null"),
    ("exp", [NOW + 60], "expiry", "the exp claim is an array"),
    ("exp", 10**400, "expiry", "the exp claim is a number out of range"),
    ("nbf", True, "not_before", "the nbf claim is a boolean (true)"),
    ("nbf", "now", "not_before", 'the nbf claim is a string ("now")'),
    ("nbf", -(10**400), "not_before", "the nbf claim is a number out of range"),
    ("iat", "1799999940", "issued_at", 'the iat claim is a string ("1799999940")'),
    ("iat", True, "issued_at", "the iat claim is a boolean (true)"),
    ("iat", None, "issued_at", "the iat claim is null"),
    ("iat", {"t": 1}, "issued_at", "the iat claim is an object"),
    ("iat", 10**400, "issued_at", "the iat claim is a number out of range"),
    ("iss", 42, "issuer", "the iss claim is a number (42), not a string"),
    ("iss", [ISSUER], "issuer", "the iss claim is an array"),
    ("iss", None, "issuer", "the iss claim is null, not a string"),
    ("sub", 12345, "subject", "the sub claim is a number (12345), not a string"),
    ("sub", True, "subject", "the sub claim is a boolean (true), not a string"),
    ("sub", ["a"], "subject", 'the sub claim is an array (["a"]), not a string'),
    ("sub", None, "subject", "the sub claim is null, not a string"),
    ("aud", 123, "audience", "the aud claim is a number (123), not a string or an array"),
    ("aud", [AUDIENCE, 7], "audience", "the aud claim is an array"),
    ("aud", [True], "audience", "the aud claim is an array ([true])"),
    ("aud", {"a": AUDIENCE}, "audience", "the aud claim is an object"),
    ("aud", None, "audience", "the aud claim is null"),
]


@pytest.mark.parametrize(
    ("claim", "value", "failing", "message"),
    MALFORMED,
    ids=[f"{c}={json.dumps(v)[:14]}" for c, v, _s, _m in MALFORMED],
)
async def test_a_claim_of_the_wrong_type_is_claim_malformed(
    claim: str, value: Any, failing: str, message: str
) -> None:
    ver = await verify(make_token(rsa_key(), **{claim: value}))
    assert ver.reason == "claim_malformed"
    assert ver.message.startswith(message), ver.message
    assert step(ver, failing).status == "failed"
    assert f"write {claim} as a JSON" in ver.hint
    assert len(ver.message) < 200  # token values are clipped before they reach a 401


WELL_TYPED: list[dict[str, Any]] = [
    {"exp": NOW + 0.5, "iat": NOW - 0.25, "nbf": NOW - 1.5},
    {"iat": OMIT, "sub": OMIT},
    {"aud": ["https://other.example", AUDIENCE]},
    {"sub": ""},
]


@pytest.mark.parametrize("claims", WELL_TYPED, ids=lambda c: ",".join(c))
async def test_well_typed_claims_pass(claims: dict[str, Any]) -> None:
    ver = await verify(make_token(rsa_key(), **claims))
    assert ver.ok, ver.message
    assert step(ver, "issued_at").status == step(ver, "subject").status == "passed"


@pytest.mark.parametrize(
    ("iat", "leeway", "noted"),
    [(NOW + 3600, 0, True), (NOW + 5, 0, True), (NOW + 5, 10, False), (NOW - 60, 0, False)],
)
async def test_a_future_iat_is_accepted_and_noted(iat: int, leeway: int, noted: bool) -> None:
    ver = await verify(make_token(rsa_key(), iat=iat), make_cred(leeway_seconds=leeway))
    assert ver.ok, ver.message
    detail = step(ver, "issued_at").detail
    assert ("in the future" in detail) is noted
    assert ("accepted, since exp and nbf bound the token's validity" in detail) is noted


# ------------------------------------------------------------------ sender-constrained


CNF: list[tuple[Any, str]] = [
    ({"jkt": "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"}, "DPoP-bound: cnf.jkt, RFC 9449"),
    ({"x5t#S256": "bwcK0esc3ACC3DB2Y5_lESsXE8o9ltc05O89jdN-dg2"}, "mutual TLS, RFC 8705"),
    ({"jwk": {"kty": "OKP"}}, "cnf.jwk, RFC 7800"),
    ({"kid": "pop-1"}, "cnf.kid, RFC 7800"),
    ({}, "cnf with members "),
    (None, "cnf is null"),
    ("jkt", 'cnf is a string ("jkt")'),
]


@pytest.mark.parametrize(("cnf", "kind"), CNF, ids=[k[:16] for _c, k in CNF])
async def test_a_cnf_token_is_refused_as_bearer(cnf: Any, kind: str) -> None:
    ver = await verify(make_token(rsa_key(), cnf=cnf))
    assert ver.reason == "token_sender_constrained"
    assert ver.message.startswith("the token is sender-constrained (")
    assert kind in ver.message
    assert "accept_sender_constrained_as_bearer = true" in ver.hint
    bound = step(ver, "sender_constraint")
    assert bound.status == "failed" and bound.expected == "no cnf claim (a plain bearer token)"


@pytest.mark.parametrize(("cnf", "kind"), CNF, ids=[k[:16] for _c, k in CNF])
async def test_a_cnf_token_passes_when_the_profile_opts_in(cnf: Any, kind: str) -> None:
    cred = make_cred(accept_sender_constrained_as_bearer=True)
    ver = await verify(make_token(rsa_key(), cnf=cnf), cred)
    assert ver.ok, ver.message
    bound = step(ver, "sender_constraint")
    assert bound.status == "passed" and kind in bound.actual
    assert "not checked" in bound.detail


async def test_a_plain_token_passes_the_sender_constraint_step() -> None:
    ver = await verify(make_token(rsa_key()))
    assert step(ver, "sender_constraint").actual == "(absent)"


# ------------------------------------------------------------------ rrdev explain


@pytest.fixture
def explain_jwks(tmp_path: Path) -> str:
    path = tmp_path / "jwks.json"
    entries = [jwk_of(weak_rsa_key(), "weak"), jwk_of(rsa_key(), "k1")]
    path.write_text(json.dumps(make_jwks(*entries)))
    return str(path)


@pytest.fixture
def profile(tmp_path: Path) -> str:
    path = tmp_path / "rrdev.toml"
    path.write_text(
        f'[target]\nbase_url = "http://127.0.0.1:9"\n\n[proxy_credential]\n'
        f'jwks_uri = "{JWKS_URI}"\nissuer = "{ISSUER}"\naudience = "{AUDIENCE}"\n'
    )
    return str(path)


EXPLAINED: list[tuple[str, Any, str, str]] = [
    # (case, token factory, reason, failing checklist row)
    ("weak key", lambda: make_token(weak_rsa_key(), kid="weak"), "key_unusable", "key"),
    ("string iat", lambda: make_token(rsa_key(), iat="yesterday"), "claim_malformed", "issued_at"),
    ("numeric sub", lambda: make_token(rsa_key(), sub=7), "claim_malformed", "subject"),
    (
        "dpop-bound",
        lambda: make_token(rsa_key(), cnf={"jkt": "x"}),
        "token_sender_constrained",
        "sender_constraint",
    ),
]


@pytest.mark.parametrize(
    ("case", "token", "reason", "row"), EXPLAINED, ids=[c for c, *_ in EXPLAINED]
)
def test_explain_shows_each_check_and_a_401(
    explain_jwks: str,
    profile: str,
    monkeypatch: pytest.MonkeyPatch,
    case: str,
    token: Any,
    reason: str,
    row: str,
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "300")
    argv = ["explain", token(), "-p", profile, "--jwks", explain_jwks, "--at", str(NOW)]
    as_json = CliRunner().invoke(app, [*argv, "--json"])
    assert as_json.exit_code == 1, as_json.output
    out = json.loads(as_json.stdout)
    assert (out["status"], out["reason"]) == (401, reason), case
    assert out["www_authenticate"].startswith('Bearer realm="rrdev", error="invalid_token"')
    rows = {c["name"]: c["status"] for c in out["checks"]}
    assert rows[row] == "failed"
    assert {"issued_at", "subject", "sender_constraint"} <= set(rows)
    shown = CliRunner().invoke(app, argv)
    assert f"401 {reason}" in shown.stdout
    assert re.search(rf"^✗\s+{row}\s", shown.stdout, re.MULTILINE), shown.stdout


def test_explain_key_row_says_why_a_key_is_ignored(
    explain_jwks: str, profile: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "300")
    token = make_token(weak_rsa_key(), kid="weak")
    shown = CliRunner().invoke(
        app, ["explain", token, "-p", profile, "--jwks", explain_jwks, "--at", str(NOW)]
    )
    text = " ".join(shown.stdout.split())
    assert re.search(r"✗\s+key\s+ignored in ", text), text
    assert "RSA key 'weak' is 1024 bits; RFC 7518 requires at least 2048" in text
    ok = CliRunner().invoke(
        app,
        ["explain", make_token(rsa_key()), "-p", profile, "--jwks", explain_jwks, "--at", str(NOW)],
    )
    assert "the JWKS also has keys rrdev ignores: RSA key 'weak' is 1024 bits" in " ".join(
        ok.stdout.split()
    )


def test_default_jwks_has_no_ignored_keys() -> None:
    assert read_keys(default_jwks())[1] == ()
