"""Smoke checks (``rrdev check``): a profile's ``[[checks]]`` run like tests.

Each check is a request (method, path, headers, query, body, a token) and an expected
answer. ``run_checks`` turns every check into a ``CheckRequest`` first (tokens fetched,
minted or read from the environment, so a missing variable or an unreachable token
endpoint stops the run before anything is sent), then hands them, one at a time, to a
``CheckRunner``:

* ``DryRunner`` (the default): ``explain.decide`` -- verification and rules, nothing
  forwarded. ``expect = "allowed"`` and ``expect = 200`` both mean "would be forwarded";
  an expected status rrdev itself never answers (404, 201, ...) can only be the
  backend's, so a dry run checks that the request would reach it.
* ``LiveRunner`` (``--live``): the profile's proxy (``ProxyApp`` + ``ProxyServer``) runs
  in-process on 127.0.0.1, port 0, in front of the real target (or ``--target``); each
  check goes through it over loopback with httpx and gets the backend's real answer.
  The proxy's ``RequestRecord`` supplies the reason, the deciding rules and the
  explanation.
* ``AgainstRunner`` (``--against URL``): each check goes to an already running proxy
  or the deployed gateway. Statuses are always compared; ``reason`` and ``rule`` only
  when the answer carries rrdev's JSON error body (``{"status", "reason", ...}``).

With ``offline`` the local keyset stands in for the real issuer: the dry run verifies
with its JWKS, the live proxy too, and ``token = "auth"`` is minted from
``[auth].scope`` with the profile's ``iss``/``aud`` instead of fetched.

A network failure (JWKS, token endpoint, target or ``--against`` URL unreachable) is
raised once as a ``NetworkError`` instead of failing every check. Results are frozen
values; ``junit_xml`` and ``CheckRun.to_dict`` are the machine-readable reports.

Rule coverage: a rule is *exercised* when it decided at least one check
(``Decision.deciding``: for a denial the denying rule, for an allow each scope's
deciding rule).
"""

from __future__ import annotations

import contextlib
import re
import time
import xml.etree.ElementTree as ET
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Protocol
from urllib.parse import urlencode, urlsplit

from rrdev.core.errors import NetworkError, ProfileError, RrdevError
from rrdev.core.explain import IncomingRequest, JwksVerifier, decide
from rrdev.core.model import CheckSpec, Profile, Rule, Secret
from rrdev.core.netaddr import is_loopback_url
from rrdev.core.profile import line_of
from rrdev.core.records import Explanation, Scope

if TYPE_CHECKING:
    import httpx

    from rrdev.core.keyset import Keyset
    from rrdev.core.records import RequestRecord

__all__ = [
    "AgainstRunner",
    "CheckOptions",
    "CheckRequest",
    "CheckResult",
    "CheckRun",
    "CheckRunner",
    "DryRunner",
    "Expectation",
    "LiveRunner",
    "Outcome",
    "ProfileReport",
    "RuleCoverage",
    "TokenSource",
    "describe_failure",
    "junit_xml",
    "mint_identity",
    "outcome_from_response",
    "rule_coverage",
    "run_checks",
    "run_profile",
    "write_junit",
]

Mode = Literal["dry", "live", "against"]

#: ``iss``/``aud`` of minted tokens when the profile verifies none (auth_type = "none").
FALLBACK_ISSUER = "https://rrdev.local/"
FALLBACK_AUDIENCE = "https://api.rrdev.local"
#: Statuses rrdev's decision itself can answer; any other expected status is the backend's.
DECISION_STATUSES = frozenset({400, 401, 403, 503})
#: rrdev reasons that mean "the run cannot go on", not "this check failed".
NETWORK_REASONS = frozenset({"jwks_unavailable", "upstream_unreachable"})
CONFIG_REASONS = frozenset({"upstream_credential_unavailable"})
#: rrdev's own answers after access was granted (the backend is the problem).
GRANTED_FAILURES = frozenset(
    {"upstream_unreachable", "upstream_timeout", "upstream_credential_unavailable"}
)
CODE_HEADER = "requestrocket-proxy-code"
MESSAGE_HEADER = "requestrocket-proxy-message"
GRANTED = "proxy-access-granted"
USER_AGENT = "rrdev-check"
#: How long a live check waits for the proxy's record after the response.
RECORD_TIMEOUT = 5.0
_DOT_SEGMENT = re.compile(r"(^|/)\.{1,2}(/|$)")
_XML_INVALID = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")


# ------------------------------------------------------------------ values


