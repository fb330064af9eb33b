"""The issuer's keyset: the file in ``$RRDEV_HOME``, re-read when it changes."""

from __future__ import annotations

import os
from pathlib import Path

from rrdev.core.errors import KeysetError
from rrdev.core.keyset import Keyset
from rrdev.servers.issuer.config import EventCallback, emit

__all__ = ["KeysetWatcher"]


class KeysetWatcher:
    """The keyset file in ``home`` (default ``$RRDEV_HOME``), re-read when it changes.

    ``current()`` costs one ``stat``. A file that turns corrupt or disappears while
    the issuer runs is reported once through ``on_event`` ("keyset_failed") and the
    last good keys keep being served: it is never regenerated behind the user's back.
    Construction raises ``KeysetError`` (with the path) for a corrupt file.
    """

    def __init__(self, home: Path | None = None, *, on_event: EventCallback | None = None) -> None:
        self.on_event = on_event
        self._keyset = Keyset.load_or_create(home)
        assert self._keyset.path is not None
        self.path: Path = self._keyset.path
        self._signature = _stat_signature(self.path)
        self._failed: object = _NEVER  # the signature of a file that failed to load

    def current(self) -> Keyset:
        signature = _stat_signature(self.path)
        if signature == self._signature or signature == self._failed:
            return self._keyset
        try:
            if signature is None:
                raise FileNotFoundError(str(self.path))
            keyset = Keyset.load(self.path)
        except FileNotFoundError:
            self._fail(signature, f"the keyset {self.path} has disappeared")
            return self._keyset
        except KeysetError as exc:
            self._fail(signature, str(exc))
            return self._keyset
        self._keyset, self._signature, self._failed = keyset, signature, _NEVER
        emit(self.on_event, "keyset_reloaded", f"{self.path}: signing key {keyset.signing_kid}")
        return keyset

    def _fail(self, signature: object, problem: str) -> None:
        self._failed = signature  # None: the file is missing
        message = (
            f"{problem}; still serving the keys loaded before "
            "(`rrdev issuer rotate --reset` makes a new keyset)"
        )
        emit(self.on_event, "keyset_failed", message)


_NEVER = object()


def _stat_signature(path: Path) -> tuple[int, int, int] | None:
    try:
        info = os.lstat(path)
    except OSError:
        return None
    return (info.st_mtime_ns, info.st_size, info.st_ino)
