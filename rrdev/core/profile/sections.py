"""The plain sections: ``[proxy]`` (listen address, forwarded headers, rules),
``[target]`` (the backend's URL, timeouts and TLS) and ``[issuer]`` (the local issuer
and its clients)."""

from __future__ import annotations

import re
import unicodedata
from urllib.parse import urlsplit

from rrdev.core.hosts import allowed_host_entry
from rrdev.core.model import IssuerClient, IssuerConfig, Proxy, Target
from rrdev.core.profile.client_auth import _issuer_client_authenticates, _private_key_file
from rrdev.core.profile.filters import _response_filter
from rrdev.core.profile.headers import (
    _additional_headers,
    _forward_authorization_as,
    _header_filters,
)
from rrdev.core.profile.reading import _Table
from rrdev.core.profile.rules import _rules

PROXY_KEYS = (
    *("name", "alias", "region", "default_effect", "listen", "additional_headers"),
    *("header_filters", "forward_authorization", "forward_authorization_as"),
    *("preflight_requires_auth", "rules", "allowed_hosts", "method_override"),
    *("active", "response_filter"),
)
TARGET_KEYS = (
    *("name", "base_url", "test_path", "region", "default_effect", "timeout_seconds"),
    *("connect_timeout_seconds", "ca_bundle", "verify", "rules"),
    "response_filter",
)
ISSUER_KEYS = ("issuer", "token_lifetime_seconds", "clients")
ISSUER_CLIENT_KEYS = (
    *("client_id", "client_secret", "audiences", "scopes"),
    *("public_key_file", "jwks_uri"),
)


def _proxy(t: _Table | None) -> Proxy:
    if t is None:
        return Proxy()
    host, port = _listen(t)
    additional = _additional_headers(t)
    return Proxy(
        name=t.str_or("name", Proxy.name),
        alias=t.opt_str("alias"),
        region=t.opt_str("region"),
        default_effect=t.effect(),  # type: ignore[arg-type]
        listen_host=host,
        listen_port=port,
        additional_headers=additional,
        header_filters=_header_filters(t),
        forward_authorization=t.boolean("forward_authorization", True),
        forward_authorization_as=_forward_authorization_as(t, additional),
        preflight_requires_auth=t.boolean("preflight_requires_auth", False),
        rules=_rules(t, "proxy"),
        allowed_hosts=_allowed_hosts(t),
        method_override=t.choice(  # type: ignore[arg-type]
            "method_override", ("refuse", "judge"), Proxy.method_override
        ),
        active=t.boolean("active", True),
        response_filter=_response_filter(t),
    )


def _listen(t: _Table) -> tuple[str, int]:
    value = t.opt_str("listen")
    if value is None:
        return Proxy.listen_host, Proxy.listen_port
    match = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[^:\[\]\s]+):(\d{1,5})", value)
    if match is None:
        t.fail("listen", f"expected 'host:port', got {value!r}", "e.g. listen = '127.0.0.1:8787'")
    port = int(match.group(2))
    if not 1 <= port <= 65535:
        t.fail("listen", f"port must be between 1 and 65535, got {port}")
    return match.group(1).strip("[]"), port


def _allowed_hosts(t: _Table) -> tuple[str, ...]:
    """``allowed_hosts``, each entry checked and normalised (see ``rrdev.core.hosts``)."""
    entries = []
    for n, text in enumerate(t.str_list("allowed_hosts")):
        try:
            entries.append(allowed_host_entry(text))
        except ValueError as exc:
            t.ctx.fail(
                f"{t.at('allowed_hosts')}[{n}]",
                f"{text!r} is not an allowed host: {exc}",
                "e.g. allowed_hosts = ['myapp.test', '*.dev.example.com', '192.168.1.20']",
            )
    return tuple(entries)


def _target(t: _Table | None) -> Target:
    if t is None:
        return Target()
    base_url = _base_url(t)
    test_path = t.opt_str("test_path")
    if test_path is not None and not test_path.startswith("/"):
        t.fail("test_path", f"must start with '/', got {test_path!r}")
    return Target(
        name=t.str_or("name", Target.name),
        base_url=base_url,
        test_path=test_path,
        region=t.opt_str("region"),
        default_effect=t.effect(),  # type: ignore[arg-type]
        rules=_rules(t, "target"),
        timeout_seconds=t.number("timeout_seconds", Target.timeout_seconds),
        connect_timeout_seconds=t.number("connect_timeout_seconds", Target.connect_timeout_seconds),
        ca_bundle=t.opt_str("ca_bundle"),
        verify=t.boolean("verify", True),
        response_filter=_response_filter(t),
    )


def _base_url(t: _Table) -> str:
    """The rules rrdev.servers.proxy applies before it listens (``state._upstream_of``), here, so
    ``validate`` refuses what ``up`` would. The URL is not echoed once it might hold a
    password."""
    base_url = t.req_str("base_url", "e.g. base_url = 'https://api.example.com'")
    if any(c.isspace() or unicodedata.category(c) == "Cc" for c in base_url):
        t.fail(
            "base_url",
            "must not contain whitespace or control characters",
            "percent-encode them in the path (a space is %20)",
        )
    try:
        parts = urlsplit(base_url)
        port = parts.port
        userinfo = parts.username is not None or parts.password is not None
    except ValueError as exc:
        t.fail("base_url", f"not a valid URL: {exc}", "e.g. base_url = 'https://api.example.com'")
    if userinfo:
        t.fail(
            "base_url",
            "must not carry user:password@ (rrdev would send it as a second Authorization)",
            "use [target_credential] auth_type = 'basic' with ${VARS} instead",
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        t.fail("base_url", f"expected an http:// or https:// URL, got {base_url!r}")
    if port == 0:
        t.fail("base_url", "port must be between 1 and 65535, got 0")
    if parts.query or parts.fragment:
        t.fail(
            "base_url",
            "must not have a query or fragment",
            "base_url is a prefix: requests go to base_url + path + the caller's query. "
            "For an API key in the query use [target_credential] auth_type = 'api_key' "
            "with query_param",
        )
    return base_url


def _issuer(t: _Table) -> IssuerConfig:
    clients = []
    for c in t.children("clients", ISSUER_CLIENT_KEYS):
        _issuer_client_authenticates(c)
        clients.append(
            IssuerClient(
                client_id=c.req_str("client_id"),
                client_secret=c.secret("client_secret"),
                audiences=c.str_list("audiences"),
                scopes=c.str_list("scopes"),
                public_key_file=_private_key_file(c, "public_key_file"),
                jwks_uri=c.opt_str("jwks_uri"),
            )
        )
    return IssuerConfig(
        issuer=t.str_or("issuer", IssuerConfig.issuer),
        clients=tuple(clients),
        token_lifetime_seconds=t.integer(
            "token_lifetime_seconds", IssuerConfig.token_lifetime_seconds, 1
        ),
    )
