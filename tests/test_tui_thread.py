"""`rrdev tui` keeps the proxy off the UI's event loop: the proxy serves on its own
thread and loop, records reach the UI in batches, the demo's `g` reuses one client,
and quitting ends the thread and frees the port. Through Textual's pilot, against a
real proxy on loopback (a profile in tmp_path with the local keyset, or the demo)."""

from __future__ import annotations

import asyncio
import gc
import http.client
import logging
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from proxy_support import Backend, bearer, mint, profile_text
from textual.pilot import Pilot

from rrdev.core.errors import RrdevError
from rrdev.core.jwk import JwksStatus
from rrdev.core.records import Explanation, RequestRecord
from rrdev.servers.proxy import Overrides
from rrdev.servers.runner import PortInUse, bind_socket
from rrdev.tui.app import RrdevApp
from rrdev.tui.runtime import DemoRuntime, DemoSent, ProfileRuntime, RuntimeInfo
from rrdev.tui.store import Inbox
from rrdev.tui.widgets.help import HelpScreen

pytestmark = pytest.mark.usefixtures("keyset")

SIZE = (140, 40)
PRODUCTS = "/api/v1/products"


async def until(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


def profile_runtime(tmp_path: Path, backend: Backend) -> ProfileRuntime:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text(backend.url))
    return ProfileRuntime.from_path(profile, port=0, overrides=Overrides(offline=True))


def proxy_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "rrdev-proxy"]


def get(url: str, headers: dict[str, str]) -> int:
    """One blocking request (no event loop involved)."""
    host, port = url.removeprefix("http://").split(":")
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request("GET", PRODUCTS, headers=headers)
        return connection.getresponse().status
    finally:
        connection.close()


@asynccontextmanager
async def load(url: str, headers: dict[str, str], workers: int = 2) -> AsyncIterator[list[int]]:
    """Keep-alive GETs from plain threads until the block ends; yields the statuses.
    (Ending waits without blocking this loop: the test's backend runs on it.)"""
    host, port = url.removeprefix("http://").split(":")
    statuses: list[int] = []
    done = threading.Event()

    def worker() -> None:
        connection = http.client.HTTPConnection(host, int(port), timeout=10)
        try:
            while not done.is_set():
                connection.request("GET", PRODUCTS, headers=headers)
                response = connection.getresponse()
                response.read()
                statuses.append(response.status)
        except OSError:  # the proxy stopped under us: the test will say what it expected
            pass
        finally:
            connection.close()

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(workers)]
    for thread in threads:
        thread.start()
    try:
        yield statuses
    finally:
        done.set()
        deadline = time.monotonic() + 15
        while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)


# ------------------------------------------------------------------ the proxy's own thread


async def test_the_proxy_answers_while_the_ui_loop_is_blocked(
    tmp_path: Path, backend: Backend
) -> None:
    runtime = profile_runtime(tmp_path, backend)
    app = RrdevApp(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.info is not None)
        assert app.info is not None
        thread = runtime.thread.thread if runtime.thread else None
        assert thread is not None and thread.is_alive()
        assert thread is not threading.current_thread()
        # A blocking call on the UI's loop: were the proxy on this loop, it could not
        # answer until the call gave up.
        # (No token: the backend runs on this very loop, so it could not answer.)
        assert get(app.info.proxy_url, {}) == 401
        await until(pilot, lambda: app.table.row_count == 1)
        row = [str(cell) for cell in app.table.get_row_at(0)]
        assert row[1:5] == ["GET", PRODUCTS, "401", "token_missing"]
        assert backend.hits == 0
        assert app.store.total == 1


async def test_many_requests_reach_the_table_in_batches(tmp_path: Path, backend: Backend) -> None:
    runtime = profile_runtime(tmp_path, backend)
    app = RrdevApp(runtime, flush_interval=2.0)  # a slow machine still batches
    count = 500
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.info is not None)
        assert app.info is not None
        url = app.info.proxy_url + PRODUCTS
        headers = bearer(mint())
        lanes = 16
        async with httpx.AsyncClient(trust_env=False, timeout=30) as client:

            async def lane(n: int) -> list[int]:
                return [(await client.get(url, headers=headers)).status_code for _ in range(n)]

            # 16 callers in a row each, not 500 requests queued on one pool: httpx scans
            # its whole queue on every event, and the loop it starves (this test's, the
            # UI's) once left connections idle past the proxy's keep-alive.
            shares = [count // lanes + (i < count % lanes) for i in range(lanes)]
            answers = await asyncio.gather(*(lane(n) for n in shares))
        assert {status for statuses in answers for status in statuses} == {200}
        await until(pilot, lambda: app.table.row_count == count)
        assert app.store.total == count and backend.hits == count
        # One table update per batch, never one per request.
        assert 1 <= app.batches <= count // 5


async def test_records_put_from_another_thread_arrive_as_one_batch() -> None:
    app = RrdevApp(Idle(), flush_interval=0.2)  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.info is not None)
        before = app.batches
        records = [synthetic(i) for i in range(300)]
        feeder = threading.Thread(target=lambda: [app.record_sink(r) for r in records])
        feeder.start()
        feeder.join()
        await until(pilot, lambda: app.table.row_count == 300)
        assert app.batches - before <= 2  # put faster than one tick: one or two batches
        assert app.store.total == 300


