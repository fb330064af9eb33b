"""The target credential: the profile's ``[target_credential]`` resolved once per load
(``${VAR}`` values read, header values checked) into what ``headers`` sends upstream."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from rrdev.clients.backend_token import BackendTokenSource
from rrdev.core.errors import EnvVarError, ProfileError
from rrdev.core.model import Secret, TargetCredential
from rrdev.servers.proxy.headers import _UNSAFE_HEADER_VALUE


@dataclass(frozen=True)
class _Credential:
    """The target credential, resolved once per loaded profile.

    ``error`` (with ``hint``) says why it cannot be used: every allowed request then
    gets 502 ``upstream_credential_unavailable``. ``secrets`` are the resolved values,
    scrubbed from any text rrdev prints. ``source`` (``oauth2``) supplies the
    Authorization value per request instead of ``authorization``.
    """

    label: str
    authorization: str | None = None
    source: BackendTokenSource | None = None
    header: tuple[str, str] | None = None
    query_name: str | None = None
    query_piece: str | None = None
    error: str | None = None
    hint: str = ""
    secrets: tuple[str, ...] = ()


def _resolve(secret: Secret | None, key: str) -> str:
    if secret is None:  # the loader requires these keys; keep the proxy total anyway
        raise EnvVarError(f"{key} is not set")
    return secret.resolve()


def _credential(cred: TargetCredential, clock: Callable[[], float] = time.time) -> _Credential:
    label = f"{cred.auth_type} ({cred.name})" if cred.auth_type != "none" else "none"
    try:
        return _resolved_credential(cred, label, clock)
    except ProfileError as exc:  # an unset ${VAR}, an unreadable private_key_jwt key
        return _Credential(label, error=str(exc), hint=exc.hint)


def _resolved_credential(
    cred: TargetCredential, label: str, clock: Callable[[], float] = time.time
) -> _Credential:
    kind = cred.auth_type
    if kind == "bearer":
        token = _resolve(cred.token, "target_credential.token")
        value = f"{cred.prefix} {token}" if cred.prefix else token
        return _checked(_Credential(label, authorization=value, secrets=(token,)))
    if kind == "basic":
        user = _resolve(cred.username, "target_credential.username")
        password = _resolve(cred.password, "target_credential.password")
        encoded = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
        return _checked(
            _Credential(label, authorization=f"Basic {encoded}", secrets=(password, encoded))
        )
    if kind == "api_key":
        key = _resolve(cred.api_key, "target_credential.api_key")
        if cred.header:
            return _checked(_Credential(label, header=(cred.header, key), secrets=(key,)))
        name = cred.query_param or "api_key"
        piece = f"{quote(name, safe='')}={quote(key, safe='')}"
        return _Credential(label, query_name=name, query_piece=piece, secrets=(key,))
    if kind == "oauth2":
        if cred.oauth2 is None:  # the loader requires the settings; stay total anyway
            return _Credential(label, error="target_credential has no oauth2 settings")
        source = BackendTokenSource(cred.oauth2, clock=clock)
        label = f"{label}, token from {source.token_url}"
        return _Credential(label, source=source, secrets=source.secrets)
    return _Credential(label)


def _checked(cred: _Credential) -> _Credential:
    values = [cred.authorization or "", cred.header[1] if cred.header else ""]
    if any(_UNSAFE_HEADER_VALUE.search(v) for v in values):
        return _Credential(
            cred.label,
            error="the target credential's value contains a line break or control character",
            hint="check the environment variable the profile reads it from",
        )
    return cred
