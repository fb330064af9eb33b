"""The field tables both directions share: which profile key is which gateway field.

Where the gateway's public documentation is silent, the choice made here is an
assumption, marked as such and listed in docs/gateway.md (target credential types other
than ``bearer``, the shapes of their ``credentialSecret``, ``credentialDefaultRuleEffect``,
``proxyAdditionalHeaders`` as an object, rule ``headers``/``query`` conditions and
``flags``, rules under targets and credentials).
"""

from __future__ import annotations

import re

from rrdev.core.records import Scope

#: Sections that are rrdev's alone: never in a payload, carried in ``rrdev_only``.
RRDEV_ONLY_SECTIONS = ("auth", "issuer", "checks")
CREDENTIAL_SECTIONS = ("target_credential", "proxy_credential")

#: The object a scope's rules attach to (POST .../{object}/{id}/rules).
PARENT_REFS: dict[Scope, str] = {
    "proxy_credential": "proxy_credential",
    "target_credential": "target_credential",
    "proxy": "proxy",
    "target": "target",
}

DEFAULT_EFFECT_FIELD = {
    "target": "targetDefaultRuleEffect",
    "proxy": "proxyDefaultRuleEffect",
    # Assumption: the seed shows no default effect for credentials; named by analogy.
    "target_credential": "credentialDefaultRuleEffect",
    "proxy_credential": "credentialDefaultRuleEffect",
}
#: What the gateway is taken to assume for a field left out (rrdev's documented defaults).
FIELD_DEFAULTS = {
    "targetDefaultRuleEffect": "allow",
    "proxyDefaultRuleEffect": "allow",
    "credentialDefaultRuleEffect": "allow",
    "proxyActive": True,
}

#: (section, profile auth_type) <-> credentialAuthType. Proxy types are the gateway's
#: own spellings; target types other than bearer are assumptions.
_AUTH_TYPES = {
    "target_credential": {
        "none": "none",
        "bearer": "bearer",
        "basic": "basicAuth",
        "api_key": "apiKey",
        "oauth2": "oauth2ClientCredentials",
    },
    "proxy_credential": {
        t: t for t in ("jwtVerify", "none", "apiKey", "bearer", "basicAuth", "jwt")
    },
}

#: (section, auth_type) -> ((credentialSecret field, profile key), ...).
SECRET_SHAPES: dict[tuple[str, str], tuple[tuple[str, str], ...]] = {
    ("target_credential", "bearer"): (("token", "token"),),
    ("target_credential", "basic"): (("username", "username"), ("password", "password")),
    ("target_credential", "api_key"): (
        ("apiKey", "api_key"),
        ("headerName", "header"),
        ("queryParam", "query_param"),
    ),
    ("target_credential", "oauth2"): (
        *(("domain", "domain"), ("tokenUrl", "token_url"), ("clientId", "client_id")),
        *(("clientSecret", "client_secret"), ("audience", "audience")),
        *(("scope", "scope"), ("resource", "resource")),
    ),
    ("proxy_credential", "jwtVerify"): (
        ("jwksUri", "jwks_uri"),
        ("audience", "audience"),
        ("issuer", "issuer"),
    ),
    ("proxy_credential", "apiKey"): (("apiKey", "secret"), ("queryParam", "query_param")),
    ("proxy_credential", "bearer"): (("token", "secret"),),
    ("proxy_credential", "jwt"): (("token", "secret"),),
    ("proxy_credential", "basicAuth"): (("username", "username"), ("password", "password")),
}

#: Profile keys the payloads carry, per section (``rules`` through rule payloads).
_COMMON = ("name", "auth_type", "region", "default_effect", "rules")
MAPPED_KEYS: dict[str, tuple[str, ...]] = {
    "target": ("name", "base_url", "test_path", "region", "default_effect", "rules"),
    "proxy": (
        *("name", "alias", "region", "default_effect", "rules"),
        *("additional_headers", "active"),
    ),
    "target_credential": (
        *_COMMON,
        *{
            key
            for (section, _t), shape in SECRET_SHAPES.items()
            for _f, key in shape
            if section == "target_credential"
        },
    ),
    "proxy_credential": (
        *_COMMON,
        *{
            key
            for (section, _t), shape in SECRET_SHAPES.items()
            for _f, key in shape
            if section == "proxy_credential"
        },
    ),
}

#: Profile keys whose values are secrets (placeholders unless --with-secrets).
_SECRET_KEYS = ("token", "password", "username", "api_key", "client_secret", "client_id")
_SECRET_KEYS += ("secret", "private_key")


def is_secret_key(dotted: str) -> bool:
    """``target_credential.token``, ``auth.client_secret``...: a value never copied
    literally. Proxy credential ``client_id`` (Cognito's app client) is not a secret."""
    section, _, key = dotted.rpartition(".")
    if key == "client_id" and section.startswith("proxy_credential"):
        return False
    return key in _SECRET_KEYS


def auth_type_to_gateway(section: str, auth_type: str) -> str:
    return _AUTH_TYPES[section].get(auth_type, auth_type)


def auth_type_from_gateway(section: str, value: str) -> str | None:
    """The profile's auth_type for a gateway credentialAuthType (None: unknown)."""
    for ours, theirs in _AUTH_TYPES[section].items():
        if theirs.lower() == str(value).lower():
            return ours
    return None


def placeholder_name(credential_name: str, field: str) -> str:
    """``backend-service-token`` + ``token`` -> ``BACKEND_SERVICE_TOKEN_SECRET``: the
    single secret of a credential is ``<NAME>_SECRET``; several are ``<NAME>_<FIELD>``."""
    stem = re.sub(r"[^A-Za-z0-9]+", "_", credential_name).strip("_").upper() or "GATEWAY"
    if stem[0].isdigit():
        stem = "_" + stem
    suffix = {"token": "SECRET", "apiKey": "SECRET", "": ""}.get(field)
    if suffix is None:
        suffix = re.sub(r"(?<!^)(?=[A-Z])", "_", field).upper()
    return f"{stem}_{suffix}" if suffix else stem
