"""Everything derived from one loaded profile (``_State``), built once per load.

The hot path reads only this: the upstream URL, TLS and timeouts, the resolved target
credential, the JWKS cache and its verifier, the header drop set and templates, the
redactor. A JWKS cache (with its keys) is kept across a reload when its source is
unchanged; new timings are applied to it when the new state takes effect
(``apply_jwks_settings``). ``Overrides`` (``--target``, ``--jwks``, ``--offline``) apply
to every load.
"""

from __future__ import annotations

import os
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import aiohttp
from yarl import URL

from rrdev.clients.backend_token import BackendTokenSource
from rrdev.clients.jwks import JwksCache, JwksClients, JwksEvent
from rrdev.core.errors import ProfileError, RrdevError
from rrdev.core.explain import JwksVerifier, redactor_for
from rrdev.core.filters import ResponseFilters, response_filters
from rrdev.core.hosts import ANY_HOST, ANY_HOST_WARNING
from rrdev.core.model import Profile, ProxyCredential
from rrdev.core.oidc import DiscoverySource
from rrdev.core.profile import check_problem_warning
from rrdev.core.records import Verification
from rrdev.core.redact import Redactor
from rrdev.core.static_auth import StaticCheck, static_check
from rrdev.servers.proxy.credential import _Credential, _credential
from rrdev.servers.proxy.headers import _REPLACED, HOP_BY_HOP, _Template, _template
from rrdev.servers.proxy.verifiers import CachingVerifier

if TYPE_CHECKING:
    from rrdev.servers.proxy.fastlane import FastLane

# ------------------------------------------------------------------ public values


@dataclass(frozen=True)
class Overrides:
    """Command-line overrides that outlive a reload.

    ``target`` replaces ``target.base_url``; ``jwks`` (a file or URL) replaces the
    proxy credential's ``jwks_uri``; ``offline`` makes the local keyset
    (``$RRDEV_HOME``) the JWKS, so tokens from ``rrdev token mint`` verify.
    """

    target: str | None = None
    jwks: str | None = None
    offline: bool = False


@dataclass(frozen=True)
class ProxyInfo:
    """What a startup banner shows about the running profile."""

    profile_path: str
    profile_name: str
    target: str
    target_overridden: bool
    jwks: str | None
    credential: str
    warnings: tuple[str, ...]


# ------------------------------------------------------------------ per-profile state


@dataclass(frozen=True)
class _Upstream:
    scheme: str
    authority: str
    prefix: str
    label: str

    def url(self, raw_path: str, raw_query: str) -> URL:
        # encoded=True: aiohttp sends these bytes as they are, never re-quoting them.
        return URL.build(
            scheme=self.scheme,
            authority=self.authority,
            path=self.prefix + raw_path,
            query_string=raw_query,
            encoded=True,
        )


@dataclass
class _State:
    """Everything derived from one loaded profile. Requests hold on to the state they
    started with, so a reload never changes a request half-way."""

    profile: Profile
    redactor: Redactor
    verifier: CachingVerifier | None
    jwks: JwksCache | None
    #: what the JWKS cache is for (the source): the same on a reload -> the cache is kept
    jwks_key: Any
    jwks_label: str | None
    upstream: _Upstream
    target_overridden: bool
    timeout: aiohttp.ClientTimeout
    ssl: ssl.SSLContext | bool
    credential: _Credential
    #: caller headers never forwarded as they are
    drop: frozenset[str]
    #: lower-case names of header_filters
    filters: frozenset[str]
    templates: tuple[_Template, ...]
    forward_as: str | None
    warnings: tuple[str, ...] = ()
    files: tuple[str, ...] = ()
    #: (client, Host, scheme, listener) -> rrdev's X-Forwarded-*/Forwarded headers
    forwarding: dict[Any, list[tuple[str, str]]] = field(default_factory=dict)
    #: id(verification) -> (verification, its redacted copy), for records
    redacted: dict[int, tuple[Verification, Verification]] = field(default_factory=dict)
    #: requests in flight that started with this state (``ProfileReloader.hold``)
    users: int = 0
    #: a static proxy credential's resolved secret (apiKey, bearer, basicAuth, jwt)
    static: StaticCheck | None = None
    #: the response filters; None (the usual case) keeps responses streaming
    response_filters: ResponseFilters | None = None
    #: the common allowed request's short path (``fastlane.py``); None: always the full one
    fast: FastLane | None = None

    def resources(self) -> tuple[JwksCache | BackendTokenSource, ...]:
        """What must be closed once neither this state nor its successors use it."""
        found = (self.jwks, self.credential.source)
        return tuple(r for r in found if r is not None)


