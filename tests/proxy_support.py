"""Real parts for the proxy tests: an echo backend, profiles as TOML text, tokens from
the local keyset, a raw-socket HTTP client (httpx normalises paths; the proxy must see
them exactly as sent) and a running proxy (real uvicorn on 127.0.0.1:0)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from multidict import CIMultiDict

from rrdev.core.keyset import Keyset, mint_token
from rrdev.core.profile import load_profile
from rrdev.core.records import RequestRecord
from rrdev.servers.proxy import Overrides, ProxyApp
from rrdev.servers.runner import ProxyServer

ISSUER = "https://tenant.example.auth0.com/"
AUDIENCE = "https://api.myapp.com"

#: The seed's proxy rules (DESIGN.md §3's worked example).
SEED_RULES = """
[[proxy.rules]]
id = "allow-authenticated"
effect = "allow"
methods = ["GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD"]
path = { pattern = ".*", presence = "must_exist" }
priority = 1

[[proxy.rules]]
id = "scope-gate-delete"
effect = "deny"
methods = ["DELETE"]
path = { pattern = ".*" }
token = [{ claim = "^scope$", value = "delete:resources", presence = "must_absent" }]
notes = "Scope gate: DELETE operations require delete:resources scope"
"""


def profile_text(
    base_url: str,
    *,
    jwks_uri: str = "http://127.0.0.1:9/jwks.json",
    proxy: str = "",
    target: str = "",
    credential: str = "",
    proxy_credential: str | None = None,
    rules: str = SEED_RULES,
) -> str:
    """A profile in the seed's shape; extra TOML lines go into each section."""
    if proxy_credential is None:
        proxy_credential = (
            f'jwks_uri = "{jwks_uri}"\naudience = "{AUDIENCE}"\nissuer = "{ISSUER}"\n'
        )
    return (
        f'[target]\nname = "backend"\nbase_url = "{base_url}"\n{target}\n'
        f'[target_credential]\nname = "backend-cred"\n{credential}\n'
        f"[proxy_credential]\n{proxy_credential}\n"
        f'[proxy]\nname = "test-proxy"\ndefault_effect = "deny"\n{proxy}\n'
        f"{rules}"
    )


def mint(
    *,
    scope: str | None = "read:products",
    expires_in: float = 3600,
    audience: str = AUDIENCE,
    subject: str = "user-1@clients",
    **claims: Any,
) -> str:
    """A token from the local keyset in $RRDEV_HOME (see the ``keyset`` fixture)."""
    return mint_token(
        Keyset.load_or_create(),
        issuer=ISSUER,
        audience=audience,
        subject=subject,
        scope=scope,
        claims=claims,
        expires_in=expires_in,
    )


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def free_port() -> int:
    """A port nothing listens on (bound then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------ echo backend


@dataclass
class Backend:
    """An aiohttp.web backend that echoes what it received as JSON.

    ``/slow?delay=S`` answers after S seconds; ``/download?size=N`` streams N bytes;
    ``/hop`` answers with hop-by-hop headers; ``/status/N`` with status N; anything
    else echoes method, raw path (with query), the path as aiohttp decodes it, headers
    in order and the body length (counted while streaming).
    """

    url: str = ""
    port: int = 0
    hits: int = 0
    seen: list[dict[str, Any]] = field(default_factory=list)


@asynccontextmanager
async def run_backend(ssl_context: Any = None) -> AsyncIterator[Backend]:
    backend = Backend()

    async def handle(request: web.Request) -> web.StreamResponse:
        backend.hits += 1
        if request.path == "/slow":
            await asyncio.sleep(float(request.query.get("delay", "1")))
        if request.path == "/download":
            chunked = request.query.get("chunked") == "1"
            return await _download(request, int(request.query["size"]), chunked)
        if request.path == "/hop":
            return _hop_response()
        if request.path.startswith("/status/"):
            return web.Response(status=int(request.path[8:]), text="from the backend")
        size = 0
        async for chunk in request.content.iter_any():
            size += len(chunk)
        echo = {
            "method": request.method,
            "raw_path": request.raw_path,
            "path": request.path,  # as aiohttp decodes it
            "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in request.raw_headers],
            "body_len": size,
        }
        backend.seen.append(echo)
        return web.json_response(echo, headers={"X-Backend": "echo"})

    app = web.Application(client_max_size=1024**3)
    app.router.add_route("*", "/{tail:.*}", handle)
    runner = web.AppRunner(app, shutdown_timeout=0.5, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=ssl_context)
    await site.start()
    backend.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    scheme = "https" if ssl_context is not None else "http"
    backend.url = f"{scheme}://127.0.0.1:{backend.port}"
    try:
        yield backend
    finally:
        await runner.cleanup()


async def _download(request: web.Request, size: int, chunked: bool) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    if chunked:
        response.enable_chunked_encoding()
    else:
        response.content_length = size
    await response.prepare(request)
    chunk = b"x" * 65536
    sent = 0
    while sent < size:
        piece = chunk[: min(len(chunk), size - sent)]
        await response.write(piece)
        sent += len(piece)
    await response.write_eof()
    return response


def _hop_response() -> web.Response:
    headers = CIMultiDict(
        [
            ("Keep-Alive", "timeout=5"),
            ("Proxy-Authenticate", "Basic"),
            ("Trailer", "X-Checksum"),
            ("Upgrade", "h2c"),
            ("Connection", "X-Hop-Named"),
            ("X-Hop-Named", "drop me"),
            ("X-End-To-End", "keep me"),
            ("Set-Cookie", "a=1; Path=/"),
            ("Set-Cookie", "b=2; Path=/"),
        ]
    )
    return web.Response(text="hop", headers=headers)


def header_values(echo: dict[str, Any], name: str) -> list[str]:
    """All values of ``name`` (case-insensitive) in an echo."""
    return [v for k, v in echo["headers"] if k.lower() == name.lower()]


# ------------------------------------------------------------------ raw client


@dataclass
class RawResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        values = [v for k, v in self.headers if k.lower() == name.lower()]
        return values[0] if values else None

    def json(self) -> Any:
        return json.loads(self.body)


async def raw_request(
    port: int, method: str, target: str, headers: list[tuple[str, str]] | None = None
) -> RawResponse:
    """Send one request with ``target`` exactly as given; read the whole answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    lines = [f"{method} {target} HTTP/1.1", f"Host: 127.0.0.1:{port}", "Connection: close"]
    lines += [f"{k}: {v}" for k, v in headers or []]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
    await writer.drain()
    data = await reader.read()
    writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    parsed = [tuple(h.split(": ", 1)) for h in header_lines]
    response = RawResponse(int(status_line.split()[1]), parsed, body)  # type: ignore[arg-type]
    if (response.header("transfer-encoding") or "").lower() == "chunked":
        response.body = _dechunk(body)
    return response


