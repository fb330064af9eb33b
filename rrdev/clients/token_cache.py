"""The on-disk token cache: fetched tokens kept until shortly before they expire.

``TokenCache`` keeps fetched tokens on disk (``$RRDEV_CACHE_DIR`` or the user cache
directory, ``tokens/``), one 0600 file per (token URL, client, audience, resource,
scope), named by a hash, in a 0700 directory (made private with a warning when it is
not; refused when it cannot be). The client secret is never stored.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import stat
import tempfile
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from rrdev.clients.oauth2 import CONTROL_OR_SPACE, FetchedToken
from rrdev.core.errors import RrdevError

__all__ = ["CACHE_DIR_ENV", "TokenCache", "TokenCacheError", "token_cache_dir"]

CACHE_DIR_ENV = "RRDEV_CACHE_DIR"
_CACHE_FORMAT = "rrdev-token-cache"
_CACHE_VERSION = 1
_TEMP_PREFIX = ".tmp-"
#: A cache file is never that large; a bigger one is not ours.
_MAX_CACHE_FILE_BYTES = 256 * 1024

_log = logging.getLogger("rrdev.clients.token_cache")

Warn = Callable[[str], None]


class TokenCacheError(RrdevError):
    """The token cache directory cannot be used (a symlink, not ours) (exit 3)."""

    exit_code = 3


def token_cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """``$RRDEV_CACHE_DIR/tokens``, else ``<user cache dir>/rrdev/tokens``."""
    env = os.environ if env is None else env
    value = env.get(CACHE_DIR_ENV)
    if value:
        return Path(value).expanduser() / "tokens"
    import platformdirs

    return Path(platformdirs.user_cache_dir("rrdev")) / "tokens"


class TokenCache:
    """Fetched tokens on disk, one file per cache key (``<sha256>.json``).

    Files are 0600 in a 0700 directory, written atomically (a temp file, then
    ``os.replace``); a symlinked directory or file is refused. A token is reused
    while ``FetchedToken.fresh`` says so. A corrupt, foreign or world-readable file
    is discarded with a warning (``on_warning``, else the ``rrdev.clients.token_cache`` logger),
    never trusted. A cache that cannot be written only warns: fetching still works.
    """

    def __init__(self, directory: Path | str | None = None, *, on_warning: Warn | None = None):
        self.directory = Path(directory) if directory is not None else token_cache_dir()
        self.on_warning = on_warning

    def __repr__(self) -> str:
        return f"TokenCache({str(self.directory)!r})"

    def path_for(self, key: str) -> Path:
        if not re.fullmatch(r"[0-9a-f]{64}", key):
            raise ValueError("a cache key is a sha256 hex digest")
        return self.directory / f"{key}.json"

    # -------------------------------------------------------------- reading

    def get(self, key: str, now: float) -> FetchedToken | None:
        """The cached token for ``key`` if it is still fresh at ``now``."""
        path = self.path_for(key)
        if not self._usable_dir(create=False):
            return None
        data = self._read(path)
        if data is None:
            return None
        token = self._decode(path, key, data)
        if token is None or not token.fresh(now):
            return None
        return token

    def _read(self, path: Path) -> bytes | None:
        try:
            fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        except FileNotFoundError:
            return None
        except OSError as exc:
            if os.path.islink(path):
                self._warn(f"ignoring the token cache file {path}: it is a symbolic link")
            else:
                self._warn(f"cannot read the token cache file {path}: {exc.strerror}")
            return None
        with os.fdopen(fd, "rb") as handle:
            info = os.fstat(handle.fileno())
            problem = _file_problem(info)
            if problem:
                self._discard(path, problem)
                return None
            return handle.read(_MAX_CACHE_FILE_BYTES + 1)

    def _decode(self, path: Path, key: str, data: bytes) -> FetchedToken | None:
        try:
            entry = json.loads(data)
            token = _entry_token(entry, key)
        except (ValueError, TypeError, KeyError, RecursionError):
            self._discard(path, "it is corrupted")
            return None
        return token

    # -------------------------------------------------------------- writing

    def put(self, key: str, token: FetchedToken) -> bool:
        """Store ``token`` under ``key``; False (with a warning) when the cache
        cannot be written."""
        if token.expires_at is None or token.obtained_at is None:
            return False
        path = self.path_for(key)
        if not self._usable_dir(create=True):
            return False
        if os.path.islink(path):
            self._warn(f"not caching the token: {path} is a symbolic link")
            return False
        data = json.dumps(_entry(key, token), indent=1).encode("utf-8")
        try:
            _write_atomic(path, data)
        except OSError as exc:
            self._warn(f"cannot write the token cache file {path}: {exc.strerror or exc}")
            return False
        return True

    def clear(self) -> int:
        """Remove every cached token; returns how many there were."""
        if not os.path.lexists(self.directory):
            return 0
        self._check_dir_or_raise()
        removed = 0
        for entry in os.scandir(self.directory):
            is_token = entry.name.endswith(".json") and not entry.name.startswith(".")
            if not (is_token or entry.name.startswith(_TEMP_PREFIX)):
                continue
            try:
                os.unlink(entry.path)
            except FileNotFoundError:
                continue
            except OSError as exc:
                raise TokenCacheError(
                    f"cannot remove {entry.path}: {exc.strerror}",
                    f"remove the directory {self.directory} by hand",
                ) from None
            removed += is_token
        return removed

    # -------------------------------------------------------------- the directory

    def _usable_dir(self, *, create: bool) -> bool:
        try:
            if create:
                _make_private_dirs(self.directory)
            self._check_dir_or_raise()
        except FileNotFoundError:
            return False
        except TokenCacheError as exc:
            self._warn(f"{exc.message}; not using the token cache")
            return False
        except OSError as exc:
            self._warn(f"cannot use the token cache {self.directory}: {exc.strerror or exc}")
            return False
        return True

    def _check_dir_or_raise(self) -> None:
        info = os.lstat(self.directory)
        if stat.S_ISLNK(info.st_mode):
            raise TokenCacheError(
                f"the token cache {self.directory} is a symbolic link; rrdev refuses it",
                f"remove the link, or set {CACHE_DIR_ENV} to a real directory",
            )
        if not stat.S_ISDIR(info.st_mode):
            raise TokenCacheError(f"the token cache {self.directory} is not a directory")
        if _foreign(info):
            raise TokenCacheError(
                f"the token cache {self.directory} belongs to another user",
                f"set {CACHE_DIR_ENV} to a directory of your own",
            )
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            try:
                os.chmod(self.directory, 0o700)
            except OSError as exc:
                raise TokenCacheError(
                    f"the token cache {self.directory} is open to other users "
                    f"({mode:04o}) and cannot be made private: {exc.strerror or exc}",
                    f"run chmod 700 {self.directory}, or set {CACHE_DIR_ENV} to a "
                    "directory of your own",
                ) from None
            self._warn(
                f"the token cache {self.directory} was open to other users ({mode:04o}); "
                "rrdev made it private (0700)"
            )

    def _discard(self, path: Path, why: str) -> None:
        self._warn(f"discarding the token cache file {path}: {why}")
        with contextlib.suppress(OSError):
            os.unlink(path)

    def _warn(self, message: str) -> None:
        if self.on_warning is not None:
            self.on_warning(message)
        else:
            _log.warning("%s", message)


def _make_private_dirs(directory: Path) -> None:
    """Create ``directory`` and any missing parents as 0700 (``mkdir(parents=True)``
    would create the parents with the umask's mode, typically 0755). Existing
    directories are left as they are; the umask cannot widen 0700."""
    missing: list[Path] = []
    path = directory
    while not os.path.lexists(path) and path != path.parent:
        missing.append(path)
        path = path.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            path.mkdir(mode=0o700)


def _foreign(info: os.stat_result) -> bool:
    geteuid = getattr(os, "geteuid", None)
    return geteuid is not None and info.st_uid != geteuid()


def _file_problem(info: os.stat_result) -> str:
    if not stat.S_ISREG(info.st_mode):
        return "it is not a regular file"
    if _foreign(info):
        return "it belongs to another user"
    if stat.S_IMODE(info.st_mode) & 0o077:
        return "other users can read it (it should be 0600)"
    if info.st_size > _MAX_CACHE_FILE_BYTES:
        return "it is too large to be a cached token"
    return ""


def _entry(key: str, token: FetchedToken) -> dict[str, Any]:
    return {
        "format": _CACHE_FORMAT,
        "version": _CACHE_VERSION,
        "key": key,
        "token_url": token.token_url,
        "access_token": token.access_token,
        "token_type": token.token_type,
        "scope": token.scope,
        "obtained_at": token.obtained_at,
        "expires_at": token.expires_at,
        "response": dict(token.raw),
    }


def _entry_token(entry: Any, key: str) -> FetchedToken:
    """The token in a cache entry; ``ValueError`` for anything not exactly ours."""
    if not isinstance(entry, dict) or entry.get("format") != _CACHE_FORMAT:
        raise ValueError("not a token cache entry")
    if entry.get("version") != _CACHE_VERSION or entry.get("key") != key:
        raise ValueError("another version or key")
    token = entry["access_token"]
    if not isinstance(token, str) or not token or CONTROL_OR_SPACE.search(token):
        raise ValueError("bad access_token")
    times = [entry["obtained_at"], entry["expires_at"]]
    if not all(
        isinstance(t, (int, float)) and not isinstance(t, bool) and math.isfinite(t) for t in times
    ):
        raise ValueError("bad times")
    if times[1] <= times[0]:
        raise ValueError("expires before it was obtained")
    scope, token_type, raw, url = (
        entry["scope"],
        entry["token_type"],
        entry["response"],
        entry["token_url"],
    )
    if scope is not None and not isinstance(scope, str):
        raise ValueError("bad scope")
    if not isinstance(token_type, str) or not isinstance(raw, dict) or not isinstance(url, str):
        raise ValueError("bad fields")
    return FetchedToken(
        access_token=token,
        token_type=token_type,
        expires_at=float(times[1]),
        scope=scope,
        raw=raw,
        from_cache=True,
        obtained_at=float(times[0]),
        token_url=url,
    )


def _write_atomic(path: Path, data: bytes) -> None:
    """A 0600 temp file in the same directory, fsynced, then moved into place; the
    temp file never outlives a failure."""
    fd, tmp_name = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=".part", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp_name, path)
    finally:
        if os.path.lexists(tmp_name):
            os.unlink(tmp_name)
