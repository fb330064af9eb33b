"""rrdev.core.regex: profile patterns on RE2 (linear time), what they match through
every search path, and why the ones RE2 cannot run are refused."""

from __future__ import annotations

import copy
import pickle
import time
from typing import Any

import pytest
import re2
from hypothesis import given, settings
from hypothesis import strategies as st

from rrdev.core import regex as regex_module
from rrdev.core.model import Pattern
from rrdev.core.regex import LinearRegex, PatternRefused, compile_pattern
from rrdev.core.regex_refusals import _scan

LONG_A = "a" * 50_000

# (source, flags, text, found): RE2's semantics, which docs/rules.md documents.
SEARCHES = [
    # always-matching patterns: no engine at all
    ("", "", "anything", True),
    (".*", "", "", True),
    ("^", "", "x", True),
    ("^.*", "s", "a\nb", True),
    # plain strings: substring, prefix, suffix, equality
    ("delete:resources", "", "read:users delete:resources", True),
    ("delete:resources", "", "delete:resource", False),
    ("^scope$", "", "scope", True),
    ("^scope$", "", "scopes", False),
    ("^scope$", "", "scope\n", False),  # $ is the very end, not "before a final \n"
    ("^/api", "", "/api/x", True),
    ("^/api", "", "/v2/api", False),
    (".json$", "", "a.json", True),  # '.' is a metacharacter: the engine decides
    ("json$", "", "a.json\n", False),
    ("^$", "", "", True),
    ("^$", "", "x", False),
    ("é", "", "café", True),
    # the engine
    ("^/api/v1/(users|products|orders)(/.*)?$", "", "/api/v1/products/7", True),
    ("^/api/v1/(users|products|orders)(/.*)?$", "", "/api/v2/reports", False),
    ("^/x/(a+)+$", "", f"/x/{LONG_A}!", False),  # catastrophic for a backtracker
    ("^/x/(a+)+$", "", f"/x/{LONG_A}", True),
    ("(x+x+)+y", "", "x" * 50_000, False),
    # flags
    ("ACME", "i", "acme corp", True),
    ("ACME", "", "acme corp", False),
    ("^acme$", "i", "ACME", True),
    ("k", "i", "\u212a", True),  # KELVIN SIGN folds to k, as in Python
    ("^b", "", "a\nb", False),
    ("^b", "m", "a\nb", True),
    ("^b$", "m", "a\nb\nc", True),
    ("a$", "m", "a\nb", True),
    ("a.b", "", "a\nb", False),
    ("a.b", "s", "a\nb", True),
    # \d \w \s \b are ASCII; Unicode classes are spelled out
    (r"^\d+$", "", "123", True),
    (r"^\d+$", "", "١٢٣", False),
    (r"^\p{Nd}+$", "", "١٢٣", True),
    (r"^\w+$", "", "café", False),
    (r"^[\pL\pN_]+$", "", "café", True),
    (r"\s", "", "\v", False),
    (r"[[:space:]]", "", "\v", True),
    (r"\bid\b", "", "my id here", True),
    (r"\bid\b", "", "éidé", True),  # é is not a word character to RE2
    # RE2-only syntax is fine
    (r"\Qa.b\E", "", "a.b", True),
    (r"\Qa.b\E", "", "axb", False),
    (r"\x{41}+", "", "AAA", True),
    ("(?P<name>a)(?<other>b)", "", "ab", True),
    (r"\z", "", "x", True),
    # a claim value may carry a lone surrogate (JSON "\ud800"): searched, never an error
    ("^.$", "", "\ud800", True),
    ("x", "", "\ud800x", True),
    ("^x$", "", "\ud800", False),
]


def _paths(source: str, flags: str) -> dict[str, Any]:
    """Every way a search can run: the chosen one, RE2's raw Match, its public API."""
    engine = regex_module._compile_re2(source, flags)
    raw = regex_module._raw_search(engine)
    assert raw is not None, "the installed google-re2 should expose the raw Match"
    return {
        "chosen": compile_pattern(source, flags).search,
        "raw": raw,
        "public": regex_module._public_search(engine),
    }


@pytest.mark.parametrize(("source", "flags", "text", "found"), SEARCHES)
def test_every_search_path_agrees(source: str, flags: str, text: str, found: bool) -> None:
    for name, search in _paths(source, flags).items():
        assert search(text) is found, name


