"""Aliases: which profile answers at which ``{alias}.localhost`` host name.

``rrdev up`` with several profiles serves them all on one port, as the gateway serves
each proxy at ``https://{alias}.requestrocket.io``: the request's Host picks the
profile (``{alias}.localhost``; browsers and curl resolve ``*.localhost`` to loopback).
A profile's alias is ``proxy.alias``, else a slug of ``proxy.name``; it must be one
DNS label, and two profiles served together must not share one.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from rrdev.core.errors import ProfileError
from rrdev.core.model import Profile

__all__ = [
    "LOCAL_SUFFIX",
    "ServedAlias",
    "alias_label_problem",
    "alias_of_host",
    "served_aliases",
    "slug",
]

#: Every alias is served under this name: ``my-api.localhost``.
LOCAL_SUFFIX = ".localhost"
#: One DNS label (RFC 1123): what a host name can carry in front of ``.localhost``.
_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class ServedAlias:
    """One profile served at ``{alias}.localhost``; ``from_name`` when the alias is
    the slug of ``proxy.name`` (the profile sets no ``proxy.alias``)."""

    alias: str
    profile: Profile
    from_name: bool = False


def slug(name: str) -> str:
    """``proxy.name`` as a host label: lower-case, runs of other characters as one
    ``-``, no ``-`` at either end, at most 63 characters ("" when nothing is left)."""
    text = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return text[:63].rstrip("-")


def alias_label_problem(alias: str) -> str | None:
    """Why ``alias`` cannot be served at ``{alias}.localhost`` (None: it can)."""
    if _LABEL.fullmatch(alias.lower()):
        return None
    return (
        f"{alias!r} is not one DNS label (letters, digits and '-', at most 63, "
        "not starting or ending with '-')"
    )


def alias_of_host(host: str) -> str | None:
    """The alias a normalised Host names (``my-api.localhost`` -> ``my-api``); None for
    any other host, including deeper names (``a.b.localhost``)."""
    if not host.endswith(LOCAL_SUFFIX):
        return None
    label = host[: -len(LOCAL_SUFFIX)]
    return label if label and "." not in label else None


def served_aliases(profiles: Sequence[Profile]) -> tuple[ServedAlias, ...]:
    """Each profile with the alias it is served at, in the order given.

    Raises ``ProfileError`` (exit 3) for an alias that is not one DNS label, a profile
    with neither alias nor a usable name, and an alias two profiles share (naming both
    files).
    """
    served: list[ServedAlias] = []
    seen: dict[str, ServedAlias] = {}
    for profile in profiles:
        entry = _served(profile)
        other = seen.get(entry.alias)
        if other is not None:
            raise _duplicate(entry, other)
        seen[entry.alias] = entry
        served.append(entry)
    return tuple(served)


def _served(profile: Profile) -> ServedAlias:
    proxy = profile.proxy
    if proxy.alias is not None:
        problem = alias_label_problem(proxy.alias)
        if problem is not None:
            raise _profile_error(
                profile,
                "proxy.alias",
                f"{problem}: it cannot be served at {proxy.alias}{LOCAL_SUFFIX}",
                "the gateway serves it at {alias}.requestrocket.io too: use e.g. 'my-api'",
            )
        return ServedAlias(proxy.alias.lower(), profile)
    name = slug(proxy.name)
    if not name:
        raise _profile_error(
            profile,
            "proxy.name",
            f"no proxy.alias, and proxy.name {proxy.name!r} gives no host label",
            "set proxy.alias (e.g. 'my-api'): with several profiles, each is served at "
            "{alias}.localhost",
        )
    return ServedAlias(name, profile, from_name=True)


def _duplicate(entry: ServedAlias, other: ServedAlias) -> ProfileError:
    def where(served: ServedAlias) -> str:
        key = "proxy.name" if served.from_name else "proxy.alias"
        line = served.profile.lines.get(key)
        return f"{served.profile.path}" + (f":{line}" if line else "") + f" ({key})"

    return _profile_error(
        entry.profile,
        "proxy.name" if entry.from_name else "proxy.alias",
        f"alias {entry.alias!r} is also served by {where(other)}: each profile served on "
        f"one port needs its own alias",
        "give each profile its own proxy.alias (or serve them on separate ports)",
    )


def _profile_error(profile: Profile, key: str, message: str, hint: str) -> ProfileError:
    return ProfileError(message, file=profile.path, line=profile.lines.get(key), key=key, hint=hint)
