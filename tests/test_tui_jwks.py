"""`rrdev tui` while the JWKS endpoint is down, through Textual's pilot: the status line
warns that a stale key set is served (and for how long more), a notice says so, and the
request's explanation carries the warning."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from jwks_server import jwtverify_lines, key_set, run_jwks_server, signed
from proxy_support import Backend, bearer, profile_text
from rich.console import Console
from textual.pilot import Pilot
from textual.widgets import Static

from rrdev.tui.app import RrdevApp
from rrdev.tui.runtime import ProfileRuntime
from rrdev.tui.widgets.detail import RequestScreen

pytestmark = pytest.mark.usefixtures("keyset")

SIZE = (160, 40)
TIMINGS = "jwks_ttl_seconds = 1\njwks_refetch_interval_seconds = 1\njwks_max_stale_seconds = 600\n"


class NoticedApp(RrdevApp):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notices: list[tuple[str, str]] = []

    def notify(self, message: str, *, title: str = "", severity: Any = "information", **kw: Any):  # type: ignore[override]
        self.notices.append((title, str(severity)))
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


async def test_the_status_line_warns_while_a_stale_key_set_is_served(
    tmp_path: Path, backend: Backend
) -> None:
    async with run_jwks_server(key_set("k1")) as jwks:
        profile = tmp_path / "rrdev.toml"
        cred = jwtverify_lines(jwks.url, TIMINGS)
        profile.write_text(profile_text(backend.url, proxy_credential=cred))
        app = NoticedApp(ProfileRuntime.from_path(profile, port=0, reload_interval=0.05))
        token = signed("k1")
        async with app.run_test(size=SIZE) as pilot, httpx.AsyncClient() as client:
            await until(pilot, lambda: app.info is not None)
            assert app.info is not None
            url = f"{app.info.proxy_url}/api/v1/products"
            assert (await client.get(url, headers=bearer(token))).status_code == 200
            await until(pilot, lambda: "JWKS 1 key" in str(app.status_line.content))
            assert "STALE" not in str(app.status_line.content)

            await jwks.stop()
            await pilot.pause(1.1)  # past the TTL
            assert (await client.get(url, headers=bearer(token))).status_code == 200
            await until(pilot, lambda: "STALE" in str(app.status_line.content))
            status = str(app.status_line.content)
            # jwks_max_stale_seconds = 600: about ten minutes more
            assert re.search(r"STALE: JWKS failing, served (10m00s|9m5\ds) more", status)
            assert ("Serving a stale JWKS", "warning") in app.notices

            await until(pilot, lambda: app.table.row_count == 2)
            await pilot.press("end", "enter")
            await until(pilot, lambda: isinstance(app.screen, RequestScreen))
            screen = app.screen
            assert isinstance(screen, RequestScreen)
            explain = text_of(screen.body("explain"))
            assert "warning: stale key set: the JWKS at" in explain
            assert "jwks_max_stale_seconds = 600" in explain
