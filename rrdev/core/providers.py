"""What rrdev knows of each identity provider's habits: which issuers a profile accepts
(an array of exact strings; Entra's ``{tenantid}`` template with its allow-list) and the
hints that name a provider's trap when a token is refused.

Pure and small: ``rrdev.core.claims`` runs the checks and raises; this module only
answers "does this issuer fit?" and "what would a person need to hear?". A hint is
``None`` when nothing provider-specific applies, so the generic hint stands.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from rrdev.core.model import ProxyCredential
from rrdev.core.tokens import clip

__all__ = [
    "COGNITO_ID_TOKEN_HINT",
    "TENANT_PLACEHOLDER",
    "audience_hint",
    "expected_issuers",
    "issuer_accepted",
    "issuer_hint",
    "issuer_tenant",
    "missing_audience_hint",
    "signature_hint",
]

TENANT_PLACEHOLDER = "{tenantid}"

#: Microsoft Graph's audiences: a token for Graph, not for the caller's own API.
GRAPH_AUDIENCES = frozenset({"00000003-0000-0000-c000-000000000000", "https://graph.microsoft.com"})
_GRAPH_HINT = (
    "this is a Microsoft Graph token (aud {aud}): it is meant for graph.microsoft.com, "
    "not your API. Request a token for your API instead: scope 'api://<your API's "
    "application id>/.default' (client credentials) or one of your API's own delegated "
    "scopes, not User.Read"
)
_GRAPH_NONCE_HINT = (
    "this looks like a Microsoft Graph token (a nonce in its header): Graph tokens are "
    "signed over a hashed nonce, so nobody but Graph can verify them, by design. "
    "Request a token for your API instead: scope 'api://<your API's application "
    "id>/.default', or one of your API's own scopes"
)
COGNITO_ID_TOKEN_HINT = (
    "send the Cognito access token (AuthenticationResult.AccessToken), not the ID token "
    "(IdToken): an ID token carries aud and token_use 'id', an access token client_id "
    "and token_use 'access'"
)
_COGNITO_AUDIENCE_HINT = (
    "Cognito access tokens carry no aud: set proxy_credential.client_id (the app client "
    "id; a list for several) and token_use = 'access' instead of audience"
)
_KEYCLOAK_ACCOUNT_HINT = (
    "Keycloak writes aud 'account' unless the client has an audience mapper: add one "
    "(Clients -> <client> -> Client scopes -> <client>-dedicated -> Add mapper -> "
    "Audience, included client audience: your API's client), or accept 'account' only "
    "if no other client of the realm may call this API"
)
_ENTRA_V1 = "https://sts.windows.net/"
_ENTRA_V2 = "https://login.microsoftonline.com/"


# ------------------------------------------------------------------ issuers


def expected_issuers(cred: ProxyCredential) -> str:
    """The accepted issuers as the checklist shows them (tenants included)."""
    shown = " | ".join(cred.accepted_issuers) or "(not set in the profile)"
    if cred.tenants:
        shown += f" (tenants: {', '.join(cred.tenants)})"
    return shown


def issuer_accepted(iss: str, claims: Mapping[str, Any], cred: ProxyCredential) -> bool:
    """``iss`` equals one accepted issuer exactly; a template only with the token's own
    ``tid`` substituted, and only when that tid is in the allow-list."""
    tid = claims.get("tid")
    tenant = tid if isinstance(tid, str) and tid in cred.tenants else None
    for issuer in cred.accepted_issuers:
        if TENANT_PLACEHOLDER not in issuer:
            if iss == issuer:
                return True
        elif tenant is not None and iss == issuer.replace(TENANT_PLACEHOLDER, tenant):
            return True
    return False


def issuer_tenant(iss: str, cred: ProxyCredential) -> str | None:
    """The tenant id ``iss`` carries where a template has ``{tenantid}``, or None when
    ``iss`` fits no template (for messages only: acceptance is ``issuer_accepted``)."""
    for issuer in cred.accepted_issuers:
        head, sep, tail = issuer.partition(TENANT_PLACEHOLDER)
        if not sep or len(iss) <= len(head) + len(tail):
            continue
        if iss.startswith(head) and iss.endswith(tail):
            tenant = iss[len(head) : len(iss) - len(tail)]
            if tenant and "/" not in tenant:
                return tenant
    return None


def issuer_hint(iss: str, cred: ProxyCredential) -> str | None:
    """A provider's issuer trap: Okta's org server, Entra's v1/v2 issuers, Google's
    two spellings. None when none applies."""
    expected = cred.accepted_issuers
    for hint in (_okta_org_hint, _entra_version_hint, _google_spelling_hint):
        found = hint(iss, expected)
        if found:
            return found
    return None


def _okta_org_hint(iss: str, expected: Sequence[str]) -> str | None:
    custom = [e for e in expected if "/oauth2/" in e]
    if not custom or "/oauth2/" in iss:
        return None
    host = urlsplit(iss).hostname or ""
    if not any(host == (urlsplit(e).hostname or "") for e in custom) and "okta" not in host:
        return None
    return (
        f"the token comes from Okta's org authorization server ({clip(iss)}): org server "
        "tokens are meant for Okta's own APIs and cannot be verified by yours. Get the "
        f"token from the custom authorization server {custom[0]!r} "
        f"({custom[0]}/v1/token; Security -> API -> Authorization Servers)"
    )


def _entra_version_hint(iss: str, expected: Sequence[str]) -> str | None:
    wants_v2 = any(_entra_v2(e) for e in expected)
    wants_v1 = any(e.startswith(_ENTRA_V1) for e in expected)
    if iss.startswith(_ENTRA_V1) and wants_v2 and not wants_v1:
        return (
            "this is an Entra ID v1.0 token (issuer https://sts.windows.net/<tenant>/): set "
            "accessTokenAcceptedVersion = 2 in the API's app registration manifest to get "
            "v2.0 tokens, or accept the v1 issuer too (issuer = [..., "
            "'https://sts.windows.net/<tenant>/'], with aud the Application ID URI)"
        )
    if _entra_v2(iss) and wants_v1 and not wants_v2:
        return (
            "this is an Entra ID v2.0 token (issuer https://login.microsoftonline.com/<tenant>"
            "/v2.0): the API's manifest sets accessTokenAcceptedVersion = 2; accept the v2 "
            "issuer (and the client id GUID as audience), or set it back to null/1"
        )
    return None


def _entra_v2(issuer: str) -> bool:
    return issuer.startswith(_ENTRA_V2) and issuer.rstrip("/").endswith("/v2.0")


def _google_spelling_hint(iss: str, expected: Sequence[str]) -> str | None:
    spellings = {"https://accounts.google.com", "accounts.google.com"}
    if iss in spellings and any(e in spellings for e in expected):
        return (
            "Google writes iss both with and without https://: accept both, "
            "issuer = ['https://accounts.google.com', 'accounts.google.com']"
        )
    return None


# ------------------------------------------------------------------ audience


def audience_hint(
    auds: Sequence[str], claims: Mapping[str, Any], cred: ProxyCredential
) -> str | None:
    """A Graph token, or a Cognito ID token sent where an audience is checked."""
    graph = [a for a in auds if a.rstrip("/") in GRAPH_AUDIENCES]
    if graph:
        return _GRAPH_HINT.format(aud=clip(graph[0]))
    if claims.get("token_use") == "id" and _cognito_issuer(claims):
        return f"this is a Cognito ID token. {COGNITO_ID_TOKEN_HINT}; {_COGNITO_AUDIENCE_HINT}"
    if auds == ["account"] and _keycloak_issuer(claims):
        return _KEYCLOAK_ACCOUNT_HINT
    return None


def missing_audience_hint(claims: Mapping[str, Any]) -> str | None:
    """A token without aud: a Cognito access token sent to an audience-checking profile."""
    if _cognito_issuer(claims) or claims.get("token_use") == "access":
        return f"this looks like a Cognito access token. {_COGNITO_AUDIENCE_HINT}"
    return None


def _keycloak_issuer(claims: Mapping[str, Any]) -> bool:
    iss = claims.get("iss")
    return isinstance(iss, str) and "/realms/" in iss


def _cognito_issuer(claims: Mapping[str, Any]) -> bool:
    iss = claims.get("iss")
    return isinstance(iss, str) and iss.startswith("https://cognito-idp.")


# ------------------------------------------------------------------ signature


def signature_hint(header: Mapping[str, Any], claims: Mapping[str, Any]) -> str | None:
    """A Graph token fails its signature by design (the nonce in its header)."""
    aud = claims.get("aud")
    auds = aud if isinstance(aud, list) else [aud]
    if any(isinstance(a, str) and a.rstrip("/") in GRAPH_AUDIENCES for a in auds):
        return _GRAPH_NONCE_HINT
    if "nonce" in header:
        return _GRAPH_NONCE_HINT
    return None
