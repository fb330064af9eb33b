"""The credential sections: ``[target_credential]`` (how rrdev authenticates to the
backend), ``[proxy_credential]`` (how a caller's JWT is verified; refused algorithms
fail here) and ``[auth]`` (where ``rrdev token`` gets a token), with the OAuth2 client
the first and the last share."""

from __future__ import annotations

from collections.abc import Mapping
from typing import cast
from urllib.parse import urlsplit

from rrdev.core.algorithms import ALGORITHM_KEY_TYPES
from rrdev.core.model import (
    STATIC_PROXY_AUTH_TYPES,
    AuthConfig,
    OAuth2Client,
    ProxyCredential,
    TargetCredential,
)
from rrdev.core.profile.client_auth import (
    CLIENT_AUTH_KEYS,
    _assertion_algorithm,
    _client_auth,
    _client_auth_complete,
    _extra,
    _private_key_file,
)
from rrdev.core.profile.discovery import _discovery_issuer, _discovery_ttl
from rrdev.core.profile.filters import _response_filter
from rrdev.core.profile.headers import _reserved_header
from rrdev.core.profile.limits import _jwks_refetch_interval, _jwks_ttl, _leeway
from rrdev.core.profile.providers import PROVIDER_KEYS, _provider_keys
from rrdev.core.profile.reading import _did_you_mean, _kind, _Table
from rrdev.core.profile.rules import _rules

TARGET_AUTH_TYPES = ("none", "bearer", "basic", "api_key", "oauth2")
AUTH_KINDS = ("auth0", "oauth2", "local", "static")
#: Asymmetric JWS algorithms only: a JWKS publishes public keys, so these are the only
#: algorithms a proxy credential can verify without sharing a secret with the issuer.
ALLOWED_ALGORITHMS = tuple(ALGORITHM_KEY_TYPES)
OAUTH2_KEYS = (
    *("domain", "token_url", "client_id", "client_secret", "audience", "resource"),
    *("scope", "client_auth"),
    *CLIENT_AUTH_KEYS,
)
#: target_credential key -> the auth_type that uses it (a key for another type is a
#: mistake worth reporting: e.g. ``token`` with the default auth_type "none" is ignored).
TARGET_CREDENTIAL_USES = {
    "token": "bearer",
    "prefix": "bearer",
    "username": "basic",
    "password": "basic",
    "api_key": "api_key",
    "header": "api_key",
    "query_param": "api_key",
    **dict.fromkeys(OAUTH2_KEYS, "oauth2"),
}
TARGET_CREDENTIAL_KEYS = (
    *("name", "auth_type", "region", "default_effect", "rules"),
    *TARGET_CREDENTIAL_USES,
    "response_filter",
)
JWT_VERIFY_KEYS = (
    *("jwks_uri", "audience", "issuer", "algorithms", "leeway_seconds", "client_id"),
    *("token_use", "jwks_ttl_seconds", "jwks_refetch_interval_seconds", "max_token_bytes"),
    "accept_sender_constrained_as_bearer",
    "jwks_max_stale_seconds",
    *PROVIDER_KEYS,
    "discovery_ttl_seconds",
)
#: static proxy credential key -> the auth_types that use it
STATIC_USES = {
    "secret": ("apiKey", "bearer", "jwt"),
    "username": ("basicAuth",),
    "password": ("basicAuth",),
    "query_param": ("apiKey",),
}
PROXY_CREDENTIAL_KEYS = (
    *("name", "auth_type", "region", "default_effect", "rules", *JWT_VERIFY_KEYS),
    *STATIC_USES,
    "response_filter",
)
AUTH_KEYS = ("kind", *OAUTH2_KEYS, "token")


def _unused_keys(t: _Table, uses: Mapping[str, str], auth_type: str) -> None:
    """A key meant for another auth_type would be silently ignored: refuse it."""
    for name in t.data:
        wanted = uses.get(name)
        if wanted is not None and wanted != auth_type:
            t.fail(
                name,
                f"{name!r} is only used with auth_type = {wanted!r} (this one is {auth_type!r})",
                f"set auth_type = {wanted!r}, or remove {name!r}",
            )


def _target_credential(t: _Table | None) -> TargetCredential:
    if t is None:
        return TargetCredential()
    auth_type = t.choice("auth_type", TARGET_AUTH_TYPES, "none")
    _unused_keys(t, TARGET_CREDENTIAL_USES, auth_type)
    credential = TargetCredential(
        name=t.str_or("name", TargetCredential.name),
        auth_type=auth_type,  # type: ignore[arg-type]
        region=t.opt_str("region"),
        default_effect=t.effect(),  # type: ignore[arg-type]
        rules=_rules(t, "target_credential"),
        token=t.secret("token"),
        prefix=t.str_or("prefix", TargetCredential.prefix),
        username=t.secret("username"),
        password=t.secret("password"),
        api_key=t.secret("api_key"),
        header=t.opt_str("header"),
        query_param=t.opt_str("query_param"),
        oauth2=_oauth2_client(t) if auth_type == "oauth2" else None,
        response_filter=_response_filter(t),
    )
    _target_credential_complete(t, credential)
    return credential


