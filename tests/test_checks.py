"""`rrdev check`: [[checks]] as a dry run, through a live proxy, against a running one.

Real parts throughout: tokens from the local keyset ($RRDEV_HOME in a temporary
directory), the real proxy (uvicorn on 127.0.0.1:0) and the echo backend over loopback,
`rrdev up --offline` as a child process, JUnit parsed back with ElementTree.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import httpx
import pytest
from proxy_support import (
    AUDIENCE,
    ISSUER,
    SEED_RULES,
    Backend,
    free_port,
    mint,
    profile_text,
    run_proxy,
    start_up,
)
from typer.testing import CliRunner

from rrdev.checks.against import outcome_from_response
from rrdev.checks.engine import run_checks
from rrdev.checks.model import CheckOptions, CheckRun, Expectation, Outcome
from rrdev.cli.app import app
from rrdev.core.errors import NetworkError, ProfileError, RrdevError
from rrdev.core.profile import load_profile, parse_profile

pytestmark = pytest.mark.usefixtures("keyset")

ROOT = Path(__file__).resolve().parent.parent
AUTH0 = ROOT / "profiles" / "auth0.toml"

SEED_CHECKS = """
[[checks]]
name = "a reader can list products"
path = "/api/v1/products"
token = { mint = { scope = "read:products" } }
expect = { status = 200, rule = "allow-authenticated" }

[[checks]]
name = "DELETE without delete:resources is refused"
method = "DELETE"
path = "/api/v1/products/1"
token = { mint = { scope = "read:products" } }
expect = { status = 403, reason = "rule_denied", rule = "scope-gate-delete" }

[[checks]]
name = "an expired token gets 401"
path = "/api/v1/products"
token = { mint = { scope = "read:products", expires_in = -60 } }
expect = { status = 401, reason = "token_expired" }

[[checks]]
name = "no token gets 401"
path = "/api/v1/products"
token = "none"
expect = { status = 401, reason = "token_missing" }

