"""The workbench's memory and token helpers, without Textual.

``CurrentToken`` is the one token requests are sent with (pasted, fetched, minted or
minted by make-it-pass). ``MintForm`` is the token panel's small form and ``mint``
signs it like ``rrdev token mint`` (the profile's issuer and audience, its provider's
extra claims). ``Workbench`` remembers what the TUI sent: each send carries a mark
(``requests.MARK_HEADER``); when its record arrives the row is linked to what it
replays or fixes ("fix of #12"), and the body it sent is kept for a later replay.
"""

from __future__ import annotations

import json
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from rrdev.core.records import RequestRecord
from rrdev.core.redact import fingerprint
from rrdev.core.tokens import decode_unverified, humanize_delta
from rrdev.tui.workbench.requests import MARK_HEADER, WorkbenchRequest

if TYPE_CHECKING:
    from rrdev.core.keyset import Keyset
    from rrdev.core.model import Profile

__all__ = ["CurrentToken", "MintForm", "Workbench", "expiry_label", "mint", "parse_claims"]

#: How many sends (and their bodies) the workbench remembers.
MAX_REMEMBERED = 256


@dataclass(frozen=True)
class CurrentToken:
    """A token and what it says about itself (decoded, not verified)."""

    raw: str
    source: str
    header: Mapping[str, Any]
    claims: Mapping[str, Any]

    @classmethod
    def of(cls, raw: str, source: str) -> CurrentToken:
        """Decode ``raw`` (a ``Bearer`` prefix is dropped); raises ``TokenInputError``
        for anything that is not a JWT."""
        raw = raw.strip()
        if raw[:7].lower() == "bearer ":
            raw = raw[7:].strip()
        decoded = decode_unverified(raw)
        return cls(raw, source, decoded.header, decoded.claims)

    @property
    def fingerprint(self) -> str:
        return fingerprint(self.raw)

    @property
    def expires_at(self) -> float | None:
        exp = self.claims.get("exp")
        return exp if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None


def expiry_label(token: CurrentToken | None, now: float) -> str:
    """'token 59m left' / 'token expired 5m ago' / 'no token' for the status line."""
    if token is None:
        return "no token (t)"
    exp = token.expires_at
    if exp is None:
        return f"token {token.source}, no exp"
    left = exp - now
    if left >= 0:
        return f"token {token.source}, {humanize_delta(left)} left"
    return f"token {token.source}, expired {humanize_delta(-left)} ago"


@dataclass(frozen=True)
class MintForm:
    """The token panel's mint form. ``expires_in`` seconds (negative: already expired);
    ``not_before`` seconds from now (positive: not valid yet); empty audience: the
    profile's."""

    scope: str = ""
    claims: str = ""
    audience: str = ""
    expires_in: int = 3600
    not_before: int | None = None


def parse_claims(text: str) -> dict[str, Any]:
    """``name=value`` per line or comma (values JSON when they parse, else text), as
    ``rrdev token mint --claim``; raises ValueError naming the bad entry."""
    out: dict[str, Any] = {}
    for entry in text.replace("\n", ",").split(","):
        if not entry.strip():
            continue
        name, sep, value = entry.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"claim {entry.strip()!r} is not name=value")
        try:
            out[name.strip()] = json.loads(value)
        except ValueError:
            out[name.strip()] = value.strip()
    return out


def mint(keyset: Keyset, profile: Profile, form: MintForm, now: float | None = None) -> str:
    """A token signed by ``keyset`` that the profile's proxy credential accepts (unless
    the form says otherwise: expired, not yet valid, another audience)."""
    from rrdev.checks.tokens import mint_identity, provider_scope
    from rrdev.core.keyset import mint_token

    issuer, audience, extra = mint_identity(profile)
    scope, scope_claims = provider_scope(profile, form.scope.strip() or None)
    return mint_token(
        keyset,
        issuer=issuer,
        audience=form.audience.strip() or audience,
        subject="rrdev-tui@clients",
        scope=scope,
        claims={**extra, **scope_claims, **parse_claims(form.claims)},
        expires_in=form.expires_in,
        not_before=form.not_before,
        now=time.time() if now is None else now,
    )


@dataclass(frozen=True)
class Sending:
    """One workbench send: what it was and what it relates to ("fix of #12")."""

    request: WorkbenchRequest
    link: str = ""


class Workbench:
    """The current token and what the workbench sent, by mark and by row number."""

    def __init__(self) -> None:
        self.token: CurrentToken | None = None
        self._next_mark = 0
        self._sending: OrderedDict[int, Sending] = OrderedDict()
        #: row number -> the send it is (for links and replays of bodies)
        self._rows: OrderedDict[int, Sending] = OrderedDict()

    def prepare(self, request: WorkbenchRequest, link: str = "") -> WorkbenchRequest:
        """``request`` with the current token and a fresh mark, remembered."""
        self._next_mark += 1
        token = self.token.raw if self.token is not None else None
        ready = request.with_token(token).marked(self._next_mark)
        _put(self._sending, self._next_mark, Sending(request, link))
        return ready

    def arrived(self, seq: int, record: RequestRecord) -> None:
        """A record reached the table: if it is one of ours, remember its row."""
        mark = _mark_of(record)
        sending = self._sending.pop(mark, None) if mark is not None else None
        if sending is not None:
            _put(self._rows, seq, sending)

    def link_of(self, seq: int) -> str:
        """'fix of #12', 'replay of #3', ... for row ``seq`` ('' when none)."""
        sending = self._rows.get(seq)
        return sending.link if sending is not None else ""

    def sent_as(self, seq: int) -> WorkbenchRequest | None:
        """What the workbench sent as row ``seq`` (its body included), if it did."""
        sending = self._rows.get(seq)
        return sending.request if sending is not None else None


def _put(store: OrderedDict[int, Sending], key: int, value: Sending) -> None:
    store[key] = value
    while len(store) > MAX_REMEMBERED:
        store.popitem(last=False)


def _mark_of(record: RequestRecord) -> int | None:
    for name, value in record.request_headers:
        if name == MARK_HEADER:
            return int(value) if value.isdigit() else None
    return None
