"""What one console line says about a request: the few fields of a ``RequestRecord``
that ``rrdev up`` prints (``rrdev.cli.render.request_line`` draws them).

A value of its own so that a ``rrdev up --workers`` worker can send it to the parent,
which prints every worker's lines, as plain JSON (``to_dict``/``from_dict``) without
building the whole record's explanation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rrdev.core.records import RequestRecord

__all__ = ["RecordLine"]


@dataclass(frozen=True, slots=True)
class RecordLine:
    """One request line: when, what, the answer and, for a refusal, why.

    ``key_note`` is "stale JWKS" when the token was verified with a stale key set,
    "warning" for another verification warning, else "". ``message`` and
    ``deciding_rule`` are read only for answers rrdev made itself (``reason`` is not
    "allowed"). ``alias`` names the profile that answered when several share a port.
    """

    time: float
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    status: int
    total_ms: float
    reason: str
    subject: str | None = None
    preflight: bool = False
    key_note: str = ""
    message: str = ""
    deciding_rule: str | None = None
    alias: str | None = None

    @classmethod
    def of(cls, record: RequestRecord) -> RecordLine:
        refused = record.reason != "allowed"
        return cls(
            time=record.time,
            method=record.method,
            path=record.path,
            query=record.query,
            status=record.status,
            total_ms=record.total_ms,
            reason=record.reason,
            subject=record.subject,
            preflight=record.preflight,
            key_note=_key_note(record),
            message=record.explanation.message if refused else "",
            deciding_rule=record.deciding_rule if refused else None,
            alias=record.alias,
        )

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RecordLine:
        """The inverse of ``to_dict`` after a JSON round trip (lists back to tuples)."""
        query = tuple((str(name), str(value)) for name, value in data.get("query") or ())
        return cls(**{**data, "query": query})


def _key_note(record: RequestRecord) -> str:
    verification = record.explanation.verification
    if verification is None or not verification.warnings:
        return ""
    stale = any(w.startswith("stale key set") for w in verification.warnings)
    return "stale JWKS" if stale else "warning"
