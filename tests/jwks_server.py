"""A real JWKS endpoint on 127.0.0.1 that tests can change, stop and start again on the
same port (an issuer rotating or removing keys, an outage), and tokens for it signed
with the session's RSA keys (``factories.rsa_key``) and dated by the real clock."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from factories import AUDIENCE, ISSUER, default_claims, jwk_of, make_jwks, make_token, rsa_key

__all__ = ["JwksServer", "jwtverify_lines", "key_set", "run_jwks_server", "signed"]


@dataclass
class JwksServer:
    """Serves ``document`` at ``/.well-known/jwks.json``; ``fetches`` counts requests.
    ``discovery`` (when set) is served at ``/.well-known/openid-configuration``
    (``discovery_fetches`` counts those); ``issuer`` is this server's own issuer URL."""

    document: dict[str, Any]
    port: int = 0
    fetches: int = 0
    discovery: dict[str, Any] | None = None
    discovery_fetches: int = 0
    _runner: web.AppRunner | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/.well-known/jwks.json"

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def discovery_of(self, **overrides: Any) -> dict[str, Any]:
        """A discovery document naming this server (its issuer and JWKS URL)."""
        return {"issuer": self.issuer, "jwks_uri": self.url, **overrides}

    async def start(self) -> None:
        """Listen (again) on ``port``; the first start picks a free one."""

        async def jwks(request: web.Request) -> web.Response:
            self.fetches += 1
            return web.json_response(self.document)

        async def discovery(request: web.Request) -> web.Response:
            self.discovery_fetches += 1
            if self.discovery is None:
                return web.json_response({"error": "not found"}, status=404)
            return web.json_response(self.discovery)

        app = web.Application()
        app.router.add_get("/.well-known/jwks.json", jwks)
        app.router.add_get("/.well-known/openid-configuration", discovery)
        runner = web.AppRunner(app, shutdown_timeout=0.2, handle_signals=False)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", self.port)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        self._runner = runner

    async def stop(self) -> None:
        """Close the listener and every connection: fetches are refused until ``start``."""
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()


@asynccontextmanager
async def run_jwks_server(document: dict[str, Any]) -> AsyncIterator[JwksServer]:
    server = JwksServer(document)
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


def key_set(*kids: str, replaced: tuple[str, ...] = ()) -> dict[str, Any]:
    """A JWKS with the session key named after each kid (``replaced`` kids get another
    key under the same kid)."""
    return make_jwks(*(jwk_of(rsa_key(f"{k}-new" if k in replaced else k), k) for k in kids))


def signed(kid: str, **claims: Any) -> str:
    """A valid token signed by the key of ``kid`` (as in ``key_set``), dated now."""
    now = int(time.time())
    return make_token(rsa_key(kid), default_claims(iat=now - 60, exp=now + 3600, **claims), kid=kid)


def jwtverify_lines(jwks_uri: str, extra: str = "") -> str:
    """The [proxy_credential] body for ``proxy_support.profile_text``."""
    return f'jwks_uri = "{jwks_uri}"\naudience = "{AUDIENCE}"\nissuer = "{ISSUER}"\n{extra}'
