"""TOML profile -> frozen ``Profile`` (DESIGN.md §1, §3).

A profile is validated once, here: unknown keys, wrong types, bad regular expressions,
refused algorithms and missing cross-field values all fail at load with a
``ProfileError`` naming the file, the line and the dotted key. Nothing later has to
re-check a ``Profile``.

tomlkit gives positions for syntax errors only, not for values, so ``build_line_index``
scans the source once for the line of every dotted key (``proxy.rules[2].token[0].value``)
and errors point at the nearest known enclosing key.

``${NAME}`` references in secret fields stay unresolved (``Secret``); ``profile_warnings``
lists the ones whose variable is unset, for ``rrdev validate``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import difflib
import json
import math
import os
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Any, NoReturn, cast
from urllib.parse import urlsplit

import tomlkit
from tomlkit.exceptions import ParseError, TOMLKitError

from rrdev.core.errors import ProfileError
from rrdev.core.model import (
    ENV_REF,
    AuthConfig,
    CheckSpec,
    HeaderValue,
    IssuerClient,
    IssuerConfig,
    OAuth2Client,
    PairCondition,
    PathCondition,
    Pattern,
    Presence,
    Profile,
    Proxy,
    ProxyCredential,
    Rule,
    Secret,
    Target,
    TargetCredential,
)
from rrdev.core.records import Scope

__all__ = [
    "ProfileWarning",
    "build_line_index",
    "discover_profile",
    "line_of",
    "load_profile",
    "parse_profile",
    "profile_warnings",
]

PROFILE_ENV = "RRDEV_PROFILE"
DEFAULT_PROFILE_NAME = "rrdev.toml"

EFFECTS = ("allow", "deny")
TARGET_AUTH_TYPES = ("none", "bearer", "basic", "api_key", "oauth2")
AUTH_KINDS = ("auth0", "oauth2", "local", "static")
CLIENT_AUTH = ("client_secret_post", "client_secret_basic")
#: Asymmetric JWS algorithms only: a JWKS publishes public keys, so these are the only
#: algorithms a proxy credential can verify without sharing a secret with the issuer.
ALLOWED_ALGORITHMS = (
    *("RS256", "RS384", "RS512", "PS256", "PS384", "PS512"),
    *("ES256", "ES384", "ES512", "ES256K", "EdDSA"),
)
REGEX_FLAGS = {"i": re.IGNORECASE, "m": re.MULTILINE, "s": re.DOTALL}
PRESENCE_SPELLINGS: dict[str, Presence] = {
    "must_exist": "must_exist",
    "must_absent": "must_absent",
    "present": "must_exist",  # the gateway's spellings
    "absent": "must_absent",
}
#: RFC 9110 token (tchar+): what a header name may contain. Use ``fullmatch``: ``$``
#: would let a trailing newline through.
HEADER_NAME = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")
HEADER_NAME_HINT = (
    "a header name is an RFC 9110 token: letters, digits and !#$%&'*+-.^_`|~ "
    "(no spaces, colons or control characters)"
)
#: What rrdev.servers.proxy substitutes (the same expression); everything else is literal text.
CLAIM_PLACEHOLDER = re.compile(r"\{claims\.[^{}\s]+\}")
#: Literal text that was meant as a claim placeholder: ``{claims.}``, ``{claims.sub``,
#: ``{ claims.sub }``, ``{Claims.sub}``, ``{claim.sub}``, ``{claims}``.
_CLAIM_ATTEMPT = re.compile(r"\{\s*claims?\b", re.IGNORECASE)
#: ``{sub}``, ``{user.id}``: a placeholder rrdev does not know (sent literally).
_OTHER_PLACEHOLDER = re.compile(r"\{\s*[A-Za-z_][\w.:/-]*\s*\}")
PLACEHOLDER_HINT = (
    "a placeholder is {claims.<name>}: a claim name or dotted path, without spaces or "
    "braces, e.g. {claims.sub} or {claims.app_metadata.plan} (case-sensitive)"
)

_HOP_BY_HOP = (
    *("connection", "keep-alive", "proxy-authenticate", "proxy-connection", "te"),
    *("trailer", "upgrade"),
)
_FRAMING = "it frames the request body, and rrdev frames the body it forwards itself"
_FORWARDED = "rrdev sets X-Forwarded-For, X-Forwarded-Proto and X-Forwarded-Host itself"
_GATEWAY = "it is the gateway's response header to the caller, not a request header"
_OTHER_NAME = "use another header name"
#: Lower-case header names rrdev owns upstream (DESIGN.md §2.5), which
#: ``additional_headers``, ``forward_authorization_as`` and an api-key credential's
#: ``header`` must not name: name -> (why, hint).
RESERVED_HEADERS: dict[str, tuple[str, str]] = {
    "authorization": (
        "the backend gets exactly one Authorization (the target credential's or the caller's)",
        "to authenticate rrdev to the backend use [target_credential] (bearer, basic, "
        "oauth2); to pass the caller's header on under another name use "
        "forward_authorization_as",
    ),
    "proxy-authorization": (
        "it is hop-by-hop (it authenticates to a proxy) and never forwarded",
        _OTHER_NAME,
    ),
    "host": (
        "Host is always the target's (from target.base_url)",
        "change target.base_url; the caller's Host reaches the backend as X-Forwarded-Host",
    ),
    "content-length": (_FRAMING, "remove it"),
    "transfer-encoding": (_FRAMING, "remove it"),
    "expect": ("rrdev answers Expect to the caller and never forwards it", "remove it"),
    **dict.fromkeys(
        _HOP_BY_HOP,
        (
            "it is a hop-by-hop header (RFC 9110 §7.6.1): it describes one connection and "
            "is never forwarded",
            "remove it",
        ),
    ),
    **dict.fromkeys(
        ("x-forwarded-for", "x-forwarded-proto", "x-forwarded-host"),
        (_FORWARDED, "to send none, name it in header_filters"),
    ),
    **dict.fromkeys(
        ("requestrocket-proxy-code", "requestrocket-proxy-message"), (_GATEWAY, _OTHER_NAME)
    ),
}
#: header_filters may not strip these: every forwarded request needs them as rrdev sets them.
UNFILTERABLE_HEADERS: dict[str, tuple[str, str]] = {
    "host": (
        "every request needs a Host, and rrdev always sends the target's",
        "remove it; the caller's Host is already replaced (it reaches the backend as "
        "X-Forwarded-Host, which a filter may strip)",
    ),
    **dict.fromkeys(
        ("content-length", "transfer-encoding"),
        (
            "it frames the request body: without it the backend cannot tell where the body ends",
            "remove it; rrdev forwards the body with correct framing",
        ),
    ),
}

SECTIONS = ("proxy", "target", "target_credential", "proxy_credential", "auth", "issuer", "checks")
PROXY_KEYS = (
    *("name", "alias", "region", "default_effect", "listen", "additional_headers"),
    *("header_filters", "forward_authorization", "forward_authorization_as"),
    *("preflight_requires_auth", "rules"),
)
TARGET_KEYS = (
    *("name", "base_url", "test_path", "region", "default_effect", "timeout_seconds"),
    *("connect_timeout_seconds", "ca_bundle", "verify", "rules"),
)
OAUTH2_KEYS = (
    *("domain", "token_url", "client_id", "client_secret", "audience", "resource"),
    *("scope", "client_auth"),
)
#: target_credential key -> the auth_type that uses it (a key for another type is a
#: mistake worth reporting: e.g. ``token`` with the default auth_type "none" is ignored).
TARGET_CREDENTIAL_USES = {
    "token": "bearer",
    "prefix": "bearer",
    "username": "basic",
    "password": "basic",
    "api_key": "api_key",
    "header": "api_key",
    "query_param": "api_key",
    **dict.fromkeys(OAUTH2_KEYS, "oauth2"),
}
TARGET_CREDENTIAL_KEYS = (
    *("name", "auth_type", "region", "default_effect", "rules"),
    *TARGET_CREDENTIAL_USES,
)
JWT_VERIFY_KEYS = (
    *("jwks_uri", "audience", "issuer", "algorithms", "leeway_seconds", "client_id"),
    *("token_use", "jwks_ttl_seconds", "jwks_refetch_interval_seconds", "max_token_bytes"),
)
PROXY_CREDENTIAL_KEYS = ("name", "auth_type", "region", "default_effect", "rules", *JWT_VERIFY_KEYS)
AUTH_KEYS = ("kind", *OAUTH2_KEYS, "token")
ISSUER_KEYS = ("issuer", "token_lifetime_seconds", "clients")
ISSUER_CLIENT_KEYS = ("client_id", "client_secret", "audiences", "scopes")
CHECK_KEYS = ("name", "method", "path", "headers", "query", "body", "token", "expect")
RULE_KEYS = ("id", "effect", "methods", "priority", "notes", "path", "headers", "query", "token")
PATH_KEYS = ("pattern", "path", "flags", "presence")
PATTERN_KEYS = ("pattern", "flags")
EXPECT_KEYS = ("status", "reason", "rule")
#: Methods a rule or check may name without a warning: RFC 9110's, PATCH and common
#: WebDAV. Others are allowed (custom methods exist) but are usually typos (``GETT``).
STANDARD_METHODS = (
    *("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "TRACE", "CONNECT"),
    *("PROPFIND", "PROPPATCH", "MKCOL", "COPY", "MOVE", "LOCK", "UNLOCK", "REPORT", "SEARCH"),
)
#: The name a check's ``expect.rule`` uses when a scope's default_effect decided.
DEFAULT_RULE_NAME = "default"
#: ``token = { mint = { ... } }``: what rrdev.checks.engine passes on to ``keyset.mint_token``.
MINT_KEYS = ("scope", "expires_in", "not_before", "claims", "sub", "aud", "iss")

NO_PROFILE_HINT = (
    "pass one with --profile PATH (or as the positional argument), "
    f"set {PROFILE_ENV}=PATH, or create ./{DEFAULT_PROFILE_NAME} (rrdev init)"
)


@dataclass(frozen=True)
class ProfileWarning:
    """Something ``rrdev validate`` reports without refusing the profile."""

    message: str
    file: str | None = None
    line: int | None = None
    key: str | None = None

    def __str__(self) -> str:
        where = self.file or "<profile>"
        if self.line is not None:
            where += f":{self.line}"
        if self.key:
            where += f": {self.key}"
        return f"{where}: {self.message}"


# ------------------------------------------------------------------ public API


def load_profile(path: str | Path) -> Profile:
    """Read and parse the profile at ``path``; every failure is a ``ProfileError``."""
    name = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ProfileError("profile file not found", file=name, hint=NO_PROFILE_HINT) from None
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ProfileError(f"cannot read profile: {reason}", file=name) from None
    return parse_profile(text, name)


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
        return _existing(base / explicit, f"profile {explicit} not found")
    from_env = env.get(PROFILE_ENV)
    if from_env:
        return _existing(base / from_env, f"profile {from_env} (from {PROFILE_ENV}) not found")
    default = base / DEFAULT_PROFILE_NAME
    if default.is_file():
        return default
    raise ProfileError("no profile given", hint=NO_PROFILE_HINT)


def profile_warnings(profile: Profile, env: Mapping[str, str] = os.environ) -> list[ProfileWarning]:
    """Every ``${NAME}`` reference whose variable is unset or empty (secrets resolve
    lazily, so these are warnings until a command needs the value), every rule or
    check method outside ``STANDARD_METHODS`` (likely a typo), plus ``verify = false``
    on the target."""
    found: list[ProfileWarning] = []
    for secret in _secrets(profile):
        for name in secret.references:
            if not env.get(name):
                message = f"environment variable {name} is not set"
                found.append(ProfileWarning(message, secret.file, secret.line, secret.key))
    found.extend(_method_warnings(profile))
    for index, check in enumerate(profile.checks):
        found.extend(_check_token_warnings(profile, index, check, env))
    if not profile.target.verify:
        key = "target.verify"
        message = "TLS verification of the backend is off (verify = false); development only"
        found.append(ProfileWarning(message, profile.path, line_of(profile, key), key))
    return found


def line_of(profile_or_lines: Profile | Mapping[str, int], dotted_key: str) -> int | None:
    """The line of ``dotted_key``, else of its nearest enclosing key, else None."""
    lines = profile_or_lines.lines if isinstance(profile_or_lines, Profile) else profile_or_lines
    key = dotted_key
    while key:
        if key in lines:
            return lines[key]
        key = _parent_key(key)
    return None


def build_line_index(text: str) -> dict[str, int]:
    """Dotted key -> 1-based line for every table, array element and key in ``text``
    (which must already be valid TOML). Best effort: on anything unexpected it
    returns what it indexed so far."""
    return _LineScanner(text).run()


# ------------------------------------------------------------------ line index


class _ScanError(Exception):
    pass


_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_SCALAR = re.compile(r"[^,\]}\n#]*")
_BLANK = " \t\r\ufeff"


class _LineScanner:
    """A structural TOML walk: just enough to know where each key starts.

    Values are skipped, not decoded, except that arrays and inline tables are walked so
    ``rules = [{ id = "a" }, ...]`` elements get their own lines. ``[[a.b]]`` headers
    count per resolved array path, so they index as ``a.b[0]``, ``a.b[1]``.
    """

    def __init__(self, text: str) -> None:
        self.s = text
        self.i = 0
        self.starts = [0, *(m.end() for m in re.finditer("\n", text))]
        self.index: dict[str, int] = {}
        self.aot: dict[str, int] = {}  # resolved [[array]] path -> tables seen so far

    def run(self) -> dict[str, int]:
        # tomlkit already accepted the text; a gap here only costs precision.
        with contextlib.suppress(_ScanError, IndexError, ValueError, AttributeError):
            self._document()
        return self.index

    def _document(self) -> None:
        prefix = ""
        while True:
            self._skip(newlines=True)
            if self.i >= len(self.s):
                return
            before = self.i
            if self.s[self.i] == "[":
                prefix = self._header()
            else:
                self._keyval(prefix)
            self._skip()
            if self.i == before:
                raise _ScanError

    def _line(self, pos: int) -> int:
        return bisect_right(self.starts, pos)

    def _record(self, key: str, pos: int) -> None:
        if key:
            self.index.setdefault(key, self._line(pos))

    def _skip(self, newlines: bool = False) -> None:
        s = self.s
        while self.i < len(s):
            c = s[self.i]
            if c in _BLANK or (newlines and c == "\n"):
                self.i += 1
            elif c == "#":
                end = s.find("\n", self.i)
                self.i = len(s) if end < 0 else end
            else:
                return

    def _header(self) -> str:
        start = self.i
        is_array = self.s.startswith("[[", self.i)
        self.i += 2 if is_array else 1
        parts = self._key_parts()
        self._skip()
        self.i += 2 if is_array else 1
        path = ""
        for n, part in enumerate(parts):
            path = f"{path}.{part}" if path else part
            self._record(path, start)
            if is_array and n == len(parts) - 1:
                count = self.aot.get(path, 0)
                self.aot[path] = count + 1
                path = f"{path}[{count}]"
                self._record(path, start)
            elif path in self.aot:
                path = f"{path}[{self.aot[path] - 1}]"
        return path

    def _keyval(self, prefix: str) -> None:
        start = self.i
        path = prefix
        for part in self._key_parts():
            path = f"{path}.{part}" if path else part
            self._record(path, start)
        self._skip()
        if self.s[self.i] != "=":
            raise _ScanError
        self.i += 1
        self._value(path)

    def _key_parts(self) -> list[str]:
        parts: list[str] = []
        while True:
            self._skip()
            c = self.s[self.i]
            if c == '"':
                parts.append(self._basic_string())
            elif c == "'":
                end = self.s.index("'", self.i + 1)
                parts.append(self.s[self.i + 1 : end])
                self.i = end + 1
            else:
                match = _BARE_KEY.match(self.s, self.i)
                if match is None:
                    raise _ScanError
                parts.append(match.group())
                self.i = match.end()
            self._skip()
            if self.s[self.i] != ".":
                return parts
            self.i += 1

    def _basic_string(self) -> str:
        j = self.i + 1
        while self.s[j] != '"':
            j += 2 if self.s[j] == "\\" else 1
        raw = self.s[self.i + 1 : j]
        self.i = j + 1
        try:
            return str(json.loads(f'"{raw}"'))  # TOML escapes are JSON's, bar \U and \e
        except ValueError:
            return raw

    def _value(self, path: str) -> None:
        self._skip()
        s, i = self.s, self.i
        if s.startswith('"""', i):
            self.i = self._multiline_end('"""', i + 3)
        elif s.startswith("'''", i):
            self.i = self._multiline_end("'''", i + 3)
        elif s[i] == '"':
            self._basic_string()
        elif s[i] == "'":
            self.i = s.index("'", i + 1) + 1
        elif s[i] == "[":
            self._array(path)
        elif s[i] == "{":
            self._inline_table(path)
        else:
            self.i = cast(re.Match[str], _SCALAR.match(s, i)).end()

    def _multiline_end(self, quote: str, j: int) -> int:
        s = self.s
        while not s.startswith(quote, j):
            j += 2 if quote == '"""' and s[j] == "\\" else 1
            if j >= len(s):
                raise _ScanError
        j += 3
        for _ in range(2):  # up to two quotes may sit right before the closing three
            if j < len(s) and s[j] == quote[0]:
                j += 1
        return j

    def _array(self, path: str) -> None:
        self.i += 1
        index = 0
        while True:
            self._skip(newlines=True)
            if self.s[self.i] == "]":
                self.i += 1
                return
            before = self.i
            element = f"{path}[{index}]"
            self._record(element, self.i)
            self._value(element)
            index += 1
            self._skip(newlines=True)
            if self.s[self.i] == ",":
                self.i += 1
            elif self.i == before:
                raise _ScanError

    def _inline_table(self, path: str) -> None:
        self.i += 1
        while True:
            self._skip(newlines=True)
            if self.s[self.i] == "}":
                self.i += 1
                return
            self._keyval(path)
            self._skip(newlines=True)
            if self.s[self.i] == ",":
                self.i += 1


