"""The one redaction list (DESIGN.md §2.7), applied wherever output is built.

Secrets are replaced by ``REDACTED``; a token is shown only as its fingerprint
(``sha256:`` + 12 hex digits of its hash): enough to tell two tokens apart in logs,
useless to an attacker.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

REDACTED = "[redacted]"

#: Header names (lower-case) whose values are never shown.
SECRET_HEADERS = frozenset(
    {"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"}
)
#: Query parameter / JSON field names whose values are never shown.
SECRET_FIELDS = frozenset(
    {"access_token", "client_secret", "id_token", "refresh_token", "password", "api_key"}
)


def fingerprint(token: str) -> str:
    """A short, stable, non-reversible name for a token."""
    return "sha256:" + hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()[:12]


@dataclass(frozen=True)
class Redactor:
    """The redaction list for one profile: the fixed names plus the configured
    api-key header/parameter names and any literal secret values to scrub."""

    headers: frozenset[str] = SECRET_HEADERS
    fields: frozenset[str] = SECRET_FIELDS
    values: tuple[str, ...] = ()

    def with_names(self, headers: Iterable[str] = (), fields: Iterable[str] = ()) -> Redactor:
        return Redactor(
            self.headers | {h.lower() for h in headers},
            self.fields | {f.lower() for f in fields},
            self.values,
        )

    def with_values(self, values: Iterable[str]) -> Redactor:
        extra = tuple(v for v in values if v and len(v) >= 4)
        return Redactor(self.headers, self.fields, self.values + extra)

    def header(self, name: str, value: str) -> str:
        return REDACTED if name.lower() in self.headers else self.text(value)

    def field(self, name: str, value: str) -> str:
        return REDACTED if name.lower() in self.fields else self.text(value)

    def headers_list(self, pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        # ``header`` for each pair, inlined: the proxy runs this on every request.
        names, text = self.headers, self.text
        return tuple((k, REDACTED if k.lower() in names else text(v)) for k, v in pairs)

    def query_list(self, pairs: Iterable[tuple[str, str]]) -> tuple[tuple[str, str], ...]:
        return tuple((k, self.field(k, v)) for k, v in pairs)

    def text(self, value: str) -> str:
        """Scrub known secret values (tokens, credentials) out of free text."""
        for secret in self.values:
            if secret in value:
                value = value.replace(secret, REDACTED)
        return value


DEFAULT_REDACTOR = Redactor()
