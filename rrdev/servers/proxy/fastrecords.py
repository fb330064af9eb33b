"""Records of fast-lane requests: the full path's record once, then copies of it.

A request the fast lane plans (``fastlane.py``) is allowed, has no body and no query.
Everything its record says that is not about this one exchange (the explanation with
its rule trace, the redacted request headers, the subject, the deciding rule) follows
from the profile in force, the method, the path, the caller's header bytes and the
token's verification. So with a record sink (the TUI, ``rrdev up``'s console or log
file) the first such request takes the full path, and its record is kept as a
template, keyed by exactly those inputs, per loaded profile (the lane is). The same
request again takes the fast lane, and its record is the template with this
exchange's own fields: time, status, timings, size and the (redacted) response. The
explanation is only ever made by ``decide``; a property test holds the copies to the
records the full path makes.

A template is learnt only from a plain exchange: allowed and forwarded, nothing in
``notes`` (a missing claim for an additional header, a caller that went away), no
request body. Anything else keeps taking the full path.
"""

from __future__ import annotations

import itertools
import time
from typing import TYPE_CHECKING, Any

from rrdev.core.records import RequestRecord, record_copy
from rrdev.servers.proxy.records import _caller_secrets, _preview_text
from rrdev.servers.proxy.request import _header_value

if TYPE_CHECKING:
    from rrdev.core.records import Verification
    from rrdev.core.redact import Redactor
    from rrdev.servers.asgi import Scope
    from rrdev.servers.proxy.records import _Progress
    from rrdev.servers.proxy.state import _State

__all__ = ["FastRecords", "Template", "template_key"]

#: Templates kept per loaded profile (then it starts over).
TEMPLATE_ENTRIES = 1024
#: The record's fields that a template fixes (the rest are this exchange's own).
_FIXED = (
    "method",
    "path",
    "query",
    "reason",
    "deciding_rule",
    "explanation",
    "subject",
    "expires_at",
    "preflight",
    "notes",
    "request_headers",
    "alias",
    "request_body",
    "request_body_truncated",
    "bytes_in",
)

TemplateKey = tuple[str, bytes, tuple[tuple[bytes, bytes], ...]]
#: Template ids: unique in this process, so a receiver can hold templates by id.
_IDS = itertools.count(1)


def template_key(scope: Scope) -> TemplateKey:
    """What a fast-lane request's record depends on beyond the profile and the token's
    verification: its method, raw path and every header as received."""
    return (scope["method"], scope["raw_path"], tuple(scope["headers"]))


class Template:
    """One learnt record's fixed fields, and how to redact this caller's responses."""

    __slots__ = (
        "_headers_in",
        "_headers_out",
        "_preview_in",
        "_preview_out",
        "exchange",
        "fixed",
        "id",
        "redactor",
        "verification",
    )

    def __init__(
        self,
        record: RequestRecord,
        verification: Verification | None,
        exchange: bool,
        redactor: Redactor | None,
    ) -> None:
        state = record.__dict__
        self.fixed = {name: state[name] for name in _FIXED}
        self.id = next(_IDS)
        self.verification = verification
        self.exchange = exchange
        self.redactor = redactor
        # The last response's headers and preview, redacted: one backend answers the
        # same request alike (a Date header changes once a second).
        self._headers_in: tuple[tuple[bytes, bytes], ...] | None = None
        self._headers_out: tuple[tuple[str, str], ...] = ()
        self._preview_in: tuple[bytes, bool] | None = None
        self._preview_out: str | None = None

    def record(self, progress: _Progress) -> RequestRecord:
        """This exchange's record: the template's fields and ``progress``'s."""
        return record_copy(self.fixed, self.copy_fields(progress))

    def copy_fields(self, progress: _Progress) -> tuple[Any, ...]:
        """This exchange's own fields (``rrdev.core.records.COPY_FIELDS``)."""
        upstream_ms = progress.upstream_ms
        headers, preview, truncated = self._response(progress) if self.exchange else _NO_RESPONSE
        return (
            progress.started,
            progress.upstream_status,
            round(progress.rules_ms, 3),
            None if upstream_ms is None else round(upstream_ms, 3),
            round((time.perf_counter() - progress.t0) * 1000, 3),
            progress.bytes_out,
            headers,
            preview,
            truncated,
        )

    def _response(self, progress: _Progress) -> tuple[Any, str | None, bool]:
        raw = tuple(progress.response_headers or ())
        if raw != self._headers_in:
            assert self.redactor is not None
            pairs = [(k.decode("latin-1"), _header_value(v)) for k, v in raw]
            self._headers_in, self._headers_out = raw, self.redactor.headers_list(pairs)
        preview, truncated = progress.preview, False
        text = None
        if preview is not None:
            truncated = progress.bytes_out > len(preview)
            seen = (bytes(preview), truncated)
            if seen != self._preview_in:
                assert self.redactor is not None
                self._preview_in = seen
                self._preview_out = _preview_text(seen[0], truncated, self.redactor)
            text = self._preview_out
        return self._headers_out, text, truncated


#: A record without the exchange: no response headers, no preview.
_NO_RESPONSE: tuple[Any, str | None, bool] = ((), None, False)


class FastRecords:
    """One loaded profile's templates, by ``template_key``."""

    def __init__(self, limit: int = TEMPLATE_ENTRIES) -> None:
        self.limit = limit
        self._templates: dict[TemplateKey, Template] = {}

    def find(
        self, key: TemplateKey, verification: Verification | None, exchange: bool
    ) -> Template | None:
        """The template for this request, when one was learnt for the same token
        verification (the verifier's cache hands out one object per token) and the
        same ``record_exchange``."""
        found = self._templates.get(key)
        if found is None or found.verification is not verification or found.exchange != exchange:
            return None
        return found

    def learn(
        self,
        key: TemplateKey,
        verification: Verification | None,
        record: RequestRecord,
        progress: _Progress,
        state: _State,
    ) -> None:
        """Keep ``record`` (the full path's) as the template of ``key`` when it is a
        plain exchange."""
        if not _plain_exchange(record, progress):
            return
        redactor = None
        if progress.exchange:
            redactor = state.redactor.with_values(_caller_secrets(state.redactor, progress, ""))
        if len(self._templates) >= self.limit:
            self._templates.clear()
        self._templates[key] = Template(record, verification, progress.exchange, redactor)


def _plain_exchange(record: RequestRecord, progress: _Progress) -> bool:
    return (
        record.reason == "allowed"
        and record.upstream_status is not None
        and record.status == record.upstream_status
        and not record.notes
        and not record.query
        and not record.preflight
        and record.alias is None
        and record.request_body is None
        and progress.bytes_in == 0
        and not progress.client_gone
    )
