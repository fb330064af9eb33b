"""What the TUI runs: a profile's proxy, or the whole offline demo.

No Textual here: a runtime starts the engine on a ``ProxyThread`` (its own thread and
event loop, never the app's), hands records to a sink and notices to ``on_event``,
and stops it again. Both callbacks are called on that thread: the app's must only
hand the value over (``rrdev.tui.store.Inbox``). The app only talks to this small
surface, so tests and the screenshot script can give it either kind.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from rrdev.tui.proxy_thread import InlineLoop, ProxyThread

if TYPE_CHECKING:
    import httpx

    from rrdev.core.explain import IncomingRequest
    from rrdev.core.jwk import JwksStatus
    from rrdev.core.keyset import Keyset
    from rrdev.core.model import Profile
    from rrdev.core.records import Explanation
    from rrdev.servers.demo import DemoHandle, DemoRequest
    from rrdev.servers.proxy import (
        AliasDispatcher,
        EventCallback,
        Overrides,
        ProxyApp,
        ProxyInfo,
        RecordSink,
    )
    from rrdev.servers.runner import ProxyServer
    from rrdev.tui.workbench.requests import WorkbenchRequest

__all__ = [
    "AliasRuntime",
    "DemoRuntime",
    "DemoSent",
    "ProfileRuntime",
    "Runtime",
    "RuntimeInfo",
    "Sent",
    "with_alias_host",
]


@dataclass(frozen=True)
class RuntimeInfo:
    """What the header shows once the proxy listens."""

    profile_name: str
    profile_path: str
    proxy_url: str
    target: str
    jwks: str | None
    credential: str
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True)
class DemoSent:
    """What ``send_demo_requests`` did: how many went out, which got no answer."""

    count: int
    failures: tuple[str, ...] = ()


@dataclass(frozen=True)
class Sent:
    """What ``Runtime.send`` got back: the status, or ``error`` when no answer came."""

    status: int | None
    error: str = ""


class Runtime(Protocol):
    """The engine as the TUI sees it."""

    #: Whether ``demo_requests`` has requests to send (the ``g`` key).
    demo: bool
    #: The aliases served when there are several profiles (the table's alias column).
    aliases: tuple[str, ...]
    #: Whether nothing can be sent (a log file opened with ``rrdev tui --open``).
    read_only: bool

    async def start(self, sink: RecordSink, on_event: EventCallback) -> RuntimeInfo:
        """Start listening; raises ``RrdevError`` (a port in use: ``PortInUse``).
        ``sink`` and ``on_event`` are called on the proxy's thread, not the caller's."""
        ...

    async def stop(self) -> None:
        """Stop (in-flight requests finish); safe to call twice or before start."""
        ...

    def info(self) -> RuntimeInfo | None:
        """The current picture (a reload may rename the profile or move the target)."""
        ...

    def jwks_status(self) -> JwksStatus | None: ...

    def demo_requests(self) -> list[DemoRequest]: ...

    async def send_demo_requests(self) -> DemoSent:
        """Send ``demo_requests`` through the proxy (on its thread, one shared client)."""
        ...

    def profile(self) -> Profile | None:
        """The profile in force (the rules view lists its rules); None when unknown."""
        ...

    async def dry_run(self, request: IncomingRequest) -> Explanation | None:
        """What the proxy would answer ``request``, decided on its thread with its key
        cache, sent nowhere; None when no proxy runs (a log file opened read-only)."""
        ...

    async def send(self, request: WorkbenchRequest) -> Sent:
        """Send one workbench request through the proxy (on its thread, the same
        shared client as ``send_demo_requests``); its record arrives like any other."""
        ...

    async def explain(self, request: WorkbenchRequest) -> Explanation:
        """What the proxy would answer ``request`` (its keys, its rules), sending nothing."""
        ...

    def signing_keyset(self) -> Keyset | None:
        """The keyset the proxy's issuer signs with, when that issuer is the local one
        (the demo, or a profile whose JWKS is on loopback); None otherwise."""
        ...


def _info(app: ProxyApp, url: str) -> RuntimeInfo:
    info = app.info()
    return RuntimeInfo(
        profile_name=info.profile_name,
        profile_path=info.profile_path,
        proxy_url=url,
        target=info.target,
        jwks=info.jwks,
        credential=info.credential,
        warnings=info.warnings,
    )


class _Threaded:
    """Owns the ``ProxyThread`` that a runtime's servers run on."""

    #: Whether nothing can be sent (``rrdev tui --open``: a log file, no proxy).
    read_only = False
    #: What the servers run on: their own thread (in the UI's process), or the
    #: caller's loop (``InlineLoop``, in the proxy process of ``rrdev.tui.proxy_process``).
    thread_factory: Callable[[], ProxyThread | InlineLoop] = ProxyThread

    def __init__(self) -> None:
        self.thread: ProxyThread | InlineLoop | None = None
        self.client: httpx.AsyncClient | None = None
        self.clients_made = 0

    def _proxy(self) -> tuple[ProxyApp, str] | None:
        """The running proxy app and its URL (None when not running)."""
        raise NotImplementedError

    def _client(self) -> httpx.AsyncClient:
        """The shared client (on the proxy's thread: only that loop uses it)."""
        if self.client is None:
            import httpx

            # trust_env=False: loopback traffic must never go through an HTTP(S)_PROXY.
            self.client = httpx.AsyncClient(trust_env=False, timeout=10)
            self.clients_made += 1
        return self.client

    async def _close_client(self) -> None:
        client, self.client = self.client, None
        if client is not None:
            await client.aclose()

    async def send(self, request: WorkbenchRequest) -> Sent:
        proxy, thread = self._proxy(), self.thread
        if proxy is None or thread is None:
            return Sent(None, "the proxy is not running")
        return await thread.run(self._send_one(proxy[1], request))

    async def _send_one(self, url: str, request: WorkbenchRequest) -> Sent:
        import httpx

        try:
            response = await self._client().request(
                request.method,
                url + request.target,
                headers=list(request.headers),
                content=request.body.encode() if request.body else None,
            )
        except (httpx.HTTPError, ValueError) as exc:
            return Sent(None, f"{type(exc).__name__}: {exc}"[:200])
        return Sent(response.status_code)

    async def explain(self, request: WorkbenchRequest) -> Explanation:
        proxy, thread = self._proxy(), self.thread
        if proxy is None or thread is None:
            raise RuntimeError("the proxy is not running")
        return await thread.run(
            proxy[0].explain(request.method, request.path, request.query, request.headers)
        )

    def _proxy_app(self) -> ProxyApp | None:
        proxy = self._proxy()
        return proxy[0] if proxy is not None else None

    def profile(self) -> Profile | None:
        app = self._proxy_app()
        return app.profile if app is not None else None

    async def dry_run(self, request: IncomingRequest) -> Explanation | None:
        import time

        app, thread = self._proxy_app(), self.thread
        if app is None or thread is None:
            return None
        return await thread.run(app.dry_run(request, now=time.time()))

    async def _start_thread(self) -> ProxyThread | InlineLoop:
        thread = self.thread_factory()
        await thread.start()
        self.thread = thread
        return thread

    async def _end_thread(self, last: Any = None) -> None:
        """Run the coroutine ``last`` on the thread (its clean-up), then end the thread."""
        thread, self.thread = self.thread, None
        if thread is None:
            if last is not None:
                last.close()
            return
        try:
            if last is not None:
                await thread.run(last)
        finally:
            await thread.stop()


