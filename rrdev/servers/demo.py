"""The offline demo: the local issuer, an echo backend and the proxy, in one process.

``start_demo`` runs the three on the caller's event loop, each on its own loopback
port (uvicorn via ``rrdev.servers.runner.ProxyServer``), from the demo profile shipped in the
package (``rrdev/data/demo.toml``, read with ``importlib.resources`` so a wheel install
works). The profile's issuer and backend URLs are the default ports'; the real ones
replace them at start (``with_demo_urls``), so port 0 works.

``demo_requests`` gives the four requests the banner shows: allowed (200), no token
(401), expired token (401) and a DELETE without the scope (403), each with a curl line.

Nothing here prints: ``rrdev.cli.demo`` is the front end. Heavy imports (uvicorn,
aiohttp, httpx) happen inside the functions.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import time
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rrdev.core.errors import NetworkError, RrdevError
from rrdev.core.keyset import mint_token
from rrdev.core.model import Profile
from rrdev.servers.issuer.app import IssuerApp
from rrdev.servers.issuer.config import JWKS_PATH, EventCallback, issuer_config_for
from rrdev.servers.issuer.keys import KeysetWatcher

if TYPE_CHECKING:
    from rrdev.servers.proxy import ProxyApp, RecordSink
    from rrdev.servers.runner import ProxyServer

__all__ = [
    "ADMIN_CLIENT",
    "DEFAULT_BACKEND_PORT",
    "DEFAULT_ISSUER_PORT",
    "DEFAULT_PROXY_PORT",
    "DEMO_PROFILE_NAME",
    "READER_CLIENT",
    "DemoHandle",
    "DemoRequest",
    "demo_profile_text",
    "demo_requests",
    "load_demo_profile",
    "start_demo",
    "with_demo_urls",
]

DEFAULT_PROXY_PORT = 8787
DEFAULT_ISSUER_PORT = 8788
DEFAULT_BACKEND_PORT = 8789
#: How the packaged profile is named in messages. Not a file path on purpose: the
#: proxy watches a profile file for edits, and a reload would drop the real URLs.
DEMO_PROFILE_NAME = "rrdev:data/demo.toml"
READER_CLIENT = "demo-reader"
ADMIN_CLIENT = "demo-admin"
PRODUCTS_PATH = "/api/v1/products"
#: The expired banner token expired this long ago.
EXPIRED_AGO_SECONDS = 300


# ------------------------------------------------------------------ the profile


def demo_profile_text() -> str:
    """The demo profile's TOML, from the installed package."""
    return resources.files("rrdev").joinpath("data", "demo.toml").read_text(encoding="utf-8")


def load_demo_profile(*, issuer_url: str | None = None, backend_url: str | None = None) -> Profile:
    """The demo profile, with the real issuer and backend URLs when given."""
    from rrdev.core.profile import parse_profile

    profile = parse_profile(demo_profile_text(), DEMO_PROFILE_NAME)
    return with_demo_urls(profile, issuer_url=issuer_url, backend_url=backend_url)


def with_demo_urls(
    profile: Profile, *, issuer_url: str | None = None, backend_url: str | None = None
) -> Profile:
    """``profile`` pointed at a running issuer (``proxy_credential.jwks_uri`` and
    ``auth.domain``) and backend (``target.base_url``)."""
    if issuer_url:
        base = issuer_url.rstrip("/")
        cred = replace(profile.proxy_credential, jwks_uri=base + JWKS_PATH)
        profile = replace(profile, proxy_credential=cred)
        if profile.auth is not None:
            client = replace(profile.auth.client, domain=base)
            profile = replace(profile, auth=replace(profile.auth, client=client))
    if backend_url:
        profile = replace(profile, target=replace(profile.target, base_url=backend_url))
    return profile


# ------------------------------------------------------------------ running


