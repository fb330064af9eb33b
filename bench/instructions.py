"""Instructions per request under valgrind's callgrind, and where the time goes.

    python bench/instructions.py [--requests 400] [--warmup 200] [--only yardstick,none,jwt]
    python bench/instructions.py --profile [--requests 20000] [--only none,jwt]

Timings on a shared machine are noise; instruction counts are not. For each scenario
(the same servers as ``python -m bench load``: ``bench/yardstick.py``, ``rrdev up
--quiet`` with ``auth_type = "none"``, ``rrdev up --quiet`` with the seed profile) the
server runs under ``valgrind --tool=callgrind``; a tight client sends ``--warmup``
keep-alive requests on one connection, the counters are zeroed (``callgrind_control
-z``), ``--requests`` more are sent, and the counters dumped: their total divided by
the requests is the server's instructions per request, steady whatever else runs.

``--profile`` runs the server in this process under cProfile instead (no valgrind; the
client is a second process) and prints each function group's share of the server's
time (own time, grouped by module: rrdev's layers, uvicorn, aiohttp, yarl/multidict,
asyncio/uvloop, PyJWT, the rest), with the top functions: what a cut would have to hit.
The shares times the instruction count give a per-group estimate in instructions.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pstats
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.procs import Server, free_port
from bench.world import (
    BACKEND_TOKEN,
    PATH,
    PROFILE_NONE,
    SEED_PROFILE,
    World,
    make_world,
    start_backend,
)

ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ("yardstick", "none", "jwt")


# ------------------------------------------------------------------ servers


def server_argv(name: str, world: World, port: int) -> list[str]:
    """The command line of one scenario's server (as ``bench/scenarios.py`` runs it)."""
    if name == "yardstick":
        return [
            *(sys.executable, str(ROOT / "bench" / "yardstick.py"), "--port", str(port)),
            *("--upstream", world.backend_url, "--jwks", str(world.jwks_file)),
            *("--issuer", world.issuer, "--audience", world.audience),
            *("--backend-token", BACKEND_TOKEN),
        ]
    if name == "none":
        profile = world.work / "none.toml"
        profile.write_text(PROFILE_NONE.format(port=world.backend_port))
        return world.rrdev("up", str(profile), "--port", str(port), "--quiet")
    return world.rrdev(
        *("up", str(SEED_PROFILE), "--port", str(port), "--target", world.backend_url),
        *("--jwks", str(world.jwks_file), "--quiet"),
    )


# ------------------------------------------------------------------ the client


