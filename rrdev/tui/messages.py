"""The TUI's messages: small past-tense facts travelling up to whoever handles them."""

from __future__ import annotations

from dataclasses import dataclass

from textual.message import Message

from rrdev.core.records import RequestRecord
from rrdev.tui.filters import RecordFilter
from rrdev.tui.runtime import RuntimeInfo

__all__ = [
    "DemoTrafficSent",
    "EngineEventReported",
    "FilterApplied",
    "FilterCleared",
    "FilterRejected",
    "ProxyFailed",
    "ProxyStarted",
    "RequestChosen",
    "RequestHighlighted",
    "RequestLogged",
]


@dataclass
class RequestLogged(Message):
    """A finished request, one at a time (the proxy's own records come in batches
    through ``RrdevApp.inbox`` instead; this is for whoever has a single one)."""

    record: RequestRecord


@dataclass
class EngineEventReported(Message):
    """The engine reported something: ``kind`` is "reloaded", "reload_failed",
    "record_failed", or an issuer notice in the demo ("keyset_reloaded", ...)."""

    kind: str
    message: str


@dataclass
class ProxyStarted(Message):
    """The proxy listens."""

    info: RuntimeInfo


@dataclass
class ProxyFailed(Message):
    """The proxy could not start (a port in use, a keyset it cannot read, ...)."""

    message: str
    hint: str
    exit_code: int


@dataclass
class RequestChosen(Message):
    """The user asked to look at one request (Enter on a row)."""

    record: RequestRecord
    seq: int


@dataclass
class RequestHighlighted(Message):
    """The cursor rests on another request (``None``: the table is empty)."""

    record: RequestRecord | None
    seq: int = 0


@dataclass
class FilterApplied(Message):
    """The filter bar holds a query that parses (possibly empty: show everything)."""

    filter: RecordFilter


@dataclass
class FilterRejected(Message):
    """The filter bar holds a query that does not parse: show no rows (not the last
    good filter's, which would look like this query's)."""

    text: str
    error: str


@dataclass
class FilterCleared(Message):
    """The user dismissed the filter (Esc): show everything again."""


@dataclass
class DemoTrafficSent(Message):
    """The demo's requests went out; ``failures`` are the ones that got no answer."""

    count: int
    failures: tuple[str, ...] = ()
