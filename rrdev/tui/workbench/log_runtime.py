"""``rrdev tui --open FILE``: a ``rrdev up --log-file`` in the inspector, read-only.

No proxy starts: ``start`` hands the file's records to the app's sink as if they had
just been served, and everything that would send a request is off (``read_only``).
A profile, when given, names the rules in the rules view and lets the dry-run judge
offline against the local keyset.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from rrdev.tui.runtime import DemoSent, RuntimeInfo, Sent
from rrdev.tui.workbench.logfile import LogContents, read_log

if TYPE_CHECKING:
    from rrdev.core.explain import IncomingRequest
    from rrdev.core.jwk import JwksStatus
    from rrdev.core.keyset import Keyset
    from rrdev.core.model import Profile
    from rrdev.core.records import Explanation
    from rrdev.servers.demo import DemoRequest
    from rrdev.servers.proxy import EventCallback, RecordSink
    from rrdev.tui.workbench.requests import WorkbenchRequest

__all__ = ["LogRuntime"]

#: The URL copies and exports use for a log's requests: ``rrdev up``'s default listener.
DEFAULT_PROXY_URL = "http://127.0.0.1:8787"


class LogRuntime:
    """The records of one log file, shown as traffic; nothing runs, nothing is sent."""

    demo = False
    read_only = True
    aliases: tuple[str, ...] = ()

    def __init__(
        self, path: str | Path, *, profile: Profile | None = None, proxy_url: str | None = None
    ) -> None:
        self.path = str(path)
        self._profile = profile
        self.proxy_url = proxy_url or _listen_url(profile)
        self.contents: LogContents | None = None

    async def start(self, sink: RecordSink, on_event: EventCallback) -> RuntimeInfo:
        contents = read_log(self.path)  # raises RrdevError before the app takes the screen
        self.contents = contents
        for record in contents.records:
            sink(record)
        return self._info(contents)

    def _info(self, contents: LogContents) -> RuntimeInfo:
        warnings = ()
        if contents.skipped:
            warnings = (
                f"{contents.skipped} line(s) of {self.path} are not request records "
                f"(the first at line {contents.first_bad_line}); they were skipped",
            )
        return RuntimeInfo(
            profile_name=f"log {Path(self.path).name}",
            profile_path=self._profile.path if self._profile is not None else "",
            proxy_url=self.proxy_url,
            target=f"read-only: {len(contents.records)} request(s) from {self.path}",
            jwks=None,
            credential="",
            warnings=warnings,
        )

    async def stop(self) -> None:
        return None

    def info(self) -> RuntimeInfo | None:
        return self._info(self.contents) if self.contents is not None else None

    def jwks_status(self) -> JwksStatus | None:
        return None

    def demo_requests(self) -> list[DemoRequest]:
        return []

    async def send_demo_requests(self) -> DemoSent:
        return DemoSent(0)

    def profile(self) -> Profile | None:
        return self._profile

    async def send(self, request: WorkbenchRequest) -> Sent:
        return Sent(None, "a log file is open read-only: no proxy runs")

    async def explain(self, request: WorkbenchRequest) -> Explanation:
        raise RuntimeError("a log file is open read-only: no proxy runs")

    def signing_keyset(self) -> Keyset | None:
        return None

    async def dry_run(self, request: IncomingRequest) -> Explanation | None:
        """Judged offline against the local keyset, when a profile was given."""
        if self._profile is None:
            return None
        import time

        from rrdev.clients.jwks import JwksCache
        from rrdev.core.explain import JwksVerifier, decide
        from rrdev.core.keyset import local_public_jwks

        profile = self._profile
        cache = JwksCache(local_public_jwks())
        try:
            verifier = JwksVerifier(profile.proxy_credential, cache)
            return await decide(profile, request, verifier, now=time.time())
        finally:
            await cache.aclose()


def _listen_url(profile: Profile | None) -> str:
    if profile is None:
        return DEFAULT_PROXY_URL
    return f"http://{profile.proxy.listen_host}:{profile.proxy.listen_port}"
