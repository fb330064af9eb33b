"""``rrdev up --workers N``: N processes serving one listening socket.

The parent (``rrdev.cli.up``) binds the socket once with ``bind_socket``, so a port in
use is still one ``PortInUse`` error (exit 3), and ``WorkerPool`` starts N workers
(``python -m rrdev.servers.workers``) that inherit it; each runs its own ``ProxyApp``
under ``ProxyServer`` and the kernel hands each new connection to one of them.

One inherited socket rather than SO_REUSEPORT: with SO_REUSEPORT every process binds
on its own, and any other process of the same user that sets the option (a second
``rrdev up --workers`` with another profile, say) could bind the same port too and
silently take a share of the connections; the bind would no longer say "in use".
An inherited socket is bound exactly once, and works the same on macOS, where
SO_REUSEPORT does not spread connections.

Each worker reports on its own pipe, one message a line, ``<kind> <json>``: "ready"
(``{"pid"}``), "line" (a ``RecordLine``, when the console shows requests), "log" (a
record's ``to_dict`` plus ``"worker"``, with ``--log-file``), "event" (``ProxyApp``'s
``on_event``: ``{"kind", "message"}``) and "error" (why it could not start). The parent
is the only writer of the console and the log file, so their lines never interleave.

A worker reads its ``WorkerConfig`` as one JSON line on stdin (not argv: ``ps`` shows
argv to every user), then keeps stdin open: end of file means the parent is gone, and
the worker stops at once. SIGTERM (or SIGINT) stops it gracefully, a second one at once.
Workers run in a session of their own, so a terminal's Ctrl+C reaches the parent only,
which relays it (``WorkerPool.request_stop``).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Coroutine
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any

from rrdev.core.errors import RrdevError

if TYPE_CHECKING:
    from rrdev.core.records import RequestRecord
    from rrdev.servers.runner import ProxyServer

__all__ = [
    "MAX_WORKERS",
    "WorkerConfig",
    "WorkerDied",
    "WorkerExit",
    "WorkerPool",
    "worker_main",
]

#: More processes than this is a typo, not a setup: each costs a Python interpreter.
MAX_WORKERS = 64
#: After a forced stop, a worker still running this long later is killed (SIGKILL).
KILL_AFTER_SECONDS = 5.0
#: A message (a record with its whole trace) longer than this is dropped, not buffered.
MESSAGE_LIMIT = 64 * 1024 * 1024
#: Pipe capacity asked for (Linux): a burst of records does not block a worker's loop.
PIPE_BYTES = 1024 * 1024

#: ``on_message(worker, kind, payload)``: a worker's "line", "log" or "event" message,
#: its payload the JSON text as received.
MessageHandler = Callable[[int, str, bytes], None]


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker serves: the profile (loaded by the worker itself), the shared
    overrides, and what to send back. ``index`` (1-based), ``sock_fd`` and ``out_fd``
    are filled in by ``WorkerPool`` for each worker."""

    profile_path: str
    host: str
    port: int
    target: str | None = None
    jwks: str | None = None
    offline: bool = False
    #: send each record's JSON ("log"): the parent has a --log-file
    log: bool = False
    #: send each request's console line ("line"): not --quiet
    lines: bool = True
    index: int = 0
    sock_fd: int = -1
    out_fd: int = -1

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str | bytes) -> WorkerConfig:
        return cls(**json.loads(text))


@dataclass(frozen=True)
class WorkerExit:
    """A worker that ended: which one and how."""

    index: int
    pid: int
    returncode: int

    def describe(self) -> str:
        how = f"exited with code {self.returncode}"
        if self.returncode < 0:
            with contextlib.suppress(ValueError):
                how = f"was killed by {signal.Signals(-self.returncode).name}"
        return f"worker {self.index} (pid {self.pid}) {how}"


class WorkerDied(RrdevError):
    """A worker ended while the others were serving: all of them were stopped."""

    exit_code = 1


# ------------------------------------------------------------------ the parent's side


