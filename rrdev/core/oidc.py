"""OpenID Connect discovery, the pure part: where an issuer's discovery document lives,
which URLs may be trusted for keys, and what a usable document says.

A profile may give ``issuer`` and no ``jwks_uri``: rrdev then reads
``{issuer without trailing slash}/.well-known/openid-configuration`` and takes its
``jwks_uri``. The document is part of the trust configuration, so it is checked hard:
its ``issuer`` must be exactly the profile's (else its keys would be another issuer's),
and both the document's URL and its ``jwks_uri`` must be https (plain http only on
loopback, for local issuers and tests). Fetching and caching live in
``rrdev.clients.discovery``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from rrdev.core.errors import DiscoveryIssuerMismatch, DiscoveryUnavailable
from rrdev.core.model import ProxyCredential
from rrdev.core.netaddr import is_loopback
from rrdev.core.tokens import clip

__all__ = [
    "DISCOVERY_PATH",
    "DiscoveryDocument",
    "DiscoverySource",
    "discovery_note",
    "discovery_url",
    "jwks_source_of",
    "read_discovery_document",
    "remote_url_problem",
]

DISCOVERY_PATH = "/.well-known/openid-configuration"
#: An issuer template, not an issuer: discovery needs one concrete URL.
TENANT_PLACEHOLDER = "{tenantid}"


def discovery_url(issuer: str) -> str:
    """``{issuer without trailing slash}/.well-known/openid-configuration``."""
    return issuer.rstrip("/") + DISCOVERY_PATH


def remote_url_problem(url: str) -> str | None:
    """Why ``url`` may not be trusted to hand out keys (None: it may): it must be
    https, or http on a loopback host; no user:password@, no fragment."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return "it is not a valid URL"
    if parts.scheme not in ("http", "https") or not host:
        return "it is not an http(s) URL"
    if parts.scheme == "http" and not is_loopback(host):
        return "plain http is only accepted on loopback (anyone on the path could swap the keys)"
    if parts.username is not None or parts.password is not None:
        return "it carries user:password@"
    if parts.fragment:
        return "it has a #fragment"
    return None


@dataclass(frozen=True)
class DiscoverySource:
    """A JWKS found through OIDC discovery of ``issuer``; the document is cached for
    ``ttl`` seconds (``discovery_ttl_seconds``, default 3600)."""

    issuer: str
    ttl: float = ProxyCredential.discovery_ttl_seconds

    @property
    def url(self) -> str:
        return discovery_url(self.issuer)


@dataclass(frozen=True)
class DiscoveryDocument:
    """What rrdev uses from a checked discovery document. ``algorithms`` is
    ``id_token_signing_alg_values_supported`` (empty when the document omits it)."""

    issuer: str
    jwks_uri: str
    algorithms: tuple[str, ...] = ()
    token_endpoint: str | None = None


def jwks_source_of(cred: ProxyCredential) -> str | DiscoverySource | None:
    """The profile's JWKS source: ``jwks_uri`` when set, else discovery of its issuer."""
    if cred.jwks_uri:
        return cred.jwks_uri
    if cred.issuer:
        return DiscoverySource(cred.issuer, cred.discovery_ttl_seconds)
    return None


def read_discovery_document(document: Any, issuer: str, url: str) -> DiscoveryDocument:
    """The checked document, or ``DiscoveryUnavailable`` (``DiscoveryIssuerMismatch``
    when it names another issuer: compared exactly, as tokens' ``iss`` is)."""
    if not isinstance(document, dict):
        raise DiscoveryUnavailable(url, "the document is not a JSON object")
    named = document.get("issuer")
    if not isinstance(named, str):
        raise DiscoveryUnavailable(url, 'the document has no "issuer" string')
    if named != issuer:
        raise _mismatch(url, named, issuer)
    jwks_uri = document.get("jwks_uri")
    if not isinstance(jwks_uri, str) or not jwks_uri:
        raise DiscoveryUnavailable(url, 'the document has no "jwks_uri" string')
    problem = remote_url_problem(jwks_uri)
    if problem is not None:
        raise DiscoveryUnavailable(
            url,
            f"its jwks_uri {clip(jwks_uri)} is refused: {problem}",
            "the provider's keys must come over https; set proxy_credential.jwks_uri "
            "yourself if this issuer really serves them elsewhere",
        )
    return DiscoveryDocument(
        issuer=named,
        jwks_uri=jwks_uri,
        algorithms=_strings(document.get("id_token_signing_alg_values_supported")),
        token_endpoint=_optional_str(document.get("token_endpoint")),
    )


def _mismatch(url: str, named: str, issuer: str) -> DiscoveryIssuerMismatch:
    slash = named.rstrip("/") == issuer.rstrip("/")
    why = " (they differ only by the trailing slash)" if slash else ""
    return DiscoveryIssuerMismatch(
        url,
        f"it names the issuer {clip(named)}, but the profile's issuer is {issuer!r}{why}",
        "rrdev compares issuers exactly, as tokens' iss is compared: set "
        "proxy_credential.issuer to the issuer your tokens carry (the document's, if "
        "that is your provider's), or set jwks_uri to skip discovery",
    )


def _strings(value: Any) -> tuple[str, ...]:
    if not isinstance(value, list):
        return ()
    return tuple(v for v in value if isinstance(v, str))


def _optional_str(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def discovery_note(cred: ProxyCredential) -> str | None:
    """What ``rrdev validate`` says about a profile that relies on discovery."""
    source = jwks_source_of(cred) if cred.auth_type == "jwtVerify" else None
    if not isinstance(source, DiscoverySource):
        return None
    return (
        f"proxy_credential.jwks_uri: discovered from {source.url} (OIDC discovery, "
        f"cached for discovery_ttl_seconds = {source.ttl:g})"
    )
