"""The Typer front end: each command parses its options and calls one engine function.

Engine modules are imported inside the commands, so `rrdev explain` never pays for
Textual or uvicorn. Data goes to stdout, messages to stderr; expected failures print a
message (and a hint) with the documented exit code (DESIGN.md §4), never a traceback.

This module holds the app, its callback and the order of its commands; the commands
live one module per group: ``explain``; ``gateway`` (``up``, ``tui``); ``profiles``
(``validate``, ``check``, ``init``); ``sync`` (``export``, ``import``, ``pull``,
``push``); ``token_app`` (``token ...``); ``issuer``
(``issuer ...``); ``demo_app`` (``demo profile``). ``options`` has the options they
share, ``common`` the consoles and ``fail``/``friendly``. Those modules import only
Typer at module level.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from typing import Annotated

import typer

from rrdev.cli.demo_app import demo_app
from rrdev.cli.explain import explain
from rrdev.cli.gateway import tui, up
from rrdev.cli.lean_params import LeanCommand, LeanGroup
from rrdev.cli.profiles import check, init, validate
from rrdev.cli.sync import export, import_, pull, push
from rrdev.cli.token_app import token_app

TOP_LEVEL_COMMANDS: dict[str, Callable[..., None]] = {}  # filled below, in help order


def build_app(only: str | None = None) -> typer.Typer:
    """The ``rrdev`` app; with ``only``, a root holding just that top-level command.

    Typer builds every command's options (signatures, type hints) before it runs one:
    ~40 ms for the whole tree. ``main`` hands ``rrdev explain ...`` a root with explain
    alone, which parses, helps and fails exactly as the full one does below the root.
    """
    root = typer.Typer(
        name="rrdev",
        cls=LeanGroup,
        help="A local twin of a JWT-verifying API gateway that explains every 401 and 403.",
        no_args_is_help=True,
        pretty_exceptions_enable=False,
        rich_markup_mode="markdown",
        context_settings={"help_option_names": ["-h", "--help"]},
    )
    root.callback()(_main)
    if only is None:
        root.add_typer(token_app, name="token")
        _add_issuer_commands(root)
        root.add_typer(demo_app, name="demo")
    for name, command in TOP_LEVEL_COMMANDS.items():
        if only in (None, name):
            root.command(name=name, cls=LeanCommand)(command)
    return root


def _version(value: bool) -> None:
    if value:
        from rrdev import __version__

        sys.stdout.write(f"rrdev {__version__}\n")
        raise typer.Exit()


def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """A local twin of a JWT-verifying API gateway that explains every 401 and 403."""


def _add_issuer_commands(root: typer.Typer) -> None:
    # issuer_cli imports only Typer at module level; the issuer loads when a command runs.
    from rrdev.cli.issuer import issuer_app

    root.add_typer(issuer_app, name="issuer")


def version() -> None:
    """Print rrdev's version."""
    from rrdev import __version__

    sys.stdout.write(f"rrdev {__version__}\n")


for _command in (explain, up, tui, validate, check, init, version):
    TOP_LEVEL_COMMANDS[_command.__name__] = _command
for _command in (export, import_, pull, push):
    TOP_LEVEL_COMMANDS[_command.__name__.rstrip("_")] = _command

app = build_app()


def _only_command(argv: list[str]) -> str | None:
    """The top-level command a run names first, unless the whole tree is needed: shell
    completion, a root option (``--help``, ``--version``) or a group (``token ...``)."""
    if any(name.endswith("_COMPLETE") for name in os.environ):
        return None
    first = argv[0] if argv else None
    return first if first in TOP_LEVEL_COMMANDS else None


def main() -> None:
    only = _only_command(sys.argv[1:])
    (app if only is None else build_app(only))()
