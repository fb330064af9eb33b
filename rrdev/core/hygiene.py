"""Request parts that backends read differently from the rules: method overrides,
header names with ``_``, and query parameter names as frameworks compare them.

- **Method overrides.** Express ``method-override``, Laravel, Rails, Symfony and OData
  services execute the method named by ``X-HTTP-Method-Override``, ``X-HTTP-Method``,
  ``X-Method-Override`` or a ``_method`` query parameter instead of the request's own.
  ``method_overrides`` finds them, so the engine can refuse a request whose override
  differs from its method, or judge the overridden method too (``proxy.method_override``).
  Bodies are never parsed: a ``_method`` field in a form body cannot be seen.
- **Header names with ``_``.** CGI, WSGI, PHP and Rack turn ``X-User-Id`` and
  ``X_User_Id`` into the same ``HTTP_X_USER_ID``, so a twin with underscores would slip
  past a rule on the ``-`` name. Such names are dropped before the rules run and never
  forwarded, as nginx does by default (``underscores_in_headers off``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from urllib.parse import unquote_plus

__all__ = [
    "OVERRIDE_HEADERS",
    "OVERRIDE_PARAM",
    "QUERY_SPLIT",
    "MethodOverride",
    "is_twin_header",
    "method_overrides",
    "param_key",
    "split_query",
]

#: Request headers (lower-case) that frameworks read as "the real method".
OVERRIDE_HEADERS = ("x-http-method-override", "x-http-method", "x-method-override")
#: The query parameter Rails, Laravel, Symfony and Express (configured) read the same way.
OVERRIDE_PARAM = "_method"
#: Splits a raw query into pieces, keeping the separators (``&`` and ``;``).
QUERY_SPLIT = re.compile(r"([&;])")
#: An RFC 9110 method token.
_METHOD = re.compile(r"[!#$%&'*+.^_`|~0-9A-Za-z-]+")


@dataclass(frozen=True)
class MethodOverride:
    """One override the request carries: where (``X-HTTP-Method-Override``,
    ``?_method``) and the value as sent (trimmed)."""

    where: str
    value: str

    @property
    def method(self) -> str:
        """The method a framework would run: the value upper-cased."""
        return self.value.upper()

    @property
    def is_method(self) -> bool:
        """Whether the value is one method token (``DELETE``, not ``DELETE, GET``)."""
        return _METHOD.fullmatch(self.value) is not None


def is_twin_header(name: str) -> bool:
    """A header name with ``_``: the twin of a ``-`` name to CGI-style backends."""
    return "_" in name


def method_overrides(
    headers: tuple[tuple[str, str], ...], raw_query: str
) -> tuple[MethodOverride, ...]:
    """Every non-empty method override in the (lower-cased) headers and the raw query.

    Parameter names are compared the way lenient frameworks read them (decoded,
    trimmed, case-folded: ``_METHOD``, ``%5Fmethod``), and ``;`` separates parameters
    as well as ``&``."""
    found = [
        MethodOverride(_HEADER_LABELS[name], value.strip())
        for name, value in headers
        if name in _HEADER_LABELS and value.strip()
    ]
    if raw_query and OVERRIDE_PARAM in unquote_plus(raw_query).casefold():
        for piece in split_query(raw_query):
            name, _, value = piece.partition("=")
            value = unquote_plus(value).strip()
            if param_key(unquote_plus(name)) == OVERRIDE_PARAM and value:
                found.append(MethodOverride(f"?{OVERRIDE_PARAM}", value))
    return tuple(found)


_HEADER_LABELS = {
    "x-http-method-override": "X-HTTP-Method-Override",
    "x-http-method": "X-HTTP-Method",
    "x-method-override": "X-Method-Override",
}


def split_query(raw_query: str) -> list[str]:
    """The raw query's parameters as sent (``name=value`` pieces, empty ones left out),
    split on ``&`` and on ``;`` (some backends split on it too)."""
    return [p for p in QUERY_SPLIT.split(raw_query) if p and p not in ("&", ";")]


def param_key(name: str) -> str:
    """A (decoded) parameter name as frameworks that fold case or trim spaces read it."""
    return name.strip().casefold()
