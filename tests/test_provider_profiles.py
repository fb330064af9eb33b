"""The shipped provider profiles (profiles/*.toml): each validates and passes its
checks offline with no environment variable set, through the CLI as a user runs it,
and each names its provider's habits (issuer, keys, where scopes live)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from rrdev.cli.app import app
from rrdev.core.profile import load_profile

ROOT = Path(__file__).resolve().parent.parent
PROFILES = sorted((ROOT / "profiles").glob("*.toml"))
PROVIDERS = ("auth0", "okta", "cognito", "entra", "google", "keycloak")


@pytest.fixture
def bare_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No environment variable a profile reads: only RRDEV_HOME (a fresh keyset)."""
    for name in list(os.environ):
        if name.startswith(("AUTH0_", "OKTA_", "COGNITO_", "ENTRA_", "GOOGLE_", "KEYCLOAK_")):
            monkeypatch.delenv(name)
    for name in ("BACKEND_SERVICE_TOKEN", "RRDEV_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("RRDEV_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.chdir(tmp_path)


def test_every_provider_has_a_profile() -> None:
    assert {p.stem for p in PROFILES} >= set(PROVIDERS)


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_validate_exits_0(profile: Path, bare_env: None) -> None:
    result = CliRunner().invoke(app, ["validate", str(profile)])
    assert result.exit_code == 0, result.output
    assert "✓" in result.output


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_check_offline_passes_with_no_environment(profile: Path, bare_env: None) -> None:
    result = CliRunner().invoke(app, ["check", "--offline", str(profile), "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)["summary"]
    assert summary["failed"] == 0 and summary["checks"] >= 5, summary
    assert summary["unexercised_rules"] == 0, summary


@pytest.mark.parametrize("profile", PROFILES, ids=lambda p: p.stem)
def test_each_profile_refuses_something_and_allows_something(profile: Path) -> None:
    """A profile whose checks only ever allow would show nothing of the provider."""
    expects = [_status(c.expect) for c in load_profile(profile).checks]
    assert 200 in expects and 401 in expects, expects


def _status(expect: Any) -> int:
    if expect == "allowed":
        return 200
    return expect if isinstance(expect, int) else int(expect.get("status", 200))


PROVIDER_SHAPES = [
    # (profile, provider, issuers, jwks_uri ends with)
    ("okta", "okta", ("https://YOUR_ORG.okta.com/oauth2/default",), "/oauth2/default/v1/keys"),
    (
        "cognito",
        "cognito",
        ("https://cognito-idp.us-east-1.amazonaws.com/us-east-1_YOURPOOL",),
        "/us-east-1_YOURPOOL/.well-known/jwks.json",
    ),
    (
        "entra",
        "entra",
        (
            "https://login.microsoftonline.com/{tenantid}/v2.0",
            "https://sts.windows.net/{tenantid}/",
        ),
        "/common/discovery/v2.0/keys",
    ),
    (
        "google",
        "google",
        ("https://accounts.google.com", "accounts.google.com"),
        "googleapis.com/oauth2/v3/certs",
    ),
    (
        "keycloak",
        "keycloak",
        ("https://YOUR_KEYCLOAK_HOST/realms/YOUR_REALM",),
        "/protocol/openid-connect/certs",
    ),
]


@pytest.mark.parametrize(("name", "provider", "issuers", "jwks_tail"), PROVIDER_SHAPES)
def test_profile_is_shaped_like_its_provider(
    name: str, provider: str, issuers: tuple[str, ...], jwks_tail: str
) -> None:
    cred = load_profile(ROOT / "profiles" / f"{name}.toml").proxy_credential
    assert cred.provider == provider
    assert cred.issuers == issuers and cred.issuer == issuers[0]
    assert cred.jwks_uri is not None and cred.jwks_uri.endswith(jwks_tail)
    assert cred.max_lifetime_seconds is not None


def test_cognito_profile_checks_client_id_not_audience() -> None:
    cred = load_profile(ROOT / "profiles" / "cognito.toml").proxy_credential
    assert cred.audience == ()
    assert cred.client_ids == ("YOUR_APP_CLIENT_ID",) and cred.token_use == "access"


def test_entra_profile_lists_its_tenants() -> None:
    cred = load_profile(ROOT / "profiles" / "entra.toml").proxy_credential
    assert cred.tenants == ("YOUR-TENANT-ID",)
    assert set(cred.audience) == {"YOUR_API_CLIENT_ID", "api://YOUR_API_CLIENT_ID"}


@pytest.mark.parametrize(
    ("name", "absent", "present"),
    [
        ("cognito", "aud", {"client_id": "YOUR_APP_CLIENT_ID", "token_use": "access"}),
        ("entra", None, {"tid": "YOUR-TENANT-ID"}),
    ],
)
def test_token_mint_is_shaped_like_the_profile_provider(
    name: str, absent: str | None, present: dict[str, str], bare_env: None
) -> None:
    """`rrdev token mint -p X` mints what the profile verifies (Cognito: no aud, a
    client_id; Entra: the tenant's issuer and tid), so `explain --offline` allows it."""
    path = str(ROOT / "profiles" / f"{name}.toml")
    runner = CliRunner()
    minted = runner.invoke(app, ["token", "mint", "-p", path, "--scope", "orders/read"])
    assert minted.exit_code == 0, minted.output
    token = minted.stdout.strip()
    decoded = runner.invoke(app, ["token", "decode", token, "--json"])
    claims = json.loads(decoded.stdout)["claims"]
    assert absent is None or absent not in claims
    assert present.items() <= claims.items()
    argv = ["explain", token, "-p", path, "--offline", "--json", "--path", "/orders"]
    explained = json.loads(runner.invoke(app, argv).stdout)
    assert all(c["status"] == "passed" for c in explained["checks"]), explained["checks"]
    assert explained["status"] in (200, 403), explained  # verified; the rules decide
