"""The Typer front end: each command parses its options and calls one engine function.

Engine modules are imported inside the commands, so `rrdev explain` never pays for
Textual or uvicorn. Data goes to stdout, messages to stderr; expected failures print a
message (and a hint) with the documented exit code (DESIGN.md §4), never a traceback.
"""

from __future__ import annotations

import functools
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

if TYPE_CHECKING:
    from rrdev.core.model import Profile
    from rrdev.core.records import Explanation

app = typer.Typer(
    name="rrdev",
    help="A local twin of a JWT-verifying API gateway that explains every 401 and 403.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)
token_app = typer.Typer(help="Decode, mint and fetch tokens.", no_args_is_help=True)
app.add_typer(token_app, name="token")


def _version(value: bool) -> None:
    if value:
        from rrdev import __version__

        sys.stdout.write(f"rrdev {__version__}\n")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """A local twin of a JWT-verifying API gateway that explains every 401 and 403."""


def _add_issuer_commands() -> None:
    # issuer_cli imports only Typer at module level; the issuer loads when a command runs.
    from rrdev.cli.issuer import issuer_app

    app.add_typer(issuer_app, name="issuer")


_add_issuer_commands()

F = TypeVar("F", bound=Callable[..., Any])

DEMO_ISSUER = "https://rrdev.local/"
DEMO_AUDIENCE = "https://api.rrdev.local"


def _stdout() -> Any:
    from rrdev.cli.console import make_console

    return make_console()


def _stderr() -> Any:
    from rrdev.cli.console import make_console

    return make_console(stderr=True)


def fail(message: str, hint: str = "", code: int = 2) -> typer.Exit:
    """Print an error (and hint) on stderr and return the Exit to raise."""
    from rich.markup import escape

    err = _stderr()
    # Messages name TOML tables ("[auth]", "[[proxy.rules]]"): never read them as markup.
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False)
    if hint:
        err.print(f"[cyan]hint:[/] {escape(hint)}", markup=True, highlight=False)
    return typer.Exit(code)


