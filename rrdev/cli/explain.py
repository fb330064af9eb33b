"""``rrdev explain``: dry-run one request and say exactly why it would be refused.

The command parses its options here; the decision is ``rrdev.core.explain.decide`` and
the drawing ``rrdev.cli.render.render_explanation``, both imported only when it runs.
"""

from __future__ import annotations

import json
import sys
from typing import TYPE_CHECKING, Annotated, Any

import typer

from rrdev.cli.common import (
    fail,
    friendly,
    stderr_console,
    stdout_console,
    warn_check_problems,
)
from rrdev.cli.options import (
    AtOpt,
    JsonOpt,
    JwksOpt,
    OfflineOpt,
    ProfileOpt,
    load,
    parse_headers,
    parse_pairs,
    parse_time,
    read_token_arg,
)

if TYPE_CHECKING:
    from rrdev.core.model import Profile
    from rrdev.core.records import Explanation

__all__ = ["explain", "explain_exit_code", "jwks_source"]


@friendly
def explain(
    token: Annotated[
        str | None,
        typer.Argument(
            help="The bearer token, or - to read it from stdin. Omit (without --auth) to send none."
        ),
    ] = None,
    profile: ProfileOpt = None,
    method: Annotated[
        str, typer.Option("-X", "--method", metavar="METHOD", help="HTTP method.")
    ] = "GET",
    path: Annotated[
        str, typer.Option("--path", metavar="PATH", help="Request path as sent (may hold ?query).")
    ] = "/",
    header: Annotated[
        list[str],
        typer.Option(
            "-H", "--header", metavar="HEADER", help="Extra header 'Name: value' (repeatable)."
        ),
    ] = [],  # noqa: B006 - Typer needs a literal default
    query: Annotated[
        list[str],
        typer.Option(
            "--query", metavar="NAME=VALUE", help="Query parameter name=value (repeatable)."
        ),
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
    warn_check_problems(prof)
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
    if use_auth and not offline:
        from rrdev.cli.token import with_fetch_hints

        expl = with_fetch_hints(prof, expl)
    _print_explanation(expl, json_out)
    if expl.reason in ("jwks_unavailable", "discovery_unavailable") and not json_out:
        _no_stale_keys_note(prof)
    raise typer.Exit(explain_exit_code(expl))


def jwks_source(profile: Profile, jwks: str | None, offline: bool) -> Any:
    """--jwks wins, then --offline (the local keyset's public JWKS), then the profile's
    (its jwks_uri, or OIDC discovery of its issuer)."""
    if jwks:
        return jwks
    if offline:
        from rrdev.core.keyset import local_public_jwks

        return local_public_jwks()
    from rrdev.core.oidc import jwks_source_of

    return jwks_source_of(profile.proxy_credential)


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
    from rrdev.core.filters import with_planned_filters

    async def run() -> Explanation:
        cache = JwksCache(source) if source is not None else None
        try:
            verifier = JwksVerifier(prof.proxy_credential, cache) if cache else None
            request = IncomingRequest(method, raw_path, raw_query, tuple(headers))
            return with_planned_filters(prof, await decide(prof, request, verifier, now=now))
        finally:
            if cache is not None:
                await cache.aclose()

    return asyncio.run(run())


def _no_stale_keys_note(prof: Profile) -> None:
    """Why explain answers 503 where a running proxy may still serve its stale keys."""
    from rich.text import Text

    limit = prof.proxy_credential.jwks_max_stale_seconds
    stderr_console().print(
        Text(
            "note: explain fetches the JWKS afresh on every run, so it has no earlier key "
            "set to fall back on; a running proxy (rrdev up, rrdev tui) keeps serving the "
            f"key set it holds for up to jwks_max_stale_seconds ({limit:g}s) past its TTL, "
            "with a warning, before it answers 503 too",
            style="dim",
        )
    )


def explain_exit_code(expl: Explanation) -> int:
    if expl.allowed:
        return 0
    return 4 if expl.status == 503 else 1


def _print_explanation(expl: Explanation, json_out: bool) -> None:
    if json_out:
        sys.stdout.write(json.dumps(expl.to_dict(), indent=2, default=str) + "\n")
        return
    from rrdev.cli.render import render_explanation

    stdout_console().print(render_explanation(expl))
