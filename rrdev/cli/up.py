"""``rrdev up``: the proxy in the foreground, one line per request.

The front end around ``rrdev.servers.proxy.ProxyApp`` and
``rrdev.servers.runner.ProxyServer``: load the profile, print a banner, serve until
Ctrl+C (which drains in-flight requests, then exits 0), print a ``request_line`` per
request and append one JSON object per request to ``--log-file``. Everything printed
comes from already-redacted records.

``--workers N`` (N > 1) serves the port from N processes (``rrdev.servers.workers``):
this process binds the socket, starts the workers, prints the banner and everything
they report (``rrdev.cli.up_workers``), and relays Ctrl+C to them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

from rrdev.cli.console import (
    STOP_NOTICE,
    Output,
    install_stop_handlers,
    make_console,
    run_foreground,
)
from rrdev.core.errors import RrdevError

if TYPE_CHECKING:
    from rrdev.core.model import Profile
    from rrdev.servers.proxy import Overrides

__all__ = ["run_up"]

#: The listen queue of a socket the workers share (uvicorn's default).
LISTEN_BACKLOG = 2048


def run_up(
    profile_path: str | Sequence[str] | None,
    *,
    host: str | None = None,
    port: int | None = None,
    target: str | None = None,
    jwks: str | None = None,
    offline: bool = False,
    log_file: str | None = None,
    quiet: bool = False,
    workers: int = 1,
    console: Console | None = None,
) -> int:
    """Run the profile's proxy until interrupted; returns the exit code.

    ``host``/``port`` override the profile's ``proxy.listen`` (port 0 picks a free
    one); ``target``, ``jwks`` and ``offline`` are the shared overrides (DESIGN.md §4).
    ``quiet`` drops the per-request lines (the log file still gets every record).
    ``workers`` processes serve the port (1: this one). Several profiles (a sequence of
    paths) share one port, each at ``{alias}.localhost`` (``rrdev.cli.up_aliases``).
    Exit codes: 0 after Ctrl+C, 3 for a profile error or a port in use, 2 for bad
    options, 1 when a worker died.
    """
    from rrdev.servers.proxy import Overrides

    out = console or make_console()
    err = console or make_console(stderr=True)
    overrides = Overrides(target=target, jwks=jwks, offline=offline)
    return run_foreground(
        out,
        err,
        lambda output: _start(output, profile_path, host, port, overrides, workers),
        log_file=log_file,
        quiet=quiet,
    )


def _start(
    output: Output,
    profile_path: str | Sequence[str] | None,
    host: str | None,
    port: int | None,
    overrides: Overrides,
    workers: int,
) -> Coroutine[Any, Any, int]:
    """Load the profile and build the app (errors surface before anything listens)."""
    from rrdev.cli.options import discover
    from rrdev.core.profile import load_profile
    from rrdev.servers.heap import resettling
    from rrdev.servers.proxy import ProxyApp

    if profile_path is not None and not isinstance(profile_path, str):
        from rrdev.cli.up_aliases import start_aliases

        return start_aliases(output, profile_path, host, port, overrides, _serve)
    path = discover(profile_path, positional=True)
    profile = load_profile(path)
    app = ProxyApp(
        profile,
        overrides=overrides,
        sink=output.record if output.reads_records else None,
        on_event=resettling(output.event),
    )
    listen_host = host or profile.proxy.listen_host
    listen_port = profile.proxy.listen_port if port is None else port
    if workers > 1:
        from rrdev.servers.workers import WorkerConfig

        config = WorkerConfig(
            profile_path=str(path),
            host=listen_host,
            port=listen_port,
            target=overrides.target,
            jwks=overrides.jwks,
            offline=overrides.offline,
            log=output.log is not None,
            lines=not output.quiet,
        )
        return _serve_workers(app, config, workers, output)
    return _serve(app, listen_host, listen_port, output)


async def _serve(
    app: Any, host: str, port: int, output: Output, banner: Callable[[Any], None] | None = None
) -> int:
    """Serve ``app`` until stopped; ``banner(server)`` replaces the one-profile banner."""
    from rrdev.servers.heap import settle_heap
    from rrdev.servers.runner import ProxyServer

    server = ProxyServer(app, host, port)
    try:
        await server.start()
    except RrdevError:
        await app.aclose()
        raise
    if banner is not None:
        banner(server)
    else:
        _banner(output.out, app.info(), server, app.profile)
    settle_heap()  # the long-lived state out of the collector's scans (servers/heap.py)
    handled = install_stop_handlers(
        server.request_stop, lambda: server.stopping, lambda: output.note(STOP_NOTICE)
    )
    try:
        await server.wait()
    finally:
        loop = asyncio.get_running_loop()
        for sig in handled:
            loop.remove_signal_handler(sig)
        await server.stop(force=True)  # already stopped: only makes sure all is closed
    return 0


async def _serve_workers(app: Any, config: Any, count: int, output: Output) -> int:
    """Bind once, start ``count`` workers on that socket, relay what they report; the
    app built here only checked the profile and fills the banner."""
    from rrdev.cli.up_workers import WorkerRelay
    from rrdev.servers.runner import bind_socket
    from rrdev.servers.workers import WorkerDied, WorkerPool

    info, profile = app.info(), app.profile
    try:
        sock = bind_socket(config.host, config.port)
    finally:
        await app.aclose()
    sock.listen(LISTEN_BACKLOG)  # connections wait in the queue while workers start
    relay = WorkerRelay(output)
    pool = WorkerPool(sock, count, config, relay)
    try:
        try:
            await pool.start()
        except BaseException:
            relay.release()  # what workers said before failing is not lost
            raise
        _banner(output.out, info, pool, profile, workers=pool.pids)
        relay.release()
        handled = install_stop_handlers(
            pool.request_stop, lambda: pool.stopping, lambda: output.note(STOP_NOTICE)
        )
        try:
            died = await pool.wait()
        finally:
            loop = asyncio.get_running_loop()
            for sig in handled:
                loop.remove_signal_handler(sig)
    finally:
        await pool.close()
    if died is not None:
        raise WorkerDied(
            f"{died.describe()}; the other workers were stopped",
            "a worker should never die: see its messages above, and rerun `rrdev up`",
        )
    return 0


def _banner(
    out: Console,
    info: Any,
    server: Any,
    profile: Profile,
    *,
    workers: list[int] | None = None,
) -> None:
    from rrdev.servers.runner import is_loopback

    title = Text("rrdev up  ", style="bold")
    title.append(info.profile_name, style="bold cyan")
    title.append(f"  ({info.profile_path})", style="dim")
    out.print(title)
    rows = [
        ("listening", server.url),
        ("target", info.target + ("  (--target)" if info.target_overridden else "")),
        *auth_rows(info, profile),
    ]
    if workers:
        pids = ", ".join(str(pid) for pid in workers)
        rows.insert(1, ("workers", f"{len(workers)} processes share the port (pids {pids})"))
    for label, value in rows:
        out.print(Text.assemble((f"  {label:<11}", "dim"), value))
    warnings = list(info.warnings)
    if not is_loopback(server.host):
        warnings[:0] = _exposed_warnings(server.host, profile.proxy.allowed_hosts)
    for warning in warnings:
        out.print(Text.assemble(("  warning: ", "bold yellow"), warning))
    out.print(Text("  Ctrl+C to stop. Profile edits apply to the next request.", style="dim"))


def auth_rows(info: Any, profile: Profile) -> list[tuple[str, str]]:
    """The banner's rows on authentication, both sides: how callers authenticate (and
    the JWKS their tokens verify against), and what the backend receives."""
    from rrdev.core.auth_summary import backend_auth, caller_auth

    rows = [("callers", caller_auth(profile.proxy_credential))]
    if profile.proxy_credential.auth_type == "jwtVerify" and info.jwks:
        rows.append(("JWKS", info.jwks))  # the other kinds verify no JWT
    rows.append(("backend", backend_auth(profile)))
    return rows


def _exposed_warnings(host: str, allowed_hosts: tuple[str, ...]) -> list[str]:
    """What a listener other machines can reach means, and what its Host check does."""
    found = [
        f"listening on {host}, not loopback: other machines can reach this proxy "
        "and, through it, the backend with its credential"
    ]
    if not allowed_hosts:
        found.append(
            "proxy.allowed_hosts is empty: only requests whose Host is localhost, 127.0.0.1 "
            "or [::1] are served; other machines get 421 host_not_allowed until the names "
            "or addresses they use are listed in proxy.allowed_hosts"
        )
    return found
