"""``rrdev token fetch`` / ``token clear`` and ``explain --auth``: the front-end side.

``rrdev.cli.token_app`` (or ``rrdev.cli.explain``) parses the options and calls one
function here; the engine work is in ``rrdev.clients`` (``caller``: fetch,
``token_cache``: cache). stdout gets only the token (so ``$(rrdev token fetch)`` works)
or, with ``--json``, the token response with the token redacted unless
``--show-token``. Messages (cache warnings, the expiry note on a terminal) go to
stderr. Errors propagate as ``RrdevError`` for ``cli.common.friendly``: exit 3 for the
profile (no ``[auth]``, an unset ``${VAR}``), 4 for the token endpoint.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from datetime import UTC, datetime
from typing import Any

from rich.console import Console
from rich.markup import escape

from rrdev.cli.console import make_console
from rrdev.clients.audience_hint import fetched_token_explanation, token_audience_note
from rrdev.clients.caller import auth_client, fetch_caller_token, require_auth
from rrdev.clients.oauth2 import FetchedToken, TokenRequest, token_request, token_url_of
from rrdev.clients.token_cache import TokenCache
from rrdev.core.errors import TokenInputError
from rrdev.core.model import Profile
from rrdev.core.records import Explanation
from rrdev.core.redact import REDACTED, SECRET_FIELDS, fingerprint
from rrdev.core.tokens import decode_unverified, humanize_delta

__all__ = [
    "auth_token_for_explain",
    "run_token_clear",
    "run_token_fetch",
    "token_summary",
    "with_fetch_hints",
]


def _stderr() -> Console:
    return make_console(stderr=True, soft_wrap=True)


def _cache(err: Console) -> TokenCache:
    def warn(message: str) -> None:
        err.print(f"[yellow]warning:[/] {message}", markup=True, highlight=False)

    return TokenCache(on_warning=warn)


def fetch_for_profile(
    profile: Profile, *, use_cache: bool, timeout: float, err: Console | None = None
) -> FetchedToken:
    """The caller token per ``[auth]``; cache warnings printed on stderr."""
    cache = _cache(err or _stderr()) if use_cache else None
    return asyncio.run(
        fetch_caller_token(profile, use_cache=use_cache, cache=cache, timeout=timeout)
    )


def run_token_fetch(
    profile: Profile,
    *,
    json_out: bool = False,
    use_cache: bool = True,
    show_token: bool = False,
    timeout: float = 10.0,
) -> int:
    """``rrdev token fetch``: print the token (or the JSON summary); exit code 0."""
    err = _stderr()
    token = fetch_for_profile(profile, use_cache=use_cache, timeout=timeout, err=err)
    note = _audience_note(profile, token)
    if note:
        err.print(f"[yellow]warning:[/] {escape(note)}", markup=True, highlight=False)
    if json_out:
        summary = token_summary(profile, token, show_token=show_token)
        sys.stdout.write(json.dumps(summary, indent=2, default=str) + "\n")
        return 0
    sys.stdout.write(token.access_token + "\n")
    if sys.stderr.isatty():
        err.print(f"[dim]{_note(token)}[/]", markup=True, highlight=False)
    return 0


def _fetched_request(profile: Profile) -> TokenRequest | None:
    """The request ``[auth]`` sends (None for a static token): what was asked for."""
    auth = profile.auth
    if auth is None or auth.kind == "static":
        return None
    return token_request(auth_client(profile))


def _audience_note(profile: Profile, token: FetchedToken) -> str | None:
    """A warning when the token's ``aud`` lacks the audience rrdev asked for."""
    request = _fetched_request(profile)
    if request is None:
        return None
    try:
        claims = decode_unverified(token.access_token).claims
    except TokenInputError:
        return None
    return token_audience_note(request, dict(claims))


def with_fetch_hints(profile: Profile, expl: Explanation) -> Explanation:
    """``explain --auth``: the audience hint says what rrdev asked the server for."""
    request = _fetched_request(profile)
    return expl if request is None else fetched_token_explanation(expl, request)


def _note(token: FetchedToken, now: float | None = None) -> str:
    now = time.time() if now is None else now
    where = "from the cache" if token.from_cache else "fetched"
    if token.expires_at is None:
        return f"{where}; no expiry known"
    left = token.expires_at - now
    when = f"expires in {humanize_delta(left)}" if left > 0 else "expired"
    return f"{where} ({fingerprint(token.access_token)}), {when} at {_iso(token.expires_at)}"


def token_summary(
    profile: Profile, token: FetchedToken, *, show_token: bool = False, now: float | None = None
) -> dict[str, Any]:
    """What ``token fetch --json`` prints: the response (token redacted unless
    ``show_token``), where it came from, and its expiry, decoded."""
    now = time.time() if now is None else now
    auth = profile.auth
    claims: dict[str, Any] | None
    try:
        claims = decode_unverified(token.access_token).claims
    except TokenInputError:
        claims = None
    token_url = token.token_url
    if not token_url and auth is not None and auth.kind != "static":
        token_url = token_url_of(auth.client)
    expires_in = None if token.expires_at is None else round(token.expires_at - now)
    return {
        "kind": auth.kind if auth is not None else None,
        "token_url": token_url or None,
        "token_type": token.token_type,
        "access_token": token.access_token if show_token else REDACTED,
        "fingerprint": fingerprint(token.access_token),
        "scope": token.scope,
        "from_cache": token.from_cache,
        "obtained_at": _iso(token.obtained_at),
        "expires_at": _iso(token.expires_at),
        "expires_in": expires_in,
        "expires_in_human": None if expires_in is None else humanize_delta(expires_in),
        "expired": expires_in is not None and expires_in <= 0,
        "jwt": claims is not None,
        "claims": None if claims is None else _redacted_claims(claims),
        "response": {k: v for k, v in token.raw.items() if k.lower() not in SECRET_FIELDS},
    }


def _redacted_claims(claims: dict[str, Any]) -> dict[str, Any]:
    return {k: REDACTED if k.lower() in SECRET_FIELDS else v for k, v in claims.items()}


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")


def run_token_clear() -> int:
    """``rrdev token clear``: remove every cached token, say how many."""
    err = _stderr()
    cache = _cache(err)
    removed = cache.clear()
    noun = "token" if removed == 1 else "tokens"
    if removed:
        sys.stdout.write(f"removed {removed} cached {noun} from {cache.directory}\n")
    else:
        sys.stdout.write(f"no cached tokens in {cache.directory}\n")
    return 0


def auth_token_for_explain(profile: Profile, *, offline: bool, now: float) -> str:
    """``explain --auth``: the token ``[auth]`` gets (cached). With ``--offline`` the
    local keyset stands in for the issuer, so the token is minted with ``[auth]``'s
    scope instead, as ``rrdev check --offline`` does for ``token = "auth"``."""
    if not offline:
        return fetch_for_profile(profile, use_cache=True, timeout=10.0).access_token
    from rrdev.checks.tokens import mint_identity, provider_scope
    from rrdev.core.keyset import Keyset, mint_token

    auth = require_auth(profile)
    issuer, audience, extra = mint_identity(profile)
    scope, scope_claims = provider_scope(profile, auth.client.scope)
    return mint_token(
        Keyset.load_or_create(),
        issuer=issuer,
        audience=audience,
        subject="rrdev-auth@clients",
        scope=scope,
        claims={**extra, **scope_claims},
        expires_in=3600,
        now=now,
    )
