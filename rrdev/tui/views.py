"""Rich renderables for the TUI's panes: one function per tab, plus the table row and
the status line. Built from ``rrdev.cli.render`` (the same drawing the CLI prints) and
the record's own fields; nothing here decides anything, and nothing imports Textual.
"""

from __future__ import annotations

import json
import math
import shlex
import time
from collections.abc import Sequence
from datetime import UTC, datetime

from rich.console import Group, RenderableType
from rich.json import JSON
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from rrdev.cli.render import (
    SCOPE_LABELS,
    checklist,
    claims_table,
    render_explanation,
    trace_tree,
)
from rrdev.core.jwk import JwksStatus
from rrdev.core.records import PREVIEW_BYTES, ConditionOutcome, RequestRecord, RuleOutcome
from rrdev.core.tokens import humanize_delta
from rrdev.tui.palette import status_style
from rrdev.tui.refusal import Refusal, describe_refusal
from rrdev.tui.runtime import RuntimeInfo

__all__ = [
    "bad_filter_view",
    "explain_view",
    "jwks_text",
    "plural",
    "request_view",
    "response_view",
    "row_cells",
    "summary_line",
    "token_view",
    "waiting_view",
    "why_view",
]

_NOT_RECORDED = (
    "not recorded: the proxy records headers and bodies only when asked to "
    "(ProxyApp.record_exchange, which the TUI turns on)"
)


# ------------------------------------------------------------------ the traffic table


def row_cells(record: RequestRecord, *, alias: bool = False) -> tuple[Text, ...]:
    """One traffic row: time, method, path, status, reason, rule, latency, subject;
    with ``alias``, the alias of the proxy that answered after the time."""
    cells = _row_cells(record)
    if not alias:
        return cells
    shown = Text(record.alias or "-", style="magenta", no_wrap=True, overflow="ellipsis")
    return (cells[0], shown, *cells[1:])


def _row_cells(record: RequestRecord) -> tuple[Text, ...]:
    stamp = datetime.fromtimestamp(record.time).strftime("%H:%M:%S.%f")[:-3]
    path = Text(record.path, no_wrap=True, overflow="ellipsis")
    if record.query:
        path.append("?" + "&".join(f"{k}={v}" for k, v in record.query), style="dim")
    style = status_style(record.status)
    refused = record.reason != "allowed"
    reason = record.reason + (" (preflight)" if record.preflight else "")
    rule = record.deciding_rule or ""
    return (
        Text(stamp, style="dim"),
        Text(record.method, style="bold"),
        path,
        Text(str(record.status), style=style),
        Text(reason, style=style if refused else "dim", no_wrap=True, overflow="ellipsis"),
        Text(
            rule,
            style="rrdev.rule" if refused else "dim",
            no_wrap=True,
            overflow="ellipsis",
        ),
        Text(f"{record.total_ms:.1f} ms", justify="right", style="dim"),
        Text(record.subject or "", style="rrdev.subject", no_wrap=True, overflow="ellipsis"),
    )


def summary_line(record: RequestRecord) -> Text:
    """The detail view's first line: 'DELETE /x  →  403 rule_denied · 0.7 ms · sub · time'."""
    stamp = datetime.fromtimestamp(record.time).strftime("%H:%M:%S.%f")[:-3]
    text = Text.assemble((record.method, "bold"), " ", (record.path, "bold"))
    if record.query:
        text.append("?" + "&".join(f"{k}={v}" for k, v in record.query), style="dim")
    text.append("  →  ", style="dim")
    text.append(f"{record.status} {record.reason}", style=status_style(record.status))
    for part, style in (
        (f"{record.total_ms:.1f} ms", "dim"),
        (record.subject or "", "rrdev.subject"),
        (stamp, "dim"),
    ):
        if part:
            text.append("  ·  ", style="dim")
            text.append(part, style=style)
    return text