[[checks]]
name = "the backend answers 404 for a missing page"
path = "/status/404"
query = { page = "2" }
token = { mint = { scope = "read:products" } }
expect = 404
"""


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("RRDEV_PROFILE", "AUTH0_CLIENT_ID", "AUTH0_CLIENT_SECRET", "CHECK_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.setenv("RRDEV_CACHE_DIR", str(tmp_path / "token-cache"))


def write_profile(
    tmp_path: Path,
    *,
    base_url: str = "http://127.0.0.1:9",
    checks: str = SEED_CHECKS,
    rules: str = SEED_RULES,
    extra: str = "",
    name: str = "rrdev.toml",
    **options: Any,
) -> Path:
    path = tmp_path / name
    path.write_text(profile_text(base_url, rules=rules, **options) + extra + checks)
    return path


def cli(*args: str) -> Any:
    return CliRunner().invoke(app, ["check", *args])


def cli_json(*args: str) -> tuple[int, dict[str, Any]]:
    result = cli(*args, "--json")
    return result.exit_code, json.loads(result.stdout)


def by_name(run: CheckRun) -> dict[str, Any]:
    return {r.name: r for r in run.results}


def junit_cases(path: Path) -> list[ET.Element]:
    return ET.parse(path).getroot().findall("./testsuite/testcase")


# ------------------------------------------------------------------ dry run


async def test_dry_run_decides_every_check_with_the_engine(tmp_path: Path) -> None:
    profile = load_profile(write_profile(tmp_path))
    run = await run_checks([profile], CheckOptions(offline=True))
    assert run.passed and run.exit_code == 0, [r.problems for r in run.failed]
    results = by_name(run)
    refused = results["DELETE without delete:resources is refused"].outcome
    assert (refused.status, refused.reason) == (403, "rule_denied")
    assert refused.rule == "scope-gate-delete"
    assert refused.explanation is not None and "scope-gate-delete" in refused.explanation.message
    expired = results["an expired token gets 401"].outcome
    assert (expired.status, expired.reason, expired.deciding) == (401, "token_expired", ())
    backend_only = results["the backend answers 404 for a missing page"]
    assert backend_only.outcome.granted and backend_only.target == "/status/404?page=2"
    assert any("checked only with --live or --against" in n for n in backend_only.notes)
    (report,) = run.reports
    assert [c.name for c in report.coverage if c.exercised] == [
        "allow-authenticated",
        "scope-gate-delete",
    ]


READER = '{ mint = { scope = "read:products" } }'
CASES = [
    # (token, method, path, expect, passes, problem fragment)
    ('{ mint = { scope = "read:products", aud = "my-client-id" } }', "GET", "/", 401, True, ""),
    (
        '{ mint = { scope = "read:products", aud = "my-client-id" } }',
        "GET",
        "/",
        '{ reason = "token_expired" }',
        False,
        "expected reason token_expired, got audience_mismatch",
    ),
    ('{ mint = { scope = "delete:resources" } }', "DELETE", "/x", '"allowed"', True, ""),
    (READER, "DELETE", "/x", '"allowed"', False, "expected allowed"),
    ("{ mint = { not_before = 600 } }", "GET", "/", '{ reason = "token_not_yet_valid" }', True, ""),
    ('{ mint = { claims = { scope = "delete:resources" } } }', "DELETE", "/", 200, True, ""),
    ('"none"', "GET", "/", '{ status = 403, rule = "scope-gate-delete" }', False, "expected 403"),
    ('"not-a-jwt"', "GET", "/", '{ status = 401, reason = "token_malformed" }', True, ""),
    ('"none"', "GET", "/a/%2e%2e/b", '{ status = 400, reason = "ambiguous_path" }', True, ""),
    (
        '{ mint = { scope = "read:products" } }',
        "DELETE",
        "/x",
        '{ rule = "allow-authenticated" }',
        False,
        "expected rule allow-authenticated to decide, got scope-gate-delete",
    ),
]


@pytest.mark.parametrize(("token", "method", "path", "expect", "passes", "problem"), CASES)
async def test_dry_run_expectations(
    tmp_path: Path, token: str, method: str, path: str, expect: Any, passes: bool, problem: str
) -> None:
    checks = (
        f'[[checks]]\nname = "case"\nmethod = "{method}"\npath = "{path}"\n'
        f"token = {token}\nexpect = {expect}\n"
    )
    profile = load_profile(write_profile(tmp_path, checks=checks))
    run = await run_checks([profile], CheckOptions(offline=True))
    (result,) = run.results
    assert result.passed is passes, (result.problems, result.outcome)
    assert problem in " ".join(result.problems)


async def test_auth_token_offline_is_minted_from_the_auth_scope(tmp_path: Path) -> None:
    extra = (
        '[auth]\ndomain = "tenant.example.auth0.com"\nclient_id = "${AUTH0_CLIENT_ID}"\n'
        'client_secret = "${AUTH0_CLIENT_SECRET}"\n'
        f'audience = "{AUDIENCE}"\nscope = "read:products delete:resources"\n'
    )
    checks = (
        '[[checks]]\nname = "the M2M app may delete"\nmethod = "DELETE"\npath = "/x"\n'
        'token = "auth"\nexpect = "allowed"\n'
    )
    profile = load_profile(write_profile(tmp_path, checks=checks, extra=extra))
    run = await run_checks([profile], CheckOptions(offline=True))
    assert run.passed, [r.problems for r in run.failed]
    verification = run.results[0].outcome.explanation.verification  # type: ignore[union-attr]
    assert verification is not None and verification.claims is not None
    assert verification.claims["scope"] == "read:products delete:resources"
    assert (verification.claims["iss"], verification.claims["aud"]) == (ISSUER, AUDIENCE)


def test_shipped_profiles_pass_offline_with_an_empty_environment(keyset: Path) -> None:
    profiles = sorted(str(p) for p in (ROOT / "profiles").glob("*.toml"))
    command = [sys.executable, "-m", "rrdev", "check", "--offline", *profiles]
    env = {"RRDEV_HOME": str(keyset), "NO_COLOR": "1", "COLUMNS": "200"}
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "failed" in done.stdout and " 0 failed" in done.stdout
    assert "Traceback" not in done.stderr


def test_cli_table_and_json(tmp_path: Path) -> None:
    path = str(write_profile(tmp_path))
    result = cli("--offline", path)
    assert result.exit_code == 0, result.output
    assert "DELETE without delete:resources is refused" in result.stdout
    assert "rule_denied · scope-gate-delete" in result.stdout
    assert "5 checks: 5 passed, 0 failed" in result.stdout
    code, out = cli_json("--offline", path)
    assert code == 0
    assert out["summary"] | {} == {
        "profiles": 1,
        "checks": 5,
        "passed": 5,
        "failed": 0,
        "unexercised_rules": 0,
        "require_coverage": False,
    }
    first = out["profiles"][0]["results"][1]
    assert first["got"]["rule"] == "scope-gate-delete"
    assert first["explanation"]["reason"] == "rule_denied"


def test_profile_discovery_when_no_profile_is_given(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_profile(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert cli("--offline").exit_code == 0
    monkeypatch.chdir(ROOT / "rrdev")
    result = cli("--offline")
    assert result.exit_code == 3 and "no profile given" in result.stderr


# ------------------------------------------------------------------ failures, JUnit


def broken_auth0(tmp_path: Path) -> Path:
    """profiles/auth0.toml with its scope gate broken (it gates PATCH, not DELETE): DELETE
    is now allowed. (Deleting the rule would be a load error: a check names it.)"""
    text = AUTH0.read_text()
    start = text.index('[[proxy.rules]]\nid = "scope-gate-delete"')
    gate = 'methods = ["DELETE"]'
    at = text.index(gate, start)
    broken = tmp_path / "broken.toml"
    broken.write_text(text[:at] + 'methods = ["PATCH"]' + text[at + len(gate) :])
    return broken


def test_a_broken_rule_fails_its_check_with_a_readable_explanation(tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    result = cli("--offline", str(broken_auth0(tmp_path)), "--junit", str(report))
    assert result.exit_code == 1
    out = result.stdout
    assert "✗ DELETE without delete:resources is refused" in out
    assert "expected 403, got 200 allowed" in out
    assert "expected rule scope-gate-delete to decide, got allow-authenticated" in out
    assert "allowed by proxy 'allow-authenticated'" in out  # the explanation
    assert "← deciding rule" in out  # the rule trace
    assert "1 failed" in out
    cases = junit_cases(report)
    assert len(cases) == len(load_profile(AUTH0).checks)
    assert {c.get("classname") for c in cases} == {"my-api"}
    failures = [c for c in cases if c.find("failure") is not None]
    assert [c.get("name") for c in failures] == ["DELETE without delete:resources is refused"]
    failure = failures[0].find("failure")
    assert failure is not None
    assert "expected 403" in failure.get("message", "")
    assert "allowed by proxy 'allow-authenticated'" in (failure.text or "")
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("7", "1")


def test_multiple_profiles_one_report_and_exit_code(tmp_path: Path) -> None:
    report = tmp_path / "report.xml"
    good = write_profile(tmp_path, name="good.toml")
    result = cli("--offline", str(good), str(broken_auth0(tmp_path)), "--junit", str(report))
    assert result.exit_code == 1
    assert "12 checks: 11 passed, 1 failed" in result.stdout
    root = ET.parse(report).getroot()
    assert [s.get("name") for s in root.findall("testsuite")] == ["test-proxy", "my-api"]
    assert (root.get("tests"), root.get("failures")) == ("12", "1")


# ------------------------------------------------------------------ coverage

UNUSED_RULE = """
[[proxy.rules]]
id = "admin-only"
effect = "deny"
path = { pattern = "^/admin" }
notes = "Admin area is closed"

