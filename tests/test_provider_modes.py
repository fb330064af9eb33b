"""Provider modes of jwtVerify, table-driven over tokens shaped like each provider's
(real RSA signatures, verified against a real JWKS): issuer arrays (Google's two
spellings), Entra's v1/v2 issuers and tenant allow-list, Cognito's client_id
allow-list and ID tokens, Okta's org server, max_lifetime_seconds, and the hints."""

from __future__ import annotations

from typing import Any

import pytest
from factories import NOW, OMIT, b64json, make_cred, make_token, rsa_key, verify

from rrdev.core.verify import step_names

TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"
OTHER_TENANT = "f8cdef31-a31e-4b4a-93e4-5f571e91255a"
API_CLIENT = "6e74172b-be56-4843-9ff4-e66a39bb12e3"
V2 = "https://login.microsoftonline.com/{tenantid}/v2.0"
V1 = "https://sts.windows.net/{tenantid}/"
GRAPH = "00000003-0000-0000-c000-000000000000"
POOL = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_AbCdEf123"
APP_CLIENT = "1example23456789abcdefghi"
OKTA = "https://dev-123456.okta.com/oauth2/default"


def entra_cred(**overrides: Any) -> Any:
    fields: dict[str, Any] = {
        "issuer": V2,
        "issuers": (V2, V1),
        "tenants": (TENANT,),
        "audience": (API_CLIENT, f"api://{API_CLIENT}"),
        "provider": "entra",
    }
    return make_cred(**(fields | overrides))


def entra_v2(tenant: str = TENANT, **overrides: Any) -> dict[str, Any]:
    claims = {
        "iss": f"https://login.microsoftonline.com/{tenant}/v2.0",
        "aud": API_CLIENT,
        "tid": tenant,
        "ver": "2.0",
        "scp": "Orders.Read",
        "iat": NOW - 60,
        "exp": NOW + 3600,
    }
    return {**claims, **overrides}


def entra_v1(tenant: str = TENANT, **overrides: Any) -> dict[str, Any]:
    v1 = {"iss": f"https://sts.windows.net/{tenant}/", "aud": f"api://{API_CLIENT}", "ver": "1.0"}
    return entra_v2(tenant, **(v1 | overrides))


def cognito_cred(**overrides: Any) -> Any:
    fields: dict[str, Any] = {
        "issuer": POOL,
        "audience": (),
        "client_id": APP_CLIENT,
        "client_ids": (APP_CLIENT, "2another0client1id"),
        "token_use": "access",
    }
    return make_cred(**(fields | overrides))


def cognito_access(**overrides: Any) -> dict[str, Any]:
    claims = {
        "iss": POOL,
        "sub": "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
        "client_id": APP_CLIENT,
        "token_use": "access",
        "scope": "orders/read",
        "iat": NOW - 60,
        "exp": NOW + 3600,
    }
    return {**claims, **overrides}


def cognito_id(**overrides: Any) -> dict[str, Any]:
    claims = cognito_access(aud=APP_CLIENT, token_use="id", email="ada@example.com")
    del claims["client_id"], claims["scope"]
    return {**claims, **overrides}


async def check(claims: dict[str, Any], cred: Any, **token: Any) -> Any:
    return await verify(make_token(rsa_key(), claims, **token), cred)


# ------------------------------------------------------------------ Entra


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        (entra_v2(), None),
        (entra_v1(), None),
        (entra_v2(OTHER_TENANT), "tenant_not_allowed"),
        (entra_v1(OTHER_TENANT), "tenant_not_allowed"),
        # The issuer names an allowed tenant, but the token's tid is another one.
        (entra_v2(tid=OTHER_TENANT), "issuer_mismatch"),
        # tid allowed, issuer from another tenant: the template is filled with tid only.
        (
            entra_v2(iss=f"https://login.microsoftonline.com/{OTHER_TENANT}/v2.0"),
            "tenant_not_allowed",
        ),
        (entra_v2(tid=OMIT), "claim_missing"),
        (entra_v2(tid=7), "issuer_mismatch"),
        # The placeholder is not a wildcard: a literal {tenantid} never matches.
        (entra_v2(iss=V2, tid="{tenantid}"), "tenant_not_allowed"),
        (entra_v2(iss="https://login.microsoftonline.com/common/v2.0"), "tenant_not_allowed"),
        (entra_v2(iss=f"https://evil.example/{TENANT}/v2.0"), "issuer_mismatch"),
    ],
)
async def test_entra_issuers_and_tenants(claims: dict[str, Any], reason: str | None) -> None:
    if claims.get("tid") is OMIT:
        del claims["tid"]
    ver = await check(claims, entra_cred())
    assert ver.reason == reason, (ver.message, ver.hint)


