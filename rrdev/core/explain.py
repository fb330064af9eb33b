"""Verify + rules -> the Explanation that `rrdev explain`, the proxy and the TUI show.

This is the one place that turns a request into the gateway's answer (DESIGN.md §2):
400 for an ambiguous target, a method override or two Authorization headers, 421 for a
Host that is not loopback nor allowed, 401 for a missing or bad token, 503 when the
JWKS is unreachable, 403 from the rules, else "allowed". Header names with ``_`` are
dropped before anything reads the headers (``rrdev.core.hygiene``).
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Protocol

from rrdev.core.hosts import host_problem
from rrdev.core.hygiene import MethodOverride, is_twin_header, method_overrides
from rrdev.core.model import Profile, ProxyCredential, Rule
from rrdev.core.paths import AmbiguousPath, parse_target
from rrdev.core.records import Decision, Explanation, RequestFacts, Verification, VerifyStep
from rrdev.core.redact import Redactor, fingerprint
from rrdev.core.rules import INLINE_WEIGHT, prepare

if TYPE_CHECKING:
    from rrdev.core.jwk import KeySource
    from rrdev.core.static_auth import StaticCheck

REALM = "rrdev"
_BEARER = re.compile(r"^bearer[ \t]+(\S+)[ \t]*$", re.IGNORECASE)
# RFC 6750 §3: error_description is limited to %x20-21 / %x23-5B / %x5D-7E.
_NOT_RFC6750 = re.compile(r"[^\x20-\x21\x23-\x5b\x5d-\x7e]")

SCOPE_LABELS = {
    "proxy_credential": "proxy credential",
    "target_credential": "target credential",
    "proxy": "proxy",
    "target": "target",
}


#: Runs a prepared rule evaluation somewhere else (the proxy: its rules worker thread)
#: and returns its Decision.
Offload = Callable[[Callable[[], Decision]], Awaitable[Decision]]


class Verifier(Protocol):
    """Turns a bearer token into a Verification (the proxy injects a caching one)."""

    async def verify(self, token: str, now: float) -> Verification: ...


@dataclass(frozen=True)
class IncomingRequest:
    """A request as received: method, raw path and query, headers as sent."""

    method: str
    raw_path: str
    raw_query: str = ""
    headers: tuple[tuple[str, str], ...] = ()


def redactor_for(profile: Profile) -> Redactor:
    """The redaction list extended with the profile's api-key header/parameter names."""
    cred = profile.target_credential
    fields = [cred.query_param] if cred.query_param else []
    if profile.proxy_credential.auth_type == "apiKey":
        fields.append(profile.proxy_credential.query_param)
    return Redactor().with_names(headers=[cred.header] if cred.header else [], fields=fields)


def is_preflight(request: IncomingRequest) -> bool:
    if request.method != "OPTIONS":  # every other request: no set of names to build
        return False
    names = {k.lower() for k, _ in request.headers}
    return (
        "origin" in names
        and "access-control-request-method" in names
        and "authorization" not in names
    )


