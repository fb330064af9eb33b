"""The traffic table's drawn lines, cached: what makes a batch of traffic cheap to show.

A record's line is turned into Segments once for a column layout (``rows_rendered``
counts those conversions, the expensive part) and kept; its colouring for a row kind
(zebra stripe, cursor, focused or not) is a second cache of ``Strip``s on top, cleared
when the theme or the focus styles change. Both are bounded LRU caches of a few
screens' worth of lines, keyed by record number, so rows that scroll (or that new rows
push up) keep their cached line.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from rich.text import Text
from textual.cache import LRUCache
from textual.strip import Strip

from rrdev.core.records import RequestRecord
from rrdev.tui.views import row_cells
from rrdev.tui.widgets.traffic_columns import Layout, line_segments

__all__ = ["LineCache", "Variant", "VariantStyle"]

#: How a row is coloured: a zebra stripe, or the cursor.
Variant = Literal["even", "odd", "cursor"]
#: The line style of a row kind, and the colours that win over the cells' own.
VariantStyle = tuple[Style, Style | None]
#: Lines kept: a few screens' worth (the view, and where it just was).
_CACHE_LINES = 1024


class LineCache:
    """Strips for the header and the rows, for one layout at a time."""

    def __init__(
        self, console: Callable[[], Console], layout: Layout, *, alias: bool = False
    ) -> None:
        self._console = console
        self.layout = layout
        #: Rows carry the alias cell after the time (``views.row_cells(alias=True)``).
        self.alias = alias
        #: Row lines turned into Segments so far (cache misses): what drawing costs.
        self.rows_rendered = 0
        self._segments: LRUCache[int, list[Segment]] = LRUCache(_CACHE_LINES)
        self._strips: LRUCache[tuple[int, Variant, bool], Strip] = LRUCache(_CACHE_LINES)
        self._header: Strip | None = None

    def new_layout(self, layout: Layout) -> None:
        """Columns changed: every line is drawn anew."""
        self.layout = layout
        self._segments.clear()
        self.forget_colours()

    def forget_segments(self) -> None:
        """The named styles changed (a theme switch: ``palette``): every line is
        drawn anew, as the Segments hold the resolved colours."""
        self.new_layout(self.layout)

    def forget_colours(self) -> None:
        """Styles changed (theme, focus, width): the Segments stay, the Strips go."""
        self._strips.clear()
        self._header = None

    def row(
        self,
        seq: int,
        record: RequestRecord,
        key: tuple[Variant, bool],
        style: VariantStyle,
        width: int,
    ) -> Strip:
        """Record ``seq``'s line, coloured for ``key`` (row kind, focused), ``width``
        cells wide."""
        cache_key = (seq, *key)
        strip = self._strips.get(cache_key)
        if strip is None:
            line, post = style
            coloured = Segment.apply_style(self._row_segments(seq, record), line, post)
            strip = Strip(coloured, self.layout.width).adjust_cell_length(width, line)
            self._strips[cache_key] = strip
        return strip

    def _row_segments(self, seq: int, record: RequestRecord) -> list[Segment]:
        segments = self._segments.get(seq)
        if segments is None:
            self.rows_rendered += 1
            segments = line_segments(
                row_cells(record, alias=self.alias), self.layout, self._console()
            )
            self._segments[seq] = segments
        return segments

    def header(self, style: Style, width: int) -> Strip:
        """The column labels, ``width`` cells wide."""
        if self._header is None or self._header.cell_length != width:
            labels = [Text()] * (1 + max(c.index for c in self.layout.columns))
            for column in self.layout.columns:
                labels[column.index] = Text(column.label)
            segments = line_segments(labels, self.layout, self._console())
            strip = Strip(Segment.apply_style(segments, style))
            self._header = strip.adjust_cell_length(width, style)
        return self._header