def why_view(record: RequestRecord) -> RenderableType:
    """A few lines under the table for the highlighted request: the answer, what
    decided it (rule and notes, or the failed token check) and the hint."""
    expl = record.explanation
    outcome = Text.assemble((f"{expl.status} {expl.reason}", status_style(expl.status)), "  ")
    lines: list[RenderableType] = [outcome.append(expl.message)]
    decision = expl.decision
    if decision is not None and not decision.allowed and decision.deciding:
        scope, name = decision.deciding[0]
        rule = _find_rule(record, scope, name)
        line = Text.assemble(("  deciding rule ", "dim"), (name, "rrdev.rule"))
        line.append(f" ({SCOPE_LABELS[scope]})", style="dim")
        if rule is not None and rule.notes:
            line.append(f"  {rule.notes}", style="italic")
        lines.append(line)
    failed = (
        [s for s in expl.verification.steps if s.status == "failed"] if expl.verification else []
    )
    for step in failed:
        line = Text.assemble(("  failed check ", "dim"), (step.name, "rrdev.rule"), "  ")
        line.append(step.detail or step.actual)
        lines.append(line)
    if expl.hint:
        lines.append(Text.assemble(("  hint: ", "rrdev.hint"), expl.hint))
    for note in record.notes:
        lines.append(Text(f"  note: {note}", style="dim"))
    return Group(*lines)


def plural(count: int, noun: str) -> str:
    """'1 request', '2 requests', '1,024 requests'."""
    return f"{count:,} {noun}" if count == 1 else f"{count:,} {noun}s"


def waiting_view(info: RuntimeInfo, *, demo: bool, filtered: bool = False) -> RenderableType:
    """What the pane under an empty table says: how to get traffic into it, with a
    token command for this profile (or the demo) and the curl that sends it."""
    if filtered:
        return Text("No request matches the filter (Esc clears it).", style="dim")
    profile = "demo" if demo else shlex.quote(info.profile_path)
    path = "/api/v1/products" if demo else "/"
    lines: list[RenderableType] = [
        Text.assemble("No request yet. Send one through the proxy at ", (info.proxy_url, "bold")),
        Text(""),
        Text(f"  TOKEN=$(rrdev token mint -p {profile})", style="rrdev.hint"),
        Text(
            f'  curl -i -H "Authorization: Bearer $TOKEN" {info.proxy_url}{path}',
            style="rrdev.hint",
        ),
        Text(""),
    ]
    if not demo:
        lines.append(
            Text(
                "rrdev token mint signs with the local keyset; for your provider's token "
                f"use  rrdev token fetch -p {profile}  (the profile's [auth]).",
                style="dim",
            )
        )
    else:
        lines.append(Text.assemble("or press ", ("g", "bold"), " to send the demo's four requests"))
    lines.append(Text("Each request appears here as a row; Enter explains it.", style="dim"))
    return Group(*lines)


def bad_filter_view(error: str) -> Text:
    """The pane while the filter bar's query does not parse."""
    text = Text("The filter does not parse, so no request is shown: ", style="rrdev.error")
    text.append(error)
    text.append("   (/ edits it, Esc clears it)", style="dim")
    return text


# ------------------------------------------------------------------ Explain


def explain_view(record: RequestRecord, profile_ref: str | None = None) -> RenderableType:
    """A rules refusal: one plain sentence, the command that fixes it, the deciding
    rule (its held conditions are the cause), then the checklist and the trace, each
    said once. Anything else: the failed check up front, then ``render_explanation``.
    ``profile_ref`` ("demo" or a profile path) goes into the suggested commands."""
    refusal = describe_refusal(record, profile_ref)
    if refusal is not None:
        parts = _refusal_parts(record, refusal)
    else:
        callout = _deciding_callout(record)
        parts = [callout] if callout is not None else []
        parts.append(render_explanation(record.explanation))
    if record.notes:
        parts.append(Text("\nProxy notes", style="bold"))
        parts += [Text(f"  • {note}") for note in record.notes]
    return Group(*parts)


