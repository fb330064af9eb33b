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

The modules, in dependency order (each imports only those above it):

- ``line_index``: the TOML line index (``build_line_index``, ``line_of``).
- ``reading``: ``_Ctx`` and ``_Table``, typed getters whose errors name file:line:key.
- ``headers``: header names rrdev owns or needs, ``additional_headers`` templates.
- ``rules``: ``rules = [...]`` -> ``Rule``, patterns compiled at load.
- ``client_auth``: the token request's ``extra`` parameters and ``private_key_jwt`` keys.
- ``sections``: ``[proxy]``, ``[target]``, ``[issuer]``.
- ``credentials``: ``[target_credential]``, ``[proxy_credential]``, ``[auth]``.
- ``checks``: ``[[checks]]`` -> ``CheckSpec`` (a broken one carries its ``CheckProblem``).
- ``warnings``: ``profile_warnings``, what ``rrdev validate`` reports but accepts.
- ``loading``: ``discover_profile``, ``load_profile``, ``parse_profile``.

Names starting with ``_`` are shared between these modules only; everything else
imports from ``rrdev.core.profile``.
"""

from __future__ import annotations

from rrdev.core.profile.checks import check_problem_warning, check_problems
from rrdev.core.profile.line_index import build_line_index, line_of
from rrdev.core.profile.loading import (
    DEFAULT_PROFILE_NAME,
    DEMO_PROFILE_ALIAS,
    NO_PROFILE_HINT,
    PROFILE_ENV,
    discover_profile,
    load_profile,
    packaged_demo_profile,
    parse_profile,
)
from rrdev.core.profile.warnings import ProfileWarning, profile_warnings

__all__ = [
    "DEFAULT_PROFILE_NAME",
    "DEMO_PROFILE_ALIAS",
    "NO_PROFILE_HINT",
    "PROFILE_ENV",
    "ProfileWarning",
    "build_line_index",
    "check_problem_warning",
    "check_problems",
    "discover_profile",
    "line_of",
    "load_profile",
    "packaged_demo_profile",
    "parse_profile",
    "profile_warnings",
]
