"""The issuer's configuration: its paths, its clients (secrets resolved) and its URLs.

``emit`` hands a line to the ``on_event`` listener (never a secret); a broken listener
does not break the issuer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from rrdev.core.errors import ProfileError
from rrdev.core.model import IssuerClient, IssuerConfig, Profile

__all__ = [
    "DEFAULT_ISSUER",
    "DISCOVERY_PATH",
    "JWKS_PATH",
    "TOKEN_PATH",
    "EventCallback",
    "IssuerUrls",
    "LocalClient",
    "emit",
    "issuer_config_for",
    "resolve_clients",
]

DEFAULT_ISSUER = IssuerConfig.issuer
DISCOVERY_PATH = "/.well-known/openid-configuration"
JWKS_PATH = "/.well-known/jwks.json"
TOKEN_PATH = "/oauth/token"

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


def emit(on_event: EventCallback | None, kind: str, message: str) -> None:
    if on_event is None:
        return
    with contextlib.suppress(Exception):  # a broken listener must not break the issuer
        on_event(kind, message)
