"""``response_filter = { mode = "retain"|"destroy", fields = [...] }`` in ``[proxy]``,
``[target]``, ``[proxy_credential]`` and ``[target_credential]``: every field path is
parsed here (``rrdev.core.filters``), so a bad one fails at load with file:line:key."""

from __future__ import annotations

from rrdev.core.filters import FieldPathError, parse_field_path
from rrdev.core.model import ResponseFilter
from rrdev.core.profile.reading import _Table

RESPONSE_FILTER_KEYS = ("mode", "fields")
_EXAMPLE = "e.g. response_filter = { mode = 'destroy', fields = ['token', 'items[].secret'] }"


def _response_filter(t: _Table) -> ResponseFilter | None:
    f = t.child("response_filter", RESPONSE_FILTER_KEYS)
    if f is None:
        return None
    if not f.has("mode"):
        f.fail("mode", "missing required key 'mode' ('retain' or 'destroy')", _EXAMPLE)
    mode = f.choice("mode", ("retain", "destroy"), "destroy")
    fields = f.str_list("fields")
    if not fields:
        f.fail("fields", "must list at least one field path", _EXAMPLE)
    for n, text in enumerate(fields):
        try:
            parse_field_path(text)
        except FieldPathError as exc:
            f.ctx.fail(
                f"{f.at('fields')}[{n}]",
                f"{text!r} is not a field path: {exc}",
                "dotted names, '[]' for every element of an array: 'user.email', 'items[].secret'",
            )
    return ResponseFilter(mode, fields)  # type: ignore[arg-type]
