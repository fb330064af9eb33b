"""Property: no request target the rules did not judge is ever forwarded.

``parse_target`` (rrdev/core/paths.py) decides the path the rules see; the backend gets
the bytes as received. For every hostile target Hypothesis can build, either rrdev
refuses it (``AmbiguousPath``, 400 ``ambiguous_path``) or every way a common backend
reads the forwarded bytes gives exactly the rules' path. The backend readings modelled:

- decode once (most servers and frameworks);
- RFC 3986 ``remove_dot_segments``, after decoding and before it (nginx, URL libraries);
- ``;param`` stripping before decoding (Tomcat, Jetty) and after it (Spring);
- ``\\`` as ``/`` (IIS, some Windows and Node servers);
- decoding twice (a proxy chain, or a framework decoding an already-decoded path);
- merging ``//`` into ``/`` (nginx ``merge_slashes``, Spring);
- decoding the whole target, then splitting at ``?`` and ``#`` again (Apache
  mod_rewrite + mod_proxy, CVE-2023-25690).

One property goes end to end: a real proxy over loopback with an echo backend, where
whatever reached the backend must decode to the path the record says the rules judged.
"""

from __future__ import annotations

import functools
import re
import unicodedata
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from urllib.parse import unquote_to_bytes

import pytest
from fuzzing import examples
from hypothesis import event, example, given
from hypothesis import strategies as st
from proxy_support import Backend, RunningProxy, raw_request, run_proxy, wait_for

from rrdev.core.explain import IncomingRequest, decide
from rrdev.core.model import Profile
from rrdev.core.paths import AmbiguousPath, parse_target, split_target
from rrdev.core.profile import parse_profile
from rrdev.servers.proxy.request import _ascii_text
from rrdev.servers.proxy.state import _Upstream

# ------------------------------------------------------------------ hostile targets

#: Pieces attackers combine: dot segments in every encoding, encoded separators,
#: double and overlong encodings, path parameters, query and fragment delimiters,
#: control characters, Unicode look-alikes.
ATOMS = (
    *("a", "api", "v1", "admin", "x.y", "..x", "...", "-", "~", "+", "*", "@", ":"),
    *(".", "..", "%2e", "%2E", "%2e%2e", ".%2e", "%2e.", "%2E%2e"),
    *("%2f", "%2F", "%5c", "%5C", "\\", "%c0%af", "%c1%9c"),
    *("%25", "%252e", "%252f", "%25%32%65", "%%", "%", "%g0", "%u002e", "%2", "%%32%65"),
    *("%c0%ae", "%e0%80%ae", "%ff", "%80", "%ed%a0%80", "%f4%90%80%80"),
    *("%C2%85", "%C2%A0", "%E2%80%A8", "%EF%BC%8F", "%EF%BC%8E", "%C3%A9", "é", "\u2028"),
    *(";", ";x=1", "..;", ".;", "%3b", "%3B", ";jsessionid=1"),
    *("/", "//", "///"),
    *("?", "#", "%3f", "%3F", "%23"),
    *("%00", "%0a", "%0d", "%09", "%7f", "%1b", "\x00", "\t", " ", "%20"),
)
#: Starts that are not origin-form, or that hide an authority or a dot segment.
HOSTILE_STARTS = ("", "http://evil.example/", "HTTP://evil.example:80/", "evil.example:443", "*")
HOSTILE_STARTS += ("\\", "//", "///", "/./", "/../", "/%2e/", "/;/")

#: What ordinary paths are made of (RFC 3986 pchar, plus some Unicode).
plain = st.text(st.sampled_from("abcxyzAZ09-._~!$&'()*+,=:@é€中"), min_size=1, max_size=8)
hostile = st.one_of(
    st.sampled_from(ATOMS),
    st.integers(0, 255).map(lambda b: f"%{b:02x}"),  # any byte, encoded
    st.text(max_size=4),  # any Unicode, control characters included
    st.integers(200, 5000).map(lambda n: "a" * n),  # very long segments
)


def _tail(segments: list[str], insertions: list[tuple[int, str]]) -> str:
    """A plain path with hostile pieces inserted anywhere (mid-segment too)."""
    path = "/" + "/".join(segments)
    for position, piece in insertions:
        at = position % (len(path) + 1)
        path = path[:at] + piece + path[at:]
    return path


