"""Tokens: strict unverified decoding, and small helpers for showing token values.

``decode_unverified`` is for *display* (``rrdev token decode``) and is the first
step of verification; it checks shape only, never the signature. It is stricter
than most JWT libraries on purpose: a token rrdev accepts is one every gateway
accepts, so non-canonical encodings (padding, standard-base64 characters, stray
whitespace, duplicate JSON keys) are refused with a message naming what is wrong.

Fetching tokens (the OAuth2 client) lives in ``rrdev.clients.oauth2`` and the
on-disk token cache in ``rrdev.clients.token_cache``: this module does no I/O.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from dataclasses import dataclass
from typing import Any

from rrdev.core.errors import TokenInputError

__all__ = [
    "DEFAULT_MAX_TOKEN_BYTES",
    "DecodedToken",
    "clip",
    "decode_unverified",
    "humanize_delta",
]

#: Default ceiling on a token's size. Real access tokens are 1-4 KiB; a cap keeps
#: an attacker from making us base64-decode and JSON-parse megabytes.
DEFAULT_MAX_TOKEN_BYTES = 16384
#: Real claims nest a few levels; deeper is an attack on whatever walks them.
MAX_JSON_DEPTH = 32

_SEGMENT_NAMES = ("header", "payload", "signature")
_B64URL_ALPHABET = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@dataclass(frozen=True)
class DecodedToken:
    """A JWS compact token split and decoded, *not verified*.

    ``signing_input`` is ``header_segment + "." + payload_segment`` as bytes: what
    the signature covers. ``raw`` is the token text exactly as given.
    """

    header: dict[str, Any]
    claims: dict[str, Any]
    signing_input: bytes
    signature: bytes
    raw: str


def _malformed(message: str, hint: str = "", reason: str = "token_malformed") -> TokenInputError:
    hint = hint or "pass the whole token, without 'Bearer ' or quotes"
    return TokenInputError(message, hint, reason=reason)


def decode_unverified(token: str, *, max_bytes: int = DEFAULT_MAX_TOKEN_BYTES) -> DecodedToken:
    """Split and decode a JWS compact token without checking its signature.

    Raises ``TokenInputError`` (with ``reason`` ``token_malformed``, or
    ``token_too_large`` past ``max_bytes``) saying exactly what is wrong.
    """
    _check_size(token, max_bytes)
    _check_prefix(token)
    parts = token.split(".")
    _check_part_count(parts)
    raw = [_decode_segment(part, index) for index, part in enumerate(parts)]
    header = _json_object(raw[0], "header")
    claims = _json_object(raw[1], "payload")
    signing_input = f"{parts[0]}.{parts[1]}".encode("ascii")
    return DecodedToken(header, claims, signing_input, raw[2], token)


def _check_size(token: str, max_bytes: int) -> None:
    size = len(token.encode("utf-8", "replace"))
    if size > max_bytes:
        raise _malformed(
            f"the token is {size} bytes; the limit is {max_bytes}",
            "real access tokens are a few KiB; raise max_token_bytes if yours are larger",
            reason="token_too_large",
        )
    if not token:
        raise _malformed("the token is empty")


def _check_prefix(token: str) -> None:
    # The most common copy-paste mistakes get a message of their own.
    if token[:7].lower() == "bearer ":
        raise _malformed("the token starts with 'Bearer '; pass only the token itself")
    if token[0] in "\"'" or token[-1] in "\"'":
        raise _malformed("the token is wrapped in quotes")


#: Auth0 hands out an opaque or an encrypted (JWE, ``alg: dir``) access token, meant
#: for its own /userinfo, when the token request names no audience.
_NO_AUDIENCE_HINT = (
    "Auth0 issues an {what} access token (for its /userinfo only) when the token request "
    "names no audience: request it with audience=<your API identifier> (Applications -> "
    "APIs -> Identifier); other providers: ask for a JWT access token for your API"
)


def _check_part_count(parts: list[str]) -> None:
    if len(parts) == 3:
        return
    message = f"a JWT has 3 dot-separated parts; this has {len(parts)}"
    if len(parts) == 5:
        raise _malformed(
            message + f" (an encrypted JWE{_jwe_header_note(parts[0])}, not a signed JWT)",
            _NO_AUDIENCE_HINT.format(what="encrypted"),
        )
    if len(parts) == 1 and parts[0] and set(parts[0]) <= _OPAQUE_ALPHABET:
        raise _malformed(
            message + " (an opaque token, not a JWT)", _NO_AUDIENCE_HINT.format(what="opaque")
        )
    raise _malformed(message)


#: What opaque access tokens are written with (base64url, hex, and a few separators).
_OPAQUE_ALPHABET = _B64URL_ALPHABET | frozenset("~+/=")


def _jwe_header_note(segment: str) -> str:
    """``, alg dir, enc A256GCM`` from a JWE's protected header, if it decodes (it is
    hostile input: any failure just leaves the note out)."""
    if len(segment) > 1024 or not set(segment) <= _B64URL_ALPHABET:
        return ""
    try:
        header = json.loads(base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4)))
    except (binascii.Error, ValueError, RecursionError):
        return ""
    if not isinstance(header, dict):
        return ""
    shown = [f"{k} {clip(header[k], 20, quote=False)}" for k in ("alg", "enc") if k in header]
    return "".join(f", {s}" for s in shown)


def _decode_segment(segment: str, index: int) -> bytes:
    """Decode one unpadded, canonical base64url segment."""
    label = f"segment {index + 1} ({_SEGMENT_NAMES[index]})"
    bad = set(segment) - _B64URL_ALPHABET
    if bad:
        raise _malformed(f"{label} is not valid base64url: {_describe_bad_chars(bad)}")
    if len(segment) % 4 == 1:
        raise _malformed(f"{label} is not valid base64url: its length is impossible")
    try:
        decoded = base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    except (binascii.Error, ValueError) as error:
        raise _malformed(f"{label} is not valid base64url: {error}") from None
    # Unused trailing bits must be zero, so each token has exactly one spelling;
    # otherwise two different strings carry the same signed content.
    if base64.urlsafe_b64encode(decoded).rstrip(b"=").decode("ascii") != segment:
        raise _malformed(f"{label} is not canonical base64url (re-encoding gives other text)")
    return decoded


def _describe_bad_chars(bad: set[str]) -> str:
    if "=" in bad:
        return "it has '=' padding; JWTs use unpadded base64url"
    if bad & {"+", "/"}:
        return "it has '+' or '/' (standard base64); JWTs use '-' and '_'"
    if any(c.isspace() for c in bad):
        return "it contains whitespace or a line break"
    shown = ", ".join(repr(c) for c in sorted(bad)[:5])
    return f"it contains {shown}"


def _json_object(data: bytes, name: str) -> dict[str, Any]:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise _malformed(f"the {name} is not UTF-8 text") from None
    try:
        value = json.loads(text, object_pairs_hook=_no_duplicates, parse_constant=_no_constants)
    except _DuplicateKey as error:
        # Parsers disagree on which duplicate wins; refusing avoids a mismatch
        # between what we verify and what the backend reads.
        raise _malformed(f"the {name} repeats the key {error.args[0]!r}") from None
    except (ValueError, RecursionError) as error:
        raise _malformed(f"the {name} is not valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise _malformed(f"the {name} is not a JSON object")
    if _depth(value) > MAX_JSON_DEPTH:
        # Claims are walked recursively (rules, redaction, rendering): refuse here.
        raise _malformed(f"the {name} nests objects or arrays more than {MAX_JSON_DEPTH} deep")
    return value


def _depth(value: Any) -> int:
    """How deeply objects and arrays nest (iterative: the input is hostile)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        if isinstance(item, (dict, list)):
            deepest = max(deepest, level)
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, level + 1) for child in children)
    return deepest


class _DuplicateKey(Exception):
    pass


def _no_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in pairs:
        if key in out:
            raise _DuplicateKey(key)
        out[key] = value
    return out


def _no_constants(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def humanize_delta(seconds: float) -> str:
    """A short duration: ``12s``, ``4m12s``, ``2h03m``, ``3d4h``. Sign is ignored."""
    try:
        finite = math.isfinite(seconds)
    except OverflowError:  # an int past float range
        finite = False
    if not finite:
        return "forever"
    total = int(abs(seconds))
    days, rest = divmod(total, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    if minutes:
        return f"{minutes}m{secs:02d}s"
    return f"{secs}s"


def clip(value: object, limit: int = 80, *, quote: bool = True) -> str:
    """``repr(value)`` (or the bare string with ``quote=False``), shortened:
    token-supplied values go into messages, logs and 401 bodies, and a 16 KiB
    ``iss`` should not."""
    text = value if isinstance(value, str) and not quote else repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."
