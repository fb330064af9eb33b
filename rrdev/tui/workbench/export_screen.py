"""The export prompt (``x``): where to write the visible traffic, as HAR or JSONL.

The format follows the file name: ``.jsonl`` (or ``.json`` lines) writes JSONL, anything
else HAR 1.2. The default name is ``./rrdev-traffic-<time>.har``.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.widgets import Input

from rrdev.tui.workbench.export import ExportFormat

__all__ = ["ExportScreen", "format_for"]


def format_for(path: str) -> ExportFormat:
    return "jsonl" if path.lower().endswith((".jsonl", ".ndjson")) else "har"


class ExportScreen(ModalScreen["str | None"]):
    """One input with the path; Enter exports, Esc cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    def __init__(self, default_path: str, count: int) -> None:
        super().__init__()
        self.default_path = default_path
        self.count = count

    def compose(self) -> ComposeResult:
        yield Input(self.default_path, id="export-path")

    def on_mount(self) -> None:
        path = self.query_one(Input)
        path.border_title = f"export {self.count} visible request(s), redacted"
        path.border_subtitle = "…​.har: HAR 1.2 · …​.jsonl: JSON lines · Enter: write · Esc: cancel"
        path.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.dismiss(event.value.strip() or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