class _Served(_Threaded):
    """A runtime that serves one ASGI app (a profile's ``ProxyApp``, or the alias
    dispatcher in front of several) on ``host:port`` from its proxy thread."""

    app: Any
    host: str
    port: int
    server: ProxyServer | None

    async def _launch(self, sink: RecordSink, on_event: EventCallback) -> ProxyServer:
        self.app.sink = sink
        self.app.on_event = on_event
        thread = await self._start_thread()
        try:
            self.server = await thread.run(self._serve())
        except BaseException:
            await self._end_thread(self._close_app())
            raise
        return self.server

    async def _serve(self) -> ProxyServer:
        from rrdev.servers.runner import ProxyServer

        server = ProxyServer(self.app, self.host, self.port, graceful_timeout=2)
        await server.start()
        return server

    async def _close_app(self) -> None:
        with contextlib.suppress(Exception):  # the start's own error is the one to report
            await self.app.aclose()

    async def stop(self) -> None:
        server, self.server = self.server, None
        if self.thread is None:
            await self.app.aclose()  # never started: nothing runs on a thread
            return
        await self._end_thread(self._stop_server(server))

    async def _stop_server(self, server: ProxyServer | None) -> None:
        await self._close_client()
        await (server.stop() if server is not None else self.app.aclose())


