"""STAND-IN for issue 12's yardstick proxy, written by the bench branch so `python -m bench`
runs before the real one lands; the speed branch (i12-speed) owns bench/yardstick.py and
its version replaces this file on merge. Same interface:

    python bench/yardstick.py --port P --upstream http://127.0.0.1:N --jwks FILE.json
                              --issuer ISS --audience AUD --backend-token TOKEN

What a careful developer would write in about a hundred lines: raw ASGI on uvicorn
(httptools, uvloop), PyJWT against a JWKS file with a verified-token cache, aiohttp
forwarding with a keep-alive pool, the caller's Authorization replaced by the backend's
bearer token. Prints ``ready`` once it listens on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import time

import aiohttp
import jwt
import uvicorn

_HOP = {b"connection", b"keep-alive", b"transfer-encoding", b"host", b"authorization"}


def keys_by_kid(path: str) -> dict[str, object]:
    with open(path) as handle:
        return {k["kid"]: jwt.PyJWK(k).key for k in json.load(handle)["keys"]}


class Yardstick:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.keys = keys_by_kid(args.jwks)
        self.verified: dict[str, float] = {}  # token -> exp
        self.session: aiohttp.ClientSession | None = None

    def verify(self, token: str) -> bool:
        exp = self.verified.get(token)
        if exp is not None and exp > time.time():
            return True
        try:
            kid = jwt.get_unverified_header(token).get("kid")
            claims = jwt.decode(
                token,
                self.keys[kid],
                algorithms=["RS256"],
                audience=self.args.audience,
                issuer=self.args.issuer,
                options={"require": ["exp", "iss", "aud"]},
            )
        except (jwt.PyJWTError, KeyError):
            return False
        if len(self.verified) > 4096:
            self.verified.clear()
        self.verified[token] = claims["exp"]
        return True

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "lifespan":
            return await self.lifespan(receive, send)
        auth = dict(scope["headers"]).get(b"authorization", b"")
        if not auth.lower().startswith(b"bearer ") or not self.verify(auth[7:].decode()):
            return await self.answer(send, 401, b'{"reason":"invalid_token"}')
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode(): v.decode() for k, v in scope["headers"] if k not in _HOP}
        headers["authorization"] = f"Bearer {self.args.backend_token}"
        url = self.args.upstream + scope["raw_path"].decode()
        if scope["query_string"]:
            url += "?" + scope["query_string"].decode()
        assert self.session is not None
        async with self.session.request(scope["method"], url, headers=headers, data=body) as up:
            payload = await up.read()
            out = [(k.lower().encode(), v.encode()) for k, v in up.headers.items()]
            out = [(k, v) for k, v in out if k not in _HOP and k != b"content-length"]
            await send({"type": "http.response.start", "status": up.status, "headers": out})
            await send({"type": "http.response.body", "body": payload})

    async def answer(self, send, status: int, body: bytes) -> None:
        headers = [(b"content-type", b"application/json")]
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    async def lifespan(self, receive, send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                connector = aiohttp.TCPConnector(limit=256, keepalive_timeout=60)
                self.session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
                print("ready", flush=True)
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self.session is not None:
                    await self.session.close()
                return await send({"type": "lifespan.shutdown.complete"})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    for name in ("upstream", "jwks", "issuer", "audience", "backend-token"):
        parser.add_argument(f"--{name}", required=True)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    args.upstream = args.upstream.rstrip("/")
    uvicorn.run(
        Yardstick(args),
        host="127.0.0.1",
        port=args.port,
        http="httptools",
        loop="uvloop",
        log_level="warning",
        access_log=False,
    )


if __name__ == "__main__":
    main()
