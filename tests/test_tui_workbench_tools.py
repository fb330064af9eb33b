"""The workbench's copy, export, open-log, rules view, dry-run and navigation, through
Textual's pilot against the demo on loopback (real issuer, backend and proxy)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path
from typing import Any

import pytest
from test_tui_app import SIZE, RecordingApp, demo_app, until, with_demo_traffic

from rrdev.tui.app import RrdevApp
from rrdev.tui.workbench.copy_menu import CopyMenu
from rrdev.tui.workbench.dry_run_screen import DryRunScreen
from rrdev.tui.workbench.export import jsonl_text
from rrdev.tui.workbench.export_screen import ExportScreen
from rrdev.tui.workbench.log_runtime import LogRuntime
from rrdev.tui.workbench.rules_view import RulesScreen

pytestmark = pytest.mark.usefixtures("keyset")


def select_status(app: RrdevApp, status: int) -> int:
    for seq, record in app.visible_items():
        if record.status == status:
            app.table.select_seq(seq)
            return seq
    raise AssertionError(f"no {status} row")


async def copy(pilot: Any, choice_index: int) -> str:
    app = pilot.app
    await pilot.press("y")
    await until(pilot, lambda: isinstance(app.screen, CopyMenu))
    for _ in range(choice_index):
        await pilot.press("down")
    await pilot.press("enter")
    await until(pilot, lambda: not isinstance(app.screen, CopyMenu))
    return str(app.clipboard)


@pytest.mark.parametrize("status", [200, 403])
async def test_copy_as_curl_gets_the_same_status_with_the_token_set(status: int) -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await with_demo_traffic(pilot)
        select_status(app, status)
        command = await copy(pilot, 0)
        assert "$TOKEN" in command and "the token is redacted" in command
        handle = app.runtime.handle  # type: ignore[attr-defined]
        tokens = {handle.reader_token, handle.admin_token, handle.expired_token}
        assert not any(token in command for token in tokens)
        token = app.token_of(app.table.chosen()[1])  # type: ignore[index]
        assert token == handle.reader_token
        env = {**os.environ, "TOKEN": token}
        done = await _run_curl(command, env)
        assert done.splitlines()[0].split()[1] == str(status)


async def _run_curl(command: str, env: dict[str, str]) -> str:
    import asyncio

    # The proxy serves on this loop's threads: run curl without blocking the app's loop.
    proc = await asyncio.create_subprocess_shell(
        command + " --noproxy '*'", env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    out, err = await asyncio.wait_for(proc.communicate(), 20)
    assert proc.returncode == 0, err
    return out.decode()


async def test_copy_with_token_is_a_separate_choice_and_holds_it() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await with_demo_traffic(pilot)
        select_status(app, 200)
        handle = app.runtime.handle  # type: ignore[attr-defined]
        assert handle.reader_token in await copy(pilot, 1)
        assert await copy(pilot, 2) == handle.reader_token
        assert "Rules" in await copy(pilot, 3)
        select_status(app, 401)  # no token: nothing to copy, and the user is told why
        app.notices.clear()
        await copy(pilot, 2)
        assert app.notices and app.notices[-1][0] == "Nothing copied"


async def test_exported_har_is_har_1_2_and_holds_no_token(tmp_path: Path) -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await with_demo_traffic(pilot)
        await pilot.press("x")
        await until(pilot, lambda: isinstance(app.screen, ExportScreen))
        target = tmp_path / "out.har"
        field = app.screen.query_one("#export-path")
        field.value = str(target)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await until(pilot, target.exists)
        handle = app.runtime.handle  # type: ignore[attr-defined]
    text = target.read_text()
    for token in (handle.reader_token, handle.admin_token, handle.expired_token):
        assert token not in text
        assert token.split(".")[2] not in text  # not even the signature
    log = json.loads(text)["log"]
    assert log["version"] == "1.2" and log["creator"]["name"] == "rrdev"
    assert [e["response"]["status"] for e in log["entries"]] == [200, 401, 401, 403]
    for entry in log["entries"]:
        assert entry["startedDateTime"].endswith("Z")
        for key in ("request", "response", "timings", "cache", "time"):
            assert key in entry
        assert {"method", "url", "httpVersion", "headers", "queryString", "cookies"} <= set(
            entry["request"]
        )
        assert {"status", "statusText", "content", "headers", "redirectURL"} <= set(
            entry["response"]
        )
        assert {"send", "wait", "receive"} <= set(entry["timings"])


async def test_export_follows_the_filter_and_writes_jsonl(tmp_path: Path) -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await with_demo_traffic(pilot)
        await pilot.press("slash", *"status:401", "enter")
        await until(pilot, lambda: app.table.row_count == 2)
        app.export_to(str(tmp_path / "[b]out.jsonl"))
    lines = (tmp_path / "[b]out.jsonl").read_text().splitlines()
    assert [json.loads(line)["status"] for line in lines] == [401, 401]


async def test_rule_hit_counts_change_with_traffic_and_select_filters() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await with_demo_traffic(pilot)
        await pilot.press("R")
        await until(pilot, lambda: isinstance(app.screen, RulesScreen))
        screen = app.screen
        assert isinstance(screen, RulesScreen)
        gate = next(row for row in screen.rows if row.decided_deny)
        assert gate.decided_deny == 1
        app.send_demo_traffic()
        await until(
            pilot,
            lambda: any(r.name == gate.name and r.decided_deny == 2 for r in screen.rows),
        )
        index = next(i for i, r in enumerate(screen.rows) if r.name == gate.name)
        screen.query_one("#rules-table").move_cursor(row=index)  # type: ignore[attr-defined]
        await pilot.press("enter")
        await until(pilot, lambda: not isinstance(app.screen, RulesScreen))
        await until(pilot, lambda: app.filter.text == f"rule:{gate.name}")
        assert {r.deciding_rule for _s, r in app.visible_items()} == {gate.name}


async def test_dry_run_outcome_follows_the_method() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await with_demo_traffic(pilot)
        select_status(app, 200)
        count = app.store.total
        handle = app.runtime.handle  # type: ignore[attr-defined]
        await pilot.press("d")
        await until(pilot, lambda: isinstance(app.screen, DryRunScreen))
        screen = app.screen
        assert isinstance(screen, DryRunScreen)
        screen.query_one("#dry-token").value = handle.reader_token  # type: ignore[attr-defined]
        await until(pilot, lambda: _status(screen) == 200)
        method = screen.query_one("#dry-method")
        method.value = "DELETE"  # type: ignore[attr-defined]
        await until(pilot, lambda: _status(screen) == 403)
        assert screen.explanation is not None and screen.explanation.reason == "rule_denied"
        method.value = "GET"  # type: ignore[attr-defined]
        await until(pilot, lambda: _status(screen) == 200)
        await pilot.pause(0.3)
        assert app.store.total == count  # nothing was sent


def _status(screen: DryRunScreen) -> int | None:
    return screen.explanation.status if screen.explanation is not None else None


async def test_n_moves_to_the_next_refusal_and_N_back() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await with_demo_traffic(pilot)
        select_status(app, 200)
        await pilot.press("n")
        assert app.table.chosen()[1].status == 401  # type: ignore[index]
        first = app.table.chosen()[0]  # type: ignore[index]
        await pilot.press("n", "n")
        assert app.table.chosen()[1].status == 403  # type: ignore[index]
        await pilot.press("N")
        assert app.table.chosen()[0] == first + 1  # type: ignore[index]


async def test_o_sorts_by_the_next_column() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await with_demo_traffic(pilot)
        await pilot.press("o")
        assert app.sort_key == "method"
        methods = [str(app.table.get_row_at(i)[1]) for i in range(app.table.row_count)]
        assert methods == sorted(methods)


async def test_filter_history_recalls_the_previous_query_and_completes() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await with_demo_traffic(pilot)
        await pilot.press("slash", *"status:401", "enter")
        await pilot.press("slash", "escape")
        await pilot.press("slash", *"method:DELETE", "enter")
        await pilot.press("slash")
        bar = app.filter_bar
        bar.value = ""
        await pilot.press("up")
        assert bar.value == "method:DELETE"
        await pilot.press("up")
        assert bar.value == "status:401"
        await pilot.press("down")
        assert bar.value == "method:DELETE"
        bar.value = ""
        await pilot.press(*"rule:scope")
        await until(pilot, lambda: bar._suggestion == "rule:scope-gate-delete")
        await pilot.press("right")  # accepts the suggestion
        assert bar.value == "rule:scope-gate-delete"


async def test_open_shows_a_log_files_records_read_only(tmp_path: Path) -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await with_demo_traffic(pilot)
        records = [record for _seq, record in app.store]
    log = tmp_path / "up.jsonl"
    log.write_text(jsonl_text(records) + "not json\n")
    viewer = RecordingApp(LogRuntime(log))
    async with viewer.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: viewer.table.row_count == 4)
        shown = [record.status for _seq, record in viewer.visible_items()]
        assert shown == [200, 401, 401, 403]
        assert viewer.store.get(4).explanation.decision.deciding_rule == records[3].deciding_rule  # type: ignore[union-attr]
        assert any("skipped" in message for _t, message, _s in viewer.notices)
        assert viewer.refuse_if_read_only("send")
        assert viewer.notices[-1][0] == "Read-only"
        assert viewer.check_action("generate", ()) is False
