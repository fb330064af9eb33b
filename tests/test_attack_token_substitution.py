"""Attack: a genuine token of the right provider, but the wrong kind, sent to the API.

The provider signed it, with the keys the API trusts, so the signature holds; what
it is *for* is wrong:

* a Cognito ID token (``token_use: id``, the app client in ``aud``, no ``client_id``)
  where an access token is expected: it says who the user is, not what the caller
  may do (no scopes);
* a Cognito access token issued to an app client not in the allow-list;
* a Microsoft Graph token (aud ``00000003-...`` or ``https://graph.microsoft.com``)
  replayed at your API; Graph's own tokens carry a ``nonce`` header that makes their
  signature unverifiable outside Graph, by design;
* an Okta org-authorization-server token (for Okta's own APIs) at an API expecting a
  custom authorization server.

Each is refused with 401, a stable reason and a hint that says what to send instead;
the backend receives nothing. Over real loopback sockets: a JWKS server,
``rrdev up`` (uvicorn), an echo backend.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import b64json
from provider_support import (
    APP_CLIENT,
    COGNITO,
    ENTRA,
    GRAPH,
    OKTA,
    OKTA_CREDENTIAL,
    cognito_access,
    cognito_id,
    entra_v2,
    forwarded,
    get,
    live,
    provider_proxy,
    refused,
    signed,
)
from proxy_support import Backend

pytestmark = pytest.mark.usefixtures("keyset")


async def test_a_cognito_id_token_is_not_an_access_token(tmp_path: Path, backend: Backend) -> None:
    async with provider_proxy(tmp_path, backend, COGNITO) as proxy:
        forwarded(await get(proxy, signed(cognito_access())), backend)
        body = refused(await get(proxy, signed(cognito_id())), 401, "claim_missing", backend)
        assert "Cognito ID token" in body["message"]
        assert "AuthenticationResult.AccessToken" in body["hint"] and "IdToken" in body["hint"]
        # An ID token that also carries a client_id is still an ID token.
        both = cognito_id(client_id=APP_CLIENT)
        body = refused(await get(proxy, signed(both)), 401, "token_use_mismatch", backend)
        assert "AuthenticationResult.AccessToken" in body["hint"]


async def test_an_unlisted_app_client_is_refused(tmp_path: Path, backend: Backend) -> None:
    async with provider_proxy(tmp_path, backend, COGNITO) as proxy:
        forwarded(await get(proxy, signed(cognito_access(client_id="2another0client1id"))), backend)
        token = signed(cognito_access(client_id="3attacker0app0client"))
        body = refused(await get(proxy, token), 401, "client_id_mismatch", backend)
    assert "'3attacker0app0client'" in body["message"] and APP_CLIENT in body["message"]


@pytest.mark.parametrize("graph", [GRAPH, "https://graph.microsoft.com"])
async def test_a_graph_token_is_not_for_your_api(
    tmp_path: Path, backend: Backend, graph: str
) -> None:
    async with provider_proxy(tmp_path, backend, ENTRA) as proxy:
        token = signed(entra_v2(aud=graph, scp="User.Read openid"))
        body = refused(await get(proxy, token), 401, "audience_mismatch", backend)
    assert "Microsoft Graph token" in body["hint"]
    assert "api://<your API's application id>/.default" in body["hint"]


async def test_a_graph_token_with_a_nonce_fails_its_signature_by_design(
    tmp_path: Path, backend: Backend
) -> None:
    # Graph signs the token with the nonce's hash in the header, then sends the nonce
    # itself: to anyone but Graph the signature does not match.
    signed_with = signed(entra_v2(aud=GRAPH), nonce="c2hhMjU2IG9mIHRoZSBub25jZQ")
    _head, payload, signature = signed_with.split(".")
    header = b64json({"typ": "JWT", "nonce": "the-nonce-itself", "alg": "RS256", "kid": "k1"})
    async with provider_proxy(tmp_path, backend, ENTRA) as proxy:
        answer = await get(proxy, f"{header}.{payload}.{signature}")
        body = refused(answer, 401, "signature_invalid", backend)
    assert "Microsoft Graph token" in body["hint"] and "by design" in body["hint"]


async def test_an_okta_org_server_token_is_not_for_your_api(
    tmp_path: Path, backend: Backend
) -> None:
    async with provider_proxy(tmp_path, backend, OKTA_CREDENTIAL) as proxy:
        custom = live(iss=OKTA, aud="api://default", scp=["orders:read"], cid="0oa1")
        forwarded(await get(proxy, signed(custom)), backend)
        org = live(iss="https://dev-123456.okta.com", aud="https://dev-123456.okta.com", cid="0oa1")
        body = refused(await get(proxy, signed(org)), 401, "issuer_mismatch", backend)
    assert "org authorization server" in body["hint"] and "Okta's own APIs" in body["hint"]
    assert f"{OKTA}/v1/token" in body["hint"]