@dataclass
class DemoHandle:
    """A running demo: where each part listens, ready tokens, and ``stop()``.

    ``reader_token`` (scope read:products) and ``admin_token`` (read:products
    delete:resources) came from the issuer's ``/oauth/token``; ``expired_token`` was
    signed with the same keyset and expired a few minutes ago.
    """

    profile: Profile
    proxy_url: str
    issuer_url: str
    backend_url: str
    issuer: str
    audience: str
    reader_token: str
    admin_token: str
    expired_token: str
    proxy_app: ProxyApp
    issuer_app: IssuerApp
    servers: tuple[ProxyServer, ...] = field(repr=False)

    @property
    def token_url(self) -> str:
        return self.issuer_app.urls().token

    @property
    def jwks_url(self) -> str:
        return self.issuer_app.urls().jwks

    @property
    def discovery_url(self) -> str:
        return self.issuer_app.urls().discovery

    @property
    def keyset_path(self) -> Path | None:
        keys = self.issuer_app.keys
        return keys.path if isinstance(keys, KeysetWatcher) else None

    @property
    def stopping(self) -> bool:
        return any(s.stopping for s in self.servers)

    def request_stop(self, *, force: bool = False) -> None:
        """Ask every server to shut down (``stop()`` or ``wait()`` finish it)."""
        for server in self.servers:
            server.request_stop(force=force)

    async def wait(self) -> None:
        """Until every server has stopped. ``request_stop`` starts that; a server
        stopping by itself takes the others down with it (gracefully)."""
        waits = [asyncio.ensure_future(s.wait()) for s in self.servers]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            if not self.stopping:
                self.request_stop()
            await asyncio.wait(waits)
        finally:
            for task in waits:
                task.cancel()

    async def stop(self, *, force: bool = False) -> None:
        """Stop the proxy, then the backend and the issuer. Safe to call twice."""
        await _stop_all(self.servers, force=force)

    async def __aenter__(self) -> DemoHandle:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()


async def start_demo(
    *,
    host: str = "127.0.0.1",
    proxy_port: int = DEFAULT_PROXY_PORT,
    issuer_port: int = DEFAULT_ISSUER_PORT,
    backend_port: int = DEFAULT_BACKEND_PORT,
    home: Path | None = None,
    sink: RecordSink | None = None,
    on_event: EventCallback | None = None,
    graceful_timeout: float | None = 5.0,
) -> DemoHandle:
    """Start the issuer, the echo backend and the proxy on the running event loop.

    Ports 0 pick free ones. ``home`` is the keyset's directory (default
    ``$RRDEV_HOME``). ``sink`` receives the proxy's ``RequestRecord``s; ``on_event``
    the proxy's and the issuer's notices (``kind, message``). Raises ``PortInUse``
    (exit 3) naming the part whose port is taken, ``KeysetError`` for a corrupt
    keyset; whatever had started is stopped first.
    """
    from rrdev.servers.echo import EchoApp
    from rrdev.servers.proxy import ProxyApp
    from rrdev.servers.runner import ProxyServer

    profile = load_demo_profile()
    issuer_app = IssuerApp(
        issuer_config_for(profile), keys=KeysetWatcher(home, on_event=on_event), on_event=on_event
    )
    started: list[ProxyServer] = []

    async def serve(app: Any, port: int, what: str, option: str) -> ProxyServer:
        server = ProxyServer(app, host, port, graceful_timeout=graceful_timeout)
        await _start(server, what, option)
        started.append(server)
        return server

    try:
        issuer_server = await serve(issuer_app, issuer_port, "issuer", "--issuer-port")
        issuer_app.base_url = issuer_server.url
        backend_server = await serve(EchoApp(), backend_port, "backend", "--backend-port")
        profile = with_demo_urls(
            profile, issuer_url=issuer_server.url, backend_url=backend_server.url
        )
        proxy_app = ProxyApp(profile, sink=sink, on_event=on_event, reload_interval=0)
        proxy_server = await serve(proxy_app, proxy_port, "proxy", "--port")
        handle = DemoHandle(
            profile=profile,
            proxy_url=proxy_server.url,
            issuer_url=issuer_server.url,
            backend_url=backend_server.url,
            issuer=issuer_app.issuer,
            audience=profile.proxy_credential.audience[0],
            reader_token="",
            admin_token="",
            expired_token="",
            proxy_app=proxy_app,
            issuer_app=issuer_app,
            servers=tuple(reversed(started)),  # stop order: proxy, backend, issuer
        )
        await _fill_tokens(handle)
    except BaseException:
        # Graceful: nothing is in flight yet, and a forced exit would skip uvicorn's
        # lifespan shutdown (which prints a CancelledError traceback).
        await _stop_all(tuple(reversed(started)), force=False)
        raise
    return handle


