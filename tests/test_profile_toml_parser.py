"""Profiles are read with ``tomllib``, and with tomlkit only when tomllib refuses the file
(``core/profile/loading._parse_toml``): the two must read every document alike, or a
profile would mean one thing here and another where tomlkit reads it (``rrdev sync``,
``rrdev init``). Generated documents (nested tables, arrays of tables, inline tables,
every scalar type, keys and strings with quotes, escapes and non-ASCII) and every
profile in the repository; a broken file still gets tomlkit's line and hint."""

from __future__ import annotations

import datetime as dt
import tomllib
from pathlib import Path
from typing import Any

import pytest
import tomlkit
from hypothesis import given
from hypothesis import strategies as st

from rrdev.core.errors import ProfileError
from rrdev.core.profile.loading import _parse_toml

ROOT = Path(__file__).resolve().parent.parent

_keys = st.text(
    st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=12
) | st.sampled_from(["id", "path", "a.b", 'q"uote', "bäck\\slash", "with space"])
_scalars = (
    st.text(st.characters(blacklist_categories=("Cs",)), max_size=20)
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False)
    | st.booleans()
    | st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2200, 1, 1))
    | st.dates()
)
_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_keys, inner, max_size=4),
    max_leaves=12,
)
_documents = st.dictionaries(_keys, _values, max_size=6)


@given(_documents)
def test_tomllib_and_tomlkit_read_generated_documents_alike(document: dict[str, Any]) -> None:
    text = tomlkit.dumps(document)
    assert _parse_toml(text, "gen.toml") == tomlkit.parse(text).unwrap()


@pytest.mark.parametrize(
    "path",
    sorted([*ROOT.glob("profiles/*.toml"), *ROOT.glob("rrdev/data/**/*.toml")]),
    ids=lambda p: p.name,
)
def test_every_shipped_profile_reads_alike(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert tomllib.loads(text) == tomlkit.parse(text).unwrap()


def test_a_broken_file_still_gets_tomlkits_line_and_hint() -> None:
    text = '[target]\nname = "x"\n\n[[proxy.rules]]\npath = "^/api/\\d+$"\n'
    with pytest.raises(ProfileError) as caught:
        _parse_toml(text, "broken.toml")
    error = caught.value
    assert "broken.toml:5: invalid TOML: Invalid character 'd' in string" in error.message
    assert error.line == 5
    assert "single-quoted" in error.hint
