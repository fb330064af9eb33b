"""Fast-lane record copies cross the TUI's pipe as a template (once) and their own
fields: the UI rebuilds records equal to the full path's, every template is sent
once, and both sides forget templates together past ``TEMPLATES_HELD``.

A real proxy process serving a profile on loopback, the echo backend, real tokens;
the outbox's bound through a real ``FrameEncoder``/``FrameDecoder`` pair."""

from __future__ import annotations

import asyncio
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from proxy_support import Backend, bearer, comparable_record, mint, profile_text, run_proxy

from rrdev.core.records import COPY_FIELDS, RequestRecord, record_copy
from rrdev.servers.proxy import Overrides
from rrdev.servers.proxy.fastrecords import Template
from rrdev.tui import proxy_process_child
from rrdev.tui.proxy_process import ProcessRuntime, profile_process
from rrdev.tui.proxy_process_child import Outbox
from rrdev.tui.proxy_wire import FrameDecoder, FrameEncoder, split_frames

pytestmark = pytest.mark.usefixtures("keyset")

PRODUCTS = "/api/v1/products"


async def _until(condition: Any, timeout: float = 20) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def test_copies_cross_the_pipe_as_fields_and_equal_the_full_paths_record(
    tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text(backend.url))
    runtime = profile_process(profile, port=0, overrides=Overrides(offline=True))
    kinds: Counter[str] = Counter()
    take = ProcessRuntime._take

    def counting(self: ProcessRuntime, items: list[tuple[str, Any]]) -> None:
        kinds.update(kind for kind, _ in items)
        take(self, items)

    monkeypatch.setattr(ProcessRuntime, "_take", counting)
    records: list[RequestRecord] = []
    info = await runtime.start(records.append, lambda kind, message: None)
    try:
        token, other = mint(subject="reader-1"), mint(subject="reader-2")
        url = info.proxy_url + PRODUCTS
        async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
            for headers in [bearer(token)] * 6 + [bearer(other)] * 4:
                assert (await client.get(url, headers=headers)).status_code == 200
        await _until(lambda: len(records) == 10)
    finally:
        await runtime.stop()
    # Per token: verified on the full path, then learnt (full path), then copies.
    assert kinds["t"] == 2 and kinds["c"] == 4 + 2 and kinds["r"] == 2 + 2
    for first, copies in ((records[1], records[2:6]), (records[7], records[8:10])):
        for copy in copies:
            assert comparable_record(copy) == comparable_record(first)
            assert copy.time >= first.time and copy.total_ms > 0 and copy.upstream_ms
            assert copy.response_preview is not None and copy.request_headers
            decision = copy.explanation.decision  # the trace opens on the UI's side
            assert decision is not None and decision.scopes
    assert records[2].subject == "reader-1" and records[9].subject == "reader-2"
    assert token not in repr(records) and other not in repr(records)


class _Upstream:
    """The child's upstream, as frames through a real encoder, decoded again."""

    def __init__(self) -> None:
        self.encoder, self.decoder = FrameEncoder(), FrameDecoder()
        self.frames: list[Any] = []

    def send(self, value: object) -> None:
        for payload, fresh in split_frames(self.encoder.encode(value)):
            self.frames.append(self.decoder.load(payload, fresh=fresh))

    def backlog(self) -> int:
        return 0


def _template(fixed: dict[str, Any]) -> Template:
    template = Template.__new__(Template)
    template.fixed = fixed
    template.id = id(template)
    return template


def _ui_side(records: list[RequestRecord], notices: list[Any]) -> ProcessRuntime:
    """The UI's end of the pipe, as ``start`` leaves it, without a child."""
    runtime = ProcessRuntime.__new__(ProcessRuntime)
    runtime._sink = records.append
    runtime._on_event = lambda *notice: notices.append(notice)
    runtime._templates = {}
    return runtime


def _fields(n: int) -> tuple[Any, ...]:
    values = {"time": float(n), "status": 200, "bytes_out": n, "response_truncated": False}
    return tuple(values.get(name) for name in COPY_FIELDS)


