"""Attack: a rule pattern with catastrophic matching cost plus a long path (ReDoS).

A backtracking engine needs exponential time for ``^/x/(a+)+$`` against
``/x/aaaa…a!``: one authenticated request would pin ``rrdev up`` and every other request
would wait. rrdev matches rule patterns with RE2, linear in the text, and a request
whose regex work is still large (a 60 KB path against patterns RE2 cannot keep in its
DFA) is evaluated on the proxy's rules thread, off the event loop. So, over real
loopback sockets against a real ``rrdev up`` process, normal requests sent while
pathological ones are being evaluated are answered within 50 ms of their usual
latency; the pathological ones get their right answer (forwarded when no deny rule
matches, 403 without reaching the backend when one does).
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import random
import signal
import statistics
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from proxy_support import Backend, RawResponse, mint, profile_text, raw_request, start_up

from rrdev.core.explain import IncomingRequest, decide
from rrdev.core.model import Profile, ProxyCredential
from rrdev.core.profile import parse_profile
from rrdev.core.records import Decision, RequestFacts
from rrdev.core.rules import INLINE_WEIGHT, prepare
from rrdev.servers.proxy.rules_worker import NICENESS, RulesWorker

LENGTH = 60_000
#: Twelve variants of the textbook DFA blow-up: each costs RE2 tens of milliseconds on
#: 60 KB of random a/b, about half a second together.
THRASHERS = "\n".join(
    f'[[proxy.rules]]\nid = "thrash-{n}"\neffect = "deny"\npath = "^/y/(a|b)*a(a|b){{{n}}}c$"\n'
    for n in range(40, 52)
)
RULES = f"""
[[proxy.rules]]
id = "allow-all"
effect = "allow"
path = ".*"

[[proxy.rules]]
id = "exponential-for-backtrackers"
effect = "deny"
path = "^/x/(a+)+$"

{THRASHERS}
"""


def _thrash_path(seed: int) -> str:
    """Random a/b that ends so "^/y/(a|b)*a(a|b){40}c$" matches: a deny rule holds."""
    chars = random.Random(seed).choices("ab", k=LENGTH)
    chars[-41] = "a"
    return "/y/" + "".join(chars) + "c"


async def _timed(
    port: int, target: str, token: str, timeout: float = 10
) -> tuple[float, RawResponse]:
    """One request and its latency; a proxy pinned by a pattern fails the test here."""
    started = time.perf_counter()
    request = raw_request(port, "GET", target, [("Authorization", f"Bearer {token}")])
    response = await asyncio.wait_for(request, timeout)
    return time.perf_counter() - started, response


@pytest.mark.usefixtures("keyset")
async def test_pathological_patterns_do_not_delay_other_requests(
    tmp_path: Path, backend: Backend
) -> None:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text("https://api.example.invalid", rules=RULES))
    up = await start_up(profile, {}, port=0, target=backend.url, offline=True, quiet=True)
    port = int(up.url.rsplit(":", 1)[1])
    token = mint()
    try:
        baseline = [(await _timed(port, "/api/normal", token))[0] for _ in range(10)]
        hits_before = backend.hits

        backtracking = f"/x/{'a' * 8000}!"  # forwarded (the backend takes up to 8 KB)
        # The pathological ones are evaluated on a niced thread: on a machine busy with
        # other work (parallel tests) it gets a sliver of CPU, so they may take long.
        attack = [
            asyncio.create_task(_timed(port, target, token, timeout=90))
            for target in (backtracking, _thrash_path(1), _thrash_path(2), f"/x/{'a' * LENGTH}")
        ]
        await asyncio.sleep(0.05)  # the pathological requests are in the proxy
        during = []
        while not all(task.done() for task in attack) and len(during) < 40:
            during.append(await _timed(port, "/api/normal", token))
            await asyncio.sleep(0.005)
        (
            (_, allowed),
            (slow_1, thrash_1),
            (slow_2, thrash_2),
            (_, denied),
        ) = await asyncio.wait_for(asyncio.gather(*attack), 100)
    finally:
        up.process.send_signal(signal.SIGINT)
        try:
            await up.finish()
        except TimeoutError:  # pinned: it cannot even see the signal
            up.process.kill()
            await up.process.wait()

    # No normal request waited for the pathological ones: a request queued behind one
    # would be delayed by about its whole evaluation time, so half of the quickest one's
    # time (at least 50 ms: a loaded machine's own jitter) tells the two apart.
    usual = statistics.median(baseline)
    delays = [latency - usual for latency, _ in during]
    bound = max(0.050, 0.5 * min(slow_1, slow_2))
    assert max(delays) < bound, (usual, bound, sorted(delays)[-5:])
    assert all(r.status == 200 and r.json()["raw_path"] == "/api/normal" for _, r in during)
    # ...though these were still being evaluated while the normal ones ran.
    assert len(during) >= 3
    assert max(slow_1, slow_2) > 0.2

    # The pathological requests got their right answers.
    assert allowed.status == 200
    assert allowed.header("requestrocket-proxy-code") == "proxy-access-granted"
    assert allowed.json()["raw_path"] == backtracking
    for refused, rule in ((thrash_1, "thrash-40"), (thrash_2, "thrash-40"), (denied, None)):
        body = refused.json()
        assert refused.status == 403
        assert body["reason"] == "rule_denied"
        assert refused.header("requestrocket-proxy-code") == "proxy-access-denied"
        if rule is not None:
            assert f"'{rule}'" in body["message"]
    assert "'exponential-for-backtrackers'" in denied.json()["message"]
    # The backend saw the normal requests and the allowed one, never a refused one.
    seen = [echo["raw_path"] for echo in backend.seen[-(backend.hits - hits_before) :]]
    assert sorted(seen) == sorted(["/api/normal"] * len(during) + [backtracking])


# ------------------------------------------------------- the weighing, in process

WEIGHED = """
[[proxy.rules]]
effect = "allow"
path = ".*"

