"""The fast lane: the common allowed request, answered without the full path's objects.

Compiled once per loaded profile (``fast_lane(state)``, kept on the ``_State``) when the
profile can have one: a ``jwtVerify`` or ``none`` proxy credential, a target
credential that is ``none``, ``bearer``, ``basic`` or a header ``api_key`` (nothing to
fetch, nothing wrong with it), no response filters, an active proxy, and no rule that
reads headers. When someone reads records (a sink: the TUI, the console, a log file),
a planned request's record is a copy of the one the full path made for the same
request the first time (``fastrecords.py``); until then the request takes the full path.

``FastLane.plan(scope, now)`` makes one pass over the raw header bytes from the server
and either **declines** (returns None: the request takes the full path, unchanged) or
returns what to send upstream: the method, the URL and the header list, and the
``requestrocket-proxy-message`` the caller gets. It declines anything unusual: a query,
a target that is not a plain path (``paths.plain_path``) or not the one sent, a header
name with ``_`` or upper case, a value outside ASCII, two ``Host`` or ``Authorization``
headers, no ``Host``, framing (``Transfer-Encoding``, a ``Content-Length`` other than
0, ``Expect``), ``Upgrade``, a ``Connection`` naming other headers, method overrides,
the caller's own ``X-Forwarded-For``/``Forwarded`` chains, routing headers, ``OPTIONS``,
more headers than the full path allows, a token that is not ``Bearer <visible ASCII>``
or not already verified (the ``CachingVerifier`` holds it), heavy rule work, and every
refusal.

It does not decide anything itself: the Host is judged by ``hosts.host_problem``, the
token by the verifier's cache, the rules by the one evaluator (``RuleRun.verdict``);
their answers for a (method, path, token) and for a Host are remembered (bounded),
never the token's validity, which is looked up on every request. The header list is
the full path's (``headers._upstream_headers``), built from the same drop set, the
same target credential and the same ``X-Forwarded-*`` cache; a property test holds the
two to the same status, reason, URL and headers.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import aiohttp
from yarl import URL

from rrdev.core.explain import _allowed_message
from rrdev.core.hosts import host_problem
from rrdev.core.hygiene import OVERRIDE_HEADERS
from rrdev.core.paths import plain_path
from rrdev.core.records import RequestFacts
from rrdev.core.rules import INLINE_WEIGHT, prepare
from rrdev.servers.asgi import Scope
from rrdev.servers.proxy.answers import MAX_HEADER_BYTES, MAX_HEADER_LINES, _header_text
from rrdev.servers.proxy.deadlines import SUPPORTED
from rrdev.servers.proxy.fastrecords import FastRecords
from rrdev.servers.proxy.headers import (
    _ROUTING,
    _authorization,
    _CallerHeaders,
    _forwarding_headers,
)
from rrdev.servers.proxy.request import REQUEST_TARGET

if TYPE_CHECKING:
    from rrdev.core.records import Verification
    from rrdev.servers.proxy.state import _State

#: (method, URL, upstream headers, requestrocket-proxy-message)
FastPlan = tuple[str, URL, list[tuple[str, str]], bytes]

# What each watched header name means to the lane: read it, or decline the request.
_HOST, _AUTHORIZATION, _CONNECTION, _LENGTH, _DECLINE = range(5)
_DECLINED_NAMES = (
    b"transfer-encoding",
    b"upgrade",
    b"expect",
    b"x-forwarded-for",
    b"forwarded",
    *(name.encode() for name in _ROUTING),
    *(name.encode() for name in OVERRIDE_HEADERS),
)
_WATCHED = {
    b"host": _HOST,
    b"authorization": _AUTHORIZATION,
    b"connection": _CONNECTION,
    b"content-length": _LENGTH,
    **dict.fromkeys(_DECLINED_NAMES, _DECLINE),
}
# A subset of explain's ``_BEARER``: one scheme, a token of visible ASCII.
_BEARER = re.compile(rb"[Bb][Ee][Aa][Rr][Ee][Rr][ \t]+([!-~]+)[ \t]*\Z")
#: Remembered verdicts (per (method, path, token)) and Host answers, per profile.
_MEMO_ENTRIES = 1024
_HOST_ENTRIES = 64


def fast_lane(state: _State) -> FastLane | None:
    """The state's fast lane, or None when its profile needs the full path always."""
    profile = state.profile
    cred = state.credential
    kind = profile.proxy_credential.auth_type
    if kind == "jwtVerify" and state.verifier is None:
        return None
    if kind not in ("jwtVerify", "none") or state.static is not None:
        return None
    if cred.error is not None or cred.source is not None or cred.query_piece is not None:
        return None
    if state.response_filters is not None or not profile.proxy.active:
        return None
    if any(rule.headers for rule in profile.all_rules()):
        return None
    return FastLane(state)


