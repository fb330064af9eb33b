"""Attack: correctly signed claims of the wrong JSON type.

A token the issuer signed can still carry ``"exp": true`` (a Python ``bool`` is an
``int``, so ``true`` would compare as 1), a string ``iat``, a numeric ``sub`` that a
backend later compares as text, an ``aud`` array with a non-string in it, or an
integer too large to compare with the clock (which used to crash verification).
Auth0's own middleware refuses all of these; rrdev answers 401 ``claim_malformed``
naming the claim, and the backend receives nothing.

Over real loopback sockets: a JWKS server, ``rrdev up`` (uvicorn), an echo backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from factories import NOW, make_token, rsa_key
from keys_support import (
    assert_forwarded,
    assert_refused,
    good_jwk,
    live_claims,
    proxy_with_jwks,
    send,
)
from proxy_support import AUDIENCE, Backend, wait_for

pytestmark = pytest.mark.usefixtures("keyset")

HUGE = 10**400  # valid JSON, larger than any float

CASES: list[tuple[str, Any]] = [
    ("exp", True),
    ("exp", "2099-01-01T00:00:00Z"),
    ("exp", HUGE),
    ("exp", [NOW + 3600]),
    ("nbf", True),
    ("nbf", HUGE),
    ("iat", "1800000000"),
    ("iat", False),
    ("iat", None),
    ("iat", HUGE),
    ("iss", 42),
    ("sub", 12345),
    ("sub", True),
    ("sub", {"id": "u1"}),
    ("aud", [AUDIENCE, 7]),
    ("aud", {"aud": AUDIENCE}),
    ("aud", True),
]


@pytest.mark.parametrize(("claim", "value"), CASES, ids=[f"{c}={str(v)[:12]}" for c, v in CASES])
async def test_a_claim_of_the_wrong_type_is_refused(
    tmp_path: Path, backend: Backend, claim: str, value: Any
) -> None:
    token = make_token(rsa_key(), live_claims(**{claim: value}))
    async with proxy_with_jwks(tmp_path, backend, good_jwk()) as (proxy, _jwks):
        body = assert_refused(await send(proxy, token), "claim_malformed", backend)
    assert body["message"].startswith(f"the {claim} claim is ")
    assert f"the issuer must write {claim} as a JSON" in body["hint"]


async def test_sound_types_and_a_future_iat_are_forwarded(tmp_path: Path, backend: Backend) -> None:
    # Control, and the documented choice: a future iat is clock skew, not a refusal.
    claims = live_claims(aud=["https://other.example", AUDIENCE])
    claims |= {"exp": claims["exp"] + 0.5, "iat": claims["iat"] + 3600}
    async with proxy_with_jwks(tmp_path, backend, good_jwk()) as (proxy, _jwks):
        assert_forwarded(await send(proxy, make_token(rsa_key(), claims)), backend)
        await wait_for(lambda: len(proxy.records) == 1)
    verification = proxy.records[0].explanation.verification
    assert verification is not None
    issued = next(s for s in verification.steps if s.name == "issued_at")
    assert issued.status == "passed" and "in the future" in issued.detail
