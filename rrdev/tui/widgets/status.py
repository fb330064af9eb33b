"""The status line under the table: JWKS state, counts, follow mode and the filter;
a proxy process that died, a failed hot reload or a filter that does not parse
first, until fixed."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from rrdev.core.jwk import JwksStatus
from rrdev.tui.views import jwks_text, plural

__all__ = ["StatusLine"]

_BAR = ("   │   ", "dim")


class StatusLine(Static):
    """Shows what it is given; the app calls ``show`` (attributes down)."""

    def show(
        self,
        *,
        jwks: JwksStatus | None,
        shown: int,
        kept: int,
        dropped: int = 0,
        cleared: int = 0,
        following: bool,
        filter_text: str,
        filter_error: str | None = None,
        reload_error: str | None = None,
        proxy_error: str | None = None,
    ) -> None:
        text = Text()
        if proxy_error:  # nothing is served any more: say so before anything else
            text.append("proxy stopped: ", "rrdev.error")
            text.append(proxy_error)
            text.append(*_BAR)
        if reload_error:
            text.append("profile reload failed, serving the last good profile: ", "rrdev.error")
            text.append(reload_error)
            text.append(*_BAR)
        text.append_text(jwks_text(jwks))
        text.append(*_BAR)
        text.append_text(_counts(shown, kept, dropped, cleared, filter_text, filter_error))
        text.append(*_BAR)
        text.append("following" if following else "paused (End follows)", style="dim")
        self.update(text, layout=False)  # one line, whatever it says: no layout

    def show_token(self, label: str) -> None:
        """Append the current token's expiry ("token minted, 59m left") to what
        ``show`` drew; the app calls it right after ``show``."""
        text = self.content if isinstance(self.content, Text) else Text(str(self.content))
        text = text.copy()
        text.append("   │   ", style="dim")
        text.append(label, style="bold red" if "expired" in label else "dim")
        self.update(text, layout=False)


def _counts(
    shown: int, kept: int, dropped: int, cleared: int, filter_text: str, filter_error: str | None
) -> Text:
    text = Text()
    if filter_error is not None:
        text.append("invalid filter: no request shown", style="rrdev.error")
        text.append(f" (of {kept:,})", style="dim")
    elif filter_text:
        text.append(f"{shown:,} of {kept:,} match ", style="bold")
        text.append(filter_text, style="bold")
    else:
        text.append(plural(kept, "request"), style="bold")
    if dropped:
        text.append(f" (last {kept:,} of {kept + dropped:,} kept)", style="dim")
    if cleared and not kept:
        text.append(f" · list cleared ({plural(cleared, 'request')} before)", style="dim")
    return text
