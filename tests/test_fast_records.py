"""Records of fast-lane requests (``fastrecords.py``) equal the full path's.

With a record sink, the first request of a kind takes the full path and its record
becomes a template; the same request again takes the fast lane and its record is a
copy. Real sockets, the echo backend, real tokens: for every request below, the copy
equals the full path's record in every field but the exchange's own clock readings,
with and without ``record_exchange``; a different token, header or profile (a
reload) never gets another request's template; a refusal or a request with a body
never makes one.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import httpx
import pytest
from proxy_support import (
    SEED_RULES,
    Backend,
    bearer,
    comparable_record,
    mint,
    profile_text,
    run_backend,
    run_proxy,
    wait_for,
)

from rrdev.core.records import RequestRecord
from rrdev.core.redact import REDACTED
from rrdev.servers.proxy import fastrecords

pytestmark = pytest.mark.usefixtures("keyset")


@pytest.fixture
def copies(monkeypatch: pytest.MonkeyPatch) -> list[RequestRecord]:
    """Every record made as a copy of a template."""
    made: list[RequestRecord] = []
    original = fastrecords.Template.record

    def record(self: fastrecords.Template, progress: Any) -> RequestRecord:
        copy = original(self, progress)
        made.append(copy)
        return copy

    monkeypatch.setattr(fastrecords.Template, "record", record)
    return made


def _profile(tmp_path: Path, backend: Backend, rules: str = SEED_RULES) -> Path:
    path = tmp_path / "seed.toml"
    path.write_text(
        profile_text(
            backend.url,
            credential='auth_type = "bearer"\ntoken = "backend-secret"\n',
            proxy='[proxy.additional_headers]\n"X-User" = "{claims.sub}"\n',
            rules=rules,
        )
    )
    return path


async def _sent(
    client: httpx.AsyncClient, proxy: Any, path: str, headers: dict[str, str], times: int = 3
) -> list[RequestRecord]:
    """The records of ``times`` equal requests. A token's first request is verified
    on the full path (the lane plans only cached tokens), the next one is the first
    the lane plans (full path, learnt), the rest are copies."""
    before = len(proxy.records)
    for _ in range(times):
        response = await client.get(proxy.url + path, headers=headers)
        assert response.status_code == 200, response.text
    await wait_for(lambda: len(proxy.records) == before + times)
    return proxy.records[before:]


@pytest.mark.parametrize("exchange", [True, False])
async def test_a_copied_record_equals_the_full_paths(
    tmp_path: Path, backend: Backend, copies: list[RequestRecord], exchange: bool
) -> None:
    token = mint(scope="read:products", subject="reader-1")
    async with run_proxy(_profile(tmp_path, backend)) as proxy, httpx.AsyncClient() as client:
        proxy.app.record_exchange = exchange
        # The caller's own secret-named header, echoed back by the backend's body.
        headers = {**bearer(token), "X-Api-Key": "caller-secret-1", "X-Trace": "t-1"}
        _verified, full, copied = await _sent(client, proxy, "/api/v1/products", headers)
        assert copies == [copied]
        assert full is not copied
        assert comparable_record(copied) == comparable_record(full)
        assert copied.time >= full.time and copied.total_ms > 0
        assert copied.upstream_ms is not None and copied.status == 200
        if exchange:
            assert copied.response_preview is not None
            assert "caller-secret-1" not in copied.response_preview
            assert token not in copied.response_preview
            assert REDACTED in copied.response_preview
            assert dict(copied.request_headers)["authorization"] == REDACTED
        else:
            assert copied.response_headers == () and copied.response_preview is None
        assert copied.explanation.deciding_rule == full.explanation.deciding_rule
        assert copied.subject == "reader-1"


async def test_another_token_header_or_path_learns_its_own(
    tmp_path: Path, backend: Backend, copies: list[RequestRecord]
) -> None:
    first = mint(scope="read:products", subject="reader-1")
    second = mint(scope="read:products", subject="reader-2")
    async with run_proxy(_profile(tmp_path, backend)) as proxy, httpx.AsyncClient() as client:
        proxy.app.record_exchange = True
        one = await _sent(client, proxy, "/api/v1/products", bearer(first))
        two = await _sent(client, proxy, "/api/v1/products", bearer(second))
        three = await _sent(client, proxy, "/api/v1/products", {**bearer(first), "X-A": "b"})
        four = await _sent(client, proxy, "/api/v1/products/7", bearer(first))
        # A verified token's new header or path: learnt at once, copied after.
        assert copies == [one[2], two[2], three[1], three[2], four[1], four[2]]
        assert [run[2].subject for run in (one, two)] == ["reader-1", "reader-2"]
        assert ("x-a", "b") in three[2].request_headers
        assert ("x-a", "b") not in one[2].request_headers
        assert four[2].path == "/api/v1/products/7"
        for full, copied in ((one[1], one[2]), (two[1], two[2]), (three[0], three[1])):
            assert comparable_record(copied) == comparable_record(full)
        assert comparable_record(four[2]) == comparable_record(four[0])


async def test_a_reload_drops_the_templates(
    tmp_path: Path, backend: Backend, copies: list[RequestRecord]
) -> None:
    token = mint(scope="read:products")
    path = _profile(tmp_path, backend)
    async with run_proxy(path) as proxy, httpx.AsyncClient() as client:
        first = await _sent(client, proxy, "/api/v1/products", bearer(token))
        assert first[2].deciding_rule == "allow-authenticated"
        renamed = path.read_text().replace('"allow-authenticated"', '"reads-renamed"')
        path.write_text(renamed)
        await wait_for(lambda: any(kind == "reloaded" for kind, _ in proxy.events), timeout=5)
        again = await _sent(client, proxy, "/api/v1/products", bearer(token))
        assert [r.deciding_rule for r in again] == ["reads-renamed"] * 3
        assert copies == [first[2], *again[1:]] or copies == [first[2], again[2]]


async def test_refusals_and_bodies_never_make_a_template(
    tmp_path: Path, backend: Backend, copies: list[RequestRecord]
) -> None:
    reader = mint(scope="read:products")
    async with run_proxy(_profile(tmp_path, backend)) as proxy, httpx.AsyncClient() as client:
        proxy.app.record_exchange = True
        url = proxy.url + "/api/v1/products/1"
        for _ in range(3):  # denied: the lane never plans it, nothing is learnt
            assert (await client.delete(url, headers=bearer(reader))).status_code == 403
        for _ in range(3):  # a body: the full path every time
            sent = await client.post(
                proxy.url + "/api/v1/products", headers=bearer(reader), content=b'{"a": 1}'
            )
            assert sent.status_code in (200, 403)
        for _ in range(2):
            answer = await client.get(proxy.url + "/api/v1/products?page=2", headers=bearer(reader))
            assert answer.status_code == 200
        await wait_for(lambda: len(proxy.records) == 8)
        assert copies == []
        assert [r.status for r in proxy.records[:3]] == [403, 403, 403]
        assert all(r.explanation.decision is not None for r in proxy.records[:3])


async def test_a_missing_claim_note_keeps_the_full_path(
    tmp_path: Path, backend: Backend, copies: list[RequestRecord]
) -> None:
    """An additional header omitted for a missing claim is a note on the record: such
    a record is never a template (its notes are this exchange's)."""
    path = tmp_path / "note.toml"
    path.write_text(
        profile_text(
            backend.url,
            proxy='[proxy.additional_headers]\n"X-Team" = "{claims.team}"\n',
        )
    )
    token = mint(scope="read:products")  # no "team" claim
    async with run_proxy(path) as proxy, httpx.AsyncClient() as client:
        records = await _sent(client, proxy, "/api/v1/products", bearer(token))
        assert records[0].notes and all(r.notes == records[0].notes for r in records)
        assert copies == []


async def test_a_backend_gone_after_learning_is_a_recorded_502(
    tmp_path: Path, copies: list[RequestRecord]
) -> None:
    token = mint(scope="read:products")
    async with contextlib.AsyncExitStack() as backend_alive:
        backend = await backend_alive.enter_async_context(run_backend())
        path = _profile(tmp_path, backend)
        async with run_proxy(path) as proxy, httpx.AsyncClient() as client:
            proxy.app.record_exchange = True
            await _sent(client, proxy, "/api/v1/products", bearer(token))
            await backend_alive.aclose()  # the backend stops; its port is closed
            answer = await client.get(proxy.url + "/api/v1/products", headers=bearer(token))
            assert answer.status_code == 502
            await wait_for(lambda: len(proxy.records) == 4)
            failed = proxy.records[3]
            assert failed.status == 502 and failed.reason.startswith("upstream")
            assert failed.upstream_status is None
            assert token not in str(failed.to_dict())
            assert dict(failed.request_headers)["authorization"] == REDACTED
            assert len(copies) == 1
