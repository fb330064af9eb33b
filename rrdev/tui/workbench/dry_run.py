"""The dry-run's form as an engine request (``d``): pure, no Textual.

The form's four fields become the ``IncomingRequest`` that ``rrdev explain`` would
build from the same options; the runtime judges it with ``decide`` (the one place that
decides) and sends nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from rrdev.core.explain import IncomingRequest

__all__ = ["DryRunForm", "FormError", "parse_headers"]


class FormError(ValueError):
    """A field the request cannot be built from; the message says which and why."""


@dataclass(frozen=True)
class DryRunForm:
    """What the user typed: method, path (with ``?query``), headers, token."""

    method: str = "GET"
    path: str = "/"
    headers: str = ""
    token: str = ""

    def request(self) -> IncomingRequest:
        method = self.method.strip()
        if not method or not method.isalpha():
            raise FormError("method: a word such as GET or DELETE")
        path = self.path.strip() or "/"
        raw_path, _, raw_query = path.partition("?")
        headers = parse_headers(self.headers)
        token = self.token.strip()
        if token.lower().startswith("bearer "):
            token = token[7:].strip()
        if token:
            headers.append(("Authorization", f"Bearer {token}"))
        # The method as typed (the proxy compares it exactly as sent), upper-cased for
        # convenience: nobody means a lower-case method in a form.
        return IncomingRequest(method.upper(), raw_path, raw_query, tuple(headers))


def parse_headers(text: str) -> list[tuple[str, str]]:
    """``Name: value`` pairs separated by ``;`` or new lines."""
    pairs = []
    for part in text.replace("\n", ";").split(";"):
        if not part.strip():
            continue
        name, colon, value = part.partition(":")
        if not colon or not name.strip():
            raise FormError(f"headers: '{part.strip()}' is not 'Name: value'")
        pairs.append((name.strip(), value.strip()))
    return pairs
