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
* concurrent callers share one fetch, and are all released when it ends;
* when a refresh fails, the last good copy keeps being served, but only for
  ``max_stale`` seconds once it is past its TTL (``rrdev.core.jwk.staleness``); then
  ``JwksUnavailable`` until a fetch succeeds. A cache that never loaded raises it at
  once. Each change is reported through ``on_event``: "jwks_stale", "jwks_unavailable",
  "jwks_recovered", and "jwks_changed" when a refetch brings a different key set;
* ``key_set_version()`` changes whenever the key set served changes, so a cache of
  verified tokens keyed by it forgets them at once (``CachingVerifier``).

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

from rrdev.clients.discovery import DiscoveryCache
from rrdev.core.errors import JwksUnavailable, KeyNotFound
from rrdev.core.jwk import (
    IgnoredKey,
    JwksSnapshot,
    JwksStatus,
    Staleness,
    check_document,
    choose_key,
    read_keys,
    staleness,
)
from rrdev.core.model import ProxyCredential
from rrdev.core.netaddr import is_loopback_url
from rrdev.core.oidc import DiscoverySource
from rrdev.core.tokens import humanize_delta

if TYPE_CHECKING:
    # Imported lazily at run time: when rich/click are installed (they are, for
    # the CLI), ``import httpx`` also imports its own CLI and with it rich, which
    # the engine must not pull in -- and a file or inline JWKS needs no HTTP.
    import httpx

__all__ = ["JwksCache", "JwksClients", "JwksUnavailable", "KeyNotFound"]

#: A JWKS is a few KiB; refuse to buffer anything absurd.
MAX_JWKS_BYTES = 1024 * 1024

#: ``on_event(kind, message)``: "jwks_stale", "jwks_unavailable", "jwks_recovered",
#: "jwks_changed", "jwks_key_ignored".
JwksEvent = Callable[[str, str], None]


class JwksClients:
    """The HTTP clients that JWKS caches share (a proxy keeps one for all its reloads).

    One ``httpx.AsyncClient`` per proxy setting: direct for a loopback JWKS (the local
    issuer, the demo: most proxies cannot reach the developer's own machine), through
    ``HTTP(S)_PROXY`` otherwise. Each is made once, in a worker thread: loading the
    trust store takes 50-150 ms, which must not stall the event loop. ``aclose()``
    closes them.
    """

    def __init__(self) -> None:
        self._made: dict[bool, asyncio.Future[httpx.AsyncClient]] = {}

    async def client_for(self, url: str) -> httpx.AsyncClient:
        trust_env = not is_loopback_url(url)
        made = self._made.get(trust_env)
        if made is None:
            made = asyncio.ensure_future(asyncio.to_thread(_new_client, trust_env))
            self._made[trust_env] = made
        # shield: a caller that goes away must not cancel the client others wait on.
        return await asyncio.shield(made)

    async def aclose(self) -> None:
        made, self._made = self._made, {}
        for future in made.values():
            with contextlib.suppress(Exception):
                await (await future).aclose()


def _new_client(trust_env: bool) -> httpx.AsyncClient:
    import httpx

    # Redirects are not followed: the JWKS URI is part of the trust configuration, so
    # it should name the final location.
    return httpx.AsyncClient(trust_env=trust_env)


