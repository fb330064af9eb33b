"""Reading ``rrdev up --log-file`` back (``rrdev tui --open FILE``).

Pure: no Textual. Each line is a ``RequestRecord.to_dict()``; this turns it back into a
``RequestRecord`` whose explanation (verification checklist, rule trace) renders as it
did live. A line that is not a record is counted and skipped, never fatal: a log cut
short by a crash still opens.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from rrdev.core.errors import RrdevError
from rrdev.core.records import (
    ConditionOutcome,
    Decision,
    Explanation,
    RequestFacts,
    RequestRecord,
    RuleOutcome,
    ScopeOutcome,
    Verification,
    VerifyStep,
)

__all__ = ["LogContents", "read_log", "record_from_dict"]

_PAIR_FIELDS = ("query", "request_headers", "response_headers")


@dataclass(frozen=True)
class LogContents:
    """The records of a log file, and how many lines could not be read."""

    path: str
    records: tuple[RequestRecord, ...]
    skipped: int = 0
    first_bad_line: int | None = None


def read_log(path: str | Path) -> LogContents:
    """Every record in the JSONL file at ``path``; raises ``RrdevError`` if unreadable."""
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise RrdevError(
            f"cannot read the log file {path}: {exc.strerror or exc}",
            hint="pass a file written by `rrdev up --log-file FILE`",
        ) from None
    return _parse_lines(str(path), text.splitlines())


def _parse_lines(path: str, lines: Iterable[str]) -> LogContents:
    records: list[RequestRecord] = []
    skipped, first_bad = 0, None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            records.append(record_from_dict(json.loads(line)))
        except (ValueError, TypeError, KeyError, AttributeError):
            skipped += 1
            first_bad = first_bad or number
    return LogContents(path, tuple(records), skipped, first_bad)


def record_from_dict(data: Mapping[str, Any]) -> RequestRecord:
    """The ``RequestRecord`` that ``to_dict`` wrote (raises on a line that is not one)."""
    names = {f.name for f in fields(RequestRecord)} - {"explanation"}
    values = {k: v for k, v in data.items() if k in names}
    for name in _PAIR_FIELDS:
        values[name] = _pairs(values.get(name) or ())
    values["notes"] = tuple(values.get("notes") or ())
    values["explanation"] = explanation_from_dict(data["explanation"])
    return RequestRecord(**values)


def explanation_from_dict(data: Mapping[str, Any]) -> Explanation:
    reason = str(data["reason"])
    return Explanation(
        status=int(data["status"]),
        reason=reason,
        message=str(data.get("message") or ""),
        hint=str(data.get("hint") or ""),
        www_authenticate=data.get("www_authenticate"),
        verification=_verification(data, reason),
        decision=_decision(data["trace"]) if data.get("trace") else None,
        request=_facts(data["request"]) if data.get("request") else None,
    )


def _verification(data: Mapping[str, Any], reason: str) -> Verification | None:
    checks = data.get("checks") or []
    token = data.get("token") or {}
    if not checks and not token:
        return None
    steps = tuple(VerifyStep(**step) for step in checks)
    failed = any(step.status == "failed" for step in steps) or token.get("verified") is False
    return Verification(
        steps=steps,
        reason=reason if failed else None,
        message=str(data.get("message") or "") if failed else "",
        hint=str(data.get("hint") or "") if failed else "",
        claims=token.get("claims"),
        header=token.get("header"),
        fingerprint=token.get("fingerprint"),
        warnings=tuple(data.get("warnings") or ()),
    )


def _decision(trace: Mapping[str, Any]) -> Decision:
    return Decision(
        allowed=bool(trace["allowed"]),
        scopes=tuple(_scope(scope) for scope in trace["scopes"]),
        deciding=tuple((d["scope"], d["rule"]) for d in trace["deciding"]),
        token_condition_decided=bool(trace.get("token_condition_decided")),
    )


def _scope(data: Mapping[str, Any]) -> ScopeOutcome:
    return ScopeOutcome(
        scope=data["scope"],
        default_effect=data["default_effect"],
        effect=data["effect"],
        decided_by=data["decided_by"],
        rules=tuple(_rule(rule) for rule in data["rules"]),
        token_condition_decided=bool(data.get("token_condition_decided")),
    )


def _rule(data: Mapping[str, Any]) -> RuleOutcome:
    conditions = tuple(
        ConditionOutcome(c["kind"], c["description"], c["held"], tuple(c.get("compared") or ()))
        for c in data["conditions"]
    )
    return RuleOutcome(
        name=data["name"],
        index=int(data["index"]),
        effect=data["effect"],
        priority=int(data["priority"]),
        notes=str(data.get("notes") or ""),
        matched=bool(data["matched"]),
        conditions=conditions,
        id=data.get("id"),
    )


def _facts(data: Mapping[str, Any]) -> RequestFacts:
    return RequestFacts(
        method=data["method"],
        path=data["path"],
        raw_path=data.get("raw_path") or "",
        query=_pairs(data.get("query") or ()),
        headers=_pairs(data.get("headers") or ()),
    )


def _pairs(items: Iterable[Any]) -> tuple[tuple[str, str], ...]:
    return tuple((str(name), str(value)) for name, value in items)
