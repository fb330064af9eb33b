"""uvicorn held in code: start and stop the proxy on the caller's event loop.

``ProxyServer`` binds the listening socket itself (so a port in use is a clean
``PortInUse`` error, exit code 3, and ``port=0`` reports the port it got), hands it to
uvicorn, and returns from ``start()`` once uvicorn is serving. ``stop()`` is uvicorn's
graceful shutdown: stop accepting, let in-flight requests finish, run the app's
lifespan shutdown. It installs no signal handlers: the front end decides what Ctrl+C
means (``rrdev.up`` maps it to ``request_stop``), and the TUI and tests run it on their
own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
from collections.abc import Generator
from typing import Any

import uvicorn

from rrdev.errors import RrdevError
from rrdev.netaddr import is_loopback
from rrdev.proxy import REQUEST_TARGET

__all__ = ["PortInUse", "ProxyServer", "is_loopback"]


class PortInUse(RrdevError):
    """The listen address is taken (another ``rrdev up``, or any other server)."""

    exit_code = 3


class _Server(uvicorn.Server):
    """uvicorn.Server without its signal capture (it would re-raise SIGINT after
    shutting down, and only works on the main thread)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _http_protocol() -> Any:
    """uvicorn's httptools protocol, keeping the request target as sent in the scope:
    httptools reduces an absolute-form target to its path, and the proxy must refuse
    it instead (DESIGN.md §2.1)."""
    try:
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - uvicorn[standard] ships httptools
        return "h11"  # h11 puts the whole target in raw_path already

    class TargetKeepingProtocol(HttpToolsProtocol):
        def on_url(self, url: bytes) -> None:
            super().on_url(url)
            self.scope.setdefault("extensions", {})[REQUEST_TARGET] = self.url

    return TargetKeepingProtocol


class ProxyServer:
    """Serve an ASGI app (normally ``rrdev.proxy.ProxyApp``) on ``host:port``.

    ``graceful_timeout`` (seconds, None: wait as long as it takes) bounds how long
    ``stop()`` waits for in-flight requests before cancelling them.
    """

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 8787,
        *,
        graceful_timeout: float | None = None,
        log_level: str = "warning",
    ) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self.graceful_timeout = graceful_timeout
        self.log_level = log_level
        self._port: int | None = None
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def port(self) -> int:
        """The bound port (the real one when started with ``port=0``)."""
        if self._port is None:
            raise RuntimeError("the server has not started")
        return self._port

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def stopping(self) -> bool:
        return self._server is not None and self._server.should_exit

    async def start(self) -> None:
        """Bind, start uvicorn, and return once it accepts connections.

        Raises ``PortInUse`` (exit 3) when the address is taken, ``RrdevError`` when
        it cannot listen there at all.
        """
        if self._task is not None:
            raise RuntimeError("the server is already running")
        sock = bind_socket(self.host, self.requested_port)
        self._port = sock.getsockname()[1]
        startup = getattr(self.app, "startup", None)
        if startup is not None:
            await startup()
        config = uvicorn.Config(
            self.app,
            # The app's startup/aclose are called here, not through uvicorn's lifespan
            # task: a forced exit (Ctrl+C twice) cancels that task, and uvicorn logs
            # the cancellation as a traceback.
            lifespan="off",
            http=_http_protocol(),
            log_config=None,
            log_level=self.log_level,
            access_log=False,
            # rrdev *sets* X-Forwarded-*: it must never take the caller's as its own view
            # of who connected (uvicorn trusts them from loopback by default).
            proxy_headers=False,
            server_header=False,  # the backend's Server/Date headers pass through
            date_header=False,
            timeout_graceful_shutdown=self.graceful_timeout,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._serve(self._server, sock))
        while not self._server.started:
            if self._task.done():
                sock.close()
                await self._task  # raises what went wrong
                raise RrdevError(f"the proxy stopped while starting on {self.url}")
            await asyncio.sleep(0.005)

    def request_stop(self, *, force: bool = False) -> None:
        """Ask uvicorn to shut down (gracefully; ``force`` skips waiting for requests)."""
        if self._server is not None:
            self._server.should_exit = True
            if force:
                self._server.force_exit = True

    async def wait(self) -> None:
        """Until the server has shut down."""
        if self._task is not None:
            await asyncio.shield(self._task)

    async def stop(self, *, force: bool = False) -> None:
        """Graceful shutdown: in-flight requests finish, then the app's ``aclose()``
        runs (closing the client session)."""
        self.request_stop(force=force)
        if self._task is not None:
            await self._task
        close = getattr(self.app, "aclose", None)
        if close is not None:
            await close()

    async def __aenter__(self) -> ProxyServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @staticmethod
    async def _serve(server: _Server, sock: socket.socket) -> None:
        try:
            await server.serve(sockets=[sock])
        except SystemExit:  # uvicorn exits the process when lifespan startup fails
            raise RrdevError("the proxy application failed to start") from None
        finally:
            sock.close()


def bind_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket for ``host:port`` (``listen`` is left to the server)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise RrdevError(
            f"cannot listen on {host}:{port}: {exc.strerror}", "check --host / proxy.listen"
        ) from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise PortInUse(
                f"{host}:{port} is already in use (another `rrdev up`?)",
                "stop it, or pick a free port with --port",
            ) from None
        raise RrdevError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.setblocking(False)
    return sock
