"""The dry-run (``d``): a request typed in a form, judged as you type, never sent.

Each edit waits ``DEBOUNCE`` seconds of quiet, then asks ``judge`` (the runtime's
``dry_run``: ``decide`` on the proxy's thread, with its key cache) and shows the same
explanation as ``rrdev explain``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ClassVar

from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, VerticalScroll
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Input, Static

from rrdev.cli.render import outcome_text, render_explanation
from rrdev.core.explain import IncomingRequest
from rrdev.core.records import Explanation
from rrdev.tui.workbench.dry_run import DryRunForm, FormError

__all__ = ["DEBOUNCE", "DryRunScreen"]

DEBOUNCE = 0.2

Judge = Callable[[IncomingRequest], Awaitable["Explanation | None"]]


class DryRunScreen(ModalScreen[None]):
    """Method, path, headers, token; the explanation below follows every edit."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    def __init__(self, judge: Judge, form: DryRunForm | None = None) -> None:
        super().__init__()
        self.judge = judge
        self.form = form or DryRunForm()
        self.explanation: Explanation | None = None
        self._waiting: Timer | None = None

    def compose(self) -> ComposeResult:
        form = self.form
        with Horizontal(id="dry-request"):
            yield Input(form.method, id="dry-method", placeholder="GET")
            yield Input(form.path, id="dry-path", placeholder="/api/v1/products?limit=5")
        yield Input(form.headers, id="dry-headers", placeholder="Name: value; Other: value")
        yield Input(form.token, id="dry-token", placeholder="token (pasted; not sent anywhere)")
        yield Static("", id="dry-outcome")
        with VerticalScroll(id="dry-explanation"):
            yield Static("", id="dry-body")

    def on_mount(self) -> None:
        for key, title in (
            ("method", "method"),
            ("path", "path?query"),
            ("headers", "headers"),
            ("token", "token"),
        ):
            self.query_one(f"#dry-{key}", Input).border_title = title
        self.query_one("#dry-explanation").border_title = "dry-run: nothing is sent (Esc: close)"
        self.query_one("#dry-method", Input).focus()
        self.evaluate()

    def on_input_changed(self, event: Input.Changed) -> None:
        event.stop()
        if self._waiting is not None:
            self._waiting.stop()
        self._waiting = self.set_timer(DEBOUNCE, self.evaluate)

    def current_form(self) -> DryRunForm:
        def value(key: str) -> str:
            return self.query_one(f"#dry-{key}", Input).value

        return DryRunForm(value("method"), value("path"), value("headers"), value("token"))

    @work(exclusive=True, group="dry-run")
    async def evaluate(self) -> None:
        self._waiting = None
        try:
            request = self.current_form().request()
        except FormError as exc:
            self._show_problem(str(exc))
            return
        expl = await self.judge(request)
        if expl is None:
            self._show_problem("no profile to judge with: open the log with --profile")
            return
        self.explanation = expl
        self.query_one("#dry-outcome", Static).update(outcome_text(expl))
        self.query_one("#dry-body", Static).update(render_explanation(expl))

    def _show_problem(self, message: str) -> None:
        self.explanation = None
        self.query_one("#dry-outcome", Static).update(Text(message, style="bold red"))
        self.query_one("#dry-body", Static).update("")

    def action_close(self) -> None:
        self.dismiss(None)