# Mostly plain, so a good share is accepted and the readings get compared at all.
tails = st.builds(
    _tail,
    st.lists(plain, max_size=5),
    st.lists(st.tuples(st.integers(0, 100), hostile), max_size=3),
)
#: Half start plainly with "/", half with a hostile start.
STARTS = ("/",) * len(HOSTILE_STARTS) + HOSTILE_STARTS
targets = st.builds(lambda start, tail: start + tail[1:], st.sampled_from(STARTS), tails)


# ------------------------------------------------------------------ backend readings


def _decode(raw: str) -> str:
    """Percent-decode once; bytes that are not UTF-8 survive as surrogates, so a
    mismatch shows instead of an exception."""
    return unquote_to_bytes(raw.encode("utf-8", "surrogateescape")).decode(
        "utf-8", "surrogateescape"
    )


def remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4, as written."""
    out: list[str] = []
    rest = path
    while rest:
        if rest.startswith("../"):
            rest = rest[3:]
        elif rest.startswith("./") or rest.startswith("/./"):
            rest = rest[2:]
        elif rest == "/.":
            rest = "/"
        elif rest.startswith("/../"):
            rest = rest[3:]
            if out:
                out.pop()
        elif rest == "/..":
            rest = "/"
            if out:
                out.pop()
        elif rest in (".", ".."):
            rest = ""
        else:
            cut = rest.find("/", 1)
            cut = len(rest) if cut < 0 else cut
            out.append(rest[:cut])
            rest = rest[cut:]
    return "".join(out)


def _strip_params(path: str) -> str:
    return "/".join(segment.split(";", 1)[0] for segment in path.split("/"))


def _split_again(path: str) -> str:
    return re.split(r"[?#]", path, maxsplit=1)[0]


READINGS: dict[str, Callable[[str], str]] = {
    "decoded once": _decode,
    "dot segments removed after decoding": lambda raw: remove_dot_segments(_decode(raw)),
    "dot segments removed before decoding": lambda raw: _decode(remove_dot_segments(raw)),
    "';' parameters stripped, then decoded (Tomcat)": lambda raw: remove_dot_segments(
        _decode(_strip_params(raw))
    ),
    "decoded, then ';' parameters stripped (Spring)": lambda raw: remove_dot_segments(
        _strip_params(_decode(raw))
    ),
    "backslash as slash": lambda raw: remove_dot_segments(_decode(raw).replace("\\", "/")),
    "decoded twice": lambda raw: _decode(_decode(raw)),
    "'//' merged": lambda raw: remove_dot_segments(re.sub("/+", "/", _decode(raw))),
    "decoded, then split at '?'/'#' again": lambda raw: _split_again(_decode(raw)),
}


def forwarded_path(raw_path: str) -> str:
    """The path bytes the proxy puts on the wire to the backend for ``raw_path``."""
    upstream = _Upstream("http", "127.0.0.1:9", "", "backend")
    return upstream.url(raw_path, "").raw_path


def assert_readings_agree(forwarded: str, judged: str) -> None:
    for name, read in READINGS.items():
        assert read(forwarded) == judged, f"a backend reading {name} sees another path"


#: Everything allowed: what reaches the rules reaches the backend.
PROFILE_TEXT = """
[target]
name = "backend"
base_url = "{base_url}"

[target_credential]
name = "backend-cred"

[proxy_credential]
auth_type = "none"

[proxy]
name = "fuzz-proxy"
default_effect = "deny"

