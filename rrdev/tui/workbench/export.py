"""Copy and export (``y``, ``x``): a record as a curl command, traffic as HAR or JSONL.

Pure: no Textual. Everything here starts from ``RequestRecord`` values, which the
proxy has already redacted (DESIGN.md §2.7), so no secret can leave through an export;
the token itself never is in a record (only its fingerprint). A curl command names the
token ``$TOKEN`` unless the caller passes the token explicitly (the "with token" copy).
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from datetime import UTC, datetime
from http import HTTPStatus
from typing import Any, Literal
from urllib.parse import urlencode

from rrdev import __version__
from rrdev.core.records import RequestRecord
from rrdev.core.redact import REDACTED

__all__ = [
    "ExportFormat",
    "curl_command",
    "default_export_name",
    "export_text",
    "har_document",
    "jsonl_text",
    "record_url",
]

ExportFormat = Literal["har", "jsonl"]

#: Request headers a curl command leaves out: curl sets them itself (or they describe a
#: body the record does not keep).
_CURL_SKIPS = frozenset(
    {"host", "content-length", "connection", "transfer-encoding", "accept-encoding", "te"}
)


def record_url(record: RequestRecord, proxy_url: str) -> str:
    """The URL the caller asked for: the proxy's base, the raw path, the query."""
    query = urlencode(list(record.query)) if record.query else ""
    return proxy_url.rstrip("/") + record.path + (f"?{query}" if query else "")


def curl_command(record: RequestRecord, proxy_url: str, *, token: str | None = None) -> str:
    """``record`` as a curl command against ``proxy_url``.

    The bearer token is ``$TOKEN`` (with a comment saying so) unless ``token`` is given;
    other redacted headers are left out with a comment naming them, since their values
    are not known.
    """
    comments: list[str] = []
    # --path-as-is: curl would otherwise resolve dot segments, sending another request.
    parts = ["curl", "-sS", "-i", "--path-as-is"]
    if record.method != "GET":
        parts += ["-X", shlex.quote(record.method)]
    parts.append(shlex.quote(record_url(record, proxy_url)))
    sent_token = False
    for name, value in _request_headers(record):
        if name == "authorization":
            sent_token = True
            # "$TOKEN" in double quotes for the shell to expand; a real token quoted
            # like any other value (a pasted one could hold a quote or a $).
            header = (
                '"Authorization: Bearer $TOKEN"'
                if token is None
                else shlex.quote(f"Authorization: Bearer {token}")
            )
            parts += ["-H", header]
        elif name in _CURL_SKIPS:
            continue
        elif REDACTED in value:
            comments.append(f"# header {name} was redacted in the record: add it yourself")
        else:
            parts += ["-H", shlex.quote(f"{name}: {value}")]
    if any(value == REDACTED for _name, value in record.query):
        comments.append("# a query parameter was redacted in the record: put its value back")
    if record.bytes_in:
        comments.append(f"# the request body ({record.bytes_in} bytes) was not recorded")
    if sent_token and token is None:
        comments.insert(0, '# the token is redacted: run with TOKEN="<your token>" set')
    return "\n".join([*comments, " ".join(parts)])


def _request_headers(record: RequestRecord) -> tuple[tuple[str, str], ...]:
    """The caller's headers: recorded with the exchange (the TUI's proxy), else those
    the rules saw (``rrdev up --log-file`` records carry only the explanation's)."""
    if record.request_headers:
        return record.request_headers
    request = record.explanation.request
    return request.headers if request is not None else ()


# ------------------------------------------------------------------------ HAR


def har_document(records: Iterable[RequestRecord], proxy_url: str) -> dict[str, Any]:
    """HAR 1.2 (http://www.softwareishard.com/blog/har-12-spec/) of ``records``."""
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "rrdev", "version": __version__},
            "entries": [_har_entry(record, proxy_url) for record in records],
        }
    }


def _har_entry(record: RequestRecord, proxy_url: str) -> dict[str, Any]:
    started = datetime.fromtimestamp(record.time, tz=UTC).isoformat(timespec="milliseconds")
    wait = record.upstream_ms if record.upstream_ms is not None else record.total_ms
    return {
        "startedDateTime": started.replace("+00:00", "Z"),
        "time": record.total_ms,
        "request": _har_request(record, proxy_url),
        "response": _har_response(record),
        "cache": {},
        "timings": {"send": 0, "wait": wait, "receive": max(record.total_ms - wait, 0)},
        "comment": _har_comment(record),
    }


def _har_request(record: RequestRecord, proxy_url: str) -> dict[str, Any]:
    return {
        "method": record.method,
        "url": record_url(record, proxy_url),
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": _har_pairs(_request_headers(record)),
        "queryString": _har_pairs(record.query),
        "headersSize": -1,
        "bodySize": record.bytes_in,
    }


def _har_response(record: RequestRecord) -> dict[str, Any]:
    mime = dict(record.response_headers).get("content-type", "")
    content: dict[str, Any] = {"size": record.bytes_out, "mimeType": mime}
    if record.response_preview is not None:
        content["text"] = record.response_preview
        if record.response_truncated:
            content["comment"] = "the start of the body only (rrdev keeps a preview)"
    return {
        "status": record.status,
        "statusText": _status_text(record.status),
        "httpVersion": "HTTP/1.1",
        "cookies": [],
        "headers": _har_pairs(record.response_headers),
        "content": content,
        "redirectURL": "",
        "headersSize": -1,
        "bodySize": record.bytes_out,
    }


def _har_pairs(pairs: Iterable[tuple[str, str]]) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in pairs]


def _har_comment(record: RequestRecord) -> str:
    rule = f", rule {record.deciding_rule}" if record.deciding_rule else ""
    return f"rrdev: {record.reason}{rule}: {record.explanation.message}"


def _status_text(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


# ---------------------------------------------------------------------- files


def jsonl_text(records: Iterable[RequestRecord]) -> str:
    """The records as ``rrdev up --log-file`` writes them: one JSON object a line."""
    return "".join(json.dumps(r.to_dict(), default=str) + "\n" for r in records)


def export_text(records: list[RequestRecord], fmt: ExportFormat, proxy_url: str) -> str:
    if fmt == "har":
        return json.dumps(har_document(records, proxy_url), indent=2, ensure_ascii=False) + "\n"
    return jsonl_text(records)


def default_export_name(now: float, fmt: ExportFormat = "har") -> str:
    """``./rrdev-traffic-<time>.har`` (local time, sortable, no characters a shell minds)."""
    stamp = datetime.fromtimestamp(now).strftime("%Y%m%d-%H%M%S")
    return f"./rrdev-traffic-{stamp}.{fmt}"
