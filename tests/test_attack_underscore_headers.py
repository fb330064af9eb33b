"""Header-name twins: ``X_User_Id`` is ``X-User-Id`` to CGI, WSGI, PHP and Rack.

Those backends read every header as ``HTTP_<NAME>`` with ``-`` turned into ``_``, so a
name that differs only by ``_`` slips past a rule written for the ``-`` name, forges a
header rrdev sets (an ``additional_headers`` claim, the api-key header) or an override
rrdev refuses. rrdev drops every header name containing ``_`` before the rules run, as
nginx does by default: no rule sees it, and the backend never receives it.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from proxy_support import (
    Backend,
    RawResponse,
    bearer,
    header_values,
    mint,
    profile_text,
    raw_request,
    run_proxy,
)
from typer.testing import CliRunner

from rrdev.cli.app import app
from rrdev.core.profile import load_profile, profile_warnings

pytestmark = pytest.mark.usefixtures("keyset")

PATH = "/api/v1/products"
#: A deny rule written for the "-" name: internal debug output must not be requested.
NO_DEBUG = """
[[proxy.rules]]
id = "no-debug-header"
effect = "deny"
headers = [{ name = "^x-debug$" }]
"""


async def send(
    tmp_path: Path,
    backend: Backend,
    headers: list[tuple[str, str]],
    *,
    proxy: str = "",
    credential: str = "",
    rules: str = "",
) -> tuple[RawResponse, list]:
    from proxy_support import SEED_RULES

    path = tmp_path / "rrdev.toml"
    text = profile_text(backend.url, proxy=proxy, credential=credential, rules=SEED_RULES + rules)
    path.write_text(text)
    async with run_proxy(path) as running:
        sent = [*bearer(mint()).items(), *headers]
        answer = await raw_request(running.port, "GET", PATH, sent)
    return answer, running.records


def names_seen(echo: dict) -> list[str]:
    return [name.lower() for name, _ in echo["headers"]]


@pytest.mark.parametrize("name", ["X_Debug", "x_debug", "X-Debug_", "X_Debug-"])
async def test_a_twin_of_a_denied_header_is_dropped_not_forwarded(
    tmp_path: Path, backend: Backend, name: str
) -> None:
    answer, records = await send(tmp_path, backend, [(name, "1")], rules=NO_DEBUG)
    # The rule never saw the twin (so it did not deny), and the backend never gets it.
    assert answer.status == 200, answer.body
    (seen,) = backend.seen
    assert not any("_" in n for n in names_seen(seen))
    assert header_values(seen, "x-debug") == []
    assert f"dropped the caller's headers: {name.lower()}" in records[0].notes


async def test_the_dash_name_is_still_judged(tmp_path: Path, backend: Backend) -> None:
    headers = [("X-Debug", "1"), ("X_Debug", "1")]
    answer, records = await send(tmp_path, backend, headers, rules=NO_DEBUG)
    assert (answer.status, answer.json()["reason"]) == (403, "rule_denied")
    assert backend.seen == []
    assert [h for h in records[0].explanation.request.headers if "debug" in h[0]] == [
        ("x-debug", "1")
    ]


async def test_a_twin_cannot_forge_a_header_rrdev_sets_from_the_token(
    tmp_path: Path, backend: Backend
) -> None:
    proxy = 'additional_headers = { X-User-Id = "{claims.sub}" }'
    headers = [("X_User_Id", "admin"), ("X-User_Id", "admin")]
    answer, _ = await send(tmp_path, backend, headers, proxy=proxy)
    assert answer.status == 200
    (seen,) = backend.seen
    assert header_values(seen, "x-user-id") == ["user-1@clients"]
    assert "admin" not in json.dumps(seen["headers"])


async def test_a_twin_cannot_shadow_the_api_key_header(tmp_path: Path, backend: Backend) -> None:
    credential = 'auth_type = "api_key"\napi_key = "backend-key-42"\nheader = "X-Api-Key"\n'
    answer, _ = await send(tmp_path, backend, [("X_Api_Key", "forged")], credential=credential)
    assert answer.status == 200
    (seen,) = backend.seen
    assert header_values(seen, "x-api-key") == ["backend-key-42"]
    assert header_values(seen, "x_api_key") == []


async def test_a_twin_method_override_is_dropped_not_refused(
    tmp_path: Path, backend: Backend
) -> None:
    answer, _ = await send(tmp_path, backend, [("X_HTTP_Method_Override", "DELETE")])
    assert answer.status == 200
    (seen,) = backend.seen
    assert seen["method"] == "GET"
    assert not any("_" in n for n in names_seen(seen))


async def test_profile_headers_with_underscores_are_rrdevs_own_and_sent(
    tmp_path: Path, backend: Backend
) -> None:
    proxy = 'additional_headers = { X_Static = "from-the-profile" }'
    headers = [("X_Static", "from-the-caller"), ("X_Other", "from-the-caller")]
    answer, _ = await send(tmp_path, backend, headers, proxy=proxy)
    assert answer.status == 200
    (seen,) = backend.seen
    assert header_values(seen, "x_static") == ["from-the-profile"]
    assert header_values(seen, "x_other") == []


def test_explain_does_not_judge_a_twin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    path = tmp_path / "rrdev.toml"
    rules = '[[proxy.rules]]\nid = "tenant"\neffect = "allow"\nheaders = [{ name = "tenant" }]\n'
    path.write_text(
        profile_text("http://127.0.0.1:9", proxy_credential='auth_type = "none"\n', rules=rules)
    )
    args = ["explain", "-p", str(path), "--json"]
    twin = CliRunner().invoke(app, [*args, "-H", "X_Tenant: acme"])
    dash = CliRunner().invoke(app, [*args, "-H", "X-Tenant: acme"])
    assert json.loads(twin.stdout)["reason"] == "default_denied"
    assert json.loads(twin.stdout)["request"]["headers"] == []
    assert json.loads(dash.stdout)["reason"] == "allowed"


def test_validate_warns_about_a_rule_written_for_an_underscore_name(tmp_path: Path) -> None:
    path = tmp_path / "rrdev.toml"
    rules = '[[proxy.rules]]\nid = "legacy"\neffect = "deny"\nheaders = [{ name = "^x_legacy$" }]\n'
    path.write_text(profile_text("http://127.0.0.1:9", rules=rules))
    (warning,) = [w for w in profile_warnings(load_profile(path)) if "'_'" in w.message]
    assert warning.key == "proxy.rules[0].headers[0].name"
    lines = path.read_text().splitlines()
    assert warning.line == lines.index('headers = [{ name = "^x_legacy$" }]') + 1