@dataclass(frozen=True)
class JwksShared:
    """What every JWKS cache a proxy makes shares: the HTTP clients, and where outage
    and key-change notices go (``ProxyApp``'s ``on_event``)."""

    clients: JwksClients | None = None
    on_event: JwksEvent | None = None


# ------------------------------------------------------------------ building a state


def _build_state(
    profile: Profile,
    overrides: Overrides,
    previous: _State | None,
    clock: Callable[[], float] = time.time,
    shared: JwksShared | None = None,
) -> _State:
    """Everything the hot path needs from ``profile``, computed once per load."""
    upstream, overridden = _upstream_of(profile, overrides)
    if overridden:
        profile = replace(profile, target=replace(profile.target, base_url=overrides.target))
    credential = _credential(profile.target_credential, clock)
    static = static_check(profile.proxy_credential) if profile.proxy_credential.is_static else None
    secrets = credential.secrets + (static.secrets if static is not None else ())
    redactor = redactor_for(profile).with_values(secrets)
    jwks, jwks_key, jwks_label = _jwks_for(profile, overrides, previous, shared or JwksShared())
    verifier = None
    if jwks is not None:
        verifier = CachingVerifier(JwksVerifier(profile.proxy_credential, jwks), keys=jwks)
    proxy = profile.proxy
    filters = frozenset(h.lower() for h in proxy.header_filters)
    templates = tuple(
        _template(name, value.template)
        for name, value in proxy.additional_headers
        if name.lower() not in filters
    )
    forward_as = proxy.forward_authorization_as
    if forward_as is not None and forward_as.lower() in filters:
        forward_as = None
    drop = HOP_BY_HOP | _REPLACED | filters | {t.name.lower() for t in templates}
    if forward_as:
        drop |= {forward_as.lower()}
    if credential.header:
        drop |= {credential.header[0].lower()}
    if static is not None:  # the caller's static secret is the proxy's, not the backend's
        drop |= {"authorization"}
    target = profile.target
    path = Path(profile.path)
    state = _State(
        profile=profile,
        redactor=redactor,
        verifier=verifier,
        jwks=jwks,
        jwks_key=jwks_key,
        jwks_label=jwks_label,
        upstream=upstream,
        target_overridden=overridden,
        timeout=aiohttp.ClientTimeout(
            total=None,
            sock_connect=target.connect_timeout_seconds,
            sock_read=target.timeout_seconds,
        ),
        ssl=_ssl_option(profile),
        credential=credential,
        drop=frozenset(drop),
        filters=filters,
        templates=templates,
        forward_as=forward_as,
        warnings=_warnings(profile, credential, static),
        files=(str(path),) if path.is_file() else (),
        static=static,
        response_filters=response_filters(profile),
    )
    # Imported here: the lane's modules import this one.
    from rrdev.servers.proxy.fastlane import fast_lane

    state.fast = fast_lane(state)
    return state


def _upstream_of(profile: Profile, overrides: Overrides) -> tuple[_Upstream, bool]:
    base = overrides.target or profile.target.base_url
    parts = urlsplit(base)
    where = "--target" if overrides.target else "target.base_url"
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise _config_error(profile, where, f"expected an http:// or https:// URL, got {base!r}")
    if parts.username is not None or parts.password is not None:
        raise _config_error(
            profile,
            where,
            "must not carry user:password@ (rrdev would send it as a second Authorization)",
            "use [target_credential] auth_type = 'basic' with ${VARS} instead",
        )
    if parts.query or parts.fragment:
        raise _config_error(profile, where, "must not have a query or fragment")
    label = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    upstream = _Upstream(parts.scheme, parts.netloc, parts.path.rstrip("/"), label)
    return upstream, overrides.target is not None