def _refusal_parts(record: RequestRecord, refusal: Refusal) -> list[RenderableType]:
    expl = record.explanation
    parts: list[RenderableType] = [Text(refusal.sentence, style="bold")]
    for number, command in enumerate(refusal.commands):
        label = "fix: " if number == 0 else "     "
        parts.append(Text.assemble((label, "rrdev.hint"), (command, "bold")))
    parts.append(Text(""))
    if refusal.rule is not None:
        parts.append(_deny_panel(refusal))
    details = Text.assemble(
        (f"{expl.status} {expl.reason}", status_style(expl.status)),
        ("  ", ""),
        (expl.message, "dim"),
    )
    if expl.www_authenticate:
        details.append(f"\nWWW-Authenticate: {expl.www_authenticate}", style="dim")
    parts.append(details)
    if expl.verification and expl.verification.steps:
        parts += [Text("\nToken verification", style="bold"), checklist(expl.verification.steps)]
    if expl.decision:
        parts += [Text("\nRules", style="bold"), trace_tree(expl.decision)]
    return parts


def _deny_panel(refusal: Refusal) -> Panel:
    rule = refusal.rule
    assert rule is not None
    head = Text.assemble((rule.name, "bold reverse"))
    head.append(
        f"   {SCOPE_LABELS[refusal.scope.scope]} scope · deny · priority {rule.priority}",
        style="dim",
    )
    lines: list[RenderableType] = [head]
    if rule.notes:
        lines.append(Text(f"  {rule.notes}", style="italic"))
    lines += [_cause_line(cond) for cond in rule.conditions]
    if refusal.deny_won:
        lines.append(Text(f"  {refusal.deny_won}", style="dim"))
    return Panel(
        Group(*lines),
        title=Text.assemble(("deciding rule", "rrdev.403")),  # spans: see border_style
        title_align="left",
        border_style="dim",  # a style name would fail outside the app's console
        expand=False,
        padding=(0, 1),
    )


def _cause_line(cond: ConditionOutcome) -> Text:
    """A deny rule's condition: every one held, and together they are the cause."""
    line = Text.assemble(("  ● cause  ", "rrdev.403"), cond.description)
    if cond.compared:
        line.append("   saw: " + ", ".join(cond.compared), style="dim")
    return line


def _deciding_callout(record: RequestRecord) -> RenderableType | None:
    decision = record.explanation.decision
    if decision is None or not decision.deciding:
        return _failed_check_callout(record)
    if not decision.allowed:
        return None  # a rules refusal: _refusal_parts
    lines: list[RenderableType] = []
    for scope, name in decision.deciding[:4]:
        rule = _find_rule(record, scope, name)
        line = Text.assemble((name, "bold"), (f"   {SCOPE_LABELS[scope]} scope", "dim"))
        if rule is not None:
            line.append(f" · {rule.effect} · priority {rule.priority}", style="dim")
        elif name == "default":
            line.append(" · no rule matched: the scope's default effect decided", style="dim")
        lines.append(line)
        if rule is not None and rule.notes:
            lines.append(Text(f"  {rule.notes}", style="italic"))
    return Panel(
        Group(*lines),
        title=Text.assemble(("allowed by", "rrdev.ok")),
        title_align="left",
        border_style="dim",
        expand=False,
        padding=(0, 1),
    )


def _failed_check_callout(record: RequestRecord) -> RenderableType | None:
    """For a token the proxy refused: the checklist's failed step, up front."""
    ver = record.explanation.verification
    failed = [step for step in ver.steps if step.status == "failed"] if ver else []
    if not failed:
        return None
    lines: list[RenderableType] = []
    for step in failed:
        line = Text.assemble((step.name, "bold reverse"), "   ")
        line.append(step.actual or "")
        if step.expected:
            # The check ran when the request came: its "now" is that moment.
            expected = step.expected.replace("than now,", "than the request's time,")
            line.append(f"  expected {expected}", style="dim")
        lines.append(line)
        if step.detail:
            lines.append(Text.assemble(("  at the time of the request: ", "dim"), step.detail))
    if ver is not None and ver.expires_at is not None:
        lines.append(Text("  now: see the Token tab (t), which counts from now", style="dim"))
    return Panel(
        Group(*lines),
        title=Text.assemble(("failed check", "rrdev.401")),
        title_align="left",
        border_style="dim",
        expand=False,
        padding=(0, 1),
    )


