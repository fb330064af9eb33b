"""The TUI's filter language and traffic buffer: pure logic, table-driven."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from rrdev.core.records import Explanation, RequestRecord
from rrdev.tui.filters import FilterError, parse_filter
from rrdev.tui.store import TrafficStore


def record(
    method: str = "GET",
    path: str = "/api/v1/products",
    status: int = 200,
    reason: str = "allowed",
    rule: str | None = "read-catalog",
    subject: str | None = "demo-reader@clients",
    message: str = "allowed by proxy 'read-catalog'",
    query: tuple[tuple[str, str], ...] = (),
) -> RequestRecord:
    return RequestRecord(
        time=1_700_000_000.0,
        method=method,
        path=path,
        query=query,
        status=status,
        reason=reason,
        deciding_rule=rule,
        explanation=Explanation(status, reason, message),
        subject=subject,
    )


ALLOWED = record()
MISSING = record(status=401, reason="token_missing", rule=None, subject=None, message="no token")
EXPIRED = record(status=401, reason="token_expired", rule=None, subject=None, message="expired")
DENIED = record(
    method="DELETE",
    path="/api/v1/products/1",
    status=403,
    reason="rule_denied",
    rule="scope-gate-delete",
    message="proxy rule 'scope-gate-delete' denies DELETE /api/v1/products/1",
)
USERS = record(path="/api/v1/users", query=(("page", "2"),), status=404)
ALL = {"allowed": ALLOWED, "missing": MISSING, "expired": EXPIRED, "denied": DENIED, "users": USERS}


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {"allowed", "missing", "expired", "denied", "users"}),
        ("status:403", {"denied"}),
        ("status:401", {"missing", "expired"}),
        ("status:4xx", {"missing", "expired", "denied", "users"}),
        ("status:40x", {"missing", "expired", "denied", "users"}),
        ("status:2XX", {"allowed"}),
        ("status:401,403", {"missing", "expired", "denied"}),
        ("code:404", {"users"}),
        ("method:DELETE", {"denied"}),
        ("method:delete", {"denied"}),
        ("method:GET,DELETE", {"allowed", "missing", "expired", "denied", "users"}),
        ("reason:token_expired", {"expired"}),
        ("reason:token", {"missing", "expired"}),
        ("rule:scope-gate-delete", {"denied"}),
        ("rule:read", set()),  # a rule name is exact: no substring
        ("rule:READ-CATALOG", {"allowed", "users"}),
        ("path:users", {"users"}),
        ("path:/1", {"denied"}),
        ("sub:reader", {"allowed", "denied", "users"}),
        ("subject:READER", {"allowed", "denied", "users"}),
        ("status:401 reason:expired", {"expired"}),
        ("status:4xx method:GET", {"missing", "expired", "users"}),
        ("-status:200", {"missing", "expired", "denied", "users"}),
        ("!method:GET", {"denied"}),
        ("-status:4xx -status:2xx", set()),
        ("scope-gate", {"denied"}),
        ("page=2", {"users"}),
        ("DENIES", {"denied"}),
        ("no token", {"missing"}),
        ('"no token"', {"missing"}),
        ("12:00", set()),  # free text with a colon, not a field
        ('path:"/api/v1/p"', {"allowed", "missing", "expired", "denied"}),
    ],
)
def test_filter_matches(query: str, expected: set[str]) -> None:
    flt = parse_filter(query)
    assert {name for name, rec in ALL.items() if flt.matches(rec)} == expected


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("stauts:403", "did you mean 'status:'"),
        ("methd:GET", "did you mean 'method:'"),
        ("colour:red", "unknown field 'colour:'"),
        ("status:4z3", "status:4z3 is not a status"),
        ("status:40", "is not a status"),
        ("status:", "status: needs a value"),
        ('path:"/a', "close the quote"),
    ],
)
def test_filter_errors_say_what_is_wrong(query: str, message: str) -> None:
    with pytest.raises(FilterError, match=message):
        parse_filter(query)


def test_empty_filter_keeps_its_text() -> None:
    assert parse_filter("   ").empty
    assert parse_filter(" status:403 ").text == "status:403"


def test_store_is_bounded_and_numbers_records() -> None:
    store = TrafficStore(maxlen=3)
    seqs = [store.add(r) for r in (ALLOWED, MISSING, EXPIRED, DENIED, USERS)]
    assert seqs == [1, 2, 3, 4, 5]
    assert len(store) == 3 and store.total == 5 and store.dropped == 2
    assert store.get(1) is None and store.get(3) is EXPIRED and store.get(5) is USERS
    assert [seq for seq, _ in store.matching(parse_filter("status:4xx"))] == [3, 4, 5]
    store.clear()
    assert store.add(ALLOWED) == 6 and store.get(6) is ALLOWED


def test_tui_helpers_import_no_textual() -> None:
    """rrdev.cli.app imports rrdev.tui (and its runtime) before deciding to run the app."""
    code = (
        "import sys, json\n"
        "import rrdev.tui, rrdev.tui.filters, rrdev.tui.store, rrdev.tui.runtime\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    loaded = json.loads(out.stdout)
    assert [m for m in loaded if m.split(".")[0] in ("textual", "uvicorn")] == []