def request_bytes(world: World, port: int, jwt: bool) -> bytes:
    """What wrk sends: a GET with Host and (where a JWT is checked) the token."""
    lines = [f"GET {PATH} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    if jwt:
        lines.append(f"Authorization: Bearer {world.token}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def send_requests(port: int, request: bytes, count: int) -> None:
    """``count`` requests one after another on one keep-alive connection; each must be
    answered 200 (the response read whole by its Content-Length)."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        pending = b""
        for _ in range(count):
            sock.sendall(request)
            pending = _read_response(sock, pending)


_LENGTH = re.compile(rb"\r\ncontent-length: *(\d+)", re.IGNORECASE)


def _read_response(sock: socket.socket, pending: bytes) -> bytes:
    while b"\r\n\r\n" not in pending:
        pending += _recv(sock)
    head, _, rest = pending.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"expected 200, got {head[:200]!r}")
    match = _LENGTH.search(head)
    if match is None:
        raise RuntimeError(f"no content-length in {head[:400]!r}")
    length = int(match.group(1))
    while len(rest) < length:
        rest += _recv(sock)
    return rest[length:]


def _recv(sock: socket.socket) -> bytes:
    chunk = sock.recv(65536)
    if not chunk:
        raise RuntimeError("the server closed the connection")
    return chunk


# ------------------------------------------------------------------ callgrind


def count_instructions(name: str, world: World, requests: int, warmup: int, out: Path) -> float:
    """The server's instructions per request (callgrind, steady state)."""
    port = free_port()
    dump = out / f"callgrind.{name}.%p"
    argv = [
        *("valgrind", "--tool=callgrind", f"--callgrind-out-file={dump}"),
        *server_argv(name, world, port),
    ]
    server = Server.start(name, argv, port, out / f"{name}.log", world.env())
    try:
        server.wait_ready(timeout=300)
        request = request_bytes(world, port, jwt=name != "none")
        send_requests(port, request, warmup)
        _control("-z", server.proc.pid)
        send_requests(port, request, requests)
        _control("-d", server.proc.pid)
        time.sleep(1)
    finally:
        server.stop()
    total = 0
    for path in out.glob(f"callgrind.{name}.*"):
        text = path.read_text(errors="replace")
        match = re.search(r"^summary: (\d+)", text, re.MULTILINE)
        if match and "Trigger: dump" in text:  # the -d dump, not the exit one
            total = int(match.group(1))
    return total / requests


def _control(flag: str, pid: int) -> None:
    subprocess.run(["callgrind_control", flag, str(pid)], check=True, capture_output=True)


# ------------------------------------------------------------------ cProfile


#: Functions whose own time is mostly the write system call (not instructions).
_WRITES = {("aiohttp/http_writer.py", "_write"), ("servers/runner.py", "write")}

GROUPS: tuple[tuple[str, Callable[[str], bool]], ...] = (
    ("rrdev servers/proxy", lambda f: "rrdev/servers/proxy" in f),
    ("rrdev servers (runner)", lambda f: "rrdev/servers/" in f),
    ("rrdev core", lambda f: "rrdev/core" in f),
    ("rrdev other", lambda f: "/rrdev/" in f),
    ("uvicorn", lambda f: "uvicorn" in f),
    ("aiohttp", lambda f: "aiohttp" in f),
    ("yarl/multidict", lambda f: "yarl" in f or "multidict" in f),
    ("asyncio/uvloop", lambda f: "asyncio" in f or "uvloop" in f),
    ("jwt/cryptography", lambda f: "/jwt/" in f or "cryptography" in f),
    ("builtins (C)", lambda f: f == "~"),
)


def group_of(filename: str, func: str = "") -> str:
    if (_short(filename), func) in _WRITES:
        return "socket writes (syscalls)"
    return next((name for name, test in GROUPS if test(filename)), "other")


def profile_server(name: str, world: World, requests: int, warmup: int, top: int) -> None:
    """Serve ``name`` in a child under cProfile; print time per function group."""
    port = free_port()
    stats_file = Path(tempfile.mkdtemp(prefix="rrdev-prof-")) / f"{name}.pstats"
    code = (
        "import cProfile, sys, signal;"
        f"sys.argv = {server_argv(name, world, port)[1:]!r};"
        "prof = cProfile.Profile();"
        "signal.signal(signal.SIGUSR1, lambda *a: prof.enable());"
        "signal.signal(signal.SIGUSR2, lambda *a: "
        f"(prof.disable(), prof.dump_stats({str(stats_file)!r})));"
        "import runpy;"
        + (
            f"runpy.run_path({str(ROOT / 'bench' / 'yardstick.py')!r}, run_name='__main__')"
            if name == "yardstick"
            else "sys.argv[0:2] = ['rrdev'];from rrdev.cli.app import main; main()"
        )
    )
    argv = [sys.executable, "-c", code]
    server = Server.start(name, argv, port, stats_file.with_suffix(".log"), world.env())
    try:
        server.wait_ready(timeout=60)
        request = request_bytes(world, port, jwt=name != "none")
        send_requests(port, request, warmup)
        os.kill(server.proc.pid, 10)  # SIGUSR1
        time.sleep(0.2)
        send_requests(port, request, requests)
        os.kill(server.proc.pid, 12)  # SIGUSR2
        for _ in range(100):
            if stats_file.exists():
                break
            time.sleep(0.1)
        time.sleep(0.5)
    finally:
        server.stop()
    _print_groups(name, pstats.Stats(str(stats_file)), requests, top)


def _print_groups(name: str, stats: pstats.Stats, requests: int, top: int) -> None:
    groups: dict[str, float] = {}
    rows = []
    raw = stats.stats  # type: ignore[attr-defined]
    total = sum(entry[2] for entry in raw.values()) or 1.0
    for (filename, line, func), (_cc, _nc, tottime, _ct, _callers) in raw.items():
        group = group_of(filename, func)
        groups[group] = groups.get(group, 0.0) + tottime
        rows.append((tottime, group, f"{_short(filename)}:{line}({func})"))
    print(f"\n== {name}: {requests} requests, {total / requests * 1e6:.1f} us/request profiled")
    for group, seconds in sorted(groups.items(), key=lambda kv: -kv[1]):
        print(f"  {group:26} {seconds / total:6.1%}  {seconds / requests * 1e6:7.1f} us")
    print("  top functions (own time):")
    for tottime, group, where in sorted(rows, reverse=True)[:top]:
        print(f"    {tottime / total:6.1%}  {group:22} {where}")


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/rrdev/", "lib/python3"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


# ------------------------------------------------------------------ main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=200)
    parser.add_argument("--only", default=",".join(SCENARIOS))
    parser.add_argument("--profile", action="store_true", help="cProfile groups, no valgrind")
    parser.add_argument("--top", type=int, default=25)
    args = parser.parse_args()
    names = [n.strip() for n in args.only.split(",") if n.strip()]
    if not args.profile and shutil.which("valgrind") is None:
        sys.exit("valgrind is missing: apt-get install -y valgrind")
    world = make_world()
    backend = start_backend(world)
    out = Path(tempfile.mkdtemp(prefix="rrdev-callgrind-"))
    try:
        with contextlib.suppress(KeyboardInterrupt):
            for name in names:
                if args.profile:
                    profile_server(name, world, args.requests or 20_000, args.warmup, args.top)
                else:
                    per = count_instructions(name, world, args.requests or 400, args.warmup, out)
                    print(f"{name:10} {per / 1000:8.1f}k instructions/request", flush=True)
    finally:
        backend.stop()
    print(f"(callgrind files and logs in {out}; load {os.getloadavg()})")


if __name__ == "__main__":
    main()
