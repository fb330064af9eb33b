"""Secrets in request bodies kept for replay.

The TUI records the start of each forwarded request body (``record_exchange``) so the
workbench can replay it. A body carries passwords, client secrets and tokens as often
as headers do: the record must hold them redacted (JSON and form fields by name, the
caller's own token anywhere), never more than ``REQUEST_BODY_BYTES``, and nothing of a
refused request's body (the proxy never reads it). The backend still gets every byte.
``rrdev up`` (no exchange records) keeps no body at all.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from proxy_support import Backend, bearer, mint, profile_text, run_proxy, wait_for

from rrdev.core.records import REQUEST_BODY_BYTES, RequestRecord
from rrdev.core.redact import REDACTED

pytestmark = pytest.mark.usefixtures("keyset")

PATH = "/api/v1/orders"


async def post(
    tmp_path: Path, backend: Backend, body: bytes, content_type: str, *, exchange: bool = True
) -> tuple[httpx.Response, RequestRecord, str]:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text(backend.url))
    token = mint()
    async with run_proxy(profile) as running:
        running.app.record_exchange = exchange
        async with httpx.AsyncClient(trust_env=False) as http:
            answer = await http.post(
                running.url + PATH,
                content=body,
                headers={**bearer(token), "Content-Type": content_type},
            )
        await wait_for(lambda: running.records)
    return answer, running.records[0], token


async def test_json_body_secrets_are_redacted_in_the_record(
    tmp_path: Path, backend: Backend
) -> None:
    secrets = {"password": "hunter2-pw", "client_secret": "cs-123456", "note": "keep me"}
    answer, record, token = await post(
        tmp_path, backend, json.dumps(secrets).encode(), "application/json"
    )
    assert answer.status_code == 200
    assert backend.seen[0]["body_len"] == len(json.dumps(secrets))  # every byte forwarded
    kept = json.loads(record.request_body or "")
    assert kept == {"password": REDACTED, "client_secret": REDACTED, "note": "keep me"}
    assert "hunter2" not in json.dumps(record.to_dict())
    assert token not in json.dumps(record.to_dict())


async def test_the_callers_token_echoed_in_a_body_is_scrubbed(
    tmp_path: Path, backend: Backend
) -> None:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text(backend.url))
    token = mint()
    async with run_proxy(profile) as running:
        running.app.record_exchange = True
        async with httpx.AsyncClient(trust_env=False) as http:
            answer = await http.post(
                running.url + PATH,
                content=f"copy of my token: {token}".encode(),
                headers={**bearer(token), "Content-Type": "text/plain"},
            )
        await wait_for(lambda: running.records)
    assert answer.status_code == 200
    record = running.records[0]
    assert record.request_body == f"copy of my token: {REDACTED}"
    assert token not in json.dumps(record.to_dict())


async def test_form_fields_are_redacted_by_name(tmp_path: Path, backend: Backend) -> None:
    body = b"grant_type=password&password=hunter2-pw&username=ann"
    answer, record, _ = await post(tmp_path, backend, body, "application/x-www-form-urlencoded")
    assert answer.status_code == 200
    assert record.request_body == "grant_type=password&password=%5Bredacted%5D&username=ann"
    assert "hunter2" not in json.dumps(record.to_dict())


async def test_a_large_body_is_kept_only_up_to_the_bound(tmp_path: Path, backend: Backend) -> None:
    body = b"x" * (REQUEST_BODY_BYTES * 3)
    answer, record, _ = await post(tmp_path, backend, body, "application/octet-stream")
    assert answer.status_code == 200
    assert backend.seen[0]["body_len"] == len(body)
    assert record.request_body is not None and len(record.request_body) == REQUEST_BODY_BYTES
    assert record.request_body_truncated


async def test_a_refused_request_body_is_never_kept(tmp_path: Path, backend: Backend) -> None:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text(backend.url))
    async with run_proxy(profile) as running:
        running.app.record_exchange = True
        async with httpx.AsyncClient(trust_env=False) as http:
            answer = await http.post(running.url + PATH, content=b'{"password": "hunter2-pw"}')
        await wait_for(lambda: running.records)
    assert answer.status_code == 401
    assert answer.json()["reason"] == "token_missing"
    assert backend.seen == []
    assert running.records[0].request_body is None


async def test_without_exchange_records_no_body_is_kept(tmp_path: Path, backend: Backend) -> None:
    answer, record, _ = await post(
        tmp_path, backend, b'{"a": 1}', "application/json", exchange=False
    )
    assert answer.status_code == 200
    assert record.request_body is None and record.request_headers == ()
