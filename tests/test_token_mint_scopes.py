"""`rrdev token mint --scope` (and every other minting front end) writes granted scopes
where the profile's provider does: Okta an `scp` array, Entra ID an `scp` string, the
others a `scope` string; the shipped profiles' rules pass such tokens."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rrdev.cli.app import app
from rrdev.core.keyset import Keyset
from rrdev.core.profile import load_profile
from rrdev.core.tokens import decode_unverified
from rrdev.tui.workbench.bench import MintForm, mint

ROOT = Path(__file__).resolve().parent.parent
PROFILES = ROOT / "profiles"


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("RRDEV_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RRDEV_PROFILE", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def _minted_claims(runner: CliRunner, *args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["token", "mint", *args])
    assert result.exit_code == 0, result.output
    return decode_unverified(result.stdout.strip()).claims


@pytest.mark.parametrize(
    ("provider", "claim", "value"),
    [
        ("okta", "scp", ["orders:read", "orders:write"]),
        ("entra", "scp", "orders:read orders:write"),
        ("auth0", "scope", "orders:read orders:write"),
        ("cognito", "scope", "orders:read orders:write"),
        ("keycloak", "scope", "orders:read orders:write"),
    ],
)
def test_token_mint_writes_the_providers_scope_claim(
    runner: CliRunner, provider: str, claim: str, value: Any
) -> None:
    claims = _minted_claims(
        runner, "-p", str(PROFILES / f"{provider}.toml"), "--scope", "orders:read orders:write"
    )
    assert claims[claim] == value
    other = "scope" if claim == "scp" else "scp"
    assert other not in claims


def test_without_a_profile_the_scope_claim_is_a_string(runner: CliRunner) -> None:
    assert _minted_claims(runner, "--scope", "a b")["scope"] == "a b"


def test_a_claim_given_by_hand_still_wins(runner: CliRunner) -> None:
    okta = str(PROFILES / "okta.toml")
    claims = _minted_claims(runner, "-p", okta, "--scope", "x", "--claim", 'scp=["y"]')
    assert claims["scp"] == ["y"]


@pytest.mark.parametrize("provider", ["okta", "entra"])
def test_the_profiles_rules_allow_a_token_minted_with_the_scope(
    runner: CliRunner, provider: str
) -> None:
    profile = str(PROFILES / f"{provider}.toml")
    scope = "orders:read" if provider == "okta" else "Orders.Read"
    token = runner.invoke(app, ["token", "mint", "-p", profile, "--scope", scope]).stdout.strip()
    result = runner.invoke(
        app, ["explain", "--offline", "--json", "-p", profile, "--path", "/orders", token]
    )
    assert result.exit_code == 0, result.output
    answer = json.loads(result.stdout)
    assert answer["status"] == 200 and answer["reason"] == "allowed"


def test_explain_auth_offline_mints_okta_scopes_as_scp(runner: CliRunner) -> None:
    profile = str(PROFILES / "okta.toml")
    result = runner.invoke(
        app, ["explain", "--auth", "--offline", "--json", "-p", profile, "--path", "/orders"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["deciding_rule"] == "read-orders"


def test_the_help_says_where_the_scope_goes(runner: CliRunner) -> None:
    result = runner.invoke(app, ["token", "mint", "--help"], env={"COLUMNS": "200"})
    assert "okta an scp array" in result.output and "entra an scp string" in result.output


def test_the_workbench_mints_okta_scopes_as_an_scp_array(tmp_path: Path) -> None:
    keyset = Keyset.load_or_create(tmp_path / "home")
    profile = load_profile(PROFILES / "okta.toml")
    claims = decode_unverified(mint(keyset, profile, MintForm(scope="orders:read"))).claims
    assert claims["scp"] == ["orders:read"] and "scope" not in claims
