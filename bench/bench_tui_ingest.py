"""The TUI's own cost of showing traffic, without a proxy: UI-thread CPU per 1,000
records, decoded from the proxy process's frames (``rrdev.tui.proxy_wire``, encoded
beforehand) and fed through the app's record sink, as ``ProcessRuntime`` does.

    python bench/bench_tui_ingest.py [--records 3000] [--rate 1300] [--size 140x40]

Records arrive at ``--rate`` per second (the proxy's rate under wrk in
``bench_tui.py``) for ``records / rate`` seconds; the app takes them on its timer,
as it does in use. The result is the UI thread's CPU time over that span, less the
same span idle, per 1,000 records: once following the tail, once with the cursor held
off it (new rows outside the view). Less sensitive to a busy machine than
``bench_tui.py``'s ratios, since only this thread's CPU time counts.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


class Idle:
    """A runtime that serves nothing: records come from the benchmark."""

    demo = False

    async def start(self, sink: Any, on_event: Any) -> Any:
        from rrdev.tui.runtime import RuntimeInfo

        return RuntimeInfo("synthetic", "-", "http://127.0.0.1:0", "http://backend", None, "none")

    async def stop(self) -> None:
        return None

    def info(self) -> None:
        return None

    def jwks_status(self) -> None:
        return None

    def demo_requests(self) -> list[Any]:
        return []


def synthetic(i: int) -> Any:
    from rrdev.core.records import Explanation, RequestRecord

    status = (200, 200, 200, 401, 403)[i % 5]
    reason = ("allowed", "allowed", "allowed", "token_expired", "rule_denied")[i % 5]
    return RequestRecord(
        time=1_700_000_000 + i / 1000,
        method=("GET", "POST", "DELETE")[i % 3],
        path=f"/api/v1/products/{i}",
        query=(),
        status=status,
        reason=reason,
        deciding_rule="scope-gate-delete" if status == 403 else None,
        explanation=Explanation(status, reason, "synthetic"),
        total_ms=1.0 + i % 7,
        subject="auth0|bench-user" if status != 401 else None,
    )


async def measure(records: int, rate: float, size: tuple[int, int], follow: bool) -> float:
    """UI-thread CPU milliseconds per 1,000 records (idle cost subtracted)."""
    from rrdev.tui.app import RrdevApp
    from rrdev.tui.proxy_wire import FrameDecoder

    app = RrdevApp(Idle())  # type: ignore[arg-type]
    tick = 0.01
    span = records / rate
    async with app.run_test(size=size) as pilot:
        while app.info is None:
            await pilot.pause(0.05)
        for i in range(60):  # a screenful first, so the held cursor has rows to sit on
            app.record_sink(synthetic(i))
        await pilot.pause(0.5)
        if not follow:
            await pilot.press("up")
        await pilot.pause(0.3)
        idle_cpu, idle_wall = await _cpu_over(lambda _elapsed: True, tick)
        fed = 60
        frames = _frames(60, records)
        decoder = FrameDecoder()

        def feed(elapsed: float) -> bool:
            nonlocal fed
            due = min(60 + records, 60 + int(rate * elapsed))
            while fed < due and frames:  # whole frames, as they come from the child
                payload, fresh = frames.pop(0)
                for record in decoder.load(payload, fresh=fresh):
                    app.record_sink(record)
                    fed += 1
            # Done once everything fed is on the table (a slow UI takes longer: counted).
            shown = app.store.total == fed and app.table.pending == 0
            return fed == 60 + records and shown and elapsed > span + 0.3

        busy_cpu, busy_wall = await _cpu_over(feed, tick)
        assert app.store.total == 60 + records, app.store.total
        assert app.table.follow == follow
    idle_per_second = idle_cpu / idle_wall
    return (busy_cpu - idle_per_second * busy_wall) / records * 1000 * 1000


def _frames(first: int, count: int, per_frame: int = 32) -> list[tuple[bytes, bool]]:
    """``count`` synthetic records as the proxy process sends them (~50 ms batches at
    the default rate are a few dozen records each)."""
    from rrdev.tui.proxy_wire import FrameEncoder, split_frames

    encoder = FrameEncoder()
    numbers = range(first, first + count)
    data = b"".join(
        encoder.encode([synthetic(i) for i in numbers[at : at + per_frame]])
        for at in range(0, count, per_frame)
    )
    return split_frames(data)


async def _cpu_over(step: Any, tick: float, idle_seconds: float = 1.0) -> tuple[float, float]:
    """Call ``step(elapsed)`` every ``tick`` until it says done (or, for the idle
    baseline, for ``idle_seconds``); the thread's CPU seconds and the wall seconds."""
    cpu0, wall0 = time.thread_time(), time.perf_counter()
    while True:
        elapsed = time.perf_counter() - wall0
        if step(elapsed) and elapsed >= idle_seconds:
            break
        await asyncio.sleep(tick)
    return time.thread_time() - cpu0, time.perf_counter() - wall0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=3000)
    parser.add_argument("--rate", type=float, default=1300)
    parser.add_argument("--size", default="140x40")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    os.environ.setdefault("RRDEV_HOME", tempfile.mkdtemp(prefix="rrdev-bench-ingest-"))
    width, height = (int(n) for n in args.size.split("x"))
    for follow in (True, False):
        ms = asyncio.run(measure(args.records, args.rate, (width, height), follow))
        where = "following the tail" if follow else "cursor held off the tail"
        print(f"UI CPU per 1,000 records, {where:24}: {ms:7.1f} ms")


if __name__ == "__main__":
    main()
