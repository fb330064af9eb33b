"""The OAuth2 client-credentials request: what is sent, what comes back, what fails.

``token_request`` builds the request of the client-credentials grant (DESIGN.md §1
``[auth]`` and the ``oauth2`` target credential): Auth0 (``domain``: ``POST
<domain>/oauth/token`` with a JSON body) or any OAuth2 server (``token_url``: a form
body, ``client_secret_post`` or ``client_secret_basic``). ``FetchedToken`` is what
comes back and ``TokenFetchError`` (exit 4) what goes wrong.

The rest of the client: ``rrdev.clients.token_fetch`` sends the request
(``fetch_token``), ``rrdev.clients.oauth2_answer`` checks the answer (a provider's
refusal is reported as the provider sent it, with a hint for the common mistakes
from ``rrdev.clients.provider_hints``), ``rrdev.clients.caller`` does it for a
profile's ``[auth]`` and ``rrdev.clients.token_cache`` keeps fetched tokens on disk.
The client secret is never stored, logged, or put in a message or a repr.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote_plus, urlencode

from rrdev.core.errors import NetworkError, ProfileError
from rrdev.core.model import ClientAuth, OAuth2Client, Secret
from rrdev.core.redact import Redactor

if TYPE_CHECKING:
    from rrdev.clients.client_assertion import AssertionSigner

__all__ = [
    "CONTROL_OR_SPACE",
    "DEFAULT_TIMEOUT_SECONDS",
    "FetchedToken",
    "TokenFetchError",
    "TokenRequest",
    "fetch_error",
    "refresh_margin",
    "token_request",
    "token_url_of",
]


#: How long a token endpoint gets to answer, unless the caller says otherwise.
DEFAULT_TIMEOUT_SECONDS = 10.0
#: What an access token must not contain: it goes into an Authorization header.
CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f]")


def refresh_margin(lifetime: float) -> float:
    """How long before expiry a token stops being reused: 60 s, or a tenth of the
    lifetime for short-lived tokens (a 5 s token is reused for 4.5 s)."""
    return min(60.0, max(lifetime, 0.0) / 10)


class TokenFetchError(NetworkError):
    """The token endpoint was unreachable, slow, or gave no usable token (exit 4).

    ``token_url``; ``status`` (None when nothing was answered); ``error`` and
    ``description``: the provider's OAuth2 error, as sent (secrets scrubbed).
    """

    def __init__(
        self,
        message: str,
        hint: str = "",
        *,
        token_url: str = "",
        status: int | None = None,
        error: str | None = None,
        description: str | None = None,
    ) -> None:
        super().__init__(message, hint)
        self.token_url = token_url
        self.status = status
        self.error = error
        self.description = description


@dataclass(frozen=True)
class FetchedToken:
    """An access token from a token endpoint (or the cache).

    ``expires_at`` (epoch seconds) is ``obtained_at + expires_in``, measured with our
    own clock (a provider's clock skew does not matter); ``None`` only for a static
    token without ``exp``. ``raw`` is the token response without the token (and
    without any other secret-named member). ``from_cache`` says where it came from.
    """

    access_token: str = field(repr=False)
    token_type: str = "Bearer"
    expires_at: float | None = None
    scope: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)
    from_cache: bool = False
    obtained_at: float | None = None
    token_url: str = ""

    @property
    def lifetime(self) -> float | None:
        if self.expires_at is None or self.obtained_at is None:
            return None
        return self.expires_at - self.obtained_at

    def fresh(self, now: float) -> bool:
        """Still worth reusing at ``now``: not within ``refresh_margin`` of expiry."""
        if self.expires_at is None:
            return True
        lifetime = self.lifetime if self.lifetime is not None else 0.0
        return now < self.expires_at - refresh_margin(lifetime)


@dataclass(frozen=True)
class TokenRequest:
    """One client-credentials request, secrets resolved (never in its repr).

    ``style`` "auth0": ``POST <domain>/oauth/token`` with a JSON body; "oauth2": a
    form body to ``token_url``. ``cache_key`` hashes the token URL, client id,
    audience, resource, scope and ``extra`` -- never the secret. With
    ``private_key_jwt`` the body lacks the assertion until ``signed(now)`` adds a
    fresh one (``signer``).
    """

    url: str
    style: Literal["auth0", "oauth2"]
    client_auth: ClientAuth
    body: bytes = field(repr=False)
    headers: tuple[tuple[str, str], ...] = field(repr=False)
    audience: str | None = None
    resource: str | None = None
    scope: str | None = None
    cache_key: str = field(default="", repr=False)
    #: ${NAME}s the client id and secret come from, for hints
    env_refs: tuple[str, ...] = ()
    #: resolved secret values (and their encodings) to scrub from any text
    secrets: tuple[str, ...] = field(default=(), repr=False)
    #: the ``extra`` parameters sent, resolved (for hints: what was asked for)
    extra: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    #: private_key_jwt: signs each request's client assertion
    signer: AssertionSigner | None = field(default=None, repr=False)
    #: the parameters of ``body`` (the assertion is added to these)
    params: tuple[tuple[str, str], ...] = field(default=(), repr=False)

    def scrub(self, text: str) -> str:
        return Redactor(values=()).with_values(self.secrets).text(text)

    def signed(self, now: float) -> TokenRequest:
        """This request with a fresh client assertion (itself without a signer); the
        assertion is added to ``secrets`` so no message can show it."""
        if self.signer is None:
            return self
        from rrdev.clients.client_assertion import ASSERTION_TYPE

        assertion = self.signer.sign(now)
        params = {
            **dict(self.params),
            "client_assertion_type": ASSERTION_TYPE,
            "client_assertion": assertion,
        }
        body, _ = _encoded(self.style, params)
        return replace(self, body=body, signer=None, secrets=(*self.secrets, assertion))


def token_url_of(client: OAuth2Client) -> str:
    """``token_url`` as given, or Auth0's ``<domain>/oauth/token`` (``https://`` is
    prepended to a bare domain; a full URL ending in ``/oauth/token`` is kept)."""
    if client.token_url:
        return client.token_url
    domain = (client.domain or "").strip()
    if "://" not in domain:
        domain = "https://" + domain
    domain = domain.rstrip("/")
    return domain if domain.endswith("/oauth/token") else domain + "/oauth/token"


def token_request(client: OAuth2Client, env: Mapping[str, str] | None = None) -> TokenRequest:
    """Build the request for ``client``, resolving its ``${VARS}`` (``EnvVarError``
    naming the key and the variable when one is unset)."""
    client_id = _resolved(client.client_id, "client_id", env)
    url = token_url_of(client)
    style: Literal["auth0", "oauth2"] = "oauth2" if client.token_url else "auth0"
    params: dict[str, str] = {"grant_type": "client_credentials"}
    headers = [("Accept", "application/json")]
    secrets: list[str] = []
    signer = None
    if client.client_auth == "private_key_jwt":
        from rrdev.clients.client_assertion import assertion_signer

        # The key is read now (a bad one fails at load); each send signs a new assertion.
        signer = assertion_signer(client, client_id, url, env)
        params["client_id"] = client_id
    else:
        secret = _resolved(client.client_secret, "client_secret", env)
        secrets += [secret, quote_plus(secret)]
        if client.client_auth == "client_secret_basic":
            # RFC 6749 §2.3.1: both halves form-encoded, then Basic.
            pair = f"{quote_plus(client_id)}:{quote_plus(secret)}".encode()
            basic = base64.b64encode(pair).decode("ascii")
            headers.append(("Authorization", f"Basic {basic}"))
            secrets.append(basic)
        else:
            params["client_id"] = client_id
            params["client_secret"] = secret
    for name in ("audience", "resource", "scope"):
        value = getattr(client, name)
        if value:
            params[name] = value
    extra = tuple((name, value.resolve(env)) for name, value in client.extra)
    params.update(extra)  # the loader refuses names that would replace rrdev's own
    body, content_type = _encoded(style, params)
    headers.append(("Content-Type", content_type))
    refs = tuple(
        ref
        for s in (client.client_id, client.client_secret, client.private_key)
        if s is not None
        for ref in s.references
    )
    return TokenRequest(
        url=url,
        style=style,
        client_auth=client.client_auth,
        body=body,
        headers=tuple(headers),
        audience=client.audience,
        resource=client.resource,
        scope=client.scope,
        cache_key=_cache_key(url, client_id, client, extra),
        env_refs=refs,
        secrets=tuple(s for s in secrets if s),
        extra=extra,
        signer=signer,
        params=tuple(params.items()) if signer is not None else (),
    )


def _encoded(style: str, params: Mapping[str, str]) -> tuple[bytes, str]:
    """(body, Content-Type): Auth0's JSON, or a form for any other server."""
    if style == "auth0":
        return json.dumps(params).encode("utf-8"), "application/json"
    return urlencode(params).encode("ascii"), "application/x-www-form-urlencoded"


def _resolved(secret: Secret | None, name: str, env: Mapping[str, str] | None) -> str:
    if secret is None:  # the profile loader requires both; keep this total anyway
        raise ProfileError(f"the client-credentials settings have no {name!r}", key=name)
    return secret.resolve(env)


def _cache_key(
    url: str, client_id: str, client: OAuth2Client, extra: tuple[tuple[str, str], ...]
) -> str:
    material: list[Any] = [url, client_id, client.audience, client.resource, client.scope]
    if extra:  # only when set: cache keys of profiles without extra stay as they were
        material.append(sorted(extra))
    return hashlib.sha256(json.dumps(material).encode("utf-8")).hexdigest()


def fetch_error(
    request: TokenRequest,
    message: str,
    hint: str = "",
    *,
    status: int | None = None,
    error: str | None = None,
    description: str | None = None,
) -> TokenFetchError:
    return TokenFetchError(
        request.scrub(message),
        request.scrub(hint),
        token_url=request.url,
        status=status,
        error=error,
        description=description,
    )
