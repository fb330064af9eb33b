"""Both sides of the proxy's authentication in one line each, for a startup banner:
how callers authenticate to the proxy (``caller_auth``) and what the backend receives
(``backend_auth``). Pure, from the profile alone; names and kinds only, never a secret.
"""

from __future__ import annotations

from rrdev.core.model import Profile, ProxyCredential
from rrdev.core.static_auth import presented_as

__all__ = ["backend_auth", "caller_auth"]

_WRITTEN = {
    "bearer": "Authorization: {prefix} <token>",
    "basic": "Authorization: Basic <username:password>",
    "oauth2": "Authorization: Bearer <a client-credentials token rrdev fetches>",
}


def caller_auth(cred: ProxyCredential) -> str:
    """How a caller authenticates: jwtVerify with its issuer and audience, a static
    credential's kind and where it goes, or none."""
    if cred.auth_type == "none":
        return "none: no authentication, every request goes on to the rules"
    if cred.is_static:
        where = presented_as(cred.auth_type, cred.query_param)
        return f"{cred.auth_type}, a static secret: {where}"
    return f"jwtVerify, a Bearer JWT: {_jwt_terms(cred)}"


def _jwt_terms(cred: ProxyCredential) -> str:
    issuers = cred.accepted_issuers
    terms = [f"{_plural('issuer', issuers)} {' or '.join(issuers)}" if issuers else ""]
    if cred.audience:
        terms.append(f"{_plural('audience', cred.audience)} {' or '.join(cred.audience)}")
    elif cred.accepted_client_ids:  # Cognito mode: access tokens carry no aud
        ids = cred.accepted_client_ids
        terms.append(f"{_plural('client_id', ids)} {' or '.join(ids)}")
    if cred.token_use:
        terms.append(f"token_use {cred.token_use}")
    terms.append("/".join(cred.algorithms))
    return ", ".join(term for term in terms if term)


def _plural(name: str, values: tuple[str, ...]) -> str:
    return name + ("s" if len(values) > 1 else "")


def backend_auth(profile: Profile) -> str:
    """What the backend receives: the target credential (its kind and name, where it
    goes) and what becomes of the caller's own ``Authorization``."""
    cred = profile.target_credential
    if cred.writes_authorization:
        own = f"{cred.auth_type} ({cred.name}): {_WRITTEN[cred.auth_type]}"
        return f"{own.format(prefix=cred.prefix)}, in place of the caller's{_passed_on(profile)}"
    caller = _callers_header(profile)
    if cred.auth_type == "api_key":
        where = f"header {cred.header}" if cred.header else f"query parameter {cred.query_param}"
        return f"api_key ({cred.name}): the key in {where}; {caller}"
    return f"no credential of rrdev's; {caller}"


def _callers_header(profile: Profile) -> str:
    """What becomes of the caller's Authorization when rrdev writes none itself."""
    proxy = profile.proxy
    if profile.proxy_credential.is_static:
        return "the caller's Authorization (the proxy's own secret) is not forwarded"
    if "authorization" in {name.lower() for name in proxy.header_filters}:
        return "the caller's Authorization is stripped (proxy.header_filters)"
    if proxy.forward_authorization:
        return "the caller's Authorization as sent"
    return "the caller's Authorization is not forwarded" + _passed_on(profile)


def _passed_on(profile: Profile) -> str:
    name = profile.proxy.forward_authorization_as
    filtered = {h.lower() for h in profile.proxy.header_filters}
    if name is None or name.lower() in filtered or profile.proxy_credential.is_static:
        return ""
    return f" (it goes on as {name})"
