"""The workbench through Textual's pilot, against the demo on loopback (issuer, echo
backend and proxy on ports 0, keys in a temporary RRDEV_HOME): the token panel (paste,
fetch, mint), compose and send, replay, edit and resend, make it pass."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from proxy_support import mint, profile_text, run_backend
from textual.pilot import Pilot
from textual.widgets import Input, TextArea

from rrdev.core.keyset import local_public_jwks
from rrdev.servers.proxy import Overrides
from rrdev.tui.app import RrdevApp
from rrdev.tui.runtime import DemoRuntime, ProfileRuntime
from rrdev.tui.widgets.detail import RequestScreen
from rrdev.tui.workbench.compose import ComposeScreen
from rrdev.tui.workbench.requests import MARK_HEADER, WorkbenchRequest
from rrdev.tui.workbench.tokens import TokenScreen

pytestmark = pytest.mark.usefixtures("keyset")

SIZE = (140, 40)


async def until(pilot: Pilot[Any], condition: Callable[[], bool], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await pilot.pause(0.05)


class NoticedApp(RrdevApp):
    """Remembers every notification's message."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.notices: list[str] = []

    def notify(self, message: str, **kw: Any) -> None:  # type: ignore[override]
        self.notices.append(message)
        super().notify(message, **kw)


def demo_app() -> RrdevApp:
    return RrdevApp(DemoRuntime(proxy_port=0, issuer_port=0, backend_port=0))


def row(app: RrdevApp, index: int) -> list[str]:
    return [str(cell) for cell in app.table.get_row_at(index)]


async def started(pilot: Pilot[Any]) -> RrdevApp:
    app = pilot.app
    assert isinstance(app, RrdevApp)
    await until(pilot, lambda: app.table.row_count >= 4)  # the demo's own four
    return app


async def token_panel(pilot: Pilot[Any]) -> TokenScreen:
    await pilot.press("t")
    await until(pilot, lambda: isinstance(pilot.app.screen, TokenScreen))
    screen = pilot.app.screen
    assert isinstance(screen, TokenScreen)
    return screen


def panel_text(screen: TokenScreen) -> str:
    from io import StringIO

    from rich.console import Console

    console = Console(width=SIZE[0], file=StringIO(), record=True, color_system=None)
    console.print(screen.query_one("#token-info").content)
    return console.export_text()


async def test_pasting_a_token_shows_its_claims_and_whether_it_is_accepted() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        runtime = app.runtime
        assert isinstance(runtime, DemoRuntime) and runtime.handle is not None
        screen = await token_panel(pilot)
        screen.query_one("#token-paste", Input).value = runtime.handle.expired_token
        await pilot.press("enter")
        await until(pilot, lambda: screen.explanation is not None)
        text = panel_text(screen)
        assert "token_expired" in text and "✗ refused" in text
        assert "expired 5m" in text and "(now)" in text  # the live countdown
        assert "read:products" in text and "demo-reader@clients" in text  # the claims
        assert "expiry" in text  # the explain checklist's step

        screen.query_one("#token-paste", Input).value = "Bearer " + runtime.handle.admin_token
        await pilot.press("enter")
        await until(pilot, lambda: screen.explanation is not None)
        assert "✓ the profile accepts this token" in panel_text(screen)
        assert app.workbench.token is not None and app.workbench.token.source == "pasted"

        screen.query_one("#token-paste", Input).value = "not-a-token"
        await pilot.press("enter")
        assert "not a token" in str(screen.query_one("#token-progress").content)
        assert app.workbench.token.raw == runtime.handle.admin_token  # unchanged
        await pilot.press("escape")
        await until(pilot, lambda: "token pasted" in str(app.status_line.content))


async def test_fetch_then_compose_and_send_gets_a_200_row() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        screen = await token_panel(pilot)
        await pilot.click("#fetch")
        await until(pilot, lambda: screen.explanation is not None)
        assert app.workbench.token is not None and app.workbench.token.source == "fetched"
        assert app.workbench.token.claims["azp"] == "demo-reader"
        assert "✓ the profile accepts this token" in panel_text(screen)
        await pilot.press("escape")

        await pilot.press("s")
        await until(pilot, lambda: isinstance(app.screen, ComposeScreen))
        assert app.screen.query_one("#compose-path", Input).value == "/api/v1/products"
        app.screen.query_one("#compose-headers", TextArea).text = "Accept: application/json"
        await pilot.press("ctrl+s")
        await until(pilot, lambda: app.table.row_count == 5)
        cells = row(app, 4)
        assert cells[1:4] == ["GET", "/api/v1/products", "200"]
        chosen = app.table.chosen()
        assert chosen is not None
        headers = dict(chosen[1].request_headers)
        assert headers["accept"] == "application/json" and MARK_HEADER in headers