class JwksCache:
    """A JWKS from a URL, a file (path or ``file://``), an already-parsed dict, or the
    ``jwks_uri`` that OIDC discovery of an issuer names (``DiscoverySource``: the
    discovery document is cached for its own TTL and follows the same stale rules).

    ``ttl`` (seconds) is how long a fetched copy is used before refreshing;
    ``refetch_interval`` bounds how often any refetch happens; ``max_stale`` how long
    a copy past its TTL is still served while refreshes fail; ``clock`` is injectable
    for tests (monotonic seconds); ``on_event`` hears about outages and key changes.
    HTTP goes through ``client`` when given (never closed here), else through
    ``clients`` (shared, closed by their owner), else through clients this cache makes
    on first use and closes in ``aclose()``.
    """

    def __init__(
        self,
        source: str | dict[str, Any] | DiscoverySource,
        *,
        client: httpx.AsyncClient | None = None,
        clients: JwksClients | None = None,
        ttl: float = ProxyCredential.jwks_ttl_seconds,
        refetch_interval: float = ProxyCredential.jwks_refetch_interval_seconds,
        max_stale: float = ProxyCredential.jwks_max_stale_seconds,
        clock: Callable[[], float] = time.monotonic,
        timeout: float = 5.0,
        on_event: JwksEvent | None = None,
    ) -> None:
        self._source = source
        discovery = None
        if isinstance(source, DiscoverySource):
            discovery = DiscoveryCache(source, clock=clock, max_stale=max_stale, timeout=timeout)
        self._discovery = discovery
        self._fetcher = _Fetcher(source, "<inline JWKS>", client, clients, timeout, discovery)
        self._ttl = ttl
        self._refetch_interval = refetch_interval
        self._max_stale = max_stale
        self._clock = clock
        self._on_event = on_event
        self._snapshot: JwksSnapshot | None = None
        self._last_error: JwksUnavailable | None = None
        self._last_attempt: float | None = None
        #: when the first fetch failed since the last good one (None: the last one was good)
        self._failing_since: float | None = None
        #: bumped whenever the key set served changes (see ``key_set_version``)
        self._version = 0
        #: bumped by every fetch attempt, so a caller sees whether one ran meanwhile
        self._generation = 0
        self._fetching: asyncio.Task[None] | None = None
        #: the worst outage state reported so far in this outage: None, "stale", "expired"
        self._reported: str | None = None
        #: the ignored keys already reported (one event per key and reason)
        self._ignored_reported: set[str] = set()
        self.closed = False

    @property
    def source(self) -> str:
        """The source as people should see it (URL, file path or ``<inline JWKS>``;
        with discovery, the discovered URL once known)."""
        source = self._source
        if isinstance(source, dict):
            return "<inline JWKS>"
        if isinstance(source, DiscoverySource):
            known = self._discovery.jwks_uri_known if self._discovery else None
            return f"{known} (discovered from {source.url})" if known else source.url
        return source

    @property
    def refetch_interval(self) -> float:
        """At most one refetch per this many seconds (TTL expiry or an unknown kid)."""
        return self._refetch_interval

    def configure(self, *, ttl: float, refetch_interval: float, max_stale: float) -> None:
        """New timings (a reload that changed only them): the keys are kept."""
        self._ttl = ttl
        self._refetch_interval = refetch_interval
        self._max_stale = max_stale
        if self._discovery is not None:
            self._discovery.max_stale = max_stale

    # ------------------------------------------------------------------ public

    async def get_key(self, kid: str | None, alg: str) -> PyJWK:
        """The JWKS key that can verify a token with this ``kid`` and ``alg``.

        Raises ``KeyNotFound`` (no usable key; its ``retry_in`` is set when an unknown
        ``kid`` did not refetch because of ``refetch_interval``) or ``JwksUnavailable``
        (the JWKS could never be read, or its copy is stale beyond ``max_stale``). A
        token without ``kid`` gets the JWKS's only usable key, if it has exactly one.
        """
        generation = self._generation
        snapshot = await self._usable_snapshot()
        retry_in: float | None = None
        if kid is not None and not snapshot.has_kid(kid):
            if self._may_refetch():
                # Issuers rotate keys: an unknown kid may be brand new.
                await self._refresh()
                snapshot = self._snapshot or snapshot
            elif self._generation == generation and not isinstance(self._source, dict):
                retry_in = self._refetch_wait()  # not fetched for this call: say when
        try:
            return choose_key(snapshot, kid, alg)
        except KeyNotFound as error:
            error.retry_in = retry_in
            raise

    def key_set_version(self) -> int | None:
        """Changes whenever the key set served changes (a key added, removed or
        replaced, ``invalidate``). None while no copy within its TTL is held: then
        ``get_key`` refreshes, or serves a stale copy, or refuses."""
        snapshot = self._snapshot
        if snapshot is None or self._clock() - snapshot.fetched_at >= self._ttl:
            return None
        return self._version

    def staleness(self) -> Staleness | None:
        """How stale the copy is (None: fresh, or none held)."""
        snapshot = self._snapshot
        if snapshot is None:
            return None
        error = self._last_error
        return staleness(
            source=self.source,
            fetched_at=snapshot.fetched_at,
            ttl=self._ttl,
            failing_since=self._failing_since,
            max_stale=self._max_stale,
            now=self._clock(),
            problem=error.problem if error else "",
        )

    def status(self) -> JwksStatus:
        snapshot = self._snapshot
        return JwksStatus(
            source=self.source,
            key_count=len(snapshot.keys) if snapshot else 0,
            kids=tuple(snapshot.kids) if snapshot else (),
            age_seconds=self._clock() - snapshot.fetched_at if snapshot else None,
            last_error=str(self._last_error) if self._last_error else None,
            ignored=tuple(k.why for k in snapshot.ignored) if snapshot else (),
            stale=self.staleness(),
        )

    def invalidate(self) -> None:
        """Forget the cached copy: the next ``get_key`` fetches again."""
        self._snapshot = None
        self._last_attempt = None
        self._failing_since = None
        self._version += 1

    async def aclose(self) -> None:
        """Stop a fetch in flight and close the HTTP clients this cache made."""
        self.closed = True
        fetching, self._fetching = self._fetching, None
        if fetching is not None and not fetching.done():
            fetching.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await fetching
        await self._fetcher.aclose()

    async def __aenter__(self) -> JwksCache:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --------------------------------------------------------------- caching

    async def _usable_snapshot(self) -> JwksSnapshot:
        snapshot = self._snapshot
        if snapshot is None or (
            self._clock() - snapshot.fetched_at >= self._ttl and self._may_refetch()
        ):
            await self._refresh()  # a failure keeps the last good copy (for a while)
        snapshot = self._snapshot
        error = self._last_error
        if snapshot is None:
            assert error is not None  # a failed first fetch always records one
            raise error.restated()
        stale = self.staleness()
        if stale is None:
            return snapshot
        if stale.served:
            self._report("stale", "jwks_stale", stale.note())
            return snapshot
        self._report("expired", "jwks_unavailable", f"{stale.note()}: tokens get 503")
        assert error is not None  # stale means a fetch failed
        raise error.restated(
            f"{error.problem}; the last good key set, stale for "
            f"{humanize_delta(stale.stale_for)}, is no longer served "
            f"(jwks_max_stale_seconds = {stale.max_stale:g})",
            f"tokens verify again once the JWKS answers ({self._retry_note()}); raise "
            "jwks_max_stale_seconds to ride out longer outages, or pass --jwks FILE with a "
            "saved copy",
        )

    def _retry_note(self) -> str:
        interval = self._refetch_interval
        if interval <= 0:
            return "each request tries it again"
        return f"it is tried again at most every {interval:g}s"

    def _may_refetch(self) -> bool:
        last = self._last_attempt
        return last is None or self._clock() - last >= self._refetch_interval

    def _refetch_wait(self) -> float:
        """Seconds until ``_may_refetch`` allows the next fetch."""
        last = self._last_attempt
        if last is None:
            return 0.0
        return max(0.0, last + self._refetch_interval - self._clock())

    async def _refresh(self) -> None:
        """Fetch once, or join the fetch in flight. One shared task (not a lock): when
        it ends, every waiter resumes in the same loop turn."""
        fetching = self._fetching
        if fetching is None:
            fetching = asyncio.get_running_loop().create_task(self._attempt())
            self._fetching = fetching
        # shield: a caller that goes away must not cancel the fetch others wait on.
        await asyncio.shield(fetching)

    async def _attempt(self) -> None:
        try:
            document = await self._fetcher.fetch()
            self._store(*read_keys(document))
        except JwksUnavailable as error:
            self._failed(error)
        except Exception as error:  # never let a surprise become a 500
            self._failed(JwksUnavailable(self.source, f"unexpected {type(error).__name__}"))
        finally:
            self._fetching = None
            self._generation += 1
            self._last_attempt = self._clock()

    def _store(self, keys: tuple[dict[str, Any], ...], ignored: tuple[IgnoredKey, ...]) -> None:
        old = self._snapshot
        if old is not None and old.keys == keys:
            # The same keys: their parsed forms, and tokens verified with them, stay good.
            self._snapshot = JwksSnapshot(keys, self._clock(), old.parsed, ignored=ignored)
        else:
            self._version += 1
            self._snapshot = JwksSnapshot(keys, self._clock(), ignored=ignored)
            if old is not None:
                self._emit("jwks_changed", _change_note(self.source, old, self._snapshot))
        outage = self._failing_since
        self._last_error = None
        self._failing_since = None
        if self._reported is not None and outage is not None:
            failed = humanize_delta(self._clock() - outage)
            self._emit("jwks_recovered", f"{self.source}: fetched again after failing for {failed}")
        self._reported = None
        self._report_ignored(ignored)

    def _report_ignored(self, ignored: tuple[IgnoredKey, ...]) -> None:
        """One event per ignored key and reason, the first time this cache sees it."""
        for key in ignored:
            if key.why not in self._ignored_reported:
                self._ignored_reported.add(key.why)
                self._emit(
                    "jwks_key_ignored",
                    f"{self.source}: {key.why}; tokens signed with it get 401 key_unusable",
                )

    def _failed(self, error: JwksUnavailable) -> None:
        self._last_error = error
        if self._failing_since is None:
            self._failing_since = self._clock()

    def _report(self, level: str, kind: str, message: str) -> None:
        """Report an outage state once per outage (stale, then no longer served)."""
        order = (None, "stale", "expired")
        if order.index(level) > order.index(self._reported):
            self._reported = level
            self._emit(kind, message)

    def _emit(self, kind: str, message: str) -> None:
        if self._on_event is not None:
            with contextlib.suppress(Exception):
                self._on_event(kind, message)


