"""The proxy credential's time settings, bounded: values that would quietly disable a
check are refused when the profile loads, with a hint.

* ``leeway_seconds`` (default 0): 0 to 300. It absorbs clock skew on ``exp``/``nbf``;
  more would keep expired tokens valid (``leeway_seconds = 100000`` is 27 hours).
* ``jwks_refetch_interval_seconds`` (default 30): 1 to 86400. Below a second every
  token with an unknown ``kid`` would fetch the JWKS again, so anyone could make rrdev
  hammer the issuer.
* ``jwks_ttl_seconds`` (default 600): 1 to 86400, and not below the refetch interval
  (the JWKS is fetched at most once per interval, so a shorter TTL cannot be honoured).
  A key the issuer removes stays trusted for up to this long.

Booleans, strings, NaN and infinities are refused as well (TOML has ``nan``/``inf``).
"""

from __future__ import annotations

import math
from typing import NoReturn

from rrdev.core.model import ProxyCredential
from rrdev.core.profile.reading import _kind, _Table
from rrdev.core.tokens import humanize_delta

#: Clock skew tolerated on exp/nbf, at most: beyond this a leeway quietly keeps
#: expired tokens valid.
MAX_LEEWAY_SECONDS = 300.0
#: The JWKS is refetched (on an unknown kid or a TTL expiry) at most this often.
MIN_JWKS_REFETCH_SECONDS = 1.0
#: How long a fetched JWKS may be trusted, at most: a removed key stays trusted that long.
MAX_JWKS_TTL_SECONDS = 86400.0

_LEEWAY_HINT = (
    "the leeway only absorbs clock skew between this machine and the issuer: fix the "
    "clock (NTP) rather than widening it; 0 to 60 is usual, 300 the most rrdev accepts"
)
_REFETCH_HINT = (
    "how often rrdev may fetch the JWKS again (an unknown kid, an expired copy): "
    "the default is 30; the demo uses 1 for its loopback issuer"
)
_TTL_HINT = (
    "how long a fetched JWKS is trusted: a key the issuer removes (rotated out, or "
    "compromised) stays trusted for up to this long; the default is 600"
)


def _leeway(t: _Table) -> float:
    """Clock skew, not a validity extension."""
    leeway = _seconds(t, "leeway_seconds", ProxyCredential.leeway_seconds, _LEEWAY_HINT)
    if leeway > MAX_LEEWAY_SECONDS:
        t.fail(
            "leeway_seconds",
            f"must be at most {_n(MAX_LEEWAY_SECONDS)} seconds, got {_n(leeway)}: expired "
            f"tokens would pass for {humanize_delta(leeway)} after their exp",
            _LEEWAY_HINT,
        )
    return leeway


def _jwks_refetch_interval(t: _Table) -> float:
    """At least a second between JWKS fetches, whatever the tokens say."""
    name = "jwks_refetch_interval_seconds"
    default = ProxyCredential.jwks_refetch_interval_seconds
    interval = _seconds(t, name, default, _REFETCH_HINT)
    if interval < MIN_JWKS_REFETCH_SECONDS:
        t.fail(
            name,
            f"must be at least {_n(MIN_JWKS_REFETCH_SECONDS)} second, got {_n(interval)}: "
            "every token with an unknown kid would fetch the JWKS again, so anyone could "
            "make rrdev hammer the issuer",
            _REFETCH_HINT,
        )
    return interval


def _jwks_ttl(t: _Table) -> float:
    """Bounded both ways, and not below the refetch interval (which it cannot beat)."""
    name = "jwks_ttl_seconds"
    ttl = _seconds(t, name, ProxyCredential.jwks_ttl_seconds, _TTL_HINT)
    if not MIN_JWKS_REFETCH_SECONDS <= ttl <= MAX_JWKS_TTL_SECONDS:
        t.fail(
            name,
            f"must be between {_n(MIN_JWKS_REFETCH_SECONDS)} and {_n(MAX_JWKS_TTL_SECONDS)} "
            f"seconds, got {_n(ttl)}",
            _TTL_HINT,
        )
    interval = _jwks_refetch_interval(t)
    if ttl < interval:
        _ttl_below_interval(t, ttl, interval)
    return ttl


def _ttl_below_interval(t: _Table, ttl: float, interval: float) -> NoReturn:
    """Name the key the user wrote: the TTL, or the interval when the TTL is the default."""
    why = "the JWKS is fetched at most once per refetch interval, so the TTL cannot be honoured"
    if t.has("jwks_ttl_seconds"):
        t.fail(
            "jwks_ttl_seconds",
            f"{_n(ttl)} is shorter than jwks_refetch_interval_seconds ({_n(interval)}): {why}",
            f"set jwks_ttl_seconds to at least {_n(interval)}, or lower "
            "jwks_refetch_interval_seconds",
        )
    t.fail(
        "jwks_refetch_interval_seconds",
        f"{_n(interval)} is longer than jwks_ttl_seconds ({_n(ttl)}, the default): {why}",
        f"set jwks_ttl_seconds to at least {_n(interval)} as well, or lower this interval",
    )


def _seconds(t: _Table, name: str, default: float, hint: str) -> float:
    """A finite, non-negative number of seconds (a TOML integer or float), else a
    ``ProfileError`` with ``hint``; ``default`` when the key is absent."""
    value = t.data.get(name)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        t.fail(name, f"expected a number of seconds, got {_kind(value)}", hint)
    if not math.isfinite(value) or value < 0:
        t.fail(name, f"must be a finite number of seconds, at least 0, got {value}", hint)
    return float(value)


def _n(seconds: float) -> str:
    """300, 0.25, 31536000: as written, without float noise or exponents."""
    return str(int(seconds)) if seconds.is_integer() else repr(seconds)
