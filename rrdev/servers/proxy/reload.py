"""Hot reload: the profile state in force, re-built when the profile file changes.

The file is checked with a ``stat`` at most every ``reload_interval`` seconds (by each
request and by a background watcher); a changed profile is loaded in a worker thread
while requests wait for it, a broken edit keeps the last good profile, and each outcome
is reported as a "reloaded" or "reload_failed" event. Resources of a replaced state
(a JWKS cache, a backend token source) are closed at shutdown, not while requests that
started with them may still use them.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from typing import Protocol

from rrdev.clients.backend_token import BackendTokenSource
from rrdev.clients.jwks import JwksCache
from rrdev.core.errors import RrdevError
from rrdev.core.model import Profile
from rrdev.servers.proxy.state import Overrides, _build_state, _State


class ReloadSettings(Protocol):
    """What a reload reads from its owner (``ProxyApp``) at each use, so a change to
    these attributes there applies here too."""

    overrides: Overrides
    clock: Callable[[], float]
    reload_interval: float


class ProfileReloader:
    """The ``_State`` in force (``state``) and its reloads.

    ``settings`` supplies the overrides, clock and reload interval;
    ``emit(kind, message)`` reports "reloaded" and "reload_failed".
    """

    def __init__(
        self,
        profile: Profile,
        settings: ReloadSettings,
        emit: Callable[[str, str], None],
    ) -> None:
        self.settings = settings
        self._emit = emit
        self._retired_caches: list[JwksCache] = []
        self._retired_sources: list[BackendTokenSource] = []
        self._watcher: asyncio.Task[None] | None = None
        self._reloading: asyncio.Task[bool] | None = None
        self.state = _build_state(profile, settings.overrides, None, settings.clock, emit)
        self._file_sig = _signature(self.state.files)
        self._next_check = time.monotonic() + settings.reload_interval

    def watch(self) -> None:
        """Start the background watcher (once; not when reloading is off or the profile
        has no file)."""
        if self._watcher is None and self.settings.reload_interval > 0 and self.state.files:
            self._watcher = asyncio.create_task(self._watch_profile())

    async def stop(self) -> None:
        """Cancel the watcher and a reload in progress."""
        for task in (self._watcher, self._reloading):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._watcher = self._reloading = None

    async def aclose(self) -> None:
        """Close the JWKS caches and backend token sources, current and retired."""
        caches = [*self._retired_caches, self.state.jwks]
        self._retired_caches = []
        for cache in caches:
            if cache is not None:
                await cache.aclose()
        sources = [*self._retired_sources, self.state.credential.source]
        self._retired_sources = []
        for source in sources:
            if source is not None:
                await source.aclose()

    async def check(self, *, force: bool = False) -> bool:
        """Re-read the profile if its file changed; True when a new profile took effect
        (``ProxyApp.check_reload`` says when and how)."""
        running = self._reloading
        if running is not None and not running.done():
            return await asyncio.shield(running)
        now = time.monotonic()
        if not force and now < self._next_check:
            return False
        self._next_check = now + self.settings.reload_interval
        files = self.state.files
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

    async def _reload(self, path: str) -> bool:
        old = self.state
        try:
            state = await asyncio.to_thread(
                _load_state, path, self.settings.overrides, old, self.settings.clock, self._emit
            )
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
        self.state = state
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
            await asyncio.sleep(self.settings.reload_interval)
            with contextlib.suppress(Exception):
                await self.check(force=True)


def _load_state(
    path: str,
    overrides: Overrides,
    previous: _State,
    clock: Callable[[], float],
    emit: Callable[[str, str], None],
) -> _State:
    """Load the profile at ``path`` and build its state (blocking file I/O: run it in a
    worker thread). Raises ``RrdevError`` for a broken profile."""
    from rrdev.core.profile import load_profile

    return _build_state(load_profile(path), overrides, previous, clock, emit)


def _signature(files: tuple[str, ...]) -> tuple[tuple[int, int, int], ...] | None:
    try:
        return tuple((st.st_mtime_ns, st.st_size, st.st_ino) for st in (os.stat(f) for f in files))
    except OSError:
        return None


def _restart_note(old: _State, new: _State) -> str:
    """``listen`` is read once, when the server binds: say so instead of ignoring it."""
    before, after = old.profile.proxy, new.profile.proxy
    if (before.listen_host, before.listen_port) == (after.listen_host, after.listen_port):
        return ""
    return (
        f" (listen changed to {after.listen_host}:{after.listen_port}: "
        "restart to listen there; still serving on the old address)"
    )
