"""The help screen (``?`` or F1): every key, and the filter language.

Its text is three Rich tables, which take tens of milliseconds to lay out (more under
load): the first ``?`` was the slowest key of the app. So the text is laid out once per
width and theme into lines ready to draw (``help_lines``), and the app lays it out for
the width the help will have shortly after start and after a resize (``warm_help``):
``?`` then only draws lines, the first time too.
"""

from __future__ import annotations

from functools import lru_cache
from typing import ClassVar

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import VerticalScroll
from textual.geometry import Size
from textual.screen import ModalScreen
from textual.strip import Strip
from textual.widget import Widget

from rrdev.tui.widgets.footer import SteadyFooter

__all__ = ["HelpScreen", "HelpText", "help_lines", "help_text", "warm_help"]

#: The help box (rrdev.tcss ``#help``): its width, and what border and padding take.
BOX_WIDTH, BOX_SHARE, BOX_FRAME = 100, 0.95, 2 + 4
#: Rows the box may take (``max-height: 90%``), less its border and padding.
BOX_HEIGHT_SHARE, BOX_FRAME_ROWS = 0.9, 2 + 2
#: Columns a vertical scrollbar takes when the text is taller than the box.
SCROLLBAR = 2

KEYS: tuple[tuple[str, str], ...] = (
    ("↑ ↓  j k  PgUp PgDn", "move through requests (moving up stops following)"),
    ("Home / End", "first request / last request (End follows new requests again)"),
    ("Enter", "explain the selected request"),
    ("/", "filter requests (see below); Enter returns to the table"),
    ("Esc", "clear the filter; in a detail view, go back"),
    ("F", "follow new requests on/off"),
    ("t", "token panel: paste, fetch ([auth]) or mint the current token"),
    ("s", "compose a request and send it with the current token (Ctrl+S sends)"),
    ("r / e", "replay the selected request with the current token / edit it and resend"),
    ("f", "make it pass: mint the token the selected refusal lacks and replay"),
    ("g", "send the demo's four requests again (rrdev tui --demo)"),
    ("c", "clear the list"),
    ("E", "notifications so far, with their times (a failed reload, JWKS trouble, ...)"),
    ("y", "copy: curl ($TOKEN, or with the token), the token, the explanation, the body"),
    ("x", "export the visible requests as HAR 1.2 or JSONL (redacted)"),
    ("R", "rules view: hit counts per rule; Enter filters the traffic it decided"),
    ("d", "dry-run: type a request, see the explanation; nothing is sent"),
    ("n / N", "next / previous refused request"),
    ("o", "sort by the next column (time, method, path, status, ...)"),
    ("↑ ↓  →", "in the filter: older / newer queries; accept the completion"),
    ("e r s t  ← →", "in a detail view: Explain, Request, Response, Token tabs"),
    ("Ctrl+P", "command palette: every action here, themes (remembered), screenshots"),
    ("? / F1", "this help"),
    ("q", "quit (in a detail view: back)"),
)

FILTERS: tuple[tuple[str, str], ...] = (
    ("status:403  status:4xx  status:401,403", "status, class (x = any digit), any of"),
    ("method:DELETE", "HTTP method"),
    ("reason:token_expired", "reason code (contains)"),
    ("rule:scope-gate-delete", "a rule that decided or matched (exact name)"),
    ("alias:orders", "the profile that answered, with several (exact)"),
    ("path:users", "path (contains)"),
    ("sub:reader", "token subject (contains)"),
    ("admin", "free text: anywhere in the row or the message"),
    ("-status:200  !method:GET", "a leading - or ! negates a term"),
    ('path:"/a b"', "quotes keep spaces"),
)


def _table(rows: tuple[tuple[str, str], ...]) -> Table:
    table = Table(box=None, pad_edge=False, show_header=False, padding=(0, 2, 0, 0))
    table.add_column(style="bold", no_wrap=True)
    table.add_column()
    for key, meaning in rows:
        # Plain text, not markup: "[auth]" is a profile section, not a style.
        table.add_row(Text(key), Text(meaning))
    return table


