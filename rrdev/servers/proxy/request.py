"""The caller's request as rrdev reads it: the request target and header bytes as text.

``REQUEST_TARGET`` is the scope extension ``rrdev.servers.runner`` sets with the target
exactly as sent, so ``_target_text`` can hand the path rule what httptools would hide.
"""

from __future__ import annotations

from rrdev.servers.asgi import Scope

#: Scope extension (set by rrdev.servers.runner) with the request target exactly as sent.
REQUEST_TARGET = "rrdev.request_target"


def _target_text(scope: Scope) -> tuple[str, str]:
    """The raw path and query as text for ``decide``. Bytes outside ASCII are
    percent-escaped so the path rule sees them (invalid UTF-8 is refused there)."""
    raw = scope.get("raw_path") or scope["path"].encode("utf-8")
    raw = raw.partition(b"?")[0]  # httpx's ASGITransport puts the query in raw_path
    sent = scope.get("extensions", {}).get(REQUEST_TARGET)
    if sent is not None and (not sent.startswith(b"/") or b"#" in sent.partition(b"?")[0]):
        # Absolute or authority form, or a fragment httptools would silently drop
        # ("/a#/../admin" -> "/a"): hand the target as sent to the path rule to refuse.
        raw = sent.partition(b"?")[0]
    query = scope.get("query_string", b"")
    return _ascii_text(raw), _ascii_text(query)


def _ascii_text(raw: bytes) -> str:
    if raw.isascii():
        return raw.decode("ascii")
    return "".join(chr(b) if b < 0x80 else f"%{b:02X}" for b in raw)


def _escaped(raw: bytes) -> str:
    """Bytes a parser refused, as printable text: anything but visible ASCII as %XX."""
    return "".join(chr(b) if 0x20 < b < 0x7F else f"%{b:02X}" for b in raw)


def _header_value(raw: bytes) -> str:
    # aiohttp writes header values as UTF-8: decoding them as UTF-8 keeps the bytes
    # the caller sent; anything else (obs-text) falls back to Latin-1.
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")
