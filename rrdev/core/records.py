"""Frozen values that cross from the engine to the front ends.

Every value here is already redacted (DESIGN.md §2.7): a front end may print any
field of any of them. ``to_dict()`` gives the JSON shape used by ``--json``, the
proxy's error bodies and JSONL logs.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

Effect = Literal["allow", "deny"]
Scope = Literal["proxy_credential", "target_credential", "proxy", "target"]
#: The fixed order in which scopes are evaluated and reported (DESIGN.md §3).
SCOPES: tuple[Scope, ...] = ("proxy_credential", "target_credential", "proxy", "target")
#: At most this many bytes of a JSON response body are kept in a record's preview.
PREVIEW_BYTES = 4096
#: At most this many bytes of a forwarded request body are kept in a record (replay).
REQUEST_BODY_BYTES = 64 * 1024


def _plain(value: Any) -> Any:
    """dataclasses.asdict that also turns tuples into lists and mappings into dicts."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class RequestFacts:
    """What the rules see of a request.

    ``path`` is percent-decoded exactly once; ``raw_path`` is the bytes as received
    (as text) and is what gets forwarded. Header names are lower-case.
    """

    method: str
    path: str
    raw_path: str = ""
    query: tuple[tuple[str, str], ...] = ()
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def lazy(
        cls,
        method: str,
        path: str,
        raw_path: str,
        parts: Callable[[], tuple[tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]],
    ) -> RequestFacts:
        """RequestFacts whose ``query`` and ``headers`` ``parts()`` makes on first read:
        the engine's redacted copy of a request, which most allowed requests never
        show. ``parts`` must be pure over immutable inputs (redaction is)."""
        facts = cls.__new__(cls)
        # One dict update instead of four frozen-dataclass attribute sets.
        facts.__dict__.update(method=method, path=path, raw_path=raw_path, _parts=parts)
        return facts

    def __getattr__(self, name: str) -> Any:
        # Only called for an attribute not set: the parts of a lazy RequestFacts.
        parts = self.__dict__.get("_parts")
        if parts is None or name not in ("query", "headers"):
            raise AttributeError(name)
        query, headers = parts()
        object.__setattr__(self, "query", query)
        object.__setattr__(self, "headers", headers)
        object.__setattr__(self, "_parts", None)  # let go of the unredacted inputs
        return query if name == "query" else headers

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled (or copied) as plain RequestFacts: the function stays behind.
        return (RequestFacts, (self.method, self.path, self.raw_path, self.query, self.headers))

    def to_dict(self) -> dict[str, Any]:
        return _plain(self)


# The defaults live in ``__init__`` only: class attributes of these names would answer
# for a lazy RequestFacts before its ``__getattr__`` could make them.
del RequestFacts.query, RequestFacts.headers


# ---------------------------------------------------------------- rule trace


ConditionKind = Literal["methods", "path", "header", "query", "token"]


@dataclass(frozen=True)
class ConditionOutcome:
    """One condition of one rule: what it asked, what it saw, whether it held.

    ``compared`` lists the (redacted) values the condition looked at, e.g.
    ``('scope="read:users"',)``; ``held`` is the outcome after ``presence``.
    """

    kind: ConditionKind
    description: str
    held: bool
    compared: tuple[str, ...] = ()


@dataclass(frozen=True)
class RuleOutcome:
    """One rule: matched when every condition held."""

    name: str
    index: int
    effect: Effect
    priority: int
    notes: str
    matched: bool
    conditions: tuple[ConditionOutcome, ...]
    id: str | None = None


@dataclass(frozen=True)
class ScopeOutcome:
    """One scope's verdict. ``rules`` are in trace order (priority desc, file order)."""

    scope: Scope
    default_effect: Effect
    effect: Effect
    decided_by: str  # a rule name, or "default"
    rules: tuple[RuleOutcome, ...]
    token_condition_decided: bool = False