@dataclass(frozen=True)
class CheckOptions:
    """How to run: ``mode`` dry (default), live or against (``against`` is the URL).

    ``offline``: the local keyset stands in for the issuer. ``target`` (live only)
    replaces the profile's ``base_url``; ``jwks`` (dry, live) replaces its
    ``jwks_uri``. ``now`` (dry only) evaluates as of that epoch time; minted tokens
    are minted relative to it. ``timeout`` bounds each HTTP request (seconds).
    ``require_coverage``: an unexercised rule fails the run.
    """

    mode: Mode = "dry"
    against: str | None = None
    offline: bool = False
    target: str | None = None
    jwks: str | None = None
    now: float | None = None
    timeout: float = 30.0
    require_coverage: bool = False

    def __post_init__(self) -> None:
        if self.mode == "against":
            check_against_url(self.against or "")
        if self.mode != "against" and self.against:
            raise RrdevError("--against URL and --live cannot be combined")
        if self.target and self.mode != "live":
            raise RrdevError(
                "--target applies to --live only",
                "a dry run forwards nothing; with --against the remote side picks the backend",
            )
        if self.jwks and self.mode == "against":
            raise RrdevError("--jwks does not apply to --against: the remote side verifies")
        if self.now is not None and self.mode != "dry":
            raise RrdevError(
                "--at applies to dry runs only", "a live proxy or gateway uses the real time"
            )
        if self.require_coverage and self.mode == "against":
            raise RrdevError(
                "--require-coverage cannot be used with --against",
                "answers the backend sent through carry no rule trace; check coverage "
                "in a dry run (the default) or with --live",
            )


@dataclass(frozen=True)
class Expectation:
    """A check's ``expect``: "allowed" (``allowed``), or a status with optional
    ``reason`` and ``rule`` (the deciding rule's name)."""

    allowed: bool = False
    status: int | None = None
    reason: str | None = None
    rule: str | None = None

    @classmethod
    def parse(cls, value: Any) -> Expectation:
        if value == "allowed":
            return cls(allowed=True)
        if isinstance(value, int):
            return cls(status=value)
        data: Mapping[str, Any] = value
        return cls(status=data.get("status"), reason=data.get("reason"), rule=data.get("rule"))

    def __str__(self) -> str:
        parts = ["allowed"] if self.allowed else []
        parts += [str(self.status)] if self.status is not None else []
        parts += [self.reason] if self.reason else []
        text = " ".join(parts)
        if self.rule:
            text += f" · {self.rule}" if text else f"rule {self.rule}"
        return text or "anything"

    def names(self, status: int | None, reason: str | None) -> bool:
        """Whether this expectation asks for exactly that status or reason."""
        return (status is not None and self.status == status) or (
            reason is not None and self.reason == reason
        )

    def to_dict(self) -> dict[str, Any]:
        if self.allowed:
            return {"allowed": True}
        return {"status": self.status, "reason": self.reason, "rule": self.rule}


@dataclass(frozen=True)
class CheckRequest:
    """One check as a request: raw path and query as sent, headers (with the bearer
    token), body. ``check`` is the spec it came from, ``index`` its position."""

    check: CheckSpec
    index: int
    method: str
    raw_path: str
    raw_query: str = ""
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None

    def incoming(self) -> IncomingRequest:
        return IncomingRequest(self.method, self.raw_path, self.raw_query, self.headers)

    @property
    def target(self) -> str:
        return self.raw_path + (f"?{self.raw_query}" if self.raw_query else "")


