"""Is this address this machine? One answer for the proxy's bind warning and for
which outbound calls skip HTTP(S)_PROXY (a proxy cannot reach our own loopback)."""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit


def is_loopback(host: str) -> bool:
    """Whether ``host`` (a name or an IP, brackets allowed) only means this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def is_loopback_url(url: object) -> bool:
    """Whether ``url`` is an http(s) URL whose host is loopback (anything else: False)."""
    if not isinstance(url, str):
        return False
    host = urlsplit(url).hostname
    return host is not None and is_loopback(host)
