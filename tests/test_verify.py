"""verify_token: the checklist, every reason code with its message and hint, the
JWKS cache (remote via pytest-httpx, file, inline) and the unverified decoder."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from factories import (
    AUDIENCE,
    CLIENT_ID,
    ISSUER,
    JWKS_URI,
    NOW,
    OMIT,
    FakeClock,
    b64json,
    default_jwks,
    ec_key,
    jwk_of,
    make_cred,
    make_jwks,
    make_token,
    raw_token,
    rsa_key,
    verify,
)
from pytest_httpx import HTTPXMock

from rrdev.clients.jwks import JwksCache
from rrdev.core.errors import JwksUnavailable, KeyNotFound, TokenInputError
from rrdev.core.redact import fingerprint
from rrdev.core.tokens import decode_unverified, humanize_delta
from rrdev.core.verify import step_names

DEFAULT_STEPS = (
    "format",
    "header",
    "algorithm",
    "key",
    "signature",
    "expiry",
    "not_before",
    "issued_at",
    "issuer",
    "subject",
    "audience",
    "sender_constraint",
)


def statuses(ver: Any) -> dict[str, str]:
    return {s.name: s.status for s in ver.steps}


# ------------------------------------------------------------------ happy paths


async def test_valid_rs256_token_passes_every_step() -> None:
    token = make_token(rsa_key())
    ver = await verify(token)
    assert ver.ok, ver.message
    assert tuple(s.name for s in ver.steps) == DEFAULT_STEPS
    assert all(s.status == "passed" for s in ver.steps)
    assert ver.claims is not None and ver.claims["scope"] == "read:users"
    assert ver.header == {"alg": "RS256", "typ": "JWT", "kid": "k1"}
    assert ver.fingerprint == fingerprint(token)
    json.dumps(ver.to_dict())  # the --json shape is plain JSON


async def test_valid_es256_token_passes_with_es256_profile() -> None:
    token = make_token(ec_key(), alg="ES256", kid="ec1")
    jwks = make_jwks(jwk_of(ec_key(), "ec1", "ES256"))
    ver = await verify(token, make_cred(algorithms=("ES256",)), jwks)
    assert ver.ok, ver.message
    assert ver.steps[3].actual.startswith("EC key")


async def test_token_without_kid_uses_the_only_key() -> None:
    ver = await verify(make_token(rsa_key(), kid=None))
    assert ver.ok, ver.message


async def test_key_without_alg_member_still_verifies() -> None:
    ver = await verify(make_token(rsa_key()), jwks=make_jwks(jwk_of(rsa_key(), "k1", None)))
    assert ver.ok, ver.message


async def test_second_key_in_jwks_is_found_by_kid() -> None:
    other = jwk_of(ec_key(), "ec1", "ES256")
    jwks = make_jwks(other, jwk_of(rsa_key(), "k2", "RS256"))
    ver = await verify(make_token(rsa_key(), kid="k2"), jwks=jwks)
    assert ver.ok, ver.message


# --------------------------------------------------------- checklist behaviour


async def test_steps_after_a_failure_are_skipped_and_claims_are_unverified() -> None:
    token = make_token(rsa_key(), kid="nope")
    ver = await verify(token)
    assert ver.reason == "key_not_found"
    assert statuses(ver) == {
        "format": "passed",
        "header": "passed",
        "algorithm": "passed",
        "key": "failed",
        "signature": "skipped",
        "expiry": "skipped",
        "not_before": "skipped",
        "issued_at": "skipped",
        "issuer": "skipped",
        "subject": "skipped",
        "audience": "skipped",
        "sender_constraint": "skipped",
    }
    # Shown for display; Verification.ok is False so rules never see them.
    assert ver.claims is not None and ver.claims["iss"] == ISSUER
    assert ver.fingerprint == fingerprint(token)


async def test_every_claim_check_runs_once_the_signature_holds() -> None:
    token = make_token(rsa_key(), exp=NOW - 300, aud="https://other.example", iss=ISSUER)
    ver = await verify(token)
    assert ver.reason == "token_expired"  # the first failure is the reason
    assert statuses(ver) == {
        "format": "passed",
        "header": "passed",
        "algorithm": "passed",
        "key": "passed",
        "signature": "passed",
        "expiry": "failed",
        "not_before": "passed",
        "issued_at": "passed",
        "issuer": "passed",
        "subject": "passed",
        "audience": "failed",
        "sender_constraint": "passed",
    }


async def test_format_failure_has_no_claims_and_every_other_step_skipped() -> None:
    ver = await verify("abc")
    assert ver.reason == "token_malformed"
    assert "a JWT has 3 dot-separated parts; this has 1" in ver.message
    assert ver.claims is None and ver.header is None
    assert [s.status for s in ver.steps] == ["failed"] + ["skipped"] * 11


async def test_empty_token_has_no_fingerprint() -> None:
    ver = await verify("")
    assert ver.reason == "token_malformed" and ver.fingerprint is None


# ---------------------------------------------------------------- reason codes


async def test_token_too_large() -> None:
    ver = await verify(make_token(rsa_key()), make_cred(max_token_bytes=200))
    assert ver.reason == "token_too_large"
    assert "the limit is 200" in ver.message


async def test_algorithm_not_in_profile() -> None:
    ver = await verify(make_token(rsa_key(), alg="RS384"))
    assert ver.reason == "algorithm_not_allowed"
    assert ver.message == "the token is signed with RS384; the profile allows RS256"
    assert "add it to proxy_credential.algorithms" in ver.hint
    assert ver.steps[2].expected == "RS256" and ver.steps[2].actual == "RS384"


async def test_algorithm_listed_but_unsupported() -> None:
    ver = await verify(make_token(rsa_key()), make_cred(algorithms=("RS256", "XX1")))
    assert ver.ok  # unrelated extra entries do not matter for an RS256 token
    token = raw_token({"alg": "XX1", "kid": "k1"}, {"exp": NOW + 10}, "c2ln")
    ver = await verify(token, make_cred(algorithms=("RS256", "XX1")))
    assert ver.reason == "algorithm_not_allowed"
    assert "cannot verify XX1" in ver.message


async def test_key_not_found_lists_the_jwks_kids() -> None:
    jwks = make_jwks(jwk_of(rsa_key(), "k1"), jwk_of(rsa_key("b"), "k2"))
    ver = await verify(make_token(rsa_key(), kid="k9"), jwks=jwks)
    assert ver.reason == "key_not_found"
    assert ver.message == "the JWKS has no key with kid 'k9'"
    assert "the JWKS has kids: k1, k2" in ver.hint
    assert "another tenant or issuer" in ver.hint


async def test_key_not_found_names_a_foreign_issuer() -> None:
    token = make_token(rsa_key(), kid="k9", iss="https://other-tenant.eu.auth0.com/")
    ver = await verify(token)
    assert ver.reason == "key_not_found"
    assert "another issuer ('https://other-tenant.eu.auth0.com/')" in ver.hint


async def test_token_without_kid_and_several_keys_is_key_not_found() -> None:
    jwks = make_jwks(jwk_of(rsa_key(), "k1"), jwk_of(rsa_key("b"), "k2"))
    ver = await verify(make_token(rsa_key(), kid=None), jwks=jwks)
    assert ver.reason == "key_not_found"
    assert "no kid and the JWKS has 2 usable keys" in ver.message


async def test_key_of_the_wrong_type_for_the_algorithm_is_not_used() -> None:
    token = make_token(ec_key(), alg="ES256", kid="k1")  # kid of an RSA key
    ver = await verify(token, make_cred(algorithms=("RS256", "ES256")))
    assert ver.reason == "key_not_found"
    assert "cannot verify an ES256 token" in ver.message


async def test_key_declared_for_another_alg_is_not_used() -> None:
    jwks = make_jwks(jwk_of(rsa_key(), "k1", "RS512"))
    ver = await verify(make_token(rsa_key()), jwks=jwks)
    assert ver.reason == "key_not_found"
    assert "declared for RS512" in ver.message


async def test_signature_invalid() -> None:
    token = make_token(rsa_key("other"))
    ver = await verify(token)
    assert ver.reason == "signature_invalid"
    assert "does not match the JWKS key 'k1'" in ver.message
    assert "same kid" in ver.hint


@pytest.mark.parametrize(
    ("claim", "step"), [("exp", "expiry"), ("iss", "issuer"), ("aud", "audience")]
)
async def test_required_claim_missing(claim: str, step: str) -> None:
    ver = await verify(make_token(rsa_key(), **{claim: OMIT}))
    assert ver.reason == "claim_missing"
    assert ver.message == f"the token has no {claim} claim; rrdev requires it"
    assert statuses(ver)[step] == "failed"


@pytest.mark.parametrize(
    "overrides",
    [
        {"exp": "tomorrow"},
        {"exp": True},
        {"exp": None},
        {"nbf": "now"},
        {"iss": 42},
        {"aud": 123},
        {"aud": ["ok", 7]},
    ],
    ids=lambda o: "-".join(f"{k}={v!r}" for k, v in o.items()),
)
async def test_malformed_claims(overrides: dict[str, Any]) -> None:
    ver = await verify(make_token(rsa_key(), **overrides))
    assert ver.reason == "claim_malformed", ver.message


async def test_token_expired_message_says_how_long_ago() -> None:
    ver = await verify(make_token(rsa_key(), exp=NOW - 252))
    assert ver.reason == "token_expired"
    assert ver.message == "the token expired 4m12s ago at 2027-01-15T07:55:48Z"
    assert "ago at" in ver.message
    assert "fresh token" in ver.hint


async def test_expiry_boundary_now_equal_exp_is_expired() -> None:
    ver = await verify(make_token(rsa_key(), exp=NOW))
    assert ver.reason == "token_expired"


async def test_token_not_yet_valid_message_says_when() -> None:
    ver = await verify(make_token(rsa_key(), nbf=NOW + 185))
    assert ver.reason == "token_not_yet_valid"
    assert ver.message == "the token is valid in 3m05s, at 2027-01-15T08:03:05Z"
    assert "leeway_seconds" in ver.hint


async def test_leeway_widens_exp_and_nbf() -> None:
    cred = make_cred(leeway_seconds=30)
    late = await verify(make_token(rsa_key(), exp=NOW - 10), cred)
    assert late.ok
    assert "accepted within the leeway" in late.steps[5].detail
    early = await verify(make_token(rsa_key(), nbf=NOW + 10), cred)
    assert early.ok
    too_late = await verify(make_token(rsa_key(), exp=NOW - 31), cred)
    assert too_late.reason == "token_expired"
    too_early = await verify(make_token(rsa_key(), nbf=NOW + 31), cred)
    assert too_early.reason == "token_not_yet_valid"


async def test_issuer_missing_trailing_slash_hint() -> None:
    ver = await verify(make_token(rsa_key(), iss=ISSUER.rstrip("/")))
    assert ver.reason == "issuer_mismatch"
    assert ver.hint == f"Auth0 issuers end with a slash: use {ISSUER!r}"


async def test_issuer_extra_trailing_slash_hint_from_profile_side() -> None:
    ver = await verify(make_token(rsa_key()), make_cred(issuer=ISSUER.rstrip("/")))
    assert ver.reason == "issuer_mismatch"
    assert ver.hint == f"Auth0 issuers end with a slash: use {ISSUER!r}"


async def test_issuer_trailing_slash_hint_for_non_auth0() -> None:
    iss = "https://login.example.com/realms/dev"
    ver = await verify(make_token(rsa_key(), iss=iss + "/"), make_cred(issuer=iss))
    assert ver.reason == "issuer_mismatch"
    assert "trailing slash included" in ver.hint


async def test_issuer_from_another_tenant() -> None:
    ver = await verify(make_token(rsa_key(), iss="https://other.eu.auth0.com/"))
    assert ver.reason == "issuer_mismatch"
    assert ver.message == (
        f"the token's issuer is 'https://other.eu.auth0.com/'; the profile expects {ISSUER!r}"
    )
    assert "another issuer or tenant" in ver.hint


async def test_profile_without_issuer_fails_closed() -> None:
    ver = await verify(make_token(rsa_key()), make_cred(issuer=None))
    assert ver.reason == "issuer_mismatch"
    assert "sets no issuer" in ver.message


async def test_audience_that_is_a_client_id_gets_the_api_identifier_hint() -> None:
    ver = await verify(make_token(rsa_key(), aud=CLIENT_ID))
    assert ver.reason == "audience_mismatch"
    assert "the audience must be the API identifier, not the application's client ID" in ver.hint


async def test_audience_trailing_slash_hint() -> None:
    ver = await verify(make_token(rsa_key(), aud=AUDIENCE + "/"))
    assert ver.reason == "audience_mismatch"
    assert ver.hint == f"audiences are compared exactly, trailing slash included: use {AUDIENCE!r}"


async def test_audience_other_api() -> None:
    ver = await verify(make_token(rsa_key(), aud="https://billing.myapp.com"))
    assert ver.reason == "audience_mismatch"
    assert ver.message == (
        f"the token's audience is 'https://billing.myapp.com'; the profile expects {AUDIENCE}"
    )
    assert "add the token's audience" in ver.hint


async def test_any_of_several_profile_audiences_is_accepted() -> None:
    cred = make_cred(audience=("https://a.example", AUDIENCE))
    assert (await verify(make_token(rsa_key()), cred)).ok


async def test_profile_without_audience_fails_closed() -> None:
    ver = await verify(make_token(rsa_key()), make_cred(audience=()))
    assert ver.reason == "audience_mismatch"
    assert "sets no audience" in ver.message


# ----------------------------------------------------------------- Cognito mode

COGNITO_ISS = "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123"
APP_CLIENT = "3n4b5urk1ft4fl3mg5e62d9ado"


def cognito_cred(**overrides: Any) -> Any:
    fields = {"issuer": COGNITO_ISS, "audience": (), "client_id": APP_CLIENT}
    fields["token_use"] = "access"
    return make_cred(**(fields | overrides))


def cognito_claims(**overrides: Any) -> dict[str, Any]:
    claims: dict[str, Any] = {
        "sub": "a1b2",
        "iss": COGNITO_ISS,
        "client_id": APP_CLIENT,
        "token_use": "access",
        "scope": "orders/read",
        "exp": NOW + 3600,
        "iat": NOW - 60,
    }
    return claims | overrides


async def test_cognito_access_token_passes_without_aud() -> None:
    ver = await verify(make_token(rsa_key(), cognito_claims()), cognito_cred())
    assert ver.ok, ver.message
    assert tuple(s.name for s in ver.steps) == step_names(cognito_cred())
    assert [s.name for s in ver.steps][-3:] == ["client_id", "token_use", "sender_constraint"]


async def test_cognito_wrong_client_id() -> None:
    token = make_token(rsa_key(), cognito_claims(client_id="someoneelse"))
    ver = await verify(token, cognito_cred())
    assert ver.reason == "client_id_mismatch"
    assert "issued to app client 'someoneelse'" in ver.message


async def test_cognito_wrong_token_use() -> None:
    ver = await verify(make_token(rsa_key(), cognito_claims(token_use="id")), cognito_cred())
    assert ver.reason == "token_use_mismatch"
    assert "access token" in ver.hint


async def test_cognito_id_token_is_named_as_such() -> None:
    claims = cognito_claims(token_use="id", aud=APP_CLIENT)
    del claims["client_id"]
    ver = await verify(make_token(rsa_key(), claims), cognito_cred())
    assert ver.reason == "claim_missing"
    assert "Cognito ID token" in ver.message


async def test_cognito_without_token_use_setting_skips_that_step() -> None:
    ver = await verify(make_token(rsa_key(), cognito_claims()), cognito_cred(token_use=None))
    assert ver.ok
    assert statuses(ver)["token_use"] == "skipped"


# ------------------------------------------------------------------ remote JWKS


def remote(clock: FakeClock | None = None, **kw: Any) -> JwksCache:
    return JwksCache(JWKS_URI, clock=clock or FakeClock(), **kw)


async def test_remote_jwks_is_cached_within_ttl(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=JWKS_URI, json=default_jwks())
    clock = FakeClock()
    cache = remote(clock, ttl=600)
    assert (await verify(make_token(rsa_key()), jwks=cache)).ok
    clock.advance(599)
    assert (await verify(make_token(rsa_key()), jwks=cache)).ok
    assert len(httpx_mock.get_requests()) == 1
    status = cache.status()
    assert status.kids == ("k1",) and status.key_count == 1 and status.age_seconds == 599

    httpx_mock.add_response(url=JWKS_URI, json=default_jwks())
    clock.advance(1)  # TTL reached: refresh
    assert (await verify(make_token(rsa_key()), jwks=cache)).ok
    assert len(httpx_mock.get_requests()) == 2
    await cache.aclose()


async def test_unknown_kid_refetches_once_per_interval(httpx_mock: HTTPXMock) -> None:
    rotated = make_jwks(jwk_of(rsa_key(), "k1"), jwk_of(rsa_key("b"), "k2"))
    httpx_mock.add_response(url=JWKS_URI, json=default_jwks())
    httpx_mock.add_response(url=JWKS_URI, json=rotated)
    clock = FakeClock()
    cache = remote(clock, refetch_interval=30)

    assert (await verify(make_token(rsa_key()), jwks=cache)).ok
    # Right after a fetch, an unknown kid does not cause another one.
    assert (await verify(make_token(rsa_key("b"), kid="k2"), jwks=cache)).reason == "key_not_found"
    assert len(httpx_mock.get_requests()) == 1

    clock.advance(31)  # the issuer rotated; the new kid triggers one refetch
    assert (await verify(make_token(rsa_key("b"), kid="k2"), jwks=cache)).ok
    assert len(httpx_mock.get_requests()) == 2

    clock.advance(5)  # a second unknown kid within the interval: no request
    ver = await verify(make_token(rsa_key("b"), kid="bogus"), jwks=cache)
    assert ver.reason == "key_not_found"
    assert len(httpx_mock.get_requests()) == 2
    await cache.aclose()


ROTATED_HINT = (
    "the JWKS has kids: k1; the JWKS was fetched {ago}s ago and is refetched at most every "
    "30s on an unknown kid: if the issuer just rotated its keys, retry in {wait}s"
)
GENERIC_HINT = "the JWKS has kids: k1; the token may come from another tenant or issuer"


@pytest.mark.parametrize(
    ("after", "fetches", "hint"),
    [
        (0, 1, ROTATED_HINT.format(ago=0, wait=30)),
        (4, 1, ROTATED_HINT.format(ago=4, wait=26)),
        (29.5, 1, ROTATED_HINT.format(ago=29, wait=1)),
        (30, 2, GENERIC_HINT),  # refetched for this token: the fresh JWKS lacks it too
    ],
    ids=["just-fetched", "4s", "29.5s", "refetched"],
)
async def test_key_not_found_says_when_the_refetch_was_rate_limited(
    httpx_mock: HTTPXMock, after: float, fetches: int, hint: str
) -> None:
    httpx_mock.add_response(url=JWKS_URI, json=default_jwks(), is_reusable=True)
    clock = FakeClock()
    cache = remote(clock, refetch_interval=30)
    assert (await verify(make_token(rsa_key()), jwks=cache)).ok
    clock.advance(after)
    ver = await verify(make_token(rsa_key("b"), kid="k2"), jwks=cache)
    assert ver.reason == "key_not_found"
    assert ver.hint.startswith(hint), ver.hint
    assert len(httpx_mock.get_requests()) == fetches
    await cache.aclose()


async def test_key_not_found_on_a_cold_cache_is_not_rate_limited(httpx_mock: HTTPXMock) -> None:
    """The JWKS was fetched for this very token: no "retry in" (it would not help)."""
    httpx_mock.add_response(url=JWKS_URI, json=default_jwks())
    cache = remote()
    with pytest.raises(KeyNotFound) as caught:
        await cache.get_key("k2", "RS256")
    assert caught.value.retry_in is None
    ver = await verify(make_token(rsa_key("b"), kid="k9"), jwks=cache)  # now rate-limited
    assert "retry in 30s" in ver.hint
    await cache.aclose()


async def test_key_not_found_after_a_failed_refetch_says_it_failed(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=JWKS_URI, json=default_jwks())
    httpx_mock.add_exception(httpx.ConnectError("Connection refused"), url=JWKS_URI)
    clock = FakeClock()
    cache = remote(clock, refetch_interval=30)
    await cache.get_key("k1", "RS256")
    clock.advance(40)
    with pytest.raises(KeyNotFound) as caught:  # refetched (and failed) for this kid
        await cache.get_key("k2", "RS256")
    assert caught.value.retry_in is None
    clock.advance(5)
    ver = await verify(make_token(rsa_key("b"), kid="k2"), jwks=cache)
    assert "the last JWKS fetch, 5s ago, failed, and the JWKS is refetched at most" in ver.hint
    assert "retry in 25s" in ver.hint
    assert len(httpx_mock.get_requests()) == 2
    await cache.aclose()


@pytest.mark.parametrize(
    ("kid", "alg"),
    [(None, "RS256"), ("k1", "ES256")],
    ids=["no-kid", "known-kid-wrong-alg"],
)
async def test_key_not_found_without_an_unknown_kid_has_no_retry(kid: str | None, alg: str) -> None:
    """Only an unknown kid refetches; a known one (or none) is not helped by waiting."""
    jwks = make_jwks(jwk_of(rsa_key(), "k1"), jwk_of(rsa_key("b"), "k2"))
    clock = FakeClock()
    cache = JwksCache(jwks, clock=clock)
    await cache.get_key("k1", "RS256")
    clock.advance(1)
    with pytest.raises(KeyNotFound) as caught:
        await cache.get_key(kid, alg)
    assert caught.value.retry_in is None


async def test_an_inline_jwks_never_suggests_a_retry() -> None:
    """An inline JWKS (--offline) never changes: refetching it cannot find a new key."""
    clock = FakeClock()
    cache = JwksCache(default_jwks(), clock=clock)
    await cache.get_key("k1", "RS256")
    clock.advance(1)
    ver = await verify(make_token(rsa_key("b"), kid="k2"), jwks=cache)
    assert ver.hint.startswith(GENERIC_HINT)


async def test_flood_of_random_kids_causes_one_refetch(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=JWKS_URI, json=default_jwks(), is_reusable=True)
    clock = FakeClock()
    cache = remote(clock)
    await cache.get_key("k1", "RS256")
    clock.advance(60)
    results = await asyncio.gather(
        *(cache.get_key(f"random-{i}", "RS256") for i in range(40)), return_exceptions=True
    )
    assert all(isinstance(r, KeyNotFound) for r in results)
    assert len(httpx_mock.get_requests()) == 2


async def test_fifty_concurrent_cold_requests_make_one_fetch(httpx_mock: HTTPXMock) -> None:
    async def slow_jwks(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(0.01)  # let every caller pile up on the cold cache
        return httpx.Response(200, json=default_jwks())

    httpx_mock.add_callback(slow_jwks, url=JWKS_URI)
    cache = remote()
    keys = await asyncio.gather(*(cache.get_key("k1", "RS256") for _ in range(50)))
    assert len(httpx_mock.get_requests()) == 1
    assert all(k.key_id == "k1" for k in keys)


@pytest.mark.parametrize(
    ("response", "problem"),
    [
        ({"exception": httpx.ConnectError("Connection refused")}, "unreachable (ConnectError"),
        ({"exception": httpx.ReadTimeout("timed out")}, "no answer within 5s"),
        ({"status_code": 500, "text": "oops"}, "it answered HTTP 500"),
        ({"status_code": 404, "json": {"error": "nope"}}, "it answered HTTP 404"),
        ({"text": "<html>login</html>"}, "is not JSON"),
        ({"json": {"issuer": "x"}}, 'no "keys" list'),
        ({"json": [1, 2]}, 'no "keys" list'),
        (
            {"status_code": 301, "headers": {"location": "https://elsewhere/jwks"}},
            "a redirect to https://elsewhere/jwks",
        ),
    ],
    ids=["unreachable", "timeout", "500", "404", "html", "no-keys", "list", "redirect"],
)
async def test_unusable_remote_jwks_is_jwks_unavailable(
    httpx_mock: HTTPXMock, response: dict[str, Any], problem: str
) -> None:
    if "exception" in response:
        httpx_mock.add_exception(response["exception"], url=JWKS_URI)
    else:
        httpx_mock.add_response(url=JWKS_URI, **response)
    ver = await verify(make_token(rsa_key()), jwks=remote())
    assert ver.reason == "jwks_unavailable"
    assert ver.unavailable is True
    assert JWKS_URI in ver.message and problem in ver.message
    assert ver.hint


async def test_stale_copy_is_served_when_refresh_fails(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=JWKS_URI, json=default_jwks())
    httpx_mock.add_exception(httpx.ConnectError("Connection refused"), url=JWKS_URI)
    clock = FakeClock()
    cache = remote(clock, ttl=600)
    assert (await verify(make_token(rsa_key()), jwks=cache)).ok
    clock.advance(700)
    ver = await verify(make_token(rsa_key()), jwks=cache)
    assert ver.ok, ver.message
    status = cache.status()
    assert status.last_error is not None and "unreachable" in status.last_error
    assert status.age_seconds == 700
    # The failed refresh is not retried on every request.
    assert (await verify(make_token(rsa_key()), jwks=cache)).ok
    assert len(httpx_mock.get_requests()) == 2


async def test_cold_failure_is_retried_on_the_next_request(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_exception(httpx.ConnectError("Connection refused"), url=JWKS_URI)
    httpx_mock.add_response(url=JWKS_URI, json=default_jwks())
    cache = remote()
    with pytest.raises(JwksUnavailable):
        await cache.get_key("k1", "RS256")
    assert cache.status().age_seconds is None
    assert (await cache.get_key("k1", "RS256")).key_id == "k1"
    assert cache.status().last_error is None


async def test_invalidate_forces_a_refetch(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=JWKS_URI, json=default_jwks(), is_reusable=True)
    cache = remote()
    await cache.get_key("k1", "RS256")
    cache.invalidate()
    await cache.get_key("k1", "RS256")
    assert len(httpx_mock.get_requests()) == 2


async def test_injected_client_is_used_and_not_closed(httpx_mock: HTTPXMock) -> None:
    httpx_mock.add_response(url=JWKS_URI, json=default_jwks())
    async with httpx.AsyncClient() as client:
        cache = JwksCache(JWKS_URI, client=client)
        await cache.get_key("k1", "RS256")
        await cache.aclose()
        assert not client.is_closed


# ------------------------------------------------------------ key filtering


async def test_oct_and_encryption_keys_are_ignored() -> None:
    jwks = make_jwks(
        {"kty": "oct", "kid": "hs", "k": "c2VjcmV0", "alg": "HS256"},
        jwk_of(rsa_key("b"), "enc1", "RS256", use="enc"),
        jwk_of(rsa_key("c"), "ops1", "RS256", key_ops=["encrypt"]),
        jwk_of(rsa_key(), "k1", "RS256"),
        "not a key",
    )
    cache = JwksCache(jwks)
    assert (await verify(make_token(rsa_key(), kid=None), jwks=cache)).ok  # only one usable
    assert cache.status().kids == ("k1",)
    with pytest.raises(KeyNotFound) as caught:
        await cache.get_key("hs", "RS256")
    assert caught.value.known_kids == ["k1"]


# ---------------------------------------------------------------- file JWKS


async def test_jwks_from_a_file_path_and_a_file_url(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text(json.dumps(default_jwks()))
    assert (await verify(make_token(rsa_key()), jwks=JwksCache(str(path)))).ok
    assert (await verify(make_token(rsa_key()), jwks=JwksCache(path.as_uri()))).ok


async def test_missing_jwks_file_is_jwks_unavailable(tmp_path: Path) -> None:
    missing = tmp_path / "nope.json"
    ver = await verify(make_token(rsa_key()), jwks=JwksCache(str(missing)))
    assert ver.reason == "jwks_unavailable"
    assert str(missing) in ver.message and "does not exist" in ver.message


async def test_garbage_jwks_file_is_jwks_unavailable(tmp_path: Path) -> None:
    path = tmp_path / "jwks.json"
    path.write_text("keys: [] # yaml?")
    ver = await verify(make_token(rsa_key()), jwks=JwksCache(str(path)))
    assert ver.reason == "jwks_unavailable"
    assert "the file is not JSON" in ver.message


async def test_status_before_first_fetch() -> None:
    status = JwksCache(default_jwks()).status()
    assert status.source == "<inline JWKS>"
    assert (status.key_count, status.kids, status.age_seconds, status.last_error) == (
        0,
        (),
        None,
        None,
    )


# ------------------------------------------------------ unverified decoding


def test_decode_unverified_returns_parts() -> None:
    token = make_token(rsa_key())
    decoded = decode_unverified(token)
    assert decoded.header["kid"] == "k1"
    assert decoded.claims["aud"] == AUDIENCE
    assert decoded.signing_input == token.rsplit(".", 1)[0].encode()
    assert len(decoded.signature) == 256
    assert decoded.raw == token


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("a.b", "a JWT has 3 dot-separated parts; this has 2"),
        ("a.b.c.d.e", "this has 5 (an encrypted JWE, not a signed JWT)"),
        ("Bearer a.b.c", "starts with 'Bearer '"),
        ('"a.b.c"', "wrapped in quotes"),
        (f"{b64json({'alg': 'RS256'})}.e30=.", "segment 2 (payload) is not valid base64url"),
        (f"{b64json({'alg': 'RS256'})}.!!.", "segment 2 (payload) is not valid base64url"),
        (f"{b64json([1])}.e30.", "the header is not a JSON object"),
        (f"{b64json({'a': 1})}.{b64json('x')}.", "the payload is not a JSON object"),
        ("e30.e30.A", "segment 3 (signature) is not valid base64url: its length is impossible"),
    ],
)
def test_decode_unverified_explains_what_is_wrong(token: str, message: str) -> None:
    with pytest.raises(TokenInputError) as caught:
        decode_unverified(token)
    assert message in str(caught.value)
    assert caught.value.reason == "token_malformed"
    assert caught.value.exit_code == 1


def test_decode_unverified_size_limit() -> None:
    with pytest.raises(TokenInputError) as caught:
        decode_unverified("e30.e30." + "A" * 100, max_bytes=64)
    assert caught.value.reason == "token_too_large"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (12, "12s"), (252, "4m12s"), (185, "3m05s"), (7380, "2h03m"), (273600, "3d4h")],
)
def test_humanize_delta(seconds: float, text: str) -> None:
    assert humanize_delta(seconds) == text
    assert humanize_delta(-seconds) == text


def test_fixture_now_is_what_the_messages_assume() -> None:
    from rrdev.core.claims import iso_time

    assert iso_time(NOW) == "2027-01-15T08:00:00Z"


@pytest.mark.parametrize(
    ("source", "loopback"),
    [
        ("http://127.0.0.1:8788/.well-known/jwks.json", True),
        ("http://localhost/jwks.json", True),
        ("http://[::1]:9/jwks.json", True),
        ("https://tenant.example.auth0.com/.well-known/jwks.json", False),
        ("/tmp/jwks.json", False),
    ],
)
def test_loopback_jwks_bypasses_proxy_environment(source: str, loopback: bool) -> None:
    from rrdev.core.netaddr import is_loopback_url

    assert is_loopback_url(source) is loopback
