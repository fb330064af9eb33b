"""The workbench's pure parts: replaying a record, the compose form's headers, the
current token, minting from the form, and linking a send to its row."""

from __future__ import annotations

import pytest
from proxy_support import mint

from rrdev.core.errors import TokenInputError
from rrdev.core.records import Explanation, RequestRecord
from rrdev.core.redact import REDACTED
from rrdev.tui.workbench.bench import CurrentToken, Workbench, expiry_label, parse_claims
from rrdev.tui.workbench.requests import (
    MARK_HEADER,
    WorkbenchRequest,
    format_headers,
    from_record,
    parse_headers,
)


def record(**fields: object) -> RequestRecord:
    base: dict[str, object] = {
        "time": 0.0,
        "method": "POST",
        "path": "/api/v1/orders",
        "query": (("page", "2"), ("access_token", REDACTED)),
        "status": 200,
        "reason": "allowed",
        "deciding_rule": None,
        "explanation": Explanation(200, "allowed", "ok"),
        "request_headers": (
            ("host", "127.0.0.1:8787"),
            ("authorization", REDACTED),
            ("cookie", REDACTED),
            ("content-type", "application/json"),
            ("content-length", "9"),
            ("x-trace", "abc"),
            (MARK_HEADER, "3"),
        ),
        "request_body": '{"a": 1}',
    }
    return RequestRecord(**(base | fields))  # type: ignore[arg-type]


def test_a_replay_is_the_request_as_it_was_without_its_token_or_secrets() -> None:
    replay = from_record(record())
    assert replay == WorkbenchRequest(
        method="POST",
        path="/api/v1/orders",
        query="page=2",
        headers=(("content-type", "application/json"), ("x-trace", "abc")),
        body='{"a": 1}',
    )
    sent = replay.with_token("tok").marked(7)
    assert ("Authorization", "Bearer tok") in sent.headers
    assert (MARK_HEADER, "7") in sent.headers
    assert sent.target == "/api/v1/orders?page=2"
    assert from_record(record(), body="mine").body == "mine"


def test_compose_headers_round_trip_and_bad_lines_are_named() -> None:
    headers = parse_headers("Accept: application/json\n\nX-A:  b c \n")
    assert headers == (("Accept", "application/json"), ("X-A", "b c"))
    assert format_headers((*headers, ("Authorization", "Bearer x"))) == (
        "Accept: application/json\nX-A: b c"
    )
    with pytest.raises(ValueError, match="line 2"):
        parse_headers("A: b\nno colon here")


@pytest.mark.usefixtures("keyset")
def test_the_current_token_and_its_expiry_label() -> None:
    token = CurrentToken.of("Bearer " + mint(expires_in=-300), "minted")
    # "now" is when it was minted: a clock read before minting could fall a second
    # boundary short of it on a busy machine ("expired 4m59s ago").
    now = token.claims["iat"] + 0.5
    assert token.claims["exp"] == token.claims["iat"] - 300
    assert token.claims["scope"] == "read:products"
    assert "expired 5m" in expiry_label(token, now)
    assert "left" in expiry_label(CurrentToken.of(mint(), "pasted"), now)
    assert expiry_label(None, now) == "no token (t)"
    with pytest.raises(TokenInputError):
        CurrentToken.of("not-a-jwt", "pasted")


def test_claims_from_the_mint_form() -> None:
    assert parse_claims('role=admin, n=3\nflags=["a"]') == {
        "role": "admin",
        "n": 3,
        "flags": ["a"],
    }
    with pytest.raises(ValueError, match="name=value"):
        parse_claims("role")


def test_a_send_is_linked_to_its_row_by_its_mark() -> None:
    bench = Workbench()
    ready = bench.prepare(WorkbenchRequest(body="b"), "fix of #4")
    mark = dict(ready.headers)[MARK_HEADER]
    bench.arrived(5, record(request_headers=((MARK_HEADER, "999"),)))  # someone else's
    bench.arrived(6, record(request_headers=((MARK_HEADER, mark),)))
    assert bench.link_of(6) == "fix of #4" and bench.link_of(5) == ""
    sent = bench.sent_as(6)
    assert sent is not None and sent.body == "b"
