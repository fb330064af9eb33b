"""``rrdev demo profile``: the ``demo`` command group (``demo_app``).

The demo's profile is packaged with rrdev (``rrdev/data/demo.toml``); ``-p demo`` names it
for every command, and ``rrdev demo profile`` writes it out to read or edit. The demo
itself runs with ``rrdev up --demo`` (``rrdev.cli.demo``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from rrdev.cli.common import fail, friendly, stderr_console
from rrdev.cli.lean_params import LeanCommand, LeanGroup

__all__ = ["demo_app"]

demo_app = typer.Typer(
    cls=LeanGroup,
    help="The offline demo's profile (run the demo itself with `rrdev up --demo`).",
    no_args_is_help=True,
)


@demo_app.command("profile", cls=LeanCommand)
@friendly
def demo_profile(
    out: Annotated[
        str | None,
        typer.Option("--out", "-o", metavar="FILE", help="Write it here instead of stdout."),
    ] = None,
    force: Annotated[bool, typer.Option("--force", help="Overwrite an existing file.")] = False,
) -> None:
    """Print the demo's profile (the one `-p demo` names), or write it to FILE.

    Its jwks_uri and base_url are the demo's default ports (8788, 8789). Exit code 3
    when FILE exists (use --force) or cannot be written.

    Example: rrdev demo profile --out demo.toml && rrdev check --offline demo.toml
    """
    from rrdev.cli.schema import pin_schema
    from rrdev.core.profile import packaged_demo_profile

    text = pin_schema(packaged_demo_profile().read_text(encoding="utf-8"))
    if out is None:
        sys.stdout.write(text)
        return
    target = Path(out)
    if target.exists() and not force:
        raise fail(f"{target} already exists", "pass --force to overwrite it", 3)
    try:
        target.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot write {target}: {exc.strerror}", code=3) from None
    stderr_console().print(f"wrote {target}: the demo's profile", markup=False)
