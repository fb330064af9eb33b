"""`rrdev tui` serves from a child process (rrdev.tui.proxy_process): records from the
child reach the table, a hot reload reaches the rules view, quitting ends the child
and frees the port, a parent that dies takes its child with it, a port in use is the
same `PortInUse`, and a child that dies later shows in the status line. Through
Textual's pilot and real processes, against a real proxy on loopback."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from alias_support import OPEN, open_rules, send
from proxy_support import Backend, bearer, mint, profile_text
from textual.pilot import Pilot

from rrdev.core.errors import ProfileError
from rrdev.core.explain import IncomingRequest
from rrdev.servers.proxy import Overrides
from rrdev.servers.runner import PortInUse
from rrdev.tui.app import RrdevApp
from rrdev.tui.proxy_process import ProcessRuntime, alias_process, demo_process, profile_process
from rrdev.tui.widgets.help import HelpScreen

pytestmark = pytest.mark.usefixtures("keyset")

SIZE = (140, 40)
PRODUCTS = "/api/v1/products"


async def until(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


async def until_async(condition: Callable[[], bool], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


def write_profile(tmp_path: Path, backend: Backend) -> Path:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text(backend.url))
    return profile


def runtime_for(profile: Path) -> ProcessRuntime:
    return profile_process(profile, port=0, overrides=Overrides(offline=True), reload_interval=0.1)


def port_of(url: str) -> int:
    return int(url.rsplit(":", 1)[1])


def port_is_free(port: int) -> bool:
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_records_from_the_child_show_in_the_table(tmp_path: Path, backend: Backend) -> None:
    runtime = runtime_for(write_profile(tmp_path, backend))
    app = RrdevApp(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.info is not None)
        assert app.info is not None and runtime.process is not None
        assert runtime.process.pid != os.getpid()
        url = app.info.proxy_url + PRODUCTS
        token = mint()
        async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
            allowed = await client.get(url, headers=bearer(token))
            refused = await client.get(url)
        assert (allowed.status_code, refused.status_code) == (200, 401)
        assert refused.json()["reason"] == "token_missing"
        await until(pilot, lambda: app.table.row_count == 2)
        rows = [[str(cell) for cell in app.table.get_row_at(i)] for i in range(2)]
        assert [row[1:5] for row in rows] == [
            ["GET", PRODUCTS, "200", "allowed"],
            ["GET", PRODUCTS, "401", "token_missing"],
        ]
        assert backend.hits == 1
        # The record crossed the pipe whole: its exchange and its trace are there.
        record = app.store.get(1)
        assert record is not None and record.request_headers
        assert "authorization" in dict(record.request_headers)
        assert token not in repr(record)  # redacted in the child, before the pipe
        decision = record.explanation.decision
        assert decision is not None and decision.scopes


async def test_a_reload_in_the_child_reaches_the_ui(tmp_path: Path, backend: Backend) -> None:
    profile = write_profile(tmp_path, backend)
    runtime = runtime_for(profile)
    app = RrdevApp(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.info is not None)
        before = runtime.profile()
        assert before is not None and before.proxy.default_effect == "deny"
        profile.write_text(
            profile_text(backend.url).replace('default_effect = "deny"', 'default_effect = "allow"')
        )
        await until(pilot, lambda: any(n.title == "Profile reloaded" for n in app.notice_log))
        after = runtime.profile()
        assert after is not None and after.proxy.default_effect == "allow"
        # The dry run decides with the child's profile in force, as the live proxy.
        explanation = await runtime.dry_run(IncomingRequest("GET", "/nowhere"))
        assert explanation is not None


async def test_quitting_ends_the_child_and_frees_the_port(tmp_path: Path, backend: Backend) -> None:
    runtime = runtime_for(write_profile(tmp_path, backend))
    app = RrdevApp(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.info is not None)
        assert app.info is not None and runtime.process is not None
        port, pid = port_of(app.info.proxy_url), runtime.process.pid
        assert not port_is_free(port)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.press("escape")
        await pilot.press("q")
        await pilot.pause()
    assert runtime.process.poll() == 0  # stopped cleanly, not killed
    assert not alive(pid)
    assert port_is_free(port)


async def test_a_port_in_use_is_port_in_use_and_leaves_no_child(
    tmp_path: Path, backend: Backend
) -> None:
    profile = write_profile(tmp_path, backend)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        runtime = profile_process(profile, port=port, overrides=Overrides(offline=True))
        with pytest.raises(PortInUse) as caught:
            await runtime.start(lambda record: None, lambda kind, message: None)
    assert caught.value.exit_code == 3
    assert "already in use" in caught.value.message
    assert runtime.process is not None and runtime.process.poll() is not None
    await runtime.stop()  # safe after a failed start


async def test_a_broken_profile_fails_before_any_child_starts(tmp_path: Path) -> None:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text("http://127.0.0.1:9").replace('"deny"', '"maybe"', 1))
    with pytest.raises(ProfileError) as caught:
        profile_process(profile, port=0)
    assert f"{profile}:" in str(caught.value) and "proxy.default_effect" in str(caught.value)


async def test_a_child_that_dies_shows_in_the_status_line(tmp_path: Path, backend: Backend) -> None:
    runtime = runtime_for(write_profile(tmp_path, backend))
    app = RrdevApp(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.info is not None)
        assert runtime.process is not None
        runtime.process.kill()
        await until(pilot, lambda: app.proxy_error is not None)
        assert "killed by SIGKILL" in str(app.proxy_error)
        assert "proxy stopped" in str(app.status_line.content)
        assert any(n.title == "The proxy stopped" for n in app.notice_log)
        # Calls say the proxy is gone rather than hang.
        assert await runtime.dry_run(IncomingRequest("GET", PRODUCTS)) is None


_PARENT = """
import asyncio, json, sys
from rrdev.servers.proxy import Overrides
from rrdev.tui.proxy_process import profile_process

