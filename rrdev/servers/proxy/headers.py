"""What the backend gets and what the caller gets back: header and query rewriting.

Upstream (DESIGN.md §2.5): hop-by-hop headers dropped, ``Host`` the target's,
``X-Forwarded-*``, ``Forwarded``, ``X-Real-IP`` set by rrdev, URL-override headers and
names with ``_`` dropped, exactly one Authorization, the target credential (header or
query parameter), ``access_token`` and api-key parameters removed from the caller's
query, ``additional_headers`` rendered from the token's claims, ``header_filters``.
Downstream: hop-by-hop headers and the backend's own ``requestrocket-proxy-*`` dropped.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING, Any
from urllib.parse import unquote_plus

from rrdev.core.hygiene import QUERY_SPLIT, is_twin_header, param_key
from rrdev.servers.asgi import Scope
from rrdev.servers.proxy.forwarded import caller_chain, own_element

if TYPE_CHECKING:  # state.py builds its drop set from HOP_BY_HOP: no import cycle at run time
    from rrdev.servers.proxy.state import _State

#: RFC 9110 §7.6.1 hop-by-hop headers (plus the non-standard Proxy-Connection):
#: dropped in both directions, as are any headers the Connection header names.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
    }
)
#: Caller headers rrdev replaces (Host is the target's; X-Forwarded-Proto/-Host/-Port
#: and X-Real-IP are rrdev's to set; Expect was already answered to the caller by the
#: server) or drops (_ROUTING).
_REPLACED = frozenset(
    {"host", "x-forwarded-proto", "x-forwarded-host", "x-forwarded-port", "x-real-ip", "expect"}
)
#: Caller headers some backends route by instead of the path the rules judged (IIS
#: URL Rewrite, Symfony, Laravel, Zend: X-Original-URL/X-Rewrite-URL; Spring and
#: Werkzeug's ProxyFix: X-Forwarded-Prefix). Dropped; the record says so.
_ROUTING = frozenset({"x-original-url", "x-rewrite-url", "x-forwarded-prefix"})
_HOP_BY_HOP_BYTES = frozenset(h.encode() for h in HOP_BY_HOP)
#: rrdev's own response headers: a backend's headers of these names are dropped.
_GATEWAY_HEADERS = frozenset({b"requestrocket-proxy-code", b"requestrocket-proxy-message"})
_DOWNSTREAM_DROP = _HOP_BY_HOP_BYTES | _GATEWAY_HEADERS
_CLAIM_PLACEHOLDER = re.compile(r"\{claims\.([^{}\s]+)\}")
_UNSAFE_HEADER_VALUE = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_MISSING = object()


# ------------------------------------------------------------------ upstream


#: Query parameters never forwarded as the caller sent them: a token in a URL ends up
#: in the backend's access logs.
QUERY_SECRETS = frozenset({"access_token"})


def _upstream_query(state: _State, raw_query: str) -> str:
    """The caller's query bytes as received, minus ``access_token`` and the api-key
    parameter, plus the api-key parameter when the target credential uses one.

    Removing caller-sent parameters of those names keeps tokens out of the backend's
    logs and means a caller can never shadow the backend credential: names are compared
    decoded and case-insensitively (``KEY``, ``%4Bey``), and ``;`` counts as a separator
    too (some backends split on it, so ``a=1;key=x`` would carry a second ``key``). A
    query with none of them is forwarded byte for byte."""
    cred = state.credential
    static = state.static
    static_name = static.query_param if static and static.auth_type == "apiKey" else None
    query = _without_params(raw_query, _removed_params(cred.query_name, static_name))
    if cred.query_piece is None:
        return query
    return query + ("&" if query else "") + cred.query_piece


@lru_cache(maxsize=64)
def _removed_params(query_name: str | None, static_name: str | None = None) -> frozenset[str]:
    # Per profile, not per request: the names are the credentials' (an apiKey proxy
    # credential's parameter is the caller's secret for rrdev: never forwarded).
    names = [param_key(n) for n in (query_name, static_name) if n]
    return QUERY_SECRETS | frozenset(names)


def _without_params(raw_query: str, names: frozenset[str]) -> str:
    """``raw_query`` without the parameters named ``names`` (compared as ``param_key``),
    each removed with one separator next to it; every other byte stays as sent."""
    if not raw_query:
        return raw_query
    parts = QUERY_SPLIT.split(raw_query)  # piece, separator, piece, ...
    dropped: set[int] = set()
    for i in range(0, len(parts), 2):
        piece = parts[i]
        if not piece or param_key(unquote_plus(piece.partition("=")[0])) not in names:
            continue
        dropped.add(i)
        if i > 0 and i - 1 not in dropped:
            dropped.add(i - 1)
        elif i + 1 < len(parts):
            dropped.add(i + 1)
    if not dropped:
        return raw_query
    return "".join(part for i, part in enumerate(parts) if i not in dropped)


def _upstream_headers(
    state: _State,
    scope: Scope,
    headers: list[tuple[str, str]],
    claims: Mapping[str, Any] | None,
    notes: list[str],
    authorization: str | None = None,
) -> list[tuple[str, str]]:
    """The headers sent to the backend (DESIGN.md §2.5)."""
    caller = _caller_headers(state, headers, notes)
    out = list(caller.kept)
    _authorization(state, caller.authorization, out, authorization)
    for template in state.templates:
        value, note = template.render(claims)
        if value is None:
            notes.append(note or f"additional header {template.name} omitted")
        else:
            out.append((template.name, value))
    out.extend(_forwarding_headers(state, scope, caller, notes))
    return out


@dataclass(frozen=True)
class _CallerHeaders:
    """The caller's headers sorted for ``_upstream_headers``: those forwarded as they
    are, and those rrdev reads to build its own."""

    kept: tuple[tuple[str, str], ...]
    authorization: str | None
    host: str | None
    forwarded_for: tuple[str, ...]
    forwarded: tuple[str, ...]


def _caller_headers(
    state: _State, headers: list[tuple[str, str]], notes: list[str]
) -> _CallerHeaders:
    caller, dropped, named = _sort_caller(headers, state.drop)
    extra = named - state.drop  # "close" on every HTTP/1.0-style request: no header
    if extra and any(name in extra for name, _ in headers):
        # Rare: the caller's Connection header names headers it sent that must not be
        # forwarded (they may come before it), so sort once more without them.
        caller, dropped, _named = _sort_caller(headers, state.drop | extra)
    if dropped:
        notes.append(_clipped(f"dropped the caller's headers: {', '.join(dropped)}"))
    return caller


def _sort_caller(
    headers: list[tuple[str, str]], drop: frozenset[str]
) -> tuple[_CallerHeaders, list[str], frozenset[str]]:
    """One pass: the sorted headers, the names dropped as routing or ``_`` twins, and
    the names the Connection header lists."""
    named: set[str] = set()
    kept: list[tuple[str, str]] = []
    dropped: list[str] = []
    authorization = host = None
    forwarded_for: list[str] = []
    forwarded: list[str] = []
    for name, value in headers:
        if name == "host":
            host = value
        elif name == "connection":
            named.update(t.strip().lower() for t in value.split(","))
        if name in drop:
            continue
        if is_twin_header(name) or name in _ROUTING:
            dropped.append(name)  # the engine never judged a name with "_" either
        elif name == "authorization":
            authorization = value
        elif name == "x-forwarded-for":
            forwarded_for.append(value)
        elif name == "forwarded":
            forwarded.append(value)
        else:
            kept.append((name, value))
    caller = _CallerHeaders(
        tuple(kept), authorization, host, tuple(forwarded_for), tuple(forwarded)
    )
    return caller, dropped, frozenset(named)


def _clipped(text: str, limit: int = 200) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _forwarding_headers(
    state: _State, scope: Scope, caller: _CallerHeaders, notes: list[str]
) -> list[tuple[str, str]]:
    """rrdev's own view of the connection: who connected (appended to the caller's
    chains), the Host, scheme and port it was asked for. A header filter naming one
    stops it being sent."""
    client_address = scope.get("client")
    client = client_address[0] if client_address else None
    proto = scope.get("scheme", "http")
    server = scope.get("server")
    if caller.forwarded_for or caller.forwarded:
        return _forwarding_for(state, caller, client, proto, server, notes)
    # Without chains of the caller's, the headers depend on the connection alone: made
    # once per client address, Host and listener (bounded), not per request.
    key = (client, caller.host, proto, server)
    made = state.forwarding.get(key)
    if made is None:
        made = _forwarding_for(state, caller, client, proto, server, notes)
        if len(state.forwarding) >= 256:
            state.forwarding.clear()
        state.forwarding[key] = made
    return made


def _forwarding_for(
    state: _State,
    caller: _CallerHeaders,
    client: str | None,
    proto: str,
    server: tuple[str, int | None] | None,
    notes: list[str],
) -> list[tuple[str, str]]:
    filters = state.filters
    out: list[tuple[str, str]] = []
    if "x-forwarded-for" not in filters:
        out.append(("X-Forwarded-For", ", ".join([*caller.forwarded_for, client or "unknown"])))
    if "x-forwarded-proto" not in filters:
        out.append(("X-Forwarded-Proto", proto))
    if caller.host is not None and "x-forwarded-host" not in filters:
        out.append(("X-Forwarded-Host", caller.host))
    if server and server[1] is not None and "x-forwarded-port" not in filters:
        out.append(("X-Forwarded-Port", str(server[1])))
    if client is not None and "x-real-ip" not in filters:
        out.append(("X-Real-IP", client))
    if "forwarded" not in filters:
        chain, dropped = caller_chain(caller.forwarded)
        if dropped:
            notes.append("dropped the caller's Forwarded parameters other than for=")
        chain.append(own_element(client, caller.host, proto))
        out.append(("Forwarded", ", ".join(chain)))
    return out


def _authorization(
    state: _State,
    caller_auth: str | None,
    out: list[tuple[str, str]],
    backend_auth: str | None = None,
) -> None:
    """Exactly one Authorization upstream (or none). ``caller_auth`` is None when the
    caller sent none or a header filter stripped it; ``backend_auth`` is the ``oauth2``
    credential's value for this request."""
    cred = state.credential
    proxy = state.profile.proxy
    if cred.source is not None:
        # oauth2 writes Authorization: the caller's header is never forwarded as itself.
        if backend_auth is not None:
            out.append(("Authorization", backend_auth))
    elif cred.authorization is not None:
        out.append(("Authorization", cred.authorization))
    elif caller_auth is not None and proxy.forward_authorization:
        out.append(("Authorization", caller_auth))
        caller_auth = None  # forwarded as itself: nothing to pass on under another name
    if caller_auth is not None and state.forward_as is not None:
        out.append((state.forward_as, caller_auth))
    if cred.header is not None:
        out.append(cred.header)


