"""The proxy's hot path (issue 12): the rules decide without building the trace, and
whoever reads a trace still gets all of it.

Real uvicorn on loopback, real tokens from the local keyset, the real echo backend. An
allowed request's record holds a Decision whose trace is not built until read, then
equals the full evaluation (every scope, rule and condition); a refusal's JSON body
carries the full trace; a heavy run (offloaded to the rules worker) comes back traced.
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import httpx
import pytest
from proxy_support import (
    Backend,
    bearer,
    header_values,
    mint,
    profile_text,
    run_proxy,
    wait_for,
)

from rrdev.core.explain import IncomingRequest, decide
from rrdev.core.profile import load_profile
from rrdev.core.records import RequestFacts
from rrdev.core.rules import evaluate_profile

pytestmark = pytest.mark.usefixtures("keyset")


@pytest.fixture
def profile(tmp_path: Path, backend: Backend) -> Path:
    path = tmp_path / "rrdev.toml"
    path.write_text(profile_text(backend.url))
    return path


def _traced(profile: Path, method: str, path: str, token: str) -> dict:
    """The full evaluation, made the slow way, for comparison."""
    claims = json.loads(_payload(token))
    facts = RequestFacts(method, path, path)
    return evaluate_profile(load_profile(profile), facts, claims).to_dict()


def _payload(token: str) -> str:
    import base64

    part = token.split(".")[1]
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)).decode()


async def test_an_allowed_request_is_decided_without_building_the_trace(
    profile: Path, backend: Backend
) -> None:
    token = mint()
    async with run_proxy(profile) as proxy, httpx.AsyncClient() as client:
        response = await client.get(f"{proxy.url}/api/v1/products", headers=bearer(token))
        await wait_for(lambda: len(proxy.records) == 1)
    assert response.status_code == 200 and backend.hits == 1
    record = proxy.records[0]
    decision = record.explanation.decision
    assert decision is not None and decision.allowed
    assert record.deciding_rule == "allow-authenticated"
    assert "scopes" not in decision.__dict__  # nobody has read the trace yet
    # A reader (the TUI's detail view, --log-file) gets the whole trace on first read.
    logged = record.to_dict()["explanation"]["trace"]
    expected = _traced(profile, "GET", "/api/v1/products", token)
    assert logged == expected
    rules = [r for s in logged["scopes"] for r in s["rules"]]
    assert [r["name"] for r in rules] == ["allow-authenticated", "scope-gate-delete"]
    gate = rules[1]
    assert gate["matched"] is False
    assert [c["kind"] for c in gate["conditions"]] == ["methods", "path", "token"]
    assert gate["conditions"][2]["compared"] == ['scope="read:products"']


async def test_a_refusal_carries_the_full_trace(profile: Path, backend: Backend) -> None:
    token = mint()
    async with run_proxy(profile) as proxy, httpx.AsyncClient() as client:
        response = await client.delete(f"{proxy.url}/api/v1/products/1", headers=bearer(token))
    assert response.status_code == 403 and backend.hits == 0
    body = response.json()
    assert body["reason"] == "rule_denied"
    assert body["hint"].endswith('(the token has scope="read:products")')
    assert response.headers["requestrocket-proxy-code"] == "proxy-access-denied"
    assert body["trace"] == _traced(profile, "DELETE", "/api/v1/products/1", token)
    assert [s["scope"] for s in body["trace"]["scopes"]] == [
        "proxy_credential",
        "target_credential",
        "proxy",
        "target",
    ]
    assert proxy.records[0].explanation.decision == proxy.records[0].explanation.decision


HEAVY = """
[[proxy.rules]]
effect = "allow"
path = ".*"

