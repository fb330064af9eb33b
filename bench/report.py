"""The results: medians over the rounds, ratios to direct and to the Node peer, the one
table the harness prints, and the same as JSON."""

from __future__ import annotations

import statistics
from dataclasses import asdict, dataclass, field

from bench.procs import Machine
from bench.wrk import WrkResult

__all__ = ["Round", "ScenarioResult", "as_json", "format_machine", "format_table"]


@dataclass(frozen=True)
class Round:
    """One wrk run against one scenario, and the server's CPU over it (100 = one core)."""

    wrk: WrkResult
    cpu_percent: float
    #: With the TUI attached: how long `?` took to open the help, per press (ms).
    ui_latencies_ms: tuple[float, ...] = ()
    #: ... and `q` to close it again (the traffic back on the screen), per press.
    ui_closing_ms: tuple[float, ...] = ()


@dataclass
class ScenarioResult:
    """A scenario's rounds, or why it has none (``skipped``: not available, failed)."""

    name: str
    description: str = ""
    rounds: list[Round] = field(default_factory=list)
    skipped: str | None = None
    notes: list[str] = field(default_factory=list)

    def median(self, attribute: str) -> float | None:
        if not self.rounds:
            return None
        if attribute == "cpu_percent":
            return statistics.median(r.cpu_percent for r in self.rounds)
        return statistics.median(getattr(r.wrk, attribute) for r in self.rounds)

    @property
    def errors(self) -> int:
        return sum(r.wrk.errors for r in self.rounds)


def _ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "-"
    return f"{value / base:.3f}"


def _cell(value: float | None, spec: str) -> str:
    return "-" if value is None else format(value, spec)


def format_table(results: list[ScenarioResult], direct: str = "direct", peer: str | None = None):
    """One line per scenario: req/s, p50, p99, server CPU %, errors, × direct, × peer."""
    by_name = {r.name: r for r in results}
    base = by_name[direct].median("requests_per_s") if direct in by_name else None
    peer_rps = by_name[peer].median("requests_per_s") if peer in by_name else None
    header = ["scenario", "req/s", "p50 ms", "p99 ms", "CPU %", "errors", "x direct"]
    if peer:
        header.append("x Node")
    rows = [header]
    for result in results:
        if result.skipped:
            rows.append([result.name, result.skipped])
            continue
        rps = result.median("requests_per_s")
        row = [
            result.name,
            _cell(rps, ".0f"),
            _cell(result.median("p50_ms"), ".2f"),
            _cell(result.median("p99_ms"), ".2f"),
            _cell(result.median("cpu_percent"), ".0f"),
            str(result.errors),
            _ratio(rps, base),
        ]
        if peer:
            row.append(_ratio(rps, peer_rps))
        rows.append(row)
    return _align(rows, len(header)) + _notes(results)


def _align(rows: list[list[str]], columns: int) -> str:
    widths = [max(len(row[i]) for row in rows if len(row) == columns) for i in range(columns)]
    widths[0] = max(len(row[0]) for row in rows)  # a skipped scenario's name too
    lines = []
    for row in rows:
        if len(row) != columns:  # a skipped scenario: its name, then why
            lines.append(f"{row[0]:<{widths[0]}}  {row[1]}")
            continue
        cells = [row[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)
        ]
        lines.append("  ".join(cells))
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines) + "\n"


def _notes(results: list[ScenarioResult]) -> str:
    lines = [f"  {r.name}: {note}\n" for r in results for note in r.notes]
    for result in results:
        non_2xx = sum(r.wrk.non_2xx for r in result.rounds)
        sockets = sum(r.wrk.socket_errors for r in result.rounds)
        if non_2xx or sockets:  # timeouts are wrk's 2 s limit: a stalled server
            lines.append(
                f"  {result.name}: errors over all rounds: {non_2xx} non-2xx answers, "
                f"{sockets} socket errors (connect, read, write, timeout)\n"
            )
    return "".join(lines)


def format_machine(machine: Machine) -> str:
    def load(values: tuple[float, float, float] | None) -> str:
        return "-" if values is None else " ".join(f"{v:.2f}" for v in values)

    return (
        f"machine: {machine.cpu_model}, {machine.cores} cores, python {machine.python}\n"
        f"load average before: {load(machine.load_before)}, after: {load(machine.load_after)}"
    )


def as_json(machine: Machine, settings: dict, results: list[ScenarioResult], micro: dict) -> dict:
    """Everything printed, as one JSON-able dict (``--json FILE``)."""
    scenarios = []
    for result in results:
        entry: dict = {"name": result.name, "description": result.description}
        entry |= {"skipped": result.skipped, "notes": result.notes}
        if result.rounds:
            entry["median"] = {
                key: result.median(key)
                for key in ("requests_per_s", "p50_ms", "p99_ms", "cpu_percent")
            }
            entry["rounds"] = [asdict(r) for r in result.rounds]
        scenarios.append(entry)
    return {"machine": asdict(machine), "settings": settings, "scenarios": scenarios, **micro}


#: Issue 12's targets: (scenario, compared with, what, at least/at most this ratio).
TARGETS: tuple[tuple[str, str, str, str, float], ...] = (
    ("rrdev jwt", "node peer", "requests_per_s", ">=", 1.5),
    ("rrdev jwt", "node peer", "p99_ms", "<=", 1.0),
    ("rrdev jwt", "yardstick", "requests_per_s", ">=", 0.9),
    ("rrdev none", "yardstick", "requests_per_s", ">=", 1.0),
    ("rrdev tui", "rrdev jwt", "requests_per_s", ">=", 0.8),
)


def format_targets(results: list[ScenarioResult]) -> str:
    """Each of issue 12's ratio targets this run can judge, read (never enforced)."""
    by_name = {r.name: r for r in results if r.rounds}
    lines = []
    for name, other, what, op, bound in TARGETS:
        if name not in by_name or other not in by_name:
            continue
        ours, theirs = by_name[name].median(what), by_name[other].median(what)
        if not ours or not theirs:
            continue
        ratio = ours / theirs
        met = ratio >= bound if op == ">=" else ratio <= bound
        label = "req/s" if what == "requests_per_s" else "p99"
        lines.append(
            f"  {name} / {other} {label}: {ratio:.2f} (target {op} {bound:g}) "
            f"{'met' if met else 'NOT met'}"
        )
    return ("targets (issue 12):\n" + "\n".join(lines) + "\n") if lines else ""