async def decide(
    profile: Profile,
    request: IncomingRequest,
    verifier: Verifier | None,
    *,
    now: float,
    redactor: Redactor | None = None,
    offload: Offload | None = None,
    static: StaticCheck | None = None,
) -> Explanation:
    """The gateway's answer for one request, with everything needed to explain it.

    The rules run right here unless their regex work could exceed ``INLINE_WEIGHT``
    and an ``offload`` is given: then it runs them (the proxy passes one that uses a
    worker thread, so a long path against a costly pattern never holds its event loop).
    ``static`` is a static proxy credential's resolved secret (the proxy resolves it once
    per load); without one it is resolved here from the environment.
    """
    redactor = redactor or redactor_for(profile)
    try:
        target = parse_target(request.raw_path, request.raw_query)
    except AmbiguousPath as exc:
        shown = RequestFacts(request.method, request.raw_path, request.raw_path)
        return _error(
            400, "ambiguous_path", f"refused request target: {exc}", _AMBIGUOUS_HINT, request=shown
        )
    # A name with "_" is the twin of a "-" name to CGI-style backends: never judged,
    # never forwarded.
    headers = tuple([(k.lower(), v) for k, v in request.headers if not is_twin_header(k)])
    facts = RequestFacts(request.method, target.path, target.raw_path, target.query, headers)
    # Redacted when first read (a refusal's body, a record's reader), not per request.
    shown = RequestFacts.lazy(
        facts.method,
        facts.path,
        facts.raw_path,
        lambda: (redactor.query_list(facts.query), redactor.headers_list(facts.headers)),
    )
    overrides = _overrides(request, headers)
    refused = _host_refusal(profile, headers, shown) or _override_refusal(
        profile, request.method, overrides, shown
    )
    if refused is not None:
        return refused
    if not profile.proxy.active:
        return _error(503, "proxy_inactive", _INACTIVE, _INACTIVE_HINT, request=shown)
    if is_preflight(request) and not profile.proxy.preflight_requires_auth:
        return Explanation(
            200,
            "allowed",
            "CORS preflight forwarded without authentication",
            request=shown,
            extra={"preflight": True},
        )

    authorizations = [v for k, v in headers if k == "authorization"]
    if len(authorizations) > 1:
        # Refused whatever the auth type: the backend must never see two.
        return _error(
            400,
            "duplicate_authorization",
            "the request carries more than one Authorization header",
            "send exactly one 'Authorization: Bearer <token>' header",
            request=shown,
        )
    claims = None
    verification = None
    if profile.proxy_credential.auth_type == "jwtVerify":
        verification = await _authenticate(authorizations, profile.proxy_credential, verifier, now)
        if not verification.ok:
            return _rejected(verification, shown)
        claims = verification.claims
    elif profile.proxy_credential.is_static:
        verification = _static(profile.proxy_credential, static, facts.headers, request)
        if not verification.ok:
            return _static_rejected(profile.proxy_credential.auth_type, verification, shown)
    decision = await _judge(profile, facts, claims, redactor, offload)
    if not decision.allowed:
        return _denied(profile, decision, verification, shown)
    message = _allowed_message(decision)
    for override in overrides:  # "judge": the overridden method must be allowed too
        as_override = replace(facts, method=override.method)
        judged = await _judge(profile, as_override, claims, redactor, offload)
        if not judged.allowed:
            return _denied(profile, judged, verification, shown, override)
        message += f"; as {override.method} ({override.where}) too"
    return Explanation(
        200,
        "allowed",
        message,
        verification=verification,
        decision=decision,
        request=shown,
    )


_INACTIVE = "the proxy is inactive (proxy.active = false): requests are not forwarded"
_INACTIVE_HINT = "set proxy.active = true in the profile (rrdev up picks the change up)"


def _static(
    cred: ProxyCredential,
    static: StaticCheck | None,
    headers: tuple[tuple[str, str], ...],
    request: IncomingRequest,
) -> Verification:
    from rrdev.core.static_auth import check_static, static_check

    return check_static(static or static_check(cred), headers, request.raw_query)


def _static_rejected(
    auth_type: str, verification: Verification, shown: RequestFacts
) -> Explanation:
    """401 for a missing or wrong static credential; 503 when its secret is unset."""
    from rrdev.core.static_auth import challenge

    reason = verification.reason or "credential_invalid"
    status, www = 401, challenge(auth_type, reason)
    if verification.unavailable:
        status, www = 503, None
    return _error(
        status,
        reason,
        verification.message,
        verification.hint,
        verification=verification,
        request=shown,
        www=www,
    )


def _host_refusal(
    profile: Profile, headers: tuple[tuple[str, str], ...], shown: RequestFacts
) -> Explanation | None:
    """421 ``host_not_allowed`` unless the Host is loopback or in ``allowed_hosts``.
    No Host at all (HTTP/1.0) passes: every browser sends one, so it is no rebinding."""
    values = [v for k, v in headers if k == "host"]
    if not values or (len(values) == 1 and not values[0].strip()):
        return None
    if len(values) > 1:
        message = "the request carries more than one Host header"
    else:
        why = host_problem(values[0], profile.proxy.allowed_hosts)
        if why is None:
            return None
        message = f"the Host header {_clip(values[0])!r} is {why}, and not in proxy.allowed_hosts"
    return _error(421, "host_not_allowed", message, _HOST_HINT, request=shown)


