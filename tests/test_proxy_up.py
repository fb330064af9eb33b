"""`rrdev up` as a process: banner, request lines, JSONL log, Ctrl+C drains and exits 0."""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import httpx
import pytest
from proxy_support import Backend, bearer, mint, profile_text, start_up, wait_for

pytestmark = pytest.mark.usefixtures("keyset")


async def test_ctrl_c_drains_in_flight_requests_and_exits_0(
    tmp_path: Path, backend: Backend
) -> None:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text("https://api.example.invalid"))
    log = tmp_path / "requests.jsonl"
    up = await start_up(
        profile,
        {},
        host="0.0.0.0",
        port=0,
        target=backend.url,
        offline=True,
        log_file=str(log),
    )
    async with httpx.AsyncClient(timeout=10) as client:
        denied = await client.get(f"{up.url}/api/v1/products")
        hits = backend.hits
        slow = asyncio.create_task(client.get(f"{up.url}/slow?delay=0.8", headers=bearer(mint())))
        await wait_for(lambda: backend.hits > hits)  # the slow request is in flight
        up.process.send_signal(signal.SIGINT)
        response = await slow
    code, rest, err = await up.finish()
    out = "".join(up.banner) + rest
    assert response.status_code == 200  # drained, not cut off
    assert denied.status_code == 401
    assert code == 0, err
    assert "Traceback" not in out + err
    assert "stopping" in out
    assert "not loopback" in out and f"{backend.url}  (--target)" in out
    assert "local keyset" in out
    lines = [line for line in out.splitlines() if "/api/v1/products" in line or "/slow" in line]
    assert any("401" in line and "token_missing" in line for line in lines)
    assert any("/slow" in line and " 200 " in line for line in lines)
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["status"], r["reason"]) for r in records] == [
        (401, "token_missing"),
        (200, "allowed"),
    ]
    assert records[1]["explanation"]["reason"] == "allowed"
    assert records[1]["upstream_status"] == 200


def test_profile_error_is_exit_3_without_traceback(tmp_path: Path) -> None:
    from io import StringIO

    from rich.console import Console

    from rrdev.cli.up import run_up

    profile = tmp_path / "rrdev.toml"
    profile.write_text("[proxy]\ndefault_effect = 'maybe'\n")
    output = StringIO()
    code = run_up(str(profile), console=Console(file=output, width=300))
    assert code == 3
    assert f"{profile}:2" in output.getvalue()
    assert "Traceback" not in output.getvalue()


def test_bad_target_override_is_a_usage_error(tmp_path: Path, backend: Backend) -> None:
    from io import StringIO

    from rich.console import Console

    from rrdev.cli.up import run_up

    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text(backend.url))
    output = StringIO()
    code = run_up(str(profile), target="ftp://x", console=Console(file=output, width=300))
    assert code == 2
    assert "--target" in output.getvalue()


def test_request_line_carries_the_reason_of_a_refusal() -> None:
    from rrdev.cli.render import request_line
    from rrdev.core.records import Explanation, RequestRecord

    expl = Explanation(403, "rule_denied", "proxy rule 'scope-gate-delete' denies DELETE /x")
    record = RequestRecord(
        time=1_800_000_000.0,
        method="DELETE",
        path="/x",
        query=(("access_token", "[redacted]"),),
        status=403,
        reason="rule_denied",
        deciding_rule="scope-gate-delete",
        explanation=expl,
        total_ms=1.25,
        subject="user-1@clients",
    )
    line = request_line(record).plain
    assert "\n" not in line
    for part in ("DELETE", "/x?access_token=[redacted]", "403", "1.2 ms", "user-1@clients"):
        assert part in line
    assert "rule_denied: proxy rule 'scope-gate-delete' denies DELETE /x" in line
    assert "[rule scope-gate-delete]" in line
    allowed = RequestRecord(
        1.0, "GET", "/y", (), 200, "allowed", "default", Explanation(200, "allowed", "ok")
    )
    assert "allowed" not in request_line(allowed).plain
    assert json.loads(json.dumps(record.to_dict()))["explanation"]["reason"] == "rule_denied"
