"""``rrdev up --demo``: the offline demo in the foreground, with a banner to follow.

The front end around ``rrdev.demo.start_demo``: start the issuer, the echo backend and
the proxy, print where each listens and four ready-to-paste requests (their curl
lines are printed unwrapped, so a token is always one line), then one line per request
until Ctrl+C (which drains in-flight requests and exits 0). A port in use is a one-line
error and exit 3.

``run_loop`` and ``install_stop_handlers`` are shared with ``rrdev issuer serve``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import sys
from collections.abc import Callable, Coroutine
from typing import IO, TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from rrdev.errors import RrdevError

if TYPE_CHECKING:
    from rrdev.demo import DemoHandle
    from rrdev.records import RequestRecord

__all__ = ["banner_text", "install_stop_handlers", "print_error", "run_demo", "run_loop"]


def run_demo(
    *,
    proxy_port: int = 8787,
    issuer_port: int = 8788,
    backend_port: int = 8789,
    quiet: bool = False,
    log_file: str | None = None,
    console: Console | None = None,
) -> int:
    """Run the demo until interrupted; returns the exit code (0 after Ctrl+C, 3 for a
    port in use or a corrupt keyset)."""
    out = console or Console(highlight=False, soft_wrap=True)
    err = console or Console(stderr=True, highlight=False, soft_wrap=True)
    output: _Output | None = None
    try:
        output = _Output(out, err, _open_log(log_file), quiet)
        return run_loop(_serve(output, proxy_port, issuer_port, backend_port))
    except RrdevError as exc:
        print_error(err, exc)
        return exc.exit_code
    except KeyboardInterrupt:
        return 0
    finally:
        if output is not None:
            output.close()


async def _serve(output: _Output, proxy_port: int, issuer_port: int, backend_port: int) -> int:
    from rrdev.demo import start_demo

    handle = await start_demo(
        proxy_port=proxy_port,
        issuer_port=issuer_port,
        backend_port=backend_port,
        sink=output.record,
        on_event=output.event,
    )
    try:
        output.write(banner_text(handle))
        output.ready = True
        stop_notice = "stopping: finishing requests in flight (Ctrl+C again to quit now)"
        handled = install_stop_handlers(
            handle.request_stop, lambda: handle.stopping, lambda: output.note(stop_notice)
        )
        try:
            await handle.wait()
        finally:
            loop = asyncio.get_running_loop()
            for sig in handled:
                loop.remove_signal_handler(sig)
    finally:
        await handle.stop(force=True)
    return 0


# ------------------------------------------------------------------ the banner


def banner_text(handle: DemoHandle) -> str:
    """The banner as plain text: printed as is, so nothing (a token) is ever wrapped."""
    from rrdev.demo import ADMIN_CLIENT, demo_requests

    admin = handle.issuer_app.clients[ADMIN_CLIENT]
    lines = [
        "rrdev demo: a JWT-verifying proxy, a local Auth0-style issuer and a backend, "
        "all on this machine, no account needed.",
        "",
        f"  proxy     {handle.proxy_url}    (profile {handle.profile.path})",
        f"  issuer    {handle.issuer_url}    (iss {handle.issuer}; discovery "
        f"{handle.discovery_url})",
        f"  backend   {handle.backend_url}    (an echo server)",
        f"  audience  {handle.audience}",
        "",
        "Try these four requests:",
    ]
    for number, request in enumerate(demo_requests(handle), 1):
        expected = f"{request.expected_status} {request.expected_reason}"
        if request.expected_rule and request.expected_status != 200:
            expected += f" ({request.expected_rule})"
        lines += [
            "",
            f"{number}. {request.title}  ->  expect {expected}",
            f"   {request.curl}",
        ]
    lines += [
        "",
        f"Get a token of your own ({ADMIN_CLIENT} may also delete; these demo secrets are public):",
        "",
        f"   curl -s {handle.token_url} -d grant_type=client_credentials "
        f"-d client_id={admin.client_id} -d client_secret={admin.secret} "
        f"-d audience={handle.audience}",
        "",
        "Ctrl+C to stop. One line per request follows.",
        "",
    ]
    return "\n".join(lines)


# ------------------------------------------------------------------ shared plumbing


def run_loop(main: Coroutine[Any, Any, int]) -> int:
    """Run ``main`` to completion on uvloop when available (uvicorn[standard] has it)."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    with contextlib.suppress(ImportError):
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)


def install_stop_handlers(
    request_stop: Callable[..., None],
    stopping: Callable[[], bool],
    notify: Callable[[], None],
) -> list[int]:
    """Ctrl+C (or SIGTERM) once: ``notify()`` and stop gracefully; twice: force.
    Returns the signals handled (remove them with ``loop.remove_signal_handler``)."""
    loop = asyncio.get_running_loop()

    def stop() -> None:
        if stopping():
            request_stop(force=True)
            return
        notify()
        request_stop()

    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / Windows
            continue
        handled.append(sig)
    return handled


def print_error(err: Console, exc: RrdevError) -> None:
    """One line, ``error: message (hint)``; a multi-line hint (an example) follows it."""
    line = Text.assemble(("error: ", "bold red"), exc.message)
    if exc.hint and "\n" not in exc.hint:
        line.append(f" ({exc.hint})", style="cyan")
    err.print(line)
    if exc.hint and "\n" in exc.hint:
        err.print(Text.assemble(("hint: ", "cyan"), exc.hint))


def _open_log(path: str | None) -> IO[str] | None:
    if not path:
        return None
    try:
        return open(path, "a", buffering=1, encoding="utf-8")
    except OSError as exc:
        raise RrdevError(f"cannot open log file {path}: {exc.strerror}") from None


class _Output:
    """Where the banner, records and notices go: the console and the JSONL log."""

    def __init__(self, out: Console, err: Console, log: IO[str] | None, quiet: bool) -> None:
        self.out = out
        self.err = err
        self.log = log
        self.quiet = quiet
        #: the token fetches behind the banner are not news: show issuer events after it
        self.ready = False

    def write(self, text: str) -> None:
        # Plain text on purpose: rich would wrap a long token at the terminal's width.
        self.out.file.write(text + "\n")
        self.out.file.flush()

    def note(self, message: str) -> None:
        self.out.print(Text(message, style="dim"))

    def record(self, record: RequestRecord) -> None:
        if self.log is not None:
            self.log.write(json.dumps(record.to_dict(), default=str) + "\n")
        if not self.quiet:
            from rrdev.render import request_line

            self.out.print(request_line(record))

    def event(self, kind: str, message: str) -> None:
        if kind in ("token_issued", "keyset_reloaded", "reloaded"):
            if not self.quiet and self.ready:
                label = kind.replace("_", " ")
                self.out.print(Text.assemble((f"{label}: ", "bold green"), message))
        elif kind == "token_refused":
            if not self.quiet and self.ready:
                self.out.print(Text.assemble(("token refused: ", "bold yellow"), message))
        else:
            self.err.print(Text.assemble((f"{kind.replace('_', ' ')}: ", "bold red"), message))

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None
        with contextlib.suppress(Exception):
            sys.stdout.flush()
