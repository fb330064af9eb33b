"""Checks never block the proxy: a broken ``[[checks]]`` entry fails that check in
``rrdev check`` (the others still run), is an error for ``rrdev validate`` (exit 1, with
file:line and key), and ``rrdev up``, ``tui``, ``explain`` and a hot reload only warn."""

from __future__ import annotations

import json
import signal
from pathlib import Path

import httpx
import pytest
from proxy_support import Backend, bearer, mint, profile_text, run_proxy, start_up, wait_for
from typer.testing import CliRunner

from rrdev.cli.app import app
from rrdev.core.profile import check_problems, load_profile

pytestmark = pytest.mark.usefixtures("keyset")

GOOD = """
[[checks]]
name = "reader allowed"
path = "/api/v1/products"
token = { mint = { scope = "read:products" } }
expect = "allowed"
"""
#: names a rule the profile no longer has (it was renamed): line 43 of the profile
MISSING_RULE = """
[[checks]]
name = "delete gated"
method = "DELETE"
path = "/api/v1/products/1"
token = { mint = { scope = "read:products" } }
expect = { status = 403, rule = "scope-gate-delete-old" }
"""
NO_TOKEN = """
[[checks]]
name = "no token"
path = "/api/v1/products"
token = "none"
expect = { status = 401, reason = "token_missing" }
"""


def write(tmp_path: Path, checks: str, base_url: str = "http://127.0.0.1:9") -> Path:
    path = tmp_path / "rrdev.toml"
    path.write_text(profile_text(base_url) + checks)
    return path


