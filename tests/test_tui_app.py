"""`rrdev tui` through Textual's pilot, against real parts on loopback: the demo's
issuer, echo backend and proxy (ports 0, keys in a temporary RRDEV_HOME), or a
profile file in tmp_path."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from proxy_support import profile_text
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Static, TabbedContent

from rrdev.core.jwk import JwksStatus
from rrdev.core.records import Explanation, RequestRecord
from rrdev.tui.app import RrdevApp
from rrdev.tui.runtime import DemoRuntime, ProfileRuntime, RuntimeInfo
from rrdev.tui.widgets.detail import RequestScreen
from rrdev.tui.widgets.filter_bar import FilterBar
from rrdev.tui.widgets.help import HelpScreen, HelpText

pytestmark = pytest.mark.usefixtures("keyset")

SIZE = (140, 40)


class RecordingApp(RrdevApp):
    """Remembers every notification, so a test can read what the user was told."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notices: list[tuple[str, str, str]] = []

    def notify(self, message: str, *, title: str = "", severity: Any = "information", **kw: Any):  # type: ignore[override]
        self.notices.append((title, message, severity))
        super().notify(message, title=title, severity=severity, **kw)


async def until(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


def text_of(widget: Static) -> str:
    console = Console(width=SIZE[0], file=io.StringIO(), record=True, color_system=None)
    console.print(widget.content)
    return console.export_text()


def demo_app(**kwargs: Any) -> RecordingApp:
    return RecordingApp(DemoRuntime(proxy_port=0, issuer_port=0, backend_port=0), **kwargs)


async def with_demo_traffic(pilot: Pilot[Any]) -> RrdevApp:
    app = pilot.app
    assert isinstance(app, RrdevApp)
    await until(pilot, lambda: app.table.row_count >= 4)
    return app


def statuses(app: RrdevApp) -> list[int]:
    return [int(str(app.table.get_row_at(i)[3])) for i in range(app.table.row_count)]


async def test_demo_requests_appear_as_rows() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await with_demo_traffic(pilot)
        assert statuses(app) == [200, 401, 401, 403]
        row = [str(cell) for cell in app.table.get_row_at(3)]
        assert row[1:6] == [
            "DELETE",
            "/api/v1/products/1",
            "403",
            "rule_denied",
            "scope-gate-delete",
        ]
        assert app.table.cursor_row == 3  # following the newest row
        assert app.title == "rrdev · demo"
        assert app.info is not None and app.info.proxy_url in app.sub_title
        await until(pilot, lambda: "4 requests" in str(app.status_line.content))
        status = str(app.status_line.content)
        assert "JWKS 1 key" in status and "following" in status

        await pilot.press("up", "up")  # moving up stops following ...
        assert not app.table.follow
        await pilot.press("g")  # ... so new demo traffic does not move the cursor
        await until(pilot, lambda: app.table.row_count == 8)
        assert app.table.cursor_row == 1
        await pilot.press("end")
        assert app.table.follow and app.table.cursor_row == 7
        runtime = app.runtime
    assert isinstance(runtime, DemoRuntime) and runtime.handle is None  # stopped on exit


async def test_a_403_explains_its_deciding_rule() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await with_demo_traffic(pilot)
        await pilot.press("slash", *"status:403", "enter")
        await until(pilot, lambda: app.table.row_count == 1)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RequestScreen))
        screen = app.screen
        assert isinstance(screen, RequestScreen)
        assert screen.query_one(TabbedContent).active == "explain"
        explain = text_of(screen.body("explain"))
        assert "deciding rule" in explain
        assert "scope-gate-delete" in explain
        assert "Scope gate: DELETE operations require delete:resources scope" in explain
        assert "← deciding rule" in explain  # marked in the rule trace too
        assert "delete:resources" in explain  # the hint

        await pilot.press("s")
        assert screen.query_one(TabbedContent).active == "response"
        response = text_of(screen.body("response"))
        assert "answered by rrdev" in response and '"reason": "rule_denied"' in response
        request = text_of(screen.body("request"))
        assert "authorization" in request and "[redacted]" in request
        handle = app.runtime.handle  # type: ignore[attr-defined]
        assert handle.reader_token not in request + response + explain

        await pilot.press("escape")
        assert not isinstance(app.screen, RequestScreen)


async def test_an_expired_token_says_when_it_expired() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await with_demo_traffic(pilot)
        await pilot.press("slash", *"reason:token_expired", "enter")
        await until(pilot, lambda: app.table.row_count == 1)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RequestScreen))
        screen = app.screen
        assert isinstance(screen, RequestScreen)
        explain = text_of(screen.body("explain"))
        assert "401 token_expired" in explain
        assert "failed check" in explain and "expiry" in explain
        assert "ago at" in explain
        await pilot.press("t")
        token = text_of(screen.body("token"))
        assert "not accepted: token_expired" in token
        assert "expired 5m" in token and "demo-reader@clients" in token


