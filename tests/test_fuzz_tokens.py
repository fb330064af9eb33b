"""Properties of the token parser and verifier under hostile input.

``decode_unverified`` (rrdev/core/tokens.py) either decodes or raises ``TokenInputError``;
``verify_token`` (rrdev/core/verify.py) never raises at all: it returns a failed
``Verification`` with a stable reason code. Inputs: arbitrary text, dot-separated
base64url segments, and structurally valid JWTs correctly signed with a real RSA key
whose JSON header and claims hold anything JSON can (huge numbers, NaN and Infinity
spelled out, nesting, duplicate keys). And the positive side: a correctly signed
token with valid claims always verifies, whatever else it carries.
"""

from __future__ import annotations

import functools
import io
import json
import re
from typing import Any

from factories import (
    AUDIENCE,
    ISSUER,
    NOW,
    b64url,
    default_claims,
    ec_key,
    jwk_of,
    make_cred,
    make_jwks,
    rsa_key,
    sign_segments,
)
from fuzzing import examples
from hypothesis import assume, example, given
from hypothesis import strategies as st
from rich.console import Console

from rrdev.cli.render import render_token
from rrdev.clients.jwks import JwksCache
from rrdev.core.errors import TokenInputError
from rrdev.core.explain import IncomingRequest, JwksVerifier, decide
from rrdev.core.model import Profile, ProxyCredential
from rrdev.core.profile import parse_profile
from rrdev.core.records import Verification
from rrdev.core.redact import fingerprint
from rrdev.core.tokens import DEFAULT_MAX_TOKEN_BYTES, decode_unverified
from rrdev.core.verify import verify_token

REASON_CODE = re.compile(r"[a-z]+(_[a-z]+)+")
B64URL = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

# ------------------------------------------------------------------ JSON of every kind

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=12),
    st.sampled_from([10**400, -(10**400), 2**63, 2**64 + 1, 1e308, -0.0, 5e-324]),
)
json_values = st.recursive(
    json_scalars,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=6,
)

#: JSON text a serialiser would never write but a forger can: NaN and Infinity, numbers
#: past float range or past Python's int-parsing limit, lone surrogates, NUL, deep nesting.
RAW_VALUES = (
    *("NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1E+999", "-0", "0e0", "1e-400"),
    *(
        "1" + "0" * 400,
        "-" + "9" * 400,
        "1" + "0" * 5000,
        "9" * 4300,
        '"\\ud800"',
        '"\\udfff\\ud800"',
        '"\\u0000"',
    ),
    *("[" * 3000 + "]" * 3000, '{"a":' * 1500 + "1" + "}" * 1500, "[1,]", "01", '"\\x"'),
)
HEADER_NAMES = ("alg", "kid", "typ", "crit", "b64", "jku", "x5u", "jwk", "x5c", "cty", "zip")
CLAIM_NAMES = ("exp", "nbf", "iat", "iss", "aud", "sub", "scope", "client_id", "token_use")


def member_overrides(names: tuple[str, ...]) -> st.SearchStrategy[dict[str, Any]]:
    known = st.sampled_from(names)
    return st.dictionaries(st.one_of(known, known, st.text(max_size=6)), json_values, max_size=3)


def raw_members(names: tuple[str, ...]) -> st.SearchStrategy[list[tuple[str, str]]]:
    """Members written as raw JSON text; a name already present makes a duplicate key."""
    return st.lists(st.tuples(st.sampled_from(names), st.sampled_from(RAW_VALUES)), max_size=2)


def object_text(members: dict[str, Any], raw: list[tuple[str, str]], duplicate: bool = True) -> str:
    """``members`` serialised, then ``raw`` appended: replacing or (``duplicate``)
    repeating a member of the same name."""
    if not duplicate:
        members = {k: v for k, v in members.items() if k not in dict(raw)}
    parts = [f"{json.dumps(k)}:{json.dumps(v)}" for k, v in members.items()]
    parts += [f"{json.dumps(k)}:{text}" for k, text in raw]
    return "{" + ",".join(parts) + "}"


@st.composite
def signed_tokens(draw: st.DrawFn) -> str:
    """A JWT signed with the JWKS's own RSA key, whatever its header and claims say."""
    header = {"alg": "RS256", "kid": "k1", "typ": "JWT", **draw(member_overrides(HEADER_NAMES))}
    claims = {**default_claims(), **draw(member_overrides(CLAIM_NAMES))}
    head = object_text(header, draw(raw_members(HEADER_NAMES)), draw(st.booleans()))
    body = object_text(claims, draw(raw_members(CLAIM_NAMES)), draw(st.booleans()))
    return sign_segments(rsa_key(), "RS256", b64url(head.encode()), b64url(body.encode()))


any_text = st.text(max_size=120)
b64_segments = st.lists(st.text(B64URL + "=+/ \n", max_size=60), min_size=1, max_size=6).map(
    ".".join
)
b64_of_bytes = st.lists(st.binary(max_size=80).map(b64url), min_size=1, max_size=5).map(".".join)
b64_of_json = st.lists(
    st.one_of(json_values.map(lambda v: b64url(json.dumps(v).encode())), st.just("")),
    min_size=3,
    max_size=3,
).map(".".join)
tokens = st.one_of(any_text, b64_segments, b64_of_bytes, b64_of_json, signed_tokens())

#: Auth0 mode (aud) and Cognito mode (client_id + token_use) take different claim checks.
CREDENTIALS = (
    make_cred(),
    make_cred(audience=(), client_id="app-client", token_use="access", leeway_seconds=30),
)


