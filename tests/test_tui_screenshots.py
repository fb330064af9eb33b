"""The screenshot script's list: every shot is committed and shown in the README."""

from __future__ import annotations

from pathlib import Path

from rrdev.tui.screenshots import SHOTS

ROOT = Path(__file__).resolve().parent.parent


def test_every_screenshot_is_committed_and_in_the_readme() -> None:
    readme = (ROOT / "README.md").read_text()
    assert len(set(SHOTS)) == len(SHOTS) == 9
    for name in SHOTS:
        assert (ROOT / "screenshots" / name).is_file(), name
        assert f"](screenshots/{name})" in readme, name
