"""The benchmark harness (`python -m bench`) imports, parses wrk's output and formats its
table. Fixed text only: no timing, no servers, nothing installed."""

from __future__ import annotations

import importlib
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # plain `pytest` puts tests/ on the path, not the root
    sys.path.insert(0, str(ROOT))

from bench.procs import Machine  # noqa: E402
from bench.report import (  # noqa: E402
    Round,
    ScenarioResult,
    as_json,
    format_machine,
    format_table,
    format_targets,
)
from bench.wrk import WrkResult, parse_duration_ms, parse_wrk, wrk_argv  # noqa: E402

WRK_OUTPUT = """\
Running 10s test @ http://127.0.0.1:41235/api/v1/products
  1 threads and 32 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency    25.12ms   10.02ms 175.01ms   80.10%
    Req/Sec     1.28k   100.00     1.50k    70.00%
  Latency Distribution
     50%   23.45ms
     75%   28.00ms
     90%   35.00ms
     99%  750.00us
  12805 requests in 10.01s, 3.10MB read
  Socket errors: connect 0, read 2, write 0, timeout 3
  Non-2xx or 3xx responses: 7
Requests/sec:   1279.26
Transfer/sec:    317.08KB
"""


@pytest.mark.parametrize(
    "module",
    [
        "bench.__main__",
        "bench.load",
        "bench.micro",
        "bench.prepare",
        "bench.procs",
        "bench.report",
        "bench.sanity",
        "bench.scenarios",
        "bench.world",
        "bench.wrk",
    ],
)
def test_bench_modules_import(module: str) -> None:
    assert importlib.import_module(module).__doc__


def test_wrk_output_is_parsed() -> None:
    result = parse_wrk(WRK_OUTPUT)
    assert result == WrkResult(
        requests_per_s=1279.26,
        requests=12805,
        p50_ms=23.45,
        p99_ms=0.75,
        non_2xx=7,
        socket_errors=5,
    )
    assert result.errors == 12


def test_wrk_output_without_errors_has_none() -> None:
    clean = "\n".join(
        line for line in WRK_OUTPUT.splitlines() if "errors" not in line and "Non-2xx" not in line
    )
    assert parse_wrk(clean).errors == 0


def test_wrk_output_missing_a_number_names_it() -> None:
    with pytest.raises(ValueError, match="Requests/sec"):
        parse_wrk(WRK_OUTPUT.replace("Requests/sec:", "Requests:"))


@pytest.mark.parametrize(
    ("text", "ms"), [("450.00us", 0.45), ("1.50ms", 1.5), ("1.02s", 1020.0), ("2.00m", 120_000.0)]
)
def test_wrk_durations_are_milliseconds(text: str, ms: float) -> None:
    assert parse_duration_ms(text) == pytest.approx(ms)


def test_wrk_command_line() -> None:
    argv = wrk_argv("http://127.0.0.1:1/x", 10, 32, {"Authorization": "Bearer t"})
    assert argv == [
        *("wrk", "-t1", "-c32", "-d10s", "--latency"),
        *("-H", "Authorization: Bearer t", "http://127.0.0.1:1/x"),
    ]


def _result(name: str, *rps_p99_cpu: tuple[float, float, float]) -> ScenarioResult:
    rounds = [Round(WrkResult(rps, int(rps * 10), 1.0, p99), cpu) for rps, p99, cpu in rps_p99_cpu]
    return ScenarioResult(name, rounds=rounds)


