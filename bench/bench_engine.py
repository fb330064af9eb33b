"""Engine micro-benchmarks: rrdev's per-request work against a baseline in the same run.

    python bench/bench_engine.py

Prints, for each measurement, rrdev's time per call, the baseline's, and the ratio:

* verify: `verify_token` (full checklist, cached JWKS) vs a bare `jwt.decode` with the
  same key, algorithm and claims checks — the price of the explanations;
* rules: evaluating the seed's proxy rules with the full trace vs the three bare
  `re.search` calls that any rule engine must make for the same request;
* decide: the whole `explain.decide` (path check, verify, rules, explanation) vs
  `jwt.decode` + those searches;
* decide/N: `explain.decide` with a cached token (the proxy's verified-token cache) and
  1, the seed's 3, and 200 proxy rules, allowed (the hot path: no trace built) and, for
  the seed, denied (the full trace, as a refusal carries it);
* verify cached: a hit in the proxy's verified-token cache (``CachingVerifier``).

`python -m bench micro` runs the same measurements (``measure``) in its table.
"""

from __future__ import annotations

import asyncio
import re
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import jwt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from rrdev.clients.jwks import JwksCache  # noqa: E402
from rrdev.core.explain import IncomingRequest, JwksVerifier, decide  # noqa: E402
from rrdev.core.keyset import Keyset, mint_token  # noqa: E402
from rrdev.core.model import PathCondition, Pattern, Profile, Rule  # noqa: E402
from rrdev.core.profile import load_profile  # noqa: E402
from rrdev.core.records import RequestFacts  # noqa: E402
from rrdev.core.rules import evaluate_profile  # noqa: E402
from rrdev.core.verify import verify_token  # noqa: E402
from rrdev.servers.proxy.verifiers import CachingVerifier  # noqa: E402

PROFILE = load_profile(ROOT / "profiles" / "auth0.toml")
CRED = PROFILE.proxy_credential


def per_call(func: Callable[[], object], seconds: float = 1.0) -> float:
    """Seconds per call, after a warm-up, over about ``seconds`` of wall time."""
    for _ in range(50):
        func()
    calls, start = 0, time.perf_counter()
    while (elapsed := time.perf_counter() - start) < seconds:
        for _ in range(100):
            func()
        calls += 100
    return elapsed / calls


def report(name: str, ours: float, base: float) -> None:
    us = f"rrdev {ours * 1e6:8.1f} µs   baseline {base * 1e6:8.1f} µs"
    print(f"{name:8} {us}   ratio {ours / base:5.2f}x")


def measure(seconds: float = 1.0) -> dict[str, object]:
    """Every measurement, in seconds per call: ``pairs`` maps a name to (rrdev, baseline);
    ``verify_cached`` is a verified-token cache hit; ``decides`` the cached-token rows."""
    keyset = Keyset.generate()
    now = time.time()
    token = mint_token(
        keyset, issuer=CRED.issuer, audience=CRED.audience[0], scope="read:products", now=now
    )
    public_key = jwt.PyJWK(keyset.jwks()["keys"][0]).key
    cache = JwksCache(keyset.jwks())
    loop = asyncio.new_event_loop()

    def timed(func: Callable[[], object]) -> float:
        return per_call(func, seconds)

    def ours_verify() -> object:
        return loop.run_until_complete(verify_token(token, CRED, cache, now=now))

    def base_verify() -> object:
        return jwt.decode(
            token, public_key, algorithms=["RS256"], audience=CRED.audience[0], issuer=CRED.issuer
        )

    pairs = {"verify": (timed(ours_verify), timed(base_verify))}

    claims = base_verify()
    facts = RequestFacts("DELETE", "/api/v1/products/1", "/api/v1/products/1")
    patterns = [re.compile(r".*"), re.compile(r"^/api/v1/(users|products|orders)(/.*)?$")]
    scope = re.compile("delete:resources")

    def base_rules() -> object:
        return [p.search(facts.path) for p in patterns] + [scope.search(claims["scope"])]

    pairs["rules"] = (timed(lambda: evaluate_profile(PROFILE, facts, claims)), timed(base_rules))

    verifier = JwksVerifier(CRED, cache)
    request = IncomingRequest(
        "DELETE", "/api/v1/products/1", "", (("authorization", f"Bearer {token}"),)
    )

    def ours_decide() -> object:
        return loop.run_until_complete(decide(PROFILE, request, verifier, now=now))

    pairs["decide"] = (timed(ours_decide), timed(lambda: (base_verify(), base_rules())))
    caching = CachingVerifier(verifier)
    verify_cached = timed(lambda: loop.run_until_complete(caching.verify(token, now)))
    decides = cached_decides(loop, verifier, token, now, seconds)
    loop.close()
    return {"pairs": pairs, "verify_cached": verify_cached, "decides": decides}


def main() -> None:
    results = measure()
    for name, (ours, base) in results["pairs"].items():  # type: ignore[attr-defined]
        report(name, ours, base)
    print(f"verify   cached (verified-token cache hit) {results['verify_cached'] * 1e6:8.1f} µs")
    for count, label, per, outcome in results["decides"]:  # type: ignore[attr-defined]
        print(f"decide/{count:<3} {label:5} {per * 1e6:8.1f} µs   ({outcome})")


class _Cached:
    """A verifier that hands out one Verification, as the proxy's token cache does."""

    def __init__(self, verification: object) -> None:
        self.verification = verification

    async def verify(self, token: str, now: float) -> object:
        return self.verification


def _with_rules(count: int) -> Profile:
    """The seed profile with ``count`` proxy rules: the seed's own, then allow rules on
    other paths (each one a regex search per request), so the last seed rule decides."""
    seed = PROFILE.proxy.rules
    extra = tuple(
        Rule("proxy", len(seed) + i, "allow", path=PathCondition(Pattern(f"^/other/{i}/")))
        for i in range(max(count - len(seed), 0))
    )
    rules = (seed + extra)[:count]
    return replace(PROFILE, proxy=replace(PROFILE.proxy, rules=rules))


def cached_decides(
    loop: asyncio.AbstractEventLoop, verifier: object, token: str, now: float, seconds: float
) -> list[tuple[int, str, float, str]]:
    """(rule count, allow/deny, seconds per decide, "status reason, deciding rule")."""
    cached = _Cached(loop.run_until_complete(verifier.verify(token, now)))  # type: ignore[attr-defined]
    auth = (("authorization", f"Bearer {token}"),)
    allowed = IncomingRequest("GET", "/api/v1/products/1", "", auth)
    denied = IncomingRequest("DELETE", "/api/v1/products/1", "", auth)
    rows = []
    for count in (1, 3, 200):
        profile = _with_rules(count)
        for label, request in (("allow", allowed), ("deny", denied)):
            if label == "deny" and count != 3:
                continue

            def run(profile: Profile = profile, request: IncomingRequest = request) -> object:
                return loop.run_until_complete(decide(profile, request, cached, now=now))

            expl = run()
            outcome = f"{expl.status} {expl.reason}, {expl.deciding_rule}"
            rows.append((count, label, per_call(run, seconds), outcome))
    return rows


if __name__ == "__main__":
    main()
