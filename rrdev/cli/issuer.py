"""``rrdev issuer serve|rotate|jwks``: the local Auth0-compatible issuer's commands.

Mounted by ``rrdev.cli.app`` as ``app.add_typer(issuer_app, name="issuer")``. Engine and
server modules are imported inside the commands, so importing this module costs only
Typer. Data (the JWKS, a new kid) goes to stdout, messages to stderr; expected failures
print one message and exit with the documented code (3: a corrupt keyset, a port in
use, a profile without issuer clients).
"""

from __future__ import annotations

import functools
import json
import shlex
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from rrdev.cli.lean_params import LeanCommand, LeanGroup

if TYPE_CHECKING:
    from pathlib import Path

    from rich.console import Console

    from rrdev.core.model import IssuerConfig, Profile, Secret
    from rrdev.servers.issuer.config import IssuerUrls

__all__ = [
    "DEFAULT_GRACE_SECONDS",
    "DEFAULT_PORT",
    "issuer_app",
    "issuer_banner",
    "profile_notes",
    "run_serve",
]

DEFAULT_PORT = 8788
DEFAULT_GRACE_SECONDS = 3600.0

issuer_app = typer.Typer(
    cls=LeanGroup,
    help="The local Auth0-compatible issuer: discovery, JWKS and /oauth/token, offline.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

F = TypeVar("F", bound=Callable[..., Any])


def _stderr() -> Console:
    from rrdev.cli.console import make_console

    return make_console(stderr=True, soft_wrap=True)


def _friendly(func: F) -> F:
    """RrdevError -> one message on stderr and its exit code, never a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from rrdev.core.errors import RrdevError

        try:
            return func(*args, **kwargs)
        except RrdevError as exc:
            from rrdev.cli.console import print_error

            print_error(_stderr(), exc)
            raise typer.Exit(exc.exit_code) from None

    return wrapper  # type: ignore[return-value]


# ------------------------------------------------------------------ serve


@issuer_app.command("serve", cls=LeanCommand)
@_friendly
def serve(
    profile: Annotated[
        str | None,
        typer.Option(
            "--profile",
            "-p",
            metavar="PROFILE",
            help="Take clients from this profile's [issuer]. Default: $RRDEV_PROFILE, "
            "./rrdev.toml, else the demo's clients.",
            show_default=False,
        ),
    ] = None,
    port: Annotated[int, typer.Option("--port", help="Port to listen on (0: any free).")] = (
        DEFAULT_PORT
    ),
    host: Annotated[str, typer.Option("--host", help="Address to listen on.")] = "127.0.0.1",
    issuer: Annotated[
        str | None,
        typer.Option("--issuer", help="The issuer identity (iss). Default: the profile's."),
    ] = None,
) -> None:
    """Run the local issuer until Ctrl+C: discovery, JWKS and POST /oauth/token.

    Tokens are signed with the local keyset in $RRDEV_HOME (the one `rrdev token mint`
    and `--offline` use); `rrdev issuer rotate` in another terminal applies at once.
    """
    raise typer.Exit(run_serve(profile, host=host, port=port, issuer=issuer))


def run_serve(
    profile_path: str | None,
    *,
    host: str = "127.0.0.1",
    port: int = DEFAULT_PORT,
    issuer: str | None = None,
) -> int:
    """Serve the issuer in the foreground; returns the exit code (0 after Ctrl+C)."""
    from dataclasses import replace

    from rrdev.cli.console import run_loop
    from rrdev.servers.issuer.app import IssuerApp
    from rrdev.servers.issuer.config import issuer_config_for
    from rrdev.servers.issuer.keys import KeysetWatcher

    profile, demo = _issuer_profile(profile_path)
    config = issuer_config_for(profile)
    if issuer:
        config = replace(config, issuer=issuer)
    events = _Events()
    app = IssuerApp(config, keys=KeysetWatcher(on_event=events), on_event=events)
    try:
        return run_loop(_serve(app, host, port, profile, demo, events))
    except KeyboardInterrupt:
        return 0


def _issuer_profile(profile_path: str | None) -> tuple[Profile, bool]:
    """The profile whose [issuer] to serve, and whether it is the demo's."""
    from rrdev.cli.options import discover
    from rrdev.core.errors import ProfileError
    from rrdev.core.profile import load_profile
    from rrdev.servers.demo import load_demo_profile

    try:
        path = discover(profile_path)
    except ProfileError:
        if profile_path:
            raise
        return load_demo_profile(), True
    return load_profile(path), False


async def _serve(
    app: Any, host: str, port: int, profile: Profile, demo: bool, events: _Events
) -> int:
    import asyncio

    from rrdev.cli.console import install_stop_handlers
    from rrdev.servers.runner import ProxyServer, is_loopback

    server = ProxyServer(app, host, port, graceful_timeout=5)
    await server.start()
    try:
        wildcard = host in ("0.0.0.0", "::", "")
        if not wildcard:
            app.base_url = server.url  # else each request's Host header decides
        shown = server.url if not wildcard else f"http://127.0.0.1:{server.port}"
        keyset = app.keys.path if hasattr(app.keys, "path") else None
        urls = app.urls(shown)
        text = issuer_banner(app.config, urls, source=profile.path, demo=demo, keyset_path=keyset)
        sys.stdout.write(text + "\n")
        sys.stdout.flush()
        if not is_loopback(host):
            events.warn(
                f"listening on {host}, not loopback: other machines can get tokens from this issuer"
            )
        if not demo:
            for note in profile_notes(profile, app.config, urls):
                events.warn(note)
        events.ready = True
        handled = install_stop_handlers(
            server.request_stop,
            lambda: server.stopping,
            lambda: events.note("stopping (Ctrl+C again to quit now)"),
        )
        try:
            await server.wait()
        finally:
            loop = asyncio.get_running_loop()
            for sig in handled:
                loop.remove_signal_handler(sig)
    finally:
        await server.stop(force=True)
    return 0


def issuer_banner(
    config: IssuerConfig,
    urls: IssuerUrls,
    *,
    source: str,
    demo: bool,
    keyset_path: Path | None = None,
) -> str:
    """What ``serve`` prints on start: its URLs and a ready-to-use client with a curl
    line. Only the demo's (public) secret is ever shown; a profile's client gets a
    ``$VARIABLE`` placeholder."""
    lines = [
        f"rrdev issuer  {config.issuer}  (clients from {source})",
        "",
        f"  issuer      {urls.issuer}",
        f"  discovery   {urls.discovery}",
        f"  JWKS        {urls.jwks}",
        f"  token       {urls.token}",
    ]
    if keyset_path is not None:
        lines.append(f"  keyset      {keyset_path}")
    for client in config.clients:
        scopes = " ".join(client.scopes) or "no scopes"
        audiences = ", ".join(client.audiences) or "no audiences"
        lines.append(f"  client      {client.client_id}  ({scopes}; for {audiences})")
    client = config.clients[0]
    if client.client_secret is None:  # private_key_jwt only: no curl line can show it
        lines += [
            "",
            f"{client.client_id} authenticates with private_key_jwt: `rrdev token fetch` "
            "with [auth] client_auth = 'private_key_jwt' signs its assertions.",
            "",
            "Ctrl+C to stop. `rrdev issuer rotate` applies without a restart.",
            "",
        ]
        return "\n".join(lines)
    secret, note = _shown_secret(client.client_secret, demo)
    audience = client.audiences[0] if client.audiences else "AUDIENCE"
    curl = " ".join(
        [
            "curl -s",
            shlex.quote(urls.token),
            "-d grant_type=client_credentials",
            "-d " + shlex.quote(f"client_id={client.client_id}"),
            "--data-urlencode " + secret,
            "-d " + shlex.quote(f"audience={audience}"),
        ]
    )
    lines += ["", f"Get a token as {client.client_id}:", "", f"  {curl}"]
    if note:
        lines += ["", f"  ({note})"]
    lines += ["", "Ctrl+C to stop. `rrdev issuer rotate` applies without a restart.", ""]
    return "\n".join(lines)


def profile_notes(profile: Profile, config: IssuerConfig, urls: IssuerUrls) -> list[str]:
    """Why the profile's own proxy might refuse this issuer's tokens, and the fix."""
    cred = profile.proxy_credential
    notes = []
    if cred.auth_type == "jwtVerify" and cred.issuer != config.issuer:
        notes.append(
            f"tokens carry iss {config.issuer!r} but {profile.path} verifies "
            f"iss {cred.issuer!r}: set [issuer] issuer = {cred.issuer!r} (or pass --issuer)"
        )
    if cred.auth_type == "jwtVerify" and cred.jwks_uri != urls.jwks:
        notes.append(
            f"{profile.path} verifies with {cred.jwks_uri}; to accept these tokens run "
            f"`rrdev up -p {profile.path} --jwks {urls.jwks}` (or --offline: same keyset)"
        )
    return notes


def _shown_secret(secret: Secret, demo: bool) -> tuple[str, str]:
    """The ``client_secret=...`` curl argument, and a note when it is a placeholder."""
    if demo:
        return shlex.quote(f"client_secret={secret.raw}"), "a public demo secret"
    refs = secret.references
    if len(refs) == 1 and secret.raw == "${" + refs[0] + "}":
        return f'"client_secret=${refs[0]}"', ""
    where = secret.file or "the profile"
    if secret.line is not None:
        where += f":{secret.line}"
    return (
        '"client_secret=$CLIENT_SECRET"',
        f"set CLIENT_SECRET to the client's secret ({secret.key} in {where})",
    )


class _Events:
    """Issuer notices: one line each on stderr (token requests only once serving)."""

    def __init__(self) -> None:
        self.console = _stderr()
        self.ready = False

    def __call__(self, kind: str, message: str) -> None:
        from rich.text import Text

        styles = {
            "token_issued": "bold green",
            "token_refused": "bold yellow",
            "keyset_reloaded": "bold green",
        }
        if kind.startswith("token_") and not self.ready:
            return
        label = kind.replace("_", " ")
        stamp = time.strftime("%H:%M:%S")
        self.console.print(
            Text.assemble(
                (f"{stamp} ", "dim"), (f"{label}: ", styles.get(kind, "bold red")), message
            )
        )

    def warn(self, message: str) -> None:
        from rich.text import Text

        self.console.print(Text.assemble(("warning: ", "bold yellow"), message))

    def note(self, message: str) -> None:
        from rich.text import Text

        self.console.print(Text(message, style="dim"))


# ------------------------------------------------------------------ rotate


@issuer_app.command("rotate", cls=LeanCommand)
@_friendly
def rotate(
    grace: Annotated[
        float | None,
        typer.Option(
            "--grace",
            help=f"Seconds the previous key stays in the JWKS (default {DEFAULT_GRACE_SECONDS:g}).",
            show_default=False,
        ),
    ] = None,
    reset: Annotated[
        bool,
        typer.Option(
            "--reset",
            help="Replace the whole keyset (even a corrupt one): old tokens stop verifying.",
        ),
    ] = False,
) -> None:
    """Add a new signing key; the previous one stays in the JWKS for a grace period.

    Prints the new key id on stdout. A running issuer (and `rrdev up --demo`) picks the
    change up without a restart. A corrupt keyset is reported, never replaced, unless
    you ask with --reset.
    """
    from rrdev.core.keyset import Keyset

    err = _stderr()
    if reset:
        if grace is not None:
            err.print("error: --grace does not apply to --reset (the old keys are dropped)")
            raise typer.Exit(2)
        keyset = Keyset.reset()
        err.print(
            f"new keyset {keyset.path}: signing key {keyset.signing_kid}; tokens signed by "
            "the previous keys no longer verify"
        )
        sys.stdout.write(keyset.signing_kid + "\n")
        return
    seconds = DEFAULT_GRACE_SECONDS if grace is None else grace
    if seconds < 0:
        err.print(f"error: --grace must be 0 or more seconds, got {seconds:g}")
        raise typer.Exit(2)
    keyset = Keyset.load_or_create()
    now = time.time()
    previous = [k.kid for k in keyset.keys if k.active(now) and k.retire_after is None]
    new_kid = keyset.rotate(seconds, now)
    if previous and seconds > 0:
        until = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now + seconds))
        kept = f"; {', '.join(previous)} stays in the JWKS until {until} ({seconds:g}s grace)"
    elif previous:
        kept = f"; {', '.join(previous)} left the JWKS now (no grace)"
    else:
        kept = ""
    err.print(f"rotated {keyset.path}: new signing key {new_kid}{kept}")
    sys.stdout.write(new_kid + "\n")


# ------------------------------------------------------------------ jwks


@issuer_app.command("jwks", cls=LeanCommand)
@_friendly
def jwks() -> None:
    """Print the local keyset's public JWKS (JSON on stdout).

    What the issuer serves at /.well-known/jwks.json; save it to a file for
    `--jwks FILE` on another machine.
    """
    from rrdev.core.keyset import Keyset

    sys.stdout.write(json.dumps(Keyset.load_or_create().jwks(), indent=2) + "\n")
