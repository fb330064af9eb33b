"""The key set: which JWKs rrdev trusts, and which one verifies a given token.

Pure rules, no I/O (``rrdev.clients.jwks`` fetches and caches the document):

* only asymmetric signing keys are ever served (``kty`` RSA, EC or OKP; ``use``
  absent or ``sig``). ``oct`` (shared-secret) keys are dropped when the document is
  read, so no token can make rrdev verify an HMAC with anything from a JWKS;
* a key is handed out only for an algorithm it can actually verify (its ``kty``
  and curve fit, and its ``alg``, when set, is the token's);
* weak or self-contradictory signing keys (RSA under 2048 bits, a curve that does
  not fit the declared ``alg``: ``rrdev.core.key_checks``) are ignored when the
  document is read, and remembered with the reason, so a token whose ``kid`` points
  at one is refused with ``KeyUnusable`` saying why.

``KeySource`` is what verification needs from a key cache, so ``rrdev.core.verify``
never imports the client that fetches. ``staleness`` is the one definition of a
*stale* key set (served past its TTL while its JWKS fails) and of how long more it
is served.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from jwt import PyJWK
from jwt.exceptions import PyJWTError

from rrdev.core.algorithms import ALGORITHM_KEY_TYPES
from rrdev.core.errors import JwksUnavailable, KeyNotFound, KeyUnusable
from rrdev.core.key_checks import IgnoredKey, unusable_reason
from rrdev.core.tokens import clip, humanize_delta

__all__ = [
    "ALGORITHM_KEY_TYPES",
    "IgnoredKey",
    "JwksSnapshot",
    "JwksStatus",
    "KeySource",
    "Staleness",
    "check_document",
    "choose_key",
    "read_keys",
    "staleness",
    "usable_keys",
]

_SIGNING_KEY_TYPES = frozenset({"RSA", "EC", "OKP"})


@dataclass(frozen=True)
class Staleness:
    """A key set served past its TTL because its JWKS keeps failing.

    ``stale_for``: seconds since it became stale; ``remaining``: seconds it is still
    served (0: no longer served, requests get 503 ``jwks_unavailable``);
    ``max_stale``: the profile's ``jwks_max_stale_seconds``; ``problem``: the last
    failed fetch.
    """

    source: str
    stale_for: float
    remaining: float
    max_stale: float
    problem: str

    @property
    def served(self) -> bool:
        """Whether the stale key set is still used to verify tokens."""
        return self.remaining > 0

    def note(self) -> str:
        """One sentence for people: the warning while served, the reason once not."""
        failing = f"the JWKS at {self.source} is failing ({self.problem})"
        limit = f"jwks_max_stale_seconds = {self.max_stale:g}"
        stale_for = humanize_delta(self.stale_for)
        if not self.served:
            return (
                f"{failing} and its last good key set, stale for {stale_for}, is no longer "
                f"served ({limit})"
            )
        return (
            f"stale key set: {failing}; its last good key set has been served stale for "
            f"{stale_for} and is served for {humanize_delta(math.ceil(self.remaining))} more "
            f"({limit}), "
            "then tokens get 503 jwks_unavailable"
        )


def staleness(
    *,
    source: str,
    fetched_at: float,
    ttl: float,
    failing_since: float | None,
    max_stale: float,
    now: float,
    problem: str = "",
) -> Staleness | None:
    """How stale the key set fetched at ``fetched_at`` is at ``now`` (None: not stale).

    A key set is stale once its TTL has run out while fetches fail: from the later of
    the TTL's end (``fetched_at + ttl``) and the first failed fetch since the last good
    one (``failing_since``). It is served for ``max_stale`` seconds from then.
    """
    if failing_since is None:
        return None
    since = max(fetched_at + ttl, failing_since)
    if now < since:
        return None
    stale_for = now - since
    return Staleness(source, stale_for, max(0.0, max_stale - stale_for), max_stale, problem)


@dataclass(frozen=True)
class JwksStatus:
    """What a status line shows about the key cache.

    ``key_count``/``kids`` count usable signing keys only; ``age_seconds`` is None
    before the first successful fetch; ``last_error`` is the last failed fetch
    (cleared by a successful one); ``ignored`` says, one sentence each, which signing
    keys of the last good copy were ignored and why (empty: none); ``stale`` is set
    while the key set is served past its TTL because the JWKS fails (and once it is no
    longer served).
    """

    source: str
    key_count: int
    kids: tuple[str, ...]
    age_seconds: float | None
    last_error: str | None
    ignored: tuple[str, ...] = ()
    stale: Staleness | None = None


@dataclass
class JwksSnapshot:
    """One successfully read JWKS: its usable keys and their parsed forms, and the
    signing keys it ignored (with why)."""

    keys: tuple[dict[str, Any], ...]
    fetched_at: float
    parsed: dict[tuple[int, str], PyJWK] = field(default_factory=dict)
    ignored: tuple[IgnoredKey, ...] = ()

    @property
    def kids(self) -> list[str]:
        return [k["kid"] for k in self.keys if isinstance(k.get("kid"), str)]

    def has_kid(self, kid: str) -> bool:
        """Usable or ignored: an ignored key's kid is known, so it does not make the
        cache refetch the JWKS as an unknown kid would."""
        return any(k.get("kid") == kid for k in self.keys) or any(
            k.kid == kid for k in self.ignored
        )


class KeySource(Protocol):
    """Where ``verify_token`` gets its keys: a ``rrdev.clients.jwks.JwksCache`` (or
    anything with these members).

    ``get_key`` raises ``KeyNotFound`` or ``JwksUnavailable``; ``source`` names the
    keys for people; ``refetch_interval`` and ``status().last_error`` explain why an
    unknown kid was not fetched again; ``staleness()`` says whether the key set
    ``get_key`` just used is stale (a warning in the verification).
    """

    @property
    def source(self) -> str: ...

    @property
    def refetch_interval(self) -> float: ...

    async def get_key(self, kid: str | None, alg: str) -> PyJWK: ...

    def status(self) -> JwksStatus: ...

    def staleness(self) -> Staleness | None: ...


def check_document(document: Any, where: str) -> dict[str, Any]:
    """``document`` if it is a JWKS (an object with a ``keys`` list), else
    ``JwksUnavailable`` for ``where``."""
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise JwksUnavailable(where, 'the document has no "keys" list (is this a JWKS URL?)')
    return document


def usable_keys(document: dict[str, Any]) -> tuple[dict[str, Any], ...]:
    """The document's usable signing keys, copied; every other entry is dropped."""
    return read_keys(document)[0]


