"""A long-lived server process settles its heap once it serves, and again a while after
each hot reload (rrdev.servers.heap): what a reload replaces may be cyclic garbage in
the frozen part, which no ordinary collection looks at."""

from __future__ import annotations

import asyncio
import gc
import weakref

import pytest
from heap_support import Cycle, collector_as_it_was  # noqa: F401  (autouse fixture)

from rrdev.servers import heap
from rrdev.servers.heap import GC_YOUNG_THRESHOLD, resettling, settle_heap


def test_settling_freezes_what_exists_and_collects_young_objects_less_often() -> None:
    settle_heap()
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == GC_YOUNG_THRESHOLD


def test_settling_again_frees_a_cycle_that_was_frozen() -> None:
    cycle = Cycle()
    gone = weakref.ref(cycle)
    settle_heap()  # the cycle is alive: frozen with everything else
    del cycle
    gc.collect()
    assert gone() is not None, "a frozen cycle is never collected..."
    settle_heap()
    assert gone() is None, "...until the heap is settled again"


async def test_a_reload_settles_again_once_and_passes_every_event_on(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(heap, "RESETTLE_AFTER_SECONDS", 0.05)
    settled: list[int] = []
    monkeypatch.setattr(heap, "settle_heap", lambda: settled.append(1))
    seen: list[tuple[str, str]] = []
    event = resettling(lambda kind, message: seen.append((kind, message)))
    event("reload_failed", "broken")
    event("reloaded", "first")
    event("reloaded", "second")  # two reloads in a row: one settle, after the last
    assert not settled
    await asyncio.sleep(0.2)
    assert settled == [1]
    assert seen == [("reload_failed", "broken"), ("reloaded", "first"), ("reloaded", "second")]


def test_a_reload_event_outside_a_loop_is_passed_on() -> None:
    seen: list[str] = []
    resettling(lambda kind, message: seen.append(kind))("reloaded", "x")
    assert seen == ["reloaded"]
