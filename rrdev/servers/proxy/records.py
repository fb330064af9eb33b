"""Building the one ``RequestRecord`` per request, redacted, from its ``_Progress``.

With ``record_exchange`` the record also carries the request and response headers and a
JSON preview of the response body; secret-named headers, query parameters, token claims
and JSON fields are blanked, and the caller's own secret values scrubbed wherever a
backend echoes them (DESIGN.md §2.7).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import replace
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode

from rrdev.core.hygiene import param_key as _param_key
from rrdev.core.records import PREVIEW_BYTES, Explanation, RequestRecord, Verification
from rrdev.core.redact import REDACTED, Redactor
from rrdev.servers.proxy.answers import _error_payload
from rrdev.servers.proxy.request import _header_value
from rrdev.servers.proxy.state import _State
from rrdev.servers.proxy.verifiers import _TimedVerifier


class _Progress:
    """Timings and counters of one request, filled in as it goes."""

    __slots__ = (
        "auth_ms",
        "bytes_in",
        "bytes_out",
        "client_gone",
        "exchange",
        "method",
        "notes",
        "preview",
        "request_body",
        "request_headers",
        "response_headers",
        "rules_ms",
        "started",
        "t0",
        "template",
        "upstream_ms",
        "upstream_status",
    )

    def __init__(self, started: float, t0: float, method: str) -> None:
        self.started = started
        self.t0 = t0
        self.method = method
        self.auth_ms = 0.0
        self.rules_ms = 0.0
        self.upstream_ms: float | None = None
        self.upstream_status: int | None = None
        self.bytes_in = 0
        self.bytes_out = 0
        self.client_gone = False
        self.notes: list[str] = []
        # Only with ProxyApp.record_exchange: what the record's exchange fields show.
        self.exchange = False
        self.request_headers: list[tuple[str, str]] = []
        self.response_headers: list[tuple[bytes, bytes]] | None = None
        self.preview: bytearray | None = None
        self.request_body: bytearray | None = None
        # A fast-lane request sent down the full path to learn its record's template
        # (``fastrecords.py``): its key and the token's verification.
        self.template: tuple[Any, Any] | None = None

    def decided(self, timed: _TimedVerifier | None) -> None:
        elapsed = (time.perf_counter() - self.t0) * 1000
        self.auth_ms = timed.seconds * 1000 if timed is not None else 0.0
        self.rules_ms = max(elapsed - self.auth_ms, 0.0)


# ------------------------------------------------------------------ records


def _make_record(
    progress: _Progress,
    state: _State,
    raw_path: str,
    raw_query: str,
    expl: Explanation,
    bytes_out: int | None,
) -> RequestRecord:
    redactor = state.redactor
    query = _record_query(redactor, raw_query) if raw_query else ()
    request = expl.request
    if request is not None and expl.reason != "ambiguous_path" and request.query != query:
        expl = replace(expl, request=replace(request, query=query))
    ver = expl.verification
    record = RequestRecord(
        time=progress.started,
        method=progress.method,
        path=raw_path,
        query=query,
        status=expl.status if progress.upstream_status is None else progress.upstream_status,
        reason=expl.reason,
        deciding_rule=expl.deciding_rule,
        explanation=_redacted(expl, state),
        auth_ms=round(progress.auth_ms, 3),
        rules_ms=round(progress.rules_ms, 3),
        upstream_ms=None if progress.upstream_ms is None else round(progress.upstream_ms, 3),
        total_ms=round((time.perf_counter() - progress.t0) * 1000, 3),
        # An expired (or not yet valid) token whose signature verified still names
        # its subject: that claim is trustworthy, only the time was wrong.
        subject=ver.subject if ver is not None and _signed(ver) else None,
        expires_at=ver.expires_at if ver is not None and ver.ok else None,
        upstream_status=progress.upstream_status,
        bytes_in=progress.bytes_in,
        bytes_out=progress.bytes_out if bytes_out is None else bytes_out,
        preflight=bool(expl.extra.get("preflight")),
        notes=tuple(progress.notes),
        **(_exchange_fields(progress, state, expl, raw_query) if progress.exchange else {}),
    )
    if progress.template is not None and state.fast is not None:
        # A planned request that took the full path to be learnt (``fastrecords.py``).
        state.fast.records.learn(*progress.template, record, progress, state)
    return record


def _signed(ver: Verification) -> bool:
    return ver.ok or any(s.name == "signature" and s.status == "passed" for s in ver.steps)


def _start_preview(progress: _Progress, headers: list[tuple[bytes, bytes]]) -> bytearray | None:
    """Keep the response headers for the record; a buffer for the start of the body
    when it is JSON (anything else is not previewed)."""
    progress.response_headers = headers
    content_type = next((v for k, v in headers if k == b"content-type"), b"")
    if b"json" not in content_type.lower():
        return None
    progress.preview = bytearray()
    return progress.preview


def _exchange_fields(
    progress: _Progress, state: _State, expl: Explanation, raw_query: str
) -> dict[str, Any]:
    """The record's request/response headers and JSON preview, redacted. An answer
    rrdev made itself is rebuilt from the explanation (the same bytes it sent)."""
    raw_headers, preview = progress.response_headers, progress.preview
    if raw_headers is None and not expl.allowed:
        body, raw_headers = _error_payload(expl)
        preview = bytearray(body[:PREVIEW_BYTES])
    redactor = state.redactor.with_values(_caller_secrets(state.redactor, progress, raw_query))
    response_headers = [(k.decode("latin-1"), _header_value(v)) for k, v in raw_headers or ()]
    truncated = preview is not None and progress.bytes_out > len(preview)
    return {
        "request_headers": redactor.headers_list(progress.request_headers),
        "response_headers": redactor.headers_list(response_headers),
        "response_preview": (
            _preview_text(bytes(preview), truncated, redactor) if preview is not None else None
        ),
        "response_truncated": truncated,
        **_request_body_fields(progress, redactor),
    }


def _request_body_fields(progress: _Progress, redactor: Redactor) -> dict[str, Any]:
    """The kept start of the forwarded request body, redacted like a preview (JSON
    fields by name, form fields by name, secret values anywhere)."""
    kept = progress.request_body
    if not kept:
        return {}
    truncated = progress.bytes_in > len(kept)
    content_type = next((v for k, v in progress.request_headers if k == "content-type"), "")
    if "x-www-form-urlencoded" in content_type.lower() and not truncated:
        text = urlencode(_record_query(redactor, bytes(kept).decode("utf-8", "replace")))
    else:
        text = _preview_text(bytes(kept), truncated, redactor)
    return {"request_body": text, "request_body_truncated": truncated}


def _caller_secrets(redactor: Redactor, progress: _Progress, raw_query: str) -> list[str]:
    """The caller's secret values (its token, secret-named headers and query
    parameters): a backend may echo them anywhere in a body, under any name."""
    found = []
    for name, value in progress.request_headers:
        if name in redactor.headers:
            found.append(value)
            if name == "authorization":
                found.append(value.partition(" ")[2].strip())
    for name, value in _query_pairs(raw_query):
        if _param_key(name) in redactor.fields:
            found += [value, quote(value, safe="")]
    return found


def _record_query(redactor: Redactor, raw_query: str) -> tuple[tuple[str, str], ...]:
    """The query pairs as the rules see them (split on ``&``), redacted; a value that
    hides a secret-named parameter behind ``;`` (``a=1;key=x``: a second parameter to
    backends that split on ``;``) is redacted whole."""
    fields = redactor.fields
    out = []
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        if _param_key(name) in fields or (
            ";" in value
            and any(
                _param_key(inner) in fields for inner, _ in _query_pairs(value.split(";", 1)[1])
            )
        ):
            value = REDACTED
        out.append((name, redactor.field(name, value)))
    return tuple(out)


def _query_pairs(raw_query: str) -> list[tuple[str, str]]:
    """Decoded pairs, splitting on ``&`` and ``;`` alike."""
    return parse_qsl(raw_query.replace(";", "&"), keep_blank_values=True)


def _preview_text(raw: bytes, truncated: bool, redactor: Redactor) -> str:
    """A JSON body for display: secret-named fields (and secret-named headers an echo
    server reflects) blanked at any depth, known secret values scrubbed. A cut-off
    body cannot be parsed: its secret-named string fields are blanked by pattern."""
    text = raw.decode("utf-8", "replace")
    names = redactor.fields | redactor.headers
    if not truncated:
        try:
            document = json.loads(text)
        except ValueError:
            pass
        else:
            return json.dumps(_scrub_json(document, names, redactor), ensure_ascii=False)
    return redactor.text(_secret_field_pattern(names).sub(r"\1" + f'"{REDACTED}"', text))


def _scrub_json(value: Any, names: frozenset[str], redactor: Redactor) -> Any:
    if isinstance(value, dict):
        return {
            k: REDACTED if str(k).lower() in names else _scrub_json(v, names, redactor)
            for k, v in value.items()
        }
    if isinstance(value, list):
        if len(value) == 2 and isinstance(value[0], str) and value[0].lower() in names:
            return [value[0], REDACTED]  # a [name, value] pair, as echo servers list headers
        return [_scrub_json(v, names, redactor) for v in value]
    if isinstance(value, str):
        return redactor.text(value)
    return value


@lru_cache(maxsize=8)
def _secret_field_pattern(names: frozenset[str]) -> re.Pattern[str]:
    alternatives = "|".join(re.escape(n) for n in sorted(names))
    # "name": "value" and ["name", "value"]
    return re.compile(rf'("(?i:{alternatives})"\s*[:,]\s*)"(?:[^"\\]|\\.)*"?')


def _redacted(expl: Explanation, state: _State) -> Explanation:
    """The explanation with secret-named token claims (and known secret values)
    blanked: records are written to logs and screens (DESIGN.md §2.7)."""
    ver = expl.verification
    if ver is None or not ver.claims:
        return expl
    # The token cache hands out the same Verification for a token's every request:
    # redact it once.
    seen = state.redacted.get(id(ver))
    if seen is not None and seen[0] is ver:
        return replace(expl, verification=seen[1])
    clean = replace(ver, claims=_redact_value(ver.claims, state.redactor))
    if ver.ok:  # failures are never reused
        if len(state.redacted) >= 1024:
            state.redacted.clear()
        state.redacted[id(ver)] = (ver, clean)
    return replace(expl, verification=clean)


def _redact_value(value: Any, redactor: Redactor, name: str = "") -> Any:
    if name and name.lower() in redactor.fields:
        return REDACTED
    if isinstance(value, Mapping):
        return {k: _redact_value(v, redactor, str(k)) for k, v in value.items()}
    if isinstance(value, list):
        return [_redact_value(v, redactor) for v in value]
    if isinstance(value, str):
        return redactor.text(value)
    return value