[[proxy.rules]]
id = "admin-ab"
effect = "deny"
path = "^/admin/(a|b)+$"
"""


async def test_a_heavy_run_is_traced_on_the_worker_not_the_loop(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text(
        profile_text("http://127.0.0.1:9", rules=HEAVY, proxy_credential='auth_type = "none"\n')
    )
    profile = load_profile(path)
    ran: list[object] = []

    async def offload(run):  # type: ignore[no-untyped-def]
        ran.append(run)
        return await asyncio.to_thread(run)

    heavy = "/admin/" + "ab" * 40_000
    light = await decide(profile, IncomingRequest("GET", "/x"), None, now=0, offload=offload)
    expl = await decide(profile, IncomingRequest("GET", heavy), None, now=0, offload=offload)
    assert len(ran) == 1 and expl.status == 403 and expl.deciding_rule == "admin-ab"
    assert expl.decision is not None and "scopes" in expl.decision.__dict__  # built there
    assert light.decision is not None and "scopes" not in light.decision.__dict__


# ------------------------------------------------------------------ per-request work


def _asgi_get(path: str, client: str) -> dict:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path.partition("?")[0],
        "raw_path": path.partition("?")[0].encode(),
        "query_string": path.partition("?")[2].encode(),
        "headers": [(b"host", b"127.0.0.1:8787"), (b"accept", b"*/*")],
        "client": (client, 50000),
        "server": ("127.0.0.1", 8787),
    }


async def _drive(app: object, path: str, client: str = "127.0.0.1") -> list[dict]:
    sent: list[dict] = []
    asked: list[bool] = []

    async def receive() -> dict:
        if asked:  # like a server: nothing more until the caller disconnects
            await asyncio.Event().wait()
        asked.append(True)
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict) -> None:
        sent.append(message)

    await app(_asgi_get(path, client), receive, send)  # type: ignore[operator]
    return sent


def _none_app(tmp_path: Path, backend: Backend) -> object:
    from rrdev.servers.proxy import ProxyApp

    path = tmp_path / "none.toml"
    allow_all = '[[proxy.rules]]\nid = "all"\neffect = "allow"\npath = "^/"\n'
    path.write_text(
        profile_text(backend.url, proxy_credential='auth_type = "none"\n', rules=allow_all)
    )
    return ProxyApp(load_profile(path), reload_interval=0)


async def test_a_body_that_arrived_whole_goes_out_in_one_message(
    tmp_path: Path, backend: Backend
) -> None:
    async with _none_app(tmp_path, backend) as app:  # type: ignore[attr-defined]
        small = await _drive(app, "/api/v1/products")
        large = await _drive(app, "/download?size=2000000")
    assert small[0]["type"] == "http.response.start" and small[0]["status"] == 200
    bodies = [m for m in small if m["type"] == "http.response.body"]
    assert len(bodies) == 1 and bodies[0]["more_body"] is False
    assert json.loads(bodies[0]["body"])["path"] == "/api/v1/products"
    # A body still arriving is streamed: several messages, the last one ends it.
    chunks = [m for m in large if m["type"] == "http.response.body"]
    assert len(chunks) > 1 and sum(len(m["body"]) for m in chunks) == 2_000_000
    assert [m["more_body"] for m in chunks][-1] is False
    assert all(m["more_body"] for m in chunks[:-1])


async def test_forwarding_headers_follow_each_client(tmp_path: Path, backend: Backend) -> None:
    # rrdev's X-Forwarded-*/Forwarded are made once per client, Host and listener: a
    # second client must never get the first one's.
    async with _none_app(tmp_path, backend) as app:  # type: ignore[attr-defined]
        for client in ("127.0.0.1", "127.0.0.2", "127.0.0.1"):
            await _drive(app, "/api/v1/products", client)
    seen = [
        (header_values(echo, "X-Forwarded-For"), header_values(echo, "Forwarded"))
        for echo in backend.seen
    ]
    assert seen == [
        (["127.0.0.1"], ['for=127.0.0.1;host="127.0.0.1:8787";proto=http']),
        (["127.0.0.2"], ['for=127.0.0.2;host="127.0.0.1:8787";proto=http']),
        (["127.0.0.1"], ['for=127.0.0.1;host="127.0.0.1:8787";proto=http']),
    ]


def test_quiet_without_a_log_file_reads_no_records(tmp_path: Path) -> None:
    from rich.console import Console

    from rrdev.cli.console import Output

    console = Console(file=open(tmp_path / "out.txt", "w"))  # noqa: SIM115
    with open(tmp_path / "log.jsonl", "w") as log:
        assert Output(console, console, log, quiet=True).reads_records
    assert Output(console, console, None, quiet=False).reads_records
    assert not Output(console, console, None, quiet=True).reads_records


class _Wire:
    """A transport that records each write (what one send() would carry)."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: bytes) -> None:
        self.writes.append(bytes(data))

    def is_closing(self) -> bool:
        return self.closed

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str) -> str:
        return f"extra:{name}"


async def test_a_response_head_is_written_with_its_body() -> None:
    from rrdev.servers.runner import _CorkedTransport

    wire = _Wire()
    corked = _CorkedTransport(wire, asyncio.get_running_loop())
    corked.write(b"HTTP/1.1 200 OK\r\n\r\n")
    corked.write(b'{"ok":true}')
    assert wire.writes == [b'HTTP/1.1 200 OK\r\n\r\n{"ok":true}']
    # A head whose body is not there yet goes out by the end of the loop's iteration.
    corked.write(b"HTTP/1.1 200 OK\r\n\r\n")
    assert len(wire.writes) == 1
    await asyncio.sleep(0)
    assert wire.writes[-1] == b"HTTP/1.1 200 OK\r\n\r\n"
    # Large chunks are never held nor copied into a join; closing flushes first.
    corked.write(b"head")
    corked.write(b"x" * 100_000)
    assert wire.writes[-2:] == [b"head", b"x" * 100_000]
    corked.write(b"last")
    corked.close()
    assert wire.writes[-1] == b"last" and wire.closed
    assert corked.get_extra_info("peername") == "extra:peername"


async def test_a_head_whose_body_is_late_is_not_held(tmp_path: Path) -> None:
    # Real sockets: a backend that sends its head, then its body a second later. The
    # caller gets the head through rrdev at once (the head is held one loop iteration
    # at most, never until the body comes).
    from aiohttp import web

    async def late(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        response.content_length = 4
        await response.prepare(request)
        await asyncio.sleep(1.0)
        await response.write(b"late")
        return response

    app = web.Application()
    app.router.add_get("/late", late)
    runner = web.AppRunner(app, shutdown_timeout=0.5, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    path = tmp_path / "late.toml"
    allow_all = '[[proxy.rules]]\nid = "all"\neffect = "allow"\npath = "^/"\n'
    path.write_text(
        profile_text(
            f"http://127.0.0.1:{port}", proxy_credential='auth_type = "none"\n', rules=allow_all
        )
    )
    loop = asyncio.get_running_loop()
    try:
        async with run_proxy(path) as proxy, httpx.AsyncClient() as client:
            started = loop.time()
            async with client.stream("GET", f"{proxy.url}/late") as response:
                head_after = loop.time() - started
                body = await response.aread()
                body_after = loop.time() - started
    finally:
        await runner.cleanup()
    assert response.status_code == 200 and body == b"late"
    assert head_after < 0.5 <= body_after