@dataclass(frozen=True)
class Outcome:
    """What a check got.

    ``reason`` is rrdev's reason code ("allowed" when forwarded), or None when the
    answer carries none (a deployed gateway's or a backend's own response). ``granted``
    says whether the gateway let the request through (None: cannot tell). ``deciding``
    lists the deciding ``(scope, rule)`` pairs; ``traced`` whether they are known at
    all (an answer without an rrdev trace leaves coverage unknown). ``explanation`` is
    the full one when available (dry run, live), a partial one from an error body, or
    None. ``message`` is rrdev's message or the ``requestrocket-proxy-message`` header.
    """

    status: int
    reason: str | None
    granted: bool | None
    deciding: tuple[tuple[Scope, str], ...] = ()
    traced: bool = True
    explanation: Explanation | None = None
    message: str = ""

    @classmethod
    def from_explanation(cls, expl: Explanation, status: int | None = None) -> Outcome:
        return cls(
            status=expl.status if status is None else status,
            reason=expl.reason,
            granted=expl.allowed,
            deciding=expl.decision.deciding if expl.decision else (),
            explanation=expl,
            message=expl.message,
        )

    @property
    def rule(self) -> str | None:
        """The deciding rule as a 403, ``explain`` and the TUI name it."""
        if not self.deciding:
            return None
        names = [name for _scope, name in self.deciding]
        if not self.granted:
            return names[0]
        return next((n for n in names if n != "default"), "default")

    @property
    def rule_names(self) -> frozenset[str]:
        return frozenset(name for _scope, name in self.deciding)

    def __str__(self) -> str:
        parts = [str(self.status)]
        if self.reason and self.reason != "allowed":
            parts.append(self.reason)
        elif self.reason == "allowed":
            parts.append("(forwarded)" if self.status != 200 else "allowed")
        return " ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "reason": self.reason,
            "rule": self.rule,
            "granted": self.granted,
            "deciding": [{"scope": s, "rule": r} for s, r in self.deciding],
            "message": self.message,
        }


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict. ``problems`` (empty when it passed) say what differed;
    ``notes`` what could not be checked, or why a result may surprise."""

    profile: str
    suite: str
    name: str
    index: int
    line: int | None
    method: str
    target: str
    expected: Expectation
    outcome: Outcome
    problems: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()
    seconds: float = 0.0

    @property
    def passed(self) -> bool:
        return not self.problems

    @property
    def where(self) -> str:
        return f"{self.profile}:{self.line}" if self.line else self.profile

    def to_dict(self) -> dict[str, Any]:
        expl = self.outcome.explanation
        return {
            "name": self.name,
            "index": self.index,
            "line": self.line,
            "request": f"{self.method} {self.target}",
            "passed": self.passed,
            "expected": self.expected.to_dict(),
            "got": self.outcome.to_dict(),
            "problems": list(self.problems),
            "notes": list(self.notes),
            "seconds": round(self.seconds, 6),
            "explanation": expl.to_dict() if expl is not None else None,
        }


@dataclass(frozen=True)
class RuleCoverage:
    """One rule of the profile and the checks it decided (``decided``, by name)."""

    scope: Scope
    index: int
    id: str | None
    notes: str
    line: int | None
    decided: tuple[str, ...] = ()

    @classmethod
    def of(cls, rule: Rule, decided: Sequence[str]) -> RuleCoverage:
        return cls(rule.scope, rule.index, rule.id, rule.notes, rule.line, tuple(decided))

    @property
    def name(self) -> str:
        return self.id or f"{self.scope}[{self.index}]"

    @property
    def exercised(self) -> bool:
        return bool(self.decided)

    def describe(self) -> str:
        """``proxy[2] 'scope-gate-delete' (Scope gate: ...)``: position, id, notes."""
        text = f"{self.scope}[{self.index}]"
        if self.id:
            text += f" '{self.id}'"
        if self.notes:
            text += f" ({self.notes})"
        return text

    def to_dict(self) -> dict[str, Any]:
        return {
            "scope": self.scope,
            "index": self.index,
            "name": self.name,
            "id": self.id,
            "notes": self.notes,
            "line": self.line,
            "exercised": self.exercised,
            "decided": list(self.decided),
        }


@dataclass(frozen=True)
class ProfileReport:
    """One profile's results and rule coverage. ``coverage_known`` is False when some
    answer carried no rule trace (``--against``): unexercised rules are then only
    "not seen"."""

    profile: str
    name: str
    mode: Mode
    results: tuple[CheckResult, ...]
    coverage: tuple[RuleCoverage, ...]
    coverage_known: bool = True

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    @property
    def unexercised(self) -> tuple[RuleCoverage, ...]:
        return tuple(c for c in self.coverage if not c.exercised)

    def to_dict(self) -> dict[str, Any]:
        return {
            "profile": self.profile,
            "name": self.name,
            "mode": self.mode,
            "passed": not self.failed,
            "results": [r.to_dict() for r in self.results],
            "coverage": {
                "known": self.coverage_known,
                "rules": [c.to_dict() for c in self.coverage],
                "unexercised": [c.describe() for c in self.unexercised],
            },
        }


@dataclass(frozen=True)
class CheckRun:
    """Every profile's report; ``exit_code`` is the command's (0 passed, 1 failed)."""

    reports: tuple[ProfileReport, ...]
    require_coverage: bool = False

    @property
    def results(self) -> tuple[CheckResult, ...]:
        return tuple(r for report in self.reports for r in report.results)

    @property
    def failed(self) -> tuple[CheckResult, ...]:
        return tuple(r for r in self.results if not r.passed)

    @property
    def coverage_failed(self) -> bool:
        return self.require_coverage and any(r.unexercised for r in self.reports)

    @property
    def passed(self) -> bool:
        return not self.failed and not self.coverage_failed

    @property
    def exit_code(self) -> int:
        return 0 if self.passed else 1

    def to_dict(self) -> dict[str, Any]:
        results = self.results
        return {
            "passed": self.passed,
            "exit_code": self.exit_code,
            "summary": {
                "profiles": len(self.reports),
                "checks": len(results),
                "passed": sum(1 for r in results if r.passed),
                "failed": len(self.failed),
                "unexercised_rules": sum(len(r.unexercised) for r in self.reports),
                "require_coverage": self.require_coverage,
            },
            "profiles": [r.to_dict() for r in self.reports],
        }


# ------------------------------------------------------------------ tokens


class TokenSource:
    """Turns a check's ``token`` into a bearer token (or None for "none").

    ``"auth"`` is fetched once per profile with ``[auth]`` (``rrdev.core.tokens.caller_token``)
    -- or, ``offline``, minted from ``[auth].scope``. ``{ mint = {...} }`` is signed by
    the local keyset with the profile's ``iss``/``aud``. Anything else is a literal
    token, ``${ENV}`` references resolved. The keyset is loaded on first use.
    """

    def __init__(
        self,
        *,
        offline: bool = False,
        keyset: Keyset | None = None,
        http: httpx.AsyncClient | None = None,
        env: Mapping[str, str] | None = None,
    ) -> None:
        self.offline = offline
        self._keyset = keyset
        self._http = http
        self._env = env
        self._fetched: dict[str, str] = {}

    @property
    def keyset(self) -> Keyset:
        if self._keyset is None:
            from rrdev.core.keyset import Keyset

            self._keyset = Keyset.load_or_create()
        return self._keyset

    async def token(self, profile: Profile, index: int, check: CheckSpec, now: float) -> str | None:
        spec = check.token
        key = f"checks[{index}].token"
        if spec == "none":
            return None
        if spec == "auth":
            return await self._auth(profile, key, now)
        if isinstance(spec, str):
            secret = Secret(spec, key=key, file=profile.path, line=line_of(profile, key))
            return _strip_bearer(secret.resolve(self._env))
        return self.mint(profile, spec["mint"], now)

    def mint(self, profile: Profile, spec: Mapping[str, Any], now: float) -> str:
        """A token from the local keyset; ``spec`` keys as in ``profile.MINT_KEYS``."""
        from rrdev.core.keyset import mint_token

        issuer, audience, extra = mint_identity(profile)
        claims = {**extra, **dict(spec.get("claims") or {})}
        options: dict[str, Any] = {}
        if "sub" in spec:
            options["subject"] = spec["sub"]
        if "not_before" in spec:
            options["not_before"] = spec["not_before"]
        return mint_token(
            self.keyset,
            issuer=spec.get("iss", issuer),
            audience=spec.get("aud", audience),
            scope=spec.get("scope"),
            claims=claims,
            expires_in=spec.get("expires_in", 3600),
            now=now,
            **options,
        )

    async def _auth(self, profile: Profile, key: str, now: float) -> str:
        if profile.auth is None:
            raise ProfileError(
                "token = 'auth' needs an [auth] section (how to get a caller token)",
                file=profile.path,
                line=line_of(profile, key),
                key=key,
                hint="add [auth], or use token = 'none', '${ENV}' or { mint = { ... } }",
            )
        if self.offline:
            return self.mint(profile, {"scope": profile.auth.client.scope}, now)
        cached = self._fetched.get(profile.path)
        if cached is None:
            cached = self._fetched[profile.path] = await _fetch_caller_token(profile, self._http)
        return cached


async def _fetch_caller_token(profile: Profile, http: httpx.AsyncClient | None) -> str:
    from rrdev.clients.caller import caller_token

    return await caller_token(profile, use_cache=True, http=http)


def mint_identity(profile: Profile) -> tuple[str, str, dict[str, Any]]:
    """``iss``, ``aud`` and extra claims that make a minted token verify against the
    profile's proxy credential (Cognito mode: ``client_id``/``token_use`` claims)."""
    cred = profile.proxy_credential
    issuer = cred.issuer or FALLBACK_ISSUER
    extra: dict[str, Any] = {}
    if cred.audience:
        return issuer, cred.audience[0], extra
    if cred.client_id:
        extra["client_id"] = cred.client_id
        if cred.token_use:
            extra["token_use"] = cred.token_use
        return issuer, cred.client_id, extra
    return issuer, FALLBACK_AUDIENCE, extra


