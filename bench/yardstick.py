"""The yardstick: the smallest honest JWT-verifying forwarding proxy on rrdev's own stack.

    python bench/yardstick.py --port P --upstream http://127.0.0.1:N --jwks FILE.json \
        --issuer ISS --audience AUD --backend-token TOKEN

A raw ASGI app on uvicorn (httptools, uvloop, no access log) that checks
``Authorization: Bearer <JWT>`` (RS256 only, PyJWT against the keys of a JWKS file,
``exp``/``iss``/``aud`` required), keeps each verified token's claims until its ``exp``,
answers 401 without a token or with a bad one, and forwards everything else through ONE
pooled aiohttp ``ClientSession`` (keep-alive) with ``Authorization: Bearer <backend
token>`` in place of the caller's. It prints ``ready`` on stdout once it listens.

Why it is the fair baseline for ``rrdev up``: it is what a competent developer writes in
an afternoon with the very libraries rrdev uses (same server, parser, event loop, JWT
library and HTTP client), with none of rrdev's work on top (no rules, no request-target
checks, no records, no redaction, no X-Forwarded-*). Whatever rrdev costs beyond it is
rrdev's own per-request work. It is a benchmark tool only: it makes no attempt at the
security choices rrdev's docs list.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
from typing import Any

import aiohttp
import jwt
import uvicorn

#: Hop-by-hop headers (RFC 9110 §7.6.1): never forwarded either way.
HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-authorization", b"proxy-authenticate", b"te",
     b"trailer", b"transfer-encoding", b"upgrade", b"host", b"authorization"}
)  # fmt: skip


def make_app(args: argparse.Namespace) -> Any:
    with open(args.jwks, encoding="utf-8") as handle:
        keys = {k.get("kid"): jwt.PyJWK(k).key for k in json.load(handle)["keys"]}
    upstream = args.upstream.rstrip("/")
    backend_auth = f"Bearer {args.backend_token}"
    cache: dict[str, tuple[dict, float]] = {}  # token -> (claims, exp)
    session: aiohttp.ClientSession | None = None

    def verify(token: str) -> dict | None:
        hit = cache.get(token)
        if hit is not None and hit[1] > time.time():
            return hit[0]
        try:
            key = keys[jwt.get_unverified_header(token).get("kid")]
            claims = jwt.decode(
                token, key, algorithms=["RS256"], audience=args.audience, issuer=args.issuer,
                options={"require": ["exp", "iss", "aud"]},
            )  # fmt: skip
        except (jwt.PyJWTError, KeyError):
            return None
        if len(cache) > 10_000:
            cache.clear()
        cache[token] = (claims, claims["exp"])
        return claims

    async def unauthorized(send, why: bytes) -> None:
        body = b'{"error":"unauthorized","reason":"' + why + b'"}'
        head = [(b"content-type", b"application/json"), (b"www-authenticate", b"Bearer")]
        await send({"type": "http.response.start", "status": 401, "headers": head})
        await send({"type": "http.response.body", "body": body})

    async def app(scope, receive, send) -> None:
        nonlocal session
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=60)
                    session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await session.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            return
        auth = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        if auth is None or auth[:7].lower() != b"bearer ":
            return await unauthorized(send, b"token_missing")
        if verify(auth[7:].decode("latin-1").strip()) is None:
            return await unauthorized(send, b"token_invalid")
        body = b""
        more = True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = [(k.decode("latin-1"), v.decode("latin-1"))
                   for k, v in scope["headers"] if k not in HOP]  # fmt: skip
        headers.append(("Authorization", backend_auth))
        url = upstream + scope["raw_path"].decode("latin-1")
        if scope["query_string"]:
            url += "?" + scope["query_string"].decode("latin-1")
        try:
            async with session.request(
                scope["method"], url, headers=headers, data=body or None, allow_redirects=False
            ) as response:
                payload = await response.read()
                out = [(k.lower(), v) for k, v in response.raw_headers if k.lower() not in HOP]
                status = response.status
        except (aiohttp.ClientError, OSError):
            status, out, payload = 502, [(b"content-type", b"text/plain")], b"bad gateway"
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": payload})

    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for name in ("--upstream", "--jwks", "--issuer", "--audience", "--backend-token"):
        parser.add_argument(name, required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    config = uvicorn.Config(
        make_app(args), http="httptools", loop="uvloop", access_log=False, log_level="warning",
        server_header=False, date_header=False,
    )  # fmt: skip
    server = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.create_task(server.serve(sockets=[sock]))
        while not server.started:
            await asyncio.sleep(0.01)
        print("ready", flush=True)
        await task

    import uvloop

    uvloop.run(serve())
    sys.exit(0)


if __name__ == "__main__":
    main()
