"""Wrappers around the profile's ``Verifier``: a cache of good verifications (one per
loaded profile) and a per-request stopwatch for the record's ``auth_ms``."""

from __future__ import annotations

import time
from collections import OrderedDict

from rrdev.core.explain import Verifier
from rrdev.core.records import Verification


class CachingVerifier:
    """A ``Verifier`` that remembers successful verifications for a while.

    Repeated requests with the same token skip the signature check. An entry lives
    until the token's ``exp`` or ``max_age`` seconds (the JWKS TTL), whichever comes
    first, so a key dropped from the JWKS (a rotation's grace period ending) stops
    being honoured within one TTL. Failures are never cached (a fixed JWKS or clock
    must take effect at once). The proxy makes a new one for every profile it loads,
    so a reload drops everything verified under the old settings. At most
    ``max_entries`` tokens are kept (least recently used go first).
    """

    def __init__(
        self, inner: Verifier, max_entries: int = 4096, max_age: float = float("inf")
    ) -> None:
        self.inner = inner
        self.max_entries = max_entries
        self.max_age = max_age
        self._cache: OrderedDict[str, tuple[Verification, float]] = OrderedDict()

    async def verify(self, token: str, now: float) -> Verification:
        hit = self._cache.get(token)
        if hit is not None:
            verification, valid_until = hit
            if now < valid_until:
                self._cache.move_to_end(token)
                return verification
            del self._cache[token]
        result = await self.inner.verify(token, now)
        if result.ok and result.expires_at is not None and now < result.expires_at:
            self._cache[token] = (result, min(result.expires_at, now + self.max_age))
            if len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return result

    def clear(self) -> None:
        self._cache.clear()

    def __len__(self) -> int:
        return len(self._cache)


class _TimedVerifier:
    """Per-request wrapper that measures time spent verifying (for ``auth_ms``)."""

    __slots__ = ("inner", "seconds")

    def __init__(self, inner: Verifier) -> None:
        self.inner = inner
        self.seconds = 0.0

    async def verify(self, token: str, now: float) -> Verification:
        start = time.perf_counter()
        try:
            return await self.inner.verify(token, now)
        finally:
            self.seconds += time.perf_counter() - start