def jwks() -> JwksCache:
    return JwksCache(make_jwks(jwk_of(rsa_key(), "k1", "RS256"), jwk_of(ec_key(), "e1", "ES256")))


def assert_rejection(ver: Verification, token: str) -> None:
    assert not ver.ok
    assert ver.reason is not None and REASON_CODE.fullmatch(ver.reason), ver.reason
    assert isinstance(ver.message, str) and ver.message
    assert [s.status for s in ver.steps].count("failed") >= 1
    if len(token) >= 16:  # what the 401 body and the logs show never holds the token
        assert token not in f"{ver.message} {ver.hint}"


# ------------------------------------------------------------------ never anything else

# Found by this file: a numeric date past float range raised OverflowError, in the
# verifier (claims.py) and in `rrdev token decode`'s rendering (render.py, humanize_delta).
HUGE_DATES = object_text(
    default_claims(),
    [("exp", "1" + "0" * 400), ("nbf", "-" + "9" * 400), ("iat", "1e308")],
    duplicate=False,
)
HUGE_DATES_TOKEN = sign_segments(
    rsa_key(), "RS256", b64url(b'{"alg":"RS256","kid":"k1"}'), b64url(HUGE_DATES.encode())
)


@examples(0.5)
@given(tokens)
@example("")
@example(".")
@example("..")
@example("Bearer x.y.z")
@example(HUGE_DATES_TOKEN)
def test_decode_unverified_decodes_or_says_what_is_wrong(token: str) -> None:
    try:
        decoded = decode_unverified(token)
    except TokenInputError as error:
        assert error.reason in ("token_malformed", "token_too_large")
        assert error.message
        return
    assert isinstance(decoded.header, dict) and isinstance(decoded.claims, dict)
    assert decoded.raw == token
    # What `rrdev token decode` prints for it: never a traceback either.
    shown = render_token(decoded.header, decoded.claims, fingerprint(token), now=NOW)
    Console(file=io.StringIO(), width=100).print(shown)


@examples(0.5)
@given(token=tokens, cred=st.sampled_from(CREDENTIALS))
@example(token=HUGE_DATES_TOKEN, cred=CREDENTIALS[0])
async def test_verify_token_only_ever_rejects(token: str, cred: ProxyCredential) -> None:
    ver = await verify_token(token, cred, jwks(), now=NOW)
    if ver.ok:  # the rare generated token that is entirely valid
        assert ver.claims is not None and ver.claims["iss"] == ISSUER
        return
    assert_rejection(ver, token)


@examples(0.25)
@given(value=st.one_of(st.text(max_size=40), st.builds("Bearer {}".format, tokens)))
async def test_any_authorization_header_gets_an_answer_not_an_error(value: str) -> None:
    profile = _profile()
    cred = profile.proxy_credential
    request = IncomingRequest("GET", "/api", "", (("Authorization", value),))
    expl = await decide(profile, request, JwksVerifier(cred, jwks()), now=NOW)
    assert expl.status in (200, 400, 401), expl
    assert REASON_CODE.fullmatch(expl.reason) or expl.reason == "allowed"


@functools.cache
def _profile() -> Profile:
    return parse_profile(_PROFILE, "fuzz.toml")


_PROFILE = f"""
[target]
name = "backend"
base_url = "http://127.0.0.1:9"

[proxy_credential]
jwks_uri = "http://127.0.0.1:9/jwks.json"
issuer = "{ISSUER}"
audience = "{AUDIENCE}"
"""


# ------------------------------------------------------------------ the positive side

finite_json = st.recursive(
    st.one_of(
        st.none(),
        st.booleans(),
        st.integers(),
        st.floats(allow_nan=False, allow_infinity=False),
        st.text(max_size=12),
    ),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3)
    ),
    max_leaves=5,
)
#: Prefixed, so no extra claim is one rrdev or an issuer gives a meaning to.
extra_claims = st.dictionaries(st.text(max_size=8).map("x-{}".format), finite_json, max_size=4)
#: Header members a verifier may check (typ) only with values real issuers use.
header_extras = st.fixed_dictionaries(
    {}, optional={"typ": st.sampled_from(["JWT", "at+jwt"]), "x-note": st.text(max_size=10)}
)


@examples(0.35)
@given(
    extra=extra_claims,
    lifetime=st.integers(1, 10 * 365 * 86400),
    issued_ago=st.one_of(st.none(), st.integers(0, 10**6)),
    audience=st.sampled_from([AUDIENCE, [AUDIENCE], ["https://other.example", AUDIENCE]]),
    signer=st.sampled_from([("RS256", "k1"), ("ES256", "e1")]),
    header_extra=header_extras,
)
async def test_a_correctly_signed_valid_token_always_verifies(
    extra: dict[str, Any],
    lifetime: int,
    issued_ago: int | None,
    audience: str | list[str],
    signer: tuple[str, str],
    header_extra: dict[str, str],
) -> None:
    claims = {**extra, **default_claims(aud=audience, exp=NOW + lifetime)}
    if issued_ago is not None:
        claims["nbf"] = claims["iat"] = NOW - issued_ago
    alg, kid = signer
    header = {**header_extra, "alg": alg, "kid": kid}
    key = rsa_key() if alg == "RS256" else ec_key()
    token = sign_segments(
        key, alg, b64url(json.dumps(header).encode()), b64url(json.dumps(claims).encode())
    )
    assume(len(token) <= DEFAULT_MAX_TOKEN_BYTES)
    ver = await verify_token(token, make_cred(algorithms=("RS256", "ES256")), jwks(), now=NOW)
    assert ver.ok, (ver.reason, ver.message)
    assert ver.claims == claims
