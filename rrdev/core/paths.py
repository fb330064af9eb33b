"""The request-target rule (DESIGN.md §2.1): decode once for the rules, forward the
bytes as received, refuse anything a backend could read differently from us."""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote_to_bytes

# Encoded "/" or "\" would be a path separator to some backends and not to others.
_ENCODED_SEPARATOR = re.compile(r"%(2f|5c)", re.IGNORECASE)
# C0, DEL and C1 (U+0080-U+009F, e.g. NEL, a line break to some log readers and parsers).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


# A path nothing below could object to: non-empty segments of unreserved and sub-delim
# characters (RFC 3986) without "%", ";" or "\\", none of them "." or "..", and an
# optional trailing "/". Most requests look like this; they skip the checks one by one.
_PLAIN_PATH = re.compile(r"(?:/(?!\.\.?(?:/|\Z))[A-Za-z0-9._~!$&'()*+,=:@-]+)*/?")


class AmbiguousPath(ValueError):
    """A request target that rrdev refuses to interpret (400 ``ambiguous_path``)."""


@dataclass(frozen=True)
class RequestTarget:
    """An origin-form request target split for the rules and for forwarding."""

    raw_path: str
    path: str
    raw_query: str
    query: tuple[tuple[str, str], ...]


def plain_path(raw_path: str) -> bool:
    """Whether ``raw_path`` is a plain path: accepted as it is, decoded to itself."""
    return raw_path.startswith("/") and _PLAIN_PATH.fullmatch(raw_path) is not None


def parse_target(raw_path: str, raw_query: str = "") -> RequestTarget:
    """Check and decode a request target; raise ``AmbiguousPath`` with the reason."""
    if plain_path(raw_path):
        # Nothing encoded and nothing to refuse: the path decodes to itself.
        query = _query_pairs(raw_query) if raw_query else ()
        return RequestTarget(raw_path=raw_path, path=raw_path, raw_query=raw_query, query=query)
    return _checked_target(raw_path, raw_query)


def _checked_target(raw_path: str, raw_query: str) -> RequestTarget:
    """``parse_target`` for any path: every check, one by one."""
    if not raw_path.startswith("/"):
        raise AmbiguousPath("only origin-form request targets (starting with '/') are accepted")
    if raw_path.startswith("//"):
        raise AmbiguousPath("a target starting with '//' reads as an authority to some servers")
    if "#" in raw_path:
        raise AmbiguousPath("the target carries a fragment ('#'), which clients never send")
    if _ENCODED_SEPARATOR.search(raw_path):
        raise AmbiguousPath("the path contains an encoded '/' or '\\' (%2F or %5C)")
    if "\\" in raw_path:
        raise AmbiguousPath("the path contains a backslash, which some servers treat as '/'")
    try:
        path = unquote_to_bytes(raw_path).decode("utf-8")
    except UnicodeDecodeError:
        raise AmbiguousPath("the decoded path is not valid UTF-8") from None
    if "%" in path:
        raise AmbiguousPath("the path is percent-encoded twice (a '%' remains after decoding)")
    if _CONTROL.search(path):
        raise AmbiguousPath("the decoded path contains NUL or a control character")
    # "..;x" is ".." to servers that strip path parameters (Tomcat, Jetty, Spring).
    if any(segment.split(";", 1)[0] in (".", "..") for segment in path.split("/")):
        raise AmbiguousPath("the decoded path contains a '.' or '..' segment")
    _refuse_rereadable(path)
    # The rules see ";" as a separator too, as the backends that split on it do (the
    # override and secret-stripping checks split the same way): a deny on a name
    # cannot be dodged with "?a=1;debug=1". An encoded "%3B" stays part of a value.
    query = _query_pairs(raw_query) if raw_query else ()
    return RequestTarget(raw_path=raw_path, path=path, raw_query=raw_query, query=query)


def _query_pairs(raw_query: str) -> tuple[tuple[str, str], ...]:
    return tuple(parse_qsl(raw_query.replace(";", "&"), keep_blank_values=True))


def _refuse_rereadable(path: str) -> None:
    """Decoded characters some backends read as structure, though we judge them as text."""
    if ";" in path:
        raise AmbiguousPath(
            "the path contains ';' (a path parameter), which Tomcat, Jetty and Spring "
            "strip before routing"
        )
    if "?" in path or "#" in path:
        raise AmbiguousPath(
            "the path contains an encoded '?' or '#' (%3F, %23), which some servers "
            "split at again after decoding"
        )
    if "//" in path:
        raise AmbiguousPath(
            "the path contains an empty segment ('//'), which nginx and Spring merge into '/'"
        )


def split_target(target: str) -> tuple[str, str]:
    """``"/a?b=1"`` -> ``("/a", "b=1")``; a target that is not origin-form is kept
    whole as the path so ``parse_target`` refuses it."""
    path, _, query = target.partition("?")
    return path, query