def _config_error(profile: Profile, key: str, message: str, hint: str = "") -> RrdevError:
    if key.startswith("--"):
        return RrdevError(f"{key}: {message}", hint)
    return ProfileError(message, file=profile.path, line=profile.lines.get(key), key=key, hint=hint)


def _ssl_option(profile: Profile) -> ssl.SSLContext | bool:
    target = profile.target
    if not target.verify:
        return False
    if target.ca_bundle:
        cafile = os.path.expanduser(target.ca_bundle)
        try:
            return ssl.create_default_context(cafile=cafile)
        except (OSError, ssl.SSLError) as exc:
            why = getattr(exc, "strerror", None) or str(exc)
            raise _config_error(
                profile, "target.ca_bundle", f"cannot load CA bundle {cafile}: {why}"
            ) from None
    return True


def _jwks_for(
    profile: Profile, overrides: Overrides, previous: _State | None, shared: JwksShared
) -> tuple[JwksCache | None, Any, str | None]:
    """The JWKS cache for this profile, reusing the previous one (and its keys) when the
    source is unchanged: only a changed jwks_uri (or override) starts an empty cache."""
    cred = profile.proxy_credential
    if cred.is_static:  # the banner says why there is no JWKS
        return None, None, f"none (a static {cred.auth_type} proxy credential)"
    if cred.auth_type != "jwtVerify":
        return None, None, None
    source: str | dict[str, Any]
    if overrides.jwks:
        source, label = overrides.jwks, f"{overrides.jwks} (--jwks)"
        identity: Any = overrides.jwks
    elif overrides.offline:
        from rrdev.core.keyset import Keyset

        keyset = Keyset.load_or_create()
        source = keyset.jwks()
        where = keyset.path.parent if keyset.path else "memory"
        label = f"local keyset in {where} (--offline)"
        identity = ("offline", tuple(k["kid"] for k in source["keys"]))
    elif cred.jwks_uri:
        source = label = identity = cred.jwks_uri
    elif cred.issuer:
        source = DiscoverySource(cred.issuer, cred.discovery_ttl_seconds)
        label, identity = f"discovered from {source.url}", source
    else:
        raise _config_error(
            profile,
            "proxy_credential.jwks_uri",
            "auth_type = 'jwtVerify' needs jwks_uri",
            "set jwks_uri, or run with --jwks FILE|URL or --offline",
        )
    if previous is not None and previous.jwks is not None and previous.jwks_key == identity:
        # Timings are applied when this state takes effect (a failed load changes nothing).
        return previous.jwks, identity, label
    cache = JwksCache(
        source, clients=shared.clients, on_event=shared.on_event, **_jwks_settings(cred)
    )
    return cache, identity, label


def _jwks_settings(cred: ProxyCredential) -> dict[str, float]:
    return {
        "ttl": cred.jwks_ttl_seconds,
        "refetch_interval": cred.jwks_refetch_interval_seconds,
        "max_stale": cred.jwks_max_stale_seconds,
    }


def apply_jwks_settings(state: _State) -> None:
    """Give the state's JWKS cache the timings of the state's profile (a cache kept
    across a reload still has the previous profile's)."""
    if state.jwks is not None:
        state.jwks.configure(**_jwks_settings(state.profile.proxy_credential))


def _warnings(
    profile: Profile, credential: _Credential, static: StaticCheck | None = None
) -> tuple[str, ...]:
    found = []
    if static is not None and static.error is not None:
        found.append(f"{static.error}: every request will get 503 proxy_credential_unavailable")
    if not profile.proxy.active:
        found.append("proxy.active = false: every request gets 503 proxy_inactive")
    if profile.proxy_credential.auth_type == "none":
        found.append("proxy_credential auth_type = 'none': callers are not authenticated")
    if credential.error:
        found.append(f"{credential.error}: allowed requests will get 502")
    if not profile.target.verify:
        found.append(
            "TLS verification of the backend is off (target.verify = false); development only"
        )
    if ANY_HOST in profile.proxy.allowed_hosts:
        found.append(ANY_HOST_WARNING)
    # Checks never block the proxy: a broken one is only mentioned.
    found.extend(check_problem_warning(c) for c in profile.checks if c.problem is not None)
    return tuple(found)
