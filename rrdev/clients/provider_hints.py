"""Hints for a token endpoint's refusal: what the common provider mistakes mean.

Each hint is a small function of the request, the HTTP status, the provider's
``error`` code and its description (lower-cased); the first that has something to
say wins. Auth0, Okta, Entra ID, Keycloak and Cognito each have their own ways to
say "wrong audience" or "this client may not do that".
"""

from __future__ import annotations

from collections.abc import Callable

from rrdev.clients.oauth2 import TokenRequest

__all__ = ["status_hint", "where_hint"]


def where_hint(request: TokenRequest) -> str:
    if request.style == "auth0":
        return (
            "check domain in the profile: Auth0 takes YOUR_TENANT.REGION.auth0.com "
            "(or your custom domain); rrdev posts to <domain>/oauth/token"
        )
    return "check token_url in the profile: it must be the provider's token endpoint"


def status_hint(request: TokenRequest, status: int, error: str, description: str) -> str:
    text = description.lower()
    for check in _HINTS:
        hint = check(request, status, error, text)
        if hint:
            return hint
    return ""


def _hint_unknown_audience(request: TokenRequest, status: int, error: str, text: str) -> str:
    if "service not found" not in text and "service not enabled" not in text:
        return ""
    return (
        f"no API has the identifier {request.audience!r} in this tenant: audience must "
        "be the API's Identifier exactly as shown in Auth0 (Applications -> APIs -> your "
        "API -> Settings), not its name or an application's client ID"
    )


def _hint_bad_client(request: TokenRequest, status: int, error: str, text: str) -> str:
    if error != "invalid_client" and status != 401:
        return ""
    refs = ", ".join(f"${{{r}}}" for r in request.env_refs)
    if request.client_auth == "private_key_jwt":
        return _hint_bad_assertion(request)
    hint = "the client_id/client_secret pair was not accepted: check " + (
        f"the variables the profile reads ({refs})" if refs else "client_id and client_secret"
    )
    if request.style == "oauth2":
        other = (
            "client_secret_post"
            if request.client_auth == "client_secret_basic"
            else "client_secret_basic"
        )
        hint += (
            f"; if they are right, the server may want client_auth = {other!r} "
            f"(this request used {request.client_auth})"
        )
    return hint


def _hint_bad_assertion(request: TokenRequest) -> str:
    return (
        "the client assertion (private_key_jwt) was not accepted: check that the server "
        "has this client's public key (and key_id, if it needs a kid), that "
        "assertion_algorithm is one it allows, and that it expects the token URL "
        f"{request.url} as the assertion's aud"
    )


def _hint_not_authorised(request: TokenRequest, status: int, error: str, text: str) -> str:
    if error != "access_denied" and "client-grant" not in text:
        return ""
    return (
        "the application is not authorised for this API: in the Auth0 dashboard open "
        "Applications -> APIs -> your API -> Machine To Machine Applications, switch this "
        "application on and tick the scopes it needs"
    )


def _hint_entra(request: TokenRequest, status: int, error: str, text: str) -> str:
    if "aadsts" not in text:
        return ""
    if not (request.scope or "").endswith("/.default"):
        return (
            "Entra ID's client-credentials flow wants scope = '<Application ID URI>/.default' "
            "(e.g. 'api://my-api/.default') and no audience"
        )
    return "look the AADSTS code up in Microsoft's Entra ID error reference"


def _hint_oauth_error(request: TokenRequest, status: int, error: str, text: str) -> str:
    if error == "unauthorized_client":
        return (
            "this client may not use the client-credentials grant: enable it (Auth0: "
            "Applications -> your app -> Settings -> Advanced -> Grant Types; Okta: the "
            "app's Client Credentials grant; Keycloak: Service accounts roles)"
        )
    if error == "invalid_scope":
        return (
            f"a requested scope ({request.scope or 'none'}) is not defined for this API or "
            "not granted to this client: check scope in the profile"
        )
    if error == "unsupported_grant_type":
        return "this endpoint does not do client credentials: check the token URL"
    if error == "invalid_request":
        return (
            "the provider refused the request's parameters: check audience, resource and "
            "scope against what it expects (Okta and Cognito use scope; Entra ID "
            "scope = '<app>/.default'; Auth0 audience)"
        )
    return ""


def _hint_status(request: TokenRequest, status: int, error: str, text: str) -> str:
    if status == 404:
        return where_hint(request)
    if status == 429:
        return (
            "the provider is rate-limiting token requests (Auth0 also counts M2M tokens "
            "against a monthly quota): rrdev caches tokens, so avoid --no-cache in loops"
        )
    if status >= 500:
        return "the provider had a problem; try again shortly or check its status page"
    return ""


_HINTS: tuple[Callable[[TokenRequest, int, str, str], str], ...] = (
    _hint_unknown_audience,
    _hint_bad_client,
    _hint_not_authorised,
    _hint_entra,
    _hint_oauth_error,
    _hint_status,
)
