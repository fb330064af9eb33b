"""One evaluator: the fast lane declines or answers exactly as the full path does.

For generated requests (methods, plain and hostile paths, queries, headers with
duplicates, odd case, odd bytes, framing and hop-by-hop names, good, bad and unknown
tokens) against profiles of every shape the lane compiles for (jwtVerify and none;
bearer, none and header api_key target credentials; header filters, additional headers
from claims, ``forward_authorization_as``, allowed hosts, deny rules, a query rule),
``FastLane.plan`` either returns None or the same status (200), reason ("allowed"),
upstream URL, upstream header list and ``requestrocket-proxy-message`` as the full
path: ``explain.decide`` and ``headers._upstream_headers`` on the same scope.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from fuzzing import examples
from hypothesis import given
from hypothesis import strategies as st
from proxy_support import SEED_RULES, mint, profile_text

from rrdev.core.explain import IncomingRequest, decide
from rrdev.core.profile import load_profile
from rrdev.servers.proxy.answers import _framing_problem, _header_text
from rrdev.servers.proxy.flow import _asks_websocket, _header_texts
from rrdev.servers.proxy.forward import _forward_problem
from rrdev.servers.proxy.headers import _upstream_headers, _upstream_query
from rrdev.servers.proxy.request import REQUEST_TARGET, _target_text
from rrdev.servers.proxy.state import Overrides, _build_state, _State

_EXTRA_RULES = """
[[proxy.rules]]
id = "no-admin"
effect = "deny"
path = "^/admin"

