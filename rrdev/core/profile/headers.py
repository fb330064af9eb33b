"""Header names and values a profile may not use: the headers rrdev owns upstream
(``RESERVED_HEADERS``), the ones a filter may not strip (``UNFILTERABLE_HEADERS``), and
``additional_headers`` templates rrdev would send broken (control characters,
mistyped ``{claims.<name>}`` placeholders)."""

from __future__ import annotations

import re
import unicodedata

from rrdev.core.model import HeaderValue, Profile
from rrdev.core.profile.reading import _Ctx, _Table

#: What rrdev.servers.proxy substitutes (the same expression); everything else is literal text.
CLAIM_PLACEHOLDER = re.compile(r"\{claims\.[^{}\s]+\}")
#: Literal text that was meant as a claim placeholder: ``{claims.}``, ``{claims.sub``,
#: ``{ claims.sub }``, ``{Claims.sub}``, ``{claim.sub}``, ``{claims}``.
_CLAIM_ATTEMPT = re.compile(r"\{\s*claims?\b", re.IGNORECASE)
#: ``{sub}``, ``{user.id}``: a placeholder rrdev does not know (sent literally).
_OTHER_PLACEHOLDER = re.compile(r"\{\s*[A-Za-z_][\w.:/-]*\s*\}")
PLACEHOLDER_HINT = (
    "a placeholder is {claims.<name>}: a claim name or dotted path, without spaces or "
    "braces, e.g. {claims.sub} or {claims.app_metadata.plan} (case-sensitive)"
)


_HOP_BY_HOP = (
    *("connection", "keep-alive", "proxy-authenticate", "proxy-connection", "te"),
    *("trailer", "upgrade"),
)
_FRAMING = "it frames the request body, and rrdev frames the body it forwards itself"
_FORWARDED = "rrdev sets X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host itself"
_GATEWAY = "it is the gateway's response header to the caller, not a request header"
_OTHER_NAME = "use another header name"
#: Lower-case header names rrdev owns upstream (DESIGN.md §2.5), which
#: ``additional_headers``, ``forward_authorization_as`` and an api-key credential's
#: ``header`` must not name: name -> (why, hint).
RESERVED_HEADERS: dict[str, tuple[str, str]] = {
    "authorization": (
        "the backend gets exactly one Authorization (the target credential's or the caller's)",
        "to authenticate rrdev to the backend use [target_credential] (bearer, basic, "
        "oauth2); to pass the caller's header on under another name use "
        "forward_authorization_as",
    ),
    "proxy-authorization": (
        "it is hop-by-hop (it authenticates to a proxy) and never forwarded",
        _OTHER_NAME,
    ),
    "host": (
        "Host is always the target's (from target.base_url)",
        "change target.base_url; the caller's Host reaches the backend as X-Forwarded-Host",
    ),
    "content-length": (_FRAMING, "remove it"),
    "transfer-encoding": (_FRAMING, "remove it"),
    "expect": ("rrdev answers Expect to the caller and never forwards it", "remove it"),
    **dict.fromkeys(
        _HOP_BY_HOP,
        (
            "it is a hop-by-hop header (RFC 9110 §7.6.1): it describes one connection and "
            "is never forwarded",
            "remove it",
        ),
    ),
    **dict.fromkeys(
        ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"),
        (_FORWARDED, "to send none, name it in header_filters"),
    ),
    **dict.fromkeys(
        ("forwarded", "x-real-ip", "x-forwarded-port"),
        (
            "rrdev sets Forwarded, X-Real-IP and X-Forwarded-Port itself",
            "to send none, name it in header_filters",
        ),
    ),
    **dict.fromkeys(
        ("requestrocket-proxy-code", "requestrocket-proxy-message"), (_GATEWAY, _OTHER_NAME)
    ),
}
#: header_filters may not strip these: every forwarded request needs them as rrdev sets them.
UNFILTERABLE_HEADERS: dict[str, tuple[str, str]] = {
    "host": (
        "every request needs a Host, and rrdev always sends the target's",
        "remove it; the caller's Host is already replaced (it reaches the backend as "
        "X-Forwarded-Host, which a filter may strip)",
    ),
    **dict.fromkeys(
        ("content-length", "transfer-encoding"),
        (
            "it frames the request body: without it the backend cannot tell where the body ends",
            "remove it; rrdev forwards the body with correct framing",
        ),
    ),
}


def _header_filters(t: _Table) -> tuple[str, ...]:
    filters = t.str_list("header_filters")
    for n, name in enumerate(filters):
        key = f"{t.at('header_filters')}[{n}]"
        t.header_name("header_filters", name, key)
        refused = UNFILTERABLE_HEADERS.get(name.lower())
        if refused is not None:
            why, hint = refused
            t.ctx.fail(key, f"{name!r} cannot be filtered: {why}", hint)
    return filters