@dataclass(frozen=True)
class Decision:
    """The rule engine's answer for a request, with the full trace.

    ``deciding`` is DESIGN.md §3's deciding rule: for a denial one ``(scope, name)``
    pair (the first denying scope); for an allow one pair per scope.
    """

    allowed: bool
    scopes: tuple[ScopeOutcome, ...]
    deciding: tuple[tuple[Scope, str], ...]
    token_condition_decided: bool = False

    @classmethod
    def lazy(
        cls,
        allowed: bool,
        deciding: tuple[tuple[Scope, str], ...],
        token_condition_decided: bool,
        trace: Callable[[], tuple[ScopeOutcome, ...]],
    ) -> Decision:
        """A Decision whose ``scopes`` (the trace) ``trace()`` builds on first read: the
        proxy's hot path decides without it, and most allowed requests are never read.
        ``trace`` must be pure over immutable inputs (the rule engine's is)."""
        decision = cls.__new__(cls)
        # One dict update instead of four frozen-dataclass attribute sets.
        decision.__dict__.update(
            allowed=allowed,
            deciding=deciding,
            token_condition_decided=token_condition_decided,
            _trace=trace,
        )
        return decision

    def __getattr__(self, name: str) -> Any:
        # Only called for an attribute not set: the trace of a lazy Decision.
        trace = self.__dict__.get("_trace")
        if name != "scopes" or trace is None:
            raise AttributeError(name)
        scopes = trace()
        object.__setattr__(self, "scopes", scopes)
        # Let go of the request's unredacted inputs the trace was built from.
        object.__setattr__(self, "_trace", None)
        return scopes

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled (or deep-copied) as a plain Decision: the trace function stays behind.
        return (Decision, (self.allowed, self.scopes, self.deciding, self.token_condition_decided))

    @property
    def deciding_rule(self) -> str:
        """The single name a 403, a check or the TUI shows.

        A denial names its denying rule (or ``default``); an allow names the first
        scope's rule that is not ``default``, else ``default``.
        """
        for _scope, name in self.deciding:
            if name != "default":
                return name
        return "default"

    @property
    def deciding_scope(self) -> Scope | None:
        return None if self.allowed else self.deciding[0][0]

    def to_dict(self) -> dict[str, Any]:
        out = _plain(self)
        out["deciding"] = [{"scope": s, "rule": r} for s, r in self.deciding]
        out["deciding_rule"] = self.deciding_rule
        out["deciding_scope"] = self.deciding_scope
        return out


# ------------------------------------------------------------- verification

StepStatus = Literal["passed", "failed", "skipped"]


@dataclass(frozen=True)
class VerifyStep:
    """One line of the verification checklist (format, algorithm, key, signature,
    expiry, not-before, issuer, audience, ...), with expected and actual values."""

    name: str
    status: StepStatus
    expected: str = ""
    actual: str = ""
    detail: str = ""


@dataclass(frozen=True)
class Verification:
    """The result of verifying a bearer token.

    On success ``reason`` is ``None`` and ``claims`` are the verified claims. On
    failure ``reason`` is a stable code (``token_expired``, ``audience_mismatch``,
    ...), ``message`` says what happened and ``hint`` how to fix it; ``claims`` may
    still hold the *unverified* claims for display (never for rules).
    """

    steps: tuple[VerifyStep, ...]
    reason: str | None = None
    message: str = ""
    hint: str = ""
    claims: Mapping[str, Any] | None = None
    header: Mapping[str, Any] | None = None
    fingerprint: str | None = None
    #: 503 instead of 401: the JWKS could not be obtained (not the caller's fault)
    unavailable: bool = False
    #: what a reader should know although the token passed (a stale key set was used)
    warnings: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return self.reason is None

    @property
    def subject(self) -> str | None:
        sub = (self.claims or {}).get("sub")
        return str(sub) if sub is not None else None

    @property
    def expires_at(self) -> int | None:
        exp = (self.claims or {}).get("exp")
        return int(exp) if isinstance(exp, (int, float)) else None

    def to_dict(self) -> dict[str, Any]:
        return _plain(self) | {"ok": self.ok}


# ---------------------------------------------------------------- explanation