# ------------------------------------------------------------------ downstream


def _downstream_headers(raw: tuple[tuple[bytes, bytes], ...]) -> list[tuple[bytes, bytes]]:
    """The backend's response headers minus hop-by-hop ones (and any named in its
    Connection header) and minus ``requestrocket-proxy-code``/``-message``, which only
    rrdev sets. Names are lower-cased for ASGI; values are untouched. A fresh list each
    time (callers append to it); the last answer is kept, since a backend answers the
    same headers request after request (a ``Date`` changes once a second)."""
    last = _last_downstream
    if last[0] == raw:
        return list(last[1])
    out = _filter_downstream(raw)
    _last_downstream[:] = (raw, tuple(out))
    return out


#: ``_downstream_headers``' last (raw headers, filtered headers).
_last_downstream: list[tuple[tuple[bytes, bytes], ...]] = [(), ()]


def _filter_downstream(raw: tuple[tuple[bytes, bytes], ...]) -> list[tuple[bytes, bytes]]:
    named: set[bytes] = set()
    out = []
    for name, value in raw:
        lower = name.lower()
        if lower in _DOWNSTREAM_DROP:
            if lower == b"connection":
                named.update(t.strip().lower() for t in value.split(b","))
            continue
        out.append((lower, value))
    if named:  # the names Connection lists may come before it: filter afterwards
        out = [(name, value) for name, value in out if name not in named]
    return out


