"""wrk, the load generator: its command line and what it prints, parsed.

``wrk --latency`` prints the latency distribution (50/75/90/99 %); the parser reads
that, the request rate, the request count and the errors (non-2xx answers, socket
errors), and nothing else, so a wrk that prints more lines still parses.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass

__all__ = ["WrkResult", "parse_duration_ms", "parse_wrk", "run_wrk"]

_UNITS_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0, "h": 3_600_000.0}
_DURATION = re.compile(r"^([\d.]+)(us|ms|s|m|h)$")


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: requests/s, latency percentiles in ms, and what went wrong."""

    requests_per_s: float
    requests: int
    p50_ms: float
    p99_ms: float
    non_2xx: int = 0
    socket_errors: int = 0

    @property
    def errors(self) -> int:
        return self.non_2xx + self.socket_errors


def parse_duration_ms(text: str) -> float:
    """wrk's ``1.23ms`` / ``456.00us`` / ``1.02s`` / ``2.00m`` as milliseconds."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    return float(match.group(1)) * _UNITS_MS[match.group(2)]


def _number(pattern: str, text: str, default: str | None = None) -> str:
    match = re.search(pattern, text, re.MULTILINE)
    if match is None:
        if default is None:
            raise ValueError(f"wrk output has no {pattern!r}:\n{text}")
        return default
    return match.group(1)


def parse_wrk(text: str) -> WrkResult:
    """Parse ``wrk --latency`` output (raises ValueError naming what is missing)."""
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text
    )
    return WrkResult(
        requests_per_s=float(_number(r"^Requests/sec:\s+([\d.]+)", text)),
        requests=int(_number(r"^\s*(\d+) requests in ", text)),
        p50_ms=parse_duration_ms(_number(r"^\s+50(?:\.0+)?%\s+(\S+)", text)),
        p99_ms=parse_duration_ms(_number(r"^\s+99(?:\.0+)?%\s+(\S+)", text)),
        non_2xx=int(_number(r"Non-2xx or 3xx responses:\s+(\d+)", text, "0")),
        socket_errors=sum(int(n) for n in sockets.groups()) if sockets else 0,
    )


def wrk_argv(
    url: str, seconds: float, connections: int, headers: dict[str, str], wrk: str = "wrk"
) -> list[str]:
    argv = [wrk, "-t1", f"-c{connections}", f"-d{max(round(seconds), 1)}s", "--latency"]
    for name, value in headers.items():
        argv += ["-H", f"{name}: {value}"]
    return [*argv, url]


def run_wrk(
    url: str, seconds: float, connections: int, headers: dict[str, str], wrk: str = "wrk"
) -> WrkResult:
    argv = wrk_argv(url, seconds, connections, headers, wrk)
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"wrk exited {done.returncode}: {done.stderr.strip()}")
    return parse_wrk(done.stdout)
