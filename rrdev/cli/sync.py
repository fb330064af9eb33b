"""``rrdev export``, ``import``, ``pull`` and ``push``: the profile to and from the gateway.

The mapping is ``rrdev.core.gateway``'s, the API calls ``rrdev.clients.gateway``'s, both
imported when a command runs. The API token comes from an environment variable
(``RRDEV_GATEWAY_TOKEN``, or the one ``--token-env`` names): never a flag, never printed.
"""

from __future__ import annotations

from typing import Annotated

import typer

from rrdev.cli.common import fail, friendly
from rrdev.cli.options import JsonOpt, ProfileArg, ProfileOpt

__all__ = ["export", "import_", "pull", "push"]

ClientIdOpt = Annotated[
    str, typer.Option("--client-id", metavar="ID", help="The gateway account's client ID.")
]
ApiOpt = Annotated[
    str | None,
    typer.Option(
        "--api",
        metavar="URL",
        help="The gateway API (default: $RRDEV_GATEWAY_API, else https://api.requestrocket.com).",
        show_default=False,
    ),
]
TokenEnvOpt = Annotated[
    str,
    typer.Option(
        "--token-env",
        metavar="NAME",
        help="The environment variable holding the API token.",
    ),
]
OutProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--out",
        "-o",
        metavar="PROFILE",
        help="Write the profile here; an existing profile is updated in place, keeping "
        "its rrdev-only keys, checks and comments. Default: stdout.",
        show_default=False,
    ),
]
ProxyNameOpt = Annotated[
    str | None,
    typer.Option("--proxy", metavar="NAME", help="Which proxy (when the account has several)."),
]


@friendly
def export(
    profile_arg: ProfileArg = None,
    profile: ProfileOpt = None,
    out: Annotated[
        str | None,
        typer.Option("--out", metavar="DIR", help="Write one numbered JSON file per payload."),
    ] = None,
    json_out: JsonOpt = False,
    with_secrets: Annotated[
        bool,
        typer.Option("--with-secrets", help="Resolve ${VARS} into the output (a warning)."),
    ] = False,
) -> None:
    """Print the gateway's create payloads for a profile, in the order to create them.

    Target, target credential, proxy credential, proxy (holding {"$ref": "target"}-style
    references: the IDs come from the API), then the rules of each scope. Secrets stay
    ${VAR} placeholders unless --with-secrets. Keys the gateway has no field for are
    listed, not exported (with --json under "rrdev_only", which `rrdev import` restores).

    Example: rrdev export profiles/auth0.toml --json > auth0.gateway.json
    """
    from rrdev.cli import sync_render

    sync_render.run_export(profile_arg or profile, out, json_out, with_secrets)


@friendly
def import_(
    file: Annotated[
        str,
        typer.Argument(metavar="FILE", help="JSON: `export --json` or API lists (- reads stdin)."),
    ],
    out: OutProfileOpt = None,
    proxy: ProxyNameOpt = None,
) -> None:
    """Turn gateway payloads into a commented profile (the reverse of export).

    FILE is what `rrdev export --json` writes, or the API's list answers in one object
    ({"targets": ..., "credentials": ..., "proxies": ..., "rules": {ID: [...]}}).
    Secrets become ${VAR} placeholders named after the credential; fields rrdev has no
    key for are kept as comments.

    Example: rrdev import auth0.gateway.json --out rrdev.toml
    """
    from rrdev.cli import sync_render

    sync_render.run_import(file, out, proxy)


@friendly
def pull(
    client_id: ClientIdOpt,
    proxy: ProxyNameOpt = None,
    out: OutProfileOpt = None,
    api: ApiOpt = None,
    token_env: TokenEnvOpt = "RRDEV_GATEWAY_TOKEN",
) -> None:
    """Read a proxy's setup from the gateway API into a profile.

    credentialSecret is write-only: secrets become ${VAR} placeholders, and a
    jwtVerify credential's jwksUri/audience/issuer must be filled in, unless --out
    points at your existing profile, whose values (and checks) are kept.

    Example: rrdev pull --client-id c1 --proxy my-api-auth0-protected --out rrdev.toml
    """
    from rrdev.cli import sync_render

    sync_render.run_pull(client_id, proxy, out, api, token_env)


@friendly
def push(
    profile_arg: ProfileArg = None,
    profile: ProfileOpt = None,
    client_id: ClientIdOpt = ...,  # type: ignore[assignment]
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Apply without asking.")] = False,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Print the plan only.")] = False,
    send_secrets: Annotated[
        bool,
        typer.Option("--send-secrets", help="Send credentialSecret to existing credentials too."),
    ] = False,
    api: ApiOpt = None,
    token_env: TokenEnvOpt = "RRDEV_GATEWAY_TOKEN",
) -> None:
    """Make the gateway hold the profile's setup: plan, confirm, apply.

    Objects are matched by name: create / update / unchanged; rules have no update, a
    changed rule is deleted and created again. credentialSecret is write-only, so an
    existing credential's secret is only replaced with --send-secrets. Asks before
    applying unless --yes (without a terminal, --yes is required). A failure midway
    says what was applied (exit 4); running push again converges. Afterwards,
    `rrdev check PROFILE --against https://ALIAS.requestrocket.io` runs the checks
    against the deployed gateway.

    Example: rrdev push profiles/auth0.toml --client-id c1 --dry-run
    """
    if yes and dry_run:
        raise fail("--yes and --dry-run contradict each other", "drop one of them")
    from rrdev.cli import sync_render

    sync_render.run_push(
        profile_arg or profile,
        client_id,
        yes=yes,
        dry_run=dry_run,
        send_secrets=send_secrets,
        api=api,
        token_env=token_env,
    )
