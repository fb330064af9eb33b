"""``rrdev pull`` against the fake gateway API over loopback (issue 15, item 2): a pulled
profile passes ``check --offline`` with the same checks, merged into the existing file."""

from __future__ import annotations

import json
from pathlib import Path

from gateway_support import AUTH0, Gateway, gateway
from typer.testing import CliRunner

from rrdev.cli.app import app
from rrdev.core.profile import parse_profile

__all__ = ["gateway"]


def test_pull_into_the_existing_profile_keeps_it_and_its_checks_pass(gateway: Gateway) -> None:
    assert gateway.push("--yes").exit_code == 0
    copy = gateway.tmp / "mine.toml"
    copy.write_text(AUTH0.read_text())
    result = gateway.run("pull", "--client-id", "c1", "--out", str(copy))
    assert result.exit_code == 0, result.output
    assert f"updated {copy}" in result.stderr
    assert copy.read_text() == AUTH0.read_text()  # the gateway holds what it says
    checked = CliRunner().invoke(app, ["check", str(copy), "--offline"])
    assert checked.exit_code == 0, checked.output
    assert "7 passed" in checked.output or "passed" in checked.output


def test_pull_brings_a_change_made_in_the_gateway_into_the_file(gateway: Gateway) -> None:
    assert gateway.push("--yes").exit_code == 0
    (proxy,) = gateway.fake.objects["proxies"].values()
    proxy["proxyAlias"] = "renamed-alias"
    rules = gateway.fake.rules_of("proxies", "proxyName", "my-api-auth0-protected")
    read_rule = next(r for r in rules if r.get("priority") == 10)
    read_rule["methods"] = ["GET", "HEAD"]
    copy = gateway.tmp / "mine.toml"
    copy.write_text(AUTH0.read_text())
    assert gateway.run("pull", "--client-id", "c1", "--out", str(copy)).exit_code == 0
    text = copy.read_text()
    assert 'alias = "renamed-alias"' in text
    profile = parse_profile(text)
    changed = next(r for r in profile.proxy.rules if r.priority == 10)
    assert changed.methods == ("GET", "HEAD")
    assert changed.id is None  # a changed rule is another rule
    assert {r.id for r in profile.proxy.rules} >= {"allow-authenticated", "scope-gate-delete"}
    assert len(profile.checks) == 7 and profile.auth is not None  # rrdev-only parts kept


def test_pull_without_a_profile_prints_one_with_placeholders(gateway: Gateway) -> None:
    assert gateway.push("--yes").exit_code == 0
    result = gateway.run("pull", "--client-id", "c1")
    assert result.exit_code == 0, result.output
    text = result.stdout
    assert 'token = "${BACKEND_SERVICE_TOKEN_SECRET}"' in text
    assert "credentialSecret is write-only" in text
    assert "# gateway field proxyId = " in text
    profile = parse_profile(text)
    assert profile.proxy.default_effect == "deny"
    assert len(profile.proxy.rules) == 3
    assert gateway.fake.token not in result.output


def test_pull_with_several_proxies_asks_which(gateway: Gateway) -> None:
    assert gateway.push("--yes").exit_code == 0
    second = gateway.profile().read_text().replace("my-api-auth0-protected", "second-proxy")
    gateway.profile(second)
    assert gateway.push("--yes").exit_code == 0
    result = gateway.run("pull", "--client-id", "c1")
    assert result.exit_code == 3
    assert "2 proxies" in result.stderr and "--proxy NAME" in result.stderr
    result = gateway.run("pull", "--client-id", "c1", "--proxy", "second-proxy")
    assert result.exit_code == 0
    assert 'name = "second-proxy"' in result.stdout


def test_import_reads_saved_list_answers(gateway: Gateway, tmp_path: Path) -> None:
    assert gateway.push("--yes").exit_code == 0
    fake = gateway.fake
    lists = {
        "targets": {"targets": fake._listed("targets"), "message": "Success"},
        "credentials": {"credentials": fake._listed("credentials"), "message": "Success"},
        "proxies": {"proxies": fake._listed("proxies"), "message": "Success"},
        "rules": {ident: list(r.values()) for (_c, ident), r in fake.rules.items()},
    }
    (tmp_path / "lists.json").write_text(json.dumps(lists))
    result = CliRunner().invoke(app, ["import", str(tmp_path / "lists.json")])
    assert result.exit_code == 0, result.output
    assert len(parse_profile(result.stdout).proxy.rules) == 3
