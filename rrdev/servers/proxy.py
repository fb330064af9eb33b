"""The forwarding ASGI app behind ``rrdev up``: authenticate -> rules -> forward -> record.

One request, DESIGN.md §2 end to end:

1. ``explain.decide`` answers it (400 ``ambiguous_path`` / ``duplicate_authorization``,
   401 ``token_*``, 503 ``jwks_unavailable``, 403 from the rules, or "allowed"; CORS
   preflights pass without authentication). This module never decides access itself.
2. An allowed request is forwarded with the one pooled aiohttp ``ClientSession``: the
   path and query bytes exactly as received, headers rewritten (hop-by-hop dropped both
   ways, ``Host`` the target's, ``X-Forwarded-*``, the target credential, the
   Authorization rule of §2.5, ``additional_headers``, ``header_filters``). Bodies
   stream both ways with back-pressure; nothing is buffered whole.
3. The backend's answer passes through (any status). An unreachable backend is 502
   ``upstream_unreachable``, a slow one 504 ``upstream_timeout``. With an ``oauth2``
   target credential the backend token comes from a ``BackendTokenSource`` (fetched,
   kept and refreshed before expiry); a token endpoint that fails is 502
   ``upstream_token_unavailable`` (the caller gets a fixed message; the token
   endpoint's answer, redacted, is in the record only).
4. Every response carries ``requestrocket-proxy-code``/``-message`` (a backend's own
   headers of those names are dropped); every answer rrdev makes itself has the JSON
   error body. After the response, one ``RequestRecord`` (redacted) goes to the
   injected sink.

Before any of that, requests a forwarding proxy must not pass on are refused: more
than ``MAX_HEADER_LINES`` header lines or ``MAX_HEADER_BYTES`` of header names and
values (431 ``headers_too_large``), and a request transfer coding other than plain
``chunked`` (501 ``transfer_coding_unsupported``). Requests the HTTP parser itself
rejects are answered by ``rrdev.servers.runner`` with ``ProxyApp.refuse_unparsed``.

The profile is re-read when its file changes (a ``stat`` at most every
``reload_interval`` seconds); the new profile is loaded in a worker thread, and the
request that noticed the change (and any arriving meanwhile) waits for it, so an edit
applies to the next request without blocking the event loop. A broken edit keeps the
last good profile. Reloads are reported through ``on_event(kind, message)`` with kind
"reloaded" or "reload_failed".
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import re
import ssl
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field, replace
from email.utils import formatdate
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, unquote_plus, urlsplit

import aiohttp
from yarl import URL

from rrdev.clients.backend_token import BackendTokenSource
from rrdev.clients.jwks import JwksCache
from rrdev.clients.oauth2 import TokenFetchError
from rrdev.core.errors import EnvVarError, ProfileError, RrdevError
from rrdev.core.explain import IncomingRequest, JwksVerifier, Verifier, decide, redactor_for
from rrdev.core.jwk import JwksStatus
from rrdev.core.model import Profile, Secret, TargetCredential
from rrdev.core.records import PREVIEW_BYTES, Explanation, RequestRecord, Verification
from rrdev.core.redact import REDACTED, Redactor
from rrdev.servers.asgi import Receive, Scope, Send

__all__ = [
    "MAX_HEADER_BYTES",
    "MAX_HEADER_LINES",
    "CachingVerifier",
    "EventCallback",
    "Overrides",
    "ProxyApp",
    "ProxyInfo",
    "RecordSink",
]

#: Receives one record per request, after the response has completed.
RecordSink = Callable[[RequestRecord], None]
#: ``on_event(kind, message)``: "reloaded", "reload_failed", "record_failed".
EventCallback = Callable[[str, str], None]


#: RFC 9110 §7.6.1 hop-by-hop headers (plus the non-standard Proxy-Connection):
#: dropped in both directions, as are any headers the Connection header names.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
#: Caller headers rrdev replaces (Host is the target's; X-Forwarded-Proto/-Host are
#: rrdev's to set; Expect was already answered to the caller by the server).
_REPLACED = frozenset({"host", "x-forwarded-proto", "x-forwarded-host", "expect"})
_HOP_BY_HOP_BYTES = frozenset(h.encode() for h in HOP_BY_HOP)

CODE_GRANTED = b"proxy-access-granted"
#: rrdev answers after access was granted: the backend, not the caller, is the problem.
_GRANTED_FAILURES = frozenset(
    {
        "upstream_unreachable",
        "upstream_timeout",
        "upstream_credential_unavailable",
        "upstream_token_unavailable",
    }
)
CODE_DENIED = b"proxy-access-denied"
#: rrdev's own response headers: a backend's headers of these names are dropped.
_GATEWAY_HEADERS = frozenset({b"requestrocket-proxy-code", b"requestrocket-proxy-message"})
#: What the caller of a failed ``oauth2`` fetch is told; the details go to the record.
_TOKEN_UNAVAILABLE_MESSAGE = "the backend's token endpoint failed; see the rrdev console"
_TOKEN_UNAVAILABLE_HINT = (
    "the proxy could not get the backend's own access token (target_credential "
    "auth_type = 'oauth2'); the rrdev console and log say what the token endpoint answered"
)
#: More header lines than this, or more bytes of header names and values, is 431.
MAX_HEADER_LINES = 200
MAX_HEADER_BYTES = 64 * 1024

#: Scope extension (set by rrdev.servers.runner) with the request target exactly as sent.
REQUEST_TARGET = "rrdev.request_target"
#: Start watching for a vanished caller once a download passes this many bytes.
_WATCH_AFTER_BYTES = 256 * 1024
_CLAIM_PLACEHOLDER = re.compile(r"\{claims\.([^{}\s]+)\}")
_UNSAFE_HEADER_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_MISSING = object()


# ------------------------------------------------------------------ public values


@dataclass(frozen=True)
class Overrides:
    """Command-line overrides that outlive a reload.

    ``target`` replaces ``target.base_url``; ``jwks`` (a file or URL) replaces the
    proxy credential's ``jwks_uri``; ``offline`` makes the local keyset
    (``$RRDEV_HOME``) the JWKS, so tokens from ``rrdev token mint`` verify.
    """

    target: str | None = None
    jwks: str | None = None
    offline: bool = False


@dataclass(frozen=True)
class ProxyInfo:
    """What a startup banner shows about the running profile."""

    profile_path: str
    profile_name: str
    target: str
    target_overridden: bool
    jwks: str | None
    credential: str
    warnings: tuple[str, ...]


class CachingVerifier:
    """A ``Verifier`` that remembers successful verifications for a while.

    Repeated requests with the same token skip the signature check. An entry lives
    until the token's ``exp`` or ``max_age`` seconds (the JWKS TTL), whichever comes
    first, so a key dropped from the JWKS (a rotation's grace period ending) stops
    being honoured within one TTL. Failures are never cached (a fixed JWKS or clock
    must take effect at once). The proxy makes a new one for every profile it loads,
    so a reload drops everything verified under the old settings. At most
    ``max_entries`` tokens are kept (least recently used go first).
    """

    def __init__(
        self, inner: Verifier, max_entries: int = 4096, max_age: float = float("inf")
    ) -> None:
        self.inner = inner
        self.max_entries = max_entries
        self.max_age = max_age
        self._cache: OrderedDict[str, tuple[Verification, float]] = OrderedDict()

    async def verify(self, token: str, now: float) -> Verification:
        hit = self._cache.get(token)
        if hit is not None:
            verification, valid_until = hit
            if now < valid_until:
                self._cache.move_to_end(token)
                return verification
            del self._cache[token]
        result = await self.inner.verify(token, now)
        if result.ok and result.expires_at is not None and now < result.expires_at:
            self._cache[token] = (result, min(result.expires_at, now + self.max_age))
            if len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return result

    def clear(self) -> None:
        self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)


# ------------------------------------------------------------------ per-profile state


@dataclass(frozen=True)
class _Credential:
    """The target credential, resolved once per loaded profile.

    ``error`` (with ``hint``) says why it cannot be used: every allowed request then
    gets 502 ``upstream_credential_unavailable``. ``secrets`` are the resolved values,
    scrubbed from any text rrdev prints. ``source`` (``oauth2``) supplies the
    Authorization value per request instead of ``authorization``.
    """

    label: str
    authorization: str | None = None
    source: BackendTokenSource | None = None
    header: tuple[str, str] | None = None
    query_name: str | None = None
    query_piece: str | None = None
    error: str | None = None
    hint: str = ""
    secrets: tuple[str, ...] = ()


@dataclass(frozen=True)
class _Template:
    """One ``additional_headers`` entry, split once: literals and claim paths."""

    name: str
    parts: tuple[str | tuple[str], ...]
    static: str | None

    def render(self, claims: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
        """(value, None), or (None, why the header was left out)."""
        if self.static is not None:
            return self.static, None
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = _claim_at(claims, part[0]) if claims is not None else _MISSING
            if value is _MISSING or value is None:
                why = "no verified token" if claims is None else f"no claim '{part[0]}'"
                return None, f"additional header {self.name} omitted: {why}"
            out.append(_claim_text(value))
        text = "".join(out)
        if _UNSAFE_HEADER_VALUE.search(text):
            return None, f"additional header {self.name} omitted: control characters in the claim"
        return text, None


@dataclass(frozen=True)
class _Upstream:
    scheme: str
    authority: str
    prefix: str
    label: str

    def url(self, raw_path: str, raw_query: str) -> URL:
        # encoded=True: aiohttp sends these bytes as they are, never re-quoting them.
        return URL.build(
            scheme=self.scheme,
            authority=self.authority,
            path=self.prefix + raw_path,
            query_string=raw_query,
            encoded=True,
        )


@dataclass
class _State:
    """Everything derived from one loaded profile. Requests hold on to the state they
    started with, so a reload never changes a request half-way."""

    profile: Profile
    redactor: Redactor
    verifier: CachingVerifier | None
    jwks: JwksCache | None
    jwks_key: tuple[Any, ...] | None
    jwks_label: str | None
    upstream: _Upstream
    target_overridden: bool
    timeout: aiohttp.ClientTimeout
    ssl: ssl.SSLContext | bool
    credential: _Credential
    #: caller headers never forwarded as they are
    drop: frozenset[str]
    #: lower-case names of header_filters
    filters: frozenset[str]
    templates: tuple[_Template, ...]
    forward_as: str | None
    warnings: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    #: id(verification) -> (verification, its redacted copy), for records
    redacted: dict[int, tuple[Verification, Verification]] = field(default_factory=dict)


# ------------------------------------------------------------------ the app


class ProxyApp:
    """The ASGI application of ``rrdev up`` (HTTP, WebSocket refusal, lifespan).

    Construct it with a loaded ``Profile``; errors in the profile or the overrides
    (an unreadable ``ca_bundle``, a bad ``--target``) raise ``RrdevError`` here, before
    anything listens. Run it under ``rrdev.servers.runner.ProxyServer`` (lifespan creates and
    closes the client session) or drive it in-process with ``httpx.ASGITransport``
    (then use ``async with app:`` or let the first request create the session).

    ``sink`` receives each ``RequestRecord``; ``on_event`` reload notices; ``clock``
    the epoch time used for token checks and records. ``reload_interval`` (seconds,
    0 disables) bounds how often the profile file is checked for changes.
    ``record_exchange`` (an attribute too; may change at any time) also puts the
    redacted request and response headers and a JSON response preview in each record
    (the TUI turns it on; ``rrdev up`` leaves it off, so its logs stay lean).
    """

    def __init__(
        self,
        profile: Profile,
        *,
        overrides: Overrides | None = None,
        sink: RecordSink | None = None,
        on_event: EventCallback | None = None,
        clock: Callable[[], float] = time.time,
        reload_interval: float = 0.5,
        record_exchange: bool = False,
    ) -> None:
        self.overrides = overrides or Overrides()
        self.sink = sink
        self.on_event = on_event
        self.clock = clock
        self.reload_interval = reload_interval
        self.record_exchange = record_exchange
        self._session: aiohttp.ClientSession | None = None
        self._retired_caches: list[JwksCache] = []
        self._retired_sources: list[BackendTokenSource] = []
        self._watcher: asyncio.Task[None] | None = None
        self._reloading: asyncio.Task[bool] | None = None
        self._state = _build_state(profile, self.overrides, None, clock)
        self._file_sig = _signature(self._state.files)
        self._next_check = time.monotonic() + reload_interval

    # -------------------------------------------------------------- public API

    @property
    def profile(self) -> Profile:
        """The profile currently in force (changes on reload)."""
        return self._state.profile

    def info(self) -> ProxyInfo:
        state = self._state
        return ProxyInfo(
            profile_path=state.profile.path,
            profile_name=state.profile.display_name,
            target=state.upstream.label,
            target_overridden=state.target_overridden,
            jwks=state.jwks_label,
            credential=state.credential.label,
            warnings=state.warnings,
        )

    def jwks_status(self) -> JwksStatus | None:
        """The key cache of the profile in force (keys, age, last error), for a status
        line; None when the proxy credential verifies no JWTs."""
        jwks = self._state.jwks
        return jwks.status() if jwks is not None else None

    async def startup(self) -> None:
        """Create the pooled client session and start watching the profile file."""
        if self._session is None:
            self._session = _new_session()
        if self._watcher is None and self.reload_interval > 0 and self._state.files:
            self._watcher = asyncio.create_task(self._watch_profile())

    async def aclose(self) -> None:
        """Close the client session and the JWKS caches. Safe to call twice."""
        for task in (self._watcher, self._reloading):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._watcher = self._reloading = None
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()
        caches = [*self._retired_caches, self._state.jwks]
        self._retired_caches = []
        for cache in caches:
            if cache is not None:
                await cache.aclose()
        sources = [*self._retired_sources, self._state.credential.source]
        self._retired_sources = []
        for source in sources:
            if source is not None:
                await source.aclose()

    async def __aenter__(self) -> ProxyApp:
        await self.startup()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    async def check_reload(self, *, force: bool = False) -> bool:
        """Re-read the profile if its file changed; True when a new profile took effect.

        Called on every request (cheap: a clock read, and a ``stat`` at most every
        ``reload_interval``) and by the background watcher. The profile is loaded
        (and its state built: CA bundle, local keyset) in a worker thread; while that
        runs, every request waits for it instead of using the old profile.
        """
        running = self._reloading
        if running is not None and not running.done():
            return await asyncio.shield(running)
        now = time.monotonic()
        if not force and now < self._next_check:
            return False
        self._next_check = now + self.reload_interval
        files = self._state.files
        if not files:
            return False
        signature = _signature(files)
        if signature == self._file_sig:
            return False
        self._file_sig = signature
        task = asyncio.get_running_loop().create_task(self._reload(files[0]))
        self._reloading = task
        task.add_done_callback(self._reload_done)
        # shield: a caller that goes away must not cancel the reload others wait on.
        return await asyncio.shield(task)

    def refuse_unparsed(
        self,
        problem: str,
        detail: str,
        *,
        method: str = "-",
        target: bytes = b"",
        record: bool = True,
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """The answer to a request the HTTP parser refused (``rrdev.servers.runner`` calls
        this, writes the answer and closes the connection): status, JSON body and
        headers, like every answer rrdev makes. The refusal is recorded unless
        ``record`` is false (the app had already started on the request and records
        it itself).

        ``problem`` and ``detail``: see ``_unparsed_request``. ``method`` and ``target``
        are what the parser got of the request line ("-" and b"" when nothing).
        """
        expl = _unparsed_request(problem, detail, target)
        body, headers = _error_payload(expl)
        if not any(name == b"connection" for name, _ in headers):
            headers.append((b"connection", b"close"))
        progress = _Progress(self.clock(), time.perf_counter(), _clip_text(method, 20) or "-")
        progress.bytes_out = len(body)
        if record:
            path, _, query = target.partition(b"?")
            self._record(progress, self._state, _escaped(path), _escaped(query), expl)
        return expl.status, body, headers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        elif kind == "lifespan":
            await self._lifespan(receive, send)

    # -------------------------------------------------------------- reload

    async def _reload(self, path: str) -> bool:
        old = self._state
        try:
            state = await asyncio.to_thread(_load_state, path, self.overrides, old, self.clock)
        except RrdevError as exc:
            self._emit("reload_failed", f"{exc} (still serving the last good profile)")
            return False
        except Exception as exc:  # never let a surprise kill the watcher or a request
            self._emit(
                "reload_failed",
                f"{path}: {type(exc).__name__}: {exc} (still serving the last good profile)",
            )
            return False
        if old.jwks is not None and old.jwks is not state.jwks:
            # In-flight requests may still use it; close it at shutdown.
            self._retired_caches.append(old.jwks)
        if old.credential.source is not None:
            # A reload starts with a new backend token; a fetch in flight may finish.
            self._retired_sources.append(old.credential.source)
        self._state = state
        self._emit(
            "reloaded", f"{path}: new requests use the edited profile{_restart_note(old, state)}"
        )
        return True

    def _reload_done(self, task: asyncio.Task[bool]) -> None:
        if self._reloading is task:
            self._reloading = None
        if not task.cancelled():
            task.exception()  # retrieved: never "exception was never retrieved"

    async def _watch_profile(self) -> None:
        while True:
            await asyncio.sleep(self.reload_interval)
            with contextlib.suppress(Exception):
                await self.check_reload(force=True)

    def _emit(self, kind: str, message: str) -> None:
        if self.on_event is None:
            return
        with contextlib.suppress(Exception):
            self.on_event(kind, message)

    # -------------------------------------------------------------- lifespan

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -------------------------------------------------------------- websocket

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = self.clock()
        t0 = time.perf_counter()
        await receive()  # websocket.connect
        state = self._state
        expl = _websocket_refusal()
        if "websocket.http.response" in scope.get("extensions", {}):
            body, headers = _error_payload(expl)
            await send({"type": "websocket.http.response.start", "status": 501, "headers": headers})
            await send({"type": "websocket.http.response.body", "body": body})
            sent = len(body)
        else:  # servers without the extension can only refuse the handshake (403)
            await send({"type": "websocket.close", "code": 1008})
            sent = 0
        raw_path, raw_query = _target_text(scope)
        self._record(
            _Progress(started, t0, "GET"),
            state,
            raw_path,
            raw_query,
            expl,
            bytes_out=sent,
        )

    # -------------------------------------------------------------- http

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        progress = _Progress(self.clock(), time.perf_counter(), scope["method"])
        if self.reload_interval > 0:
            await self.check_reload()
        state = self._state
        raw_path, raw_query = _target_text(scope)
        refused = _framing_problem(scope["headers"])
        if refused is not None:
            progress.bytes_out = await _send_error(send, refused)
            self._record(progress, state, raw_path, raw_query, refused)
            return
        headers = [(k.decode("latin-1"), _header_value(v)) for k, v in scope["headers"]]
        if self.record_exchange:
            progress.exchange = True
            progress.request_headers = headers
        if any(k == "upgrade" and "websocket" in v.lower() for k, v in headers):
            expl = _websocket_refusal()
            progress.bytes_out = await _send_error(send, expl)
            self._record(progress, state, raw_path, raw_query, expl)
            return
        timed = _TimedVerifier(state.verifier) if state.verifier is not None else None
        expl = await decide(
            state.profile,
            IncomingRequest(progress.method, raw_path, raw_query, tuple(headers)),
            timed,
            now=progress.started,
            redactor=state.redactor,
        )
        progress.decided(timed)
        if expl.allowed:
            expl = _forward_problem(state, expl) or expl
        authorization = None
        if expl.allowed and state.credential.source is not None:
            authorization, expl = await _backend_authorization(state, expl, progress)
        if not expl.allowed:
            progress.bytes_out = await _send_error(send, expl)
        else:
            target = (raw_path, raw_query)
            expl = await self._forward(
                state, scope, receive, send, target, headers, expl, progress, authorization
            )
        self._record(progress, state, raw_path, raw_query, expl)

    async def _forward(
        self,
        state: _State,
        scope: Scope,
        receive: Receive,
        send: Send,
        target: tuple[str, str],
        headers: list[tuple[str, str]],
        expl: Explanation,
        progress: _Progress,
        authorization: str | None = None,
    ) -> Explanation:
        """Forward an allowed request; returns the explanation to record (an upstream
        failure replaces "allowed" with 502/504). ``authorization`` is the backend
        token's header value (``oauth2`` target credentials)."""
        if self._session is None:
            await self.startup()
        assert self._session is not None
        raw_path, raw_query = target
        query = _upstream_query(state, raw_query)
        claims = expl.verification.claims if expl.verification else None
        out_headers = _upstream_headers(
            state, scope, headers, claims, progress.notes, authorization
        )
        body = _RequestBody(receive, headers)
        t_up = time.perf_counter()
        try:
            response = await self._session.request(
                progress.method,
                state.upstream.url(raw_path, query),
                headers=out_headers,
                data=body.chunks() if body.expected else None,
                allow_redirects=False,
                timeout=state.timeout,
                ssl=state.ssl,
            )
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            progress.upstream_ms = (time.perf_counter() - t_up) * 1000
            progress.bytes_in = body.received
            if body.client_gone:
                progress.notes.append("the caller went away during the upload")
            failed = _upstream_failure(exc, state, expl)
            progress.bytes_out = await _send_error(send, failed)
            return failed
        progress.upstream_ms = (time.perf_counter() - t_up) * 1000
        progress.upstream_status = response.status
        try:
            await self._relay(response, send, receive, body, expl, progress)
        finally:
            progress.bytes_in = body.received
        return expl

    async def _relay(
        self,
        response: aiohttp.ClientResponse,
        send: Send,
        receive: Receive,
        body: _RequestBody,
        expl: Explanation,
        progress: _Progress,
    ) -> None:
        """Stream the backend's response to the caller, with back-pressure both ways."""
        headers = _downstream_headers(response.raw_headers)
        headers.append((b"requestrocket-proxy-code", CODE_GRANTED))
        headers.append((b"requestrocket-proxy-message", _header_text(expl.message)))
        preview = _start_preview(progress, headers) if progress.exchange else None
        watcher: asyncio.Task[None] | None = None
        complete = False
        try:
            await send(
                {"type": "http.response.start", "status": response.status, "headers": headers}
            )
            async for chunk in response.content.iter_any():
                if progress.client_gone:
                    progress.notes.append("the caller went away; the response was not finished")
                    break
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
                progress.bytes_out += len(chunk)
                if preview is not None and len(preview) < PREVIEW_BYTES:
                    preview += chunk[: PREVIEW_BYTES - len(preview)]
                if watcher is None and body.done and progress.bytes_out > _WATCH_AFTER_BYTES:
                    watcher = asyncio.create_task(_watch_disconnect(receive, progress))
            else:
                complete = True
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            progress.notes.append(f"the backend's response was cut short ({type(exc).__name__})")
        finally:
            if watcher is not None:
                watcher.cancel()
            if complete:
                response.release()
            else:
                response.close()
        if complete:
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        # Otherwise return without finishing: the server closes the connection, so the
        # caller sees a truncated response instead of a complete-looking one.

    # -------------------------------------------------------------- records

    def _record(
        self,
        progress: _Progress,
        state: _State,
        raw_path: str,
        raw_query: str,
        expl: Explanation,
        *,
        bytes_out: int | None = None,
    ) -> None:
        if self.sink is None:
            return
        try:
            self.sink(_make_record(progress, state, raw_path, raw_query, expl, bytes_out))
        except Exception as exc:  # a broken sink must not break the proxy
            self._emit("record_failed", f"{type(exc).__name__}: {exc}")


# ------------------------------------------------------------------ request helpers


class _Progress:
    """Timings and counters of one request, filled in as it goes."""

    __slots__ = (
        "auth_ms",
        "bytes_in",
        "bytes_out",
        "client_gone",
        "exchange",
        "method",
        "notes",
        "preview",
        "request_headers",
        "response_headers",
        "rules_ms",
        "started",
        "t0",
        "upstream_ms",
        "upstream_status",
    )

    def __init__(self, started: float, t0: float, method: str) -> None:
        self.started = started
        self.t0 = t0
        self.method = method
        self.auth_ms = 0.0
        self.rules_ms = 0.0
        self.upstream_ms: float | None = None
        self.upstream_status: int | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.client_gone = False
        self.notes: list[str] = []
        # Only with ProxyApp.record_exchange: what the record's exchange fields show.
        self.exchange = False
        self.request_headers: list[tuple[str, str]] = []
        self.response_headers: list[tuple[bytes, bytes]] | None = None
        self.preview: bytearray | None = None

    def decided(self, timed: _TimedVerifier | None) -> None:
        elapsed = (time.perf_counter() - self.t0) * 1000
        self.auth_ms = timed.seconds * 1000 if timed is not None else 0.0
        self.rules_ms = max(elapsed - self.auth_ms, 0.0)


class _TimedVerifier:
    """Per-request wrapper that measures time spent verifying (for ``auth_ms``)."""

    __slots__ = ("inner", "seconds")

    def __init__(self, inner: Verifier) -> None:
        self.inner = inner
        self.seconds = 0.0

    async def verify(self, token: str, now: float) -> Verification:
        start = time.perf_counter()
        try:
            return await self.inner.verify(token, now)
        finally:
            self.seconds += time.perf_counter() - start


class _RequestBody:
    """The caller's body as an async iterator for aiohttp, counting bytes as they pass."""

    __slots__ = ("client_gone", "done", "expected", "receive", "received")

    def __init__(self, receive: Receive, headers: list[tuple[str, str]]) -> None:
        self.receive = receive
        self.received = 0
        self.client_gone = False
        self.expected = any(
            (k == "content-length" and v.strip() not in ("", "0")) or k == "transfer-encoding"
            for k, v in headers
        )
        self.done = not self.expected

    async def chunks(self) -> AsyncIterator[bytes]:
        while not self.done:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                self.client_gone = True
                raise ConnectionResetError("the caller disconnected during the upload")
            chunk = message.get("body", b"")
            self.done = not message.get("more_body", False)
            if chunk:
                self.received += len(chunk)
                yield chunk


async def _watch_disconnect(receive: Receive, progress: _Progress) -> None:
    """After the request body is in, the server's next message is the disconnect."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            progress.client_gone = True
            return


def _target_text(scope: Scope) -> tuple[str, str]:
    """The raw path and query as text for ``decide``. Bytes outside ASCII are
    percent-escaped so the path rule sees them (invalid UTF-8 is refused there)."""
    raw = scope.get("raw_path") or scope["path"].encode("utf-8")
    raw = raw.partition(b"?")[0]  # httpx's ASGITransport puts the query in raw_path
    sent = scope.get("extensions", {}).get(REQUEST_TARGET)
    if sent is not None and (not sent.startswith(b"/") or b"#" in sent.partition(b"?")[0]):
        # Absolute or authority form, or a fragment httptools would silently drop
        # ("/a#/../admin" -> "/a"): hand the target as sent to the path rule to refuse.
        raw = sent.partition(b"?")[0]
    query = scope.get("query_string", b"")
    return _ascii_text(raw), _ascii_text(query)


def _restart_note(old: _State, new: _State) -> str:
    """``listen`` is read once, when the server binds: say so instead of ignoring it."""
    before, after = old.profile.proxy, new.profile.proxy
    if (before.listen_host, before.listen_port) == (after.listen_host, after.listen_port):
        return ""
    return (
        f" (listen changed to {after.listen_host}:{after.listen_port}: "
        "restart to listen there; still serving on the old address)"
    )


def _ascii_text(raw: bytes) -> str:
    if raw.isascii():
        return raw.decode("ascii")
    return "".join(chr(b) if b < 0x80 else f"%{b:02X}" for b in raw)


def _escaped(raw: bytes) -> str:
    """Bytes a parser refused, as printable text: anything but visible ASCII as %XX."""
    return "".join(chr(b) if 0x20 < b < 0x7F else f"%{b:02X}" for b in raw)


def _header_value(raw: bytes) -> str:
    # aiohttp writes header values as UTF-8: decoding them as UTF-8 keeps the bytes
    # the caller sent; anything else (obs-text) falls back to Latin-1.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _forward_problem(state: _State, expl: Explanation) -> Explanation | None:
    """An allowed request rrdev still cannot forward: a target credential it cannot
    produce (an unset ${VAR}, or a kind not supported yet)."""
    cred = state.credential
    if cred.error is not None:
        return replace(
            expl,
            status=502,
            reason="upstream_credential_unavailable",
            message=cred.error,
            hint=cred.hint,
        )
    return None


async def _backend_authorization(
    state: _State, expl: Explanation, progress: _Progress
) -> tuple[str | None, Explanation]:
    """The ``oauth2`` backend token as an Authorization value, or 502
    ``upstream_token_unavailable`` saying what the token endpoint answered."""
    source = state.credential.source
    assert source is not None
    fetches = source.fetches
    try:
        token = await source.token()
    except TokenFetchError as exc:
        failed = replace(
            expl,
            status=502,
            reason="upstream_token_unavailable",
            message=state.redactor.text(f"no backend token: {exc.message}"),
            hint=state.redactor.text(exc.hint),
        )
        return None, failed
    if source.fetches != fetches:
        progress.notes.append(f"fetched a backend token from {source.token_url}")
    return f"Bearer {token.access_token}", expl


def _upstream_query(state: _State, raw_query: str) -> str:
    """The caller's query bytes as received, plus the api-key parameter when the target
    credential uses one. Caller-sent parameters of that name are dropped first, so a
    caller can never shadow the backend credential: the name is compared decoded and
    case-insensitively (``KEY``, ``%4Bey``), and ``;`` counts as a separator too
    (some backends split on it, so ``a=1;key=x`` would carry a second ``key``)."""
    cred = state.credential
    if cred.query_piece is None or cred.query_name is None:
        return raw_query
    name = _param_key(cred.query_name)
    kept: list[str] = []
    separator = ""
    for piece in _QUERY_SPLIT.split(raw_query):
        if piece in ("&", ";"):
            separator = separator or piece
            continue
        if piece and _param_key(unquote_plus(piece.partition("=")[0])) != name:
            kept.append(separator + piece if kept else piece)
        separator = ""
    return "".join(kept) + ("&" if kept else "") + cred.query_piece


#: Splits a raw query into pieces, keeping the separators (``&`` and ``;``).
_QUERY_SPLIT = re.compile(r"([&;])")


def _param_key(name: str) -> str:
    """A parameter name as frameworks that fold case or trim spaces read it."""
    return name.strip().casefold()


def _upstream_headers(
    state: _State,
    scope: Scope,
    headers: list[tuple[str, str]],
    claims: Mapping[str, Any] | None,
    notes: list[str],
    authorization: str | None = None,
) -> list[tuple[str, str]]:
    """The headers sent to the backend (DESIGN.md §2.5)."""
    drop = state.drop
    named: set[str] = set()
    for name, value in headers:
        if name == "connection":
            named.update(t.strip().lower() for t in value.split(","))
    out: list[tuple[str, str]] = []
    caller_auth: str | None = None
    forwarded_for: list[str] = []
    forwarded_host: str | None = None
    for name, value in headers:
        if name == "host":
            forwarded_host = value
        if name in drop or name in named:
            continue
        if name == "authorization":
            caller_auth = value
        elif name == "x-forwarded-for":
            forwarded_for.append(value)
        else:
            out.append((name, value))
    _authorization(state, caller_auth, out, authorization)
    filters = state.filters
    for template in state.templates:
        value, note = template.render(claims)
        if value is None:
            notes.append(note or f"additional header {template.name} omitted")
        else:
            out.append((template.name, value))
    if "x-forwarded-for" not in filters:
        client = scope.get("client")
        forwarded_for.append(client[0] if client else "unknown")
        out.append(("X-Forwarded-For", ", ".join(forwarded_for)))
    if "x-forwarded-proto" not in filters:
        out.append(("X-Forwarded-Proto", scope.get("scheme", "http")))
    if forwarded_host is not None and "x-forwarded-host" not in filters:
        out.append(("X-Forwarded-Host", forwarded_host))
    return out


def _authorization(
    state: _State,
    caller_auth: str | None,
    out: list[tuple[str, str]],
    backend_auth: str | None = None,
) -> None:
    """Exactly one Authorization upstream (or none). ``caller_auth`` is None when the
    caller sent none or a header filter stripped it; ``backend_auth`` is the ``oauth2``
    credential's value for this request."""
    cred = state.credential
    proxy = state.profile.proxy
    if cred.source is not None:
        # oauth2 writes Authorization: the caller's header is never forwarded as itself.
        if backend_auth is not None:
            out.append(("Authorization", backend_auth))
    elif cred.authorization is not None:
        out.append(("Authorization", cred.authorization))
    elif caller_auth is not None and proxy.forward_authorization:
        out.append(("Authorization", caller_auth))
        caller_auth = None  # forwarded as itself: nothing to pass on under another name
    if caller_auth is not None and state.forward_as is not None:
        out.append((state.forward_as, caller_auth))
    if cred.header is not None:
        out.append(cred.header)


def _downstream_headers(raw: tuple[tuple[bytes, bytes], ...]) -> list[tuple[bytes, bytes]]:
    """The backend's response headers minus hop-by-hop ones (and any named in its
    Connection header) and minus ``requestrocket-proxy-code``/``-message``, which only
    rrdev sets. Names are lower-cased for ASGI; values are untouched."""
    named: set[bytes] = set()
    for name, value in raw:
        if name.lower() == b"connection":
            named.update(t.strip().lower() for t in value.split(b","))
    out = []
    for name, value in raw:
        lower = name.lower()
        if lower in _HOP_BY_HOP_BYTES or lower in named or lower in _GATEWAY_HEADERS:
            continue
        out.append((lower, value))
    return out


# ------------------------------------------------------------------ answers rrdev makes


def _framing_problem(raw: list[tuple[bytes, bytes]]) -> Explanation | None:
    """431 for too many or too large headers; 501 for a request transfer coding other
    than plain ``chunked`` (``gzip, chunked`` would reach the backend decoded by the
    server but still labelled, and a body rrdev cannot frame must not be forwarded)."""
    size = 0
    for name, value in raw:
        size += len(name) + len(value)
    if len(raw) > MAX_HEADER_LINES or size > MAX_HEADER_BYTES:
        return _headers_too_large(len(raw), size)
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
    400 ``ambiguous_path``), "transfer_coding" (501), "headers_too_large" (431), or
    anything else (400 ``bad_request``). ``detail`` is the parser's reason (fixed text).
    """
    detail = _clip_text(detail)
    if problem == "headers_too_large":
        return _headers_too_large()
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
_CLOSE_AFTER = frozenset({"headers_too_large", "transfer_coding_unsupported", "bad_request"})


async def _send_error(send: Send, expl: Explanation) -> int:
    body, headers = _error_payload(expl)
    await send({"type": "http.response.start", "status": expl.status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
    return len(body)


@lru_cache(maxsize=512)
def _header_text(text: str) -> bytes:
    """A message as a header value: printable ASCII only, at most 300 characters."""
    return "".join(c if " " <= c <= "~" else "?" for c in text[:300]).encode("ascii")


@lru_cache(maxsize=4)
def _http_date(second: int) -> bytes:
    return formatdate(second, usegmt=True).encode("ascii")


# ------------------------------------------------------------------ records


def _make_record(
    progress: _Progress,
    state: _State,
    raw_path: str,
    raw_query: str,
    expl: Explanation,
    bytes_out: int | None,
) -> RequestRecord:
    redactor = state.redactor
    query = _record_query(redactor, raw_query)
    if expl.request is not None and expl.reason != "ambiguous_path":
        expl = replace(expl, request=replace(expl.request, query=query))
    ver = expl.verification
    return RequestRecord(
        time=progress.started,
        method=progress.method,
        path=raw_path,
        query=query,
        status=expl.status if progress.upstream_status is None else progress.upstream_status,
        reason=expl.reason,
        deciding_rule=expl.deciding_rule,
        explanation=_redacted(expl, state),
        auth_ms=round(progress.auth_ms, 3),
        rules_ms=round(progress.rules_ms, 3),
        upstream_ms=None if progress.upstream_ms is None else round(progress.upstream_ms, 3),
        total_ms=round((time.perf_counter() - progress.t0) * 1000, 3),
        subject=ver.subject if ver is not None and ver.ok else None,
        expires_at=ver.expires_at if ver is not None and ver.ok else None,
        upstream_status=progress.upstream_status,
        bytes_in=progress.bytes_in,
        bytes_out=progress.bytes_out if bytes_out is None else bytes_out,
        preflight=bool(expl.extra.get("preflight")),
        notes=tuple(progress.notes),
        **(_exchange_fields(progress, state, expl, raw_query) if progress.exchange else {}),
    )


def _start_preview(progress: _Progress, headers: list[tuple[bytes, bytes]]) -> bytearray | None:
    """Keep the response headers for the record; a buffer for the start of the body
    when it is JSON (anything else is not previewed)."""
    progress.response_headers = headers
    content_type = next((v for k, v in headers if k == b"content-type"), b"")
    if b"json" not in content_type.lower():
        return None
    progress.preview = bytearray()
    return progress.preview


def _exchange_fields(
    progress: _Progress, state: _State, expl: Explanation, raw_query: str
) -> dict[str, Any]:
    """The record's request/response headers and JSON preview, redacted. An answer
    rrdev made itself is rebuilt from the explanation (the same bytes it sent)."""
    raw_headers, preview = progress.response_headers, progress.preview
    if raw_headers is None and not expl.allowed:
        body, raw_headers = _error_payload(expl)
        preview = bytearray(body[:PREVIEW_BYTES])
    redactor = state.redactor.with_values(_caller_secrets(state.redactor, progress, raw_query))
    response_headers = [(k.decode("latin-1"), _header_value(v)) for k, v in raw_headers or ()]
    truncated = preview is not None and progress.bytes_out > len(preview)
    return {
        "request_headers": redactor.headers_list(progress.request_headers),
        "response_headers": redactor.headers_list(response_headers),
        "response_preview": (
            _preview_text(bytes(preview), truncated, redactor) if preview is not None else None
        ),
        "response_truncated": truncated,
    }


def _caller_secrets(redactor: Redactor, progress: _Progress, raw_query: str) -> list[str]:
    """The caller's secret values (its token, secret-named headers and query
    parameters): a backend may echo them anywhere in a body, under any name."""
    found = []
    for name, value in progress.request_headers:
        if name in redactor.headers:
            found.append(value)
            if name == "authorization":
                found.append(value.partition(" ")[2].strip())
    for name, value in _query_pairs(raw_query):
        if _param_key(name) in redactor.fields:
            found += [value, quote(value, safe="")]
    return found


def _record_query(redactor: Redactor, raw_query: str) -> tuple[tuple[str, str], ...]:
    """The query pairs as the rules see them (split on ``&``), redacted; a value that
    hides a secret-named parameter behind ``;`` (``a=1;key=x``: a second parameter to
    backends that split on ``;``) is redacted whole."""
    fields = redactor.fields
    out = []
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        if _param_key(name) in fields or (
            ";" in value
            and any(
                _param_key(inner) in fields for inner, _ in _query_pairs(value.split(";", 1)[1])
            )
        ):
            value = REDACTED
        out.append((name, redactor.field(name, value)))
    return tuple(out)


def _query_pairs(raw_query: str) -> list[tuple[str, str]]:
    """Decoded pairs, splitting on ``&`` and ``;`` alike."""
    return parse_qsl(raw_query.replace(";", "&"), keep_blank_values=True)


def _preview_text(raw: bytes, truncated: bool, redactor: Redactor) -> str:
    """A JSON body for display: secret-named fields (and secret-named headers an echo
    server reflects) blanked at any depth, known secret values scrubbed. A cut-off
    body cannot be parsed: its secret-named string fields are blanked by pattern."""
    text = raw.decode("utf-8", "replace")
    names = redactor.fields | redactor.headers
    if not truncated:
        try:
            document = json.loads(text)
        except ValueError:
            pass
        else:
            return json.dumps(_scrub_json(document, names, redactor), ensure_ascii=False)
    return redactor.text(_secret_field_pattern(names).sub(r"\1" + f'"{REDACTED}"', text))


def _scrub_json(value: Any, names: frozenset[str], redactor: Redactor) -> Any:
    if isinstance(value, dict):
        return {
            k: REDACTED if str(k).lower() in names else _scrub_json(v, names, redactor)
            for k, v in value.items()
        }
    if isinstance(value, list):
        if len(value) == 2 and isinstance(value[0], str) and value[0].lower() in names:
            return [value[0], REDACTED]  # a [name, value] pair, as echo servers list headers
        return [_scrub_json(v, names, redactor) for v in value]
    if isinstance(value, str):
        return redactor.text(value)
    return value


@lru_cache(maxsize=8)
def _secret_field_pattern(names: frozenset[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(n) for n in sorted(names))
    # "name": "value" and ["name", "value"]
    return re.compile(rf'("(?i:{alternatives})"\s*[:,]\s*)"(?:[^"\\]|\\.)*"?')


def _redacted(expl: Explanation, state: _State) -> Explanation:
    """The explanation with secret-named token claims (and known secret values)
    blanked: records are written to logs and screens (DESIGN.md §2.7)."""
    ver = expl.verification
    if ver is None or not ver.claims:
        return expl
    # The token cache hands out the same Verification for a token's every request:
    # redact it once.
    seen = state.redacted.get(id(ver))
    if seen is not None and seen[0] is ver:
        return replace(expl, verification=seen[1])
    clean = replace(ver, claims=_redact_value(ver.claims, state.redactor))
    if ver.ok:  # failures are never reused
        if len(state.redacted) >= 1024:
            state.redacted.clear()
        state.redacted[id(ver)] = (ver, clean)
    return replace(expl, verification=clean)


def _redact_value(value: Any, redactor: Redactor, name: str = "") -> Any:
    if name and name.lower() in redactor.fields:
        return REDACTED
    if isinstance(value, Mapping):
        return {k: _redact_value(v, redactor, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_value(v, redactor) for v in value]
    if isinstance(value, str):
        return redactor.text(value)
    return value


# ------------------------------------------------------------------ building a state


def _build_state(
    profile: Profile,
    overrides: Overrides,
    previous: _State | None,
    clock: Callable[[], float] = time.time,
) -> _State:
    """Everything the hot path needs from ``profile``, computed once per load."""
    upstream, overridden = _upstream_of(profile, overrides)
    if overridden:
        profile = replace(profile, target=replace(profile.target, base_url=overrides.target))
    credential = _credential(profile.target_credential, clock)
    redactor = redactor_for(profile).with_values(credential.secrets)
    jwks, jwks_key, jwks_label = _jwks_for(profile, overrides, previous)
    verifier = None
    if jwks is not None:
        cred = profile.proxy_credential
        verifier = CachingVerifier(JwksVerifier(cred, jwks), max_age=cred.jwks_ttl_seconds)
    proxy = profile.proxy
    filters = frozenset(h.lower() for h in proxy.header_filters)
    templates = tuple(
        _template(name, value.template)
        for name, value in proxy.additional_headers
        if name.lower() not in filters
    )
    forward_as = proxy.forward_authorization_as
    if forward_as is not None and forward_as.lower() in filters:
        forward_as = None
    drop = HOP_BY_HOP | _REPLACED | filters | {t.name.lower() for t in templates}
    if forward_as:
        drop |= {forward_as.lower()}
    if credential.header:
        drop |= {credential.header[0].lower()}
    target = profile.target
    path = Path(profile.path)
    return _State(
        profile=profile,
        redactor=redactor,
        verifier=verifier,
        jwks=jwks,
        jwks_key=jwks_key,
        jwks_label=jwks_label,
        upstream=upstream,
        target_overridden=overridden,
        timeout=aiohttp.ClientTimeout(
            total=None,
            sock_connect=target.connect_timeout_seconds,
            sock_read=target.timeout_seconds,
        ),
        ssl=_ssl_option(profile),
        credential=credential,
        drop=frozenset(drop),
        filters=filters,
        templates=templates,
        forward_as=forward_as,
        warnings=_warnings(profile, credential),
        files=(str(path),) if path.is_file() else (),
    )


def _load_state(
    path: str, overrides: Overrides, previous: _State, clock: Callable[[], float]
) -> _State:
    """Load the profile at ``path`` and build its state (blocking file I/O: run it in a
    worker thread). Raises ``RrdevError`` for a broken profile."""
    from rrdev.core.profile import load_profile

    return _build_state(load_profile(path), overrides, previous, clock)


def _upstream_of(profile: Profile, overrides: Overrides) -> tuple[_Upstream, bool]:
    base = overrides.target or profile.target.base_url
    parts = urlsplit(base)
    where = "--target" if overrides.target else "target.base_url"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _config_error(profile, where, f"expected an http:// or https:// URL, got {base!r}")
    if parts.username is not None or parts.password is not None:
        raise _config_error(
            profile,
            where,
            "must not carry user:password@ (rrdev would send it as a second Authorization)",
            "use [target_credential] auth_type = 'basic' with ${VARS} instead",
        )
    if parts.query or parts.fragment:
        raise _config_error(profile, where, "must not have a query or fragment")
    label = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    upstream = _Upstream(parts.scheme, parts.netloc, parts.path.rstrip("/"), label)
    return upstream, overrides.target is not None


def _config_error(profile: Profile, key: str, message: str, hint: str = "") -> RrdevError:
    if key.startswith("--"):
        return RrdevError(f"{key}: {message}", hint)
    return ProfileError(message, file=profile.path, line=profile.lines.get(key), key=key, hint=hint)


def _ssl_option(profile: Profile) -> ssl.SSLContext | bool:
    target = profile.target
    if not target.verify:
        return False
    if target.ca_bundle:
        cafile = os.path.expanduser(target.ca_bundle)
        try:
            return ssl.create_default_context(cafile=cafile)
        except (OSError, ssl.SSLError) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
            raise _config_error(
                profile, "target.ca_bundle", f"cannot load CA bundle {cafile}: {why}"
            ) from None
    return True


def _resolve(secret: Secret | None, key: str) -> str:
    if secret is None:  # the loader requires these keys; keep the proxy total anyway
        raise EnvVarError(f"{key} is not set")
    return secret.resolve()


def _credential(cred: TargetCredential, clock: Callable[[], float] = time.time) -> _Credential:
    label = f"{cred.auth_type} ({cred.name})" if cred.auth_type != "none" else "none"
    try:
        return _resolved_credential(cred, label, clock)
    except EnvVarError as exc:
        return _Credential(label, error=str(exc), hint=exc.hint)


def _resolved_credential(
    cred: TargetCredential, label: str, clock: Callable[[], float] = time.time
) -> _Credential:
    kind = cred.auth_type
    if kind == "bearer":
        token = _resolve(cred.token, "target_credential.token")
        value = f"{cred.prefix} {token}" if cred.prefix else token
        return _checked(_Credential(label, authorization=value, secrets=(token,)))
    if kind == "basic":
        user = _resolve(cred.username, "target_credential.username")
        password = _resolve(cred.password, "target_credential.password")
        encoded = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        return _checked(
            _Credential(label, authorization=f"Basic {encoded}", secrets=(password, encoded))
        )
    if kind == "api_key":
        key = _resolve(cred.api_key, "target_credential.api_key")
        if cred.header:
            return _checked(_Credential(label, header=(cred.header, key), secrets=(key,)))
        name = cred.query_param or "api_key"
        piece = f"{quote(name, safe='')}={quote(key, safe='')}"
        return _Credential(label, query_name=name, query_piece=piece, secrets=(key,))
    if kind == "oauth2":
        if cred.oauth2 is None:  # the loader requires the settings; stay total anyway
            return _Credential(label, error="target_credential has no oauth2 settings")
        source = BackendTokenSource(cred.oauth2, clock=clock)
        label = f"{label}, token from {source.token_url}"
        return _Credential(label, source=source, secrets=source.secrets)
    return _Credential(label)


def _checked(cred: _Credential) -> _Credential:
    values = [cred.authorization or "", cred.header[1] if cred.header else ""]
    if any(_UNSAFE_HEADER_VALUE.search(v) for v in values):
        return _Credential(
            cred.label,
            error="the target credential's value contains a line break or control character",
            hint="check the environment variable the profile reads it from",
        )
    return cred


def _jwks_for(
    profile: Profile, overrides: Overrides, previous: _State | None
) -> tuple[JwksCache | None, tuple[Any, ...] | None, str | None]:
    """The JWKS cache for this profile, reusing the previous one when its source and
    settings are unchanged (a changed jwks_uri starts from an empty cache)."""
    cred = profile.proxy_credential
    if cred.auth_type != "jwtVerify":
        return None, None, None
    source: str | dict[str, Any]
    if overrides.jwks:
        source, label = overrides.jwks, f"{overrides.jwks} (--jwks)"
        identity: Any = overrides.jwks
    elif overrides.offline:
        from rrdev.core.keyset import Keyset

        keyset = Keyset.load_or_create()
        source = keyset.jwks()
        where = keyset.path.parent if keyset.path else "memory"
        label = f"local keyset in {where} (--offline)"
        identity = ("offline", tuple(k["kid"] for k in source["keys"]))
    elif cred.jwks_uri:
        source = label = identity = cred.jwks_uri
    else:
        raise _config_error(
            profile,
            "proxy_credential.jwks_uri",
            "auth_type = 'jwtVerify' needs jwks_uri",
            "set jwks_uri, or run with --jwks FILE|URL or --offline",
        )
    key = (identity, cred.jwks_ttl_seconds, cred.jwks_refetch_interval_seconds)
    if previous is not None and previous.jwks is not None and previous.jwks_key == key:
        return previous.jwks, key, label
    cache = JwksCache(
        source, ttl=cred.jwks_ttl_seconds, refetch_interval=cred.jwks_refetch_interval_seconds
    )
    return cache, key, label


def _template(name: str, template: str) -> _Template:
    if "{claims." not in template:
        return _Template(name, (template,), template)
    parts: list[str | tuple[str]] = []
    last = 0
    for match in _CLAIM_PLACEHOLDER.finditer(template):
        if match.start() > last:
            parts.append(template[last : match.start()])
        parts.append((match.group(1),))
        last = match.end()
    if last < len(template):
        parts.append(template[last:])
    return _Template(name, tuple(parts), None)


def _claim_at(claims: Any, path: str) -> Any:
    """A claim by name, else by dotted path into nested objects. A top-level name is
    tried whole first, so ``https://example.com/roles`` is one claim."""
    if not isinstance(claims, Mapping):
        return _MISSING
    if path in claims:
        return claims[path]
    head, dot, rest = path.partition(".")
    while dot:
        if head in claims:
            found = _claim_at(claims[head], rest)
            if found is not _MISSING:
                return found
        step, dot, rest = rest.partition(".")
        head = f"{head}.{step}"
    return _MISSING