async def test_both_sides_forget_templates_together(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(proxy_process_child, "TEMPLATES_HELD", 2)
    upstream = _Upstream()
    outbox = Outbox(upstream, lambda: None)  # type: ignore[arg-type, return-value]
    templates = [_template({"method": "GET", "path": f"/p/{i}"}) for i in range(3)]
    order = [0, 1, 0, 2, 0, 2]
    for n, index in enumerate(order):
        outbox.template_copy(templates[index], _fields(n))
    outbox.flush()
    ((kind, items),) = upstream.frames
    assert kind == "batch"
    sent = [(k, v if k != "t" or v is None else v[0]) for k, v in items if k != "c"]
    ids = [t.id for t in templates]
    # The third template is past the bound: both sides start over, so the first one
    # is sent again before its next copy.
    assert sent == [("t", ids[0]), ("t", ids[1]), ("t", None), ("t", ids[2]), ("t", ids[0])]

    records: list[RequestRecord] = []
    runtime = _ui_side(records, [])
    runtime._take(items)
    assert [r.path for r in records] == [f"/p/{i}" for i in order]
    assert [r.bytes_out for r in records] == list(range(len(order)))
    assert all(r.upstream_status == r.status == 200 and r.auth_ms == 0.0 for r in records)
    assert len(runtime._templates) == 2  # what the child holds, no more


def test_a_copy_is_the_template_with_its_own_fields() -> None:
    fixed = {"method": "GET", "path": "/x", "reason": "allowed"}
    record = record_copy(fixed, _fields(7))
    assert (record.method, record.path, record.reason) == ("GET", "/x", "allowed")
    assert (record.time, record.status, record.upstream_status, record.bytes_out) == (
        7.0,
        200,
        200,
        7,
    )
    assert fixed == {"method": "GET", "path": "/x", "reason": "allowed"}  # not changed
    with pytest.raises(ValueError):
        record_copy(fixed, _fields(1)[:-1])  # a field short: never a silent shift


class _BrokenCopies:
    """A sink whose ``template_copy`` fails (whole records still arrive)."""

    def __init__(self) -> None:
        self.records: list[RequestRecord] = []

    def __call__(self, record: RequestRecord) -> None:
        self.records.append(record)

    def template_copy(self, template: Template, fields: tuple[Any, ...]) -> None:
        raise RuntimeError("the inspector broke")


async def test_a_failing_copy_sink_never_fails_the_request(
    tmp_path: Path, backend: Backend
) -> None:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text(backend.url))
    sink = _BrokenCopies()
    async with run_proxy(profile) as proxy, httpx.AsyncClient(trust_env=False) as client:
        proxy.app.sink = sink
        headers = bearer(mint())
        statuses = [
            (await client.get(proxy.url + PRODUCTS, headers=headers)).status_code for _ in range(4)
        ]
        await _until(lambda: len(proxy.events) >= 2)
    assert statuses == [200] * 4 and backend.hits == 4
    assert len(sink.records) == 2  # verified, then learnt; the copies failed
    assert [kind for kind, _ in proxy.events] == ["record_failed"] * 2
    assert all("the inspector broke" in message for _, message in proxy.events)


async def test_a_ui_far_behind_gets_a_count_not_the_records() -> None:
    upstream = _Upstream()
    outbox = Outbox(upstream, lambda: None)  # type: ignore[arg-type, return-value]
    template = _template({"method": "GET", "path": "/p"})
    upstream.backlog = lambda: proxy_process_child.BACKLOG_BYTES + 1  # type: ignore[method-assign]
    outbox.template_copy(template, _fields(0))
    outbox(record_copy(template.fixed, _fields(1)))
    assert outbox.items == [] and outbox.dropped == 2
    upstream.backlog = lambda: 0  # type: ignore[method-assign]
    outbox.template_copy(template, _fields(2))  # its template was never sent: sent now
    outbox.flush()
    ((_, items),) = upstream.frames
    assert [kind for kind, _ in items] == ["t", "c", "d"] and items[-1] == ("d", 2)

    records: list[RequestRecord] = []
    notices: list[tuple[str, str]] = []
    _ui_side(records, notices)._take(items)
    assert [r.bytes_out for r in records] == [2]
    assert notices == [("record_failed", "2 requests were not shown: the inspector fell behind")]
