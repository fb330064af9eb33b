"""The Typer front end: each command parses its options and calls one engine function.

Engine modules are imported inside the commands, so `rrdev explain` never pays for
Textual or uvicorn. Data goes to stdout, messages to stderr; expected failures print a
message (and a hint) with the documented exit code (DESIGN.md §4), never a traceback.

This module holds the app, its callback and the order of its commands; the commands
live one module per group: ``explain``; ``gateway`` (``up``, ``tui``); ``profiles``
(``validate``, ``check``, ``init``); ``token_app`` (``token ...``); ``issuer``
(``issuer ...``). ``options`` has the options they share, ``common`` the consoles and
``fail``/``friendly``. Those modules import only Typer at module level.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from rrdev.cli.explain import explain
from rrdev.cli.gateway import tui, up
from rrdev.cli.lean_params import LeanCommand, LeanGroup
from rrdev.cli.profiles import check, init, validate
from rrdev.cli.token_app import token_app

app = typer.Typer(
    name="rrdev",
    cls=LeanGroup,
    help="A local twin of a JWT-verifying API gateway that explains every 401 and 403.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(token_app, name="token")


def _version(value: bool) -> None:
    if value:
        from rrdev import __version__

        sys.stdout.write(f"rrdev {__version__}\n")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """A local twin of a JWT-verifying API gateway that explains every 401 and 403."""


def _add_issuer_commands() -> None:
    # issuer_cli imports only Typer at module level; the issuer loads when a command runs.
    from rrdev.cli.issuer import issuer_app

    app.add_typer(issuer_app, name="issuer")


_add_issuer_commands()

app.command(cls=LeanCommand)(explain)
app.command(cls=LeanCommand)(up)
app.command(cls=LeanCommand)(tui)
app.command(cls=LeanCommand)(validate)
app.command(cls=LeanCommand)(check)
app.command(cls=LeanCommand)(init)


@app.command(cls=LeanCommand)
def version() -> None:
    """Print rrdev's version."""
    from rrdev import __version__

    sys.stdout.write(f"rrdev {__version__}\n")


def main() -> None:
    app()
