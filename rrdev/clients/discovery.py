"""OIDC discovery over HTTP: read ``{issuer}/.well-known/openid-configuration`` and keep
it for the JWKS cache (``rrdev.clients.jwks``), which asks for the ``jwks_uri`` each time
it fetches the keys.

* The document is checked by ``rrdev.core.oidc.read_discovery_document``: exact
  ``issuer``, an https (or loopback http) ``jwks_uri``.
* It is cached for the source's ``ttl`` (``discovery_ttl_seconds``). When a refresh
  fails, the last good document keeps being used for ``max_stale`` seconds once past its
  TTL (``jwks_max_stale_seconds``: the JWKS rules); then, and before any success,
  ``DiscoveryUnavailable`` (503 ``discovery_unavailable`` or
  ``discovery_issuer_mismatch``).
* Redirects are not followed (the issuer's document should be at its documented place),
  bodies are capped, and nothing is fetched more often than the JWKS cache asks, which
  already bounds its refetches.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rrdev.core.errors import DiscoveryUnavailable
from rrdev.core.jwk import staleness
from rrdev.core.oidc import DiscoveryDocument, DiscoverySource, read_discovery_document
from rrdev.core.tokens import humanize_delta

if TYPE_CHECKING:
    import httpx

__all__ = ["DiscoveryCache", "fetch_discovery"]

#: A discovery document is a few KiB.
MAX_DISCOVERY_BYTES = 256 * 1024

#: Which HTTP client to use for a URL (``JwksClients.client_for`` or a fixed client).
ClientFor = Callable[[str], Awaitable["httpx.AsyncClient"]]


async def fetch_discovery(
    client: httpx.AsyncClient, issuer: str, timeout: float = 5.0
) -> DiscoveryDocument:
    """Fetch and check ``issuer``'s discovery document once (no cache): ``rrdev init
    --discover`` and the cache below. Raises ``DiscoveryUnavailable``."""
    url = DiscoverySource(issuer).url
    return read_discovery_document(await _get_json(client, url, timeout), issuer, url)


@dataclass
class _Held:
    document: DiscoveryDocument
    fetched_at: float


class DiscoveryCache:
    """One issuer's discovery document, cached; ``jwks_uri()`` is all the JWKS cache
    needs. ``clock`` is monotonic seconds (the JWKS cache's)."""

    def __init__(
        self,
        source: DiscoverySource,
        *,
        clock: Callable[[], float],
        max_stale: float,
        timeout: float,
    ) -> None:
        self.source = source
        self.max_stale = max_stale
        self._clock = clock
        self._timeout = timeout
        self._held: _Held | None = None
        self._failing_since: float | None = None
        #: a note while a stale document is used (for the JWKS cache's status)
        self.stale_note: str | None = None

    @property
    def jwks_uri_known(self) -> str | None:
        """The ``jwks_uri`` of the last good document (None before one)."""
        return self._held.document.jwks_uri if self._held else None

    async def jwks_uri(self, client_for: ClientFor) -> str:
        """The ``jwks_uri`` to fetch the keys from: the cached document's while within its
        TTL, else a fresh one, else (refresh failing) the last good one while within
        ``max_stale``. Raises ``DiscoveryUnavailable``."""
        held = self._held
        if held is not None and self._clock() - held.fetched_at < self.source.ttl:
            return held.document.jwks_uri
        url = self.source.url
        try:
            client = await client_for(url)
            document = await fetch_discovery(client, self.source.issuer, self._timeout)
        except DiscoveryUnavailable as error:
            return self._stale_or_raise(error)
        self._held = _Held(document, self._clock())
        self._failing_since = None
        self.stale_note = None
        return document.jwks_uri

    def _stale_or_raise(self, error: DiscoveryUnavailable) -> str:
        now = self._clock()
        if self._failing_since is None:
            self._failing_since = now
        held = self._held
        if held is None:
            raise error
        stale = staleness(
            source=self.source.url,
            fetched_at=held.fetched_at,
            ttl=self.source.ttl,
            failing_since=self._failing_since,
            max_stale=self.max_stale,
            now=now,
            problem=error.problem,
        )
        if stale is not None and not stale.served:
            raise error.restated(
                f"{error.problem}; the last good document, stale for "
                f"{humanize_delta(stale.stale_for)}, is no longer used "
                f"(jwks_max_stale_seconds = {self.max_stale:g})"
            )
        self.stale_note = f"discovery document {self.source.url} is failing ({error.problem})"
        return held.document.jwks_uri


async def _get_json(client: httpx.AsyncClient, url: str, timeout: float) -> Any:
    import httpx

    try:
        async with client.stream(
            "GET", url, timeout=timeout, headers={"Accept": "application/json"}
        ) as response:
            _check_status(response, url)
            body = await _read_capped(response, url)
    except httpx.TimeoutException:
        raise DiscoveryUnavailable(url, f"no answer within {timeout:g}s") from None
    except (httpx.HTTPError, httpx.InvalidURL) as error:
        raise DiscoveryUnavailable(url, f"unreachable ({type(error).__name__}: {error})") from None
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise DiscoveryUnavailable(url, "the response is not JSON") from None


def _check_status(response: httpx.Response, url: str) -> None:
    if response.status_code == 200:
        return
    problem = f"it answered HTTP {response.status_code}"
    location = response.headers.get("location")
    if response.is_redirect and location:
        problem += " (a redirect; rrdev does not follow redirects for discovery)"
    raise DiscoveryUnavailable(url, problem)


async def _read_capped(response: httpx.Response, url: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_DISCOVERY_BYTES:
            raise DiscoveryUnavailable(
                url, f"the response is larger than {MAX_DISCOVERY_BYTES} bytes"
            )
        chunks.append(chunk)
    return b"".join(chunks)
