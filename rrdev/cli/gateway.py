"""``rrdev up`` and ``rrdev tui``: the gateway in the foreground, plain or in the inspector.

The commands check their options here and hand over to ``rrdev.cli.up`` (``up``),
``rrdev.cli.demo`` (``up --demo``) or ``rrdev.tui`` (``tui``, ``up --tui``), each
imported only when it runs: uvicorn and Textual load with them, never for ``--help``.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from rrdev.cli.common import fail, friendly
from rrdev.cli.options import (
    HostOpt,
    JwksOpt,
    OfflineOpt,
    ProfileOpt,
    ProfilesArg,
    TargetOpt,
)

__all__ = ["tui", "up"]

#: ``up --demo``'s issuer and backend ports (``tui --demo`` picks free ones).
_UP_ISSUER_PORT, _UP_BACKEND_PORT = 8788, 8789


@friendly
def up(
    profile_arg: ProfilesArg = None,
    profile: ProfileOpt = None,
    demo: Annotated[
        bool,
        typer.Option("--demo", help="Run the embedded offline demo: issuer, echo backend, proxy."),
    ] = False,
    host: HostOpt = None,
    port: Annotated[
        int | None, typer.Option("--port", help="Listen port (default: profile's).")
    ] = None,
    target: TargetOpt = None,
    jwks: JwksOpt = None,
    offline: OfflineOpt = False,
    log_file: Annotated[
        str | None,
        typer.Option("--log-file", metavar="FILE", help="Append one JSON object per request."),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No line per request.")] = False,
    issuer_port: Annotated[
        int | None,
        typer.Option("--issuer-port", help="With --demo: the local issuer's port (default 8788)."),
    ] = None,
    backend_port: Annotated[
        int | None,
        typer.Option("--backend-port", help="With --demo: the echo backend's port (default 8789)."),
    ] = None,
    tui: Annotated[
        bool, typer.Option("--tui", help="Watch the traffic in the interactive inspector.")
    ] = False,
    workers: Annotated[
        int, typer.Option("--workers", help="Processes sharing the port (default 1).")
    ] = 1,
) -> None:
    """Run the profile's gateway in front of your backend, explaining every refusal.

    Each request prints one line; 401 and 403 lines say why. Editing the profile takes
    effect on the next request (a broken edit keeps the last good one). Ctrl+C drains
    in-flight requests and exits 0; a port in use exits 3. --tui shows the traffic in
    the inspector instead (as `rrdev tui`). --workers N serves the port from N
    processes (one console and log file for all). Several profiles share one port, each
    served at http://{alias}.localhost:PORT/ (the first profile's listen, or --port).

    Example: rrdev up profiles/auth0.toml --target http://127.0.0.1:9000 --offline
    """
    _check_workers(workers, demo=demo, tui=tui)
    _check_demo_options(
        demo,
        host=host,
        target=target,
        jwks=jwks,
        offline=offline,
        ports=(issuer_port, backend_port),
    )
    profiles = _up_profiles(profile_arg, profile)
    profile_path = profiles[0] if profiles else None
    if workers > 1 and len(profiles) > 1:
        raise fail(
            "--workers cannot serve several profiles yet",
            "run one `rrdev up PROFILE --workers N` per profile, or drop --workers",
        )
    if tui:
        if log_file:
            raise fail("--log-file cannot be combined with --tui", "drop one of them")
        raise typer.Exit(
            _run_tui(
                profiles if len(profiles) > 1 else profile_path,
                demo=demo,
                host=host,
                port=port,
                target=target,
                jwks=jwks,
                offline=offline,
                issuer_port=_UP_ISSUER_PORT if issuer_port is None else issuer_port,
                backend_port=_UP_BACKEND_PORT if backend_port is None else backend_port,
            )
        )
    if demo:
        if profiles:
            raise fail("--demo runs its own embedded profile: drop the PROFILE argument")
        raise typer.Exit(
            _run_demo(
                host=host,
                port=port,
                issuer_port=_UP_ISSUER_PORT if issuer_port is None else issuer_port,
                backend_port=_UP_BACKEND_PORT if backend_port is None else backend_port,
                quiet=quiet,
                log_file=log_file,
            )
        )
    from rrdev.cli.up import run_up

    code = run_up(
        profiles if len(profiles) > 1 else profile_path,
        host=host,
        port=port,
        target=target,
        jwks=jwks,
        offline=offline,
        log_file=log_file,
        quiet=quiet,
        workers=workers,
    )
    raise typer.Exit(code)


def _up_profiles(arguments: list[str] | None, option: str | None) -> list[str]:
    """``up``'s profiles: the arguments (several share one port), or the one of -p."""
    names = list(dict.fromkeys(arguments or ()))  # the same file twice is served once
    if len(names) > 1 and option:
        raise fail(
            f"{len(names)} profiles given as arguments and -p {option}",
            "name the profiles as arguments only",
        )
    one = _one_profile(names[0] if names else None, option)
    return names if len(names) > 1 else [one] if one else []