def _overrides(
    request: IncomingRequest, headers: tuple[tuple[str, str], ...]
) -> tuple[MethodOverride, ...]:
    """The method overrides that name another method than the request's."""
    found = method_overrides(headers, request.raw_query)
    return tuple(o for o in found if o.method != request.method)


def _override_refusal(
    profile: Profile, method: str, overrides: tuple[MethodOverride, ...], shown: RequestFacts
) -> Explanation | None:
    """400 ``method_override_refused``: the backend may run another method than the one
    the rules judge. With ``method_override = "judge"`` only a value that is not one
    method name is refused (the rules judge the others)."""
    judge = profile.proxy.method_override == "judge"
    unjudged = [o for o in overrides if not (judge and o.is_method)]
    if not unjudged:
        return None
    first = unjudged[0]
    message = (
        f"the request is {method} but {first.where} says {_clip(first.value, 40)!r}: a "
        "backend that honours it would run a method the rules did not judge"
    )
    if judge:
        hint = f"send one method name in {first.where} (e.g. DELETE)"
    else:
        hint = (
            f"send the request as {_clip(first.method, 20)} instead of overriding the method; if "
            "the backend needs overrides, set proxy.method_override = 'judge'"
        )
    return _error(400, "method_override_refused", message, hint, request=shown)


def _clip(text: str, limit: int = 80) -> str:
    """Caller text in a message: printable ASCII, at most ``limit`` characters."""
    text = "".join(c if " " <= c <= "~" else "?" for c in text)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_HOST_HINT = (
    "reach rrdev as localhost, 127.0.0.1 or [::1]; to serve another name (a name in "
    "/etc/hosts, a container name, this machine's address), list it in "
    "proxy.allowed_hosts. Other names are refused because a web page can point its own "
    "name at 127.0.0.1 (DNS rebinding) and reach the backend through rrdev"
)


async def _judge(
    profile: Profile,
    facts: RequestFacts,
    claims: Mapping[str, Any] | None,
    redactor: Redactor,
    offload: Offload | None,
) -> Decision:
    """The rules' verdict, off the caller's loop when their regex work is heavy (then
    with the full trace, built there too). Otherwise the trace is built only if read
    (a refusal's body, a record's reader), by the same evaluator on the same inputs."""
    run = prepare(profile, facts, claims, redactor)
    if offload is not None and run.weight > INLINE_WEIGHT:
        return await offload(run)
    return run.verdict()


async def _authenticate(
    values: list[str],
    cred: ProxyCredential,
    verifier: Verifier | None,
    now: float,
) -> Verification:
    """Verify the bearer token of the (one) Authorization value in ``values``."""
    if not values:
        return _header_problem(
            "token_missing",
            "no Authorization header was sent",
            "send 'Authorization: Bearer <token>'; `rrdev token fetch` gets one",
        )
    match = _BEARER.match(values[0])
    if match is None:
        return _header_problem(
            "token_malformed",
            f"the Authorization header is not 'Bearer <token>' ({_scheme_of(values[0])})",
            "send 'Authorization: Bearer <token>'",
        )
    if verifier is None:  # a profile error guards this; keep the engine total anyway
        raise RuntimeError("jwtVerify needs a verifier")
    return await verifier.verify(match.group(1), now)


_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9!#$%&'*+.^_`|~-]{0,19}")


def _scheme_of(value: str) -> str:
    """Name the scheme only when there plainly is one ("Basic xyz"): a bare value may be
    the secret itself and is never echoed."""
    head, sep, _rest = value.strip().partition(" ")
    if sep and _SCHEME.fullmatch(head):
        return f"scheme: {head}"
    return "no scheme: a bare value, not shown" if value.strip() else "it is empty"


def _header_problem(reason: str, message: str, hint: str) -> Verification:
    step = VerifyStep("authorization", "failed", "one 'Authorization: Bearer <token>'", message)
    return Verification(steps=(step,), reason=reason, message=message, hint=hint)


