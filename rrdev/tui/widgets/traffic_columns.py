"""The traffic table's columns: which to show at a given width, and how wide each is.

Pure (no Textual). Columns are sized to their content (the widest value seen, as
``ContentWidths`` tracks it), never to the screen: on a wide terminal the spare cells
stay at the right instead of stretching the path. When the content does not fit, the
gaps narrow from two cells to one, then the widest elastic column (path, reason, rule,
subject; the path counts as 12 cells narrower) gives up a cell at a time down to its
minimum (values end in an ellipsis);
only on a really narrow screen (< 90 cells at the default content) is a column dropped,
least useful first (time, then latency, then subject). When several profiles are
served, an ``alias`` column (which proxy answered) follows ``time`` (``columns_for``).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Literal

from rich.cells import cell_len, set_cell_size
from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

from rrdev.core.records import RequestRecord

__all__ = [
    "ALIAS_COLUMN",
    "COLUMNS",
    "Column",
    "ContentWidths",
    "Layout",
    "columns_for",
    "fit",
    "line_segments",
]

#: One blank cell before the first column.
MARGIN = 1


@dataclass(frozen=True)
class Column:
    """A column of the table; ``index`` is its cell in ``views.row_cells``."""

    key: str
    label: str
    index: int
    #: Narrowest it gets before the table drops a column instead.
    min: int
    #: Elastic: may be narrower than its content (ellipsis) when space is short.
    elastic: bool = False
    #: Dropped on a narrow screen, lowest first; 0: never dropped.
    drop: int = 0
    justify: Literal["left", "right"] = "left"


COLUMNS: tuple[Column, ...] = (
    Column("time", "time", 0, 12, drop=1),
    Column("method", "method", 1, 6),
    Column("path", "path", 2, 16, elastic=True),
    Column("status", "status", 3, 6),
    Column("reason", "reason", 4, 10, elastic=True),
    Column("rule", "deciding rule", 5, 8, elastic=True),
    Column("latency", "latency", 6, 7, drop=2, justify="right"),
    Column("subject", "subject", 7, 8, elastic=True, drop=3),
)
#: Shown after ``time`` when several profiles are served (``rrdev tui a.toml b.toml``);
#: its cell is ``views.row_cells(record, alias=True)[1]``.
ALIAS_COLUMN = Column("alias", "alias", 1, 5, elastic=True)
_WITH_ALIAS: tuple[Column, ...] = (
    COLUMNS[0],
    ALIAS_COLUMN,
    *(replace(column, index=column.index + 1) for column in COLUMNS[1:]),
)


def columns_for(alias: bool) -> tuple[Column, ...]:
    """The table's columns, with the alias column or without."""
    return _WITH_ALIAS if alias else COLUMNS


#: The path gives up cells only once it is this much wider than the other elastic
#: columns: it is what a row is about.
_PATH_BONUS = 12
#: No column grows past this, whatever its content (a 2 KB path stays one cell row).
MAX_WIDTH = 80


@dataclass(frozen=True)
class Layout:
    """The columns shown, their widths and the gap between them."""

    columns: tuple[Column, ...]
    widths: tuple[int, ...]
    gap: int

    @property
    def width(self) -> int:
        """Cells the table's rows take (the margin, columns and gaps)."""
        return MARGIN + sum(self.widths) + self.gap * max(0, len(self.widths) - 1)

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(column.key for column in self.columns)


class ContentWidths:
    """The widest value seen per column, grown as records are added."""

    def __init__(self, records: Iterable[RequestRecord] = (), *, alias: bool = False) -> None:
        self.alias = alias
        self.widths = {column.key: cell_len(column.label) for column in columns_for(alias)}
        self.widths["time"] = 12  # HH:MM:SS.mmm
        for record in records:
            self.add(record)

    def add(self, record: RequestRecord) -> bool:
        """Account for ``record``; whether any column got wider."""
        grew = False
        values = _value_widths(record)
        if self.alias:
            values += (("alias", cell_len(record.alias or "-")),)
        for key, width in values:
            if width > self.widths[key]:
                self.widths[key] = min(width, MAX_WIDTH)
                grew = True
        return grew


def _value_widths(record: RequestRecord) -> tuple[tuple[str, int], ...]:
    # The same text as views.row_cells, measured without building it (per record, hot).
    path = cell_len(record.path)
    if record.query:
        path += sum(len(k) + len(v) + 2 for k, v in record.query)
    reason = len(record.reason) + (12 if record.preflight else 0)
    return (
        ("method", len(record.method)),
        # Rounded up, so a growing id in the path does not re-lay the table each time.
        ("path", -(-path // 4) * 4),
        ("reason", reason),
        ("rule", len(record.deciding_rule or "")),
        ("latency", len(f"{record.total_ms:.1f} ms")),
        ("subject", cell_len(record.subject or "")),
    )


def fit(
    content: dict[str, int], available: int, columns_shown: Sequence[Column] = COLUMNS
) -> Layout:
    """The layout for ``available`` cells, given the content's widths."""
    columns = list(columns_shown)
    while True:
        for gap, shrink in ((2, False), (1, False), (1, True)):
            widths = _widths(columns, content, available, gap, shrink)
            if widths is not None:
                return Layout(tuple(columns), widths, gap)
        droppable = [column for column in columns if column.drop]
        if not droppable:
            break
        columns.remove(min(droppable, key=lambda column: column.drop))
    # Narrower than every minimum: the minimums, cropped at the screen's edge.
    return Layout(tuple(columns), tuple(column.min for column in columns), 1)


def _widths(
    columns: list[Column], content: dict[str, int], available: int, gap: int, shrink: bool
) -> tuple[int, ...] | None:
    widths = [max(content.get(c.key, 0), cell_len(c.label), c.min) for c in columns]
    excess = MARGIN + sum(widths) + gap * (len(columns) - 1) - available
    if excess <= 0:
        return tuple(widths)
    if not shrink:
        return None
    elastic = [i for i, column in enumerate(columns) if column.elastic]
    while excess > 0:
        # The widest elastic column that can still give a cell gives it.
        givers = [i for i in elastic if widths[i] > columns[i].min]
        if not givers:
            return None
        widest = max(givers, key=lambda i: widths[i] - _PATH_BONUS * (columns[i].key == "path"))
        widths[widest] -= 1
        excess -= 1
    return tuple(widths)


def line_segments(cells: Sequence[Text], layout: Layout, console: Console) -> list[Segment]:
    """One table line (a row's cells, or the header's labels) as Segments: each cell
    cut to its column (with an ellipsis) or padded to it, joined by the gap. A cell of
    one style (all but a path with a query) skips Rich's Text machinery: this runs for
    every new line on screen, ten times a second under load."""
    segments = [Segment(" " * MARGIN)]
    for n, (column, width) in enumerate(zip(layout.columns, layout.widths, strict=True)):
        if n:
            segments.append(Segment(" " * layout.gap))
        cell = cells[column.index]
        if cell.spans:
            segments += _styled_cell(cell, column, width, console)
            continue
        plain = cell.plain
        size = cell_len(plain)
        if size > width:
            plain, size = set_cell_size(plain, width - 1) + "…", width
        pad = " " * (width - size)
        plain = pad + plain if column.justify == "right" else plain + pad
        style = cell.style if isinstance(cell.style, Style) else console.get_style(cell.style)
        segments.append(Segment(plain, style))
    return segments


def _styled_cell(cell: Text, column: Column, width: int, console: Console) -> list[Segment]:
    cell = cell.copy()
    cell.truncate(width, overflow="ellipsis")
    cell.align(column.justify, width)
    return list(cell.render(console, end=""))
