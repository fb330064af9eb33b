"""Regenerate the TUI screenshots: ``python -m rrdev.tui.screenshots [--out DIR]``.

Runs the offline demo (ports 0, keys in a fixed directory under the system temp
dir, so re-runs sign with the same key), drives ``rrdev tui --demo`` with Textual's
pilot at 140x40 and saves SVGs of the traffic view, a 403 explanation and a 401
explanation, then at 180x40 the wide split (list and explanation side by side), then
back at 140x40 the workbench: the token panel with a minted token, the list after
*make it pass* on the 403, the compose form prefilled by edit-and-resend, the rules
view with its hit counts and a dry-run's outcome. Timestamps, ports, token
fingerprints and countdowns differ between runs; nothing else should.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["SHOTS", "main", "take_screenshots"]

SIZE = (140, 40)
#: The files written, in order.
SHOTS = (
    "traffic.svg",
    "explain-403.svg",
    "explain-401.svg",
    "traffic-wide.svg",
    "workbench-token.svg",
    "workbench-fix.svg",
    "workbench-compose.svg",
    "workbench-rules.svg",
    "workbench-dry-run.svg",
)
WIDE_SIZE = (180, 40)
#: The token panel's shot is taller: acceptance, header and every claim on one screen.
TALL_SIZE = (140, 56)


async def take_screenshots(out: Path, home: Path) -> list[Path]:
    """Drive the demo TUI and write ``SHOTS`` into ``out``; returns their paths."""
    from rrdev.tui.app import RrdevApp
    from rrdev.tui.runtime import DemoRuntime

    runtime = DemoRuntime(proxy_port=0, issuer_port=0, backend_port=0, home=home)
    app = RrdevApp(runtime)
    out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []

    def save(name: str) -> None:
        written.append(Path(app.save_screenshot(name, path=str(out))))

    async with app.run_test(size=SIZE) as pilot:
        await _until(pilot, lambda: app.table.row_count >= 4)
        await _more_traffic(runtime)
        await _until(pilot, lambda: app.table.row_count >= 11)
        await pilot.press("up", "up", "up")  # a 403 under the cursor (rows end 403, 200, 200, 200)
        await pilot.pause(0.3)
        save(SHOTS[0])

        await _explain(pilot, "status:403 rule:scope-gate-delete")
        save(SHOTS[1])
        await pilot.press("escape", "escape")

        await _explain(pilot, "reason:token_expired")
        save(SHOTS[2])
        await pilot.press("escape", "escape")

        await pilot.resize_terminal(*WIDE_SIZE)
        await pilot.press("end", "up", "up", "up")  # the 403 again
        await pilot.pause(0.3)
        save(SHOTS[3])

        await pilot.resize_terminal(*SIZE)
        await pilot.pause(0.3)
        await _workbench(pilot, runtime, save)
    return written


async def _workbench(pilot: Any, runtime: Any, save: Callable[[str], None]) -> None:
    """The workbench shots, in ``SHOTS`` order, from one session on the demo."""
    from textual.widgets import Input

    from rrdev.tui.workbench.compose import ComposeScreen
    from rrdev.tui.workbench.dry_run_screen import DryRunScreen
    from rrdev.tui.workbench.rules_view import RulesScreen
    from rrdev.tui.workbench.tokens import TokenScreen

    app = pilot.app

    # t: mint a token that reads products; the panel checks it against the proxy.
    await pilot.resize_terminal(*TALL_SIZE)
    await pilot.press("t")
    await _until(pilot, lambda: isinstance(app.screen, TokenScreen))
    panel = app.screen
    panel.query_one("#mint-scope", Input).value = "read:products"
    panel.query_one("#mint-claims", Input).value = "azp=demo-reader"
    await pilot.click("#mint")
    await _until(pilot, lambda: panel.explanation is not None)
    await pilot.pause(0.3)
    _quiet(app)
    save(SHOTS[4])
    await pilot.press("escape")
    await _until(pilot, lambda: not isinstance(app.screen, TokenScreen))
    await pilot.resize_terminal(*SIZE)
    await pilot.pause(0.3)

    # f on the demo's DELETE 403: the fixed token is minted and the request replayed.
    refused = _select(app, lambda r: r.method == "DELETE" and r.status == 403)
    before = app.store.total
    await pilot.press("f")
    await _until(pilot, lambda: app.store.total > before and app.table.row_count > before)
    fixed = max(seq for seq, _record in app.visible_items())
    app.table.select_seq(fixed)
    await pilot.pause(0.5)
    save(SHOTS[5])

    # e on the 403: the compose form, prefilled with the request as it was sent.
    app.table.select_seq(refused)
    _quiet(app)
    await pilot.press("e")
    await _until(pilot, lambda: isinstance(app.screen, ComposeScreen))
    await pilot.pause(0.3)
    save(SHOTS[6])
    await pilot.press("escape")
    await _until(pilot, lambda: not isinstance(app.screen, ComposeScreen))

    # R: every rule with how often it matched and decided.
    await pilot.press("R")
    await _until(pilot, lambda: isinstance(app.screen, RulesScreen) and bool(app.screen.rows))
    await pilot.pause(0.3)
    save(SHOTS[7])
    await pilot.press("escape")
    await _until(pilot, lambda: not isinstance(app.screen, RulesScreen))

    # d on the 403, with the reader's token typed in: judged, not sent.
    app.table.select_seq(refused)
    await pilot.press("d")
    await _until(pilot, lambda: isinstance(app.screen, DryRunScreen))
    form = app.screen
    form.query_one("#dry-token", Input).value = runtime.handle.reader_token
    await _until(pilot, lambda: form.explanation is not None and form.explanation.status == 403)
    await pilot.pause(0.3)
    save(SHOTS[8])
    await pilot.press("escape")


def _select(app: Any, wanted: Callable[[Any], bool]) -> int:
    """Put the cursor on the first visible record ``wanted`` accepts; its seq."""
    for seq, record in app.visible_items():
        if wanted(record):
            app.table.select_seq(seq)
            return seq
    raise RuntimeError("the demo has no such request")


def _quiet(app: Any) -> None:
    """Drop the toasts, so they cover nothing in the next shot."""
    app.clear_notifications()


async def _more_traffic(runtime: Any) -> None:
    """A few more requests, so the traffic view looks like a working session: the
    four demo requests again, an admin who may delete, a write, and a second page."""
    import httpx

    handle = runtime.handle
    reader = {"Authorization": f"Bearer {handle.reader_token}"}
    admin = {"Authorization": f"Bearer {handle.admin_token}"}
    base = handle.proxy_url + "/api/v1"
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        for request in runtime.demo_requests():
            await http.request(request.method, request.url, headers=list(request.headers))
        await http.delete(f"{base}/products/2", headers=admin)
        await http.post(f"{base}/orders", headers=reader, json={"product": 1, "quantity": 2})
        await http.get(f"{base}/users?page=2", headers=reader)


async def _explain(pilot: Any, query: str) -> None:
    from rrdev.tui.widgets.detail import RequestScreen

    app = pilot.app
    await pilot.press("slash", *query, "enter")
    await _until(pilot, lambda: app.table.row_count >= 1 and app.table.pending == 0)
    await pilot.pause(0.2)
    await pilot.press("end", "enter")
    await _until(pilot, lambda: isinstance(app.screen, RequestScreen))
    await pilot.pause(0.3)


async def _until(pilot: Any, condition: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError("the demo did not get there in time")
        await pilot.pause(0.05)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m rrdev.tui.screenshots", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--out", default="screenshots", help="directory (default: screenshots)")
    args = parser.parse_args(argv)
    home = Path(tempfile.gettempdir()) / "rrdev-screenshots-home"
    os.environ["RRDEV_HOME"] = str(home)
    for path in asyncio.run(take_screenshots(Path(args.out), home)):
        sys.stdout.write(f"{path}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
