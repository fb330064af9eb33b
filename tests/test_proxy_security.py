"""Security properties of the running proxy, over real sockets: a backend access token
never leaks through a token endpoint's odd answer, the api-key query parameter cannot
be shadowed, a backend cannot spoof rrdev's own headers, request framing rrdev cannot
vouch for is refused (transfer codings, oversized heads, what the HTTP parser itself
rejects) with the gateway's JSON answer, and profile reloads run off the event loop.
"""

from __future__ import annotations

import asyncio
import json
import re
import signal
import sys
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp import web
from proxy_support import (
    SEED_RULES,
    Backend,
    RawResponse,
    bearer,
    header_values,
    mint,
    profile_text,
    raw_request,
    run_proxy,
    start_up,
    wait_for,
)

import rrdev.servers.proxy.answers
import rrdev.servers.proxy.reload
from rrdev.servers.proxy import MAX_HEADER_BYTES, MAX_HEADER_LINES

pytestmark = pytest.mark.usefixtures("keyset")

PATH = "/api/v1/products"
#: What a GitHub-style token endpoint puts in a form-encoded 200.
MARKER = "gho_MARKERsecretBackendToken0123456789"
FORM_BODY = f"access_token={MARKER}&token_type=bearer".encode()
CLIENT_SECRET = "MARKER-client-secret-7Hq"
ERROR_KEYS = {"status", "reason", "message", "hint", "trace"}


def assert_gateway_error(answer: RawResponse, status: int, reason: str) -> dict[str, Any]:
    """An answer rrdev made itself (DESIGN.md §2.6): JSON body, gateway headers."""
    assert answer.status == status, answer.body
    assert answer.header("content-type") == "application/json"
    body = answer.json()
    assert set(body) == ERROR_KEYS
    assert body["status"] == status and body["reason"] == reason
    assert body["message"] and body["hint"]
    assert answer.header("requestrocket-proxy-code") == "proxy-access-denied"
    assert answer.header("requestrocket-proxy-message")
    return body


