"""The ``oauth2`` target credential: the proxy fetches the backend's own token over real
sockets -- from the local issuer, or from a small token endpoint of our own that can be
slow or broken -- keeps it, refreshes it before expiry without stalling requests, and
answers 502 ``upstream_token_unavailable`` when the token endpoint fails.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
from proxy_support import (
    Backend,
    bearer,
    free_port,
    header_values,
    mint,
    profile_text,
    wait_for,
)

from rrdev.core.model import IssuerClient, IssuerConfig, Secret
from rrdev.core.profile import load_profile
from rrdev.core.records import RequestRecord
from rrdev.servers.issuer.app import IssuerApp
from rrdev.servers.proxy import Overrides, ProxyApp
from rrdev.servers.runner import ProxyServer

BACKEND_ISSUER = "https://backend-idp.rrdev.local/"
BACKEND_AUD = "https://orders.internal"
BACKEND_SECRET = "MARKER-backend-Secret-9Qz"
PATH = "/api/v1/products"


class Clock:
    """Epoch time that only tests move forward, by hand (shared by the proxy and the
    issuer): frozen, so a loaded machine's slow steps never age a token by themselves."""

    def __init__(self) -> None:
        self.start = time.time()
        self.offset = 0.0

    def __call__(self) -> float:
        return self.start + self.offset

    def advance(self, seconds: float) -> None:
        self.offset += seconds


@pytest.fixture(autouse=True)
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RR_BACKEND_SECRET", BACKEND_SECRET)


@pytest.fixture
def clock() -> Clock:
    return Clock()


def credential(token_url: str, *, scope: str = "orders:read", extra: str = "") -> str:
    return (
        'auth_type = "oauth2"\n'
        f'token_url = "{token_url}"\n'
        'client_id = "backend-svc"\n'
        'client_secret = "${RR_BACKEND_SECRET}"\n'
        f'audience = "{BACKEND_AUD}"\n'
        f'scope = "{scope}"\n'
        f"{extra}"
    )


# ------------------------------------------------------------------ running parts


@dataclass
class Running:
    url: str
    events: list[tuple[str, str]] = field(default_factory=list)

    def count(self, kind: str) -> int:
        return sum(1 for k, _ in self.events if k == kind)


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    server = ProxyServer(app, "127.0.0.1", 0, graceful_timeout=1)
    await server.start()
    try:
        yield server.url
    finally:
        await server.stop()


@asynccontextmanager
async def run_issuer(clock: Clock, lifetime: int) -> AsyncIterator[Running]:
    """The local issuer with one client for the backend, dating tokens by ``clock``."""
    config = IssuerConfig(
        issuer=BACKEND_ISSUER,
        clients=(
            IssuerClient(
                "backend-svc", Secret("${RR_BACKEND_SECRET}"), (BACKEND_AUD,), ("orders:read",)
            ),
        ),
        token_lifetime_seconds=lifetime,
    )
    events: list[tuple[str, str]] = []
    app = IssuerApp(config, clock=clock, on_event=lambda kind, msg: events.append((kind, msg)))
    async with serving(app) as url:
        yield Running(url + "/oauth/token", events)


@dataclass
class TokenEndpoint:
    """A token endpoint of our own (ASGI): ``delay`` before answering, ``mode``
    "ok" (``backend-token-<n>``), "html", "refuse" (401 invalid_client) or "garbage"."""

    expires_in: int = 3600
    delay: float = 0.0
    mode: str = "ok"
    hits: int = 0
    url: str = ""

    async def __call__(self, scope: Any, receive: Callable[..., Any], send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        while (await receive()).get("more_body"):
            pass
        self.hits += 1
        number = self.hits
        await asyncio.sleep(self.delay)
        status, kind, body = 200, b"application/json", b""
        if self.mode == "ok":
            doc = {"access_token": f"backend-token-{number}", "expires_in": self.expires_in}
            body = json.dumps({**doc, "token_type": "Bearer"}).encode()
        elif self.mode == "html":
            kind, body = b"text/html", b"<html><body>Sign in</body></html>"
        elif self.mode == "refuse":
            status = 401
            body = json.dumps(
                {"error": "invalid_client", "error_description": f"no client {BACKEND_SECRET}"}
            ).encode()
        else:
            body = b'{"access_token": "x"'
        headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode())]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def run_endpoint(**options: Any) -> AsyncIterator[TokenEndpoint]:
    endpoint = TokenEndpoint(**options)
    async with serving(endpoint) as url:
        endpoint.url = url + "/token"
        yield endpoint