def _find_rule(record: RequestRecord, scope: str, name: str) -> RuleOutcome | None:
    decision = record.explanation.decision
    for outcome in decision.scopes if decision else ():
        if outcome.scope == scope:
            return next((r for r in outcome.rules if r.name == name), None)
    return None


# ------------------------------------------------------------------ Request / Response


def request_view(record: RequestRecord) -> RenderableType:
    target = Text.assemble((record.method, "bold"), " ", record.path)
    if record.query:
        target.append("?" + "&".join(f"{k}={v}" for k, v in record.query), style="dim")
    parts: list[RenderableType] = [target]
    if record.preflight:
        parts.append(Text("CORS preflight: forwarded without authentication", style="dim"))
    if record.query:
        parts += [Text("\nQuery", style="bold"), _pairs_table(record.query, "name")]
    parts.append(Text("\nHeaders", style="bold"))
    parts.append(_headers_or_note(record.request_headers))
    parts.append(Text(f"\nbody: {record.bytes_in} bytes (bodies sent to the proxy are not kept)"))
    return Group(*parts)


def response_view(record: RequestRecord) -> RenderableType:
    who = (
        "from the backend" if record.forwarded else "answered by rrdev (the backend was not asked)"
    )
    head = Text.assemble((str(record.status), status_style(record.status)), f"  {who}")
    if record.reason != "allowed":
        head.append(f"  {record.reason}", style=status_style(record.status))
    parts: list[RenderableType] = [head, Text(""), _timing_table(record)]
    parts.append(Text("\nHeaders", style="bold"))
    parts.append(_headers_or_note(record.response_headers))
    parts.append(Text("\nBody", style="bold"))
    parts.append(_body(record))
    return Group(*parts)


def _timing_table(record: RequestRecord) -> Table:
    table = Table(box=None, pad_edge=False, show_header=False)
    table.add_column(style="dim")
    table.add_column(justify="right")
    table.add_row("verify token", f"{record.auth_ms:.2f} ms")
    table.add_row("path + rules", f"{record.rules_ms:.2f} ms")
    upstream = "not forwarded" if record.upstream_ms is None else f"{record.upstream_ms:.2f} ms"
    table.add_row("backend (to headers)", upstream)
    table.add_row("total", Text(f"{record.total_ms:.2f} ms", style="bold"))
    table.add_row("bytes in / out", f"{record.bytes_in} / {record.bytes_out}")
    return table


def _headers_or_note(headers: Sequence[tuple[str, str]]) -> RenderableType:
    if not headers:
        return Text(_NOT_RECORDED, style="dim")
    return _pairs_table(headers, "header")


def _pairs_table(pairs: Sequence[tuple[str, str]], label: str) -> Table:
    table = Table(box=None, pad_edge=False, show_header=False)
    table.add_column(label, style="bold", no_wrap=True)
    table.add_column("value", overflow="fold")
    for name, value in pairs:
        table.add_row(name, Text(value))
    return table


def _body(record: RequestRecord) -> RenderableType:
    preview = record.response_preview
    if preview is None:
        if not record.response_headers:
            return Text(_NOT_RECORDED, style="dim")
        kind = dict(record.response_headers).get("content-type", "no content-type")
        return Text(f"{record.bytes_out} bytes of {kind}: only JSON bodies are shown", style="dim")
    if record.response_truncated:
        note = Text(
            f"the first {PREVIEW_BYTES // 1024} KB of {record.bytes_out} bytes", style="dim"
        )
        return Group(note, Text(preview))
    try:
        body = JSON(preview)
    except (ValueError, json.JSONDecodeError):
        return Text(preview)
    body.text.no_wrap = False  # Rich's JSON crops long lines: fold them instead
    body.text.overflow = "fold"
    return body