class _Worker:
    """One worker process, its message pipe and what it said."""

    def __init__(self, index: int, process: subprocess.Popen[bytes]) -> None:
        self.index = index
        self.process = process
        self.ready = False
        self.error: dict[str, Any] | None = None
        self.exit: WorkerExit | None = None
        self.transport: asyncio.BaseTransport | None = None


class WorkerPool:
    """N worker processes serving ``sock``; ``on_message`` gets what they report.

    ``start()`` returns once every worker accepts connections (or raises why one could
    not start, after stopping the others); ``wait()`` returns when all have ended, with
    the ``WorkerExit`` of a worker that ended on its own (the others are then stopped:
    a worker is not restarted), else None. ``close()`` kills what still runs.
    """

    def __init__(
        self, sock: socket.socket, count: int, config: WorkerConfig, on_message: MessageHandler
    ) -> None:
        self.sock = sock
        self.count = count
        self.config = config
        self.on_message = on_message
        self.host = config.host
        self.port: int = sock.getsockname()[1]
        self.died: WorkerExit | None = None
        self._workers: list[_Worker] = []
        self._pumps: list[asyncio.Task[None]] = []
        self._changed = asyncio.Event()
        self._signals_sent = 0
        self._kill_timer: asyncio.TimerHandle | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def pids(self) -> list[int]:
        return [worker.process.pid for worker in self._workers]

    @property
    def stopping(self) -> bool:
        return self._signals_sent > 0

    async def start(self) -> None:
        """Start every worker and wait until all serve; the parent's copy of the socket
        is closed then (the workers hold it). Raises ``RrdevError`` with the first
        failing worker's own error (a broken profile is exit 3, as without workers)."""
        try:
            for index in range(1, self.count + 1):
                self._workers.append(await self._spawn(index))
        finally:
            self.sock.close()
        await self._until_ready()

    def request_stop(self, *, force: bool = False) -> None:
        """Stop every worker: gracefully (SIGTERM: in-flight requests finish), or with
        ``force`` at once (a second SIGTERM; SIGKILL ``KILL_AFTER_SECONDS`` later)."""
        wanted = 2 if force else 1
        while self._signals_sent < wanted:
            self._signals_sent += 1
            self._signal_all(signal.SIGTERM)
        if force and self._kill_timer is None:
            loop = asyncio.get_running_loop()
            self._kill_timer = loop.call_later(KILL_AFTER_SECONDS, self._signal_all, signal.SIGKILL)

    async def wait(self) -> WorkerExit | None:
        """Until every worker has ended; the worker that ended on its own, if one did."""
        while not all(worker.exit for worker in self._workers):
            self._changed.clear()
            await self._changed.wait()
        return self.died

    async def close(self) -> None:
        """Kill any worker still running and wait for it; close the pipes."""
        if self._kill_timer is not None:
            self._kill_timer.cancel()
        self._signal_all(signal.SIGKILL)
        if self._pumps:
            await asyncio.gather(*self._pumps, return_exceptions=True)
        for worker in self._workers:
            if worker.transport is not None:
                worker.transport.close()
            if worker.process.stdin is not None:
                with contextlib.suppress(OSError):
                    worker.process.stdin.close()

    # -------------------------------------------------------------- internals

    async def _spawn(self, index: int) -> _Worker:
        read_fd, write_fd = os.pipe()
        _widen_pipe(write_fd)
        config = replace(self.config, index=index, sock_fd=self.sock.fileno(), out_fd=write_fd)
        try:
            process = subprocess.Popen(
                # -P: not the current directory first on sys.path, but this rrdev (_env)
                [sys.executable, "-P", "-m", "rrdev.servers.workers"],
                env=_env(),
                stdin=subprocess.PIPE,
                pass_fds=(config.sock_fd, write_fd),
                start_new_session=True,  # the terminal's Ctrl+C goes to the parent only
            )
        except OSError as exc:
            os.close(read_fd)
            raise RrdevError(f"cannot start worker {index}: {exc.strerror}") from None
        finally:
            os.close(write_fd)
        worker = _Worker(index, process)
        assert process.stdin is not None
        with contextlib.suppress(OSError):  # a worker that died at once is seen by its pump
            process.stdin.write(config.to_json().encode() + b"\n")
            process.stdin.flush()
        reader = asyncio.StreamReader(limit=MESSAGE_LIMIT)
        loop = asyncio.get_running_loop()
        worker.transport, _ = await loop.connect_read_pipe(
            lambda: asyncio.StreamReaderProtocol(reader), os.fdopen(read_fd, "rb", buffering=0)
        )
        self._pumps.append(asyncio.create_task(self._pump(worker, reader)))
        return worker

    async def _pump(self, worker: _Worker, reader: asyncio.StreamReader) -> None:
        """Hand on the worker's messages until its pipe closes, then reap it."""
        while True:
            try:
                line = await reader.readline()
            except ValueError:  # longer than MESSAGE_LIMIT: dropped, the next one is read
                self._dropped(worker)
                continue
            if not line.endswith(b"\n"):
                break  # end of file (a cut-off last line of a killed worker is dropped)
            kind, _, payload = line[:-1].partition(b" ")
            self._receive(worker, kind.decode("ascii", "replace"), payload)
        while (code := worker.process.poll()) is None:
            await asyncio.sleep(0.01)
        worker.exit = WorkerExit(worker.index, worker.process.pid, code)
        if not self.stopping and all(w.ready for w in self._workers):
            self.died = worker.exit
            self.request_stop()
        self._changed.set()

    def _receive(self, worker: _Worker, kind: str, payload: bytes) -> None:
        if kind == "ready":
            worker.ready = True
            self._changed.set()
        elif kind == "error":
            with contextlib.suppress(ValueError):
                worker.error = json.loads(payload)
        else:
            try:
                self.on_message(worker.index, kind, payload)
            except Exception as exc:  # a front end's bug must not stop the pump
                text = json.dumps({"kind": "record_failed", "message": f"{exc!r}"})
                with contextlib.suppress(Exception):
                    self.on_message(worker.index, "event", text.encode())

    def _dropped(self, worker: _Worker) -> None:
        message = f"worker {worker.index} sent a message over {MESSAGE_LIMIT} bytes; dropped"
        with contextlib.suppress(Exception):
            self.on_message(
                worker.index, "event", json.dumps({"kind": "record_failed", "message": message})
            )

    async def _until_ready(self) -> None:
        while not all(worker.ready for worker in self._workers):
            failed = next((worker for worker in self._workers if worker.exit), None)
            if failed is not None:
                self.request_stop(force=True)
                await self.wait()
                raise _start_error(failed)
            self._changed.clear()
            await self._changed.wait()

    def _signal_all(self, sig: signal.Signals) -> None:
        for worker in self._workers:
            if worker.exit is None and worker.process.returncode is None:
                with contextlib.suppress(OSError):
                    worker.process.send_signal(sig)


