"""The throughput scenarios: start each server, check its sanity, warm it up, then wrk
every scenario in turn, round after round (interleaved, so a busy machine slows them
alike), with the CPU time of each server's process tree over each run."""

from __future__ import annotations

import os
import shlex
import shutil
import statistics
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from bench import sanity
from bench.procs import Server, cpu_seconds, free_port, tree_pids
from bench.report import Round, ScenarioResult
from bench.scenarios import SCENARIOS, Scenario, TmuxServer
from bench.world import PATH, World, start_backend
from bench.wrk import run_wrk

__all__ = ["LoadSettings", "chosen_scenarios", "run_load"]

#: A line of the TUI's help screen: in the output means `?` has opened it.
HELP_MARKER = b"follow new requests on/off"
#: The traffic screen's footer (the help's says only "Close"): the help is gone.
MAIN_MARKER = b"Quit"


@dataclass(frozen=True)
class LoadSettings:
    seconds: float = 10
    rounds: int = 2
    warmup: float = 3
    connections: int = 32
    peers: bool = False
    only: tuple[str, ...] = ()


def chosen_scenarios(settings: LoadSettings) -> list[Scenario]:
    return [
        s
        for s in SCENARIOS
        if (settings.peers or not s.peer) and (not settings.only or s.name in settings.only)
    ]


def _say(message: str) -> None:
    print(f"[load] {message}", flush=True)


def run_load(world: World, settings: LoadSettings) -> list[ScenarioResult]:
    backend = start_backend(world)
    servers: dict[str, Server] = {}
    try:
        results, live = _start_all(world, settings, backend, servers)
        for scenario in live:  # warm-up: connections, caches, JIT-less interpreters alike
            _measure(scenario, world, servers[scenario.name], settings.warmup, settings)
        for number in range(1, settings.rounds + 1):
            for scenario in round_order(live, number):
                _say(f"round {number}/{settings.rounds}: {scenario.name}")
                result = results[scenario.name]
                server = servers[scenario.name]
                result.rounds.append(_measure(scenario, world, server, settings.seconds, settings))
        return list(results.values())
    finally:
        for server in servers.values():
            if server is not backend:
                server.stop()
        backend.stop()


def round_order(items: list, number: int) -> list:
    """Round ``number`` (1-based) runs the scenarios forward, the next one backward
    (A B C, C B A, ...): a machine that grows busier or quieter during the run then
    weighs on every scenario alike, instead of always on the last ones."""
    return list(items) if number % 2 else list(reversed(items))


def _start_all(
    world: World, settings: LoadSettings, backend: Server, servers: dict[str, Server]
) -> tuple[dict[str, ScenarioResult], list[Scenario]]:
    results = {s.name: ScenarioResult(s.name, s.description) for s in chosen_scenarios(settings)}
    for scenario in chosen_scenarios(settings):
        if reason := scenario.unavailable(world):
            results[scenario.name].skipped = reason
        elif scenario.start is None:
            servers[scenario.name] = backend
        else:
            _say(f"starting {scenario.name}")
            servers[scenario.name] = scenario.start(world, free_port())
    live = []
    for scenario in chosen_scenarios(settings):
        if scenario.name in servers and _ready(scenario, world, servers[scenario.name], results):
            live.append(scenario)
    return results, live


def _ready(scenario: Scenario, world: World, server: Server, results: dict) -> bool:
    try:
        server.wait_ready()
        problems = sanity.check(scenario, world, server.port)
    except (RuntimeError, OSError) as exc:
        problems = [str(exc)]
    if problems:
        results[scenario.name].skipped = "sanity check failed: " + "; ".join(problems)
        _say(f"{scenario.name}: {results[scenario.name].skipped}\n{server.tail()}")
        return False
    _say(f"{scenario.name}: sanity checked")
    return True


