"""The backend's own client-credentials token, for the ``oauth2`` target credential.

The proxy asks ``BackendTokenSource.token()`` on every forwarded request. The token is
kept in memory (one source per loaded profile: a hot reload starts a new one) and
fetched with the same code as ``rrdev token fetch``
(``rrdev.clients.token_fetch.request_token``):

* no token yet, or the token has expired: the request waits for a fetch. Concurrent
  requests share that one fetch.
* within the refresh margin before expiry (``oauth2.refresh_margin``: 60 s, or a
  tenth of the lifetime): one fetch starts in the background and requests keep using
  the current, still valid token. Nobody waits.
* a failed fetch is remembered for ``retry_after`` seconds, so a token endpoint
  that is down is not asked again by every request; requests that need a token in
  that time get the same ``TokenFetchError`` (the proxy answers 502
  ``upstream_token_unavailable``).

Only one fetch is ever in flight. A request that goes away while waiting does not
cancel the fetch the others are waiting for.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from rrdev.clients.oauth2 import (
    DEFAULT_TIMEOUT_SECONDS,
    FetchedToken,
    TokenFetchError,
    refresh_margin,
    token_request,
)
from rrdev.clients.token_fetch import request_token
from rrdev.core.model import OAuth2Client

if TYPE_CHECKING:
    import httpx

__all__ = ["BackendTokenSource"]


class BackendTokenSource:
    """Fetches, keeps and refreshes one client-credentials token.

    ``client`` is resolved now: an unset ``${VAR}`` raises ``EnvVarError`` here, when
    the profile loads, not on the first request. ``http`` (an ``httpx.AsyncClient``)
    is used when given, else a short-lived client per fetch. ``clock`` gives epoch
    seconds. ``timeout`` bounds each fetch; ``retry_after`` is how long a failure is
    remembered.
    """

    def __init__(
        self,
        client: OAuth2Client,
        *,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.time,
        timeout: float = DEFAULT_TIMEOUT_SECONDS,
        retry_after: float = 1.0,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.request = token_request(client, env)
        self.http = http
        self.clock = clock
        self.timeout = timeout
        self.retry_after = retry_after
        #: completed fetches (successful ones), for banners and tests
        self.fetches = 0
        self._token: FetchedToken | None = None
        self._refresh_at = 0.0
        self._task: asyncio.Task[FetchedToken] | None = None
        self._failure: tuple[float, TokenFetchError] | None = None

    def __repr__(self) -> str:
        return f"BackendTokenSource({self.request.url!r}, fetches={self.fetches})"

    @property
    def token_url(self) -> str:
        return self.request.url

    @property
    def secrets(self) -> tuple[str, ...]:
        """The resolved client secret (and its encodings), for the redaction list."""
        return self.request.secrets

    async def token(self) -> FetchedToken:
        """The current token, fetching or refreshing it as described above.

        Raises ``TokenFetchError`` when no valid token can be had.
        """
        now = self.clock()
        current = self._token
        if current is not None and current.expires_at is not None and now < current.expires_at:
            if now >= self._refresh_at and self._task is None and not self._backing_off(now):
                self._start()
            return current
        task = self._task
        if task is None:
            failure = self._failure
            if failure is not None and now < failure[0]:
                raise failure[1]
            task = self._start()
        # shield: a caller that goes away must not cancel the fetch others wait on.
        return await asyncio.shield(task)

    async def aclose(self) -> None:
        """Cancel a fetch in flight (the proxy is shutting down)."""
        task, self._task = self._task, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    def _backing_off(self, now: float) -> bool:
        return self._failure is not None and now < self._failure[0]

    def _start(self) -> asyncio.Task[FetchedToken]:
        task = asyncio.get_running_loop().create_task(self._fetch())
        # A background refresh nobody awaits must not log "exception never retrieved".
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        self._task = task
        return task

    async def _fetch(self) -> FetchedToken:
        try:
            token = await request_token(
                self.request, http=self.http, now=self.clock(), timeout=self.timeout
            )
        except TokenFetchError as exc:
            self._failure = (self.clock() + self.retry_after, exc)
            raise
        except Exception as exc:  # never let an unexpected error escape as a 500
            error = TokenFetchError(
                self.request.scrub(
                    f"fetching a token from {self.request.url} failed: {type(exc).__name__}"
                ),
                token_url=self.request.url,
            )
            self._failure = (self.clock() + self.retry_after, error)
            raise error from None
        finally:
            self._task = None
        lifetime = token.lifetime or 0.0
        assert token.expires_at is not None
        self._token = token
        self._refresh_at = token.expires_at - refresh_margin(lifetime)
        self._failure = None
        self.fetches += 1
        return token
