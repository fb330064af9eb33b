"""The traffic screen's footer is rebuilt only when what it shows changes: opening and
closing the help (`?`, Esc) used to rebuild every key twice, the larger part of a key
press's latency under load (rrdev.tui.widgets.footer)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from textual.pilot import Pilot

from rrdev.tui.app import RrdevApp
from rrdev.tui.runtime import RuntimeInfo
from rrdev.tui.widgets.footer import SteadyFooter, shown_bindings
from rrdev.tui.widgets.help import HelpScreen

SIZE = (140, 40)


class Idle:
    """A runtime that serves nothing."""

    demo = False
    aliases: tuple[str, ...] = ()
    read_only = False

    async def start(self, sink: Any, on_event: Any) -> RuntimeInfo:
        return RuntimeInfo("synthetic", "-", "http://127.0.0.1:0", "http://backend", None, "none")

    async def stop(self) -> None:
        return None

    def info(self) -> RuntimeInfo | None:
        return None

    def jwks_status(self) -> None:
        return None

    def profile(self) -> None:
        return None

    def signing_keyset(self) -> None:
        return None

    def demo_requests(self) -> list[Any]:
        return []


async def until(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


async def test_the_help_opens_and_closes_without_rebuilding_the_footer() -> None:
    app = RrdevApp(Idle())  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.info is not None)
        await pilot.pause(0.3)
        footer = app.query_one(SteadyFooter)
        before = footer.rebuilds
        assert before >= 1 and footer.shown == shown_bindings(app.screen)
        for _ in range(3):
            await pilot.press("question_mark")
            assert isinstance(app.screen, HelpScreen)
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)
        await pilot.pause(0.3)
        assert footer.rebuilds == before
        labels = " ".join(str(key.render()) for key in footer.query("FooterKey"))
        assert "Quit" in labels and "Filter" in labels


async def test_the_footer_is_rebuilt_when_its_keys_change() -> None:
    app = RrdevApp(Idle())  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.info is not None)
        await pilot.pause(0.3)
        footer = app.query_one(SteadyFooter)
        before, shown = footer.rebuilds, footer.shown
        await pilot.press("slash")  # the filter bar takes the focus: other keys apply
        await until(pilot, lambda: footer.shown != shown)
        assert footer.rebuilds > before
        assert footer.shown == shown_bindings(app.screen)


async def test_the_helps_own_footer_is_built_once_across_openings() -> None:
    """The help screen is installed once; its footer shows the same keys every time it
    opens, so it is not rebuilt on each opening (a rebuild is a layout of the whole
    screen: most of what ``?`` cost under load)."""
    app = RrdevApp(Idle())  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.info is not None)
        await pilot.press("question_mark")
        await pilot.pause(0.2)
        help_footer = app.screen.query_one(SteadyFooter)
        first = help_footer.rebuilds
        assert first >= 1
        assert "Close" in " ".join(str(key.render()) for key in help_footer.query("FooterKey"))
        for _ in range(3):
            await pilot.press("escape")
            assert not isinstance(app.screen, HelpScreen)
            await pilot.press("question_mark")
            assert app.screen.query_one(SteadyFooter) is help_footer
        await pilot.pause(0.2)
        assert help_footer.rebuilds == first


def test_the_help_text_shows_brackets_as_written() -> None:
    """Key help is plain text: ``[auth]`` (a profile section) is not taken for markup."""
    from rich.console import Console

    from rrdev.tui.widgets.help import help_text

    console = Console(width=140, record=True, color_system=None)
    console.print(help_text())
    shown = console.export_text()
    assert "fetch ([auth]) or mint the current token" in shown
    assert "Keys" in shown and "Colours (legend)" in shown