def _measure(
    scenario: Scenario, world: World, server: Server, seconds: float, settings: LoadSettings
) -> Round:
    url = f"http://127.0.0.1:{server.port}{PATH}"
    headers = sanity.auth_headers(scenario, world)
    pids = tree_pids(server.pid)
    probe = _HelpProbe(server) if isinstance(server, TmuxServer) else None
    before, start = cpu_seconds(pids), time.monotonic()
    if probe:
        probe.start()
    try:
        wrk = run_wrk(url, seconds, settings.connections, headers)
    finally:
        if probe:
            probe.stop()
    cpu = (cpu_seconds(pids) - before) / (time.monotonic() - start) * 100
    if probe is None:
        return Round(wrk, cpu)
    return Round(wrk, cpu, tuple(probe.latencies_ms), tuple(probe.closing_ms))


class _HelpProbe:
    """While wrk runs through the TUI: press `?` and time until the help's text is
    in the pane's output, then `q` until the traffic's footer is back, repeat.

    The output is read as tmux passes it on (``pipe-pane`` into a FIFO, read by a
    thread), not by polling the screen, so a sample is from just before the
    ``tmux send-keys`` process starts until the bytes that draw the effect left the
    app: the spawn of tmux's client is in it, the terminal's drawing is not."""

    def __init__(self, server: TmuxServer) -> None:
        self.server = server
        self.latencies_ms: list[float] = []
        self.closing_ms: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._output = bytearray()
        self._seen = threading.Condition()
        self._awaited = b""  # the marker _press waits for
        self._shown = 0.0  # when it arrived

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        fifo = Path(tempfile.mkdtemp(prefix="rrdev-bench-pane-")) / "pane"
        os.mkfifo(fifo)
        reader = threading.Thread(target=self._read, args=(fifo,), daemon=True)
        reader.start()
        self.server.tmux("pipe-pane", "-o", f"cat > {shlex.quote(str(fifo))}")
        try:
            time.sleep(0.5)  # let the load reach its pace first
            while not self._stop.is_set():
                opened = self._press("?", HELP_MARKER)
                closed = self._press("q", MAIN_MARKER)
                if opened is None or closed is None:  # the app is gone or stuck
                    break
                self.latencies_ms.append(opened)
                self.closing_ms.append(closed)
                self._stop.wait(0.3)
        finally:
            self.server.tmux("pipe-pane")  # stops the cat: the reader sees the end
            reader.join(timeout=5)
            shutil.rmtree(fifo.parent, ignore_errors=True)

    def _read(self, fifo: Path) -> None:
        """Take in the pane's output; note when the awaited marker arrives."""
        with open(fifo, "rb", buffering=0) as stream:
            while chunk := stream.read(65536):
                with self._seen:
                    self._output += chunk
                    if self._awaited and self._awaited in self._output:
                        self._shown = time.monotonic()
                        self._awaited = b""
                        self._seen.notify_all()

    def _press(self, key: str, marker: bytes, timeout: float = 5.0) -> float | None:
        """Milliseconds from pressing ``key`` until ``marker`` is in the output."""
        with self._seen:
            del self._output[:]  # only what the app writes after the key counts
            self._awaited, self._shown = marker, 0.0
        pressed = time.monotonic()
        self.server.keys(key)
        with self._seen:
            if not self._seen.wait_for(lambda: self._shown, timeout):
                self._awaited = b""
                return None
            return (self._shown - pressed) * 1000


def help_latency_note(result: ScenarioResult) -> str | None:
    """`?` and `q` times over every round, for the table's notes."""
    opening = sorted(v for r in result.rounds for v in r.ui_latencies_ms)
    closing = sorted(v for r in result.rounds for v in r.ui_closing_ms)
    if not opening:
        return None
    return (
        f"under load, '?' drew the help in {_spread(opening)}, 'q' the traffic again in "
        f"{_spread(closing)}, over {len(opening)} presses (from tmux send-keys to the "
        "app's output: an upper bound)"
    )


def _spread(values: list[float]) -> str:
    p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
    return f"median {statistics.median(values):.0f} ms, p95 {p95:.0f} ms, max {values[-1]:.0f} ms"
