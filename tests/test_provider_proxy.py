"""Provider modes through the real proxy (``rrdev up``'s uvicorn on loopback, a JWKS
server, an echo backend), with tokens shaped like each provider's: Entra v1 and v2
tokens under scp/roles rules, Google's two issuer spellings, Cognito access tokens,
max_lifetime_seconds, and the hints for tokens that are not JWTs at all."""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import b64json
from provider_support import (
    COGNITO,
    ENTRA,
    cognito_access,
    entra_v1,
    entra_v2,
    forwarded,
    get,
    live,
    provider_proxy,
    refused,
    signed,
)
from proxy_support import Backend, raw_request

pytestmark = pytest.mark.usefixtures("keyset")

#: The seed's scope gate, written over Entra's claims: delegated tokens need the
#: Orders.Write scope in scp (a string), daemon tokens the role in roles (an array).
ENTRA_RULES = """
[[proxy.rules]]
id = "read"
effect = "allow"
methods = ["GET", "DELETE"]
path = { pattern = "^/orders" }
priority = 1

[[proxy.rules]]
id = "delete-needs-write"
effect = "deny"
methods = ["DELETE"]
path = { pattern = ".*" }
token = [
  { claim = "^scp$", value = "(^| )Orders\\\\.Write( |$)", presence = "must_absent" },
  { claim = "^roles$", value = "^Orders\\\\.Write\\\\.All$", presence = "must_absent" },
]
notes = "DELETE needs Orders.Write (delegated) or Orders.Write.All (application)"
"""


async def delete(proxy: object, token: str) -> object:
    headers = [("Authorization", f"Bearer {token}")]
    return await raw_request(proxy.port, "DELETE", "/orders/1", headers)  # type: ignore[attr-defined]


async def test_entra_v1_and_v2_tokens_under_scp_and_roles_rules(
    tmp_path: Path, backend: Backend
) -> None:
    async with provider_proxy(tmp_path, backend, ENTRA, ENTRA_RULES) as proxy:
        for shape in (entra_v2, entra_v1):
            forwarded(await get(proxy, signed(shape(scp="Orders.Read"))), backend)
            forwarded(await delete(proxy, signed(shape(scp="Orders.Read Orders.Write"))), backend)
            forwarded(await delete(proxy, signed(shape(roles=["Orders.Write.All"]))), backend)
            for weak in (shape(scp="Orders.Read Orders.WriteAll"), shape(roles=["Orders.Read"])):
                body = refused(await delete(proxy, signed(weak)), 403, "rule_denied", backend)
                assert body["trace"]["deciding_rule"] == "delete-needs-write"
        answer = await delete(proxy, signed(entra_v2(scp="Orders.Read")))
    assert 'error="insufficient_scope"' in (answer.header("www-authenticate") or "")


@pytest.mark.parametrize("iss", ["https://accounts.google.com", "accounts.google.com"])
async def test_google_id_tokens_with_either_issuer_spelling(
    tmp_path: Path, backend: Backend, iss: str
) -> None:
    client = "1234-abc.apps.googleusercontent.com"
    credential = (
        'issuer = ["https://accounts.google.com", "accounts.google.com"]\n'
        f'audience = "{client}"\nprovider = "google"\n'
    )
    async with provider_proxy(tmp_path, backend, credential) as proxy:
        token = signed(live(iss=iss, aud=client, azp=client, email_verified=True))
        forwarded(await get(proxy, token), backend)
        other = signed(live(iss="https://accounts.google.com.evil.example", aud=client))
        refused(await get(proxy, other), 401, "issuer_mismatch", backend)


async def test_a_cognito_access_token_without_aud_is_forwarded(
    tmp_path: Path, backend: Backend
) -> None:
    async with provider_proxy(tmp_path, backend, COGNITO) as proxy:
        token = signed(cognito_access())
        forwarded(await get(proxy, token), backend)
        refused(
            await get(proxy, signed(cognito_access(token_use=7))), 401, "claim_malformed", backend
        )


async def test_max_lifetime(tmp_path: Path, backend: Backend) -> None:
    credential = (
        'issuer = "https://issuer.example/"\naudience = "api"\nmax_lifetime_seconds = 900\n'
    )
    base = {"iss": "https://issuer.example/", "aud": "api"}
    async with provider_proxy(tmp_path, backend, credential) as proxy:
        forwarded(await get(proxy, signed(live(**base))), backend)  # 610 seconds
        long = live(**base)
        long["exp"] = long["iat"] + 86400
        body = refused(await get(proxy, signed(long)), 401, "token_lifetime_too_long", backend)
        assert "at most 900s" in body["message"]
        no_iat = {k: v for k, v in live(**base).items() if k != "iat"}
        body = refused(await get(proxy, signed(no_iat)), 401, "claim_missing", backend)
        assert "iat" in body["message"]


AUTH0_OPAQUE = "8Kq2vJ3xYbN5tW9mR7cL1pD4sF6gH0zA"
#: An Auth0 access token requested without an audience: a JWE, alg dir, enc A256GCM.
AUTH0_JWE = ".".join(
    [
        b64json({"alg": "dir", "enc": "A256GCM", "iss": "https://tenant.us.auth0.com/"}),
        "",
        "3q2-7wEBAgMEBQYH",
        "Zm9yIC91c2VyaW5mbyBvbmx5",
        "c2l4dGVlbi1ieXRlLXRhZw",
    ]
)


@pytest.mark.parametrize(
    ("token", "fragment", "what"),
    [
        (AUTH0_OPAQUE, "an opaque token, not a JWT", "opaque"),
        (AUTH0_JWE, "an encrypted JWE, alg dir, enc A256GCM", "encrypted"),
    ],
)
async def test_tokens_requested_without_an_audience_get_the_fix(
    tmp_path: Path, backend: Backend, token: str, fragment: str, what: str
) -> None:
    credential = 'issuer = "https://tenant.us.auth0.com/"\naudience = "https://api"\n'
    async with provider_proxy(tmp_path, backend, credential) as proxy:
        body = refused(await get(proxy, token), 401, "token_malformed", backend)
    assert fragment in body["message"]
    assert f"Auth0 issues an {what} access token" in body["hint"]
    assert "audience=<your API identifier>" in body["hint"]
    assert token not in answer_text(body)


def answer_text(body: dict[str, object]) -> str:
    return " ".join(str(v) for v in body.values())
