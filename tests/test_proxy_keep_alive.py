"""Idle keep-alive connections: the proxy keeps one open longer than the common client
pools do (httpx drops an idle connection after 5 s, uvicorn's own default would close it
at 5 s: a request sent as the server closes gets no answer), and stopping the proxy
still closes idle connections at once. Real sockets, a real uvicorn."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from proxy_support import Backend, mint, profile_text, run_proxy

from rrdev.servers.runner import KEEP_ALIVE_SECONDS

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
