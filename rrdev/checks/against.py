"""Runs ``--against URL``: each check goes to an already running proxy or the deployed gateway.

Statuses are always compared; ``reason`` and ``rule`` only when the answer carries
rrdev's JSON error body (``{"status", "reason", ...}``), and "allowed" when the
gateway's ``requestrocket-proxy-code`` header says the request was granted.
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import AsyncIterator, Mapping
from typing import TYPE_CHECKING, Any

from rrdev.checks.model import GRANTED_FAILURES, CheckOptions, CheckRequest, Mode, Outcome
from rrdev.core.errors import NetworkError
from rrdev.core.explain import SCOPE_LABELS
from rrdev.core.records import Explanation, Scope

if TYPE_CHECKING:
    import httpx

__all__ = [
    "CODE_HEADER",
    "GRANTED",
    "MESSAGE_HEADER",
    "USER_AGENT",
    "AgainstRunner",
    "deciding_from_message",
    "http_client",
    "outcome_from_response",
]

CODE_HEADER = "requestrocket-proxy-code"
MESSAGE_HEADER = "requestrocket-proxy-message"
GRANTED = "proxy-access-granted"
USER_AGENT = "rrdev-check"


class AgainstRunner:
    """Sends each check to ``base_url`` (a running proxy or the deployed gateway)."""

    mode: Mode = "against"

    def __init__(self, base_url: str, client: httpx.AsyncClient) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client

    async def run(self, request: CheckRequest) -> Outcome:
        response = await self.send(request)
        return outcome_from_response(response)

    async def send(self, request: CheckRequest) -> httpx.Response:
        import httpx

        url = httpx.URL(self.base_url)
        target = url.raw_path.split(b"?")[0].rstrip(b"/") + request.target.encode("ascii")
        try:
            return await self.client.request(
                request.method,
                url.copy_with(raw_path=target),
                headers=[*request.headers, ("User-Agent", USER_AGENT)],
                content=request.body,
            )
        except httpx.TransportError as exc:
            raise NetworkError(
                f"cannot reach {self.base_url}: {_transport_problem(exc)}",
                "is the proxy or gateway running at that URL? (check the --against URL)",
            ) from None


def outcome_from_response(response: httpx.Response) -> Outcome:
    """What an HTTP answer says: status always; rrdev's reason and trace when it carries
    rrdev's JSON error body; "allowed" when the gateway's code header says granted."""
    code = response.headers.get(CODE_HEADER)
    message = response.headers.get(MESSAGE_HEADER, "")
    body = _rrdev_body(response, code)
    if body is not None:
        reason = str(body["reason"])
        trace = body.get("trace")
        deciding = _trace_deciding(trace)
        granted = reason in GRANTED_FAILURES
        expl = Explanation(
            response.status_code,
            reason,
            str(body.get("message", "")),
            str(body.get("hint", "") or ""),
            response.headers.get("www-authenticate"),
        )
        return Outcome(
            response.status_code,
            reason,
            granted,
            deciding,
            traced=trace is None or bool(deciding),
            explanation=expl,
            message=expl.message,
        )
    if code is not None:
        granted = code == GRANTED
        deciding = deciding_from_message(message) if granted else None
        return Outcome(
            response.status_code,
            "allowed" if granted else None,
            granted,
            deciding or (),
            traced=deciding is not None,
            message=message,
        )
    return Outcome(response.status_code, None, None, traced=False, message=message)


def _rrdev_body(response: httpx.Response, code: str | None) -> Mapping[str, Any] | None:
    """The JSON error body rrdev answers with, if this is one. A backend's JSON that
    happens to hold "reason" behind a granted answer is the backend's, not rrdev's,
    unless it is one of the failures rrdev reports after granting access."""
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("reason"), str):
        return None
    if body.get("status") != response.status_code:
        return None
    if code == GRANTED and body["reason"] not in GRANTED_FAILURES:
        return None
    return body


#: rrdev's granted message: ``allowed by proxy 'read-catalog', target 'x'`` (one rule per
#: scope that an allow rule decided; core.explain's ``_allowed_message``).
_SCOPE_NAMES = {label: scope for scope, label in SCOPE_LABELS.items()}
_NAMED_RULE = re.compile(r"(proxy credential|target credential|proxy|target) '([^',]+)'")
_ALL_DEFAULTS = "allowed: every scope's default effect is allow"


def deciding_from_message(message: str) -> tuple[tuple[Scope, str], ...] | None:
    """The deciding rules a granted answer's ``requestrocket-proxy-message`` names, or
    None when it is not rrdev's wording (a deployed gateway may say anything there).

    Scopes the message leaves out were decided by their default effect, as in rrdev's
    trace, so coverage counts exactly the rules a dry run would.
    """
    if message == _ALL_DEFAULTS:
        named: dict[str, str] = {}
    elif message.startswith("allowed by "):
        parts = message.removeprefix("allowed by ").split(", ")
        matches = [_NAMED_RULE.fullmatch(part) for part in parts]
        if not all(matches):
            return None
        named = {_SCOPE_NAMES[m[1]]: m[2] for m in matches if m is not None}
    else:
        return None
    return tuple((scope, named.get(scope, "default")) for scope in SCOPE_LABELS)  # type: ignore[misc]


def _trace_deciding(trace: Any) -> tuple[tuple[Scope, str], ...]:
    if not isinstance(trace, dict):
        return ()
    pairs = []
    for item in trace.get("deciding") or ():
        if isinstance(item, dict) and isinstance(item.get("rule"), str):
            pairs.append((item.get("scope"), item["rule"]))
    return tuple(pairs)


def _transport_problem(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text[:200]


@contextlib.asynccontextmanager
async def http_client(options: CheckOptions, *, trust_env: bool) -> AsyncIterator[Any]:
    import httpx

    async with httpx.AsyncClient(
        timeout=options.timeout, follow_redirects=False, trust_env=trust_env
    ) as client:
        yield client
