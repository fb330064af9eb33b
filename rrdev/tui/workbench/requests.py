"""Requests the workbench sends: composed, replayed from a record, or edited from one.

Pure (no Textual, no I/O). A ``WorkbenchRequest`` is what the compose form holds and
what ``Runtime.send`` sends through the proxy; ``from_record`` rebuilds one from a
``RequestRecord`` ("as it was": method, raw path, query, headers, kept body), leaving
out what must not be copied (the old token, headers rrdev or the client sets, values
the record only holds redacted). ``with_token`` puts the current token in.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from urllib.parse import urlencode

from rrdev.core.records import RequestRecord
from rrdev.core.redact import REDACTED

__all__ = [
    "MARK_HEADER",
    "WorkbenchRequest",
    "format_headers",
    "from_record",
    "parse_headers",
]

#: Names each request the workbench sends, so the TUI can tell its row from others'
#: (and link a replay to its original). Forwarded like any header; never copied.
MARK_HEADER = "x-rrdev-workbench"
#: Headers a replay does not copy: the token (the current one goes in), framing and
#: connection headers the client sets again, and the workbench's own mark.
_NOT_COPIED = frozenset(
    {
        "authorization",
        "host",
        "content-length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "upgrade",
        MARK_HEADER,
    }
)


@dataclass(frozen=True)
class WorkbenchRequest:
    """One request to send: ``path`` raw (as on the wire), ``query`` without ``?``.
    ``alias``: which profile it goes to when several are served (the one that answered
    the record it was rebuilt from; None: the first profile)."""

    method: str = "GET"
    path: str = "/"
    query: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: str = ""
    alias: str | None = None

    @property
    def target(self) -> str:
        return f"{self.path}?{self.query}" if self.query else self.path

    def with_token(self, token: str | None) -> WorkbenchRequest:
        """The request with ``Authorization: Bearer <token>`` (none: without one)."""
        kept = tuple((k, v) for k, v in self.headers if k.lower() != "authorization")
        if token:
            kept += (("Authorization", f"Bearer {token}"),)
        return replace(self, headers=kept)

    def marked(self, mark: int) -> WorkbenchRequest:
        """The request carrying ``MARK_HEADER: mark``."""
        kept = tuple((k, v) for k, v in self.headers if k.lower() != MARK_HEADER)
        return replace(self, headers=(*kept, (MARK_HEADER, str(mark))))


def from_record(record: RequestRecord, body: str | None = None) -> WorkbenchRequest:
    """``record``'s request as it was, without its token. Header values the record
    holds redacted are left out (the real values were never kept); so is a query
    parameter whose value was redacted. ``body`` (the workbench's own copy of what it
    sent) wins over the record's kept body."""
    query = [(k, v) for k, v in record.query if v != REDACTED]
    headers = tuple(
        (k, v) for k, v in record.request_headers if k not in _NOT_COPIED and v != REDACTED
    )
    if body is None:
        body = record.request_body or ""
    return WorkbenchRequest(
        method=record.method,
        path=record.path,
        query=urlencode(query) if query else "",
        headers=headers,
        body=body,
        alias=record.alias,
    )


def parse_headers(text: str) -> tuple[tuple[str, str], ...]:
    """``Name: value`` lines (blank lines skipped); raises ValueError naming the line."""
    pairs = []
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        name, sep, value = line.partition(":")
        if not sep or not name.strip() or any(c.isspace() for c in name.strip()):
            raise ValueError(f"header line {number} is not 'Name: value': {line[:60]!r}")
        pairs.append((name.strip(), value.strip()))
    return tuple(pairs)


def format_headers(headers: tuple[tuple[str, str], ...]) -> str:
    """Headers as the compose form shows them (the token left out: it is added at
    send time)."""
    return "\n".join(f"{k}: {v}" for k, v in headers if k.lower() != "authorization")
