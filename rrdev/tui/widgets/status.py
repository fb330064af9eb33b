"""The status line under the table: JWKS state, counts, follow mode and the filter."""

from __future__ import annotations

from rich.text import Text
from textual.widgets import Static

from rrdev.core.jwk import JwksStatus
from rrdev.tui.views import jwks_text

__all__ = ["StatusLine"]


class StatusLine(Static):
    """Shows what it is given; the app calls ``show`` (attributes down)."""

    def show(
        self,
        *,
        jwks: JwksStatus | None,
        shown: int,
        kept: int,
        total: int,
        following: bool,
        filter_text: str,
    ) -> None:
        text = jwks_text(jwks)
        text.append("   │   ", style="dim")
        if filter_text:
            text.append(f"{shown:,} of {kept:,} match ", style="bold")
            text.append(filter_text, style="bold")
        else:
            text.append(f"{kept:,} requests", style="bold")
        if total > kept:
            text.append(f" (last {kept:,} of {total:,} kept)", style="dim")
        text.append("   │   ", style="dim")
        text.append("following" if following else "paused (End follows)", style="dim")
        self.update(text, layout=False)  # one line, whatever it says: no layout

    def show_text(self, text: Text | str) -> None:
        self.update(text)
