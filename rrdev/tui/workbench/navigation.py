"""Moving through traffic (``n``/``N``, ``o``) and typing filters (history, completion).

Pure: no Textual. The app keeps what the table shows as ``(seq, record)`` items;
these functions say where the next refusal is, how to order the rows by a column,
which query ↑/↓ recall, and what a half-typed filter term completes to.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from rrdev.core.records import RequestRecord
from rrdev.tui.filters import FIELDS

__all__ = [
    "SORT_KEYS",
    "FilterHistory",
    "complete_filter",
    "is_refusal",
    "next_refusal",
    "next_sort_key",
    "sort_items",
]

Item = tuple[int, RequestRecord]

#: The columns ``o`` cycles through ("time" is arrival order, the default).
SORT_KEYS: tuple[str, ...] = (
    "time",
    "method",
    "path",
    "status",
    "reason",
    "rule",
    "latency",
    "subject",
)


def is_refusal(record: RequestRecord) -> bool:
    """A request rrdev itself refused (401, 403, 400, ...), not a backend's answer."""
    return record.reason != "allowed"


def next_refusal(
    items: Sequence[Item], current: int | None, *, backwards: bool = False
) -> int | None:
    """The ``seq`` of the next refusal after the row with ``seq == current`` (in the
    order shown), wrapping around; ``None`` when nothing shown is a refusal."""
    seqs = [seq for seq, _record in items]
    start = seqs.index(current) if current in seqs else (len(seqs) if backwards else -1)
    count = len(items)
    step = -1 if backwards else 1
    for offset in range(1, count + 1):
        seq, record = items[(start + step * offset) % count]
        if is_refusal(record):
            return seq
    return None


def next_sort_key(key: str) -> str:
    """The column after ``key`` in ``SORT_KEYS`` (wrapping round to "time")."""
    index = SORT_KEYS.index(key) if key in SORT_KEYS else -1
    return SORT_KEYS[(index + 1) % len(SORT_KEYS)]


def sort_items(items: Iterable[Item], key: str) -> list[Item]:
    """``items`` ordered by column ``key`` (ties and "time": arrival order)."""
    if key == "time" or key not in SORT_KEYS:
        return sorted(items, key=lambda item: item[0])
    return sorted(items, key=lambda item: (_sort_value(item[1], key), item[0]))


def _sort_value(record: RequestRecord, key: str) -> Any:
    if key == "status":
        return record.status
    if key == "latency":
        return record.total_ms
    text = {
        "method": record.method,
        "path": record.path,
        "reason": record.reason,
        "rule": record.deciding_rule or "",
        "subject": record.subject or "",
    }[key]
    return text.lower()


# ------------------------------------------------------------------ history


@dataclass
class FilterHistory:
    """The queries applied with Enter, newest last; ↑/↓ walk them like a shell's."""

    limit: int = 50
    entries: list[str] = field(default_factory=list)
    _cursor: int | None = None

    def add(self, query: str) -> None:
        query = query.strip()
        self._cursor = None
        if not query:
            return
        if query in self.entries:
            self.entries.remove(query)
        self.entries.append(query)
        del self.entries[: -self.limit]

    def previous(self, current: str) -> str | None:
        """The query before the one shown (the newest, first; skipping ``current``)."""
        index = len(self.entries) if self._cursor is None else self._cursor
        while index > 0:
            index -= 1
            if self.entries[index] != current.strip():
                self._cursor = index
                return self.entries[index]
        return None

    def next(self) -> str | None:
        """The query after the one shown; "" past the newest (back to an empty bar)."""
        if self._cursor is None:
            return None
        self._cursor += 1
        if self._cursor >= len(self.entries):
            self._cursor = None
            return ""
        return self.entries[self._cursor]


# --------------------------------------------------------------- completion

_FIELD_NAMES = ("status", "method", "reason", "rule", "alias", "path", "sub")
_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def complete_filter(
    value: str,
    *,
    rules: Iterable[str] = (),
    reasons: Iterable[str] = (),
    aliases: Iterable[str] = (),
) -> str | None:
    """``value`` with its last term completed: a field name (``sta`` -> ``status:``),
    a rule name after ``rule:``, a reason code after ``reason:``, a method after
    ``method:``, a served alias after ``alias:``. ``None`` when there is nothing (or
    nothing more) to add."""
    head, _, word = value.rpartition(" ")
    prefix = head + " " if head else ""
    sign = word[:1] if word[:1] in "-!" else ""
    body = word[len(sign) :]
    name, colon, typed = body.partition(":")
    if not colon:
        choices = [f"{f}:" for f in _FIELD_NAMES]
        return _complete(prefix + sign, body, choices)
    field_name = FIELDS.get(name.lower())
    choices = {
        "rule": list(rules),
        "reason": list(reasons),
        "method": list(_METHODS),
        "alias": list(aliases),
    }.get(field_name or "", [])
    last = typed.rpartition(",")
    return _complete(f"{prefix}{sign}{name}:{last[0]}{last[1]}", last[2], sorted(choices))


def _complete(before: str, typed: str, choices: Sequence[str]) -> str | None:
    if not typed:
        return None
    for choice in choices:
        if choice.lower().startswith(typed.lower()) and len(choice) > len(typed):
            return before + typed + choice[len(typed) :]
    return None