def _parent_key(key: str) -> str:
    if key.endswith("]"):
        return key[: key.rfind("[")]
    dot = key.rfind(".")
    return key[:dot] if dot > 0 else ""


# ------------------------------------------------------------------ reading values


@dataclass(frozen=True)
class _Ctx:
    """Where we are: the file name and its line index, for errors."""

    file: str
    lines: Mapping[str, int]

    def line(self, key: str) -> int | None:
        return line_of(self.lines, key)

    def fail(self, key: str, message: str, hint: str = "") -> NoReturn:
        raise ProfileError(message, file=self.file, line=self.line(key), key=key, hint=hint)

    def secret(self, key: str, raw: str) -> Secret:
        """A ``Secret`` remembering where it was written; a malformed ``${...}``
        is an error now rather than a confusing literal later."""
        if "${" in ENV_REF.sub("", raw):
            self.fail(
                key,
                "malformed environment reference (expected ${NAME})",
                "NAME is letters, digits and underscores, not starting with a digit",
            )
        return Secret(raw, key=key, file=self.file, line=self.line(key))


def _kind(value: Any) -> str:
    """'a string', 'an integer', ... for 'expected X, got Y' messages."""
    if isinstance(value, bool):
        return "a boolean"
    names = {int: "an integer", float: "a float", str: "a string", list: "a list", dict: "a table"}
    for kind, name in names.items():
        if isinstance(value, kind):
            return name
    return "a date/time" if hasattr(value, "isoformat") else type(value).__name__


