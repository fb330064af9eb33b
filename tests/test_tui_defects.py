"""Issue 13's defects of the inspector, one pilot test each, against the demo (issuer,
echo backend and proxy on loopback, ports 0) or a profile file in tmp_path."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from proxy_support import profile_text
from rich.console import Console
from test_tui_app import SIZE, RecordingApp, demo_app, text_of, until, with_demo_traffic
from textual import events
from textual.app import App
from textual.color import Color
from textual.keys import _character_to_key
from textual.pilot import Pilot
from textual.widgets import Static, Tabs

from rrdev.core.records import Explanation, RequestRecord
from rrdev.tui.app import RrdevApp
from rrdev.tui.commands import RrdevCommands
from rrdev.tui.runtime import ProfileRuntime
from rrdev.tui.settings import SETTINGS_ENV
from rrdev.tui.views import response_view, row_cells
from rrdev.tui.widgets.detail import RequestScreen
from rrdev.tui.widgets.help import HelpScreen, HelpText
from rrdev.tui.widgets.notices import NoticesScreen

pytestmark = pytest.mark.usefixtures("keyset")


@pytest.fixture(autouse=True)
def _settings_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A theme change in a test is remembered in tmp_path, never in the user's config."""
    path = tmp_path / "tui.toml"
    monkeypatch.setenv(SETTINGS_ENV, str(path))
    return path


def type_at_full_speed(app: App[Any], keys: str) -> None:
    """Queue every key at once, as a fast typist or a paste does: no pause (and no
    idle wait, unlike ``pilot.press``) between them."""
    assert app._driver is not None
    for char in keys:
        key = _character_to_key(char) if not char.isalnum() else char
        event = events.Key(key, char)
        event.set_sender(app)
        app._driver.send_message(event)


async def open_request(pilot: Pilot[Any], query: str) -> RequestScreen:
    app = pilot.app
    assert isinstance(app, RrdevApp)
    await pilot.press("slash", *query, "enter")
    await until(pilot, lambda: app.table.row_count == 1)
    await pilot.press("enter")
    await until(pilot, lambda: isinstance(app.screen, RequestScreen))
    assert isinstance(app.screen, RequestScreen)
    return app.screen


# ------------------------------------------------------------------ 1. type-ahead


async def test_1_keys_typed_right_after_slash_land_in_the_filter() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await with_demo_traffic(pilot)
        type_at_full_speed(app, "/rule:scope-gate-delete")
        await until(pilot, lambda: app.filter_bar.value == "rule:scope-gate-delete")
        await until(pilot, lambda: app.table.row_count == 1 and app.table.pending == 0)
        assert str(app.table.get_row_at(0)[5]) == "scope-gate-delete"
        await pilot.pause(0.3)
        assert len(app.store) == 4 and app.store.total == 4  # no `c` cleared, no `g` sent
        type_at_full_speed(app, " -q")  # a `q` in a query does not quit
        await until(pilot, lambda: app.filter_bar.value == "rule:scope-gate-delete -q")
        assert app.is_running


# ------------------------------------------------------------------ 2. invalid filter


async def test_2_an_invalid_filter_stays_invalid_after_enter_and_shows_no_rows() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await with_demo_traffic(pilot)
        bar = app.filter_bar
        await pilot.press("slash", *"stauts:403", "enter")
        await pilot.pause(0.3)
        assert app.focused is app.table  # Enter went back to the table ...
        assert bar.has_class("-bad-query") and bar.has_class("-visible")  # ... still red
        assert "did you mean 'status:'" in str(bar.border_subtitle)
        assert app.table.row_count == 0  # not every row, as if the query were valid
        assert "no request shown" in str(bar.border_subtitle)
        assert "invalid filter" in str(app.status_line.content)

        await pilot.press("slash")
        app.set_focus(app.table)  # blur
        await pilot.pause()
        assert bar.has_class("-bad-query")

        await pilot.press("slash", "home", "delete", "delete", "delete", "delete", "delete")
        await pilot.press("delete", *"status")
        await until(pilot, lambda: app.table.row_count == 1)
        assert bar.value == "status:403" and not bar.has_class("-bad-query")
        assert "invalid" not in str(app.status_line.content)


# ------------------------------------------------------------------ 4. expired ... ago


