"""One port, many proxies: ``AliasDispatcher`` picks the ``ProxyApp`` a Host names.

``rrdev up a.toml b.toml`` serves each profile at ``http://{alias}.localhost:{port}/``,
as the gateway serves ``https://{alias}.requestrocket.io/``. The dispatcher reads the
Host header and hands the request, untouched, to that profile's ``ProxyApp``, which
then does everything it does alone (its own Host allow-list, rules, JWKS cache, hot
reload). It only answers itself when no profile is named:

- the bare host (``localhost``, ``127.0.0.1``), an unknown alias, or no Host at all:
  421 ``alias_unknown``, listing the aliases served;
- a Host that is neither loopback nor in any profile's ``proxy.allowed_hosts``, an
  invalid one, or two Host headers: 421 ``host_not_allowed``, as one profile would
  (a DNS-rebinding page learns nothing, not even the aliases).

Nothing it refuses reaches a backend. Each profile's records carry its alias; the
dispatcher's own refusals are recorded with none. A single profile is served by its
``ProxyApp`` directly: the dispatcher is never in that path.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import lru_cache

from rrdev.core.aliases import LOCAL_SUFFIX, ServedAlias, alias_of_host
from rrdev.core.hosts import host_allowed, is_loopback_host, normalise_host
from rrdev.core.model import TargetCredential
from rrdev.core.records import Explanation, RequestRecord
from rrdev.core.redact import Redactor
from rrdev.servers.asgi import Receive, Scope, Send
from rrdev.servers.proxy.answers import _clip_text, _error_payload, _unparsed_request
from rrdev.servers.proxy.flow import EventCallback, ProxyApp, RecordSink
from rrdev.servers.proxy.records import _record_query
from rrdev.servers.proxy.request import _escaped, _header_value, _target_text
from rrdev.servers.proxy.state import Overrides

__all__ = ["AliasDispatcher"]

_HOST_HINT = (
    "reach rrdev as {alias}.localhost; other names are refused because a web page can "
    "point its own name at 127.0.0.1 (DNS rebinding) and reach the backends through rrdev"
)


class AliasDispatcher:
    """Several ``ProxyApp``s on one listener, each at ``{alias}.localhost``.

    Same surface as ``ProxyApp`` where ``rrdev.servers.runner.ProxyServer`` and the
    front ends use it (``startup``, ``aclose``, ``refuse_unparsed``, ``sink``,
    ``on_event``, ``record_exchange``), so it runs wherever one app runs. ``sink`` gets
    every profile's records with ``alias`` set; ``on_event`` messages start with the
    alias of the profile they are about.
    """

    def __init__(
        self,
        served: Sequence[ServedAlias],
        *,
        overrides: Overrides | None = None,
        sink: RecordSink | None = None,
        on_event: EventCallback | None = None,
        clock: Callable[[], float] = time.time,
        reload_interval: float = 0.5,
        record_exchange: bool = False,
    ) -> None:
        self.sink = sink
        self.on_event = on_event
        self.clock = clock
        self.served = tuple(served)
        self.apps: dict[str, ProxyApp] = {
            s.alias: ProxyApp(
                s.profile,
                overrides=overrides,
                sink=self._sink_for(s.alias),
                on_event=self._events_for(s.alias),
                clock=clock,
                reload_interval=reload_interval,
                record_exchange=record_exchange,
            )
            for s in served
        }
        #: secret-named headers and query parameters of every profile, for own records
        self._redactor = Redactor().with_names(
            headers=[c.header for c in _target_credentials(served) if c.header],
            fields=[c.query_param for c in _target_credentials(served) if c.query_param],
        )

    # -------------------------------------------------------------- what front ends use

    @property
    def aliases(self) -> tuple[str, ...]:
        return tuple(self.apps)

    @property
    def record_exchange(self) -> bool:
        return any(app.record_exchange for app in self.apps.values())

    @record_exchange.setter
    def record_exchange(self, value: bool) -> None:
        for app in self.apps.values():
            app.record_exchange = value

    async def startup(self) -> None:
        for app in self.apps.values():
            await app.startup()

    async def aclose(self) -> None:
        """Close every profile's app (each one even when another fails)."""
        failed: BaseException | None = None
        for app in self.apps.values():
            try:
                await app.aclose()
            except Exception as exc:
                failed = failed or exc
        if failed is not None:
            raise failed

    async def __aenter__(self) -> AliasDispatcher:
        await self.startup()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def refuse_unparsed(
        self,
        problem: str,
        detail: str,
        *,
        method: str = "-",
        target: bytes = b"",
        record: bool = True,
    ) -> tuple[int, bytes, list[tuple[bytes, bytes]]]:
        """``ProxyApp.refuse_unparsed`` for a request no profile could be picked for
        (the parser refused it before its Host was known)."""
        expl = _unparsed_request(problem, detail, target)
        body, headers = _error_payload(expl)
        if not any(name == b"connection" for name, _ in headers):
            headers.append((b"connection", b"close"))
        if record:
            path, _, query = target.partition(b"?")
            method = _clip_text(method, 20) or "-"
            self._record(method, _escaped(path), _escaped(query), expl, len(body))
        return expl.status, body, headers

    # -------------------------------------------------------------- ASGI

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        app, refusal = self.route(scope["headers"], scope.get("server"))
        if app is not None:
            await app(scope, receive, send)
        elif kind == "http":
            await self._refuse(scope, send, refusal)
        elif kind == "websocket":
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008})
            raw_path, raw_query = _target_text(scope)
            self._record("GET", raw_path, raw_query, refusal, 0)

    def route(
        self, raw_headers: Sequence[tuple[bytes, bytes]], server: tuple[str, int] | None = None
    ) -> tuple[ProxyApp | None, Explanation]:
        """The app the Host names, or None and the refusal (421)."""
        values = [value for name, value in raw_headers if name == b"host"]
        if len(values) == 1:
            alias = _alias_in(values[0])
            app = self.apps.get(alias) if alias is not None else None
            if app is not None:
                return app, _NO_REFUSAL
        return None, self._refusal(values, server)

    def _refusal(self, values: list[bytes], server: tuple[str, int] | None) -> Explanation:
        if len(values) > 1:
            return _host_not_allowed("the request carries more than one Host header")
        if not values:
            return self._alias_unknown("the request has no Host header", server)
        shown = _clip_text(_header_value(values[0]))
        host = normalise_host(_header_value(values[0]))
        if host is None:
            return _host_not_allowed(f"the Host header {shown!r} is not a valid host[:port]")
        if not is_loopback_host(host) and not any(
            host_allowed(host, app.profile.proxy.allowed_hosts) for app in self.apps.values()
        ):
            return _host_not_allowed(
                f"the Host header {shown!r} is not a loopback name or address, and not in "
                "any profile's proxy.allowed_hosts"
            )
        return self._alias_unknown(f"the Host {shown!r} names none of them", server)

    def _alias_unknown(self, why: str, server: tuple[str, int] | None) -> Explanation:
        port = f":{server[1]}" if server else ""
        urls = ", ".join(f"http://{alias}{LOCAL_SUFFIX}{port}/" for alias in self.apps)
        return Explanation(
            421,
            "alias_unknown",
            f"this rrdev serves {len(self.apps)} proxies, each at its own host name, and "
            f"{why}: {urls}",
            f"send the request to one of them, e.g. curl http://{self.aliases[0]}"
            f"{LOCAL_SUFFIX}{port}/... (or keep the address and send "
            f"-H 'Host: {self.aliases[0]}{LOCAL_SUFFIX}')",
        )

    async def _refuse(self, scope: Scope, send: Send, expl: Explanation) -> None:
        t0 = time.perf_counter()
        body, headers = _error_payload(expl)
        await send({"type": "http.response.start", "status": expl.status, "headers": headers})
        await send({"type": "http.response.body", "body": body, "more_body": False})
        raw_path, raw_query = _target_text(scope)
        self._record(scope["method"], raw_path, raw_query, expl, len(body), t0)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await self.startup()
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.aclose()
                await send({"type": "lifespan.shutdown.complete"})
                return

    # -------------------------------------------------------------- records and events

    def _sink_for(self, alias: str) -> RecordSink:
        def stamp(record: RequestRecord) -> None:
            if self.sink is not None:
                self.sink(replace(record, alias=alias))

        return stamp

    def _events_for(self, alias: str) -> EventCallback:
        def tell(kind: str, message: str) -> None:
            if self.on_event is not None:
                self.on_event(kind, f"{alias}: {message}")

        return tell

    def _record(
        self,
        method: str,
        raw_path: str,
        raw_query: str,
        expl: Explanation,
        bytes_out: int,
        t0: float | None = None,
    ) -> None:
        if self.sink is None:
            return
        record = RequestRecord(
            time=self.clock(),
            method=method,
            path=raw_path,
            query=_record_query(self._redactor, raw_query) if raw_query else (),
            status=expl.status,
            reason=expl.reason,
            deciding_rule=None,
            explanation=expl,
            total_ms=0.0 if t0 is None else round((time.perf_counter() - t0) * 1000, 3),
            bytes_out=bytes_out,
        )
        with contextlib.suppress(Exception):  # a broken sink must not break the proxy
            self.sink(record)


#: ``route``'s second value when an app was found (never sent).
_NO_REFUSAL = Explanation(200, "allowed", "")


@lru_cache(maxsize=512)
def _alias_in(value: bytes) -> str | None:
    """The alias a Host header value names (cached: a listener sees few distinct Hosts)."""
    host = normalise_host(_header_value(value))
    return alias_of_host(host) if host is not None else None


def _host_not_allowed(message: str) -> Explanation:
    return Explanation(421, "host_not_allowed", message, _HOST_HINT)


def _target_credentials(served: Sequence[ServedAlias]) -> list[TargetCredential]:
    return [s.profile.target_credential for s in served]
