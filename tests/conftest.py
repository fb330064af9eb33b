"""Shared fixtures."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

# ------------------------------------------------------------------ terminal size

# rrdev's CLI output wraps at $COLUMNS when it is set and is 240 wide otherwise (a pipe, a
# CI log). pytest-xdist workers start with COLUMNS=80 LINES=24 in their environment (GNU
# readline, imported in a worker whose stdin is a pipe, exports its terminal-size guess),
# so long tmp_path file names in error lines wrapped there and not in a serial run. A
# test that wants a width sets it with monkeypatch; every run, serial or parallel, in a
# terminal or not, starts without one.
for _name in ("COLUMNS", "LINES"):
    os.environ.pop(_name, None)

# ------------------------------------------------------------------ parallel runs


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """Workers for ``-n auto`` (pyproject's addopts): twice the CPUs this process may use,
    at most 8. Most tests wait on loopback sockets, timers and child processes rather
    than compute, so two per core keep the cores busy; more only adds contention.
    PYTEST_XDIST_AUTO_NUM_WORKERS, when set, still decides (xdist's own hook)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(2, min(2 * cpus, 8))


# ------------------------------------------------------------------ the TUI's settings


@pytest.fixture(autouse=True)
def _tui_settings(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The inspector remembers its theme in the user's config directory: each test
    keeps its own file, so no test writes the user's (or sees another test's theme)."""
    monkeypatch.setenv("RRDEV_TUI_CONFIG", str(tmp_path_factory.mktemp("tui") / "tui.toml"))


# ------------------------------------------------------------------ proxy tests


@pytest.fixture(scope="session")
def _keyset_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # One RRDEV_HOME for the session: generating an RSA key per test would cost ~0.1 s each.
    return tmp_path_factory.mktemp("rrdev-home")


@pytest.fixture
def keyset(_keyset_home: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """RRDEV_HOME pointed at a temporary directory holding the local keyset."""
    monkeypatch.setenv("RRDEV_HOME", str(_keyset_home))
    from rrdev.core.keyset import Keyset

    Keyset.load_or_create()
    yield _keyset_home


@pytest.fixture
async def backend() -> AsyncIterator[object]:
    """A real echo backend on 127.0.0.1 (see tests/proxy_support.py)."""
    from proxy_support import run_backend

    async with run_backend() as running:
        yield running
