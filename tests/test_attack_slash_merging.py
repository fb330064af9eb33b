"""Attack: an empty segment (``//``) that the backend merges away.

nginx (``merge_slashes``, on by default) and Spring read ``/admin//users`` as
``/admin/users``; a rule anchored on ``^/admin/users`` never sees it. rrdev refuses an
empty segment anywhere in the decoded path. Found by tests/test_fuzz_request_target.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from path_attack_support import (
    assert_forwarded,
    assert_refused_unforwarded,
    assert_rule_denies,
    guarded_proxy,
)
from proxy_support import Backend


@pytest.mark.parametrize("target", ["/x//admin/users", "/admin//users", "/public/users//"])
async def test_empty_segments_are_refused_and_never_forwarded(
    backend: Backend, tmp_path: Path, target: str
) -> None:
    async with guarded_proxy(backend, tmp_path) as proxy:
        await assert_rule_denies(proxy, backend, "/admin/users")
        await assert_refused_unforwarded(proxy, backend, target, "empty segment")


async def test_a_single_trailing_slash_is_not_an_empty_segment(
    backend: Backend, tmp_path: Path
) -> None:
    async with guarded_proxy(backend, tmp_path) as proxy:
        await assert_forwarded(proxy, backend, "/public/users/")
        await assert_forwarded(proxy, backend, "/")