class _Fetcher:
    """Reads one JWKS source (URL, file, or inline dict) into a checked document, or
    raises ``JwksUnavailable``. HTTP goes through ``client``, else ``clients``, else
    clients made on first use (and closed by ``aclose``)."""

    def __init__(
        self,
        source: str | dict[str, Any] | DiscoverySource,
        label: str,
        client: httpx.AsyncClient | None,
        clients: JwksClients | None,
        timeout: float,
        discovery: DiscoveryCache | None = None,
    ) -> None:
        self.source = source
        self.label = label
        self.client = client
        self.clients = clients
        self.owned: JwksClients | None = None
        self.timeout = timeout
        self.discovery = discovery

    async def fetch(self) -> dict[str, Any]:
        source = self.source
        if isinstance(source, dict):
            return check_document(source, self.label)
        if self.discovery is not None:
            url = await self.discovery.jwks_uri(self._http_client)
            return check_document(await self._fetch_http(url), url)
        assert isinstance(source, str)
        if source.startswith(("http://", "https://")):
            return check_document(await self._fetch_http(source), source)
        return check_document(await self._fetch_file(source), source)

    async def aclose(self) -> None:
        owned, self.owned = self.owned, None
        if owned is not None:
            await owned.aclose()

    async def _fetch_http(self, url: str) -> Any:
        import httpx

        client = await self._http_client(url)
        try:
            async with client.stream(
                "GET", url, timeout=self.timeout, headers={"Accept": "application/json"}
            ) as response:
                _check_status(response, url)
                body = await _read_capped(response, url)
                content_type = response.headers.get("content-type", "")
        except httpx.TimeoutException:
            raise JwksUnavailable(url, f"no answer within {self.timeout:g}s") from None
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

    async def _http_client(self, url: str) -> httpx.AsyncClient:
        if self.client is not None:
            return self.client
        clients = self.clients or self.owned
        if clients is None:
            clients = self.owned = JwksClients()
        return await clients.client_for(url)


# ------------------------------------------------------------------ helpers


def _change_note(source: str, old: JwksSnapshot, new: JwksSnapshot) -> str:
    """'removed k1, added k2' (or 'keys replaced' when the kids stayed the same)."""
    before, after = set(old.kids), set(new.kids)
    parts = []
    if before - after:
        parts.append("removed " + ", ".join(sorted(before - after)))
    if after - before:
        parts.append("added " + ", ".join(sorted(after - before)))
    change = "; ".join(parts) or "keys replaced"
    return (
        f"{source}: key set changed ({change}): tokens verified with a key that is gone "
        "are refused from now on"
    )


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
