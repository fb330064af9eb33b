"""One exception tree for everything rrdev reports to a person.

    RrdevError                message + hint + exit_code (2: usage)
    ├── ProfileError          a profile is wrong: file, line, dotted key      (exit 3)
    │   └── EnvVarError       a ${NAME} reference is unset when it is needed  (exit 3)
    ├── KeysetError           the local keyset is unreadable or corrupt       (exit 3)
    ├── NetworkError          JWKS / token endpoint unreachable or garbage    (exit 4)
    └── TokenInputError       a token the user gave us is not a JWT at all    (exit 1)

Front ends print ``str(error)`` (and ``error.hint``) on stderr and exit with
``error.exit_code``; no traceback for any of these.
"""

from __future__ import annotations


class RrdevError(Exception):
    """An expected failure with a message for people and an optional hint."""

    exit_code: int = 2

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ProfileError(RrdevError):
    """A profile that cannot be used; names the file, line and dotted key."""

    exit_code = 3

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
        hint: str = "",
    ) -> None:
        self.file = file
        self.line = line
        self.key = key
        self.detail = message
        super().__init__(self._compose(message), hint)

    def _compose(self, message: str) -> str:
        where = self.file or "<profile>"
        if self.line is not None:
            where += f":{self.line}"
        if self.key:
            where += f": {self.key}"
        return f"{where}: {message}"


class EnvVarError(ProfileError):
    """A ``${NAME}`` reference whose variable is not set when the value is needed."""


class KeysetError(RrdevError):
    """The local signing keyset cannot be read or written."""

    exit_code = 3


class NetworkError(RrdevError):
    """A remote we depend on (JWKS, token endpoint) is unreachable or answered garbage."""

    exit_code = 4


class TokenInputError(RrdevError):
    """A token given on the command line is not a decodable JWT."""

    exit_code = 1
