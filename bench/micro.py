"""The micro-benchmarks of `python -m bench`: the engine per call (bench_engine.py), cold
start against the dependency-import baseline (bench_cold_start.py), the TUI ingesting
10,000 records (Textual's headless pilot), and the memory of `rrdev up` idle and after
100,000 requests. Each is reused from, or shaped like, the single-purpose scripts."""

from __future__ import annotations

import asyncio
import shutil
import statistics
import tempfile
import time

from bench.procs import free_port, rss_kib, tree_pids
from bench.sanity import auth_headers
from bench.scenarios import SCENARIOS
from bench.world import PATH, make_world, start_backend
from bench.wrk import run_wrk

__all__ = ["format_micro", "run_micro"]


def _say(message: str) -> None:
    print(f"[micro] {message}", flush=True)


_PAIR_LABELS = {
    "verify": "verify, cold (full check; JWKS cached)",
    "rules": "rules of the seed, full trace (DELETE)",
    "decide": "decide, cold token (DELETE, denied)",
}


def engine(seconds: float) -> dict:
    """name -> {"us": rrdev's µs per call, "baseline_us": bare PyJWT/re's, or None}."""
    from bench import bench_engine

    results = bench_engine.measure(seconds)
    rows = {
        _PAIR_LABELS[name]: {"us": ours, "baseline_us": base}
        for name, (ours, base) in results["pairs"].items()
    }
    rows["verify, cached (verified-token cache hit)"] = {"us": results["verify_cached"]}
    for count, label, per, outcome in results["decides"]:
        rows[f"decide, cached token, {count} rules, {label}: {outcome}"] = {"us": per}
    return {
        name: {key: round(value * 1e6, 1) for key, value in row.items()}
        for name, row in rows.items()
    }


def cold_start(rounds: int) -> dict:
    from bench import bench_cold_start

    with tempfile.TemporaryDirectory(prefix="rrdev-cold-") as home:
        times = bench_cold_start.measure(rounds, bench_cold_start.environment(home))
    medians = {name: statistics.median(values) * 1000 for name, values in times.items()}
    base = medians["baseline"]
    return {
        "median_ms": {name: round(ms, 1) for name, ms in medians.items()},
        "explain_x_baseline": round(medians["explain"] / base, 2),
        "help_x_baseline": round(medians["help"] / base, 2),
        "rounds": rounds,
    }


def tui_ingestion(count: int = 10_000) -> dict:
    """Seconds from the first record handed to the TUI until every one is in its store
    and its table has nothing left to add (Textual headless, 140x40)."""
    return asyncio.run(_ingest(count))


class _Idle:
    """A runtime that serves nothing: the benchmark hands the records in itself."""

    demo = False

    async def start(self, sink, on_event):
        from rrdev.tui.runtime import RuntimeInfo

        return RuntimeInfo("bench", "bench.toml", "http://127.0.0.1:0", "-", None, "none")

    async def stop(self) -> None:
        return None

    def info(self):
        return None

    def jwks_status(self):
        return None

    def demo_requests(self) -> list:
        return []


def _synthetic(i: int):
    from rrdev.core.records import Explanation, RequestRecord

    status = (200, 401, 403, 502)[i % 4]
    reason = ("allowed", "token_expired", "rule_denied", "upstream_unreachable")[i % 4]
    return RequestRecord(
        time=1_700_000_000 + i / 1000,
        method="GET",
        path=f"/api/v1/items/{i}",
        query=(),
        status=status,
        reason=reason,
        deciding_rule="rule-x" if status == 403 else None,
        explanation=Explanation(status, reason, "synthetic"),
        total_ms=1.0,
    )


async def _ingest(count: int) -> dict:
    from rrdev.tui.app import RrdevApp

    app = RrdevApp(_Idle(), max_records=count)  # type: ignore[arg-type]
    records = [_synthetic(i) for i in range(count)]
    async with app.run_test(size=(140, 40)) as pilot:
        while app.info is None:
            await pilot.pause(0.05)
        start = time.perf_counter()
        for i, record in enumerate(records):
            app.record_sink(record)
            if i % 500 == 0:
                await asyncio.sleep(0)  # the proxy yields between requests too
        while app.store.total < count or getattr(app.table, "pending", 0):
            await pilot.pause(0.01)
        elapsed = time.perf_counter() - start
        rows = app.table.row_count
    return {"records": count, "seconds": round(elapsed, 3), "table_rows": rows}


def rss(requests: int, connections: int = 32) -> dict:
    """RSS of `rrdev up` (jwtVerify + the seed's rules) idle, then after ``requests``."""
    world = make_world()
    scenario = next(s for s in SCENARIOS if s.name == "rrdev jwt")
    backend = start_backend(world)
    assert scenario.start is not None
    server = scenario.start(world, free_port())
    try:
        server.wait_ready()
        time.sleep(1)
        idle = rss_kib(tree_pids(server.pid))
        url, headers, served = (
            f"http://127.0.0.1:{server.port}{PATH}",
            auth_headers(scenario, world),
            0,
        )
        while served < requests:
            served += run_wrk(url, 10, connections, headers).requests
            _say(f"rss: {served:,} of {requests:,} requests")
        time.sleep(1)
        after = rss_kib(tree_pids(server.pid))
    finally:
        server.stop()
        backend.stop()
        shutil.rmtree(world.work, ignore_errors=True)
    return {
        "idle_mib": round(idle / 1024, 1),
        "after_mib": round(after / 1024, 1),
        "requests": served,
    }


def run_micro(quick: bool = False) -> dict:
    _say("engine (bench_engine.py)")
    results = {"engine_us": engine(0.3 if quick else 1.0)}
    _say("cold start (bench_cold_start.py)")
    results["cold_start"] = cold_start(3 if quick else 15)
    _say("TUI ingestion of 10,000 records")
    results["tui_ingestion"] = tui_ingestion()
    _say("RSS of rrdev up")
    results["rss"] = rss(10_000 if quick else 100_000)
    return {"micro": results}


def format_micro(micro: dict) -> str:
    """The micro-benchmarks as plain lines under the table."""
    results = micro["micro"]
    lines = ["\nmicro-benchmarks (µs per call, one process; medians where repeated)"]
    width = max(len(name) for name in results["engine_us"])
    for name, row in results["engine_us"].items():
        line = f"  {name:<{width}}  {row['us']:8.1f} µs"
        if "baseline_us" in row:
            ratio = row["us"] / row["baseline_us"]
            line += f"   bare PyJWT/re {row['baseline_us']:7.1f} µs ({ratio:.2f}x)"
        lines.append(line)
    cold = results["cold_start"]
    ms = cold["median_ms"]
    lines.append(
        f"  cold start, median of {cold['rounds']}: baseline {ms['baseline']:.0f} ms, "
        f"explain {ms['explain']:.0f} ms ({cold['explain_x_baseline']:.2f}x, target <= 1.3), "
        f"--help {ms['help']:.0f} ms ({cold['help_x_baseline']:.2f}x), "
        f"python -c pass {ms['python']:.0f} ms"
    )
    tui = results["tui_ingestion"]
    lines.append(
        f"  TUI ingestion: {tui['records']:,} records in {tui['seconds']:.2f} s "
        f"({tui['table_rows']:,} table rows)"
    )
    mem = results["rss"]
    lines.append(
        f"  rrdev up RSS: {mem['idle_mib']:.1f} MiB idle, {mem['after_mib']:.1f} MiB "
        f"after {mem['requests']:,} requests"
    )
    return "\n".join(lines) + "\n"
