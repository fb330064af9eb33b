"""Forwarding an allowed request: the one pooled aiohttp session, the body streamed up,
the backend's answer streamed back (with back-pressure both ways; nothing is buffered
whole).

Before the request leaves: a target credential rrdev cannot produce is 502
``upstream_credential_unavailable``, and an ``oauth2`` target credential's backend token
is fetched (502 ``upstream_token_unavailable`` when the token endpoint fails).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterable
from contextvars import ContextVar
from dataclasses import replace
from typing import Any

import aiohttp
from aiohttp import hdrs
from multidict import CIMultiDict, CIMultiDictProxy

from rrdev.clients.oauth2 import TokenFetchError
from rrdev.core.records import PREVIEW_BYTES, REQUEST_BODY_BYTES, Explanation
from rrdev.servers.asgi import Receive, Scope, Send
from rrdev.servers.proxy.answers import (
    CODE_GRANTED,
    _body_timeout,
    _caller_gone,
    _header_text,
    _send_error,
    _upstream_failure,
)
from rrdev.servers.proxy.deadlines import Deadlines, resume_read_timeout
from rrdev.servers.proxy.fastlane import FastPlan
from rrdev.servers.proxy.filtered import filters_apply, relay_filtered
from rrdev.servers.proxy.headers import _downstream_headers, _upstream_headers, _upstream_query
from rrdev.servers.proxy.records import _Progress, _start_preview
from rrdev.servers.proxy.state import _State

#: Start watching for a vanished caller once a download passes this many bytes.
_WATCH_AFTER_BYTES = 256 * 1024


class Forwarder:
    """The pooled client session and the requests that go through it.

    ``open`` creates the session (``ProxyApp.startup``); ``forward`` sends one allowed
    request and relays the answer; ``aclose`` closes the session (safe to call twice).
    """

    def __init__(self) -> None:
        self.session: aiohttp.ClientSession | None = None
        #: the fast lane's waits for a backend's answer, under one timer
        self.deadlines = Deadlines()

    def open(self) -> None:
        if self.session is None:
            self.session = _new_session()

    async def aclose(self) -> None:
        if self.session is not None:
            session, self.session = self.session, None
            await session.close()

    async def forward(
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
        assert self.session is not None
        raw_path, raw_query = target
        query = _upstream_query(state, raw_query)
        claims = expl.verification.claims if expl.verification else None
        out_headers = _upstream_headers(
            state, scope, headers, claims, progress.notes, authorization
        )
        body = _RequestBody(receive, headers)
        if progress.exchange and body.expected:
            body.kept = progress.request_body = bytearray()
        t_up = time.perf_counter()
        try:
            response = await self.session.request(
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
            # The caller's side first: a failed upload is not the backend's fault.
            if body.client_gone:
                progress.notes.append("the caller went away during the upload")
                failed = _caller_gone(expl, body.received)
            elif body.stalled:
                failed = _body_timeout(expl, BODY_SECONDS)
            else:
                failed = _upstream_failure(exc, state, expl)
            progress.bytes_out = await _send_error(send, failed)
            return failed
        progress.upstream_ms = (time.perf_counter() - t_up) * 1000
        progress.upstream_status = response.status
        try:
            if state.response_filters is not None and filters_apply(
                state, response.status, progress.method
            ):
                return await relay_filtered(state, response, send, expl, progress)
            message = _header_text(expl.message)
            await self._relay(response, send, receive, body, message, progress)
        finally:
            progress.bytes_in = body.received
        return expl

    async def fast(
        self,
        state: _State,
        planned: FastPlan,
        receive: Receive,
        send: Send,
        progress: _Progress | None = None,
    ) -> BaseException | None:
        """Forward a request the fast lane planned (no body) and relay the answer;
        returns the exception when the backend could not be asked (the caller answers
        it as the full path would: 502/504). ``progress``, when its record is wanted,
        gets the exchange's timing, status, size (and with ``exchange`` its response
        headers and preview)."""
        assert self.session is not None
        t_up = time.perf_counter() if progress is not None else 0.0
        method, url, headers, message = planned
        lane = state.fast
        assert lane is not None
        task = asyncio.current_task() if lane.read_seconds else None
        if task is not None:
            self.deadlines.enter(task, lane.read_seconds)
        handed = _LANE_HEADERS.set(headers) if _DIRECT else None
        try:
            response = await self.session.request(
                method, url, headers=None if _DIRECT else headers, allow_redirects=False,
                timeout=lane.timeout, ssl=state.ssl,
            )  # fmt: skip
        except asyncio.CancelledError:
            if task is None or not self.deadlines.leave(task):
                raise
            task.uncancel()  # cancelled for its deadline: the backend did not answer
            return TimeoutError()
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            if task is not None:
                self.deadlines.leave(task)
            return exc
        finally:
            if handed is not None:
                _LANE_HEADERS.reset(handed)
        if task is not None:
            self.deadlines.leave(task)
        if progress is not None:
            progress.upstream_ms = (time.perf_counter() - t_up) * 1000
            progress.upstream_status = response.status
        content = response.content
        if not content.is_eof():  # a body still arriving: the full path's streaming relay
            resume_read_timeout(response, lane.read_seconds)
            relayed = progress if progress is not None else _Progress(0.0, 0.0, method)
            await self._relay(response, send, receive, _RequestBody(receive, ()), message, relayed)
            return None
        # The whole (small) body came with the head: head and body in one write.
        out = _downstream_headers(response.raw_headers)
        out.append((b"requestrocket-proxy-code", CODE_GRANTED))
        out.append((b"requestrocket-proxy-message", message))
        try:
            await send({"type": "http.response.start", "status": response.status, "headers": out})
            body = content.read_nowait()
            await send({"type": "http.response.body", "body": body, "more_body": False})
        finally:
            response.release()
        if progress is not None:
            progress.bytes_out = len(body)
            preview = _start_preview(progress, out) if progress.exchange else None
            if preview is not None:
                preview += body[:PREVIEW_BYTES]
        return None

    async def _relay(
        self,
        response: aiohttp.ClientResponse,
        send: Send,
        receive: Receive,
        body: _RequestBody,
        message: bytes,
        progress: _Progress,
    ) -> None:
        """Stream the backend's response to the caller, with back-pressure both ways.
        ``message`` is the ``requestrocket-proxy-message`` value."""
        headers = _downstream_headers(response.raw_headers)
        headers.append((b"requestrocket-proxy-code", CODE_GRANTED))
        headers.append((b"requestrocket-proxy-message", message))
        preview = _start_preview(progress, headers) if progress.exchange else None
        watcher: asyncio.Task[None] | None = None
        complete = ended = False
        content = response.content
        try:
            await send(
                {"type": "http.response.start", "status": response.status, "headers": headers}
            )
            if content.is_eof():
                # The whole body came with the head (most small answers): one message,
                # taken without an iterator or a wait.
                await _pass_on(send, content.read_nowait(), False, progress, preview)
                complete = ended = True
            else:
                async for chunk in content.iter_any():
                    if progress.client_gone:
                        progress.notes.append("the caller went away; the response was not finished")
                        break
                    # A body already read to its end goes out in one message: one write
                    # and one await less than a separate empty last one.
                    ended = content.at_eof()
                    await _pass_on(send, chunk, not ended, progress, preview)
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
        if complete and not ended:
            await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _pass_on(
    send: Send, chunk: bytes, more: bool, progress: _Progress, preview: bytearray | None
) -> None:
    """One piece of the backend's body to the caller, counted (and previewed)."""
    await send({"type": "http.response.body", "body": chunk, "more_body": more})
    progress.bytes_out += len(chunk)
    if preview is not None and len(preview) < PREVIEW_BYTES:
        preview += chunk[: PREVIEW_BYTES - len(preview)]


