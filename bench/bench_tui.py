"""The TUI under load: UI input latency while wrk runs through the TUI's proxy, and
the proxy's throughput with the TUI attached vs `rrdev up --quiet`, in one run.

    python bench/bench_tui.py [--seconds 10] [--connections 32] [--rounds 2]
                              [--profile profiles/auth0.toml]

A backend answers a small JSON (nginx when installed, else a one-process uvicorn app).
Each round runs, interleaved, (1) `rrdev up --quiet` in its own process, (2) the
in-process proxy thread alone, with no UI (``measure_thread``: the old runtime, for
comparison) and (3) the TUI in this process with no terminal (Textual's
``App.run_test()``, the real ``RrdevApp``) with its proxy in a child process
(``profile_process``, as ``rrdev tui``), all with the profile given (``--offline``:
the local keyset; ``--target``: the backend), each under ``wrk -t1 -cN -dS`` with the
same valid RS256 token (an aiohttp load generator on its own thread when wrk is absent).

While wrk runs through the TUI, keys go in the way a terminal's do (a ``Key`` event
to the app's driver, not the pilot's ``press``, which waits for the whole process to
go idle and never does under load): ``?``, Esc, up, up, down, End, one every ~100 ms.
Each sample lasts until the first frame painted in which the key has taken effect
(the help on top or gone, the cursor moved): the app paints as for a terminal (every
frame turned into escape sequences, then dropped: ``painting_driver``), so drawing is
in the sample, not only handling. Every key in the cycle has an effect, or a sample
would time a key that changes nothing until the next batch moves the view (an ``up``
at the top of a full list did, before End was in the cycle). ``loop lag`` is how late
a 10 ms timer on the UI loop fires.

Targets (issue 12): UI input latency p95 <= 50 ms; TUI throughput >= 0.8x `rrdev up`.
``measure_tui``, ``measure_thread`` and ``measure_up`` are importable (``python -m
bench`` uses them).
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PATH = "/api/v1/products"
BODY = '{"id":1,"name":"widget","price":9.99,"tags":["a","b"],"stock":42,"ok":true}'
WRK = shutil.which("wrk") or "/usr/bin/wrk"

NGINX_CONF = """daemon off; worker_processes 1; pid {work}/nginx.pid;
error_log {work}/nginx-error.log;
events {{ worker_connections 1024; }}
http {{ access_log off; client_body_temp_path {work}; proxy_temp_path {work};
  fastcgi_temp_path {work}; uwsgi_temp_path {work}; scgi_temp_path {work};
  server {{ listen 127.0.0.1:{port}; keepalive_requests 1000000;
    location / {{ default_type application/json; return 200 '{body}'; }} }} }}
"""
UVICORN_BACKEND = """
import uvicorn
BODY = {body!r}.encode()
async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({{"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json")]}})
    await send({{"type": "http.response.body", "body": BODY}})
