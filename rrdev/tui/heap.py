"""The UI process's collector under a flood of records: ``FloodHeap``.

No Textual here. Records hold no reference cycles and are freed by reference counting,
but each one is a tracked object, so every collection of the older generations walks
all the records that arrived since the last: under a flood of thousands a second that
was a stall of 20-30 ms every second or so, and 60-100 ms now and then (a full
collection), which is what a key press waited for.

So while records flood in (a batch of at least ``FLOOD_RECORDS``), what exists after
each batch is moved out of the collector's scans (``gc.freeze``: a list splice, not a
walk). Frozen objects are still freed by reference counting, as every record is; only
a reference cycle that becomes garbage after it was frozen waits. When the flood has
been over for ``QUIET_SECONDS``, everything is unfrozen and collected once
(``settle_heap``: the same one-off the TUI does when its screen is up); a flood that
goes on is collected once every ``MAX_FROZEN_SECONDS`` all the same (one stall a
minute instead of one a second), so cyclic garbage is never kept longer than that.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable

from rrdev.servers.heap import settle_heap

__all__ = ["FLOOD_RECORDS", "MAX_FROZEN_SECONDS", "QUIET_SECONDS", "FloodHeap"]

#: A batch of at least this many records is a flood (the UI takes a batch every 0.1 s).
FLOOD_RECORDS = 50
#: After this long without a flood, the frozen objects are collected once.
QUIET_SECONDS = 2.0
#: ...and at least this often while a flood goes on.
MAX_FROZEN_SECONDS = 60.0


class FloodHeap:
    """Call ``batch(n)`` after each batch of ``n`` records is in (0 too: the timer)."""

    def __init__(
        self,
        *,
        flood: int = FLOOD_RECORDS,
        quiet: float = QUIET_SECONDS,
        longest: float = MAX_FROZEN_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.flood = flood
        self.quiet = quiet
        self.longest = longest
        self.clock = clock
        #: When the last flood batch was frozen, and the first since the last
        #: collection (None: nothing frozen by a flood).
        self.frozen_at: float | None = None
        self.frozen_since: float | None = None
        #: How many times the frozen objects were collected (tests and benchmarks).
        self.settled = 0

    def batch(self, size: int) -> None:
        now = self.clock()
        if size >= self.flood:
            if self.frozen_since is not None and now - self.frozen_since >= self.longest:
                self.settle()  # a long flood: its garbage cycles go now, not at its end
            gc.freeze()
            self.frozen_at = now
            if self.frozen_since is None:
                self.frozen_since = now
        elif self.frozen_at is not None and now - self.frozen_at >= self.quiet:
            self.settle()

    def settle(self) -> None:
        """Unfreeze, collect once, and freeze what is left (as the TUI does at start)."""
        self.frozen_at = self.frozen_since = None
        settle_heap()  # unfreezes first
        self.settled += 1