def _did_you_mean(name: str, options: tuple[str, ...] | list[str]) -> str:
    close = difflib.get_close_matches(name, options, n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


def _choices(options: tuple[str, ...]) -> str:
    return ", ".join(repr(o) for o in options)


@dataclass(frozen=True)
class _Table:
    """One TOML table being read: typed getters that fail with the dotted key."""

    ctx: _Ctx
    key: str
    data: dict[str, Any]

    @classmethod
    def make(cls, ctx: _Ctx, key: str, value: Any, allowed: tuple[str, ...]) -> _Table:
        if not isinstance(value, dict):
            ctx.fail(key, f"expected a table, got {_kind(value)}")
        for name in value:
            if name not in allowed:
                noun, where = ("key", f"[{key}]") if key else ("section", "a profile")
                ctx.fail(
                    f"{key}.{name}" if key else name,
                    f"unknown {noun} {name!r}{_did_you_mean(name, allowed)}",
                    f"valid {noun}s in {where}: {', '.join(allowed)}",
                )
        return cls(ctx, key, value)

    def at(self, name: str) -> str:
        return f"{self.key}.{name}" if self.key else name

    def fail(self, name: str, message: str, hint: str = "") -> NoReturn:
        self.ctx.fail(self.at(name), message, hint)

    def has(self, name: str) -> bool:
        return name in self.data

    def _typed(self, name: str, kinds: tuple[type, ...], expected: str) -> Any:
        value = self.data.get(name)
        if value is None:
            return None
        if isinstance(value, bool) != (bool in kinds) or not isinstance(value, kinds):
            self.fail(name, f"expected {expected}, got {_kind(value)}")
        return value

    def opt_str(self, name: str) -> str | None:
        return cast("str | None", self._typed(name, (str,), "a string"))

    def req_str(self, name: str, hint: str = "") -> str:
        value = self.opt_str(name)
        if value is None:
            self.fail(name, f"missing required key {name!r}", hint)
        if not value.strip():
            self.fail(name, "must not be empty", hint)
        return value

    def str_or(self, name: str, default: str) -> str:
        value = self.opt_str(name)
        return default if value is None else value

    def boolean(self, name: str, default: bool) -> bool:
        value = self._typed(name, (bool,), "a boolean (true or false)")
        return default if value is None else bool(value)

    def integer(self, name: str, default: int, lo: int, hi: int | None = None) -> int:
        value = self._typed(name, (int,), "an integer")
        if value is None:
            return default
        if value < lo or (hi is not None and value > hi):
            bounds = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
            self.fail(name, f"must be {bounds}, got {value}")
        return int(value)

    def number(self, name: str, default: float, *, positive: bool = True) -> float:
        value = self._typed(name, (int, float), "a number")
        if value is None:
            return default
        if not math.isfinite(value) or value < 0 or (positive and value == 0):
            bound = "greater than 0" if positive else "at least 0"
            self.fail(name, f"must be a finite number {bound}, got {value}")
        return float(value)

    def choice(self, name: str, options: tuple[str, ...], default: str) -> str:
        value = self.str_or(name, default)
        if value not in options:
            self.fail(
                name,
                f"expected one of {_choices(options)}, got {value!r}"
                + _did_you_mean(value, options),
            )
        return value

    def str_list(self, name: str) -> tuple[str, ...]:
        value = self._typed(name, (list,), "a list of strings")
        if value is None:
            return ()
        for n, item in enumerate(value):
            if not isinstance(item, str):
                self.ctx.fail(f"{self.at(name)}[{n}]", f"expected a string, got {_kind(item)}")
        return tuple(value)

    def str_table(self, name: str) -> tuple[tuple[str, str], ...]:
        value = self._typed(name, (dict,), "a table of strings")
        if value is None:
            return ()
        for key, item in value.items():
            if not isinstance(item, str):
                self.ctx.fail(f"{self.at(name)}.{key}", f"expected a string, got {_kind(item)}")
        return tuple(value.items())

    def secret(self, name: str) -> Secret | None:
        value = self.opt_str(name)
        return None if value is None else self.ctx.secret(self.at(name), value)

    def child(self, name: str, allowed: tuple[str, ...]) -> _Table | None:
        if name not in self.data:
            return None
        return _Table.make(self.ctx, self.at(name), self.data[name], allowed)

    def children(self, name: str, allowed: tuple[str, ...]) -> list[_Table]:
        value = self.data.get(name)
        if value is None:
            return []
        if not isinstance(value, list):
            self.fail(name, f"expected a list of tables ([[{self.at(name)}]]), got {_kind(value)}")
        return [
            _Table.make(self.ctx, f"{self.at(name)}[{n}]", v, allowed) for n, v in enumerate(value)
        ]

    def effect(self, name: str = "default_effect") -> str:
        return self.choice(name, EFFECTS, "allow")

    def header_name(self, name: str, value: str, key: str | None = None) -> str:
        if not HEADER_NAME.fullmatch(value):
            self.ctx.fail(
                key or self.at(name), f"{value!r} is not a valid HTTP header name", HEADER_NAME_HINT
            )
        return value


# ------------------------------------------------------------------ the profile


def _parse_toml(text: str, path: str) -> dict[str, Any]:
    try:
        return cast("dict[str, Any]", tomlkit.parse(text).unwrap())
    except ParseError as exc:
        message = re.sub(r" at line \d+ col \d+$", "", str(exc))
        raise ProfileError(f"invalid TOML: {message}", file=path, line=exc.line) from None
    except TOMLKitError as exc:
        raise ProfileError(f"invalid TOML: {exc}", file=path) from None


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
        checks=tuple(_check(t) for t in root.children("checks", CHECK_KEYS)),
        lines=MappingProxyType(dict(ctx.lines)),
    )
    _check_api_key_header_unclaimed(ctx, profile)
    _check_unique_rule_ids(ctx, profile.all_rules())
    _check_expected_rules(ctx, profile)
    return profile