async def test_4_expired_says_which_time_is_the_request_and_which_is_now() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await with_demo_traffic(pilot)
        screen = await open_request(pilot, "reason:token_expired")
        explain = text_of(screen.body("explain"))
        assert "at the time of the request: the token expired 5m" in explain
        assert "expected later than the request's time" in explain
        token = text_of(screen.body("token"))
        assert "now: expired 5m" in token
        assert "at the time of the request: expired 5m" in token


# ------------------------------------------------------------------ 5. failed reload


async def test_5_a_failed_reload_stays_in_the_status_line_and_the_notice_log(
    tmp_path: Path,
) -> None:
    profile = tmp_path / "rrdev.toml"
    good = profile_text("http://127.0.0.1:9")
    profile.write_text(good)
    runtime = ProfileRuntime.from_path(profile, port=0, reload_interval=0.05)
    app = RecordingApp(runtime)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.info is not None)
        broken = good.replace('default_effect = "deny"', 'default_effect = "maybe"')
        profile.write_text(broken)
        line = broken.splitlines().index('default_effect = "maybe"') + 1
        await until(pilot, lambda: "reload failed" in str(app.status_line.content))
        await pilot.pause(1.0)  # long after a toast would have said it once
        status = str(app.status_line.content)
        assert f"{profile}:{line}" in status and "serving the last good profile" in status

        await pilot.press("E")
        assert isinstance(app.screen, NoticesScreen)
        log = text_of(app.screen.query_one("#notices-body", Static))
        assert "Profile reload failed" in log and f"{profile}:{line}" in log
        assert any(part.count(":") == 2 and len(part) == 8 for part in log.split())  # HH:MM:SS
        await pilot.press("escape")
        assert not isinstance(app.screen, NoticesScreen)

        profile.write_text(good)
        await until(pilot, lambda: "reload failed" not in str(app.status_line.content))


# ------------------------------------------------------------------ 6. the 403 explanation


async def test_6_the_403_explanation_leads_with_a_sentence_and_the_fix() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await with_demo_traffic(pilot)
        screen = await open_request(pilot, "status:403")
        explain = text_of(screen.body("explain"))
        first = explain.strip().splitlines()[0]
        assert first.startswith("DELETE /api/v1/products/1 was refused")
        assert "delete:resources" in first
        assert "fix: rrdev token mint -p demo --scope 'read:products delete:resources'" in explain
        flat = " ".join(explain.replace("│", " ").split())
        assert "allow-authenticated also matches this request" in flat
        assert "but within a scope a deny wins" in flat
        callout = explain.split("Token verification")[0]
        assert "✓" not in callout.split("deciding rule")[1]  # the held condition is the cause
        assert "cause" in callout
        hint = "delete:resources scope"
        assert explain.count("hint:") <= 1 and explain.count(hint) <= 2


# ------------------------------------------------------------------ 7. layout


async def test_7_wide_terminals_split_list_and_detail_side_by_side() -> None:
    app = demo_app()
    async with app.run_test(size=(180, 40)) as pilot:
        await with_demo_traffic(pilot)
        await pilot.pause(0.2)
        table, why = app.table.region, app.why.region
        assert why.x >= table.right and why.y == table.y  # side by side
        assert why.height >= 30  # not a 3-line pane under 35 empty rows
        assert "scope-gate-delete" in text_of(app.why)  # the explanation, in full
        await pilot.resize_terminal(140, 40)
        await pilot.pause(0.2)
        assert app.why.region.y >= app.table.region.bottom  # narrow: under the list


def test_7_long_json_in_the_response_tab_wraps() -> None:
    long_value = "x" * 150 + "END"
    record = RequestRecord(
        time=1_700_000_000,
        method="GET",
        path="/a",
        query=(),
        status=200,
        reason="allowed",
        deciding_rule=None,
        explanation=Explanation(200, "allowed", "ok"),
        response_headers=(("content-type", "application/json"),),
        response_preview=json.dumps({"note": long_value}),
        upstream_status=200,
    )
    console = Console(width=80, file=io.StringIO(), record=True, color_system=None)
    console.print(response_view(record))
    assert "END" in console.export_text()


# ------------------------------------------------------------------ 8. colours, empty


