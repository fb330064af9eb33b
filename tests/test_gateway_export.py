"""``rrdev export`` and ``rrdev import``: the seed's payloads, and the round trip of every
shipped profile (issue 15, items 1 and 2)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest
import tomlkit
from gateway_seed import (
    SEED_PROXY,
    SEED_PROXY_CREDENTIAL,
    SEED_REFS,
    SEED_RULES,
    SEED_TARGET,
    SEED_TARGET_CREDENTIAL,
)
from typer.testing import CliRunner

from rrdev.cli.app import app
from rrdev.core.gateway.document import merged_text, profile_text
from rrdev.core.gateway.payloads import export_document, export_profile
from rrdev.core.gateway.setup import setup_from_export, setup_from_lists
from rrdev.core.profile import load_profile, parse_profile

ROOT = Path(__file__).resolve().parent.parent
AUTH0 = ROOT / "profiles" / "auth0.toml"
SHIPPED = sorted((ROOT / "profiles").glob("*.toml"))


@pytest.fixture
def runner(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.delenv("BACKEND_SERVICE_TOKEN", raising=False)
    monkeypatch.chdir(tmp_path)
    return CliRunner()


def export_json(runner: CliRunner, *args: str) -> dict[str, Any]:
    result = runner.invoke(app, ["export", str(AUTH0), "--json", *args])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


# ------------------------------------------------------------------ the seed


def test_export_of_auth0_is_the_seeds_payloads_field_for_field(runner: CliRunner) -> None:
    doc = export_json(runner)
    bodies = [p["body"] for p in doc["payloads"]]
    seed_proxy = {k: SEED_REFS.get(v, v) for k, v in SEED_PROXY.items()}
    assert bodies[0] == SEED_TARGET
    assert bodies[1] == {
        **SEED_TARGET_CREDENTIAL,
        "credentialSecret": {"token": "${BACKEND_SERVICE_TOKEN}"},
    }
    assert bodies[2] == SEED_PROXY_CREDENTIAL
    assert bodies[3] == seed_proxy
    assert bodies[4:] == SEED_RULES


def test_payloads_come_in_dependency_order_with_their_paths(runner: CliRunner) -> None:
    doc = export_json(runner)
    assert [(p["ref"], p["path"]) for p in doc["payloads"]] == [
        ("target", "/clients/{clientId}/targets"),
        ("target_credential", "/clients/{clientId}/credentials"),
        ("proxy_credential", "/clients/{clientId}/credentials"),
        ("proxy", "/clients/{clientId}/proxies"),
        *[(f"proxy.rules[{n}]", "/clients/{clientId}/proxies/{proxyId}/rules") for n in range(3)],
    ]
    assert [p.get("rule_id") for p in doc["payloads"][4:]] == [
        "allow-authenticated",
        "read-catalog",
        "scope-gate-delete",
    ]


def test_rrdev_only_keys_are_listed_not_exported(runner: CliRunner) -> None:
    doc = export_json(runner)
    assert doc["rrdev_only"]["proxy"]["listen"] == "127.0.0.1:8787"
    assert {"auth", "checks"} <= set(doc["rrdev_only"])
    text = runner.invoke(app, ["export", str(AUTH0)]).stdout
    assert "# not exported (rrdev only): proxy.listen, proxy.rules[].id, auth, checks" in text
    everything = json.dumps([p["body"] for p in doc["payloads"]])
    assert "listen" not in everything and "8787" not in everything


def test_secrets_stay_placeholders_even_when_the_variable_is_set(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BACKEND_SERVICE_TOKEN", "s3cr3t-service-token")
    result = runner.invoke(app, ["export", str(AUTH0), "--json"])
    assert "s3cr3t-service-token" not in result.output
    assert "${BACKEND_SERVICE_TOKEN}" in result.stdout


def test_with_secrets_resolves_them_and_warns(
    runner: CliRunner, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("BACKEND_SERVICE_TOKEN", "s3cr3t-service-token")
    result = runner.invoke(app, ["export", str(AUTH0), "--json", "--with-secrets"])
    assert result.exit_code == 0
    doc = json.loads(result.stdout)
    assert doc["payloads"][1]["body"]["credentialSecret"] == {"token": "s3cr3t-service-token"}
    assert "--with-secrets: the output holds secret values" in result.stderr
    assert "s3cr3t" not in result.stderr


def test_with_secrets_and_an_unset_variable_names_key_and_variable(runner: CliRunner) -> None:
    result = runner.invoke(app, ["export", str(AUTH0), "--with-secrets"])
    assert result.exit_code == 3
    assert "BACKEND_SERVICE_TOKEN is not set" in result.stderr
    assert "target_credential.token" in result.stderr


def test_a_literal_secret_is_never_exported(tmp_path: Path, runner: CliRunner) -> None:
    profile = tmp_path / "literal.toml"
    text = AUTH0.read_text().replace('"${BACKEND_SERVICE_TOKEN}"', '"literal-backend-token"')
    profile.write_text(text)
    result = runner.invoke(app, ["export", str(profile), "--json"])
    assert result.exit_code == 0
    assert "literal-backend-token" not in result.output
    body = json.loads(result.stdout)["payloads"][1]["body"]
    assert body["credentialSecret"] == {"token": "${BACKEND_SERVICE_TOKEN_SECRET}"}
    assert "literal secret" in result.stderr


def test_out_writes_one_numbered_file_per_payload(tmp_path: Path, runner: CliRunner) -> None:
    result = runner.invoke(app, ["export", str(AUTH0), "--out", str(tmp_path / "payloads")])
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "payloads").iterdir())
    assert names == [
        "01-target.json",
        "02-target-credential.json",
        "03-proxy-credential.json",
        "04-proxy.json",
        "05-proxy.rules.0.json",
        "06-proxy.rules.1.json",
        "07-proxy.rules.2.json",
    ]
    assert json.loads((tmp_path / "payloads" / "01-target.json").read_text()) == SEED_TARGET
    assert "POST /clients/{clientId}/proxies/{proxyId}/rules" in result.stdout


# ------------------------------------------------------------- the round trip


def _comparable(value: Any) -> Any:
    """The model without where things were written (file, line): what a profile says."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        changes = {
            f.name: _comparable(getattr(value, f.name))
            for f in dataclasses.fields(value)
            if f.init and f.name not in ("line", "file", "path", "lines")
        }
        return (type(value).__name__, tuple(sorted(changes.items(), key=lambda kv: kv[0])))
    if isinstance(value, tuple):
        return tuple(_comparable(v) for v in value)
    return value