def _strip_bearer(token: str) -> str:
    token = token.strip()
    return token[7:].strip() if token[:7].lower() == "bearer " else token


async def prepare(
    profile: Profile, index: int, check: CheckSpec, tokens: TokenSource, now: float
) -> CheckRequest:
    """The request a check sends (its token obtained now)."""
    raw_path, _, raw_query = check.path.partition("?")
    extra = urlencode(list(check.query))
    raw_query = "&".join(q for q in (raw_query, extra) if q)
    headers = list(check.headers)
    token = await tokens.token(profile, index, check, now)
    if token is not None:
        headers.append(("Authorization", f"Bearer {token}"))
    body = check.body.encode("utf-8") if check.body is not None else None
    return CheckRequest(check, index, check.method, raw_path, raw_query, tuple(headers), body)


# ------------------------------------------------------------------ runners


class CheckRunner(Protocol):
    """Sends one prepared check and reports what came back."""

    mode: Mode

    async def run(self, request: CheckRequest) -> Outcome: ...


class DryRunner:
    """``explain.decide`` as of ``now``: verification and rules, nothing forwarded."""

    mode: Mode = "dry"

    def __init__(self, profile: Profile, verifier: JwksVerifier | None, now: float) -> None:
        self.profile = profile
        self.verifier = verifier
        self.now = now

    async def run(self, request: CheckRequest) -> Outcome:
        expl = await decide(self.profile, request.incoming(), self.verifier, now=self.now)
        return Outcome.from_explanation(expl)


