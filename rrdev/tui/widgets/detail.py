"""One request in detail (Enter on a row): Explain, Request, Response and Token tabs.

Explain opens first for every answer rrdev made itself (401, 403, 400, 502, ...);
Response opens first for requests the backend answered. Everything shown comes from
the ``RequestRecord`` (already redacted) through ``rrdev.tui.views``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import ClassVar

from rich.console import RenderableType
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.screen import Screen
from textual.widgets import Footer, Header, Static, TabbedContent, TabPane

from rrdev.core.records import RequestRecord
from rrdev.tui.views import (
    explain_view,
    request_view,
    response_view,
    summary_line,
    token_view,
)

__all__ = ["ICON", "TABS", "RequestScreen"]

#: The header's icon on every screen.
ICON = "⇄"

#: (pane id, title, key)
TABS: tuple[tuple[str, str, str], ...] = (
    ("explain", "Explain", "e"),
    ("request", "Request", "r"),
    ("response", "Response", "s"),
    ("token", "Token", "t"),
)


class RequestScreen(Screen[None]):
    """The detail of one record; Esc (or q) goes back to the traffic."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape,q,backspace", "back", "Back"),
        *(Binding(key, f"show_tab('{pane}')", title) for pane, title, key in TABS),
        Binding("left", "step_tab(-1)", "Previous tab", show=False),
        Binding("right", "step_tab(1)", "Next tab", show=False),
    ]

    def __init__(
        self,
        record: RequestRecord,
        seq: int,
        *,
        clock: Callable[[], float] = time.time,
        profile_ref: str | None = None,
        note: str = "",
    ) -> None:
        super().__init__()
        self.record = record
        self.seq = seq
        self.clock = clock
        #: "demo" or the profile's path, for the commands the Explain tab suggests.
        self.profile_ref = profile_ref
        #: How this request relates to another ("fix of #12"), shown in the title.
        self.note = note

    @property
    def initial_tab(self) -> str:
        return "response" if self.record.forwarded else "explain"

    def compose(self) -> ComposeResult:
        yield Header(icon=ICON)
        yield Static(summary_line(self.record), id="summary")
        with TabbedContent(initial=self.initial_tab, id="tabs"):
            for pane, title, key in TABS:
                with TabPane(f"{title} ({key})", id=pane), VerticalScroll(classes="pane"):
                    yield Static(self._pane_content(pane), id=f"{pane}-body", classes="body")
        yield Footer()

    def on_mount(self) -> None:
        self.sub_title = f"request #{self.seq}" + (f" · {self.note}" if self.note else "")
        self.set_interval(1.0, self._tick)
        self._focus_pane(self.initial_tab)

    def body(self, pane: str) -> Static:
        """The Static that shows ``pane`` (for tests and the screenshot script)."""
        return self.query_one(f"#{pane}-body", Static)

    def _pane_content(self, pane: str) -> RenderableType:
        if pane == "explain":
            return explain_view(self.record, self.profile_ref)
        if pane == "request":
            return request_view(self.record)
        if pane == "response":
            return response_view(self.record)
        return token_view(self.record, self.clock())

    def _tick(self) -> None:
        """The token's expiry counts down while you look at it."""
        self.body("token").update(self._pane_content("token"))

    def _focus_pane(self, pane: str) -> None:
        self.query_one(f"#{pane} VerticalScroll", VerticalScroll).focus()

    def on_tabbed_content_tab_activated(self, event: TabbedContent.TabActivated) -> None:
        if event.pane.id:
            self._focus_pane(event.pane.id)

    def action_show_tab(self, pane: str) -> None:
        self.query_one(TabbedContent).active = pane

    def action_step_tab(self, step: int) -> None:
        tabs = self.query_one(TabbedContent)
        panes = [pane for pane, _t, _k in TABS]
        index = panes.index(tabs.active) if tabs.active in panes else 0
        tabs.active = panes[(index + step) % len(panes)]

    def action_back(self) -> None:
        self.dismiss()
