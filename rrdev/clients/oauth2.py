"""The OAuth2 client-credentials client: the request, its answer, and its errors.

``rrdev.clients.token_fetch.fetch_token`` runs the OAuth2 client-credentials grant
(DESIGN.md §1 ``[auth]`` and the ``oauth2`` target credential): Auth0 (``domain``:
``POST <domain>/oauth/token`` with a JSON body) or any OAuth2 server (``token_url``: a
form body, ``client_secret_post`` or ``client_secret_basic``) with the request built
here. A provider's refusal is reported as the provider sent it, with a hint for the
common mistakes. ``rrdev.clients.caller`` does it for a profile's ``[auth]``; fetched
tokens are cached by ``rrdev.clients.token_cache``. The client secret is never
stored, logged, or put in a message or a repr.
"""

from __future__ import annotations

import base64
import hashlib
import json
import math
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, quote_plus, urlencode

from rrdev.core.errors import NetworkError, ProfileError, TokenInputError
from rrdev.core.model import OAuth2Client, Secret
from rrdev.core.redact import REDACTED, SECRET_FIELDS, Redactor
from rrdev.core.tokens import clip, decode_unverified

__all__ = [
    "CONTROL_OR_SPACE",
    "DEFAULT_TIMEOUT_SECONDS",
    "FetchedToken",
    "TokenFetchError",
    "TokenRequest",
    "fetch_error",
    "parse_answer",
    "refresh_margin",
    "token_request",
    "token_url_of",
    "where_hint",
]


# ================================================================== client credentials

#: How long a token endpoint gets to answer, unless the caller says otherwise.
DEFAULT_TIMEOUT_SECONDS = 10.0
#: Provider text quoted in a message is cut to this many characters.
_QUOTE_LIMIT = 300
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
    audience, resource and scope -- never the secret.
    """

    url: str
    style: Literal["auth0", "oauth2"]
    client_auth: Literal["client_secret_post", "client_secret_basic"]
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

    def scrub(self, text: str) -> str:
        return Redactor(values=()).with_values(self.secrets).text(text)


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
    secret = _resolved(client.client_secret, "client_secret", env)
    url = token_url_of(client)
    style: Literal["auth0", "oauth2"] = "oauth2" if client.token_url else "auth0"
    params: dict[str, str] = {"grant_type": "client_credentials"}
    headers = [("Accept", "application/json")]
    secrets = [secret, quote_plus(secret)]
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
    if style == "auth0":
        body = json.dumps(params).encode("utf-8")
        headers.append(("Content-Type", "application/json"))
    else:
        body = urlencode(params).encode("ascii")
        headers.append(("Content-Type", "application/x-www-form-urlencoded"))
    refs = tuple(
        ref
        for s in (client.client_id, client.client_secret)
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
        cache_key=_cache_key(url, client_id, client),
        env_refs=refs,
        secrets=tuple(s for s in secrets if s),
    )


def _resolved(secret: Secret | None, name: str, env: Mapping[str, str] | None) -> str:
    if secret is None:  # the profile loader requires both; keep this total anyway
        raise ProfileError(f"the client-credentials settings have no {name!r}", key=name)
    return secret.resolve(env)


def _cache_key(url: str, client_id: str, client: OAuth2Client) -> str:
    material = [url, client_id, client.audience, client.resource, client.scope]
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


def where_hint(request: TokenRequest) -> str:
    if request.style == "auth0":
        return (
            "check domain in the profile: Auth0 takes YOUR_TENANT.REGION.auth0.com "
            "(or your custom domain); rrdev posts to <domain>/oauth/token"
        )
    return "check token_url in the profile: it must be the provider's token endpoint"


# ------------------------------------------------------------------ the answer


def parse_answer(
    request: TokenRequest, status: int, headers: Mapping[str, str], body: bytes, now: float
) -> FetchedToken:
    if 300 <= status < 400:
        location = headers.get("location", "")
        raise fetch_error(
            request,
            f"the token endpoint {request.url} answered HTTP {status}, a redirect"
            + (
                f" to {clip(_blank_secrets_in_text(location), 200, quote=False)}"
                if location
                else ""
            ),
            "use the final URL (rrdev does not follow redirects with a client secret)",
            status=status,
        )
    if not 200 <= status < 300:
        raise _provider_error(request, status, headers, body)
    document = _json_document(request, status, headers, body)
    token = document.get("access_token")
    if not isinstance(token, str) or not token:
        raise fetch_error(
            request,
            f"the token endpoint {request.url} answered HTTP {status} without an access_token",
            where_hint(request),
            status=status,
        )
    if CONTROL_OR_SPACE.search(token):
        raise fetch_error(
            request,
            "the access_token has whitespace or control characters; it cannot be sent "
            "in an Authorization header",
            status=status,
        )
    _check_auth0_shape(request, token, status)
    lifetime = _expires_in(request, document.get("expires_in"), status)
    scope = document.get("scope")
    return FetchedToken(
        access_token=token,
        token_type=str(document.get("token_type") or "Bearer"),
        expires_at=now + lifetime,
        scope=scope if isinstance(scope, str) else None,
        raw={k: v for k, v in document.items() if not _secret_name(k)},
        from_cache=False,
        obtained_at=now,
        token_url=request.url,
    )


def _json_document(
    request: TokenRequest, status: int, headers: Mapping[str, str], body: bytes
) -> dict[str, Any]:
    """The 2xx answer as a JSON object. A success body may hold the token in any
    shape, so it is never quoted: a message says only its size and content type."""
    if _looks_like_html(headers, body):
        raise fetch_error(
            request,
            f"the token endpoint {request.url} answered HTTP {status} with an HTML page, "
            "not a token",
            where_hint(request),
            status=status,
        )
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        media = _media_type(headers)
        kind = media or "a body without a content type"
        hint = where_hint(request)
        if media == "application/x-www-form-urlencoded":
            hint = (
                "this endpoint answers form-encoded tokens (like GitHub's OAuth apps) even "
                "though rrdev asks for JSON (Accept: application/json); rrdev needs an "
                "OAuth2 token endpoint that answers JSON"
            )
        raise fetch_error(
            request,
            f"the token endpoint {request.url} answered HTTP {status} with {len(body)} "
            f"bytes of {kind}, not JSON",
            hint,
            status=status,
        ) from None
    if not isinstance(document, dict):
        raise fetch_error(
            request,
            f"the token endpoint {request.url} answered HTTP {status} with JSON that is "
            "not an object",
            where_hint(request),
            status=status,
        )
    return document


def _media_type(headers: Mapping[str, str]) -> str:
    """The response's media type, lower-case, printable and short ("" when absent)."""
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    media = "".join(c for c in media if "!" <= c <= "~")
    return media if len(media) <= 80 else media[:77] + "..."