class AgainstRunner:
    """Sends each check to ``base_url`` (a running proxy or the deployed gateway)."""

    mode: Mode = "against"

    def __init__(self, base_url: str, client: httpx.AsyncClient) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = client

    async def run(self, request: CheckRequest) -> Outcome:
        response = await self.send(request)
        return outcome_from_response(response)

    async def send(self, request: CheckRequest) -> httpx.Response:
        import httpx

        url = httpx.URL(self.base_url)
        target = url.raw_path.split(b"?")[0].rstrip(b"/") + request.target.encode("ascii")
        try:
            return await self.client.request(
                request.method,
                url.copy_with(raw_path=target),
                headers=[*request.headers, ("User-Agent", USER_AGENT)],
                content=request.body,
            )
        except httpx.TransportError as exc:
            raise NetworkError(
                f"cannot reach {self.base_url}: {_transport_problem(exc)}",
                "is the proxy or gateway running at that URL? (check the --against URL)",
            ) from None


class LiveRunner(AgainstRunner):
    """``AgainstRunner`` through rrdev's own proxy, running in-process: the proxy's
    ``RequestRecord`` for each request supplies reason, deciding rules and explanation."""

    mode: Mode = "live"

    def __init__(
        self, base_url: str, client: httpx.AsyncClient, records: Any, target_label: str
    ) -> None:
        super().__init__(base_url, client)
        self.records = records  # asyncio.Queue[RequestRecord]
        self.target_label = target_label

    async def run(self, request: CheckRequest) -> Outcome:
        import asyncio

        while not self.records.empty():  # a record left over from a timed-out check
            self.records.get_nowait()
        response = await self.send(request)
        try:
            record: RequestRecord = await asyncio.wait_for(self.records.get(), RECORD_TIMEOUT)
        except TimeoutError:  # the record is a bonus: the answer itself still counts
            return outcome_from_response(response)
        return Outcome.from_explanation(record.explanation, status=response.status_code)


def outcome_from_response(response: httpx.Response) -> Outcome:
    """What an HTTP answer says: status always; rrdev's reason and trace when it carries
    rrdev's JSON error body; "allowed" when the gateway's code header says granted."""
    code = response.headers.get(CODE_HEADER)
    message = response.headers.get(MESSAGE_HEADER, "")
    body = _rrdev_body(response, code)
    if body is not None:
        reason = str(body["reason"])
        trace = body.get("trace")
        deciding = _trace_deciding(trace)
        granted = reason in GRANTED_FAILURES
        expl = Explanation(
            response.status_code,
            reason,
            str(body.get("message", "")),
            str(body.get("hint", "") or ""),
            response.headers.get("www-authenticate"),
        )
        return Outcome(
            response.status_code,
            reason,
            granted,
            deciding,
            traced=trace is None or bool(deciding),
            explanation=expl,
            message=expl.message,
        )
    if code is not None:
        granted = code == GRANTED
        return Outcome(
            response.status_code,
            "allowed" if granted else None,
            granted,
            traced=False,
            message=message,
        )
    return Outcome(response.status_code, None, None, traced=False, message=message)


def _rrdev_body(response: httpx.Response, code: str | None) -> Mapping[str, Any] | None:
    """The JSON error body rrdev answers with, if this is one. A backend's JSON that
    happens to hold "reason" behind a granted answer is the backend's, not rrdev's,
    unless it is one of the failures rrdev reports after granting access."""
    if "json" not in response.headers.get("content-type", ""):
        return None
    try:
        body = response.json()
    except ValueError:
        return None
    if not isinstance(body, dict) or not isinstance(body.get("reason"), str):
        return None
    if body.get("status") != response.status_code:
        return None
    if code == GRANTED and body["reason"] not in GRANTED_FAILURES:
        return None
    return body