# ------------------------------------------------------------------ before forwarding


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


# ------------------------------------------------------------------ streaming


#: How long the caller may pause mid-body, between two chunks, before its request is
#: answered 408 ``request_timeout`` and the backend's abandoned (nginx's
#: ``client_body_timeout``): a stalled upload would hold both connections forever.
BODY_SECONDS = 60.0


class _BodyStalled(ConnectionResetError):
    """No body bytes from the caller for ``BODY_SECONDS``."""


class _RequestBody:
    """The caller's body as an async iterator for aiohttp, counting bytes as they pass."""

    __slots__ = ("client_gone", "done", "expected", "kept", "receive", "received", "stalled")

    def __init__(self, receive: Receive, headers: Iterable[tuple[str, str]]) -> None:
        self.receive = receive
        self.received = 0
        self.client_gone = False
        self.stalled = False
        self.expected = any(
            (k == "content-length" and v.strip() not in ("", "0")) or k == "transfer-encoding"
            for k, v in headers
        )
        self.done = not self.expected
        #: The start of the body, for the record (only when it records exchanges).
        self.kept: bytearray | None = None

    async def chunks(self) -> AsyncIterator[bytes]:
        while not self.done:
            try:
                async with asyncio.timeout(BODY_SECONDS):
                    message = await self.receive()
            except TimeoutError:
                self.stalled = True
                raise _BodyStalled(f"no body bytes for {BODY_SECONDS:g} s") from None
            if message["type"] == "http.disconnect":
                self.client_gone = True
                raise ConnectionResetError("the caller disconnected during the upload")
            chunk = message.get("body", b"")
            self.done = not message.get("more_body", False)
            if chunk:
                self.received += len(chunk)
                kept = self.kept
                if kept is not None and len(kept) < REQUEST_BODY_BYTES:
                    kept += chunk[: REQUEST_BODY_BYTES - len(kept)]
                yield chunk


