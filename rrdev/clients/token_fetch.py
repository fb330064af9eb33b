"""Sending a client-credentials request: ``fetch_token`` (through the token cache) and
``request_token`` (straight to the token endpoint).

Redirects are never followed (the body holds the client secret), the answer is read
up to ``MAX_RESPONSE_BYTES``, and a network failure is a ``TokenFetchError`` (exit 4)
with the secret scrubbed. ``rrdev.clients.oauth2_answer`` checks what comes back.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import TYPE_CHECKING

from rrdev.clients.oauth2 import (
    DEFAULT_TIMEOUT_SECONDS,
    FetchedToken,
    TokenRequest,
    fetch_error,
    token_request,
)
from rrdev.clients.oauth2_answer import parse_answer
from rrdev.clients.provider_hints import where_hint
from rrdev.core.model import OAuth2Client
from rrdev.core.netaddr import is_loopback_url

if TYPE_CHECKING:
    # Imported lazily at run time, as in jwks.py: ``import httpx`` can pull in rich.
    import httpx

    from rrdev.clients.token_cache import TokenCache

__all__ = ["MAX_RESPONSE_BYTES", "fetch_token", "request_token"]

#: A token response is a few KiB; anything past this is refused while reading.
MAX_RESPONSE_BYTES = 256 * 1024


async def fetch_token(
    client: OAuth2Client,
    *,
    http: httpx.AsyncClient | None = None,
    cache: TokenCache | None = None,
    now: float | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
    env: Mapping[str, str] | None = None,
) -> FetchedToken:
    """A client-credentials token for ``client``: from ``cache`` while it is fresh,
    else from the token endpoint (and then cached).

    ``http`` (an ``httpx.AsyncClient``) is used when given, else a client that honours
    the proxy environment variables (not for a loopback token URL). ``now`` (epoch
    seconds) dates the token. Raises ``EnvVarError`` for an unset secret and
    ``TokenFetchError`` (exit 4) when the endpoint fails; nothing is cached then.
    """
    request = token_request(client, env)
    now = time.time() if now is None else now
    if cache is not None:
        hit = cache.get(request.cache_key, now)
        if hit is not None:
            return hit
    token = await request_token(request, http=http, now=now, timeout=timeout)
    if cache is not None:
        cache.put(request.cache_key, token)
    return token


async def request_token(
    request: TokenRequest,
    *,
    http: httpx.AsyncClient | None = None,
    now: float | None = None,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> FetchedToken:
    """Send ``request`` to its token endpoint and check the answer (no cache)."""
    now = time.time() if now is None else now
    request = request.signed(now)  # private_key_jwt: a fresh assertion per request
    status, headers, body = await _post(request, http, timeout)
    return parse_answer(request, status, headers, body, now)


async def _post(
    request: TokenRequest, http: httpx.AsyncClient | None, timeout: float
) -> tuple[int, Mapping[str, str], bytes]:
    import httpx

    try:
        if http is not None:
            return await _send(http, request, timeout)
        # Redirects are not followed: the body holds the client secret. A loopback
        # token URL (the local issuer) never goes through HTTP(S)_PROXY.
        async with httpx.AsyncClient(
            timeout=timeout, trust_env=not is_loopback_url(request.url)
        ) as client:
            return await _send(client, request, timeout)
    except httpx.TimeoutException:
        raise fetch_error(
            request,
            f"the token endpoint {request.url} did not answer within {timeout:g}s",
            "the provider may be slow or unreachable from here; check your network "
            "and HTTPS_PROXY/NO_PROXY settings (rrdev token fetch --timeout raises the limit)",
        ) from None
    except httpx.ConnectError as exc:
        raise fetch_error(
            request,
            f"cannot connect to the token endpoint {request.url}: {_why(exc, request)}",
            where_hint(request),
        ) from None
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise fetch_error(
            request,
            f"the request to the token endpoint {request.url} failed: {_why(exc, request)}",
            where_hint(request),
        ) from None


async def _send(
    client: httpx.AsyncClient, request: TokenRequest, timeout: float
) -> tuple[int, Mapping[str, str], bytes]:
    async with client.stream(
        "POST",
        request.url,
        content=request.body,
        headers=list(request.headers),
        timeout=timeout,
        follow_redirects=False,
    ) as response:
        chunks: list[bytes] = []
        size = 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > MAX_RESPONSE_BYTES:
                raise fetch_error(
                    request,
                    f"the token endpoint {request.url} answered more than "
                    f"{MAX_RESPONSE_BYTES} bytes",
                    where_hint(request),
                    status=response.status_code,
                )
            chunks.append(chunk)
        return response.status_code, dict(response.headers), b"".join(chunks)


def _why(exc: BaseException, request: TokenRequest) -> str:
    text = request.scrub(str(exc))[:200]
    return text or type(exc).__name__