def _target_credential_complete(t: _Table, c: TargetCredential) -> None:
    needs = {"bearer": ("token",), "basic": ("username", "password"), "api_key": ("api_key",)}
    for name in needs.get(c.auth_type, ()):
        if not t.has(name):
            t.fail(name, f"auth_type = {c.auth_type!r} needs {name!r}")
    if c.auth_type == "api_key":
        if (c.header is None) == (c.query_param is None):
            t.fail(
                "header",
                "auth_type = 'api_key' needs exactly one of 'header' or 'query_param'",
                "e.g. header = 'X-API-Key' (sent as a header) or query_param = 'api_key'",
            )
        if c.header is not None:
            t.header_name("header", c.header)
            if c.header.lower() != "authorization":  # an api key in Authorization is fine
                _reserved_header(t.ctx, t.at("header"), c.header, "the api-key header")
    if c.auth_type == "oauth2":
        _oauth2_complete(t, "auth_type = 'oauth2'")


def _oauth2_client(t: _Table) -> OAuth2Client:
    return OAuth2Client(
        domain=t.opt_str("domain"),
        token_url=t.opt_str("token_url"),
        client_id=t.secret("client_id"),
        client_secret=t.secret("client_secret"),
        audience=t.opt_str("audience"),
        resource=t.opt_str("resource"),
        scope=t.opt_str("scope"),
        client_auth=_client_auth(t),  # type: ignore[arg-type]
        extra=_extra(t),
        private_key=t.secret("private_key"),
        private_key_file=_private_key_file(t),
        key_id=t.opt_str("key_id"),
        assertion_algorithm=_assertion_algorithm(t),
    )


def _oauth2_complete(t: _Table, what: str) -> None:
    if t.has("domain") == t.has("token_url"):
        t.fail(
            "token_url" if t.has("token_url") else "domain",
            f"{what} needs exactly one of 'domain' (Auth0) or 'token_url' (any OAuth2 server)",
        )
    if t.has("token_url"):
        url = urlsplit(cast(str, t.opt_str("token_url")))
        if url.scheme not in ("http", "https") or not url.netloc:
            t.fail("token_url", "expected an http:// or https:// URL")
    if not t.has("client_id"):
        t.fail("client_id", f"{what} needs 'client_id'", "e.g. client_id = '${CLIENT_ID}'")
    _client_auth_complete(t, what)


def _proxy_credential(t: _Table | None) -> ProxyCredential:
    if t is None:
        return ProxyCredential()
    auth_type = _proxy_auth_type(t)
    _static_keys_used_right(t, auth_type)
    if auth_type != "jwtVerify":
        _unused_keys(t, dict.fromkeys(JWT_VERIFY_KEYS, "jwtVerify"), auth_type)
    elif not t.has("jwks_uri"):
        _discovery_issuer(t)  # before the issuer's own parsing: it names the real problem
    credential = ProxyCredential(
        name=t.str_or("name", ProxyCredential.name),
        auth_type=auth_type,  # type: ignore[arg-type]
        region=t.opt_str("region"),
        default_effect=t.effect(),  # type: ignore[arg-type]
        rules=_rules(t, "proxy_credential"),
        jwks_uri=t.opt_str("jwks_uri"),
        audience=_audience(t),
        algorithms=_algorithms(t),
        leeway_seconds=_leeway(t),
        jwks_ttl_seconds=_jwks_ttl(t),
        jwks_refetch_interval_seconds=_jwks_refetch_interval(t),
        jwks_max_stale_seconds=_max_stale(t),
        max_token_bytes=t.integer("max_token_bytes", ProxyCredential.max_token_bytes, 1),
        accept_sender_constrained_as_bearer=t.boolean("accept_sender_constrained_as_bearer", False),
        **_provider_keys(t),
        discovery_ttl_seconds=_discovery_ttl(t),
        secret=t.secret("secret"),
        username=t.secret("username"),
        password=t.secret("password"),
        query_param=_api_key_param(t),
        response_filter=_response_filter(t),
    )
    if auth_type == "jwtVerify":
        _jwt_verify_complete(t, credential)
    return credential


def _static_keys_used_right(t: _Table, auth_type: str) -> None:
    """A static credential's keys only with its type, and each type's required keys."""
    for name, types in STATIC_USES.items():
        if t.has(name) and auth_type not in types:
            wanted = " or ".join(repr(x) for x in types)
            t.fail(
                name,
                f"{name!r} is only used with auth_type = {wanted} (this one is {auth_type!r})",
                f"set auth_type = {types[0]!r}, or remove {name!r}",
            )
    for name, types in STATIC_USES.items():
        if auth_type in types and name != "query_param" and not t.has(name):
            t.fail(
                name,
                f"auth_type = {auth_type!r} needs {name!r}",
                f"e.g. {name} = '${{PROXY_{name.upper()}}}' (from the environment)",
            )