@dataclass
class Proxy:
    app: ProxyApp
    url: str
    records: list[RequestRecord]
    events: list[tuple[str, str]]
    http: httpx.AsyncClient

    async def get(self, path: str = PATH, token: str | None = None) -> httpx.Response:
        return await self.http.get(self.url + path, headers=bearer(token or mint()))

    async def many(self, n: int) -> list[httpx.Response]:
        caller = mint()
        return list(await asyncio.gather(*(self.get(token=caller) for _ in range(n))))


@asynccontextmanager
async def run_proxy(path: Path, clock: Clock) -> AsyncIterator[Proxy]:
    records: list[RequestRecord] = []
    events: list[tuple[str, str]] = []
    app = ProxyApp(
        load_profile(path),
        overrides=Overrides(offline=True),
        sink=records.append,
        on_event=lambda kind, msg: events.append((kind, msg)),
        clock=clock,
        reload_interval=0.05,
    )
    async with serving(app) as url, httpx.AsyncClient(trust_env=False, timeout=10) as http:
        yield Proxy(app, url, records, events, http)


def write(tmp_path: Path, backend: Backend, cred: str, proxy: str = "") -> Path:
    path = tmp_path / "rrdev.toml"
    path.write_text(profile_text(backend.url, credential=cred, proxy=proxy))
    return path


def backend_token(response: httpx.Response) -> str:
    [value] = header_values(response.json(), "authorization")
    scheme, _, token = value.partition(" ")
    assert scheme == "Bearer"
    return token


def assert_no_secret(proxy: Proxy, *responses: httpx.Response) -> None:
    shown = "".join(r.text + json.dumps(dict(r.headers)) for r in responses)
    shown += json.dumps(proxy.events) + "".join(repr(r) for r in proxy.records)
    shown += json.dumps([r.explanation.to_dict() for r in proxy.records], default=str)
    assert BACKEND_SECRET not in shown


# ------------------------------------------------------------------ fetching and sharing


async def test_twenty_concurrent_requests_share_one_token_fetch(
    keyset: Path, backend: Backend, tmp_path: Path, clock: Clock
) -> None:
    async with run_issuer(clock, lifetime=600) as issuer:
        path = write(tmp_path, backend, credential(issuer.url))
        async with run_proxy(path, clock) as proxy:
            caller = mint()
            responses = await asyncio.gather(*(proxy.get(token=caller) for _ in range(20)))
            assert [r.status_code for r in responses] == [200] * 20
            assert issuer.count("token_issued") == 1
            tokens = {backend_token(r) for r in responses}
            assert len(tokens) == 1 and caller not in tokens
            claims = jwt.decode(tokens.pop(), options={"verify_signature": False})
            assert claims["aud"] == BACKEND_AUD and claims["sub"] == "backend-svc@clients"
            assert claims["scope"] == "orders:read"
            assert "token from" in proxy.app.info().credential
            await wait_for(lambda: len(proxy.records) == 20)
            notes = [n for r in proxy.records for n in r.notes if "fetched a backend token" in n]
            assert len(notes) >= 1
            assert_no_secret(proxy, *responses)


async def test_caller_authorization_is_replaced_and_can_be_passed_on(
    keyset: Path, backend: Backend, tmp_path: Path, clock: Clock
) -> None:
    async with run_issuer(clock, lifetime=600) as issuer:
        proxy_opts = 'forward_authorization_as = "X-Original-Authorization"\n'
        path = write(tmp_path, backend, credential(issuer.url), proxy=proxy_opts)
        async with run_proxy(path, clock) as proxy:
            caller = mint()
            response = await proxy.get(token=caller)
            echo = response.json()
            assert len(header_values(echo, "authorization")) == 1
            assert backend_token(response) != caller
            assert header_values(echo, "x-original-authorization") == [f"Bearer {caller}"]


