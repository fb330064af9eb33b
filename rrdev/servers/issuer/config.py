"""The issuer's configuration: its paths, its clients (secrets resolved) and its URLs.

``emit`` hands a line to the ``on_event`` listener (never a secret); a broken listener
does not break the issuer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from rrdev.core.errors import ProfileError
from rrdev.core.model import IssuerConfig, Profile

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
    """An issuer client with its secret resolved (never shown: ``repr=False``).

    ``secret`` is None for a client that authenticates only with private_key_jwt:
    ``public_key`` (loaded from ``public_key_file``) or ``jwks_uri`` verifies its
    assertions.
    """

    client_id: str
    secret: str | None = field(repr=False)
    audiences: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    public_key: Any = field(default=None, repr=False)
    jwks_uri: str | None = None

    @property
    def has_key(self) -> bool:
        return self.public_key is not None or self.jwks_uri is not None


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
    clients = tuple(c if c.audiences else replace(c, audiences=own) for c in config.clients)
    return IssuerConfig(config.issuer, clients, config.token_lifetime_seconds)


def resolve_clients(
    config: IssuerConfig, env: Mapping[str, str] | None = None
) -> dict[str, LocalClient]:
    """client_id -> ``LocalClient``; an unset ``${NAME}`` in a secret is an
    ``EnvVarError`` naming the key (raised at start, not on the first request)."""
    clients: dict[str, LocalClient] = {}
    for client in config.clients:
        secret = client.client_secret
        if client.client_id in clients:
            raise ProfileError(
                f"client_id {client.client_id!r} is listed twice in [issuer]",
                file=secret.file if secret else None,
                line=secret.line if secret else None,
                key=(secret.key.rsplit(".", 1)[0] or None) if secret else None,
            )
        clients[client.client_id] = LocalClient(
            client.client_id,
            secret.resolve(env) if secret is not None else None,
            client.audiences,
            client.scopes,
            public_key=_public_key(client.public_key_file),
            jwks_uri=client.jwks_uri,
        )
    return clients


def _public_key(path: str | None) -> Any:
    """The PEM public key at ``path`` (None without one); a ``ProfileError`` naming
    the file when it cannot be read or is not a public key."""
    if path is None:
        return None
    from cryptography.hazmat.primitives.serialization import load_pem_public_key

    try:
        return load_pem_public_key(Path(path).read_bytes())
    except OSError as exc:
        message = f"cannot read the public key file: {exc.strerror or exc}"
    except (ValueError, TypeError):
        message = "not a PEM public key (-----BEGIN PUBLIC KEY-----)"
    except Exception:  # cryptography's UnsupportedAlgorithm
        message = "not a supported PEM public key"
    raise ProfileError(message, file=path, key="public_key_file")


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
