"""The local signing keyset: RS256 keys that stand in for a real issuer.

``token mint``, ``up --offline``, ``check --offline`` and the local issuer run as
separate processes, so the keys live on disk in ``<RRDEV_HOME>/keyset.json`` and
every process agrees on them. The file (mode 0600, in a 0700 directory) is::

    {
      "format": "rrdev-keyset",
      "version": 1,
      "signing_kid": "<kid of the key that signs new tokens>",
      "keys": [
        {"kid": "...", "alg": "RS256", "created_at": 1767225600.0,
         "retire_after": null, "private_key_pem": "-----BEGIN PRIVATE KEY-----..."}
      ]
    }

``kid`` is the key's RFC 7638 thumbprint (first 16 characters), checked on load.
Rotation appends a new key, makes it the signing key and gives the previous one a
``retire_after`` (epoch seconds): it stays in the JWKS until then, so tokens it
signed keep verifying during the grace period. A corrupt file is an error, never
silently replaced: other processes may hold tokens signed by it.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import stat
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import jwt
import platformdirs
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.utils import base64url_encode, to_base64url_uint

from rrdev.core.errors import KeysetError

KEYSET_FILE = "keyset.json"
FORMAT = "rrdev-keyset"
VERSION = 1
ALGORITHM = "RS256"
RESET_HINT = "run `rrdev issuer rotate --reset` to make a new keyset"


def rrdev_home(env: Mapping[str, str] = os.environ) -> Path:
    """Where rrdev keeps state: ``RRDEV_HOME`` if set, else the user data dir."""
    value = env.get("RRDEV_HOME")
    if value:
        return Path(value).expanduser()
    return Path(platformdirs.user_data_dir("rrdev"))


@dataclass(frozen=True)
class SigningKey:
    """One RSA key of the keyset. ``retire_after`` (epoch seconds) drops it from
    the JWKS once passed; ``None`` means it is not being retired."""

    kid: str
    created_at: float
    private_key: rsa.RSAPrivateKey = field(compare=False, repr=False)
    retire_after: float | None = None

    def public_jwk(self) -> dict[str, str]:
        return {
            **_public_members(self.private_key),
            "kid": self.kid,
            "alg": ALGORITHM,
            "use": "sig",
        }

    def active(self, now: float) -> bool:
        return self.retire_after is None or now < self.retire_after


class Keyset:
    """One or more RS256 keys; one of them (``signing_kid``) signs new tokens.

    Build one with ``load_or_create`` (on disk) or ``generate`` (in memory).
    """

    def __init__(
        self, keys: Sequence[SigningKey], signing_kid: str, path: Path | None = None
    ) -> None:
        if signing_kid not in {k.kid for k in keys}:
            raise KeysetError(f"the signing key {signing_kid!r} is not in the keyset", RESET_HINT)
        self._keys = tuple(keys)
        self._signing_kid = signing_kid
        self._path = path

    # ------------------------------------------------------------ construction

    @classmethod
    def generate(cls, *, now: float | None = None, path: Path | None = None) -> Keyset:
        """A new keyset with one fresh key, not saved anywhere."""
        key = _new_key(time.time() if now is None else now)
        return cls([key], key.kid, path)

    @classmethod
    def load_or_create(cls, home: Path | None = None, *, now: float | None = None) -> Keyset:
        """The keyset in ``home`` (default ``rrdev_home()``), created on first use.

        A corrupt, unreadable or symlinked file raises ``KeysetError``; it is
        never replaced behind the user's back.
        """
        path = _prepare_home(home) / KEYSET_FILE
        try:
            return cls.load(path)
        except FileNotFoundError:
            pass
        keyset = cls.generate(now=now, path=path)
        try:
            _write_atomic(path, keyset._serialize(), exclusive=True)
        except FileExistsError:
            return cls.load(path)  # another process created it first: use theirs
        return keyset

    @classmethod
    def load(cls, path: Path) -> Keyset:
        """Read a keyset file. ``FileNotFoundError`` if absent; ``KeysetError`` if
        it is a symlink, unreadable or corrupt."""
        return _load(path, for_signing=True)

    @classmethod
    def reset(cls, home: Path | None = None, *, now: float | None = None) -> Keyset:
        """Replace whatever keyset ``home`` holds (even a corrupt one) with a new one."""
        path = _prepare_home(home) / KEYSET_FILE
        keyset = cls.generate(now=now, path=path)
        keyset.save()
        return keyset

    # ----------------------------------------------------------------- reading

    @property
    def path(self) -> Path | None:
        return self._path

    @property
    def keys(self) -> tuple[SigningKey, ...]:
        return self._keys

    @property
    def signing_kid(self) -> str:
        return self._signing_kid

    def jwks(self, now: float | None = None) -> dict[str, list[dict[str, str]]]:
        """The public JWKS: signing key first, then keys still in their grace period."""
        now = time.time() if now is None else now
        ordered = sorted(self._keys, key=lambda k: k.kid != self._signing_kid)
        return {"keys": [k.public_jwk() for k in ordered if k.active(now)]}

    def sign(
        self,
        claims: Mapping[str, Any],
        *,
        kid: str | None = None,
        headers: Mapping[str, Any] | None = None,
    ) -> str:
        """An RS256 JWT over ``claims``, by the signing key (or ``kid``).
        ``headers`` are added to (and may override) ``{"kid", "typ"}``; the
        algorithm is always RS256, so an ``alg`` in ``headers`` is ignored."""
        key = self._key(kid or self._signing_kid)
        extra = {k: v for k, v in (headers or {}).items() if k != "alg"}
        header = {"kid": key.kid, "typ": "JWT", **extra}
        return jwt.encode(dict(claims), key.private_key, algorithm=ALGORITHM, headers=header)

    # ----------------------------------------------------------------- changing

    def rotate(self, grace_seconds: float, now: float) -> str:
        """Add a new signing key; the current one stays in the JWKS until
        ``now + grace_seconds``. Keys already past their grace are dropped.
        Saves when the keyset has a file. Returns the new kid."""
        new = _new_key(now)
        kept = [
            k if k.retire_after is not None else replace(k, retire_after=now + grace_seconds)
            for k in self._keys
            if k.active(now)
        ]
        rotated = Keyset([*kept, new], new.kid, self._path)
        rotated.save()  # write first: a failed save leaves this object unchanged
        self._keys, self._signing_kid = rotated._keys, rotated._signing_kid
        return new.kid

    def save(self) -> None:
        """Write the keyset to its file atomically (no-op for an in-memory keyset)."""
        if self._path is not None:
            _write_atomic(self._path, self._serialize(), exclusive=False)

    def _key(self, kid: str) -> SigningKey:
        for key in self._keys:
            if key.kid == kid:
                return key
        known = ", ".join(k.kid for k in self._keys)
        raise KeysetError(f"the local keyset has no key {kid!r} (it has: {known})")

    def _serialize(self) -> bytes:
        document = {
            "format": FORMAT,
            "version": VERSION,
            "signing_kid": self._signing_kid,
            "keys": [_key_entry(k) for k in self._keys],
        }
        return (json.dumps(document, indent=2) + "\n").encode("utf-8")


def local_public_jwks(home: Path | None = None, *, now: float | None = None) -> dict[str, Any]:
    """The local keyset's public JWKS (created on first use), for verifying only.

    Unlike ``load_or_create``, it skips OpenSSL's consistency check of each RSA private
    key (~60 ms a key, most of an offline ``rrdev explain``): that check guards signing,
    and only the public numbers leave here. Each kid is still checked against its key's
    thumbprint, and the file's checks (regular file, no symlink) are the same.
    """
    path = _prepare_home(home) / KEYSET_FILE
    try:
        keyset = _load(path, for_signing=False)
    except FileNotFoundError:
        keyset = Keyset.load_or_create(home, now=now)
    return keyset.jwks(now)


def mint_token(
    keyset: Keyset,
    *,
    issuer: str,
    audience: str | Sequence[str] | None,
    subject: str = "rrdev-local@clients",
    scope: str | None = None,
    claims: Mapping[str, Any] | None = None,
    expires_in: float = 3600,
    not_before: float | None = None,
    now: float | None = None,
) -> str:
    """A token shaped like an Auth0 machine-to-machine access token.

    ``iat`` is ``now``; ``exp`` is ``now + expires_in`` (negative: already
    expired); ``nbf`` is ``now + not_before`` when given. ``audience`` None leaves
    ``aud`` out (a Cognito access token has none). ``claims`` are applied
    last, so they can override anything.
    """
    now = time.time() if now is None else now
    payload: dict[str, Any] = {
        "iss": issuer,
        "sub": subject,
        "iat": int(now),
        "exp": int(now + expires_in),
        "azp": subject.removesuffix("@clients"),
        "gty": "client-credentials",
    }
    if audience is not None:
        payload["aud"] = audience if isinstance(audience, str) else list(audience)
    if not_before is not None:
        payload["nbf"] = int(now + not_before)
    if scope is not None:
        payload["scope"] = scope
    payload.update(claims or {})
    return keyset.sign(payload)


# ------------------------------------------------------------------ keys


def _new_key(now: float) -> SigningKey:
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return SigningKey(_thumbprint(private_key), now, private_key)


def _public_members(private_key: rsa.RSAPrivateKey) -> dict[str, str]:
    numbers = private_key.public_key().public_numbers()
    return {
        "kty": "RSA",
        "n": to_base64url_uint(numbers.n).decode("ascii"),
        "e": to_base64url_uint(numbers.e).decode("ascii"),
    }


def _thumbprint(private_key: rsa.RSAPrivateKey) -> str:
    """RFC 7638: SHA-256 over the required members, sorted, no whitespace."""
    canonical = json.dumps(_public_members(private_key), sort_keys=True, separators=(",", ":"))
    digest = hashlib.sha256(canonical.encode("ascii")).digest()
    return base64url_encode(digest).decode("ascii")[:16]


def _key_entry(key: SigningKey) -> dict[str, Any]:
    pem = key.private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    return {
        "kid": key.kid,
        "alg": ALGORITHM,
        "created_at": key.created_at,
        "retire_after": key.retire_after,
        "private_key_pem": pem.decode("ascii"),
    }


# -------------------------------------------------------------- parsing


def _load(path: Path, *, for_signing: bool) -> Keyset:
    data = _read_regular_file(path)
    try:
        return _parse(json.loads(data), path, for_signing=for_signing)
    except (ValueError, TypeError, KeyError) as error:
        raise KeysetError(f"the keyset {path} is corrupt: {_why(error)}", RESET_HINT) from None


def _parse(document: Any, path: Path, *, for_signing: bool) -> Keyset:
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f'it is not an rrdev keyset (no "format": "{FORMAT}")')
    if document.get("version") != VERSION:
        raise ValueError(f"unsupported version {document.get('version')!r} (expected {VERSION})")
    entries = document["keys"]
    if not isinstance(entries, list) or not entries:
        raise ValueError('"keys" must be a non-empty list')
    keys = [_parse_key(entry, for_signing) for entry in entries]
    signing_kid = document["signing_kid"]
    if signing_kid not in {k.kid for k in keys}:
        raise ValueError(f"signing_kid {signing_kid!r} names no key in the file")
    return Keyset(keys, signing_kid, path)


def _parse_key(entry: Any, for_signing: bool) -> SigningKey:
    if not isinstance(entry, dict):
        raise TypeError("a key entry is not an object")
    if entry.get("alg", ALGORITHM) != ALGORITHM:
        raise ValueError(f"key {entry.get('kid')!r} has alg {entry.get('alg')!r}; only RS256")
    private_key = serialization.load_pem_private_key(
        str(entry["private_key_pem"]).encode("ascii"),
        password=None,
        unsafe_skip_rsa_key_validation=not for_signing,  # see local_public_jwks
    )
    if not isinstance(private_key, rsa.RSAPrivateKey):
        raise ValueError(f"key {entry.get('kid')!r} is not an RSA key")
    kid = entry["kid"]
    # The kid is derived from the key: a mismatch means the file was edited by hand.
    if kid != _thumbprint(private_key):
        raise ValueError(f"key {kid!r} does not match its own thumbprint")
    retire_after = entry.get("retire_after")
    return SigningKey(kid, _number(entry["created_at"]), private_key, _optional(retire_after))


def _number(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"expected a number, got {value!r}")
    return float(value)


def _optional(value: Any) -> float | None:
    return None if value is None else _number(value)


def _why(error: Exception) -> str:
    if isinstance(error, KeyError):
        return f"missing field {error.args[0]!r}"
    if isinstance(error, json.JSONDecodeError):
        return f"not JSON ({error.msg}, line {error.lineno})"
    return str(error)


# --------------------------------------------------------------- file I/O


def _prepare_home(home: Path | None) -> Path:
    home = rrdev_home() if home is None else home
    try:
        home.mkdir(mode=0o700, parents=True, exist_ok=True)
    except OSError as error:
        raise KeysetError(
            f"cannot create the rrdev home {home}: {error.strerror}",
            "set RRDEV_HOME to a writable directory",
        ) from None
    return home


def _read_regular_file(path: Path) -> bytes:
    """Read ``path`` only if it is a regular file, never through a symlink."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        raise
    except OSError as error:
        raise KeysetError(f"cannot read the keyset {path}: {error.strerror}", RESET_HINT) from None
    if stat.S_ISLNK(info.st_mode):
        raise KeysetError(
            f"the keyset {path} is a symbolic link; rrdev refuses to follow it",
            "replace the link with the real file, or " + RESET_HINT,
        )
    if not stat.S_ISREG(info.st_mode):
        raise KeysetError(f"the keyset {path} is not a regular file", RESET_HINT)
    try:
        # O_NOFOLLOW closes the gap between the lstat above and the open.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as error:
        if error.errno == errno.ENOENT:
            raise FileNotFoundError(str(path)) from None
        raise KeysetError(f"cannot read the keyset {path}: {error.strerror}", RESET_HINT) from None
    with os.fdopen(fd, "rb") as handle:
        _tighten(handle.fileno())
        return handle.read()


