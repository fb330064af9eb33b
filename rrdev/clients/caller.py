"""The caller token: what ``rrdev check`` and ``explain --auth`` send, per a profile's ``[auth]``.

``static``: the profile's token as it is. ``auth0``, ``oauth2`` and ``local``: a
client-credentials fetch (``rrdev.clients.oauth2.fetch_token``), cached on disk
unless the caller says not to; ``local`` takes what it leaves out from the local
issuer (``rrdev issuer serve``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING

from rrdev.clients.oauth2 import (
    CONTROL_OR_SPACE,
    DEFAULT_TIMEOUT_SECONDS,
    FetchedToken,
)
from rrdev.clients.token_cache import TokenCache
from rrdev.clients.token_fetch import fetch_token
from rrdev.core.errors import ProfileError, TokenInputError
from rrdev.core.model import OAuth2Client, Secret
from rrdev.core.tokens import decode_unverified

if TYPE_CHECKING:
    # Imported lazily at run time, as in jwks.py: ``import httpx`` can pull in rich.
    import httpx

    from rrdev.core.model import AuthConfig, IssuerClient, Profile

__all__ = [
    "LOCAL_ISSUER_URL",
    "auth_client",
    "caller_token",
    "fetch_caller_token",
    "require_auth",
]

#: ``[auth] kind = "local"`` without ``domain``: where ``rrdev issuer serve`` listens.
LOCAL_ISSUER_URL = "http://127.0.0.1:8788"

_AUTH_HINT = """add an [auth] section, e.g.

[auth]
domain = "YOUR_TENANT.us.auth0.com"
client_id = "${AUTH0_CLIENT_ID}"
client_secret = "${AUTH0_CLIENT_SECRET}"
audience = "https://api.example.com\""""


def auth_client(profile: Profile) -> OAuth2Client:
    """The client-credentials settings of ``profile``'s ``[auth]`` (``auth0``,
    ``oauth2`` or ``local``). ``local`` fills what it leaves out from the local
    issuer: ``domain`` (``LOCAL_ISSUER_URL``), the first ``[[issuer.clients]]``
    entry, and the proxy credential's first audience."""
    auth = require_auth(profile)
    if auth.kind == "static":
        raise ProfileError(
            "[auth] kind = 'static' has a token, not client credentials",
            file=profile.path,
            key="auth.kind",
        )
    client = auth.client
    if auth.kind != "local":
        return client
    if client.domain is None and client.token_url is None:
        client = replace(client, domain=LOCAL_ISSUER_URL)
    keyed = client.client_auth == "private_key_jwt"  # needs no secret
    if client.client_id is None or (client.client_secret is None and not keyed):
        first = _first_issuer_client(profile)
        if first.client_secret is None and not keyed:
            raise ProfileError(
                "[auth] kind = 'local' takes its client from [[issuer.clients]], whose first "
                "entry has no client_secret",
                file=profile.path,
                key="auth",
                hint="set [auth] client_auth = 'private_key_jwt' with private_key, or give "
                "that client a client_secret",
            )
        client = replace(
            client,
            client_id=Secret(first.client_id, key="issuer.clients[0].client_id"),
            client_secret=None if keyed else first.client_secret,
        )
    audiences = profile.proxy_credential.audience
    if client.audience is None and audiences:
        client = replace(client, audience=audiences[0])
    return client


def _first_issuer_client(profile: Profile) -> IssuerClient:
    issuer_clients = profile.issuer.clients if profile.issuer is not None else ()
    if not issuer_clients:
        raise ProfileError(
            "[auth] kind = 'local' needs client_id and client_secret, or an "
            "[[issuer.clients]] entry to take them from",
            file=profile.path,
            key="auth",
        )
    return issuer_clients[0]


def require_auth(profile: Profile) -> AuthConfig:
    """``profile.auth``, or a ``ProfileError`` with an example ``[auth]``."""
    if profile.auth is None:
        raise ProfileError(
            "the profile has no [auth] section, so rrdev cannot get a caller token",
            file=profile.path,
            hint=_AUTH_HINT,
        )
    return profile.auth


async def fetch_caller_token(
    profile: Profile,
    *,
    use_cache: bool = True,
    http: httpx.AsyncClient | None = None,
    cache: TokenCache | None = None,
    now: float | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    env: Mapping[str, str] | None = None,
) -> FetchedToken:
    """The caller token per ``profile``'s ``[auth]``, with its expiry.

    ``static``: the ``token`` secret (expiry from its ``exp`` when it is a JWT).
    Otherwise a client-credentials fetch, cached in ``cache`` (default: the user's
    ``TokenCache``) unless ``use_cache`` is false. Raises ``ProfileError`` without
    ``[auth]``, ``EnvVarError`` for an unset secret, ``TokenFetchError`` (exit 4).
    """
    auth = require_auth(profile)
    if auth.kind == "static":
        return _static_token(profile, auth, env)
    client = auth_client(profile)
    if use_cache and cache is None:
        cache = TokenCache()
    return await fetch_token(
        client,
        http=http,
        cache=cache if use_cache else None,
        now=now,
        timeout=timeout,
        env=env,
    )


async def caller_token(
    profile: Profile, *, use_cache: bool = True, http: httpx.AsyncClient | None = None
) -> str:
    """The caller's access token per ``profile``'s ``[auth]`` (see
    ``fetch_caller_token``): what ``rrdev check`` and ``explain --auth`` send."""
    fetched = await fetch_caller_token(profile, use_cache=use_cache, http=http)
    return fetched.access_token


def _static_token(
    profile: Profile, auth: AuthConfig, env: Mapping[str, str] | None
) -> FetchedToken:
    if auth.token is None:  # the loader requires it
        raise ProfileError("[auth] kind = 'static' needs 'token'", file=profile.path, key="auth")
    token = auth.token.resolve(env).strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    if not token or CONTROL_OR_SPACE.search(token):
        raise ProfileError(
            "the static token is empty or has whitespace in it",
            file=auth.token.file,
            line=auth.token.line,
            key=auth.token.key or "auth.token",
        )
    expires_at: float | None = None
    scope: str | None = None
    try:
        claims = decode_unverified(token).claims
    except TokenInputError:
        claims = {}
    exp = claims.get("exp")
    if isinstance(exp, (int, float)) and not isinstance(exp, bool):
        expires_at = float(exp)
    if isinstance(claims.get("scope"), str):
        scope = claims["scope"]
    return FetchedToken(access_token=token, expires_at=expires_at, scope=scope)