def _env() -> dict[str, str]:
    """The parent's environment (``${VAR}`` references resolve alike), with the
    directory this ``rrdev`` was imported from first on ``PYTHONPATH``: a worker runs
    the same code as its parent, whatever directory ``rrdev up`` was started in."""
    import rrdev

    root = os.path.dirname(os.path.dirname(os.path.abspath(rrdev.__file__)))
    paths = [root, *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}


def _start_error(worker: _Worker) -> RrdevError:
    """The worker's own error (its profile error, say), or how it ended."""
    assert worker.exit is not None
    if worker.error is not None:
        error = RrdevError(str(worker.error.get("message")), str(worker.error.get("hint") or ""))
        error.exit_code = int(worker.error.get("exit_code") or 1)
        return error
    return RrdevError(f"{worker.exit.describe()} while starting", "see the messages above")


def _widen_pipe(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # not POSIX: the default capacity will do
        return
    if hasattr(fcntl, "F_SETPIPE_SZ"):  # Linux
        with contextlib.suppress(OSError):
            fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)


# ------------------------------------------------------------------ the worker's side


class _Channel:
    """The worker's end of its message pipe. A parent that is gone (the write fails)
    stops the worker through ``on_broken``."""

    def __init__(self, config: WorkerConfig) -> None:
        self.config = config
        self._out = os.fdopen(config.out_fd, "wb")
        self.broken = False
        self.on_broken: Callable[[], None] | None = None

    def send(self, kind: str, payload: Any) -> None:
        if self.broken:
            return
        try:
            # One write of one whole line: json.dumps escapes every newline in it.
            self._out.write(f"{kind} {json.dumps(payload, default=str)}\n".encode())
            self._out.flush()
        except (OSError, ValueError):
            self.broken = True
            if self.on_broken is not None:
                self.on_broken()

    def record(self, record: RequestRecord) -> None:
        """The ``ProxyApp`` sink: what the parent needs of each record, nothing more."""
        if self.config.log:
            self.send("log", {**record.to_dict(), "worker": self.config.index})
        if self.config.lines:
            from rrdev.core.record_line import RecordLine

            self.send("line", RecordLine.of(record).to_dict())

    def event(self, kind: str, message: str) -> None:
        self.send("event", {"kind": kind, "message": message})


