"""The TUI's proxy process: ``python -m rrdev.tui.proxy_process_child FD``.

No Textual here. ``rrdev.tui.proxy_process`` starts this with one end of a socket pair
(``FD``); the first frame on it is the ``RuntimeSpec``. The runtime of
``rrdev.tui.runtime`` that the spec names then serves on this process's only loop
(``InlineLoop``: no second thread to share the interpreter with). Its records, notices
and ``Snapshot``s go up in batches (``Outbox``); the UI's calls come down and are
answered by id. End of file on the socket means the TUI is gone (it quit, crashed or
was killed): the proxy stops and the process exits, so the port is never left
listening by an orphan.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rrdev.core.errors import RrdevError
from rrdev.servers.heap import resettling, settle_heap
from rrdev.tui.proxy_thread import InlineLoop
from rrdev.tui.proxy_wire import FrameEncoder, RuntimeSpec, Snapshot, encode_error, read_frame

if TYPE_CHECKING:
    from rrdev.core.records import RequestRecord
    from rrdev.servers.proxy.fastrecords import Template
    from rrdev.tui.runtime import AliasRuntime, DemoRuntime, ProfileRuntime

    Served = ProfileRuntime | DemoRuntime | AliasRuntime

__all__ = ["FLUSH_RECORDS", "FLUSH_SECONDS", "Outbox", "main"]

#: A batch leaves at most this long after its first item (the UI draws every 50 ms)...
FLUSH_SECONDS = 0.05
#: ...or as soon as it holds this many records.
FLUSH_RECORDS = 256
#: How often the key cache's status goes up (the status line refreshes every 0.5 s).
STATUS_SECONDS = 0.5
#: Records are dropped (and counted) while this much is unsent: a UI that stopped
#: reading must not make the proxy's memory grow.
BACKLOG_BYTES = 32 * 1024 * 1024
#: Record templates the UI holds at most: past this both sides start over.
TEMPLATES_HELD = 1024
#: The calls the UI may make, by name.
CALLS = frozenset({"dry_run", "send", "explain", "send_demo_requests"})


class Upstream:
    """What goes to the UI: every frame through one ``FrameEncoder``, in order."""

    def __init__(self, writer: asyncio.StreamWriter) -> None:
        self.writer = writer
        self.encoder = FrameEncoder()

    def send(self, value: object) -> None:
        if not self.writer.is_closing():
            self.writer.write(self.encoder.encode(value))

    def backlog(self) -> int:
        return self.writer.transport.get_write_buffer_size()


class Outbox:
    """Records, notices and snapshots for the UI, in order, sent in batches.

    Items are ``("r", record)``, ``("t", (id, fixed fields))`` (a fast-lane record
    template, sent before its first copy; ``("t", None)``: forget them all),
    ``("c", (template id, copy fields))`` (a record copy,
    ``rrdev.core.records.record_copy``), ``("e", (kind, message))``,
    ``("s", Snapshot)``, ``("j", JwksStatus)`` and ``("d", count)`` (records dropped
    on a full backlog).

    The outbox is the runtime's sink: most records under load are copies of a
    template (``rrdev.servers.proxy.fastrecords``), sent as their few own fields.
    """

    def __init__(self, upstream: Upstream, snapshot: Callable[[], Snapshot]) -> None:
        self.upstream = upstream
        self.snapshot = snapshot
        self.items: list[tuple[str, Any]] = []
        self.dropped = 0
        self._timer: asyncio.TimerHandle | None = None
        self._templates: set[int] = set()  # ids the UI holds

    def __call__(self, record: RequestRecord) -> None:
        """The runtime's sink."""
        if self._dropping():
            return
        self.items.append(("r", record))
        self._due()

    def template_copy(self, template: Template, fields: tuple[Any, ...]) -> None:
        """A fast-lane record: its template (once), then this exchange's fields."""
        if self._dropping():
            return
        held = self._templates
        if template.id not in held:
            if len(held) >= TEMPLATES_HELD:
                held.clear()
                self.items.append(("t", None))
            held.add(template.id)
            self.items.append(("t", (template.id, template.fixed)))
        self.items.append(("c", (template.id, fields)))
        self._due()

    def _dropping(self) -> bool:
        """Whether this record is dropped (and counted): the UI is too far behind."""
        if self.upstream.backlog() > BACKLOG_BYTES:
            self.dropped += 1
            return True
        return False

    def event(self, kind: str, message: str) -> None:
        """The runtime's ``on_event``: a reload sends the new snapshot first, so that
        the UI reads the new profile when it handles the notice."""
        if kind == "reloaded":
            self.items.append(("s", self.snapshot()))
        self.items.append(("e", (kind, message)))
        self._due()

    def put(self, kind: str, value: Any) -> None:
        self.items.append((kind, value))
        self._due()

    def _due(self) -> None:
        if len(self.items) >= FLUSH_RECORDS:
            self.flush()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self.dropped:
            self.items.append(("d", self.dropped))
            self.dropped = 0
        items, self.items = self.items, []
        if items:
            self.upstream.send(("batch", items))


