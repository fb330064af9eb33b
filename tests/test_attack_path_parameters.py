"""Attack: ';' path parameters hide a path from the rules.

Tomcat and Jetty strip ``;params`` from each segment before routing, Spring after
decoding: ``/admin;x/users`` is ``/admin/users`` to them, but the rules (``^/admin/``)
see ``/admin;x/users`` and let it through. rrdev refuses any ``;`` in the decoded path.
Found by tests/test_fuzz_request_target.py.
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

WHY = "path parameter"


@pytest.mark.parametrize(
    "target",
    ["/admin;x/users", "/admin;jsessionid=1/users", "/admin%3b/users", "/admin%3Bx/users"],
)
async def test_path_parameters_are_refused_and_never_forwarded(
    backend: Backend, tmp_path: Path, target: str
) -> None:
    async with guarded_proxy(backend, tmp_path) as proxy:
        await assert_rule_denies(proxy, backend, "/admin/users")
        await assert_refused_unforwarded(proxy, backend, target, WHY)


async def test_a_parameter_anywhere_in_the_path_is_refused(
    backend: Backend, tmp_path: Path
) -> None:
    async with guarded_proxy(backend, tmp_path) as proxy:
        await assert_refused_unforwarded(proxy, backend, "/public/a;v=1/b", WHY)
        await assert_forwarded(proxy, backend, "/public/a,v=1/b")
