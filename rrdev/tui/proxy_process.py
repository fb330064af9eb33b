"""``rrdev tui``'s proxy in a process of its own: ``ProcessRuntime``.

No Textual here. With the proxy on a thread of the UI's process, the two shared one
interpreter lock: under load the proxy served a fraction of ``rrdev up``'s rate and a
key press waited hundreds of milliseconds. So the proxy runs in a child process
(``rrdev.tui.proxy_process_child``) and the UI process never serves a request.

Why ``subprocess`` with a socket pair, not ``multiprocessing``: it is how ``rrdev up
--workers`` already starts its workers (``rrdev.servers.workers``: ``sys.executable
-P -m``, this ``rrdev`` first on ``PYTHONPATH``, a session of its own so a terminal's
Ctrl+C reaches the TUI only); the child gets exactly one inherited descriptor, no
copy of the parent's state, and the one socket is both ways of an asyncio stream on
each side (``multiprocessing``'s ``Connection`` blocks, and its "spawn" start re-imports
the parent's ``__main__``). The spec travels on the socket, not in argv (``ps``).

Which calls go to the child and which are answered here: everything that needs the
live proxy's state is a call (``dry_run``, ``explain``: its key cache and the profile
in force, so a dry run decides as the proxy does; ``send``, ``send_demo_requests``: the
child's one HTTP client). What the UI reads without waiting (``info``,
``jwks_status``, ``profile``, ``demo_requests``) is the child's last ``Snapshot``,
sent when it starts listening, after each reload (before the "reloaded" notice) and,
for the key cache, every 0.5 s. ``signing_keyset`` is read here from the local
keyset file, as before: private keys never cross the pipe.

Lifecycle: ``start`` returns once the child listens, or raises the child's own
``RrdevError`` (``PortInUse``, a broken profile: same class, message and exit code as
in-process), or says how a child that died while starting ended, with the end of its
stderr. ``stop`` asks it to stop (in-flight requests finish, at most a few seconds),
then kills it. If the TUI dies, the child reads end of file and stops. A child that
dies later is reported as a "proxy_died" notice.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import itertools
import socket
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from rrdev.core.errors import RrdevError
from rrdev.core.records import record_copy
from rrdev.tui.proxy_wire import FrameDecoder, RuntimeSpec, Snapshot, decode_error, write_frame
from rrdev.tui.runtime import DemoSent, RuntimeInfo, Sent, local_signing_keyset

if TYPE_CHECKING:
    from rrdev.core.explain import IncomingRequest
    from rrdev.core.jwk import JwksStatus
    from rrdev.core.keyset import Keyset
    from rrdev.core.model import Profile
    from rrdev.core.records import Explanation
    from rrdev.servers.demo import DemoRequest
    from rrdev.servers.issuer.keys import KeysetWatcher
    from rrdev.servers.proxy import EventCallback, Overrides, RecordSink
    from rrdev.tui.workbench.requests import WorkbenchRequest

__all__ = ["ProcessRuntime", "alias_process", "demo_process", "profile_process"]

#: After "stop", how long the child may take to finish in-flight requests and exit.
STOP_SECONDS = 8.0
#: How much of a dead child's stderr a message quotes.
STDERR_TAIL = 600


class _SnapshotReader:
    """What the UI reads without waiting: the child's last ``Snapshot``, and the local
    keyset read here (private keys never cross the pipe)."""

    spec: RuntimeSpec
    running: bool

    def __init__(self, profile: Profile | None) -> None:
        self._snapshot = Snapshot(None, None, profile)
        self._keys: KeysetWatcher | None = None

    def info(self) -> RuntimeInfo | None:
        return self._snapshot.info if self.running else None

    def jwks_status(self) -> JwksStatus | None:
        return self._snapshot.jwks

    def profile(self) -> Profile | None:
        return self._snapshot.profile

    def demo_requests(self) -> list[DemoRequest]:
        return list(self._snapshot.demo_requests)

    def signing_keyset(self) -> Keyset | None:
        if self.spec.kind == "aliases":
            return None
        if self.spec.kind == "demo":
            return self._demo_keys()
        profile = self.profile()
        if profile is None:
            return None
        overrides = self.spec.overrides
        return local_signing_keyset(profile, offline=bool(overrides and overrides.offline))

    def _demo_keys(self) -> Keyset | None:
        """The demo issuer's keyset, read from the same file the child's issuer reads."""
        if self._snapshot.info is None:
            return None
        if self._keys is None:
            from rrdev.servers.issuer.keys import KeysetWatcher

            home = None if self.spec.home is None else Path(self.spec.home)
            self._keys = KeysetWatcher(home)
        return self._keys.current()


class ProcessRuntime(_SnapshotReader):
    """The ``Runtime`` of ``rrdev.tui.runtime``, served from a child process."""

    read_only = False

    def __init__(
        self, spec: RuntimeSpec, *, aliases: tuple[str, ...] = (), profile: Profile | None = None
    ) -> None:
        super().__init__(profile)
        self.spec = spec
        self.demo = spec.kind == "demo"
        self.aliases = aliases
        self.process: subprocess.Popen[bytes] | None = None
        #: How the child ended when it died on its own (None while it runs).
        self.died: str | None = None
        self._writer: asyncio.StreamWriter | None = None
        self._pump: asyncio.Task[None] | None = None
        self._calls: dict[int, asyncio.Future[Any]] = {}
        self._ids = itertools.count(1)
        self._stderr: IO[bytes] | None = None
        self._stopping = False
        self._sink: RecordSink | None = None
        self._on_event: EventCallback | None = None
        #: The fast-lane record templates the child sent, by id (``Outbox``).
        self._templates: dict[int, dict[str, Any]] = {}

    # -------------------------------------------------------------- lifecycle

    async def start(self, sink: RecordSink, on_event: EventCallback) -> RuntimeInfo:
        """Start the child and return once it listens. ``sink`` and ``on_event`` are
        called on the caller's loop, a batch at a time."""
        if self.process is not None:
            raise RuntimeError("the proxy process was already started")
        self._sink, self._on_event = sink, on_event
        reader = await self._spawn()
        decoder = FrameDecoder()  # every frame from the child, in order
        kind, payload = "batch", []
        while kind == "batch":  # notices of the start itself (the demo's new keyset)
            self._take(payload)
            try:
                kind, payload = await decoder.read(reader)
            except EOFError:
                raise await self._start_failure(None) from None
        if kind != "ready":
            raise await self._start_failure(decode_error(payload))
        self._snapshot = payload
        self._pump = asyncio.create_task(self._read(reader, decoder))
        info = payload.info
        assert info is not None
        return info

    async def _spawn(self) -> asyncio.StreamReader:
        from rrdev.servers.workers import _env

        ours, theirs = socket.socketpair()
        # Kept open for the child's whole life (its last words explain a death).
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115
        try:
            self.process = subprocess.Popen(
                [sys.executable, "-P", "-m", "rrdev.tui.proxy_process_child", str(theirs.fileno())],
                env=_env(),
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,  # the terminal is the UI's
                stderr=self._stderr,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
            )
        except OSError as exc:
            ours.close()
            raise RrdevError(
                f"cannot start the proxy process: {exc.strerror}", "check that python runs"
            ) from None
        finally:
            theirs.close()
        reader, self._writer = await asyncio.open_unix_connection(sock=ours)
        write_frame(self._writer, ("start", self.spec))
        return reader

    async def _start_failure(self, error: RrdevError | None) -> RrdevError:
        """The child's own error, or how it ended; the child is gone when this returns."""
        ended = await self._end_process(grace=STOP_SECONDS)
        tail = self._stderr_tail()
        self._close_channel()
        if error is not None:
            return error
        return RrdevError(f"the proxy process {ended} while starting", tail)

    async def stop(self) -> None:
        """Stop the child (in-flight requests finish) and wait for it; kill it if it
        takes longer than ``STOP_SECONDS``. Safe to call twice or before ``start``."""
        self._stopping = True
        writer = self._writer
        if writer is not None and not writer.is_closing():
            with contextlib.suppress(ConnectionError, RuntimeError):
                write_frame(writer, ("stop", None))
                await writer.drain()
        if self._pump is not None:
            with contextlib.suppress(TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(asyncio.shield(self._pump), STOP_SECONDS)
        await self._end_process(grace=1.0)
        if self._pump is not None:
            self._pump.cancel()
        self._close_channel()

    async def _end_process(self, *, grace: float) -> str:
        """Wait up to ``grace`` seconds for the child to exit, then kill it; how it ended."""
        process = self.process
        if process is None:
            return "was not started"
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        while process.poll() is None and loop.time() < deadline:
            await asyncio.sleep(0.02)
        if process.poll() is None:
            process.kill()
            while process.poll() is None:
                await asyncio.sleep(0.01)
        return _ended(process.returncode)

    def _close_channel(self) -> None:
        writer, self._writer = self._writer, None
        if writer is not None:
            writer.close()
        stderr, self._stderr = self._stderr, None
        if stderr is not None:
            stderr.close()

    def _stderr_tail(self) -> str:
        stderr = self._stderr
        if stderr is None:
            return ""
        with contextlib.suppress(OSError, ValueError):
            stderr.seek(0)
            text = stderr.read().decode("utf-8", "replace").strip()
            return text[-STDERR_TAIL:]
        return ""

    # -------------------------------------------------------------- what arrives

    async def _read(self, reader: asyncio.StreamReader, decoder: FrameDecoder) -> None:
        """Hand on batches and answers until the child's end closes."""
        try:
            while True:
                kind, payload = await decoder.read(reader)
                if kind == "batch":
                    self._take(payload)
                elif kind == "reply":
                    self._answer(*payload)
        except EOFError:
            pass
        except Exception as exc:  # a frame that does not decode: the stream is lost
            self._notify("record_failed", f"the proxy's pipe broke: {type(exc).__name__}")
            if self.process is not None:
                self.process.kill()  # it would go on serving what nobody sees
        finally:
            self._fail_calls()
        if not self._stopping:
            await self._report_death()

    def _take(self, items: list[tuple[str, Any]]) -> None:
        sink, on_event = self._sink, self._on_event
        assert sink is not None and on_event is not None
        templates = self._templates
        for kind, value in items:
            if kind == "c":  # most records under load
                sink(record_copy(templates[value[0]], value[1]))
            elif kind == "r":
                sink(value)
            elif kind == "t":
                if value is None:
                    templates.clear()
                else:
                    templates[value[0]] = value[1]
            elif kind == "e":
                on_event(*value)
            elif kind == "s":
                self._snapshot = value
            elif kind == "j":
                self._snapshot = dataclasses.replace(self._snapshot, jwks=value)
            elif kind == "d":
                on_event(
                    "record_failed", f"{value} requests were not shown: the inspector fell behind"
                )

    def _answer(self, call_id: int, ok: bool, value: Any) -> None:
        future = self._calls.pop(call_id, None)
        if future is None or future.done():
            return
        if ok:
            future.set_result(value)
        else:
            future.set_exception(decode_error(value))

    def _fail_calls(self) -> None:
        calls, self._calls = self._calls, {}
        for future in calls.values():
            if not future.done():
                future.set_exception(RuntimeError("the proxy is not running"))

    def _notify(self, kind: str, message: str) -> None:
        if self._on_event is not None:
            self._on_event(kind, message)

    async def _report_death(self) -> None:
        ended = await self._end_process(grace=STOP_SECONDS)
        tail = self._stderr_tail().splitlines()[-1:]
        self.died = f"the proxy process {ended}" + (f": {tail[0]}" if tail else "")
        self._notify("proxy_died", f"{self.died}; quit and start rrdev tui again")
        self._close_channel()

    # -------------------------------------------------------------- calls

    @property
    def running(self) -> bool:
        return self._pump is not None and not self._pump.done() and not self._stopping

    async def _call(self, name: str, *args: Any) -> Any:
        writer = self._writer
        if not self.running or writer is None:
            raise RuntimeError("the proxy is not running")
        call_id = next(self._ids)
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._calls[call_id] = future
        write_frame(writer, ("call", (call_id, name, args)))
        return await future

    async def send(self, request: WorkbenchRequest) -> Sent:
        try:
            sent: Sent = await self._call("send", request)
        except RuntimeError as exc:
            return Sent(None, str(exc))
        return sent

    async def explain(self, request: WorkbenchRequest) -> Explanation:
        explanation: Explanation = await self._call("explain", request)
        return explanation

    async def dry_run(self, request: IncomingRequest) -> Explanation | None:
        try:
            explanation: Explanation | None = await self._call("dry_run", request)
        except RuntimeError:
            return None
        return explanation

    async def send_demo_requests(self) -> DemoSent:
        if not self._snapshot.demo_requests:
            return DemoSent(0)
        try:
            sent: DemoSent = await self._call("send_demo_requests")
        except RuntimeError:
            return DemoSent(0)
        return sent


def _ended(code: int | None) -> str:
    import signal

    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"was killed by {signal.Signals(-code).name}"
    return f"exited with code {code}"


def profile_process(
    path: str | Path | None,
    *,
    overrides: Overrides | None = None,
    host: str | None = None,
    port: int | None = None,
    reload_interval: float = 0.5,
) -> ProcessRuntime:
    """``rrdev tui PROFILE``. The profile is found and loaded here first, so a missing
    or broken one fails before anything starts (as ``ProfileRuntime.from_path``)."""
    from rrdev.core.profile import discover_profile, load_profile

    found = discover_profile(str(path) if path is not None else None)
    profile = load_profile(found)
    spec = RuntimeSpec(
        "profile", (str(found),), overrides, host, port, reload_interval=reload_interval
    )
    return ProcessRuntime(spec, profile=profile)


def alias_process(
    paths: list[str],
    *,
    overrides: Overrides | None = None,
    host: str | None = None,
    port: int | None = None,
    reload_interval: float = 0.5,
) -> ProcessRuntime:
    """``rrdev tui a.toml b.toml``: the aliases are worked out here (the table shows
    an alias column from the start), and a clash fails before anything starts."""
    from rrdev.core.aliases import served_aliases
    from rrdev.core.profile import load_profile

    served = served_aliases([load_profile(Path(p)) for p in paths])
    spec = RuntimeSpec(
        "aliases", tuple(paths), overrides, host, port, reload_interval=reload_interval
    )
    return ProcessRuntime(spec, aliases=tuple(s.alias for s in served), profile=served[0].profile)


def demo_process(
    *,
    host: str = "127.0.0.1",
    proxy_port: int = 8787,
    issuer_port: int = 0,
    backend_port: int = 0,
    home: Path | None = None,
) -> ProcessRuntime:
    """``rrdev tui --demo``: the issuer, the echo backend and the proxy, in the child."""
    spec = RuntimeSpec(
        "demo",
        host=host,
        port=proxy_port,
        issuer_port=issuer_port,
        backend_port=backend_port,
        home=None if home is None else str(home),
    )
    return ProcessRuntime(spec)
