"""Finding and loading a profile: ``discover_profile`` (which file a command uses),
``load_profile`` (read it) and ``parse_profile`` (TOML -> frozen ``Profile``: every
section parsed, then the checks that span sections)."""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, cast

from rrdev.core.errors import ProfileError
from rrdev.core.model import Profile
from rrdev.core.profile.checks import _checks, _with_expected_rules_checked
from rrdev.core.profile.credentials import (
    AUTH_KEYS,
    PROXY_CREDENTIAL_KEYS,
    TARGET_CREDENTIAL_KEYS,
    _auth,
    _proxy_credential,
    _target_credential,
)
from rrdev.core.profile.headers import _check_api_key_header_unclaimed
from rrdev.core.profile.line_index import build_line_index
from rrdev.core.profile.reading import _Ctx, _Table
from rrdev.core.profile.rules import _check_unique_rule_ids
from rrdev.core.profile.sections import (
    ISSUER_KEYS,
    PROXY_KEYS,
    TARGET_KEYS,
    _issuer,
    _proxy,
    _target,
)

PROFILE_ENV = "RRDEV_PROFILE"
DEFAULT_PROFILE_NAME = "rrdev.toml"
SECTIONS = ("proxy", "target", "target_credential", "proxy_credential", "auth", "issuer", "checks")

NO_PROFILE_HINT = (
    "pass one with --profile PATH (or as the positional argument), "
    f"set {PROFILE_ENV}=PATH, or create ./{DEFAULT_PROFILE_NAME} (rrdev init)"
)
#: A profile name that means the packaged demo profile (rrdev/data/demo.toml), unless a
#: file of that name exists: a path the user can see always wins over the alias.
DEMO_PROFILE_ALIAS = "demo"


def load_profile(path: str | Path) -> Profile:
    """Read and parse the profile at ``path``; every failure is a ``ProfileError``."""
    name = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ProfileError("profile file not found", file=name, hint=NO_PROFILE_HINT) from None
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise ProfileError(f"cannot read profile: {reason}", file=name) from None
    return parse_profile(_utf8_text(data, name), name)


