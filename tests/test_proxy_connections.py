"""How long connections live. Idle keep-alive connections outlive the common client
pools (httpx drops an idle connection after 5 s, uvicorn's own default would close it at
5 s: a request sent as the server closes gets no answer); stopping the proxy still closes
them at once; hundreds of idle connections do not lock new callers out under a low soft
limit on open files. A request head must arrive within ``HEAD_SECONDS`` of its first
byte: a caller that stalls mid-head, or trickles its headers a byte at a time
(slowloris), gets 408 ``request_timeout`` with the JSON body, recorded, and the
connection closes; a connection that never sends a byte is closed without an answer;
a keep-alive wait or a slow answer is not a stalled head. Real sockets, a real uvicorn,
a real ``rrdev up`` process; the head timeout shortened where it is waited for."""

from __future__ import annotations

import asyncio
import json
import re
import resource
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from proxy_support import _UP, Backend, RunningProxy, mint, profile_text, run_proxy, wait_for

from rrdev.core.profile import load_profile
from rrdev.servers import runner
from rrdev.servers.proxy import Overrides, ProxyApp, forward
from rrdev.servers.runner import KEEP_ALIVE_SECONDS, ProxyServer, raise_open_files_limit

pytestmark = pytest.mark.usefixtures("keyset")

Connection = tuple[RunningProxy, asyncio.StreamReader, asyncio.StreamWriter]


@asynccontextmanager
async def _connected(tmp_path: Path, backend: Backend) -> AsyncIterator[Connection]:
    """A proxy serving the test profile, and one open connection to it."""
    async with run_proxy(_profile(tmp_path, backend)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.server.port)
        try:
            yield proxy, reader, writer
        finally:
            writer.close()


def _request(token: str, path: str = "/api/v1/products") -> bytes:
    return (
        f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()


async def _answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """The next answer on the connection: status, headers (lower-case names), body."""
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines[1:] if line)}
    body = await reader.readexactly(int(headers["content-length"]))
    return int(lines[0].split()[1]), headers, body


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, token: str) -> int:
    """One request on the open connection; its status."""
    writer.write(_request(token))
    return (await _answer(reader))[0]


def _profile(tmp_path: Path, backend: Backend) -> Path:
    path = tmp_path / "rrdev.toml"
    path.write_text(profile_text(backend.url))
    return path


def test_idle_connections_outlive_the_client_pools() -> None:
    # httpx 5 s, aiohttp 15 s: the server must not be the side that closes first.
    assert KEEP_ALIVE_SECONDS > 15


async def test_a_connection_idle_past_five_seconds_still_answers(
    tmp_path: Path, backend: Backend
) -> None:
    token = mint()
    async with _connected(tmp_path, backend) as (_proxy, reader, writer):
        assert await _exchange(reader, writer, token) == 200
        await asyncio.sleep(5.5)  # past uvicorn's default and httpx's pool expiry
        assert await _exchange(reader, writer, token) == 200
    assert backend.hits == 2


async def test_stopping_closes_idle_connections_at_once(tmp_path: Path, backend: Backend) -> None:
    app = ProxyApp(load_profile(_profile(tmp_path, backend)), overrides=Overrides(offline=True))
    # No graceful timeout: stop() waits for requests in flight as long as they take, so
    # an idle connection counted as one would hold it for the whole keep-alive (75 s).
    server = ProxyServer(app, "127.0.0.1", 0, graceful_timeout=None)
    await server.start()
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    try:
        assert await _exchange(reader, writer, mint()) == 200
        await asyncio.wait_for(server.stop(), 10)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
    finally:
        writer.close()


def _soft_limit(pid: int) -> int:
    limits = Path(f"/proc/{pid}/limits").read_text()
    return int(re.search(r"Max open files\s+(\d+)", limits).group(1))  # type: ignore[union-attr]


