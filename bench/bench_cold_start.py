"""Cold start of the CLI against the cost of importing its dependencies, in the same run.

    python bench/bench_cold_start.py [--rounds 15]

Each round starts, in turn, a fresh interpreter for:

* baseline: ``python -c "import httpx, jwt, typer, rich, tomlkit"`` (the dependencies'
  own import cost, the yardstick of issue 12);
* explain: ``rrdev explain - --offline -p profiles/auth0.toml --path /api/v1/products``
  with a real token minted beforehand by ``rrdev token mint`` from a throwaway keyset
  (``RRDEV_HOME`` in a temporary folder), fed on stdin: a full dry run, verification
  and rules included;
* help: ``rrdev --help``;
* python: ``python -c pass`` (the interpreter alone, for reference).

The commands run interleaved (one of each per round, after a warm-up round) so a busy
machine slows them alike; it prints each one's median wall time and the ratios of
explain and help to the baseline, with the machine (nproc, CPU model). No assertion:
the target (explain ≤ 1.3× the baseline) is read, not enforced.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROFILE = str(ROOT / "profiles" / "auth0.toml")
RRDEV = [sys.executable, "-m", "rrdev"]


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def environment(home: str) -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(ROOT), os.environ.get("PYTHONPATH")) if p)
    env = {**os.environ, "PYTHONPATH": path, "RRDEV_HOME": home, "NO_COLOR": "1"}
    # An installed rrdev runs from .pyc files, as its dependencies do: without them
    # every run would compile rrdev's sources (~170 ms) and measure that instead.
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def mint_token(env: dict[str, str]) -> bytes:
    argv = [*RRDEV, "token", "mint", "-p", PROFILE, "--scope", "read:products"]
    out = subprocess.run(argv, env=env, capture_output=True, check=True, cwd=ROOT)
    return out.stdout.strip()


def commands(token: bytes) -> dict[str, tuple[list[str], bytes | None, int]]:
    """name -> (argv, stdin, the exit code that proves it did its work)."""
    explain = [*RRDEV, "explain", "-", "--offline", "-p", PROFILE, "--path", "/api/v1/products"]
    return {
        "baseline": ([sys.executable, "-c", "import httpx, jwt, typer, rich, tomlkit"], None, 0),
        "explain": (explain, token, 0),
        "help": ([*RRDEV, "--help"], None, 0),
        "python": ([sys.executable, "-c", "pass"], None, 0),
    }


def run_once(argv: list[str], stdin: bytes | None, expected: int, env: dict[str, str]) -> float:
    start = time.perf_counter()
    done = subprocess.run(argv, input=stdin, env=env, capture_output=True, cwd=ROOT)
    elapsed = time.perf_counter() - start
    if done.returncode != expected:
        sys.exit(f"{argv[2:]} exited {done.returncode}:\n{done.stderr.decode()}")
    return elapsed


def measure(rounds: int, env: dict[str, str]) -> dict[str, list[float]]:
    cmds = commands(mint_token(env))
    times: dict[str, list[float]] = {name: [] for name in cmds}
    for round_no in range(rounds + 1):
        for name, (argv, stdin, expected) in cmds.items():
            elapsed = run_once(argv, stdin, expected, env)
            if round_no:  # round 0 warms the page cache and the .pyc files
                times[name].append(elapsed)
    return times


def report(times: dict[str, list[float]], rounds: int) -> None:
    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"machine: {os.cpu_count()} CPUs (nproc {len(os.sched_getaffinity(0))}), {cpu_model()}")
    print(f"python {platform.python_version()}, {rounds} interleaved rounds, medians")
    print(f"load average {os.getloadavg()[0]:.2f} (other work on the machine slows all alike)\n")
    base = medians["baseline"]
    print(f"{'command':<10} {'median ms':>10} {'min ms':>8} {'× baseline':>11}")
    for name, median in medians.items():
        low = min(times[name])
        print(f"{name:<10} {median * 1000:>10.1f} {low * 1000:>8.1f} {median / base:>11.2f}")
    print(f"\nexplain / baseline = {medians['explain'] / base:.2f} (target ≤ 1.3)")
    print(f"help / baseline    = {medians['help'] / base:.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rounds", type=int, default=15)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rrdev-cold-") as home:
        times = measure(args.rounds, environment(home))
    report(times, args.rounds)


if __name__ == "__main__":
    main()
