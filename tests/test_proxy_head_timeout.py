"""A request head must arrive within ``HEAD_SECONDS`` of its first byte (nginx's
``client_header_timeout``): a caller that stalls mid-head, or trickles its headers a
byte at a time (slowloris), gets 408 ``request_timeout`` with the JSON body, the
refusal is recorded, and the connection closes; a connection that never sends a byte
is closed without an answer. A keep-alive wait between requests is not a stalled head,
and neither is a slow download. Real sockets, a real uvicorn; the timeout shortened."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest
from proxy_support import Backend, bearer, mint, profile_text, run_proxy, wait_for

from rrdev.servers import runner

pytestmark = pytest.mark.usefixtures("keyset")

HEAD = 0.6  # seconds, instead of 60


@pytest.fixture(autouse=True)
def short_head_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "HEAD_SECONDS", HEAD)


def _profile(tmp_path: Path, backend: Backend) -> Path:
    path = tmp_path / "rrdev.toml"
    path.write_text(profile_text(backend.url))
    return path


async def _answer(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v for k, _, v in (line.partition(": ") for line in lines[1:] if line)}
    body = await reader.readexactly(int(headers["content-length"]))
    return int(lines[0].split()[1]), headers, body


def _request(token: str) -> bytes:
    return (
        f"GET /api/v1/products HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\r\n"
    ).encode()


async def test_a_head_that_stalls_gets_408_and_is_recorded(
    tmp_path: Path, backend: Backend
) -> None:
    token = mint()
    async with run_proxy(_profile(tmp_path, backend)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.server.port)
        started = time.monotonic()
        writer.write(f"GET /api/v1/products HTTP/1.1\r\nAuthorization: Bearer {token}\r\n".encode())
        status, headers, body = await _answer(reader)
        waited = time.monotonic() - started
        assert await asyncio.wait_for(reader.read(), 5) == b""  # then closed
        writer.close()
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


async def test_a_head_trickled_a_byte_at_a_time_still_times_out(
    tmp_path: Path, backend: Backend
) -> None:
    async with run_proxy(_profile(tmp_path, backend)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.server.port)
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
        writer.close()
    assert status == 408 and json.loads(body)["reason"] == "request_timeout"


async def test_a_connection_that_sends_nothing_is_closed_without_an_answer(
    tmp_path: Path, backend: Backend
) -> None:
    async with run_proxy(_profile(tmp_path, backend)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.server.port)
        assert await asyncio.wait_for(reader.read(), HEAD + 5) == b""
        writer.close()
    assert proxy.records == []


async def test_keep_alive_waits_and_slow_answers_are_not_stalled_heads(
    tmp_path: Path, backend: Backend
) -> None:
    token = mint()
    async with run_proxy(_profile(tmp_path, backend)) as proxy:
        reader, writer = await asyncio.open_connection("127.0.0.1", proxy.server.port)
        writer.write(_request(token))
        assert (await _answer(reader))[0] == 200
        await asyncio.sleep(HEAD * 2)  # idle between requests: keep-alive's business
        writer.write(_request(token))
        assert (await _answer(reader))[0] == 200
        # A backend slower than the head timeout: the head had long arrived.
        slow = f"GET /slow?delay={HEAD * 2} HTTP/1.1\r\nHost: 127.0.0.1\r\n{_auth(token)}\r\n\r\n"
        writer.write(slow.encode())
        assert (await _answer(reader))[0] == 200
        writer.close()
    assert [r.status for r in proxy.records] == [200, 200, 200]


def _auth(token: str) -> str:
    return "Authorization: " + bearer(token)["Authorization"]
