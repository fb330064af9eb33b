"""The help's text is laid out once per width and theme, ahead of the first `?`
(rrdev.tui.widgets.help): Rich's tables took tens of milliseconds to lay out on every
first opening. What it draws must stay what Rich lays out: every key, brackets and
colours included, at any width."""

from __future__ import annotations

import io
from typing import Any

import pytest
from rich.console import Console

from rrdev.tui.app import RrdevApp
from rrdev.tui.widgets import help as help_module
from rrdev.tui.widgets.help import KEYS, HelpScreen, HelpText, help_lines, help_text
from tests.test_tui_footer import Idle, until


def rich_layout(width: int) -> list[str]:
    console = Console(width=width, file=io.StringIO(), record=True, color_system=None)
    console.print(help_text())
    return [line.rstrip() for line in console.export_text().splitlines()]


_seen: list[tuple[Any, ...]] = []


@pytest.fixture(autouse=True)
def watched_layouts(monkeypatch: pytest.MonkeyPatch) -> list[tuple[Any, ...]]:
    """Record every layout help_lines really does (cache misses), from a cold cache."""
    help_lines.cache_clear()
    _seen.clear()
    lay_out = help_lines.__wrapped__

    def recording(console: Console, width: int, theme: str) -> Any:
        _seen.append((console, width, theme))

        return lay_out(console, width, theme)

    cached = help_module.lru_cache(maxsize=8)(recording)
    monkeypatch.setattr(help_module, "help_lines", cached)
    return _seen


@pytest.mark.parametrize("size", [(140, 40), (80, 24), (60, 60)])
async def test_the_help_is_laid_out_before_the_first_question_mark(
    size: tuple[int, int], watched_layouts: list[tuple[Any, ...]]
) -> None:
    app = RrdevApp(Idle())  # type: ignore[arg-type]
    async with app.run_test(size=size) as pilot:
        await until(pilot, lambda: app.info is not None)
        await until(pilot, lambda: bool(watched_layouts))  # the warm-up, after start
        warmed = list(watched_layouts)
        await pilot.press("question_mark")
        assert isinstance(app.screen, HelpScreen)
        await pilot.pause()
        body = app.screen.query_one(HelpText)
        assert watched_layouts == warmed, "the first ? laid the help out again"
        assert body.size.width in {width for _c, width, _t in warmed}
        # What it draws is Rich's own layout at that width: nothing cut, nothing added.
        assert body.text.splitlines() == rich_layout(body.size.width)
        assert all(line.cell_length <= body.size.width for line in body._lines(body.size.width))


async def test_the_drawn_help_keeps_every_key_and_its_brackets() -> None:
    app = RrdevApp(Idle())  # type: ignore[arg-type]
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        shown = " ".join(app.screen.query_one(HelpText).text.split())
    assert "fetch ([auth]) or mint the current token" in shown
    for key, meaning in KEYS:
        assert " ".join(key.split()) in shown
        assert " ".join(meaning.split()[:3]) in shown


async def test_a_new_theme_lays_the_help_out_in_its_colours(
    watched_layouts: list[tuple[Any, ...]],
) -> None:
    app = RrdevApp(Idle())  # type: ignore[arg-type]
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()

        def legend_401_colour() -> Any:
            body = app.screen.query_one(HelpText)
            for line in body._lines(body.size.width):
                for segment in line:
                    if segment.text == "401":
                        return segment.style.color if segment.style else None
            raise AssertionError("no 401 in the legend")

        dark = legend_401_colour()
        await pilot.press("escape")
        app.theme = "textual-light"
        await pilot.pause()
        await pilot.press("question_mark")
        await pilot.pause()
        light = legend_401_colour()
        assert light == app.console.get_style("rrdev.401").color
        assert light != dark
        assert {theme for _c, _w, theme in watched_layouts} >= {"textual-dark", "textual-light"}


async def test_a_resize_lays_the_help_out_for_the_new_width() -> None:
    app = RrdevApp(Idle())  # type: ignore[arg-type]
    async with app.run_test(size=(140, 40)) as pilot:
        await pilot.press("question_mark")
        await pilot.pause()
        wide = app.screen.query_one(HelpText).size.width
        await pilot.resize_terminal(70, 30)
        await pilot.pause(0.2)
        body = app.screen.query_one(HelpText)
        assert body.size.width < wide
        assert body.text.splitlines() == rich_layout(body.size.width)