class ProfileRuntime(_Served):
    """``rrdev tui PROFILE``: one profile's proxy on ``host:port``.

    The ``ProxyApp`` is built here, so a profile or override error surfaces before
    the TUI takes the terminal.
    """

    demo = False
    aliases: tuple[str, ...] = ()

    def __init__(
        self,
        profile: Profile,
        *,
        overrides: Overrides | None = None,
        host: str | None = None,
        port: int | None = None,
        reload_interval: float = 0.5,
    ) -> None:
        from rrdev.servers.proxy import ProxyApp

        super().__init__()
        self.app = ProxyApp(
            profile, overrides=overrides, reload_interval=reload_interval, record_exchange=True
        )
        self.host = host or profile.proxy.listen_host
        self.port = profile.proxy.listen_port if port is None else port
        self.server: ProxyServer | None = None

    @classmethod
    def from_path(
        cls,
        path: str | Path | None,
        *,
        overrides: Overrides | None = None,
        host: str | None = None,
        port: int | None = None,
        reload_interval: float = 0.5,
    ) -> ProfileRuntime:
        """Discover and load the profile (``None``: ``$RRDEV_PROFILE``, ./rrdev.toml)."""
        from rrdev.core.profile import discover_profile, load_profile

        profile = load_profile(discover_profile(str(path) if path is not None else None))
        return cls(
            profile, overrides=overrides, host=host, port=port, reload_interval=reload_interval
        )

    async def start(self, sink: RecordSink, on_event: EventCallback) -> RuntimeInfo:
        server = await self._launch(sink, on_event)
        return _info(self.app, server.url)

    def _proxy(self) -> tuple[ProxyApp, str] | None:
        server = self.server
        return (self.app, server.url) if server is not None else None

    def signing_keyset(self) -> Keyset | None:
        return local_signing_keyset(self.app.profile, offline=self.app.overrides.offline)

    def info(self) -> RuntimeInfo | None:
        server = self.server
        return _info(self.app, server.url) if server is not None else None

    def jwks_status(self) -> JwksStatus | None:
        return self.app.jwks_status()

    def _proxy_app(self) -> ProxyApp | None:
        return self.app

    def demo_requests(self) -> list[DemoRequest]:
        return []

    async def send_demo_requests(self) -> DemoSent:
        return DemoSent(0)


class DemoRuntime(_Threaded):
    """``rrdev tui --demo``: the local issuer, the echo backend and the proxy.

    Ports 0 pick free ones; ``home`` is the keyset directory (default ``$RRDEV_HOME``).
    The ``g`` key's requests share one HTTP client (``client``, created once on the
    proxy's thread: building one loads the CA bundle, tens of milliseconds) and it is
    closed on ``stop``; ``clients_made`` counts them.
    """

    demo = True
    aliases: tuple[str, ...] = ()

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        proxy_port: int = 8787,
        issuer_port: int = 0,
        backend_port: int = 0,
        home: Path | None = None,
    ) -> None:
        super().__init__()
        self.host = host
        self.proxy_port = proxy_port
        self.issuer_port = issuer_port
        self.backend_port = backend_port
        self.home = home
        self.handle: DemoHandle | None = None

    async def start(self, sink: RecordSink, on_event: EventCallback) -> RuntimeInfo:
        thread = await self._start_thread()
        try:
            handle = await thread.run(self._start_demo(sink, on_event))
        except BaseException:
            await self._end_thread()  # start_demo stopped whatever it had started
            raise
        self.handle = handle
        return _info(handle.proxy_app, handle.proxy_url)

    async def _start_demo(self, sink: RecordSink, on_event: EventCallback) -> DemoHandle:
        from rrdev.servers.demo import start_demo

        handle = await start_demo(
            host=self.host,
            proxy_port=self.proxy_port,
            issuer_port=self.issuer_port,
            backend_port=self.backend_port,
            home=self.home,
            sink=sink,
            on_event=on_event,
            graceful_timeout=2,
        )
        handle.proxy_app.record_exchange = True
        return handle

    async def stop(self) -> None:
        handle, self.handle = self.handle, None
        await self._end_thread(self._stop_demo(handle))

    async def _stop_demo(self, handle: DemoHandle | None) -> None:
        await self._close_client()
        if handle is not None:
            await handle.stop()

    def info(self) -> RuntimeInfo | None:
        handle = self.handle
        return _info(handle.proxy_app, handle.proxy_url) if handle is not None else None

    def jwks_status(self) -> JwksStatus | None:
        return self.handle.proxy_app.jwks_status() if self.handle else None

    def _proxy_app(self) -> ProxyApp | None:
        return self.handle.proxy_app if self.handle else None

    def demo_requests(self) -> list[DemoRequest]:
        from rrdev.servers.demo import demo_requests

        return demo_requests(self.handle) if self.handle else []

    async def send_demo_requests(self) -> DemoSent:
        requests = self.demo_requests()
        thread = self.thread
        if not requests or thread is None:
            return DemoSent(0)
        return await thread.run(self._send(requests))

    async def _send(self, requests: list[DemoRequest]) -> DemoSent:
        import httpx

        http = self._client()
        failures: list[str] = []
        for request in requests:
            try:
                await http.request(request.method, request.url, headers=list(request.headers))
            except httpx.HTTPError as exc:
                failures.append(f"{request.title}: {type(exc).__name__}")
        return DemoSent(len(requests), tuple(failures))

    def _proxy(self) -> tuple[ProxyApp, str] | None:
        handle = self.handle
        return (handle.proxy_app, handle.proxy_url) if handle is not None else None

    def signing_keyset(self) -> Keyset | None:
        return self.handle.issuer_app.keyset() if self.handle is not None else None