async def exchange(port: int, data: bytes, *, timeout: float = 10) -> RawResponse:
    """Send ``data`` as it is (written concurrently, errors ignored: the server may stop
    reading) and read the whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)

    async def write() -> None:
        try:
            writer.write(data)
            await writer.drain()
        except (ConnectionError, OSError):
            pass

    sending = asyncio.create_task(write())
    try:
        raw = await asyncio.wait_for(reader.read(), timeout)
    finally:
        sending.cancel()
        writer.close()
    return parse_response(raw)


def parse_response(raw: bytes) -> RawResponse:
    head, _, body = raw.partition(b"\r\n\r\n")
    status_line, *lines = head.decode("latin-1").split("\r\n")
    headers = [tuple(line.split(": ", 1)) for line in lines]
    answer = RawResponse(int(status_line.split()[1]), headers, body)  # type: ignore[arg-type]
    length = answer.header("content-length")
    if length is not None:
        answer.body = body[: int(length)]
    return answer


def request_bytes(
    port: int, head: str, headers: list[str] | None = None, body: bytes = b""
) -> bytes:
    lines = [head, f"Host: 127.0.0.1:{port}", "Connection: close", *(headers or [])]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


@pytest.fixture
def profile(tmp_path: Path, backend: Backend) -> Path:
    path = tmp_path / "rrdev.toml"
    path.write_text(profile_text(backend.url))
    return path


# ------------------------------------------------------------------ 1. the backend token


@asynccontextmanager
async def form_token_endpoint() -> AsyncIterator[str]:
    """A token endpoint answering 200 with a form-encoded token (GitHub's OAuth apps
    do, unless asked for JSON the way they expect)."""

    async def handle(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=FORM_BODY, content_type="application/x-www-form-urlencoded")

    app = web.Application()
    app.router.add_post("/login/oauth/access_token", handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}/login/oauth/access_token"
    finally:
        await runner.cleanup()


def oauth2_profile(tmp_path: Path, backend: Backend, token_url: str) -> Path:
    credential = (
        'auth_type = "oauth2"\n'
        f'token_url = "{token_url}"\n'
        'client_id = "backend-svc"\n'
        'client_secret = "${RR_SEC_CLIENT_SECRET}"\n'
    )
    auth = (
        f"\n[auth]\ntoken_url = '{token_url}'\nclient_id = 'backend-svc'\n"
        "client_secret = '${RR_SEC_CLIENT_SECRET}'\n"
    )
    path = tmp_path / "rrdev.toml"
    path.write_text(profile_text(backend.url, credential=credential) + auth)
    return path


async def test_a_form_encoded_backend_token_never_reaches_the_caller_console_or_log(
    tmp_path: Path, backend: Backend
) -> None:
    env = {"RR_SEC_CLIENT_SECRET": CLIENT_SECRET, "RRDEV_CACHE_DIR": str(tmp_path / "cache")}
    log = tmp_path / "requests.jsonl"
    async with form_token_endpoint() as token_url:
        profile = oauth2_profile(tmp_path, backend, token_url)
        up = await start_up(profile, env, port=0, offline=True, log_file=str(log))
        try:
            async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
                response = await client.get(f"{up.url}{PATH}", headers=bearer(mint()))
                await asyncio.sleep(0.2)  # the record is written just after the response
        finally:
            up.process.send_signal(signal.SIGINT)
            code, rest, err = await up.finish()
        fetch = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "rrdev",
            "token",
            "fetch",
            "-p",
            str(profile),
            "--no-cache",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**_child_env(), **env},
        )
        fetch_out, fetch_err = await asyncio.wait_for(fetch.communicate(), 30)

    console = "".join(up.banner) + rest + err
    logged = log.read_text()
    shown = {
        "response headers": json.dumps(list(response.headers.multi_items())),
        "response body": response.text,
        "console": console,
        "log file": logged,
        "token fetch": fetch_out.decode() + fetch_err.decode(),
    }
    for where, text in shown.items():
        for secret in (MARKER, CLIENT_SECRET):
            assert secret not in text, f"{secret} in the {where}"
    assert code == 0, err
    assert response.status_code == 502
    body = response.json()
    assert body["reason"] == "upstream_token_unavailable"
    assert body["message"] == "the backend's token endpoint failed; see the rrdev console"
    assert response.headers["requestrocket-proxy-code"] == "proxy-access-granted"
    assert backend.hits == 0
    # The detail is there for the developer, without the body.
    detail = f"answered HTTP 200 with {len(FORM_BODY)} bytes of application/x-www-form-urlencoded"
    assert detail in console and "upstream_token_unavailable" in console
    [record] = [json.loads(line) for line in logged.splitlines()]
    assert record["reason"] == "upstream_token_unavailable"
    assert detail in record["explanation"]["message"]
    assert fetch.returncode == 4
    assert detail in fetch_err.decode() and "not JSON" in fetch_err.decode()
    assert fetch_out == b""


def _child_env() -> dict[str, str]:
    import os

    return {**os.environ, "COLUMNS": "1000", "NO_COLOR": "1"}


# ------------------------------------------------------------------ 2. api-key query parameter


REAL_KEY = "real-key-0123"
SHADOWING = [
    pytest.param("KEY=evil", "", id="other-case"),
    pytest.param("a=1;key=evil", "a=1", id="semicolon"),
    pytest.param("%6Bey=evil&b=2", "b=2", id="percent-encoded-name"),
    pytest.param("a=1;KEY=evil&b=2;c=3", "a=1&b=2;c=3", id="mixed"),
    pytest.param("+key+=evil", "", id="padded-name"),
]


@pytest.mark.parametrize(("query", "kept"), SHADOWING)
async def test_the_api_key_query_parameter_cannot_be_shadowed(
    tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch, query: str, kept: str
) -> None:
    monkeypatch.setenv("RR_SEC_API_KEY", REAL_KEY)
    credential = 'auth_type = "api_key"\napi_key = "${RR_SEC_API_KEY}"\nquery_param = "key"\n'
    path = tmp_path / "rrdev.toml"
    path.write_text(profile_text(backend.url, credential=credential))
    async with run_proxy(path) as proxy:
        answer = await raw_request(
            proxy.port, "GET", f"{PATH}?{query}", [("Authorization", f"Bearer {mint()}")]
        )
        await wait_for(lambda: len(proxy.records) == 1)
    assert answer.status == 200
    raw_path = answer.json()["raw_path"]
    expected = f"{PATH}?{kept}&key={REAL_KEY}" if kept else f"{PATH}?key={REAL_KEY}"
    assert raw_path == expected
    pieces = re.split(r"[&;]", raw_path.partition("?")[2])
    assert [p for p in pieces if p.partition("=")[0].strip("+").lower() == "key"] == [
        f"key={REAL_KEY}"
    ]
    record = json.dumps(proxy.records[0].to_dict(), default=str)
    assert "evil" not in record
    assert REAL_KEY not in record


# ------------------------------------------------------------------ 3. gateway headers


@asynccontextmanager
async def spoofing_backend() -> AsyncIterator[str]:
    async def handle(request: web.Request) -> web.Response:
        response = web.Response(text="from the backend")
        response.headers.add("requestrocket-proxy-code", "proxy-access-denied")
        response.headers.add("RequestRocket-Proxy-Message", "spoofed by the backend")
        response.headers.add("REQUESTROCKET-PROXY-CODE", "spoofed-again")
        response.headers.add("X-Backend", "kept")
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


async def test_a_backend_cannot_spoof_the_gateway_headers(tmp_path: Path) -> None:
    async with spoofing_backend() as url:
        path = tmp_path / "rrdev.toml"
        path.write_text(profile_text(url))
        async with run_proxy(path) as proxy:
            answer = await raw_request(
                proxy.port, "GET", PATH, [("Authorization", f"Bearer {mint()}")]
            )
    assert answer.status == 200 and answer.body == b"from the backend"
    codes = [v for k, v in answer.headers if k.lower() == "requestrocket-proxy-code"]
    messages = [v for k, v in answer.headers if k.lower() == "requestrocket-proxy-message"]
    assert codes == ["proxy-access-granted"]
    assert len(messages) == 1 and "spoofed" not in messages[0]
    assert answer.header("x-backend") == "kept"


# ------------------------------------------------------------------ 4. transfer codings


CHUNKED_BODY = b"5\r\nhello\r\n0\r\n\r\n"


@pytest.mark.parametrize(
    "coding", ["gzip, chunked", "chunked, chunked", "identity, chunked", "gzip"]
)
async def test_transfer_codings_other_than_chunked_are_501(
    profile: Path, backend: Backend, coding: str
) -> None:
    async with run_proxy(profile) as proxy:
        data = request_bytes(
            proxy.port,
            f"POST {PATH} HTTP/1.1",
            [f"Authorization: Bearer {mint()}", f"Transfer-Encoding: {coding}"],
            CHUNKED_BODY,
        )
        answer = await exchange(proxy.port, data)
        await wait_for(lambda: len(proxy.records) == 1)
    body = assert_gateway_error(answer, 501, "transfer_coding_unsupported")
    assert "Transfer-Encoding" in body["message"]
    assert answer.header("connection") == "close"
    assert backend.hits == 0
    assert proxy.records[0].reason == "transfer_coding_unsupported"
    assert proxy.records[0].status == 501


async def test_plain_chunked_still_streams_to_the_backend(profile: Path, backend: Backend) -> None:
    async with run_proxy(profile) as proxy:
        data = request_bytes(
            proxy.port,
            f"POST {PATH} HTTP/1.1",
            [f"Authorization: Bearer {mint()}", "Transfer-Encoding: Chunked"],
            CHUNKED_BODY,
        )
        answer = await exchange(proxy.port, data)
    assert answer.status == 200
    assert json.loads(answer.body)["body_len"] == 5


async def test_transfer_coding_refusal_in_process() -> None:
    """The app's own check (any ASGI server), not only the HTTP parser's."""
    scope_headers = [(b"host", b"x"), (b"transfer-encoding", b"gzip, chunked")]
    refusal = rrdev.servers.proxy.answers._framing_problem(scope_headers)
    assert refusal is not None and refusal.status == 501
    assert (
        rrdev.servers.proxy.answers._framing_problem([(b"transfer-encoding", b"chunked")]) is None
    )


# ------------------------------------------------------------------ 5. header limits


def many_headers(count: int, size: int = 1) -> list[str]:
    return [f"X-Filler-{i}: {'v' * size}" for i in range(count)]


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(many_headers(MAX_HEADER_LINES + 1), id="too-many-lines"),
        pytest.param([f"X-Big: {'b' * (MAX_HEADER_BYTES + 10)}"], id="one-header-past-64KiB"),
        pytest.param([f"X-Huge: {'h' * 2_000_000}"], id="2MB-header"),
        pytest.param(many_headers(20_000), id="20000-headers"),
    ],
)
async def test_oversized_request_heads_are_431(
    profile: Path, backend: Backend, headers: list[str]
) -> None:
    async with run_proxy(profile) as proxy:
        data = request_bytes(
            proxy.port, f"GET {PATH} HTTP/1.1", [f"Authorization: Bearer {mint()}", *headers]
        )
        answer = await exchange(proxy.port, data)
        await wait_for(lambda: len(proxy.records) == 1)
    body = assert_gateway_error(answer, 431, "headers_too_large")
    assert f"{MAX_HEADER_LINES} header lines" in body["message"]
    assert backend.hits == 0
    record = proxy.records[0]
    assert record.status == 431 and record.reason == "headers_too_large"


async def test_headers_within_the_limits_pass(profile: Path, backend: Backend) -> None:
    async with run_proxy(profile) as proxy:
        # (aiohttp, the echo backend, takes at most 128 header lines itself)
        headers = many_headers(100, size=600)
        data = request_bytes(
            proxy.port, f"GET {PATH} HTTP/1.1", [f"Authorization: Bearer {mint()}", *headers]
        )
        answer = await exchange(proxy.port, data)
    assert answer.status == 200
    assert len(header_values(json.loads(answer.body), "x-filler-0")) == 1


# ------------------------------------------------------------------ 6. parser-level refusals


PARSER_REFUSALS = [
    pytest.param(
        b"CONNECT 127.0.0.1:80 HTTP/1.1\r\nHost: 127.0.0.1:80\r\n\r\n",
        "ambiguous_path",
        id="connect-authority-form",
    ),
    pytest.param(
        b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: x\r\n\r\n", "ambiguous_path", id="raw-non-ascii-path"
    ),
    pytest.param(
        b"POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "bad_request",
        id="cl-and-te",
    ),
    pytest.param(
        b"POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
        "bad_request",
        id="two-content-lengths",
    ),
    pytest.param(
        b"POST /api HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc",
        "bad_request",
        id="signed-content-length",
    ),
    pytest.param(b"GET /api HTTP/1.1\r\nHo st: x\r\n\r\n", "bad_request", id="space-in-name"),
    pytest.param(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "bad_request", id="tls-hello"),
]


@pytest.mark.parametrize(("data", "reason"), PARSER_REFUSALS)
async def test_requests_the_parser_rejects_get_the_gateway_answer(
    profile: Path, backend: Backend, data: bytes, reason: str
) -> None:
    async with run_proxy(profile) as proxy:
        answer = await exchange(proxy.port, data)
        await wait_for(lambda: len(proxy.records) == 1)
    body = assert_gateway_error(answer, 400, reason)
    assert body["trace"] is None
    assert answer.header("connection") == "close"
    assert backend.hits == 0
    record = proxy.records[0]
    assert (record.status, record.reason) == (400, reason)


async def test_connect_record_names_the_method_and_target(profile: Path) -> None:
    async with run_proxy(profile) as proxy:
        answer = await exchange(proxy.port, PARSER_REFUSALS[0].values[0])  # type: ignore[arg-type]
        await wait_for(lambda: len(proxy.records) == 1)
    assert "127.0.0.1:80" in answer.json()["message"]
    record = proxy.records[0]
    assert (record.method, record.path) == ("CONNECT", "127.0.0.1:80")


async def test_a_bad_chunk_after_the_app_started_gets_one_answer(
    profile: Path, backend: Backend
) -> None:
    """The parser fails in the body: the caller gets rrdev's 400, never two answers."""
    async with run_proxy(profile) as proxy:
        data = request_bytes(
            proxy.port,
            f"POST {PATH} HTTP/1.1",
            [f"Authorization: Bearer {mint()}", "Transfer-Encoding: chunked"],
            b"zz\r\nhello\r\n0\r\n\r\n",
        )
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(data)
        raw = await asyncio.wait_for(reader.read(), 10)
        writer.close()
    assert raw.count(b"HTTP/1.1 ") == 1
    assert_gateway_error(parse_response(raw), 400, "bad_request")


