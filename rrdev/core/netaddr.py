"""Is this address this machine? One answer for the proxy's bind warning, for which
outbound calls skip HTTP(S)_PROXY (a proxy cannot reach our own loopback) and, for a
``Host`` header, for the Host allow-list (``is_loopback_host``, ``rrdev.core.hosts``)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an IP, brackets allowed) only means this machine."""
    return host == "localhost" or _loopback_ip(host, mapped=False)


def is_loopback_host(host: str) -> bool:
    """Whether a normalised ``Host`` only ever means this machine: ``localhost`` and its
    subdomains (RFC 6761), 127.0.0.0/8, ``[::1]`` and ``[::ffff:127.x.x.x]``."""
    if host == "localhost" or host.endswith(".localhost"):
        return True
    return _loopback_ip(host, mapped=True)


def _loopback_ip(host: str, *, mapped: bool) -> bool:
    """Whether ``host`` is a loopback IP (brackets allowed); with ``mapped``, an
    IPv4-mapped IPv6 loopback too (a Host header may carry that form)."""
    try:
        address = ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    if address.is_loopback:
        return True
    v4 = getattr(address, "ipv4_mapped", None)
    return mapped and v4 is not None and v4.is_loopback


def is_loopback_url(url: object) -> bool:
    """Whether ``url`` is an http(s) URL whose host is loopback (anything else: False)."""
    if not isinstance(url, str):
        return False
    host = urlsplit(url).hostname
    return host is not None and is_loopback(host)
