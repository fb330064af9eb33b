"""``[proxy_credential]`` without ``jwks_uri``: OIDC discovery of the issuer finds it.

Discovery needs one concrete issuer URL that may be trusted to name the keys: a single
string (not a list of accepted issuers, not a ``{tenantid}`` template), https (plain
http only on loopback), without a query. ``discovery_ttl_seconds`` (default 3600,
1 to 86400) bounds how long the document is cached.
"""

from __future__ import annotations

from typing import NoReturn
from urllib.parse import urlsplit

from rrdev.core.model import ProxyCredential
from rrdev.core.oidc import TENANT_PLACEHOLDER, remote_url_problem
from rrdev.core.profile.limits import MAX_JWKS_TTL_SECONDS, _n, _seconds
from rrdev.core.profile.reading import _kind, _Table

_TTL_HINT = (
    "how long the OIDC discovery document (which names the JWKS) is trusted; the default is 3600"
)
_NEEDS_ONE = (
    "set jwks_uri (the provider's JWKS URL) when the profile accepts several issuers "
    "or an issuer template"
)


def _discovery_ttl(t: _Table) -> float:
    """How long a discovery document is cached: 1 s to a day."""
    name = "discovery_ttl_seconds"
    ttl = _seconds(t, name, ProxyCredential.discovery_ttl_seconds, _TTL_HINT)
    if not 1 <= ttl <= MAX_JWKS_TTL_SECONDS:
        t.fail(name, f"must be between 1 and {_n(MAX_JWKS_TTL_SECONDS)} seconds", _TTL_HINT)
    return ttl


def _discovery_issuer(t: _Table) -> None:
    """A jwtVerify credential without jwks_uri: its issuer must be one concrete,
    trustworthy URL, since ``{issuer}/.well-known/openid-configuration`` names the keys."""
    value = t.data.get("issuer")
    if value is None:
        t.fail(
            "jwks_uri",
            "auth_type = 'jwtVerify' needs 'jwks_uri', or an 'issuer' to discover it from",
            "e.g. issuer = 'https://YOUR_TENANT.us.auth0.com/' (rrdev reads its "
            "/.well-known/openid-configuration)",
        )
    if isinstance(value, list):
        if len(value) != 1:
            _needs_one(t, f"the profile lists {len(value)} issuers")
        value = value[0]
    if not isinstance(value, str):
        t.fail("issuer", f"expected a string, got {_kind(value)}")
    if TENANT_PLACEHOLDER in value:
        _needs_one(t, f"the issuer is a template with {TENANT_PLACEHOLDER}")
    problem = remote_url_problem(value) or ("it has a ?query" if urlsplit(value).query else None)
    if problem is not None:
        t.fail(
            "issuer",
            f"cannot discover the JWKS from issuer {value!r}: {problem}",
            "discovery reads {issuer}/.well-known/openid-configuration, which names the "
            "keys: it needs an https:// issuer (http only on loopback), or set jwks_uri",
        )


def _needs_one(t: _Table, why: str) -> NoReturn:
    t.fail(
        "issuer",
        f"without jwks_uri, rrdev discovers the JWKS from the issuer, but {why}: "
        "discovery needs one concrete issuer",
        _NEEDS_ONE,
    )