async def test_token_is_refreshed_in_the_background_before_expiry(
    keyset: Path, backend: Backend, tmp_path: Path, clock: Clock
) -> None:
    # A 10 s token is refreshed in its last second (a tenth of its lifetime).
    async with run_issuer(clock, lifetime=10) as issuer:
        path = write(tmp_path, backend, credential(issuer.url))
        async with run_proxy(path, clock) as proxy:
            first = backend_token(await proxy.get())
            clock.advance(5)
            assert backend_token(await proxy.get()) == first
            assert issuer.count("token_issued") == 1
            clock.advance(4.5)  # within the margin: still valid, refreshed behind the scenes
            assert backend_token(await proxy.get()) == first
            await wait_for(lambda: issuer.count("token_issued") == 2)
            second = backend_token(await proxy.get())
            assert second != first
            assert (
                jwt.decode(second, options={"verify_signature": False})["iat"]
                > jwt.decode(first, options={"verify_signature": False})["iat"]
            )
            assert issuer.count("token_issued") == 2


async def test_refresh_window_requests_never_wait_for_a_slow_token_endpoint(
    keyset: Path, backend: Backend, tmp_path: Path, clock: Clock
) -> None:
    # The refresh takes 4 s: a request that waited for it would take that long, so
    # "well under 4 s" tells the two apart even on a loaded machine. The first fetch
    # takes 1 s: long enough to show that the first request waited for it.
    async with run_endpoint(expires_in=100, delay=1.0) as endpoint:
        path = write(tmp_path, backend, credential(endpoint.url))
        async with run_proxy(path, clock) as proxy:
            started = time.perf_counter()
            assert backend_token(await proxy.get()) == "backend-token-1"
            assert time.perf_counter() - started >= 1.0  # the first one had to wait
            endpoint.delay = 4.0
            clock.advance(95)  # refresh margin: 10 s before expiry
            started = time.perf_counter()
            responses = await proxy.many(20)
            assert time.perf_counter() - started < 3.0  # nobody waited for the fetch
            assert {backend_token(r) for r in responses} == {"backend-token-1"}
            await wait_for(lambda: endpoint.hits == 2)
            # Requests go on while the refresh is slow, none of them starting another,
            # until the new token arrives (no sooner than 4 s after the fetch began).
            deadline = time.perf_counter() + 15
            while (token := backend_token(await proxy.get())) == "backend-token-1":
                assert time.perf_counter() < deadline, "the refreshed token never arrived"
                await asyncio.sleep(0.05)
            assert time.perf_counter() - started >= 4.0
            assert token == "backend-token-2"
            assert endpoint.hits == 2  # one refresh for all those requests


async def test_an_expired_token_is_fetched_once_for_concurrent_requests(
    keyset: Path, backend: Backend, tmp_path: Path, clock: Clock
) -> None:
    async with run_endpoint(expires_in=5, delay=0.3) as endpoint:
        path = write(tmp_path, backend, credential(endpoint.url))
        async with run_proxy(path, clock) as proxy:
            assert backend_token(await proxy.get()) == "backend-token-1"
            clock.advance(6)  # expired, with no request in the refresh window
            responses = await proxy.many(20)
            assert [r.status_code for r in responses] == [200] * 20
            assert {backend_token(r) for r in responses} == {"backend-token-2"}
            assert endpoint.hits == 2


# ------------------------------------------------------------------ failures