[[target.rules]]
id = "no-debug-query"
effect = "deny"
query = [{ name = "^debug$" }]
"""

_PROFILES = {
    "jwt-bearer": dict(credential='auth_type = "bearer"\ntoken = "backend-secret"\n'),
    "jwt-rich": dict(
        credential='auth_type = "none"\n',
        proxy=(
            'allowed_hosts = ["api.test"]\n'
            'header_filters = ["X-Debug", "X-Forwarded-Port"]\n'
            'forward_authorization_as = "X-Original-Authorization"\n'
            "forward_authorization = false\n"
            '[proxy.additional_headers]\n"X-User" = "{claims.sub}"\n'
            '"X-Scope" = "{claims.scope}"\n"X-Static" = "fixed"\n'
        ),
        rules=SEED_RULES + _EXTRA_RULES,
    ),
    "none-forwarded": dict(
        credential='auth_type = "none"\n',
        proxy_credential='auth_type = "none"\n',
        rules='[[proxy.rules]]\nid = "api"\neffect = "allow"\npath = "^/a"\n',
    ),
    "none-api-key": dict(
        credential='auth_type = "api_key"\nheader = "X-Api-Key"\napi_key = "k-123"\n',
        proxy_credential='auth_type = "none"\n',
        rules=SEED_RULES,
    ),
}


@pytest.fixture(scope="module")
def states(tmp_path_factory: pytest.TempPathFactory, _keyset_home: Path) -> dict[str, Any]:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("RRDEV_HOME", str(_keyset_home))
        good = mint(scope="read:products", subject="user-1")
        deleter = mint(scope="read:products delete:resources", subject="user-2")
        expired = mint(expires_in=-60)
        built: dict[str, Any] = {"tokens": {"good": good, "deleter": deleter}}
        built["tokens"]["expired"] = expired
        built["tokens"]["unverified"] = mint(subject="never-seen")  # valid, not cached
        built["tokens"]["bad"] = good[:-4] + ("AAAA" if not good.endswith("AAAA") else "BBBB")
        folder = tmp_path_factory.mktemp("lane")
        for name, parts in _PROFILES.items():
            path = folder / f"{name}.toml"
            path.write_text(profile_text("http://127.0.0.1:9/base", **parts))
            state = _build_state(load_profile(path), Overrides(offline=True), None)
            assert state.fast is not None, name
            built[name] = state
            if state.verifier is not None:
                for token in (good, deleter):
                    asyncio.run(state.verifier.verify(token, _now()))
    return built


def _now() -> float:
    import time

    return time.time()


# ------------------------------------------------------------------ generated requests

_METHODS = ["GET", "GET", "POST", "DELETE", "OPTIONS", "get", "HEAD"]
_PATHS = [
    b"/api/v1/products",
    b"/a",
    b"/a/b/",
    b"/",
    b"/admin/x",
    b"/a/../admin",
    b"/a/./b",
    b"/a/%2e%2e/admin",
    b"/a%2Fb",
    b"/a;x=1",
    b"//evil",
    b"/a%20b",
    b"/a\xc3\xa4",
    b"/a~b-c_d.e",
    b"/a/.",
    b"*",
    b"http://evil/a",
]
_QUERIES = [b"", b"", b"", b"x=1", b"debug=1", b"_method=DELETE", b"access_token=abc"]
_HEADER_NAMES = [
    b"accept",
    b"x-debug",
    b"x_user",
    b"X-Upper",
    b"x-forwarded-for",
    b"forwarded",
    b"x-forwarded-port",
    b"x-forwarded-proto",
    b"x-real-ip",
    b"x-original-url",
    b"x-http-method-override",
    b"connection",
    b"keep-alive",
    b"te",
    b"upgrade",
    b"transfer-encoding",
    b"content-length",
    b"expect",
    b"x-original-authorization",
    b"x-api-key",
    b"x-user",
    b"proxy-authorization",
    b"cookie",
]
_HEADER_VALUES = [
    b"*/*",
    b"1",
    b"0",
    b"keep-alive",
    b"close",
    b"x-debug",
    b"accept, close",
    b"websocket",
    b"chunked",
    b"DELETE",
    b"10.0.0.1",
    b"for=1.2.3.4",
    b"caf\xc3\xa9",
    b"\x80",
    b"a\x01b",
    b"",
]
_HOSTS = [b"127.0.0.1:8787", b"localhost", b"api.test", b"evil.example", b"", b"[::1]:1"]


def _often(common: list[Any], rare: list[Any]) -> st.SearchStrategy[Any]:
    """Mostly the common case (so the lane is taken), sometimes the unusual one."""
    return st.sampled_from(common * 3 + rare)


_PLAIN_PATHS = [b"/api/v1/products", b"/a", b"/a/b/", b"/", b"/admin/x", b"/a~b-c_d.e"]
_BENIGN = [(b"accept", b"*/*"), (b"user-agent", b"wrk"), (b"x-debug", b"1"), (b"cookie", b"a=1")]


@st.composite
def scopes(draw: st.DrawFn, tokens: dict[str, str]) -> dict[str, Any]:
    path = draw(_often(_PLAIN_PATHS, _PATHS))
    query = draw(_often([b""], _QUERIES))
    host = _HOSTS[0]
    hosts = draw(_often([[host], [b"api.test"]], [[], [host, host], *([h] for h in _HOSTS)]))
    headers: list[tuple[bytes, bytes]] = [(b"host", h) for h in hosts]
    good = f"Bearer {tokens['good']}"
    odd_auths = [
        *(f"Bearer {t}" for t in tokens.values()),
        f"bearer {tokens['good']}",
        f"Bearer  {tokens['good']} ",
        f"BEARER\t{tokens['good']}",
        "Basic dXNlcjpwdw==",
        "Bearer",
        "token-without-scheme",
    ]
    auths = draw(_often([[good]], [[], [good, good], *([a] for a in odd_auths)]))
    headers += [(b"authorization", a.encode()) for a in auths]
    hostile = st.tuples(st.sampled_from(_HEADER_NAMES), st.sampled_from(_HEADER_VALUES))
    benign = st.sampled_from(_BENIGN)
    headers += draw(st.lists(st.one_of(benign, benign, benign, hostile), max_size=4))
    draw(st.randoms()).shuffle(headers)
    target = path + (b"?" + query if query else b"")
    sent = draw(_often([target], [b"http://evil" + target, None]))
    scope: dict[str, Any] = {
        "type": "http",
        "method": draw(_often(["GET"], _METHODS)),
        "scheme": "http",
        "path": path.decode("latin-1"),
        "raw_path": path,
        "query_string": query,
        "headers": headers,
        "client": (draw(st.sampled_from(["127.0.0.1", "10.1.2.3", "::1"])), 50000),
        "server": ("127.0.0.1", 8787),
    }
    if sent is not None:
        scope["extensions"] = {REQUEST_TARGET: sent}
    return scope


# ------------------------------------------------------------------ the full path


async def _full_path(state: _State, scope: dict[str, Any], now: float) -> dict[str, Any]:
    """What ``ProxyApp._answer`` would send upstream (or answer), step by step."""
    raw_path, raw_query = _target_text(scope)
    refused = _framing_problem(scope["headers"])
    if refused is not None:
        return {"status": refused.status, "reason": refused.reason}
    headers = _header_texts(scope["headers"])
    if _asks_websocket(headers):
        return {"status": 400, "reason": "websocket"}
    expl = await decide(
        state.profile,
        IncomingRequest(scope["method"], raw_path, raw_query, tuple(headers)),
        state.verifier,
        now=now,
        redactor=state.redactor,
        static=state.static,
    )
    if expl.allowed:
        expl = _forward_problem(state, expl) or expl
    if not expl.allowed:
        return {"status": expl.status, "reason": expl.reason}
    claims = expl.verification.claims if expl.verification else None
    return {
        "status": expl.status,
        "reason": expl.reason,
        "method": scope["method"],
        "url": str(state.upstream.url(raw_path, _upstream_query(state, raw_query))),
        "headers": _upstream_headers(state, scope, headers, claims, [], None),
        "message": _header_text(expl.message),
    }


def _lane(state: _State, scope: dict[str, Any], now: float) -> dict[str, Any] | None:
    assert state.fast is not None
    planned = state.fast.plan(scope, now)
    if planned is None:
        return None
    method, url, headers, message = planned
    return {
        "status": 200,
        "reason": "allowed",
        "method": method,
        "url": str(url),
        "headers": headers,
        "message": message,
    }


def _check(state: _State, scope: dict[str, Any]) -> bool:
    now = _now()
    lane = _lane(state, scope, now)
    full = asyncio.run(_full_path(state, scope, now))
    if lane is not None:
        assert lane == full
    return lane is not None


_PROFILE_NAMES = sorted(_PROFILES)


@pytest.mark.parametrize("name", _PROFILE_NAMES)
def test_the_lane_declines_or_answers_as_the_full_path(states: dict[str, Any], name: str) -> None:
    state = states[name]

    @given(scopes(states["tokens"]))
    @examples(1.0 / len(_PROFILE_NAMES) * 2)
    def run(scope: dict[str, Any]) -> None:
        _check(state, scope)

    run()


def _plain_get(token: str | None, host: bytes = b"127.0.0.1:8787") -> dict[str, Any]:
    headers = [(b"host", host), (b"accept", b"*/*"), (b"user-agent", b"wrk")]
    if token is not None:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return {
        "type": "http",
        "method": "GET",
        "scheme": "http",
        "path": "/api/v1/products",
        "raw_path": b"/api/v1/products",
        "query_string": b"",
        "headers": headers,
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8787),
        "extensions": {REQUEST_TARGET: b"/api/v1/products"},
    }


@pytest.mark.parametrize("name", _PROFILE_NAMES)
def test_the_common_request_takes_the_lane(states: dict[str, Any], name: str) -> None:
    state = states[name]
    token = states["tokens"]["good"] if state.verifier is not None else None
    host = b"api.test" if name == "jwt-rich" else b"127.0.0.1:8787"
    assert _check(state, _plain_get(token, host))  # planned, and equal to the full path
    assert _check(state, _plain_get(token, host))  # remembered verdict: still equal


def test_tokens_the_cache_does_not_hold_take_the_full_path(
    states: dict[str, Any], keyset: Path
) -> None:
    state = states["jwt-bearer"]
    tokens = states["tokens"]
    for kind in ("expired", "bad"):
        assert state.fast.plan(_plain_get(tokens[kind]), _now()) is None, kind
    fresh = mint(subject="valid-but-never-verified")
    assert state.fast.plan(_plain_get(fresh), _now()) is None
    assert state.fast.plan(_plain_get(None), _now()) is None
    # A cached token past its exp is looked up on every request, never remembered.
    assert state.fast.plan(_plain_get(tokens["good"]), _now() + 7200) is None
