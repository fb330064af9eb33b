"""``private_key_jwt`` client authentication at the local issuer (RFC 7523 §3).

A client configured with a public key (``public_key_file``) or a JWKS (``jwks_uri``)
may authenticate with ``client_assertion_type`` =
``urn:ietf:params:oauth:client-assertion-type:jwt-bearer`` and a signed
``client_assertion``. The assertion must be signed with an allowed asymmetric algorithm
by that client's key; ``iss`` and ``sub`` must both be the client id; ``aud`` must
name this issuer's token URL; ``exp`` must be in the future but at most
``MAX_LIFETIME_SECONDS`` away; and its ``jti`` is remembered until it expires, so a
replayed assertion is refused.

An unknown client and a bad signature get the same answer; once the signature holds,
the answer says which claim is wrong. The assertion is never echoed or logged.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from rrdev.core.algorithms import ASSERTION_ALGORITHMS  # asymmetric only, never none/HS*
from rrdev.core.tokens import clip
from rrdev.servers.issuer.config import LocalClient
from rrdev.servers.issuer.request import OAuthError, invalid

__all__ = ["ASSERTION_ALGORITHMS", "ASSERTION_TYPE", "MAX_LIFETIME_SECONDS", "ClientAssertions"]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: An assertion is for one request, right away: a longer-lived one is refused (and the
#: replay cache never has to remember a jti for long).
MAX_LIFETIME_SECONDS = 300
#: How far an assertion's iat may be ahead of this clock (a client's clock skew).
CLOCK_SKEW_SECONDS = 30


class ClientAssertions:
    """Verifies client assertions for ``clients`` and remembers the ``jti``s used.

    ``clock`` gives epoch seconds (the issuer's, so tests can move it).
    """

    def __init__(self, clients: Mapping[str, LocalClient], clock: Callable[[], float]) -> None:
        self.clients = clients
        self.clock = clock
        #: (client_id, jti) -> exp: an assertion seen, refused again until it expires
        self._seen: dict[tuple[str, str], float] = {}

    async def authenticate(self, params: Mapping[str, str], token_url: str) -> LocalClient:
        """The client ``params``' assertion authenticates, or an ``OAuthError``."""
        assertion = _assertion_of(params)
        header, unverified = _unverified(assertion)
        client = self.clients.get(str(unverified.get("iss", "")))
        if client is None or not client.has_key:
            raise _refused("unknown client, or one without a public key, in a client assertion")
        if params.get("client_id", client.client_id) != client.client_id:
            raise invalid("client_id does not match the client assertion's iss")
        claims = await self._verified(assertion, header, client, token_url)
        self._check_claims(claims, client, token_url)
        return client

    async def _verified(
        self, assertion: str, header: Mapping[str, Any], client: LocalClient, token_url: str
    ) -> dict[str, Any]:
        import jwt

        alg = header.get("alg")
        if alg not in ASSERTION_ALGORITHMS:
            raise _refused(
                f"client assertion signed with {clip(str(alg))}",
                f"Invalid client assertion: alg must be one of {', '.join(ASSERTION_ALGORITHMS)}",
            )
        key = await _key_of(client, header.get("kid"), alg)
        try:
            # exp, aud and iat are checked below against this issuer's own clock and URL.
            return jwt.decode(
                assertion,
                key,
                algorithms=[alg],
                options={"verify_exp": False, "verify_aud": False, "verify_iat": False},
            )
        except jwt.PyJWTError as exc:
            detail = f"client assertion of {clip(client.client_id)}: {type(exc).__name__}"
            raise _refused(detail) from None

    def _check_claims(self, claims: Mapping[str, Any], client: LocalClient, token_url: str) -> None:
        who = client.client_id
        if claims.get("iss") != who or claims.get("sub") != who:
            raise _claim_refused(client, "iss and sub must both be the client id")
        aud = claims.get("aud")
        auds = aud if isinstance(aud, list) else [aud]
        if token_url not in auds:
            raise _claim_refused(client, f"aud must be the token endpoint URL {token_url}")
        now = self.clock()
        exp = claims.get("exp")
        if not _is_number(exp):
            raise _claim_refused(client, "exp is required")
        if exp <= now:
            raise _claim_refused(client, "the assertion has expired")
        if exp - now > MAX_LIFETIME_SECONDS:
            raise _claim_refused(
                client, f"exp is more than {MAX_LIFETIME_SECONDS} seconds away (too long-lived)"
            )
        iat = claims.get("iat")
        if iat is not None and (not _is_number(iat) or iat > now + CLOCK_SKEW_SECONDS):
            raise _claim_refused(client, "iat is in the future")
        self._remember(client, claims.get("jti"), float(exp), now)

    def _remember(self, client: LocalClient, jti: Any, exp: float, now: float) -> None:
        if not isinstance(jti, str) or not jti:
            raise _claim_refused(client, "jti is required (a unique id per assertion)")
        self._seen = {k: until for k, until in self._seen.items() if until > now}
        key = (client.client_id, jti)
        if key in self._seen:
            raise _claim_refused(client, "this assertion (its jti) was already used")
        self._seen[key] = exp


def _assertion_of(params: Mapping[str, str]) -> str:
    kind = params.get("client_assertion_type")
    if kind != ASSERTION_TYPE:
        raise invalid(f"client_assertion_type must be {ASSERTION_TYPE}")
    assertion = params.get("client_assertion")
    if not assertion:
        raise invalid("Missing required parameter: client_assertion")
    if "client_secret" in params:
        raise invalid(
            "Use one client authentication method: a client assertion or client_secret, not both"
        )
    return assertion


def _unverified(assertion: str) -> tuple[dict[str, Any], dict[str, Any]]:
    import jwt

    try:
        header = jwt.get_unverified_header(assertion)
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise _refused("a client assertion that is not a JWT") from None
    return header, claims


async def _key_of(client: LocalClient, kid: Any, alg: str) -> Any:
    if client.public_key is not None:
        return client.public_key
    from rrdev.clients.jwks import JwksCache
    from rrdev.core.errors import RrdevError

    assert client.jwks_uri is not None
    try:
        async with JwksCache(client.jwks_uri) as cache:
            return (await cache.get_key(kid if isinstance(kid, str) else None, alg)).key
    except RrdevError as exc:
        raise _refused(f"no key of {clip(client.client_id)} for its assertion: {exc}") from None


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _refused(detail: str, description: str = "Invalid client assertion") -> OAuthError:
    """401 invalid_client (RFC 6749 §5.2); ``detail`` only goes to the issuer's log."""
    return OAuthError(401, "invalid_client", description, detail)


def _claim_refused(client: LocalClient, why: str) -> OAuthError:
    return _refused(
        f"client assertion of {clip(client.client_id)}: {why}", f"Invalid client assertion: {why}"
    )
