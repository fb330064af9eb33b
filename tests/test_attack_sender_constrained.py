"""Attack: replaying a sender-constrained token as a plain bearer token.

A token with a ``cnf`` claim is bound to a key (DPoP, RFC 9449: ``cnf.jkt``) or to a
client certificate (mutual TLS, RFC 8705: ``cnf.x5t#S256``): only a caller who proves
possession of it may use the token. rrdev checks no such proof, so a stolen bound token
sent as ``Authorization: Bearer`` must not be forwarded: 401
``token_sender_constrained``, the backend receives nothing. A profile may opt in with
``accept_sender_constrained_as_bearer = true`` (the binding is then knowingly
unchecked), and the DPoP scheme itself is not taken for Bearer.

Over real loopback sockets: a JWKS server, ``rrdev up`` (uvicorn), an echo backend.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest
from factories import b64url, make_token, rsa_key
from keys_support import (
    PATH,
    assert_forwarded,
    assert_refused,
    good_jwk,
    live_claims,
    proxy_with_jwks,
    send,
)
from proxy_support import Backend, raw_request, wait_for

pytestmark = pytest.mark.usefixtures("keyset")

THUMBPRINT = b64url(hashlib.sha256(b"the caller's DPoP key").digest())
BINDINGS: list[tuple[Any, str]] = [
    ({"jkt": THUMBPRINT}, "DPoP-bound: cnf.jkt, RFC 9449"),
    ({"x5t#S256": THUMBPRINT}, "bound to a client certificate: cnf.x5t#S256, mutual TLS"),
    ({"jwk": {"kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"}}, "cnf.jwk, RFC 7800"),
    ({"future-member": 1}, "cnf with members 'future-member'"),
    ("not-an-object", 'cnf is a string ("not-an-object")'),
]


def bound_token(cnf: Any) -> str:
    return make_token(rsa_key(), live_claims(cnf=cnf))


@pytest.mark.parametrize(("cnf", "described"), BINDINGS, ids=[d[:12] for _c, d in BINDINGS])
async def test_a_bound_token_replayed_as_bearer_is_refused(
    tmp_path: Path, backend: Backend, cnf: Any, described: str
) -> None:
    async with proxy_with_jwks(tmp_path, backend, good_jwk()) as (proxy, _jwks):
        body = assert_refused(
            await send(proxy, bound_token(cnf)), "token_sender_constrained", backend
        )
    assert body["message"].startswith("the token is sender-constrained (")
    assert described in body["message"]
    assert "accept_sender_constrained_as_bearer = true" in body["hint"]


async def test_a_profile_may_accept_bound_tokens_as_bearer(
    tmp_path: Path, backend: Backend
) -> None:
    opt_in = "accept_sender_constrained_as_bearer = true"
    async with proxy_with_jwks(tmp_path, backend, good_jwk(), proxy_credential=opt_in) as (
        proxy,
        _jwks,
    ):
        assert_forwarded(await send(proxy, bound_token({"jkt": THUMBPRINT})), backend)
        await wait_for(lambda: len(proxy.records) == 1)
    verification = proxy.records[0].explanation.verification
    assert verification is not None
    step = next(s for s in verification.steps if s.name == "sender_constraint")
    assert step.status == "passed" and "not checked" in step.detail


async def test_the_dpop_scheme_is_not_bearer_even_when_bound_tokens_are_accepted(
    tmp_path: Path, backend: Backend
) -> None:
    opt_in = "accept_sender_constrained_as_bearer = true"
    token = bound_token({"jkt": THUMBPRINT})
    async with proxy_with_jwks(tmp_path, backend, good_jwk(), proxy_credential=opt_in) as (
        proxy,
        _jwks,
    ):
        headers = [("Authorization", f"DPoP {token}"), ("DPoP", "a-proof-rrdev-cannot-check")]
        answer = await raw_request(proxy.port, "GET", PATH, headers)
        body = assert_refused(answer, "token_malformed", backend)
    assert "scheme: DPoP" in body["message"]