def _required_proxy_credential(root: _Table) -> _Table:
    """No section is not "no authentication": that must be said (auth_type = "none")."""
    t = root.child("proxy_credential", PROXY_CREDENTIAL_KEYS)
    if t is None:
        root.fail(
            "proxy_credential",
            "the profile has no [proxy_credential] section",
            'add one with auth_type = "jwtVerify" (jwks_uri, issuer, audience), '
            'or auth_type = "none" to accept unauthenticated requests',
        )
    return t


def _proxy(t: _Table | None) -> Proxy:
    if t is None:
        return Proxy()
    host, port = _listen(t)
    additional = _additional_headers(t)
    return Proxy(
        name=t.str_or("name", Proxy.name),
        alias=t.opt_str("alias"),
        region=t.opt_str("region"),
        default_effect=t.effect(),  # type: ignore[arg-type]
        listen_host=host,
        listen_port=port,
        additional_headers=additional,
        header_filters=_header_filters(t),
        forward_authorization=t.boolean("forward_authorization", True),
        forward_authorization_as=_forward_authorization_as(t, additional),
        preflight_requires_auth=t.boolean("preflight_requires_auth", False),
        rules=_rules(t, "proxy"),
    )


def _header_filters(t: _Table) -> tuple[str, ...]:
    filters = t.str_list("header_filters")
    for n, name in enumerate(filters):
        key = f"{t.at('header_filters')}[{n}]"
        t.header_name("header_filters", name, key)
        refused = UNFILTERABLE_HEADERS.get(name.lower())
        if refused is not None:
            why, hint = refused
            t.ctx.fail(key, f"{name!r} cannot be filtered: {why}", hint)
    return filters


def _forward_authorization_as(
    t: _Table, additional: tuple[tuple[str, HeaderValue], ...]
) -> str | None:
    name = t.opt_str("forward_authorization_as")
    if name is None:
        return None
    t.header_name("forward_authorization_as", name)
    reserved = RESERVED_HEADERS.get(name.lower())
    if reserved is not None:
        why, hint = reserved
        if name.lower() == "authorization":
            hint = (
                "pick another name, e.g. 'X-Original-Authorization'; to forward the caller's "
                "header as itself, use forward_authorization = true with a target "
                "credential of auth_type 'none' or 'api_key'"
            )
        t.fail(
            "forward_authorization_as", f"{name!r} cannot be forward_authorization_as: {why}", hint
        )
    for other, _ in additional:
        if other.lower() == name.lower():
            other_key = f"{t.at('additional_headers')}.{other}"
            t.fail(
                "forward_authorization_as",
                f"{name!r} is also an additional header ({other_key}, line "
                f"{t.ctx.line(other_key)}): the backend would get two {name} headers",
                "use another name for one of them",
            )
    return name


def _reserved_header(ctx: _Ctx, key: str, name: str, role: str) -> None:
    reserved = RESERVED_HEADERS.get(name.lower())
    if reserved is not None:
        why, hint = reserved
        ctx.fail(key, f"{name!r} cannot be {role}: {why}", hint)


