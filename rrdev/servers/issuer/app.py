"""The local Auth0-compatible issuer: discovery, JWKS and client credentials (ASGI).

Offline, in CI, or before a tenant exists, this stands in for an Auth0 tenant:

* ``GET /.well-known/openid-configuration``: discovery. ``issuer`` is the configured
  identity (``[issuer].issuer``, default ``https://rrdev.local/`` with Auth0's trailing
  slash), which never depends on the port; ``jwks_uri`` and ``token_endpoint`` are the
  URLs the issuer really listens on.
* ``GET /.well-known/jwks.json``: the public half of the local keyset
  (``$RRDEV_HOME/keyset.json``), signing key first, then keys still in their rotation
  grace period. The file is re-read when it changes (one ``stat`` per request), so
  ``rrdev issuer rotate`` in another terminal takes effect without a restart.
* ``POST /oauth/token``: ``grant_type=client_credentials`` with a JSON or form body; the
  client authenticates with ``client_secret`` in the body or with HTTP Basic. Tokens are
  shaped like Auth0's machine-to-machine access tokens (``iss``, ``sub =
  <client_id>@clients``, ``aud``, ``iat``, ``exp``, ``scope``, ``gty``, ``azp``; header
  ``kid``). The granted scope is the requested scopes the client is allowed (all of
  them when none are requested).

Errors have Auth0's shape, ``{"error", "error_description"}``: 400
``invalid_request`` (bad JSON or form, missing parameter), 400
``unsupported_grant_type``, 401 ``access_denied`` (unknown client or wrong secret: the
same answer for both, as Auth0 gives), 403 ``access_denied`` (an audience the client is
not granted), 413 (a body over 64 KiB, refused while reading). No secret is ever
echoed or reported: ``on_event`` gets one line per token request naming the client,
never its secret.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hmac
import json
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote

from rrdev.core.errors import KeysetError, ProfileError
from rrdev.core.keyset import Keyset
from rrdev.core.model import IssuerClient, IssuerConfig, Profile
from rrdev.core.tokens import clip
from rrdev.servers.asgi import Receive, Scope, Send, answer_lifespan

__all__ = [
    "DEFAULT_ISSUER",
    "DISCOVERY_PATH",
    "JWKS_PATH",
    "MAX_BODY_BYTES",
    "TOKEN_PATH",
    "IssuerApp",
    "IssuerUrls",
    "KeysetWatcher",
    "LocalClient",
    "issuer_config_for",
    "resolve_clients",
]

DEFAULT_ISSUER = IssuerConfig.issuer
DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/.well-known/jwks.json"
TOKEN_PATH = "/oauth/token"
GRANT_TYPE = "client_credentials"
_PARAMETERS = frozenset({"grant_type", "client_id", "client_secret", "audience", "scope"})
#: A token request is a few hundred bytes; anything past this is refused while reading.
MAX_BODY_BYTES = 64 * 1024
#: How much of an oversized body is read (and dropped) before answering 413.
_DRAIN_BYTES = 1024 * 1024

#: ``on_event(kind, message)``: "token_issued", "token_refused", "keyset_reloaded",
#: "keyset_failed". Messages never hold a secret.
EventCallback = Callable[[str, str], None]


_ISSUER_HINT = """add clients to the profile, e.g.

[issuer]
[[issuer.clients]]
client_id = "my-service"
client_secret = "${MY_SERVICE_SECRET}"
audiences = ["https://api.example.com"]
scopes = ["read:products"]"""


# ------------------------------------------------------------------ configuration


@dataclass(frozen=True)
class LocalClient:
    """An issuer client with its secret resolved (never shown: ``repr=False``)."""

    client_id: str
    secret: str = field(repr=False)
    audiences: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()


def issuer_config_for(profile: Profile) -> IssuerConfig:
    """The ``[issuer]`` section of ``profile``, with a client that lists no
    ``audiences`` allowed the profile's own (``proxy_credential.audience``).

    A profile without ``[issuer]`` clients is a ``ProfileError`` with an example.
    """
    config = profile.issuer
    if config is None or not config.clients:
        what = "no [issuer] section" if config is None else "no [[issuer.clients]]"
        raise ProfileError(f"the profile has {what}", file=profile.path, hint=_ISSUER_HINT)
    own = profile.proxy_credential.audience
    clients = tuple(
        c if c.audiences else IssuerClient(c.client_id, c.client_secret, own, c.scopes)
        for c in config.clients
    )
    return IssuerConfig(config.issuer, clients, config.token_lifetime_seconds)


def resolve_clients(
    config: IssuerConfig, env: Mapping[str, str] | None = None
) -> dict[str, LocalClient]:
    """client_id -> ``LocalClient``; an unset ``${NAME}`` in a secret is an
    ``EnvVarError`` naming the key (raised at start, not on the first request)."""
    clients: dict[str, LocalClient] = {}
    for client in config.clients:
        if client.client_id in clients:
            raise ProfileError(
                f"client_id {client.client_id!r} is listed twice in [issuer]",
                file=client.client_secret.file,
                line=client.client_secret.line,
                key=client.client_secret.key.rsplit(".", 1)[0] or None,
            )
        clients[client.client_id] = LocalClient(
            client.client_id,
            client.client_secret.resolve(env),
            client.audiences,
            client.scopes,
        )
    return clients


@dataclass(frozen=True)
class IssuerUrls:
    """The issuer's identity and where it really listens (``base_url``, no slash)."""

    issuer: str
    base_url: str

    @property
    def discovery(self) -> str:
        return self.base_url + DISCOVERY_PATH

    @property
    def jwks(self) -> str:
        return self.base_url + JWKS_PATH

    @property
    def token(self) -> str:
        return self.base_url + TOKEN_PATH