def worker_main() -> int:
    """A worker process: its config from stdin, serve until told to stop; exit code."""
    config = WorkerConfig.from_json(sys.stdin.buffer.readline())
    channel = _Channel(config)
    try:
        return _run(_serve(config, channel))
    except RrdevError as exc:
        channel.send(
            "error", {"message": exc.message, "hint": exc.hint, "exit_code": exc.exit_code}
        )
        return exc.exit_code
    except KeyboardInterrupt:
        return 0


def _run(main: Coroutine[Any, Any, int]) -> int:
    factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


async def _serve(config: WorkerConfig, channel: _Channel) -> int:
    from rrdev.core.profile import load_profile
    from rrdev.servers.heap import resettling, settle_heap
    from rrdev.servers.proxy import Overrides, ProxyApp
    from rrdev.servers.runner import ProxyServer

    app = ProxyApp(
        load_profile(config.profile_path),
        overrides=Overrides(target=config.target, jwks=config.jwks, offline=config.offline),
        sink=channel.record,
        on_event=resettling(channel.event),
    )
    sock = socket.socket(fileno=config.sock_fd)
    server = ProxyServer(app, config.host, config.port, sock=sock)
    try:
        await server.start()
    except RrdevError:
        await app.aclose()
        raise
    channel.on_broken = lambda: server.request_stop(force=True)
    _stop_on_signals(server)
    watch = await _stop_when_parent_goes(server)
    settle_heap()  # the long-lived state out of the collector's scans (servers/heap.py)
    channel.send("ready", {"pid": os.getpid()})
    try:
        await server.wait()
    finally:
        watch.close()
        await server.stop(force=True)
    return 0


def _stop_on_signals(server: ProxyServer) -> None:
    """SIGTERM or SIGINT: stop gracefully; the next one: at once."""
    loop = asyncio.get_running_loop()

    def stop() -> None:
        server.request_stop(force=server.stopping)

    for sig in (signal.SIGTERM, signal.SIGINT):
        with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
            loop.add_signal_handler(sig, stop)


class _ParentWatch(asyncio.Protocol):
    """stdin from the parent: it never writes again, so its end means the parent is gone."""

    def __init__(self, server: ProxyServer) -> None:
        self.server = server

    def eof_received(self) -> bool | None:
        self.server.request_stop(force=True)
        return None

    def connection_lost(self, exc: Exception | None) -> None:
        self.server.request_stop(force=True)


async def _stop_when_parent_goes(server: ProxyServer) -> asyncio.BaseTransport:
    loop = asyncio.get_running_loop()
    transport, _ = await loop.connect_read_pipe(lambda: _ParentWatch(server), sys.stdin.buffer)
    return transport


if __name__ == "__main__":
    sys.exit(worker_main())
