"""The backend's response headers as the caller gets them (hop-by-hop ones and the
gateway's own dropped), with the last answer kept: the kept answer must be exactly what
filtering gives, and never shared with a caller that appends to it."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from rrdev.servers.proxy.headers import _downstream_headers, _filter_downstream

NAMES = [b"Server", b"Date", b"Content-Type", b"Connection", b"Keep-Alive", b"X-Trace",
         b"Transfer-Encoding", b"requestrocket-proxy-code", b"Upgrade", b"x-trace"]  # fmt: skip
header = st.tuples(st.sampled_from(NAMES), st.sampled_from([b"a", b"x-trace", b"close", b""]))
headers = st.lists(header, max_size=6).map(tuple)


@given(st.lists(headers, min_size=1, max_size=6))
def test_every_answer_is_what_filtering_gives(
    sequence: list[tuple[tuple[bytes, bytes], ...]],
) -> None:
    for raw in sequence + sequence[:1] * 2:  # repeats: the kept answer
        assert _downstream_headers(raw) == _filter_downstream(raw)


def test_the_kept_answer_is_a_fresh_list_each_time() -> None:
    raw = ((b"Server", b"nginx"), (b"Connection", b"keep-alive"), (b"Keep-Alive", b"x"))
    first = _downstream_headers(raw)
    first.append((b"requestrocket-proxy-code", b"GRANTED"))
    again = _downstream_headers(tuple((bytes(n), bytes(v)) for n, v in raw))
    assert again == [(b"server", b"nginx")]
    assert again is not first


def test_a_connection_header_names_what_else_is_dropped() -> None:
    raw = ((b"X-Trace", b"1"), (b"Connection", b"X-Trace, close"), (b"Server", b"s"))
    assert _downstream_headers(raw) == [(b"server", b"s")]