def friendly(func: F) -> F:
    """Turn RrdevError into a message + documented exit code instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from rrdev.core.errors import RrdevError

        try:
            return func(*args, **kwargs)
        except RrdevError as exc:
            raise fail(exc.message, exc.hint, exc.exit_code) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]


# ------------------------------------------------------------------ options

ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        "-p",
        help="Profile TOML. Default: $RRDEV_PROFILE, else ./rrdev.toml.",
        show_default=False,
    ),
]
ProfileArg = Annotated[
    str | None, typer.Argument(metavar="[PROFILE]", help="Profile TOML (or use -p).")
]
HostOpt = Annotated[str | None, typer.Option("--host", help="Listen host (default: profile's).")]
TargetOpt = Annotated[
    str | None, typer.Option("--target", help="Forward to this base URL instead.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]


def _jwks_option(value: str | None) -> str | None:
    """--jwks FILE must exist now: a typo would otherwise be a 503 on every request."""
    if value and not value.startswith(("http://", "https://")):
        path = Path(value.removeprefix("file://"))
        if not path.is_file():
            raise fail(f"--jwks {value}: no such file", "save a JWKS with curl, or pass a URL", 3)
    return value


JwksOpt = Annotated[
    str | None,
    typer.Option(
        "--jwks",
        help="Use this JWKS (file or URL) instead of the profile's jwks_uri.",
        callback=_jwks_option,
    ),
]
OfflineOpt = Annotated[
    bool,
    typer.Option(
        "--offline",
        help="The local keyset stands in for the profile's issuer (see `rrdev token mint`).",
    ),
]
AtOpt = Annotated[
    str | None,
    typer.Option(
        "--at",
        help="Evaluate as of TIME: ISO 8601, epoch seconds, or relative (+2h, -30m).",
    ),
]


def read_token_arg(token: str | None) -> str | None:
    """'-' reads the token from stdin; a pasted 'Bearer ...' prefix is dropped."""
    if token == "-":
        if sys.stdin.isatty():
            raise fail(
                "no token given: pass it as an argument, or pipe it in",
                "e.g. rrdev token mint | rrdev token decode",
            )
        token = sys.stdin.read()
        if not token.strip():
            raise fail(
                "'-' reads the token from stdin, and stdin was empty",
                "pipe a token in, e.g. rrdev token mint | rrdev explain -",
            )
    if token is None:
        return None
    token = token.strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    return token or None


def parse_time(text: str | None, now: float | None = None) -> float:
    """--at: ISO 8601 (naive = UTC), epoch seconds, or +/-N[smhd] relative to now."""
    from datetime import UTC, datetime

    now = time.time() if now is None else now
    if not text:
        return now
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[0] in "+-" and text[-1] in units and text[1:-1].isdigit():
        return now + int(text[:-1]) * units[text[-1]]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise fail(
            f"--at {text!r} is not a time",
            "use ISO 8601 (2026-11-28T12:00:00Z), epoch seconds, or +2h / -30m",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def load(profile: str | None) -> Profile:
    from rrdev.core.profile import discover_profile, load_profile

    return load_profile(discover_profile(profile))


def jwks_source(profile: Profile, jwks: str | None, offline: bool) -> Any:
    """--jwks wins, then --offline (the local keyset's public JWKS), then the profile's."""
    if jwks:
        return jwks
    if offline:
        from rrdev.core.keyset import Keyset

        return Keyset.load_or_create().jwks()
    return profile.proxy_credential.jwks_uri


def parse_headers(values: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        name, sep, rest = value.partition(":")
        if not sep or not name.strip():
            raise fail(f"-H {value!r} is not 'Name: value'", "e.g. -H 'X-Tenant: acme'")
        pairs.append((name.strip(), rest.strip()))
    return pairs


def parse_pairs(values: list[str], option: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name:
            raise fail(f"{option} {value!r} is not 'name=value'")
        pairs.append((name, rest))
    return pairs


# ------------------------------------------------------------------ explain


@app.command()
@friendly
def explain(
    token: Annotated[
        str | None,
        typer.Argument(
            help="The bearer token, or - to read it from stdin. Omit (without --auth) to send none."
        ),
    ] = None,
    profile: ProfileOpt = None,
    method: Annotated[str, typer.Option("-X", "--method", help="HTTP method.")] = "GET",
    path: Annotated[
        str, typer.Option("--path", help="Request path as sent (may hold ?query).")
    ] = "/",
    header: Annotated[
        list[str], typer.Option("-H", "--header", help="Extra header 'Name: value' (repeatable).")
    ] = [],  # noqa: B006 - Typer needs a literal default
    query: Annotated[
        list[str], typer.Option("--query", help="Query parameter name=value (repeatable).")
    ] = [],  # noqa: B006
    jwks: JwksOpt = None,
    at: AtOpt = None,
    offline: OfflineOpt = False,
    use_auth: Annotated[
        bool,
        typer.Option(
            "--auth",
            help="Send the token the profile's auth section gets (cached, as `rrdev token "
            "fetch`); with --offline, one minted locally with auth.scope.",
        ),
    ] = False,
    json_out: JsonOpt = False,
) -> None:
    """Dry-run one request: would the gateway forward it, and if not, exactly why?

    Prints the token verification checklist, the rule trace by scope (the deciding rule
    marked) and the answer the proxy would give: status, reason, WWW-Authenticate, hint.
    Exit code: 0 allowed, 1 refused (400/401/403), 3 profile error, 4 JWKS or token
    endpoint unreachable.

    No TOKEN and no --auth sends no token (to see the 401 a caller without one gets);
    --auth fetches one with the profile's auth section (Auth0, OAuth2, local issuer or
    static), cached as `rrdev token fetch` does; with --offline it is minted locally.

    Example (no tenant, no network):

        rrdev token mint -p profiles/auth0.toml --scope read:products |
          rrdev explain - --offline -p profiles/auth0.toml -X DELETE --path /api/v1/products/1
    """
    from urllib.parse import urlencode

    prof = load(profile)
    raw_path, _, raw_query = path.partition("?")
    extra_query = urlencode(parse_pairs(query, "--query"))
    raw_query = "&".join(q for q in (raw_query, extra_query) if q)
    headers = parse_headers(header)
    bearer = read_token_arg(token)
    now = parse_time(at)
    if use_auth:
        if bearer:
            raise fail("pass a TOKEN or --auth, not both", "--auth fetches the token itself")
        from rrdev.cli.token import auth_token_for_explain

        bearer = auth_token_for_explain(prof, offline=offline, now=now)
    if bearer:
        headers.append(("Authorization", f"Bearer {bearer}"))
    expl = _run_explain(
        prof, method, raw_path, raw_query, headers, jwks_source(prof, jwks, offline), now
    )
    _print_explanation(expl, json_out)
    raise typer.Exit(explain_exit_code(expl))


def _run_explain(
    prof: Profile,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: list[tuple[str, str]],
    source: Any,
    now: float,
) -> Explanation:
    import asyncio

    from rrdev.clients.jwks import JwksCache
    from rrdev.core.explain import IncomingRequest, JwksVerifier, decide

    async def run() -> Explanation:
        cache = JwksCache(source) if source is not None else None
        try:
            verifier = JwksVerifier(prof.proxy_credential, cache) if cache else None
            request = IncomingRequest(method, raw_path, raw_query, tuple(headers))
            return await decide(prof, request, verifier, now=now)
        finally:
            if cache is not None:
                await cache.aclose()

    return asyncio.run(run())


def explain_exit_code(expl: Explanation) -> int:
    if expl.allowed:
        return 0
    return 4 if expl.status == 503 else 1


def _print_explanation(expl: Explanation, json_out: bool) -> None:
    if json_out:
        sys.stdout.write(json.dumps(expl.to_dict(), indent=2, default=str) + "\n")
        return
    from rrdev.cli.render import render_explanation

    _stdout().print(render_explanation(expl))


# ------------------------------------------------------------------ up


@app.command()
@friendly
def up(
    profile_arg: ProfileArg = None,
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
        str | None, typer.Option("--log-file", help="Append one JSON object per request.")
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No line per request.")] = False,
    issuer_port: Annotated[
        int, typer.Option("--issuer-port", help="With --demo: the local issuer's port.")
    ] = 8788,
    backend_port: Annotated[
        int, typer.Option("--backend-port", help="With --demo: the echo backend's port.")
    ] = 8789,
    tui: Annotated[
        bool, typer.Option("--tui", help="Watch the traffic in the interactive inspector.")
    ] = False,
) -> None:
    """Run the profile's gateway in front of your backend, explaining every refusal.

    Each request prints one line; 401 and 403 lines say why. Editing the profile takes
    effect on the next request (a broken edit keeps the last good one). Ctrl+C drains
    in-flight requests and exits 0; a port in use exits 3. --tui shows the traffic in
    the inspector instead (as `rrdev tui`).

    Example: rrdev up profiles/auth0.toml --target http://127.0.0.1:9000 --offline
    """
    if tui:
        if log_file:
            raise fail("--log-file cannot be combined with --tui", "drop one of them")
        raise typer.Exit(
            _run_tui(
                profile_arg or profile,
                demo=demo,
                host=host,
                port=port,
                target=target,
                jwks=jwks,
                offline=offline,
                issuer_port=issuer_port,
                backend_port=backend_port,
            )
        )
    if demo:
        if profile_arg or profile:
            raise fail("--demo runs its own embedded profile: drop the PROFILE argument")
        raise typer.Exit(
            _run_demo(
                port=port,
                issuer_port=issuer_port,
                backend_port=backend_port,
                quiet=quiet,
                log_file=log_file,
            )
        )
    from rrdev.cli.up import run_up

    code = run_up(
        profile_arg or profile,
        host=host,
        port=port,
        target=target,
        jwks=jwks,
        offline=offline,
        log_file=log_file,
        quiet=quiet,
    )
    raise typer.Exit(code)


def _run_demo(
    *, port: int | None, issuer_port: int, backend_port: int, quiet: bool, log_file: str | None
) -> int:
    from rrdev.cli.demo import run_demo

    return run_demo(
        proxy_port=8787 if port is None else port,
        issuer_port=issuer_port,
        backend_port=backend_port,
        quiet=quiet,
        log_file=log_file,
    )


# ------------------------------------------------------------------ tui


@app.command()
@friendly
def tui(
    profile_arg: ProfileArg = None,
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
        int, typer.Option("--issuer-port", help="With --demo: the local issuer's port (0: any).")
    ] = 0,
    backend_port: Annotated[
        int, typer.Option("--backend-port", help="With --demo: the echo backend's port (0: any).")
    ] = 0,
) -> None:
    """Run the proxy with a live inspector: every request, and why it was allowed or refused.

    Keys: / filter (status:403, method:DELETE, reason:..., rule:..., path:...), Enter
    explain the selected request, Esc back or clear, ? help, q quit. Exit code 3 when
    the profile is broken or the port is in use.

    Example: rrdev tui --demo
    """
    raise typer.Exit(
        _run_tui(
            profile_arg or profile,
            demo=demo,
            host=host,
            port=port,
            target=target,
            jwks=jwks,
            offline=offline,
            issuer_port=issuer_port,
            backend_port=backend_port,
        )
    )


def _run_tui(
    profile_path: str | None,
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
    # rrdev.tui and its runtime import no Textual: the app loads inside run_tui.
    from rrdev.tui import run_tui
    from rrdev.tui.runtime import DemoRuntime, ProfileRuntime

    runtime: DemoRuntime | ProfileRuntime
    if demo:
        if profile_path:
            raise fail("--demo runs its own embedded profile: drop the PROFILE argument")
        if target or jwks or offline:
            raise fail("--demo brings its own issuer and backend: drop --target/--jwks/--offline")
        runtime = DemoRuntime(
            host=host or "127.0.0.1",
            proxy_port=8787 if port is None else port,
            issuer_port=issuer_port,
            backend_port=backend_port,
        )
    else:
        from rrdev.servers.proxy import Overrides

        runtime = ProfileRuntime.from_path(
            profile_path,
            overrides=Overrides(target=target, jwks=jwks, offline=offline),
            host=host,
            port=port,
        )
    return run_tui(runtime)


# ------------------------------------------------------------------ token


@token_app.command("decode")
@friendly
def token_decode(
    token: Annotated[str, typer.Argument(help="The token, or - to read it from stdin.")] = "-",
    json_out: JsonOpt = False,
) -> None:
    """Show a token's header and claims, with times made human. Nothing is verified.

    Exit code 1 when the token is not a decodable JWT.
    """
    from rrdev.core.redact import fingerprint
    from rrdev.core.tokens import decode_unverified

    raw = read_token_arg(token)
    if not raw:
        raise fail("no token given", "pass it as an argument, or pipe it and use -", 1)
    decoded = decode_unverified(raw)
    if json_out:
        out = {
            "verified": False,
            "fingerprint": fingerprint(raw),
            "header": decoded.header,
            "claims": decoded.claims,
        }
        sys.stdout.write(json.dumps(out, indent=2) + "\n")
        return
    from rrdev.cli.render import render_token

    _stdout().print(render_token(decoded.header, decoded.claims, fingerprint(raw)))


@token_app.command("mint")
@friendly
def token_mint(
    profile: ProfileOpt = None,
    claim: Annotated[
        list[str],
        typer.Option("--claim", help="Extra claim k=v (v parsed as JSON when it is; repeatable)."),
    ] = [],  # noqa: B006
    scope: Annotated[str | None, typer.Option("--scope", help="The scope claim.")] = None,
    aud: Annotated[
        str | None, typer.Option("--aud", help="Audience (default: the profile's).")
    ] = None,
    iss: Annotated[
        str | None, typer.Option("--iss", help="Issuer (default: the profile's).")
    ] = None,
    sub: Annotated[str, typer.Option("--sub", help="Subject.")] = "rrdev-local@clients",
    expires_in: Annotated[
        int,
        typer.Option("--expires-in", help="Seconds until exp; negative mints an expired token."),
    ] = 3600,
    not_before: Annotated[
        int | None,
        typer.Option("--not-before", help="nbf = now + SECONDS (future: not yet valid)."),
    ] = None,
) -> None:
    """Sign a token with the local keyset (in $RRDEV_HOME); prints only the token.

    iss/aud default to the profile's proxy credential, else the demo's. Verify it with
    `rrdev explain --offline`, which trusts the same keyset.
    """
    from rrdev.core.keyset import Keyset, mint_token

    default_iss, default_aud = _mint_defaults(profile)
    extra = {}
    for name, value in parse_pairs(claim, "--claim"):
        try:
            extra[name] = json.loads(value)
        except ValueError:
            extra[name] = value
    token = mint_token(
        Keyset.load_or_create(),
        issuer=iss or default_iss,
        audience=aud or default_aud,
        subject=sub,
        scope=scope,
        claims=extra,
        expires_in=expires_in,
        not_before=not_before,
        now=int(time.time()),
    )
    sys.stdout.write(token + "\n")


def _mint_defaults(profile: str | None) -> tuple[str, str]:
    """The profile's issuer and first audience; the demo's when no profile is around."""
    from rrdev.core.errors import ProfileError
    from rrdev.core.profile import discover_profile, load_profile

    try:
        path = discover_profile(profile)
    except ProfileError:
        if profile:
            raise
        return DEMO_ISSUER, DEMO_AUDIENCE
    cred = load_profile(path).proxy_credential
    audience = cred.audience[0] if cred.audience else (cred.client_id or DEMO_AUDIENCE)
    return cred.issuer or DEMO_ISSUER, audience


@token_app.command("fetch")
@friendly
def token_fetch(
    profile: ProfileOpt = None,
    json_out: Annotated[
        bool,
        typer.Option("--json", help="The token response and expiry as JSON (token redacted)."),
    ] = False,
    no_cache: Annotated[
        bool, typer.Option("--no-cache", help="Always ask the token endpoint; cache nothing.")
    ] = False,
    show_token: Annotated[
        bool, typer.Option("--show-token", help="With --json: include the token itself.")
    ] = False,
    timeout: Annotated[
        float, typer.Option("--timeout", help="Seconds the token endpoint gets to answer.")
    ] = 10.0,
) -> None:
    """Get a caller token with the profile's auth section; stdout gets only the token.

    Auth0 (domain), any OAuth2 server (token_url: Okta, Cognito, Entra ID, Keycloak),
    the local issuer or a static token. Secrets come only from ${VARS} in the profile.
    Tokens are cached (per token URL, client, audience and scope) until shortly before
    they expire; `rrdev token clear` empties the cache. Exit code: 3 profile error
    (no auth section, unset variable), 4 token endpoint unreachable or refusing.

    Example: curl -H "Authorization: Bearer $(rrdev token fetch -p profiles/auth0.toml)" ...
    """
    if timeout <= 0:
        raise fail("--timeout must be a positive number of seconds")
    from rrdev.cli.token import run_token_fetch

    code = run_token_fetch(
        load(profile),
        json_out=json_out,
        use_cache=not no_cache,
        show_token=show_token,
        timeout=timeout,
    )
    raise typer.Exit(code)


@token_app.command("clear")
@friendly
def token_clear() -> None:
    """Remove every cached token (from `rrdev token fetch`, `explain --auth`, checks)."""
    from rrdev.cli.token import run_token_clear

    raise typer.Exit(run_token_clear())


# ------------------------------------------------------------------ validate


@app.command()
@friendly
def validate(
    profiles: Annotated[
        list[str] | None, typer.Argument(help="Profiles to check (default: the discovered one).")
    ] = None,
    strict: Annotated[bool, typer.Option("--strict", help="Unset ${VARS} are errors.")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Lint profiles: syntax, types, regexes, rule ids; unset ${VARS} are warnings.

    Exit code 0 when every profile is usable, 3 otherwise.
    """
    from rrdev.core.errors import ProfileError
    from rrdev.core.profile import discover_profile, load_profile, profile_warnings

    paths = [Path(p) for p in profiles] if profiles else [discover_profile(None)]
    results, failed = [], False
    for path in paths:
        entry: dict[str, Any] = {"profile": str(path), "errors": [], "warnings": []}
        try:
            prof = load_profile(path)
            entry["warnings"] = [str(w) for w in profile_warnings(prof)]
            entry["rules"] = len(prof.all_rules())
        except ProfileError as exc:
            entry["errors"].append(str(exc))
        failed |= bool(entry["errors"]) or (strict and bool(entry["warnings"]))
        results.append(entry)
    _print_validation(results, json_out)
    raise typer.Exit(3 if failed else 0)


