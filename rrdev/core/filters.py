"""Response payload filters: retain or destroy JSON fields (docs/profiles.md).

Pure: the proxy hands a buffered 2xx body here and gets back the filtered body, or a
refusal to send instead. Filters run in the gateway's order (target credential,
target, proxy credential, proxy), each on what the previous one left, so a field an
earlier filter destroyed can never come back.

Field paths: dotted names, ``[]`` for every element of an array: ``id``, ``user.email``,
``items[].secret``, ``[].id`` (a top-level array). A name cannot contain ``.``, ``[`` or
``]``.

- ``destroy`` removes each path's field wherever the path reaches it; a path that
  reaches nothing changes nothing. ``items[]`` empties the array.
- ``retain`` keeps only what the paths name. An object on a path keeps only the keys
  named at that level: ``user.email`` keeps ``user`` with ``email`` alone; ``user``
  keeps the whole of ``user``. ``items[].id`` keeps ``items`` with every element
  reduced to its ``id``. A value whose shape does not fit the path (an array where the
  path names a field, a scalar where it goes deeper) is removed, as an element of an
  array or a key of an object; a whole body that does not fit becomes ``{}`` (``[]``
  when the paths start with ``[]``).

Only field paths are ever reported (``FilterOutcome.removed``), with array indices
folded into ``[]``; never a value.
"""

from __future__ import annotations

import json
import re
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Any

from rrdev.core.model import Profile, ResponseFilter
from rrdev.core.records import Explanation

#: The largest body (before and after decompression) a filtered response may have.
MAX_FILTERED_BYTES = 10 * 1024 * 1024
#: At most this many removed paths are listed per filter (the rest are counted).
MAX_LISTED_PATHS = 50
#: Stands for ``[]`` in a parsed path: every element of an array.
EACH = None