class FastLane:
    """One profile's fast lane (see the module docstring)."""

    __slots__ = (
        "_auth_tail",
        "_bearers",
        "_drop",
        "_hosts",
        "_jwt",
        "_memo",
        "_state",
        "read_seconds",
        "records",
        "timeout",
        "verification",
    )

    def __init__(self, state: _State) -> None:
        self._state = state
        # The wait for the backend's answer is bounded by ``Deadlines`` (one shared
        # timer) instead of aiohttp's per-read timers, where aiohttp allows it.
        read = state.timeout.sock_read
        self.read_seconds = read if SUPPORTED and read else None
        timeout = state.timeout
        if self.read_seconds:
            timeout = aiohttp.ClientTimeout(
                total=timeout.total,
                connect=timeout.connect,
                sock_connect=timeout.sock_connect,
                sock_read=None,
                ceil_threshold=timeout.ceil_threshold,
            )
        self.timeout = timeout
        self._jwt = state.profile.proxy_credential.auth_type == "jwtVerify"
        self._drop = frozenset(name.encode("latin-1") for name in state.drop)
        self._memo: dict[tuple[str, bytes, str], tuple[URL, bytes]] = {}
        self._hosts: dict[bytes, str] = {}
        self._bearers: dict[bytes, str] = {}
        # The upstream Authorization headers when the caller's is not forwarded.
        self._auth_tail = _authorization_tail(state, None)
        #: the records of planned requests, when someone reads them (``fastrecords.py``)
        self.records = FastRecords()
        #: the token's verification the last ``plan`` used (None without a JWT): a
        #: record's template holds to it
        self.verification: Verification | None = None

    def plan(self, scope: Scope, now: float) -> FastPlan | None:
        """What to send upstream for this request, or None to take the full path."""
        method = scope["method"]
        raw = scope.get("raw_path")
        if scope.get("query_string") or method == "OPTIONS" or not raw:
            return None
        extensions = scope.get("extensions")
        sent = extensions.get(REQUEST_TARGET) if extensions else None
        if sent is not None and sent != raw:
            return None  # absolute form, a fragment, a query httptools moved
        headers = scope["headers"]
        if len(headers) > MAX_HEADER_LINES:
            return None
        out: list[tuple[str, str]] = []
        host = authorization = None
        size = 0
        drop = self._drop
        for name, value in headers:
            size += len(name) + len(value)
            if not value.isascii():
                return None
            watched = _WATCHED.get(name)
            if watched is not None:
                if watched == _HOST:
                    if host is not None:
                        return None
                    host = value
                elif watched == _AUTHORIZATION:
                    if authorization is not None:
                        return None
                    authorization = value
                elif watched == _CONNECTION:
                    if not self._connection_ok(value):
                        return None
                elif watched == _LENGTH:
                    if value != b"0":
                        return None
                else:
                    return None
            if name in drop:
                continue
            if b"_" in name or not name.islower():
                return None
            if watched != _AUTHORIZATION:
                out.append((name.decode("latin-1"), value.decode("latin-1")))
        if size > MAX_HEADER_BYTES or host is None:
            return None
        host_text = self._host(host)
        if host_text is None:
            return None
        token = ""
        claims = None
        self.verification = None
        if self._jwt:
            token = self._token(authorization)
            if token is None:
                return None
            verification = self._state.verifier.cached(token, now)  # type: ignore[union-attr]
            if verification is None:
                return None
            claims = verification.claims
            self.verification = verification
        judged = self._memo.get((method, raw, token))
        if judged is None:
            judged = self._judge(method, raw, token, claims)
            if judged is None:
                return None
        url, message = judged
        caller_auth = None
        if authorization is not None and "authorization" not in self._state.drop:
            caller_auth = authorization.decode("latin-1")
        self._tail(out, caller_auth, claims, scope, host_text)
        return method, url, out, message

    def _token(self, authorization: bytes | None) -> str | None:
        """The bearer token of an Authorization value, or None (the full path's to
        judge). Remembered per value, so the same str (its hash computed once) keys
        the verifier's cache and the verdicts on every request."""
        if authorization is None:
            return None
        token = self._bearers.get(authorization)
        if token is None:
            found = _BEARER.match(authorization)
            if found is None:
                return None
            token = found.group(1).decode("ascii")
            if len(self._bearers) >= _MEMO_ENTRIES:
                self._bearers.clear()
            self._bearers[authorization] = token
        return token

    def _connection_ok(self, value: bytes) -> bool:
        # Only hop-by-hop names (dropped anyway) and "close": a Connection header that
        # names a header the caller sent takes the full path, which removes it.
        for token in value.split(b","):
            token = token.strip().lower()
            if token and token != b"close" and token not in self._drop:
                return False
        return True

    def _host(self, value: bytes) -> str | None:
        """The Host as text when ``explain``'s Host rule lets it pass, else None."""
        known = self._hosts.get(value)
        if known is not None:
            return known
        text = value.decode("latin-1")
        if text.strip() and host_problem(text, self._state.profile.proxy.allowed_hosts):
            return None
        if not text.strip():
            return None  # an empty Host: the full path's to judge and record
        if len(self._hosts) >= _HOST_ENTRIES:
            self._hosts.clear()
        self._hosts[value] = text
        return text

    def _judge(self, method: str, raw: bytes, token: str, claims: Any) -> tuple[URL, bytes] | None:
        """The rules' verdict on a plain path (the one evaluator), remembered when it
        allows; None for a path that is not plain, heavy rule work or a refusal."""
        if not raw.isascii():
            return None
        path = raw.decode("ascii")
        if not plain_path(path):
            return None
        state = self._state
        facts = RequestFacts(method, path, path, (), ())
        run = prepare(state.profile, facts, claims, state.redactor)
        if run.weight > INLINE_WEIGHT:
            return None
        decision = run.verdict()
        if not decision.allowed:
            return None
        judged = (state.upstream.url(path, ""), _header_text(_allowed_message(decision)))
        if len(self._memo) >= _MEMO_ENTRIES:
            self._memo.clear()
        self._memo[(method, raw, token)] = judged
        return judged

    def _tail(
        self,
        out: list[tuple[str, str]],
        caller_auth: str | None,
        claims: Any,
        scope: Scope,
        host: str,
    ) -> None:
        """Authorization, ``additional_headers`` and ``X-Forwarded-*``, in the full
        path's order (``headers._upstream_headers``)."""
        state = self._state
        if caller_auth is None:
            out.extend(self._auth_tail)
        else:
            out.extend(_authorization_tail(state, caller_auth))
        for template in state.templates:
            value, _note = template.render(claims)
            if value is not None:
                out.append((template.name, value))
        client_address = scope.get("client")
        client = client_address[0] if client_address else None
        key = (client, host, scope.get("scheme", "http"), scope.get("server"))
        made = state.forwarding.get(key)
        if made is None:
            made = _forwarding_headers(state, scope, _CallerHeaders((), None, host, (), ()), [])
        out.extend(made)


def _authorization_tail(state: _State, caller_auth: str | None) -> list[tuple[str, str]]:
    """``headers._authorization`` for a target credential with nothing to fetch."""
    out: list[tuple[str, str]] = []
    _authorization(state, caller_auth, out, None)
    return out