def _dechunk(data: bytes) -> bytes:
    out = b""
    while data:
        size_line, _, data = data.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, data = out + data[:size], data[size + 2 :]
    return out


# ------------------------------------------------------------------ running proxy


@dataclass
class RunningProxy:
    app: ProxyApp
    server: ProxyServer
    records: list[RequestRecord]
    events: list[tuple[str, str]]

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def port(self) -> int:
        return self.server.port


@asynccontextmanager
async def run_proxy(
    profile_path: Path | str,
    *,
    offline: bool = True,
    target: str | None = None,
    jwks: str | None = None,
    reload_interval: float = 0.05,
) -> AsyncIterator[RunningProxy]:
    records: list[RequestRecord] = []
    events: list[tuple[str, str]] = []
    app = ProxyApp(
        load_profile(profile_path),
        overrides=Overrides(target=target, jwks=jwks, offline=offline),
        sink=records.append,
        on_event=lambda kind, message: events.append((kind, message)),
        reload_interval=reload_interval,
    )
    server = ProxyServer(app, "127.0.0.1", 0, graceful_timeout=2)
    await server.start()
    try:
        yield RunningProxy(app, server, records, events)
    finally:
        await server.stop()


#: A record's clock readings: never equal between two requests.
RECORD_TIMINGS = ("time", "auth_ms", "rules_ms", "upstream_ms", "total_ms")


def comparable_record(record: RequestRecord) -> dict[str, Any]:
    """A record as JSON without its clock readings and the backend's Date header: what
    two records of the same request must share."""
    shown = record.to_dict()
    for name in RECORD_TIMINGS:
        shown.pop(name)
    shown["response_headers"] = [h for h in shown["response_headers"] if h[0] != "date"]
    return shown


async def wait_for(condition: Any, timeout: float = 10.0) -> None:
    """Poll ``condition()`` until true (records arrive just after the response). The
    timeout only bounds a failure: generous, for a machine busy with parallel tests."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.01)


# ------------------------------------------------------------------ `rrdev up` in a child


_UP = (
    "import json, sys\n"
    "from rrdev.cli.up import run_up\n"
    "sys.exit(run_up(json.loads(sys.argv[1]), **json.loads(sys.argv[2])))\n"
)


@dataclass
class UpProcess:
    """``run_up`` in a child process (real signals, real console output)."""

    process: asyncio.subprocess.Process
    url: str
    banner: list[str]

    async def finish(self, timeout: float = 10) -> tuple[int, str, str]:
        """Wait for exit; (exit code, rest of stdout, stderr)."""
        assert self.process.stdout is not None and self.process.stderr is not None
        out, err = await asyncio.wait_for(self.process.communicate(), timeout)
        code = self.process.returncode
        assert code is not None
        return code, out.decode(), err.decode()


async def start_up(
    profile: Path | str | list[str], env: dict[str, str], **options: Any
) -> UpProcess:
    """Start ``run_up(profile, **options)`` in a child; return once it is listening
    (a list: several profiles on one port)."""
    import os
    import re
    import sys

    child_env = {**os.environ, **env, "COLUMNS": "1000", "NO_COLOR": "1"}
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-c",
        _UP,
        json.dumps(profile if isinstance(profile, list) else str(profile)),
        json.dumps(options),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=child_env,
    )
    assert process.stdout is not None
    banner: list[str] = []
    while True:
        line = (await asyncio.wait_for(process.stdout.readline(), 20)).decode()
        if not line:
            _, err = await process.communicate()
            raise AssertionError(f"rrdev up exited early: {banner} {err.decode()}")
        banner.append(line)
        match = re.search(r"listening\s+(http://\S+)", line)
        if match:
            url = match.group(1).replace("0.0.0.0", "127.0.0.1")
            return UpProcess(process, url, banner)
