"""``rrdev up a.toml b.toml``: several profiles on one port, each at ``{alias}.localhost``.

The profiles are loaded and their aliases checked (``rrdev.core.aliases``) before
anything listens; an ``AliasDispatcher`` serves them on the first profile's
``proxy.listen`` (or ``--host``/``--port``), and the banner lists where each one answers.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from rrdev.cli.console import Output
from rrdev.core.aliases import LOCAL_SUFFIX, ServedAlias

__all__ = ["start_aliases"]

#: ``rrdev.cli.up._serve``: (app, host, port, output, banner) -> exit code.
Serve = Callable[..., Coroutine[Any, Any, int]]


def start_aliases(
    output: Output,
    paths: Sequence[str],
    host: str | None,
    port: int | None,
    overrides: Any,
    serve: Serve,
) -> Coroutine[Any, Any, int]:
    """Load every profile and build the dispatcher (errors surface before anything
    listens: a broken profile, an alias that is not a host label, a shared alias)."""
    from rrdev.core.aliases import served_aliases
    from rrdev.core.profile import load_profile
    from rrdev.servers.heap import resettling
    from rrdev.servers.proxy import AliasDispatcher

    served = served_aliases([load_profile(Path(p)) for p in paths])
    app = AliasDispatcher(
        served, overrides=overrides, sink=output.record, on_event=resettling(output.event)
    )
    first = served[0].profile.proxy
    listen_host = host or first.listen_host
    listen_port = first.listen_port if port is None else port

    def banner(server: Any) -> None:
        _banner(output.out, app, server, ignored=_ignored_listens(served, host, port))

    return serve(app, listen_host, listen_port, output, banner)


def _banner(out: Console, app: Any, server: Any, *, ignored: list[str]) -> None:
    from rrdev.cli.up import _exposed_warnings
    from rrdev.servers.runner import is_loopback

    title = Text("rrdev up  ", style="bold")
    title.append(f"{len(app.apps)} proxies on one port", style="bold cyan")
    out.print(title)
    out.print(Text.assemble(("  listening  ", "dim"), server.url))
    warnings: list[str] = []
    if not is_loopback(server.host):
        allowed = tuple(h for a in app.apps.values() for h in a.profile.proxy.allowed_hosts)
        warnings += _exposed_warnings(server.host, allowed)
    width = max(11, *(len(e.alias) + 2 for e in app.served))
    for entry in app.served:
        info = app.apps[entry.alias].info()
        _profile_rows(out, entry, info, server.port, width)
        warnings += [f"{entry.alias}: {w}" for w in info.warnings]
    notes = [
        f"{e.alias}: no proxy.alias, served at the slug of proxy.name (set proxy.alias to choose)"
        for e in app.served
        if e.from_name
    ] + ignored
    for warning in warnings:
        out.print(Text.assemble(("  warning: ", "bold yellow"), warning))
    for note in notes:
        out.print(Text.assemble(("  note: ", "bold"), note))
    out.print(
        Text(
            "  Other hosts (localhost, 127.0.0.1, unknown aliases) answer 421 alias_unknown.\n"
            "  Ctrl+C to stop. Profile edits apply to the next request.",
            style="dim",
        )
    )


def _profile_rows(out: Console, entry: ServedAlias, info: Any, port: int, width: int) -> None:
    """Where one profile answers, what it forwards to and how callers authenticate."""
    url = f"http://{entry.alias}{LOCAL_SUFFIX}:{port}/"
    head = Text.assemble((f"  {entry.alias:<{width}}", "bold magenta"), url)
    head.append(f"  ({info.profile_path})", style="dim")
    out.print(head)
    from rrdev.cli.up import auth_rows

    target = info.target + ("  (--target)" if info.target_overridden else "")
    for label, value in (("target", target), *auth_rows(info, entry.profile)):
        out.print(Text.assemble((f"    {label:<11}", "dim"), value))


def _ignored_listens(
    served: Sequence[ServedAlias], host: str | None, port: int | None
) -> list[str]:
    """Every profile after the first whose own ``proxy.listen`` is not where it is served."""
    first = served[0].profile.proxy
    where = (host or first.listen_host, first.listen_port if port is None else port)
    notes = []
    for entry in served[1:]:
        proxy = entry.profile.proxy
        own = (host or proxy.listen_host, proxy.listen_port if port is None else port)
        if own != where:
            notes.append(
                f"{entry.alias}: proxy.listen {proxy.listen_host}:{proxy.listen_port} is not "
                "used: every profile is served on the first one's listen (or --host/--port)"
            )
    return notes