def _rejected(verification: Verification, request: RequestFacts) -> Explanation:
    reason = verification.reason or "token_invalid"
    if verification.unavailable:
        return _error(
            503,
            reason,
            verification.message,
            verification.hint,
            verification=verification,
            request=request,
        )
    if reason == "token_missing":
        challenge = f'Bearer realm="{REALM}"'
    else:
        challenge = www_authenticate("invalid_token", verification.message)
    return _error(
        401,
        reason,
        verification.message,
        verification.hint,
        verification=verification,
        request=request,
        www=challenge,
    )


def _denied(
    profile: Profile,
    decision: Decision,
    verification: Verification | None,
    request: RequestFacts,
    override: MethodOverride | None = None,
) -> Explanation:
    scope, name = decision.deciding[0]
    label = SCOPE_LABELS[scope]
    where = f"{request.method} {request.path}"
    if override is not None:
        where = f"{override.method} {request.path} ({override.where} on a {request.method})"
    if name == "default":
        reason = "default_denied"
        message = f"no {label} rule allows {where}, and the {label}'s default effect is deny"
        hint = f"add an allow rule matching this request to [[{scope}.rules]]"
    else:
        reason = "rule_denied"
        rule = _rule_named(profile.all_rules(), name)
        message = f"{label} rule '{name}' denies {where}"
        hint = (rule.notes if rule and rule.notes else "") or "this deny rule matched the request"
        unmet = _token_conditions_seen(decision, scope, name)
        if unmet:
            hint += f" (the token has {unmet})"
    challenge = None
    if decision.token_condition_decided:
        challenge = www_authenticate("insufficient_scope", message)
    return _error(
        403,
        reason,
        message,
        hint,
        verification=verification,
        decision=decision,
        request=request,
        www=challenge,
    )


def _rule_named(rules: Iterable[Rule], name: str) -> Rule | None:
    return next((r for r in rules if r.name == name), None)


def _token_conditions_seen(decision: Decision, scope: str, name: str) -> str:
    for outcome in decision.scopes:
        if outcome.scope != scope:
            continue
        for rule in outcome.rules:
            if rule.name == name:
                seen = [v for c in rule.conditions if c.kind == "token" for v in c.compared]
                return ", ".join(seen)
    return ""


def _allowed_message(decision: Decision) -> str:
    named = [f"{SCOPE_LABELS[s]} '{r}'" for s, r in decision.deciding if r != "default"]
    if not named:
        return "allowed: every scope's default effect is allow"
    return "allowed by " + ", ".join(named)


def _error(
    status: int,
    reason: str,
    message: str,
    hint: str,
    *,
    verification: Verification | None = None,
    decision: Decision | None = None,
    request: RequestFacts | None = None,
    www: str | None = None,
) -> Explanation:
    return Explanation(status, reason, message, hint, www, verification, decision, request)


def www_authenticate(error: str, description: str) -> str:
    """An RFC 6750 challenge; the description is cut to its allowed characters."""
    clean = _NOT_RFC6750.sub("'", description.replace('"', "'"))[:200]
    return f'Bearer realm="{REALM}", error="{error}", error_description="{clean}"'


_AMBIGUOUS_HINT = (
    "send the path in plain origin form: no '.' or '..' segments, no encoded '/' or '\\', "
    "no double percent-encoding, no control characters, no ';' parameters, no encoded "
    "'?' or '#', no '//'"
)


class JwksVerifier:
    """The plain Verifier: verify_token against one JWKS cache."""

    def __init__(self, cred: ProxyCredential, jwks: KeySource) -> None:
        self.cred = cred
        self.jwks = jwks

    async def verify(self, token: str, now: float) -> Verification:
        from rrdev.core.verify import verify_token

        return await verify_token(token, self.cred, self.jwks, now=now)


__all__ = [
    "IncomingRequest",
    "JwksVerifier",
    "Offload",
    "Verifier",
    "decide",
    "fingerprint",
    "redactor_for",
    "www_authenticate",
]
