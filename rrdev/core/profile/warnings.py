"""What ``rrdev validate`` reports without refusing the profile.

``${NAME}`` references in secret fields stay unresolved (``Secret``); ``profile_warnings``
lists the ones whose variable is unset, methods outside ``STANDARD_METHODS`` (likely
typos), ``verify = false`` on the target, a Host check that is off or serves an exposed
listener only loopback names, and header conditions on names with ``_``.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from rrdev.core.hosts import ANY_HOST, ANY_HOST_WARNING
from rrdev.core.model import ENV_REF, CheckSpec, Profile, Secret
from rrdev.core.netaddr import is_loopback
from rrdev.core.profile.line_index import line_of
from rrdev.core.profile.reading import _did_you_mean

#: Methods a rule or check may name without a warning: RFC 9110's, PATCH and common
#: WebDAV. Others are allowed (custom methods exist) but are usually typos (``GETT``).
STANDARD_METHODS = (
    *("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"),
    *("PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "REPORT", "SEARCH"),
)


@dataclass(frozen=True)
class ProfileWarning:
    """Something ``rrdev validate`` reports without refusing the profile."""

    message: str
    file: str | None = None
    line: int | None = None
    key: str | None = None

    def __str__(self) -> str:
        where = self.file or "<profile>"
        if self.line is not None:
            where += f":{self.line}"
        if self.key:
            where += f": {self.key}"
        return f"{where}: {self.message}"


def profile_warnings(profile: Profile, env: Mapping[str, str] = os.environ) -> list[ProfileWarning]:
    """Every ``${NAME}`` reference whose variable is unset or empty (secrets resolve
    lazily, so these are warnings until a command needs the value), every rule or
    check method outside ``STANDARD_METHODS`` (likely a typo), plus ``verify = false``
    on the target."""
    found: list[ProfileWarning] = []
    for secret in _secrets(profile):
        for name in secret.references:
            if not env.get(name):
                message = f"environment variable {name} is not set"
                found.append(ProfileWarning(message, secret.file, secret.line, secret.key))
    found.extend(_method_warnings(profile))
    for index, check in enumerate(profile.checks):
        found.extend(_check_token_warnings(profile, index, check, env))
    if not profile.target.verify:
        key = "target.verify"
        message = "TLS verification of the backend is off (verify = false); development only"
        found.append(ProfileWarning(message, profile.path, line_of(profile, key), key))
    found.extend(_host_warnings(profile))
    found.extend(_twin_header_warnings(profile))
    found.extend(_key_file_warnings(profile))
    found.extend(_alias_warnings(profile))
    found.extend(_region_warnings(profile))
    found.extend(_static_credential_warnings(profile))
    return found


def _alias_warnings(profile: Profile) -> Iterator[ProfileWarning]:
    """An alias that cannot be a host name: ``rrdev up`` with several profiles refuses
    it (it serves each at ``{alias}.localhost``), and the gateway serves it as a name."""
    from rrdev.core.aliases import alias_label_problem

    alias = profile.proxy.alias
    problem = alias_label_problem(alias) if alias is not None else None
    if problem is not None:
        key = "proxy.alias"
        message = f"{problem}: `rrdev up` cannot serve it beside other profiles"
        yield ProfileWarning(message, profile.path, line_of(profile, key), key)


def _region_warnings(profile: Profile) -> Iterator[ProfileWarning]:
    """The seed's region mistake: a credential (or the target) in another region than
    the proxy. The gateway's regional constraints refuse such a setup."""
    proxy_region = profile.proxy.region
    if proxy_region is None:
        return
    for section in ("proxy_credential", "target_credential", "target"):
        region = getattr(profile, section).region
        if region is not None and region != proxy_region:
            key = f"{section}.region"
            message = (
                f"{section}.region is {region!r} but proxy.region is {proxy_region!r}: the "
                "gateway expects them to match under regional compliance constraints"
            )
            yield ProfileWarning(message, profile.path, line_of(profile, key), key)


