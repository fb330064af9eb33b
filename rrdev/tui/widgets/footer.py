"""The traffic screen's footer: Textual's ``Footer``, recomposed only when what it
shows changes.

Textual's footer rebuilds all its keys (a widget each, their styles applied) whenever
the screen says its bindings may have changed: on every focus change and every screen
pushed or popped. Opening and closing the help (``?``, Esc) cost two rebuilds of the
whole row, the larger part of a key press's latency under load. This one compares what
it would show (key, description, enabled) with what it shows, and while another screen
is on top (which has its own footer over this one) it waits until it is back.
"""

from __future__ import annotations

from textual.screen import Screen
from textual.widgets import Footer

__all__ = ["SteadyFooter"]

Shown = tuple[tuple[str, str, bool, str], ...]


def shown_bindings(screen: Screen[object]) -> Shown:
    """What a footer on ``screen`` shows: each shown binding's key, description,
    whether it is enabled, and its tooltip."""
    return tuple(
        (binding.key, binding.description, enabled, tooltip)
        for _node, binding, enabled, tooltip in screen.active_bindings.values()
        if binding.show
    )


class SteadyFooter(Footer):
    """A ``Footer`` that skips a rebuild that would show the same keys."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)  # type: ignore[arg-type]
        self.shown: Shown | None = None
        #: How many times the keys were rebuilt (tests hold it down).
        self.rebuilds = 0

    def bindings_changed(self, screen: Screen[object]) -> None:
        if self.shown is not None and screen is not self.app.screen:
            return  # covered: its screen publishes again when it is back on top
        shown = shown_bindings(screen)
        if shown == self.shown:
            return
        super().bindings_changed(screen)
        if screen.app.app_focus and self.is_attached and screen is self.screen:
            self.shown = shown
            self.rebuilds += 1
