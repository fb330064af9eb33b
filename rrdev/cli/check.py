"""``rrdev check``'s front end: load profiles, run ``rrdev.checks.engine``, print the report.

A table per profile (check, expected, got, reason, result), then each failed check with
rrdev's explanation (``render.render_explanation``), then rule coverage. ``--json``
prints ``CheckRun.to_dict()`` instead; ``--junit FILE`` writes JUnit XML as well.
Exit codes (DESIGN.md §4): 0 all passed, 1 a check failed (or, with
``--require-coverage``, a rule was never exercised), 3 a profile error, 4 a network
error -- the last two raised as ``RrdevError`` for ``cli.common.friendly`` to report once.
"""

from __future__ import annotations

import asyncio
import io
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from rich import box
from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from rrdev.checks.engine import NOT_RUN_REASON, run_checks
from rrdev.checks.model import CheckOptions, CheckResult, CheckRun, ProfileReport
from rrdev.cli.console import make_console
from rrdev.cli.render import render_explanation, status_style
from rrdev.core.errors import ProfileError
from rrdev.core.model import Profile

__all__ = ["load_profiles", "print_report", "run_check_command"]

#: Width of the explanation text in JUnit failures (plain text, no colour).
JUNIT_WIDTH = 100


def run_check_command(
    paths: Sequence[str],
    options: CheckOptions,
    *,
    json_out: bool = False,
    junit: str | None = None,
    out: Console | None = None,
    err: Console | None = None,
) -> int:
    """Load every profile, run their checks, report; returns the exit code.

    A profile that does not load stops the run before anything is sent (every such
    error is printed, then exit 3). Network and other run-stopping errors propagate as
    ``RrdevError`` (one message, its exit code).
    """
    out = out or make_console()
    err = err or make_console(stderr=True)
    profiles = load_profiles(paths, err)
    if profiles is None:
        return 3
    run = asyncio.run(run_checks(profiles, options))
    if junit:
        from rrdev.checks.junit import write_junit

        write_junit(run, junit, details=failure_text)
    if json_out:
        sys.stdout.write(json.dumps(run.to_dict(), indent=2, default=str) + "\n")
    else:
        print_report(run, out)
    return run.exit_code


def load_profiles(paths: Sequence[str], err: Console) -> list[Profile] | None:
    """Every profile, or None after printing each one's error (like ``validate``)."""
    from rrdev.core.profile import discover_profile, load_profile

    if not paths:
        return [load_profile(discover_profile(None))]
    profiles, failed = [], False
    for path in paths:
        try:
            profiles.append(load_profile(Path(path)))
        except ProfileError as exc:
            failed = True
            line = Text.assemble(("error: ", "bold red"), str(exc))
            if exc.hint:
                line.append(f"\nhint: {exc.hint}", style="cyan")
            err.print(line)
    return None if failed else profiles


# ------------------------------------------------------------------ the report


def print_report(run: CheckRun, out: Console) -> None:
    for report in run.reports:
        out.print(_table(report))
        for result in report.failed:
            out.print(_failure(result))
        _print_coverage(report, run.require_coverage, out)
        out.print()
    out.print(_summary(run))


def _table(report: ProfileReport) -> RenderableType:
    title = Text(report.name, style="bold")
    title.append(f"  {report.profile}  ({_MODES[report.mode]})", style="dim")
    if not report.results:
        return Group(title, Text("  no [[checks]] in this profile", style="dim"))
    table = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    table.add_column("check", overflow="fold")
    table.add_column("expected", overflow="fold")
    table.add_column("got", no_wrap=True)
    table.add_column("reason", overflow="fold")
    table.add_column("result", no_wrap=True)
    for r in report.results:
        table.add_row(
            Text(r.name),
            Text(str(r.expected)),
            _got(r),
            _reason(r),
            Text("pass", style="bold green") if r.passed else Text("FAIL", style="bold red"),
        )
    return Group(title, table)


def _got(result: CheckResult) -> Text:
    status = result.outcome.status
    if result.outcome.reason == NOT_RUN_REASON:
        return Text("not run", style="bold red")
    return Text(str(status), style=status_style(status))


_MODES = {"dry": "dry run", "live": "live", "against": "against a running gateway"}


def _reason(result: CheckResult) -> Text:
    outcome = result.outcome
    text = Text(outcome.reason or "-")
    if outcome.rule:
        text.append(f" · {outcome.rule}", style="yellow")
    return text


def _failure(result: CheckResult) -> RenderableType:
    head = Text.assemble(("✗ ", "bold red"), (result.name, "bold"))
    head.append(f"  {result.where}  {result.method} {result.target}", style="dim")
    lines: list[RenderableType] = [head]
    lines += [Text(f"  {problem}", style="red") for problem in result.problems]
    lines += [Text(f"  note: {note}", style="dim") for note in result.notes]
    expl = result.outcome.explanation
    if expl is not None:
        lines.append(Padding(render_explanation(expl), (0, 0, 0, 4)))
    elif result.outcome.message:
        lines.append(Text(f"    gateway: {result.outcome.message}", style="dim"))
    return Group(Text(""), *lines)


def _print_coverage(report: ProfileReport, required: bool, out: Console) -> None:
    if not report.coverage:
        return
    exercised = sum(1 for c in report.coverage if c.exercised)
    line = Text("\nrule coverage: ", style="bold")
    line.append(f"{exercised}/{len(report.coverage)} rules decided at least one check")
    if not report.coverage_known:
        line.append("  (partial: some answers carried no rule trace)", style="dim")
    out.print(line)
    for c in report.coverage:
        if c.exercised:
            n = len(c.decided)
            label = f"{c.scope}[{c.index}]" + (f" '{c.id}'" if c.id else "")
            out.print(Text(f"  ✓ {label}: decided {n} check{'s' * (n != 1)}", style="dim"))
        else:
            style = "bold red" if required else "yellow"
            verb = "was not seen deciding" if not report.coverage_known else "is never exercised"
            out.print(Text(f"  ✗ {c.describe()} {verb}", style=style))


def _summary(run: CheckRun) -> Text:
    results = run.results
    failed = len(run.failed)
    text = Text()
    text.append(f"{len(results)} check{'s' * (len(results) != 1)}: ", style="bold")
    text.append(f"{len(results) - failed} passed", style="green")
    text.append(", ")
    text.append(f"{failed} failed", style="bold red" if failed else "")
    if len(run.reports) > 1:
        text.append(f"  ({len(run.reports)} profiles)", style="dim")
    if run.coverage_failed:
        missing = sum(len(r.unexercised) for r in run.reports)
        text.append(f"\n--require-coverage: {missing} rule(s) never exercised", style="bold red")
    return text


def failure_text(result: CheckResult) -> str:
    """A failed check as plain text (JUnit): what differed, then the explanation."""
    buffer = io.StringIO()
    console = Console(
        file=buffer, width=JUNIT_WIDTH, no_color=True, highlight=False, color_system=None
    )
    console.print(_failure(result))
    lines = (line.rstrip() for line in buffer.getvalue().splitlines())
    return "\n".join(lines).strip("\n")
