"""The forwarding ASGI app behind ``rrdev up``: authenticate -> rules -> forward -> record.

One request, DESIGN.md §2 end to end:

1. ``explain.decide`` answers it (400 ``ambiguous_path`` / ``duplicate_authorization`` /
   ``method_override_refused``, 421 ``host_not_allowed``, 401 ``token_*``, 503
   ``jwks_unavailable``, 403 from the rules, or "allowed"; CORS preflights pass without
   authentication). This module never decides access itself;
   rules whose regex work is heavy run on the ``RulesWorker`` thread, off the loop.
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

import contextlib
import time
from collections.abc import Callable
from typing import Any

from rrdev.core.explain import IncomingRequest, decide
from rrdev.core.jwk import JwksStatus
from rrdev.core.model import Profile
from rrdev.core.records import Explanation, RequestRecord
from rrdev.servers.asgi import Receive, Scope, Send
from rrdev.servers.proxy.answers import (
    _clip_text,
    _error_payload,
    _framing_problem,
    _send_error,
    _send_websocket_refusal,
    _unparsed_request,
    _upstream_failure,
    _websocket_refusal,
)
from rrdev.servers.proxy.fastlane import FastPlan
from rrdev.servers.proxy.fastrecords import Template, template_key
from rrdev.servers.proxy.forward import Forwarder, _backend_authorization, _forward_problem
from rrdev.servers.proxy.records import _make_record, _Progress
from rrdev.servers.proxy.reload import ProfileReloader
from rrdev.servers.proxy.request import _escaped, _header_value, _target_text
from rrdev.servers.proxy.rules_worker import RulesWorker
from rrdev.servers.proxy.state import Overrides, ProxyInfo, _State
from rrdev.servers.proxy.verifiers import _TimedVerifier

#: Receives one record per request, after the response has completed.
RecordSink = Callable[[RequestRecord], None]
#: ``on_event(kind, message)``: "reloaded", "reload_failed", "record_failed",
#: "jwks_key_ignored" (the JWKS has a key rrdev will not use; once per key and cache).
EventCallback = Callable[[str, str], None]


class ProxyApp:
    """The ASGI application of ``rrdev up`` (HTTP, WebSocket refusal, lifespan).

    Construct it with a loaded ``Profile``; errors in the profile or the overrides
    (an unreadable ``ca_bundle``, a bad ``--target``) raise ``RrdevError`` here, before
    anything listens. Run it under ``rrdev.servers.runner.ProxyServer`` (lifespan creates and
    closes the client session) or drive it in-process with ``httpx.ASGITransport``
    (then use ``async with app:`` or let the first request create the session).

    ``sink`` receives each ``RequestRecord``; a sink with a ``template_copy(template,
    fields)`` method gets a fast-lane record copy as its template and
    ``Template.copy_fields`` instead, and builds the record itself (the TUI's proxy
    process sends the template once). ``on_event`` receives reload notices; ``clock``
    is the epoch time used for token checks and records. ``reload_interval`` (seconds,
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
        self.sink = sink  # also sets _copy_sink
        self.on_event = on_event
        self.clock = clock
        self.reload_interval = reload_interval
        self.record_exchange = record_exchange
        self._forwarder = Forwarder()
        self._rules_worker = RulesWorker()
        # Reads overrides, clock and reload_interval from here at each use.
        self._reloader = ProfileReloader(profile, self, self._emit)

    @property
    def sink(self) -> RecordSink | None:
        return self._sink

    @sink.setter
    def sink(self, sink: RecordSink | None) -> None:
        self._sink = sink
        self._copy_sink: Callable[[Template, tuple[Any, ...]], None] | None = getattr(
            sink, "template_copy", None
        )

    @property
    def _state(self) -> _State:
        """The state in force; a request keeps the one it started with."""
        return self._reloader.state

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

    async def dry_run(self, request: IncomingRequest, *, now: float) -> Explanation:
        """What ``request`` would get, decided as a live one is (the profile in force, its
        key cache) but never forwarded nor recorded: the TUI's dry-run. Call it on the
        loop the proxy serves on (the key cache belongs to it)."""
        state = self._state
        return await decide(
            state.profile, request, state.verifier, now=now, redactor=state.redactor
        )

    async def explain(
        self, method: str, raw_path: str, raw_query: str, headers: tuple[tuple[str, str], ...]
    ) -> Explanation:
        """What this proxy would answer (its profile, keys and rules in force), without
        forwarding or recording anything: a dry run against the live state."""
        state = self._state
        return await decide(
            state.profile,
            IncomingRequest(method, raw_path, raw_query, headers),
            state.verifier,
            now=self.clock(),
            redactor=state.redactor,
        )

    async def startup(self) -> None:
        """Create the pooled client session and start watching the profile file."""
        self._forwarder.open()
        self._reloader.watch()

    async def aclose(self) -> None:
        """Close the client session, the JWKS caches and backend token sources. Safe to
        call twice."""
        await self._reloader.stop()
        await self._forwarder.aclose()
        await self._reloader.aclose()
        self._rules_worker.close()

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
        return await self._reloader.check(force=force)

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
        sent = await _send_websocket_refusal(scope, send, expl)
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
        started, t0 = self.clock(), time.perf_counter()
        if self.reload_interval > 0 and self._reloader.due():
            await self.check_reload()
        # Held until the request ends: a reload meanwhile closes what this state uses
        # (its JWKS cache, its backend token source) only after that.
        state = self._reloader.hold()
        try:
            lane = state.fast
            planned = lane.plan(scope, started) if lane is not None else None
            if planned is None:
                progress = _Progress(started, t0, scope["method"])
                await self._answer(scope, receive, send, state, progress)
            elif self._sink is None and not self.record_exchange:
                await self._fast(state, planned, scope, receive, send, started)
            else:
                progress = _Progress(started, t0, scope["method"])
                await self._fast_recorded(state, planned, scope, receive, send, progress)
        finally:
            self._reloader.release(state)

    async def _fast(
        self,
        state: _State,
        planned: FastPlan,
        scope: Scope,
        receive: Receive,
        send: Send,
        started: float,
        progress: _Progress | None = None,
    ) -> Explanation | None:
        """Forward a planned request (``fastlane.py``); the 502/504 explanation when
        its backend could not be asked, None when it was. ``progress``: its record's."""
        if self._forwarder.session is None:
            await self.startup()
        failed = await self._forwarder.fast(state, planned, receive, send, progress)
        if failed is None:
            return None
        return await self._fast_failed(state, planned, scope, send, failed, started, progress)

    async def _fast_recorded(
        self,
        state: _State,
        planned: FastPlan,
        scope: Scope,
        receive: Receive,
        send: Send,
        progress: _Progress,
    ) -> None:
        """A planned request whose record someone reads: the fast lane with a copy of
        the template's record, or the full path, which learns the template
        (``fastrecords.py``)."""
        lane = state.fast
        assert lane is not None
        key = template_key(scope)
        verification = lane.verification
        template = lane.records.find(key, verification, self.record_exchange)
        if template is None:
            progress.template = (key, verification)
            await self._answer(scope, receive, send, state, progress)
            return
        progress.exchange = template.exchange
        progress.rules_ms = (time.perf_counter() - progress.t0) * 1000
        failed = await self._fast(state, planned, scope, receive, send, progress.started, progress)
        if failed is not None:
            raw_path, raw_query = _target_text(scope)
            self._record(progress, state, raw_path, raw_query, failed)
            return
        if self._copy_sink is not None:
            self._hand_on_copy(self._copy_sink, template, progress)
        else:
            self._hand_on(template.record, progress)

    async def _fast_failed(
        self,
        state: _State,
        planned: FastPlan,
        scope: Scope,
        send: Send,
        failed: BaseException,
        started: float,
        progress: _Progress | None,
    ) -> Explanation:
        """A fast-lane request whose backend could not be asked: the full path's
        502/504, explained as the full path explains it."""
        raw_path, raw_query = _target_text(scope)
        expl = await decide(
            state.profile,
            IncomingRequest(
                planned[0], raw_path, raw_query, tuple(_header_texts(scope["headers"]))
            ),
            state.verifier,
            now=started,
            redactor=state.redactor,
            static=state.static,
        )
        answer = _upstream_failure(failed, state, expl)
        sent = await _send_error(send, answer)
        if progress is not None:  # the backend never answered: no upstream status
            progress.bytes_out = sent
            if progress.exchange:
                progress.request_headers = _header_texts(scope["headers"])
        return answer

    async def _answer(
        self, scope: Scope, receive: Receive, send: Send, state: _State, progress: _Progress
    ) -> None:
        raw_path, raw_query = _target_text(scope)
        refused = _framing_problem(scope["headers"])
        if refused is not None:
            progress.bytes_out = await _send_error(send, refused)
            self._record(progress, state, raw_path, raw_query, refused)
            return
        headers = _header_texts(scope["headers"])
        if self.record_exchange:
            progress.exchange = True
            progress.request_headers = headers
        if _asks_websocket(headers):
            expl = _websocket_refusal()
            progress.bytes_out = await _send_error(send, expl)
            self._record(progress, state, raw_path, raw_query, expl)
            return
        verifier = state.verifier
        # auth_ms is read only from a record: without a sink nothing times verification.
        timed = _TimedVerifier(verifier) if verifier is not None and self.sink is not None else None
        expl = await decide(
            state.profile,
            IncomingRequest(progress.method, raw_path, raw_query, tuple(headers)),
            timed if timed is not None else verifier,
            now=progress.started,
            redactor=state.redactor,
            offload=self._rules_worker,
            static=state.static,
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
            if self._forwarder.session is None:
                await self.startup()
            target = (raw_path, raw_query)
            expl = await self._forwarder.forward(
                state, scope, receive, send, target, headers, expl, progress, authorization
            )
        self._record(progress, state, raw_path, raw_query, expl)

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
        self._hand_on(_make_record, progress, state, raw_path, raw_query, expl, bytes_out)

    def _hand_on(self, make: Callable[..., RequestRecord], *args: Any) -> None:
        """The record ``make(*args)`` builds, to the sink."""
        sink = self.sink
        if sink is None:
            return
        try:
            sink(make(*args))
        except Exception as exc:  # a broken sink must not break the proxy
            self._emit("record_failed", f"{type(exc).__name__}: {exc}")

    def _hand_on_copy(
        self,
        copy_sink: Callable[[Template, tuple[Any, ...]], None],
        template: Template,
        progress: _Progress,
    ) -> None:
        """A template copy's own fields to a sink that builds the record itself."""
        try:
            copy_sink(template, template.copy_fields(progress))
        except Exception as exc:  # a broken sink must not break the proxy
            self._emit("record_failed", f"{type(exc).__name__}: {exc}")


def _header_texts(raw: list[tuple[bytes, bytes]]) -> list[tuple[str, str]]:
    """The caller's headers as text (``_header_value``); names are lower-case ASCII
    already (the server's parser)."""
    try:
        return [(k.decode("latin-1"), v.decode("utf-8")) for k, v in raw]
    except UnicodeDecodeError:  # rare: obs-text in some value
        return [(k.decode("latin-1"), _header_value(v)) for k, v in raw]


def _asks_websocket(headers: list[tuple[str, str]]) -> bool:
    return any(k == "upgrade" and "websocket" in v.lower() for k, v in headers)