def _utf8_text(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ProfileError(
            f"the file is not UTF-8 text (byte {exc.start + 1}: {exc.reason})",
            file=name,
            line=data.count(b"\n", 0, exc.start) + 1,
            hint="save the profile as UTF-8",
        ) from None


def parse_profile(text: str, path: str = "<profile>") -> Profile:
    """Parse profile text (``path`` only names it in errors) into a frozen ``Profile``."""
    data = _parse_toml(text, path)
    ctx = _Ctx(path, build_line_index(text))
    return _build_profile(ctx, data)


def discover_profile(
    explicit: str | None,
    env: Mapping[str, str] = os.environ,
    cwd: Path | None = None,
) -> Path:
    """Which profile a command uses: ``explicit``, else ``$RRDEV_PROFILE``, else
    ``./rrdev.toml``. A named file that does not exist is an error, not a fallthrough:
    silently using another profile than the one asked for would be worse."""
    base = Path.cwd() if cwd is None else cwd
    if explicit:
        return _existing_or_demo(base, explicit, f"profile {explicit} not found")
    from_env = env.get(PROFILE_ENV)
    if from_env:
        message = f"profile {from_env} (from {PROFILE_ENV}) not found"
        return _existing_or_demo(base, from_env, message)
    default = base / DEFAULT_PROFILE_NAME
    if default.is_file():
        return default
    raise ProfileError("no profile given", hint=NO_PROFILE_HINT)


def _parse_toml(text: str, path: str) -> dict[str, Any]:
    """The profile's TOML as plain values. The standard library's parser reads a good
    file several times faster than tomlkit (and ``rrdev explain`` starts faster without
    importing tomlkit); a file it refuses goes to tomlkit, whose errors carry the line
    and column that the messages and hints below are built from (and whose verdict
    stands, as before)."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError:
        return _parse_toml_with_tomlkit(text, path)


def _parse_toml_with_tomlkit(text: str, path: str) -> dict[str, Any]:
    import tomlkit
    from tomlkit.exceptions import ParseError, TOMLKitError

    try:
        return cast("dict[str, Any]", tomlkit.parse(text).unwrap())
    except ParseError as exc:
        message = re.sub(r" at line \d+ col \d+$", "", str(exc))
        line = _newline_count_line(text, exc.line, exc.col)
        hint = _escape_hint(message, text.split("\n")[line - 1] if line else "")
        raise ProfileError(f"invalid TOML: {message}", file=path, line=line, hint=hint) from None
    except TOMLKitError as exc:
        raise ProfileError(f"invalid TOML: {exc}", file=path) from None


def _escape_hint(message: str, source_line: str) -> str:
    """A regex in a double-quoted string: ``\\d`` is an unknown TOML escape, and tomlkit
    says only "Invalid character 'd' in string"."""
    bad = re.fullmatch(r"Invalid character '(.)' in string", message)
    if bad is None or "\\" + bad[1] not in source_line:
        return ""
    return (
        f"\\{bad[1]} is not a TOML escape: in a double-quoted string a backslash starts one. "
        "Write regexes in single-quoted literal strings, where a backslash is just a "
        f"backslash: pattern = '^/api/\\d+$' (or double it: \"\\\\{bad[1]}\")"
    )


def _newline_count_line(text: str, line: int, col: int) -> int:
    """tomlkit numbers lines as ``str.splitlines`` does (NEL, U+2028, form feed... end a
    line too); editors and the line index count only "\\n". Map back to the offset."""
    offset = sum(len(part) + 1 for part in text.splitlines()[: line - 1]) + col
    return text.count("\n", 0, offset) + 1


def _build_profile(ctx: _Ctx, data: dict[str, Any]) -> Profile:
    root = _Table.make(ctx, "", data, SECTIONS)
    auth = root.child("auth", AUTH_KEYS)
    issuer = root.child("issuer", ISSUER_KEYS)
    profile = Profile(
        path=ctx.file,
        proxy=_proxy(root.child("proxy", PROXY_KEYS)),
        target=_target(root.child("target", TARGET_KEYS)),
        target_credential=_target_credential(
            root.child("target_credential", TARGET_CREDENTIAL_KEYS)
        ),
        proxy_credential=_proxy_credential(_required_proxy_credential(root)),
        auth=None if auth is None else _auth(auth),
        issuer=None if issuer is None else _issuer(issuer),
        checks=_checks(root),
        lines=MappingProxyType(dict(ctx.lines)),
    )
    _check_api_key_header_unclaimed(ctx, profile)
    _check_unique_rule_ids(ctx, profile.all_rules())
    return _with_expected_rules_checked(ctx, profile)


def _required_proxy_credential(root: _Table) -> _Table:
    """No section is not "no authentication": that must be said (auth_type = "none")."""
    t = root.child("proxy_credential", PROXY_CREDENTIAL_KEYS)
    if t is None:
        # Absent, so it has no line: point at the top of the file, where sections start.
        raise ProfileError(
            "the profile has no [proxy_credential] section",
            file=root.ctx.file,
            line=1,
            key="proxy_credential",
            hint='add one with auth_type = "jwtVerify" (jwks_uri, issuer, audience), '
            'or auth_type = "none" to accept unauthenticated requests',
        )
    return t


def _existing_or_demo(base: Path, name: str, message: str) -> Path:
    """``base / name``; for the name ``demo`` with no such file, the packaged demo profile."""
    path = base / name
    if name == DEMO_PROFILE_ALIAS and not path.is_file():
        return packaged_demo_profile()
    return _existing(path, message)


def packaged_demo_profile() -> Path:
    """Where the installed package keeps demo.toml (a real file in any normal install)."""
    from importlib import resources

    return Path(str(resources.files("rrdev").joinpath("data", "demo.toml")))


def _existing(path: Path, message: str) -> Path:
    if not path.is_file():
        raise ProfileError(message, file=str(path), hint=NO_PROFILE_HINT)
    return path
