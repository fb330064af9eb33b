"""The live traffic table: one line per request, drawn only where it is visible.

Built on Textual's line API (a ``ScrollView`` whose ``render_line(y)`` returns a
``Strip``, as Textual's own ``Log`` does), not on ``DataTable``: under a flood of
traffic DataTable re-rendered every visible cell through Rich on each added row. Here
each record's line is turned into Segments once (cached by record number, for the
current column layout) and reused; its colouring (zebra stripe, cursor) is a cheap
second cache on top. Appending a batch only updates ``virtual_size`` and refreshes
the lines that changed: nothing when new rows land below the view, the new lines at
the bottom when following the tail. Columns are sized to their content
(``traffic_columns``), never wider than the widget, so there is no horizontal scroll.

Records are queued as they arrive and added on a short timer (one update per batch).
The table holds at most ``max_rows`` rows: a batch drops as many of the oldest, and
the row under the cursor stays under it. The cursor is an index into the rows, not a
screen position, so resizing keeps the selected request. The table follows new rows
until the user moves the cursor off the last row (or scrolls up with the mouse);
moving back to the last row (End) or ``f`` follows again.

With ``alias_column`` (several profiles served), an ``alias`` column follows ``time``.
The workbench orders the rows by a column (``sort_by``, ``o``) and jumps to a record
(``select_seq``, ``n``/``N``). Status colours are the palette's named styles
(``rrdev.401``, ...), resolved on the app's console: a theme switch (``palette_changed``)
draws the lines anew.
"""

from __future__ import annotations

import time
from bisect import bisect_left
from collections import deque
from typing import ClassVar

from rich.style import Style
from rich.text import Text
from textual import events
from textual.binding import Binding, BindingType
from textual.geometry import Region, Size
from textual.reactive import var
from textual.scroll_view import ScrollView
from textual.strip import Strip

from rrdev.core.records import RequestRecord
from rrdev.tui.messages import RequestChosen, RequestHighlighted
from rrdev.tui.views import row_cells
from rrdev.tui.widgets.traffic_columns import (
    ALIAS_COLUMN,
    COLUMNS,
    Column,
    ContentWidths,
    columns_for,
    fit,
)
from rrdev.tui.widgets.traffic_lines import LineCache, Variant, VariantStyle
from rrdev.tui.workbench.navigation import sort_items

__all__ = ["ALIAS_COLUMN", "COLUMNS", "TrafficTable"]

#: Under a flood, batches are drawn this often (else at every tick of the timer).
_FLOOD_INTERVAL = 0.25
#: Seconds the scrollbar may lag the row count under a flood (one layout per period).
_SCROLLBAR_LAG = 0.5
#: Under a flood while following, the highlighted record is announced this often.
_ANNOUNCE_EVERY = 0.5
#: ``_announced`` before anything was: the first announcement always goes out.
_NOTHING_YET = -1