async def test_a_valid_keep_alive_request_after_a_refusal_is_not_read(profile: Path) -> None:
    """A refused connection is closed: nothing smuggled behind the refusal runs."""
    async with run_proxy(profile) as proxy:
        bad = b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nx"
        good = f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {mint()}\r\n\r\n"
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
        writer.write(bad + good.encode())
        raw = await asyncio.wait_for(reader.read(), 10)
        writer.close()
        await asyncio.sleep(0.1)
    assert raw.count(b"HTTP/1.1 ") == 1
    assert [r.status for r in proxy.records] == [400]


# ------------------------------------------------------------------ 7. reloads off the loop


DENY_PRODUCTS = """
[[proxy.rules]]
id = "freeze-products"
effect = "deny"
path = { pattern = "^/api/v1/products" }
"""


async def test_a_reload_loads_in_a_worker_thread_and_the_loop_keeps_running(
    profile: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = rrdev.servers.proxy.reload._load_state
    threads: list[threading.Thread] = []
    entered = threading.Event()

    def slow_load(*args: Any) -> Any:
        threads.append(threading.current_thread())
        entered.set()
        time.sleep(0.4)  # a slow disk, a big keyset, ...
        return real(*args)

    monkeypatch.setattr(rrdev.servers.proxy.reload, "_load_state", slow_load)
    token = mint()
    async with run_proxy(profile) as proxy, httpx.AsyncClient() as client:
        assert (await client.get(f"{proxy.url}{PATH}", headers=bearer(token))).status_code == 200
        profile.write_text(profile_text(backend.url, rules=SEED_RULES + DENY_PRODUCTS))
        await asyncio.sleep(0.1)  # past reload_interval (0.05 s in tests)
        ticks = 0

        async def ticker() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticking = asyncio.create_task(ticker())
        first = asyncio.create_task(client.get(f"{proxy.url}{PATH}", headers=bearer(token)))
        await asyncio.to_thread(entered.wait, 5)
        # Arrives while the reload is in flight: it waits for it too.
        second = asyncio.create_task(client.get(f"{proxy.url}{PATH}", headers=bearer(token)))
        responses = await asyncio.gather(first, second)
        ticking.cancel()
    assert [r.status_code for r in responses] == [403, 403]
    assert threads and all(t is not threading.main_thread() for t in threads)
    assert ticks >= 15  # ~40 in 0.4 s: the loop was never blocked for long
    assert [kind for kind, _ in proxy.events] == ["reloaded"]


async def test_check_reload_reports_each_change_once(profile: Path, backend: Backend) -> None:
    async with run_proxy(profile, reload_interval=0) as proxy:
        assert await proxy.app.check_reload(force=True) is False
        profile.write_text(profile_text(backend.url, rules=SEED_RULES + DENY_PRODUCTS))
        assert await proxy.app.check_reload(force=True) is True
        assert await proxy.app.check_reload(force=True) is False
        profile.write_text(profile_text(backend.url))
        assert await proxy.app.check_reload(force=True) is True
