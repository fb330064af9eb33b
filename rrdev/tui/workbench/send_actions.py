"""What the workbench keys do, for ``RrdevApp``'s one-line actions.

``t`` token panel, ``s`` compose and send, ``r`` replay the selected request as it was
(with the current token), ``e`` edit it and resend, ``f`` make it pass. Sending goes
through ``Runtime.send`` (the proxy's thread, its one client) in a worker; the answer
shows up as a new row like any other request, linked to its original by
``Workbench`` ("replay of #3", "fix of #12").
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

from rrdev.core.fixes import FixProposal, fixed_claims, propose_fix
from rrdev.tui.workbench.compose import ComposeScreen
from rrdev.tui.workbench.requests import WorkbenchRequest, from_record
from rrdev.tui.workbench.tokens import TokenScreen

if TYPE_CHECKING:
    from rrdev.core.records import RequestRecord
    from rrdev.tui.app import RrdevApp

__all__ = ["compose", "edit_selected", "make_it_pass", "open_tokens", "replay_selected", "send"]

#: What ``s`` opens with when nothing was composed yet.
DEFAULT_PATH = "/api/v1/products"


def open_tokens(app: RrdevApp) -> None:
    app.push_screen(TokenScreen(app.runtime, app.workbench))


def send(app: RrdevApp, request: WorkbenchRequest, link: str = "") -> None:
    """Send ``request`` with the current token, in a worker; failures are notified."""
    ready = app.workbench.prepare(request, link)
    if app.workbench.token is None:
        app.notify("no current token (t sets one): sent without", title="Workbench")

    async def run() -> None:
        sent = await app.runtime.send(ready)
        if sent.status is None:
            app.notify(sent.error, title="Not sent", severity="error", markup=False)

    app.run_worker(run(), group="workbench-send")


def compose(app: RrdevApp, request: WorkbenchRequest | None = None, title: str = "") -> None:
    """Open the compose form; what it returns is sent."""
    profile = app.runtime.profile()
    start = request or WorkbenchRequest(path=_default_path(profile))

    def sent(result: WorkbenchRequest | None) -> None:
        if result is not None:
            app.last_composed = result
            send(app, result, title.lower() if title else "")

    app.push_screen(ComposeScreen(start, title or "Compose"), sent)


def _default_path(profile: Any) -> str:
    return DEFAULT_PATH if profile is None or profile.path.startswith("rrdev:") else "/"


def _selected(app: RrdevApp) -> tuple[int, RequestRecord] | None:
    chosen = app.table.chosen()
    if chosen is None:
        app.notify("no request selected", title="Workbench", severity="warning")
    return chosen


def _as_it_was(app: RrdevApp, seq: int, record: RequestRecord) -> WorkbenchRequest:
    """The selected request as sent: the workbench's own copy when it sent it."""
    ours = app.workbench.sent_as(seq)
    return ours if ours is not None else from_record(record)


def replay_selected(app: RrdevApp) -> None:
    chosen = _selected(app)
    if chosen is not None:
        seq, record = chosen
        send(app, _as_it_was(app, seq, record), f"replay of #{seq}")


def edit_selected(app: RrdevApp) -> None:
    chosen = _selected(app)
    if chosen is not None:
        seq, record = chosen
        compose(app, _as_it_was(app, seq, record), f"Edit of #{seq}")


def make_it_pass(app: RrdevApp) -> None:
    """Propose the fix of the selected refusal; mint and replay it when the issuer is
    the local one, else say what to ask the provider for."""
    chosen = _selected(app)
    profile = app.runtime.profile()
    if chosen is None or profile is None:
        return
    seq, record = chosen
    proposal = propose_fix(record.explanation, profile)
    if not proposal.possible:
        app.notify(proposal.summary, title=f"No fix for #{seq}", severity="warning", markup=False)
        return
    keyset = app.runtime.signing_keyset()
    if keyset is None:
        app.notify(
            f"ask your provider for {proposal.summary}, then paste or fetch it (t)",
            title=f"Fix for #{seq}",
            markup=False,
            timeout=12,
        )
        return
    token = _fixed_token(keyset, profile, record, proposal)
    from rrdev.tui.workbench.bench import CurrentToken

    app.workbench.token = CurrentToken.of(token, "make-it-pass")
    app.notify(f"{proposal.summary}: minted, replaying", title=f"Fix for #{seq}", markup=False)
    send(app, _as_it_was(app, seq, record), f"fix of #{seq}")


def _fixed_token(keyset: Any, profile: Any, record: RequestRecord, proposal: FixProposal) -> str:
    from rrdev.tui.workbench.bench import MintForm, mint

    now = time.time()
    ver = record.explanation.verification
    if proposal.new_token or ver is None or not ver.claims:
        scope = profile.auth.client.scope if profile.auth is not None else None
        return mint(keyset, profile, MintForm(scope=scope or ""), now)
    return keyset.sign(fixed_claims(ver.claims, proposal, now))
