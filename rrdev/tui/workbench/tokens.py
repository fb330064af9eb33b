"""The token panel (``t``): paste, fetch or mint the current token, and see it.

It shows the token's header and claims, whether the proxy in force accepts it (the
same checklist as ``rrdev explain``: the runtime asks the live proxy, nothing is sent)
and a live expiry countdown. The panel changes ``Workbench.token`` (the token every
workbench request is sent with) and posts ``TokenChosen``; fetching runs in a worker.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from rich.console import Group, RenderableType
from rich.text import Text
from textual import work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from rrdev.cli.render import checklist, claims_table, outcome_text
from rrdev.core.errors import RrdevError
from rrdev.tui.workbench.bench import CurrentToken, MintForm, Workbench, mint
from rrdev.tui.workbench.requests import WorkbenchRequest

if TYPE_CHECKING:
    from rrdev.core.records import Explanation
    from rrdev.tui.runtime import Runtime

__all__ = ["TokenChosen", "TokenScreen", "token_view"]


@dataclass
class TokenChosen(Message):
    """The current token changed (pasted, fetched or minted)."""

    token: CurrentToken


def token_view(token: CurrentToken | None, expl: Explanation | None, now: float) -> RenderableType:
    """Acceptance (the explain checklist), countdown, header and claims."""
    if token is None:
        return Text("No current token: paste one, fetch one with [auth], or mint one.", "dim")
    parts: list[RenderableType] = [
        Text.assemble(("current token ", "bold"), (f"{token.fingerprint} ({token.source})", ""))
    ]
    exp = token.expires_at
    if exp is not None:
        left = exp - now
        parts.append(
            Text(f"expires in {_delta(left)} (now)", "bold green")
            if left >= 0
            else Text(f"expired {_delta(-left)} ago (now)", "bold red")
        )
    if expl is None:
        parts.append(Text("checking whether the proxy accepts it…", "dim"))
    else:
        parts += _acceptance(expl)
    parts += [Text(""), claims_table(token.header, now, "Header")]
    parts += [Text(""), claims_table(token.claims, now, "Claims (decoded, not verified)")]
    return Group(*parts)


def _acceptance(expl: Explanation) -> list[RenderableType]:
    ver = expl.verification
    if ver is None:
        return [Text("the proxy credential verifies no token", "dim")]
    if ver.ok:
        head = Text("✓ the profile accepts this token", "bold green")
    else:
        head = Text.assemble(("✗ refused: ", "bold red"), outcome_text(expl))
    parts: list[RenderableType] = [head]
    if not ver.ok and ver.hint:
        parts.append(Text(f"hint: {ver.hint}", "cyan"))
    parts.append(checklist(ver.steps))
    return parts


def _delta(seconds: float) -> str:
    from rrdev.core.tokens import humanize_delta

    return humanize_delta(seconds)


class TokenScreen(ModalScreen[None]):
    """Paste / fetch / mint; Esc closes."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "close", "Close")]

    def __init__(self, runtime: Runtime, bench: Workbench) -> None:
        super().__init__()
        self.runtime = runtime
        self.bench = bench
        self.explanation: Explanation | None = None

    def compose(self) -> ComposeResult:
        with Vertical(id="token-panel") as panel:
            panel.border_title = "Token  (Esc closes)"
            yield Input(placeholder="paste a token (Enter)", id="token-paste")
            with Horizontal(classes="token-row"):
                yield Input(placeholder="scope", id="mint-scope")
                yield Input(placeholder="audience (profile's)", id="mint-aud")
                yield Input("3600", placeholder="expires in s", id="mint-exp")
                yield Input(placeholder="nbf in s", id="mint-nbf")
            with Horizontal(classes="token-row"):
                yield Input(placeholder="claims: name=value, ...", id="mint-claims")
                yield Button("Mint", id="mint", variant="primary")
                yield Button("Fetch [auth]", id="fetch")
            yield Label("", id="token-progress")
            with VerticalScroll(id="token-scroll"):
                yield Static(id="token-info")

    def on_mount(self) -> None:
        self.set_interval(1.0, self.refresh_view)
        self.query_one("#token-paste", Input).focus()
        if self.bench.token is not None:
            self.check(self.bench.token)
        self.refresh_view()

    def refresh_view(self) -> None:
        """Redraw (a timer: the countdown is live)."""
        view = token_view(self.bench.token, self.explanation, time.time())
        self.query_one("#token-info", Static).update(view)

    def progress(self, text: str, style: str = "dim") -> None:
        self.query_one("#token-progress", Label).update(Text(text, style))

    # -------------------------------------------------------------- sources

    def on_input_submitted(self, event: Input.Submitted) -> None:
        event.stop()
        if event.input.id == "token-paste":
            self.use(event.value, "pasted")
        else:
            self.mint_token()

    def on_button_pressed(self, event: Button.Pressed) -> None:
        if event.button.id == "mint":
            self.mint_token()
        elif event.button.id == "fetch":
            self.progress("fetching a token with [auth]…")
            self.fetch_token()

    def use(self, raw: str, source: str) -> bool:
        """Make ``raw`` the current token; say why not when it is not a JWT."""
        try:
            token = CurrentToken.of(raw, source)
        except RrdevError as exc:
            self.progress(f"not a token: {exc.message}", "bold red")
            return False
        self.bench.token = token
        self.explanation = None
        self.progress(f"current token: {source}", "green")
        self.post_message(TokenChosen(token))
        self.check(token)
        self.refresh_view()
        return True

    def mint_token(self) -> None:
        keyset, profile = self.runtime.signing_keyset(), self.runtime.profile()
        if keyset is None or profile is None:
            self.progress(
                "minting needs the local issuer (the demo, or a profile whose JWKS is on "
                "loopback); fetch or paste a token instead",
                "bold red",
            )
            return
        try:
            form = self._mint_form()
            raw = mint(keyset, profile, form)
        except ValueError as exc:
            self.progress(str(exc), "bold red")
            return
        self.use(raw, "minted")

    def _mint_form(self) -> MintForm:
        def value(name: str) -> str:
            return self.query_one(f"#mint-{name}", Input).value.strip()

        try:
            expires_in = int(value("exp") or "3600")
            nbf = int(value("nbf")) if value("nbf") else None
        except ValueError:
            raise ValueError("expiry and nbf are whole seconds (negative exp: expired)") from None
        return MintForm(value("scope"), value("claims"), value("aud"), expires_in, nbf)

    @work(exclusive=True, group="token-fetch")
    async def fetch_token(self) -> None:
        from rrdev.clients.caller import fetch_caller_token

        profile = self.runtime.profile()
        if profile is None:
            self.progress("the proxy is not running", "bold red")
            return
        try:
            fetched = await fetch_caller_token(profile, use_cache=False, timeout=10)
        except RrdevError as exc:
            hint = f" ({exc.hint})" if exc.hint else ""
            self.progress(f"fetch failed: {exc.message}{hint}", "bold red")
            return
        self.use(fetched.access_token, "fetched")

    @work(exclusive=True, group="token-check")
    async def check(self, token: CurrentToken) -> None:
        """Ask the live proxy whether it accepts ``token`` (nothing is sent)."""
        profile = self.runtime.profile()
        path = (profile.target.test_path if profile else None) or "/"
        request = WorkbenchRequest("GET", path).with_token(token.raw)
        try:
            expl = await self.runtime.explain(request)
        except RuntimeError:
            return
        if self.bench.token is token:
            self.explanation = expl
            self.refresh_view()

    def action_close(self) -> None:
        self.dismiss()
