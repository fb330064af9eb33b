"""The copy menu (``y``): what to put on the clipboard for the selected request."""

from __future__ import annotations

from typing import ClassVar, Literal

from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.screen import ModalScreen
from textual.widgets import OptionList
from textual.widgets.option_list import Option

__all__ = ["COPY_CHOICES", "CopyChoice", "CopyMenu"]

CopyChoice = Literal["curl", "curl_token", "token", "explanation", "body"]

#: (choice, label): the curl with the real token is a second, explicit choice.
COPY_CHOICES: tuple[tuple[CopyChoice, str], ...] = (
    ("curl", "curl command (token as $TOKEN)"),
    ("curl_token", "curl command with the token (a secret on your clipboard)"),
    ("token", "the token"),
    ("explanation", "the explanation"),
    ("body", "the response body"),
)


class CopyMenu(ModalScreen["CopyChoice | None"]):
    """A short list; Enter copies the highlighted choice, Esc copies nothing."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q", "cancel", "Cancel")]

    def compose(self) -> ComposeResult:
        options = [Option(label, id=choice) for choice, label in COPY_CHOICES]
        yield OptionList(*options, id="copy-menu")

    def on_mount(self) -> None:
        menu = self.query_one(OptionList)
        menu.border_title = "copy to the clipboard"
        menu.border_subtitle = "Enter: copy · Esc: cancel"

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        self.dismiss(event.option.id)  # type: ignore[arg-type]

    def action_cancel(self) -> None:
        self.dismiss(None)