def read_keys(
    document: dict[str, Any],
) -> tuple[tuple[dict[str, Any], ...], tuple[IgnoredKey, ...]]:
    """The document's usable signing keys (copied), and the signing keys it ignores
    as weak or self-contradictory, with why. Entries that are no signing keys at all
    (``oct``, ``use`` enc, ...) are dropped without a word."""
    usable: list[dict[str, Any]] = []
    ignored: list[IgnoredKey] = []
    for jwk in document["keys"]:
        if not _is_signing_key(jwk):
            continue
        problem = unusable_reason(jwk, ALGORITHM_KEY_TYPES)
        if problem is None:
            usable.append(dict(jwk))
        else:
            ignored.append(problem)
    return tuple(usable), tuple(ignored)


def _is_signing_key(jwk: Any) -> bool:
    """Asymmetric, for signatures, with a sane kid. Everything else is ignored."""
    kty = jwk.get("kty") if isinstance(jwk, dict) else None
    if not isinstance(kty, str) or kty not in _SIGNING_KEY_TYPES:
        return False
    if jwk.get("use", "sig") != "sig":
        return False
    if "kid" in jwk and not isinstance(jwk["kid"], str):
        return False
    ops = jwk.get("key_ops")
    return ops is None or (isinstance(ops, list) and "verify" in ops)


def _misfit(jwk: dict[str, Any], alg: str) -> str | None:
    """Why this key cannot verify ``alg`` (None: it can)."""
    wanted = ALGORITHM_KEY_TYPES.get(alg)
    if wanted is None:
        return f"rrdev cannot verify {alg}"
    kty, curves = wanted
    if jwk.get("kty") != kty:
        return f"it is an {jwk.get('kty')} key and {alg} needs {kty}"
    if curves is not None and jwk.get("crv") not in curves:
        return f"its curve {jwk.get('crv')} does not fit {alg}"
    if jwk.get("alg") not in (None, alg):
        return f"it is declared for {jwk.get('alg')}"
    return None


def choose_key(snapshot: JwksSnapshot, kid: str | None, alg: str) -> PyJWK:
    """The key in ``snapshot`` for a token with this ``kid`` and ``alg``, bound to
    ``alg``; ``KeyNotFound`` says why none fits."""
    known = snapshot.kids
    if kid is None and not snapshot.keys and snapshot.ignored:
        raise _unusable(None, known, snapshot.ignored)
    if kid is None and len(snapshot.keys) != 1:
        raise KeyNotFound(
            None,
            known,
            f"the token has no kid and the JWKS has {len(snapshot.keys)} usable keys, "
            "so rrdev cannot tell which one signed it",
            _kids_hint(known),
        )
    candidates = [
        (index, jwk)
        for index, jwk in enumerate(snapshot.keys)
        if kid is None or jwk.get("kid") == kid
    ]
    ignored = [k for k in snapshot.ignored if k.kid == kid]
    if not candidates and ignored:
        raise _unusable(kid, known, ignored)
    if not candidates:
        raise KeyNotFound(
            kid, known, f"the JWKS has no key with kid {clip(kid)}", _kids_hint(known)
        )
    problem = ""
    for index, jwk in candidates:
        problem = _misfit(jwk, alg) or ""
        if not problem:
            return _parsed(snapshot, index, alg, kid, known)
    raise KeyNotFound(
        kid,
        known,
        f"the JWKS key {clip(kid)} cannot verify an {clip(alg, quote=False)} token: {problem}",
        _kids_hint(known),
    )


def _parsed(
    snapshot: JwksSnapshot, index: int, alg: str, kid: str | None, known: list[str]
) -> PyJWK:
    cached = snapshot.parsed.get((index, alg))
    if cached is not None:
        return cached
    try:
        # Bind the algorithm to the key: PyJWS then verifies with exactly this
        # algorithm, whatever else the token claims.
        key = PyJWK(snapshot.keys[index], algorithm=alg)
    except (PyJWTError, ValueError, TypeError) as error:
        raise KeyNotFound(
            kid, known, f"the JWKS key {clip(kid)} could not be loaded: {error}"
        ) from None
    snapshot.parsed[(index, alg)] = key
    return key


def _unusable(kid: str | None, known: list[str], ignored: Sequence[IgnoredKey]) -> KeyUnusable:
    """The token's kid (or, without one, the whole JWKS) names only ignored keys."""
    hint = "; ".join(dict.fromkeys(k.hint for k in ignored if k.hint))
    return KeyUnusable(
        kid,
        known,
        "; ".join(k.why for k in ignored) + "; rrdev ignored it when it read the JWKS",
        hint,
    )


def _kids_hint(known: list[str]) -> str:
    if not known:
        return "the JWKS has no usable signing keys"
    return "the JWKS has kids: " + ", ".join(known)