async def test_a_minted_expired_token_sends_a_401_and_replay_repeats_a_status() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        screen = await token_panel(pilot)
        screen.query_one("#mint-scope", Input).value = "read:products"
        screen.query_one("#mint-exp", Input).value = "-120"
        await pilot.click("#mint")
        await until(pilot, lambda: screen.explanation is not None)
        assert screen.explanation is not None and screen.explanation.reason == "token_expired"
        await pilot.press("escape")

        app.table.move_cursor(row=0)  # the demo's allowed GET, replayed with this token
        await pilot.press("r")
        await until(pilot, lambda: app.table.row_count == 5)
        assert row(app, 4)[3:5] == ["401", "token_expired"]

        screen = await token_panel(pilot)
        screen.query_one("#mint-exp", Input).value = "3600"
        screen.query_one("#mint-nbf", Input).value = ""
        await pilot.click("#mint")
        await until(pilot, lambda: screen.explanation is not None)
        await pilot.press("escape")
        app.table.move_cursor(row=0)
        await pilot.press("r")
        await until(pilot, lambda: app.table.row_count == 6)
        assert row(app, 5)[1:4] == row(app, 0)[1:4] == ["GET", "/api/v1/products", "200"]
        assert app.workbench.link_of(6) == "replay of #1"


async def test_make_it_pass_turns_the_demos_403_into_a_200_linked_row() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        app.table.move_cursor(row=3)
        assert row(app, 3)[3] == "403"
        await pilot.press("f")
        await until(pilot, lambda: app.table.row_count == 5)
        assert row(app, 4)[1:4] == ["DELETE", "/api/v1/products/1", "200"]
        token = app.workbench.token
        assert token is not None and token.source == "make-it-pass"
        assert "delete:resources" in token.claims["scope"].split()

        app.table.move_cursor(row=4)
        await pilot.press("enter")
        await until(pilot, lambda: isinstance(app.screen, RequestScreen))
        assert "fix of #4" in app.screen.sub_title


async def test_edit_and_resend_opens_the_selected_request_prefilled() -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await started(pilot)
        app.table.move_cursor(row=3)  # DELETE /api/v1/products/1 -> 403
        await pilot.press("e")
        await until(pilot, lambda: isinstance(app.screen, ComposeScreen))
        form = app.screen
        assert form.query_one("#compose-method", Input).value == "DELETE"
        assert form.query_one("#compose-path", Input).value == "/api/v1/products/1"
        form.query_one("#compose-method", Input).value = "GET"
        await pilot.click("#compose-send")
        await until(pilot, lambda: app.table.row_count == 5)
        # no current token yet: sent without one, as the notice says
        assert row(app, 4)[1:5] == ["GET", "/api/v1/products/1", "401", "token_missing"]
        assert app.workbench.link_of(5) == "edit of #4"


async def test_make_it_pass_with_a_remote_issuer_only_says_what_to_ask_for(
    tmp_path: Path,
) -> None:
    """The profile trusts a remote issuer (its keys given with --jwks here, so the
    request verifies offline): rrdev cannot sign for it, so nothing is minted or sent."""
    async with run_backend() as backend:
        jwks = tmp_path / "jwks.json"
        jwks.write_text(json.dumps(local_public_jwks()))
        path = tmp_path / "rrdev.toml"
        path.write_text(profile_text(backend.url, jwks_uri="https://issuer.example/jwks.json"))
        runtime = ProfileRuntime.from_path(path, port=0, overrides=Overrides(jwks=str(jwks)))
        app = NoticedApp(runtime)
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.info is not None)
            assert runtime.signing_keyset() is None
            request = WorkbenchRequest("DELETE", "/api/v1/products/1").with_token(mint())
            assert (await runtime.send(request)).status == 403
            await until(pilot, lambda: app.table.row_count == 1)
            await pilot.press("f")
            await until(pilot, lambda: any("ask your provider" in n for n in app.notices))
            assert any("scope with delete:resources" in n for n in app.notices)
            await pilot.pause(0.3)
            assert app.table.row_count == 1 and backend.seen == []


async def test_a_failed_fetch_shows_the_providers_refusal_and_its_hint(tmp_path: Path) -> None:
    from proxy_support import free_port

    async with run_backend() as backend:
        path = tmp_path / "rrdev.toml"
        auth = (
            '\n[auth]\nkind = "oauth2"\n'
            f'token_url = "http://127.0.0.1:{free_port()}/oauth/token"\n'
            'client_id = "cli"\nclient_secret = "s3cret-value"\n'
        )
        path.write_text(profile_text(backend.url) + auth)
        app = RrdevApp(ProfileRuntime.from_path(path, port=0, overrides=Overrides(offline=True)))
        async with app.run_test(size=SIZE) as pilot:
            await until(pilot, lambda: app.info is not None)
            screen = await token_panel(pilot)
            await pilot.click("#fetch")
            progress = screen.query_one("#token-progress")
            await until(pilot, lambda: "fetch failed" in str(progress.content))
            shown = str(progress.content)
            assert "cannot connect to the token endpoint" in shown and "(" in shown  # the hint
            assert "s3cret-value" not in shown
            assert app.workbench.token is None
