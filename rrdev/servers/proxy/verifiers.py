"""Wrappers around the profile's ``Verifier``: a cache of good verifications (one per
loaded profile) and a per-request stopwatch for the record's ``auth_ms``."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Protocol

from rrdev.core.explain import Verifier
from rrdev.core.records import Verification


class KeySetVersion(Protocol):
    """What the cache asks a key cache (``rrdev.clients.jwks.JwksCache``)."""

    def key_set_version(self) -> int | None: ...


class CachingVerifier:
    """A ``Verifier`` that remembers successful verifications for a while.

    Repeated requests with the same token skip the signature check. An entry is used
    only while the token's ``exp`` has not passed and, when ``keys`` is given, while
    ``keys.key_set_version()`` is still the one the token was verified under: a
    refetch that removes or replaces a key, or a key set past its TTL (stale, or due
    for a refresh), makes every entry miss at once. Without ``keys`` an entry lives at
    most ``max_age`` seconds. Failures are never cached (a fixed JWKS or clock must
    take effect at once), nor are verifications made with a stale key set. The proxy
    makes a new one for every profile it loads, so a reload drops everything verified
    under the old settings. At most ``max_entries`` tokens are kept (least recently
    used go first).
    """

    def __init__(
        self,
        inner: Verifier,
        max_entries: int = 4096,
        max_age: float = float("inf"),
        keys: KeySetVersion | None = None,
    ) -> None:
        self.inner = inner
        self.max_entries = max_entries
        self.max_age = max_age
        self.keys = keys
        self._cache: OrderedDict[str, tuple[Verification, float, int | None]] = OrderedDict()

    def cached(self, token: str, now: float) -> Verification | None:
        """The kept verification of ``token`` while it is still good, else None (an
        entry past its time or key set is dropped; nothing is verified here)."""
        hit = self._cache.get(token)
        if hit is None:
            return None
        verification, valid_until, verified_under = hit
        if now < valid_until and verified_under == self._version():
            self._cache.move_to_end(token)
            return verification
        del self._cache[token]
        return None

    async def verify(self, token: str, now: float) -> Verification:
        before = self._version()
        hit = self.cached(token, now)
        if hit is not None:
            return hit
        result = await self.inner.verify(token, now)
        after = self._version()
        if self._keep(result, now, before, after):
            assert result.expires_at is not None
            self._cache[token] = (result, min(result.expires_at, now + self.max_age), after)
            if len(self._cache) > self.max_entries:
                self._cache.popitem(last=False)
        return result

    def _version(self) -> int | None:
        return self.keys.key_set_version() if self.keys is not None else None

    def _keep(
        self, result: Verification, now: float, before: int | None, after: int | None
    ) -> bool:
        if not result.ok or result.expires_at is None or now >= result.expires_at:
            return False
        if self.keys is None:
            return True
        # ``after`` names the key set the key came from: verification does not wait on
        # anything between taking the key and returning. A verification that saw the
        # key set change under it (``before`` was another) is not kept, nor one made
        # with a stale key set (a warning; ``after`` is None past the TTL anyway).
        if after is None or result.warnings:
            return False
        return before is None or before == after

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