def _listen(t: _Table) -> tuple[str, int]:
    value = t.opt_str("listen")
    if value is None:
        return Proxy.listen_host, Proxy.listen_port
    match = re.fullmatch(r"(\[[0-9A-Fa-f:.]+\]|[^:\[\]\s]+):(\d{1,5})", value)
    if match is None:
        t.fail("listen", f"expected 'host:port', got {value!r}", "e.g. listen = '127.0.0.1:8787'")
    port = int(match.group(2))
    if not 1 <= port <= 65535:
        t.fail("listen", f"port must be between 1 and 65535, got {port}")
    return match.group(1).strip("[]"), port


def _additional_headers(t: _Table) -> tuple[tuple[str, HeaderValue], ...]:
    pairs = t.str_table("additional_headers")
    seen: dict[str, str] = {}
    for name, template in pairs:
        key = f"{t.at('additional_headers')}.{name}"
        t.header_name("additional_headers", name, key)
        _reserved_header(t.ctx, key, name, "an additional header")
        first = seen.setdefault(name.lower(), key)
        if first != key:
            t.ctx.fail(
                key,
                f"duplicate header name {name!r} (header names are case-insensitive): "
                f"also {first} at line {t.ctx.line(first)}",
                "the backend would get the header twice; keep one",
            )
        _header_template(t.ctx, key, template)
    return tuple((name, HeaderValue(template)) for name, template in pairs)


def _header_template(ctx: _Ctx, key: str, template: str) -> None:
    """Refuse what rrdev.servers.proxy would send broken: control characters in the literal
    text (CR/LF/NUL make every forwarded request fail) and placeholder typos (sent as
    literal text)."""
    literals = CLAIM_PLACEHOLDER.split(template)
    for text in literals:
        for char in text:
            if char != "\t" and unicodedata.category(char) == "Cc":
                effect = (
                    "every forwarded request would fail (502)"
                    if char < "\x80"
                    else "a backend may refuse or mangle the request"
                )
                ctx.fail(
                    key,
                    f"control character {char!r} in the header value",
                    "CR, LF, NUL and other control characters cannot be sent in an HTTP "
                    f'header: {effect}. In TOML, a multi-line """string""" keeps its newlines',
                )
        attempt = _CLAIM_ATTEMPT.search(text)
        if attempt is not None:
            ctx.fail(
                key,
                f"malformed claim placeholder {_fragment(text, attempt.start())!r} "
                "(expected {claims.<name>})",
                PLACEHOLDER_HINT,
            )
        other = _OTHER_PLACEHOLDER.search(text)
        if other is not None:
            ctx.fail(
                key,
                f"unknown placeholder {other.group()!r}: only {{claims.<name>}} is filled in",
                f"e.g. {{claims.{other.group().strip('{} ')}}} for a claim; "
                "any other {name} would be sent literally",
            )
    for match in CLAIM_PLACEHOLDER.finditer(template):
        path = match.group()[len("{claims.") : -1]
        if path.startswith(".") or path.endswith(".") or ".." in path:
            ctx.fail(
                key,
                f"malformed claim placeholder {match.group()!r} (empty name in the dotted path)",
                PLACEHOLDER_HINT,
            )
    depth = 0
    for char in "".join(literals):
        depth += {"{": 1, "}": -1}.get(char, 0)
        if depth < 0:
            ctx.fail(key, "unmatched '}' in the header value", PLACEHOLDER_HINT)
    if depth > 0:
        ctx.fail(key, "unclosed '{' in the header value", PLACEHOLDER_HINT)


def _fragment(text: str, start: int) -> str:
    """``text`` from ``start`` to its first ``}`` (inclusive), at most 40 characters."""
    end = text.find("}", start)
    fragment = text[start:] if end < 0 else text[start : end + 1]
    return fragment if len(fragment) <= 40 else fragment[:37] + "..."


def _target(t: _Table | None) -> Target:
    if t is None:
        return Target()
    base_url = _base_url(t)
    test_path = t.opt_str("test_path")
    if test_path is not None and not test_path.startswith("/"):
        t.fail("test_path", f"must start with '/', got {test_path!r}")
    return Target(
        name=t.str_or("name", Target.name),
        base_url=base_url,
        test_path=test_path,
        region=t.opt_str("region"),
        default_effect=t.effect(),  # type: ignore[arg-type]
        rules=_rules(t, "target"),
        timeout_seconds=t.number("timeout_seconds", Target.timeout_seconds),
        connect_timeout_seconds=t.number("connect_timeout_seconds", Target.connect_timeout_seconds),
        ca_bundle=t.opt_str("ca_bundle"),
        verify=t.boolean("verify", True),
    )


def _base_url(t: _Table) -> str:
    """The rules rrdev.servers.proxy applies before it listens (``_upstream_of``), here, so
    ``validate`` refuses what ``up`` would. The URL is not echoed once it might hold a
    password."""
    base_url = t.req_str("base_url", "e.g. base_url = 'https://api.example.com'")
    if any(c.isspace() or unicodedata.category(c) == "Cc" for c in base_url):
        t.fail(
            "base_url",
            "must not contain whitespace or control characters",
            "percent-encode them in the path (a space is %20)",
        )
    try:
        parts = urlsplit(base_url)
        port = parts.port
        userinfo = parts.username is not None or parts.password is not None
    except ValueError as exc:
        t.fail("base_url", f"not a valid URL: {exc}", "e.g. base_url = 'https://api.example.com'")
    if userinfo:
        t.fail(
            "base_url",
            "must not carry user:password@ (rrdev would send it as a second Authorization)",
            "use [target_credential] auth_type = 'basic' with ${VARS} instead",
        )
    if parts.scheme not in ("http", "https") or not parts.hostname:
        t.fail("base_url", f"expected an http:// or https:// URL, got {base_url!r}")
    if port == 0:
        t.fail("base_url", "port must be between 1 and 65535, got 0")
    if parts.query or parts.fragment:
        t.fail(
            "base_url",
            "must not have a query or fragment",
            "base_url is a prefix: requests go to base_url + path + the caller's query. "
            "For an API key in the query use [target_credential] auth_type = 'api_key' "
            "with query_param",
        )
    return base_url


def _check_api_key_header_unclaimed(ctx: _Ctx, profile: Profile) -> None:
    """An api_key credential's header is set by rrdev: [proxy] may not add it again."""
    header = profile.target_credential.header
    if profile.target_credential.auth_type != "api_key" or header is None:
        return
    where = f"target_credential.header, line {ctx.line('target_credential.header')}"
    proxy = profile.proxy
    clashes = [(f"proxy.additional_headers.{name}", name) for name, _ in proxy.additional_headers]
    if proxy.forward_authorization_as is not None:
        clashes.append(("proxy.forward_authorization_as", proxy.forward_authorization_as))
    for key, name in clashes:
        if name.lower() == header.lower():
            ctx.fail(
                key,
                f"{name!r} is the target credential's api-key header ({where}): the backend "
                f"would get two {name} headers",
                "use another name; rrdev sets the api-key header itself",
            )


