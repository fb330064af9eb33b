"""Attack: slipping a request past the checks through the proxy's fast lane.

With no record sink (``rrdev up --quiet``) the common allowed request takes a shorter
path (``rrdev.servers.proxy.fastlane``), and its verdicts are remembered per method,
path and token. An attacker who has made one allowed request (so the token is cached
and the verdict remembered) then varies it: a dot segment, an encoded slash, an
absolute-form target, a second Authorization or Host, a rebinding Host, a method
override, another method, an expired or forged token, a Connection header naming a
header, an underscore twin, a forwarded chain. Each must get exactly the full path's
answer, over real sockets, and the backend must see nothing it would not have seen
without the lane. A remembered verdict must not
outlive a profile edit or a token's ``exp``, and a stalled or absent backend still
gets 504/502.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from factories import FakeClock
from proxy_support import (
    SEED_RULES,
    Backend,
    free_port,
    header_values,
    mint,
    profile_text,
    raw_request,
)

from rrdev.core.profile import load_profile
from rrdev.servers.proxy import Overrides, ProxyApp
from rrdev.servers.runner import ProxyServer

pytestmark = pytest.mark.usefixtures("keyset")

_CREDENTIAL = 'auth_type = "bearer"\ntoken = "backend-secret"\n'
PATH = "/api/v1/products"


@asynccontextmanager
async def _quiet_proxy(
    profile: Path, clock: Any = time.time, reload_interval: float = 0
) -> AsyncIterator[tuple[ProxyApp, ProxyServer]]:
    """``rrdev up --quiet``: no record sink, so the fast lane is in use."""
    app = ProxyApp(
        load_profile(profile),
        overrides=Overrides(offline=True),
        clock=clock,
        reload_interval=reload_interval,
    )
    server = ProxyServer(app, "127.0.0.1", 0, graceful_timeout=2)
    await server.start()
    try:
        yield app, server
    finally:
        await server.stop()


def _profile(tmp_path: Path, base_url: str, target: str = "") -> Path:
    path = tmp_path / "profile.toml"
    path.write_text(profile_text(base_url, credential=_CREDENTIAL, target=target))
    return path


async def _allowed_once(server: ProxyServer, app: ProxyApp, backend: Backend, token: str) -> None:
    """The attacker's good request, twice: the first (full path) verifies and caches the
    token, the second takes the fast lane and its verdict is remembered."""
    for _ in range(2):
        auth = [("Authorization", f"Bearer {token}")]
        answer = await raw_request(server.port, "GET", PATH, auth)
        assert answer.status == 200, answer.body
    lane = app._state.fast
    assert lane is not None and len(lane._memo) == 1  # it took the fast lane
    echo = backend.seen[-1]
    assert header_values(echo, "authorization") == ["Bearer backend-secret"]


def _refused(answer: Any, status: int, reason: str, code: str = "denied") -> None:
    assert answer.status == status, answer.body
    assert answer.json()["reason"] == reason
    assert answer.header("requestrocket-proxy-code") == f"proxy-access-{code}"


_VARIANTS = [
    ("GET", "/api/v1/../admin", [], 400, "ambiguous_path"),
    ("GET", "/api/v1/%2e%2e/admin", [], 400, "ambiguous_path"),
    ("GET", "/api%2Fv1/products", [], 400, "ambiguous_path"),
    ("GET", "/api/v1/products;x=1", [], 400, "ambiguous_path"),
    ("GET", "http://evil.example/api/v1/products", [], 400, "ambiguous_path"),
    ("GET", PATH, [("Authorization", "{auth}")], 400, "duplicate_authorization"),
    ("GET", PATH, [("Host", "evil.example")], 421, "host_not_allowed"),
    ("GET", PATH, [("X-HTTP-Method-Override", "DELETE")], 400, "method_override_refused"),
    ("GET", PATH + "?_method=DELETE", [], 400, "method_override_refused"),
    ("DELETE", PATH, [], 403, "rule_denied"),
    ("GET", PATH, [("Host", "localhost")], 421, "host_not_allowed"),  # a second Host
    ("GET", PATH, [("X_Http_Method_Override", "DELETE")], 200, None),  # dropped, not judged
]


async def test_variants_of_an_allowed_request_get_the_full_paths_answer(
    tmp_path: Path, backend: Backend
) -> None:
    token = mint()
    async with _quiet_proxy(_profile(tmp_path, backend.url)) as (app, server):
        await _allowed_once(server, app, backend, token)
        auth = ("Authorization", f"Bearer {token}")
        for method, target, extra, status, reason in _VARIANTS:
            hits = backend.hits
            headers = [auth, *((k, v.format(auth=auth[1])) for k, v in extra)]
            answer = await raw_request(server.port, method, target, headers)
            assert answer.status == status, (method, target, extra, answer.body)
            if reason is not None:
                _refused(answer, status, reason)
            if status == 200:  # forwarded without the twin
                assert "x_http_method_override" not in {k for k, _ in backend.seen[-1]["headers"]}
            else:
                assert backend.hits == hits, (method, target, extra)  # never forwarded


async def test_bad_tokens_are_refused_though_a_good_one_is_cached(
    tmp_path: Path, backend: Backend
) -> None:
    token = mint()
    forged = token[:-6] + ("AAAAAA" if not token.endswith("AAAAAA") else "BBBBBB")
    async with _quiet_proxy(_profile(tmp_path, backend.url)) as (app, server):
        await _allowed_once(server, app, backend, token)
        hits = backend.hits
        for value, reason in [
            (f"Bearer {forged}", "signature_invalid"),
            (f"Bearer {mint(expires_in=-60)}", "token_expired"),
            ("Basic dXNlcjpwdw==", "token_malformed"),
        ]:
            answer = await raw_request(server.port, "GET", PATH, [("Authorization", value)])
            _refused(answer, 401, reason)
        _refused(await raw_request(server.port, "GET", PATH), 401, "token_missing")
        assert backend.hits == hits


async def test_a_remembered_verdict_does_not_outlive_the_tokens_exp(
    tmp_path: Path, backend: Backend
) -> None:
    clock = FakeClock(time.time())
    token = mint(expires_in=60)
    async with _quiet_proxy(_profile(tmp_path, backend.url), clock=clock) as (app, server):
        await _allowed_once(server, app, backend, token)
        clock.advance(120)
        hits = backend.hits
        answer = await raw_request(server.port, "GET", PATH, [("Authorization", f"Bearer {token}")])
        _refused(answer, 401, "token_expired")
        assert backend.hits == hits


async def test_a_remembered_verdict_does_not_outlive_a_profile_edit(
    tmp_path: Path, backend: Backend
) -> None:
    token = mint()
    profile = _profile(tmp_path, backend.url)
    async with _quiet_proxy(profile, reload_interval=0.01) as (app, server):
        await _allowed_once(server, app, backend, token)
        # The edit: the allow-all rule is gone, so the proxy's default (deny) decides.
        profile.write_text(profile_text(backend.url, credential=_CREDENTIAL, rules=""))
        await app.check_reload(force=True)
        hits = backend.hits
        answer = await raw_request(server.port, "GET", PATH, [("Authorization", f"Bearer {token}")])
        _refused(answer, 403, "default_denied")
        assert backend.hits == hits


async def test_headers_the_full_path_drops_never_reach_the_backend(
    tmp_path: Path, backend: Backend
) -> None:
    token = mint()
    async with _quiet_proxy(_profile(tmp_path, backend.url)) as (app, server):
        await _allowed_once(server, app, backend, token)
        sent = [
            ("Authorization", f"Bearer {token}"),
            ("X_Forwarded_Host", "evil.example"),
            ("Connection", "close, X-Secret"),
            ("X-Secret", "hop"),
            ("X-Forwarded-For", "10.9.8.7"),
            ("X-Original-URL", "/admin"),
            ("Proxy-Authorization", "Basic c2VjcmV0"),
        ]
        answer = await raw_request(server.port, "GET", PATH, sent)
        assert answer.status == 200, answer.body
        echo = backend.seen[-1]
        names = {k.lower() for k, _ in echo["headers"]}
        assert not names & {"x_forwarded_host", "x-secret", "x-original-url"}
        assert "proxy-authorization" not in names
        assert header_values(echo, "x-forwarded-for") == ["10.9.8.7, 127.0.0.1"]
        assert header_values(echo, "authorization") == ["Bearer backend-secret"]


async def test_a_stalled_or_absent_backend_still_gets_504_and_502(
    tmp_path: Path, backend: Backend
) -> None:
    token = mint()
    auth = [("Authorization", f"Bearer {token}")]
    slow = _profile(tmp_path, backend.url, target="timeout_seconds = 0.3\n")
    async with _quiet_proxy(slow) as (app, server):
        await _allowed_once(server, app, backend, token)
        answer = await raw_request(server.port, "GET", "/slow", auth)  # the backend sleeps 1 s
        _refused(answer, 504, "upstream_timeout", "granted")  # access was, the backend failed
        assert app._state.fast is not None and any(k[1] == b"/slow" for k in app._state.fast._memo)
    gone = tmp_path / "gone"
    gone.mkdir()
    async with _quiet_proxy(_profile(gone, f"http://127.0.0.1:{free_port()}")) as (_app, server):
        for _ in range(2):  # the second time with the token cached and the verdict remembered
            answer = await raw_request(server.port, "GET", PATH, auth)
            _refused(answer, 502, "upstream_unreachable", "granted")
            assert "backend-secret" not in answer.body.decode()


async def test_seed_rules_still_decide_in_the_lane(tmp_path: Path, backend: Backend) -> None:
    # The scope gate: DELETE without delete:resources is refused even after the same
    # caller's GET was remembered; with the scope it passes.
    reader, deleter = mint(), mint(scope="read:products delete:resources")
    assert "scope-gate-delete" in SEED_RULES
    async with _quiet_proxy(_profile(tmp_path, backend.url)) as (app, server):
        await _allowed_once(server, app, backend, reader)
        for token, status in [(reader, 403), (deleter, 200), (reader, 403), (deleter, 200)]:
            answer = await raw_request(
                server.port, "DELETE", PATH, [("Authorization", f"Bearer {token}")]
            )
            assert answer.status == status, answer.body
        await asyncio.sleep(0)


async def test_a_body_that_stalls_after_the_head_is_still_cut_off(tmp_path: Path) -> None:
    # The lane waits for the head under one shared deadline timer; a body still
    # arriving gets aiohttp's per-read timeout back, so a backend that stalls mid-body
    # cannot hold the caller's connection for ever.
    from aiohttp import web

    async def stall(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Length": "100"})
        await response.prepare(request)
        await response.write(b"x" * 10)
        await asyncio.sleep(5)
        return response

    app = web.Application()
    app.router.add_get("/{tail:.*}", stall)
    runner = web.AppRunner(app, shutdown_timeout=0.1, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    token = mint()
    auth = [("Authorization", f"Bearer {token}")]
    try:
        profile = _profile(tmp_path, f"http://127.0.0.1:{port}", target="timeout_seconds = 0.3\n")
        async with _quiet_proxy(profile) as (proxy, server):
            await raw_request(server.port, "GET", "/warm", auth)  # caches the token
            started = time.monotonic()
            answer = await asyncio.wait_for(raw_request(server.port, "GET", PATH, auth), 4)
            assert time.monotonic() - started < 3
            assert answer.status == 200 and len(answer.body) < 100  # cut short
            assert proxy._state.fast is not None and proxy._state.fast._memo  # the lane's
    finally:
        await runner.cleanup()
