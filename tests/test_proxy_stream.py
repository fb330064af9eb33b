"""Bodies stream through the proxy both ways: 50 MB passes while the whole process
(client, proxy and backend share it) never holds more than a few MB of it."""

from __future__ import annotations

import time
import tracemalloc
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from proxy_support import Backend, bearer, mint, profile_text, run_proxy

pytestmark = pytest.mark.usefixtures("keyset")

SIZE = 50 * 1024 * 1024
CHUNK = 64 * 1024
#: Far below the payload: a proxy that buffered the body would need at least SIZE.
MAX_PEAK = 8 * 1024 * 1024


@pytest.fixture
def profile(tmp_path: Path, backend: Backend) -> Path:
    path = tmp_path / "p.toml"
    path.write_text(profile_text(backend.url))
    return path


async def upload_body() -> AsyncIterator[bytes]:
    chunk = b"u" * CHUNK
    for _ in range(SIZE // CHUNK):
        yield chunk


async def test_upload_streams_without_buffering(profile: Path, backend: Backend) -> None:
    async with run_proxy(profile) as proxy, httpx.AsyncClient(timeout=30) as client:
        started = time.perf_counter()
        tracemalloc.start()
        try:
            response = await client.post(
                f"{proxy.url}/upload", content=upload_body(), headers=bearer(mint())
            )
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        elapsed = time.perf_counter() - started
    assert response.status_code == 200
    assert response.json()["body_len"] == SIZE
    assert peak < MAX_PEAK, f"peak {peak / 1e6:.1f} MB while uploading {SIZE / 1e6:.0f} MB"
    assert proxy.records[0].bytes_in == SIZE
    assert elapsed < 15


async def test_download_streams_without_buffering(profile: Path, backend: Backend) -> None:
    received = 0
    async with run_proxy(profile) as proxy, httpx.AsyncClient(timeout=30) as client:
        tracemalloc.start()
        try:
            url = f"{proxy.url}/download?size={SIZE}"
            async with client.stream("GET", url, headers=bearer(mint())) as response:
                assert response.headers["content-length"] == str(SIZE)
                async for chunk in response.aiter_raw():
                    received += len(chunk)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert response.status_code == 200
    assert received == SIZE
    assert peak < MAX_PEAK, f"peak {peak / 1e6:.1f} MB while downloading {SIZE / 1e6:.0f} MB"
    assert proxy.records[0].bytes_out == SIZE


async def test_caller_leaving_mid_download_stops_the_transfer(
    profile: Path, backend: Backend
) -> None:
    async with run_proxy(profile) as proxy, httpx.AsyncClient(timeout=30) as client:
        url = f"{proxy.url}/download?size={SIZE}"
        async with client.stream("GET", url, headers=bearer(mint())) as response:
            async for _chunk in response.aiter_raw():
                break  # leave after the first chunk: httpx closes the connection
        from proxy_support import wait_for

        await wait_for(lambda: bool(proxy.records))
    record = proxy.records[0]
    assert record.bytes_out < SIZE
    assert any("went away" in note for note in record.notes)


async def test_backend_leaving_mid_response_truncates_the_callers_response(
    tmp_path: Path,
) -> None:
    import asyncio

    async def half_answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n" + b"x" * 10)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(half_answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    path = tmp_path / "p.toml"
    path.write_text(profile_text(f"http://127.0.0.1:{port}"))
    try:
        async with run_proxy(path) as proxy, httpx.AsyncClient() as client:
            with pytest.raises(httpx.RemoteProtocolError):
                await client.get(f"{proxy.url}/x", headers=bearer(mint()))
            from proxy_support import wait_for

            await wait_for(lambda: bool(proxy.records))
    finally:
        server.close()
    record = proxy.records[0]
    assert record.upstream_status == 200 and record.bytes_out == 10
    assert any("cut short" in note for note in record.notes)