def _unused_keys(t: _Table, uses: Mapping[str, str], auth_type: str) -> None:
    """A key meant for another auth_type would be silently ignored: refuse it."""
    for name in t.data:
        wanted = uses.get(name)
        if wanted is not None and wanted != auth_type:
            t.fail(
                name,
                f"{name!r} is only used with auth_type = {wanted!r} (this one is {auth_type!r})",
                f"set auth_type = {wanted!r}, or remove {name!r}",
            )


def _target_credential(t: _Table | None) -> TargetCredential:
    if t is None:
        return TargetCredential()
    auth_type = t.choice("auth_type", TARGET_AUTH_TYPES, "none")
    _unused_keys(t, TARGET_CREDENTIAL_USES, auth_type)
    credential = TargetCredential(
        name=t.str_or("name", TargetCredential.name),
        auth_type=auth_type,  # type: ignore[arg-type]
        region=t.opt_str("region"),
        default_effect=t.effect(),  # type: ignore[arg-type]
        rules=_rules(t, "target_credential"),
        token=t.secret("token"),
        prefix=t.str_or("prefix", TargetCredential.prefix),
        username=t.secret("username"),
        password=t.secret("password"),
        api_key=t.secret("api_key"),
        header=t.opt_str("header"),
        query_param=t.opt_str("query_param"),
        oauth2=_oauth2_client(t) if auth_type == "oauth2" else None,
    )
    _target_credential_complete(t, credential)
    return credential


def _target_credential_complete(t: _Table, c: TargetCredential) -> None:
    needs = {"bearer": ("token",), "basic": ("username", "password"), "api_key": ("api_key",)}
    for name in needs.get(c.auth_type, ()):
        if not t.has(name):
            t.fail(name, f"auth_type = {c.auth_type!r} needs {name!r}")
    if c.auth_type == "api_key":
        if (c.header is None) == (c.query_param is None):
            t.fail(
                "header",
                "auth_type = 'api_key' needs exactly one of 'header' or 'query_param'",
                "e.g. header = 'X-API-Key' (sent as a header) or query_param = 'api_key'",
            )
        if c.header is not None:
            t.header_name("header", c.header)
            if c.header.lower() != "authorization":  # an api key in Authorization is fine
                _reserved_header(t.ctx, t.at("header"), c.header, "the api-key header")
    if c.auth_type == "oauth2":
        _oauth2_complete(t, "auth_type = 'oauth2'")


def _oauth2_client(t: _Table) -> OAuth2Client:
    return OAuth2Client(
        domain=t.opt_str("domain"),
        token_url=t.opt_str("token_url"),
        client_id=t.secret("client_id"),
        client_secret=t.secret("client_secret"),
        audience=t.opt_str("audience"),
        resource=t.opt_str("resource"),
        scope=t.opt_str("scope"),
        client_auth=t.choice("client_auth", CLIENT_AUTH, "client_secret_post"),  # type: ignore[arg-type]
    )


def _oauth2_complete(t: _Table, what: str) -> None:
    if t.has("domain") == t.has("token_url"):
        t.fail(
            "token_url" if t.has("token_url") else "domain",
            f"{what} needs exactly one of 'domain' (Auth0) or 'token_url' (any OAuth2 server)",
        )
    if t.has("token_url"):
        url = urlsplit(cast(str, t.opt_str("token_url")))
        if url.scheme not in ("http", "https") or not url.netloc:
            t.fail("token_url", "expected an http:// or https:// URL")
    for name in ("client_id", "client_secret"):
        if not t.has(name):
            t.fail(name, f"{what} needs {name!r}", f"e.g. {name} = '${{{name.upper()}}}'")


def _proxy_credential(t: _Table | None) -> ProxyCredential:
    if t is None:
        return ProxyCredential()
    auth_type = _proxy_auth_type(t)
    if auth_type == "none":
        _unused_keys(t, dict.fromkeys(JWT_VERIFY_KEYS, "jwtVerify"), auth_type)
    credential = ProxyCredential(
        name=t.str_or("name", ProxyCredential.name),
        auth_type=auth_type,  # type: ignore[arg-type]
        region=t.opt_str("region"),
        default_effect=t.effect(),  # type: ignore[arg-type]
        rules=_rules(t, "proxy_credential"),
        jwks_uri=t.opt_str("jwks_uri"),
        audience=_audience(t),
        issuer=t.opt_str("issuer"),
        algorithms=_algorithms(t),
        leeway_seconds=t.number("leeway_seconds", 0.0, positive=False),
        client_id=t.opt_str("client_id"),
        token_use=t.opt_str("token_use"),
        jwks_ttl_seconds=t.number("jwks_ttl_seconds", ProxyCredential.jwks_ttl_seconds),
        jwks_refetch_interval_seconds=t.number(
            "jwks_refetch_interval_seconds",
            ProxyCredential.jwks_refetch_interval_seconds,
            positive=False,
        ),
        max_token_bytes=t.integer("max_token_bytes", ProxyCredential.max_token_bytes, 1),
    )
    if auth_type == "jwtVerify":
        _jwt_verify_complete(t, credential)
    return credential


def _proxy_auth_type(t: _Table) -> str:
    value = t.str_or("auth_type", "jwtVerify")
    folded = value.lower().replace("_", "")
    if folded == "jwtverify":
        return "jwtVerify"
    if folded == "none":
        return "none"
    t.fail(
        "auth_type",
        f"expected 'jwtVerify' or 'none', got {value!r}",
        "the gateway's static proxy credential types (api_key, bearer, basic) are not "
        "supported yet",
    )


def _audience(t: _Table) -> tuple[str, ...]:
    value = t.data.get("audience")
    if isinstance(value, str):
        return (value,)
    if value is not None and not isinstance(value, list):
        t.fail("audience", f"expected a string or a list of strings, got {_kind(value)}")
    return t.str_list("audience")


def _algorithms(t: _Table) -> tuple[str, ...]:
    if not t.has("algorithms"):
        return ProxyCredential.algorithms
    algorithms = t.str_list("algorithms")
    if not algorithms:
        t.fail("algorithms", "must list at least one algorithm", "e.g. algorithms = ['RS256']")
    for n, alg in enumerate(algorithms):
        key = f"{t.at('algorithms')}[{n}]"
        if alg.lower() == "none":
            t.ctx.fail(
                key,
                "algorithm 'none' is refused",
                "'none' means an unsigned token: anyone could forge a caller",
            )
        if alg.upper().startswith("HS"):
            t.ctx.fail(
                key,
                f"algorithm {alg!r} is refused",
                "HMAC algorithms need a shared secret, which a JWKS of public keys cannot "
                "carry; accepting them is how key-confusion attacks (a public key used as "
                "the HMAC secret) forge tokens. Use the issuer's RS256/ES256/EdDSA keys",
            )
        if alg not in ALLOWED_ALGORITHMS:
            t.ctx.fail(
                key,
                f"unknown algorithm {alg!r}{_did_you_mean(alg, ALLOWED_ALGORITHMS)}",
                f"known: {', '.join(ALLOWED_ALGORITHMS)}",
            )
    return algorithms


def _jwt_verify_complete(t: _Table, c: ProxyCredential) -> None:
    for name in ("jwks_uri", "issuer"):
        if not t.has(name):
            t.fail(name, f"auth_type = 'jwtVerify' needs {name!r}")
    if not c.audience and c.client_id is None:
        t.fail(
            "audience",
            "auth_type = 'jwtVerify' needs 'audience' (or 'client_id' for Cognito access tokens)",
            "the audience is the API identifier, not the application's client ID",
        )


