"""A flood of records stays out of the collector's scans, and its garbage cycles are
still collected (rrdev.tui.heap): frozen per flood batch, collected once the flood
has been over for a while, and at least every ``longest`` seconds while it lasts."""

from __future__ import annotations

import gc
import weakref
from typing import Any

from heap_support import Cycle, collector_as_it_was  # noqa: F401  (autouse fixture)
from test_tui_footer import SIZE, Idle, until
from test_tui_thread import synthetic

from rrdev.tui.app import RrdevApp
from rrdev.tui.heap import FloodHeap


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_flood_batch_freezes_and_a_trickle_does_not() -> None:
    clock = Clock()
    heap = FloodHeap(flood=50, quiet=2.0, clock=clock)
    heap.batch(49)
    assert gc.get_freeze_count() == 0 and heap.frozen_at is None
    heap.batch(50)
    assert gc.get_freeze_count() > 0 and heap.frozen_at == clock.now


def test_cycles_frozen_by_a_flood_are_collected_once_it_is_quiet() -> None:
    clock = Clock()
    heap = FloodHeap(flood=50, quiet=2.0, clock=clock)
    cycle = Cycle()
    gone = weakref.ref(cycle)
    heap.batch(500)  # the cycle is alive now: frozen with everything else
    del cycle
    gc.collect()
    assert gone() is not None, "a frozen cycle is not scanned"
    clock.now += 1.0
    heap.batch(3)  # a trickle, too soon
    assert gone() is not None and heap.settled == 0
    clock.now += 1.5
    heap.batch(0)  # the timer, after a quiet spell
    assert heap.settled == 1 and heap.frozen_at is None
    assert gone() is None


def test_a_long_flood_is_collected_all_the_same() -> None:
    clock = Clock()
    heap = FloodHeap(flood=50, quiet=2.0, longest=60.0, clock=clock)
    cycle = Cycle()
    gone = weakref.ref(cycle)
    heap.batch(300)
    del cycle
    for _ in range(590):  # a batch every 0.1 s for 59 s: never quiet
        clock.now += 0.1
        heap.batch(300)
    assert heap.settled == 0 and gone() is not None
    for _ in range(20):
        clock.now += 0.1
        heap.batch(300)
    assert heap.settled == 1 and gone() is None
    assert heap.frozen_at == clock.now  # the flood goes on, frozen again


async def test_the_app_freezes_a_flood_and_settles_after_it() -> None:
    clock = Clock()
    app = RrdevApp(Idle(), flush_interval=0.05)  # type: ignore[arg-type]
    app.heap = FloodHeap(flood=50, quiet=2.0, clock=clock)
    async with app.run_test(size=SIZE) as pilot:
        await until(pilot, lambda: app.info is not None)
        for i in range(200):
            app.record_sink(synthetic(i))
        await until(pilot, lambda: app.store.total == 200)
        assert app.heap.frozen_at is not None
        clock.now += 5.0
        await until(pilot, lambda: app.heap.settled == 1)
        assert app.heap.frozen_at is None
        shown: Any = app.table.chosen()
        assert shown is not None and shown[0] == 200
