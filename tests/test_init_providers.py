"""``rrdev init --provider ... [--issuer --audience --target --discover]``: a starter for
each identity provider that validates and whose checks pass offline; ``--discover``
reads the issuer's discovery document (served through pytest-httpx) and fills
``jwks_uri``, or refuses a document that does not fit."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

import pytest
from pytest_httpx import HTTPXMock
from typer.testing import CliRunner

from rrdev.cli.app import app
from rrdev.cli.starters import PROVIDERS

OKTA = "https://x.okta.com/oauth2/default"
OKTA_DISCOVERY = f"{OKTA}/.well-known/openid-configuration"
OKTA_DOCUMENT = {
    "issuer": OKTA,
    "jwks_uri": f"{OKTA}/v1/keys",
    "token_endpoint": f"{OKTA}/v1/token",
    "id_token_signing_alg_values_supported": ["RS256"],
}


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("RRDEV_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("RRDEV_PROFILE", raising=False)
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def run(runner: CliRunner, *args: str) -> Any:
    return runner.invoke(app, list(args))


def assert_usable(runner: CliRunner, path: str) -> None:
    """The written profile validates and its checks pass offline, every rule exercised."""
    validated = run(runner, "validate", path)
    assert validated.exit_code == 0, validated.output
    checked = run(runner, "check", "--offline", "--require-coverage", path)
    assert checked.exit_code == 0, checked.output
    assert "4 checks: 4 passed, 0 failed" in checked.output


def credential(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text())["proxy_credential"]


@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_each_provider_starter_validates_and_its_checks_pass(
    runner: CliRunner, tmp_path: Path, provider: str
) -> None:
    result = run(runner, "init", "--provider", provider, f"{provider}.toml")
    assert result.exit_code == 0, result.output
    assert f"wrote {provider}.toml" in result.stderr
    assert_usable(runner, f"{provider}.toml")
    text = (tmp_path / f"{provider}.toml").read_text()
    assert f"`rrdev init --provider {provider}`" in text
    assert all(len(line) <= 100 for line in text.splitlines())


def test_the_given_values_fill_the_starter(runner: CliRunner, tmp_path: Path) -> None:
    result = run(
        runner,
        "init",
        "--provider",
        "keycloak",
        "--issuer",
        "https://sso.example.org/realms/shop",
        "--audience",
        "orders-api",
        "--target",
        "https://orders.internal.example.org",
    )
    assert result.exit_code == 0, result.output
    written = tmp_path / "rrdev.toml"
    data = tomllib.loads(written.read_text())
    assert data["target"]["base_url"] == "https://orders.internal.example.org"
    assert data["proxy_credential"]["issuer"] == "https://sso.example.org/realms/shop"
    assert data["proxy_credential"]["jwks_uri"] == (
        "https://sso.example.org/realms/shop/protocol/openid-connect/certs"
    )
    assert data["proxy_credential"]["audience"] == "orders-api"
    assert_usable(runner, "rrdev.toml")


def test_cognito_checks_the_client_id_instead_of_an_audience(
    runner: CliRunner, tmp_path: Path
) -> None:
    result = run(runner, "init", "--provider", "cognito", "--audience", "4f1ab2client")
    assert result.exit_code == 0, result.output
    cred = credential(tmp_path / "rrdev.toml")
    assert (cred["client_id"], cred["token_use"]) == ("4f1ab2client", "access")
    assert "audience" not in cred
    assert_usable(runner, "rrdev.toml")


def test_a_custom_starter_relies_on_discovery(runner: CliRunner, tmp_path: Path) -> None:
    result = run(runner, "init", "--issuer", "https://id.example.net/")  # provider: custom
    assert result.exit_code == 0, result.output
    cred = credential(tmp_path / "rrdev.toml")
    assert cred["issuer"] == "https://id.example.net/" and "jwks_uri" not in cred
    validated = run(runner, "validate")
    assert "discovered from https://id.example.net/.well-known/openid-configuration" in (
        validated.output
    )


def test_discover_fills_jwks_uri_and_the_profile_passes(
    runner: CliRunner, tmp_path: Path, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=OKTA_DISCOVERY, json=OKTA_DOCUMENT)
    result = run(runner, "init", "--provider", "okta", "--issuer", OKTA, "--discover")
    assert result.exit_code == 0, result.output
    assert f"discovered {OKTA_DISCOVERY}" in result.stderr
    assert f"jwks_uri        {OKTA}/v1/keys" in result.stderr
    assert "algorithms      RS256" in result.stderr
    written = tmp_path / "rrdev.toml"
    cred = credential(written)
    assert (cred["issuer"], cred["jwks_uri"]) == (OKTA, f"{OKTA}/v1/keys")
    assert f'# token_url = "{OKTA}/v1/token"' in written.read_text()
    assert_usable(runner, "rrdev.toml")
    assert [str(r.url) for r in httpx_mock.get_requests()] == [OKTA_DISCOVERY]


@pytest.mark.parametrize(
    ("document", "words"),
    [
        ({**OKTA_DOCUMENT, "issuer": "https://x.okta.com"}, "but the profile's issuer is"),
        ({**OKTA_DOCUMENT, "jwks_uri": "http://x.okta.com/keys"}, "plain http"),
        ({**OKTA_DOCUMENT, "id_token_signing_alg_values_supported": ["ES256"]}, "not RS256"),
    ],
)
def test_discover_refuses_a_document_that_does_not_fit(
    runner: CliRunner, tmp_path: Path, httpx_mock: HTTPXMock, document: dict[str, Any], words: str
) -> None:
    httpx_mock.add_response(url=OKTA_DISCOVERY, json=document)
    result = run(runner, "init", "--provider", "okta", "--issuer", OKTA, "--discover")
    assert result.exit_code == 4
    assert words in " ".join(result.stderr.split())
    assert not (tmp_path / "rrdev.toml").exists()


def test_discover_reports_an_unreachable_document(
    runner: CliRunner, tmp_path: Path, httpx_mock: HTTPXMock
) -> None:
    httpx_mock.add_response(url=OKTA_DISCOVERY, status_code=404)
    result = run(runner, "init", "--provider", "okta", "--issuer", OKTA, "--discover")
    assert result.exit_code == 4
    assert "HTTP 404" in result.stderr and OKTA_DISCOVERY in result.stderr
    assert not (tmp_path / "rrdev.toml").exists()


@pytest.mark.parametrize(
    ("args", "code", "words"),
    [
        (("--provider", "okta", "--discover"), 2, "--discover needs --issuer URL"),
        (("--provider", "oktaa"), 2, "unknown provider 'oktaa'"),
        (("--discover", "--issuer", "http://id.example.net/"), 2, "plain http"),
        (("--provider", "auth0", "--target", "ftp://backend"), 3, "target.base_url"),
    ],
)
def test_bad_options_are_clear_errors_and_write_nothing(
    runner: CliRunner, tmp_path: Path, args: tuple[str, ...], code: int, words: str
) -> None:
    result = run(runner, "init", *args)
    assert result.exit_code == code, result.output
    assert words in " ".join(result.stderr.split())
    assert not (tmp_path / "rrdev.toml").exists()


def test_a_provider_starter_does_not_overwrite_without_force(
    runner: CliRunner, tmp_path: Path
) -> None:
    (tmp_path / "rrdev.toml").write_text("# mine\n")
    result = run(runner, "init", "--provider", "okta")
    assert result.exit_code == 3 and "already exists" in result.stderr
    assert (tmp_path / "rrdev.toml").read_text() == "# mine\n"
    assert run(runner, "init", "--provider", "okta", "--force").exit_code == 0
    assert "Okta" in (tmp_path / "rrdev.toml").read_text()