[[proxy.rules]]
effect = "deny"
path = "^/admin/(a|b)+$"
headers = [{ name = "^x-tenant$", value = "^(acme|globex)$" }]
token = [{ claim = "^scope$", value = "delete:resources" }]
"""


def _weighed_profile() -> Profile:
    return parse_profile(profile_text("http://127.0.0.1:9", rules=WEIGHED), "p.toml")


def test_the_weight_is_pattern_cost_times_characters_searched() -> None:
    profile = _weighed_profile()
    allow_all, gate = profile.proxy.rules
    assert allow_all.path is not None and gate.path is not None
    path, tenant = gate.path.pattern.regex, gate.headers[0]
    assert allow_all.path.pattern.regex.cost == 0  # ".*" needs no engine
    assert tenant.value is not None and gate.token[0].value is not None
    headers = (("x-tenant", "acme"), ("accept", "*/*"))
    claims = {"sub": "u1", "scope": "read:a"}
    run = prepare(profile, RequestFacts("GET", "/api/x", "/api/x", (), headers), claims)
    assert run.weight == (
        path.cost * len("/api/x")
        + tenant.name.regex.cost * len("x-tenantaccept")
        + tenant.value.regex.cost * len("acme*/*")
        + gate.token[0].name.regex.cost * len("subscope")
        + gate.token[0].value.regex.cost * len("u1read:a")
    )
    assert run.weight < INLINE_WEIGHT / 20  # a normal request is nowhere near the limit
    heavy = "/admin/" + "ab" * 40_000
    assert prepare(profile, RequestFacts("GET", heavy, heavy), claims).weight > INLINE_WEIGHT


async def test_decide_hands_only_heavy_rules_to_the_offload() -> None:
    profile = dataclasses.replace(
        _weighed_profile(), proxy_credential=ProxyCredential(auth_type="none")
    )
    offloaded: list[object] = []

    async def offload(run: Callable[[], Decision]) -> Decision:
        offloaded.append(run)
        return await asyncio.to_thread(run)

    light = await decide(profile, IncomingRequest("GET", "/admin/ab"), None, now=0, offload=offload)
    assert offloaded == [] and light.status == 200
    heavy_path = "/admin/" + "ab" * 40_000
    heavy = await decide(profile, IncomingRequest("GET", heavy_path), None, now=0, offload=offload)
    assert len(offloaded) == 1 and heavy.status == 200
    inline = await decide(profile, IncomingRequest("GET", heavy_path), None, now=0)
    assert inline.decision == heavy.decision  # the same answer, wherever it ran


async def test_the_rules_worker_is_one_lower_priority_thread() -> None:
    worker = RulesWorker()

    def where() -> tuple[int, str, int]:
        native = threading.get_native_id()
        return native, threading.current_thread().name, os.getpriority(os.PRIO_PROCESS, native)

    try:
        first = await worker(where)  # type: ignore[arg-type,misc]
        second = await worker(where)  # type: ignore[arg-type,misc]
    finally:
        worker.close()
    assert first == second  # one thread for all of them
    assert first[0] != threading.get_native_id() and first[1].startswith("rrdev-rules")
    if sys.platform.startswith("linux"):
        assert first[2] == min(19, os.getpriority(os.PRIO_PROCESS, 0) + NICENESS)