class TrafficTable(ScrollView, can_focus=True):
    """Rows of ``(seq, RequestRecord)``; Enter posts ``RequestChosen``."""

    COMPONENT_CLASSES: ClassVar[set[str]] = {
        "traffic-table--header",
        "traffic-table--cursor",
        "traffic-table--even",
        "traffic-table--odd",
    }
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Explain"),
        Binding("up,k", "cursor_up", "Up", show=False),
        Binding("down,j", "cursor_down", "Down", show=False),
        Binding("pageup", "page_up", "Page up", show=False),
        Binding("pagedown", "page_down", "Page down", show=False),
        Binding("home", "first", "First", show=False),
        Binding("end", "last", "Last", show=False),
    ]

    #: Keep the cursor on the newest row as rows arrive.
    follow: var[bool] = var(True)

    def __init__(
        self,
        *,
        max_rows: int = 10_000,
        flush_interval: float = 0.1,
        alias_column: bool = False,
        id: str | None = None,
    ) -> None:
        #: which proxy answered: only when several profiles share the port
        self.alias_column = alias_column
        self._spec = columns_for(alias_column)
        # Before Widget.__init__: a style update may already clear the caches.
        self._lines = LineCache(
            lambda: self.app.console,
            fit(ContentWidths(alias=alias_column).widths, 0, self._spec),
            alias=alias_column,
        )
        self._styles: dict[Variant, VariantStyle] = {}
        super().__init__(id=id)
        self.max_rows = max_rows
        self.flush_interval = flush_interval
        #: The row under the cursor (an index into the rows, 0 = oldest shown).
        self.cursor_row = 0
        self._pending: list[tuple[int, RequestRecord]] = []
        self._rows: deque[tuple[int, RequestRecord]] = deque(maxlen=max_rows)
        # Rows dropped from the front since the last ``show``: keeps each record's
        # zebra stripe (and so its cached line) when older rows fall out.
        self._trimmed = 0
        self._content = ContentWidths(alias=alias_column)
        #: Rows are in ``seq`` order (arrival); False once ``sort_by`` another column.
        self._in_seq_order = True
        self._announced: int | None = _NOTHING_YET
        self._next_flush = self._next_layout = self._next_announce = 0.0
        self._scrollbar_stale = False
        #: ``scrollable_content_region.width`` for the lines of the repaint under way.
        self._line_width = 0

    # -------------------------------------------------------------- feeding

    def queue(self, seq: int, record: RequestRecord) -> None:
        """Show this record with the next batch."""
        self._pending.append((seq, record))

    @property
    def pending(self) -> int:
        return len(self._pending)

    @property
    def row_count(self) -> int:
        return len(self._rows)

    def show(self, items: list[tuple[int, RequestRecord]]) -> None:
        """Replace every row (a new filter, a cleared buffer)."""
        before = self.chosen()
        self._pending = []
        self._rows = deque(items, maxlen=self.max_rows)
        self._trimmed = 0
        self._in_seq_order = all(
            a[0] < b[0] for a, b in zip(self._rows, list(self._rows)[1:], strict=False)
        )
        self._content = ContentWidths(
            (record for _seq, record in self._rows), alias=self.alias_column
        )
        self._relayout(force=True)
        if self.follow:
            self._to_last_row()
        else:  # the same request if it is still shown, else the first
            self.move_cursor(self._index_of(before[0]) if before else 0)

    def _index_of(self, seq: int) -> int:
        """The row showing record ``seq``, or 0."""
        index = self._find(seq)
        return 0 if index is None else index

    def _find(self, seq: int) -> int | None:
        seqs = [number for number, _record in self._rows]
        if self._in_seq_order:
            index = bisect_left(seqs, seq)
            return index if index < len(seqs) and seqs[index] == seq else None
        try:
            return seqs.index(seq)
        except ValueError:
            return None

    # -------------------------------------------------------------- workbench

    def sort_by(self, key: str) -> None:
        """Order the rows by column ``key`` (``"time"``: arrival), keeping the
        selected request; rows that arrive later are added at the end."""
        items = sort_items([*self._rows, *self._pending][-self.max_rows :], key)
        self.show(items)  # keeps the selected request (or follows the tail)

    def select_seq(self, seq: int) -> bool:
        """Put the cursor on record ``seq``; whether it is shown."""
        index = self._find(seq)
        if index is None:
            return False
        self.move_cursor(index)
        return True

    def flush(self) -> None:
        """Add the queued records in one batch (called on a timer). Nothing is drawn
        while another screen is on top (the records wait, at most ``max_rows``), and
        under a flood that replaces every visible row, at most every
        ``_FLOOD_INTERVAL``: nobody reads rows at that rate, and each batch then
        redraws the whole view."""
        now = time.monotonic()
        if not (self.is_attached and self.screen.is_active):  # under another, or quitting
            del self._pending[: -self.max_rows]
            return
        self._catch_up(now)
        if not self._pending or now < self._next_flush:
            return
        batch, self._pending = self._pending, []
        self._append(batch[-self.max_rows :])
        flood = self.follow and len(batch) >= self._body_height()
        self._next_flush = now + (_FLOOD_INTERVAL if flood else 0.0)

    def _append(self, batch: list[tuple[int, RequestRecord]]) -> None:
        grew = False
        for _seq, record in batch:
            grew = self._content.add(record) or grew
        before = len(self._rows)
        if self._rows and batch and batch[0][0] < self._rows[-1][0]:
            self._in_seq_order = False
        self._rows.extend(batch)
        dropped = max(0, before + len(batch) - self.max_rows)
        self._trimmed += dropped
        if grew:
            self._relayout()
        self._grow_virtual_size()
        if self.follow:
            # A flood's rows are announced on the timer (see flush), a trickle's now.
            self._to_last_row(announce=len(batch) < self._body_height())
        elif dropped:
            self._keep_view(dropped)
        else:
            self._refresh_rows(before, len(self._rows))

    def _grow_virtual_size(self) -> None:
        """The new row count, without a layout of the whole screen per batch (setting
        ``virtual_size`` does one, and repaints every widget): scrolling reads the value
        at once; the scrollbar's thumb catches up on the next layout, at most
        ``_SCROLLBAR_LAG`` later (see ``flush``)."""
        size = Size(self._lines.layout.width, len(self._rows) + 1)
        if size != self.virtual_size:
            self.set_reactive(TrafficTable.virtual_size, size)
            self._scrollbar_stale = True

    def _catch_up(self, now: float) -> None:
        """What ``_append`` left for the timer: the scrollbar, and under a flood which
        record is highlighted (each announcement redraws the pane under the table)."""
        if self._scrollbar_stale and now >= self._next_layout:
            self._scrollbar_stale = False
            self._next_layout = now + _SCROLLBAR_LAG
            self.refresh(layout=True)
        # The next tick after a quiet spell; under a flood, once per period.
        if now >= self._next_announce and self._announce():
            self._next_announce = now + _ANNOUNCE_EVERY

    def _keep_view(self, dropped: int) -> None:
        """``dropped`` rows fell out above: keep the cursor (and the view) on the same
        records. Their lines are cached by record, so the repaint draws nothing new."""
        self.cursor_row -= dropped
        if self.cursor_row < 0:  # the selected record itself fell out
            self.cursor_row = 0
        self.scroll_to(y=max(0, self.scroll_y - dropped), animate=False, immediate=True)
        self.refresh()
        self._announce()

    # -------------------------------------------------------------- reading

    def chosen(self) -> tuple[int, RequestRecord] | None:
        """The record under the cursor."""
        if not self._rows:
            return None
        return self._rows[min(self.cursor_row, len(self._rows) - 1)]

    def get_row_at(self, index: int) -> list[Text]:
        """The cells of row ``index`` (time, [alias,] method, path, status, reason,
        rule, latency, subject), as drawn."""
        return list(row_cells(self._rows[index][1], alias=self.alias_column))

    @property
    def columns(self) -> dict[str, Column]:
        """Every column by key (those shown at the current width: ``layout_keys``)."""
        return {column.key: column for column in self._spec}

    @property
    def layout_keys(self) -> tuple[str, ...]:
        """The columns shown at the current width."""
        return self._lines.layout.keys

    # -------------------------------------------------------------- drawing

    def render_lines(self, crop: Region) -> list[Strip]:
        # The width once per repaint, not per line: it walks up to the screen.
        self._line_width = self.scrollable_content_region.width
        return super().render_lines(crop)

    def render_line(self, y: int) -> Strip:
        width = self._line_width or self.scrollable_content_region.width
        if y == 0:
            header = self.rich_style + self.get_component_rich_style("traffic-table--header")
            return self._lines.header(header, width)
        row = int(self.scroll_y) + y - 1
        if row >= len(self._rows):
            return Strip.blank(width, self.rich_style)
        seq, record = self._rows[row]
        variant: Variant = (
            "cursor"
            if row == self.cursor_row
            else ("even" if (row + self._trimmed) % 2 == 0 else "odd")
        )
        style = self._variant_style(variant)
        return self._lines.row(seq, record, (variant, self.has_focus), style, width)

    @property
    def rows_rendered(self) -> int:
        """Row lines turned into Segments so far: what drawing has cost."""
        return self._lines.rows_rendered

    def _variant_style(self, variant: Variant) -> VariantStyle:
        """The line style of a row kind and, for the cursor, the colours that win over
        the cells' own (as DataTable's cursor does)."""
        styles = self._styles.get(variant)
        if styles is None:
            component = self.get_component_rich_style(f"traffic-table--{variant}")
            post = Style(color=component.color, bgcolor=component.bgcolor)
            styles = (self.rich_style + component, post if variant == "cursor" else None)
            self._styles[variant] = styles
        return styles

    def notify_style_update(self) -> None:
        super().notify_style_update()
        self._forget_colours()

    def palette_changed(self) -> None:
        """The app pushed new named styles (a theme switch): redraw every line."""
        self._lines.forget_segments()
        self._styles.clear()
        self.refresh()

    def _forget_colours(self) -> None:
        self._lines.forget_colours()
        self._styles.clear()

    def _refresh_rows(self, start: int, end: int) -> None:
        """Repaint rows ``start`` to ``end`` (exclusive) where they are on screen."""
        top = int(self.scroll_y)
        first, last = max(start, top), min(end, top + self._body_height())
        if first < last:
            width = self.scrollable_content_region.width
            self.refresh(Region(0, first - top + 1, width, last - first))

    def _body_height(self) -> int:
        return max(1, self.scrollable_content_region.height - 1)  # less the header

    # -------------------------------------------------------------- layout

    def on_resize(self, event: events.Resize) -> None:
        self._forget_colours()  # widths of blank ends changed
        self._relayout()
        if self.follow:
            self._to_last_row()
        else:
            self._scroll_to_cursor()

    def _relayout(self, *, force: bool = False) -> None:
        layout = fit(self._content.widths, self.scrollable_content_region.width, self._spec)
        if layout != self._lines.layout or force:
            self._lines.new_layout(layout)
            self.refresh()
        self.virtual_size = Size(layout.width, len(self._rows) + 1)

    # -------------------------------------------------------------- cursor

    def move_cursor(self, row: int, *, scroll: bool = True, announce: bool = True) -> None:
        """Put the cursor on ``row`` (clamped), scrolled into view; ``announce``: post
        ``RequestHighlighted`` now (else on the next timer tick)."""
        row = max(0, min(row, len(self._rows) - 1))
        if row != self.cursor_row:
            old, self.cursor_row = self.cursor_row, row
            self._refresh_rows(old, old + 1)
            self._refresh_rows(row, row + 1)
        if scroll:
            self._scroll_to_cursor()
        if announce:
            self._announce()

    def _scroll_to_cursor(self) -> None:
        top, body = int(self.scroll_y), self._body_height()
        if self.cursor_row < top:
            self.scroll_to(y=self.cursor_row, animate=False, immediate=True)
        elif self.cursor_row >= top + body:
            self.scroll_to(y=self.cursor_row - body + 1, animate=False, immediate=True)

    def _to_last_row(self, *, announce: bool = True) -> None:
        self.move_cursor(len(self._rows) - 1, announce=announce)

    def _announce(self) -> bool:
        """Say which record is under the cursor, when that changed (whether it did)."""
        chosen = self.chosen()
        seq = chosen[0] if chosen else None
        if seq == self._announced:
            return False
        self._announced = seq
        if chosen is None:
            self.post_message(RequestHighlighted(None))
        else:
            self.post_message(RequestHighlighted(chosen[1], chosen[0]))
        return True

    # -------------------------------------------------------------- follow

    def on_mount(self) -> None:
        self.set_interval(self.flush_interval, self.flush)

    def watch_follow(self, follow: bool) -> None:
        if follow:
            self._to_last_row()

    def _user_moved(self) -> None:
        self.follow = not self._rows or self.cursor_row >= len(self._rows) - 1

    def action_cursor_up(self) -> None:
        self.move_cursor(self.cursor_row - 1)
        self._user_moved()

    def action_cursor_down(self) -> None:
        self.move_cursor(self.cursor_row + 1)
        self._user_moved()

    def action_page_up(self) -> None:
        self.move_cursor(self.cursor_row - self._body_height())
        self._user_moved()

    def action_page_down(self) -> None:
        self.move_cursor(self.cursor_row + self._body_height())
        self._user_moved()

    def action_first(self) -> None:
        self.move_cursor(0)
        self._user_moved()

    def action_last(self) -> None:
        self.follow = True
        self._to_last_row()

    def on_click(self, event: events.Click) -> None:
        """A click selects its row; a click on the selected row opens it."""
        offset = event.get_content_offset(self)
        if offset is None or offset.y == 0:  # the header
            return
        row = int(self.scroll_y) + offset.y - 1
        if row >= len(self._rows):
            return
        if row == self.cursor_row:
            self.action_select_cursor()
        else:
            self.move_cursor(row)
            self._user_moved()

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.follow = False

    # -------------------------------------------------------------- choosing

    def action_select_cursor(self) -> None:
        chosen = self.chosen()
        if chosen is not None:
            seq, record = chosen
            self.post_message(RequestChosen(record, seq))
