"""``private_key_jwt`` client authentication (RFC 7523 §2.2, OpenID Connect Core §9).

Instead of a client secret the token request carries a short-lived JWT signed with
the client's private key: ``iss`` = ``sub`` = the client id, ``aud`` = the token
endpoint URL, a random ``jti``, ``iat`` and ``exp`` = ``iat`` + 60 s, and a ``kid``
header when the profile sets ``key_id``. A new assertion is signed for every request
(the server refuses a replayed ``jti``). Neither the key nor an assertion is ever put
in a message, a repr or a log line.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rrdev.core.algorithms import ALGORITHM_KEY_TYPES
from rrdev.core.errors import ProfileError
from rrdev.core.model import OAuth2Client

__all__ = [
    "ASSERTION_LIFETIME_SECONDS",
    "ASSERTION_TYPE",
    "AssertionSigner",
    "assertion_signer",
]

ASSERTION_TYPE = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#: Short: an assertion is used once, right away; a stolen one is soon worthless.
ASSERTION_LIFETIME_SECONDS = 60
_KEY_HINT = (
    "private_key holds PEM text (-----BEGIN PRIVATE KEY----- ...), usually from an "
    "environment variable: private_key = '${CLIENT_PRIVATE_KEY}'; or point "
    "private_key_file at a PEM file"
)


@dataclass(frozen=True)
class AssertionSigner:
    """Signs the client assertions of one client for one token endpoint."""

    client_id: str
    audience: str
    algorithm: str
    key_id: str | None
    key: Any = field(repr=False)

    def sign(self, now: float) -> str:
        """A fresh assertion (new ``jti``), valid for ``ASSERTION_LIFETIME_SECONDS``."""
        import jwt

        issued = int(now)
        claims = {
            "iss": self.client_id,
            "sub": self.client_id,
            "aud": self.audience,
            "jti": secrets.token_urlsafe(24),
            "iat": issued,
            "exp": issued + ASSERTION_LIFETIME_SECONDS,
        }
        headers = {"kid": self.key_id} if self.key_id else None
        return jwt.encode(claims, self.key, algorithm=self.algorithm, headers=headers)


def assertion_signer(
    client: OAuth2Client, client_id: str, token_url: str, env: Mapping[str, str] | None
) -> AssertionSigner:
    """The signer for ``client`` (its key read and checked now: a ``ProfileError``
    naming the key when it is unreadable or does not fit ``assertion_algorithm``)."""
    pem, where = _pem(client, env)
    key = _load_key(pem, where)
    _check_key_type(key, client.assertion_algorithm, where)
    return AssertionSigner(client_id, token_url, client.assertion_algorithm, client.key_id, key)


@dataclass(frozen=True)
class _Origin:
    """Where the key came from, for errors (never its content)."""

    file: str | None
    line: int | None = None
    key: str | None = None


def _pem(client: OAuth2Client, env: Mapping[str, str] | None) -> tuple[bytes, _Origin]:
    """The PEM bytes and where they came from."""
    if client.private_key is not None:
        secret = client.private_key
        where = _Origin(secret.file, secret.line, secret.key)
        # A PEM pasted into an environment variable often has literal "\n" for newlines.
        return secret.resolve(env).replace("\\n", "\n").strip().encode("utf-8"), where
    path = client.private_key_file
    if path is None:  # the profile loader requires one of them
        raise ProfileError("client_auth = 'private_key_jwt' needs private_key or private_key_file")
    where = _Origin(path, key="private_key_file")
    try:
        return Path(path).read_bytes(), where
    except OSError as exc:
        raise _error(where, f"cannot read the private key file: {exc.strerror or exc}") from None


def _load_key(pem: bytes, where: _Origin) -> Any:
    from cryptography.hazmat.primitives.serialization import load_pem_private_key

    try:
        return load_pem_private_key(pem, password=None)
    except TypeError:
        raise _error(where, "the private key is encrypted; rrdev needs it unencrypted") from None
    except ValueError:
        raise _error(where, "the private key is not a PEM private key", _KEY_HINT) from None
    except Exception:  # cryptography raises UnsupportedAlgorithm for odd keys
        raise _error(where, "the private key is not a supported PEM private key") from None


def _check_key_type(key: Any, algorithm: str, where: _Origin) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec, rsa

    wanted = _key_type(algorithm)
    fits = (
        isinstance(key, rsa.RSAPrivateKey)
        if wanted == "RSA"
        else isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    )
    if not fits:
        raise _error(
            where,
            f"assertion_algorithm = {algorithm!r} needs an {wanted} private key",
            "RS256/RS384/RS512/PS256 sign with an RSA key, ES256 with an EC P-256 key",
        )


def _key_type(algorithm: str) -> str:
    """The key an assertion_algorithm needs, as a message names it: "RSA", "EC P-256"."""
    key_type, curves = ALGORITHM_KEY_TYPES[algorithm]
    return " ".join((key_type, *sorted(curves or ())))


def _error(where: _Origin, message: str, hint: str = "") -> ProfileError:
    return ProfileError(message, file=where.file, line=where.line, key=where.key, hint=hint)
