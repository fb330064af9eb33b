"""One exception tree for everything rrdev reports to a person.

    RrdevError                message + hint + exit_code (2: usage)
    ├── ProfileError          a profile is wrong: file, line, dotted key      (exit 3)
    │   └── EnvVarError       a ${NAME} reference is unset when it is needed  (exit 3)
    ├── KeysetError           the local keyset is unreadable or corrupt       (exit 3)
    ├── NetworkError          JWKS / token endpoint unreachable or garbage    (exit 4)
    │   ├── JwksUnavailable   the JWKS could not be fetched or parsed         (exit 4)
    │   │   └── DiscoveryUnavailable  the OIDC discovery document failed      (exit 4)
    │   │       └── DiscoveryIssuerMismatch  it names another issuer          (exit 4)
    │   └── TokenFetchError   a token endpoint refused or answered garbage    (exit 4, tokens.py)
    ├── TokenCacheError       the token cache directory is unusable           (exit 3, tokens.py)
    ├── KeyNotFound           no usable JWKS key for the token's kid/alg      (exit 1)
    │   └── KeyUnusable       the kid names only keys rrdev ignores as weak   (exit 1)
    └── TokenInputError       a token the user gave us is not a JWT at all    (exit 1)

Front ends print ``str(error)`` (and ``error.hint``) on stderr and exit with
``error.exit_code``; no traceback for any of these.
"""

from __future__ import annotations


class RrdevError(Exception):
    """An expected failure with a message for people and an optional hint."""

    exit_code: int = 2

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ProfileError(RrdevError):
    """A profile that cannot be used; names the file, line and dotted key."""

    exit_code = 3

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key: str | None = None,
        hint: str = "",
    ) -> None:
        self.file = file
        self.line = line
        self.key = key
        self.detail = message
        super().__init__(self._compose(message), hint)

    def _compose(self, message: str) -> str:
        where = self.file or "<profile>"
        if self.line is not None:
            where += f":{self.line}"
        if self.key:
            where += f": {self.key}"
        return f"{where}: {message}"


class EnvVarError(ProfileError):
    """A ``${NAME}`` reference whose variable is not set when the value is needed."""


class KeysetError(RrdevError):
    """The local signing keyset cannot be read or written."""

    exit_code = 3


class NetworkError(RrdevError):
    """A remote we depend on (JWKS, token endpoint) is unreachable or answered garbage."""

    exit_code = 4


class JwksUnavailable(NetworkError):
    """The JWKS at ``uri`` could not be obtained (unreachable, timeout, non-200,
    not JSON, no ``keys`` list, file missing). The proxy answers 503, not 401.
    ``reason`` is the stable code a refusal carries."""

    reason = "jwks_unavailable"

    def __init__(self, uri: str, problem: str, hint: str = "") -> None:
        self.uri = uri
        self.problem = problem
        super().__init__(self._compose(uri, problem), hint or self._default_hint(uri))

    def _compose(self, uri: str, problem: str) -> str:
        return f"could not get the JWKS from {uri}: {problem}"

    def _default_hint(self, uri: str) -> str:
        return (
            "check jwks_uri in the profile and your network/proxy settings, "
            "or pass --jwks FILE with a saved copy"
        )

    def restated(self, problem: str | None = None, hint: str | None = None) -> JwksUnavailable:
        """A fresh error of the same kind (a cached one is never raised twice: each
        raise would lengthen its traceback)."""
        return type(self)(self.uri, problem or self.problem, self.hint if hint is None else hint)


class DiscoveryUnavailable(JwksUnavailable):
    """The OIDC discovery document at ``uri`` (``{issuer}/.well-known/openid-configuration``)
    could not be read or is unusable, so the JWKS cannot be located: 503."""

    reason = "discovery_unavailable"

    def _compose(self, uri: str, problem: str) -> str:
        return f"could not use the OIDC discovery document {uri}: {problem}"

    def _default_hint(self, uri: str) -> str:
        return (
            f"check that {uri} answers (the issuer must be spelled exactly as the provider "
            "does), or set proxy_credential.jwks_uri to skip discovery"
        )


class DiscoveryIssuerMismatch(DiscoveryUnavailable):
    """The discovery document names another issuer than the profile's: refused, since
    its ``jwks_uri`` would then be another issuer's keys."""

    reason = "discovery_issuer_mismatch"


class KeyNotFound(RrdevError):
    """The JWKS has no usable key for the token's ``kid`` (and algorithm).

    ``known_kids`` lists the kids of the JWKS's usable signing keys, for the hint.
    ``retry_in`` is set (seconds) when the cache declined to refetch the JWKS for this
    unknown ``kid`` because it fetched it less than a refetch interval ago: a key the
    issuer just rotated in is seen after that long. ``reason`` is the stable code
    verification reports.
    """

    exit_code = 1
    reason = "key_not_found"

    def __init__(
        self,
        kid: str | None,
        known_kids: list[str],
        message: str = "",
        hint: str = "",
        *,
        retry_in: float | None = None,
    ) -> None:
        self.kid = kid
        self.known_kids = known_kids
        self.retry_in = retry_in
        super().__init__(message or f"the JWKS has no key with kid {kid!r}", hint)


class KeyUnusable(KeyNotFound):
    """The token's ``kid`` names a JWKS key that rrdev ignored when it read the JWKS
    (an RSA key under 2048 bits, a curve that does not fit the key's ``alg``, ...);
    the message names the key and says why."""

    reason = "key_unusable"


class TokenInputError(RrdevError):
    """A token given on the command line is not a decodable JWT.

    ``reason`` is the stable code verification reports for it: ``token_malformed``
    (default) or ``token_too_large``.
    """

    exit_code = 1

    def __init__(self, message: str, hint: str = "", *, reason: str = "token_malformed") -> None:
        super().__init__(message, hint)
        self.reason = reason