#: (status, style name, meaning)
LEGEND: tuple[tuple[str, str, str], ...] = (
    ("200", "rrdev.ok", "allowed (and the backend's own answer)"),
    ("401", "rrdev.401", "who are you? the token is missing, expired or not trusted"),
    ("403", "rrdev.403", "not allowed: a rule (or a scope's default) denied it"),
    ("400", "rrdev.4xx", "other refusals: an ambiguous path, two Authorization headers, ..."),
    ("502", "rrdev.5xx", "the backend (or the JWKS) could not be reached"),
)


def _legend() -> Table:
    table = Table(box=None, pad_edge=False, show_header=False, padding=(0, 2, 0, 0))
    table.add_column(no_wrap=True)
    table.add_column()
    for status, style, meaning in LEGEND:
        table.add_row(Text(status, style=style), meaning)
    return table


def help_text() -> RenderableType:
    return Group(
        Text("Keys", style="bold underline"),
        _table(KEYS),
        Text(""),
        Text("Filter (terms combine with AND)", style="bold underline"),
        _table(FILTERS),
        Text(""),
        Text("Colours (legend)", style="bold underline"),
        _legend(),
        Text(""),
        Text(
            "Every row is a request through the proxy. The Explain tab shows the same "
            "verification checklist and rule trace as `rrdev explain`, with the deciding "
            "rule marked.",
            style="dim",
        ),
    )


@lru_cache(maxsize=8)
def help_lines(console: Console, width: int, theme: str) -> tuple[Strip, ...]:
    """``help_text()`` laid out ``width`` columns wide, as lines ready to draw
    (``theme``: the colours it was laid out with, for the cache)."""
    del theme  # only part of the cache's key: the console's styles follow the theme
    options = console.options.update_width(width)
    lines = console.render_lines(help_text(), options, pad=False)
    return tuple(Strip(line).adjust_cell_length(width) for line in lines)


def text_width(screen_width: int, screen_height: int, console: Console, theme: str) -> int:
    """The width the help's text will have on a screen this size (as ``#help`` sizes
    its box), laid out to see whether it needs a scrollbar."""
    width = min(BOX_WIDTH, int(screen_width * BOX_SHARE)) - BOX_FRAME
    rows = int(screen_height * BOX_HEIGHT_SHARE) - BOX_FRAME_ROWS
    if len(help_lines(console, max(1, width), theme)) > rows:
        width -= SCROLLBAR
    return max(1, width)


def warm_help(app: App[object]) -> None:
    """Lay the help out for the app's current size (on a quiet moment)."""
    width = text_width(app.size.width, app.size.height, app.console, app.theme)
    help_lines(app.console, width, app.theme)


class HelpText(Widget):
    """The help's text, drawn from the lines ``help_lines`` keeps per width."""

    DEFAULT_CSS = "HelpText { height: auto; }"

    def _lines(self, width: int) -> tuple[Strip, ...]:
        return help_lines(self.app.console, max(1, width), self.app.theme)

    @property
    def text(self) -> str:
        """What it draws at its width, as plain text."""
        return "\n".join(line.text.rstrip() for line in self._lines(self.size.width))

    def get_content_height(self, container: Size, viewport: Size, width: int) -> int:
        return len(self._lines(width))

    def render_line(self, y: int) -> Strip:
        width = self.size.width
        lines = self._lines(width)
        if y >= len(lines):
            return Strip.blank(width, self.rich_style)
        return lines[y].apply_style(self.rich_style)


class HelpScreen(ModalScreen[None]):
    """A modal over the traffic; any of Esc, q, ? or F1 closes it. Its own footer
    says so (the traffic's footer behind it would offer "q Quit")."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape,q,question_mark,f1", "close", "Close")]

    def compose(self) -> ComposeResult:
        with VerticalScroll(id="help"):
            yield HelpText()
        yield SteadyFooter()  # the same keys at every opening: built once

    def on_mount(self) -> None:
        box = self.query_one("#help")
        box.border_title = "rrdev tui — help"
        box.border_subtitle = "Esc / q / ? close"

    def action_close(self) -> None:
        self.dismiss()