def _contrast(a: Color, b: Color) -> float:
    def lum(c: Color) -> float:
        def chan(v: int) -> float:
            s = v / 255
            return s / 12.92 if s <= 0.03928 else ((s + 0.055) / 1.055) ** 2.4

        return 0.2126 * chan(c.r) + 0.7152 * chan(c.g) + 0.0722 * chan(c.b)

    hi, lo = sorted((lum(a), lum(b)), reverse=True)
    return (hi + 0.05) / (lo + 0.05)


async def test_8_401_and_403_differ_and_stay_readable_on_the_light_theme() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await with_demo_traffic(pilot)
        cells = {code: row_cells(r)[3] for _s, r in app.store if (code := r.status) >= 400}
        for theme in ("textual-dark", "textual-light"):
            app.theme = theme
            await pilot.pause()
            background = Color.parse(app.theme_variables["background"])
            colors = {}
            for code, cell in cells.items():
                style = app.console.get_style(str(cell.style))
                assert style.color is not None
                colors[code] = Color.from_rich_color(style.color)
                assert _contrast(colors[code], background) >= 3, (theme, code)
            assert colors[401] != colors[403]
            rule = app.console.get_style(str(row_cells(next(r for _s, r in app.store))[5].style))
            assert "yellow" not in str(rule)
        await pilot.press("question_mark")
        shown = app.screen.query_one(HelpText).text
        assert "403" in shown and "legend" in shown


async def test_8_the_empty_state_shows_the_curl_and_the_token_command() -> None:
    app = demo_app(demo_traffic=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.info is not None)
        await pilot.pause(0.2)
        empty = text_of(app.why)
        assert "curl" in empty and "rrdev token mint -p demo" in empty
        assert app.info is not None and app.info.proxy_url in empty


async def test_8_clear_says_cleared_and_one_request_is_singular() -> None:
    app = demo_app(demo_traffic=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.info is not None)
        runtime: Any = app.runtime
        request = runtime.demo_requests()[0]
        await runtime.thread.run(runtime._send([request]))
        await until(pilot, lambda: "1 request " in str(app.status_line.content) + " ")
        assert "1 requests" not in str(app.status_line.content)
        await pilot.press("c")
        await pilot.pause()
        status = str(app.status_line.content)
        assert "cleared" in status and "kept" not in status


# ------------------------------------------------------------------ 9. smaller


async def test_9_an_expired_token_whose_signature_verified_shows_its_subject() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await with_demo_traffic(pilot)
        expired = [r for _s, r in app.store if r.reason == "token_expired"]
        assert expired and expired[0].subject == "demo-reader@clients"
        forged = [r for _s, r in app.store if r.status == 401 and r.reason != "token_expired"]
        assert all(r.subject is None for r in forged)


async def test_9_help_says_how_to_close_and_hides_quit() -> None:
    app = demo_app(demo_traffic=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.info is not None)
        await pilot.press("question_mark")
        screen = app.screen
        assert isinstance(screen, HelpScreen)
        assert "Esc" in str(screen.query_one("#help").border_subtitle)
        shown = {b.binding.description for b in screen.active_bindings.values() if b.enabled}
        assert "Quit" not in shown and "Close" in shown


async def test_9_tab_labels_show_their_keys() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await with_demo_traffic(pilot)
        screen = await open_request(pilot, "status:403")
        labels = [str(tab.label) for tab in screen.query_one(Tabs).query("Tab")]
        assert labels == ["Explain (e)", "Request (r)", "Response (s)", "Token (t)"]


async def test_9_the_command_palette_has_the_apps_actions() -> None:
    app = demo_app(demo_traffic=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.info is not None)
        provider = RrdevCommands(app.screen)
        names = [str(hit.text) async for hit in provider.discover()]
        for wanted in ("Filter requests", "Notifications", "Send the demo requests", "Help"):
            assert any(wanted in name for name in names), (wanted, names)
        hits = [hit async for hit in provider.search("send demo")]
        assert hits
        await hits[0].command()  # type: ignore[misc]
        await until(pilot, lambda: app.table.row_count == 4)


async def test_9_the_theme_is_remembered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings = tmp_path / "tui.toml"
    monkeypatch.setenv(SETTINGS_ENV, str(settings))
    app = demo_app(demo_traffic=False)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.info is not None)
        app.theme = "textual-light"
        await pilot.pause()
    assert 'theme = "textual-light"' in settings.read_text()
    again = demo_app(demo_traffic=False)
    async with again.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: again.info is not None)
        assert again.theme == "textual-light"
