"""Static proxy credentials (``apiKey``, ``bearer``, ``basicAuth``, ``jwt``): a caller
presents a fixed secret, compared in constant time (docs/proxy.md).

Where each type reads the secret:

- ``apiKey``: the whole ``Authorization`` value (no scheme, as the gateway's own API
  reads its keys), or the ``query_param`` parameter (default ``apiKey``). Every place
  that carries one must carry the right key: a wrong key never hides behind a right one.
- ``bearer`` and ``jwt``: ``Authorization: Bearer <secret>`` (scheme case-insensitive);
  ``jwt`` compares the whole token string, it verifies nothing inside it.
- ``basicAuth``: ``Authorization: Basic base64(username:password)``.

Comparison: SHA-256 of what was sent against SHA-256 of the expected secret with
``hmac.compare_digest``, so neither the content nor the length of the secret shows in
the timing. Secrets are resolved once (``static_check``): an unset ``${VAR}`` makes every
request 503 ``proxy_credential_unavailable``, never an empty secret that anyone matches.
A credential that was sent is never echoed: messages name the scheme at most.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import unquote_plus

from rrdev.core.errors import EnvVarError
from rrdev.core.hygiene import QUERY_SPLIT, param_key
from rrdev.core.model import ProxyCredential
from rrdev.core.records import Verification, VerifyStep

_SCHEMED = re.compile(r"^([A-Za-z][A-Za-z0-9._~+/-]*)[ \t]+(\S+)[ \t]*$")
_SCHEME_OF = {"bearer": "Bearer", "jwt": "Bearer", "basicAuth": "Basic"}
_EXPECTED = {
    "apiKey": "Authorization: <key>, or ?{param}=<key>",
    "bearer": "Authorization: Bearer <token>",
    "jwt": "Authorization: Bearer <the configured JWT>",
    "basicAuth": "Authorization: Basic base64(username:password)",
}


def _digest(value: bytes) -> bytes:
    return hashlib.sha256(value).digest()


@dataclass(frozen=True)
class StaticCheck:
    """One profile's static credential, resolved: the expected secret's digest (never
    the secret), or ``error`` when it could not be resolved."""

    auth_type: str
    query_param: str
    expected: bytes = b""
    error: str | None = None
    hint: str = ""
    secrets: tuple[str, ...] = ()

    def __repr__(self) -> str:  # the digest stays out of reprs too
        return f"StaticCheck({self.auth_type!r}, error={self.error!r})"


def static_check(cred: ProxyCredential, env: Mapping[str, str] | None = None) -> StaticCheck:
    """Resolve ``cred``'s secret (``${VAR}`` from ``env``) into a ``StaticCheck``."""
    env = os.environ if env is None else env
    try:
        if cred.auth_type == "basicAuth":
            assert cred.username is not None and cred.password is not None
            username = cred.username.resolve(env)
            password = cred.password.resolve(env)
            if ":" in username:
                return StaticCheck(
                    cred.auth_type,
                    cred.query_param,
                    error="proxy_credential.username contains ':', which Basic cannot carry",
                    hint="choose a username without ':'",
                )
            value, secrets = f"{username}:{password}", (password,)
        else:
            assert cred.secret is not None
            value = cred.secret.resolve(env)
            secrets = (value,)
    except EnvVarError as exc:
        return StaticCheck(
            cred.auth_type, cred.query_param, error=f"{exc.key}: {exc.detail}", hint=exc.hint
        )
    return StaticCheck(cred.auth_type, cred.query_param, _digest(value.encode()), secrets=secrets)