@dataclass(frozen=True)
class Explanation:
    """Verification + rules -> the answer the proxy gives. Rendered by every front end.

    ``status`` is 200 with ``reason == "allowed"`` when the request would be forwarded.
    """

    status: int
    reason: str
    message: str
    hint: str = ""
    www_authenticate: str | None = None
    verification: Verification | None = None
    decision: Decision | None = None
    request: RequestFacts | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def allowed(self) -> bool:
        return self.reason == "allowed"

    @property
    def deciding_rule(self) -> str | None:
        return self.decision.deciding_rule if self.decision else None

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON shape: status, reason, message, hint, trace, checks,
        www_authenticate, warnings (plus request, token and deciding_rule for
        convenience)."""
        ver = self.verification
        out = {
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "hint": self.hint,
            "www_authenticate": self.www_authenticate,
            "deciding_rule": self.deciding_rule,
            "trace": self.decision.to_dict() if self.decision else None,
            "checks": [_plain(s) for s in ver.steps] if ver else [],
            "token": _token_summary(ver),
            "request": self.request.to_dict() if self.request else None,
            "warnings": list(ver.warnings) if ver else [],
        }
        if "response_filters" in self.extra:  # what each response filter removed (paths)
            out["response_filters"] = _plain(self.extra["response_filters"])
        return out

    def error_body(self) -> dict[str, Any]:
        """The JSON body of an rrdev-generated error response (DESIGN.md §2.6)."""
        return {
            "status": self.status,
            "reason": self.reason,
            "message": self.message,
            "hint": self.hint,
            "trace": self.decision.to_dict() if self.decision else None,
        }


def _token_summary(ver: Verification | None) -> dict[str, Any] | None:
    if ver is None or ver.fingerprint is None:
        return None
    return {
        "fingerprint": ver.fingerprint,
        "verified": ver.ok,
        "header": _plain(ver.header) if ver.header else None,
        "claims": redact_claims(ver.claims) if ver.claims else None,
    }


def redact_claims(claims: Mapping[str, Any]) -> dict[str, Any]:
    """Claims for display: values under secret-looking names (``client_secret``,
    ``access_token``, ...) are replaced, at any depth."""
    from rrdev.core.redact import REDACTED, SECRET_FIELDS

    def scrub(value: Any) -> Any:
        if isinstance(value, Mapping):
            return {
                str(k): REDACTED if str(k).lower() in SECRET_FIELDS else scrub(v)
                for k, v in value.items()
            }
        if isinstance(value, (list, tuple)):
            return [scrub(v) for v in value]
        return value

    return scrub(claims)


# ---------------------------------------------------------------- request record


@dataclass(frozen=True)
class RequestRecord:
    """One request through the proxy (``rrdev up``), as every front end shows it.

    Built after the response has completed and handed to the proxy's record sink.
    ``path`` is the path as received (raw, not decoded); ``query`` the (redacted)
    decoded query pairs. ``status`` is what the caller got: the backend's status
    when forwarded (``reason`` "allowed"), else rrdev's own answer. ``explanation``
    is the decision (for allowed requests too), with token claims already redacted.

    Latency in milliseconds: ``auth_ms`` verifying the token (≈0 on a verified-token
    cache hit), ``rules_ms`` the rest of the decision (path check and rules),
    ``upstream_ms`` from sending to the backend until its response headers arrived
    (``None`` when not forwarded), ``total_ms`` from receiving the request to the
    last byte of the response. ``bytes_in``/``bytes_out`` count body bytes from the
    caller and to the caller. ``notes`` say what the proxy did that a reader might
    not expect (an additional header omitted for a missing claim, a response cut
    short because the backend or the caller went away).
    """

    time: float
    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    status: int
    reason: str
    deciding_rule: str | None
    explanation: Explanation
    auth_ms: float = 0.0
    rules_ms: float = 0.0
    upstream_ms: float | None = None
    total_ms: float = 0.0
    subject: str | None = None
    expires_at: int | None = None
    upstream_status: int | None = None
    bytes_in: int = 0
    bytes_out: int = 0
    preflight: bool = False
    notes: tuple[str, ...] = ()
    #: The exchange as the caller saw it, for the TUI's Request and Response tabs.
    #: Filled only when the proxy records exchanges (``ProxyApp.record_exchange``);
    #: otherwise empty. Header names are lower-case and values redacted (the caller's
    #: headers as received; the response headers the caller got). ``response_preview``
    #: is the start of a JSON response body (at most ``PREVIEW_BYTES``), redacted;
    #: None when the body is not JSON or not recorded. ``response_truncated``: the
    #: body was longer than the preview.
    request_headers: tuple[tuple[str, str], ...] = ()
    response_headers: tuple[tuple[str, str], ...] = ()
    response_preview: str | None = None
    response_truncated: bool = False
    #: Which proxy answered when ``rrdev up`` serves several profiles on one port (its
    #: alias; see ``rrdev.core.aliases``); None when one profile is served, and for the
    #: refusals of a request that named no profile (421 ``alias_unknown``).
    alias: str | None = None
    #: The request body the proxy forwarded (exchange records only; the TUI replays
    #: it): the first ``REQUEST_BODY_BYTES`` as text, secret-named JSON or form fields
    #: and the caller's secret values redacted. None when there was none or the proxy
    #: did not read it (a refused request's body is never read).
    request_body: str | None = None
    request_body_truncated: bool = False

    @property
    def forwarded(self) -> bool:
        """Whether the backend was asked (and answered)."""
        return self.upstream_status is not None

    def to_dict(self) -> dict[str, Any]:
        """One JSONL line of ``rrdev up --log-file``; embeds the explanation's to_dict."""
        out = {
            f.name: _plain(getattr(self, f.name))
            for f in dataclasses.fields(self)
            if f.name != "explanation"
        }
        out["explanation"] = self.explanation.to_dict()
        return out


#: A fast-lane record copy's own fields, in this order (``record_copy``); the rest
#: comes from its template (``rrdev.servers.proxy.fastrecords``).
COPY_FIELDS = (
    "time",
    "status",
    "rules_ms",
    "upstream_ms",
    "total_ms",
    "bytes_out",
    "response_headers",
    "response_preview",
    "response_truncated",
)


def record_copy(fixed: Mapping[str, Any], fields: tuple[Any, ...]) -> RequestRecord:
    """The record of a template's fixed fields and one exchange's ``COPY_FIELDS``:
    forwarded (``upstream_status`` is ``status``), its token a cache hit (``auth_ms``
    0). Built once here whether the proxy hands the record on or the TUI rebuilds it
    from what its proxy process sent (the template once, then these fields)."""
    record = RequestRecord.__new__(RequestRecord)
    state = record.__dict__
    state.update(fixed)
    state.update(zip(COPY_FIELDS, fields, strict=True))
    state["upstream_status"] = fields[1]
    state["auth_ms"] = 0.0
    return record