async def main():
    runtime = profile_process(sys.argv[1], port=0, overrides=Overrides(offline=True))
    info = await runtime.start(lambda r: None, lambda k, m: None)
    print(json.dumps([runtime.process.pid, info.proxy_url]), flush=True)
    await asyncio.sleep(3600)

asyncio.run(main())
"""


def test_the_child_exits_when_its_parent_dies(tmp_path: Path) -> None:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text("http://127.0.0.1:9"))  # nothing is forwarded
    parent = subprocess.Popen(
        [sys.executable, "-c", _PARENT, str(profile)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        pid, url = json.loads(parent.stdout.readline())
        assert alive(pid) and not port_is_free(port_of(url))
        parent.send_signal(signal.SIGKILL)  # no clean-up of any kind: only the pipe's end
        parent.wait(timeout=10)
        deadline = time.monotonic() + 20
        while alive(pid) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not alive(pid), "the proxy process outlived its parent"
        assert port_is_free(port_of(url))
    finally:
        parent.kill()
        parent.wait()


async def test_the_demo_runs_in_the_child(tmp_path: Path) -> None:
    runtime = demo_process(proxy_port=0, home=tmp_path / "home")
    app = RrdevApp(runtime, demo_traffic=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.info is not None)
        assert [r.expected_status for r in runtime.demo_requests()] == [200, 401, 401, 403]
        keyset = runtime.signing_keyset()
        assert keyset is not None  # read here from the file, never sent by the child
        await pilot.press("g")
        await until(pilot, lambda: app.table.row_count == 4)
        statuses = [str(app.table.get_row_at(i)[3]) for i in range(4)]
        assert statuses == ["200", "401", "401", "403"]


async def test_several_profiles_run_in_the_child(tmp_path: Path, backend: Backend) -> None:
    paths = []
    for alias, prefix in (("alpha", "a"), ("beta", "b")):
        path = tmp_path / f"{alias}.toml"
        path.write_text(
            profile_text(
                backend.url,
                proxy=f'alias = "{alias}"',
                proxy_credential=OPEN,
                rules=open_rules(prefix),
            )
        )
        paths.append(str(path))
    runtime = alias_process(paths, port=0)
    assert runtime.aliases == ("alpha", "beta")  # known before the child starts
    app = RrdevApp(runtime)
    async with app.run_test(size=(160, 40)) as pilot:
        # ``info`` is set as the proxy starts; the title when the app hears of it.
        await until(pilot, lambda: app.title == "rrdev · 2 proxies (alpha, beta)")
        assert app.info is not None
        port = port_of(app.info.proxy_url)
        await send(port, ["alpha.localhost"], "/a/1")
        await send(port, ["beta.localhost"], "/a/1")  # beta allows /b/ only
        await until(pilot, lambda: app.table.row_count == 2)
        rows = [[str(c) for c in app.table.get_row_at(i)] for i in range(2)]
        assert [(row[1], row[4]) for row in rows] == [("alpha", "200"), ("beta", "403")]
        assert runtime.signing_keyset() is None
    assert [e["raw_path"] for e in backend.seen] == ["/a/1"]
