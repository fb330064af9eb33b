"""Why a profile pattern is refused, and what to write instead.

``rrdev.core.regex`` compiles profile patterns with RE2. A pattern is refused at load
when it is malformed, when it needs backtracking (RE2 has no backreferences,
lookaround, atomic groups, possessive quantifiers or conditionals), when RE2 and Python
read the same text differently (``x{,3}``: 0 to 3 x's in Python, the literal text in
RE2), or when it uses Python syntax RE2 lacks (``\\Z``, ``\\u00e9``, ``(?x)``). Each
refusal names the construct and shows an equivalent. Python's ``re`` is used here only
to tell "malformed" (its message has the position) from "valid, but not linear-time".

The scanner below walks the pattern's top-level syntax: escapes, character classes
(with RE2's ``[:alpha:]`` inside them), groups and quantifiers. It never decides what
a valid pattern matches; it only finds the constructs named above.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

__all__ = ["PatternRefused", "ambiguity", "refusal"]

_SYNTAX = (
    "patterns use RE2 syntax: Python's, minus the constructs that need backtracking "
    "(see docs/rules.md)"
)


class PatternRefused(ValueError):
    """A pattern rrdev will not run; ``message`` says why, ``hint`` what to write."""

    def __init__(self, message: str, hint: str) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


@dataclass(frozen=True)
class _Construct:
    name: str
    hint: str


_LOOKAHEAD = _Construct(
    "lookahead",
    "a search only asks whether a match exists, so make the looked-at text part of "
    "the match: 'a(?=b)' finds what 'ab' finds, and '(?=.*x)(?=.*y)' (both x and y) "
    "what 'x.*y|y.*x' finds",
)
_NEGATIVE = (
    "exclude it with a rule or condition of its own: a deny rule (deny wins within a "
    "scope), e.g. allow path '^/api/' and deny path '^/api/admin' instead of "
    "'^/api/(?!admin)', or, in headers, query and token, a second condition on the "
    'same name with presence = "must_absent"'
)
_LOOKBEHIND = _Construct(
    "lookbehind",
    "make the looked-at text part of the match: '(?<=a)b' finds what 'ab' finds",
)
_BACKREFERENCE = _Construct(
    "backreference",
    "RE2 cannot match 'the same text again': spell the repeats out ('(a|b)\\1' "
    "becomes 'aa|bb'); for an octal escape write \\x0a (or \\012, three digits)",
)
_ATOMIC = _Construct(
    "atomic group",
    "RE2 never backtracks, so there is nothing to protect: write '(?:' instead of '(?>'",
)
_POSSESSIVE = _Construct(
    "possessive quantifier",
    "RE2 never backtracks: drop the extra '+' ('a*+' becomes 'a*')",
)
_CONDITIONAL = _Construct(
    "conditional group",
    "write one rule (or one condition) per branch of the conditional",
)
_GROUP_OPENERS = (
    ("(?<=", _LOOKBEHIND),
    ("(?<!", _Construct("negative lookbehind", _NEGATIVE)),
    ("(?=", _LOOKAHEAD),
    ("(?!", _Construct("negative lookahead", _NEGATIVE)),
    ("(?>", _ATOMIC),
    ("(?(", _CONDITIONAL),
    ("(?P=", _BACKREFERENCE),
)
# Python reads "\1".."\99" as group references, "\0" and three octal digits as octal.
_GROUP_REFERENCE = re.compile(r"\\[1-9][0-9]?")
_OCTAL = re.compile(r"\\[0-7]{3}")
_BRACES = re.compile(r"\{(\d*)(,?)(\d*)\}")
_POSIX_CLASS = re.compile(r"\[:\^?[a-z]+:\]")

# RE2's message -> a hint for Python syntax it lacks (first match wins).
_LIMITS = (
    ("\\Z", "write \\z for the end of the text ($ means the same without the m flag)"),
    ("\\u", "write a code point as \\x{00e9}"),
    ("\\U", "write a code point as \\x{1F600}"),
    ("\\N", "write the character itself, or its code point as \\x{00e9}"),
    ("(?x", "verbose patterns are not supported: remove the spaces and comments"),
    ("(?#", "comments are not supported: remove the (?#...) group"),
    ("(?a", "only the i, m and s flags exist; \\d, \\w, \\s and \\b are already ASCII"),
    ("(?L", "only the i, m and s flags exist"),
    ("(?u", "only the i, m and s flags exist; use \\pL or \\p{Nd} for Unicode classes"),
    ("repetition size", "RE2 repeats at most 1000 times, nested repeats multiplied: use + or *"),
    ("pattern too large", "split the pattern over several conditions or rules"),
)


def ambiguity(source: str) -> PatternRefused | None:
    """A refusal for a construct found in ``source`` (even one RE2 would compile, like a
    group reference RE2 reads as octal, or ``{,n}``), or None."""
    found = _scan(source)
    if found is None:
        return None
    construct, text = found
    if construct is None:
        return PatternRefused(
            f"pattern {source!r} uses {text!r}, which Python reads as a repeat ({{0,n}}) "
            "and RE2 as literal text",
            f"write {{0{text[1:]} to repeat (or \\{text} for the text itself)",
        )
    return PatternRefused(
        f"pattern {source!r} uses {_article(construct.name)} {construct.name} ({text!r}), "
        "which needs backtracking; "
        "rrdev matches patterns in linear time (RE2) and does not support it",
        construct.hint,
    )


def refusal(source: str, flags: str, engine_message: str) -> PatternRefused:
    """Why RE2 refused ``source``: malformed (Python's message, with the position), or
    valid Python that RE2 does not support (with a hint when the construct is known)."""
    python_problem = _python_problem(source, flags)
    if python_problem is not None:
        return PatternRefused(f"invalid regular expression {source!r}: {python_problem}", _SYNTAX)
    hint = next((h for needle, h in _LIMITS if needle in engine_message), _SYNTAX)
    return PatternRefused(
        f"pattern {source!r} is not supported by rrdev's linear-time regex engine (RE2): "
        f"{engine_message}",
        hint,
    )


def _article(noun: str) -> str:
    return "an" if noun[0] in "aeiou" else "a"


def _python_problem(source: str, flags: str) -> str | None:
    bits = 0
    for letter, bit in (("i", re.IGNORECASE), ("m", re.MULTILINE), ("s", re.DOTALL)):
        if letter in flags:
            bits |= bit
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "possible nested set" and the like
            re.compile(source, bits)
    except re.error as exc:
        return str(exc)
    return None


# ------------------------------------------------------------------ the scanner


def _scan(source: str) -> tuple[_Construct | None, str] | None:
    """The first construct to refuse, as (construct, its text); construct None is the
    ambiguous ``{,n}``."""
    i, n = 0, len(source)
    atom = False  # the previous token can be repeated
    quantifier = -1  # where the previous token starts if it is a quantifier, else -1
    while i < n:
        char, start = source[i], i
        if char == "\\":
            reference = _GROUP_REFERENCE.match(source, i)
            if reference and not _OCTAL.match(source, i):
                return _BACKREFERENCE, reference.group()
            i, atom = _escape_end(source, i), True
        elif char == "[":
            i, atom = _class_end(source, i), True
        elif char == "(":
            opener = next((o for o in _GROUP_OPENERS if source.startswith(o[0], i)), None)
            if opener is not None:
                return opener[1], opener[0]
            i, atom = _comment_end(source, i) if source.startswith("(?#", i) else i + 1, False
        elif char in "*+?":
            if quantifier >= 0 and char == "+":
                return _POSSESSIVE, source[quantifier : i + 1]
            if quantifier < 0 and atom:
                atom, i = False, i + 1
                quantifier = start
                continue
            i, atom = i + 1, False  # a '?' after a quantifier makes it lazy
        elif char == "{" and (braces := _BRACES.match(source, i)) is not None:
            low, comma, _high = braces.groups()
            if not low and comma:
                return None, braces.group()
            i = braces.end()
            if low and atom:  # "{2}" after an atom repeats it; "{}" is literal text
                atom, quantifier = False, start
                continue
            atom = not low
        else:
            i, atom = i + 1, char not in "|^$"
        quantifier = -1
    return None


def _class_end(source: str, start: int) -> int:
    """The index just past the character class opening at ``start``."""
    i = start + 1
    if source.startswith("^", i):
        i += 1
    if source.startswith("]", i):  # a ']' first is a member
        i += 1
    while i < len(source):
        if source[i] == "\\":
            i += 2
        elif (posix := _POSIX_CLASS.match(source, i)) is not None:
            i = posix.end()
        elif source[i] == "]":
            return i + 1
        else:
            i += 1
    return len(source)


def _escape_end(source: str, start: int) -> int:
    """The index just past the escape at ``start``: ``\\x{41}``, ``\\p{Greek}`` and
    ``\\N{...}`` take their braces along, ``\\Q...\\E`` its quoted text."""
    letter = source[start + 1 : start + 2]
    if letter in ("x", "p", "P", "N") and source.startswith("{", start + 2):
        end = source.find("}", start + 2)
        return len(source) if end < 0 else end + 1
    if letter == "Q":
        end = source.find("\\E", start + 2)
        return len(source) if end < 0 else end + 2
    return start + 2


def _comment_end(source: str, start: int) -> int:
    end = source.find(")", start)
    return len(source) if end < 0 else end + 1
