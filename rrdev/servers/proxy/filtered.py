"""Relaying a 2xx answer through the profile's response filters (``rrdev.core.filters``).

Only used when a filter is configured: the body is then buffered (at most
``MAX_FILTERED_BYTES``, before and after gzip/deflate decoding), filtered, and sent
with its own Content-Length and no Content-Encoding. A body that is not JSON is 422
``response_not_json``; one too large 502 ``response_too_large``; another content coding
502 ``response_encoding_unsupported``. What each filter removed (paths only) goes to the
record's notes and its explanation.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace

import aiohttp

from rrdev.core.filters import (
    MAX_FILTERED_BYTES,
    FilteredBody,
    FilterRefusal,
    ResponseFilters,
    decode_body,
    filter_body,
    too_large,
)
from rrdev.core.records import PREVIEW_BYTES, Explanation
from rrdev.servers.asgi import Send
from rrdev.servers.proxy.answers import CODE_GRANTED, _header_text, _send_error, _upstream_failure
from rrdev.servers.proxy.headers import _downstream_headers
from rrdev.servers.proxy.records import _Progress, _start_preview
from rrdev.servers.proxy.state import _State

#: Headers of the backend's that describe the body before filtering.
_BODY_HEADERS = frozenset({b"content-length", b"content-encoding", b"etag", b"content-md5"})
_BODY_HEADERS |= {b"digest", b"content-digest", b"repr-digest"}
#: Bodies larger than this are filtered on a worker thread, off the event loop.
_INLINE_BYTES = 256 * 1024


def filters_apply(state: _State, status: int, method: str) -> bool:
    """A 2xx answer with a body, and filters configured."""
    return (
        state.response_filters is not None
        and 200 <= status < 300
        and status not in (204, 205)
        and method != "HEAD"
    )


async def relay_filtered(
    state: _State,
    response: aiohttp.ClientResponse,
    send: Send,
    expl: Explanation,
    progress: _Progress,
) -> Explanation:
    """Read, filter and send the backend's answer; the explanation to record."""
    filters = state.response_filters
    assert filters is not None
    try:
        raw = await _read_bounded(response)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        response.close()
        progress.upstream_status = None
        failed = _upstream_failure(exc, state, expl)
        progress.bytes_out = await _send_error(send, failed)
        return failed
    if isinstance(raw, FilterRefusal):
        response.close()  # the rest of an oversized body is not worth reading
    else:
        response.release()
    result = raw if isinstance(raw, FilterRefusal) else await _filtered(filters, raw, response)
    if isinstance(result, FilterRefusal):
        return await _refuse(send, expl, progress, result)
    return await _send_filtered(send, response, expl, progress, result)


async def _read_bounded(response: aiohttp.ClientResponse) -> bytes | FilterRefusal:
    if (response.content_length or 0) > MAX_FILTERED_BYTES:
        return too_large()
    body = bytearray()
    async for chunk in response.content.iter_any():
        body += chunk
        if len(body) > MAX_FILTERED_BYTES:
            return too_large()
    return bytes(body)


async def _filtered(
    filters: ResponseFilters, raw: bytes, response: aiohttp.ClientResponse
) -> FilteredBody | FilterRefusal:
    decoded = decode_body(raw, response.headers.get("Content-Encoding"))
    if isinstance(decoded, FilterRefusal):
        return decoded
    content_type = response.headers.get("Content-Type")
    if len(decoded) > _INLINE_BYTES:
        return await asyncio.to_thread(filter_body, filters, decoded, content_type)
    return filter_body(filters, decoded, content_type)


async def _refuse(
    send: Send, expl: Explanation, progress: _Progress, refusal: FilterRefusal
) -> Explanation:
    progress.notes.append(
        f"the backend answered {progress.upstream_status}; not sent to the caller"
    )
    progress.upstream_status = None  # the caller got rrdev's answer, not the backend's
    failed = replace(
        expl,
        status=refusal.status,
        reason=refusal.reason,
        message=refusal.message,
        hint=refusal.hint,
    )
    progress.bytes_out = await _send_error(send, failed)
    return failed


async def _send_filtered(
    send: Send,
    response: aiohttp.ClientResponse,
    expl: Explanation,
    progress: _Progress,
    result: FilteredBody,
) -> Explanation:
    headers = [
        (k, v) for k, v in _downstream_headers(response.raw_headers) if k not in _BODY_HEADERS
    ]
    headers.append((b"content-length", str(len(result.body)).encode()))
    headers.append((b"requestrocket-proxy-code", CODE_GRANTED))
    headers.append((b"requestrocket-proxy-message", _header_text(expl.message)))
    if progress.exchange:
        preview = _start_preview(progress, headers)
        if preview is not None:
            preview += result.body[:PREVIEW_BYTES]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": result.body, "more_body": False})
    progress.bytes_out = len(result.body)
    progress.notes.extend(o.describe() for o in result.outcomes if o.removed or o.more)
    removed = [o.to_dict() for o in result.outcomes]
    return replace(expl, extra={**expl.extra, "response_filters": removed})
