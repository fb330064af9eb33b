"""The app's own actions in Textual's command palette (Ctrl+P), beside its themes
and screenshots: everything a key does can also be found by name."""

from __future__ import annotations

from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

__all__ = ["COMMANDS", "RrdevCommands"]

#: (name, what it does, the app action it runs, its key)
COMMANDS: tuple[tuple[str, str, str, str], ...] = (
    ("Filter requests", "narrow the traffic by status, rule, path, ...", "filter", "/"),
    ("Clear the filter", "show every request again", "clear_filter", "Esc"),
    ("Follow new requests on/off", "keep the cursor on the newest row", "toggle_follow", "f"),
    ("Send the demo requests", "the demo's four requests again", "generate", "g"),
    ("Clear the list", "forget the requests shown so far", "clear", "c"),
    ("Notifications", "every notification so far, with its time", "notices", "E"),
    ("Help", "every key, the filter language and the colours", "help", "?"),
    ("Quit", "stop the proxy and leave", "quit", "q"),
)


class RrdevCommands(Provider):
    """The app's actions that make sense right now (``App.check_action``)."""

    def _available(self) -> list[tuple[str, str, str]]:
        # Asked of the screen the palette was opened on (``self.screen``), not of the
        # palette itself, which is the app's screen while it is open.
        available = getattr(self.app, "command_available", None)
        return [
            (f"{name}  ({key})", help_text, action)
            for name, help_text, action, key in COMMANDS
            if available is None or available(action, self.screen)
        ]

    def _run(self, action: str) -> partial[object]:
        return partial(self.app.run_action, action)

    async def discover(self) -> Hits:
        for name, help_text, action in self._available():
            yield DiscoveryHit(name, self._run(action), text=name, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, action in self._available():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), self._run(action), name, help_text)
