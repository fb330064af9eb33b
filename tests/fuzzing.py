"""Hypothesis settings for the fuzz tests (``tests/test_fuzz_*.py``).

Profiles, chosen by ``HYPOTHESIS_PROFILE``, else ``ci`` when ``CI`` is set, else ``dev``:

- ``ci``: deterministic (``derandomize``, no example database), so a CI run is
  reproducible and never flaky;
- ``dev``: random, remembering failures in ``.hypothesis/`` so they replay first;
- ``thorough``: twenty times the examples, for a long local run.

No deadline anywhere: the suite shares a loaded 2-core machine, and a slow example is
not a wrong one. Each test asks for ``examples(fraction)`` of the profile's budget, so
the expensive ones (a real proxy, TOML parsing) scale with the profile too.
"""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

_BASE = 200
_COMMON = {
    "deadline": None,
    # The proxy tests share one running proxy across examples, on purpose.
    "suppress_health_check": [HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
}

settings.register_profile("ci", max_examples=_BASE, derandomize=True, database=None, **_COMMON)
settings.register_profile("dev", max_examples=_BASE, **_COMMON)
settings.register_profile("thorough", max_examples=_BASE * 20, **_COMMON)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE") or ("ci" if os.environ.get("CI") else "dev")
settings.load_profile(PROFILE)


def examples(fraction: float = 1.0) -> settings:
    """The loaded profile with ``fraction`` of its examples (at least 10)."""
    base = settings.get_profile(PROFILE)
    return settings(base, max_examples=max(10, int(base.max_examples * fraction)))
