"""The JSON Schema for profiles (``rrdev/data/profile.schema.json``) and the ``#:schema``
line that TOML editors (Taplo, Even Better TOML) read to check a profile as it is typed.

The packaged templates point at the schema beside them (``./profile.schema.json``); a
copy written elsewhere (``rrdev init``, ``rrdev demo profile --out``) gets the installed
schema's ``file://`` URI instead, so the editor finds it from wherever the copy lives.
"""

from __future__ import annotations

import re
from pathlib import Path

__all__ = ["SCHEMA_DIRECTIVE", "pin_schema", "schema_path", "schema_text"]

#: Taplo's directive: the first line of a TOML file, naming the schema by path or URL.
SCHEMA_DIRECTIVE = "#:schema "
_DIRECTIVE_LINE = re.compile(r"^#:schema [^\n]*", re.MULTILINE)


def schema_path() -> Path:
    """Where the installed package keeps the schema (a real file in any normal install)."""
    from importlib import resources

    return Path(str(resources.files("rrdev").joinpath("data", "profile.schema.json")))


def schema_text() -> str:
    return schema_path().read_text(encoding="utf-8")


def pin_schema(text: str) -> str:
    """``text`` with its ``#:schema`` line pointing at the installed schema's URI (the
    relative path in the package means nothing next to the user's copy)."""
    line = SCHEMA_DIRECTIVE + schema_path().resolve().as_uri()
    if _DIRECTIVE_LINE.search(text) is None:
        return f"{line}\n{text}"
    return _DIRECTIVE_LINE.sub(lambda _match: line, text, count=1)