@pytest.mark.skipif(not Path("/proc/self/limits").exists(), reason="reads /proc")
async def test_idle_connections_past_a_low_soft_limit_leave_room_for_new_callers(
    tmp_path: Path, backend: Backend
) -> None:
    # `rrdev up` started with 256 open files allowed (macOS's default soft limit):
    # 400 idle keep-alive connections, then a new caller.
    _, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 1024:
        pytest.skip("the hard limit leaves nothing to raise")
    low = (
        "import resource\n"
        "_, hard = resource.getrlimit(resource.RLIMIT_NOFILE)\n"
        "resource.setrlimit(resource.RLIMIT_NOFILE, (256, hard))\n"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        low + _UP,
        json.dumps(str(_profile(tmp_path, backend))),
        json.dumps({"port": 0, "offline": True, "quiet": True}),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert process.stdout is not None
    opened: list[asyncio.StreamWriter] = []
    try:
        line = ""
        while not (found := re.search(r"listening\s+http://[^:]+:(\d+)", line)):
            line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
            assert line, "rrdev up exited early"
        port = int(found.group(1))
        assert _soft_limit(process.pid) > 1024
        token = mint()
        for _ in range(400):
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            opened.append(writer)
            assert await _exchange(reader, writer, token) == 200  # then idle
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        opened.append(writer)
        assert await _exchange(reader, writer, token) == 200
    finally:
        for writer in opened:
            writer.close()
        process.terminate()
        await process.communicate()


def test_the_limit_stops_where_the_system_does(monkeypatch: pytest.MonkeyPatch) -> None:
    # macOS: no hard limit, but setrlimit refuses more than kern.maxfilesperproc.
    limits = {"soft": 256}

    def setrlimit(kind: int, value: tuple[int, int]) -> None:
        if value[0] > 10240:
            raise ValueError("current limit exceeds maximum limit")
        limits["soft"] = value[0]

    monkeypatch.setattr(
        resource, "getrlimit", lambda kind: (limits["soft"], resource.RLIM_INFINITY)
    )
    monkeypatch.setattr(resource, "setrlimit", setrlimit)
    assert raise_open_files_limit() == 10240 == limits["soft"]
    assert raise_open_files_limit() == 10240  # already there: left alone
    limits["soft"] = 100_000
    assert raise_open_files_limit() == 100_000  # never lowered


# ------------------------------------------------------------------ the request head

HEAD = 0.6  # seconds, instead of 60


@pytest.fixture
def short_head_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "HEAD_SECONDS", HEAD)


@pytest.mark.usefixtures("short_head_timeout")
async def test_a_head_that_stalls_gets_408_and_is_recorded(
    tmp_path: Path, backend: Backend
) -> None:
    token = mint()
    async with _connected(tmp_path, backend) as (proxy, reader, writer):
        started = time.monotonic()
        writer.write(f"GET /api/v1/products HTTP/1.1\r\nAuthorization: Bearer {token}\r\n".encode())
        status, headers, body = await _answer(reader)
        waited = time.monotonic() - started
        assert await asyncio.wait_for(reader.read(), 5) == b""  # then closed
        await wait_for(lambda: len(proxy.records) == 1)
    assert status == 408 and headers["connection"] == "close"
    assert HEAD <= waited < HEAD + 5
    answer = json.loads(body)
    assert answer["reason"] == "request_timeout"
    assert token not in body.decode()
    (record,) = proxy.records
    assert (record.status, record.reason) == (408, "request_timeout")
    assert token not in repr(record)
    assert backend.hits == 0


@pytest.mark.usefixtures("short_head_timeout")
async def test_a_head_trickled_a_byte_at_a_time_still_times_out(
    tmp_path: Path, backend: Backend
) -> None:
    async with _connected(tmp_path, backend) as (_proxy, reader, writer):
        writer.write(b"GET /api/v1/products HTTP/1.1\r\n")

        async def trickle() -> None:
            while True:
                writer.write(b"X")  # one more byte of a header name, forever
                await asyncio.sleep(0.05)

        dripping = asyncio.create_task(trickle())
        try:
            status, _headers, body = await _answer(reader)
        finally:
            dripping.cancel()
    assert status == 408 and json.loads(body)["reason"] == "request_timeout"


