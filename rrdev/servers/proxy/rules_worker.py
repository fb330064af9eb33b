"""``RulesWorker``: the proxy's one thread for heavy rule evaluations.

``explain.decide`` weighs a request's rules before running them (``RuleRun.weight``).
A light one (almost every request) runs on the event loop; a heavy one, such as a
64 KiB path against a pattern RE2 cannot keep in its DFA, comes here. RE2 releases the
GIL while it matches, so the event loop keeps serving other requests meanwhile. One
thread, not a pool: however many heavy requests arrive, they queue behind each other
and take at most one core from everything else. On Linux the thread also runs at a
lower priority (nice +10), so on a busy machine the event loop's thread gets the CPU
first.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from rrdev.core.records import Decision


class RulesWorker:
    """An ``explain.Offload``: ``await worker(run)`` runs ``run()`` on the worker thread.

    The thread starts with the first heavy request and stops at ``close()`` (a later
    heavy request starts a new one)."""

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None

    async def __call__(self, run: Callable[[], Decision]) -> Decision:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=1, thread_name_prefix="rrdev-rules", initializer=_lower_priority
            )
        return await asyncio.get_running_loop().run_in_executor(self._executor, run)

    def close(self) -> None:
        """Stop the thread once its current evaluation ends; queued ones are dropped."""
        executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)


#: How much nicer than the process the rules thread runs (Linux).
NICENESS = 10


def _lower_priority() -> None:
    # Linux schedules threads one by one and lets any thread lower its own priority;
    # elsewhere the call would name a process, so it is not made.
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError):
            current = os.getpriority(os.PRIO_PROCESS, 0)
            os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), current + NICENESS)
