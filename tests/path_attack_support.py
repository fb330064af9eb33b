"""Shared by the path-reading attack tests (``tests/test_attack_*.py`` for the path):
a real proxy over loopback whose deny rule guards ``/admin/`` (so a target the backend
reads as ``/admin/...`` but the rules read otherwise would be a bypass), and the
assertion that a target is refused with 400 ``ambiguous_path`` and never forwarded."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from proxy_support import Backend, RunningProxy, raw_request, run_proxy, wait_for

ERROR_KEYS = {"status", "reason", "message", "hint", "trace"}

GUARDED_PROFILE = """
[target]
name = "backend"
base_url = "{base_url}"

[target_credential]
name = "backend-cred"

[proxy_credential]
auth_type = "none"

[proxy]
name = "guarded"
default_effect = "allow"

[[proxy.rules]]
id = "no-admin"
effect = "deny"
path = "^/admin/"
notes = "the admin API is not exposed through this proxy"
"""


@asynccontextmanager
async def guarded_proxy(backend: Backend, tmp_path: Path) -> AsyncIterator[RunningProxy]:
    path = tmp_path / "guarded.toml"
    path.write_text(GUARDED_PROFILE.format(base_url=backend.url))
    async with run_proxy(path) as proxy:
        yield proxy


async def assert_refused_unforwarded(
    proxy: RunningProxy, backend: Backend, target: str, why: str
) -> None:
    """``target`` gets rrdev's 400 ``ambiguous_path`` (saying ``why``); nothing reaches
    the backend, and the record says the same."""
    hits, records = backend.hits, len(proxy.records)
    answer = await raw_request(proxy.port, "GET", target)
    assert answer.status == 400, answer.body
    assert answer.header("content-type") == "application/json"
    assert answer.header("requestrocket-proxy-code") == "proxy-access-denied"
    assert answer.header("x-backend") is None
    body = answer.json()
    assert set(body) == ERROR_KEYS
    assert (body["status"], body["reason"]) == (400, "ambiguous_path")
    assert why in body["message"], body["message"]
    assert body["hint"]
    assert backend.hits == hits
    await wait_for(lambda: len(proxy.records) > records)
    record = proxy.records[records]
    assert (record.reason, record.upstream_status) == ("ambiguous_path", None)


async def assert_forwarded(proxy: RunningProxy, backend: Backend, target: str) -> None:
    """``target`` reaches the backend byte for byte."""
    answer = await raw_request(proxy.port, "GET", target)
    assert answer.status == 200 and answer.header("x-backend") == "echo", answer.body
    assert backend.seen[-1]["raw_path"] == target


async def assert_rule_denies(proxy: RunningProxy, backend: Backend, target: str) -> None:
    """The guard works on the plain spelling: 403 from the rule, nothing forwarded."""
    hits = backend.hits
    answer = await raw_request(proxy.port, "GET", target)
    assert answer.status == 403 and answer.json()["reason"] == "rule_denied"
    assert backend.hits == hits