[[proxy.rules]]
id = "allow-all"
effect = "allow"
path = ".*"
"""


# ------------------------------------------------------------------ the pure property


@examples()
@given(targets)
@example("/a/b;v=1/c")  # Tomcat reads /a/b/c: a rule on ^/a/b/ never saw it
@example("/admin;x/users")
@example("/admin//users")  # nginx and Spring read /admin/users
@example("/a/%3f/../admin")  # Apache re-splits at the decoded '?'
@example("/a%C2%85b")  # U+0085 (NEL) is a control character too
def test_every_accepted_target_reads_the_same_to_every_backend(sent: str) -> None:
    # The proxy hands the target to the engine as text, non-ASCII bytes %-escaped.
    raw_path, raw_query = split_target(sent)
    raw_path = _ascii_text(raw_path.encode("utf-8"))
    try:
        target = parse_target(raw_path, raw_query)
    except AmbiguousPath:
        event("refused")
        return
    event("accepted")
    forwarded = forwarded_path(raw_path)
    assert forwarded == raw_path, "the path is not forwarded byte for byte"
    assert_readings_agree(forwarded, target.path)
    assert not any(unicodedata.category(c) == "Cc" for c in target.path)


@functools.cache
def _dry_profile() -> Profile:
    return parse_profile(PROFILE_TEXT.format(base_url="http://127.0.0.1:9"), "fuzz.toml")


@examples(0.5)
@given(targets)
async def test_decide_refuses_what_parse_target_refuses(sent: str) -> None:
    # The engine answers every target: 400 ambiguous_path or a decision on the same path.
    profile = _dry_profile()
    raw_path, raw_query = split_target(sent)
    expl = await decide(profile, IncomingRequest("GET", raw_path, raw_query), None, now=0)
    try:
        target = parse_target(raw_path, raw_query)
    except AmbiguousPath:
        assert (expl.status, expl.reason) == (400, "ambiguous_path")
        return
    assert expl.status == 200 and expl.request is not None
    assert expl.request.path == target.path


# ------------------------------------------------------------------ end to end

#: Under a fixed first segment, so the echo backend's own routes (/slow, /status/N...)
#: never answer instead of echoing, or behind a hostile start.
wire_targets = st.builds(
    lambda start, tail: start + tail[1:] if start != "/" else "/fuzz" + tail,
    st.sampled_from(STARTS),
    tails,
)


@pytest.fixture
async def fuzz_proxy(backend: Backend, tmp_path: Path) -> AsyncIterator[RunningProxy]:
    path = tmp_path / "fuzz.toml"
    path.write_text(PROFILE_TEXT.format(base_url=backend.url))
    async with run_proxy(path, reload_interval=0) as proxy:
        yield proxy


#: How the proxy may refuse a generated target: the path rule, or the HTTP parser
#: (a raw space or control byte) and its head-size limit (a very long target).
REFUSALS = {(400, "ambiguous_path"), (400, "bad_request"), (431, "headers_too_large")}


@examples(0.15)
@given(sent=wire_targets)
@example(sent="/fuzz/a;x/b")
@example(sent="/fuzz//admin")
async def test_what_reaches_the_backend_is_the_path_the_rules_judged(
    sent: str, fuzz_proxy: RunningProxy, backend: Backend
) -> None:
    seen_before, records_before = len(backend.seen), len(fuzz_proxy.records)
    # Non-ASCII goes on the wire %-encoded, as clients send it (the HTTP parser refuses
    # raw non-ASCII bytes, which the pure property above covers); the rest as generated.
    wire = _ascii_text(sent.encode("utf-8"))
    answer = await raw_request(fuzz_proxy.port, "GET", wire)
    assert answer.status != 500
    await wait_for(lambda: len(fuzz_proxy.records) > records_before)
    record = fuzz_proxy.records[records_before]
    if record.reason != "allowed":
        event(f"refused: {record.status} {record.reason}")
        assert (record.status, record.reason) in REFUSALS
        assert (answer.status, answer.json()["reason"]) == (record.status, record.reason)
        assert len(backend.seen) == seen_before and answer.header("x-backend") is None
        return
    if len(backend.seen) == seen_before:
        # Forwarded, but the backend's own HTTP parser refused the request line (aiohttp's
        # limit is 8190 bytes): its 400 passes through, and it read no path at all.
        event("refused by the backend: request line too long")
        assert record.upstream_status == answer.status == 400 and len(wire) > 8000
        return
    event("forwarded")
    assert answer.status == 200 and answer.header("x-backend") == "echo"
    assert len(backend.seen) == seen_before + 1
    received = backend.seen[-1]["raw_path"].partition("?")[0]
    assert record.explanation.request is not None
    judged = record.explanation.request.path
    assert_readings_agree(received, judged)
    assert backend.seen[-1]["path"] == judged, "aiohttp itself decodes another path"
