"""Checking a token endpoint's answer: a usable token, or a ``TokenFetchError`` that
says why not.

A success must carry a JWT-shaped (for Auth0) ``access_token`` with a positive
``expires_in``; the answer is kept without the token or any other secret-named
member. A provider's refusal is reported as the provider sent it (its ``error`` and
``error_description``), with a hint for the common mistakes
(``rrdev.clients.provider_hints``). Whatever is quoted has its secret-named fields
blanked and the known secrets scrubbed.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

from rrdev.clients.oauth2 import (
    CONTROL_OR_SPACE,
    FetchedToken,
    TokenFetchError,
    TokenRequest,
    fetch_error,
)
from rrdev.clients.provider_hints import status_hint, where_hint
from rrdev.core.errors import TokenInputError
from rrdev.core.redact import REDACTED, SECRET_FIELDS
from rrdev.core.tokens import clip, decode_unverified

__all__ = ["parse_answer"]

#: Provider text quoted in a message is cut to this many characters.
_QUOTE_LIMIT = 300


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
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            number = float(value)
        except (ValueError, OverflowError):  # "soon", or an integer past float range
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
        hint = status_hint(request, status, "", "") or where_hint(request)
        return fetch_error(request, f"{where} with an HTML page", hint, status=status)
    document = _error_document(body)
    if document is None:
        hint = status_hint(request, status, "", "")
        return fetch_error(request, f"{where}: {_quote(request, body)}", hint, status=status)
    error = _text(document.get("error")) or _text(document.get("code"))
    description = (
        _text(document.get("error_description"))
        or _text(document.get("message"))
        or _text(document.get("errorSummary"))  # Okta's management-style errors
    )
    description = request.scrub(description)[:_QUOTE_LIMIT]
    error = request.scrub(error)[:100]
    hint = status_hint(request, status, error, description)
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
