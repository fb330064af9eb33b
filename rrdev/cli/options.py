"""Options several commands share (PROFILE, --host, --target, --jwks, --at, ...) and the
parsing of their values: a token argument, a time, headers, name=value pairs, a profile.

Each parser fails with a message and a hint (``common.fail``), never a traceback.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from rrdev.cli.common import fail

if TYPE_CHECKING:
    from rrdev.core.model import Profile

__all__ = [
    "AtOpt",
    "HostOpt",
    "JsonOpt",
    "JwksOpt",
    "OfflineOpt",
    "ProfileArg",
    "ProfileOpt",
    "ProfilesArg",
    "ProfilesOpt",
    "TargetOpt",
    "discover",
    "load",
    "no_profile_hint",
    "parse_headers",
    "parse_pairs",
    "parse_time",
    "read_token_arg",
]

ProfileOpt = Annotated[
    str | None,
    typer.Option(
        "--profile",
        "-p",
        metavar="PROFILE",
        help="Profile TOML (demo: the demo's). Default: $RRDEV_PROFILE, else ./rrdev.toml.",
        show_default=False,
    ),
]
ProfileArg = Annotated[
    str | None, typer.Argument(metavar="PROFILE", help="Profile TOML (or use -p).")
]
#: ``check`` and ``validate`` take several profiles: as arguments, with -p, or both.
ProfilesArg = Annotated[
    list[str] | None,
    typer.Argument(metavar="PROFILE", help="Profiles (default: the discovered one)."),
]
ProfilesOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--profile",
        "-p",
        metavar="PROFILE",
        help="A profile, as the arguments are (repeatable; demo: the demo's).",
        show_default=False,
    ),
]
HostOpt = Annotated[
    str | None, typer.Option("--host", metavar="HOST", help="Listen host (default: profile's).")
]
TargetOpt = Annotated[
    str | None,
    typer.Option("--target", metavar="URL", help="Forward to this base URL instead."),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Machine-readable JSON on stdout.")]


def _jwks_option(value: str | None) -> str | None:
    """--jwks FILE must exist now: a typo would otherwise be a 503 on every request."""
    if value and not value.startswith(("http://", "https://")):
        path = Path(value.removeprefix("file://"))
        if not path.is_file():
            raise fail(f"--jwks {value}: no such file", "save a JWKS with curl, or pass a URL", 3)
    return value


JwksOpt = Annotated[
    str | None,
    typer.Option(
        "--jwks",
        metavar="FILE|URL",
        help="Use this JWKS (file or URL) instead of the profile's jwks_uri.",
        callback=_jwks_option,
    ),
]


OfflineOpt = Annotated[
    bool,
    typer.Option(
        "--offline",
        help="The local keyset stands in for the profile's issuer (see `rrdev token mint`).",
    ),
]


AtOpt = Annotated[
    str | None,
    typer.Option(
        "--at",
        metavar="TIME",
        help="Evaluate as of TIME: ISO 8601, epoch seconds, or relative (+2h, -30m).",
    ),
]


def read_token_arg(token: str | None) -> str | None:
    """'-' reads the token from stdin; a pasted 'Bearer ...' prefix is dropped."""
    if token == "-":
        if sys.stdin.isatty():
            raise fail(
                "no token given: pass it as an argument, or pipe it in",
                "e.g. rrdev token mint | rrdev token decode",
            )
        token = sys.stdin.read()
        if not token.strip():
            raise fail(
                "'-' reads the token from stdin, and stdin was empty",
                "pipe a token in, e.g. rrdev token mint | rrdev explain -",
            )
    if token is None:
        return None
    token = token.strip()
    if token.lower().startswith("bearer "):
        token = token[7:].strip()
    return token or None


def parse_time(text: str | None, now: float | None = None) -> float:
    """--at: ISO 8601 (naive = UTC), epoch seconds, or +/-N[smhd] relative to now."""
    from datetime import UTC, datetime

    now = time.time() if now is None else now
    if not text:
        return now
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400}
    if text[0] in "+-" and text[-1] in units and text[1:-1].isdigit():
        return now + int(text[:-1]) * units[text[-1]]
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise fail(
            f"--at {text!r} is not a time",
            "use ISO 8601 (2026-11-28T12:00:00Z), epoch seconds, or +2h / -30m",
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def no_profile_hint(*, positional: bool) -> str:
    """What to do when no profile is found, naming only options the command has."""
    from rrdev.core.profile import DEFAULT_PROFILE_NAME, PROFILE_ENV

    given = "-p/--profile PATH or as an argument" if positional else "-p/--profile PATH"
    return (
        f"pass one with {given}, set {PROFILE_ENV}=PATH, or create ./{DEFAULT_PROFILE_NAME} "
        "(rrdev init); -p demo is the demo's profile"
    )


def discover(profile: str | None, *, positional: bool = False) -> Path:
    """``discover_profile``, its "no profile" hint fitted to the command's options."""
    from rrdev.core.errors import ProfileError
    from rrdev.core.profile import NO_PROFILE_HINT, discover_profile

    try:
        return discover_profile(profile)
    except ProfileError as exc:
        if exc.hint != NO_PROFILE_HINT:
            raise
        hint = no_profile_hint(positional=positional)
        raise ProfileError(
            exc.detail, file=exc.file, line=exc.line, key=exc.key, hint=hint
        ) from None


def load(profile: str | None, *, positional: bool = False) -> Profile:
    from rrdev.core.profile import load_profile

    return load_profile(discover(profile, positional=positional))


def profile_paths(arguments: list[str] | None, options: list[str] | None) -> list[Path]:
    """``check``/``validate``'s profiles: the arguments, then each -p; else the discovered
    one. ``demo`` names the demo's profile here too."""
    names = [*(arguments or ()), *(options or ())]
    if not names:
        return [discover(None, positional=True)]
    return [_named_profile(name) for name in names]


def _named_profile(name: str) -> Path:
    """A named profile's path, as given (a missing file is ``load_profile``'s to report)."""
    from rrdev.core.profile import DEMO_PROFILE_ALIAS, packaged_demo_profile

    path = Path(name)
    if name == DEMO_PROFILE_ALIAS and not path.is_file():
        return packaged_demo_profile()
    return path


def parse_headers(values: list[str]) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        name, sep, rest = value.partition(":")
        if not sep or not name.strip():
            raise fail(f"-H {value!r} is not 'Name: value'", "e.g. -H 'X-Tenant: acme'")
        pairs.append((name.strip(), rest.strip()))
    return pairs


def parse_pairs(values: list[str], option: str) -> list[tuple[str, str]]:
    pairs = []
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name:
            raise fail(f"{option} {value!r} is not 'name=value'")
        pairs.append((name, rest))
    return pairs
