"""Reading TOML values: typed getters whose errors name the file, the line and the key.

``_Ctx`` is where we are (the file name and its line index); ``_Table`` is one TOML table
being read, with getters (``req_str``, ``integer``, ``choice``, ``secret``, ``children``...)
that fail with a ``ProfileError`` naming the dotted key. Every section parser of this
package reads through them.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, NoReturn, cast

from rrdev.core.errors import ProfileError
from rrdev.core.model import ENV_REF, Secret
from rrdev.core.profile.line_index import line_of

EFFECTS = ("allow", "deny")
#: RFC 9110 token (tchar+): what a header name may contain. Use ``fullmatch``: ``$``
#: would let a trailing newline through.
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
HEADER_NAME_HINT = (
    "a header name is an RFC 9110 token: letters, digits and !#$%&'*+-.^_`|~ "
    "(no spaces, colons or control characters)"
)


@dataclass(frozen=True)
class _Ctx:
    """Where we are: the file name and its line index, for errors."""

    file: str
    lines: Mapping[str, int]

    def line(self, key: str) -> int | None:
        return line_of(self.lines, key)

    def fail(self, key: str, message: str, hint: str = "") -> NoReturn:
        raise ProfileError(message, file=self.file, line=self.line(key), key=key, hint=hint)

    def secret(self, key: str, raw: str) -> Secret:
        """A ``Secret`` remembering where it was written; a malformed ``${...}``
        is an error now rather than a confusing literal later."""
        if "${" in ENV_REF.sub("", raw):
            self.fail(
                key,
                "malformed environment reference (expected ${NAME})",
                "NAME is letters, digits and underscores, not starting with a digit",
            )
        return Secret(raw, key=key, file=self.file, line=self.line(key))


def _kind(value: Any) -> str:
    """'a string', 'an integer', ... for 'expected X, got Y' messages."""
    if isinstance(value, bool):
        return "a boolean"
    names = {int: "an integer", float: "a float", str: "a string", list: "a list", dict: "a table"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return "a date/time" if hasattr(value, "isoformat") else type(value).__name__


def _did_you_mean(name: str, options: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _choices(options: tuple[str, ...]) -> str:
    return ", ".join(repr(o) for o in options)


@dataclass(frozen=True)
class _Table:
    """One TOML table being read: typed getters that fail with the dotted key."""

    ctx: _Ctx
    key: str
    data: dict[str, Any]

    @classmethod
    def make(cls, ctx: _Ctx, key: str, value: Any, allowed: tuple[str, ...]) -> _Table:
        if not isinstance(value, dict):
            ctx.fail(key, f"expected a table, got {_kind(value)}")
        for name in value:
            if name not in allowed:
                noun, where = ("key", f"[{key}]") if key else ("section", "a profile")
                ctx.fail(
                    f"{key}.{name}" if key else name,
                    f"unknown {noun} {name!r}{_did_you_mean(name, allowed)}",
                    f"valid {noun}s in {where}: {', '.join(allowed)}",
                )
        return cls(ctx, key, value)

    def at(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def fail(self, name: str, message: str, hint: str = "") -> NoReturn:
        self.ctx.fail(self.at(name), message, hint)

    def has(self, name: str) -> bool:
        return name in self.data

    def _typed(self, name: str, kinds: tuple[type, ...], expected: str) -> Any:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) != (bool in kinds) or not isinstance(value, kinds):
            self.fail(name, f"expected {expected}, got {_kind(value)}")
        return value

    def opt_str(self, name: str) -> str | None:
        return cast("str | None", self._typed(name, (str,), "a string"))

    def req_str(self, name: str, hint: str = "") -> str:
        value = self.opt_str(name)
        if value is None:
            self.fail(name, f"missing required key {name!r}", hint)
        if not value.strip():
            self.fail(name, "must not be empty", hint)
        return value

    def str_or(self, name: str, default: str) -> str:
        value = self.opt_str(name)
        return default if value is None else value

    def boolean(self, name: str, default: bool) -> bool:
        value = self._typed(name, (bool,), "a boolean (true or false)")
        return default if value is None else bool(value)

    def integer(self, name: str, default: int, lo: int, hi: int | None = None) -> int:
        value = self._typed(name, (int,), "an integer")
        if value is None:
            return default
        if value < lo or (hi is not None and value > hi):
            bounds = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
            self.fail(name, f"must be {bounds}, got {value}")
        return int(value)

    def number(self, name: str, default: float, *, positive: bool = True) -> float:
        value = self._typed(name, (int, float), "a number")
        if value is None:
            return default
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            bound = "greater than 0" if positive else "at least 0"
            self.fail(name, f"must be a finite number {bound}, got {value}")
        return float(value)

    def choice(self, name: str, options: tuple[str, ...], default: str) -> str:
        value = self.str_or(name, default)
        if value not in options:
            self.fail(
                name,
                f"expected one of {_choices(options)}, got {value!r}"
                + _did_you_mean(value, options),
            )
        return value

    def str_list(self, name: str) -> tuple[str, ...]:
        value = self._typed(name, (list,), "a list of strings")
        if value is None:
            return ()
        for n, item in enumerate(value):
            if not isinstance(item, str):
                self.ctx.fail(f"{self.at(name)}[{n}]", f"expected a string, got {_kind(item)}")
        return tuple(value)

    def str_table(self, name: str) -> tuple[tuple[str, str], ...]:
        value = self._typed(name, (dict,), "a table of strings")
        if value is None:
            return ()
        for key, item in value.items():
            if not isinstance(item, str):
                self.ctx.fail(f"{self.at(name)}.{key}", f"expected a string, got {_kind(item)}")
        return tuple(value.items())

    def secret(self, name: str) -> Secret | None:
        value = self.opt_str(name)
        return None if value is None else self.ctx.secret(self.at(name), value)

    def child(self, name: str, allowed: tuple[str, ...]) -> _Table | None:
        if name not in self.data:
            return None
        return _Table.make(self.ctx, self.at(name), self.data[name], allowed)

    def children(self, name: str, allowed: tuple[str, ...]) -> list[_Table]:
        value = self.data.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(name, f"expected a list of tables ([[{self.at(name)}]]), got {_kind(value)}")
        return [
            _Table.make(self.ctx, f"{self.at(name)}[{n}]", v, allowed) for n, v in enumerate(value)
        ]

    def effect(self, name: str = "default_effect") -> str:
        return self.choice(name, EFFECTS, "allow")

    def header_name(self, name: str, value: str, key: str | None = None) -> str:
        if not HEADER_NAME.fullmatch(value):
            self.ctx.fail(
                key or self.at(name), f"{value!r} is not a valid HTTP header name", HEADER_NAME_HINT
            )
        return value


def _method(t: _Table, key_name: str, value: str, key: str | None = None) -> str:
    if not HEADER_NAME.fullmatch(value):  # a method is an RFC 9110 token too
        t.ctx.fail(key or t.at(key_name), f"{value!r} is not a valid HTTP method")
    return value.upper()