uvicorn.run(app, host="127.0.0.1", port={port}, log_level="warning", access_log=False)
"""


# ------------------------------------------------------------------ load


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
            continue
        writer.close()
        return
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


def _wrk_ms(value: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(us|ms|s)", value).groups()  # type: ignore[union-attr]
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


async def run_load(url: str, token: str, seconds: float, connections: int) -> dict[str, Any]:
    """wrk (or the aiohttp fallback) against ``url``; never blocks the running loop."""
    if not Path(WRK).exists():
        return await asyncio.to_thread(_aiohttp_load, url, token, seconds, connections)
    proc = await asyncio.create_subprocess_exec(
        *(WRK, "-t1", f"-c{connections}", f"-d{seconds:g}s", "--latency"),
        *("-H", f"Authorization: Bearer {token}", url),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    out = (await proc.communicate())[0].decode()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    if rps is None or p99 is None or p50 is None:
        raise RuntimeError(f"wrk said:\n{out}")
    return {
        "rps": float(rps.group(1)),
        "p50_ms": _wrk_ms(p50.group(1)),
        "p99_ms": _wrk_ms(p99.group(1)),
        "errors": int(non_2xx.group(1)) if non_2xx else 0,
        "tool": "wrk",
    }


def _aiohttp_load(url: str, token: str, seconds: float, connections: int) -> dict[str, Any]:
    """A load generator on its own loop (this thread's), for machines without wrk."""
    import aiohttp

    async def main() -> dict[str, Any]:
        latencies: list[float] = []
        errors = 0
        deadline = time.perf_counter() + seconds
        headers = {"Authorization": f"Bearer {token}"}
        connector = aiohttp.TCPConnector(limit=connections)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def worker() -> None:
                nonlocal errors
                while time.perf_counter() < deadline:
                    start = time.perf_counter()
                    async with session.get(url, headers=headers) as response:
                        await response.read()
                        errors += response.status != 200
                    latencies.append(time.perf_counter() - start)

            begin = time.perf_counter()
            await asyncio.gather(*(worker() for _ in range(connections)))
            elapsed = time.perf_counter() - begin
        return {
            "rps": len(latencies) / elapsed,
            "p50_ms": percentile(latencies, 50) * 1000,
            "p99_ms": percentile(latencies, 99) * 1000,
            "errors": errors,
            "tool": "aiohttp",
        }

    return asyncio.run(main())


def process_cpu(pid: int) -> float:
    """CPU seconds (user + system) process ``pid`` has used so far (Linux ``/proc``)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def summary_ms(samples: list[float]) -> dict[str, float]:
    """p50/p95/max of samples in seconds, as milliseconds."""
    return {
        "n": len(samples),
        "p50": percentile(samples, 50) * 1000,
        "p95": percentile(samples, 95) * 1000,
        "max": max(samples, default=float("nan")) * 1000,
    }


# ------------------------------------------------------------------ the UI side


def painting_driver() -> type:
    """A driver with no terminal behind it that still paints: the app turns every
    frame into the bytes a terminal would get (``is_headless`` False; Textual's own
    headless driver skips that work), and the bytes are dropped."""
    from textual.drivers.headless_driver import HeadlessDriver

    class PaintingDriver(HeadlessDriver):
        @property
        def is_headless(self) -> bool:
            return False

    return PaintingDriver


class FrameWatch:
    """Notes when the app first paints a frame in which a condition holds: wraps
    ``app._display``, which renders and writes each frame in one go."""

    def __init__(self, app: Any) -> None:
        self.condition: Any = None
        self.shown = 0.0
        display = app._display

        def watched(screen: Any, renderable: Any) -> None:
            display(screen, renderable)
            if renderable is not None and self.condition is not None and self.condition():
                self.condition = None
                self.shown = time.perf_counter()

        app._display = watched

    async def until_shown(self, condition: Any, send: Any, timeout: float = 5.0) -> float:
        """Seconds from ``send()`` until a painted frame shows ``condition``."""
        self.condition = condition
        start = time.perf_counter()
        send()
        while self.condition is not None and time.perf_counter() - start < timeout:
            await asyncio.sleep(0.001)
        if self.condition is not None:
            self.condition = None
            return timeout
        return self.shown - start


async def _probe_keys(app: Any, stop: asyncio.Event, samples: list[float]) -> None:
    """Keys as a terminal sends them, one every ~100 ms: ``?``, Esc, up, up, down,
    End. Each sample is from the key's arrival until the first frame painted in
    which the key has taken effect (the help on top or gone, the cursor moved):
    what the user waits for. Every key in the cycle has an effect (End follows the
    tail again, so the next ``up`` has a row to move to)."""
    from textual import events

    from rrdev.tui.widgets.help import HelpScreen

    table = app.table

    def chosen() -> int:
        picked = table.chosen()
        return picked[0] if picked else -1

    def on_help() -> bool:
        return isinstance(app.screen, HelpScreen)

    steps = [
        ("question_mark", "?", lambda before: on_help()),
        ("escape", None, lambda before: not on_help()),
        ("up", None, lambda before: chosen() != before and not table.follow),
        ("up", None, lambda before: chosen() != before),
        ("down", None, lambda before: chosen() != before),
        ("end", None, lambda before: table.follow and chosen() != before),
    ]
    frames = FrameWatch(app)
    index = 0
    while not stop.is_set():
        key, char, done = steps[index % len(steps)]
        index += 1
        if char is None and key != "escape" and table.row_count < 3:
            continue  # nothing would move
        shown = functools.partial(done, chosen())
        press = functools.partial(app._driver.send_message, events.Key(key, char))
        samples.append(await frames.until_shown(shown, press))
        await asyncio.sleep(0.1)
    if on_help():
        app._driver.send_message(events.Key("escape", None))


async def _loop_lag(stop: asyncio.Event, lags: list[float]) -> None:
    while not stop.is_set():
        start = time.perf_counter()
        await asyncio.sleep(0.01)
        lags.append(max(0.0, time.perf_counter() - start - 0.01))


async def measure_tui(
    profile_path: str | Path,
    seconds: float = 10.0,
    connections: int = 32,
    *,
    token: str,
    target: str | None = None,
    offline: bool = True,
    flush_interval: float = 0.1,
    press_keys: bool = True,
) -> dict[str, Any]:
    """Run the TUI (no terminal, but painting: ``painting_driver``) on
    ``profile_path`` (port 0), load its proxy for ``seconds`` with ``connections``
    connections, press keys meanwhile.

    Returns ``ui_latency_ms`` and ``loop_lag_ms`` (``n``, ``p50``, ``p95``, ``max``),
    the load's ``rps``/``p50_ms``/``p99_ms``/``errors``, what the UI took in
    (``records``, ``batches``), ``ui_cpu_share`` (the UI process's CPU time over the
    load's wall time; the proxy runs in a child, ``rrdev.tui.proxy_process``) and
    ``proxy_cpu_share`` (the child's). The environment must be ready for the profile
    (``RRDEV_HOME`` for ``offline``, its ``${VARS}``)."""
    from rrdev.servers.proxy import Overrides
    from rrdev.tui import settle_heap
    from rrdev.tui.app import RrdevApp
    from rrdev.tui.proxy_process import profile_process

    runtime = profile_process(
        profile_path, port=0, overrides=Overrides(target=target, offline=offline)
    )
    app = RrdevApp(runtime, flush_interval=flush_interval)
    app.driver_class = painting_driver()
    keys: list[float] = []
    lags: list[float] = []
    async with app.run_test(headless=False, size=(140, 40)) as pilot:
        while app.info is None:
            await pilot.pause(0.05)
        assert runtime.process is not None
        pid = runtime.process.pid
        await pilot.pause(0.5)
        settle_heap()  # as run_tui does once the screen is up
        stop = asyncio.Event()
        probes = [asyncio.create_task(_loop_lag(stop, lags))]
        if press_keys:
            probes.append(asyncio.create_task(_probe_keys(app, stop, keys)))
        cpu0, child0, wall0 = time.process_time(), process_cpu(pid), time.perf_counter()
        try:
            load = await run_load(app.info.proxy_url + PATH, token, seconds, connections)
            wall = time.perf_counter() - wall0
            load["ui_cpu_share"] = (time.process_time() - cpu0) / wall
            load["proxy_cpu_share"] = (process_cpu(pid) - child0) / wall
        finally:
            stop.set()
            await asyncio.gather(*probes)
        await pilot.pause(0.3)  # the last batch
        taken = {"records": app.store.total, "batches": app.batches}
    return {
        **load,
        **taken,
        "ui_latency_ms": summary_ms(keys),
        "loop_lag_ms": summary_ms(lags),
    }


async def measure_thread(
    profile_path: str | Path,
    seconds: float = 10.0,
    connections: int = 32,
    *,
    token: str,
    target: str | None = None,
    offline: bool = True,
) -> dict[str, Any]:
    """The same load through the TUI's proxy thread with no UI at all (a sink that
    only keeps the records): the ceiling of what the TUI can reach, so the report can
    tell the UI's cost from the thread's (records with exchanges, one shared GIL)."""
    from rrdev.servers.proxy import Overrides
    from rrdev.tui.runtime import ProfileRuntime

    runtime = ProfileRuntime.from_path(
        profile_path, port=0, overrides=Overrides(target=target, offline=offline)
    )
    kept: list[Any] = []
    info = await runtime.start(kept.append, lambda kind, message: None)
    try:
        return await run_load(info.proxy_url + PATH, token, seconds, connections)
    finally:
        await runtime.stop()


async def measure_up(
    profile_path: str | Path,
    seconds: float = 10.0,
    connections: int = 32,
    *,
    token: str,
    target: str | None = None,
    offline: bool = True,
    env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """The same load against `rrdev up --quiet` (its own process)."""
    port = free_port()
    argv = [PYTHON, "-m", "rrdev", "up", str(profile_path), "--port", str(port), "--quiet"]
    argv += ["--offline"] if offline else []
    argv += ["--target", target] if target else []
    proc = await asyncio.create_subprocess_exec(
        *argv, env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL
    )
    try:
        await wait_for_port(port)
        return await run_load(f"http://127.0.0.1:{port}{PATH}", token, seconds, connections)
    finally:
        proc.terminate()
        await proc.wait()


# ------------------------------------------------------------------ main


def start_backend(work: Path, port: int) -> subprocess.Popen[bytes]:
    nginx = shutil.which("nginx") or (
        "/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else None
    )
    if nginx:
        conf = work / "nginx.conf"
        conf.write_text(NGINX_CONF.format(work=work, port=port, body=BODY))
        return subprocess.Popen([nginx, "-p", str(work), "-c", str(conf)])
    code = UVICORN_BACKEND.format(body=BODY, port=port)
    return subprocess.Popen([PYTHON, "-c", code])


def mint(profile: Path, env: dict[str, str]) -> str:
    argv = [PYTHON, "-m", "rrdev", "token", "mint", "-p", str(profile)]
    return subprocess.run(argv, env=env, capture_output=True, text=True, check=True).stdout.strip()


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()
    except OSError:
        return "load average: {:.2f}, {:.2f}, {:.2f}".format(*os.getloadavg())


async def run(args: argparse.Namespace) -> None:
    work = Path(tempfile.mkdtemp(prefix="rrdev-bench-tui-"))
    os.environ["RRDEV_HOME"] = str(work / "home")
    os.environ.setdefault("BACKEND_SERVICE_TOKEN", "bench-service-token")
    env = os.environ | {
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    }
    port = free_port()
    backend = start_backend(work, port)
    target = f"http://127.0.0.1:{port}"
    try:
        await wait_for_port(port)
        token = mint(args.profile, env)
        common = {"token": token, "target": target}
        tool = "wrk" if Path(WRK).exists() else "aiohttp (wrk not found)"
        print(f"{tool} -t1 -c{args.connections} -d{args.seconds:g}s, {args.rounds} rounds")
        print(f"before: {uptime()}")
        await measure_up(args.profile, 1, args.connections, env=env, **common)  # warm-up
        results: dict[str, list[dict[str, Any]]] = {"up": [], "thread": [], "tui": []}
        load = (args.profile, args.seconds, args.connections)
        for round_ in range(args.rounds):
            order = ("up", "thread", "tui") if round_ % 2 == 0 else ("tui", "thread", "up")
            for which in order:
                if which == "up":
                    result = await measure_up(*load, env=env, **common)
                elif which == "thread":
                    result = await measure_thread(*load, **common)
                else:
                    result = await measure_tui(*load, **common)
                results[which].append(result)
                print(f"  round {round_ + 1} {which:6}: " + _line(result))
        print(f"after:  {uptime()}")
        report(results["up"], results["tui"], results["thread"])
    finally:
        backend.terminate()
        backend.wait(timeout=10)
        shutil.rmtree(work, ignore_errors=True)


def _line(result: dict[str, Any]) -> str:
    line = f"{result['rps']:7.0f} req/s  p50 {result['p50_ms']:6.1f} ms"
    line += f"  p99 {result['p99_ms']:6.1f} ms"
    line += f"  non-2xx {result['errors']}"
    if "ui_latency_ms" in result:
        ui, lag = result["ui_latency_ms"], result["loop_lag_ms"]
        line += (
            f"  | keys n={ui['n']} p50 {ui['p50']:.1f} p95 {ui['p95']:.1f} max {ui['max']:.1f} ms"
            f"  loop lag p95 {lag['p95']:.1f} max {lag['max']:.1f} ms"
            f"  records {result['records']} in {result['batches']} batches"
            f"  UI CPU {result['ui_cpu_share']:.0%}  proxy CPU {result['proxy_cpu_share']:.0%}"
        )
    return line


def report(
    ups: list[dict[str, Any]], tuis: list[dict[str, Any]], threads: list[dict[str, Any]]
) -> None:
    up_rps = statistics.median(r["rps"] for r in ups)
    tui_rps = statistics.median(r["rps"] for r in tuis)
    thread_rps = statistics.median(r["rps"] for r in threads)
    keys = [k for r in tuis for k in [r["ui_latency_ms"]]]
    p95 = statistics.median(k["p95"] for k in keys)
    worst = max(k["max"] for k in keys)
    ratio = tui_rps / up_rps
    print(f"rrdev up --quiet : {up_rps:7.0f} req/s (median)")
    print(
        f"proxy thread only: {thread_rps:7.0f} req/s (median)  ratio {thread_rps / up_rps:.2f}"
        "  (the old in-process proxy thread, no UI: for comparison)"
    )
    print(f"rrdev tui        : {tui_rps:7.0f} req/s (median)  ratio {ratio:.2f}  (target >= 0.80)")
    print(
        f"UI input latency : p95 {p95:.1f} ms (median of rounds), max {worst:.1f} ms"
        "  (target p95 <= 50)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--profile", type=Path, default=ROOT / "profiles" / "auth0.toml")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    asyncio.run(run(args))


if __name__ == "__main__":
    main()
