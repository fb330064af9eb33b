"""uvicorn held in code: start and stop the proxy on the caller's event loop.

``ProxyServer`` binds the listening socket itself (so a port in use is a clean
``PortInUse`` error, exit code 3, and ``port=0`` reports the port it got), hands it to
uvicorn, and returns from ``start()`` once uvicorn is serving. uvicorn runs with
rrdev's own httptools protocol (``_http_protocol``): the request target is kept as
sent, a request head larger than ``MAX_HEAD_BYTES`` is cut off with 431, and requests
the parser rejects get the app's answer (``ProxyApp.refuse_unparsed``: JSON body and
gateway headers) instead of uvicorn's bare text/plain 400. ``stop()`` is uvicorn's
graceful shutdown: stop accepting, let in-flight requests finish, run the app's
lifespan shutdown. It installs no signal handlers: the front end decides what Ctrl+C
means (``rrdev.cli.up`` maps it to ``request_stop``), and the TUI and tests run it on their
own loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import http
import socket
import sys
from collections.abc import Callable, Generator
from typing import Any

import uvicorn

from rrdev.core.errors import RrdevError
from rrdev.core.netaddr import is_loopback
from rrdev.servers.proxy import MAX_HEADER_BYTES, REQUEST_TARGET

__all__ = [
    "KEEP_ALIVE_SECONDS",
    "MAX_HEAD_BYTES",
    "PortInUse",
    "ProxyServer",
    "is_loopback",
    "raise_open_files_limit",
]

#: The request line and headers together, as received: past this the connection is
#: answered 431 and closed while the head is still arriving (httptools has no limit of
#: its own and would buffer a header of any size). The app's own, exact limits
#: (``rrdev.servers.proxy.MAX_HEADER_BYTES``/``MAX_HEADER_LINES``) are below this.
MAX_HEAD_BYTES = 2 * MAX_HEADER_BYTES
#: After a refusal the connection stops sending and discards what still arrives for
#: this long before closing: closing with unread input would reset the connection and
#: the caller could lose the answer.
LINGER_SECONDS = 1.0
#: How long a request head (request line and headers) may take to arrive once it began
#: (nginx's ``client_header_timeout``): a caller that stalls mid-head, or trickles it a
#: byte at a time, gets 408 ``request_timeout`` and the connection closes. A new
#: connection that sends nothing in this time is closed without an answer. Checked
#: every quarter of it, so a stalled head is refused within 1.25 times this.
HEAD_SECONDS = 60.0
#: How long an idle keep-alive connection stays open (nginx's default; uvicorn's own is
#: 5 s). A client's pool must drop an idle connection before the server does, or a
#: request sent as the server closes fails with "server disconnected" and no answer:
#: httpx's pool keeps idle connections 5 s, aiohttp's 15 s, requests' indefinitely.
KEEP_ALIVE_SECONDS = 75

#: ``refuse_unparsed(problem, detail, method=, target=, record=)`` of ``ProxyApp``.
Refuse = Callable[..., tuple[int, bytes, list[tuple[bytes, bytes]]]]


#: The open-files limit ``ProxyServer.start`` asks for (macOS refuses more than
#: ``kern.maxfilesperproc``, 10,240 by default: then that).
OPEN_FILES_WANTED = 65536


def raise_open_files_limit(wanted: int = OPEN_FILES_WANTED) -> int:
    """Lift this process's soft limit on open files toward its hard limit; return the
    soft limit in force. Every keep-alive connection holds a file, and the usual soft
    limit (1,024 on Linux, 256 on macOS) is below what a load test opens: past it the
    proxy cannot accept, and new callers are reset until idle connections close."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on Windows
        return -1
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = wanted if hard == resource.RLIM_INFINITY else min(wanted, hard)
    if soft != resource.RLIM_INFINITY and soft < target:
        for candidate in dict.fromkeys((target, min(target, 10240))):
            try:
                resource.setrlimit(resource.RLIMIT_NOFILE, (candidate, hard))
            except (ValueError, OSError):
                continue
            return candidate
    return soft


class PortInUse(RrdevError):
    """The listen address is taken (another ``rrdev up``, or any other server)."""

    exit_code = 3


