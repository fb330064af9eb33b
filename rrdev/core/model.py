"""The frozen profile model (DESIGN.md §1). ``rrdev.core.profile`` builds it from TOML.

Every field documents its meaning and default; the loader applies the defaults, so
code holding a ``Profile`` never has to guess. Patterns are compiled at load time.
Secrets stay as ``Secret`` (possibly a ``${NAME}`` reference) until a command needs
the value: ``secret.resolve()``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from rrdev.core.errors import EnvVarError
from rrdev.core.records import SCOPES, Effect, Scope
from rrdev.core.regex import LinearRegex, compile_pattern

Presence = Literal["must_exist", "must_absent"]
TargetAuthType = Literal["none", "bearer", "basic", "api_key", "oauth2"]
ProxyAuthType = Literal["jwtVerify", "none", "apiKey", "bearer", "basicAuth", "jwt"]
#: The gateway's static proxy credential types: a fixed secret compared in constant time.
STATIC_PROXY_AUTH_TYPES: tuple[str, ...] = ("apiKey", "bearer", "basicAuth", "jwt")
FilterMode = Literal["retain", "destroy"]
MethodOverridePolicy = Literal["refuse", "judge"]
Provider = Literal["auth0", "okta", "cognito", "entra", "google", "keycloak", "custom"]
ClientAuth = Literal["client_secret_post", "client_secret_basic", "private_key_jwt"]

ENV_REF = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Secret:
    """A string that may contain ``${NAME}`` environment references.

    ``raw`` is the text as written in the profile; ``key``/``file``/``line`` say
    where, so an unset variable is reported precisely. Never printed by value.
    """

    raw: str
    key: str = ""
    file: str | None = None
    line: int | None = None

    @property
    def references(self) -> tuple[str, ...]:
        return tuple(ENV_REF.findall(self.raw))

    def resolve(self, env: Mapping[str, str] | None = None) -> str:
        """The value with every ``${NAME}`` substituted; an unset or empty variable
        is an ``EnvVarError`` naming the key and the variable (never an empty secret)."""
        env = os.environ if env is None else env

        def sub(match: re.Match[str]) -> str:
            name = match.group(1)
            value = env.get(name)
            if not value:
                raise EnvVarError(
                    f"environment variable {name} is not set",
                    file=self.file,
                    line=self.line,
                    key=self.key,
                    hint=f"export {name}=... (the profile reads it as ${{{name}}})",
                )
            return value

        return ENV_REF.sub(sub, self.raw)

    def __repr__(self) -> str:  # never leak a literal secret through a repr
        return f"Secret(key={self.key!r}, refs={self.references!r})"


@dataclass(frozen=True)
class Pattern:
    """A regular expression (RE2 syntax), searched (not anchored) in linear time.

    ``flags`` (default none) combine ``i``, ``m`` and ``s``. Compiled when constructed:
    ``rrdev.core.regex.PatternRefused`` (message + hint) when it cannot be.
    """

    source: str
    flags: str = ""
    regex: LinearRegex = field(init=False, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "regex", compile_pattern(self.source, self.flags))

    def search(self, text: str) -> bool:
        return self.regex.search(text)

    def __str__(self) -> str:
        return f"/{self.source}/{self.flags}"


@dataclass(frozen=True)
class PathCondition:
    """``path = { pattern = "...", presence = "must_exist" }``."""

    pattern: Pattern
    presence: Presence = "must_exist"


@dataclass(frozen=True)
class PairCondition:
    """A header, query or token condition: some name matching ``name`` whose value
    matches ``value`` (``None``: any value) must exist / must be absent.

    For token conditions ``name`` is the claim pattern.
    """

    name: Pattern
    value: Pattern | None = None
    presence: Presence = "must_exist"


@dataclass(frozen=True)
class Rule:
    """One allow/deny rule in one scope.

    ``name`` is the ``id`` when given, else ``<scope>[<index>]`` (index in file order,
    from 0). ``methods`` are upper-cased; empty means any method. ``priority``
    (0-1000, default 0) orders the trace only.
    """

    scope: Scope
    index: int
    effect: Effect
    id: str | None = None
    methods: tuple[str, ...] = ()
    path: PathCondition | None = None
    headers: tuple[PairCondition, ...] = ()
    query: tuple[PairCondition, ...] = ()
    token: tuple[PairCondition, ...] = ()
    priority: int = 0
    notes: str = ""
    line: int | None = None

    @property
    def name(self) -> str:
        return self.id or f"{self.scope}[{self.index}]"


@dataclass(frozen=True)
class ResponseFilter:
    """``response_filter = { mode = "retain"|"destroy", fields = [...] }`` (default: none).

    Applied to 2xx JSON responses in the gateway's order: target credential, target,
    proxy credential, proxy. ``fields`` are paths: dotted names, ``[]`` for every element
    of an array (``items[].secret``); ``rrdev.core.filters`` defines what they select.
    """

    mode: FilterMode
    fields: tuple[str, ...]


@dataclass(frozen=True)
class Target:
    """The backend. ``base_url`` is required; ``default_effect`` defaults to allow;
    ``timeout_seconds`` (default 30) bounds the upstream call; ``ca_bundle`` (a PEM
    path) and ``verify`` (default true) control upstream TLS."""

    name: str = "target"
    base_url: str = "http://127.0.0.1:9000"
    test_path: str | None = None
    region: str | None = None
    default_effect: Effect = "allow"
    rules: tuple[Rule, ...] = ()
    timeout_seconds: float = 30.0
    connect_timeout_seconds: float = 10.0
    ca_bundle: str | None = None
    verify: bool = True
    #: retain or destroy JSON fields of 2xx responses (default none)
    response_filter: ResponseFilter | None = None


@dataclass(frozen=True)
class OAuth2Client:
    """Client-credentials settings, shared by ``[auth]`` and the ``oauth2`` target
    credential. Either ``domain`` (Auth0: ``<domain>/oauth/token``, JSON body; may be a
    full URL) or ``token_url`` (generic OAuth2, form body). ``client_auth`` (default
    ``client_secret_post``): ``client_secret_basic``, or ``private_key_jwt`` (RFC 7523:
    a signed assertion instead of ``client_secret``)."""

    domain: str | None = None
    token_url: str | None = None
    client_id: Secret | None = None
    client_secret: Secret | None = None
    audience: str | None = None
    resource: str | None = None
    scope: str | None = None
    client_auth: ClientAuth = "client_secret_post"
    #: extra form parameters sent with the request (e.g. ``aud``), values may hold
    #: ``${VARS}``; default none. Never grant_type, client_id/secret or client_assertion*.
    extra: tuple[tuple[str, Secret], ...] = ()
    #: private_key_jwt: the PEM private key (usually ``${VAR}``), or ``private_key_file``
    #: (absolute once loaded; relative paths are the profile file's); one of them.
    private_key: Secret | None = None
    private_key_file: str | None = None
    #: private_key_jwt: the assertion's ``kid`` header (default none) and its algorithm
    #: (default RS256; RS256/RS384/RS512/PS256/ES256).
    key_id: str | None = None
    assertion_algorithm: str = "RS256"


@dataclass(frozen=True)
class TargetCredential:
    """How rrdev authenticates to the backend (``auth_type`` default ``none``).

    bearer: ``token`` (+ ``prefix``, default "Bearer"); basic: ``username``/``password``;
    api_key: ``api_key`` value, sent in header ``header`` or query parameter ``query_param``;
    oauth2: ``oauth2`` client-credentials settings.
    """

    name: str = "target-credential"
    auth_type: TargetAuthType = "none"
    region: str | None = None
    default_effect: Effect = "allow"
    rules: tuple[Rule, ...] = ()
    token: Secret | None = None
    prefix: str = "Bearer"
    username: Secret | None = None
    password: Secret | None = None
    api_key: Secret | None = None
    header: str | None = None
    query_param: str | None = None
    oauth2: OAuth2Client | None = None
    #: retain or destroy JSON fields of 2xx responses (default none)
    response_filter: ResponseFilter | None = None

    @property
    def writes_authorization(self) -> bool:
        """bearer, basic and oauth2 replace the caller's Authorization header (§2.5)."""
        return self.auth_type in ("bearer", "basic", "oauth2")