def _static_credential_warnings(profile: Profile) -> Iterator[ProfileWarning]:
    """A static proxy credential's secret written literally (it belongs in ``${VAR}``),
    and token conditions, which never see claims under a static credential."""
    cred = profile.proxy_credential
    if not cred.is_static:
        return
    for secret in (cred.secret, cred.password):
        if secret is not None and not secret.references:
            message = (
                "a literal secret in the profile: use an environment reference such as "
                "'${PROXY_SECRET}' so the profile can be committed"
            )
            yield ProfileWarning(message, profile.path, line_of(profile, secret.key), secret.key)
    for rule in profile.all_rules():
        if rule.token:
            key = f"{rule.scope}.rules[{rule.index}].token"
            message = (
                f"rule {rule.name!r} has token conditions, but auth_type = {cred.auth_type!r} "
                "gives no claims: must_exist never holds and must_absent always does"
            )
            yield ProfileWarning(message, profile.path, line_of(profile, key), key)


def _key_file_warnings(profile: Profile) -> Iterator[ProfileWarning]:
    """Key files (private_key_jwt) that are not there: like an unset variable, a
    warning until a command needs the key."""
    named: list[tuple[str, str | None]] = []
    if profile.auth is not None:
        named.append(("auth.private_key_file", profile.auth.client.private_key_file))
    oauth2 = profile.target_credential.oauth2
    if oauth2 is not None:
        named.append(("target_credential.private_key_file", oauth2.private_key_file))
    for n, client in enumerate(profile.issuer.clients if profile.issuer else ()):
        named.append((f"issuer.clients[{n}].public_key_file", client.public_key_file))
    for key, path in named:
        if path is not None and not os.path.isfile(path):
            message = f"{path} does not exist"
            yield ProfileWarning(message, profile.path, line_of(profile, key), key)


def _host_warnings(profile: Profile) -> Iterator[ProfileWarning]:
    """An exposed listener whose Host check serves only loopback names, or a check
    switched off with ``allowed_hosts = ["*"]``."""
    proxy = profile.proxy
    if ANY_HOST in proxy.allowed_hosts:
        key = "proxy.allowed_hosts"
        yield ProfileWarning(ANY_HOST_WARNING, profile.path, line_of(profile, key), key)
    elif not proxy.allowed_hosts and not is_loopback(proxy.listen_host):
        key = "proxy.listen"
        message = (
            f"listen is {proxy.listen_host}, not loopback, but allowed_hosts is empty: other "
            "machines get 421 host_not_allowed until their Host names are in allowed_hosts"
        )
        yield ProfileWarning(message, profile.path, line_of(profile, key), key)


def _twin_header_warnings(profile: Profile) -> Iterator[ProfileWarning]:
    """Header conditions written for names with ``_``, which the rules never see."""
    for rule in profile.all_rules():
        for n, condition in enumerate(rule.headers):
            if "_" in condition.name.source:
                key = f"{rule.scope}.rules[{rule.index}].headers[{n}].name"
                message = (
                    f"rule {rule.name!r}: header names containing '_' are dropped before the "
                    "rules run, so only names with '-' can match this pattern"
                )
                yield ProfileWarning(message, profile.path, line_of(profile, key), key)


def _secrets(value: Any) -> Iterator[Secret]:
    """Every ``Secret`` anywhere in the profile's dataclass tree."""
    if isinstance(value, Secret):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _secrets(getattr(value, f.name))
    elif isinstance(value, tuple):
        for item in value:
            yield from _secrets(item)


def _method_warnings(profile: Profile) -> Iterator[ProfileWarning]:
    """Rule and check methods outside ``STANDARD_METHODS``: ``methods = ["GETT"]``
    loads, but the rule never matches a real client's request."""
    named: list[tuple[str, str, str]] = []  # (dotted key, method, what it means)
    for rule in profile.all_rules():
        for n, method in enumerate(rule.methods):
            key = f"{rule.scope}.rules[{rule.index}].methods[{n}]"
            named.append((key, method, f"rule {rule.name!r} matches only {method} requests"))
    for index, check in enumerate(profile.checks):
        named.append((f"checks[{index}].method", check.method, f"check {check.name!r}"))
    for key, method, what in named:
        if method not in STANDARD_METHODS:
            guess = _did_you_mean(method, STANDARD_METHODS)
            message = f"{method!r} is not a standard HTTP method{guess} ({what})"
            yield ProfileWarning(message, profile.path, line_of(profile, key), key)


def _check_token_warnings(
    profile: Profile, index: int, check: CheckSpec, env: Mapping[str, str]
) -> Iterator[ProfileWarning]:
    if not isinstance(check.token, str):
        return
    key = f"checks[{index}].token"
    for name in ENV_REF.findall(check.token):
        if not env.get(name):
            message = f"environment variable {name} is not set (check {check.name!r})"
            yield ProfileWarning(message, profile.path, line_of(profile, key), key)
