"""The traffic filter of the TUI (``/``): parse a query once, then match records.

Pure: no Textual here, so the grammar is tested table-driven. A query is terms
separated by spaces; every term must hold (AND)::

    status:403        status:4xx     status:401,403    (x is any digit; commas: any of)
    method:DELETE     (exact, any case)
    rule:scope-gate-delete   (exact rule name, any case: a rule that decided, in any
                      scope, or that matched, as the explanation's trace shows it)
    alias:orders      (exact, any case: the profile that answered, with several)
    reason:expired    path:users    sub:reader    (contains, any case)
    admin             (free text: method, path, query, status, reason, rule, subject,
                       message)
    -status:200       !method:GET    (a leading - or ! negates a term)
    path:"/a b"       (quotes keep spaces)

A misspelt field name (``stauts:403``) or a bad status (``status:4z3``) is a
``FilterError`` naming it, never a filter that silently matches nothing.
"""

from __future__ import annotations

import difflib
import re
import shlex
from dataclasses import dataclass
from typing import Literal

from rrdev.core.records import RequestRecord

__all__ = ["FIELDS", "FilterError", "RecordFilter", "Term", "parse_filter"]

Field = Literal["status", "method", "reason", "rule", "alias", "path", "sub", "text"]
#: The field names a term may use, with their aliases.
FIELDS: dict[str, Field] = {
    "status": "status",
    "code": "status",
    "method": "method",
    "reason": "reason",
    "rule": "rule",
    "alias": "alias",
    "path": "path",
    "sub": "sub",
    "subject": "sub",
}
_STATUS = re.compile(r"^[1-5xX][0-9xX]{2}$")
_FIELD_LIKE = re.compile(r"^[A-Za-z_]+$")


class FilterError(ValueError):
    """A query that cannot be understood; the message says which term and why."""


@dataclass(frozen=True)
class Term:
    """One condition: ``values`` are alternatives (any may match), lower-cased except
    for status patterns; ``negate`` flips the outcome."""

    field: Field
    values: tuple[str, ...]
    negate: bool = False

    def matches(self, record: RequestRecord) -> bool:
        return self._holds(record) != self.negate

    def _holds(self, record: RequestRecord) -> bool:
        if self.field == "status":
            status = str(record.status)
            return any(_status_matches(pattern, status) for pattern in self.values)
        if self.field == "method":
            return record.method.lower() in self.values
        if self.field == "alias":
            return (record.alias or "").lower() in self.values
        if self.field == "rule":
            return not _rule_names(record).isdisjoint(self.values)
        seen = _field_text(record, self.field).lower()
        return any(value in seen for value in self.values)


@dataclass(frozen=True)
class RecordFilter:
    """A parsed query: every term must hold. The empty filter matches everything."""

    text: str = ""
    terms: tuple[Term, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.terms

    def matches(self, record: RequestRecord) -> bool:
        return all(term.matches(record) for term in self.terms)


def parse_filter(text: str) -> RecordFilter:
    """``text`` as a ``RecordFilter``; raises ``FilterError`` for a term it cannot use."""
    try:
        words = shlex.split(text)
    except ValueError as exc:  # an unbalanced quote
        raise FilterError(f"{exc}: close the quote") from None
    return RecordFilter(text.strip(), tuple(_term(word) for word in words if word))


def _term(word: str) -> Term:
    negate = word[0] in "-!" and len(word) > 1
    body = word[1:] if negate else word
    name, colon, value = body.partition(":")
    if not colon or not _FIELD_LIKE.match(name):
        return Term("text", (body.lower(),), negate)
    field = FIELDS.get(name.lower())
    if field is None:
        raise FilterError(_unknown_field(name))
    values = tuple(v for v in value.split(",") if v)
    if not values:
        raise FilterError(f"{name}: needs a value, e.g. {name}:{_EXAMPLES[field]}")
    if field == "status":
        bad = [v for v in values if not _STATUS.match(v)]
        if bad:
            raise FilterError(f"status:{bad[0]} is not a status: use e.g. 403, 4xx or 40x")
        return Term(field, tuple(v.lower() for v in values), negate)
    return Term(field, tuple(v.lower() for v in values), negate)


_EXAMPLES: dict[Field, str] = {
    "status": "403",
    "method": "DELETE",
    "reason": "token_expired",
    "rule": "scope-gate-delete",
    "alias": "orders",
    "path": "users",
    "sub": "reader",
    "text": "",
}


def _unknown_field(name: str) -> str:
    message = f"unknown field '{name}:'"
    close = difflib.get_close_matches(name.lower(), list(FIELDS), n=1)
    if close:
        message += f" (did you mean '{close[0]}:'?)"
    names = ("status", "method", "reason", "rule", "alias", "path", "sub")
    fields = ", ".join(f"{f}:" for f in names)
    return f"{message}; fields: {fields}"


def _status_matches(pattern: str, status: str) -> bool:
    return len(status) == 3 and all(p in ("x", s) for p, s in zip(pattern, status, strict=True))


def _rule_names(record: RequestRecord) -> set[str]:
    """Lower-cased names of the rules a ``rule:`` term may name: every deciding rule
    (``default`` too, when a scope's default decided) and every rule that matched, in
    any scope, as the explanation's trace lists them."""
    names = {record.deciding_rule.lower()} if record.deciding_rule else set()
    decision = record.explanation.decision
    if decision is None:
        return names
    names.update(name.lower() for _scope, name in decision.deciding)
    for scope in decision.scopes:
        names.update(rule.name.lower() for rule in scope.rules if rule.matched)
    return names


def _field_text(record: RequestRecord, field: Field) -> str:
    if field == "reason":
        return record.reason
    if field == "path":
        return record.path
    if field == "sub":
        return record.subject or ""
    return _haystack(record)


def _haystack(record: RequestRecord) -> str:
    query = "&".join(f"{k}={v}" for k, v in record.query)
    parts = (
        record.method,
        record.path,
        query,
        str(record.status),
        record.reason,
        record.deciding_rule or "",
        record.subject or "",
        record.explanation.message,
    )
    return " ".join(parts)
