"""The notification log (``E``, or "Notifications" in the command palette): every
toast the inspector showed, with its time, newest first, so a reload error read too
late (toasts fade after a few seconds) can be read again."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import ClassVar

from rich.console import Group, RenderableType
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Footer, Static

__all__ = ["MAX_NOTICES", "Notice", "NoticesScreen", "notices_text"]

#: Notices kept for the log; older ones are forgotten.
MAX_NOTICES = 200

_SEVERITY_STYLES = {"error": "rrdev.error", "warning": "rrdev.warn"}


@dataclass(frozen=True)
class Notice:
    """One notification as it was shown."""

    time: float
    title: str
    message: str
    severity: str


def notices_text(notices: list[Notice]) -> RenderableType:
    if not notices:
        return Text("No notifications yet.", style="dim")
    lines: list[RenderableType] = []
    for notice in reversed(notices):
        stamp = datetime.fromtimestamp(notice.time).strftime("%H:%M:%S")
        head = Text.assemble((stamp, "dim"), "  ")
        head.append(
            notice.title or notice.severity, style=_SEVERITY_STYLES.get(notice.severity, "bold")
        )
        lines += [head, Text(f"  {notice.message}"), Text("")]
    return Group(*lines)


class NoticesScreen(ModalScreen[None]):
    """A modal list of past notifications; Esc, q or E closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,E", "close", "Close")]

    def __init__(self, notices: list[Notice]) -> None:
        super().__init__()
        self.notices = notices

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="notices"):
            yield Static(notices_text(self.notices), id="notices-body")
        yield Footer()

    def on_mount(self) -> None:
        box = self.query_one("#notices")
        box.border_title = "notifications"
        box.border_subtitle = "Esc / q / E close"

    def action_close(self) -> None:
        self.dismiss()
