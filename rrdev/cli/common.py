"""What every command module shares, at the cost of importing Typer only.

``stdout_console``/``stderr_console`` build rich consoles when a command first prints;
``fail`` prints an error (and a hint) on stderr and gives the ``typer.Exit`` to raise;
``friendly`` turns an ``RrdevError`` into exactly that, with its documented exit code.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any, TypeVar

import typer

__all__ = ["fail", "friendly", "stderr_console", "stdout_console", "warn_check_problems"]

F = TypeVar("F", bound=Callable[..., Any])


def stdout_console() -> Any:
    from rrdev.cli.console import make_console

    return make_console()


def stderr_console() -> Any:
    from rrdev.cli.console import make_console

    return make_console(stderr=True)


def fail(message: str, hint: str = "", code: int = 2) -> typer.Exit:
    """Print an error (and hint) on stderr and return the Exit to raise."""
    from rich.markup import escape

    err = stderr_console()
    # Messages name TOML tables ("[auth]", "[[proxy.rules]]"): never read them as markup.
    err.print(f"[bold red]error:[/] {escape(message)}", markup=True, highlight=False)
    if hint:
        err.print(f"[cyan]hint:[/] {escape(hint)}", markup=True, highlight=False)
    return typer.Exit(code)


def warn_check_problems(profile: Any) -> None:
    """Checks never block a command that is not ``rrdev check``: say which cannot run."""
    from rrdev.core.profile import check_problem_warning

    broken = [c for c in profile.checks if c.problem is not None]
    if not broken:
        return
    from rich.markup import escape

    err = stderr_console()
    for check in broken:
        line = f"[bold yellow]warning:[/] {escape(check_problem_warning(check))}"
        err.print(line, markup=True, highlight=False)


def friendly(func: F) -> F:
    """Turn RrdevError into a message + documented exit code instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from rrdev.core.errors import RrdevError

        try:
            return func(*args, **kwargs)
        except RrdevError as exc:
            raise fail(exc.message, exc.hint, exc.exit_code) from None
        except KeyboardInterrupt:
            raise typer.Exit(130) from None

    return wrapper  # type: ignore[return-value]
