"""`rrdev tui a.toml b.toml`: several profiles on one port, with an alias column."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from alias_support import OPEN, open_rules, send
from proxy_support import Backend, profile_text
from textual.pilot import Pilot

from rrdev.tui.app import RrdevApp
from rrdev.tui.runtime import AliasRuntime, ProfileRuntime

pytestmark = pytest.mark.usefixtures("keyset")

SIZE = (160, 40)


async def until(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


def write(tmp_path: Path, alias: str, backend: Backend, prefix: str) -> str:
    path = tmp_path / f"{alias}.toml"
    path.write_text(
        profile_text(
            backend.url, proxy=f'alias = "{alias}"', proxy_credential=OPEN, rules=open_rules(prefix)
        )
    )
    return str(path)


def column(app: RrdevApp, index: int) -> list[str]:
    return [str(app.table.get_row_at(i)[index]) for i in range(app.table.row_count)]


async def test_the_table_shows_which_alias_answered(tmp_path: Path, backend: Backend) -> None:
    paths = [write(tmp_path, "alpha", backend, "a"), write(tmp_path, "beta", backend, "b")]
    runtime = AliasRuntime(paths, port=0, reload_interval=0.05)
    app = RrdevApp(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.info is not None and runtime.server is not None)
        assert runtime.server is not None
        port = runtime.server.port
        assert app.title == "rrdev · 2 proxies (alpha, beta)"
        assert f"alpha.localhost:{port}" in app.sub_title
        await send(port, ["alpha.localhost"], "/a/1")
        await send(port, ["beta.localhost"], "/a/1")  # beta allows /b/ only
        await send(port, ["localhost"], "/a/1")
        await until(pilot, lambda: app.table.row_count == 3)
        assert [str(c.label) for c in app.table.columns.values()][:3] == ["time", "alias", "method"]
        assert column(app, 1) == ["alpha", "beta", "-"]
        assert column(app, 4) == ["200", "403", "421"]
    assert [e["raw_path"] for e in backend.seen] == ["/a/1"]


async def test_one_profile_has_no_alias_column(tmp_path: Path, backend: Backend) -> None:
    runtime = ProfileRuntime.from_path(write(tmp_path, "alpha", backend, "a"), port=0)
    app = RrdevApp(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.info is not None)
        assert "alias" not in [str(c.label) for c in app.table.columns.values()]