async def test_a_refusing_token_endpoint_is_502_upstream_token_unavailable(
    keyset: Path, backend: Backend, tmp_path: Path, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with run_issuer(clock, lifetime=600) as issuer:
        monkeypatch.setenv("RR_BACKEND_SECRET", BACKEND_SECRET + "-wrong")
        path = write(tmp_path, backend, credential(issuer.url))
        async with run_proxy(path, clock) as proxy:
            response = await proxy.get()
            assert response.status_code == 502
            body = response.json()
            assert body["reason"] == "upstream_token_unavailable"
            # The caller gets fixed words; what the endpoint said is in the record.
            assert body["message"] == "the backend's token endpoint failed; see the rrdev console"
            assert issuer.url not in response.text
            assert response.headers["requestrocket-proxy-code"] == "proxy-access-granted"
            assert response.headers["requestrocket-proxy-message"] == body["message"]
            assert backend.hits == 0
            await wait_for(lambda: len(proxy.records) == 1)
            record = proxy.records[0]
            assert record.reason == "upstream_token_unavailable"
            said = record.explanation
            assert "401" in said.message and "access_denied" in said.message
            assert issuer.url in said.message
            assert "client_secret" in said.hint
            assert_no_secret(proxy, response)
            assert BACKEND_SECRET not in json.dumps(issuer.events)


async def test_an_unreachable_token_endpoint_is_502(
    keyset: Path, backend: Backend, tmp_path: Path, clock: Clock
) -> None:
    url = f"http://127.0.0.1:{free_port()}/token"
    async with run_proxy(write(tmp_path, backend, credential(url)), clock) as proxy:
        response = await proxy.get()
        assert response.status_code == 502
        body = response.json()
        assert body["reason"] == "upstream_token_unavailable"
        await wait_for(lambda: len(proxy.records) == 1)
        assert "cannot connect to the token endpoint" in proxy.records[0].explanation.message
        assert backend.hits == 0


@pytest.mark.parametrize(
    ("mode", "problem"),
    [
        ("html", "HTML page"),
        ("garbage", "not JSON"),
        ("refuse", "invalid_client"),
    ],
)
async def test_a_broken_token_endpoint_is_502_and_the_secret_stays_hidden(
    keyset: Path, backend: Backend, tmp_path: Path, clock: Clock, mode: str, problem: str
) -> None:
    async with run_endpoint(mode=mode) as endpoint:
        proxy_running = run_proxy(write(tmp_path, backend, credential(endpoint.url)), clock)
        async with proxy_running as proxy:
            response = await proxy.get()
            assert response.status_code == 502
            assert response.json()["reason"] == "upstream_token_unavailable"
            await wait_for(lambda: len(proxy.records) == 1)
            assert problem in proxy.records[0].explanation.message
            assert problem not in response.text
            assert_no_secret(proxy, response)


async def test_a_failure_is_remembered_briefly_then_retried(
    keyset: Path, backend: Backend, tmp_path: Path, clock: Clock
) -> None:
    async with run_endpoint(mode="refuse") as endpoint:
        proxy_running = run_proxy(write(tmp_path, backend, credential(endpoint.url)), clock)
        async with proxy_running as proxy:
            responses = [await proxy.get() for _ in range(3)]
            assert [r.status_code for r in responses] == [502] * 3
            assert endpoint.hits == 1  # a down endpoint is not asked by every request
            endpoint.mode = "ok"
            clock.advance(2)
            response = await proxy.get()
            assert response.status_code == 200
            assert backend_token(response) == "backend-token-2"


async def test_a_failed_background_refresh_keeps_the_valid_token(
    keyset: Path, backend: Backend, tmp_path: Path, clock: Clock
) -> None:
    async with run_endpoint(expires_in=100) as endpoint:
        proxy_running = run_proxy(write(tmp_path, backend, credential(endpoint.url)), clock)
        async with proxy_running as proxy:
            assert backend_token(await proxy.get()) == "backend-token-1"
            endpoint.mode = "html"
            clock.advance(95)
            assert backend_token(await proxy.get()) == "backend-token-1"
            await wait_for(lambda: endpoint.hits == 2)
            await asyncio.sleep(0.1)
            assert backend_token(await proxy.get()) == "backend-token-1"  # still valid
            clock.advance(10)  # now it has expired and the endpoint still fails
            response = await proxy.get()
            assert response.status_code == 502
            assert response.json()["reason"] == "upstream_token_unavailable"


# ------------------------------------------------------------------ reload


async def test_a_reload_drops_the_backend_token(
    keyset: Path, backend: Backend, tmp_path: Path, clock: Clock
) -> None:
    async with run_endpoint() as endpoint:
        path = write(tmp_path, backend, credential(endpoint.url))
        async with run_proxy(path, clock) as proxy:
            assert backend_token(await proxy.get()) == "backend-token-1"
            assert backend_token(await proxy.get()) == "backend-token-1"
            path.write_text(
                profile_text(backend.url, credential=credential(endpoint.url, scope="orders:write"))
            )
            await wait_for(lambda: any(kind == "reloaded" for kind, _ in proxy.events))
            assert backend_token(await proxy.get()) == "backend-token-2"
            assert endpoint.hits == 2