def _trace_deciding(trace: Any) -> tuple[tuple[Scope, str], ...]:
    if not isinstance(trace, dict):
        return ()
    pairs = []
    for item in trace.get("deciding") or ():
        if isinstance(item, dict) and isinstance(item.get("rule"), str):
            pairs.append((item.get("scope"), item["rule"]))
    return tuple(pairs)


def _transport_problem(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text[:200]


@contextlib.asynccontextmanager
async def open_runner(
    profile: Profile, options: CheckOptions, tokens: TokenSource, now: float
) -> AsyncIterator[CheckRunner]:
    """The runner for ``options.mode``, with everything it holds open closed after."""
    if options.mode == "dry":
        async with _dry_runner(profile, options, tokens, now) as dry:
            yield dry
    elif options.mode == "against":
        assert options.against is not None
        # A loopback proxy (`rrdev up`) never goes through HTTP(S)_PROXY; a remote
        # gateway may need it.
        loopback = is_loopback_url(options.against)
        async with _http_client(options, trust_env=not loopback) as client:
            yield AgainstRunner(options.against, client)
    else:
        async with _live_runner(profile, options) as live:
            yield live


@contextlib.asynccontextmanager
async def _dry_runner(
    profile: Profile, options: CheckOptions, tokens: TokenSource, now: float
) -> AsyncIterator[DryRunner]:
    from rrdev.clients.jwks import JwksCache

    cache = None
    source = jwks_source(profile, options, tokens)
    if profile.proxy_credential.auth_type == "jwtVerify" and source is not None:
        cred = profile.proxy_credential
        cache = JwksCache(source, ttl=cred.jwks_ttl_seconds, timeout=min(options.timeout, 10))
    try:
        verifier = JwksVerifier(profile.proxy_credential, cache) if cache else None
        yield DryRunner(profile, verifier, now)
    finally:
        if cache is not None:
            await cache.aclose()


def jwks_source(profile: Profile, options: CheckOptions, tokens: TokenSource) -> Any:
    """``--jwks`` wins, then ``--offline`` (the local keyset's JWKS), then the profile's."""
    if options.jwks:
        return options.jwks
    if options.offline:
        return tokens.keyset.jwks()
    return profile.proxy_credential.jwks_uri


@contextlib.asynccontextmanager
async def _http_client(options: CheckOptions, *, trust_env: bool) -> AsyncIterator[Any]:
    import httpx

    async with httpx.AsyncClient(
        timeout=options.timeout, follow_redirects=False, trust_env=trust_env
    ) as client:
        yield client


@contextlib.asynccontextmanager
async def _live_runner(profile: Profile, options: CheckOptions) -> AsyncIterator[LiveRunner]:
    import asyncio

    from rrdev.servers.proxy import Overrides, ProxyApp
    from rrdev.servers.runner import ProxyServer

    records: asyncio.Queue[RequestRecord] = asyncio.Queue()
    overrides = Overrides(target=options.target, jwks=options.jwks, offline=options.offline)
    app = ProxyApp(profile, overrides=overrides, sink=records.put_nowait, reload_interval=0)
    server = ProxyServer(app, "127.0.0.1", 0, graceful_timeout=2)
    try:
        await server.start()
    except BaseException:
        await app.aclose()
        raise
    try:
        # Loopback to our own proxy: never through an HTTP(S)_PROXY from the environment.
        async with _http_client(options, trust_env=False) as client:
            yield LiveRunner(server.url, client, records, app.info().target)
    finally:
        await server.stop()


# ------------------------------------------------------------------ judging


def judge(
    request: CheckRequest, outcome: Outcome, expected: Expectation, mode: Mode
) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(problems, notes): what differs from ``expected``, and what could not be checked."""
    problems: list[str] = []
    notes: list[str] = []
    _judge_status(outcome, expected, mode, problems, notes)
    if expected.reason is not None:
        if outcome.reason is None:
            notes.append(
                f"reason {expected.reason} not checked: the answer carries no rrdev reason"
            )
        elif outcome.reason != expected.reason:
            problems.append(f"expected reason {expected.reason}, got {outcome.reason}")
    if expected.rule is not None:
        _judge_rule(outcome, expected.rule, problems, notes)
    if mode != "dry" and _DOT_SEGMENT.search(request.raw_path):
        notes.append("httpx removes '.' and '..' path segments before sending; encode them as %2e")
    return tuple(problems), tuple(notes)


def _judge_status(
    outcome: Outcome, expected: Expectation, mode: Mode, problems: list[str], notes: list[str]
) -> None:
    if expected.allowed:
        if outcome.granted is None and mode == "against":
            notes.append("no requestrocket-proxy-code header: 'allowed' judged by the status")
            if outcome.status >= 400:
                problems.append(f"expected allowed, got {outcome}")
        elif not outcome.granted or outcome.reason in GRANTED_FAILURES:
            problems.append(f"expected allowed, got {outcome}")
        return
    status = expected.status
    if status is None:
        return
    if mode == "dry" and status not in DECISION_STATUSES:
        # The backend, not rrdev, gives this answer: a dry run can only say it gets there.
        if not outcome.granted:
            problems.append(f"expected {status} (forwarded to the backend), got {outcome}")
        elif status != 200:
            notes.append(f"the backend's {status} is checked only with --live or --against")
        return
    if outcome.status != status:
        problems.append(f"expected {status}, got {outcome}")


def _judge_rule(outcome: Outcome, rule: str, problems: list[str], notes: list[str]) -> None:
    if not outcome.traced:
        notes.append(f"rule {rule} not checked: the answer carries no rrdev rule trace")
        return
    if not outcome.deciding:
        problems.append(f"expected rule {rule} to decide, but no rule was evaluated ({outcome})")
        return
    # A denial has one deciding rule; an allow one per scope, any of which may be named.
    decided = {outcome.rule} if not outcome.granted else outcome.rule_names
    if rule not in decided:
        problems.append(f"expected rule {rule} to decide, got {outcome.rule}")


def _stop_if_unrunnable(
    profile: Profile, request: CheckRequest, outcome: Outcome, expected: Expectation
) -> None:
    """An answer that means the run cannot go on is reported once, not as N failures
    (unless this check asked for exactly that answer)."""
    if expected.names(outcome.status, outcome.reason):
        return
    message = outcome.message or (outcome.explanation.message if outcome.explanation else "")
    hint = outcome.explanation.hint if outcome.explanation else ""
    where = f" (check {request.check.name!r}, {profile.path})"
    if outcome.reason in NETWORK_REASONS:
        raise NetworkError(f"{outcome.reason}: {message}{where}", hint)
    if outcome.reason in CONFIG_REASONS:
        raise ProfileError(f"cannot forward: {message}", file=profile.path, hint=hint)


async def run_check(
    profile: Profile, runner: CheckRunner, request: CheckRequest, *, clock: Callable[[], float]
) -> CheckResult:
    check = request.check
    expected = Expectation.parse(check.expect)
    started = clock()
    outcome = await runner.run(request)
    seconds = max(clock() - started, 0.0)
    _stop_if_unrunnable(profile, request, outcome, expected)
    problems, notes = judge(request, outcome, expected, runner.mode)
    notes = notes + _mint_note(check, outcome, runner.mode)
    return CheckResult(
        profile=profile.path,
        suite=profile.display_name,
        name=check.name,
        index=request.index,
        line=check.line,
        method=request.method,
        target=request.target,
        expected=expected,
        outcome=outcome,
        problems=problems,
        notes=notes,
        seconds=seconds,
    )


def _mint_note(check: CheckSpec, outcome: Outcome, mode: Mode) -> tuple[str, ...]:
    if not isinstance(check.token, dict):
        return ()
    if outcome.reason in ("key_not_found", "signature_invalid"):
        where = "a proxy sharing this keyset (RRDEV_HOME)" if mode == "against" else "--offline"
        return (f"minted tokens are signed by the local keyset: they verify only with {where}",)
    return ()


def rule_coverage(profile: Profile, results: Sequence[CheckResult]) -> tuple[RuleCoverage, ...]:
    """Every rule of the profile with the checks it decided."""
    decided: dict[tuple[str, str], list[str]] = {}
    for result in results:
        for pair in dict.fromkeys(result.outcome.deciding):
            decided.setdefault(pair, []).append(result.name)
    return tuple(
        RuleCoverage.of(rule, decided.get((rule.scope, rule.name), ()))
        for rule in profile.all_rules()
    )


# ------------------------------------------------------------------ running


async def run_profile(
    profile: Profile,
    options: CheckOptions,
    tokens: TokenSource,
    *,
    clock: Callable[[], float] = time.time,
) -> ProfileReport:
    """Prepare every check (tokens first), then run them in file order."""
    now = options.now if options.now is not None else clock()
    requests = [
        await prepare(profile, n, check, tokens, now) for n, check in enumerate(profile.checks)
    ]
    results: list[CheckResult] = []
    if requests:
        async with open_runner(profile, options, tokens, now) as runner:
            for request in requests:
                results.append(await run_check(profile, runner, request, clock=time.perf_counter))
    return ProfileReport(
        profile=profile.path,
        name=profile.display_name,
        mode=options.mode,
        results=tuple(results),
        coverage=rule_coverage(profile, results),
        coverage_known=all(r.outcome.traced for r in results),
    )


async def run_checks(
    profiles: Sequence[Profile],
    options: CheckOptions,
    *,
    tokens: TokenSource | None = None,
    clock: Callable[[], float] = time.time,
) -> CheckRun:
    """Run every profile's checks; one combined result. Raises ``NetworkError`` (a
    remote unreachable), ``ProfileError`` (a check that cannot be built) and
    ``RrdevError`` for bad options, each once."""
    tokens = tokens or TokenSource(offline=options.offline)
    reports = [await run_profile(p, options, tokens, clock=clock) for p in profiles]
    return CheckRun(tuple(reports), options.require_coverage)


# ------------------------------------------------------------------ reports


def describe_failure(result: CheckResult) -> str:
    """Plain text for a failed check: what differed, then rrdev's explanation."""
    lines = [f"{result.name} ({result.where}): {result.method} {result.target}"]
    lines += [f"  {p}" for p in result.problems]
    lines += [f"  note: {n}" for n in result.notes]
    expl = result.outcome.explanation
    if expl is not None:
        lines.append(f"  got {expl.status} {expl.reason}: {expl.message}")
        if expl.hint:
            lines.append(f"  hint: {expl.hint}")
        if expl.deciding_rule:
            lines.append(f"  deciding rule: {expl.deciding_rule}")
    elif result.outcome.message:
        lines.append(f"  gateway: {result.outcome.message}")
    return "\n".join(lines)


