"""The TUI's bounded memory of traffic: the last N records, numbered as they came.

Pure (no Textual). The proxy may serve far more requests than a screen should hold:
the oldest records fall out once ``maxlen`` is reached, and ``total`` keeps counting.
``Inbox`` is where the proxy's thread leaves records (and notices) for the UI, which
takes them all at once on a timer: one UI update per batch, never one per request.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Generic, TypeVar

from rrdev.core.records import RequestRecord
from rrdev.tui.filters import RecordFilter

__all__ = ["DEFAULT_MAX_RECORDS", "Inbox", "TrafficStore"]

DEFAULT_MAX_RECORDS = 10_000

T = TypeVar("T")


class Inbox(Generic[T]):
    """A hand-over between threads: ``put`` from any thread, ``take`` from the UI.

    Bounded: if the UI falls behind by more than ``maxlen`` items, the oldest are
    dropped (and counted, so the store's numbering still counts every request).
    """

    def __init__(self, maxlen: int) -> None:
        self.maxlen = maxlen
        # A lock, not only the deque's atomic append: ``take`` must swap the items and
        # the count of what was put together, or a drop could be counted twice.
        self._lock = threading.Lock()
        self._items: deque[T] = deque(maxlen=maxlen)
        self._put = 0

    def put(self, item: T) -> None:
        with self._lock:
            self._put += 1
            self._items.append(item)

    def take(self) -> tuple[list[T], int]:
        """Everything put since the last ``take``, oldest first, and how many of
        those were dropped because ``maxlen`` was exceeded."""
        with self._lock:
            if not self._put:
                return [], 0
            items, self._items = self._items, deque(maxlen=self.maxlen)
            put, self._put = self._put, 0
        return list(items), put - len(items)

    def __len__(self) -> int:
        return len(self._items)


class TrafficStore:
    """The last ``maxlen`` records as ``(seq, record)``; ``seq`` counts from 1."""

    def __init__(self, maxlen: int = DEFAULT_MAX_RECORDS) -> None:
        self.maxlen = maxlen
        self.total = 0
        #: How many records ``clear`` (the ``c`` key) forgot.
        self.cleared = 0
        self._items: deque[tuple[int, RequestRecord]] = deque(maxlen=maxlen)

    def add(self, record: RequestRecord) -> int:
        self.total += 1
        self._items.append((self.total, record))
        return self.total

    def add_batch(
        self, records: Iterable[RequestRecord], dropped: int = 0
    ) -> list[tuple[int, RequestRecord]]:
        """Add ``records``, after ``dropped`` that never arrived (numbers skip them)."""
        self.total += dropped
        added = []
        for record in records:
            self.total += 1
            item = (self.total, record)
            self._items.append(item)
            added.append(item)
        return added

    def clear(self) -> None:
        """Forget every record (``total`` keeps counting, so numbers stay unique)."""
        self.cleared += len(self._items)
        self._items.clear()

    def matching(self, flt: RecordFilter) -> list[tuple[int, RequestRecord]]:
        if flt.empty:
            return list(self._items)
        return [(seq, record) for seq, record in self._items if flt.matches(record)]

    def get(self, seq: int) -> RequestRecord | None:
        if not self._items:
            return None
        index = seq - self._items[0][0]
        if 0 <= index < len(self._items):
            return self._items[index][1]
        return None

    @property
    def dropped(self) -> int:
        """How many records fell out of the buffer (not counting those cleared)."""
        return self.total - len(self._items) - self.cleared

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[tuple[int, RequestRecord]]:
        return iter(self._items)