def _looks_like_html(headers: Mapping[str, str], body: bytes) -> bool:
    media = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media in ("text/html", "application/xhtml+xml") or body.lstrip()[:1] == b"<"


#: Names whose values are secrets in a token endpoint's answer: the redaction list's,
#: and any name that, lower-cased and without punctuation, ends like one of these
#: (``access_token``, ``accessToken``, ``refresh-token``, ``client_secret``, ...).
_SECRET_NAME_SUFFIXES = ("token", "secret", "password", "apikey", "assertion")
#: ``name=value``, ``name: value`` or ``"name": "value"`` in free text, for a name that
#: ends like a secret's (group 1: everything before the value).
_SECRET_IN_TEXT = re.compile(
    r"""(?ix)
    (?<![a-z0-9_.-])
    (
      (["']?)
      [a-z0-9_.-]*(?:token|secret|password|api[_-]?key|assertion)
      \2 \s* [:=] \s*
    )
    (?!"?\[redacted\])
    (?:"(?:[^"\\]|\\.)*"?|'[^']*'?|[^\s&;,}\]"']+)
    """
)


def _secret_name(name: object) -> bool:
    text = str(name).lower()
    if text in SECRET_FIELDS:
        return True
    return "".join(c for c in text if c.isalnum()).endswith(_SECRET_NAME_SUFFIXES)


def _blank_secrets(value: Any) -> Any:
    """A parsed answer with every secret-named member blanked, at any depth."""
    if isinstance(value, dict):
        return {k: REDACTED if _secret_name(k) else _blank_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_blank_secrets(v) for v in value]
    return value


def _blank_secrets_in_text(text: str) -> str:
    return _SECRET_IN_TEXT.sub(lambda m: m.group(1) + REDACTED, text)


def _quote(request: TokenRequest, body: bytes) -> str:
    """An error body for a message: secret-named fields blanked (parsed as JSON or a
    form when it is one, by pattern otherwise), known secrets scrubbed, shortened."""
    text = body.decode("utf-8", "replace").strip()
    text = _readable(text)
    text = request.scrub(_blank_secrets_in_text(text))
    text = "".join(c if c.isprintable() else " " for c in text)
    if not text:
        return "(empty)"
    return repr(text if len(text) <= _QUOTE_LIMIT else text[: _QUOTE_LIMIT - 3] + "...")


def _readable(text: str) -> str:
    """JSON and form bodies re-encoded with their secret-named fields blanked; other
    text as it is."""
    try:
        document = json.loads(text)
    except (ValueError, RecursionError):
        pass
    else:
        if isinstance(document, (dict, list)):
            return json.dumps(_blank_secrets(document), ensure_ascii=False)
        return text
    if "=" in text and not any(c.isspace() for c in text):
        try:
            pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
        except ValueError:
            return text
        return urlencode([(k, REDACTED if _secret_name(k) else v) for k, v in pairs], safe="[]")
    return text


