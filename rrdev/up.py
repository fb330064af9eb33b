"""``rrdev up``: the proxy in the foreground, one line per request.

The front end around ``rrdev.proxy.ProxyApp`` and ``rrdev.server.ProxyServer``: load the
profile, print a banner, serve until Ctrl+C (which drains in-flight requests, then
exits 0), print a ``request_line`` per request and append one JSON object per request
to ``--log-file``. Everything printed comes from already-redacted records.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
from collections.abc import Callable
from typing import IO, Any

from rich.console import Console
from rich.text import Text

from rrdev.errors import RrdevError
from rrdev.records import RequestRecord

__all__ = ["run_up"]


def run_up(
    profile_path: str | None,
    *,
    host: str | None = None,
    port: int | None = None,
    target: str | None = None,
    jwks: str | None = None,
    offline: bool = False,
    log_file: str | None = None,
    quiet: bool = False,
    console: Console | None = None,
) -> int:
    """Run the profile's proxy until interrupted; returns the exit code.

    ``host``/``port`` override the profile's ``proxy.listen`` (port 0 picks a free
    one); ``target``, ``jwks`` and ``offline`` are the shared overrides (DESIGN.md §4).
    ``quiet`` drops the per-request lines (the log file still gets every record).
    Exit codes: 0 after Ctrl+C, 3 for a profile error or a port in use, 2 for bad
    options.
    """
    out = console or Console(highlight=False)
    err = console or Console(stderr=True, highlight=False)
    output: _Output | None = None
    try:
        from rrdev.profile import discover_profile, load_profile
        from rrdev.proxy import Overrides, ProxyApp

        profile = load_profile(discover_profile(profile_path))
        output = _Output(out, err, _open_log(log_file), quiet)
        app = ProxyApp(
            profile,
            overrides=Overrides(target=target, jwks=jwks, offline=offline),
            sink=output.record,
            on_event=output.event,
        )
        listen_host = host or profile.proxy.listen_host
        listen_port = profile.proxy.listen_port if port is None else port
        return _run(_serve(app, listen_host, listen_port, output))
    except RrdevError as exc:
        _print_error(err, exc)
        return exc.exit_code
    except KeyboardInterrupt:
        return 0
    finally:
        if output is not None:
            output.close()


def _run(main: Any) -> int:
    """Run ``main`` on uvloop when available (it is part of uvicorn[standard])."""
    factory: Callable[[], asyncio.AbstractEventLoop] | None = None
    with contextlib.suppress(ImportError):
        import uvloop

        factory = uvloop.new_event_loop
    with asyncio.Runner(loop_factory=factory) as runner:
        result: int = runner.run(main)
    return result


async def _serve(app: Any, host: str, port: int, output: _Output) -> int:
    from rrdev.server import ProxyServer

    server = ProxyServer(app, host, port)
    try:
        await server.start()
    except RrdevError:
        await app.aclose()
        raise
    _banner(output.out, app.info(), server)
    handled = _install_signal_handlers(server, output)
    try:
        await server.wait()
    finally:
        loop = asyncio.get_running_loop()
        for sig in handled:
            loop.remove_signal_handler(sig)
        await server.stop(force=True)  # already stopped: only makes sure all is closed
    return 0


def _install_signal_handlers(server: Any, output: _Output) -> list[int]:
    """Ctrl+C (or SIGTERM) once: drain in-flight requests and exit; twice: now."""
    loop = asyncio.get_running_loop()

    def stop() -> None:
        if server.stopping:
            server.request_stop(force=True)
            return
        output.out.print(
            Text("stopping: finishing requests in flight (Ctrl+C again to quit now)", "dim")
        )
        server.request_stop()

    handled = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stop)
        except (NotImplementedError, RuntimeError, ValueError):  # not the main thread / Windows
            continue
        handled.append(sig)
    return handled


def _banner(out: Console, info: Any, server: Any) -> None:
    from rrdev.server import is_loopback

    title = Text("rrdev up  ", style="bold")
    title.append(info.profile_name, style="bold cyan")
    title.append(f"  ({info.profile_path})", style="dim")
    out.print(title)
    rows = [
        ("listening", server.url),
        ("target", info.target + ("  (--target)" if info.target_overridden else "")),
        ("JWKS", info.jwks or "none (proxy_credential auth_type = 'none')"),
        ("credential", info.credential),
    ]
    for label, value in rows:
        out.print(Text.assemble((f"  {label:<11}", "dim"), value))
    warnings = list(info.warnings)
    if not is_loopback(server.host):
        warnings.insert(
            0,
            f"listening on {server.host}, not loopback: other machines can reach this proxy "
            "and, through it, the backend with its credential",
        )
    for warning in warnings:
        out.print(Text.assemble(("  warning: ", "bold yellow"), warning))
    out.print(Text("  Ctrl+C to stop. Profile edits apply to the next request.", style="dim"))


def _open_log(path: str | None) -> IO[str] | None:
    if not path:
        return None
    try:
        return open(path, "a", buffering=1, encoding="utf-8")
    except OSError as exc:
        raise RrdevError(f"cannot open log file {path}: {exc.strerror}") from None


def _print_error(err: Console, exc: RrdevError) -> None:
    line = Text.assemble(("error: ", "bold red"), exc.message)
    if exc.hint:
        line.append(f" ({exc.hint})", style="cyan")
    err.print(line)


class _Output:
    """Where records and notices go: the console (unless quiet) and the JSONL log."""

    def __init__(self, out: Console, err: Console, log: IO[str] | None, quiet: bool) -> None:
        self.out = out
        self.err = err
        self.log = log
        self.quiet = quiet

    def record(self, record: RequestRecord) -> None:
        if self.log is not None:
            self.log.write(json.dumps(record.to_dict(), default=str) + "\n")
        if not self.quiet:
            from rrdev.render import request_line

            self.out.print(request_line(record))

    def event(self, kind: str, message: str) -> None:
        if kind == "reloaded":
            self.out.print(Text.assemble(("reloaded: ", "bold green"), message))
        else:
            self.err.print(Text.assemble((f"{kind.replace('_', ' ')}: ", "bold red"), message))

    def close(self) -> None:
        if self.log is not None:
            self.log.close()
            self.log = None
