"""Typer without pydantic for plain text options: the CLI's cold start.

Typer (0.16+) turns every option value into its Python type through a pydantic
``TypeAdapter`` built when the value is first processed, so any command with a text
option imports pydantic (~100 ms, a quarter of ``rrdev explain``). A ``str`` or
``list[str]`` option without a custom parser needs no validation at all: the value on
the command line is already the string. ``LeanCommand`` and ``LeanGroup`` (every
command and group of the CLI is one) give those parameters a coercion
that does what Typer's adapter does for them (decode bytes, keep lists as lists), and
leaves every other type (int, float, bool given as text, paths, choices) to Typer, so
their error messages stay Typer's own.

It reaches into Typer's internals (``typer._coercion``, ``_runtime_param``), so it is
defensive: with a Typer that lacks them it changes nothing, and Typer's own coercion
applies. ``tests/test_architecture.py`` fails if pydantic comes back.
"""

from __future__ import annotations

import sys
from typing import Any, get_args, get_origin

import typer.core

__all__ = ["LeanCommand", "LeanGroup"]


def _as_text(value: Any) -> str:
    """Typer's ``_parse_cli_str``: bytes decoded as argv is, else ``str()``."""
    if not isinstance(value, bytes):
        return str(value)
    encodings = (getattr(sys.stdin, "encoding", None) or sys.getfilesystemencoding(),)
    for encoding in (*encodings, sys.getfilesystemencoding()):
        try:
            return value.decode(encoding)
        except UnicodeError:
            continue
    return value.decode("utf-8", "replace")


def _lean_runtime_param_class() -> type | None:
    try:
        from typer._coercion import RuntimeParam, build_runtime_param
    except ImportError:  # an older Typer: no pydantic coercion to avoid
        return None

    class LeanRuntimeParam(RuntimeParam):  # type: ignore[misc, valid-type]
        """Text as Typer's adapter would give it, a value already of its type as is
        (a flag's bool, an int default); anything else (``--port x``) goes to Typer."""

        def _coerce_value(self, value: Any, param: Any, ctx: Any) -> Any:
            if _is_text(self.annotation):
                if isinstance(value, (list, tuple)):
                    return [_as_text(item) for item in value]
                return _as_text(value)
            if type(value) is self.annotation:
                return value
            typer_own = build_runtime_param(param.type_descriptor)
            return typer_own._coerce_value(value, param=param, ctx=ctx)

    return LeanRuntimeParam


_LEAN_RUNTIME_PARAM = _lean_runtime_param_class()


def _is_text(annotation: Any) -> bool:
    if annotation is str:
        return True
    return get_origin(annotation) is list and get_args(annotation) == (str,)


def _make_lean(param: Any) -> None:
    descriptor = getattr(param, "type_descriptor", None)
    if descriptor is None or getattr(param, "_runtime_param", "absent") is not None:
        return
    info = descriptor.parameter_info
    if getattr(info, "parser", None) is not None or descriptor.file_annotation is not None:
        return
    annotation = descriptor.annotation
    plain = annotation in (bool, int, float) and info.min is None and info.max is None
    if (plain or _is_text(annotation)) and _LEAN_RUNTIME_PARAM is not None:
        param._runtime_param = _LEAN_RUNTIME_PARAM(parameter_info=info, annotation=annotation)


#: The value word an option without a metavar shows in --help (click's own words).
_VALUE_WORDS = {str: "TEXT", int: "INTEGER", float: "NUMBER"}


def _tidy_help(param: Any) -> None:
    """One help style: arguments by an upper-case name (``PROFILE``, ``TOKEN``), options
    by a metavar or a value word, flags by nothing. Typer would add ``<bool>``, ``<str>``,
    ``<list[str]>`` after each; the type is the parser's business, not the reader's."""
    if not hasattr(param, "display_type_rich"):
        return
    if isinstance(param, typer.core.TyperArgument):
        param.metavar = (param.metavar or param.name or "").upper() or None
        word = None
    elif getattr(param, "is_flag", False) or getattr(param, "count", False):
        word = None
    else:
        annotation = getattr(getattr(param, "type_descriptor", None), "annotation", None)
        if get_origin(annotation) is list:
            annotation = get_args(annotation)[0]
        word = param.metavar or _VALUE_WORDS.get(annotation, "VALUE")
    param.display_type_rich = lambda ctx, word=word: word


class LeanCommand(typer.core.TyperCommand):
    """A command whose text options and flags (``--help`` included) skip pydantic."""

    def get_params(self, ctx: Any) -> list[Any]:
        # get_params, not __init__: Typer adds --help (and, to the root, the completion
        # options) after building the command; parsing, help and completion all ask here.
        params = super().get_params(ctx)
        for param in params:
            _make_lean(param)
            _tidy_help(param)
        return params


class LeanGroup(typer.core.TyperGroup):
    """A command group (``rrdev``, ``rrdev token``, ...) whose own parameters skip pydantic."""

    def get_params(self, ctx: Any) -> list[Any]:
        params = super().get_params(ctx)
        for param in params:
            _make_lean(param)
            _tidy_help(param)
        return params