@dataclass(frozen=True)
class ProxyCredential:
    """How callers authenticate to the proxy (``auth_type`` default ``jwtVerify``).

    ``audience`` may list several accepted values (exact match); ``issuer`` is matched
    exactly. ``algorithms`` default ``("RS256",)``; never taken from the token.
    ``leeway_seconds`` (default 0, at most 300) widens exp/nbf. Cognito access tokens
    have no ``aud``: set ``client_id`` (and ``token_use``, e.g. "access") instead of
    ``audience``. ``jwks_ttl_seconds`` (default 600, 1 to 86400, not below the refetch
    interval) and ``jwks_refetch_interval_seconds`` (default 30, at least 1) govern the
    key cache. ``accept_sender_constrained_as_bearer`` (default false) accepts tokens
    carrying ``cnf`` (DPoP- or mTLS-bound) as plain bearer tokens, binding unchecked.
    ``jwks_max_stale_seconds`` (default 900) is how long a key set past its TTL is
    still served while the JWKS fails (then 503 ``jwks_unavailable``).

    Provider modes: ``issuers`` (default: just ``issuer``, which is its first entry)
    lists every accepted issuer, each matched exactly; an issuer may hold ``{tenantid}``,
    and then ``tenants`` (default empty; required with the placeholder) is the allow-list
    the token's ``tid`` must be in, the issuer compared with that tid substituted.
    ``client_ids`` (default: just ``client_id``, its first entry) is Cognito mode's
    allow-list. ``max_lifetime_seconds`` (default none: unchecked) bounds ``exp - iat``
    and then requires ``iat``. ``provider`` (default none) only shapes hints.
    Without ``jwks_uri``, OIDC discovery of the (single, concrete) ``issuer`` finds it;
    ``discovery_ttl_seconds`` (default 3600, 1 to 86400) is how long the discovery
    document is cached.
    """

    name: str = "proxy-credential"
    auth_type: ProxyAuthType = "jwtVerify"
    region: str | None = None
    default_effect: Effect = "allow"
    rules: tuple[Rule, ...] = ()
    jwks_uri: str | None = None
    audience: tuple[str, ...] = ()
    issuer: str | None = None
    algorithms: tuple[str, ...] = ("RS256",)
    leeway_seconds: float = 0.0
    client_id: str | None = None
    token_use: str | None = None
    jwks_ttl_seconds: float = 600.0
    jwks_refetch_interval_seconds: float = 30.0
    jwks_max_stale_seconds: float = 900.0
    max_token_bytes: int = 16384
    accept_sender_constrained_as_bearer: bool = False
    issuers: tuple[str, ...] = ()
    tenants: tuple[str, ...] = ()
    client_ids: tuple[str, ...] = ()
    max_lifetime_seconds: int | None = None
    provider: Provider | None = None

    @property
    def accepted_issuers(self) -> tuple[str, ...]:
        """Every issuer the profile accepts (``issuers``, else ``issuer``)."""
        return self.issuers or ((self.issuer,) if self.issuer is not None else ())

    @property
    def accepted_client_ids(self) -> tuple[str, ...]:
        """Cognito mode's allow-list (``client_ids``, else ``client_id``)."""
        return self.client_ids or ((self.client_id,) if self.client_id is not None else ())

    discovery_ttl_seconds: float = 3600.0
    #: static types (apiKey, bearer, jwt): the expected key/token, a ``${VAR}``
    #: (default none; required by those types)
    secret: Secret | None = None
    #: basicAuth: the expected username and password (default none; required)
    username: Secret | None = None
    password: Secret | None = None
    #: apiKey: the query parameter that may carry the key besides ``Authorization``
    #: (default "apiKey"); never forwarded, never recorded
    query_param: str = "apiKey"
    #: retain or destroy JSON fields of 2xx responses (default none)
    response_filter: ResponseFilter | None = None

    @property
    def is_static(self) -> bool:
        """apiKey, bearer, basicAuth, jwt: a fixed secret, no claims."""
        return self.auth_type in STATIC_PROXY_AUTH_TYPES


