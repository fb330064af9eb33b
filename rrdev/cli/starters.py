"""``rrdev init --provider ...``: a short, commented starter profile for one identity
provider, filled with the values given (``--issuer``, ``--audience``, ``--target``) and,
with ``--discover``, the ``jwks_uri`` read from the issuer's OIDC discovery document.

One template (``rrdev/data/provider_starter.toml.tmpl``) holds the shape; ``PROVIDERS`` holds
what differs: where the issuer, keys and audience come from, which claim carries a
caller's permissions (and how: a space-separated string, a list, or an e-mail), and how
``rrdev token fetch`` would get a token. Every starter validates, and its ``[[checks]]``
pass with ``rrdev check --offline`` (they mint tokens from the local keyset).
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, replace
from importlib.resources import files
from typing import Literal
from urllib.parse import urlsplit

from rrdev.core.errors import DiscoveryUnavailable, RrdevError
from rrdev.core.oidc import DiscoveryDocument, DiscoverySource, remote_url_problem

__all__ = ["PROVIDERS", "Provider", "Starter", "build_starter", "render_starter"]

#: The algorithm every starter verifies (and ``rrdev check --offline`` mints with).
STARTER_ALGORITHM = "RS256"

#: How the permission claim holds values: "words" (a space-separated string, like
#: ``scope``), "list" (a JSON array, like Okta's ``scp``), "email" (Google ID tokens
#: carry no scopes: writes are gated on the caller's e-mail domain).
Shape = Literal["words", "list", "email"]


def _trimmed(issuer: str) -> str:
    return issuer.rstrip("/")


def _entra_base(issuer: str) -> str:
    return _trimmed(issuer).removesuffix("/v2.0")


def _cognito_region(issuer: str) -> str:
    host = urlsplit(issuer).hostname or ""
    match = re.fullmatch(r"cognito-idp\.([a-z0-9-]+)\.amazonaws\.com", host)
    return match.group(1) if match else "REGION"


@dataclass(frozen=True)
class Provider:
    """What a starter for one provider says. ``jwks`` derives the JWKS URL from the
    issuer (None: discovery at run time); ``token_url`` the token endpoint for the
    commented ``[auth]`` (None: the provider has no client-credentials endpoint)."""

    title: str
    issuer: str
    issuer_note: str
    jwks: Callable[[str], str] | None
    audience: str
    audience_note: str
    claim: str
    read: str
    write: str
    shape: Shape
    token_url: Callable[[str], str] | None
    env: str
    client_id_mode: bool = False


PROVIDERS: dict[str, Provider] = {
    "auth0": Provider(
        title="Auth0",
        issuer="https://YOUR_TENANT.us.auth0.com/",
        issuer_note="Your Auth0 domain WITH the trailing slash (Auth0 puts it in every iss).",
        jwks=lambda iss: _trimmed(iss) + "/.well-known/jwks.json",
        audience="https://api.example.com",
        audience_note="The API Identifier (Applications -> APIs), NOT an application's client ID.",
        claim="^scope$",
        read="read:api",
        write="write:api",
        shape="words",
        token_url=None,  # [auth] uses domain = ... (Auth0's own token request)
        env="AUTH0",
    ),
    "okta": Provider(
        title="Okta",
        issuer="https://YOUR_ORG.okta.com/oauth2/default",
        issuer_note="Security -> API -> Authorization Servers -> Issuer URI (a custom "
        "server; the org server's tokens are for Okta's own APIs).",
        jwks=lambda iss: _trimmed(iss) + "/v1/keys",
        audience="api://default",
        audience_note="The authorization server's Audience (Settings tab).",
        claim="^scp$",
        read="read:api",
        write="write:api",
        shape="list",
        token_url=lambda iss: _trimmed(iss) + "/v1/token",
        env="OKTA",
    ),
    "cognito": Provider(
        title="Amazon Cognito",
        issuer="https://cognito-idp.us-east-1.amazonaws.com/us-east-1_YOURPOOL",
        issuer_note="https://cognito-idp.<region>.amazonaws.com/<user pool ID>.",
        jwks=lambda iss: _trimmed(iss) + "/.well-known/jwks.json",
        audience="YOUR_APP_CLIENT_ID",
        audience_note="Cognito access tokens have no aud: their client_id claim is "
        "checked against the app client ID (App integration -> App clients).",
        claim="^scope$",
        read="api/read",
        write="api/write",
        shape="words",
        token_url=lambda iss: (
            f"https://YOUR_DOMAIN.auth.{_cognito_region(iss)}.amazoncognito.com/oauth2/token"
        ),
        env="COGNITO",
        client_id_mode=True,
    ),
    "entra": Provider(
        title="Microsoft Entra ID",
        issuer="https://login.microsoftonline.com/YOUR_TENANT_ID/v2.0",
        issuer_note="v2.0 tokens: https://login.microsoftonline.com/<tenant ID>/v2.0 "
        "(set accessTokenAcceptedVersion = 2 in the API's app manifest).",
        jwks=lambda iss: _entra_base(iss) + "/discovery/v2.0/keys",
        audience="api://YOUR_API_CLIENT_ID",
        audience_note="Expose an API -> Application ID URI (v2.0 tokens may carry the "
        "bare client ID instead: list both).",
        claim="^scp$",
        read="Api.Read",
        write="Api.Write",
        shape="words",
        token_url=lambda iss: _entra_base(iss) + "/oauth2/v2.0/token",
        env="ENTRA",
    ),
    "google": Provider(
        title="Google",
        issuer="https://accounts.google.com",
        issuer_note="Google ID tokens (access tokens are opaque); the other spelling, "
        "accounts.google.com, needs a second issuer.",
        jwks=lambda iss: "https://www.googleapis.com/oauth2/v3/certs",
        audience="YOUR_CLIENT_ID.apps.googleusercontent.com",
        audience_note="The OAuth client ID the ID token was issued for (or the audience "
        "given to gcloud auth print-identity-token --audiences).",
        claim="^email$",
        read="ada@gmail.com",
        write="example.com",
        shape="email",
        token_url=None,
        env="GOOGLE",
    ),
    "keycloak": Provider(
        title="Keycloak",
        issuer="https://YOUR_KEYCLOAK_HOST/realms/YOUR_REALM",
        issuer_note="https://<host>/realms/<realm> (Realm settings -> OpenID Endpoint "
        "Configuration shows it).",
        jwks=lambda iss: _trimmed(iss) + "/protocol/openid-connect/certs",
        audience="my-api",
        audience_note="Keycloak adds your API to aud only through an Audience mapper on "
        "the client scope: set the mapper's audience here.",
        claim="^scope$",
        read="read:api",
        write="write:api",
        shape="words",
        token_url=lambda iss: _trimmed(iss) + "/protocol/openid-connect/token",
        env="KEYCLOAK",
    ),
    "custom": Provider(
        title="your OpenID Connect",
        issuer="https://issuer.example.com/",
        issuer_note="Your issuer exactly as its tokens carry it in iss.",
        jwks=None,
        audience="https://api.example.com",
        audience_note="The audience your tokens are issued for.",
        claim="^scope$",
        read="read:api",
        write="write:api",
        shape="words",
        token_url=lambda iss: _trimmed(iss) + "/oauth/token",
        env="OAUTH",
    ),
}


@dataclass(frozen=True)
class Starter:
    """The values a starter is filled with (``None``: the provider's placeholder)."""

    provider: str
    issuer: str | None = None
    audience: str | None = None
    target: str | None = None
    discovered: DiscoveryDocument | None = None


def render_starter(starter: Starter) -> str:
    """The starter profile's text."""
    p = PROVIDERS[starter.provider]
    issuer = starter.issuer or p.issuer
    audience = starter.audience or p.audience
    values = {
        "title": p.title,
        "provider": starter.provider,
        "target": _toml(starter.target or "http://127.0.0.1:9000"),
        "issuer_note": _comment(p.issuer_note),
        "issuer": _toml(issuer),
        "jwks_block": _jwks_block(p, issuer, starter.discovered),
        "audience_block": _audience_block(p, audience),
        "permission_note": _comment(_permission_note(p)),
        "claim": _literal(p.claim),
        "write_value": _literal(_write_pattern(p)),
        "write_notes": _toml(f"Writes require {_needed(p)}"),
        "auth_block": _auth_block(p, issuer, audience, starter.discovered),
        "reader_mint": _mint(p, (p.read,)),
        "writer_mint": _mint(p, (p.read, p.write)),
    }
    template = (
        files("rrdev").joinpath("data/provider_starter.toml.tmpl").read_text(encoding="utf-8")
    )
    return re.sub(r"<<(\w+)>>", lambda m: values[m.group(1)], template)


def build_starter(
    starter: Starter, path: str, discover: bool, report: Callable[[str], None]
) -> str:
    """The starter's text, checked: ``discover`` reads and checks the issuer's discovery
    document first (``report`` hears what it found); the text must load as a profile
    (a value given on the command line that breaks it fails here, before writing)."""
    from rrdev.core.profile import parse_profile

    if starter.provider not in PROVIDERS:
        raise RrdevError(
            f"unknown provider {starter.provider!r}",
            f"one of: {', '.join(PROVIDERS)}",
        )
    if discover:
        if not starter.issuer:
            raise RrdevError(
                "--discover needs --issuer URL",
                f"e.g. --issuer {PROVIDERS[starter.provider].issuer}",
            )
        starter = replace(starter, discovered=discover_issuer(starter.issuer, report))
    text = render_starter(starter)
    parse_profile(text, path)
    return text


def discover_issuer(issuer: str, report: Callable[[str], None]) -> DiscoveryDocument:
    """Fetch and check ``issuer``'s discovery document: its issuer matches exactly, it
    names an https jwks_uri, and it lists the starter's algorithm (when it lists any)."""
    import asyncio

    problem = remote_url_problem(issuer)
    if problem is not None:
        raise RrdevError(f"--issuer {issuer!r}: {problem}", "discovery needs an https:// issuer")
    document = asyncio.run(_fetch(issuer))
    url = DiscoverySource(issuer).url
    _check_algorithms(document, url)
    report(f"discovered {url}")
    report(f"  issuer          {document.issuer} (matches --issuer exactly)")
    report(f"  jwks_uri        {document.jwks_uri}")
    listed = ", ".join(document.algorithms) or "none listed: assuming RS256"
    report(f"  algorithms      {listed}")
    if document.token_endpoint:
        report(f"  token_endpoint  {document.token_endpoint}")
    return document


async def _fetch(issuer: str) -> DiscoveryDocument:
    import httpx

    from rrdev.clients.discovery import fetch_discovery
    from rrdev.core.netaddr import is_loopback_url

    async with httpx.AsyncClient(trust_env=not is_loopback_url(issuer)) as client:
        return await fetch_discovery(client, issuer, timeout=10.0)


def _check_algorithms(document: DiscoveryDocument, url: str) -> None:
    if not document.algorithms or STARTER_ALGORITHM in document.algorithms:
        return
    raise DiscoveryUnavailable(
        url,
        f"its id_token_signing_alg_values_supported lists {', '.join(document.algorithms)}, "
        f"not {STARTER_ALGORITHM}, which the starter verifies",
        "write the starter without --discover, then set proxy_credential.algorithms to "
        "the algorithm the provider signs with (and jwks_uri to its keys)",
    )


# ------------------------------------------------------------------ blocks


def _jwks_block(p: Provider, issuer: str, found: DiscoveryDocument | None) -> str:
    if found is not None:
        return (
            "# Read by `rrdev init --discover` from the issuer's OIDC discovery document.\n"
            f"jwks_uri = {_toml(found.jwks_uri)}"
        )
    if p.jwks is None:
        return (
            "# No jwks_uri: rrdev reads it from {issuer}/.well-known/openid-configuration\n"
            "# (OIDC discovery, cached for discovery_ttl_seconds = 3600). Set jwks_uri to\n"
            "# skip discovery.\n"
            "# discovery_ttl_seconds = 3600"
        )
    return (
        f"# Where {p.title} publishes the public signing keys.\njwks_uri = {_toml(p.jwks(issuer))}"
    )


def _audience_block(p: Provider, audience: str) -> str:
    note = _comment(p.audience_note)
    if p.client_id_mode:
        return (
            f'{note}\nclient_id = {_toml(audience)}\ntoken_use = "access"                  '
            '# "id" would accept ID tokens instead'
        )
    return f"{note}\naudience = {_toml(audience)}"


def _auth_block(p: Provider, issuer: str, audience: str, found: DiscoveryDocument | None) -> str:
    env = p.env
    secrets = [f'client_id = "${{{env}_CLIENT_ID}}"', f'client_secret = "${{{env}_CLIENT_SECRET}}"']
    if p.shape == "email":
        lines = [
            'kind = "static"',
            f'token = "${{{env}_ID_TOKEN}}"   # gcloud auth print-identity-token',
        ]
    elif p.token_url is None:  # Auth0: its own token request, with the audience
        host = urlsplit(issuer).hostname or "YOUR_TENANT.us.auth0.com"
        lines = [f"domain = {_toml(host)}", *secrets, f"audience = {_toml(audience)}"]
    else:
        url = found.token_endpoint if found and found.token_endpoint else p.token_url(issuer)
        scope = f"{audience}/.default" if p.title.startswith("Microsoft") else p.read
        lines = [f"token_url = {_toml(url)}", *secrets, f"scope = {_toml(scope)}"]
    return "\n".join(f"# {line}" for line in lines)


def _permission_note(p: Provider) -> str:
    if p.shape == "email":
        return "Google ID tokens carry no scopes: this gate trusts one e-mail domain."
    how = "a list" if p.shape == "list" else "a space-separated string"
    return f"{p.title} puts granted scopes in {p.claim.strip('^$')} ({how})."


def _needed(p: Provider) -> str:
    if p.shape == "email":
        return f"an @{p.write} e-mail address"
    return f"the {p.write} scope"


def _write_pattern(p: Provider) -> str:
    escaped = re.escape(p.write)
    if p.shape == "email":
        return f"@{escaped}$"
    if p.shape == "list":
        return f"^{escaped}$"
    return f"(^| ){escaped}( |$)"


def _mint(p: Provider, granted: tuple[str, ...]) -> str:
    if p.shape == "email":
        email = granted[-1] if "@" in granted[-1] else f"ada@{granted[-1]}"
        return f"{{ claims = {{ email = {_toml(email)}, email_verified = true }} }}"
    if p.shape == "list":
        return f"{{ claims = {{ scp = [{', '.join(_toml(g) for g in granted)}] }} }}"
    words = _toml(" ".join(granted))
    if p.claim == "^scope$":
        return f"{{ scope = {words} }}"
    return f"{{ claims = {{ {p.claim.strip('^$')} = {words} }} }}"


# ------------------------------------------------------------------ TOML values


def _comment(text: str) -> str:
    return textwrap.fill(text, width=88, initial_indent="# ", subsequent_indent="# ")


def _toml(value: str) -> str:
    """A TOML basic string: backslash, quote and control characters escaped."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", escaped) + '"'


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _literal(value: str) -> str:
    """A TOML literal string, for regexes (no escapes to double), when it can be one."""
    if "'" in value or "\n" in value:
        return _toml(value)
    return f"'{value}'"
