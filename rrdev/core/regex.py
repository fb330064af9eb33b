"""Linear-time regular expressions for the patterns a profile supplies.

Rule patterns are searched in text an attacker chooses (paths, headers, query values,
claims), so they run on RE2 (google-re2), whose matching time grows linearly with the
text and never backtracks: ``^/x/(a+)+$`` against ``/x/aaaa…a!`` costs microseconds,
not the lifetime of the process. Python's ``re`` is kept only to tell a malformed
pattern from a valid one RE2 cannot run (``rrdev.core.regex_refusals``).

``compile_pattern(source, flags)`` -> a ``LinearRegex`` whose ``search(text) -> bool``
is the only thing rules need. The fastest exact way is picked once, at load:

* ``""``, ``.*``, ``^``, ``^.*`` always match: no engine at all;
* a pattern without metacharacters (``delete:resources``, ``^scope$``) is a substring,
  prefix, suffix or equality test on the ``str`` (never with ``i``, nor anchors with
  ``m``): ~0.1 µs, faster than ``re``;
* anything else: RE2's own ``Match`` on the UTF-8 bytes (1-2 µs for a short path, where
  ``re`` takes ~0.5 µs: the binding's call overhead, whatever the pattern), through the
  binding's ``_regexp`` object when it is there and answers a probe, else through the
  public ``search`` (several times slower: it builds a match object).

Internal regexes written by rrdev itself stay on Python's ``re``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import re2

from rrdev.core.regex_refusals import PatternRefused, ambiguity, refusal

__all__ = ["FLAGS", "LinearRegex", "PatternRefused", "compile_pattern"]

#: The flags a pattern may carry, with what they mean (the order is the canonical one).
FLAGS = {"i": "ignore case", "m": "multi-line", "s": "dot matches newline"}

#: Cost units charged per searched character on top of the RE2 program size: RE2's
#: per-character overhead when its DFA gives up and it falls back to the NFA.
_RE2_SETUP_COST = 16
#: RE2's memory budget per pattern (program + DFA cache; RE2's default is 8 MiB). A
#: hostile text can fill any pattern's DFA cache, so this bounds what every rule may
#: cost in memory; measured, a smaller cache also gives up on a hopeless DFA sooner.
_MAX_MEM = 1 << 20
_ALWAYS = frozenset({"", ".*", "^", "^.*"})
_METACHARACTERS = frozenset("\\^$.|?*+()[]{}")


@dataclass(frozen=True)
class LinearRegex:
    """A compiled profile pattern. ``search(text)`` says whether it occurs anywhere in
    ``text`` (a search, not anchored), in time linear in ``len(text)``.

    ``cost`` bounds the work per searched character, in RE2 program instructions (0 when
    the pattern always matches, 1 for a plain string test): ``cost * len(text)`` is
    what the rule engine weighs to decide whether a request's rules may run inline.
    Equal (and hashed) by source and flags.
    """

    source: str
    flags: str
    cost: int = field(compare=False)
    search: Callable[[str], bool] = field(compare=False, repr=False)

    def with_ignorecase(self) -> LinearRegex:
        """The same pattern with the ``i`` flag (header names match case-insensitively)."""
        return self if "i" in self.flags else compile_pattern(self.source, self.flags + "i")

    def __reduce__(self) -> tuple[Any, tuple[str, str]]:
        # The search closure cannot be pickled or copied; the source and flags can.
        return compile_pattern, (self.source, self.flags)


def compile_pattern(source: str, flags: str = "") -> LinearRegex:
    """Compile ``source`` with ``flags`` (letters of ``FLAGS``) for RE2.

    Raises ``PatternRefused`` (message + hint) for a malformed pattern, one that needs
    backtracking (backreferences, lookaround, atomic groups, possessive quantifiers,
    conditionals), one RE2 reads differently from Python (``x{,3}``), or one RE2 does
    not support.
    """
    flags = "".join(letter for letter in FLAGS if letter in flags)
    problem = ambiguity(source)
    if problem is not None:
        raise problem
    compiled = _compile_re2(source, flags)  # validates even what needs no engine
    fast = _fast_search(source, flags)
    if fast is not None:
        return LinearRegex(source, flags, 0 if source in _ALWAYS else 1, fast)
    cost = int(getattr(compiled, "programsize", 4 * len(source))) + _RE2_SETUP_COST
    return LinearRegex(source, flags, cost, _engine_search(compiled))


def _compile_re2(source: str, flags: str) -> Any:
    # RE2 has no option for multi-line, only the inline flag. Bytes in, bytes matched:
    # the str API would decode match spans we never look at.
    pattern = (f"(?m){source}" if "m" in flags else source).encode("utf-8", "surrogatepass")
    try:
        return re2.compile(pattern, _options(flags))
    except re2.error as exc:
        raise refusal(source, flags, _error_text(exc)) from None


def _options(flags: str) -> Any:
    options = re2.Options()
    options.log_errors = False  # absl would print every refused pattern on stderr
    options.never_capture = True  # only "is there a match": no group spans to track
    options.max_mem = _MAX_MEM
    options.case_sensitive = "i" not in flags
    options.dot_nl = "s" in flags
    return options


def _error_text(exc: Exception) -> str:
    arg = exc.args[0] if exc.args else ""
    return arg.decode("utf-8", "replace") if isinstance(arg, bytes) else str(arg)


# ------------------------------------------------------------------ searchers


def _fast_search(source: str, flags: str) -> Callable[[str], bool] | None:
    """An exact ``str`` test for patterns that need no engine, else None."""
    if source in _ALWAYS:
        return _always
    if "i" in flags:  # Unicode case folding is RE2's business
        return None
    starts = source.startswith("^")
    ends = source.endswith("$") and not source.endswith("\\$")
    literal = source[1 if starts else 0 : len(source) - 1 if ends else None]
    if _METACHARACTERS.intersection(literal) or ((starts or ends) and "m" in flags):
        return None
    if starts and ends:
        return literal.__eq__
    if starts:
        return _prefix(literal)
    if ends:
        return _suffix(literal)
    return _contains(literal)


def _always(text: str) -> bool:
    return True


def _prefix(literal: str) -> Callable[[str], bool]:
    def search(text: str) -> bool:
        return text.startswith(literal)

    return search


def _suffix(literal: str) -> Callable[[str], bool]:
    def search(text: str) -> bool:
        return text.endswith(literal)

    return search


def _contains(literal: str) -> Callable[[str], bool]:
    def search(text: str) -> bool:
        return literal in text

    return search


def _engine_search(compiled: Any) -> Callable[[str], bool]:
    """RE2's raw ``Match`` when the binding still exposes it as probed here (it is not
    public API), else the public ``search``."""
    raw = _raw_search(compiled)
    return raw if raw is not None else _public_search(compiled)


def _raw_search(compiled: Any) -> Callable[[str], bool] | None:
    match = getattr(getattr(compiled, "_regexp", None), "Match", None)
    anchor = getattr(getattr(re2, "_Anchor", None), "UNANCHORED", None)
    if match is None or anchor is None:
        return None
    try:  # the shape we rely on: a list of (start, end) spans, (-1, -1) for none
        probe = match(anchor, b"", 0, 0)
        if not isinstance(probe[0][0], int):
            return None
    except Exception:
        return None

    def search(text: str) -> bool:
        data = _utf8(text)
        return bool(match(anchor, data, 0, len(data))[0][0] >= 0)

    return search


def _public_search(compiled: Any) -> Callable[[str], bool]:
    def search(text: str) -> bool:
        return compiled.search(_utf8(text)) is not None

    return search


def _utf8(text: str) -> bytes:
    try:
        return text.encode()
    except UnicodeEncodeError:  # a lone surrogate (a JSON claim may carry "\ud800")
        return text.encode("utf-8", "surrogatepass")
