"""Attack: forged, misdirected, stale or replayed private_key_jwt client assertions.

The local issuer authenticates a client configured with a public key (or a JWKS) by a
signed ``client_assertion`` (RFC 7523). Over real loopback sockets, each forgery gets a
401 ``invalid_client`` and no token is issued (the issuer's event log shows
``token_refused``, never ``token_issued``); the assertion is never echoed or logged.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import pytest_asyncio
from cryptography.hazmat.primitives import serialization
from factories import ec_key, hmac_token, jwk_of, make_jwks, rsa_key

from rrdev.core.keyset import Keyset
from rrdev.core.model import IssuerClient, IssuerConfig, Secret
from rrdev.servers.issuer.app import IssuerApp
from rrdev.servers.runner import ProxyServer

pytestmark = pytest.mark.usefixtures("keyset")

ISSUER = "https://rrdev.local/"
AUD = "https://api.myapp.com"
ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
SECRET = "plain-Secret-9Rt"


def public_pem(key: Any) -> bytes:
    return key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@dataclass
class Issuer:
    url: str
    events: list[tuple[str, str]] = field(default_factory=list)

    @property
    def token_url(self) -> str:
        return self.url + "/oauth/token"

    @property
    def issued(self) -> int:
        return sum(1 for kind, _ in self.events if kind == "token_issued")


@pytest_asyncio.fixture
async def issuer(tmp_path: Path) -> AsyncIterator[Issuer]:
    pem = tmp_path / "svc.pub.pem"
    pem.write_bytes(public_pem(rsa_key("client")))
    jwks = tmp_path / "ec.jwks.json"
    jwks.write_text(json.dumps(make_jwks(jwk_of(ec_key("client"), kid="ec-1", alg="ES256"))))
    config = IssuerConfig(
        issuer=ISSUER,
        clients=(
            IssuerClient("svc", None, (AUD,), ("read:products",), public_key_file=str(pem)),
            IssuerClient("ec-svc", None, (AUD,), (), jwks_uri=str(jwks)),
            IssuerClient("secret-svc", Secret(SECRET), (AUD,), ()),
        ),
        token_lifetime_seconds=600,
    )
    events: list[tuple[str, str]] = []
    app = IssuerApp(
        config,
        keys=Keyset.load_or_create(),
        on_event=lambda kind, message: events.append((kind, message)),
    )
    server = ProxyServer(app, "127.0.0.1", 0, graceful_timeout=1)
    await server.start()
    app.base_url = server.url
    try:
        yield Issuer(server.url, events)
    finally:
        await server.stop()


def assertion(
    issuer: Issuer,
    *,
    key: Any = None,
    alg: str = "RS256",
    client: str = "svc",
    kid: str | None = None,
    **overrides: Any,
) -> str:
    now = int(time.time())
    claims: dict[str, Any] = {
        "iss": client,
        "sub": client,
        "aud": issuer.token_url,
        "jti": uuid.uuid4().hex,
        "iat": now,
        "exp": now + 60,
    }
    claims.update(overrides)
    claims = {k: v for k, v in claims.items() if v is not None}
    headers = {"kid": kid} if kid else None
    return jwt.encode(claims, key or rsa_key("client"), algorithm=alg, headers=headers)


async def post(issuer: Issuer, token: str, **extra: str) -> httpx.Response:
    form = {
        "grant_type": "client_credentials",
        "client_assertion_type": ASSERTION_TYPE,
        "client_assertion": token,
        "audience": AUD,
        **extra,
    }
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        return await http.post(issuer.token_url, data=form)


def assert_refused(issuer: Issuer, answer: httpx.Response, token: str, why: str = "") -> None:
    assert answer.status_code == 401, answer.text
    body = answer.json()
    assert body["error"] == "invalid_client"
    assert body["error_description"].startswith("Invalid client assertion")
    assert why in body["error_description"]
    assert issuer.issued == 0  # nothing was issued
    assert token not in answer.text and token not in json.dumps(issuer.events)


async def test_a_valid_assertion_gets_a_token(issuer: Issuer) -> None:
    answer = await post(issuer, assertion(issuer))
    assert answer.status_code == 200, answer.text
    claims = jwt.decode(answer.json()["access_token"], options={"verify_signature": False})
    assert claims["aud"] == AUD and claims["sub"] == "svc@clients"
    assert issuer.issued == 1


async def test_an_ec_client_with_a_jwks_is_verified_by_kid(issuer: Issuer) -> None:
    token = assertion(issuer, key=ec_key("client"), alg="ES256", client="ec-svc", kid="ec-1")
    answer = await post(issuer, token)
    assert answer.status_code == 200, answer.text


async def test_signed_with_another_key(issuer: Issuer) -> None:
    token = assertion(issuer, key=rsa_key("attacker"))
    assert_refused(issuer, await post(issuer, token), token)
    assert issuer.events[-1][0] == "token_refused"


async def test_aimed_at_another_token_endpoint(issuer: Issuer) -> None:
    token = assertion(issuer, aud="https://idp.example.com/oauth/token")
    assert_refused(issuer, await post(issuer, token), token, "aud must be the token endpoint URL")


async def test_expired(issuer: Issuer) -> None:
    now = int(time.time())
    token = assertion(issuer, iat=now - 120, exp=now - 60)
    assert_refused(issuer, await post(issuer, token), token, "expired")


async def test_replayed_jti(issuer: Issuer) -> None:
    token = assertion(issuer)
    assert (await post(issuer, token)).status_code == 200
    issued = issuer.issued
    again = await post(issuer, token)
    assert again.status_code == 401 and "already used" in again.json()["error_description"]
    assert issuer.issued == issued  # no second token
    # a new assertion (new jti) from the same client is fine
    assert (await post(issuer, assertion(issuer))).status_code == 200


async def test_too_long_lived(issuer: Issuer) -> None:
    token = assertion(issuer, exp=int(time.time()) + 3600)
    assert_refused(issuer, await post(issuer, token), token, "too long-lived")


@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"sub": "someone-else"}, "iss and sub must both be the client id"),
        ({"jti": None}, "jti is required"),
        ({"exp": None}, "exp is required"),
    ],
)
async def test_claims_that_do_not_identify_the_request(
    issuer: Issuer, overrides: dict[str, Any], why: str
) -> None:
    token = assertion(issuer, **overrides)
    assert_refused(issuer, await post(issuer, token), token, why)


async def test_unsigned_and_hmac_assertions(issuer: Issuer) -> None:
    now = int(time.time())
    claims = {"iss": "svc", "sub": "svc", "aud": issuer.token_url, "jti": "j", "exp": now + 60}
    for token in (
        jwt.encode(claims, None, algorithm="none"),
        # key confusion: the client's public key used as an HMAC secret
        hmac_token(public_pem(rsa_key("client")), claims, kid=None),
    ):
        assert_refused(issuer, await post(issuer, token), token)


async def test_a_client_that_only_has_a_key_cannot_use_a_secret(issuer: Issuer) -> None:
    form = {"grant_type": "client_credentials", "audience": AUD, "client_id": "svc"}
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        for secret in ("", "\x00unknown-client", "anything"):
            answer = await http.post(issuer.token_url, data={**form, "client_secret": secret})
            assert answer.status_code in (400, 401), answer.text
    assert issuer.issued == 0


async def test_a_secret_client_cannot_use_an_assertion(issuer: Issuer) -> None:
    token = assertion(issuer, client="secret-svc")
    assert_refused(issuer, await post(issuer, token), token)


async def test_client_id_must_match_the_assertion(issuer: Issuer) -> None:
    answer = await post(issuer, assertion(issuer), client_id="secret-svc")
    assert answer.status_code == 400 and issuer.issued == 0


async def test_assertion_and_secret_together_are_refused(issuer: Issuer) -> None:
    answer = await post(issuer, assertion(issuer), client_secret=SECRET)
    assert answer.status_code == 400 and "one client authentication method" in answer.text
    assert issuer.issued == 0
