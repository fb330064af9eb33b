"""The TUI's colours as named Rich styles (``rrdev.401``, ``rrdev.rule``, ...) built
from the current Textual theme's variables, so every theme (the light one too) gets
readable colours and a theme switch recolours everything.

The views write style *names*; the app pushes ``palette_theme`` onto its Rich console
(where Textual resolves a Text's style names) and again on every theme change. Pure:
no Textual import, only the theme's variables as a mapping.
"""

from __future__ import annotations

from collections.abc import Mapping

from rich.color import Color, ColorParseError
from rich.style import Style
from rich.theme import Theme

__all__ = ["STYLES", "palette_theme", "status_style"]

#: style name -> (theme variable, bold)
STYLES: dict[str, tuple[str, bool]] = {
    "rrdev.ok": ("text-success", True),
    "rrdev.401": ("text-error", True),  # who are you? (authentication)
    "rrdev.403": ("text-warning", True),  # not allowed (rules)
    "rrdev.4xx": ("text-secondary", True),  # other refusals: 400, 421, 431, ...
    "rrdev.5xx": ("text-error", True),
    "rrdev.rule": ("text-warning", True),
    "rrdev.subject": ("text-primary", False),
    "rrdev.hint": ("text-primary", True),
    "rrdev.warn": ("text-warning", True),
    "rrdev.error": ("text-error", True),
}
#: Used when a variable is missing or not a plain colour (a theme without it).
_FALLBACK = {"text-success": "green", "text-error": "red", "text-warning": "dark_orange"}


def status_style(status: int) -> str:
    """The style name for a status: 401 and 403 differ (who vs. what is refused)."""
    if status in (401, 403):
        return f"rrdev.{status}"
    if status >= 500:
        return "rrdev.5xx"
    if status >= 400:
        return "rrdev.4xx"
    return "rrdev.ok"


def palette_theme(variables: Mapping[str, str]) -> Theme:
    """The named styles for a Textual theme's CSS variables."""
    return Theme({name: _style(variables, var, bold) for name, (var, bold) in STYLES.items()})


def _style(variables: Mapping[str, str], var: str, bold: bool) -> Style:
    value = variables.get(var, "")
    try:
        color = Color.parse(value)
    except ColorParseError:  # "auto 60%" and the like: not a colour Rich knows
        color = Color.parse(_FALLBACK.get(var, "default"))
    return Style(color=color, bold=bold)
