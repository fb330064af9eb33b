"""Audience hints for a token rrdev fetched itself: they say what rrdev asked for.

The proxy's hint for a token without ``aud`` is generic ("ask for your API identifier
as the audience"): it cannot know how the token was requested. When rrdev fetched the
token (``rrdev check``, ``explain --auth``, ``token fetch``) it knows exactly which
parameters it sent, so "request the token with audience=..." would be wrong advice
when it already did: the server ignored ``audience`` and probably reads ``aud`` (or
``resource``) instead.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from rrdev.clients.oauth2 import TokenRequest
from rrdev.core.records import Explanation, Verification
from rrdev.core.tokens import clip

__all__ = ["asked_audience", "audience_hint", "fetched_token_explanation", "token_audience_note"]

#: Parameters that name the audience, in the order servers are likely to honour them.
AUDIENCE_PARAMETERS = ("aud", "audience", "resource")


def asked_audience(request: TokenRequest) -> tuple[str, str] | None:
    """(parameter, value) of the audience rrdev asked for, or None."""
    sent = dict(request.extra)
    if request.audience:
        sent.setdefault("audience", request.audience)
    if request.resource:
        sent.setdefault("resource", request.resource)
    for name in AUDIENCE_PARAMETERS:
        if sent.get(name):
            return name, sent[name]
    return None


def audience_hint(request: TokenRequest, expected: Sequence[str], got: Sequence[str]) -> str:
    """What to do when the token's ``aud`` (``got``, empty when absent) is not one of
    ``expected``, given what ``request`` asked for."""
    want = expected[0] if expected else "<your API identifier>"
    asked = asked_audience(request)
    if asked is None:
        return (
            f"rrdev asked for this token without an audience: set audience = {want!r} in "
            f"[auth] (or extra = {{ aud = {want!r} }} for servers that read aud)"
        )
    name, value = asked
    if value not in expected:
        return (
            f"rrdev asked for this token with {name}={clip(value)}, which the profile does "
            f"not accept: ask for {want!r} instead, or add {clip(value)} to "
            "proxy_credential.audience"
        )
    shown = "without aud" if not got else "with aud " + ", ".join(clip(a) for a in got[:3])
    if name == "aud":
        return (
            f"rrdev asked for this token with aud={clip(value)} (extra) and got it {shown}: "
            "check that the server lets this client ask for that audience"
        )
    return (
        f"rrdev asked for this token with {name}={clip(value)} and got it {shown}: the "
        "server ignored that parameter. For servers that read aud, set "
        f"extra = {{ aud = {value!r} }} in [auth]"
    )


def fetched_token_explanation(expl: Explanation, request: TokenRequest) -> Explanation:
    """``expl`` with an audience hint that says what rrdev asked for, when the token
    (fetched with ``request``) was refused for its audience; else ``expl`` as it is."""
    ver = expl.verification
    if ver is None or expl.reason not in ("claim_missing", "audience_mismatch"):
        return expl
    failed = next((s for s in ver.steps if s.status == "failed"), None)
    if failed is None or failed.name != "audience":
        return expl
    expected = [e for e in failed.expected.split(" | ") if e and not e.startswith("(")]
    hint = audience_hint(request, expected, _auds(ver))
    return replace(expl, hint=hint, verification=replace(ver, hint=hint))


def token_audience_note(request: TokenRequest, claims: dict[str, Any] | None) -> str | None:
    """For ``token fetch``: a note when the token's ``aud`` lacks what rrdev asked for
    (None when it has it, when nothing was asked, or the token is not a JWT)."""
    asked = asked_audience(request)
    if asked is None or claims is None:
        return None
    auds = _aud_list(claims.get("aud"))
    if asked[1] in auds:
        return None
    return audience_hint(request, [asked[1]], auds)


def _auds(ver: Verification) -> list[str]:
    return _aud_list((ver.claims or {}).get("aud"))


def _aud_list(aud: Any) -> list[str]:
    if isinstance(aud, str):
        return [aud]
    if isinstance(aud, list):
        return [a for a in aud if isinstance(a, str)]
    return []
