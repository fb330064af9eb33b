"""The throughput scenarios: start each server, check its sanity, warm it up, then wrk
every scenario in turn, round after round (interleaved, so a busy machine slows them
alike), with the CPU time of each server's process tree over each run."""

from __future__ import annotations

import statistics
import threading
import time
from dataclasses import dataclass

from bench import sanity
from bench.procs import Server, cpu_seconds, free_port, tree_pids
from bench.report import Round, ScenarioResult
from bench.scenarios import SCENARIOS, Scenario, TmuxServer
from bench.world import PATH, World, start_backend
from bench.wrk import run_wrk

__all__ = ["LoadSettings", "chosen_scenarios", "run_load"]

#: A line of the TUI's help screen: on the screen means `?` has opened it.
HELP_MARKER = "follow new requests on/off"


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
    return Round(wrk, cpu, tuple(probe.latencies_ms) if probe else ())


class _HelpProbe:
    """While wrk runs through the TUI: press `?`, time until the help is on the screen
    (as tmux shows it: an upper bound of the UI's input latency), press Esc, repeat."""

    def __init__(self, server: TmuxServer) -> None:
        self.server = server
        self.latencies_ms: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def _run(self) -> None:
        time.sleep(0.5)  # let the load reach its pace first
        while not self._stop.is_set():
            pressed = time.monotonic()
            self.server.keys("?")
            if self._until(lambda screen: HELP_MARKER in screen):
                self.latencies_ms.append((time.monotonic() - pressed) * 1000)
            self.server.keys("Escape")
            self._until(lambda screen: HELP_MARKER not in screen)
            self._stop.wait(0.3)

    def _until(self, condition, timeout: float = 5.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition(self.server.screen()):
                return True
            time.sleep(0.02)  # each look is a tmux process: keep the machine for the load
        return False


def help_latency_note(result: ScenarioResult) -> str | None:
    """'?' opening times over every round, for the table's notes."""
    values = sorted(v for r in result.rounds for v in r.ui_latencies_ms)
    if not values:
        return None
    p95 = values[min(len(values) - 1, int(len(values) * 0.95))]
    return (
        f"'?' opened the help in median {statistics.median(values):.0f} ms, "
        f"p95 {p95:.0f} ms, max {values[-1]:.0f} ms over {len(values)} presses under load "
        "(polled through tmux: an upper bound)"
    )
