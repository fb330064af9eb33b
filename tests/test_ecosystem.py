"""rrdev in the tools around it (issue 14): the profiles' JSON Schema (shipped, printed by
``rrdev validate --schema``, named by each profile's ``#:schema`` line), and the
pre-commit hooks a repository runs its profiles' checks with."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import tomlkit
from typer.testing import CliRunner

from rrdev.cli.app import app
from rrdev.cli.schema import schema_path
from rrdev.core.profile import loading, rules
from rrdev.core.profile.checks import CHECK_KEYS, EXPECT_KEYS, MINT_KEYS
from rrdev.core.profile.credentials import (
    AUTH_KEYS,
    PROXY_CREDENTIAL_KEYS,
    TARGET_CREDENTIAL_KEYS,
)
from rrdev.core.profile.sections import ISSUER_CLIENT_KEYS, ISSUER_KEYS, PROXY_KEYS, TARGET_KEYS

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = sorted((ROOT / "profiles").glob("*.toml")) + sorted(
    (ROOT / "rrdev" / "data").glob("*.toml")
)
#: The keys agreed for issue 14 that other branches parse; the schema has them already.
AGREED_PROXY_CREDENTIAL = (
    "tenants",
    "max_lifetime_seconds",
    "provider",
    "discovery_ttl_seconds",
)
AGREED_AUTH = ("extra", "private_key", "private_key_file", "key_id", "assertion_algorithm")


@pytest.fixture(scope="module")
def schema() -> dict[str, Any]:
    return json.loads(schema_path().read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def validator(schema: dict[str, Any]) -> Any:
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def toml_data(text: str) -> dict[str, Any]:
    return tomlkit.parse(text).unwrap()


def errors(validator: Any, data: dict[str, Any]) -> list[str]:
    return [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(data)]


# ------------------------------------------------------------------ the schema


def test_schema_is_draft_2020_12(schema: dict[str, Any]) -> None:
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_schema_accepts_every_shipped_profile(validator: Any, path: Path) -> None:
    assert errors(validator, toml_data(path.read_text(encoding="utf-8"))) == []


BROKEN = [
    # (what, TOML appended to / replacing part of the demo profile, the key named)
    ("an unknown key", "[proxy]\nlisten = '127.0.0.1:8787'\nlisen = 'x'\n", "lisen"),
    ("a wrong type", "[proxy]\nforward_authorization = 'yes'\n", "forward_authorization"),
    ("an unknown effect", "[[target.rules]]\neffect = 'permit'\n", "effect"),
    ("an HS algorithm", "[proxy_credential]\nalgorithms = ['HS256']\n", "HS256"),
    ("a check without a name", "[[checks]]\npath = '/'\n", "name"),
]


@pytest.mark.parametrize(("what", "toml", "named"), BROKEN, ids=[b[0] for b in BROKEN])
def test_schema_rejects_a_broken_profile(validator: Any, what: str, toml: str, named: str) -> None:
    base = {"target": {"base_url": "http://127.0.0.1:9000"}, "proxy_credential": {}}
    data = {**base, **toml_data(toml)}
    for section, value in toml_data(toml).items():
        if isinstance(value, dict) and isinstance(base.get(section), dict):
            data[section] = {**base[section], **value}
    found = errors(validator, data)
    assert found, what
    assert any(named in e for e in found), found


def test_the_parser_refuses_what_the_schema_refuses(tmp_path: Path) -> None:
    from rrdev.core.errors import ProfileError
    from rrdev.core.profile import parse_profile

    text = (ROOT / "rrdev" / "data" / "demo.toml").read_text(encoding="utf-8")
    with pytest.raises(ProfileError, match="lisen"):
        parse_profile(text.replace("[proxy]\n", "[proxy]\nlisen = 'x'\n", 1))


def _properties(node: dict[str, Any]) -> set[str]:
    return set(node["properties"])


def test_schema_covers_every_key_the_parser_accepts(schema: dict[str, Any]) -> None:
    """When a branch adds a key to the parser, this says the schema needs it too."""
    props = schema["properties"]
    defs = schema["$defs"]
    assert _properties(schema) == set(loading.SECTIONS)
    assert schema["additionalProperties"] is False
    expected = {
        "proxy": set(PROXY_KEYS),
        "target": set(TARGET_KEYS),
        "target_credential": set(TARGET_CREDENTIAL_KEYS),
        "proxy_credential": {*PROXY_CREDENTIAL_KEYS, *AGREED_PROXY_CREDENTIAL},
        "auth": {*AUTH_KEYS, *AGREED_AUTH},
        "issuer": set(ISSUER_KEYS),
    }
    for section, keys in expected.items():
        assert _properties(props[section]) == keys, section
        assert props[section]["additionalProperties"] is False
    assert _properties(props["issuer"]["properties"]["clients"]["items"]) == set(ISSUER_CLIENT_KEYS)
    assert _properties(defs["rule"]) == set(rules.RULE_KEYS)
    assert _properties(defs["check"]) == set(CHECK_KEYS)
    expect = next(o for o in defs["check"]["properties"]["expect"]["oneOf"] if "properties" in o)
    assert _properties(expect) == set(EXPECT_KEYS)
    token = next(o for o in defs["check"]["properties"]["token"]["oneOf"] if "properties" in o)
    assert _properties(token["properties"]["mint"]) == set(MINT_KEYS)


def test_every_schema_key_has_a_description(schema: dict[str, Any]) -> None:
    for section, node in schema["properties"].items():
        for key, spec in node.get("properties", {}).items():
            described = "description" in spec or "$ref" in spec
            assert described, f"{section}.{key}"


@pytest.mark.parametrize(
    ("issuer", "client_id", "ok"),
    [
        ("https://a.example/", "c", True),
        (["https://a.example/", "https://b.example/"], ["c1", "c2"], True),
        ([], "c", False),
        (3, "c", False),
    ],
)
def test_schema_takes_the_agreed_provider_shapes(
    validator: Any, issuer: Any, client_id: Any, ok: bool
) -> None:
    data = {
        "target": {"base_url": "http://127.0.0.1:9000"},
        "proxy_credential": {
            "issuer": issuer,
            "client_id": client_id,
            "token_use": "access",
            "provider": "cognito",
            "max_lifetime_seconds": 3600,
        },
        "auth": {"extra": {"aud": "api"}, "client_auth": "private_key_jwt", "key_id": "k"},
    }
    assert (errors(validator, data) == []) is ok


# ------------------------------------------------------------------ the CLI side


def test_validate_schema_prints_the_packaged_schema(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["validate", "--schema"])
    assert result.exit_code == 0
    assert json.loads(result.stdout) == json.loads(schema_path().read_text(encoding="utf-8"))


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_shipped_profiles_name_the_schema_on_their_first_line(path: Path) -> None:
    first = path.read_text(encoding="utf-8").split("\n", 1)[0]
    assert first.startswith("#:schema ")
    assert (path.parent / first.removeprefix("#:schema ")).resolve() == schema_path().resolve()


def test_init_pins_the_schema_line_to_the_installed_schema(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    first = (tmp_path / "rrdev.toml").read_text(encoding="utf-8").split("\n", 1)[0]
    assert first == "#:schema " + schema_path().resolve().as_uri()


# ------------------------------------------------------------------ pre-commit


def test_pre_commit_hooks_run_rrdev_on_profiles_only() -> None:
    import re

    yaml = pytest.importorskip("yaml")
    hooks = {h["id"]: h for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())}
    assert set(hooks) == {"rrdev-check", "rrdev-validate"}
    assert hooks["rrdev-check"]["entry"] == "rrdev check --offline"
    assert hooks["rrdev-validate"]["entry"] == "rrdev validate"
    for hook in hooks.values():
        assert hook["language"] == "python"
        files = re.compile(hook["files"])
        for name in ("rrdev.toml", "api/rrdev.toml", "profiles/auth0.toml", "x/profiles/a.toml"):
            assert files.search(name), name
        for name in ("pyproject.toml", "profiles/sub/a.toml", "rrdev.toml.bak"):
            assert not files.search(name), name


def test_the_pre_commit_entries_pass_on_the_shipped_profiles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What pre-commit runs: the entry, then the changed files as arguments."""
    monkeypatch.setenv("RRDEV_HOME", str(tmp_path / "home"))
    profiles = [str(p) for p in sorted((ROOT / "profiles").glob("*.toml"))]
    for entry in (["check", "--offline"], ["validate"]):
        result = CliRunner().invoke(app, [*entry, *profiles])
        assert result.exit_code == 0, result.output