def line_of_text(path: Path, needle: str) -> int:
    return next(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def test_check_fails_only_the_broken_check_and_runs_the_others(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + MISSING_RULE + NO_TOKEN)
    result = CliRunner().invoke(app, ["check", "--offline", str(path), "--json"])
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    results = {r["name"]: r for r in report["profiles"][0]["results"]}
    assert [r["name"] for r in report["profiles"][0]["results"]] == [
        "reader allowed",
        "delete gated",
        "no token",
    ]
    assert results["reader allowed"]["passed"] and results["no token"]["passed"]
    broken = results["delete gated"]
    assert not broken["passed"]
    assert broken["got"]["reason"] == "check_invalid"
    line = line_of_text(path, "scope-gate-delete-old")
    assert broken["problems"] == [
        f"the check cannot run: {path}:{line}: checks[1].expect.rule: unknown rule "
        "'scope-gate-delete-old'; did you mean 'scope-gate-delete'?"
    ]
    assert report["summary"] == {
        "profiles": 1,
        "checks": 3,
        "passed": 2,
        "failed": 1,
        "unexercised_rules": 1,  # the scope gate: only the broken check targeted it
        "require_coverage": False,
    }


def test_check_table_names_the_broken_check_as_not_run(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD + MISSING_RULE)
    result = CliRunner().invoke(app, ["check", "--offline", str(path)])
    assert result.exit_code == 1
    assert "not run" in result.stdout and "unknown rule 'scope-gate-delete-old'" in result.stdout
    assert "2 checks: 1 passed, 1 failed" in result.stdout


@pytest.mark.parametrize(
    ("check", "key", "message"),
    [
        ('token = { mint = { scop = "x" } }', "checks[0].token.mint.scop", "unknown key 'scop'"),
        ("token = 42", "checks[0].token", "expected 'auth', 'none', a token"),
        ("expect = { statu = 403 }", "checks[0].expect.statu", "did you mean 'status'"),
        ("expct = 403", "checks[0].expct", "did you mean 'expect'"),
    ],
)
def test_other_check_problems_are_per_check(
    tmp_path: Path, check: str, key: str, message: str
) -> None:
    path = write(tmp_path, f'[[checks]]\nname = "bad"\n{check}\n' + NO_TOKEN)
    [problem] = check_problems(load_profile(path))
    assert problem.key == key and message in problem.message
    assert problem.line == line_of_text(path, check)
    code = CliRunner().invoke(app, ["check", "--offline", str(path)]).exit_code
    assert code == 1


def test_checks_that_are_not_a_list_are_one_broken_check(tmp_path: Path) -> None:
    path = write(tmp_path, '\n[checks]\nname = "x"\n')
    [check] = load_profile(path).checks
    assert check.problem is not None and "expected a list of tables" in check.problem.message


def test_validate_reports_the_check_problem_with_file_line_key_and_exit_1(
    tmp_path: Path,
) -> None:
    path = write(tmp_path, GOOD + MISSING_RULE)
    line = line_of_text(path, "scope-gate-delete-old")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 1, result.output
    assert f"error: {path}:{line}: checks[1].expect.rule: unknown rule" in result.stdout
    assert "This profile's rules:" in result.stdout  # the hint
    data = json.loads(CliRunner().invoke(app, ["validate", str(path), "--json"]).stdout)
    assert len(data[0]["errors"]) == 1 and data[0]["rules"] == 2


def test_validate_still_exits_3_for_a_broken_profile(tmp_path: Path) -> None:
    path = write(tmp_path, MISSING_RULE + '\n[proxy]\nlisten = "nope"\n')
    assert CliRunner().invoke(app, ["validate", str(path)]).exit_code == 3


async def test_up_starts_and_serves_with_a_broken_check(tmp_path: Path, backend: Backend) -> None:
    path = write(tmp_path, GOOD + MISSING_RULE, base_url=backend.url)
    up = await start_up(path, {}, port=0, offline=True)
    async with httpx.AsyncClient(timeout=10, trust_env=False) as client:
        allowed = await client.get(f"{up.url}/api/v1/products", headers=bearer(mint()))
        refused = await client.get(f"{up.url}/api/v1/products")
    up.process.send_signal(signal.SIGINT)
    code, rest, err = await up.finish()
    banner = "".join(up.banner) + rest
    assert allowed.status_code == 200 and backend.seen[-1]["raw_path"] == "/api/v1/products"
    assert refused.status_code == 401 and refused.json()["reason"] == "token_missing"
    assert len(backend.seen) == 1  # the refused request never reached the backend
    assert code == 0, err
    assert "check 'delete gated' cannot run" in banner and "the proxy is not affected" in banner


def test_explain_warns_and_runs(tmp_path: Path) -> None:
    path = write(tmp_path, MISSING_RULE)
    result = CliRunner().invoke(
        app, ["explain", mint(), "-p", str(path), "--offline", "--path", "/api/v1/products"]
    )
    assert result.exit_code == 0, result.output
    assert "warning: check 'delete gated' cannot run" in " ".join(result.stderr.split())


def test_the_tui_runtime_starts_with_the_warning(tmp_path: Path) -> None:
    from rrdev.servers.proxy import Overrides
    from rrdev.tui.runtime import ProfileRuntime

    path = write(tmp_path, MISSING_RULE)
    runtime = ProfileRuntime.from_path(path, overrides=Overrides(offline=True), port=0)
    [warning] = runtime.app.info().warnings
    assert warning.startswith("check 'delete gated' cannot run")


async def test_hot_reload_with_a_broken_check_is_not_a_broken_profile(
    tmp_path: Path, backend: Backend
) -> None:
    path = write(tmp_path, GOOD, base_url=backend.url)
    async with run_proxy(path) as proxy, httpx.AsyncClient(trust_env=False) as http:
        first = await http.get(proxy.url + "/api/v1/products", headers=bearer(mint()))
        assert first.status_code == 200
        # The edit renames the proxy (visible in answers) and adds a broken check.
        path.write_text(profile_text(backend.url, proxy='alias = "edited"\n') + GOOD + MISSING_RULE)
        await wait_for(lambda: any(kind == "reloaded" for kind, _ in proxy.events), 5)
        second = await http.get(proxy.url + "/api/v1/products", headers=bearer(mint()))
    kinds = [kind for kind, _ in proxy.events]
    assert "reload_failed" not in kinds
    [message] = [m for kind, m in proxy.events if kind == "reloaded"]
    assert "1 check cannot run" in message
    assert second.status_code == 200 and proxy.app.profile.display_name == "edited"
