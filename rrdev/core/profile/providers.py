"""The provider-mode keys of ``[proxy_credential]``: ``issuer`` as a string or an array,
the ``{tenantid}`` placeholder with its ``tenants`` allow-list (Entra multi-tenant),
``client_id`` as a string or an array (Cognito), ``token_use``,
``max_lifetime_seconds`` and ``provider``.

Security choices: an issuer template is only ever compared with a tenant id from the
allow-list substituted, so the placeholder can never turn into "any issuer"; a tenant
list is required with it and holds concrete ids only (no ``*``, no ``common``).
"""

from __future__ import annotations

import re
from typing import Any

from rrdev.core.profile.reading import _did_you_mean, _kind, _Table
from rrdev.core.providers import TENANT_PLACEHOLDER

__all__ = [
    "PROVIDERS",
    "PROVIDER_KEYS",
    "TENANT_PLACEHOLDER",
    "TOKEN_USES",
    "_provider_keys",
]

PROVIDERS = ("auth0", "okta", "cognito", "entra", "google", "keycloak", "custom")
TOKEN_USES = ("access", "id")
#: The keys this module reads (credentials.py adds them to JWT_VERIFY_KEYS).
PROVIDER_KEYS = ("tenants", "max_lifetime_seconds", "provider")
#: A tenant id as tokens carry it in ``tid`` (Entra: a GUID). Letters, digits and dashes
#: only, so a substituted issuer keeps its shape.
_TENANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9-]{0,63}")
#: Entra's path aliases: valid in a login URL, never in a token's ``tid``.
_TENANT_ALIASES = ("common", "organizations", "consumers")
#: Braced words that look like a placeholder meant as ``{tenantid}``.
_PLACEHOLDER = re.compile(r"\{[^{}/]*\}")


def _provider_keys(t: _Table) -> dict[str, Any]:
    """``issuer``/``issuers``, ``tenants``, ``client_id``/``client_ids``, ``token_use``,
    ``max_lifetime_seconds`` and ``provider``, checked, as ``ProxyCredential`` fields."""
    issuers = _issuers(t)
    client_ids = _one_or_many(t, "client_id")
    return {
        "issuer": issuers[0] if issuers else None,
        "issuers": issuers,
        "tenants": _tenants(t, issuers),
        "client_id": client_ids[0] if client_ids else None,
        "client_ids": client_ids,
        "token_use": t.choice("token_use", TOKEN_USES, "access") if t.has("token_use") else None,
        "max_lifetime_seconds": _max_lifetime(t),
        "provider": t.choice("provider", PROVIDERS, "custom") if t.has("provider") else None,
    }


def _one_or_many(t: _Table, name: str) -> tuple[str, ...]:
    """A string, or a non-empty array of non-empty strings (an allow-list)."""
    value = t.data.get(name)
    if value is None:
        return ()
    if isinstance(value, str):
        values: tuple[str, ...] = (value,)
    elif isinstance(value, list):
        values = t.str_list(name)
        if not values:
            t.fail(name, "must list at least one value", f"e.g. {name} = ['...']")
    else:
        t.fail(name, f"expected a string or a list of strings, got {_kind(value)}")
    for n, item in enumerate(values):
        if not item.strip():
            key = t.at(name) if isinstance(value, str) else f"{t.at(name)}[{n}]"
            t.ctx.fail(key, "must not be empty")
    return values


def _issuers(t: _Table) -> tuple[str, ...]:
    issuers = _one_or_many(t, "issuer")
    for n, issuer in enumerate(issuers):
        key = t.at("issuer") if isinstance(t.data.get("issuer"), str) else f"{t.at('issuer')}[{n}]"
        for found in _PLACEHOLDER.findall(issuer):
            if found != TENANT_PLACEHOLDER:
                t.ctx.fail(
                    key,
                    f"unknown placeholder {found!r} in the issuer"
                    + _did_you_mean(found, [TENANT_PLACEHOLDER]),
                    f"the only placeholder is {TENANT_PLACEHOLDER} (with tenants = [...])",
                )
        if issuer.count(TENANT_PLACEHOLDER) > 1:
            t.ctx.fail(key, f"the issuer may hold {TENANT_PLACEHOLDER} once")
    return issuers


def _tenants(t: _Table, issuers: tuple[str, ...]) -> tuple[str, ...]:
    templated = any(TENANT_PLACEHOLDER in i for i in issuers)
    if not t.has("tenants"):
        if templated:
            t.fail(
                "issuer",
                f"an issuer with {TENANT_PLACEHOLDER} needs 'tenants', the tenant ids to accept",
                "e.g. tenants = ['<tenant-guid>'] (Entra: Overview -> Tenant ID); rrdev never "
                "accepts any tenant: list each one",
            )
        return ()
    tenants = t.str_list("tenants")
    if not templated:
        t.fail(
            "tenants",
            f"'tenants' is only used with {TENANT_PLACEHOLDER} in the issuer",
            f"e.g. issuer = 'https://login.microsoftonline.com/{TENANT_PLACEHOLDER}/v2.0'",
        )
    if not tenants:
        t.fail("tenants", "must list at least one tenant id", "e.g. tenants = ['<tenant-guid>']")
    for n, tenant in enumerate(tenants):
        _tenant_id(t, f"{t.at('tenants')}[{n}]", tenant)
    return tenants


def _tenant_id(t: _Table, key: str, tenant: str) -> None:
    if tenant.lower() in _TENANT_ALIASES:
        t.ctx.fail(
            key,
            f"{tenant!r} is a sign-in alias, not a tenant id",
            "tokens carry the signing-in user's own tenant id in tid: list those ids "
            "(Entra: Overview -> Tenant ID)",
        )
    if not _TENANT_ID.fullmatch(tenant):
        t.ctx.fail(
            key,
            f"{tenant!r} is not a tenant id (letters, digits and dashes; no wildcards)",
            "list each accepted tenant's id, e.g. '72f988bf-86f1-41af-91ab-2d7cd011db47'",
        )


def _max_lifetime(t: _Table) -> int | None:
    if not t.has("max_lifetime_seconds"):
        return None
    return t.integer("max_lifetime_seconds", 0, 1)