def junit_xml(
    run: CheckRun, *, details: Callable[[CheckResult], str] = describe_failure
) -> ET.Element:
    """JUnit XML as CI systems read it: one ``<testsuite>`` per profile, one
    ``<testcase>`` per check (``classname`` = the profile's name), a ``<failure>``
    (message + explanation text) for each failed check. With ``require_coverage``, a
    "rule coverage" testcase per profile fails when a rule is unexercised."""
    root = ET.Element("testsuites", name="rrdev check")
    total = failures = 0
    seconds = 0.0
    for report in run.reports:
        suite = ET.SubElement(root, "testsuite", name=report.name, file=report.profile)
        cases = [_testcase(report, r, details) for r in report.results]
        if run.require_coverage:
            cases.append(_coverage_case(report))
        suite.extend(cases)
        failed = sum(1 for case in cases if case.find("failure") is not None)
        spent = sum(r.seconds for r in report.results)
        suite.set("tests", str(len(cases)))
        suite.set("failures", str(failed))
        suite.set("errors", "0")
        suite.set("skipped", "0")
        suite.set("time", f"{spent:.3f}")
        total, failures, seconds = total + len(cases), failures + failed, seconds + spent
    root.set("tests", str(total))
    root.set("failures", str(failures))
    root.set("errors", "0")
    root.set("time", f"{seconds:.3f}")
    return root


