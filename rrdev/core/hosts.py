"""The Host allow-list: which ``Host`` header values the proxy serves (DNS rebinding).

A web page can re-point a name it controls (``evil.example``) at 127.0.0.1 after the
browser loaded it; its scripts then reach the loopback listener as same-origin requests,
and read the answers. The one sign is the ``Host`` header, which still names the page's
host. So the proxy serves a request only when its Host is a loopback name or address
(``localhost``, ``*.localhost``, 127.0.0.0/8, ``[::1]``) or one the profile lists in
``proxy.allowed_hosts``. The port is not compared: a rebinding page uses the right one.
"""

from __future__ import annotations

import ipaddress
import re
from functools import lru_cache

from rrdev.core.netaddr import is_loopback_host

__all__ = [
    "ANY_HOST",
    "ANY_HOST_WARNING",
    "allowed_host_entry",
    "host_allowed",
    "host_problem",
    "is_loopback_host",
    "normalise_host",
]

#: ``allowed_hosts = ["*"]``: any Host is served (the check is off).
ANY_HOST = "*"
ANY_HOST_WARNING = (
    "proxy.allowed_hosts contains '*': any Host is served, so a web page that points its "
    "own name at this proxy (DNS rebinding) can reach the backend through it"
)

# A DNS name (underscores too: container and compose service names have them) or a
# bracketed IPv6 address, then an optional port (RFC 9110 allows an empty one).
_HOST_HEADER = re.compile(
    r"(?:\[(?P<v6>[0-9a-f:.]+)\]|(?P<name>[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?))(?::[0-9]{0,5})?"
)
_ENTRY = re.compile(r"(?:\*\.)?[a-z0-9_-]+(?:\.[a-z0-9_-]+)*\.?")
_DIGITS_AND_DOTS = re.compile(r"[0-9.]+")


def normalise_host(value: str) -> str | None:
    """The host of a ``Host`` header value, as compared: lower-case, without the port
    or a trailing dot; IPv6 compressed in brackets. None when the value is not a host
    a client would send (userinfo, a path, spaces, ``127.1``-style numbers)."""
    match = _HOST_HEADER.fullmatch(value.strip().lower())
    if match is None:
        return None
    if match.group("v6") is not None:
        return _ipv6(match.group("v6"))
    return _name(match.group("name"))


def _ipv6(text: str) -> str | None:
    try:
        return f"[{ipaddress.IPv6Address(text).compressed}]"
    except ValueError:
        return None


def _name(text: str) -> str | None:
    name = text.removesuffix(".")
    if _DIGITS_AND_DOTS.fullmatch(name):
        # Only a canonical dotted quad: "127.1" or "0177.0.0.1" mean different
        # addresses to different resolvers, and no browser sends them.
        try:
            return str(ipaddress.IPv4Address(name))
        except ValueError:
            return None
    return name


def host_allowed(host: str, allowed: tuple[str, ...]) -> bool:
    """Whether a normalised host is served: loopback, or matched by an entry of
    ``allowed`` (as ``allowed_host_entry`` returns them: exact names and addresses,
    ``*.example.test`` for any name under ``example.test``, ``*`` for any host)."""
    if is_loopback_host(host):
        return True
    for entry in allowed:
        if entry in (ANY_HOST, host):
            return True
        if entry.startswith("*.") and host.endswith(entry[1:]):
            return True
    return False


@lru_cache(maxsize=512)
def host_problem(value: str, allowed: tuple[str, ...]) -> str | None:
    """Why a ``Host`` header value is not served (None: it is). Cached: a proxy sees
    few distinct Host values, and the answer depends on nothing else."""
    host = normalise_host(value)
    if host is None:
        return "not a valid host[:port]"
    if not host_allowed(host, allowed):
        return "not a loopback name or address"
    return None


def allowed_host_entry(text: str) -> str:
    """An ``allowed_hosts`` entry normalised for ``host_allowed``; ``ValueError`` saying
    what is wrong (a port, a scheme, a path, a malformed address)."""
    value = text.strip().lower()
    if value == ANY_HOST:
        return ANY_HOST
    if "://" in value or "/" in value:
        raise ValueError("a host name or address, not a URL")
    if value.startswith("[") or value.count(":") > 1:
        host = _ipv6(value.strip("[]")) if value.endswith("]") or "[" not in value else None
        if host is None:
            raise ValueError("not a valid IPv6 address")
        return host
    if ":" in value:
        raise ValueError("no port: any port of an allowed host is served")
    if not _ENTRY.fullmatch(value):
        raise ValueError("expected a host name ('myapp.test', '*.myapp.test') or an address")
    if value.startswith("*."):
        return "*." + value[2:].removesuffix(".")
    host = _name(value)
    if host is None:
        raise ValueError("not a valid IPv4 address (write it as four decimal numbers)")
    return host
