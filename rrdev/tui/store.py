"""The TUI's bounded memory of traffic: the last N records, numbered as they came.

Pure (no Textual). The proxy may serve far more requests than a screen should hold:
the oldest records fall out once ``maxlen`` is reached, and ``total`` keeps counting.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator

from rrdev.core.records import RequestRecord
from rrdev.tui.filters import RecordFilter

__all__ = ["DEFAULT_MAX_RECORDS", "TrafficStore"]

DEFAULT_MAX_RECORDS = 10_000


class TrafficStore:
    """The last ``maxlen`` records as ``(seq, record)``; ``seq`` counts from 1."""

    def __init__(self, maxlen: int = DEFAULT_MAX_RECORDS) -> None:
        self.maxlen = maxlen
        self.total = 0
        self._items: deque[tuple[int, RequestRecord]] = deque(maxlen=maxlen)

    def add(self, record: RequestRecord) -> int:
        self.total += 1
        self._items.append((self.total, record))
        return self.total

    def clear(self) -> None:
        """Forget every record (``total`` keeps counting, so numbers stay unique)."""
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
        """How many records fell out of the buffer."""
        return self.total - len(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def __iter__(self) -> Iterator[tuple[int, RequestRecord]]:
        return iter(self._items)