def _claim_text(value: Any) -> str:
    """Strings as they are; numbers and booleans as JSON; arrays comma-joined; objects
    as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join(_claim_text(v) for v in value)
    return json.dumps(value, separators=(",", ":"))


def _warnings(profile: Profile, credential: _Credential) -> tuple[str, ...]:
    found = []
    if profile.proxy_credential.auth_type == "none":
        found.append("proxy_credential auth_type = 'none': callers are not authenticated")
    if credential.error:
        found.append(f"{credential.error}: allowed requests will get 502")
    if not profile.target.verify:
        found.append(
            "TLS verification of the backend is off (target.verify = false); development only"
        )
    return tuple(found)


def _signature(files: tuple[str, ...]) -> tuple[tuple[int, int, int], ...] | None:
    try:
        return tuple((st.st_mtime_ns, st.st_size, st.st_ino) for st in (os.stat(f) for f in files))
    except OSError:
        return None


def _new_session() -> aiohttp.ClientSession:
    """The one pooled client: no cookie jar (callers must not share cookies), no
    decompression (bytes pass as sent), no headers of aiohttp's own."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=256, ttl_dns_cache=10),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
        timeout=aiohttp.ClientTimeout(total=None),
        max_line_size=65536,
        max_field_size=65536,
        requote_redirect_url=False,
        trust_env=False,
    )
