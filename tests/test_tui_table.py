"""The traffic table (Textual's line API) through the pilot: what it shows at each
width, that resizing keeps the selected request, and that it draws only what is
visible (``rows_rendered`` counts the row lines it turned into Segments)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest
from rich.style import Style
from test_tui_thread import Idle, synthetic
from textual.pilot import Pilot

from rrdev.core.records import Explanation, RequestRecord
from rrdev.tui.app import WIDE_COLUMNS, RrdevApp
from rrdev.tui.views import row_cells
from rrdev.tui.widgets.detail import RequestScreen
from rrdev.tui.widgets.traffic import TrafficTable
from rrdev.tui.widgets.traffic_columns import COLUMNS, ContentWidths, columns_for, fit

SIZE = (140, 40)


async def until(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


def record(i: int, status: int = 200, reason: str = "allowed") -> RequestRecord:
    """A record with every column filled, as wide as a real one."""
    return RequestRecord(
        time=1_700_000_000 + i / 1000,
        method="DELETE" if i % 3 == 0 else "GET",
        path=f"/api/v1/products/{i}",
        query=(),
        status=status,
        reason=reason,
        deciding_rule="scope-gate-delete" if status == 403 else "read-catalog",
        explanation=Explanation(status, reason, "synthetic"),
        total_ms=12.5,
        subject="demo-reader@clients",
    )


async def filled(pilot: Pilot[Any], count: int) -> TrafficTable:
    app = pilot.app
    assert isinstance(app, RrdevApp)
    await until(pilot, lambda: app.info is not None)
    for i in range(count):
        app.record_sink(record(i, *((401, "token_expired") if i % 4 == 1 else (200, "allowed"))))
    await until(pilot, lambda: app.table.row_count == count and app.table.pending == 0)
    await pilot.pause(0.2)
    return app.table


def visible(table: TrafficTable) -> bool:
    """Whether the cursor's row is on screen (under the header line)."""
    body = table.scrollable_content_region.height - 1
    return table.scroll_y <= table.cursor_row < table.scroll_y + body


# ------------------------------------------------------------------ resizing


async def test_resizing_keeps_the_selected_request_on_screen() -> None:
    app = RrdevApp(Idle(), flush_interval=0.05)  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        table = await filled(pilot, 200)
        await pilot.press(*["up"] * 60)  # well above the last screenful
        chosen = table.chosen()
        assert chosen is not None and chosen[0] == 140 and not table.follow
        for width, height in ((80, 24), (220, 50), (100, 16), (160, 45)):
            await pilot.resize_terminal(width, height)
            await pilot.pause(0.2)
            assert table.chosen() == chosen, (width, height)
            assert visible(table), (width, height)
            assert not table.follow
        await pilot.press("down")
        assert table.chosen()[0] == 141  # type: ignore[index]


async def test_resizing_while_following_stays_on_the_newest_row() -> None:
    app = RrdevApp(Idle(), flush_interval=0.05)  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        table = await filled(pilot, 120)
        await pilot.resize_terminal(90, 20)
        await pilot.pause(0.2)
        assert table.follow and table.cursor_row == 119 and visible(table)


# ------------------------------------------------------------------ width


@pytest.mark.parametrize("width", [80, 100, 160, 220])
async def test_the_table_fits_the_screen_without_a_horizontal_scrollbar(width: int) -> None:
    app = RrdevApp(Idle(), flush_interval=0.05)  # type: ignore[arg-type]
    async with app.run_test(size=(width, 30)) as pilot:
        table = await filled(pilot, 60)
        region = table.scrollable_content_region
        assert table.outer_size.width <= app.size.width
        if width >= WIDE_COLUMNS:  # list | detail side by side: the list takes 3/5
            assert table.outer_size.width == width * 3 // 5
        else:
            assert table.outer_size.width == width
        # the vertical scrollbar's gutter is counted
        assert region.width == table.outer_size.width - 2
        assert not table.show_horizontal_scrollbar
        assert table.virtual_size.width <= region.width and table.max_scroll_x == 0
        header = table.render_line(0).text
        rows = [table.render_line(y).text for y in range(1, 6)]
        assert len(header) == region.width and all(len(row) == region.width for row in rows)
        for key in ("method", "path", "status", "reason"):
            assert key in table.layout_keys
        assert "token_exp" in "".join(rows) and "/api/v1/products/" in rows[0]
        if region.width >= 98:  # nothing dropped: latency and subject stay
            assert table.layout_keys == tuple(column.key for column in COLUMNS)
            assert "latency" in header and "subject" in header
            assert "12.5 ms" in rows[0]


def test_columns_are_sized_to_their_content_and_dropped_only_when_narrow() -> None:
    content = ContentWidths(record(i) for i in range(100)).widths
    wide = fit(content, 218)
    path = wide.widths[wide.keys.index("path")]
    assert path == 20  # "/api/v1/products/99" (19 cells), rounded up: not the screen's spare
    assert wide.width < 218 and wide.gap == 2
    at_100 = fit(content, 98)
    assert at_100.keys == tuple(column.key for column in COLUMNS) and at_100.width <= 98
    at_90 = fit(content, 88)
    assert "latency" in at_90.keys and "subject" in at_90.keys and at_90.width <= 88
    at_80 = fit(content, 78)
    assert "time" not in at_80.keys and at_80.width <= 78
    assert {"method", "path", "status", "reason", "rule", "latency"} <= set(at_80.keys)
    assert fit(content, 40).width <= 40 or fit(content, 40).keys[0] != "time"


# ------------------------------------------------------------------ drawing only what is visible