async def _start(server: ProxyServer, what: str, option: str) -> None:
    from rrdev.servers.runner import PortInUse

    try:
        await server.start()
    except PortInUse as exc:
        raise PortInUse(
            f"the demo {what} cannot listen: {exc.message}",
            f"stop whatever uses it, or pick another port with {option} N (0: any free port)",
        ) from None


async def _stop_all(servers: tuple[ProxyServer, ...], *, force: bool) -> None:
    for server in servers:
        with contextlib.suppress(RuntimeError):  # never started
            await server.stop(force=force)


async def _fill_tokens(handle: DemoHandle) -> None:
    """Reader and admin tokens through the real token endpoint (the flow the banner
    teaches); the expired one signed directly, since no issuer hands those out."""
    handle.reader_token = await fetch_demo_token(handle, READER_CLIENT)
    handle.admin_token = await fetch_demo_token(handle, ADMIN_CLIENT)
    reader = handle.issuer_app.clients[READER_CLIENT]
    now = time.time() - EXPIRED_AGO_SECONDS - 3600
    handle.expired_token = mint_token(
        handle.issuer_app.keyset(),
        issuer=handle.issuer,
        audience=handle.audience,
        subject=f"{READER_CLIENT}@clients",
        scope=" ".join(reader.scopes),
        expires_in=3600,
        now=now,
    )


async def fetch_demo_token(handle: DemoHandle, client_id: str, scope: str | None = None) -> str:
    """A token for a demo client from the running issuer's ``/oauth/token``."""
    import httpx

    client = handle.issuer_app.clients[client_id]
    body = {
        "grant_type": "client_credentials",
        "client_id": client.client_id,
        "client_secret": client.secret,
        "audience": handle.audience,
    }
    if scope is not None:
        body["scope"] = scope
    # trust_env=False: a loopback call must never go through an HTTP(S)_PROXY.
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        try:
            response = await http.post(handle.token_url, json=body)
        except httpx.HTTPError as exc:
            raise NetworkError(f"the demo issuer did not answer: {exc}") from None
    if response.status_code != 200:
        raise RrdevError(
            f"the demo issuer refused a token for {client_id}: HTTP {response.status_code} "
            f"{response.text[:200]}"
        )
    return str(response.json()["access_token"])


# ------------------------------------------------------------------ the banner's requests


@dataclass(frozen=True)
class DemoRequest:
    """One request the banner suggests, with the answer it gets and why."""

    title: str
    method: str
    url: str
    headers: tuple[tuple[str, str], ...]
    expected_status: int
    expected_reason: str
    expected_rule: str | None
    meaning: str

    @property
    def curl(self) -> str:
        """A ready-to-paste curl command on one line (the token is never wrapped)."""
        argv = ["curl", "-i"]
        if self.method != "GET":
            argv += ["-X", self.method]
        argv.append(self.url)
        for name, value in self.headers:
            argv += ["-H", f"{name}: {value}"]
        return shlex.join(argv)


def demo_requests(handle: DemoHandle) -> list[DemoRequest]:
    """The banner's four requests: allowed, no token, expired token, missing scope."""
    products = handle.proxy_url + PRODUCTS_PATH

    def bearer(token: str) -> tuple[tuple[str, str], ...]:
        return (("Authorization", f"Bearer {token}"),)

    return [
        DemoRequest(
            "a reader lists products",
            "GET",
            products,
            bearer(handle.reader_token),
            200,
            "allowed",
            "read-catalog",
            "the token verified and rule read-catalog allows it, so the proxy forwarded "
            "the request: the echo backend's answer shows what arrived",
        ),
        DemoRequest(
            "no token",
            "GET",
            products,
            (),
            401,
            "token_missing",
            None,
            "nothing to verify: the proxy refuses before any rule runs",
        ),
        DemoRequest(
            "an expired token",
            "GET",
            products,
            bearer(handle.expired_token),
            401,
            "token_expired",
            None,
            f"signed by the right key, but its exp is {EXPIRED_AGO_SECONDS // 60} minutes "
            "in the past",
        ),
        DemoRequest(
            "a reader tries to delete",
            "DELETE",
            products + "/1",
            bearer(handle.reader_token),
            403,
            "rule_denied",
            "scope-gate-delete",
            "the token is valid, but rule scope-gate-delete denies a DELETE whose token "
            "lacks delete:resources (the demo-admin client has it)",
        ),
    ]