def _forward_authorization_as(
    t: _Table, additional: tuple[tuple[str, HeaderValue], ...]
) -> str | None:
    name = t.opt_str("forward_authorization_as")
    if name is None:
        return None
    t.header_name("forward_authorization_as", name)
    reserved = RESERVED_HEADERS.get(name.lower())
    if reserved is not None:
        why, hint = reserved
        if name.lower() == "authorization":
            hint = (
                "pick another name, e.g. 'X-Original-Authorization'; to forward the caller's "
                "header as itself, use forward_authorization = true with a target "
                "credential of auth_type 'none' or 'api_key'"
            )
        t.fail(
            "forward_authorization_as", f"{name!r} cannot be forward_authorization_as: {why}", hint
        )
    for other, _ in additional:
        if other.lower() == name.lower():
            other_key = f"{t.at('additional_headers')}.{other}"
            t.fail(
                "forward_authorization_as",
                f"{name!r} is also an additional header ({other_key}, line "
                f"{t.ctx.line(other_key)}): the backend would get two {name} headers",
                "use another name for one of them",
            )
    return name


def _reserved_header(ctx: _Ctx, key: str, name: str, role: str) -> None:
    reserved = RESERVED_HEADERS.get(name.lower())
    if reserved is not None:
        why, hint = reserved
        ctx.fail(key, f"{name!r} cannot be {role}: {why}", hint)


def _additional_headers(t: _Table) -> tuple[tuple[str, HeaderValue], ...]:
    pairs = t.str_table("additional_headers")
    seen: dict[str, str] = {}
    for name, template in pairs:
        key = f"{t.at('additional_headers')}.{name}"
        t.header_name("additional_headers", name, key)
        _reserved_header(t.ctx, key, name, "an additional header")
        first = seen.setdefault(name.lower(), key)
        if first != key:
            t.ctx.fail(
                key,
                f"duplicate header name {name!r} (header names are case-insensitive): "
                f"also {first} at line {t.ctx.line(first)}",
                "the backend would get the header twice; keep one",
            )
        _header_template(t.ctx, key, template)
    return tuple((name, HeaderValue(template)) for name, template in pairs)


def _header_template(ctx: _Ctx, key: str, template: str) -> None:
    """Refuse what rrdev.servers.proxy would send broken: control characters in the literal
    text (CR/LF/NUL make every forwarded request fail) and placeholder typos (sent as
    literal text)."""
    literals = CLAIM_PLACEHOLDER.split(template)
    for text in literals:
        for char in text:
            if char != "\t" and unicodedata.category(char) == "Cc":
                effect = (
                    "every forwarded request would fail (502)"
                    if char < "\x80"
                    else "a backend may refuse or mangle the request"
                )
                ctx.fail(
                    key,
                    f"control character {char!r} in the header value",
                    "CR, LF, NUL and other control characters cannot be sent in an HTTP "
                    f'header: {effect}. In TOML, a multi-line """string""" keeps its newlines',
                )
        attempt = _CLAIM_ATTEMPT.search(text)
        if attempt is not None:
            ctx.fail(
                key,
                f"malformed claim placeholder {_fragment(text, attempt.start())!r} "
                "(expected {claims.<name>})",
                PLACEHOLDER_HINT,
            )
        other = _OTHER_PLACEHOLDER.search(text)
        if other is not None:
            ctx.fail(
                key,
                f"unknown placeholder {other.group()!r}: only {{claims.<name>}} is filled in",
                f"e.g. {{claims.{other.group().strip('{} ')}}} for a claim; "
                "any other {name} would be sent literally",
            )
    for match in CLAIM_PLACEHOLDER.finditer(template):
        path = match.group()[len("{claims.") : -1]
        if path.startswith(".") or path.endswith(".") or ".." in path:
            ctx.fail(
                key,
                f"malformed claim placeholder {match.group()!r} (empty name in the dotted path)",
                PLACEHOLDER_HINT,
            )
    depth = 0
    for char in "".join(literals):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            ctx.fail(key, "unmatched '}' in the header value", PLACEHOLDER_HINT)
    if depth > 0:
        ctx.fail(key, "unclosed '{' in the header value", PLACEHOLDER_HINT)


def _fragment(text: str, start: int) -> str:
    """``text`` from ``start`` to its first ``}`` (inclusive), at most 40 characters."""
    end = text.find("}", start)
    fragment = text[start:] if end < 0 else text[start : end + 1]
    return fragment if len(fragment) <= 40 else fragment[:37] + "..."


def _check_api_key_header_unclaimed(ctx: _Ctx, profile: Profile) -> None:
    """An api_key credential's header is set by rrdev: [proxy] may not add it again."""
    header = profile.target_credential.header
    if profile.target_credential.auth_type != "api_key" or header is None:
        return
    where = f"target_credential.header, line {ctx.line('target_credential.header')}"
    proxy = profile.proxy
    clashes = [(f"proxy.additional_headers.{name}", name) for name, _ in proxy.additional_headers]
    if proxy.forward_authorization_as is not None:
        clashes.append(("proxy.forward_authorization_as", proxy.forward_authorization_as))
    for key, name in clashes:
        if name.lower() == header.lower():
            ctx.fail(
                key,
                f"{name!r} is the target credential's api-key header ({where}): the backend "
                f"would get two {name} headers",
                "use another name; rrdev sets the api-key header itself",
            )