def _api_key_param(t: _Table) -> str:
    value = t.str_or("query_param", ProxyCredential.query_param)
    if not value.strip() or any(c in value for c in "&;=#?% ") or not value.isprintable():
        t.fail(
            "query_param",
            f"{value!r} is not a usable query parameter name",
            "a plain name such as 'apiKey' (no spaces, '&', ';', '=', '%', '#' or '?')",
        )
    return value


#: A day: a key set older than that is no longer a stand-in for the issuer's.
MAX_STALE_LIMIT = 86400.0


def _max_stale(t: _Table) -> float:
    value = t.number("jwks_max_stale_seconds", ProxyCredential.jwks_max_stale_seconds)
    if value > MAX_STALE_LIMIT:
        t.fail(
            "jwks_max_stale_seconds",
            f"must be at most {MAX_STALE_LIMIT:g} (a day), got {value:g}",
            "a key set this old may still trust keys the issuer has revoked",
        )
    return value


def _proxy_auth_type(t: _Table) -> str:
    value = t.str_or("auth_type", "jwtVerify")
    folded = value.lower().replace("_", "")
    known = ("jwtVerify", "none", *STATIC_PROXY_AUTH_TYPES)
    for name in known:
        if folded == name.lower():
            return name
    if folded == "basic":  # the target credential's spelling
        return "basicAuth"
    t.fail(
        "auth_type",
        f"expected one of {', '.join(repr(k) for k in known)}, got {value!r}"
        + _did_you_mean(value, known),
        "jwtVerify verifies JWTs against a JWKS; apiKey, bearer, basicAuth and jwt compare "
        "a fixed secret (secret = '${VAR}')",
    )


def _audience(t: _Table) -> tuple[str, ...]:
    value = t.data.get("audience")
    if isinstance(value, str):
        return (value,)
    if value is not None and not isinstance(value, list):
        t.fail("audience", f"expected a string or a list of strings, got {_kind(value)}")
    return t.str_list("audience")


def _algorithms(t: _Table) -> tuple[str, ...]:
    if not t.has("algorithms"):
        return ProxyCredential.algorithms
    algorithms = t.str_list("algorithms")
    if not algorithms:
        t.fail("algorithms", "must list at least one algorithm", "e.g. algorithms = ['RS256']")
    for n, alg in enumerate(algorithms):
        key = f"{t.at('algorithms')}[{n}]"
        if alg.lower() == "none":
            t.ctx.fail(
                key,
                "algorithm 'none' is refused",
                "'none' means an unsigned token: anyone could forge a caller",
            )
        if alg.upper().startswith("HS"):
            t.ctx.fail(
                key,
                f"algorithm {alg!r} is refused",
                "HMAC algorithms need a shared secret, which a JWKS of public keys cannot "
                "carry; accepting them is how key-confusion attacks (a public key used as "
                "the HMAC secret) forge tokens. Use the issuer's RS256/ES256/EdDSA keys",
            )
        if alg not in ALLOWED_ALGORITHMS:
            t.ctx.fail(
                key,
                f"unknown algorithm {alg!r}{_did_you_mean(alg, ALLOWED_ALGORITHMS)}",
                f"known: {', '.join(ALLOWED_ALGORITHMS)}",
            )
    return algorithms


def _jwt_verify_complete(t: _Table, c: ProxyCredential) -> None:
    if not t.has("issuer"):  # jwks_uri may be omitted: discovery finds it from the issuer
        t.fail("issuer", "auth_type = 'jwtVerify' needs 'issuer'")
    if not c.audience and c.client_id is None:
        t.fail(
            "audience",
            "auth_type = 'jwtVerify' needs 'audience' (or 'client_id' for Cognito access tokens)",
            "the audience is the API identifier, not the application's client ID",
        )


def _auth(t: _Table) -> AuthConfig:
    kind = _auth_kind(t)
    if kind == "static" and not t.has("token"):
        t.fail("token", "kind = 'static' needs 'token'", "e.g. token = '${API_TOKEN}'")
    if kind == "auth0" and not t.has("domain"):
        t.fail(
            "domain", "kind = 'auth0' needs 'domain'", "e.g. domain = 'YOUR_TENANT.us.auth0.com'"
        )
    if kind in ("auth0", "oauth2"):
        _oauth2_complete(t, f"kind = {kind!r}")
    elif kind == "local" and t.data.get("client_auth") == "private_key_jwt":
        _client_auth_complete(t, "kind = 'local'")
    return AuthConfig(kind=kind, client=_oauth2_client(t), token=t.secret("token"))  # type: ignore[arg-type]


def _auth_kind(t: _Table) -> str:
    if t.has("kind"):
        return t.choice("kind", AUTH_KINDS, "auth0")
    for key, kind in (("token", "static"), ("token_url", "oauth2"), ("domain", "auth0")):
        if t.has(key):
            return kind
    t.fail(
        "kind",
        "cannot tell how to get a token",
        "set kind = 'local' (the local issuer), or one of domain (Auth0), token_url "
        "(OAuth2) or token (a static token)",
    )