[[proxy.rules]]
effect = "allow"
methods = ["PATCH"]
notes = "Scope gate"
"""


def test_coverage_names_unexercised_rules_and_require_coverage_fails(tmp_path: Path) -> None:
    path = str(write_profile(tmp_path, rules=SEED_RULES + UNUSED_RULE))
    result = cli("--offline", path)
    assert result.exit_code == 0, result.output
    assert "rule coverage: 2/4 rules decided at least one check" in result.stdout
    assert "proxy[2] 'admin-only' (Admin area is closed) is never exercised" in result.stdout
    assert "proxy[3] (Scope gate) is never exercised" in result.stdout
    report = tmp_path / "report.xml"
    strict = cli("--offline", path, "--require-coverage", "--junit", str(report))
    assert strict.exit_code == 1
    assert "--require-coverage: 2 rule(s) never exercised" in strict.stdout
    coverage = [c for c in junit_cases(report) if c.get("name") == "rule coverage"]
    assert len(coverage) == 1 and coverage[0].find("failure") is not None
    code, out = cli_json("--offline", path, "--require-coverage")
    assert code == 1 and out["passed"] is False
    assert out["profiles"][0]["coverage"]["unexercised"] == [
        "proxy[2] 'admin-only' (Admin area is closed)",
        "proxy[3] (Scope gate)",
    ]
    assert cli("--offline", str(AUTH0), "--require-coverage").exit_code == 0


# ------------------------------------------------------------------ exit codes 3, 4, 2


def test_profile_errors_exit_3(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text(profile_text("http://x") + '[[proxy.rules]]\neffect = "alow"\n')
    result = cli("--offline", str(bad), str(AUTH0))
    assert result.exit_code == 3
    assert ".effect: expected one of" in result.stderr and "did you mean 'allow'" in result.stderr
    assert result.stdout == "" and "Traceback" not in result.output

    typo = 'token = { mint = { scope = "a", expires = -60 } }'
    [problem] = parse_profile(profile_text("http://x") + f'[[checks]]\nname = "x"\n{typo}\n').checks
    assert problem.problem is not None and "did you mean 'expires_in'" in problem.problem.message
    assert problem.problem.key == "checks[0].token.mint.expires"

    unset = write_profile(tmp_path, checks='[[checks]]\nname = "s"\ntoken = "${CHECK_TOKEN}"\n')
    result = cli("--offline", str(unset))
    assert result.exit_code == 3
    assert "CHECK_TOKEN is not set" in result.stderr and "checks[0].token" in result.stderr

    no_auth = write_profile(tmp_path, checks='[[checks]]\nname = "a"\n', name="no-auth.toml")
    result = cli("--offline", str(no_auth))
    assert result.exit_code == 3 and "needs an [auth] section" in result.stderr


def test_unreachable_jwks_is_one_network_error_exit_4(tmp_path: Path) -> None:
    path = write_profile(tmp_path, jwks_uri=f"http://127.0.0.1:{free_port()}/jwks.json")
    result = cli(str(path))  # not --offline: the profile's own JWKS
    assert result.exit_code == 4
    assert result.stderr.count("error:") == 1
    assert "jwks_unavailable" in result.stderr and "could not get the JWKS" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--live", "--against", "http://127.0.0.1:1"], "cannot be combined"),
        (["--live", "--at", "+1h"], "--at applies to dry runs only"),
        (["--against", "http://127.0.0.1:1", "--require-coverage"], "--require-coverage"),
        (["--against", "ftp://x"], "is not an http(s) base URL"),
        (["--target", "http://127.0.0.1:1"], "--target applies to --live only"),
    ],
)
def test_usage_errors_exit_2(tmp_path: Path, args: list[str], message: str) -> None:
    result = cli(str(write_profile(tmp_path)), *args)
    assert result.exit_code == 2 and message in result.stderr


def test_env_token_and_at(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHECK_TOKEN", "Bearer " + mint(expires_in=600))
    checks = '[[checks]]\nname = "a saved token"\ntoken = "${CHECK_TOKEN}"\nexpect = "allowed"\n'
    path = str(write_profile(tmp_path, checks=checks))
    assert cli("--offline", path).exit_code == 0
    later = cli("--offline", path, "--at", "+1h")
    assert later.exit_code == 1 and "token_expired" in later.stdout


# ------------------------------------------------------------------ --live


async def test_live_runs_each_check_through_the_real_proxy(
    tmp_path: Path, backend: Backend
) -> None:
    profile = load_profile(write_profile(tmp_path))  # base_url unreachable: --target wins
    options = CheckOptions(mode="live", offline=True, target=backend.url)
    run = await run_checks([profile], options)
    assert run.passed, [(r.name, r.problems) for r in run.failed]
    results = by_name(run)
    missing = results["the backend answers 404 for a missing page"]
    assert (missing.outcome.status, missing.outcome.reason) == (404, "allowed")
    assert missing.notes == ()  # the real 404 was checked
    listed = results["a reader can list products"].outcome
    assert listed.rule == "allow-authenticated" and listed.explanation is not None
    # only the two allowed checks reached the backend, with their query as written
    assert sorted(s["raw_path"] for s in backend.seen) == ["/api/v1/products"]
    assert backend.hits == 2


async def test_live_fails_a_check_on_the_backends_real_status(
    tmp_path: Path, backend: Backend
) -> None:
    checks = (
        '[[checks]]\nname = "teapot"\npath = "/status/418"\n'
        'token = { mint = { scope = "read:products" } }\nexpect = 200\n'
    )
    profile = load_profile(write_profile(tmp_path, base_url=backend.url, checks=checks))
    dry = await run_checks([profile], CheckOptions(offline=True))
    live = await run_checks([profile], CheckOptions(mode="live", offline=True))
    assert dry.passed  # a dry run only knows it would be forwarded
    assert not live.passed
    assert live.results[0].problems == ("expected 200, got 418 (forwarded)",)


async def test_live_unreachable_target_is_one_network_error(tmp_path: Path) -> None:
    profile = load_profile(write_profile(tmp_path, base_url=f"http://127.0.0.1:{free_port()}"))
    with pytest.raises(NetworkError) as caught:
        await run_checks([profile], CheckOptions(mode="live", offline=True))
    assert caught.value.exit_code == 4
    assert "upstream_unreachable" in caught.value.message
    assert "a reader can list products" in caught.value.message  # the first, and only one


async def test_live_unset_target_credential_is_a_profile_error(
    tmp_path: Path, backend: Backend
) -> None:
    credential = 'auth_type = "bearer"\ntoken = "${BACKEND_SECRET_FOR_CHECKS}"\n'
    path = write_profile(tmp_path, base_url=backend.url, credential=credential)
    with pytest.raises(ProfileError, match="BACKEND_SECRET_FOR_CHECKS"):
        await run_checks([load_profile(path)], CheckOptions(mode="live", offline=True))
    assert backend.hits == 0


async def test_live_cli_with_junit(tmp_path: Path, backend: Backend) -> None:
    path = str(write_profile(tmp_path))
    report = tmp_path / "live.xml"
    args = ["--live", "--offline", "--target", backend.url, path, "--junit", str(report)]
    result = await asyncio.to_thread(cli, *args)  # the backend keeps serving on this loop
    assert result.exit_code == 0, result.output
    assert "(live)" in result.stdout
    cases = junit_cases(report)
    assert len(cases) == 5 and all(c.find("failure") is None for c in cases)


# ------------------------------------------------------------------ --against


async def test_against_a_running_proxy_sharing_the_keyset(tmp_path: Path, backend: Backend) -> None:
    path = write_profile(tmp_path)
    async with run_proxy(path, offline=True, target=backend.url) as proxy:
        options = CheckOptions(mode="against", against=proxy.url, offline=True)
        run = await run_checks([load_profile(path)], options)
    assert run.passed, [(r.name, r.problems) for r in run.failed]
    results = by_name(run)
    refused = results["DELETE without delete:resources is refused"].outcome
    assert (refused.reason, refused.rule, refused.traced) == (
        "rule_denied",
        "scope-gate-delete",
        True,
    )
    allowed = results["a reader can list products"]
    # The granted answer names its deciding rules in requestrocket-proxy-message: the
    # expected rule is judged, and coverage counts it (it is not "not seen deciding").
    assert allowed.outcome.granted and allowed.outcome.traced
    assert allowed.outcome.rule == "allow-authenticated" and not allowed.notes
    assert results["the backend answers 404 for a missing page"].outcome.status == 404
    report = run.reports[0]
    assert report.coverage_known is True
    decided = {c.name: c.decided for c in report.coverage}
    assert "a reader can list products" in decided["allow-authenticated"]


async def test_against_a_plain_server_compares_statuses_only(
    tmp_path: Path, backend: Backend
) -> None:
    checks = (
        '[[checks]]\nname = "ok"\npath = "/"\ntoken = "none"\nexpect = "allowed"\n'
        '[[checks]]\nname = "refused"\npath = "/"\ntoken = "none"\n'
        'expect = { status = 403, reason = "rule_denied" }\n'
    )
    profile = load_profile(write_profile(tmp_path, checks=checks))
    run = await run_checks([profile], CheckOptions(mode="against", against=backend.url))
    ok, refused = run.results
    assert ok.passed and "judged by the status" in ok.notes[0]
    assert refused.problems == ("expected 403, got 200",)
    assert "reason rule_denied not checked" in refused.notes[0]


async def test_against_an_unreachable_url_is_exit_4(tmp_path: Path) -> None:
    path = str(write_profile(tmp_path))
    url = f"http://127.0.0.1:{free_port()}"
    result = await asyncio.to_thread(cli, "--against", url, "--offline", path)
    assert result.exit_code == 4
    assert result.stderr.count("error:") == 1 and f"cannot reach {url}" in result.stderr


async def test_against_rrdev_up_offline_in_a_child_process(
    tmp_path: Path, backend: Backend, keyset: Path
) -> None:
    path = write_profile(tmp_path)
    up = await start_up(path, {"RRDEV_HOME": str(keyset)}, port=0, target=backend.url, offline=True)
    try:
        report = tmp_path / "against.xml"
        args = ["--against", up.url, "--offline", str(path), "--junit", str(report)]
        result = await asyncio.to_thread(cli, *args)
    finally:
        up.process.terminate()
        await up.finish()
    assert result.exit_code == 0, result.output
    assert "(against a running gateway)" in result.stdout
    assert len(junit_cases(report)) == 5


# ------------------------------------------------------------------ pieces


def response(status: int, body: Any = None, **headers: str) -> httpx.Response:
    request = httpx.Request("GET", "http://gateway.test/")
    if body is None:
        return httpx.Response(status, headers=headers, request=request, text="plain")
    return httpx.Response(status, headers=headers, json=body, request=request)


DENIED = {"requestrocket-proxy-code": "proxy-access-denied"}
GRANTED = {"requestrocket-proxy-code": "proxy-access-granted"}
TRACE = {"deciding": [{"scope": "proxy", "rule": "gate"}]}


@pytest.mark.parametrize(
    ("answer", "reason", "granted", "rule", "traced"),
    [
        (response(403, {"status": 403, "reason": "rule_denied", "trace": TRACE}, **DENIED),
         "rule_denied", False, "gate", True),
        (response(401, {"status": 401, "reason": "token_expired", "trace": None}, **DENIED),
         "token_expired", False, None, True),
        (response(200, {"status": 200, "reason": "backend's own"}, **GRANTED),
         "allowed", True, None, False),
        (response(502, {"status": 502, "reason": "upstream_unreachable"}, **GRANTED),
         "upstream_unreachable", True, None, True),
        (response(403, **DENIED), None, False, None, False),
        (response(403), None, None, None, False),
        (response(404, {"status": 500, "reason": "nope"}), None, None, None, False),
    ],
)  # fmt: skip
def test_outcome_from_response(
    answer: httpx.Response, reason: str | None, granted: bool | None, rule: str | None, traced: bool
) -> None:
    outcome = outcome_from_response(answer)
    assert (outcome.reason, outcome.granted, outcome.rule, outcome.traced) == (
        reason,
        granted,
        rule,
        traced,
    )


def test_expectation_and_outcome_text() -> None:
    assert str(Expectation.parse("allowed")) == "allowed"
    assert str(Expectation.parse(403)) == "403"
    full = Expectation.parse({"status": 403, "reason": "rule_denied", "rule": "gate"})
    assert str(full) == "403 rule_denied · gate"
    assert str(Expectation.parse({"rule": "gate"})) == "rule gate"
    assert str(Outcome(418, "allowed", True)) == "418 (forwarded)"
    with pytest.raises(RrdevError):
        CheckOptions(mode="against")


# ------------------------------------------------------------------ token = "auth", fetched


async def test_auth_token_is_fetched_from_an_auth0_shaped_endpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, httpx_mock: Any, keyset: Path
) -> None:
    from rrdev.core.keyset import Keyset

    monkeypatch.setenv("AUTH0_CLIENT_ID", "Zx8Qm2LkP0aB7cD9eF1gH3iJ5kL6mN4o")
    monkeypatch.setenv("AUTH0_CLIENT_SECRET", "s3cret-value")
    tenant = "https://tenant.example.auth0.com"
    extra = (
        f'[auth]\ndomain = "{tenant}"\nclient_id = "${{AUTH0_CLIENT_ID}}"\n'
        f'client_secret = "${{AUTH0_CLIENT_SECRET}}"\naudience = "{AUDIENCE}"\n'
        'scope = "read:products"\n'
    )
    checks = (
        '[[checks]]\nname = "reader"\npath = "/x"\ntoken = "auth"\nexpect = "allowed"\n'
        '[[checks]]\nname = "reader deletes"\nmethod = "DELETE"\npath = "/x"\ntoken = "auth"\n'
        'expect = { status = 403, rule = "scope-gate-delete" }\n'
    )
    jwks_uri = f"{tenant}/.well-known/jwks.json"
    path = write_profile(tmp_path, checks=checks, extra=extra, jwks_uri=jwks_uri)
    access = mint(scope="read:products")
    httpx_mock.add_response(
        method="POST",
        url=f"{tenant}/oauth/token",
        json={"access_token": access, "token_type": "Bearer", "expires_in": 3600},
    )
    httpx_mock.add_response(url=jwks_uri, json=Keyset.load_or_create().jwks())
    run = await run_checks([load_profile(path)], CheckOptions())
    assert run.passed, [(r.name, r.problems) for r in run.failed]
    (token_request,) = httpx_mock.get_requests(method="POST")
    sent = json.loads(token_request.content)
    assert sent["client_id"] == "Zx8Qm2LkP0aB7cD9eF1gH3iJ5kL6mN4o"
    assert sent["audience"] == AUDIENCE
