"""An event loop of its own, on its own thread, for the proxy the TUI shows.

No Textual here. The UI's loop must never serve requests: a burst of traffic would
then delay every key press, and a slow screen would delay every answer. So the
runtimes in ``rrdev.tui.runtime`` start the proxy (uvicorn and ``ProxyApp``) here, and
the UI only awaits what it asks for (``run``) without ever blocking its own loop.

The loop is uvloop's when uvloop is installed (as ``rrdev up`` does). ``stop()`` lets
``asyncio.Runner`` cancel and await whatever is left and shut down async generators
and the default executor, so quitting leaves no "Task was destroyed" behind.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["InlineLoop", "ProxyThread"]

T = TypeVar("T")


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    with contextlib.suppress(ImportError):
        import uvloop

        return uvloop.new_event_loop
    return None


class ProxyThread:
    """One daemon thread running one event loop until ``stop()``.

    ``start()`` and ``stop()`` are awaited from another loop (the UI's); ``run(coro)``
    runs a coroutine on this thread's loop and awaits its result from the caller's.
    """

    def __init__(self, name: str = "rrdev-proxy") -> None:
        self.name = name
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop_event: asyncio.Event | None = None
        self._thread: threading.Thread | None = None
        self._ready: concurrent.futures.Future[None] = concurrent.futures.Future()
        self._done: concurrent.futures.Future[None] = concurrent.futures.Future()

    @property
    def thread(self) -> threading.Thread | None:
        """The thread (``None`` before ``start``); not alive once ``stop`` returned."""
        return self._thread

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._done.done()

    async def start(self) -> None:
        """Start the thread and return once its loop runs."""
        if self._thread is not None:
            raise RuntimeError("the proxy thread was already started")
        self._thread = threading.Thread(target=self._main, name=self.name, daemon=True)
        self._thread.start()
        await asyncio.wrap_future(self._ready)

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Run ``coro`` on this thread's loop; its result (or exception) comes back here."""
        loop = self._loop
        if loop is None or not self.running:
            coro.close()
            raise RuntimeError("the proxy thread is not running")
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(coro, loop))

    async def stop(self) -> None:
        """End the loop (tasks still running there are cancelled) and join the thread.
        Safe to call twice or before ``start``."""
        thread, loop, stop_event = self._thread, self._loop, self._stop_event
        if thread is None:
            return
        if loop is not None and stop_event is not None and not self._done.done():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(stop_event.set)
        await asyncio.wrap_future(self._done)
        thread.join()

    # -------------------------------------------------------------- on the thread

    def _main(self) -> None:
        try:
            with asyncio.Runner(loop_factory=_loop_factory()) as runner:
                runner.run(self._until_stopped())
        except BaseException as exc:  # reported to whoever waits for the start
            if not self._ready.done():
                self._ready.set_exception(exc)
        finally:
            if not self._ready.done():
                self._ready.set_exception(RuntimeError("the proxy thread ended early"))
            self._done.set_result(None)

    async def _until_stopped(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop_event = asyncio.Event()
        self._ready.set_result(None)
        await self._stop_event.wait()


class InlineLoop:
    """``ProxyThread``'s surface over the caller's own loop: ``run(coro)`` just awaits.

    For a process that does nothing but serve (``rrdev.tui.proxy_process_child``): the
    proxy there has the interpreter to itself, so a second thread would only add GIL
    hand-offs between the loop that serves and the one that reports.
    """

    running = True

    async def start(self) -> None:
        return None

    async def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return await coro

    async def stop(self) -> None:
        return None