@dataclass(frozen=True)
class HeaderValue:
    """An ``additional_headers`` value: static text, or a template with
    ``{claims.<dotted.path>}`` placeholders filled from verified claims."""

    template: str

    @property
    def uses_claims(self) -> bool:
        return "{claims." in self.template


@dataclass(frozen=True)
class Proxy:
    """The proxy object. ``default_effect`` defaults to allow (the seed sets deny).

    ``alias`` (default none: the slug of ``name``) is where ``rrdev up`` serves this
    proxy beside others on one port (``{alias}.localhost``; ``rrdev.core.aliases``).
    ``listen`` defaults to 127.0.0.1:8787. ``header_filters`` names headers stripped
    before forwarding. ``forward_authorization`` (default true) forwards the caller's
    Authorization when the target credential does not write one;
    ``forward_authorization_as`` passes a replaced caller header on under that name.
    ``preflight_requires_auth`` (default false) authenticates CORS preflights too.
    ``allowed_hosts`` (default empty) lists the Host names served besides loopback ones
    (normalised: lower-case, ``*.suffix`` for subdomains, ``*`` for any host).
    ``method_override`` (default "refuse"): a request whose ``X-HTTP-Method-Override``
    (and friends, or ``?_method``) names another method is refused; "judge" lets the
    rules judge the overridden method too (deny wins).
    """

    name: str = "rrdev-proxy"
    alias: str | None = None
    region: str | None = None
    default_effect: Effect = "allow"
    listen_host: str = "127.0.0.1"
    listen_port: int = 8787
    additional_headers: tuple[tuple[str, HeaderValue], ...] = ()
    header_filters: tuple[str, ...] = ()
    forward_authorization: bool = True
    forward_authorization_as: str | None = None
    preflight_requires_auth: bool = False
    rules: tuple[Rule, ...] = ()
    allowed_hosts: tuple[str, ...] = ()
    method_override: MethodOverridePolicy = "refuse"
    #: false: every request is refused with 503 ``proxy_inactive`` (default true)
    active: bool = True
    #: retain or destroy JSON fields of 2xx responses (default none)
    response_filter: ResponseFilter | None = None


