"""`rrdev up --workers N` as a process: N workers on one port, one console, one log file,
hot reload in every worker, Ctrl+C stops them all and leaves no process behind."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from proxy_support import (
    SEED_RULES,
    Backend,
    UpProcess,
    bearer,
    mint,
    profile_text,
    start_up,
    wait_for,
)
from typer.testing import CliRunner

from rrdev.cli.app import app
from rrdev.cli.up_workers import NoticeOnce
from rrdev.core.record_line import RecordLine
from rrdev.core.records import Explanation, RequestRecord

pytestmark = [
    pytest.mark.usefixtures("keyset"),
    pytest.mark.skipif(sys.platform != "linux", reason="reads /proc for child processes"),
]

DENY_PRODUCTS = """
[[proxy.rules]]
id = "freeze-products"
effect = "deny"
path = { pattern = "^/api/v1/products" }
"""


def rewrite(path: Path, text: str) -> None:
    """A new version in one rename, as editors save: no worker reads half a file."""
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    partial.replace(path)


def worker_pids(up: UpProcess) -> list[int]:
    """The worker pids the banner names."""
    banner = "".join(up.banner)
    match = re.search(r"workers\s+2 processes share the port \(pids (\d+), (\d+)\)", banner)
    assert match, banner
    return [int(match.group(1)), int(match.group(2))]


def children(pid: int) -> list[int]:
    """Live (not zombie) processes whose parent is ``pid``."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        state, ppid = stat.rsplit(")", 1)[1].split()[:2]
        if int(ppid) == pid and state != "Z":
            found.append(int(entry))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


async def until_gone(pids: list[int], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids):
        assert time.monotonic() < deadline, f"still running: {[p for p in pids if alive(p)]}"
        await asyncio.sleep(0.05)


def records(log: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in log.read_text().splitlines()]


async def burst(url: str, token: str, count: int = 24) -> list[httpx.Response]:
    """``count`` requests at once, each on a connection of its own."""
    limits = httpx.Limits(max_keepalive_connections=0)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:
        return await asyncio.gather(
            *(client.get(f"{url}/api/v1/products", headers=bearer(token)) for _ in range(count))
        )


async def served_by_both(url: str, token: str, log: Path, status: int, since: int = 0) -> None:
    """Send bursts until the log shows both workers answering ``status`` (the kernel
    picks which worker accepts a connection)."""
    deadline = time.monotonic() + 15
    while True:
        answers = await burst(url, token)
        assert {answer.status_code for answer in answers} == {status}
        await asyncio.sleep(0.05)
        seen = {r["worker"] for r in records(log)[since:] if r["status"] == status}
        if seen == {1, 2}:
            return
        assert time.monotonic() < deadline, f"only worker(s) {seen} answered"


async def until_both_answer(url: str, token: str, log: Path, status: int) -> None:
    """Send bursts until every answer is ``status`` and both workers gave it: each
    worker's watcher sees an edit within its next poll, later on a busy machine."""
    deadline = time.monotonic() + 15
    while True:
        since = len(records(log))
        answers = await burst(url, token)
        await asyncio.sleep(0.05)
        seen = {r["worker"] for r in records(log)[since:] if r["status"] == status}
        if {answer.status_code for answer in answers} == {status} and seen == {1, 2}:
            return
        assert time.monotonic() < deadline, f"only worker(s) {seen} answered {status}"


async def start_workers(profile: Path, backend: Backend, log: Path, **options: Any) -> UpProcess:
    """``rrdev up --workers 2`` in a child; returns once it is serving, banner read."""
    up = await start_up(
        profile,
        {},
        port=0,
        target=backend.url,
        offline=True,
        log_file=str(log),
        workers=2,
        **options,
    )
    assert up.process.stdout is not None
    while "Ctrl+C to stop" not in up.banner[-1]:
        up.banner.append((await asyncio.wait_for(up.process.stdout.readline(), 20)).decode())
    return up


