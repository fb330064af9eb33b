"""Attack: an encoded ``?`` or ``#`` that a backend splits at again after decoding.

Apache's mod_rewrite + mod_proxy decode the path and rebuild the URL, so ``%3F`` becomes
a real query delimiter (CVE-2023-25690, request splitting): ``/admin%3F/../public``
would be judged as one path and read as another. rrdev refuses an encoded ``?`` or ``#``
in the path. Found by tests/test_fuzz_request_target.py.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from path_attack_support import assert_forwarded, assert_refused_unforwarded, guarded_proxy
from proxy_support import Backend

WHY = "encoded '?' or '#'"


@pytest.mark.parametrize("target", ["/public%3F/admin/users", "/public%3f", "/public%23/admin/"])
async def test_encoded_query_and_fragment_delimiters_are_refused(
    backend: Backend, tmp_path: Path, target: str
) -> None:
    async with guarded_proxy(backend, tmp_path) as proxy:
        await assert_refused_unforwarded(proxy, backend, target, WHY)


async def test_a_real_query_still_goes_through(backend: Backend, tmp_path: Path) -> None:
    async with guarded_proxy(backend, tmp_path) as proxy:
        await assert_forwarded(proxy, backend, "/public/search?q=%3F%23&x=1")