def _print_validation(results: list[dict[str, Any]], json_out: bool) -> None:
    if json_out:
        sys.stdout.write(json.dumps(results, indent=2) + "\n")
        return
    from rich.text import Text

    out = _stdout()
    for entry in results:  # Text, not markup: messages quote the user's own "[...]"
        if entry["errors"]:
            out.print(Text.assemble(("✗ ", "red"), entry["profile"]))
            for error in entry["errors"]:
                out.print(Text.assemble(("  error: ", "red"), error))
        else:
            out.print(
                Text.assemble(("✓ ", "green"), f"{entry['profile']} ({entry['rules']} rules)")
            )
        for warning in entry["warnings"]:
            out.print(Text.assemble(("  warning: ", "yellow"), warning))


# ------------------------------------------------------------------ check


@app.command()
@friendly
def check(
    profiles: Annotated[
        list[str] | None,
        typer.Argument(metavar="PROFILE", help="Profiles (default: the discovered one)."),
    ] = None,
    live: Annotated[
        bool,
        typer.Option("--live", help="Run the proxy in-process and send each check to the target."),
    ] = False,
    against: Annotated[
        str | None,
        typer.Option("--against", help="Send each check to this running proxy or gateway."),
    ] = None,
    offline: OfflineOpt = False,
    target: Annotated[
        str | None, typer.Option("--target", help="With --live: forward to this base URL.")
    ] = None,
    jwks: JwksOpt = None,
    json_out: JsonOpt = False,
    junit: Annotated[
        str | None, typer.Option("--junit", metavar="FILE", help="Also write JUnit XML here.")
    ] = None,
    require_coverage: Annotated[
        bool,
        typer.Option("--require-coverage", help="Fail when a rule decides no check."),
    ] = False,
    at: AtOpt = None,
) -> None:
    """Run the profiles' smoke checks: expected answers (denials too) tested like code.

    Default: a dry run (verification and rules, nothing forwarded). --live runs the
    proxy in-process in front of the real target; --against URL asks a running proxy
    or the deployed gateway. Exit code: 0 all passed, 1 a check failed (or a rule is
    unexercised with --require-coverage), 3 profile error, 4 network error.

    Example (CI, no secrets): rrdev check --offline profiles/*.toml --junit report.xml
    """
    from rrdev.checks.model import CheckOptions
    from rrdev.cli.check import run_check_command

    if live and against:
        raise fail("--live and --against cannot be combined", "pick one")
    options = CheckOptions(
        mode="live" if live else "against" if against else "dry",
        against=against,
        offline=offline,
        target=target,
        jwks=jwks,
        now=parse_time(at) if at else None,
        require_coverage=require_coverage,
    )
    raise typer.Exit(run_check_command(profiles or [], options, json_out=json_out, junit=junit))


@app.command()
@friendly
def init(
    path: Annotated[str, typer.Argument(help="Where to write the profile.")] = "rrdev.toml",
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Write a commented starter profile (default ./rrdev.toml, found by every command).

    It has a target, a jwtVerify proxy credential, a default-deny proxy with a read rule,
    a scope gate and a write rule, and [[checks]] that pass with `rrdev check --offline`.
    Exit code 3 when the file exists (use --force).
    """
    from importlib.resources import files

    target = Path(path)
    if target.exists() and not force:
        raise fail(f"{target} already exists", "pass --force to overwrite it", 3)
    text = files("rrdev").joinpath("data/starter.toml").read_text(encoding="utf-8")
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot write {target}: {exc.strerror}", code=3) from None
    err = _stderr()
    err.print(f"wrote {target}: fill in the TODOs, then `rrdev validate {target}`", markup=False)


@app.command()
def version() -> None:
    """Print rrdev's version."""
    from rrdev import __version__

    sys.stdout.write(f"rrdev {__version__}\n")


def main() -> None:
    app()