def test_table_has_medians_and_ratios_to_direct_and_the_peer() -> None:
    results = [
        _result("direct", (20_000, 2.0, 90), (22_000, 3.0, 100), (21_000, 2.5, 95)),
        _result("rrdev jwt", (2_100, 30.0, 99)),
        ScenarioResult("rrdev workers=2", skipped="not available (rrdev up has no --workers)"),
        _result("node peer", (1_400, 40.0, 98)),
    ]
    results[1].notes.append("a note")
    table = format_table(results, peer="node peer")
    lines = table.splitlines()
    assert lines[0].split() == [
        *("scenario", "req/s", "p50", "ms", "p99", "ms", "CPU", "%"),
        *("errors", "x", "direct", "x", "Node"),
    ]
    assert set(lines[1]) == {"-", " "}
    assert lines[2].split() == ["direct", "21000", "1.00", "2.50", "95", "0", "1.000", "15.000"]
    assert lines[3].split() == [
        "rrdev",
        "jwt",
        "2100",
        "1.00",
        "30.00",
        "99",
        "0",
        "0.100",
        "1.500",
    ]
    assert lines[4].split()[:2] == ["rrdev", "workers=2"]
    assert lines[4].endswith("not available (rrdev up has no --workers)")
    assert lines[5].split()[-2:] == ["0.067", "1.000"]
    assert lines[6] == "  rrdev jwt: a note"
    assert len(lines) == 7  # no error breakdown: there were no errors
    # the numbers' columns line up under their headers
    assert len({len(line) for line in (lines[0], lines[1], lines[2], lines[3], lines[5])}) == 1


def test_table_breaks_errors_down() -> None:
    failing = ScenarioResult("rrdev tui", rounds=[Round(WrkResult(90, 900, 200, 1500, 3, 29), 33)])
    lines = format_table([failing]).splitlines()
    assert lines[2].split()[:2] == ["rrdev", "tui"] and lines[2].split()[6] == "32"
    assert lines[3] == (
        "  rrdev tui: errors over all rounds: 3 non-2xx answers, "
        "29 socket errors (connect, read, write, timeout)"
    )


def test_table_without_peers_has_no_peer_column() -> None:
    table = format_table([_result("direct", (1000, 1.0, 50))])
    assert "Node" not in table and table.splitlines()[2].split()[-1] == "1.000"


def test_machine_line() -> None:
    text = format_machine(Machine("AMD EPYC", 2, "3.11.7", (0.5, 0.25, 0.125), (1.0, 2.0, 3.0)))
    assert text == (
        "machine: AMD EPYC, 2 cores, python 3.11.7\n"
        "load average before: 0.50 0.25 0.12, after: 1.00 2.00 3.00"
    )


def test_targets_are_read_against_the_right_scenarios() -> None:
    results = [
        _result("yardstick", (2_000, 30.0, 99)),
        _result("rrdev jwt", (2_100, 50.0, 99)),
        _result("node peer", (1_500, 40.0, 98)),
    ]
    assert format_targets(results).splitlines() == [
        "targets (issue 12):",
        "  rrdev jwt / node peer req/s: 1.40 (target >= 1.5) NOT met",
        "  rrdev jwt / node peer p99: 1.25 (target <= 1) NOT met",
        "  rrdev jwt / yardstick req/s: 1.05 (target >= 0.9) met",
    ]
    assert format_targets([_result("direct", (1000, 1.0, 50))]) == ""


def test_json_has_medians_rounds_and_the_machine() -> None:
    machine = Machine("AMD EPYC", 2, "3.11.7", (0.5, 0.25, 0.125))
    results = [_result("direct", (1000, 2.0, 50), (3000, 4.0, 70))]
    results.append(ScenarioResult("rrdev workers=2", "with --workers 2", skipped="not available"))
    saved = json.loads(json.dumps(as_json(machine, {"rounds": 2}, results, {"micro": {}})))
    assert saved["machine"]["cpu_model"] == "AMD EPYC" and saved["settings"] == {"rounds": 2}
    direct, workers = saved["scenarios"]
    assert direct["median"] == {
        "requests_per_s": 2000,
        "p50_ms": 1.0,
        "p99_ms": 3.0,
        "cpu_percent": 60,
    }
    assert len(direct["rounds"]) == 2 and direct["rounds"][0]["wrk"]["requests"] == 10_000
    assert workers == {
        "name": "rrdev workers=2",
        "description": "with --workers 2",
        "skipped": "not available",
        "notes": [],
    }
    assert saved["micro"] == {}
