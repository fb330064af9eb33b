"""The answers rrdev makes itself: JSON error bodies and their headers.

Every one carries ``requestrocket-proxy-code`` (granted when the backend, not the
caller, is the problem) and ``-message``, ``WWW-Authenticate`` when the explanation has
one, and ``Connection: close`` when the request's framing is in doubt. Also here: the
framing checks made before anything else (431 ``headers_too_large``, 501
``transfer_coding_unsupported``), the refusals of requests the HTTP parser rejected, and
502/504 for a backend that failed.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from email.utils import formatdate
from functools import lru_cache

import aiohttp

from rrdev.core.records import Explanation
from rrdev.servers.asgi import Scope, Send
from rrdev.servers.proxy.request import _ascii_text
from rrdev.servers.proxy.state import _State

CODE_GRANTED = b"proxy-access-granted"
#: rrdev answers after access was granted: the backend, not the caller, is the problem.
_GRANTED_FAILURES = frozenset(
    {
        "upstream_unreachable",
        "upstream_timeout",
        "upstream_credential_unavailable",
        "upstream_token_unavailable",
        *("response_not_json", "response_too_large", "response_encoding_unsupported"),
    }
)
CODE_DENIED = b"proxy-access-denied"
#: What the caller of a failed ``oauth2`` fetch is told; the details go to the record.
_TOKEN_UNAVAILABLE_MESSAGE = "the backend's token endpoint failed; see the rrdev console"
_TOKEN_UNAVAILABLE_HINT = (
    "the proxy could not get the backend's own access token (target_credential "
    "auth_type = 'oauth2'); the rrdev console and log say what the token endpoint answered"
)
#: More header lines than this, or more bytes of header names and values, is 431.
MAX_HEADER_LINES = 200
MAX_HEADER_BYTES = 64 * 1024


# ------------------------------------------------------------------ refusals before authentication


def _framing_problem(raw: list[tuple[bytes, bytes]]) -> Explanation | None:
    """431 for too many or too large headers; 501 for a request transfer coding other
    than plain ``chunked`` (``gzip, chunked`` would reach the backend decoded by the
    server but still labelled, and a body rrdev cannot frame must not be forwarded)."""
    size = 0
    coded = False
    for name, value in raw:
        size += len(name) + len(value)
        if name == b"transfer-encoding":
            coded = True
    if len(raw) > MAX_HEADER_LINES or size > MAX_HEADER_BYTES:
        return _headers_too_large(len(raw), size)
    if not coded:
        return None
    codings = [
        token.strip().lower()
        for name, value in raw
        if name == b"transfer-encoding"
        for token in value.split(b",")
    ]
    if codings and codings != [b"chunked"]:
        shown = ", ".join(c.decode("latin-1") for c in codings)[:100]
        return _transfer_coding_unsupported(f"Transfer-Encoding: {shown}")
    return None


def _headers_too_large(lines: int | None = None, size: int | None = None) -> Explanation:
    """431 ``headers_too_large`` (``lines``/``size``: what was counted, when known)."""
    counted = ""
    if lines is not None and size is not None:
        counted = f" ({lines} header lines, {size} bytes)"
    return Explanation(
        431,
        "headers_too_large",
        f"the request headers are too large{counted}: rrdev accepts at most "
        f"{MAX_HEADER_LINES} header lines and {MAX_HEADER_BYTES // 1024} KiB of header "
        "names and values",
        "send fewer or smaller headers (a cookie jar or a token that keeps growing?)",
    )


def _transfer_coding_unsupported(what: str) -> Explanation:
    """501 ``transfer_coding_unsupported`` for a request body framed other than by
    Content-Length or plain ``Transfer-Encoding: chunked``."""
    return Explanation(
        501,
        "transfer_coding_unsupported",
        f"the request uses a transfer coding rrdev does not forward ({_clip_text(what)})",
        "send the body with Content-Length or 'Transfer-Encoding: chunked' only; use "
        "Content-Encoding for compression",
    )


def _unparsed_request(problem: str, detail: str, target: bytes = b"") -> Explanation:
    """The answer to a request the HTTP parser refused (``rrdev.servers.runner``).

    ``problem``: "target" (an authority-form, CONNECT or unparseable request target:
    400 ``ambiguous_path``), "transfer_coding" (501), "headers_too_large" (431),
    "head_timeout" (408 ``request_timeout``: the head stalled), or anything else (400
    ``bad_request``). ``detail`` is the parser's reason (fixed text).
    """
    detail = _clip_text(detail)
    if problem == "headers_too_large":
        return _headers_too_large()
    if problem == "head_timeout":
        return Explanation(
            408,
            "request_timeout",
            f"{detail}: the caller stopped sending in the middle of it",
            "a client that sends its request line and headers in one go never sees this; "
            "one that opened the connection and stalled (or trickles bytes) does",
        )
    if problem == "transfer_coding":
        return _transfer_coding_unsupported(detail)
    if problem == "target":
        if target and not target.startswith(b"/"):
            message = (
                "refused request target: only origin-form request targets (starting with "
                f"'/') are accepted, not {_clip_text(_ascii_text(target))!r}"
            )
        else:
            message = f"refused request target: {detail}"
        return Explanation(
            400,
            "ambiguous_path",
            message,
            "rrdev is a reverse proxy: send 'METHOD /path?query' (no CONNECT, no "
            "host:port target) with non-ASCII bytes percent-encoded",
        )
    return Explanation(
        400,
        "bad_request",
        f"the request is not valid HTTP/1.1: {detail}",
        "servers disagree about requests like this one (two Content-Length headers, "
        "Content-Length with Transfer-Encoding, a malformed header), so rrdev refuses "
        "it; fix the client",
    )


def _clip_text(text: str, limit: int = 120) -> str:
    """Printable ASCII, at most ``limit`` characters."""
    text = "".join(c if " " <= c <= "~" else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _websocket_refusal() -> Explanation:
    return Explanation(
        501,
        "websocket_unsupported",
        "rrdev's proxy does not forward WebSocket connections yet",
        "call the backend directly for WebSocket traffic; plain HTTP goes through rrdev",
    )


# ------------------------------------------------------------------ backend failures


def _upstream_failure(exc: BaseException, state: _State, expl: Explanation) -> Explanation:
    """502/504 for a backend that could not be reached or did not answer in time."""
    target = state.upstream.label
    t = state.profile.target
    if isinstance(exc, aiohttp.ConnectionTimeoutError):
        return _upstream(
            expl,
            504,
            "upstream_timeout",
            f"could not connect to {target} within {t.connect_timeout_seconds:g}s",
            "check that the backend is reachable, or raise target.connect_timeout_seconds",
        )
    if isinstance(exc, TimeoutError):
        return _upstream(
            expl,
            504,
            "upstream_timeout",
            f"{target} did not answer within {t.timeout_seconds:g}s",
            "the backend is slow or stuck; raise target.timeout_seconds if this is expected",
        )
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return _upstream(
            expl,
            502,
            "upstream_unreachable",
            f"the TLS certificate of {target} is not trusted ({exc.certificate_error})",
            "set target.ca_bundle to the CA that signed it (or verify = false "
            "for a self-signed development backend)",
        )
    if isinstance(exc, aiohttp.ClientConnectorError):
        why = exc.os_error.strerror or str(exc.os_error) or type(exc.os_error).__name__
        return _upstream(
            expl,
            502,
            "upstream_unreachable",
            f"cannot connect to {target}: {why}",
            "is the backend running? check target.base_url (or --target)",
        )
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return _upstream(
            expl,
            502,
            "upstream_unreachable",
            f"{target} closed the connection without answering",
            "check the backend's logs",
        )
    detail = state.redactor.text(str(exc))[:200]
    return _upstream(
        expl,
        502,
        "upstream_unreachable",
        f"forwarding to {target} failed: {type(exc).__name__}" + (f": {detail}" if detail else ""),
        "check the backend's logs",
    )


def _body_timeout(expl: Explanation, seconds: float) -> Explanation:
    """408 for an allowed request whose caller stopped sending its body."""
    return _upstream(
        expl,
        408,
        "request_timeout",
        f"the request body stopped arriving: no bytes for {seconds:g} s",
        "the caller paused mid-upload (or sent a Content-Length larger than its body); "
        "the backend's request was abandoned",
    )


def _caller_gone(expl: Explanation, received: int) -> Explanation:
    """499 (nginx's "client closed request") for an allowed request whose caller went
    away during its upload: nobody reads this answer, but the record must not blame
    the backend."""
    return _upstream(
        expl,
        499,
        "client_closed_request",
        f"the caller closed the connection during the upload (after {received} body bytes)",
        "nothing went wrong on the backend's side: the caller gave up (a client timeout, "
        "a cancelled request) and the backend's request was abandoned",
    )


def _upstream(expl: Explanation, status: int, reason: str, message: str, hint: str) -> Explanation:
    return replace(
        expl, status=status, reason=reason, message=message, hint=hint, www_authenticate=None
    )


def _public(expl: Explanation) -> Explanation:
    """The explanation as the caller sees it: a failed backend token fetch is told in
    fixed words (the token endpoint's answer is third-party text about rrdev's own
    credential; it stays in the record and on the console)."""
    if expl.reason == "upstream_token_unavailable":
        return replace(expl, message=_TOKEN_UNAVAILABLE_MESSAGE, hint=_TOKEN_UNAVAILABLE_HINT)
    return expl


# ------------------------------------------------------------------ the payload


def _error_payload(expl: Explanation) -> tuple[bytes, list[tuple[bytes, bytes]]]:
    """The JSON body and headers of an answer rrdev makes itself."""
    expl = _public(expl)
    body = json.dumps(expl.error_body(), default=str).encode("utf-8")
    granted = expl.reason in _GRANTED_FAILURES
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"cache-control", b"no-store"),
        (b"date", _http_date(int(time.time()))),
        (b"requestrocket-proxy-code", CODE_GRANTED if granted else CODE_DENIED),
        (b"requestrocket-proxy-message", _header_text(expl.message)),
    ]
    if expl.www_authenticate:
        headers.append((b"www-authenticate", expl.www_authenticate.encode("latin-1", "replace")))
    if expl.reason in _CLOSE_AFTER:
        # The request's framing is in doubt: never read another request from it.
        headers.append((b"connection", b"close"))
    return body, headers


#: Answers after which the connection is closed.
_CLOSE_AFTER = frozenset(
    {"headers_too_large", "transfer_coding_unsupported", "bad_request", "request_timeout"}
)


async def _send_error(send: Send, expl: Explanation) -> int:
    body, headers = _error_payload(expl)
    await send({"type": "http.response.start", "status": expl.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
    return len(body)


async def _send_websocket_refusal(scope: Scope, send: Send, expl: Explanation) -> int:
    """Refuse a WebSocket handshake with ``expl``; returns the body bytes sent."""
    if "websocket.http.response" in scope.get("extensions", {}):
        body, headers = _error_payload(expl)
        await send({"type": "websocket.http.response.start", "status": 501, "headers": headers})
        await send({"type": "websocket.http.response.body", "body": body})
        sent = len(body)
    else:  # servers without the extension can only refuse the handshake (403)
        await send({"type": "websocket.close", "code": 1008})
        sent = 0
    return sent


@lru_cache(maxsize=512)
def _header_text(text: str) -> bytes:
    """A message as a header value: printable ASCII only, at most 300 characters."""
    return "".join(c if " " <= c <= "~" else "?" for c in text[:300]).encode("ascii")


@lru_cache(maxsize=4)
def _http_date(second: int) -> bytes:
    return formatdate(second, usegmt=True).encode("ascii")
