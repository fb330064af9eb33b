"""Property: a broken profile is a ``ProfileError`` naming file and line, never a traceback.

The shipped profiles (``profiles/*.toml``, ``rrdev/data/*.toml``) are mutated the ways
people and editors break files: lines deleted or duplicated, values swapped for another
type, garbage inserted, random Unicode, the file cut short, bytes that are not UTF-8.
``parse_profile``/``load_profile`` either load the result or raise ``ProfileError`` whose
message starts ``<file>:<line>:``, naming the dotted key too unless the TOML itself
is broken.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from fuzzing import examples
from hypothesis import given
from hypothesis import strategies as st

from rrdev.core.errors import ProfileError
from rrdev.core.profile import load_profile, parse_profile

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted([*ROOT.glob("profiles/*.toml"), *ROOT.glob("rrdev/data/*.toml")])
TEXTS = {path.name: path.read_text(encoding="utf-8") for path in SHIPPED}
NAME = "fuzzed.toml"
KEY_LINE = re.compile(r"\s*([A-Za-z0-9_.\"-]+)\s*=")

#: Values of every TOML type, and values that are the right type but wrong.
VALUES = (
    *("1", "-1", "0", "1.5", "nan", "inf", "-inf", "9223372036854775807", "true", "false"),
    *('""', '"x"', '" "', "'literal'", '"""multi\nline"""', '"${UNSET"', '"${1BAD}"'),
    *('"(?P<"', '"["', '"*"', '"\\u0000"', '"none"', '"HS256"', '"0.0.0.0:99999"'),
    *("[]", "[1, 2]", '["a", 1]', "[[]]", "{}", "{ a = 1 }", '{ pattern = "(" }'),
    *("1979-05-27T07:32:00Z", "1979-05-27", "07:32:00", "1979-05-27T07:32:00"),
)
GARBAGE = (
    *("[proxy]", "[[proxy]]", "[proxy.rules]", "[[proxy.rules]]", "[[checks]]", "[nope]"),
    *("[target.x]", "[[target]]", "[proxy_credential.rules]", "[[proxy.rules.token]]"),
    *("key =", "= 1", "[", "]", "[[", '"', "'''", "a.b.c = 1", "x = 1", "id = 1"),
    *("effect = 'deny'", 'rules = "x"', "proxy = 1", "checks = {}", "\ufeff", "\x00"),
)


@st.composite
def mutated(draw: st.DrawFn, base: str) -> str:
    lines = base.split("\n")
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, max(0, len(lines) - 1)))
        kind = draw(st.sampled_from(MUTATIONS))
        lines = kind(draw, lines, at)
    return "\n".join(lines)


def _delete(draw: st.DrawFn, lines: list[str], at: int) -> list[str]:
    count = draw(st.integers(1, 8))
    return lines[:at] + lines[at + count :]


def _duplicate(draw: st.DrawFn, lines: list[str], at: int) -> list[str]:
    count = draw(st.integers(1, 6))
    return lines[: at + count] + lines[at : at + count] + lines[at + count :]


def _swap_value(draw: st.DrawFn, lines: list[str], at: int) -> list[str]:
    """Give some ``key = value`` line (comments are most lines) another value."""
    keyed = [n for n, line in enumerate(lines) if KEY_LINE.match(line)] or [at]
    at = draw(st.sampled_from(keyed))
    key = KEY_LINE.match(lines[at]) if at < len(lines) else None
    name = key.group(1) if key else "name"
    return [*lines[:at], f"{name} = {draw(st.sampled_from(VALUES))}", *lines[at + 1 :]]


def _insert_garbage(draw: st.DrawFn, lines: list[str], at: int) -> list[str]:
    garbage = draw(st.one_of(st.sampled_from(GARBAGE), st.text(max_size=20)))
    return [*lines[:at], garbage, *lines[at:]]


def _random_unicode(draw: st.DrawFn, lines: list[str], at: int) -> list[str]:
    line = lines[at] if lines else ""
    cut = draw(st.integers(0, len(line)))
    text = draw(st.text(min_size=1, max_size=5))
    return [*lines[:at], line[:cut] + text + line[cut:], *lines[at + 1 :]]


def _truncate(draw: st.DrawFn, lines: list[str], at: int) -> list[str]:
    line = lines[at] if lines else ""
    return [*lines[:at], line[: draw(st.integers(0, len(line)))]]


MUTATIONS = (_delete, _duplicate, _swap_value, _insert_garbage, _random_unicode, _truncate)

profiles = st.sampled_from(sorted(TEXTS)).flatmap(lambda name: mutated(TEXTS[name]))


def assert_names_file_and_line(error: ProfileError, text: str) -> None:
    assert error.file == NAME
    assert error.line is not None, f"no line: {error}"
    assert 1 <= error.line <= text.count("\n") + 1, f"line {error.line} is not in the file"
    assert str(error).startswith(f"{NAME}:{error.line}: ")
    if not error.detail.startswith(("invalid TOML", "cannot read profile")):
        assert error.key, f"no key: {error}"


def test_every_shipped_profile_loads_unmutated() -> None:
    assert len(SHIPPED) >= 3
    for path in SHIPPED:
        load_profile(path)


@examples(0.3)
@given(profiles)
def test_a_mutated_profile_loads_or_names_file_line_and_key(text: str) -> None:
    try:
        parse_profile(text, NAME)
    except ProfileError as error:
        assert_names_file_and_line(error, text)


@examples(0.15)
@given(
    text=profiles,
    cut=st.integers(0, 10_000),
    junk=st.sampled_from((b"", b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80", b"\x00")),
)
def test_bytes_that_are_not_utf8_name_the_line(
    text: str, cut: int, junk: bytes, tmp_path_factory: pytest.TempPathFactory
) -> None:
    data = text.encode("utf-8")
    data = data[: cut % (len(data) + 1)] + junk + data[cut % (len(data) + 1) :]
    path = tmp_path_factory.mktemp("fuzz") / NAME
    path.write_bytes(data)
    try:
        load_profile(path)
    except ProfileError as error:
        assert error.file == str(path)
        assert error.line is not None, f"no line: {error}"
        assert re.match(re.escape(str(path)) + r":\d+: ", str(error))


# ------------------------------------------------------------------ what the fuzzing found


def test_a_missing_section_points_at_the_top_of_the_file() -> None:
    # Found by the property above: an absent [proxy_credential] named no line at all.
    with pytest.raises(ProfileError) as caught:
        parse_profile('[proxy]\nname = "p"\n', NAME)
    assert str(caught.value).startswith(f"{NAME}:1: proxy_credential: the profile has no")


def test_bytes_that_are_not_utf8_name_their_line(tmp_path: Path) -> None:
    # Found by the property above: the error named neither line nor byte.
    path = tmp_path / NAME
    path.write_bytes(b'[proxy_credential]\nauth_type = "none"\n# caf\xe9\n')
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    assert caught.value.line == 3
    assert "not UTF-8 text (byte 44" in str(caught.value)
    assert caught.value.hint == "save the profile as UTF-8"


@pytest.mark.parametrize(
    ("text", "line"),
    [
        # Found by the property above: tomlkit counts NEL, U+2028... as line breaks, so a
        # comment holding one pushed every later syntax error's line past the real one.
        ('# caf\x85 menu \u2028 x\n[proxy_credential]\nauth_type = "none"\nx = = 1\n', 4),
        ('# \u2029\n[proxy_credential]\nauth_type = "none"\n[proxy\n', 4),
        ('[proxy_credential]\r\nauth_type = "none"\r\n\r\nx = = 1\r\n', 4),
    ],
)
def test_a_syntax_error_names_the_line_editors_show(text: str, line: int) -> None:
    with pytest.raises(ProfileError) as caught:
        parse_profile(text, NAME)
    assert caught.value.line == line
    assert str(caught.value).startswith(f"{NAME}:{line}: invalid TOML")