class _Server(uvicorn.Server):
    """uvicorn.Server without its signal capture (it would re-raise SIGINT after
    shutting down, and only works on the main thread)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def _http_protocol(app: Any = None) -> Any:
    """uvicorn's httptools protocol, with what a gateway twin needs on top:

    * the request target as sent goes into the scope: httptools reduces an
      absolute-form target to its path, and the proxy must refuse it instead
      (DESIGN.md §2.1);
    * a request head (request line and headers) past ``MAX_HEAD_BYTES`` is answered
      431 and the connection closed before more of it is buffered;
    * a request the parser rejects (an authority-form or CONNECT target, raw non-ASCII
      bytes in the target, Content-Length with Transfer-Encoding, two Content-Lengths,
      ``Content-Length: +3``, ...) is answered with ``app.refuse_unparsed`` (JSON body,
      ``requestrocket-proxy-code``) when the app has it, and recorded by it. If the app
      had already started on that request (the error was in its body), the app records
      it; if a response was already under way, the connection is only closed.
    """
    try:
        import httptools
        from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    except ImportError:  # pragma: no cover - uvicorn[standard] ships httptools
        return "h11"  # h11 puts the whole target in raw_path already

    refuse: Refuse | None = getattr(app, "refuse_unparsed", None)

    class RrdevHttpProtocol(HttpToolsProtocol):
        #: between messages or inside a request head (not its body)
        _head_open = True
        #: bytes received since the head began (counted per chunk: approximate)
        _head_seen = 0
        #: refused: what still arrives is discarded until the connection closes
        _draining = False
        #: when (loop time) the head under way began; None between requests
        _head_since: float | None = None
        #: whether this server's head watch runs (one timer for all its connections)
        _watching = False

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            # uvicorn's flow control keeps the real transport; writes go through this.
            self.transport = _CorkedTransport(transport, self.loop)
            self._head_since = self.loop.time()  # a new connection is there to ask
            cls = type(self)
            if not cls._watching:
                cls._watching = True
                self.loop.call_later(HEAD_SECONDS / 4, cls._watch, self.loop, self.connections)

        @classmethod
        def _watch(cls, loop: asyncio.AbstractEventLoop, connections: set[Any]) -> None:
            """Time out stalled heads, every quarter of ``HEAD_SECONDS`` while any
            connection is open: a timestamp per request instead of a timer each."""
            now = loop.time()
            for connection in list(connections):
                since = getattr(connection, "_head_since", None)
                if since is not None and now - since >= HEAD_SECONDS:
                    connection._head_since = None
                    connection._head_timed_out()
            if connections:
                loop.call_later(HEAD_SECONDS / 4, cls._watch, loop, connections)
            else:
                cls._watching = False

        def data_received(self, data: bytes) -> None:
            if self._draining:
                return
            if self._head_open:
                self._head_seen += len(data)
                if self._head_since is None:  # a head begins (after a keep-alive wait)
                    self._head_since = self.loop.time()
            super().data_received(data)
            if (
                self._head_open
                and self._head_seen > MAX_HEAD_BYTES
                and not self.transport.is_closing()
            ):
                self._refuse("headers_too_large", "the request head is too large")

        def on_headers_complete(self) -> None:
            self._head_since = None
            self._head_open = False
            self._head_seen = 0
            # The target is whole by now (httptools may hand it over in pieces).
            self.scope.setdefault("extensions", {})[REQUEST_TARGET] = self.url
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self._head_open = True
            self._head_seen = 0

        def send_400_response(self, msg: str) -> None:
            # Called by uvicorn inside its ``except httptools.HttpParserError``.
            error = sys.exc_info()[1]
            problem, detail = _classify(error, httptools, self._method(error))
            self._refuse(problem, detail, error)

        def _head_timed_out(self) -> None:
            if self._draining or self.transport.is_closing() or not self._head_open:
                return
            idle = self.cycle is None or self.cycle.response_complete
            if self._head_seen == 0 and idle:
                self.transport.close()  # nothing asked: closed like an idle keep-alive
                return
            self._refuse(
                "head_timeout", f"the request head did not arrive within {HEAD_SECONDS:g} s"
            )

        def _method(self, error: BaseException | None) -> str:
            scope = self.scope or {}
            if "method" in scope:
                return str(scope["method"])
            if isinstance(error, httptools.HttpParserInvalidMethodError):
                return "-"
            try:
                return self.parser.get_method().decode("ascii", "replace")
            except Exception:
                return "-"

        def _refuse(self, problem: str, detail: str, error: BaseException | None = None) -> None:
            cycle = self.cycle
            # Did the app start on this very request (the error came in its body)?
            current = cycle is not None and self.scope is not None and cycle.scope is self.scope
            if cycle is not None and (current and cycle.response_started):
                # The caller has (part of) an answer to this request: never add another.
                self._draining = True
                self.transport.close()
                return
            if cycle is not None and not current and not cycle.response_complete:
                # A pipelined request is refused while an earlier answer is still being
                # written: let that finish, then close.
                cycle.keep_alive = False
                self._draining = True
                return
            if cycle is not None and current:
                cycle.disconnected = True  # the app's own answer goes nowhere now
                cycle.message_event.set()
            if refuse is None:
                if problem not in _PLAIN_ANSWERS:
                    super().send_400_response("Invalid HTTP request received.")
                    return
                status, body = _PLAIN_ANSWERS[problem]
                headers = []
            else:
                status, body, headers = refuse(
                    problem,
                    detail,
                    method=self._method(error),
                    target=bytes(getattr(self, "url", b"") or b""),
                    record=not current,
                )
            _write(self, status, body, headers)
            self._linger()

        def _linger(self) -> None:
            """Half-close after an answer, discard further input, close soon."""
            self._draining = True
            transport = self.transport
            try:
                if not transport.can_write_eof():
                    transport.close()
                    return
                transport.write_eof()
                transport.resume_reading()
            except (OSError, RuntimeError, NotImplementedError):
                transport.close()
                return
            self.loop.call_later(LINGER_SECONDS, transport.close)

    return RrdevHttpProtocol


#: Refusals other than 400, for an app without ``refuse_unparsed``.
_PLAIN_ANSWERS = {
    "headers_too_large": (431, b"Request Header Fields Too Large"),
    "head_timeout": (408, b"Request Timeout"),
}

#: A write up to this size may be held back for the next one; a held write is joined
#: with a next one up to ``_JOIN_BYTES`` (larger ones follow it unjoined).
_HOLD_BYTES = 8 * 1024
_JOIN_BYTES = 64 * 1024


class _CorkedTransport:
    """A connection's transport that sends a response's head with its body.

    uvicorn writes the status line and headers as soon as the app starts a response,
    then the body: two ``send()`` calls and two segments for every small answer. Here
    a write is held until the next one (sent joined with it), the end of the event
    loop's current iteration, or anything that ends the connection, whichever comes
    first; so a head still goes out at once when its body is not there yet (a stream).
    Only small writes are held and joined (a head, a small body): a large chunk of a
    download is never copied. Everything else is the real transport's.
    """

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: Any, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes) -> None:
        held = self._held
        if held is not None:
            self._held = None
            if len(data) <= _JOIN_BYTES:
                self._transport.write(held + data)
                return
            self._transport.write(held)
        elif 0 < len(data) <= _HOLD_BYTES:
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
            return
        self._transport.write(data)

    def flush(self) -> None:
        held, self._held = self._held, None
        if held is not None and not self._transport.is_closing():
            self._transport.write(held)

    def write_eof(self) -> None:
        self.flush()
        self._transport.write_eof()

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def abort(self) -> None:
        self._held = None
        self._transport.abort()

    def is_closing(self) -> bool:  # asked once per response: skip __getattr__
        return bool(self._transport.is_closing())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def _classify(error: BaseException | None, httptools: Any, method: str) -> tuple[str, str]:
    """(problem, detail) for ``ProxyApp.refuse_unparsed`` from a parser error."""
    cause = error.__context__ if error is not None else None
    detail = str(error) if error is not None else "invalid request"
    if isinstance(cause, httptools.HttpParserInvalidURLError) or method == "CONNECT":
        return "target", "the request target is not an origin-form path"
    if isinstance(cause, UnicodeError):
        return "target", "the request target has bytes outside ASCII"
    if isinstance(error, httptools.HttpParserInvalidURLError):
        return "target", f"{detail} (bytes outside ASCII must be percent-encoded)"
    if cause is not None:
        return "malformed", type(cause).__name__
    lowered = detail.lower()
    if "transfer-encoding" in lowered and "content-length" not in lowered:
        return "transfer_coding", detail
    return "malformed", detail


def _write(protocol: Any, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    """A whole response straight onto the transport (``connection: close``)."""
    try:
        phrase = http.HTTPStatus(status).phrase.encode("ascii")
    except ValueError:
        phrase = b""
    out = [b"HTTP/1.1 %d %s\r\n" % (status, phrase)]
    names = {name.lower() for name, _ in headers}
    for name, value in protocol.server_state.default_headers:
        if name.lower() not in names:
            out += [name, b": ", value, b"\r\n"]
    for name, value in headers:
        out += [name, b": ", value, b"\r\n"]
    if b"content-length" not in names:
        out.append(b"content-length: %d\r\n" % len(body))
    if b"connection" not in names:
        out.append(b"connection: close\r\n")
    out += [b"\r\n", body]
    protocol.transport.write(b"".join(out))


class ProxyServer:
    """Serve an ASGI app (normally ``rrdev.servers.proxy.ProxyApp``) on ``host:port``.

    ``graceful_timeout`` (seconds, None: wait as long as it takes) bounds how long
    ``stop()`` waits for in-flight requests before cancelling them. ``sock`` is a
    socket already bound (and maybe listening) to serve instead of binding ``host:port``:
    a ``rrdev up --workers`` worker serves the one its parent bound
    (``rrdev.servers.workers``).
    """

    def __init__(
        self,
        app: Any,
        host: str = "127.0.0.1",
        port: int = 8787,
        *,
        graceful_timeout: float | None = None,
        log_level: str = "warning",
        sock: socket.socket | None = None,
    ) -> None:
        self.app = app
        self.host = host
        self.requested_port = port
        self.graceful_timeout = graceful_timeout
        self.log_level = log_level
        self._port: int | None = None
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None
        self._sock = sock

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
        raise_open_files_limit()
        sock = self._sock if self._sock is not None else bind_socket(self.host, self.requested_port)
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
            http=_http_protocol(self.app),
            # Only used without httptools (whose own buffer limit cannot be set; the
            # protocol above enforces MAX_HEAD_BYTES instead).
            h11_max_incomplete_event_size=MAX_HEAD_BYTES,
            log_config=None,
            log_level=self.log_level,
            access_log=False,
            # rrdev *sets* X-Forwarded-*: it must never take the caller's as its own view
            # of who connected (uvicorn trusts them from loopback by default).
            proxy_headers=False,
            server_header=False,  # the backend's Server/Date headers pass through
            date_header=False,
            timeout_graceful_shutdown=self.graceful_timeout,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
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