# ------------------------------------------------------------------ additional_headers templates


@dataclass(frozen=True)
class _Template:
    """One ``additional_headers`` entry, split once: literals and claim paths."""

    name: str
    parts: tuple[str | tuple[str], ...]
    static: str | None

    def render(self, claims: Mapping[str, Any] | None) -> tuple[str | None, str | None]:
        """(value, None), or (None, why the header was left out)."""
        if self.static is not None:
            return self.static, None
        out: list[str] = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                continue
            value = _claim_at(claims, part[0]) if claims is not None else _MISSING
            if value is _MISSING or value is None:
                why = "no verified token" if claims is None else f"no claim '{part[0]}'"
                return None, f"additional header {self.name} omitted: {why}"
            out.append(_claim_text(value))
        text = "".join(out)
        if _UNSAFE_HEADER_VALUE.search(text):
            return None, f"additional header {self.name} omitted: control characters in the claim"
        return text, None


def _template(name: str, template: str) -> _Template:
    if "{claims." not in template:
        return _Template(name, (template,), template)
    parts: list[str | tuple[str]] = []
    last = 0
    for match in _CLAIM_PLACEHOLDER.finditer(template):
        if match.start() > last:
            parts.append(template[last : match.start()])
        parts.append((match.group(1),))
        last = match.end()
    if last < len(template):
        parts.append(template[last:])
    return _Template(name, tuple(parts), None)


def _claim_at(claims: Any, path: str) -> Any:
    """A claim by name, else by dotted path into nested objects. A top-level name is
    tried whole first, so ``https://example.com/roles`` is one claim."""
    if not isinstance(claims, Mapping):
        return _MISSING
    if path in claims:
        return claims[path]
    head, dot, rest = path.partition(".")
    while dot:
        if head in claims:
            found = _claim_at(claims[head], rest)
            if found is not _MISSING:
                return found
        step, dot, rest = rest.partition(".")
        head = f"{head}.{step}"
    return _MISSING


def _claim_text(value: Any) -> str:
    """Strings as they are; numbers and booleans as JSON; arrays comma-joined; objects
    as compact JSON."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ",".join(_claim_text(v) for v in value)
    return json.dumps(value, separators=(",", ":"))
