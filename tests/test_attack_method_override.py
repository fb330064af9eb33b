"""Method overrides: the rules judge POST, the backend runs DELETE.

Express ``method-override``, Laravel, Rails, Symfony and OData services run the method
named by ``X-HTTP-Method-Override`` / ``X-HTTP-Method`` / ``X-Method-Override`` or a
``_method`` query parameter. The seed's scope gate denies DELETE without
``delete:resources``; a POST that says "I am a DELETE" must not slip past it. By default
such a request is refused (400 ``method_override_refused``); with
``proxy.method_override = "judge"`` the rules judge the overridden method too.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from proxy_support import (
    Backend,
    RawResponse,
    header_values,
    mint,
    profile_text,
    raw_request,
    run_proxy,
)
from typer.testing import CliRunner

from rrdev.cli.app import app

pytestmark = pytest.mark.usefixtures("keyset")

READER = "read:products"  # no delete:resources: the scope gate denies its DELETEs
PATH = "/api/v1/products/1"


def write_profile(tmp_path: Path, backend: Backend, proxy: str = "") -> Path:
    path = tmp_path / "rrdev.toml"
    path.write_text(profile_text(backend.url, proxy=proxy))
    return path


async def send(
    tmp_path: Path,
    backend: Backend,
    method: str,
    target: str,
    headers: list[tuple[str, str]],
    *,
    scope: str = READER,
    proxy: str = "",
) -> RawResponse:
    authorization = ("Authorization", f"Bearer {mint(scope=scope)}")
    async with run_proxy(write_profile(tmp_path, backend, proxy)) as running:
        return await raw_request(running.port, method, target, [authorization, *headers])


def assert_refused(answer: RawResponse, backend: Backend, status: int, reason: str) -> dict:
    body = answer.json()
    assert (answer.status, body["reason"]) == (status, reason)
    assert set(body) == {"status", "reason", "message", "hint", "trace"}
    assert answer.header("requestrocket-proxy-code") == "proxy-access-denied"
    assert backend.hits == 0 and backend.seen == []
    return body


OVERRIDES = [
    pytest.param("POST", PATH, [("X-HTTP-Method-Override", "DELETE")], id="x-http-method-override"),
    pytest.param("POST", PATH, [("X-HTTP-Method", "DELETE")], id="x-http-method"),
    pytest.param("POST", PATH, [("X-Method-Override", "DELETE")], id="x-method-override"),
    pytest.param("POST", PATH, [("x-http-method-override", "delete")], id="lower-case"),
    pytest.param("POST", PATH, [("X-HTTP-Method-Override", " DELETE ")], id="padded"),
    pytest.param("GET", PATH, [("X-HTTP-Method-Override", "DELETE")], id="on-a-get"),
    pytest.param("POST", PATH, [("X-HTTP-Method-Override", "DELETE, POST")], id="a-list"),
    pytest.param(
        "POST",
        PATH,
        [("X-HTTP-Method-Override", "POST"), ("X-HTTP-Method-Override", "DELETE")],
        id="second-header",
    ),
    pytest.param("POST", f"{PATH}?_method=DELETE", [], id="query-param"),
    pytest.param("POST", f"{PATH}?a=1&_method=delete", [], id="query-param-lower-case"),
    pytest.param("POST", f"{PATH}?%5Fmethod=DELETE", [], id="query-param-encoded-name"),
    pytest.param("POST", f"{PATH}?_METHOD=DELETE", [], id="query-param-upper-case-name"),
    pytest.param("POST", f"{PATH}?a=1;_method=DELETE", [], id="query-param-after-semicolon"),
    pytest.param("POST", f"{PATH}?_method=%20DELETE", [], id="query-param-padded-value"),
]


@pytest.mark.parametrize(("method", "target", "headers"), OVERRIDES)
async def test_an_override_naming_another_method_is_refused(
    tmp_path: Path, backend: Backend, method: str, target: str, headers: list[tuple[str, str]]
) -> None:
    answer = await send(tmp_path, backend, method, target, headers)
    body = assert_refused(answer, backend, 400, "method_override_refused")
    assert f"the request is {method} but" in body["message"]
    assert "method_override = 'judge'" in body["hint"]


@pytest.mark.parametrize(
    ("target", "headers"),
    [
        (PATH, [("X-HTTP-Method-Override", "post")]),  # the same method: nothing to judge
        (PATH, [("X-HTTP-Method-Override", "")]),  # empty: frameworks ignore it
        (f"{PATH}?_method=POST", []),
        (f"{PATH}?x_method=DELETE&method=DELETE", []),  # not the override parameter
    ],
)
async def test_an_override_that_changes_nothing_is_forwarded_as_sent(
    tmp_path: Path, backend: Backend, target: str, headers: list[tuple[str, str]]
) -> None:
    authorization = ("Authorization", f"Bearer {mint(scope=READER)}")
    override = ("X-HTTP-Method-Override", "DELETE")
    async with run_proxy(write_profile(tmp_path, backend)) as running:
        answer = await raw_request(running.port, "POST", target, [authorization, *headers])
        changed = await raw_request(running.port, "POST", target, [authorization, override])
    assert answer.status == 200, answer.body
    assert changed.status == 400
    (seen,) = backend.seen
    assert seen["method"] == "POST"
    assert seen["raw_path"] == target
    for name, value in headers:
        assert header_values(seen, name) == [value]


JUDGE = 'method_override = "judge"'


async def test_judge_mode_lets_the_scope_gate_deny_the_overridden_method(
    tmp_path: Path, backend: Backend
) -> None:
    headers = [("X-HTTP-Method-Override", "DELETE")]
    answer = await send(tmp_path, backend, "POST", PATH, headers, proxy=JUDGE)
    body = assert_refused(answer, backend, 403, "rule_denied")
    assert "'scope-gate-delete' denies DELETE" in body["message"]
    assert "X-HTTP-Method-Override on a POST" in body["message"]
    assert body["hint"].startswith("Scope gate")
    assert 'error="insufficient_scope"' in (answer.header("www-authenticate") or "")


async def test_judge_mode_forwards_the_override_when_every_method_is_allowed(
    tmp_path: Path, backend: Backend
) -> None:
    scope = f"{READER} delete:resources"
    headers = [("X-HTTP-Method-Override", "DELETE")]
    target = f"{PATH}?_method=DELETE"
    answer = await send(tmp_path, backend, "POST", target, headers, scope=scope, proxy=JUDGE)
    assert answer.status == 200, answer.body
    (seen,) = backend.seen
    assert (seen["method"], seen["raw_path"]) == ("POST", target)
    assert header_values(seen, "x-http-method-override") == ["DELETE"]


async def test_judge_mode_still_refuses_a_value_that_is_not_one_method(
    tmp_path: Path, backend: Backend
) -> None:
    scope = f"{READER} delete:resources"
    headers = [("X-HTTP-Method-Override", "DELETE, GET")]
    answer = await send(tmp_path, backend, "POST", PATH, headers, scope=scope, proxy=JUDGE)
    body = assert_refused(answer, backend, 400, "method_override_refused")
    assert "send one method name" in body["hint"]


async def test_the_refusal_comes_before_authentication(tmp_path: Path, backend: Backend) -> None:
    async with run_proxy(write_profile(tmp_path, backend)) as running:
        headers = [("X-HTTP-Method-Override", "DELETE")]
        answer = await raw_request(running.port, "POST", PATH, headers)
    assert_refused(answer, backend, 400, "method_override_refused")
    assert [r.reason for r in running.records] == ["method_override_refused"]


def test_a_profile_with_an_unknown_policy_is_refused_at_load(tmp_path: Path) -> None:
    from rrdev.core.errors import ProfileError
    from rrdev.core.profile import load_profile

    path = tmp_path / "rrdev.toml"
    path.write_text(profile_text("http://127.0.0.1:9", proxy='method_override = "allow"'))
    with pytest.raises(ProfileError) as refused:
        load_profile(path)
    assert refused.value.key == "proxy.method_override"
    assert "expected one of 'refuse', 'judge', got 'allow'" in str(refused.value)
    assert refused.value.line is not None and str(path) in str(refused.value.file)


def test_explain_gives_the_proxys_answer(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    path = tmp_path / "rrdev.toml"
    path.write_text(profile_text("http://127.0.0.1:9"))
    args = ["explain", "-p", str(path), "--json", "-X", "POST", "--path", PATH]
    result = CliRunner().invoke(app, [*args, "-H", "X-HTTP-Method-Override: DELETE"])
    assert result.exit_code == 1
    assert json.loads(result.stdout)["reason"] == "method_override_refused"
    result = CliRunner().invoke(app, [*args, "--query", "_method=DELETE"])
    assert json.loads(result.stdout)["status"] == 400