def _auth(t: _Table) -> AuthConfig:
    kind = _auth_kind(t)
    if kind == "static" and not t.has("token"):
        t.fail("token", "kind = 'static' needs 'token'", "e.g. token = '${API_TOKEN}'")
    if kind == "auth0" and not t.has("domain"):
        t.fail(
            "domain", "kind = 'auth0' needs 'domain'", "e.g. domain = 'YOUR_TENANT.us.auth0.com'"
        )
    if kind in ("auth0", "oauth2"):
        _oauth2_complete(t, f"kind = {kind!r}")
    return AuthConfig(kind=kind, client=_oauth2_client(t), token=t.secret("token"))  # type: ignore[arg-type]


def _auth_kind(t: _Table) -> str:
    if t.has("kind"):
        return t.choice("kind", AUTH_KINDS, "auth0")
    for key, kind in (("token", "static"), ("token_url", "oauth2"), ("domain", "auth0")):
        if t.has(key):
            return kind
    t.fail(
        "kind",
        "cannot tell how to get a token",
        "set kind = 'local' (the local issuer), or one of domain (Auth0), token_url "
        "(OAuth2) or token (a static token)",
    )


def _issuer(t: _Table) -> IssuerConfig:
    clients = []
    for c in t.children("clients", ISSUER_CLIENT_KEYS):
        secret = c.req_str("client_secret")
        clients.append(
            IssuerClient(
                client_id=c.req_str("client_id"),
                client_secret=c.ctx.secret(c.at("client_secret"), secret),
                audiences=c.str_list("audiences"),
                scopes=c.str_list("scopes"),
            )
        )
    return IssuerConfig(
        issuer=t.str_or("issuer", IssuerConfig.issuer),
        clients=tuple(clients),
        token_lifetime_seconds=t.integer(
            "token_lifetime_seconds", IssuerConfig.token_lifetime_seconds, 1
        ),
    )


def _check(t: _Table) -> CheckSpec:
    path = t.str_or("path", "/")
    if not path.startswith("/"):
        t.fail("path", f"must start with '/', got {path!r}")
    return CheckSpec(
        name=t.req_str("name"),
        method=_method(t, "method", t.str_or("method", "GET")),
        path=path,
        headers=t.str_table("headers"),
        query=t.str_table("query"),
        body=t.opt_str("body"),
        token=_check_token(t),
        expect=_check_expect(t),
        line=t.ctx.line(t.key),
    )


def _check_token(t: _Table) -> Any:
    value = t.data.get("token", "auth")
    if isinstance(value, str):
        t.ctx.secret(t.at("token"), value)  # a malformed ${...} fails now, not at run time
        return value
    if isinstance(value, dict) and list(value) == ["mint"] and isinstance(value["mint"], dict):
        _mint_spec(_Table.make(t.ctx, f"{t.at('token')}.mint", value["mint"], MINT_KEYS))
        return value
    t.fail(
        "token",
        "expected 'auth', 'none', a token, '${ENV}' or { mint = { ... } }, "
        f"got {_kind(value)}",
    )


def _mint_spec(m: _Table) -> None:
    """``{ mint = { scope, expires_in, not_before, claims, sub, aud, iss } }``: typed
    here so a typo fails at load (``expires_in`` may be negative: an expired token)."""
    m.opt_str("scope")
    m.opt_str("sub")
    m.opt_str("iss")
    for name in ("expires_in", "not_before"):
        seconds = m._typed(name, (int, float), "a number of seconds")
        if seconds is not None and not math.isfinite(seconds):
            m.fail(name, f"must be a finite number of seconds, got {seconds}")
    if isinstance(m.data.get("aud"), list):
        m.str_list("aud")
    else:
        m._typed("aud", (str,), "a string or a list of strings")
    m._typed("claims", (dict,), "a table of claims")


def _check_expect(t: _Table) -> Any:
    value = t.data.get("expect", "allowed")
    if value == "allowed":
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        _status(t, "expect", value)
        return value
    if isinstance(value, dict):
        e = _Table.make(t.ctx, t.at("expect"), value, EXPECT_KEYS)
        if e.has("status"):
            _status(e, "status", e.integer("status", 0, 100, 599))
        e.opt_str("reason")
        e.opt_str("rule")
        return value
    got = repr(value) if isinstance(value, str) else _kind(value)
    t.fail(
        "expect",
        f"expected 'allowed', a status code or {{ status = ..., reason = ..., rule = ... }}, "
        f"got {got}",
    )


def _status(t: _Table, name: str, value: int) -> None:
    if not 100 <= value <= 599:
        t.fail(name, f"expected an HTTP status code (100-599), got {value}")


def _method(t: _Table, key_name: str, value: str, key: str | None = None) -> str:
    if not HEADER_NAME.fullmatch(value):  # a method is an RFC 9110 token too
        t.ctx.fail(key or t.at(key_name), f"{value!r} is not a valid HTTP method")
    return value.upper()


# ------------------------------------------------------------------ rules


def _rules(t: _Table, scope: Scope) -> tuple[Rule, ...]:
    return tuple(_rule(r, scope, n) for n, r in enumerate(t.children("rules", RULE_KEYS)))


def _rule(t: _Table, scope: Scope, index: int) -> Rule:
    rule_id = t.opt_str("id")
    if rule_id is not None and not rule_id.strip():
        t.fail("id", "must not be empty")
    try:
        return Rule(
            scope=scope,
            index=index,
            effect=t.choice("effect", EFFECTS, "") if t.has("effect") else _no_effect(t),  # type: ignore[arg-type]
            id=rule_id,
            methods=tuple(
                _method(t, "methods", m, f"{t.at('methods')}[{n}]")
                for n, m in enumerate(t.str_list("methods"))
            ),
            path=_path_condition(t.ctx, t.at("path"), t.data["path"]) if t.has("path") else None,
            headers=_pairs(t, "headers", "name", ignore_case_names=True),
            query=_pairs(t, "query", "name"),
            token=_pairs(t, "token", "claim"),
            priority=t.integer("priority", 0, 0, 1000),
            notes=t.str_or("notes", ""),
            line=t.ctx.line(t.key),
        )
    except ProfileError as exc:
        if rule_id is None:  # the dotted key already names it as scope.rules[index]
            raise
        raise ProfileError(
            f"{exc.detail} (rule {rule_id!r})",
            file=exc.file,
            line=exc.line,
            key=exc.key,
            hint=exc.hint,
        ) from None


def _no_effect(t: _Table) -> NoReturn:
    t.fail("effect", "missing required key 'effect'", "effect = 'allow' or effect = 'deny'")


def _flags(ctx: _Ctx, key: str, value: Any) -> str:
    if not isinstance(value, str):
        ctx.fail(key, f"expected a string, got {_kind(value)}")
    for letter in value:
        if letter not in REGEX_FLAGS:
            ctx.fail(
                key,
                f"unknown regular-expression flag {letter!r} in {value!r}",
                "flags combine i (ignore case), m (multi-line) and s (dot matches newline)",
            )
    return value