def _build(spec: RuntimeSpec) -> Served:
    from rrdev.tui.runtime import AliasRuntime, DemoRuntime, ProfileRuntime

    runtime: Served
    if spec.kind == "demo":
        runtime = DemoRuntime(
            host=spec.host or "127.0.0.1",
            proxy_port=8787 if spec.port is None else spec.port,
            issuer_port=spec.issuer_port,
            backend_port=spec.backend_port,
            home=None if spec.home is None else _path(spec.home),
        )
    elif spec.kind == "aliases":
        runtime = AliasRuntime(
            list(spec.paths),
            overrides=spec.overrides,
            host=spec.host,
            port=spec.port,
            reload_interval=spec.reload_interval,
        )
    else:
        runtime = ProfileRuntime.from_path(
            spec.paths[0],
            overrides=spec.overrides,
            host=spec.host,
            port=spec.port,
            reload_interval=spec.reload_interval,
        )
    runtime.thread_factory = InlineLoop
    return runtime


def _path(text: str) -> Any:
    from pathlib import Path

    return Path(text)


def snapshot_of(runtime: Served) -> Snapshot:
    return Snapshot(
        info=runtime.info(),
        jwks=runtime.jwks_status(),
        profile=runtime.profile(),
        demo_requests=tuple(runtime.demo_requests()),
    )


async def _answer(
    runtime: Served, upstream: Upstream, call_id: int, name: str, args: tuple[Any, ...]
) -> None:
    try:
        if name not in CALLS:
            raise RrdevError(f"the proxy process has no call {name!r}")
        value = await getattr(runtime, name)(*args)
    except Exception as exc:
        reply: tuple[Any, ...] = (call_id, False, encode_error(exc))
    else:
        reply = (call_id, True, value)
    upstream.send(("reply", reply))


async def _report_status(runtime: Served, outbox: Outbox) -> None:
    while True:
        await asyncio.sleep(STATUS_SECONDS)
        outbox.put("j", runtime.jwks_status())


async def _serve_calls(runtime: Served, reader: asyncio.StreamReader, upstream: Upstream) -> None:
    """Answer the UI's calls until it says "stop" or goes away (end of file)."""
    tasks: set[asyncio.Task[None]] = set()
    while True:
        try:
            kind, payload = await read_frame(reader)
        except EOFError:
            return
        if kind == "stop":
            return
        if kind == "call":
            task = asyncio.create_task(_answer(runtime, upstream, *payload))
            tasks.add(task)
            task.add_done_callback(tasks.discard)


async def _start(spec: RuntimeSpec, upstream: Upstream) -> tuple[Served, Outbox] | int:
    """The runtime, listening, with "ready" sent; or the exit code after "failed"."""
    runtime: Served | None = None
    try:
        runtime = _build(spec)
        outbox = Outbox(upstream, lambda: snapshot_of(runtime))  # type: ignore[arg-type]
        await runtime.start(outbox, resettling(outbox.event))
    except Exception as exc:
        if runtime is not None:
            with contextlib.suppress(Exception):
                await runtime.stop()
        upstream.send(("failed", encode_error(exc)))
        await upstream.writer.drain()
        return exc.exit_code if isinstance(exc, RrdevError) else 1
    settle_heap()  # the proxy's long-lived state stays out of the collector's scans
    upstream.send(("ready", snapshot_of(runtime)))
    return runtime, outbox


async def _child(fd: int) -> int:
    sock = socket.socket(fileno=fd)
    reader, writer = await asyncio.open_unix_connection(sock=sock)
    try:
        _kind, spec = await read_frame(reader)
    except EOFError:
        return 0
    upstream = Upstream(writer)
    started = await _start(spec, upstream)
    if isinstance(started, int):
        writer.close()
        return started
    runtime, outbox = started
    status = asyncio.create_task(_report_status(runtime, outbox))
    try:
        await _serve_calls(runtime, reader, upstream)
    finally:
        status.cancel()
        await runtime.stop()
        outbox.flush()  # the last records, when the UI still reads (a "stop", not EOF)
        with contextlib.suppress(ConnectionError):
            await writer.drain()
        writer.close()
    return 0


def main(argv: list[str]) -> int:
    """Serve the spec that arrives on the socket ``argv[0]`` (an inherited fd)."""
    factory = None
    with contextlib.suppress(ImportError):
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        try:
            return runner.run(_child(int(argv[0])))
        except KeyboardInterrupt:
            return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
