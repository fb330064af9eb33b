"""The compose form (``s``, and ``e`` prefilled from the selected request).

Method, path, query, headers (one ``Name: value`` a line) and body; Ctrl+S (or the
Send button) dismisses the screen with the ``WorkbenchRequest``; the app sends it with
the current token. The token is never shown or edited here.
"""

from __future__ import annotations

from typing import ClassVar

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, TextArea

from rrdev.tui.workbench.requests import WorkbenchRequest, format_headers, parse_headers

__all__ = ["ComposeScreen"]


class ComposeScreen(ModalScreen[WorkbenchRequest | None]):
    """Edit a request; Ctrl+S sends, Esc cancels."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+s", "send", "Send", priority=True),
        Binding("escape", "cancel", "Cancel"),
    ]

    def __init__(self, request: WorkbenchRequest, title: str = "Compose") -> None:
        super().__init__()
        self.request = request
        self.title_text = title

    def compose(self) -> ComposeResult:
        request = self.request
        with Vertical(id="compose-panel") as panel:
            panel.border_title = f"{self.title_text}  (Ctrl+S sends with the current token)"
            with Horizontal(classes="compose-row"):
                yield Input(request.method, placeholder="method", id="compose-method")
                yield Input(request.path, placeholder="/path", id="compose-path")
            yield Input(request.query, placeholder="query: a=1&b=2", id="compose-query")
            yield Label("Headers (Name: value)")
            yield TextArea(format_headers(request.headers), id="compose-headers")
            yield Label("Body")
            yield TextArea(request.body, id="compose-body")
            yield Label("", id="compose-error")
            with Horizontal(classes="compose-row"):
                yield Button("Send", id="compose-send", variant="primary")
                yield Button("Cancel", id="compose-cancel")

    def on_mount(self) -> None:
        self.query_one("#compose-path", Input).focus()

    def built(self) -> WorkbenchRequest:
        """The form as a request; raises ValueError saying what is wrong."""
        method = self.query_one("#compose-method", Input).value.strip().upper()
        path = self.query_one("#compose-path", Input).value.strip()
        if not method.isalpha():
            raise ValueError("the method is letters only (GET, POST, DELETE, ...)")
        if not path.startswith("/"):
            raise ValueError("the path starts with / (the proxy's URL is added)")
        path, _, inline_query = path.partition("?")
        query = self.query_one("#compose-query", Input).value.strip().lstrip("?")
        return WorkbenchRequest(
            method=method,
            path=path,
            query="&".join(q for q in (inline_query, query) if q),
            headers=parse_headers(self.query_one("#compose-headers", TextArea).text),
            body=self.query_one("#compose-body", TextArea).text,
            alias=self.request.alias,  # an edit goes to the profile the original did
        )

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "compose-send":
            self.action_send()
        else:
            self.action_cancel()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        self.action_send()

    def action_send(self) -> None:
        try:
            request = self.built()
        except ValueError as exc:
            self.query_one("#compose-error", Label).update(str(exc))
            return
        self.dismiss(request)

    def action_cancel(self) -> None:
        self.dismiss(None)