def _tighten(fd: int) -> None:
    """Private keys: a keyset others can read (a copy, a restored backup, a umask) is
    put back to 0600 rather than used as it is."""
    info = os.fstat(fd)
    if info.st_mode & 0o077 and info.st_uid == os.getuid():
        os.fchmod(fd, 0o600)


def _write_atomic(path: Path, data: bytes, *, exclusive: bool) -> None:
    """Write via a 0600 temp file in the same directory, then move it into place.

    ``exclusive``: fail with ``FileExistsError`` rather than replace an existing
    file (two processes creating the keyset at once must end up sharing one).
    """
    fd, tmp_name = tempfile.mkstemp(prefix=".keyset-", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        if exclusive:
            _link_exclusive(tmp_name, path)
        else:
            os.replace(tmp_name, path)
    except FileExistsError:
        raise
    except OSError as error:
        raise KeysetError(f"cannot write the keyset {path}: {error.strerror}") from None
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def _link_exclusive(tmp_name: str, path: Path) -> None:
    try:
        os.link(tmp_name, path)  # atomic and fails if the file exists
    except FileExistsError:
        raise
    except OSError as error:
        # Some filesystems have no hard links; fall back to a plain move.
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        if path.exists():
            raise FileExistsError(str(path)) from None
        os.replace(tmp_name, path)
