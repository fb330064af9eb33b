"""Rich renderables shared by the CLI and the TUI: one way to draw an Explanation,
a token and a request line. Nothing here decides anything."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from rrdev.core.record_line import RecordLine
from rrdev.core.records import (
    Decision,
    Explanation,
    RequestRecord,
    RuleOutcome,
    ScopeOutcome,
    VerifyStep,
)

SCOPE_LABELS = {
    "proxy_credential": "proxy credential",
    "target_credential": "target credential",
    "proxy": "proxy",
    "target": "target",
}
_STEP_MARKS = {"passed": ("✓", "green"), "failed": ("✗", "bold red"), "skipped": ("·", "dim")}
TIME_CLAIMS = ("iat", "nbf", "exp", "auth_time")


def status_style(status: int) -> str:
    """Colour by status class: 2xx green, 3xx cyan, 4xx yellow (401/403 red), 5xx magenta."""
    if status in (401, 403):
        return "bold red"
    return {2: "green", 3: "cyan", 4: "yellow", 5: "magenta"}.get(status // 100, "white")


def outcome_text(expl: Explanation) -> Text:
    """'403 rule_denied  proxy rule 'scope-gate-delete' denies DELETE /x'."""
    text = Text()
    text.append(f"{expl.status} {expl.reason}", style=status_style(expl.status))
    text.append(f"  {expl.message}")
    return text


def render_explanation(expl: Explanation) -> RenderableType:
    """The outcome, the verification checklist and the rule trace, in that order."""
    parts: list[RenderableType] = [_outcome_block(expl)]
    if expl.verification and expl.verification.steps:
        steps = expl.verification.steps
        title = "Credential" if steps[0].name == "credential" else "Token verification"
        parts += [Text(f"\n{title}", style="bold"), checklist(steps)]
    if expl.decision:
        parts += [Text("\nRules", style="bold"), trace_tree(expl.decision)]
    filters = expl.extra.get("response_filters")
    if filters:
        parts += [Text("\nResponse filters", style="bold"), *map(_filter_line, filters)]
    return Group(*parts)


def _filter_line(entry: dict[str, Any]) -> Text:
    """'target: destroy items[].secret  (would apply to the response)' in a dry run, or
    what a filter removed from a forwarded response."""
    line = Text(f"  {entry['scope']}: {entry['mode']} ", style="bold")
    if entry.get("would_apply"):
        line.append(", ".join(entry["fields"]))
        line.append("  (would apply to the response: 2xx JSON only)", style="dim")
    else:
        line.append("removed " + (", ".join(entry["removed"]) or "nothing"))
    return line


def _outcome_block(expl: Explanation) -> RenderableType:
    lines = [outcome_text(expl)]
    if expl.request:
        req = Text(f"request: {expl.request.method} {expl.request.raw_path or expl.request.path}")
        if expl.request.query:
            req.append("?" + "&".join(f"{k}={v}" for k, v in expl.request.query))
        lines.append(Text.assemble(("  ", ""), (req.plain, "dim")))
    if expl.hint:
        lines.append(Text.assemble(("  hint: ", "bold cyan"), expl.hint))
    for warning in expl.verification.warnings if expl.verification else ():
        lines.append(Text.assemble(("  warning: ", "bold yellow"), warning))
    if expl.www_authenticate:
        lines.append(Text.assemble(("  WWW-Authenticate: ", "dim"), expl.www_authenticate))
    if expl.verification and expl.verification.fingerprint:
        lines.append(Text(f"  token: {expl.verification.fingerprint}", style="dim"))
    return Group(*lines)


def checklist(steps: tuple[VerifyStep, ...]) -> Table:
    """One row per check: mark, name, what was seen; a failed check adds what was
    expected and why, a skipped one says so."""
    table = Table(box=None, pad_edge=False, show_header=False)
    table.add_column(width=1)
    table.add_column(no_wrap=True, style="bold")
    table.add_column(overflow="fold")
    for step in steps:
        mark, style = _STEP_MARKS.get(step.status, ("?", ""))
        table.add_row(Text(mark, style=style), step.name, _step_text(step))
    return table


def _step_text(step: VerifyStep) -> Text:
    if step.status == "skipped":
        return Text(step.detail or "skipped", style="dim")
    text = Text(step.actual or step.expected)
    if step.status == "failed":
        if step.expected:
            text.append(f"  expected {step.expected}", style="yellow")
        if step.detail:
            text.append(f"\n{step.detail}", style="dim")
    elif step.detail:
        text.append(f"  ({step.detail})", style="dim")
    return text


def trace_tree(decision: Decision) -> Tree:
    verdict = "allowed" if decision.allowed else "denied"
    root = Tree(Text(f"{verdict} — every scope must allow", style=_verdict_style(decision.allowed)))
    deciding = set(decision.deciding)
    for scope in decision.scopes:
        branch = root.add(_scope_label(scope))
        for rule in scope.rules:
            _add_rule(branch, rule, (scope.scope, rule.name) in deciding)
    return root


def _verdict_style(allowed: bool) -> str:
    return "bold green" if allowed else "bold red"


def _scope_label(scope: ScopeOutcome) -> Text:
    text = Text(SCOPE_LABELS[scope.scope], style="bold")
    text.append(f"  {scope.effect}", style=_verdict_style(scope.effect == "allow"))
    text.append(f"  (default {scope.default_effect}; decided by {scope.decided_by})", style="dim")
    if not scope.rules:
        text.append("  no rules", style="dim")
    return text


def _add_rule(branch: Tree, rule: RuleOutcome, deciding: bool) -> None:
    mark = Text("● " if rule.matched else "○ ", style="bold" if rule.matched else "dim")
    label = Text.assemble(mark, (rule.effect, "green" if rule.effect == "allow" else "red"))
    label.append(f" {rule.name}", style="bold reverse" if deciding else "bold")
    label.append(f"  priority {rule.priority}", style="dim")
    label.append("  matched" if rule.matched else "  no match", style="" if rule.matched else "dim")
    if deciding:
        label.append("  ← deciding rule", style="bold yellow")
    node = branch.add(label)
    if rule.notes:
        node.add(Text(rule.notes, style="italic dim"))
    for cond in rule.conditions:
        line = Text("✓ " if cond.held else "✗ ", style="green" if cond.held else "red")
        line.append(cond.description)
        if cond.compared:
            line.append("   saw: " + ", ".join(cond.compared), style="dim")
        node.add(line)


# ------------------------------------------------------------------ tokens


def humanize_time(value: Any, now: float | None = None) -> str:
    """'2026-11-28T23:10:00Z (in 4m12s)' for a NumericDate claim."""
    from rrdev.core.tokens import humanize_delta

    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return json.dumps(value)
    now = time.time() if now is None else now
    try:
        stamp = datetime.fromtimestamp(value, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    except (OverflowError, OSError, ValueError):
        # A token may carry any number (exp = 1e400 written out): show it, never crash.
        return f"{json.dumps(value)} (not a representable time)"
    delta = value - now
    rel = f"in {humanize_delta(delta)}" if delta >= 0 else f"{humanize_delta(-delta)} ago"
    return f"{stamp} ({rel})"


def claims_table(claims: Mapping[str, Any], now: float | None = None, title: str = "") -> Table:
    table = Table(title=title or None, box=None, pad_edge=False, title_justify="left")
    table.add_column("claim", style="bold")
    table.add_column("value", overflow="fold")
    for name, value in claims.items():
        shown = humanize_time(value, now) if name in TIME_CLAIMS else _claim_text(value)
        table.add_row(name, shown)
    return table


def _claim_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def render_token(
    header: Mapping[str, Any], claims: Mapping[str, Any], fingerprint: str, now: float | None = None
) -> RenderableType:
    banner = Text("UNVERIFIED", style="bold black on yellow")
    banner.append("  decoded only: the signature, issuer and audience were not checked", style="")
    return Group(
        banner,
        Text(f"token: {fingerprint}", style="dim"),
        claims_table(header, now, "Header"),
        Text(""),
        claims_table(claims, now, "Claims"),
    )


# ------------------------------------------------------------------ requests


def request_line(record: RequestRecord | RecordLine, worker: int | None = None) -> Text:
    """One line per proxied request: time, method, path, status, latency, subject.

    Answers rrdev made itself (401, 403, 400, 502, ...) also carry the reason code, the
    message and the deciding rule, so the line alone says why. ``worker`` (``rrdev up
    --workers``) adds which worker served it (``w2``) after the time.
    """
    line = record if isinstance(record, RecordLine) else RecordLine.of(record)
    stamp = datetime.fromtimestamp(line.time).strftime("%H:%M:%S.%f")[:-3]
    text = Text()
    text.append(stamp, style="dim")
    if worker is not None:
        text.append(f"  w{worker}", style="dim")
    if line.alias is not None:
        text.append(f"  {line.alias}", style="magenta")
    text.append(f"  {line.method:<7} ", style="bold")
    text.append(line.path)
    if line.query:
        text.append("?" + "&".join(f"{k}={v}" for k, v in line.query), style="dim")
    text.append(f"  {line.status}", style=status_style(line.status))
    text.append(f"  {line.total_ms:.1f} ms", style="dim")
    if line.subject:
        text.append(f"  {line.subject}", style="cyan")
    if line.preflight:
        text.append("  preflight", style="dim")
    if line.key_note:
        text.append(f"  {line.key_note}", style="bold yellow")
    if line.reason != "allowed":
        text.append(f"  {line.reason}", style=status_style(line.status))
        text.append(f": {line.message}")
        if line.deciding_rule:
            text.append(f"  [rule {line.deciding_rule}]", style="yellow")
    return text