async def test_two_workers_share_the_port_and_ctrl_c_stops_both(
    tmp_path: Path, backend: Backend
) -> None:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text("https://api.example.invalid"))
    log = tmp_path / "requests.jsonl"
    up = await start_workers(profile, backend, log)
    pids = worker_pids(up)
    assert sorted(children(up.process.pid)) == sorted(pids)
    token = mint()
    await served_by_both(up.url, token, log, 200)
    async with httpx.AsyncClient(timeout=10) as client:
        denied = await client.get(f"{up.url}/api/v1/products")
        hits = backend.hits
        slow = asyncio.create_task(client.get(f"{up.url}/slow?delay=0.8", headers=bearer(token)))
        # the slow request is in flight in one of the workers
        await wait_for(lambda: backend.hits > hits)
        up.process.send_signal(signal.SIGINT)
        drained = await slow
    code, rest, err = await up.finish()
    await until_gone(pids)
    out = "".join(up.banner) + rest
    assert code == 0, err
    assert "Traceback" not in out + err
    assert "stopping" in out
    assert children(up.process.pid) == []
    assert denied.status_code == 401 and denied.json()["reason"] == "token_missing"
    assert drained.status_code == 200  # finished, not cut off
    # One log file, every line whole JSON, from both workers; one console line each.
    logged = records(log)
    assert len(logged) == backend.hits + 1
    assert {r["worker"] for r in logged} == {1, 2}
    assert all(r["explanation"]["reason"] == r["reason"] for r in logged)
    lines = [line for line in out.splitlines() if "/api/v1/products" in line or "/slow" in line]
    assert len(lines) == len(logged)
    assert any(re.search(r"\d  w1  GET +/api/v1/products  200 ", line) for line in lines)
    assert any(re.search(r"\d  w2  GET +/api/v1/products  200 ", line) for line in lines)
    assert any(" 401 " in line and "token_missing" in line for line in lines)
    assert token not in out + err + log.read_text()


async def test_an_edit_reloads_every_worker_and_a_broken_one_is_said_once(
    tmp_path: Path, backend: Backend
) -> None:
    profile = tmp_path / "rrdev.toml"
    good = profile_text(backend.url)
    profile.write_text(good)
    log = tmp_path / "requests.jsonl"
    up = await start_workers(profile, backend, log)
    pids = worker_pids(up)
    token = mint()
    await served_by_both(up.url, token, log, 200)
    rewrite(profile, profile_text(backend.url, rules=SEED_RULES + DENY_PRODUCTS))
    await until_both_answer(up.url, token, log, 403)  # both watchers have seen it
    hits, since = backend.hits, len(records(log))
    await served_by_both(up.url, token, log, 403, since)
    assert backend.hits == hits  # refused by both, forwarded by none
    broken = good.replace('default_effect = "deny"', 'default_effect = "maybe"')
    rewrite(profile, broken)
    await asyncio.sleep(2.0)  # both background watchers (every 0.5 s) have seen it
    since = len(records(log))
    await served_by_both(up.url, token, log, 403, since)  # the last good profile, in both
    assert backend.hits == hits
    up.process.send_signal(signal.SIGTERM)
    code, rest, err = await up.finish()
    await until_gone(pids)
    assert code == 0, err
    line = broken.splitlines().index('default_effect = "maybe"') + 1
    assert rest.count("reloaded:") == 1, rest
    assert err.count("reload failed:") == 1, err
    assert f"{profile}:{line}" in err and "still serving the last good profile" in err


async def test_a_worker_that_dies_stops_the_others_with_exit_1(
    tmp_path: Path, backend: Backend
) -> None:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text(backend.url))
    log = tmp_path / "log.jsonl"
    up = await start_workers(profile, backend, log, quiet=True)
    first, second = worker_pids(up)
    await served_by_both(up.url, mint(), log, 200)
    os.kill(second, signal.SIGKILL)
    code, rest, err = await up.finish()
    await until_gone([first, second])
    assert code == 1
    assert f"worker 2 (pid {second}) was killed by SIGKILL; the other workers were stopped" in err
    assert "Traceback" not in err
    assert "/api/v1/products" not in rest  # --quiet: no request line from any worker


async def test_a_second_ctrl_c_stops_the_workers_at_once(tmp_path: Path, backend: Backend) -> None:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text(backend.url))
    up = await start_workers(profile, backend, tmp_path / "log.jsonl")
    pids = worker_pids(up)
    async with httpx.AsyncClient(timeout=30) as client:
        hits = backend.hits
        slow = asyncio.create_task(client.get(f"{up.url}/slow?delay=20", headers=bearer(mint())))
        await wait_for(lambda: backend.hits > hits)  # the slow request is in flight
        up.process.send_signal(signal.SIGINT)  # waits for the slow request...
        await asyncio.sleep(0.3)
        # The worker holding the slow request drains it; an idle one may already be gone.
        assert any(alive(pid) for pid in pids)
        started = time.monotonic()
        up.process.send_signal(signal.SIGINT)  # ...until told again
        code, _rest, err = await up.finish()
        await until_gone(pids)
        (cut,) = await asyncio.gather(slow, return_exceptions=True)
    # Cut short (a closed connection, or a 502 as the backend connection closed first).
    assert not isinstance(cut, httpx.Response) or cut.status_code != 200, repr(cut)
    assert time.monotonic() - started < 5
    assert code == 0, err


