"""The workbench's send, replay and edit with several profiles (`rrdev tui a.toml b.toml`):
a request shown for alias `beta` goes to `beta.localhost:PORT`, never to the bare host
(which answers 421 `alias_unknown`). Driven through a real AliasRuntime on loopback."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alias_support import OPEN, open_rules, send
from proxy_support import Backend, profile_text

from rrdev.core.records import RequestRecord
from rrdev.tui.runtime import AliasRuntime
from rrdev.tui.workbench.requests import WorkbenchRequest, from_record

pytestmark = pytest.mark.usefixtures("keyset")


def _write(tmp_path: Path, alias: str, backend: Backend, prefix: str) -> str:
    path = tmp_path / f"{alias}.toml"
    text = profile_text(
        backend.url, proxy=f'alias = "{alias}"', proxy_credential=OPEN, rules=open_rules(prefix)
    )
    path.write_text(text)
    return str(path)


@pytest.fixture
async def served(tmp_path: Path, backend: Backend) -> AsyncIterator[tuple[AliasRuntime, list]]:
    paths = [_write(tmp_path, "alpha", backend, "a"), _write(tmp_path, "beta", backend, "b")]
    runtime = AliasRuntime(paths, port=0)
    records: list[RequestRecord] = []
    await runtime.start(records.append, lambda kind, message: None)
    try:
        yield runtime, records
    finally:
        await runtime.stop()


async def _next_record(records: list[RequestRecord], count: int) -> RequestRecord:
    for _ in range(500):
        if len(records) >= count:
            return records[count - 1]
        await asyncio.sleep(0.01)
    raise AssertionError(f"no record #{count}: {records}")


async def test_a_replay_goes_to_the_alias_that_answered(
    served: tuple[AliasRuntime, list[RequestRecord]], backend: Backend
) -> None:
    runtime, records = served
    assert runtime.server is not None
    answer = await send(runtime.server.port, ["beta.localhost"], "/b/items?page=2")
    assert answer.status == 200
    original = await _next_record(records, 1)
    assert original.alias == "beta"

    sent = await runtime.send(from_record(original))  # `r`: replay as it was
    assert sent.status == 200, sent
    replay = await _next_record(records, 2)
    assert (replay.alias, replay.status, replay.reason) == ("beta", 200, "allowed")
    assert [e["raw_path"] for e in backend.seen] == ["/b/items?page=2"] * 2


async def test_an_edit_keeps_the_alias_and_a_refusal_comes_from_that_profile(
    served: tuple[AliasRuntime, list[RequestRecord]], backend: Backend
) -> None:
    runtime, records = served
    sent = await runtime.send(WorkbenchRequest(path="/a/1", alias="beta"))
    assert sent.status == 403  # beta's own rules (it allows /b/ only), not a 421
    record = await _next_record(records, 1)
    assert (record.alias, record.reason) == ("beta", "default_denied")
    assert backend.seen == []


async def test_a_composed_request_without_an_alias_goes_to_the_first_profile(
    served: tuple[AliasRuntime, list[RequestRecord]], backend: Backend
) -> None:
    runtime, records = served
    sent = await runtime.send(WorkbenchRequest(path="/a/1"))  # `s`: nothing to follow
    assert sent.status == 200
    record = await _next_record(records, 1)
    assert record.alias == "alpha" and [e["raw_path"] for e in backend.seen] == ["/a/1"]


async def test_a_host_typed_in_the_compose_form_is_kept(
    served: tuple[AliasRuntime, list[RequestRecord]],
) -> None:
    runtime, records = served
    assert runtime.server is not None
    host = ("Host", f"nowhere.localhost:{runtime.server.port}")
    sent = await runtime.send(WorkbenchRequest(path="/a/1", headers=(host,), alias="beta"))
    assert sent.status == 421
    record = await _next_record(records, 1)
    assert record.reason == "alias_unknown" and record.alias is None
