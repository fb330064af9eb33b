"""The rules view (``R``): the profile's rules by scope with live hit counts.

Counts are recomputed from the app's traffic on a timer (``count_rule_hits``), so they
change as requests arrive. A rule that never decided a request is marked. Enter on a
rule closes the view with the filter that shows the traffic it decided.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import ClassVar

from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.widgets import DataTable, Static

from rrdev.core.explain import SCOPE_LABELS
from rrdev.tui.workbench.rule_hits import RuleHits

__all__ = ["RulesScreen", "rule_cells"]

_COLUMNS = ("scope", "rule", "effect", "matched", "allowed", "denied", "")


def rule_cells(row: RuleHits) -> tuple[Text, ...]:
    never = row.decided == 0
    effect_style = "green" if row.effect == "allow" else "red"
    note = "never decided" if never else ""
    if not row.in_profile:
        note = "not in the profile in force"
    return (
        Text(SCOPE_LABELS.get(row.scope, row.scope), style="dim"),
        Text(row.name, style="dim" if never else "bold"),
        Text(row.effect, style=effect_style),
        Text(str(row.matched), justify="right"),
        Text(str(row.decided_allow), justify="right"),
        Text(str(row.decided_deny), justify="right"),
        Text(note, style="yellow" if never else "dim"),
    )


class RulesScreen(ModalScreen["str | None"]):
    """Rows from ``counts()``, refreshed every ``interval`` seconds; Enter -> a filter."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,R", "close", "Close"),
        Binding("enter", "choose", "Show its traffic"),
    ]

    def __init__(self, counts: Callable[[], list[RuleHits]], *, interval: float = 0.5) -> None:
        super().__init__()
        self.counts = counts
        self.interval = interval
        self.rows: list[RuleHits] = []

    def compose(self) -> ComposeResult:
        yield DataTable(id="rules-table", cursor_type="row", zebra_stripes=True)
        yield Static("", id="rules-note")

    def on_mount(self) -> None:
        table = self.query_one(DataTable)
        table.border_title = "rules: matched / decided allow / decided deny"
        table.border_subtitle = "Enter: show the traffic it decided · Esc: close"
        table.add_columns(*_COLUMNS)
        self.refresh_counts()
        table.focus()
        self.set_interval(self.interval, self.refresh_counts)

    def refresh_counts(self) -> None:
        rows = self.counts()
        if rows == self.rows:
            return
        self.rows = rows
        table = self.query_one(DataTable)
        cursor = table.cursor_row
        table.clear()
        for row in rows:
            table.add_row(*rule_cells(row))
        if rows:
            table.move_cursor(row=min(cursor, len(rows) - 1), animate=False)
        note = "" if rows else "This profile has no rules: every scope's default decides."
        self.query_one("#rules-note", Static).update(note)

    def action_choose(self) -> None:
        table = self.query_one(DataTable)
        if self.rows and 0 <= table.cursor_row < len(self.rows):
            self.dismiss(self.rows[table.cursor_row].filter_query)

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        event.stop()
        self.action_choose()

    def action_close(self) -> None:
        self.dismiss(None)
