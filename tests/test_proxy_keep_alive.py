"""Idle keep-alive connections: the proxy keeps one open longer than the common client
pools do (httpx drops an idle connection after 5 s, uvicorn's own default would close it
at 5 s: a request sent as the server closes gets no answer), stopping the proxy still
closes idle connections at once, and hundreds of idle connections do not lock new
callers out under a low soft limit on open files. Real sockets, a real uvicorn, a real
``rrdev up`` process."""

from __future__ import annotations

import asyncio
import json
import re
import resource
import sys
import time
from pathlib import Path

import pytest
from proxy_support import _UP, Backend, mint, profile_text, run_proxy

from rrdev.servers.runner import KEEP_ALIVE_SECONDS, raise_open_files_limit

pytestmark = pytest.mark.usefixtures("keyset")

REQUEST = (
    "GET /api/v1/products HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
)


async def _exchange(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, token: str) -> int:
    """One request on the open connection; its status (the body is read and dropped)."""
    writer.write(REQUEST.format(token=token).encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode("latin-1").split("\r\n")
    length = next(
        int(v)
        for k, _, v in (line.partition(": ") for line in lines)
        if k.lower() == "content-length"
    )
    await reader.readexactly(length)
    return int(lines[0].split()[1])


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
    async with run_proxy(_profile(tmp_path, backend)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.server.port)
        try:
            assert await _exchange(reader, writer, token) == 200
            await asyncio.sleep(5.5)  # past uvicorn's default and httpx's pool expiry
            assert await _exchange(reader, writer, token) == 200
        finally:
            writer.close()
    assert backend.hits == 2


async def test_stopping_closes_idle_connections_at_once(tmp_path: Path, backend: Backend) -> None:
    async with run_proxy(_profile(tmp_path, backend)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.server.port)
        assert await _exchange(reader, writer, mint()) == 200
        started = time.monotonic()
    # Leaving run_proxy stopped the server gracefully: the idle connection did not hold it.
    stopped_after = time.monotonic() - started
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
    writer.close()
    assert stopped_after < 1.5


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