class AliasRuntime(_Served):
    """``rrdev tui a.toml b.toml``: several profiles on one port, each at
    ``{alias}.localhost`` (``rrdev.servers.proxy.AliasDispatcher``), listening where the
    first profile's ``proxy.listen`` says unless ``host``/``port`` are given."""

    demo = False

    def __init__(
        self,
        paths: list[str],
        *,
        overrides: Overrides | None = None,
        host: str | None = None,
        port: int | None = None,
        reload_interval: float = 0.5,
    ) -> None:
        from rrdev.core.aliases import served_aliases
        from rrdev.core.profile import load_profile
        from rrdev.servers.proxy import AliasDispatcher

        super().__init__()
        served = served_aliases([load_profile(Path(p)) for p in paths])
        self.app: AliasDispatcher = AliasDispatcher(
            served, overrides=overrides, reload_interval=reload_interval, record_exchange=True
        )
        self.aliases = self.app.aliases
        first = served[0].profile.proxy
        self.host = host or first.listen_host
        self.port = first.listen_port if port is None else port
        self.server: ProxyServer | None = None

    async def start(self, sink: RecordSink, on_event: EventCallback) -> RuntimeInfo:
        server = await self._launch(sink, on_event)
        return _alias_info(self.app, server.url, server.port)

    def info(self) -> RuntimeInfo | None:
        server = self.server
        return _alias_info(self.app, server.url, server.port) if server is not None else None

    def _proxy(self) -> tuple[ProxyApp, str] | None:
        """The first profile's proxy: the rules view and the dry-run use it."""
        server, app = self.server, next(iter(self.app.apps.values()), None)
        return (app, server.url) if server is not None and app is not None else None

    async def send(self, request: WorkbenchRequest) -> Sent:
        """Send to the profile the request names (``request.alias``; none: the first),
        with the Host that picks it: the bare host would answer 421 ``alias_unknown``."""
        server = self.server
        if server is None:
            return Sent(None, "the proxy is not running")
        alias = request.alias or self.aliases[0]
        return await super().send(with_alias_host(request, alias, server.port))

    def signing_keyset(self) -> Keyset | None:
        return None

    def jwks_status(self) -> JwksStatus | None:
        """The key cache that most needs attention: one with an error, else the first."""
        found = [s for s in (a.jwks_status() for a in self.app.apps.values()) if s is not None]
        troubled = [s for s in found if s.last_error or s.stale]
        return (troubled or found or [None])[0]

    def demo_requests(self) -> list[DemoRequest]:
        return []

    async def send_demo_requests(self) -> DemoSent:
        return DemoSent(0)


def with_alias_host(request: WorkbenchRequest, alias: str, port: int) -> WorkbenchRequest:
    """``request`` with ``Host: {alias}.localhost:PORT``, which the alias dispatcher reads
    to pick the profile (the connection still goes to the listener's own address); a
    Host typed in the compose form is kept."""
    from rrdev.core.aliases import LOCAL_SUFFIX

    if any(name.lower() == "host" for name, _ in request.headers):
        return request
    host = ("Host", f"{alias}{LOCAL_SUFFIX}:{port}")
    return replace(request, headers=(*request.headers, host))


def local_signing_keyset(profile: Profile, *, offline: bool) -> Keyset | None:
    """The local keyset when ``profile``'s issuer is rrdev's own (``--offline``, or a
    JWKS on loopback); None for a remote issuer: rrdev cannot sign what it trusts."""
    from rrdev.core.keyset import Keyset
    from rrdev.core.netaddr import is_loopback_url

    cred = profile.proxy_credential
    if not (offline or (cred.jwks_uri is not None and is_loopback_url(cred.jwks_uri))):
        return None
    return Keyset.load_or_create()


def _alias_info(app: AliasDispatcher, url: str, port: int) -> RuntimeInfo:
    """The header of several profiles: where each answers; warnings name the alias."""
    infos = {alias: proxy.info() for alias, proxy in app.apps.items()}

    def each(value: Callable[[ProxyInfo], str | None]) -> str:
        return "; ".join(f"{alias}: {value(info) or 'none'}" for alias, info in infos.items())

    return RuntimeInfo(
        profile_name=f"{len(infos)} proxies ({', '.join(infos)})",
        profile_path=", ".join(info.profile_path for info in infos.values()),
        proxy_url=url,
        target=", ".join(f"{a}.localhost:{port} → {i.target}" for a, i in infos.items()),
        jwks=each(lambda info: info.jwks),
        credential=each(lambda info: info.credential),
        warnings=tuple(f"{a}: {w}" for a, info in infos.items() for w in info.warnings),
    )