def _pattern(ctx: _Ctx, key: str, value: Any, flags: str = "") -> Pattern:
    """``"regex"`` or ``{ pattern = "regex", flags = "i" }``; ``flags`` (from the
    enclosing condition, or "i" for header names) are added to the pattern's own."""
    if isinstance(value, dict):
        t = _Table.make(ctx, key, value, PATTERN_KEYS)
        source = t.opt_str("pattern")
        if source is None:
            t.fail("pattern", "missing required key 'pattern'")
        own = _flags(ctx, t.at("flags"), value.get("flags", ""))
        return _compile(ctx, t.at("pattern"), source, own + flags)
    if not isinstance(value, str):
        ctx.fail(key, f"expected a string or {{ pattern = ... }}, got {_kind(value)}")
    return _compile(ctx, key, value, flags)


def _compile(ctx: _Ctx, key: str, source: str, letters: str) -> Pattern:
    flags = "".join(letter for letter in REGEX_FLAGS if letter in letters)
    bits = 0
    for letter in flags:
        bits |= REGEX_FLAGS[letter]
    try:
        regex = re.compile(source, bits)
    except re.error as exc:
        ctx.fail(
            key,
            f"invalid regular expression {source!r}: {exc}",
            "patterns are Python regular expressions, searched anywhere in the value",
        )
    return Pattern(source, flags, regex)


def _presence(t: _Table) -> Presence:
    value = t.str_or("presence", "must_exist")
    if value not in PRESENCE_SPELLINGS:
        options = tuple(PRESENCE_SPELLINGS)
        t.fail(
            "presence",
            f"expected 'must_exist' or 'must_absent', got {value!r}{_did_you_mean(value, options)}",
            "the gateway's 'present' and 'absent' are accepted too",
        )
    return PRESENCE_SPELLINGS[value]


def _path_condition(ctx: _Ctx, key: str, value: Any) -> PathCondition:
    """``path = "regex"``, ``{ pattern = ..., presence = ... }`` or the gateway's
    ``{ path = { pattern = ... }, presence = ... }``."""
    if isinstance(value, str):
        return PathCondition(_compile(ctx, key, value, ""))
    t = _Table.make(ctx, key, value, PATH_KEYS)
    if t.has("pattern") == t.has("path"):
        t.fail(
            "pattern",
            "expected exactly one of 'pattern' or 'path'"
            if t.has("path")
            else "missing required key 'pattern'",
        )
    flags = _flags(ctx, t.at("flags"), t.data.get("flags", ""))
    name = "pattern" if t.has("pattern") else "path"
    return PathCondition(_pattern(ctx, t.at(name), t.data[name], flags), _presence(t))


def _pairs(
    t: _Table, name: str, name_key: str, *, ignore_case_names: bool = False
) -> tuple[PairCondition, ...]:
    """``headers``/``query``/``token``: a list of ``{ <name_key>, value, presence, flags }``."""
    allowed = (name_key, "value", "presence", "flags")
    conditions = []
    for c in t.children(name, allowed):
        if not c.has(name_key):
            c.fail(name_key, f"missing required key {name_key!r}")
        flags = _flags(c.ctx, c.at("flags"), c.data.get("flags", ""))
        name_flags = flags + ("i" if ignore_case_names else "")
        value = c.data.get("value")
        conditions.append(
            PairCondition(
                name=_pattern(c.ctx, c.at(name_key), c.data[name_key], name_flags),
                value=None if value is None else _pattern(c.ctx, c.at("value"), value, flags),
                presence=_presence(c),
            )
        )
    return tuple(conditions)


def _check_unique_rule_ids(ctx: _Ctx, rules: tuple[Rule, ...]) -> None:
    seen: dict[str, Rule] = {}
    for rule in sorted(rules, key=lambda r: r.line or 0):
        if rule.id is None:
            continue
        first = seen.setdefault(rule.id, rule)
        if first is rule:
            continue
        first_key = f"{first.scope}.rules[{first.index}]"
        key = f"{rule.scope}.rules[{rule.index}].id"
        ctx.fail(
            key,
            f"duplicate rule id {rule.id!r}: first at line {ctx.line(first_key + '.id')} "
            f"({first_key}), again at line {ctx.line(key)}",
            "rule ids must be unique across the whole profile",
        )


def _check_expected_rules(ctx: _Ctx, profile: Profile) -> None:
    """A check's ``expect.rule`` must name a rule of this profile (or ``default``):
    a typo would otherwise pass ``validate`` and only fail in ``rrdev check``."""
    names = [rule.name for rule in profile.all_rules()]
    valid = [*names, DEFAULT_RULE_NAME]
    for index, check in enumerate(profile.checks):
        if not isinstance(check.expect, dict):
            continue
        rule = check.expect.get("rule")
        if rule is None or rule in valid:
            continue
        listed = ", ".join(names) if names else "none"
        ctx.fail(
            f"checks[{index}].expect.rule",
            f"unknown rule {rule!r}{_did_you_mean(rule, valid)}",
            f"rule names the deciding rule: a rule's id (or <scope>[<index>] for one "
            f"without an id), or {DEFAULT_RULE_NAME!r} for a scope's default_effect. "
            f"This profile's rules: {listed}",
        )


# ------------------------------------------------------------------ warnings & discovery


def _secrets(value: Any) -> Iterator[Secret]:
    """Every ``Secret`` anywhere in the profile's dataclass tree."""
    if isinstance(value, Secret):
        yield value
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        for f in dataclasses.fields(value):
            yield from _secrets(getattr(value, f.name))
    elif isinstance(value, tuple):
        for item in value:
            yield from _secrets(item)


def _method_warnings(profile: Profile) -> Iterator[ProfileWarning]:
    """Rule and check methods outside ``STANDARD_METHODS``: ``methods = ["GETT"]``
    loads, but the rule never matches a real client's request."""
    named: list[tuple[str, str, str]] = []  # (dotted key, method, what it means)
    for rule in profile.all_rules():
        for n, method in enumerate(rule.methods):
            key = f"{rule.scope}.rules[{rule.index}].methods[{n}]"
            named.append((key, method, f"rule {rule.name!r} matches only {method} requests"))
    for index, check in enumerate(profile.checks):
        named.append((f"checks[{index}].method", check.method, f"check {check.name!r}"))
    for key, method, what in named:
        if method not in STANDARD_METHODS:
            guess = _did_you_mean(method, STANDARD_METHODS)
            message = f"{method!r} is not a standard HTTP method{guess} ({what})"
            yield ProfileWarning(message, profile.path, line_of(profile, key), key)


def _check_token_warnings(
    profile: Profile, index: int, check: CheckSpec, env: Mapping[str, str]
) -> Iterator[ProfileWarning]:
    if not isinstance(check.token, str):
        return
    key = f"checks[{index}].token"
    for name in ENV_REF.findall(check.token):
        if not env.get(name):
            message = f"environment variable {name} is not set (check {check.name!r})"
            yield ProfileWarning(message, profile.path, line_of(profile, key), key)


def _existing(path: Path, message: str) -> Path:
    if not path.is_file():
        raise ProfileError(message, file=str(path), hint=NO_PROFILE_HINT)
    return path