async def _watch_disconnect(receive: Receive, progress: _Progress) -> None:
    """After the request body is in, the server's next message is the disconnect."""
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            progress.client_gone = True
            return


#: The fast lane's upstream headers for the request it is making (``Forwarder.fast``):
#: handed to ``_ForwardRequest`` directly rather than through the session's header
#: merge, a Python loop per header. Set only around that one call, in its own task.
_LANE_HEADERS: ContextVar[list[tuple[str, str]] | None] = ContextVar("lane_headers", default=None)

#: aiohttp's own request headers: the backend gets none of them, only the caller's.
_AUTO_HEADERS = ("User-Agent", "Accept", "Accept-Encoding", "Content-Type")
_SKIPPED = CIMultiDictProxy(CIMultiDict((name, None) for name in _AUTO_HEADERS))


class _ForwardRequest(aiohttp.ClientRequest):
    """aiohttp's request, skipping all of its automatic headers with a set made once.

    What ``skip_auto_headers`` does, without aiohttp building (sorting, copying) the
    skip set and a merged copy of the headers again for every request. The set is
    also what aiohttp consults before adding a body's Content-Type; it only reads it.
    """

    def update_auto_headers(self, skip_auto_headers: Iterable[str] | None) -> None:
        self._skip_auto_headers = _SKIPPED  # type: ignore[assignment]

    def update_headers(self, headers: Any) -> None:
        # The session hands over a fresh CIMultiDict without Host (rrdev drops the
        # caller's): Host first, then the rest in one C-level extend, instead of
        # aiohttp's Python loop adding them one by one. Anything else: aiohttp's way.
        host = getattr(self.url, "host_port_subcomponent", None)
        if type(headers) is not CIMultiDict or host is None or hdrs.HOST in headers:
            super().update_headers(headers)
            return
        self.headers = CIMultiDict(((hdrs.HOST, host),))
        if headers:
            self.headers.extend(headers)
        # The fast lane's list comes this way, past the session's merge loop (the
        # session got no headers); the list never holds Host (rrdev drops it).
        lane = _LANE_HEADERS.get()
        if lane is not None:
            self.headers.extend(lane)


def _request_class() -> type[aiohttp.ClientRequest]:
    # aiohttp before 3.10 keeps the skip set under another name: its own path there.
    if hasattr(aiohttp.ClientRequest, "_skip_auto_headers"):
        return _ForwardRequest
    return aiohttp.ClientRequest


#: Whether ``_ForwardRequest`` is in use (it takes the fast lane's headers directly).
_DIRECT = _request_class() is _ForwardRequest


def _new_session() -> aiohttp.ClientSession:
    """The one pooled client: no cookie jar (callers must not share cookies), no
    decompression (bytes pass as sent), no headers of aiohttp's own."""
    return aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=256, ttl_dns_cache=10),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        skip_auto_headers=_AUTO_HEADERS,
        request_class=_request_class(),
        timeout=aiohttp.ClientTimeout(total=None),
        max_line_size=65536,
        max_field_size=65536,
        requote_redirect_url=False,
        trust_env=False,
    )
