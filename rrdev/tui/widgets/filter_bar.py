"""The filter bar (``/``): a query typed here narrows the traffic table as you type.

An edit that parses posts ``FilterApplied`` once typing pauses (``DEBOUNCE`` seconds;
Enter applies at once), so a burst of keys over 10,000 rows filters once. One that
does not parse marks the bar invalid (``-bad-query``, our own class: Textual's Input
drops its ``-invalid`` on Enter and on blur) and says why under it; after the same
pause (or Enter) it posts ``FilterRejected``, and the app shows no rows rather than
rows that only look filtered. The mark stays until the query changes. Esc posts
``FilterCleared``.
"""

from __future__ import annotations

from typing import ClassVar

from textual.binding import Binding, BindingType
from textual.timer import Timer
from textual.widgets import Input

from rrdev.tui.filters import FilterError, RecordFilter, parse_filter
from rrdev.tui.messages import FilterApplied, FilterCleared, FilterRejected

__all__ = ["DEBOUNCE", "FilterBar"]

DEBOUNCE = 0.15

PLACEHOLDER = (
    "status:403  status:4xx  method:DELETE  reason:token_expired  rule:<id>  path:users  "
    "sub:<subject>  text  (-term negates)"
)


class FilterBar(Input):
    """An Input that turns its text into a ``RecordFilter``."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "dismiss", "Clear filter")]

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(placeholder=PLACEHOLDER, id=id)
        self.border_title = "filter"
        self._waiting: Timer | None = None
        self._parsed: RecordFilter | None = None
        self._error: str | None = None

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        self._cancel()
        try:
            self._parsed = parse_filter(event.value)
        except FilterError as exc:
            self._parsed, self._error = None, str(exc)
            self.add_class("-bad-query")
            self.border_subtitle = f"{exc} · no request shown until it parses"
            self._waiting = self.set_timer(DEBOUNCE, self.apply)
            return
        self._error = None
        self.remove_class("-bad-query")
        self.border_subtitle = "Enter: back to the table · Esc: clear"
        if not event.value:
            self.apply()  # cleared: show everything at once
        else:
            self._waiting = self.set_timer(DEBOUNCE, self.apply)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if self._waiting is not None:
            self.apply()  # (the event bubbles on: the app moves focus to the table)

    def apply(self) -> None:
        """Post the filter now (a pending one, after a pause or on Enter)."""
        self._cancel()
        if self._parsed is not None:
            self.post_message(FilterApplied(self._parsed))
        elif self._error is not None:
            self.post_message(FilterRejected(self.value, self._error))

    def _cancel(self) -> None:
        if self._waiting is not None:
            self._waiting.stop()
            self._waiting = None

    def action_dismiss(self) -> None:
        self.post_message(FilterCleared())