async def test_workers_stop_when_the_parent_is_killed(tmp_path: Path, backend: Backend) -> None:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text(backend.url))
    up = await start_workers(profile, backend, tmp_path / "log.jsonl")
    pids = worker_pids(up)
    up.process.kill()  # no chance to stop them: they see their stdin close
    await up.finish()
    await until_gone(pids)


async def test_a_port_in_use_is_exit_3_before_any_worker_starts(
    tmp_path: Path, backend: Backend
) -> None:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text(backend.url))
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        up = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "rrdev",
            "up",
            str(profile),
            "--port",
            str(port),
            "--workers",
            "2",
            "--offline",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "NO_COLOR": "1", "COLUMNS": "300"},
        )
        out, err = await asyncio.wait_for(up.communicate(), 20)
    assert up.returncode == 3
    assert f"127.0.0.1:{port} is already in use" in err.decode()
    assert "workers" not in out.decode()


async def test_a_worker_that_cannot_start_fails_the_start_with_its_own_error(
    tmp_path: Path,
) -> None:
    """The profile broke after ``rrdev up`` checked it: the workers' error (file, line,
    key; exit 3) is the start's, and none is left running."""
    from rrdev.core.errors import RrdevError
    from rrdev.servers.runner import bind_socket
    from rrdev.servers.workers import WorkerConfig, WorkerPool

    profile = tmp_path / "rrdev.toml"
    profile.write_text("[proxy]\ndefault_effect = 'maybe'\n")
    sock = bind_socket("127.0.0.1", 0)
    sock.listen()
    config = WorkerConfig(profile_path=str(profile), host="127.0.0.1", port=0)
    pool = WorkerPool(sock, 2, config, lambda *message: None)
    try:
        with pytest.raises(RrdevError) as failed:
            await pool.start()
        pids = pool.pids
    finally:
        await pool.close()
    await until_gone(pids)
    assert failed.value.exit_code == 3
    assert f"{profile}:2" in str(failed.value) and "proxy.default_effect" in str(failed.value)
    assert sock.fileno() == -1  # the parent's copy is closed: the port is free again


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "0"], "--workers must be at least 1 (got 0)"),
        (["--workers", "-2"], "--workers must be at least 1 (got -2)"),
        (["--workers", "65"], "--workers 65 is more than 64"),
        (["--workers", "2", "--tui"], "--workers cannot be combined with --tui"),
        (["--workers", "2", "--demo"], "--workers cannot be combined with --demo"),
    ],
)
def test_bad_workers_values_are_usage_errors(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, args: list[str], message: str
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["up", *args])
    assert result.exit_code == 2
    assert message in " ".join(result.output.split())


def test_a_notice_is_said_once_for_all_workers_and_again_when_it_recurs() -> None:
    once = NoticeOnce()
    said = [
        once.first(1, "reload_failed", "x"),
        once.first(2, "reload_failed", "x"),  # the same edit, seen by worker 2
        once.first(2, "reloaded", "y"),
        once.first(1, "reloaded", "y"),
        once.first(1, "reload_failed", "x"),  # broken again: a new occurrence
        once.first(2, "reload_failed", "x"),
    ]
    assert said == [True, False, True, False, True, False]


def test_a_record_line_survives_json_and_draws_like_the_record() -> None:
    from rrdev.cli.render import request_line

    expl = Explanation(403, "rule_denied", "proxy rule 'gate' denies DELETE /x")
    record = RequestRecord(
        1_800_000_000.0, "DELETE", "/x", (("a", "1"),), 403, "rule_denied", "gate", expl
    )
    line = RecordLine.from_dict(json.loads(json.dumps(RecordLine.of(record).to_dict())))
    assert line == RecordLine.of(record)
    assert request_line(line).plain == request_line(record).plain
    assert request_line(line, worker=2).plain.split()[1] == "w2"
