"""A check's token and the request it sends.

``TokenSource`` turns a check's ``token`` into a bearer token: fetched with ``[auth]``,
minted by the local keyset, or read from the environment. ``prepare`` builds the
``CheckRequest`` (raw path and query, headers with the token, body). Tokens are obtained
before anything is sent, so a missing variable or an unreachable token endpoint stops
the run first.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from rrdev.checks.model import CheckRequest, Outcome
from rrdev.core.errors import ProfileError
from rrdev.core.model import CheckSpec, Profile, Secret
from rrdev.core.profile import line_of
from rrdev.core.providers import TENANT_PLACEHOLDER

if TYPE_CHECKING:
    import httpx

    from rrdev.core.keyset import Keyset

__all__ = [
    "FALLBACK_AUDIENCE",
    "FALLBACK_ISSUER",
    "TokenSource",
    "mint_identity",
    "prepare",
    "provider_scope",
]

#: ``iss``/``aud`` of minted tokens when the profile verifies none (auth_type = "none").
FALLBACK_ISSUER = "https://rrdev.local/"
FALLBACK_AUDIENCE = "https://api.rrdev.local"


class TokenSource:
    """Turns a check's ``token`` into a bearer token (or None for "none").

    ``"auth"`` is fetched once per profile with ``[auth]`` (``rrdev.core.tokens.caller_token``)
    -- or, ``offline``, minted from ``[auth].scope``. ``{ mint = {...} }`` is signed by
    the local keyset with the profile's ``iss``/``aud``. Anything else is a literal
    token, ``${ENV}`` references resolved. The keyset is loaded on first use.
    """

    def __init__(
        self,
        *,
        offline: bool = False,
        keyset: Keyset | None = None,
        http: httpx.AsyncClient | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.offline = offline
        self._keyset = keyset
        self._http = http
        self._env = env
        self._fetched: dict[str, str] = {}

    @property
    def keyset(self) -> Keyset:
        if self._keyset is None:
            from rrdev.core.keyset import Keyset

            self._keyset = Keyset.load_or_create()
        return self._keyset

    async def token(self, profile: Profile, index: int, check: CheckSpec, now: float) -> str | None:
        spec = check.token
        key = f"checks[{index}].token"
        if spec == "none":
            return None
        if spec == "auth":
            return await self._auth(profile, key, now)
        if isinstance(spec, str):
            secret = Secret(spec, key=key, file=profile.path, line=line_of(profile, key))
            return _strip_bearer(secret.resolve(self._env))
        return self.mint(profile, spec["mint"], now)

    def mint(self, profile: Profile, spec: Mapping[str, Any], now: float) -> str:
        """A token from the local keyset; ``spec`` keys as in ``profile.MINT_KEYS``."""
        from rrdev.core.keyset import mint_token

        issuer, audience, extra = mint_identity(profile)
        scope, scope_claims = provider_scope(profile, spec.get("scope"))
        claims = {**extra, **scope_claims, **dict(spec.get("claims") or {})}
        audience = _cognito_id_token_shape(profile, claims) or audience
        options: dict[str, Any] = {}
        if "sub" in spec:
            options["subject"] = spec["sub"]
        if "not_before" in spec:
            options["not_before"] = spec["not_before"]
        return mint_token(
            self.keyset,
            issuer=spec.get("iss", issuer),
            audience=spec.get("aud", audience),
            scope=scope,
            claims=claims,
            expires_in=spec.get("expires_in", 3600),
            now=now,
            **options,
        )

    def with_fetch_hints(self, profile: Profile, check: CheckSpec, outcome: Outcome) -> Outcome:
        """``outcome`` with an audience hint saying what ``[auth]`` asked for, when the
        check sent a token rrdev fetched (``token = "auth"``, not offline)."""
        expl = outcome.explanation
        if check.token != "auth" or self.offline or expl is None:
            return outcome
        if profile.path not in self._fetched:
            return outcome
        from rrdev.clients.audience_hint import fetched_token_explanation
        from rrdev.clients.caller import auth_client
        from rrdev.clients.oauth2 import token_request

        request = token_request(auth_client(profile), self._env)
        return replace(outcome, explanation=fetched_token_explanation(expl, request))

    async def _auth(self, profile: Profile, key: str, now: float) -> str:
        if profile.auth is None:
            raise ProfileError(
                "token = 'auth' needs an [auth] section (how to get a caller token)",
                file=profile.path,
                line=line_of(profile, key),
                key=key,
                hint="add [auth], or use token = 'none', '${ENV}' or { mint = { ... } }",
            )
        if self.offline:
            return self.mint(profile, {"scope": profile.auth.client.scope}, now)
        cached = self._fetched.get(profile.path)
        if cached is None:
            cached = self._fetched[profile.path] = await _fetch_caller_token(profile, self._http)
        return cached


async def _fetch_caller_token(profile: Profile, http: httpx.AsyncClient | None) -> str:
    from rrdev.clients.caller import caller_token

    return await caller_token(profile, use_cache=True, http=http)


def mint_identity(profile: Profile) -> tuple[str, str | None, dict[str, Any]]:
    """``iss``, ``aud`` and extra claims that make a minted token verify against the
    profile's proxy credential, shaped like the provider's: Cognito mode has no ``aud``
    (``client_id``/``token_use`` claims instead; an ID token's ``aud`` is the client);
    a ``{tenantid}`` issuer is filled with the first tenant, which ``tid`` carries."""
    cred = profile.proxy_credential
    issuer = cred.issuer or FALLBACK_ISSUER
    extra: dict[str, Any] = {}
    if TENANT_PLACEHOLDER in issuer and cred.tenants:
        issuer = issuer.replace(TENANT_PLACEHOLDER, cred.tenants[0])
        extra["tid"] = cred.tenants[0]
    if cred.audience:
        return issuer, cred.audience[0], extra
    if cred.accepted_client_ids:
        client_id = cred.accepted_client_ids[0]
        if cred.token_use == "id":
            return issuer, client_id, {**extra, "token_use": "id"}
        extra["client_id"] = client_id
        if cred.token_use:
            extra["token_use"] = cred.token_use
        return issuer, None, extra
    return issuer, FALLBACK_AUDIENCE, extra


def provider_scope(profile: Profile | None, scope: Any) -> tuple[Any, dict[str, Any]]:
    """Where the provider writes granted scopes: Okta an ``scp`` array, Entra ID an
    ``scp`` string, everyone else (Auth0, Cognito, Keycloak) a ``scope`` string.
    Returns ``(scope claim, extra claims)`` for ``mint_token``; every minting front end
    (``token mint``, ``explain --auth --offline``, checks, the TUI) goes through it."""
    if profile is None:
        return scope, {}
    provider = profile.proxy_credential.provider
    if not isinstance(scope, str) or provider not in ("okta", "entra"):
        return scope, {}
    return None, {"scp": scope.split() if provider == "okta" else scope}


def _cognito_id_token_shape(profile: Profile, claims: dict[str, Any]) -> str | None:
    """``claims = { token_use = "id" }`` in Cognito access mode mints what Cognito's ID
    token looks like: ``aud`` the app client, no ``client_id`` (the check can then show
    the hint an ID token gets). Returns that ``aud``, or None for any other token."""
    cred = profile.proxy_credential
    if claims.get("token_use") != "id" or cred.token_use == "id":
        return None
    client_id = claims.pop("client_id", None)
    return client_id if isinstance(client_id, str) else None


def _strip_bearer(token: str) -> str:
    token = token.strip()
    return token[7:].strip() if token[:7].lower() == "bearer " else token


async def prepare(
    profile: Profile, index: int, check: CheckSpec, tokens: TokenSource, now: float
) -> CheckRequest:
    """The request a check sends (its token obtained now)."""
    raw_path, _, raw_query = check.path.partition("?")
    extra = urlencode(list(check.query))
    raw_query = "&".join(q for q in (raw_query, extra) if q)
    headers = list(check.headers)
    token = await tokens.token(profile, index, check, now)
    if token is not None:
        headers.append(("Authorization", f"Bearer {token}"))
    body = check.body.encode("utf-8") if check.body is not None else None
    return CheckRequest(check, index, check.method, raw_path, raw_query, tuple(headers), body)
