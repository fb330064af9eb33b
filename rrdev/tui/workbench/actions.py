"""The workbench's actions on the inspector app: copy (``y``), export (``x``), the rules
view (``R``), the dry-run (``d``), next/previous refusal (``n``/``N``), sort (``o``) and
the filter bar's history (↑/↓) and completion.

A mixin of ``RrdevApp`` (``rrdev.tui.app``), so the app keeps one binding line and no
more per feature. The logic lives in the pure modules beside this one; here it is only
wired to the app's store, table and runtime.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from textual.app import SystemCommand
from textual.screen import Screen
from textual.suggester import Suggester

from rrdev.cli.render import render_explanation
from rrdev.core.records import RequestRecord
from rrdev.core.redact import fingerprint
from rrdev.tui.filters import parse_filter
from rrdev.tui.workbench.copy_menu import CopyChoice, CopyMenu
from rrdev.tui.workbench.dry_run import DryRunForm
from rrdev.tui.workbench.dry_run_screen import DryRunScreen
from rrdev.tui.workbench.export import curl_command, default_export_name, export_text
from rrdev.tui.workbench.export_screen import ExportScreen, format_for
from rrdev.tui.workbench.navigation import (
    FilterHistory,
    complete_filter,
    next_refusal,
    next_sort_key,
    sort_items,
)
from rrdev.tui.workbench.rule_hits import RuleHits, count_rule_hits
from rrdev.tui.workbench.rules_view import RulesScreen

if TYPE_CHECKING:
    from rrdev.core.model import Profile
    from rrdev.tui.app import RrdevApp

__all__ = ["FilterSuggester", "WorkbenchActions"]

Item = tuple[int, RequestRecord]

#: (action, title, help): the command palette's entries for the workbench.
COMMANDS: tuple[tuple[str, str, str], ...] = (
    ("copy", "Copy…", "Copy the selected request as curl, its token, explanation or body (y)"),
    ("export", "Export traffic…", "Write the visible traffic as HAR 1.2 or JSONL, redacted (x)"),
    ("rules", "Rules view", "Every rule with its hit counts; Enter filters its traffic (R)"),
    ("dry_run", "Dry-run", "Judge a typed request without sending it (d)"),
    ("next_refusal", "Next refusal", "Move to the next refused request (n)"),
    ("previous_refusal", "Previous refusal", "Move to the previous refused request (N)"),
    ("sort", "Sort by the next column", "Cycle the column the traffic is sorted by (o)"),
)


class FilterSuggester(Suggester):
    """Completes the filter bar's last term: field names, rule names, reason codes."""

    def __init__(self, app: WorkbenchActions) -> None:
        super().__init__(use_cache=False, case_sensitive=True)
        self.owner = app

    async def get_suggestion(self, value: str) -> str | None:
        return complete_filter(
            value,
            rules=self.owner.known_rule_names(),
            reasons=self.owner.seen_reasons(),
            aliases=getattr(self.owner._workbench().runtime, "aliases", ()),
        )


