"""Attack: C1 control characters (U+0080-U+009F) in the decoded path.

DESIGN.md §2.1 refuses "NUL or any control character"; only C0 and DEL were refused,
so ``%C2%85`` (NEL, a line break to Java's and .NET's line readers and to some log
viewers) reached the rules and the backend. Found by tests/test_fuzz_request_target.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from path_attack_support import assert_forwarded, assert_refused_unforwarded, guarded_proxy
from proxy_support import Backend


@pytest.mark.parametrize("target", ["/public%C2%85admin", "/public/%C2%80", "/a%C2%9Fb"])
async def test_c1_control_characters_are_refused(
    backend: Backend, tmp_path: Path, target: str
) -> None:
    async with guarded_proxy(backend, tmp_path) as proxy:
        await assert_refused_unforwarded(proxy, backend, target, "control character")


async def test_printable_non_ascii_still_goes_through(backend: Backend, tmp_path: Path) -> None:
    async with guarded_proxy(backend, tmp_path) as proxy:
        await assert_forwarded(proxy, backend, "/public/caf%C3%A9/%C2%A0")
