"""Proxy throughput: requests straight to a backend vs through `rrdev up`, same run.

    python bench/bench_proxy.py [--seconds 5] [--concurrency 16] [--rounds 3]
                                [--cprofile out.pstats]

Starts a minimal ASGI backend (uvicorn, one process) and `rrdev up` in front of it (its
own process), then drives each with the same aiohttp client for the same time:

* direct       client -> backend (the baseline)
* proxy/none   client -> rrdev (auth_type none, rules only) -> backend
* proxy/jwt    client -> rrdev (jwtVerify with a cached token, the seed's rules) -> backend

in interleaved rounds (direct, none, jwt, direct, ...) and prints each scenario's median
requests/s, mean latency and the ratio to the baseline. ``--cprofile`` runs the jwt
proxy under cProfile (slower: read it for where the time goes, not for req/s), stops
it with Ctrl+C so the profile is written, and prints the top functions. Everything runs on
loopback; the machine's cores are shared by client, proxy and backend, so compare
ratios, not absolute numbers, between machines.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable

BACKEND = """
import uvicorn

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]})
    await send({"type": "http.response.body", "body": b'{"ok":true}'})

uvicorn.run(app, host="127.0.0.1", port=PORT, log_level="warning", access_log=False)
"""

PROFILE_NONE = """
[proxy_credential]
auth_type = "none"
[target]
base_url = "http://127.0.0.1:BACKEND"
[[proxy.rules]]
id = "read"
effect = "allow"
methods = ["GET"]
path = "^/api/"
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit(f"nothing listening on {port}")


async def drive(url: str, headers: dict[str, str], seconds: float, concurrency: int) -> tuple:
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        done, latencies, errors = 0, 0.0, 0
        deadline = time.perf_counter() + seconds

        async def worker() -> None:
            nonlocal done, latencies, errors
            while time.perf_counter() < deadline:
                start = time.perf_counter()
                async with session.get(url, headers=headers) as response:
                    await response.read()
                    if response.status != 200:
                        errors += 1
                latencies += time.perf_counter() - start
                done += 1

        begin = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - begin
    return done / elapsed, latencies / max(done, 1), errors


def start_proxy(profile: Path, port: int, env: dict[str, str]) -> subprocess.Popen:
    cmd = [PYTHON, "-m", "rrdev", "up", str(profile), "--port", str(port), "--quiet"]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--cprofile", type=Path, default=None)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="rrdev-bench-"))
    env = os.environ | {"RRDEV_HOME": str(work / "home"), "PYTHONPATH": str(ROOT)}
    backend_port, none_port, jwt_port = free_port(), free_port(), free_port()
    procs = [subprocess.Popen([PYTHON, "-c", BACKEND.replace("PORT", str(backend_port))], env=env)]
    none_profile = work / "none.toml"
    none_profile.write_text(PROFILE_NONE.replace("BACKEND", str(backend_port)))
    try:
        wait_for(backend_port)
        procs.append(start_proxy(none_profile, none_port, env))
        profiler = ("-m", "cProfile", "-o", str(args.cprofile)) if args.cprofile else ()
        jwt_cmd = [
            *(PYTHON, *profiler, "-m", "rrdev", "up", str(ROOT / "profiles" / "auth0.toml")),
            *("--port", str(jwt_port), "--offline", "--quiet"),
            *("--target", f"http://127.0.0.1:{backend_port}"),
        ]
        jwt_env = env | {"BACKEND_SERVICE_TOKEN": "bench-service-token"}
        procs.append(subprocess.Popen(jwt_cmd, env=jwt_env, stdout=subprocess.DEVNULL))
        wait_for(none_port)
        wait_for(jwt_port)
        token = subprocess.run(
            [PYTHON, "-m", "rrdev", "token", "mint", "-p", str(ROOT / "profiles" / "auth0.toml")],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        runs = [
            ("direct", backend_port, {}),
            ("proxy/none", none_port, {}),
            ("proxy/jwt", jwt_port, {"Authorization": f"Bearer {token}"}),
        ]
        print(f"{args.seconds:g} s each, concurrency {args.concurrency}, {args.rounds} rounds")
        results: dict[str, list[tuple[float, float, int]]] = {name: [] for name, _p, _h in runs}
        for _name, port, headers in runs:  # warm-up
            url = f"http://127.0.0.1:{port}/api/v1/products"
            asyncio.run(drive(url, headers, 0.5, args.concurrency))
        for _round in range(args.rounds):
            for name, port, headers in runs:
                url = f"http://127.0.0.1:{port}/api/v1/products"
                results[name].append(
                    asyncio.run(drive(url, headers, args.seconds, args.concurrency))
                )
        baseline = statistics.median(r[0] for r in results["direct"])
        for name, rounds in results.items():
            rps = statistics.median(r[0] for r in rounds)
            latency = statistics.median(r[1] for r in rounds)
            errors = sum(r[2] for r in rounds)
            print(
                f"{name:11} {rps:8.0f} req/s  mean {latency * 1000:6.2f} ms  "
                f"errors {errors}  ratio to direct {rps / baseline:4.2f}"
            )
    finally:
        if args.cprofile:  # Ctrl+C: uvicorn shuts down and cProfile writes its file
            procs[-1].send_signal(signal.SIGINT)
            procs[-1].wait(timeout=30)
        for proc in procs:
            proc.terminate()
        for proc in procs:
            proc.wait(timeout=10)
    if args.cprofile:
        import pstats

        pstats.Stats(str(args.cprofile)).sort_stats("tottime").print_stats(25)


if __name__ == "__main__":
    main()