async def test_the_filter_narrows_rows_and_esc_restores_them() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await with_demo_traffic(pilot)
        await pilot.press("slash", *"status:401")
        await until(pilot, lambda: app.table.row_count == 2)
        assert statuses(app) == [401, 401]
        await until(pilot, lambda: "2 of 4 match status:401" in str(app.status_line.content))

        await pilot.press(*" method:DELETE")
        await until(pilot, lambda: app.table.row_count == 0)

        bar = app.query_one(FilterBar)
        await pilot.press("backspace", *"X", "backspace", "space", *"stauts:4")  # a typo
        assert bar.has_class("-bad-query") and "did you mean 'status:'" in str(bar.border_subtitle)

        await pilot.press("escape")
        await until(pilot, lambda: app.table.row_count == 4)
        assert not bar.has_class("-visible") and bar.value == ""
        assert app.focused is app.table


async def test_ten_thousand_records_stay_bounded_and_the_app_responsive() -> None:
    class Idle:
        """A runtime that serves nothing: records come from the test, through the
        same sink the proxy calls."""

        demo = False

        async def start(self, sink: Any, on_event: Any) -> RuntimeInfo:
            return RuntimeInfo(
                "synthetic", "-", "http://127.0.0.1:0", "http://backend", None, "none"
            )

        async def stop(self) -> None:
            return None

        def info(self) -> RuntimeInfo | None:
            return None

        def jwks_status(self) -> JwksStatus | None:
            return None

        def demo_requests(self) -> list[Any]:
            return []

    def synthetic(i: int) -> RequestRecord:
        status = (200, 401, 403, 502)[i % 4]
        reason = ("allowed", "token_expired", "rule_denied", "upstream_unreachable")[i % 4]
        return RequestRecord(
            time=1_700_000_000 + i / 1000,
            method="GET",
            path=f"/api/v1/items/{i}",
            query=(),
            status=status,
            reason=reason,
            deciding_rule="rule-x" if status == 403 else None,
            explanation=Explanation(status, reason, "synthetic"),
            total_ms=1.0,
        )

    app = RecordingApp(Idle(), max_records=10_000)  # type: ignore[arg-type]
    count = 12_000
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.info is not None)
        for i in range(count):
            app.record_sink(synthetic(i))
            if i % 2000 == 0:
                await asyncio.sleep(0)  # the proxy yields between requests too
        await until(pilot, lambda: app.store.total == count and app.table.pending == 0, 30)
        assert len(app.store) == 10_000
        assert app.table.row_count == 10_000  # capped at the buffer, never above
        assert app.table.cursor_row == app.table.row_count - 1  # still following

        await pilot.press("slash")  # still answers keys
        assert app.focused is app.query_one(FilterBar)
        await pilot.press(*"status:403")
        await until(pilot, lambda: app.table.row_count == 2_500, 20)
        await until(pilot, lambda: "2,500 of 10,000 match" in str(app.status_line.content))
        assert "of 12,000 kept" in str(app.status_line.content)


async def test_a_broken_profile_edit_is_notified_with_file_and_line(tmp_path: Path) -> None:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text("http://127.0.0.1:9"))
    runtime = ProfileRuntime.from_path(profile, port=0, reload_interval=0.05)
    app = RecordingApp(runtime)
    async with app.run_test(size=SIZE) as pilot:
        # info is set before ProxyStarted reaches the app (and renames it): wait for that
        await until(pilot, lambda: app.title == "rrdev · test-proxy")
        broken = profile_text("http://127.0.0.1:9").replace(
            'default_effect = "deny"', 'default_effect = "maybe"'
        )
        profile.write_text(broken)
        await until(pilot, lambda: any(t == "Profile reload failed" for t, _m, _s in app.notices))
        message, severity = next((m, s) for t, m, s in app.notices if t == "Profile reload failed")
        line = broken.splitlines().index('default_effect = "maybe"') + 1
        assert f"{profile}:{line}" in message and "proxy.default_effect" in message
        assert severity == "error"

        profile.write_text(profile_text("http://127.0.0.1:9"))
        await until(pilot, lambda: app.notices[-1][0] == "Profile reloaded")


async def test_help_opens_and_closes_and_q_quits() -> None:
    app = demo_app(demo_traffic=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.info is not None)
        assert app.table.row_count == 0  # demo_traffic=False: nothing sent
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        assert "status:4xx" in app.screen.query_one(HelpText).text
        await pilot.press("escape")
        assert not isinstance(app.screen, HelpScreen)
        await pilot.press("q")
        await pilot.pause()
    assert app.return_code == 0
