"""Several profiles on one port (``AliasDispatcher`` under real uvicorn on 127.0.0.1:0),
and a raw client that sends the Host header given, as curl does for
``http://alpha.localhost:PORT/`` (the name resolves to loopback; the Host says which)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from proxy_support import RawResponse, _dechunk

from rrdev.core.aliases import served_aliases
from rrdev.core.profile import load_profile
from rrdev.core.records import RequestRecord
from rrdev.servers.proxy import AliasDispatcher, Overrides
from rrdev.servers.runner import ProxyServer

#: One open gateway per alias: no caller authentication, a bearer backend credential,
#: default deny and one rule allowing GETs under the alias's own path.
OPEN = 'auth_type = "none"\n'


def open_rules(prefix: str) -> str:
    return (
        "[[proxy.rules]]\n"
        f'id = "only-{prefix}"\neffect = "allow"\nmethods = ["GET"]\n'
        f'path = {{ pattern = "^/{prefix}/" }}\n'
    )


@dataclass
class RunningAliases:
    app: AliasDispatcher
    server: ProxyServer
    records: list[RequestRecord]
    events: list[tuple[str, str]]

    @property
    def port(self) -> int:
        return self.server.port


@asynccontextmanager
async def run_aliases(
    paths: Sequence[Path], *, offline: bool = True, reload_interval: float = 0.05
) -> AsyncIterator[RunningAliases]:
    records: list[RequestRecord] = []
    events: list[tuple[str, str]] = []
    app = AliasDispatcher(
        served_aliases([load_profile(p) for p in paths]),
        overrides=Overrides(offline=offline),
        sink=records.append,
        on_event=lambda kind, message: events.append((kind, message)),
        reload_interval=reload_interval,
    )
    server = ProxyServer(app, "127.0.0.1", 0, graceful_timeout=2)
    await server.start()
    try:
        yield RunningAliases(app, server, records, events)
    finally:
        await server.stop()


async def send(
    port: int,
    hosts: Sequence[str],
    target: str = "/",
    *,
    method: str = "GET",
    headers: Sequence[tuple[str, str]] = (),
) -> RawResponse:
    """One request on its own connection with exactly these Host headers (none: none)."""
    answers = await send_many(port, [(hosts, method, target, headers)])
    return answers[0]


async def send_many(
    port: int,
    requests: Sequence[tuple[Sequence[str], str, str, Sequence[tuple[str, str]]]],
) -> list[RawResponse]:
    """Several requests, one after the other, on one keep-alive connection."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    answers = []
    try:
        for hosts, method, target, headers in requests:
            lines = [f"{method} {target} HTTP/1.1", *(f"Host: {h}" for h in hosts)]
            lines += [f"{k}: {v}" for k, v in headers]
            writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
            await writer.drain()
            answers.append(await asyncio.wait_for(_read_response(reader), 10))
    finally:
        writer.close()
    return answers


async def _read_response(reader: asyncio.StreamReader) -> RawResponse:
    head = await reader.readuntil(b"\r\n\r\n")
    status_line, *lines = head[:-4].decode("latin-1").split("\r\n")
    headers = [tuple(line.split(": ", 1)) for line in lines]
    response = RawResponse(int(status_line.split()[1]), headers, b"")  # type: ignore[arg-type]
    length = response.header("content-length")
    if length is not None:
        response.body = await reader.readexactly(int(length))
    elif (response.header("transfer-encoding") or "").lower() == "chunked":
        data = b""
        while not data.endswith(b"0\r\n\r\n"):
            data += await reader.read(65536)
        response.body = _dechunk(data)
    return response
