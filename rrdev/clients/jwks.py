"""Async JWKS fetch + cache with a rate-limited refetch on an unknown ``kid``.

The JWKS is the trust root of verification, so this module is deliberately narrow:

* only asymmetric signing keys are ever served (``kty`` RSA, EC or OKP; ``use``
  absent or ``sig``). ``oct`` (shared-secret) keys are dropped when the document is
  read, so no token can make rrdev verify an HMAC with anything from a JWKS;
* a key is handed out only for an algorithm it can actually verify (its ``kty``
  and curve fit, and its ``alg``, when set, is the token's);
* weak or self-contradictory signing keys (RSA under 2048 bits, a curve that does
  not fit the declared ``alg``) are ignored; each is reported once per cache through
  ``on_event("jwks_key_ignored", message)``, and a token naming one is refused;
* refetches (TTL expiry or an unknown ``kid``) happen at most once per
  ``refetch_interval``, so a flood of random kids cannot hammer the issuer;
* concurrent callers on a cold cache share one fetch;
* when a refresh fails, the last good copy keeps being served (the error is kept
  for ``status()``); only a cache that never loaded raises ``JwksUnavailable``.

The key-set rules (the first three points: which keys count, which one fits a token)
are pure and live in ``rrdev.core.jwk``; this module does the fetching and caching.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote, urlparse

from jwt import PyJWK

from rrdev.core.errors import JwksUnavailable, KeyNotFound
from rrdev.core.jwk import JwksSnapshot, JwksStatus, check_document, choose_key, read_keys
from rrdev.core.netaddr import is_loopback_url

if TYPE_CHECKING:
    # Imported lazily at run time: when rich/click are installed (they are, for
    # the CLI), ``import httpx`` also imports its own CLI and with it rich, which
    # the engine must not pull in -- and a file or inline JWKS needs no HTTP.
    import httpx

__all__ = ["JwksCache", "JwksUnavailable", "KeyNotFound"]

#: A JWKS is a few KiB; refuse to buffer anything absurd.
MAX_JWKS_BYTES = 1024 * 1024


class JwksCache:
    """A JWKS from a URL, a file (path or ``file://``), or an already-parsed dict.

    ``ttl`` (seconds) is how long a fetched copy is used before refreshing;
    ``refetch_interval`` bounds how often any refetch happens; ``clock`` is
    injectable for tests (monotonic seconds). Without an injected ``client`` an
    ``httpx.AsyncClient`` is created on first use (it honours proxy environment
    variables) and closed by ``aclose()``. ``on_event(kind, message)`` hears about
    each ignored key once ("jwks_key_ignored"); a failing listener is ignored.
    """

    def __init__(
        self,
        source: str | dict[str, Any],
        *,
        client: httpx.AsyncClient | None = None,
        ttl: float = 600,
        refetch_interval: float = 30,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = 5.0,
        on_event: Callable[[str, str], None] | None = None,
    ) -> None:
        self._source = source
        self._client = client
        self._owns_client = False
        self._ttl = ttl
        self._refetch_interval = refetch_interval
        self._clock = clock
        self._timeout = timeout
        self._on_event = on_event
        self._reported: set[str] = set()
        self._lock = asyncio.Lock()
        self._snapshot: JwksSnapshot | None = None
        self._last_error: JwksUnavailable | None = None
        self._last_attempt: float | None = None
        # Bumped by every fetch attempt: a caller that waited on the lock sees it
        # moved and reuses that result instead of fetching again.
        self._generation = 0

    @property
    def source(self) -> str:
        """The source as people should see it (URL, file path or ``<inline JWKS>``)."""
        if isinstance(self._source, dict):
            return "<inline JWKS>"
        return self._source

    @property
    def refetch_interval(self) -> float:
        """At most one refetch per this many seconds (TTL expiry or an unknown kid)."""
        return self._refetch_interval

    # ------------------------------------------------------------------ public

    async def get_key(self, kid: str | None, alg: str) -> PyJWK:
        """The JWKS key that can verify a token with this ``kid`` and ``alg``.

        Raises ``KeyNotFound`` (no usable key; its ``retry_in`` is set when an unknown
        ``kid`` did not refetch because of ``refetch_interval``) or ``JwksUnavailable``
        (the JWKS could never be read). A token without ``kid`` gets the JWKS's only
        usable key, if it has exactly one.
        """
        generation = self._generation
        snapshot = await self._usable_snapshot()
        retry_in: float | None = None
        if kid is not None and not snapshot.has_kid(kid):
            if self._may_refetch():
                # Issuers rotate keys: an unknown kid may be brand new.
                await self._refresh(self._generation)
                snapshot = self._snapshot or snapshot
            elif self._generation == generation and not isinstance(self._source, dict):
                retry_in = self._refetch_wait()  # not fetched for this call: say when
        try:
            return choose_key(snapshot, kid, alg)
        except KeyNotFound as error:
            error.retry_in = retry_in
            raise

    def status(self) -> JwksStatus:
        snapshot = self._snapshot
        return JwksStatus(
            source=self.source,
            key_count=len(snapshot.keys) if snapshot else 0,
            kids=tuple(snapshot.kids) if snapshot else (),
            age_seconds=self._clock() - snapshot.fetched_at if snapshot else None,
            last_error=str(self._last_error) if self._last_error else None,
            ignored=tuple(k.why for k in snapshot.ignored) if snapshot else (),
        )

    def invalidate(self) -> None:
        """Forget the cached copy: the next ``get_key`` fetches again."""
        self._snapshot = None
        self._last_attempt = None

    async def aclose(self) -> None:
        """Close the HTTP client if this cache created it."""
        if self._owns_client and self._client is not None:
            await self._client.aclose()
            self._client = None
            self._owns_client = False

    async def __aenter__(self) -> JwksCache:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --------------------------------------------------------------- caching

    async def _usable_snapshot(self) -> JwksSnapshot:
        snapshot = self._snapshot
        if snapshot is None:
            await self._refresh(self._generation)
        elif self._clock() - snapshot.fetched_at >= self._ttl and self._may_refetch():
            await self._refresh(self._generation)  # failure keeps the stale copy
        if self._snapshot is None:
            error = self._last_error
            assert error is not None  # a failed first fetch always records one
            raise JwksUnavailable(error.uri, error.problem, error.hint)
        return self._snapshot

    def _may_refetch(self) -> bool:
        last = self._last_attempt
        return last is None or self._clock() - last >= self._refetch_interval

    def _refetch_wait(self) -> float:
        """Seconds until ``_may_refetch`` allows the next fetch."""
        last = self._last_attempt
        if last is None:
            return 0.0
        return max(0.0, last + self._refetch_interval - self._clock())

    async def _refresh(self, seen_generation: int) -> None:
        async with self._lock:
            if self._generation != seen_generation:
                return  # someone fetched while we waited: use their result
            try:
                document = await self._fetch()
                keys, ignored = read_keys(document)
                self._snapshot = JwksSnapshot(keys, self._clock(), ignored=ignored)
                self._last_error = None
                self._report_ignored()
            except JwksUnavailable as error:
                self._last_error = error
            finally:
                self._generation += 1
                self._last_attempt = self._clock()

    def _report_ignored(self) -> None:
        """One event per ignored key and reason, the first time this cache sees it."""
        snapshot = self._snapshot
        if snapshot is None or self._on_event is None:
            return
        for key in snapshot.ignored:
            if key.why in self._reported:
                continue
            self._reported.add(key.why)
            message = f"{self.source}: {key.why}; tokens signed with it get 401 key_unusable"
            # A broken listener must not break key fetching.
            with contextlib.suppress(Exception):
                self._on_event("jwks_key_ignored", message)

    # --------------------------------------------------------------- fetching

    async def _fetch(self) -> dict[str, Any]:
        source = self._source
        if isinstance(source, dict):
            return check_document(source, self.source)
        if source.startswith(("http://", "https://")):
            return check_document(await self._fetch_http(source), source)
        return check_document(await self._fetch_file(source), source)

    async def _fetch_http(self, url: str) -> Any:
        import httpx

        client = self._http_client()
        try:
            async with client.stream(
                "GET", url, timeout=self._timeout, headers={"Accept": "application/json"}
            ) as response:
                _check_status(response, url)
                body = await _read_capped(response, url)
                content_type = response.headers.get("content-type", "")
        except httpx.TimeoutException:
            raise JwksUnavailable(url, f"no answer within {self._timeout:g}s") from None
        except (httpx.HTTPError, httpx.InvalidURL) as error:
            raise JwksUnavailable(url, f"unreachable ({type(error).__name__}: {error})") from None
        return _parse_json(body, url, f"the response (content-type {content_type or 'none'})")

    async def _fetch_file(self, source: str) -> Any:
        path = _file_path(source)
        try:
            body = await asyncio.to_thread(_read_file_capped, path)
        except FileNotFoundError:
            raise JwksUnavailable(str(path), "the file does not exist") from None
        except OSError as error:
            raise JwksUnavailable(str(path), f"cannot read the file ({error.strerror})") from None
        return _parse_json(body, str(path), "the file")

    def _http_client(self) -> httpx.AsyncClient:
        if self._client is None:
            import httpx

            # Redirects are not followed: the JWKS URI is part of the trust
            # configuration, so it should name the final location.
            # A loopback JWKS (the local issuer, the demo) never goes through
            # HTTP(S)_PROXY: most proxies cannot reach the developer's own machine.
            self._client = httpx.AsyncClient(
                timeout=self._timeout, trust_env=not is_loopback_url(self._source)
            )
            self._owns_client = True
        return self._client


# ------------------------------------------------------------------ helpers


def _check_status(response: httpx.Response, url: str) -> None:
    if response.status_code == 200:
        return
    problem = f"it answered HTTP {response.status_code}"
    location = response.headers.get("location")
    if response.is_redirect and location:
        raise JwksUnavailable(
            url,
            f"{problem}, a redirect to {location}",
            "set jwks_uri to the final URL (rrdev does not follow JWKS redirects)",
        )
    raise JwksUnavailable(url, problem)


async def _read_capped(response: httpx.Response, url: str) -> bytes:
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        size += len(chunk)
        if size > MAX_JWKS_BYTES:
            raise JwksUnavailable(url, f"the response is larger than {MAX_JWKS_BYTES} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _file_path(source: str) -> Path:
    if source.startswith("file://"):
        return Path(unquote(urlparse(source).path))
    return Path(source).expanduser()


def _read_file_capped(path: Path) -> bytes:
    with path.open("rb") as handle:
        body = handle.read(MAX_JWKS_BYTES + 1)
    if len(body) > MAX_JWKS_BYTES:
        raise OSError(0, f"larger than {MAX_JWKS_BYTES} bytes")
    return body


def _parse_json(body: bytes, where: str, what: str) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        raise JwksUnavailable(where, f"{what} is not JSON") from None
