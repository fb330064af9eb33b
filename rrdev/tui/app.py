"""``rrdev tui``: the proxy and a live inspector of its traffic, in one Textual app.

The proxy runs in a process of its own (``rrdev tui``: ``rrdev.tui.proxy_process``) or
on its own thread and event loop (``rrdev.tui.proxy_thread``, the in-process runtimes
tests use), never on the app's loop: requests keep being served whatever the UI is
doing, and a burst of traffic never delays a key press. Its record sink and event
callback only drop what they get into an ``Inbox``; a timer (``flush_interval``)
takes everything there at once, so a flood costs one table update per tick, not one
message per request. The app keeps the last records in a ``TrafficStore`` and hands
the table what to show (attributes down); widgets report what the user did with
messages (up). It renders the engine's records and explanations and decides nothing
itself.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from rich.text import Text
from textual import events, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.command import CommandPalette
from textual.containers import Container
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.theme import Theme
from textual.timer import Timer
from textual.widgets import Header, Input, Static

from rrdev.core.errors import RrdevError
from rrdev.core.records import RequestRecord
from rrdev.tui.commands import RrdevCommands
from rrdev.tui.filters import RecordFilter
from rrdev.tui.heap import FloodHeap
from rrdev.tui.messages import (
    DemoTrafficSent,
    EngineEventReported,
    FilterApplied,
    FilterCleared,
    FilterRejected,
    ProxyFailed,
    ProxyStarted,
    RequestChosen,
    RequestHighlighted,
    RequestLogged,
)
from rrdev.tui.palette import palette_theme
from rrdev.tui.runtime import Runtime, RuntimeInfo
from rrdev.tui.settings import TuiSettings, load_settings, save_settings, settings_path
from rrdev.tui.store import DEFAULT_MAX_RECORDS, Inbox, TrafficStore
from rrdev.tui.views import bad_filter_view, explain_view, waiting_view, why_view
from rrdev.tui.widgets.detail import ICON, RequestScreen
from rrdev.tui.widgets.filter_bar import FilterBar
from rrdev.tui.widgets.footer import SteadyFooter
from rrdev.tui.widgets.help import HelpScreen, HelpText, warm_help
from rrdev.tui.widgets.notices import MAX_NOTICES, Notice, NoticesScreen
from rrdev.tui.widgets.status import StatusLine
from rrdev.tui.widgets.traffic import TrafficTable
from rrdev.tui.workbench import send_actions as workbench
from rrdev.tui.workbench.actions import WorkbenchActions
from rrdev.tui.workbench.bench import Workbench, expiry_label
from rrdev.tui.workbench.requests import WorkbenchRequest

__all__ = ["RrdevApp"]

#: Engine events worth a notification: kind -> (title, severity).
_NOTICES: dict[str, tuple[str, SeverityLevel]] = {
    "reloaded": ("Profile reloaded", "information"),
    "reload_failed": ("Profile reload failed", "error"),
    "record_failed": ("A request could not be recorded", "warning"),
    "keyset_reloaded": ("Signing keys changed", "information"),
    "keyset_failed": ("Signing keys unreadable", "error"),
    "jwks_key_ignored": ("JWKS key ignored", "warning"),
    "jwks_stale": ("Serving a stale JWKS", "warning"),
    "jwks_unavailable": ("JWKS unavailable", "error"),
    "jwks_recovered": ("JWKS recovered", "information"),
    "jwks_changed": ("JWKS keys changed", "information"),
    "proxy_died": ("The proxy stopped", "error"),
}
#: Notices waiting for the UI past this many are dropped (a reload loop cannot flood it).
_MAX_PENDING_EVENTS = 100
#: Keys that act on the traffic table: off while another screen is on top.
_TRAFFIC_ACTIONS = frozenset(
    {"filter", "clear_filter", "toggle_follow", "generate", "clear"}
    | {"tokens", "compose", "replay", "edit", "make_it_pass"}  # the workbench's
)
#: From this many columns on, the list and the detail sit side by side.
WIDE_COLUMNS = 160
#: Seconds after start (or a resize) when the help's text is laid out ahead of ``?``.
_WARM_HELP_AFTER = 0.5


class RrdevApp(WorkbenchActions, App[None]):
    """The inspector around a ``Runtime`` (a profile's proxy, or the demo)."""

    # Absolute: a subclass elsewhere (tests) must find the same stylesheet.
    CSS_PATH = Path(__file__).with_name("rrdev.tcss")
    TITLE = "rrdev"
    COMMANDS = App.COMMANDS | {RrdevCommands}
    BINDINGS: ClassVar[list[BindingType]] = [
        # Priority: run as the key arrives, before the keys after it are handed to the
        # focused widget, so the focus moves to the filter bar in time for them.
        Binding("slash", "filter", "Filter", priority=True),
        Binding("escape", "clear_filter", "Clear filter", show=False),
        Binding("F", "toggle_follow", "Follow"),
        Binding("g", "generate", "Demo traffic"),
        Binding("c", "clear", "Clear"),
        Binding("E", "notices", "Notifications", show=False),
        # Off the footer (it would overflow at 140 columns): in ? help and the palette.
        Binding("y", "copy", "Copy", show=False),
        Binding("x", "export", "Export", show=False),
        Binding("R", "rules", "Rules"),
        Binding("d", "dry_run", "Dry-run", show=False),
        Binding("n", "next_refusal", "Next refusal", show=False),
        Binding("N", "previous_refusal", "Previous refusal", show=False),
        Binding("o", "sort", "Sort", show=False),
        Binding("up", "filter_history(-1)", "Older filter", show=False),
        Binding("down", "filter_history(1)", "Newer filter", show=False),
        Binding("t", "tokens", "Token"),
        Binding("s", "compose", "Send"),
        Binding("r", "replay", "Replay", show=False),
        Binding("e", "edit", "Edit", show=False),
        Binding("f", "make_it_pass", "Fix"),
        Binding("question_mark,f1", "help", "Help", key_display="?"),
        Binding("q", "quit", "Quit"),
        Binding("ctrl+c", "quit", "Quit", show=False, priority=True),
    ]

    def __init__(
        self,
        runtime: Runtime,
        *,
        max_records: int = DEFAULT_MAX_RECORDS,
        flush_interval: float = 0.1,
        demo_traffic: bool = True,
        clock: Callable[[], float] = time.time,
        settings_file: Path | None = None,
    ) -> None:
        super().__init__()
        self.runtime = runtime
        self.store = TrafficStore(max_records)
        # Filled on the proxy's thread, emptied by ``take_batch`` on this app's loop.
        self.inbox: Inbox[RequestRecord] = Inbox(max_records)
        self.event_inbox: Inbox[tuple[str, str]] = Inbox(_MAX_PENDING_EVENTS)
        #: How many batches of records reached the table (each one table update).
        self.batches = 0
        #: Keeps a flood of records out of the collector's scans (``rrdev.tui.heap``).
        self.heap = FloodHeap()
        self.filter = RecordFilter()
        self.flush_interval = flush_interval
        self.demo_traffic = demo_traffic
        self.clock = clock
        self.info: RuntimeInfo | None = None
        #: Every notification shown, for the log (``E``).
        self.notice_log: deque[Notice] = deque(maxlen=MAX_NOTICES)
        #: The last hot reload's error while the proxy serves the last good profile.
        self.reload_error: str | None = None
        #: How the proxy process ended, when it died on its own (the status line says it).
        self.proxy_error: str | None = None
        #: Why the filter bar's query does not parse (no rows are shown meanwhile).
        self.filter_error: str | None = None
        self.settings_file = settings_file or settings_path()
        self._restoring_theme = False
        self.console.push_theme(palette_theme(self.get_css_variables()))
        # The main screen's widgets, kept so they can be fed while another screen
        # (a request's detail, the help) is on top.
        self.table = TrafficTable(
            max_rows=max_records,
            flush_interval=flush_interval,
            alias_column=bool(getattr(runtime, "aliases", ())),
            id="traffic",
        )
        self.filter_bar = FilterBar(id="filter")
        self.why = Static("", id="why")
        self.status_line = StatusLine("starting the proxy…", id="status")
        self.setup_workbench()
        #: The current token and what the workbench sent (t, s, r, e, f).
        self.workbench = Workbench()
        self.last_composed: WorkbenchRequest | None = None
        #: Lays the help's text out ahead of ``?`` (set when mounted, again on a resize).
        self._warm_help: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Header(icon=ICON)
        yield self.filter_bar
        with Container(id="main"):
            yield self.table
            yield self.why
        yield self.status_line
        yield SteadyFooter()

    def on_mount(self) -> None:
        self._restore_theme()
        self.theme_changed_signal.subscribe(self, self._theme_changed)
        self._fit_layout(self.size.width)
        # One help screen, kept when closed: composing and styling it anew on every
        # ``?`` costs a few hundred ms of the UI's loop, more with traffic flowing.
        self.install_screen(HelpScreen(), "help")
        # Its text laid out before the first ``?`` (tens of ms, on a quiet moment).
        self._warm_help = self.set_timer(_WARM_HELP_AFTER, self._lay_out_help)
        self.table.focus()
        self.set_interval(0.5, self.refresh_status)
        self.set_interval(self.flush_interval, self.take_batch)
        if self.info is None:
            self.start_proxy()
        else:  # started by run_tui before the app took the terminal
            self.post_message(ProxyStarted(self.info))

    async def on_unmount(self) -> None:
        await self.runtime.stop()

    # -------------------------------------------------------------- the engine

    async def start_runtime(self) -> RuntimeInfo:
        """Start the proxy (on its own thread), feeding this app. ``run_tui`` calls it
        before the app runs (so a port in use is a plain error message); otherwise
        ``on_mount`` does, in a worker."""
        self.info = await self.runtime.start(self.record_sink, self.engine_event)
        return self.info

    @work(exclusive=True, group="proxy")
    async def start_proxy(self) -> None:
        try:
            info = await self.start_runtime()
        except RrdevError as exc:
            self.post_message(ProxyFailed(exc.message, exc.hint, exc.exit_code))
            return
        self.post_message(ProxyStarted(info))

    def record_sink(self, record: RequestRecord) -> None:
        """The proxy's record sink, called on the proxy's thread after each response:
        only hands the record over (``take_batch`` shows it)."""
        self.inbox.put(record)

    def engine_event(self, kind: str, message: str) -> None:
        """The proxy's (and the demo issuer's) ``on_event`` callback, on the proxy's
        thread (or any other): handed over like records."""
        self.event_inbox.put((kind, message))

    def take_batch(self) -> None:
        """Take everything the proxy handed over since the last tick (on a timer)."""
        events, _ = self.event_inbox.take()
        for kind, message in events:
            self.post_message(EngineEventReported(kind, message))
        records, dropped = self.inbox.take()
        if records or dropped:
            self._show_records(records, dropped)
        self.heap.batch(len(records))

    def _show_records(self, records: list[RequestRecord], dropped: int = 0) -> None:
        self.batches += 1
        for seq, record in self.store.add_batch(records, dropped):
            self.workbench.arrived(seq, record)
            if self.filter_error is None and self.filter.matches(record):
                self.table.queue(seq, record)
        self.table.flush()

    def on_proxy_started(self, event: ProxyStarted) -> None:
        self.info = event.info
        self._show_info(event.info)
        if not self.table.row_count:
            self.why.update(waiting_view(event.info, demo=self.runtime.demo))
        for warning in event.info.warnings:
            self.notify(warning, title="Warning", severity="warning", markup=False)
        if self.runtime.demo and self.demo_traffic:
            self.send_demo_traffic()
        self.refresh_status()

    def on_proxy_failed(self, event: ProxyFailed) -> None:
        message = Text.assemble(("error: ", "bold red"), event.message)
        if event.hint:
            message.append(f" ({event.hint})", style="cyan")
        self.exit(return_code=event.exit_code, message=message)

    def _show_info(self, info: RuntimeInfo) -> None:
        self.title = f"rrdev · {info.profile_name}"
        self.sub_title = f"{info.proxy_url} → {info.target}"

    def on_request_logged(self, event: RequestLogged) -> None:
        self._show_records([event.record])

    def on_engine_event_reported(self, event: EngineEventReported) -> None:
        notice = _NOTICES.get(event.kind)
        if notice is None:  # the demo issuer's per-token lines: too chatty for toasts
            return
        title, severity = notice
        timeout = 12 if severity == "error" else 5
        self.notify(event.message, title=title, severity=severity, timeout=timeout, markup=False)
        if event.kind == "proxy_died":
            self.proxy_error = event.message
            self.refresh_status()
        if event.kind in ("reloaded", "reload_failed"):
            # Until fixed, the status line says the proxy still serves the last good profile.
            self.reload_error = event.message if event.kind == "reload_failed" else None
            self.refresh_status()
        info = self.runtime.info() if event.kind == "reloaded" else None
        if info is not None:  # the profile may have a new name or target
            self.info = info
            self._show_info(info)
            self.refresh_status()

    # -------------------------------------------------------------- demo traffic

    @work(group="demo-traffic")
    async def send_demo_traffic(self) -> None:
        """The demo's four requests (allowed, no token, expired, missing scope), sent
        by the runtime on the proxy's thread with its one shared client."""
        sent = await self.runtime.send_demo_requests()
        self.post_message(DemoTrafficSent(sent.count, sent.failures))

    def on_demo_traffic_sent(self, event: DemoTrafficSent) -> None:
        if event.failures:
            self.notify("\n".join(event.failures), title="Demo requests failed", markup=False)

    # -------------------------------------------------------------- filter

    def action_filter(self) -> None:
        bar = self.filter_bar
        if self.focused is bar:  # a "/" in the query itself (path:/api)
            bar.insert_text_at_cursor("/")
            return
        bar.add_class("-visible")
        # At once, not with ``focus()`` (after the queued keys): every key typed right
        # after "/" must reach the bar, not the table or the app's bindings.
        self.screen.set_focus(bar)

    def on_filter_applied(self, event: FilterApplied) -> None:
        self.filter = event.filter
        self.filter_error = None
        self.table.show(self.store.matching(self.filter))
        self.refresh_status()

    def on_filter_rejected(self, event: FilterRejected) -> None:
        """A query that does not parse shows nothing: the last good filter's rows
        would look like this query's answer."""
        self.filter_error = event.error
        self.table.show([])
        self.why.update(bad_filter_view(event.error))
        self.refresh_status()

    def on_filter_cleared(self, event: FilterCleared) -> None:
        self.action_clear_filter()

    def action_clear_filter(self) -> None:
        bar = self.filter_bar
        bar.value = ""  # its Changed message applies the empty filter
        bar.remove_class("-visible")
        self.table.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if isinstance(event.input, FilterBar):
            self.remember_filter(event.value)
            if not event.value.strip():
                event.input.remove_class("-visible")
            self.table.focus()

    def on_request_highlighted(self, event: RequestHighlighted) -> None:
        if event.record is not None:
            # Narrow: a fixed height (rrdev.tcss), so no layout per cursor move. Wide:
            # the full-height pane scrolls the explanation, which needs its new size.
            wide = self.has_class("-wide")
            view = explain_view(event.record, self._profile_ref()) if wide else None
            self.why.update(view or why_view(event.record), layout=wide)
        elif self.filter_error is not None:
            self.why.update(bad_filter_view(self.filter_error), layout=self.has_class("-wide"))
        elif self.info is not None:
            filtered = bool(self.filter.terms)
            self.why.update(waiting_view(self.info, demo=self.runtime.demo, filtered=filtered))

    # -------------------------------------------------------------- other keys

    def on_request_chosen(self, event: RequestChosen) -> None:
        link = self.workbench.link_of(event.seq)
        self.push_screen(
            RequestScreen(
                event.record,
                event.seq,
                clock=self.clock,
                profile_ref=self._profile_ref(),
                note=link,
            )
        )

    def _profile_ref(self) -> str | None:
        """What ``-p`` the suggested commands name: the demo, or the profile's path."""
        if self.runtime.demo:
            return "demo"
        return self.info.profile_path if self.info is not None else None

    def action_toggle_follow(self) -> None:
        self.table.follow = not self.table.follow
        self.refresh_status()

    def action_generate(self) -> None:
        self.send_demo_traffic()

    def action_clear(self) -> None:
        self.store.clear()
        self.table.show([])
        self.refresh_status()

    # -------------------------------------------------------------- workbench

    def action_tokens(self) -> None:
        workbench.open_tokens(self)

    def action_compose(self) -> None:
        if not self.refuse_if_read_only("send"):
            workbench.compose(self, self.last_composed)

    def action_replay(self) -> None:
        if not self.refuse_if_read_only("send"):
            workbench.replay_selected(self)

    def action_edit(self) -> None:
        if not self.refuse_if_read_only("send"):
            workbench.edit_selected(self)

    def action_make_it_pass(self) -> None:
        if not self.refuse_if_read_only("send"):
            workbench.make_it_pass(self)

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen("help")

    def action_notices(self) -> None:
        if not isinstance(self.screen, NoticesScreen):
            self.push_screen(NoticesScreen(list(self.notice_log)))

    def notify(  # type: ignore[override]
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        **options: Any,
    ) -> None:
        """Every toast also goes to the notification log (``E``)."""
        self.notice_log.append(Notice(self.clock(), title, message, severity))
        super().notify(message, title=title, severity=severity, **options)

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        screen = self.screen
        if isinstance(screen, CommandPalette):
            return True  # the palette's own keys; its commands ask command_available
        workbench = self.workbench_check(action)
        if workbench is not None:
            return workbench
        return self.command_available(action, screen)

    def command_available(self, action: str, screen: Screen[object]) -> bool:
        """Whether ``action`` makes sense with ``screen`` on top (keys and palette)."""
        if action in _TRAFFIC_ACTIONS and screen is not self.table.screen:
            return False  # another screen (a request, the help) is on top
        if action == "generate":
            return self.runtime.demo
        return True

    # -------------------------------------------------------------- layout, theme

    def on_resize(self, event: events.Resize) -> None:
        self._fit_layout(event.size.width)
        if self._warm_help is not None:  # mounted: the help for the new size, once settled
            self._warm_help.stop()
            self._warm_help = self.set_timer(_WARM_HELP_AFTER, self._lay_out_help)

    def _lay_out_help(self) -> None:
        warm_help(self)

    def _fit_layout(self, width: int) -> None:
        """List and detail side by side from ``WIDE_COLUMNS`` on (lazygit, k9s)."""
        wide = width >= WIDE_COLUMNS
        if wide != self.has_class("-wide"):
            self.set_class(wide, "-wide")
            chosen = self.table.chosen()  # redraw the pane for its new shape
            if chosen is None:
                self.post_message(RequestHighlighted(None))
            else:
                self.post_message(RequestHighlighted(chosen[1], chosen[0]))

    def _restore_theme(self) -> None:
        theme = load_settings(self.settings_file).theme
        if theme and theme in self.available_themes and theme != self.theme:
            self._restoring_theme = True
            self.theme = theme

    def _theme_changed(self, theme: Theme) -> None:
        self.console.pop_theme()
        self.console.push_theme(palette_theme(self.get_css_variables()))
        # A Static turns its Rich text into styled content when updated, and the table
        # caches rendered rows: both are redrawn with the new theme's colours.
        # The installed help screen too, while closed (it keeps its widgets).
        installed = [s for s in self._installed_screens.values() if isinstance(s, Screen)]
        for screen in {*self.screen_stack, *installed}:
            for static in screen.query(Static):
                static.update(static.content)
            for help_text in screen.query(HelpText):  # laid out for the theme: again
                help_text.refresh()
        self.table.palette_changed()
        if self._restoring_theme:
            self._restoring_theme = False  # read from the file: nothing new to write
            return
        problem = save_settings(self.settings_file, TuiSettings(theme=theme.name))
        if problem:
            self.notify(f"theme not remembered: {problem}", severity="warning", markup=False)

    # -------------------------------------------------------------- status line

    def refresh_status(self) -> None:
        if self.info is None:
            return
        table = self.table
        self.status_line.show(
            jwks=self.runtime.jwks_status(),
            shown=table.row_count + table.pending,
            kept=len(self.store),
            dropped=self.store.dropped,
            cleared=self.store.cleared,
            following=table.follow,
            filter_text=self.filter.text,
            filter_error=self.filter_error,
            reload_error=self.reload_error,
            proxy_error=self.proxy_error,
        )
        self.status_line.show_token(expiry_label(self.workbench.token, self.clock()))