_PART = re.compile(r"([^.\[\]]*)((?:\[\])*)")
_JSON_TYPE = re.compile(r"^application/(?:[\w.+-]+\+)?json$", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class FieldPathError(ValueError):
    """A field path that cannot be parsed; the message says why."""


@dataclass(frozen=True)
class FieldPath:
    """A parsed field path: each segment a key name, or ``EACH`` for ``[]``."""

    text: str
    segments: tuple[str | None, ...]


def parse_field_path(text: str) -> FieldPath:
    """``items[].secret`` -> ('items', EACH, 'secret'); ``FieldPathError`` if malformed."""
    if not text or text != text.strip() or _CONTROL.search(text):
        raise FieldPathError("a field path is a non-empty name with no surrounding spaces")
    segments: list[str | None] = []
    for n, part in enumerate(text.split(".")):
        match = _PART.fullmatch(part)
        if match is None:
            raise FieldPathError(f"{part!r}: '[' and ']' only as '[]' after a name")
        name, brackets = match.groups()
        if not name and (n > 0 or not brackets):
            raise FieldPathError("empty name between dots (write 'a.b', 'items[].id')")
        if name:
            segments.append(name)
        segments.extend([EACH] * (len(brackets) // 2))
    return FieldPath(text, tuple(segments))


# ------------------------------------------------------------------ outcomes


@dataclass(frozen=True)
class FilterOutcome:
    """What one scope's filter removed: field paths (``[]`` for array indices), at most
    ``MAX_LISTED_PATHS`` of them; ``more`` counts the rest."""

    scope: str
    mode: str
    removed: tuple[str, ...]
    more: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {"scope": self.scope, "mode": self.mode, "removed": list(self.removed)} | (
            {"more": self.more} if self.more else {}
        )

    def describe(self) -> str:
        """One line for notes and the TUI: 'response filter target (destroy) removed: a'."""
        what = ", ".join(self.removed) or "nothing"
        if self.more:
            what += f" and {self.more} more"
        return f"response filter {self.scope} ({self.mode}) removed: {what}"


class _Removed:
    """Collects removed paths in order of first removal, deduplicated."""

    def __init__(self) -> None:
        self.paths: dict[str, None] = {}

    def add(self, path: str) -> None:
        self.paths[path] = None

    def outcome(self, scope: str, mode: str) -> FilterOutcome:
        listed = tuple(self.paths)[:MAX_LISTED_PATHS]
        return FilterOutcome(scope, mode, listed, max(0, len(self.paths) - len(listed)))


def _child(prefix: str, key: str | None) -> str:
    if key is EACH:
        return prefix + "[]"
    shown = key if len(key) <= 80 else key[:77] + "..."
    return f"{prefix}.{shown}" if prefix else shown


# ------------------------------------------------------------------ destroy


def _destroy(value: Any, segments: tuple[str | None, ...], prefix: str, removed: _Removed) -> None:
    head, rest = segments[0], segments[1:]
    if head is EACH:
        if not isinstance(value, list):
            return
        if not rest:
            if value:
                value.clear()
                removed.add(_child(prefix, EACH))
            return
        for item in value:
            _destroy(item, rest, _child(prefix, EACH), removed)
    elif isinstance(value, dict) and head in value:
        if rest:
            _destroy(value[head], rest, _child(prefix, head), removed)
        else:
            del value[head]
            removed.add(_child(prefix, head))


# ------------------------------------------------------------------ retain

#: In a retain tree: keep this value whole.
_WHOLE: dict[Any, Any] = {}


def _retain_tree(paths: Iterable[FieldPath]) -> dict[Any, Any]:
    """Paths -> nested dicts keyed by segment; ``_WHOLE`` marks "keep all below"."""
    tree: dict[Any, Any] = {}
    for path in paths:
        level = tree
        for n, segment in enumerate(path.segments):
            last = n == len(path.segments) - 1
            current = level.get(segment)
            if current is _WHOLE:
                break  # a shorter path already keeps all of it
            if last:
                level[segment] = _WHOLE
            else:
                level = level.setdefault(segment, {})
    return tree


def _fits(value: Any, tree: dict[Any, Any]) -> bool:
    if isinstance(value, list):
        return EACH in tree
    return isinstance(value, dict) and any(k is not EACH for k in tree)


def _retain(value: Any, tree: dict[Any, Any], prefix: str, removed: _Removed) -> Any:
    """``value`` (which ``_fits`` ``tree``) reduced to what the tree names."""
    if isinstance(value, list):
        sub = tree[EACH]
        here = _child(prefix, EACH)
        if sub is _WHOLE:
            return value
        kept = []
        for item in value:
            if _fits(item, sub):
                kept.append(_retain(item, sub, here, removed))
            else:
                removed.add(here)
        return kept
    out = {}
    for key, item in value.items():
        sub = tree.get(key)
        here = _child(prefix, key)
        if sub is _WHOLE:
            out[key] = item
        elif sub is not None and _fits(item, sub):
            out[key] = _retain(item, sub, here, removed)
        else:
            removed.add(here)
    return out


# ------------------------------------------------------------------ compiled filters


@dataclass(frozen=True)
class CompiledFilter:
    """One scope's filter, its paths parsed (and, for retain, merged into a tree)."""

    scope: str
    mode: str
    paths: tuple[FieldPath, ...]

    def apply(self, document: Any) -> tuple[Any, FilterOutcome]:
        """The document after this filter (destroy works in place) and what it removed."""
        removed = _Removed()
        if self.mode == "destroy":
            for path in self.paths:
                _destroy(document, path.segments, "", removed)
        else:
            tree = _retain_tree(self.paths)
            if _fits(document, tree):
                document = _retain(document, tree, "", removed)
            else:
                removed.add("(the whole body: it does not have the fields' shape)")
                document = [] if EACH in tree and not any(k is not EACH for k in tree) else {}
        return document, removed.outcome(self.scope, self.mode)


def compile_filter(scope: str, spec: ResponseFilter) -> CompiledFilter:
    return CompiledFilter(scope, spec.mode, tuple(parse_field_path(f) for f in spec.fields))


@dataclass(frozen=True)
class ResponseFilters:
    """Every configured filter of a profile, in the gateway's order."""

    filters: tuple[CompiledFilter, ...]

    def apply(self, document: Any) -> tuple[Any, tuple[FilterOutcome, ...]]:
        outcomes = []
        for one in self.filters:
            document, outcome = one.apply(document)
            outcomes.append(outcome)
        return document, tuple(outcomes)

    def describe(self) -> tuple[str, ...]:
        """'target_credential: destroy items[].secret, token' lines, for dry runs."""
        return tuple(
            f"{f.scope}: {f.mode} {', '.join(p.text for p in f.paths)}" for f in self.filters
        )


def response_filters(profile: Profile) -> ResponseFilters | None:
    """The profile's filters, or None when none is configured (the proxy then streams)."""
    configured = profile.response_filters()
    if not configured:
        return None
    return ResponseFilters(tuple(compile_filter(s, f) for s, f in configured))


def planned_filters(profile: Profile) -> list[dict[str, Any]]:
    """What a dry run (``explain``, ``check``) says about the response filters: each
    configured one, in order, as what "would apply to the response"."""
    return [
        {"scope": scope, "mode": f.mode, "fields": list(f.fields), "would_apply": True}
        for scope, f in profile.response_filters()
    ]


def with_planned_filters(profile: Profile, expl: Explanation) -> Explanation:
    """An allowed dry-run answer, with the filters that would apply to a 2xx JSON
    response (``extra["response_filters"]``; in ``to_dict`` too)."""
    if not expl.allowed or not profile.response_filters():
        return expl
    return replace(expl, extra={**expl.extra, "response_filters": planned_filters(profile)})


# ------------------------------------------------------------------ bodies


@dataclass(frozen=True)
class FilterRefusal:
    """Why a 2xx response with filters configured is not sent: status, reason, words."""

    status: int
    reason: str
    message: str
    hint: str


@dataclass(frozen=True)
class FilteredBody:
    body: bytes
    outcomes: tuple[FilterOutcome, ...]


def too_large(limit: int = MAX_FILTERED_BYTES) -> FilterRefusal:
    return FilterRefusal(
        502,
        "response_too_large",
        f"the backend's response is over {limit // (1024 * 1024)} MiB, the most rrdev "
        "buffers to apply response filters",
        "page the response, or remove the response_filter if the endpoint returns bulk data",
    )


def is_json_type(content_type: str | None) -> bool:
    """``application/json`` or any ``application/*+json``, parameters ignored."""
    if not content_type:
        return False
    return bool(_JSON_TYPE.match(content_type.split(";", 1)[0].strip()))


def _not_json(why: str) -> FilterRefusal:
    return FilterRefusal(
        422,
        "response_not_json",
        f"response filters are configured but the backend's 2xx response {why}",
        "filters apply to JSON bodies only: have the backend answer application/json, or "
        "remove the response_filter from the profile",
    )


def decode_body(
    body: bytes, content_encoding: str | None, limit: int = MAX_FILTERED_BYTES
) -> bytes | FilterRefusal:
    """The body without its content coding: identity, gzip or deflate (bounded by
    ``limit`` after decompression); other codings are refused (502)."""
    coding = (content_encoding or "identity").strip().lower()
    if coding in ("", "identity"):
        return body
    if coding not in ("gzip", "x-gzip", "deflate"):
        return FilterRefusal(
            502,
            "response_encoding_unsupported",
            f"the backend's response is {coding[:40]!r}-encoded; response filters need "
            "identity, gzip or deflate",
            "have the backend answer without that Content-Encoding",
        )
    wbits = 31 if coding != "deflate" else (15 if body[:1] == b"\x78" else -15)
    try:
        inflater = zlib.decompressobj(wbits)
        out = inflater.decompress(body, limit + 1)
        if len(out) > limit or inflater.unconsumed_tail:
            return too_large(limit)
        out += inflater.flush()
    except zlib.error:
        return _not_json(f"is not valid {coding} data")
    return out if len(out) <= limit else too_large(limit)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def filter_body(
    filters: ResponseFilters, body: bytes, content_type: str | None
) -> FilteredBody | FilterRefusal:
    """Parse ``body`` (already decoded), apply ``filters``, serialise compactly as
    UTF-8. Not JSON by its type, or not parseable (NaN and Infinity included), is 422
    ``response_not_json``."""
    if not is_json_type(content_type):
        shown = (content_type or "none")[:60]
        return _not_json(f"is not JSON (Content-Type: {shown})")
    try:
        document = json.loads(body, parse_constant=_refuse_constant)
    except (ValueError, RecursionError):
        return _not_json("does not parse as JSON")
    document, outcomes = filters.apply(document)
    out = json.dumps(document, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return FilteredBody(out, outcomes)
