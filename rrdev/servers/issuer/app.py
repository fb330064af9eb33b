"""``IssuerApp``: the local issuer as an ASGI application.

Routes: discovery and the JWKS (``GET``/``HEAD``), the token endpoint (``POST``, handed
to ``ClientCredentialsGrant``); anything else is a 404 or 405 with Auth0's error shape.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from typing import Any

from rrdev.core.keyset import Keyset
from rrdev.core.model import IssuerConfig
from rrdev.servers.asgi import Receive, Scope, Send, answer_lifespan
from rrdev.servers.issuer.assertion import ASSERTION_ALGORITHMS, ClientAssertions
from rrdev.servers.issuer.config import (
    DISCOVERY_PATH,
    JWKS_PATH,
    TOKEN_PATH,
    EventCallback,
    IssuerUrls,
    emit,
    resolve_clients,
)
from rrdev.servers.issuer.grant import GRANT_TYPE, ClientCredentialsGrant
from rrdev.servers.issuer.keys import KeysetWatcher
from rrdev.servers.issuer.request import (
    Disconnected,
    OAuthError,
    read_params,
    request_base,
    request_headers,
)

__all__ = ["IssuerApp"]


class IssuerApp:
    """The issuer as an ASGI application (HTTP and lifespan).

    ``config`` gives the identity, the clients and the token lifetime; their secrets
    are resolved now (``EnvVarError`` for an unset variable). ``keys`` is a
    ``KeysetWatcher`` (default: the one in ``$RRDEV_HOME``) or a fixed ``Keyset``.
    ``base_url`` (e.g. ``http://127.0.0.1:8788``) is where it listens; set it once the
    port is known. Without it the request's ``Host`` decides. ``clock`` (epoch
    seconds) dates tokens and decides which rotated keys are still published.
    """

    def __init__(
        self,
        config: IssuerConfig,
        *,
        keys: KeysetWatcher | Keyset | None = None,
        base_url: str | None = None,
        clock: Callable[[], float] = time.time,
        on_event: EventCallback | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.config = config
        self.clients = resolve_clients(config, env)
        self.keys = keys if keys is not None else KeysetWatcher(on_event=on_event)
        self.base_url = base_url.rstrip("/") if base_url else None
        self.clock = clock
        self.on_event = on_event
        self.grant = ClientCredentialsGrant(
            config, self.clients, keyset=self.keyset, clock=clock, on_event=on_event
        )
        self.assertions = ClientAssertions(self.clients, clock)

    @property
    def issuer(self) -> str:
        return self.config.issuer

    def keyset(self) -> Keyset:
        """The keyset now in force (re-read if its file changed)."""
        return self.keys.current() if isinstance(self.keys, KeysetWatcher) else self.keys

    def urls(self, base_url: str | None = None) -> IssuerUrls:
        base = base_url or self.base_url
        if base is None:
            raise RuntimeError("the issuer's base_url is not known before it listens")
        return IssuerUrls(self.config.issuer, base.rstrip("/"))

    def discovery(self, base_url: str | None = None) -> dict[str, Any]:
        """The openid-configuration document (Auth0's fields that apply here)."""
        urls = self.urls(base_url)
        scopes = sorted({s for c in self.clients.values() for s in c.scopes})
        return {
            "issuer": urls.issuer,
            "token_endpoint": urls.token,
            "jwks_uri": urls.jwks,
            "grant_types_supported": [GRANT_TYPE],
            "token_endpoint_auth_methods_supported": [
                *("client_secret_basic", "client_secret_post", "private_key_jwt"),
            ],
            "token_endpoint_auth_signing_alg_values_supported": list(ASSERTION_ALGORITHMS),
            "scopes_supported": scopes,
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "claims_supported": ["iss", "sub", "aud", "iat", "exp", "scope", "gty", "azp"],
        }

    # -------------------------------------------------------------- ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "lifespan":
            await answer_lifespan(receive, send)
        elif kind == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 1008})

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        path, method = scope["path"], scope["method"]
        if path == TOKEN_PATH:
            if method != "POST":
                await _method_not_allowed(send, "POST")
                return
            await self._token_endpoint(scope, receive, send)
            return
        if path not in (DISCOVERY_PATH, JWKS_PATH):
            await _send_error(send, OAuthError(404, "not_found", f"no such endpoint: {path}"))
            return
        if method not in ("GET", "HEAD"):
            await _method_not_allowed(send, "GET, HEAD")
            return
        if path == JWKS_PATH:
            document: dict[str, Any] = self.keyset().jwks(self.clock())
        else:
            document = self.discovery(self.base_url or request_base(scope))
        await _send_json(send, 200, document, head=method == "HEAD")

    async def _token_endpoint(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = request_headers(scope)
        try:
            params = await read_params(headers, receive)
            client = None
            if "client_assertion" in params or "client_assertion_type" in params:
                token_url = self.urls(self.base_url or request_base(scope)).token
                client = await self.assertions.authenticate(params, token_url)
            answer = self.grant.issue(params, headers, client)
        except Disconnected:
            return
        except OAuthError as exc:
            emit(self.on_event, "token_refused", f"{exc.status} {exc.error}: {exc.detail}")
            await _send_error(send, exc)
            return
        await _send_json(send, 200, answer, extra=((b"pragma", b"no-cache"),))


# ------------------------------------------------------------------ responses


async def _send_json(
    send: Send,
    status: int,
    document: Any,
    *,
    head: bool = False,
    extra: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    body = json.dumps(document, indent=2).encode("utf-8") + b"\n"
    headers = [
        (b"content-type", b"application/json; charset=utf-8"),
        (b"content-length", str(len(body)).encode("ascii")),
        (b"cache-control", b"no-store"),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if head else body})


async def _send_error(send: Send, error: OAuthError) -> None:
    document = {"error": error.error, "error_description": error.description}
    await _send_json(send, error.status, document, extra=error.headers)


async def _method_not_allowed(send: Send, allow: str) -> None:
    error = OAuthError(
        405,
        "invalid_request",
        f"Method not allowed here; use {allow}",
        headers=((b"allow", allow.encode("ascii")),),
    )
    await _send_error(send, error)
