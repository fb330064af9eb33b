"""The RFC 7239 ``Forwarded`` header, treated like ``X-Forwarded-*``.

rrdev appends its own element (``for=<caller>;host=<Host>;proto=<scheme>``). Of the
caller's elements only ``for=`` is kept, as ``X-Forwarded-For`` keeps the caller's
chain: ``host``, ``proto`` and ``by`` are routing facts rrdev sets itself (as it
replaces ``X-Forwarded-Host``/``-Proto``), and frameworks that read the *first* element
(Spring's ``ForwardedHeaderFilter``) would otherwise take the caller's word for them.
A caller value that is not valid RFC 7239 is dropped whole.
"""

from __future__ import annotations

import re

_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_QUOTED = r'"(?:[^"\\\x00-\x08\x0a-\x1f\x7f]|\\[\t -~])*"'
_PAIR = re.compile(rf"[ \t]*({_TOKEN})=({_TOKEN}|{_QUOTED})[ \t]*")
_SPACE = re.compile(r"[ \t]*")
_TOKEN_ONLY = re.compile(_TOKEN)


def caller_chain(values: tuple[str, ...]) -> tuple[list[str], bool]:
    """The caller's ``for=`` elements (values as sent) from its ``Forwarded`` headers,
    and whether anything else was dropped."""
    kept: list[str] = []
    dropped = False
    for value in values:
        elements = _elements(value)
        if elements is None:
            dropped = True
            continue
        for pairs in elements:
            names = [name for name, _ in pairs]
            if len(set(names)) != len(names):  # RFC 7239 §4: each parameter at most once
                dropped = True
                continue
            kept.extend(f"for={v}" for name, v in pairs if name == "for")
            dropped = dropped or any(name != "for" for name in names)
    return kept, dropped


def _elements(value: str) -> list[list[tuple[str, str]]] | None:
    """``value`` as elements of (lower-case name, value as sent); None when malformed."""
    elements: list[list[tuple[str, str]]] = []
    pairs: list[tuple[str, str]] = []
    pos = 0
    while True:
        match = _PAIR.match(value, pos)
        if match is not None:
            pairs.append((match.group(1).lower(), match.group(2)))
            pos = match.end()
        else:
            pos = _SPACE.match(value, pos).end()  # type: ignore[union-attr]
        if pos == len(value):
            elements.append(pairs)
            return [e for e in elements if e]
        if value[pos] == ",":
            elements.append(pairs)
            pairs = []
        elif value[pos] != ";":
            return None
        pos += 1


def own_element(client: str | None, host: str | None, proto: str) -> str:
    """rrdev's element: who connected, the Host it was asked for, the scheme."""
    node = "unknown" if client is None else f"[{client}]" if ":" in client else client
    parts = [f"for={_value(node)}"]
    if host:
        parts.append(f"host={_value(host)}")
    parts.append(f"proto={_value(proto)}")
    return ";".join(parts)


def _value(text: str) -> str:
    if _TOKEN_ONLY.fullmatch(text):
        return text
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'