def check_static(
    check: StaticCheck, headers: tuple[tuple[str, str], ...], raw_query: str
) -> Verification:
    """The caller's credential against ``check``: a passed Verification (no claims), or
    ``credential_missing`` / ``credential_invalid`` / ``proxy_credential_unavailable``."""
    if check.error is not None:
        return _failed(
            "proxy_credential_unavailable",
            f"the proxy credential's secret is not available ({check.error})",
            check.hint,
            unavailable=True,
        )
    authorization = [v for k, v in headers if k == "authorization"]
    presented = _presented(check, authorization[0] if authorization else None, raw_query)
    if isinstance(presented, Verification):
        return presented
    # Every candidate is compared (no early exit) and all must match.
    matches = [hmac.compare_digest(_digest(p), check.expected) for p in presented]
    if not all(matches):
        return _failed(
            "credential_invalid",
            f"the {check.auth_type} credential sent does not match the proxy's",
            _hint(check),
        )
    step = VerifyStep("credential", "passed", _expected(check), "matched (constant-time)")
    return Verification(steps=(step,))


def _presented(
    check: StaticCheck, authorization: str | None, raw_query: str
) -> list[bytes] | Verification:
    """What the caller presented, as bytes, per the type's rules (module docstring)."""
    if check.auth_type == "apiKey":
        found = [] if authorization is None else [authorization.strip().encode()]
        found += [v.encode() for v in _query_values(raw_query, check.query_param)]
        return found or _missing(check)
    if authorization is None:
        return _missing(check)
    match = _SCHEMED.match(authorization)
    wanted = _SCHEME_OF[check.auth_type]
    if match is None or match.group(1).lower() != wanted.lower():
        sent = f"scheme: {match.group(1)[:20]}" if match else "not '<scheme> <credentials>'"
        return _failed(
            "credential_invalid",
            f"the Authorization header is not '{wanted} ...' ({sent})",
            _hint(check),
        )
    if check.auth_type != "basicAuth":
        return [match.group(2).encode()]
    try:
        return [base64.b64decode(match.group(2), validate=True)]
    except (binascii.Error, ValueError):
        return _failed(
            "credential_invalid", "the Basic credentials are not valid base64", _hint(check)
        )


def _query_values(raw_query: str, name: str) -> list[str]:
    """Values of parameter ``name`` (compared as the forwarding strips it: decoded,
    trimmed, case-folded; ``&`` and ``;`` both separate)."""
    wanted = param_key(name)
    values = []
    for piece in QUERY_SPLIT.split(raw_query) if raw_query else ():
        key, _eq, value = piece.partition("=")
        if piece not in ("&", ";") and param_key(unquote_plus(key)) == wanted:
            values.append(unquote_plus(value))
    return values


def _expected(check: StaticCheck) -> str:
    return presented_as(check.auth_type, check.query_param)


def presented_as(auth_type: str, query_param: str) -> str:
    """How a caller presents a static credential of ``auth_type``, e.g.
    ``Authorization: Bearer <token>`` (placeholders only, never the secret)."""
    return _EXPECTED[auth_type].format(param=query_param)


def _hint(check: StaticCheck) -> str:
    return f"send {_expected(check)}, with the secret the proxy credential expects"


def _missing(check: StaticCheck) -> Verification:
    return _failed("credential_missing", f"no {check.auth_type} credential was sent", _hint(check))


def _failed(reason: str, message: str, hint: str, *, unavailable: bool = False) -> Verification:
    step = VerifyStep("credential", "failed", "the proxy credential's secret", message)
    return Verification(
        steps=(step,), reason=reason, message=message, hint=hint, unavailable=unavailable
    )


def challenge(auth_type: str, reason: str) -> str:
    """The 401's ``WWW-Authenticate`` for a static type (RFC 9110 §11.6.1; RFC 6750's
    ``invalid_token`` for a wrong bearer)."""
    if auth_type == "basicAuth":
        return 'Basic realm="rrdev", charset="UTF-8"'
    if auth_type == "apiKey":
        return 'ApiKey realm="rrdev"'
    if reason == "credential_invalid":
        return 'Bearer realm="rrdev", error="invalid_token"'
    return 'Bearer realm="rrdev"'