class WorkbenchActions:
    """Mixed into ``RrdevApp``: every name it uses (``store``, ``table``, ...) is the app's."""

    sort_key = "time"
    #: Tokens the app knows by fingerprint (the ones it sent): only these can be copied.
    known_tokens: dict[str, str]
    filter_history: FilterHistory

    def _workbench(self) -> RrdevApp:
        return self  # type: ignore[return-value]

    def setup_workbench(self) -> None:
        """Called once the app's widgets exist (``__init__``)."""
        self.known_tokens = {}
        self.filter_history = FilterHistory()
        self._workbench().filter_bar.suggester = FilterSuggester(self)

    # ------------------------------------------------------------ what is shown

    def visible_items(self) -> list[Item]:
        """The rows the table shows, in the order it shows them."""
        app = self._workbench()
        return sort_items(app.store.matching(app.filter), self.sort_key)

    def selected(self) -> Item | None:
        chosen = self._workbench().table.chosen()
        if chosen is None:
            self._workbench().notify("Select a request first.", severity="warning")
        return chosen

    def proxy_url(self) -> str:
        info = self._workbench().info
        return info.proxy_url if info is not None else "http://127.0.0.1:8787"

    def profile(self) -> Profile | None:
        """The runtime's profile (a runtime without one, e.g. a test's, has none)."""
        profile = getattr(self._workbench().runtime, "profile", None)
        return profile() if profile is not None else None

    def known_rule_names(self) -> list[str]:
        """For completion: the profile's rules and every deciding rule in the traffic."""
        profile = self.profile()
        names = {rule.name for rule in profile.all_rules()} if profile is not None else set()
        names.update(r.deciding_rule for _s, r in self._workbench().store if r.deciding_rule)
        return sorted(names)

    def seen_reasons(self) -> list[str]:
        return sorted({record.reason for _seq, record in self._workbench().store})

    def refuse_if_read_only(self, what: str) -> bool:
        """For actions that send: True (and says why) when a log file is open read-only."""
        app = self._workbench()
        if getattr(app.runtime, "read_only", False):
            app.notify(
                f"Cannot {what}: this is a log file opened read-only (no proxy runs). "
                "Run `rrdev tui PROFILE` to send requests.",
                title="Read-only",
                severity="warning",
            )
            return True
        return False

    # ------------------------------------------------------------------ copy (y)

    def action_copy(self) -> None:
        chosen = self.selected()
        if chosen is not None:
            self._workbench().push_screen(CopyMenu(), lambda choice: self.copy(chosen, choice))

    def copy(self, chosen: Item, choice: CopyChoice | None) -> None:
        app = self._workbench()
        if choice is None:
            return
        text, what = self.copy_text(chosen[1], choice)
        if text is None:
            app.notify(what, title="Nothing copied", severity="warning")
            return
        app.copy_to_clipboard(text)
        app.notify(f"Copied {what} to the clipboard.", title="Copied")

    def copy_text(self, record: RequestRecord, choice: CopyChoice) -> tuple[str | None, str]:
        """(text, what it is) or (None, why there is nothing to copy)."""
        if choice == "curl":
            return curl_command(record, self.proxy_url()), "the curl command (token as $TOKEN)"
        if choice == "explanation":
            return _plain_text(render_explanation(record.explanation)), "the explanation"
        if choice == "body":
            if record.response_preview is None:
                return None, "This response has no recorded body (only JSON bodies are kept)."
            return record.response_preview, "the response body"
        token = self.token_of(record)
        if token is None:
            return None, (
                "rrdev keeps only the token's fingerprint, and this token was not sent "
                "from here; copy the curl command and set $TOKEN yourself."
            )
        if choice == "token":
            return token, "the token"
        return curl_command(record, self.proxy_url(), token=token), "the curl command with token"

    def token_of(self, record: RequestRecord) -> str | None:
        verification = record.explanation.verification
        wanted = verification.fingerprint if verification is not None else None
        if wanted is None:
            return None
        return dict(self._tokens_known()).get(wanted)

    def _tokens_known(self) -> Iterator[tuple[str, str]]:
        yield from self.known_tokens.items()
        for request in self._workbench().runtime.demo_requests():
            for name, value in request.headers:
                if name.lower() == "authorization":
                    token = value.partition(" ")[2].strip()
                    yield fingerprint(token), token

    # ---------------------------------------------------------------- export (x)

    def action_export(self) -> None:
        app = self._workbench()
        items = self.visible_items()
        default = default_export_name(app.clock())
        app.push_screen(ExportScreen(default, len(items)), self.export_to)

    def export_to(self, path: str | None) -> None:
        app = self._workbench()
        if path is None:
            return
        records = [record for _seq, record in self.visible_items()]
        fmt = format_for(path)
        try:
            Path(path).expanduser().write_text(
                export_text(records, fmt, self.proxy_url()), encoding="utf-8"
            )
        except OSError as exc:
            # markup=False: the path is whatever was typed ("[x]" is no style).
            message = f"{path}: {exc.strerror or exc}"
            app.notify(message, title="Export failed", severity="error", markup=False)
            return
        message = f"{len(records)} request(s) as {fmt.upper()} in {path}"
        app.notify(message, title="Exported", markup=False)

    # ------------------------------------------------------------ rules view (R)

    def rule_hits(self) -> list[RuleHits]:
        app = self._workbench()
        return count_rule_hits((record for _seq, record in app.store), self.profile())

    def action_rules(self) -> None:
        self._workbench().push_screen(RulesScreen(self.rule_hits), self.show_rule_traffic)

    def show_rule_traffic(self, query: str | None) -> None:
        if query is not None:
            app = self._workbench()
            app.action_filter()
            app.filter_bar.value = query
            app.filter_bar.apply()
            app.table.focus()

    # --------------------------------------------------------------- dry-run (d)

    def action_dry_run(self) -> None:
        app = self._workbench()
        chosen = app.table.chosen()
        form = _form_from(chosen[1]) if chosen is not None else DryRunForm()
        judge = getattr(app.runtime, "dry_run", None) or _no_judge
        app.push_screen(DryRunScreen(judge, form))

    # -------------------------------------------------------- navigation (n N o)

    def action_next_refusal(self) -> None:
        self._to_refusal(backwards=False)

    def action_previous_refusal(self) -> None:
        self._to_refusal(backwards=True)

    def _to_refusal(self, *, backwards: bool) -> None:
        app = self._workbench()
        chosen = app.table.chosen()
        seq = next_refusal(self.visible_items(), chosen[0] if chosen else None, backwards=backwards)
        if seq is None:
            app.notify("No refused request in view.", title="Refusals")
            return
        table: Any = app.table
        table.follow = False
        select = getattr(table, "select_seq", None)
        if select is not None:
            select(seq)
        else:
            table.move_cursor(row=table.get_row_index(str(seq)), animate=False)

    def action_sort(self) -> None:
        app = self._workbench()
        self.sort_key = next_sort_key(self.sort_key)
        table: Any = app.table
        sort_by = getattr(table, "sort_by", None)
        if sort_by is not None:
            sort_by(self.sort_key)
        else:
            table.show(self.visible_items())
        app.notify(f"Sorted by {self.sort_key}.", title="Sort", timeout=2)

    # ------------------------------------------------------- filter history (↑ ↓)

    def remember_filter(self, query: str) -> None:
        try:
            parse_filter(query)
        except ValueError:
            return  # only queries that worked are worth recalling
        self.filter_history.add(query)

    def action_filter_history(self, step: int) -> None:
        bar = self._workbench().filter_bar
        query = self.filter_history.previous(bar.value) if step < 0 else self.filter_history.next()
        if query is not None:
            bar.value = query
            bar.cursor_position = len(query)

    def workbench_check(self, action: str) -> bool | None:
        """``check_action`` for the workbench's actions (None: not one of them)."""
        app = self._workbench()
        if action == "filter_history":
            return app.focused is app.filter_bar
        if action in {c for c, _t, _h in COMMANDS}:
            return app.screen is app.table.screen
        return None

    # ------------------------------------------------------------ command palette

    def get_system_commands(self, screen: Screen[Any]) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)  # type: ignore[misc]
        app = self._workbench()
        for action, title, help_text in COMMANDS:
            yield SystemCommand(title, help_text, _runner(app, action))


def _runner(app: RrdevApp, action: str) -> Any:
    async def run() -> None:
        await app.run_action(action)

    return run


async def _no_judge(request: object) -> None:
    return None


def _form_from(record: RequestRecord) -> DryRunForm:
    """The selected request as a starting point (its path and query, its method)."""
    query = "&".join(f"{k}={v}" for k, v in record.query)
    return DryRunForm(record.method, record.path + (f"?{query}" if query else ""))


def _plain_text(renderable: Any) -> str:
    console = Console(width=100, file=io.StringIO(), record=True, color_system=None)
    console.print(renderable)
    return console.export_text()