@pytest.mark.usefixtures("short_head_timeout")
async def test_a_connection_that_sends_nothing_is_closed_without_an_answer(
    tmp_path: Path, backend: Backend
) -> None:
    async with _connected(tmp_path, backend) as (proxy, reader, _writer):
        assert await asyncio.wait_for(reader.read(), HEAD + 5) == b""
    assert proxy.records == []


@pytest.mark.usefixtures("short_head_timeout")
async def test_keep_alive_waits_and_slow_answers_are_not_stalled_heads(
    tmp_path: Path, backend: Backend
) -> None:
    token = mint()
    async with _connected(tmp_path, backend) as (proxy, reader, writer):
        writer.write(_request(token))
        assert (await _answer(reader))[0] == 200
        await asyncio.sleep(HEAD * 2)  # idle between requests: keep-alive's business
        writer.write(_request(token))
        assert (await _answer(reader))[0] == 200
        # A backend slower than the head timeout: the head had long arrived.
        writer.write(_request(token, f"/slow?delay={HEAD * 2}"))
        assert (await _answer(reader))[0] == 200
    assert [r.status for r in proxy.records] == [200, 200, 200]


# ------------------------------------------------------------------ the request body


@pytest.fixture
def short_body_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(forward, "BODY_SECONDS", HEAD)


def _post_head(token: str, length: int) -> bytes:
    return (
        f"POST /api/v1/products HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


@pytest.mark.usefixtures("short_body_timeout")
async def test_a_body_that_stalls_gets_408_and_the_connection_closes(
    tmp_path: Path, backend: Backend
) -> None:
    token = mint()
    async with _connected(tmp_path, backend) as (proxy, reader, writer):
        writer.write(_post_head(token, 100) + b'{"name": ')  # 9 of 100 bytes, then nothing
        status, headers, body = await _answer(reader)
        assert await asyncio.wait_for(reader.read(), 5) == b""  # closed
        await wait_for(lambda: len(proxy.records) == 1)
    assert status == 408 and headers["connection"] == "close"
    assert json.loads(body)["reason"] == "request_timeout"
    assert token not in body.decode()
    (record,) = proxy.records
    assert (record.status, record.reason, record.bytes_in) == (408, "request_timeout", 9)
    assert record.explanation.deciding_rule is not None  # it was allowed, then stalled


@pytest.mark.usefixtures("short_body_timeout")
async def test_a_slow_steady_body_is_not_a_stalled_one(tmp_path: Path, backend: Backend) -> None:
    # Each gap is under the timeout; the whole upload takes three times as long.
    async with _connected(tmp_path, backend) as (proxy, reader, writer):
        writer.write(_post_head(mint(), 10))
        for _ in range(10):
            await asyncio.sleep(HEAD / 5)
            writer.write(b"x")
        status, _headers, body = await _answer(reader)
    assert status == 200 and json.loads(body)["body_len"] == 10
    assert [r.status for r in proxy.records] == [200]


async def test_a_caller_gone_mid_upload_is_its_own_record_not_the_backends(
    tmp_path: Path, backend: Backend
) -> None:
    async with _connected(tmp_path, backend) as (proxy, _reader, writer):
        writer.write(_post_head(mint(), 100) + b'{"name": ')
        await writer.drain()
        await asyncio.sleep(0.3)  # the request is allowed and the upload under way
        writer.transport.abort()  # the caller gives up
        await wait_for(lambda: len(proxy.records) == 1)
    (record,) = proxy.records
    assert (record.status, record.reason, record.bytes_in) == (499, "client_closed_request", 9)
    assert any("went away during the upload" in note for note in record.notes)
    assert "backend" not in record.explanation.message