# ------------------------------------------------------------------ keyset


class KeysetWatcher:
    """The keyset file in ``home`` (default ``$RRDEV_HOME``), re-read when it changes.

    ``current()`` costs one ``stat``. A file that turns corrupt or disappears while
    the issuer runs is reported once through ``on_event`` ("keyset_failed") and the
    last good keys keep being served: it is never regenerated behind the user's back.
    Construction raises ``KeysetError`` (with the path) for a corrupt file.
    """

    def __init__(self, home: Path | None = None, *, on_event: EventCallback | None = None) -> None:
        self.on_event = on_event
        self._keyset = Keyset.load_or_create(home)
        assert self._keyset.path is not None
        self.path: Path = self._keyset.path
        self._signature = _stat_signature(self.path)
        self._failed: object = _NEVER  # the signature of a file that failed to load

    def current(self) -> Keyset:
        signature = _stat_signature(self.path)
        if signature == self._signature or signature == self._failed:
            return self._keyset
        try:
            if signature is None:
                raise FileNotFoundError(str(self.path))
            keyset = Keyset.load(self.path)
        except FileNotFoundError:
            self._fail(signature, f"the keyset {self.path} has disappeared")
            return self._keyset
        except KeysetError as exc:
            self._fail(signature, str(exc))
            return self._keyset
        self._keyset, self._signature, self._failed = keyset, signature, _NEVER
        _emit(self.on_event, "keyset_reloaded", f"{self.path}: signing key {keyset.signing_kid}")
        return keyset

    def _fail(self, signature: object, problem: str) -> None:
        self._failed = signature  # None: the file is missing
        message = (
            f"{problem}; still serving the keys loaded before "
            "(`rrdev issuer rotate --reset` makes a new keyset)"
        )
        _emit(self.on_event, "keyset_failed", message)


_NEVER = object()


def _stat_signature(path: Path) -> tuple[int, int, int] | None:
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)


# ------------------------------------------------------------------ the app


class _OAuthError(Exception):
    """An Auth0-shaped error answer; ``detail`` is for the issuer's own log only."""

    def __init__(
        self,
        status: int,
        error: str,
        description: str,
        detail: str = "",
        headers: tuple[tuple[bytes, bytes], ...] = (),
    ) -> None:
        super().__init__(description)
        self.status = status
        self.error = error
        self.description = description
        self.detail = detail or description
        self.headers = headers


class _Disconnected(Exception):
    pass