@pytest.mark.parametrize(
    ("source", "flags", "cost"),
    [
        ("", "", 0),
        (".*", "", 0),
        ("delete:resources", "", 1),
        ("^scope$", "", 1),
        ("^/api", "", 1),
        ("json$", "", 1),
    ],
)
def test_patterns_that_need_no_engine_cost_nothing(source: str, flags: str, cost: int) -> None:
    assert compile_pattern(source, flags).cost == cost


@pytest.mark.parametrize(
    ("source", "flags"),
    [("ACME", "i"), ("^b", "m"), ("a$", "m"), ("a.c", ""), ("^/x/(a+)+$", "")],
)
def test_patterns_the_engine_runs_cost_their_program_size(source: str, flags: str) -> None:
    regex = compile_pattern(source, flags)
    assert regex.cost > regex_module._RE2_SETUP_COST


def test_a_pathological_pattern_answers_in_linear_time() -> None:
    regex = compile_pattern("^/x/(a+)+$")
    started = time.perf_counter()
    for _ in range(10):
        assert not regex.search(f"/x/{LONG_A}!")
    assert time.perf_counter() - started < 0.5  # Python's re would not finish at all


def test_without_the_private_binding_the_public_api_answers(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    engine = regex_module._compile_re2("^/api/v1/(users|orders)", "")

    class PublicOnly:  # a binding whose compiled object has no _regexp
        search = engine.search

    search = regex_module._engine_search(PublicOnly())
    assert search.__qualname__.startswith("_public_search")
    assert search("/api/v1/users/1") and not search("/api/v2/users")
    monkeypatch.delattr(re2, "_Anchor")  # a binding without the Anchor enum
    assert regex_module._raw_search(engine) is None


def test_a_raw_match_with_another_shape_falls_back_to_the_public_api() -> None:
    class Changed:
        class _regexp:  # the attribute name the binding uses
            @staticmethod
            def Match(*args: object) -> object:
                raise TypeError("Match() takes different arguments now")

    assert regex_module._raw_search(Changed()) is None
    assert regex_module._engine_search(Changed()).__qualname__.startswith("_public_search")


def test_the_raw_binding_is_used_when_it_is_there() -> None:
    regex = compile_pattern("^/api/v1/(users|orders)")
    assert regex.search.__qualname__.startswith("_raw_search")


def test_refused_patterns_print_nothing_on_stderr(capfd: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(PatternRefused):
        compile_pattern(r"\Z")
    assert capfd.readouterr().err == ""  # absl logs compile errors unless told not to


def test_each_pattern_has_a_bounded_memory_budget() -> None:
    options = regex_module._compile_re2("^/api/(a|b)*a(a|b){40}c", "").options
    assert options.max_mem == 1 << 20  # a hostile text fills a DFA cache up to this
    assert options.never_capture and not options.log_errors


def test_equal_by_source_and_flags_and_hashable() -> None:
    assert compile_pattern("a.c", "i") == compile_pattern("a.c", "i")
    assert compile_pattern("a.c") != compile_pattern("a.c", "i")
    assert len({compile_pattern("a.c"), compile_pattern("a.c")}) == 1


def test_copies_and_pickles_compile_again() -> None:
    pattern = Pattern("^/api/(v1|v2)/", "i")
    for twin in (copy.deepcopy(pattern), pickle.loads(pickle.dumps(pattern))):
        assert twin == pattern and twin.regex == pattern.regex
        assert twin.search("/API/v2/x") and not twin.search("/api/v3/x")


def test_with_ignorecase_adds_the_flag_once() -> None:
    regex = compile_pattern("^x-tenant$")
    folded = regex.with_ignorecase()
    assert folded.flags == "i" and folded.search("X-Tenant") and not regex.search("X-Tenant")
    assert folded.with_ignorecase() is folded


def test_flags_are_canonical() -> None:
    assert compile_pattern("a", "smi").flags == "ims"


# ------------------------------------------------------------------ fast paths


LITERAL_TEXT = st.text(alphabet="ab/:é\n\ud800", max_size=12)


@settings(max_examples=300, deadline=None)
@given(
    literal=st.text(alphabet="ab/:é\n", max_size=4),
    anchors=st.sampled_from(["", "^", "$", "^$"]),
    flags=st.sampled_from(["", "m", "s"]),
    text=LITERAL_TEXT,
)
def test_string_tests_agree_with_the_engine(
    literal: str, anchors: str, flags: str, text: str
) -> None:
    source = ("^" if "^" in anchors else "") + literal + ("$" if "$" in anchors else "")
    engine = regex_module._public_search(regex_module._compile_re2(source, flags))
    assert compile_pattern(source, flags).search(text) is engine(text)


# ------------------------------------------------------------------ refusals

REFUSALS = [
    ("^/api/(?!admin)", "uses a negative lookahead ('(?!')", 'presence = "must_absent"'),
    ("^/api/(?!admin)", "needs backtracking", "deny wins within a scope"),
    ("a(?=b)", "uses a lookahead ('(?=')", "'a(?=b)' finds what 'ab' finds"),
    ("(?<=a)b", "uses a lookbehind ('(?<=')", "'(?<=a)b' finds what 'ab' finds"),
    ("(?<!a)b", "uses a negative lookbehind ('(?<!')", "a deny rule"),
    (r"^/(\w+)/\1$", "uses a backreference ('\\\\1')", "'aa|bb'"),
    ("(?P<x>a)(?P=x)", "uses a backreference ('(?P=')", "'aa|bb'"),
    (r"(a)\12", "uses a backreference ('\\\\12')", "\\x0a"),  # RE2 would read octal
    ("(?>a+)b", "uses an atomic group ('(?>')", "write '(?:' instead"),
    ("a++", "uses a possessive quantifier ('++')", "drop the extra '+'"),
    ("a*+", "possessive quantifier ('*+')", "'a*+' becomes 'a*'"),
    ("a{2}+", "possessive quantifier ('{2}+')", "drop the extra '+'"),
    ("(a)?(?(1)b|c)", "uses a conditional group ('(?(')", "one rule"),
    ("a{,3}", "uses '{,3}', which Python reads as a repeat", "write {0,3}"),
    (r"\Z", "not supported by rrdev's linear-time regex engine (RE2)", "write \\z"),
    (r"caf\u00e9", "invalid escape sequence: \\u", "\\x{00e9}"),
    ("(?x) a b", "invalid perl operator: (?x", "verbose patterns"),
    ("(?#note)a", "(?#", "remove the (?#...) group"),
    ("a{1001}", "invalid repetition size", "at most 1000"),
    (r"[\1]", "invalid escape sequence: \\1", "RE2 syntax"),  # octal in a Python class
    ("((a{100}){100}){100}", "repetition size", "at most 1000"),
    (
        "delete:(",
        "invalid regular expression 'delete:(': missing ), unterminated subpattern at position 7",
        "RE2 syntax",
    ),
    ("[", "invalid regular expression '[': unterminated character set", "docs/rules.md"),
]


@pytest.mark.parametrize(("source", "message", "hint"), REFUSALS)
def test_refusals_name_the_construct_and_show_an_equivalent(
    source: str, message: str, hint: str
) -> None:
    with pytest.raises(PatternRefused) as caught:
        compile_pattern(source)
    assert message in caught.value.message
    assert hint in caught.value.hint
    assert repr(source) in caught.value.message or "{,3}" in caught.value.message


@pytest.mark.parametrize(
    "source",
    [
        r"a\(?=b",  # an escaped parenthesis
        "[(?=]x",  # inside a class
        r"\Qa(?=b)\E",  # quoted
        "a+?b*?c??",  # lazy, not possessive
        r"\x{41}+",
        "x{}+",
        "[[:alpha:]]+",
        r"\123",  # three octal digits: octal to Python and RE2 alike
        "a{2,}b{3}",
        r"\{,3}",
        "[]a]+",
    ],
)
def test_look_alikes_are_not_refused(source: str) -> None:
    assert isinstance(compile_pattern(source), LinearRegex)


TOKENS = [*"ab.()|*+?^$", "[", "]", "{2}", "{,2}", "(?=", "(?!", "(?<=", "(?<!", "(?>"]
TOKENS += ["(?:", "(?P<n>", "(?P=n)", r"\1", r"\12", r"\123", r"\(", r"\Q(?=\E", "[(?=]"]
TOKENS += ["[[:alpha:]]", r"\x{41}", "(?#c)", "{", "}", "++", "*+", "{2}+"]


@settings(max_examples=500, deadline=None)
@given(st.lists(st.sampled_from(TOKENS), max_size=6).map("".join))
def test_the_scanner_never_refuses_what_re2_runs_for_backtracking(source: str) -> None:
    """Anything RE2 compiles is refused only as ambiguous ({,n}, or a group reference
    RE2 would read as octal), never as needing backtracking it does not need."""
    found = _scan(source)
    try:
        re2.compile(source, _quiet())
    except re2.error:
        return
    assert found is None or found[0] is None or found[0].name == "backreference"


def _quiet() -> Any:
    options = re2.Options()
    options.log_errors = False
    return options
