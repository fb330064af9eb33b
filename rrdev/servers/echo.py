"""The demo's backend: an ASGI app that answers every request with what it received.

The answer is JSON: a greeting, the method, path, query, the headers as they arrived
(name -> value; a repeated header's values joined with ", ") and the body size.
Header values on rrdev's redaction list (``Authorization``, ``Cookie``, ...) are
shown as ``[redacted]``: the echo proves *that* the proxy forwarded them, never
*what* they held.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qsl

from rrdev.core.redact import Redactor
from rrdev.servers.asgi import Receive, Scope, Send, answer_lifespan

__all__ = ["GREETING", "EchoApp"]

GREETING = (
    "Hello from the rrdev demo backend: the proxy verified your token, "
    "checked its rules and forwarded this request."
)


class EchoApp:
    """Answer every HTTP request with a JSON echo of it (status 200).

    ``name`` says which backend answered (the ``X-Backend`` header and ``backend``
    field); ``redactor`` decides which header values are hidden.
    """

    def __init__(self, name: str = "rrdev-demo-echo", redactor: Redactor | None = None) -> None:
        self.name = name
        self.redactor = redactor or Redactor()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await answer_lifespan(receive, send)
        elif scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 1003})
        elif scope["type"] == "http":
            await self._http(scope, receive, send)

    def describe(self, scope: Scope, body_bytes: int) -> dict[str, Any]:
        """The echo document for one request."""
        raw_query = scope.get("query_string", b"").decode("latin-1")
        headers: dict[str, str] = {}
        for raw_name, raw_value in scope["headers"]:
            name = raw_name.decode("latin-1").lower()
            value = self.redactor.header(name, raw_value.decode("latin-1"))
            # a repeated header shows as one comma-joined value, like HTTP folds them
            headers[name] = f"{headers[name]}, {value}" if name in headers else value
        return {
            "greeting": GREETING,
            "backend": self.name,
            "method": scope["method"],
            "path": scope["path"],
            "query": [
                [k, self.redactor.field(k, v)]
                for k, v in parse_qsl(raw_query, keep_blank_values=True)
            ],
            "headers": headers,
            "body_bytes": body_bytes,
        }

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        size = 0
        while True:  # count the body without keeping it
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            size += len(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = json.dumps(self.describe(scope, size), indent=2).encode("utf-8") + b"\n"
        headers = [
            (b"content-type", b"application/json; charset=utf-8"),
            (b"content-length", str(len(body)).encode("ascii")),
            (b"x-backend", self.name.encode("latin-1", "replace")),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send(
            {"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else body}
        )