def _invalid(description: str) -> _OAuthError:
    return _OAuthError(400, "invalid_request", description)


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
        #: every audience some client may ask for (others: "Service not enabled")
        self._known_audiences = frozenset(a for c in self.clients.values() for a in c.audiences)

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
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
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
            await _send_error(send, _OAuthError(404, "not_found", f"no such endpoint: {path}"))
            return
        if method not in ("GET", "HEAD"):
            await _method_not_allowed(send, "GET, HEAD")
            return
        if path == JWKS_PATH:
            document: dict[str, Any] = self.keyset().jwks(self.clock())
        else:
            document = self.discovery(self.base_url or _request_base(scope))
        await _send_json(send, 200, document, head=method == "HEAD")

    async def _token_endpoint(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = _headers(scope)
        try:
            params = await _read_params(headers, receive)
            answer = self._grant(params, headers)
        except _Disconnected:
            return
        except _OAuthError as exc:
            _emit(self.on_event, "token_refused", f"{exc.status} {exc.error}: {exc.detail}")
            await _send_error(send, exc)
            return
        await _send_json(send, 200, answer, extra=((b"pragma", b"no-cache"),))

    # -------------------------------------------------------------- the grant

    def _grant(self, params: dict[str, str], headers: dict[str, str]) -> dict[str, Any]:
        grant = params.get("grant_type")
        if not grant:
            raise _invalid("Missing required parameter: grant_type")
        if grant != GRANT_TYPE:
            raise _OAuthError(
                400,
                "unsupported_grant_type",
                f"Unsupported grant type: {clip(grant, quote=False)}",
                f"grant_type {clip(grant)} (this issuer supports client_credentials only)",
            )
        client = self._authenticate(params, headers)
        audience = params.get("audience")
        if not audience:
            raise _invalid("Missing required parameter: audience")
        self._check_audience(client, audience)
        granted = _granted_scopes(client.scopes, params.get("scope"))
        token, lifetime = self._sign(client, audience, granted)
        scope_text = " ".join(granted)
        _emit(
            self.on_event,
            "token_issued",
            f"client {clip(client.client_id)}: aud {clip(audience)}, scope {scope_text!r}",
        )
        return {
            "access_token": token,
            "token_type": "Bearer",
            "expires_in": lifetime,
            "scope": scope_text,
        }

    def _authenticate(self, params: dict[str, str], headers: dict[str, str]) -> LocalClient:
        basic = _basic_credentials(headers.get("authorization"))
        if basic is not None:
            if "client_secret" in params:
                raise _invalid(
                    "Use one client authentication method: HTTP Basic or client_secret "
                    "in the body, not both"
                )
            client_id, candidates = basic
            if params.get("client_id", client_id) != client_id:
                raise _invalid("client_id in the body does not match the HTTP Basic credentials")
        else:
            client_id = params.get("client_id", "")
            if not client_id:
                raise _invalid("Missing required parameter: client_id")
            secret = params.get("client_secret")
            if not secret:
                raise _invalid("Missing required parameter: client_secret")
            candidates = (secret,)
        client = self.clients.get(client_id)
        expected = client.secret if client is not None else "\x00unknown-client"
        matched = False
        for candidate in candidates:  # compare_digest: no timing hint about the secret
            matched |= hmac.compare_digest(candidate.encode(), expected.encode())
        if client is None or not matched:
            why = f"wrong client secret for {clip(client_id)}"
            if client is None:
                why = self._unknown_client(client_id)
            challenge = ((b"www-authenticate", b'Basic realm="rrdev"'),) if basic else ()
            raise _OAuthError(401, "access_denied", "Unauthorized", why, challenge)
        return client

    def _unknown_client(self, client_id: str) -> str:
        """The log line for an unknown client_id, which is never logged when it is
        some client's secret (client_id and client_secret swapped)."""
        for client in self.clients.values():
            if hmac.compare_digest(client_id.encode(), client.secret.encode()):
                return "unknown client: the client_id sent is a client secret (swapped?)"
        return f"unknown client {clip(client_id)}"

    def _check_audience(self, client: LocalClient, audience: str) -> None:
        if audience in client.audiences:
            return
        shown = clip(audience, 200, quote=False)
        if audience not in self._known_audiences:
            raise _OAuthError(
                403,
                "access_denied",
                f"Service not enabled within domain: {shown}",
                f"client {clip(client.client_id)} asked for {clip(audience)}, an audience "
                "no client of this issuer may ask for",
            )
        raise _OAuthError(
            403,
            "access_denied",
            f'Client is not authorized to access "{shown}". You need to create a '
            '"client-grant" associated to this API.',
            f"client {clip(client.client_id)} is not allowed audience {clip(audience)} "
            f"(allowed: {', '.join(client.audiences) or 'none'})",
        )

    def _sign(self, client: LocalClient, audience: str, granted: list[str]) -> tuple[str, int]:
        now = int(self.clock())
        lifetime = self.config.token_lifetime_seconds
        claims: dict[str, Any] = {
            "iss": self.config.issuer,
            "sub": f"{client.client_id}@clients",
            "aud": audience,
            "iat": now,
            "exp": now + lifetime,
        }
        if granted:
            claims["scope"] = " ".join(granted)
        claims["gty"] = "client-credentials"
        claims["azp"] = client.client_id
        return self.keyset().sign(claims), lifetime


# ------------------------------------------------------------------ request helpers


def _granted_scopes(allowed: tuple[str, ...], requested: str | None) -> list[str]:
    """The requested scopes the client is allowed (in the client's order); all of
    them when none are requested."""
    wanted = set((requested or "").split())
    if not wanted:
        return list(allowed)
    return [s for s in allowed if s in wanted]


def _headers(scope: Scope) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in scope["headers"]:
        out.setdefault(name.decode("latin-1").lower(), value.decode("latin-1"))
    return out


def _request_base(scope: Scope) -> str:
    """``http://host:port`` from the request (Host header, else the server address)."""
    scheme = scope.get("scheme", "http")
    host = _headers(scope).get("host")
    if not host:
        server = scope.get("server") or ("127.0.0.1", 80)
        host = f"[{server[0]}]:{server[1]}" if ":" in server[0] else f"{server[0]}:{server[1]}"
    return f"{scheme}://{host}"


async def _read_body(headers: dict[str, str], receive: Receive) -> bytes:
    """The body, refused with 413 once it passes ``MAX_BODY_BYTES`` (never buffered
    beyond that). The rest is read and dropped, up to ``_DRAIN_BYTES`` more, so the
    client can finish sending and read the answer instead of a reset connection."""
    declared = headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_BODY_BYTES + _DRAIN_BYTES:
        raise _too_large(drained=False)
    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise _Disconnected
        chunk = message.get("body", b"")
        more = message.get("more_body", False)
        size += len(chunk)
        if size > MAX_BODY_BYTES + _DRAIN_BYTES:
            raise _too_large(drained=False)
        if size <= MAX_BODY_BYTES:
            chunks.append(chunk)
    if size > MAX_BODY_BYTES:
        raise _too_large(drained=True)
    return b"".join(chunks)


def _too_large(*, drained: bool) -> _OAuthError:
    # Not drained: the unread rest makes the connection unusable, so close it.
    close = () if drained else ((b"connection", b"close"),)
    return _OAuthError(
        413,
        "invalid_request",
        f"The request body is larger than {MAX_BODY_BYTES} bytes",
        headers=close,
    )


async def _read_params(headers: dict[str, str], receive: Receive) -> dict[str, str]:
    """The token request's parameters from a JSON or form body. Descriptions never
    quote the body: it holds the client secret."""
    body = await _read_body(headers, receive)
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media_type == "application/json":
        return _json_params(body)
    if media_type == "application/x-www-form-urlencoded":
        return _form_params(body)
    raise _invalid(
        "Unsupported Content-Type: send application/json or application/x-www-form-urlencoded"
    )


def _json_params(body: bytes) -> dict[str, str]:
    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        seen: dict[str, Any] = {}
        for name, value in items:
            if name in seen:
                raise _invalid(f"{_param_label(name)} is given more than once")
            seen[name] = value
        return seen

    try:
        document = json.loads(body, object_pairs_hook=pairs)
    except (ValueError, RecursionError):
        raise _invalid("The request body is not valid JSON") from None
    if not isinstance(document, dict):
        raise _invalid("The request body must be a JSON object")
    params: dict[str, str] = {}
    for name, value in document.items():
        if value is None:
            continue
        if not isinstance(value, str):
            raise _invalid(f"{_param_label(name)} must be a string")
        params[name] = value
    return params


def _form_params(body: bytes) -> dict[str, str]:
    if not body:
        return {}
    try:
        items = parse_qsl(
            body.decode("ascii"),
            keep_blank_values=True,
            strict_parsing=True,
            encoding="utf-8",
            errors="strict",
        )
    except (ValueError, UnicodeDecodeError):
        raise _invalid(
            "The request body is not a valid form (application/x-www-form-urlencoded)"
        ) from None
    params: dict[str, str] = {}
    for name, value in items:
        if name in params:
            raise _invalid(f"{_param_label(name)} is given more than once")
        params[name] = value
    return params


def _param_label(name: str) -> str:
    """How an error names a parameter: only the known names are quoted, since an
    unknown "name" may be a pasted secret."""
    return f"Parameter {name!r}" if name in _PARAMETERS else "A parameter"


def _basic_credentials(header: str | None) -> tuple[str, tuple[str, ...]] | None:
    """(client_id, secret candidates) from ``Authorization: Basic``; None without one.

    RFC 6749 says both halves are form-encoded first; curl and most clients do not,
    so the secret is tried as sent and, when different, decoded.
    """
    if header is None:
        return None
    scheme, _, value = header.strip().partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, ValueError):
        raise _invalid("Malformed HTTP Basic credentials") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id:
        raise _invalid("Malformed HTTP Basic credentials")
    candidates = (secret,) if unquote(secret) == secret else (secret, unquote(secret))
    return unquote(client_id), candidates


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


async def _send_error(send: Send, error: _OAuthError) -> None:
    document = {"error": error.error, "error_description": error.description}
    await _send_json(send, error.status, document, extra=error.headers)


async def _method_not_allowed(send: Send, allow: str) -> None:
    error = _OAuthError(
        405,
        "invalid_request",
        f"Method not allowed here; use {allow}",
        headers=((b"allow", allow.encode("ascii")),),
    )
    await _send_error(send, error)


def _emit(on_event: EventCallback | None, kind: str, message: str) -> None:
    if on_event is None:
        return
    with contextlib.suppress(Exception):  # a broken listener must not break the issuer
        on_event(kind, message)
