"""Hot reload: the profile state in force, re-built when the profile file changes.

The file is checked with a ``stat`` at most every ``reload_interval`` seconds (by each
request and by a background watcher); a changed profile is loaded in a worker thread
while requests wait for it, a broken edit keeps the last good profile, and each outcome
is reported as a "reloaded" or "reload_failed" event. Resources of a replaced state
(a JWKS cache, a backend token source) are closed as soon as no request in flight
uses them (``hold``/``release`` count them), at once when none does; a JWKS cache the
new state keeps is not closed, and takes the new profile's timings. Every JWKS cache
shares one set of HTTP clients (``JwksClients``), made once and closed at shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from typing import Protocol

from rrdev.clients.backend_token import BackendTokenSource
from rrdev.clients.jwks import JwksCache, JwksClients
from rrdev.core.errors import RrdevError
from rrdev.core.model import Profile
from rrdev.servers.proxy.state import (
    JwksShared,
    Overrides,
    _build_state,
    _State,
    apply_jwks_settings,
)


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
        self._clients = JwksClients()
        self._shared = JwksShared(self._clients, emit)
        #: replaced states some request still holds (their resources stay open)
        self._retired: list[_State] = []
        self._closing: set[asyncio.Task[None]] = set()
        self._watcher: asyncio.Task[None] | None = None
        self._reloading: asyncio.Task[bool] | None = None
        self.state = _build_state(profile, settings.overrides, None, settings.clock, self._shared)
        self._file_sig = _signature(self.state.files)
        self._next_check = time.monotonic() + settings.reload_interval

    def hold(self) -> _State:
        """The state in force, for one request: ``release`` it when the request ends."""
        state = self.state
        state.users += 1
        return state

    def release(self, state: _State) -> None:
        state.users -= 1
        # Most requests end with nothing retired: no generator for them.
        if state.users == 0 and self._retired and any(s is state for s in self._retired):
            self._sweep()

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
        """Close every resource, current and retired, and the shared HTTP clients."""
        states, self._retired = [*self._retired, self.state], []
        closed: set[int] = set()
        for state in states:
            for resource in state.resources():
                if id(resource) not in closed:
                    closed.add(id(resource))
                    await resource.aclose()
        if self._closing:
            await asyncio.gather(*self._closing, return_exceptions=True)
        await self._clients.aclose()

    def _retire(self, old: _State) -> None:
        self._retired.append(old)
        self._sweep()

    def _sweep(self) -> None:
        """Close what no state in use holds: neither the current state nor a retired
        one with requests in flight."""
        busy = [s for s in self._retired if s.users > 0]
        in_use = {id(r) for s in (self.state, *busy) for r in s.resources()}
        for state in self._retired:
            if state.users > 0:
                continue
            for resource in state.resources():
                if id(resource) not in in_use:
                    in_use.add(id(resource))  # once, even when two states share it
                    self._close_later(resource)
        self._retired = busy

    def _close_later(self, resource: JwksCache | BackendTokenSource) -> None:
        task = asyncio.get_running_loop().create_task(resource.aclose())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    def due(self) -> bool:
        """Whether ``check`` has anything to do: a reload is under way, or the file is
        due for its next ``stat``. Lets a request skip the call (and its coroutine)."""
        return self._reloading is not None or time.monotonic() >= self._next_check

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
                _load_state, path, self.settings.overrides, old, self.settings.clock, self._shared
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
        apply_jwks_settings(state)  # a kept JWKS cache takes the new timings
        self.state = state
        try:
            # Its JWKS cache (unless kept) and backend token source close once unused.
            self._retire(old)
        except Exception as exc:  # the new profile is in force: waiting requests go on
            self._emit("reload_cleanup_failed", f"{type(exc).__name__}: {exc}")
        self._emit(
            "reloaded",
            f"{path}: new requests use the edited profile{_restart_note(old, state)}"
            + _check_problems_note(state),
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
    shared: JwksShared,
) -> _State:
    """Load the profile at ``path`` and build its state (blocking file I/O: run it in a
    worker thread). Raises ``RrdevError`` for a broken profile."""
    from rrdev.core.profile import load_profile

    return _build_state(load_profile(path), overrides, previous, clock, shared)


def _signature(files: tuple[str, ...]) -> tuple[tuple[int, int, int], ...] | None:
    try:
        return tuple((st.st_mtime_ns, st.st_size, st.st_ino) for st in (os.stat(f) for f in files))
    except OSError:
        return None


def _check_problems_note(state: _State) -> str:
    """A reloaded profile whose checks have problems is still in force: just say so."""
    broken = [c for c in state.profile.checks if c.problem is not None]
    if not broken:
        return ""
    noun = "check" if len(broken) == 1 else "checks"
    return f" ({len(broken)} {noun} cannot run, e.g. {broken[0].problem}; see rrdev validate)"


def _restart_note(old: _State, new: _State) -> str:
    """``listen`` is read once, when the server binds: say so instead of ignoring it."""
    before, after = old.profile.proxy, new.profile.proxy
    if (before.listen_host, before.listen_port) == (after.listen_host, after.listen_port):
        return ""
    return (
        f" (listen changed to {after.listen_host}:{after.listen_port}: "
        "restart to listen there; still serving on the old address)"
    )