async def test_a_batch_below_the_view_draws_no_new_row() -> None:
    app = RrdevApp(Idle(), flush_interval=0.05)  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        table = await filled(pilot, 100)
        await pilot.press("up")  # off the tail: new rows land below the view
        await pilot.pause(0.2)
        drawn = table.rows_rendered
        body = table.scrollable_content_region.height - 1
        for i in range(100, 1100):
            table.queue(i + 1, record(i))
        table.flush()
        await pilot.pause(0.3)
        assert table.row_count == 1100 and table.virtual_size.height == 1101
        # The path column grew (ids of four digits): the visible lines were redrawn once.
        assert table.rows_rendered <= drawn + body
        drawn = table.rows_rendered
        for i in range(1100, 2100):
            table.queue(i + 1, record(i))
        table.flush()
        await pilot.pause(0.3)
        assert table.row_count == 2100 and table.virtual_size.height == 2101
        assert table.rows_rendered == drawn  # 1,000 rows added, none drawn

        await pilot.press("end")  # following again: the last screenful is drawn, once
        await pilot.pause(0.3)
        assert drawn < table.rows_rendered <= drawn + body
        following = table.rows_rendered
        await pilot.press("up", "down")  # cached lines: moving the cursor draws nothing new
        await pilot.pause(0.2)
        assert table.rows_rendered == following


async def test_a_batch_while_following_draws_only_the_new_screenful() -> None:
    app = RrdevApp(Idle(), flush_interval=0.05)  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        table = await filled(pilot, 10)
        drawn = table.rows_rendered
        body = table.scrollable_content_region.height - 1
        for i in range(10, 1010):
            table.queue(i + 1, record(i))
        table.flush()
        await pilot.pause(0.3)
        assert table.cursor_row == 1009 and table.chosen()[0] == 1010  # type: ignore[index]
        assert 0 < table.rows_rendered - drawn <= body


# ------------------------------------------------------------------ what a row looks like


async def test_rows_are_coloured_by_status_under_a_header() -> None:
    app = RrdevApp(Idle(), flush_interval=0.05)  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        table = await filled(pilot, 4)  # 200, 401, 200, 200; the cursor on the last
        header = table.render_line(0).text
        labels = "time method path status reason deciding rule latency subject"
        assert header.split() == labels.split()

        def colour(y: int, text: str) -> Style:
            segment = next(s for s in table.render_line(y) if s.text.strip() == text)
            assert segment.style is not None
            return segment.style

        ok, refused = colour(1, "200"), colour(2, "401")
        assert ok.color is not None and refused.color is not None
        assert ok.color != refused.color and refused.bold
        assert colour(2, "token_expired").color == refused.color
        cursor = table.render_line(4)
        plain = table.render_line(3)
        assert {s.style.bgcolor for s in cursor if s.style} != {
            s.style.bgcolor for s in plain if s.style
        }


async def test_a_click_selects_a_row_and_a_second_click_opens_it() -> None:
    app = RrdevApp(Idle(), flush_interval=0.05)  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        table = await filled(pilot, 5)
        await pilot.click(TrafficTable, offset=(10, 2))  # the header is line 0
        assert table.cursor_row == 1 and table.chosen()[0] == 2  # type: ignore[index]
        assert not table.follow
        await pilot.click(TrafficTable, offset=(10, 0))  # the header: nothing happens
        assert table.cursor_row == 1
        await pilot.click(TrafficTable, offset=(10, 2))
        await until(pilot, lambda: isinstance(app.screen, RequestScreen))
        screen = app.screen
        assert isinstance(screen, RequestScreen) and screen.seq == 2


async def test_the_table_waits_while_another_screen_is_on_top() -> None:
    app = RrdevApp(Idle(), flush_interval=0.05)  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        table = await filled(pilot, 5)
        await pilot.press("question_mark")
        for i in range(5, 25):
            app.record_sink(synthetic(i))
        await until(pilot, lambda: app.store.total == 25)
        await pilot.pause(0.2)
        assert table.row_count == 5 and table.pending == 20  # kept, not drawn
        await pilot.press("escape")
        await until(pilot, lambda: table.row_count == 25)
        assert table.follow and table.cursor_row == 24


# ------------------------------------------------------------- workbench, aliases


async def test_sort_by_and_select_seq_keep_the_selected_request() -> None:
    app = RrdevApp(Idle(), flush_interval=0.05)  # type: ignore[arg-type]
    async with app.run_test(size=SIZE) as pilot:
        table = await filled(pilot, 12)
        seqs = [seq for seq, _record in table._rows]
        assert table.select_seq(seqs[5]) and table.chosen() is not None
        table.follow = False
        table.move_cursor(5)
        chosen = table.chosen()
        assert chosen is not None and chosen[0] == seqs[5]
        table.sort_by("status")
        statuses = [int(str(table.get_row_at(i)[3])) for i in range(table.row_count)]
        assert statuses == sorted(statuses) and table.row_count == 12
        assert table.chosen() == chosen  # still the same request, at its new row
        assert table.select_seq(seqs[1])
        assert table.chosen() is not None and table.chosen()[0] == seqs[1]  # type: ignore[index]
        assert not table.select_seq(10_000)
        table.sort_by("time")
        assert [seq for seq, _record in table._rows] == seqs


def test_the_alias_column_follows_the_time() -> None:
    content = ContentWidths([record(1)], alias=True)
    layout = fit(content.widths, 200, columns_for(True))
    assert layout.keys[:3] == ("time", "alias", "method")
    cells = row_cells(record(1), alias=True)
    assert [str(cells[c.index]) for c in layout.columns][1:3] == ["-", "GET"]
