"""A real token endpoint for the ``[auth]`` tests: a small ASGI app served by uvicorn on
127.0.0.1, in a thread with its own loop (so Typer's CliRunner, which runs asyncio.run
itself, can talk to it) or in the test's own loop.

``AudTokenEndpoint`` behaves like the open-source OAuth2 test servers that read the
audience from a form parameter ``aud``, not ``audience``: it issues a token signed by the
local keyset whose ``aud`` is the ``aud`` parameter (none when it was not sent), and
serves that keyset's JWKS at ``/jwks.json``. It records every request's parameters
(the client secret replaced) so tests can assert what rrdev sent.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl

from rrdev.core.keyset import Keyset
from rrdev.servers.runner import ProxyServer

ISSUER = "https://oauth2.test/"
CLIENT_ID = "svc-client"
SECRET = "endpoint-Secret-7Qw"


@dataclass
class AudTokenEndpoint:
    """The ASGI app; ``seen`` holds each token request's parameters."""

    seen: list[dict[str, str]] = field(default_factory=list)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            await send({"type": "lifespan.startup.complete"})
            message = await receive()
            if message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["path"] == "/jwks.json":
            await _json(send, 200, Keyset.load_or_create().jwks())
            return
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        params = dict(parse_qsl(body.decode("ascii")))
        self.seen.append({k: ("***" if k == "client_secret" else v) for k, v in params.items()})
        if params.get("client_id") != CLIENT_ID or params.get("client_secret") != SECRET:
            await _json(send, 401, {"error": "invalid_client"})
            return
        await _json(send, 200, self._token(params))

    def _token(self, params: dict[str, str]) -> dict[str, Any]:
        import time

        claims: dict[str, Any] = {"iss": ISSUER, "sub": CLIENT_ID}
        now = int(time.time())
        claims |= {"iat": now, "exp": now + 600}
        if params.get("aud"):
            claims["aud"] = params["aud"]
        token = Keyset.load_or_create().sign(claims)
        return {"access_token": token, "token_type": "Bearer", "expires_in": 600}


async def _json(send: Any, status: int, document: Any) -> None:
    body = json.dumps(document).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(body))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """``app`` on 127.0.0.1:<free port> in the running loop; yields its URL."""
    server = ProxyServer(app, "127.0.0.1", 0, graceful_timeout=1)
    await server.start()
    try:
        yield server.url
    finally:
        await server.stop()


@contextmanager
def serving_in_thread(app: Any) -> Iterator[str]:
    """``app`` on 127.0.0.1:<free port> in a thread with its own loop; yields its URL."""
    started = threading.Event()
    holder: dict[str, Any] = {}

    async def serve() -> None:
        async with serving(app) as url:
            holder["url"], holder["stop"] = url, asyncio.Event()
            holder["loop"] = asyncio.get_running_loop()
            started.set()
            await holder["stop"].wait()

    thread = threading.Thread(target=asyncio.run, args=(serve(),), daemon=True)
    thread.start()
    assert started.wait(10), "the token endpoint did not start"
    try:
        yield holder["url"]
    finally:
        holder["loop"].call_soon_threadsafe(holder["stop"].set)
        thread.join(10)
