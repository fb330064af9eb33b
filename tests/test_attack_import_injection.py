"""Attack: a hostile gateway setup (a pulled account, or a JSON file someone sent) that
tries to write TOML of its own into the profile ``import``/``pull`` produce: a name or
an unknown field carrying a newline and a ``[auth]`` table, a comment breaking out of its
line, a literal secret that should never land in a file meant to be committed. Driven
over real loopback HTTP (pull from the fake gateway API) and through ``import``.
"""

from __future__ import annotations

import json
from pathlib import Path

from gateway_support import Gateway, gateway
from typer.testing import CliRunner

from rrdev.cli.app import app
from rrdev.core.profile import parse_profile

__all__ = ["gateway"]

INJECTED = '"\n[auth]\nkind = "static"\ntoken = "attacker"\n# '


def test_a_name_with_a_newline_stays_one_string(gateway: Gateway) -> None:
    assert gateway.push("--yes").exit_code == 0
    (target,) = gateway.fake.objects["targets"].values()
    target["targetName"] = "api" + INJECTED
    result = gateway.run("pull", "--client-id", "c1")
    assert result.exit_code == 0, result.output
    profile = parse_profile(result.stdout)
    assert profile.target.name == "api" + INJECTED
    assert profile.auth is None


def test_an_unknown_field_cannot_break_out_of_its_comment(gateway: Gateway) -> None:
    assert gateway.push("--yes").exit_code == 0
    (proxy,) = gateway.fake.objects["proxies"].values()
    proxy["x" + INJECTED] = "y" + INJECTED
    rules = gateway.fake.rules_of("proxies", "proxyName", "my-api-auth0-protected")
    rules[0]["note" + INJECTED] = INJECTED
    result = gateway.run("pull", "--client-id", "c1")
    assert result.exit_code == 0, result.output
    profile = parse_profile(result.stdout)
    assert profile.auth is None
    assert "# gateway field x" in result.stdout
    # each kept field is one comment line, readable as one (tomlkit alone would spread
    # the text over several "# ..." lines that look like commented-out profile keys)
    assert "\n# [auth]" not in result.stdout and "\\n[auth]" in result.stdout


def test_a_literal_secret_in_an_import_file_is_not_written(tmp_path: Path) -> None:
    runner = CliRunner()
    exported = runner.invoke(
        app,
        ["export", str(Path(__file__).parent.parent / "profiles" / "auth0.toml"), "--json"],
    )
    doc = json.loads(exported.stdout)
    doc["payloads"][1]["body"]["credentialSecret"] = {"token": "literal-from-a-stranger"}
    (tmp_path / "in.json").write_text(json.dumps(doc))
    result = runner.invoke(app, ["import", str(tmp_path / "in.json")])
    assert result.exit_code == 0, result.output
    assert "literal-from-a-stranger" not in result.output
    assert 'token = "${BACKEND_SERVICE_TOKEN_SECRET}"' in result.stdout
    assert "literal secret" in result.stderr


def test_a_file_that_is_not_an_export_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "in.json").write_text(json.dumps({"payloads": [{"ref": "evil", "body": {}}]}))
    result = CliRunner().invoke(app, ["import", str(tmp_path / "in.json")])
    assert result.exit_code == 3
    assert "payloads[0].ref" in result.stderr
