"""Secrets in the query string: ``?access_token=`` and api-key parameters.

A token in a URL ends up in the backend's access logs, its traces and its error pages.
rrdev removes ``access_token`` (and the api-key parameter an ``api_key`` target
credential declares) from the caller's query before forwarding: names compared
decoded, trimmed and case-insensitively, ``;`` a separator as well as ``&``. Every other
byte of the query is forwarded as sent.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from proxy_support import Backend, bearer, mint, profile_text, raw_request, run_proxy

pytestmark = pytest.mark.usefixtures("keyset")

PATH = "/api/v1/products"
CALLER_TOKEN = "eyJhbGciOiJSUzI1NiJ9.caller-token-in-the-url.c2ln"


async def forwarded_target(
    tmp_path: Path, backend: Backend, query: str, credential: str = ""
) -> tuple[str, list]:
    path = tmp_path / "rrdev.toml"
    path.write_text(profile_text(backend.url, credential=credential))
    async with run_proxy(path) as running:
        answer = await raw_request(
            running.port, "GET", f"{PATH}?{query}", list(bearer(mint()).items())
        )
    assert answer.status == 200, answer.body
    (seen,) = backend.seen
    return seen["raw_path"], running.records


@pytest.mark.parametrize(
    ("query", "forwarded"),
    [
        (f"access_token={CALLER_TOKEN}&page=2", "page=2"),
        (f"page=2&access_token={CALLER_TOKEN}", "page=2"),
        (f"ACCESS_TOKEN={CALLER_TOKEN}&page=2", "page=2"),
        (f"%61ccess%5Ftoken={CALLER_TOKEN}&page=2", "page=2"),
        (f"+access_token+={CALLER_TOKEN}&page=2", "page=2"),
        (f"page=2;access_token={CALLER_TOKEN};sort=asc", "page=2;sort=asc"),
        (f"a=1;b=2&access_token={CALLER_TOKEN}", "a=1;b=2"),
        (f"access_token={CALLER_TOKEN}&access_token=again", ""),
        ("access_token&page=2", "page=2"),
    ],
)
async def test_access_token_never_reaches_the_backend(
    tmp_path: Path, backend: Backend, query: str, forwarded: str
) -> None:
    raw_path, records = await forwarded_target(tmp_path, backend, query)
    assert raw_path == f"{PATH}?{forwarded}" if forwarded else raw_path in (PATH, f"{PATH}?")
    assert CALLER_TOKEN not in raw_path
    assert CALLER_TOKEN not in repr(records[0])  # the record redacts it too


@pytest.mark.parametrize(
    "query",
    ["page=2&&sort=%2Fname;x", "my_access_token=1&access_tokens=2&token=3", "a=%2561ccess_token"],
)
async def test_a_query_without_secrets_is_forwarded_byte_for_byte(
    tmp_path: Path, backend: Backend, query: str
) -> None:
    raw_path, _ = await forwarded_target(tmp_path, backend, query)
    assert raw_path == f"{PATH}?{query}"
    # ... and the same query with a token in it loses only the token.
    backend.seen.clear()
    raw_path, _ = await forwarded_target(tmp_path, backend, f"{query}&access_token=x")
    assert raw_path == f"{PATH}?{query}"


API_KEY = 'auth_type = "api_key"\napi_key = "backend-key-42"\nquery_param = "key"\n'


async def test_the_declared_api_key_parameter_is_removed_and_rrdevs_appended(
    tmp_path: Path, backend: Backend
) -> None:
    query = f"KEY=forged&page=2;key=also-forged&access_token={CALLER_TOKEN}"
    raw_path, _ = await forwarded_target(tmp_path, backend, query, credential=API_KEY)
    assert raw_path == f"{PATH}?page=2&key=backend-key-42"
