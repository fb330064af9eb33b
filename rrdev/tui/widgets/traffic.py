"""The live traffic table: one row per request, batched, bounded, following the tail.

Records are queued as they arrive and added on a short timer (one table update per
batch, not per request). The table holds at most ``max_rows`` rows: a batch appends
its rows and drops as many of the oldest in one pass (``_trim``; DataTable's own
``remove_row`` is O(n) per row), so no batch rebuilds the table, and the row under
the cursor stays under it.

It follows new rows until the user moves the cursor off the last row (or scrolls up
with the mouse); moving back to the last row (End) or ``f`` follows again.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterable
from typing import ClassVar

from textual import events
from textual._two_way_dict import TwoWayDict
from textual.binding import Binding, BindingType
from textual.geometry import Size
from textual.reactive import reactive
from textual.widgets import DataTable
from textual.widgets.data_table import RowKey

from rrdev.core.records import RequestRecord
from rrdev.tui.messages import RequestChosen, RequestHighlighted
from rrdev.tui.views import row_cells

__all__ = ["ALIAS_COLUMN", "COLUMNS", "TrafficTable"]

#: (key, label, width); the path column takes what is left (``None``).
COLUMNS: tuple[tuple[str, str, int | None], ...] = (
    ("time", "time", 12),
    ("method", "method", 7),
    ("path", "path", None),
    ("status", "status", 6),
    ("reason", "reason", 20),
    ("rule", "deciding rule", 20),
    ("latency", "latency", 9),
    ("subject", "subject", 20),
)
#: Shown after ``time`` when several profiles are served (``rrdev tui a.toml b.toml``).
ALIAS_COLUMN = ("alias", "alias", 14)
_MIN_PATH_WIDTH = 16


class TrafficTable(DataTable[object]):
    """Rows of ``(seq, RequestRecord)``; Enter posts ``RequestChosen``."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("enter", "select_cursor", "Explain"),
        Binding("k", "cursor_up", "Up", show=False),
        Binding("j", "cursor_down", "Down", show=False),
        Binding("home", "scroll_top", "First", show=False),
        Binding("end", "scroll_bottom", "Last", show=False),
    ]

    #: Keep the cursor on the newest row as rows arrive.
    follow: reactive[bool] = reactive(True)

    def __init__(
        self,
        *,
        max_rows: int = 10_000,
        flush_interval: float = 0.1,
        alias_column: bool = False,
        id: str | None = None,
    ) -> None:
        super().__init__(cursor_type="row", zebra_stripes=True, id=id)
        #: which proxy answered: only when several profiles share the port
        self.alias_column = alias_column
        self._spec = (COLUMNS[0], ALIAS_COLUMN, *COLUMNS[1:]) if alias_column else COLUMNS
        self.max_rows = max_rows
        self.flush_interval = flush_interval
        self._pending: list[tuple[int, RequestRecord]] = []
        self._shown: deque[tuple[int, RequestRecord]] = deque(maxlen=max_rows)
        self._records: dict[int, RequestRecord] = {}
        self._path_width = 0
        self._next_flush = 0.0

    # -------------------------------------------------------------- feeding

    def queue(self, seq: int, record: RequestRecord) -> None:
        """Show this record with the next batch."""
        self._pending.append((seq, record))

    def show(self, items: list[tuple[int, RequestRecord]]) -> None:
        """Replace every row (a new filter, a cleared buffer)."""
        self._pending = []
        self._shown = deque(items, maxlen=self.max_rows)
        self._rebuild()

    @property
    def pending(self) -> int:
        return len(self._pending)

    def flush(self) -> None:
        """Add the queued records in one batch (called on a timer)."""
        now = time.monotonic()
        if not self._pending or now < self._next_flush:
            return
        batch, self._pending = self._pending, []
        self._shown.extend(batch)
        for seq, record in batch[-self.max_rows :]:
            self._add(seq, record)
        self._trim(self.row_count - self.max_rows)
        if self.follow:
            self._to_last_row()
        # Under a flood, batches grow instead of the UI spending all its time here.
        spent = time.monotonic() - now
        self._next_flush = time.monotonic() + max(0.0, 4 * spent - self.flush_interval)

    def _add(self, seq: int, record: RequestRecord) -> None:
        self._records[seq] = record
        self.add_row(*row_cells(record, alias=self.alias_column), key=str(seq))

    def _trim(self, count: int) -> None:
        """Drop the ``count`` oldest rows in one pass, keeping the cursor (and the
        view) on the same records. Rows are only ever appended, in ``seq`` order, so
        the oldest are the first ``count`` indexes; this edits DataTable's row maps as
        its own ``sort`` does."""
        if count <= 0:
            return
        locations = self._row_locations
        doomed = {locations.get_key(index) for index in range(count)}
        self._row_locations = TwoWayDict(
            {key: index - count for key in locations if (index := locations.get(key)) >= count}
        )
        for key in doomed:
            del self.rows[key], self._data[key]
            self._records.pop(int(key.value), None)  # type: ignore[arg-type]
            self._new_rows.discard(key)
        if self._updated_cells:
            self._updated_cells = {c for c in self._updated_cells if c.row_key not in doomed}
        self._update_count += 1
        self._require_update_dimensions = True
        if not self.follow:
            self.scroll_y = self.scroll_target_y = max(0, self.scroll_y - count)
            self.move_cursor(row=max(0, self.cursor_row - count), animate=False)
        self.refresh(layout=True)

    def _rebuild(self) -> None:
        before = self.chosen()
        self.clear()
        self._records = {}
        if not self._shown:
            self.post_message(RequestHighlighted(None))
        for seq, record in self._shown:
            self._add(seq, record)
        if self.follow:
            self._to_last_row()
        elif before is not None and before[0] in self._records:
            self.move_cursor(row=self.get_row_index(str(before[0])), animate=False)

    def _to_last_row(self) -> None:
        if self.row_count:
            self.move_cursor(row=self.row_count - 1, animate=False)

    # -------------------------------------------------------------- reading

    def chosen(self) -> tuple[int, RequestRecord] | None:
        """The record under the cursor."""
        if not self.row_count:
            return None
        key = self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value
        if key is None:
            return None
        record = self._records.get(int(key))
        return (int(key), record) if record is not None else None

    # -------------------------------------------------------------- columns

    def on_mount(self) -> None:
        self._add_columns()
        self.set_interval(self.flush_interval, self.flush)

    def on_resize(self, event: events.Resize) -> None:
        if self._fit_path_width() != self._path_width:
            self.call_after_refresh(self._relayout)

    def _fit_path_width(self) -> int:
        fixed = sum(w for _k, _l, w in self._spec if w is not None)
        padding = 2 * self.cell_padding * len(self._spec)
        # Before the first layout, the app's width less the (stable) scrollbar gutter.
        available = self.size.width or self.app.size.width - self.styles.scrollbar_size_vertical
        return max(_MIN_PATH_WIDTH, available - fixed - padding)

    def _add_columns(self) -> None:
        self._path_width = self._fit_path_width()
        for key, label, width in self._spec:
            self.add_column(label, key=key, width=width or self._path_width)

    def _relayout(self) -> None:
        self.clear(columns=True)
        self._add_columns()
        self._rebuild()

    def _update_dimensions(self, new_rows: Iterable[RowKey]) -> None:
        # DataTable measures every cell of every new row here, to size auto-width
        # columns and auto-height rows; that dominates at 10,000 rows (seconds of a
        # blocked loop, and the proxy shares it). Every column here has a fixed width
        # and every row one line, so only the virtual size needs updating.
        width = sum(column.get_render_width(self) for column in self.columns.values())
        header = self.header_height if self.show_header else 0
        self.virtual_size = Size(width, self.row_count + header)

    # -------------------------------------------------------------- follow

    def watch_follow(self, follow: bool) -> None:
        if follow:
            self._to_last_row()

    def _user_moved(self) -> None:
        self.follow = self.row_count == 0 or self.cursor_row >= self.row_count - 1

    def action_cursor_up(self) -> None:
        super().action_cursor_up()
        self._user_moved()

    def action_cursor_down(self) -> None:
        super().action_cursor_down()
        self._user_moved()

    def action_page_up(self) -> None:
        super().action_page_up()
        self._user_moved()

    def action_page_down(self) -> None:
        super().action_page_down()
        self._user_moved()

    def action_scroll_top(self) -> None:
        super().action_scroll_top()
        self._user_moved()

    def action_scroll_bottom(self) -> None:
        super().action_scroll_bottom()
        self.follow = True

    def on_click(self, event: events.Click) -> None:
        self.call_after_refresh(self._user_moved)

    def on_mouse_scroll_up(self, event: events.MouseScrollUp) -> None:
        self.follow = False

    # -------------------------------------------------------------- choosing

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        event.stop()
        chosen = self.chosen()
        if chosen is None:
            self.post_message(RequestHighlighted(None))
        else:
            seq, record = chosen
            self.post_message(RequestHighlighted(record, seq))

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        chosen = self.chosen()
        if chosen is not None:
            seq, record = chosen
            self.post_message(RequestChosen(record, seq))
