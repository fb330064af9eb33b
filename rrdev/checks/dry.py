"""Dry runs (the default): ``explain.decide`` -- verification and rules, nothing forwarded.

``expect = "allowed"`` and ``expect = 200`` both mean "would be forwarded"; an expected
status rrdev itself never answers (404, 201, ...) can only be the backend's, so a dry
run checks that the request would reach it. With ``offline`` the local keyset's JWKS
stands in for the issuer's.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from rrdev.checks.model import CheckOptions, CheckRequest, Mode, Outcome
from rrdev.checks.tokens import TokenSource
from rrdev.core.explain import JwksVerifier, decide
from rrdev.core.filters import with_planned_filters
from rrdev.core.model import Profile
from rrdev.core.oidc import jwks_source_of

__all__ = ["DryRunner", "dry_runner", "jwks_source"]


class DryRunner:
    """``explain.decide`` as of ``now``: verification and rules, nothing forwarded."""

    mode: Mode = "dry"

    def __init__(self, profile: Profile, verifier: JwksVerifier | None, now: float) -> None:
        self.profile = profile
        self.verifier = verifier
        self.now = now

    async def run(self, request: CheckRequest) -> Outcome:
        expl = await decide(self.profile, request.incoming(), self.verifier, now=self.now)
        return Outcome.from_explanation(with_planned_filters(self.profile, expl))


@contextlib.asynccontextmanager
async def dry_runner(
    profile: Profile, options: CheckOptions, tokens: TokenSource, now: float
) -> AsyncIterator[DryRunner]:
    from rrdev.clients.jwks import JwksCache

    cache = None
    source = jwks_source(profile, options, tokens)
    if profile.proxy_credential.auth_type == "jwtVerify" and source is not None:
        cred = profile.proxy_credential
        cache = JwksCache(source, ttl=cred.jwks_ttl_seconds, timeout=min(options.timeout, 10))
    try:
        verifier = JwksVerifier(profile.proxy_credential, cache) if cache else None
        yield DryRunner(profile, verifier, now)
    finally:
        if cache is not None:
            await cache.aclose()


def jwks_source(profile: Profile, options: CheckOptions, tokens: TokenSource) -> Any:
    """``--jwks`` wins, then ``--offline`` (the local keyset's JWKS), then the profile's
    (its jwks_uri, or OIDC discovery of its issuer)."""
    if options.jwks:
        return options.jwks
    if options.offline:
        return tokens.keyset.jwks()
    return jwks_source_of(profile.proxy_credential)