@dataclass(frozen=True)
class IssuerClient:
    """A local-issuer client: id, secret, allowed audiences and scopes.

    ``client_secret`` (default none) authenticates it with a secret; ``public_key_file``
    (a PEM public key, absolute once loaded) or ``jwks_uri`` (a URL or file; default
    none) let it authenticate with ``private_key_jwt`` instead. At least one is set.
    """

    client_id: str
    client_secret: Secret | None = None
    audiences: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    public_key_file: str | None = None
    jwks_uri: str | None = None


@dataclass(frozen=True)
class IssuerConfig:
    """``[issuer]``: the local issuer's identity and clients."""

    issuer: str = "https://rrdev.local/"
    clients: tuple[IssuerClient, ...] = ()
    token_lifetime_seconds: int = 86400


@dataclass(frozen=True)
class CheckProblem:
    """Why a ``[[checks]]`` entry cannot run (an unknown ``expect.rule``, a bad token
    spec, an unknown key...). Never a reason to refuse the profile: ``rrdev check``
    fails that check, ``validate`` reports it, the proxy only warns."""

    message: str
    file: str | None = None
    line: int | None = None
    key: str | None = None
    hint: str = ""

    def __str__(self) -> str:
        where = self.file or "<profile>"
        if self.line is not None:
            where += f":{self.line}"
        if self.key:
            where += f": {self.key}"
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class CheckSpec:
    """A ``[[checks]]`` entry, kept close to the TOML (checks.py interprets it).
    ``problem`` (default none) says why it cannot run; its other fields are then
    defaults."""

    name: str
    method: str = "GET"
    path: str = "/"
    headers: tuple[tuple[str, str], ...] = ()
    query: tuple[tuple[str, str], ...] = ()
    body: str | None = None
    token: Any = "auth"
    expect: Any = "allowed"
    line: int | None = None
    problem: CheckProblem | None = None


@dataclass(frozen=True)
class AuthConfig:
    """``[auth]``: how rrdev obtains a caller token. ``kind``: ``auth0`` (domain),
    ``oauth2`` (token_url), ``local`` (the local issuer) or ``static`` (``token``)."""

    kind: Literal["auth0", "oauth2", "local", "static"] = "auth0"
    client: OAuth2Client = field(default_factory=OAuth2Client)
    token: Secret | None = None


@dataclass(frozen=True)
class Profile:
    """One proxy, exactly as the gateway describes it, plus rrdev-only sections."""

    path: str
    proxy: Proxy
    target: Target
    target_credential: TargetCredential
    proxy_credential: ProxyCredential
    auth: AuthConfig | None = None
    issuer: IssuerConfig | None = None
    checks: tuple[CheckSpec, ...] = ()
    #: dotted key -> line, for messages that point back into the file
    lines: Mapping[str, int] = field(default_factory=dict, compare=False, repr=False)

    def scopes(self) -> tuple[tuple[Scope, Effect, tuple[Rule, ...]], ...]:
        """(scope, default_effect, rules) in DESIGN.md §3's fixed order."""
        objects = {
            "proxy_credential": self.proxy_credential,
            "target_credential": self.target_credential,
            "proxy": self.proxy,
            "target": self.target,
        }
        return tuple((s, objects[s].default_effect, objects[s].rules) for s in SCOPES)

    def response_filters(self) -> tuple[tuple[Scope, ResponseFilter], ...]:
        """The configured response filters in the gateway's order: target credential,
        target, proxy credential, proxy."""
        objects = (
            ("target_credential", self.target_credential),
            ("target", self.target),
            ("proxy_credential", self.proxy_credential),
            ("proxy", self.proxy),
        )
        return tuple(
            (scope, o.response_filter) for scope, o in objects if o.response_filter is not None
        )  # type: ignore[misc]

    def all_rules(self) -> tuple[Rule, ...]:
        return tuple(r for _s, _e, rules in self.scopes() for r in rules)

    @property
    def display_name(self) -> str:
        return self.proxy.alias or self.proxy.name