async def test_help_opens_while_traffic_flows(tmp_path: Path, backend: Backend) -> None:
    runtime = profile_runtime(tmp_path, backend)
    app = RrdevApp(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.info is not None)
        assert app.info is not None
        async with load(app.info.proxy_url, bearer(mint())) as statuses:
            await until(pilot, lambda: app.store.total >= 20)
            for _ in range(3):
                seen = app.store.total
                await pilot.press("question_mark")
                assert isinstance(app.screen, HelpScreen)
                await pilot.press("escape")
                assert not isinstance(app.screen, HelpScreen)
                await until(pilot, lambda seen=seen: app.store.total > seen)  # still flowing
            await pilot.press("up")
            assert not app.table.follow
        assert statuses and set(statuses) == {200}
        await until(pilot, lambda: app.store.total == len(statuses))


async def test_quitting_stops_the_proxy_thread_and_frees_the_port(
    tmp_path: Path, backend: Backend, caplog: pytest.LogCaptureFixture
) -> None:
    runtime = profile_runtime(tmp_path, backend)
    app = RrdevApp(runtime)
    caplog.set_level(logging.WARNING, logger="asyncio")
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.info is not None)
        assert app.info is not None
        port = int(app.info.proxy_url.rsplit(":", 1)[1])
        proxy_thread = runtime.thread
        assert proxy_thread is not None and proxy_thread.thread is not None
        thread = proxy_thread.thread
        async with load(app.info.proxy_url, bearer(mint())):
            await until(pilot, lambda: app.store.total >= 10)
            await pilot.press("q")  # quits while requests are in flight
            await pilot.pause()
    assert not thread.is_alive()
    assert runtime.thread is None and runtime.server is None
    assert proxy_threads() == []
    bind_socket("127.0.0.1", port).close()  # the port is free again
    gc.collect()
    assert not [r for r in caplog.records if "destroyed" in r.getMessage()]


async def test_a_port_in_use_ends_the_thread_it_started(tmp_path: Path, backend: Backend) -> None:
    busy = bind_socket("127.0.0.1", 0)
    busy.listen()
    try:
        profile = tmp_path / "rrdev.toml"
        profile.write_text(profile_text(backend.url))
        runtime = ProfileRuntime.from_path(profile, port=busy.getsockname()[1])
        with pytest.raises(PortInUse):
            await runtime.start(lambda record: None, lambda kind, message: None)
        assert runtime.thread is None and proxy_threads() == []
        await runtime.stop()  # safe after a failed start
    finally:
        busy.close()


# ------------------------------------------------------------------ demo traffic


async def test_g_reuses_one_client_on_the_proxy_thread() -> None:
    runtime = DemoRuntime(proxy_port=0, issuer_port=0, backend_port=0)
    app = RrdevApp(runtime, demo_traffic=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.info is not None)
        assert runtime.client is None  # nothing sent yet
        clients = []
        for presses in range(1, 4):
            await pilot.press("g")
            await until(pilot, lambda presses=presses: app.table.row_count == 4 * presses)
            clients.append(runtime.client)
        assert runtime.clients_made == 1
        assert clients[0] is not None and all(c is clients[0] for c in clients)
        sent = await runtime.send_demo_requests()
        assert sent == DemoSent(4)
    assert runtime.client is None and clients[0].is_closed  # closed on quit
    assert proxy_threads() == []


# ------------------------------------------------------------------ the table


async def test_the_table_is_capped_at_the_buffer_and_keeps_the_selection() -> None:
    app = RrdevApp(Idle(), max_records=50, flush_interval=0.05)  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.info is not None)
        for i in range(40):
            app.record_sink(synthetic(i))
        await until(pilot, lambda: app.table.row_count == 40)
        await pilot.press("up", "up", "up")  # off the tail: the cursor stays put
        chosen = app.table.chosen()
        assert chosen is not None and not app.table.follow
        for i in range(40, 70):  # 70 records: 20 fall out of the buffer
            app.record_sink(synthetic(i))
        await until(pilot, lambda: app.store.total == 70 and app.table.pending == 0)
        assert app.table.row_count == 50 == len(app.store)
        assert app.table.chosen() == chosen  # the same record, now 20 rows higher
        first = [str(cell) for cell in app.table.get_row_at(0)]
        assert first[2] == "/api/v1/items/20"


def test_the_inbox_counts_what_it_dropped() -> None:
    inbox: Inbox[int] = Inbox(maxlen=3)
    for i in range(5):
        inbox.put(i)
    assert inbox.take() == ([2, 3, 4], 2)
    assert inbox.take() == ([], 0)


# ------------------------------------------------------------------ helpers


class Idle:
    """A runtime that serves nothing: records come from the test through the sink."""

    demo = False

    async def start(self, sink: Any, on_event: Any) -> RuntimeInfo:
        return RuntimeInfo("synthetic", "-", "http://127.0.0.1:0", "http://backend", None, "none")

    async def stop(self) -> None:
        return None

    def info(self) -> RuntimeInfo | None:
        return None

    def jwks_status(self) -> JwksStatus | None:
        return None

    def demo_requests(self) -> list[Any]:
        return []

    async def send_demo_requests(self) -> DemoSent:
        raise RrdevError("no demo here")


def synthetic(i: int) -> RequestRecord:
    return RequestRecord(
        time=1_700_000_000 + i / 1000,
        method="GET",
        path=f"/api/v1/items/{i}",
        query=(),
        status=200,
        reason="allowed",
        deciding_rule=None,
        explanation=Explanation(200, "allowed", "synthetic"),
        total_ms=1.0,
    )
