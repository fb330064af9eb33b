"""One timer for every fast-lane request waiting on its backend: ``Deadlines``.

aiohttp's ``sock_read`` timeout arms a loop timer when a request is written, re-arms it
on every read and cancels it at the end: several timers made and cancelled per request.
The fast lane asks aiohttp for no read timeout while it waits for the backend's answer
and registers the request's deadline here instead (a dict entry); one sweep every
``TICK`` seconds, scheduled only while some request waits, cancels each task past its
deadline, and the lane turns that into the full path's 504 ``upstream_timeout``. So a
backend that sends no answer within ``target.timeout_seconds`` still gets 504 (at most
``TICK`` later), and a body still streaming after the head gets aiohttp's per-read
timeout back (``resume_read_timeout``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp.client_proto import ResponseHandler

#: How often waiting requests are checked; the 504 comes at most this much late.
TICK = 0.05

#: aiohttp's protocol lets a read timeout be set and started from outside (3.9+).
SUPPORTED = hasattr(ResponseHandler, "start_timeout") and isinstance(
    getattr(ResponseHandler, "read_timeout", None), property
)


class Deadlines:
    """Tasks waiting on a backend, each with its deadline (``loop.time()``)."""

    __slots__ = ("_expired", "_handle", "_loop", "_waiting")

    def __init__(self) -> None:
        self._waiting: dict[asyncio.Task[Any], float] = {}
        self._expired: set[asyncio.Task[Any]] = set()
        self._handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def enter(self, task: asyncio.Task[Any], seconds: float) -> None:
        loop = asyncio.get_running_loop()
        self._waiting[task] = loop.time() + seconds
        if self._handle is None or self._loop is not loop:
            self._loop = loop
            self._handle = loop.call_later(TICK, self._sweep)

    def leave(self, task: asyncio.Task[Any]) -> bool:
        """Forget ``task``; True when it was cancelled because its deadline passed."""
        self._waiting.pop(task, None)
        if task in self._expired:
            self._expired.discard(task)
            return True
        return False

    def _sweep(self) -> None:
        loop = self._loop
        self._handle = None
        if loop is None:
            return
        now = loop.time()
        for task, deadline in list(self._waiting.items()):
            if now >= deadline:
                del self._waiting[task]
                self._expired.add(task)
                task.cancel()
        if self._waiting:
            self._handle = loop.call_later(TICK, self._sweep)


def resume_read_timeout(response: Any, seconds: float | None) -> None:
    """Give a response whose body is still arriving aiohttp's per-read timeout."""
    connection = response.connection
    if connection is None or connection.protocol is None or not seconds:
        return
    connection.protocol.read_timeout = seconds
    connection.protocol.start_timeout()
