"""``rrdev up``: the proxy in the foreground, one line per request.

The front end around ``rrdev.servers.proxy.ProxyApp`` and
``rrdev.servers.runner.ProxyServer``: load the profile, print a banner, serve until
Ctrl+C (which drains in-flight requests, then exits 0), print a ``request_line`` per
request and append one JSON object per request to ``--log-file``. Everything printed
comes from already-redacted records.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine, Sequence
from typing import Any

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

__all__ = ["run_up"]


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
    console: Console | None = None,
) -> int:
    """Run the profile's proxy until interrupted; returns the exit code.

    ``host``/``port`` override the profile's ``proxy.listen`` (port 0 picks a free
    one); ``target``, ``jwks`` and ``offline`` are the shared overrides (DESIGN.md §4).
    ``quiet`` drops the per-request lines (the log file still gets every record).
    Several profiles (a sequence of paths) share one port, each at
    ``{alias}.localhost`` (``rrdev.cli.up_aliases``). Exit codes: 0 after Ctrl+C, 3 for
    a profile error or a port in use, 2 for bad options.
    """
    out = console or make_console()
    err = console or make_console(stderr=True)
    return run_foreground(
        out,
        err,
        lambda output: _start(output, profile_path, host, port, target, jwks, offline),
        log_file=log_file,
        quiet=quiet,
    )


def _start(
    output: Output,
    profile_path: str | Sequence[str] | None,
    host: str | None,
    port: int | None,
    target: str | None,
    jwks: str | None,
    offline: bool,
) -> Coroutine[Any, Any, int]:
    """Load the profile and build the app (errors surface before anything listens)."""
    from rrdev.cli.options import load
    from rrdev.servers.proxy import Overrides, ProxyApp

    if profile_path is not None and not isinstance(profile_path, str):
        from rrdev.cli.up_aliases import start_aliases

        overrides = Overrides(target=target, jwks=jwks, offline=offline)
        return start_aliases(output, profile_path, host, port, overrides, _serve)
    profile = load(profile_path, positional=True)
    app = ProxyApp(
        profile,
        overrides=Overrides(target=target, jwks=jwks, offline=offline),
        sink=output.record,
        on_event=output.event,
    )
    listen_host = host or profile.proxy.listen_host
    listen_port = profile.proxy.listen_port if port is None else port
    return _serve(app, listen_host, listen_port, output)


async def _serve(
    app: Any, host: str, port: int, output: Output, banner: Callable[[Any], None] | None = None
) -> int:
    """Serve ``app`` until stopped; ``banner(server)`` replaces the one-profile banner."""
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
        _banner(output.out, app.info(), server, app.profile.proxy.allowed_hosts)
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


def _banner(out: Console, info: Any, server: Any, allowed_hosts: tuple[str, ...] = ()) -> None:
    from rrdev.servers.runner import is_loopback

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
        warnings[:0] = _exposed_warnings(server.host, allowed_hosts)
    for warning in warnings:
        out.print(Text.assemble(("  warning: ", "bold yellow"), warning))
    out.print(Text("  Ctrl+C to stop. Profile edits apply to the next request.", style="dim"))


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
