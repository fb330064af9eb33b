"""The TOML line index: dotted key -> 1-based line, so errors point at the source.

tomlkit gives positions for syntax errors only, not for values, so ``build_line_index``
scans the source once for the line of every dotted key (``proxy.rules[2].token[0].value``)
and errors point at the nearest known enclosing key (``line_of``).
"""

from __future__ import annotations

import contextlib
import json
import re
from bisect import bisect_right
from collections.abc import Mapping
from typing import cast

from rrdev.core.model import Profile


def line_of(profile_or_lines: Profile | Mapping[str, int], dotted_key: str) -> int | None:
    """The line of ``dotted_key``, else of its nearest enclosing key, else None."""
    lines = profile_or_lines.lines if isinstance(profile_or_lines, Profile) else profile_or_lines
    key = dotted_key
    while key:
        if key in lines:
            return lines[key]
        key = _parent_key(key)
    return None


def build_line_index(text: str) -> dict[str, int]:
    """Dotted key -> 1-based line for every table, array element and key in ``text``
    (which must already be valid TOML). Best effort: on anything unexpected it
    returns what it indexed so far."""
    return _LineScanner(text).run()


class _ScanError(Exception):
    pass


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR = re.compile(r"[^,\]}\n#]*")
_BLANK = " \t\r\ufeff"


class _LineScanner:
    """A structural TOML walk: just enough to know where each key starts.

    Values are skipped, not decoded, except that arrays and inline tables are walked so
    ``rules = [{ id = "a" }, ...]`` elements get their own lines. ``[[a.b]]`` headers
    count per resolved array path, so they index as ``a.b[0]``, ``a.b[1]``.
    """

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.starts = [0, *(m.end() for m in re.finditer("\n", text))]
        self.index: dict[str, int] = {}
        self.aot: dict[str, int] = {}  # resolved [[array]] path -> tables seen so far

    def run(self) -> dict[str, int]:
        # tomlkit already accepted the text; a gap here only costs precision.
        with contextlib.suppress(_ScanError, IndexError, ValueError, AttributeError):
            self._document()
        return self.index

    def _document(self) -> None:
        prefix = ""
        while True:
            self._skip(newlines=True)
            if self.i >= len(self.s):
                return
            before = self.i
            if self.s[self.i] == "[":
                prefix = self._header()
            else:
                self._keyval(prefix)
            self._skip()
            if self.i == before:
                raise _ScanError

    def _line(self, pos: int) -> int:
        return bisect_right(self.starts, pos)

    def _record(self, key: str, pos: int) -> None:
        if key:
            self.index.setdefault(key, self._line(pos))

    def _skip(self, newlines: bool = False) -> None:
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if c in _BLANK or (newlines and c == "\n"):
                self.i += 1
            elif c == "#":
                end = s.find("\n", self.i)
                self.i = len(s) if end < 0 else end
            else:
                return

    def _header(self) -> str:
        start = self.i
        is_array = self.s.startswith("[[", self.i)
        self.i += 2 if is_array else 1
        parts = self._key_parts()
        self._skip()
        self.i += 2 if is_array else 1
        path = ""
        for n, part in enumerate(parts):
            path = f"{path}.{part}" if path else part
            self._record(path, start)
            if is_array and n == len(parts) - 1:
                count = self.aot.get(path, 0)
                self.aot[path] = count + 1
                path = f"{path}[{count}]"
                self._record(path, start)
            elif path in self.aot:
                path = f"{path}[{self.aot[path] - 1}]"
        return path

    def _keyval(self, prefix: str) -> None:
        start = self.i
        path = prefix
        for part in self._key_parts():
            path = f"{path}.{part}" if path else part
            self._record(path, start)
        self._skip()
        if self.s[self.i] != "=":
            raise _ScanError
        self.i += 1
        self._value(path)

    def _key_parts(self) -> list[str]:
        parts: list[str] = []
        while True:
            self._skip()
            c = self.s[self.i]
            if c == '"':
                parts.append(self._basic_string())
            elif c == "'":
                end = self.s.index("'", self.i + 1)
                parts.append(self.s[self.i + 1 : end])
                self.i = end + 1
            else:
                match = _BARE_KEY.match(self.s, self.i)
                if match is None:
                    raise _ScanError
                parts.append(match.group())
                self.i = match.end()
            self._skip()
            if self.s[self.i] != ".":
                return parts
            self.i += 1

    def _basic_string(self) -> str:
        j = self.i + 1
        while self.s[j] != '"':
            j += 2 if self.s[j] == "\\" else 1
        raw = self.s[self.i + 1 : j]
        self.i = j + 1
        try:
            return str(json.loads(f'"{raw}"'))  # TOML escapes are JSON's, bar \U and \e
        except ValueError:
            return raw

    def _value(self, path: str) -> None:
        self._skip()
        s, i = self.s, self.i
        if s.startswith('"""', i):
            self.i = self._multiline_end('"""', i + 3)
        elif s.startswith("'''", i):
            self.i = self._multiline_end("'''", i + 3)
        elif s[i] == '"':
            self._basic_string()
        elif s[i] == "'":
            self.i = s.index("'", i + 1) + 1
        elif s[i] == "[":
            self._array(path)
        elif s[i] == "{":
            self._inline_table(path)
        else:
            self.i = cast(re.Match[str], _SCALAR.match(s, i)).end()

    def _multiline_end(self, quote: str, j: int) -> int:
        s = self.s
        while not s.startswith(quote, j):
            j += 2 if quote == '"""' and s[j] == "\\" else 1
            if j >= len(s):
                raise _ScanError
        j += 3
        for _ in range(2):  # up to two quotes may sit right before the closing three
            if j < len(s) and s[j] == quote[0]:
                j += 1
        return j

    def _array(self, path: str) -> None:
        self.i += 1
        index = 0
        while True:
            self._skip(newlines=True)
            if self.s[self.i] == "]":
                self.i += 1
                return
            before = self.i
            element = f"{path}[{index}]"
            self._record(element, self.i)
            self._value(element)
            index += 1
            self._skip(newlines=True)
            if self.s[self.i] == ",":
                self.i += 1
            elif self.i == before:
                raise _ScanError

    def _inline_table(self, path: str) -> None:
        self.i += 1
        while True:
            self._skip(newlines=True)
            if self.s[self.i] == "}":
                self.i += 1
                return
            self._keyval(path)
            self._skip(newlines=True)
            if self.s[self.i] == ",":
                self.i += 1


def _parent_key(key: str) -> str:
    if key.endswith("]"):
        return key[: key.rfind("[")]
    dot = key.rfind(".")
    return key[:dot] if dot > 0 else ""
