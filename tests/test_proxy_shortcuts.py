"""The hot path's shortcuts (issue 12, round 2) agree with the full paths they replace.

* aiohttp's automatic request headers are skipped with a set made once
  (``_ForwardRequest``): the backend still gets none of aiohttp's own headers, only
  the caller's (real sockets, the echo backend).
* The engine's redacted copy of a request is made on first read
  (``RequestFacts.lazy``): equal, field for field, to the copy made at once, on
  generated headers and queries; pickled as plain ``RequestFacts``.
* A backend body that arrived with its head is passed on without the stream
  iterator: the caller gets the same status, headers and bytes (also for HEAD and
  204, which have none), and the record's preview is still filled.
"""

from __future__ import annotations

import asyncio
import json
import pickle
from dataclasses import replace
from pathlib import Path

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st
from proxy_support import Backend, bearer, header_values, mint, profile_text, run_proxy, wait_for

from rrdev.core.explain import IncomingRequest, decide
from rrdev.core.profile import load_profile
from rrdev.core.records import RequestFacts
from rrdev.core.redact import REDACTED, Redactor

pytestmark = pytest.mark.usefixtures("keyset")

_AIOHTTP_OWN = ("user-agent", "accept", "accept-encoding", "content-type")


@pytest.fixture
def open_profile(tmp_path: Path, backend: Backend) -> Path:
    path = tmp_path / "none.toml"
    allow_all = '[[proxy.rules]]\nid = "all"\neffect = "allow"\npath = "^/"\n'
    path.write_text(
        profile_text(backend.url, proxy_credential='auth_type = "none"\n', rules=allow_all)
    )
    return path


async def _send_raw(port: int, head: str, body: bytes = b"") -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(head.encode("latin-1") + body)
    await writer.drain()
    data = await reader.read()
    writer.close()
    return data


# ------------------------------------------------------------------ aiohttp's own headers


async def test_the_backend_gets_no_headers_of_aiohttps_own(
    open_profile: Path, backend: Backend
) -> None:
    async with run_proxy(open_profile) as proxy:
        get = f"GET /plain HTTP/1.1\r\nHost: 127.0.0.1:{proxy.port}\r\nConnection: close\r\n\r\n"
        post = (
            f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:{proxy.port}\r\n"
            "Content-Length: 5\r\nConnection: close\r\n\r\n"
        )
        answers = [await _send_raw(proxy.port, get), await _send_raw(proxy.port, post, b"hello")]
    assert all(a.startswith(b"HTTP/1.1 200") for a in answers)
    got, posted = backend.seen
    for echo in (got, posted):
        for name in _AIOHTTP_OWN:
            assert header_values(echo, name) == [], (name, echo["headers"])
    assert posted["body_len"] == 5 and header_values(posted, "content-length") == ["5"]


async def test_the_callers_own_content_type_and_agent_still_pass(
    open_profile: Path, backend: Backend
) -> None:
    async with run_proxy(open_profile) as proxy:
        post = (
            f"POST /upload HTTP/1.1\r\nHost: 127.0.0.1:{proxy.port}\r\n"
            "User-Agent: curl/8\r\nAccept: */*\r\nContent-Type: application/json\r\n"
            "Content-Length: 2\r\nConnection: close\r\n\r\n"
        )
        answer = await _send_raw(proxy.port, post, b"{}")
    assert answer.startswith(b"HTTP/1.1 200")
    [echo] = backend.seen
    assert header_values(echo, "user-agent") == ["curl/8"]
    assert header_values(echo, "accept") == ["*/*"]
    assert header_values(echo, "content-type") == ["application/json"]
    assert header_values(echo, "accept-encoding") == []


# ------------------------------------------------------------------ lazy redaction

_names = st.sampled_from(["authorization", "cookie", "x-api-key", "x-user", "accept", "host"])
_texts = st.text(alphabet="abcXYZ012 =;:.", max_size=12)
_pairs = st.lists(st.tuples(_names, _texts), max_size=6).map(tuple)
_fields = st.sampled_from(["access_token", "client_secret", "q", "page", "api_key"])
_query = st.lists(st.tuples(_fields, _texts), max_size=4).map(tuple)
_secrets = st.lists(st.text(alphabet="abcXYZ012", min_size=4, max_size=6), max_size=2)


@given(headers=_pairs, query=_query, secrets=_secrets)
def test_lazy_redaction_equals_the_eager_one(
    headers: tuple[tuple[str, str], ...],
    query: tuple[tuple[str, str], ...],
    secrets: list[str],
) -> None:
    redactor = Redactor().with_values(secrets)
    eager = RequestFacts(
        "GET", "/a", "/a", redactor.query_list(query), redactor.headers_list(headers)
    )
    lazy = RequestFacts.lazy(
        "GET", "/a", "/a", lambda: (redactor.query_list(query), redactor.headers_list(headers))
    )
    assert "headers" not in lazy.__dict__  # nothing redacted until read
    assert lazy == eager and lazy.to_dict() == eager.to_dict()
    assert pickle.loads(pickle.dumps(lazy)) == eager
    assert replace(lazy, query=()) == replace(eager, query=())


async def test_an_allowed_request_is_redacted_only_when_read(tmp_path: Path) -> None:
    path = tmp_path / "none.toml"
    path.write_text(profile_text("http://127.0.0.1:9", proxy_credential='auth_type = "none"\n'))
    headers = (("host", "127.0.0.1:8787"), ("cookie", "session=s3cr3t"))
    request = IncomingRequest("GET", "/api/v1/products", "access_token=abc&q=1", headers)
    expl = await decide(load_profile(path), request, None, now=0.0)
    assert expl.allowed and expl.request is not None
    assert "headers" not in expl.request.__dict__
    assert expl.request.headers == (("host", "127.0.0.1:8787"), ("cookie", REDACTED))
    assert expl.request.query == (("access_token", REDACTED), ("q", "1"))
    assert "s3cr3t" not in json.dumps(expl.to_dict())


# ------------------------------------------------------------------ a body that came whole


async def test_a_small_body_the_head_carried_passes_whole(tmp_path: Path, backend: Backend) -> None:
    path = tmp_path / "p.toml"
    path.write_text(profile_text(backend.url))
    async with run_proxy(path) as proxy, httpx.AsyncClient() as client:
        proxy.app.record_exchange = True
        small = await client.get(f"{proxy.url}/api/v1/products", headers=bearer(mint()))
        await wait_for(lambda: len(proxy.records) == 1)
    assert small.status_code == 200
    assert small.headers["content-length"] == str(len(small.content))
    assert small.json()["path"] == "/api/v1/products"
    record = proxy.records[0]
    assert record.bytes_out == len(small.content)
    assert record.response_preview is not None
    assert json.loads(record.response_preview)["path"] == "/api/v1/products"


@pytest.mark.parametrize(
    ("method", "path", "status"), [("HEAD", "/x", 200), ("GET", "/status/204", 204)]
)
async def test_answers_without_a_body_pass_unchanged(
    open_profile: Path, backend: Backend, method: str, path: str, status: int
) -> None:
    async with run_proxy(open_profile) as proxy:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{proxy.port}\r\nConnection: close\r\n\r\n"
        )
        answer = await _send_raw(proxy.port, head)
        await wait_for(lambda: len(proxy.records) == 1)
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(f"HTTP/1.1 {status}".encode())
    assert rest.endswith(b"\r\n\r\n")  # the head only: no body bytes follow
    assert proxy.records[0].upstream_status == status and proxy.records[0].bytes_out == 0
