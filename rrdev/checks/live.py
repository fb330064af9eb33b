"""Live runs (``--live``): each check through the profile's proxy, running in-process.

The proxy (``ProxyApp`` + ``ProxyServer``) runs on 127.0.0.1, port 0, in front of the
real target (or ``--target``); each check goes through it over loopback with httpx and
gets the backend's real answer. The proxy's ``RequestRecord`` supplies the reason, the
deciding rules and the explanation.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from rrdev.checks.against import AgainstRunner, http_client, outcome_from_response
from rrdev.checks.model import CheckOptions, CheckRequest, Mode, Outcome
from rrdev.core.model import Profile

if TYPE_CHECKING:
    import httpx

    from rrdev.core.records import RequestRecord

__all__ = ["RECORD_TIMEOUT", "LiveRunner", "live_runner"]

#: How long a live check waits for the proxy's record after the response.
RECORD_TIMEOUT = 5.0


class LiveRunner(AgainstRunner):
    """``AgainstRunner`` through rrdev's own proxy, running in-process: the proxy's
    ``RequestRecord`` for each request supplies reason, deciding rules and explanation."""

    mode: Mode = "live"

    def __init__(
        self, base_url: str, client: httpx.AsyncClient, records: Any, target_label: str
    ) -> None:
        super().__init__(base_url, client)
        self.records = records  # asyncio.Queue[RequestRecord]
        self.target_label = target_label

    async def run(self, request: CheckRequest) -> Outcome:
        import asyncio

        while not self.records.empty():  # a record left over from a timed-out check
            self.records.get_nowait()
        response = await self.send(request)
        try:
            record: RequestRecord = await asyncio.wait_for(self.records.get(), RECORD_TIMEOUT)
        except TimeoutError:  # the record is a bonus: the answer itself still counts
            return outcome_from_response(response)
        return Outcome.from_explanation(record.explanation, status=response.status_code)


@contextlib.asynccontextmanager
async def live_runner(profile: Profile, options: CheckOptions) -> AsyncIterator[LiveRunner]:
    import asyncio

    from rrdev.servers.proxy import Overrides, ProxyApp
    from rrdev.servers.runner import ProxyServer

    records: asyncio.Queue[RequestRecord] = asyncio.Queue()
    overrides = Overrides(target=options.target, jwks=options.jwks, offline=options.offline)
    app = ProxyApp(profile, overrides=overrides, sink=records.put_nowait, reload_interval=0)
    server = ProxyServer(app, "127.0.0.1", 0, graceful_timeout=2)
    try:
        await server.start()
    except BaseException:
        await app.aclose()
        raise
    try:
        # Loopback to our own proxy: never through an HTTP(S)_PROXY from the environment.
        async with http_client(options, trust_env=False) as client:
            yield LiveRunner(server.url, client, records, app.info().target)
    finally:
        await server.stop()
