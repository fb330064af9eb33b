"""Reading a token request: headers, the body (refused past ``MAX_BODY_BYTES``), and its
parameters from JSON or a form; ``OAuthError``, the Auth0-shaped answer every refusal
raises. Descriptions never quote the body: it holds the client secret.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from rrdev.servers.asgi import Receive, Scope

__all__ = [
    "MAX_BODY_BYTES",
    "Disconnected",
    "OAuthError",
    "invalid",
    "read_params",
    "request_base",
    "request_headers",
]

_PARAMETERS = frozenset(
    {"grant_type", "client_id", "client_secret", "audience", "scope"}
    | {"client_assertion", "client_assertion_type"}
)
#: A token request is a few hundred bytes; anything past this is refused while reading.
MAX_BODY_BYTES = 64 * 1024
#: How much of an oversized body is read (and dropped) before answering 413.
_DRAIN_BYTES = 1024 * 1024


class OAuthError(Exception):
    """An Auth0-shaped error answer; ``detail`` is for the issuer's own log only."""

    def __init__(
        self,
        status: int,
        error: str,
        description: str,
        detail: str = "",
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.detail = detail or description
        self.headers = headers


class Disconnected(Exception):
    pass


def invalid(description: str) -> OAuthError:
    return OAuthError(400, "invalid_request", description)


def request_headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in scope["headers"]:
        out.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return out


def request_base(scope: Scope) -> str:
    """``http://host:port`` from the request (Host header, else the server address)."""
    scheme = scope.get("scheme", "http")
    host = request_headers(scope).get("host")
    if not host:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"[{server[0]}]:{server[1]}" if ":" in server[0] else f"{server[0]}:{server[1]}"
    return f"{scheme}://{host}"


async def _read_body(headers: dict[str, str], receive: Receive) -> bytes:
    """The body, refused with 413 once it passes ``MAX_BODY_BYTES`` (never buffered
    beyond that). The rest is read and dropped, up to ``_DRAIN_BYTES`` more, so the
    client can finish sending and read the answer instead of a reset connection."""
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES + _DRAIN_BYTES:
        raise _too_large(drained=False)
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk = message.get("body", b"")
        more = message.get("more_body", False)
        size += len(chunk)
        if size > MAX_BODY_BYTES + _DRAIN_BYTES:
            raise _too_large(drained=False)
        if size <= MAX_BODY_BYTES:
            chunks.append(chunk)
    if size > MAX_BODY_BYTES:
        raise _too_large(drained=True)
    return b"".join(chunks)


def _too_large(*, drained: bool) -> OAuthError:
    # Not drained: the unread rest makes the connection unusable, so close it.
    close = () if drained else ((b"connection", b"close"),)
    return OAuthError(
        413,
        "invalid_request",
        f"The request body is larger than {MAX_BODY_BYTES} bytes",
        headers=close,
    )


async def read_params(headers: dict[str, str], receive: Receive) -> dict[str, str]:
    """The token request's parameters from a JSON or form body. Descriptions never
    quote the body: it holds the client secret."""
    body = await _read_body(headers, receive)
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type == "application/json":
        return _json_params(body)
    if media_type == "application/x-www-form-urlencoded":
        return _form_params(body)
    raise invalid(
        "Unsupported Content-Type: send application/json or application/x-www-form-urlencoded"
    )


def _json_params(body: bytes) -> dict[str, str]:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for name, value in items:
            if name in seen:
                raise invalid(f"{_param_label(name)} is given more than once")
            seen[name] = value
        return seen

    try:
        document = json.loads(body, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        raise invalid("The request body is not valid JSON") from None
    if not isinstance(document, dict):
        raise invalid("The request body must be a JSON object")
    params: dict[str, str] = {}
    for name, value in document.items():
        if value is None:
            continue
        if not isinstance(value, str):
            raise invalid(f"{_param_label(name)} must be a string")
        params[name] = value
    return params


def _form_params(body: bytes) -> dict[str, str]:
    if not body:
        return {}
    try:
        items = parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
        )
    except (ValueError, UnicodeDecodeError):
        raise invalid(
            "The request body is not a valid form (application/x-www-form-urlencoded)"
        ) from None
    params: dict[str, str] = {}
    for name, value in items:
        if name in params:
            raise invalid(f"{_param_label(name)} is given more than once")
        params[name] = value
    return params


def _param_label(name: str) -> str:
    """How an error names a parameter: only the known names are quoted, since an
    unknown "name" may be a pasted secret."""
    return f"Parameter {name!r}" if name in _PARAMETERS else "A parameter"
