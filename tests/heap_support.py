"""What the collector tests share: the collector given back as it was, and garbage only
the collector can free."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def collector_as_it_was() -> Iterator[None]:
    """The tests freeze this process's objects: give the collector back unchanged."""
    thresholds = gc.get_threshold()
    gc.unfreeze()
    yield
    gc.unfreeze()
    gc.set_threshold(*thresholds)


class Cycle:
    """Garbage only the collector can free (it refers to itself)."""

    def __init__(self) -> None:
        self.me = self