def _one_profile(argument: str | None, option: str | None) -> str | None:
    """The profile named as the argument or with -p; naming two different ones is an error."""
    if argument and option and argument != option:
        raise fail(
            f"two profiles given: {argument} and -p {option}",
            "name one, as the argument or with -p/--profile",
        )
    return argument or option


def _check_workers(workers: int, *, demo: bool, tui: bool) -> None:
    """--workers: at least 1, at most MAX_WORKERS, and only for a profile's proxy."""
    from rrdev.servers.workers import MAX_WORKERS

    if workers < 1:
        raise fail(f"--workers must be at least 1 (got {workers})", "1 serves from this process")
    if workers > MAX_WORKERS:
        raise fail(
            f"--workers {workers} is more than {MAX_WORKERS}",
            "one or two per CPU core is plenty",
        )
    if workers > 1 and sys.platform == "win32":
        raise fail("--workers needs Linux or macOS", "drop --workers on Windows")
    if workers > 1 and tui:
        raise fail(
            "--workers cannot be combined with --tui",
            "the inspector runs one proxy; drop --workers, or run `rrdev up --workers N` alone",
        )
    if workers > 1 and demo:
        raise fail(
            "--workers cannot be combined with --demo",
            "the demo runs its issuer, backend and proxy in one process; use a profile",
        )


#: What each option a profile's proxy takes means to the demo: it brings its own.
_NOT_FOR_DEMO = {
    "--target": "the demo forwards to its own echo backend",
    "--jwks": "the demo's proxy trusts the keys of its own local issuer",
    "--offline": "the demo is offline already: its issuer signs with the local keyset",
}


def _check_demo_options(
    demo: bool,
    *,
    host: str | None,
    target: str | None,
    jwks: str | None,
    offline: bool,
    ports: tuple[int | None, int | None],
) -> None:
    """An option that does nothing in this mode is refused, naming it: silently ignoring
    it would let a user believe the demo forwards to their backend (or the reverse)."""
    if demo:
        _check_demo_host(host)
        given = {"--target": target is not None, "--jwks": jwks is not None, "--offline": offline}
        for option, used in given.items():
            if used:
                raise fail(
                    f"{option} does not apply to --demo: {_NOT_FOR_DEMO[option]}",
                    f"drop {option}, or run your own profile: rrdev up PROFILE {option} ...",
                )
        return
    for option, port in zip(("--issuer-port", "--backend-port"), ports, strict=True):
        if port is not None:
            raise fail(
                f"{option} only applies with --demo: a profile's proxy starts no "
                f"{'issuer' if option == '--issuer-port' else 'backend'} of its own",
                f"drop {option}, or add --demo",
            )


def _check_demo_host(host: str | None) -> None:
    """--host is honoured by the demo on loopback only: its client secrets are public."""
    from rrdev.core.netaddr import is_loopback

    if host is not None and not is_loopback(host):
        raise fail(
            f"--host {host} does not apply to --demo: the demo listens on loopback only "
            "(its client secrets are public, so its issuer must not be reachable from "
            "other machines)",
            "drop --host, or use a loopback address such as 127.0.0.1 or ::1",
        )


def _run_demo(
    *,
    host: str | None,
    port: int | None,
    issuer_port: int,
    backend_port: int,
    quiet: bool,
    log_file: str | None,
) -> int:
    from rrdev.cli.demo import run_demo

    return run_demo(
        host=host or "127.0.0.1",
        proxy_port=8787 if port is None else port,
        issuer_port=issuer_port,
        backend_port=backend_port,
        quiet=quiet,
        log_file=log_file,
    )


