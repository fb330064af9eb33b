"""``rrdev token decode|mint|fetch|clear``: the ``token`` command group (``token_app``).

Mounted by ``rrdev.cli.app`` as ``app.add_typer(token_app, name="token")``. Fetching and
the cache are ``rrdev.cli.token``'s (imported when a command runs); decoding and minting
are ``rrdev.core.tokens`` and ``rrdev.core.keyset``.
"""

from __future__ import annotations

import json
import sys
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rrdev.cli.common import fail, friendly, stdout_console
from rrdev.cli.lean_params import LeanCommand, LeanGroup
from rrdev.cli.options import JsonOpt, ProfileOpt, discover, load, parse_pairs, read_token_arg

if TYPE_CHECKING:
    from rrdev.core.model import Profile

__all__ = ["token_app"]

token_app = typer.Typer(cls=LeanGroup, help="Decode, mint and fetch tokens.", no_args_is_help=True)


DEMO_ISSUER = "https://rrdev.local/"
DEMO_AUDIENCE = "https://api.rrdev.local"


@token_app.command("decode", cls=LeanCommand)
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

    stdout_console().print(render_token(decoded.header, decoded.claims, fingerprint(raw)))


@token_app.command("mint", cls=LeanCommand)
@friendly
def token_mint(
    profile: ProfileOpt = None,
    claim: Annotated[
        list[str],
        typer.Option(
            "--claim",
            metavar="NAME=VALUE",
            help="Extra claim k=v (v parsed as JSON when it is; repeatable).",
        ),
    ] = [],  # noqa: B006
    scope: Annotated[
        str | None,
        typer.Option(
            "--scope",
            metavar="SCOPES",
            help=(
                "Granted scopes, space-separated, where the profile's provider puts them: "
                "okta an scp array, entra an scp string, others a scope string."
            ),
        ),
    ] = None,
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

    iss/aud default to the profile's proxy credential, else the demo's. --scope is
    written as the profile's provider writes granted scopes (proxy_credential.provider):
    okta `scp = ["a", "b"]`, entra `scp = "a b"`, others `scope = "a b"`. Verify it with
    `rrdev explain --offline`, which trusts the same keyset.
    """
    from rrdev.checks.tokens import provider_scope
    from rrdev.core.keyset import Keyset, mint_token

    loaded = _mint_profile(profile)
    default_iss, default_aud, extra = _mint_defaults(loaded)
    scope_claim, scope_claims = provider_scope(loaded, scope)
    extra.update(scope_claims)
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
        scope=scope_claim,
        claims=extra,
        expires_in=expires_in,
        not_before=not_before,
        now=int(time.time()),
    )
    sys.stdout.write(token + "\n")


def _mint_profile(profile: str | None) -> Profile | None:
    """The profile named or discovered; None when none is around (the demo's identity)."""
    from rrdev.core.errors import ProfileError
    from rrdev.core.profile import load_profile

    try:
        path = discover(profile)
    except ProfileError:
        if profile:
            raise
        return None
    return load_profile(path)


def _mint_defaults(profile: Profile | None) -> tuple[str, str | None, dict[str, Any]]:
    """The profile's issuer, first audience and the claims its provider mode needs
    (``checks.tokens.mint_identity``: Cognito's client_id and no aud, Entra's tid); the
    demo's when no profile is around."""
    if profile is None:
        return DEMO_ISSUER, DEMO_AUDIENCE, {}
    from rrdev.checks.tokens import mint_identity

    return mint_identity(profile)


@token_app.command("fetch", cls=LeanCommand)
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


@token_app.command("clear", cls=LeanCommand)
@friendly
def token_clear() -> None:
    """Remove every cached token (from `rrdev token fetch`, `explain --auth`, checks)."""
    from rrdev.cli.token import run_token_clear

    raise typer.Exit(run_token_clear())
