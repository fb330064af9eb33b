"""DESIGN.md §2.1: decode once for the rules, refuse what a backend could read otherwise."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from rrdev.core import paths
from rrdev.core.paths import AmbiguousPath, RequestTarget, parse_target

ACCEPTED = [
    ("/api/v1/products", "/api/v1/products"),
    ("/api/v1/products/a%20b", "/api/v1/products/a b"),
    ("/caf%C3%A9", "/café"),
    ("/a/b/", "/a/b/"),
    ("/a.b/..c/...", "/a.b/..c/..."),
    ("/a/b%2Cc/%7Ed", "/a/b,c/~d"),
    ("/", "/"),
]

REFUSED = [
    ("/a/../b", "'..'"),
    ("/a/./b", "'.'"),
    ("/a/%2e%2e/b", "'..'"),
    ("/a/%2E/b", "'.'"),
    ("/a/..", "'..'"),
    ("/a/..;/admin", "'..'"),
    ("/a#/../admin", "fragment"),
    ("/a/.;x/b", "'.'"),
    ("/a/%2e%2e%3b/admin", "'..'"),
    ("/a%2fb", "encoded '/'"),
    ("/a%2Fb", "encoded '/'"),
    ("/a%5cb", "encoded"),
    ("/a\\b", "backslash"),
    ("/a%252fb", "twice"),
    ("/a%25b", "twice"),
    ("/a%zzb", "twice"),
    ("/a%00b", "control"),
    ("/a%0d%0aHost:x", "control"),
    ("/a%ffb", "UTF-8"),
    ("http://evil.example/a", "origin-form"),
    ("evil.example:443", "origin-form"),
    ("*", "origin-form"),
    ("//evil.example/a", "authority"),
    # Found by tests/test_fuzz_request_target.py: each reads as another path somewhere.
    ("/a/b;v=1/c", "path parameter"),
    ("/admin;x/users", "path parameter"),
    ("/admin%3bx/users", "path parameter"),
    ("/a/%3f/../admin", "'..'"),
    ("/a%3F/admin", r"encoded '\?' or '#'"),
    ("/a%23/admin", r"encoded '\?' or '#'"),
    ("/admin//users", "empty segment"),
    ("/admin/users//", "empty segment"),
    ("/a%C2%85b", "control"),
    ("/a%C2%9Fb", "control"),
]


@pytest.mark.parametrize(("raw", "decoded"), ACCEPTED)
def test_accepted_paths_decode_exactly_once(raw: str, decoded: str) -> None:
    target = parse_target(raw)
    assert target.path == decoded
    assert target.raw_path == raw


@pytest.mark.parametrize(("raw", "why"), REFUSED)
def test_ambiguous_paths_are_refused_with_a_reason(raw: str, why: str) -> None:
    with pytest.raises(AmbiguousPath, match=why):
        parse_target(raw)


def test_a_semicolon_separates_query_parameters_for_the_rules_too() -> None:
    # Backends that split on ";" see debug=1: so must a rule that denies "debug".
    target = parse_target("/x", "a=1;debug=1&b=%3B")
    assert target.query == (("a", "1"), ("debug", "1"), ("b", ";"))
    assert target.raw_query == "a=1;debug=1&b=%3B"  # forwarded as sent


def test_query_is_parsed_but_path_bytes_are_kept() -> None:
    target = parse_target("/x", "a=1&b=%2Fy&empty=")
    assert target.query == (("a", "1"), ("b", "/y"), ("empty", ""))
    assert target.raw_query == "a=1&b=%2Fy&empty="


# The fast path for plain paths must answer exactly what the full checks answer.
_SEGMENT_PIECES = st.sampled_from(
    ["a", "b1", ".", "..", ".", "x.y", "%2F", "%41", "%25", ";", "?", "#", "\\", "~", "-",
     "_", ":", "@", "!", "$", "&", "'", "(", "*", "+", ",", "=", " ", "\x00", "%00", "é", ""]
)  # fmt: skip
_SEGMENTS = st.lists(_SEGMENT_PIECES, max_size=3).map("".join)
_PATHS = (
    st.lists(_SEGMENTS, max_size=5)
    .map("/".join)
    .flatmap(lambda p: st.sampled_from([p, "/" + p, "/" + p + "/"]))
)


@settings(max_examples=500, deadline=None)
@given(_PATHS)
@example("/..")
@example("/a/./b")
def test_the_plain_path_fast_path_agrees_with_the_full_checks(raw: str) -> None:
    def outcome(parse: Callable[[], RequestTarget]) -> RequestTarget | str:
        try:
            return parse()
        except AmbiguousPath as exc:
            return str(exc)

    fast = outcome(lambda: parse_target(raw, "a=1"))
    full = outcome(lambda: paths._checked_target(raw, "a=1"))
    assert fast == full
