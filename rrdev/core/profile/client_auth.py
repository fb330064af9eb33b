"""The token request's own keys, shared by ``[auth]`` and the ``oauth2`` target credential:
``extra`` form parameters and ``private_key_jwt`` client authentication (RFC 7523).

``extra = { aud = "..." }`` is sent as it is, beside what rrdev sends itself; a name
that would override rrdev's own parameters (the grant, the client's identity or its
authentication) is refused, and so are ``audience``/``resource``/``scope``, which have
their own keys. ``private_key_jwt`` needs exactly one of ``private_key`` (PEM text,
usually ``${VAR}``) or ``private_key_file`` (relative to the profile file).
"""

from __future__ import annotations

from pathlib import Path

from rrdev.core.algorithms import ASSERTION_ALGORITHMS
from rrdev.core.model import Secret
from rrdev.core.profile.reading import _kind, _Table

#: What ``client_auth`` may be; the first is the default.
CLIENT_AUTH = ("client_secret_post", "client_secret_basic", "private_key_jwt")
#: The keys only private_key_jwt reads: set with another client_auth they would be ignored.
PRIVATE_KEY_JWT_KEYS = ("private_key", "private_key_file", "key_id", "assertion_algorithm")
CLIENT_AUTH_KEYS = ("extra", *PRIVATE_KEY_JWT_KEYS)
#: extra parameters rrdev sends itself: letting ``extra`` replace them would change
#: who the client is or how it authenticates.
RESERVED_PARAMETERS = (
    *("grant_type", "client_id", "client_secret"),
    *("client_assertion", "client_assertion_type"),
)
#: extra parameters that have their own key in the section.
OWN_KEY_PARAMETERS = ("audience", "resource", "scope")


def _extra(t: _Table) -> tuple[tuple[str, Secret], ...]:
    """``extra = { name = "value", ... }``: strings (``${VARS}`` allowed), no name
    that rrdev sends itself."""
    value = t.data.get("extra")
    if value is None:
        return ()
    if not isinstance(value, dict):
        t.fail("extra", f"expected a table of strings, got {_kind(value)}", _EXTRA_EXAMPLE)
    pairs = []
    for name, item in value.items():
        key = f"{t.at('extra')}.{name}"
        _extra_name(t, key, name)
        if not isinstance(item, str):
            t.ctx.fail(key, f"expected a string, got {_kind(item)}", _EXTRA_EXAMPLE)
        pairs.append((name, t.ctx.secret(key, item)))
    return tuple(pairs)


_EXTRA_EXAMPLE = "e.g. extra = { aud = 'https://api.example.com' }"


def _extra_name(t: _Table, key: str, name: str) -> None:
    if not name.strip():
        t.ctx.fail(key, "an extra parameter needs a name", _EXTRA_EXAMPLE)
    if name in RESERVED_PARAMETERS:
        t.ctx.fail(
            key,
            f"extra may not set {name!r}: rrdev sends it itself",
            "extra adds parameters; grant_type, client_id, client_secret and "
            "client_assertion* come from the section's own keys (client_auth chooses "
            "how the client authenticates)",
        )
    if name in OWN_KEY_PARAMETERS:
        t.ctx.fail(
            key,
            f"{name!r} has its own key: set {name} = '...' instead of extra.{name}",
            "extra is for parameters rrdev does not know, e.g. extra = { aud = '...' } "
            "for servers that read aud instead of audience",
        )


def _client_auth(t: _Table) -> str:
    return t.choice("client_auth", CLIENT_AUTH, CLIENT_AUTH[0])


def _private_key_file(t: _Table, name: str = "private_key_file") -> str | None:
    """A key file as an absolute path (a relative one is the profile file's)."""
    value = t.opt_str(name)
    if value is None:
        return None
    if not value.strip():
        t.fail(name, "must not be empty")
    path = Path(value).expanduser()
    if not path.is_absolute():
        path = Path(t.ctx.file).parent / path
    return str(path.absolute())


def _assertion_algorithm(t: _Table) -> str:
    return t.choice("assertion_algorithm", ASSERTION_ALGORITHMS, ASSERTION_ALGORITHMS[0])


def _client_auth_complete(t: _Table, what: str) -> None:
    """private_key_jwt needs one key and no secret; the other methods need the secret
    and none of private_key_jwt's keys (they would be silently ignored)."""
    if _client_auth(t) == "private_key_jwt":  # an unknown client_auth fails here first
        _private_key_jwt_complete(t, what)
        return
    for name in PRIVATE_KEY_JWT_KEYS:
        if t.has(name):
            t.fail(
                name,
                f"{name!r} is only used with client_auth = 'private_key_jwt'",
                f"set client_auth = 'private_key_jwt', or remove {name!r}",
            )
    if not t.has("client_secret"):
        t.fail(
            "client_secret",
            f"{what} needs 'client_secret'",
            "e.g. client_secret = '${CLIENT_SECRET}' (or client_auth = 'private_key_jwt' "
            "with private_key)",
        )


def _private_key_jwt_complete(t: _Table, what: str) -> None:
    if t.has("client_secret"):
        t.fail(
            "client_secret",
            "client_auth = 'private_key_jwt' sends a signed assertion, never client_secret",
            "remove client_secret (or choose client_secret_post/client_secret_basic)",
        )
    if t.has("private_key") == t.has("private_key_file"):
        t.fail(
            "private_key_file" if t.has("private_key_file") else "private_key",
            f"{what} with client_auth = 'private_key_jwt' needs exactly one of "
            "'private_key' (PEM text) or 'private_key_file' (a PEM file)",
            "e.g. private_key = '${CLIENT_PRIVATE_KEY}' or private_key_file = 'keys/client.pem'",
        )


def _issuer_client_authenticates(c: _Table) -> None:
    """An ``[[issuer.clients]]`` entry needs a way to authenticate: a secret, or a
    public key (``public_key_file`` or ``jwks_uri``) for private_key_jwt."""
    if c.has("public_key_file") and c.has("jwks_uri"):
        c.fail("jwks_uri", "set one of 'public_key_file' or 'jwks_uri', not both")
    if not any(c.has(name) for name in ("client_secret", "public_key_file", "jwks_uri")):
        c.fail(
            "client_secret",
            "missing required key 'client_secret' (or 'public_key_file'/'jwks_uri' for "
            "a client that authenticates with private_key_jwt)",
            "e.g. client_secret = '${MY_SERVICE_SECRET}' or public_key_file = 'keys/svc.pub.pem'",
        )