def _expires_in(request: TokenRequest, value: Any, status: int) -> float:
    # Entra ID's v1 endpoint sends expires_in as a string ("3599").
    number: float | None = None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        number = float(value)
    elif isinstance(value, str):
        try:
            number = float(value)
        except ValueError:
            number = None
    if number is None:
        problem = "without expires_in" if value is None else f"with expires_in = {clip(value)}"
        raise fetch_error(
            request,
            f"the token endpoint {request.url} answered HTTP {status} {problem}: rrdev "
            "cannot tell how long the token lasts, so it does not use or cache it",
            "a client-credentials token response must say expires_in (seconds); "
            "check that token_url is the OAuth2 token endpoint",
            status=status,
        )
    if not math.isfinite(number) or number <= 0:
        raise fetch_error(
            request,
            f"the token endpoint {request.url} answered expires_in = {clip(value)}, "
            "not a positive number of seconds",
            status=status,
        )
    return number


def _check_auth0_shape(request: TokenRequest, token: str, status: int) -> None:
    """Auth0 hands out an opaque token (no audience) or an encrypted one (a JWE): the
    proxy can verify neither. Other providers may legitimately issue opaque tokens."""
    if request.style != "auth0":
        return
    try:
        decode_unverified(token)
        return
    except TokenInputError:
        pass
    if token.count(".") == 4:
        raise fetch_error(
            request,
            f"{request.url} returned an encrypted access token (a JWE), not a signed JWT",
            "the API has JSON Web Encryption turned on in Auth0 (APIs -> your API -> "
            "Settings -> Token Settings); rrdev and jwtVerify need signed JWTs",
            status=status,
        )
    if request.audience:
        hint = (
            f"check that audience {request.audience!r} is an API Identifier in this tenant "
            "(Auth0: Applications -> APIs)"
        )
    else:
        hint = (
            "no audience was sent, so Auth0 issued a token for its own /userinfo "
            "endpoint: set audience in [auth] to your API's Identifier (the same value "
            "as proxy_credential.audience)"
        )
    raise fetch_error(
        request,
        f"{request.url} returned an opaque access token, not a JWT",
        hint,
        status=status,
    )


# ------------------------------------------------------------------ provider errors


def _provider_error(
    request: TokenRequest, status: int, headers: Mapping[str, str], body: bytes
) -> TokenFetchError:
    """The provider's refusal as it sent it (``error``: ``error_description``, from a
    JSON or form-encoded body), with a hint for the common ones. Whatever is quoted
    has its secret-named fields blanked and known secrets scrubbed."""
    where = f"the token endpoint {request.url} answered HTTP {status}"
    if _looks_like_html(headers, body):
        hint = _status_hint(request, status, "", "") or where_hint(request)
        return fetch_error(request, f"{where} with an HTML page", hint, status=status)
    document = _error_document(body)
    if document is None:
        hint = _status_hint(request, status, "", "")
        return fetch_error(request, f"{where}: {_quote(request, body)}", hint, status=status)
    error = _text(document.get("error")) or _text(document.get("code"))
    description = (
        _text(document.get("error_description"))
        or _text(document.get("message"))
        or _text(document.get("errorSummary"))  # Okta's management-style errors
    )
    description = request.scrub(description)[:_QUOTE_LIMIT]
    error = request.scrub(error)[:100]
    hint = _status_hint(request, status, error, description)
    description = _blank_secrets_in_text(description)
    error = _blank_secrets_in_text(error)
    said = " ".join(p for p in (error, description and f"({description})") if p)
    return fetch_error(
        request,
        f"{where}: {said or _quote(request, body)}",
        hint,
        status=status,
        error=error or None,
        description=description or None,
    )


def _error_document(body: bytes) -> dict[str, Any] | None:
    """An error body as an object: JSON, or a form (``error=...&error_description=...``,
    as GitHub's OAuth apps answer); None for anything else."""
    try:
        document = json.loads(body)
    except (ValueError, RecursionError):
        document = None
    if isinstance(document, dict):
        return document
    if document is not None:
        return None
    text = body.decode("utf-8", "replace").strip()
    if "=" not in text or any(c.isspace() for c in text):
        return None
    try:
        pairs = parse_qsl(text, keep_blank_values=True, strict_parsing=True)
    except ValueError:
        return None
    found: dict[str, Any] = {}
    for name, value in pairs:
        found.setdefault(name, value)
    return found


def _text(value: Any) -> str:
    if value is None or isinstance(value, (dict, list)):
        return ""
    return "".join(c if c.isprintable() else " " for c in str(value)).strip()


def _status_hint(request: TokenRequest, status: int, error: str, description: str) -> str:
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