# ------------------------------------------------------------------ Token


def token_view(record: RequestRecord, now: float | None = None) -> RenderableType:
    """Verification outcome, an expiry countdown, and the decoded header and claims
    (already redacted by the proxy)."""
    now = time.time() if now is None else now
    ver = record.explanation.verification
    if record.reason == "token_missing":
        return Text("No bearer token was sent with this request.", style="dim")
    if ver is None or ver.fingerprint is None:
        return Text(
            "No token was verified: none was sent, or the proxy credential verifies none "
            "(auth_type = 'none', a CORS preflight).",
            style="dim",
        )
    parts: list[RenderableType] = []
    if ver.ok:
        parts.append(Text("✓ verified", style="rrdev.ok"))
    else:
        parts.append(
            Text.assemble(("✗ not accepted: ", "rrdev.401"), (f"{ver.reason}", "rrdev.401"))
        )
        parts.append(Text(f"  {ver.message}"))
        if ver.claims:
            parts.append(Text("the claims below are decoded only, not trusted", style="dim"))
    countdown = _expiry_text(ver.expires_at, now, record.time)
    if countdown is not None:
        parts.append(countdown)
    parts.append(Text(f"token: {ver.fingerprint}", style="dim"))
    if ver.header:
        parts += [Text(""), claims_table(ver.header, now, "Header")]
    if ver.claims:
        parts += [Text(""), claims_table(ver.claims, now, "Claims")]
    return Group(*parts)


def _expiry_text(exp: int | None, now: float, sent: float) -> Text | None:
    """The expiry counted from now (live) and from when the request was made."""
    if exp is None:
        return None
    stamp = datetime.fromtimestamp(exp, UTC).strftime("%Y-%m-%d %H:%M:%SZ")
    text = Text.assemble(("now: ", "bold"), _expiry_delta(exp - now), (f"  (exp {stamp})", "dim"))
    text.append("\nat the time of the request: ", style="dim")
    text.append_text(_expiry_delta(exp - sent))
    return text


def _expiry_delta(delta: float) -> Text:
    if delta >= 0:
        return Text.assemble("expires in ", (humanize_delta(delta), "rrdev.ok"))
    return Text.assemble("expired ", (f"{humanize_delta(delta)} ago", "rrdev.401"))


# ------------------------------------------------------------------ status line


def jwks_text(status: JwksStatus | None) -> Text:
    """'JWKS 2 keys · 12s old · source' or the last error; 'JWKS off' without one. A
    stale key set says so, and for how long more it is served."""
    text = Text("JWKS ", style="bold")
    if status is None:
        text.append("not used (the proxy credential verifies no JWTs)", style="dim")
        return text
    if status.age_seconds is None:
        text.append(
            "not fetched yet", style="rrdev.warn" if not status.last_error else "rrdev.error"
        )
    else:
        keys = "key" if status.key_count == 1 else "keys"
        text.append(
            f"{status.key_count} {keys}", style="rrdev.ok" if status.key_count else "rrdev.error"
        )
        text.append(f" · {humanize_delta(status.age_seconds)} old", style="dim")
    stale = status.stale
    if stale is not None and stale.served:
        text.append(
            f" · STALE: JWKS failing, served {humanize_delta(math.ceil(stale.remaining))} more",
            style="rrdev.warn",
        )
    elif stale is not None:
        text.append(" · STALE key set no longer served: 503 jwks_unavailable", style="rrdev.error")
    if status.last_error:
        text.append(f" · last error: {status.last_error}", style="rrdev.error")
    text.append(f" · {status.source}", style="dim")
    return text