def _export_doc(path: Path) -> dict[str, Any]:
    text = path.read_text(encoding="utf-8")
    export = export_profile(load_profile(path), tomlkit.parse(text).unwrap())
    return json.loads(json.dumps(export_document(export, str(path))))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_import_of_export_is_the_same_profile(path: Path) -> None:
    setup = setup_from_export(_export_doc(path), "export.json")
    imported = parse_profile(profile_text(setup).text, "imported.toml")
    assert _comparable(imported) == _comparable(load_profile(path))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_importing_an_export_into_its_own_profile_changes_nothing(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    setup = setup_from_export(_export_doc(path), "export.json")
    assert merged_text(text, setup).text == text


def test_import_command_writes_a_commented_profile(tmp_path: Path, runner: CliRunner) -> None:
    (tmp_path / "auth0.json").write_text(json.dumps(_export_doc(AUTH0)))
    result = runner.invoke(app, ["import", "auth0.json", "--out", "imported.toml"])
    assert result.exit_code == 0, result.output
    text = (tmp_path / "imported.toml").read_text()
    assert 'base_url = "https://api.myapp.com" # targetBaseURL' in text
    assert 'token = "${BACKEND_SERVICE_TOKEN}" # credentialSecret.token' in text
    assert 'id = "scope-gate-delete"' in text
    checked = runner.invoke(
        app, ["check", "imported.toml", "--offline"], env={"RRDEV_HOME": str(tmp_path)}
    )
    assert checked.exit_code == 0, checked.output


# ------------------------------------------------------- the API's list answers


def _api_lists() -> dict[str, Any]:
    return {
        "targets": {
            "targets": [{"targetId": "t1", **SEED_TARGET, "createdAt": "2026-01-01"}],
            "message": "Success",
        },
        "credentials": {
            "credentials": [
                {
                    "credentialId": "c1",
                    **{k: v for k, v in SEED_TARGET_CREDENTIAL.items() if k != "credentialSecret"},
                },
                {
                    "credentialId": "c2",
                    **SEED_PROXY_CREDENTIAL,
                    "credentialSecret": {"token": "leaked?"},
                },
            ],
            "message": "Success",
        },
        "proxies": {
            "proxies": [
                {
                    **SEED_PROXY,
                    "proxyId": "p1",
                    "proxyTargetId": "t1",
                    "proxyTargetCredentialId": "c1",
                    "proxyProxyCredentialId": "c2",
                }
            ],
            "message": "Success",
        },
        "rules": {"p1": [{"ruleId": "r1", **SEED_RULES[0]}]},
    }


def test_list_answers_become_a_profile_with_placeholders_and_comments() -> None:
    setup = setup_from_lists(_api_lists(), "lists.json")
    text = profile_text(setup).text
    assert 'token = "${BACKEND_SERVICE_TOKEN_SECRET}"' in text
    assert "# gateway field createdAt = " in text
    assert "# gateway field targetId = " in text
    assert "# gateway field ruleId = 'r1'" in text
    profile = parse_profile(text)
    assert profile.target.base_url == "https://api.myapp.com"
    assert profile.proxy.rules[0].priority == 1
    assert profile.target_credential.token is not None
    assert profile.target_credential.token.references == ("BACKEND_SERVICE_TOKEN_SECRET",)


def test_gateway_features_survive_the_round_trip(tmp_path: Path) -> None:
    """Static proxy credentials, an inactive proxy and response filters: what the
    gateway holds comes back from an export, booleans included."""
    text = AUTH0.read_text(encoding="utf-8")
    text = text.replace(
        'auth_type = "jwtVerify"',
        'auth_type = "apiKey"\nsecret = "${PROXY_KEY}"\nquery_param = "key"',
    )
    for key in ("jwks_uri", "audience", "issuer"):
        text = "\n".join(line for line in text.split("\n") if not line.startswith(f"{key} ="))
    text = text.replace(
        'default_effect = "deny"\nlisten',
        'default_effect = "deny"\nactive = false\n'
        'response_filter = { mode = "destroy", fields = ["secret", "items[].token"] }\nlisten',
    )
    path = tmp_path / "features.toml"
    path.write_text(text, encoding="utf-8")
    original = load_profile(path)
    assert original.proxy_credential.auth_type == "apiKey" and original.proxy.active is False
    setup = setup_from_export(_export_doc(path), "export.json")
    imported = parse_profile(profile_text(setup).text, "imported.toml")
    assert imported.proxy.active is False
    assert imported.proxy_credential.auth_type == "apiKey"
    assert imported.proxy_credential.query_param == "key"
    assert imported.proxy.response_filter == original.proxy.response_filter