async def test_entra_tenant_not_allowed_says_which_and_what_to_do() -> None:
    ver = await check(entra_v2(OTHER_TENANT), entra_cred())
    assert OTHER_TENANT in ver.message and "proxy_credential.tenants" in ver.message
    assert "add its id to proxy_credential.tenants" in ver.hint


async def test_entra_v1_token_for_a_v2_only_profile_names_the_manifest_setting() -> None:
    ver = await check(entra_v1(), entra_cred(issuer=V2, issuers=(V2,)))
    assert ver.reason == "issuer_mismatch"
    assert "v1.0 token" in ver.hint and "accessTokenAcceptedVersion = 2" in ver.hint


async def test_entra_v2_token_for_a_v1_only_profile_says_so() -> None:
    ver = await check(entra_v2(), entra_cred(issuer=V1, issuers=(V1,)))
    assert ver.reason == "issuer_mismatch" and "v2.0 token" in ver.hint


async def test_a_graph_token_names_graph_and_the_scope_to_request() -> None:
    ver = await check(entra_v2(aud=GRAPH, scp="User.Read"), entra_cred())
    assert ver.reason == "audience_mismatch"
    assert "Microsoft Graph token" in ver.hint and "/.default" in ver.hint


async def test_a_graph_token_with_a_header_nonce_fails_its_signature_by_design() -> None:
    token = make_token(rsa_key(), entra_v2(aud=GRAPH), headers={"nonce": "abc"})
    _head, body, sig = token.split(".")
    # Graph signs over a hashed nonce: to everyone else the signature does not match.
    forged = f"{b64json({'alg': 'RS256', 'typ': 'JWT', 'kid': 'k1', 'nonce': 'xyz'})}.{body}.{sig}"
    ver = await verify(forged, entra_cred())
    assert ver.reason == "signature_invalid"
    assert "Microsoft Graph token" in ver.hint and "by design" in ver.hint


# ------------------------------------------------------------------ Google


@pytest.mark.parametrize("iss", ["https://accounts.google.com", "accounts.google.com"])
async def test_google_accepts_both_issuer_spellings(iss: str) -> None:
    spellings = ("https://accounts.google.com", "accounts.google.com")
    cred = make_cred(
        issuer=spellings[0], issuers=spellings, audience=("x.apps.googleusercontent.com",)
    )
    claims = {"iss": iss, "aud": "x.apps.googleusercontent.com", "exp": NOW + 60, "iat": NOW}
    assert (await check(claims, cred)).ok


async def test_google_spelling_missing_from_the_profile_gets_a_hint() -> None:
    cred = make_cred(issuer="https://accounts.google.com", audience=("x",))
    claims = {"iss": "accounts.google.com", "aud": "x", "exp": NOW + 60}
    ver = await check(claims, cred)
    assert ver.reason == "issuer_mismatch"
    assert "issuer = ['https://accounts.google.com', 'accounts.google.com']" in ver.hint


async def test_an_issuer_array_is_exact_for_each_entry() -> None:
    cred = make_cred(
        issuer="https://a.example/", issuers=("https://a.example/", "https://b.example/")
    )
    for iss, ok in [
        ("https://b.example/", True),
        ("https://b.example", False),
        ("https://c/", False),
    ]:
        ver = await check({"iss": iss, "aud": "https://api.myapp.com", "exp": NOW + 60}, cred)
        assert ver.ok is ok, (iss, ver.message)
    ver = await check({"iss": "https://c/", "aud": "https://api.myapp.com", "exp": NOW + 9}, cred)
    assert "'https://a.example/' or 'https://b.example/'" in ver.message


# ------------------------------------------------------------------ Cognito


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        (cognito_access(), None),
        (cognito_access(client_id="2another0client1id"), None),
        (cognito_access(client_id="not-in-the-list"), "client_id_mismatch"),
        (cognito_id(), "claim_missing"),
        (cognito_access(token_use="id"), "token_use_mismatch"),
        (cognito_access(client_id=["list"]), "claim_malformed"),
    ],
)
async def test_cognito_access_tokens(claims: dict[str, Any], reason: str | None) -> None:
    ver = await check(claims, cognito_cred())
    assert ver.reason == reason, (ver.message, ver.hint)


