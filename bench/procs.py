"""Processes for the benchmark: free ports, starting servers and waiting for them, the
CPU time and memory of a process tree (from /proc, no psutil), and the machine."""

from __future__ import annotations

import contextlib
import os
import platform
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "Machine",
    "Server",
    "cpu_seconds",
    "free_port",
    "machine",
    "rss_kib",
    "tree_pids",
    "wait_for_port",
]

_TICKS = os.sysconf("SC_CLK_TCK")


def free_port() -> int:
    """A port free on 127.0.0.1 right now (the kernel picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, proc: subprocess.Popen | None = None, timeout: float = 30) -> None:
    """Return once something accepts on 127.0.0.1:port; fail early if ``proc`` died."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"exited {proc.returncode} before listening on {port}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listening on 127.0.0.1:{port} after {timeout:g} s")


@dataclass
class Server:
    """A server process this harness started (its own process group) and its output."""

    name: str
    proc: subprocess.Popen
    port: int
    log: Path

    @classmethod
    def start(
        cls, name: str, argv: list[str], port: int, log: Path, env: dict[str, str] | None = None
    ) -> Server:
        with log.open("wb") as out:
            proc = subprocess.Popen(
                argv, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
            )
        return cls(name, proc, port, log)

    @property
    def pid(self) -> int:
        """The root of the process tree whose CPU and memory count as the server's."""
        return self.proc.pid

    def wait_ready(self, timeout: float = 60) -> None:
        try:
            wait_for_port(self.port, self.proc, timeout)
        except RuntimeError as exc:
            raise RuntimeError(f"{self.name}: {exc}\n{self.tail()}") from None

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def stop(self) -> None:
        """SIGTERM to the whole group (uvicorn's workers, nginx's worker), then SIGKILL."""
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)


def _stat_fields(pid: int) -> list[str] | None:
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after its ')'.
    return text[text.rindex(")") + 2 :].split()


def tree_pids(root: int) -> list[int]:
    """``root`` and every descendant alive now (uvicorn's workers, nginx's worker)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (fields := _stat_fields(int(entry))):
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, ()))
    return found


def cpu_seconds(pids: list[int]) -> float:
    """User + system CPU seconds these processes have used so far."""
    total = 0
    for pid in pids:
        if fields := _stat_fields(pid):
            total += int(fields[11]) + int(fields[12])  # utime, stime
    return total / _TICKS


def rss_kib(pids: list[int]) -> int:
    """Resident memory of these processes, KiB (VmRSS summed)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
    return total


@dataclass(frozen=True)
class Machine:
    """Where the numbers were measured: they mean nothing without it."""

    cpu_model: str
    cores: int
    python: str
    load_before: tuple[float, float, float]
    load_after: tuple[float, float, float] | None = None


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def machine() -> Machine:
    return Machine(
        _cpu_model(), len(os.sched_getaffinity(0)), platform.python_version(), os.getloadavg()
    )
