"""What the TUI remembers between runs: for now the theme, in a small TOML file.

``$RRDEV_TUI_CONFIG`` names the file; else ``tui.toml`` in the user's config
directory (``$XDG_CONFIG_HOME/rrdev/`` on Linux). A missing or unreadable file is
no settings, never an error: the inspector must start whatever is there.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import tomlkit
from tomlkit.exceptions import TOMLKitError

__all__ = ["SETTINGS_ENV", "TuiSettings", "load_settings", "save_settings", "settings_path"]

SETTINGS_ENV = "RRDEV_TUI_CONFIG"


@dataclass(frozen=True)
class TuiSettings:
    """``theme``: the Textual theme's name (default: Textual's own default)."""

    theme: str | None = None


def settings_path() -> Path:
    """Where the settings live (``$RRDEV_TUI_CONFIG``, else the user config dir)."""
    explicit = os.environ.get(SETTINGS_ENV)
    if explicit:
        return Path(explicit)
    from platformdirs import user_config_dir

    return Path(user_config_dir("rrdev")) / "tui.toml"


def load_settings(path: Path) -> TuiSettings:
    try:
        data = tomlkit.parse(path.read_text(encoding="utf-8"))
    except (OSError, TOMLKitError, UnicodeDecodeError):
        return TuiSettings()
    theme = data.get("theme")
    return TuiSettings(theme=str(theme) if isinstance(theme, str) else None)


def save_settings(path: Path, settings: TuiSettings) -> str | None:
    """Write the settings; returns why it could not (a read-only home), or ``None``."""
    document = tomlkit.document()
    document.add(tomlkit.comment("rrdev tui settings (written by the inspector)"))
    if settings.theme:
        document["theme"] = settings.theme
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(tomlkit.dumps(document), encoding="utf-8")
    except OSError as exc:
        return f"{path}: {exc.strerror or exc}"
    return None