def _testcase(
    report: ProfileReport, result: CheckResult, details: Callable[[CheckResult], str]
) -> ET.Element:
    case = ET.Element(
        "testcase",
        classname=report.name,
        name=result.name,
        time=f"{result.seconds:.3f}",
        file=result.profile,
    )
    if result.line is not None:
        case.set("line", str(result.line))
    if not result.passed:
        failure = ET.SubElement(
            case, "failure", message=_xml_text("; ".join(result.problems)), type="CheckFailed"
        )
        failure.text = _xml_text(details(result))
    elif result.notes:
        ET.SubElement(case, "system-out").text = _xml_text("\n".join(result.notes))
    return case


def _coverage_case(report: ProfileReport) -> ET.Element:
    case = ET.Element(
        "testcase", classname=report.name, name="rule coverage", time="0", file=report.profile
    )
    missing = report.unexercised
    if missing:
        failure = ET.SubElement(
            case,
            "failure",
            message=f"{len(missing)} rule(s) never exercised by a check",
            type="RuleCoverage",
        )
        failure.text = _xml_text("\n".join(f"{c.describe()} is never exercised" for c in missing))
    return case


def _xml_text(text: str) -> str:
    """XML 1.0 cannot carry most control characters, escaped or not."""
    return _XML_INVALID.sub("?", text)


def write_junit(
    run: CheckRun, path: str, *, details: Callable[[CheckResult], str] = describe_failure
) -> None:
    tree = ET.ElementTree(junit_xml(run, details=details))
    ET.indent(tree)
    try:
        tree.write(path, encoding="utf-8", xml_declaration=True)
    except OSError as exc:
        raise RrdevError(f"cannot write the JUnit report {path}: {exc.strerror}") from None


def check_against_url(url: str) -> str:
    """``--against``: an absolute http(s) URL, or a usage error."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query:
        raise RrdevError(
            f"--against {url!r} is not an http(s) base URL",
            "e.g. --against http://127.0.0.1:8787 or --against https://my-api.requestrocket.io",
        )
    return url