async def test_a_cognito_id_token_is_told_to_send_the_access_token() -> None:
    ver = await check(cognito_id(), cognito_cred())
    assert "Cognito ID token" in ver.message
    assert "AuthenticationResult.AccessToken" in ver.hint and "IdToken" in ver.hint
    ver = await check(cognito_access(token_use="id"), cognito_cred())
    assert "AuthenticationResult.AccessToken" in ver.hint


async def test_cognito_id_token_mode_reads_the_client_from_aud() -> None:
    cred = cognito_cred(token_use="id")
    assert (await check(cognito_id(), cred)).ok
    ver = await check(cognito_id(aud="someone-else"), cred)
    assert ver.reason == "client_id_mismatch"


async def test_cognito_tokens_sent_to_an_audience_profile_get_cognito_hints() -> None:
    cred = make_cred(issuer=POOL, audience=("https://api.myapp.com",))
    ver = await check(cognito_access(), cred)
    assert ver.reason == "claim_missing" and "Cognito access token" in ver.hint
    assert "proxy_credential.client_id" in ver.hint
    ver = await check(cognito_id(), cred)
    assert ver.reason == "audience_mismatch" and "Cognito ID token" in ver.hint


# ------------------------------------------------------------------ Okta


async def test_an_okta_org_server_token_is_told_about_custom_servers() -> None:
    cred = make_cred(issuer=OKTA, audience=("api://default",), provider="okta")
    claims = {"iss": "https://dev-123456.okta.com", "aud": "api://default", "exp": NOW + 60}
    ver = await check(claims, cred)
    assert ver.reason == "issuer_mismatch"
    assert "org authorization server" in ver.hint and "Okta's own APIs" in ver.hint
    assert f"{OKTA}/v1/token" in ver.hint


async def test_an_okta_custom_server_token_passes() -> None:
    cred = make_cred(issuer=OKTA, audience=("api://default",))
    claims = {"iss": OKTA, "aud": "api://default", "scp": ["orders:read"], "exp": NOW + 60}
    assert (await check(claims, cred)).ok


async def test_keycloak_account_audience_names_the_audience_mapper() -> None:
    realm = "https://kc.example/realms/shop"
    cred = make_cred(issuer=realm, audience=("orders-api",))
    ver = await check({"iss": realm, "aud": "account", "exp": NOW + 60}, cred)
    assert ver.reason == "audience_mismatch" and "audience mapper" in ver.hint


# ------------------------------------------------------------------ lifetime


@pytest.mark.parametrize(
    ("iat", "exp", "reason"),
    [
        (NOW - 60, NOW + 3540, None),  # exactly the limit
        (NOW - 60, NOW + 3541, "token_lifetime_too_long"),
        (NOW - 10, NOW + 86400, "token_lifetime_too_long"),
        (OMIT, NOW + 60, "claim_missing"),
        ("yesterday", NOW + 60, "claim_malformed"),
    ],
)
async def test_max_lifetime(iat: Any, exp: Any, reason: str | None) -> None:
    cred = make_cred(max_lifetime_seconds=3600)
    ver = await verify(make_token(rsa_key(), iat=iat, exp=exp), cred)
    assert ver.reason == reason, ver.message
    assert "lifetime" in [s.name for s in ver.steps]


async def test_max_lifetime_message_and_step() -> None:
    ver = await verify(
        make_token(rsa_key(), iat=NOW, exp=NOW + 86400), make_cred(max_lifetime_seconds=600)
    )
    assert "valid for 1d0h" in ver.message and "at most 600s" in ver.message
    assert "max_lifetime_seconds" in ver.hint
    ver = await verify(make_token(rsa_key(), iat=OMIT), make_cred(max_lifetime_seconds=600))
    assert "no iat claim" in ver.message and "max_lifetime_seconds" in ver.hint


def test_the_lifetime_step_is_listed_only_when_set() -> None:
    assert "lifetime" not in step_names(make_cred())
    names = step_names(make_cred(max_lifetime_seconds=60))
    assert names[names.index("issued_at") + 1] == "lifetime"


async def test_without_max_lifetime_a_long_token_passes() -> None:
    assert (await verify(make_token(rsa_key(), iat=NOW - 10, exp=NOW + 10**7))).ok