@friendly
def tui(
    profile_arg: ProfilesArg = None,
    profile: ProfileOpt = None,
    demo: Annotated[
        bool,
        typer.Option(
            "--demo", help="Run the embedded offline demo and send it one request of each kind."
        ),
    ] = False,
    host: HostOpt = None,
    port: Annotated[
        int | None,
        typer.Option("--port", help="Listen port (default: profile's; 8787 with --demo)."),
    ] = None,
    target: TargetOpt = None,
    jwks: JwksOpt = None,
    offline: OfflineOpt = False,
    issuer_port: Annotated[
        int | None,
        typer.Option(
            "--issuer-port", help="With --demo: the local issuer's port (default 0: any)."
        ),
    ] = None,
    backend_port: Annotated[
        int | None,
        typer.Option(
            "--backend-port", help="With --demo: the echo backend's port (default 0: any)."
        ),
    ] = None,
    open_log: Annotated[
        str | None,
        typer.Option(
            "--open",
            "--log",
            metavar="FILE",
            help="Open a `rrdev up --log-file` read-only (no proxy starts).",
        ),
    ] = None,
) -> None:
    """Run the proxy with a live inspector: every request, and why it was allowed or refused.

    Keys: / filter (status:403, method:DELETE, reason:..., rule:..., path:...), Enter
    explain the selected request, Esc back or clear, ? help, q quit. Exit code 3 when
    the profile is broken or the port is in use. Several profiles share one port, each
    at http://{alias}.localhost:PORT/, with an alias column.

    Example: rrdev tui --demo
    """
    if open_log is not None:
        raise typer.Exit(_open_log(open_log, _one_profile(profile_arg, profile), demo=demo))
    _check_demo_options(
        demo,
        host=host,
        target=target,
        jwks=jwks,
        offline=offline,
        ports=(issuer_port, backend_port),
    )
    profiles = _up_profiles(profile_arg, profile)
    raise typer.Exit(
        _run_tui(
            profiles if len(profiles) > 1 else (profiles[0] if profiles else None),
            demo=demo,
            host=host,
            port=port,
            target=target,
            jwks=jwks,
            offline=offline,
            issuer_port=issuer_port or 0,
            backend_port=backend_port or 0,
        )
    )


def _open_log(path: str, profile_path: str | None, *, demo: bool) -> int:
    """``--open FILE``: the log's records in the inspector; with a profile, its rules."""
    from rrdev.tui import run_tui
    from rrdev.tui.workbench.log_runtime import LogRuntime

    if demo:
        raise fail("--open shows a log file, --demo runs the demo: drop one of them")
    profile = None
    if profile_path:
        from rrdev.core.profile import load_profile

        profile = load_profile(profile_path)
    return run_tui(LogRuntime(path, profile=profile))


def _run_tui(
    profile_path: str | list[str] | None,
    *,
    demo: bool,
    host: str | None,
    port: int | None,
    target: str | None,
    jwks: str | None,
    offline: bool,
    issuer_port: int = 0,
    backend_port: int = 0,
) -> int:
    # rrdev.tui and its runtime import no Textual: the app loads inside run_tui. The
    # proxy runs in a child process (rrdev.tui.proxy_process): the UI never serves.
    from rrdev.tui import run_tui
    from rrdev.tui.proxy_process import alias_process, demo_process, profile_process

    if isinstance(profile_path, list):
        if demo:
            raise fail("--demo runs its own embedded profile: drop the PROFILE arguments")
        from rrdev.servers.proxy import Overrides

        runtime = alias_process(
            profile_path,
            overrides=Overrides(target=target, jwks=jwks, offline=offline),
            host=host,
            port=port,
        )
    elif demo:
        if profile_path:
            raise fail("--demo runs its own embedded profile: drop the PROFILE argument")
        runtime = demo_process(
            host=host or "127.0.0.1",
            proxy_port=8787 if port is None else port,
            issuer_port=issuer_port,
            backend_port=backend_port,
        )
    else:
        from rrdev.cli.options import discover
        from rrdev.servers.proxy import Overrides

        runtime = profile_process(
            discover(profile_path, positional=True),
            overrides=Overrides(target=target, jwks=jwks, offline=offline),
            host=host,
            port=port,
        )
    return run_tui(runtime)
