"""``grant_type=client_credentials``: client authentication and token issuing.

The client authenticates with ``client_secret`` in the body or with HTTP Basic; an
unknown client and a wrong secret get the same answer, as Auth0 gives. Tokens are
shaped like Auth0's machine-to-machine access tokens (``iss``, ``sub =
<client_id>@clients``, ``aud``, ``iat``, ``exp``, ``scope``, ``gty``, ``azp``; header
``kid``). The granted scope is the requested scopes the client is allowed (all of them
when none are requested).
"""

from __future__ import annotations

import base64
import binascii
import hmac
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import unquote

from rrdev.core.keyset import Keyset
from rrdev.core.model import IssuerConfig
from rrdev.core.tokens import clip
from rrdev.servers.issuer.config import EventCallback, LocalClient, emit
from rrdev.servers.issuer.request import OAuthError, invalid

__all__ = ["GRANT_TYPE", "ClientCredentialsGrant"]

GRANT_TYPE = "client_credentials"


class ClientCredentialsGrant:
    """Authenticates the client of a token request and signs its token.

    ``clients`` are the issuer's clients with their secrets resolved; ``keyset``
    returns the keyset now in force; ``clock`` (epoch seconds) dates tokens;
    ``on_event`` gets one line per token issued. Every refusal is an ``OAuthError``.
    """

    def __init__(
        self,
        config: IssuerConfig,
        clients: Mapping[str, LocalClient],
        *,
        keyset: Callable[[], Keyset],
        clock: Callable[[], float],
        on_event: EventCallback | None = None,
    ) -> None:
        self.config = config
        self.clients = clients
        self.keyset = keyset
        self.clock = clock
        self.on_event = on_event
        #: every audience some client may ask for (others: "Service not enabled")
        self._known_audiences = frozenset(a for c in self.clients.values() for a in c.audiences)

    def issue(
        self,
        params: dict[str, str],
        headers: dict[str, str],
        authenticated: LocalClient | None = None,
    ) -> dict[str, Any]:
        """The token answer; ``authenticated`` is a client that already proved who it
        is (a private_key_jwt assertion), else the secret or HTTP Basic is checked."""
        grant = params.get("grant_type")
        if not grant:
            raise invalid("Missing required parameter: grant_type")
        if grant != GRANT_TYPE:
            raise OAuthError(
                400,
                "unsupported_grant_type",
                f"Unsupported grant type: {clip(grant, quote=False)}",
                f"grant_type {clip(grant)} (this issuer supports client_credentials only)",
            )
        client = authenticated or self._authenticate(params, headers)
        audience = params.get("audience")
        if not audience:
            raise invalid("Missing required parameter: audience")
        self._check_audience(client, audience)
        granted = _granted_scopes(client.scopes, params.get("scope"))
        token, lifetime = self._sign(client, audience, granted)
        scope_text = " ".join(granted)
        emit(
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
                raise invalid(
                    "Use one client authentication method: HTTP Basic or client_secret "
                    "in the body, not both"
                )
            client_id, candidates = basic
            if params.get("client_id", client_id) != client_id:
                raise invalid("client_id in the body does not match the HTTP Basic credentials")
        else:
            client_id = params.get("client_id", "")
            if not client_id:
                raise invalid("Missing required parameter: client_id")
            secret = params.get("client_secret")
            if not secret:
                raise invalid("Missing required parameter: client_secret")
            candidates = (secret,)
        client = self.clients.get(client_id)
        secret = client.secret if client is not None else None
        expected = secret if secret is not None else "\x00unknown-client"
        matched = False
        for candidate in candidates:  # compare_digest: no timing hint about the secret
            matched |= hmac.compare_digest(candidate.encode(), expected.encode())
        # A client without a secret (private_key_jwt only) never matches one.
        if client is None or secret is None or not matched:
            why = f"wrong client secret for {clip(client_id)}"
            if client is None:
                why = self._unknown_client(client_id)
            elif secret is None:
                why = f"client {clip(client_id)} has no secret: it uses private_key_jwt"
            challenge = ((b"www-authenticate", b'Basic realm="rrdev"'),) if basic else ()
            raise OAuthError(401, "access_denied", "Unauthorized", why, challenge)
        return client

    def _unknown_client(self, client_id: str) -> str:
        """The log line for an unknown client_id, which is never logged when it is
        some client's secret (client_id and client_secret swapped)."""
        for client in self.clients.values():
            if client.secret is None:
                continue
            if hmac.compare_digest(client_id.encode(), client.secret.encode()):
                return "unknown client: the client_id sent is a client secret (swapped?)"
        return f"unknown client {clip(client_id)}"

    def _check_audience(self, client: LocalClient, audience: str) -> None:
        if audience in client.audiences:
            return
        shown = clip(audience, 200, quote=False)
        if audience not in self._known_audiences:
            raise OAuthError(
                403,
                "access_denied",
                f"Service not enabled within domain: {shown}",
                f"client {clip(client.client_id)} asked for {clip(audience)}, an audience "
                "no client of this issuer may ask for",
            )
        raise OAuthError(
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


def _granted_scopes(allowed: tuple[str, ...], requested: str | None) -> list[str]:
    """The requested scopes the client is allowed (in the client's order); all of
    them when none are requested."""
    wanted = set((requested or "").split())
    if not wanted:
        return list(allowed)
    return [s for s in allowed if s in wanted]


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
        raise invalid("Malformed HTTP Basic credentials") from None
    client_id, sep, secret = decoded.partition(":")
    if not sep or not client_id:
        raise invalid("Malformed HTTP Basic credentials")
    candidates = (secret,) if unquote(secret) == secret else (secret, unquote(secret))
    return unquote(client_id), candidates
