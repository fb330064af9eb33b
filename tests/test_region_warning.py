"""The seed's region mistake: ``credentialRegion`` differing from ``proxyRegion`` is a
``rrdev validate`` warning naming the file, line and key (never an error)."""

from __future__ import annotations

from pathlib import Path

from proxy_support import profile_text
from typer.testing import CliRunner

from rrdev.cli.app import app
from rrdev.core.profile import parse_profile, profile_warnings


def regional(proxy: str, credential: str, target: str = "us-east-1") -> str:
    text = profile_text(
        "http://127.0.0.1:9",
        proxy=f'region = "{proxy}"',
        target=f'region = "{target}"',
        credential=f'region = "{credential}"',
    )
    return text.replace("[proxy_credential]\n", f'[proxy_credential]\nregion = "{proxy}"\n')


def test_a_credential_in_another_region_is_warned_about() -> None:
    profile = parse_profile(regional("us-east-1", "eu-west-1"), "p.toml")
    (warning,) = [w for w in profile_warnings(profile, {}) if "region" in w.message]
    assert warning.key == "target_credential.region"
    assert warning.file == "p.toml" and warning.line is not None
    assert "'eu-west-1'" in warning.message and "'us-east-1'" in warning.message


def test_matching_regions_are_quiet() -> None:
    profile = parse_profile(regional("us-east-1", "us-east-1"), "p.toml")
    assert not [w for w in profile_warnings(profile, {}) if "region" in w.message]


def test_validate_reports_it_and_strict_fails(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("NO_COLOR", "1")
    path = tmp_path / "rrdev.toml"
    path.write_text(regional("us-east-1", "us-east-1", target="eu-central-1"))
    plain = CliRunner().invoke(app, ["validate", str(path)])
    assert plain.exit_code == 0
    assert "target.region" in plain.output and "eu-central-1" in plain.output
    strict = CliRunner().invoke(app, ["validate", "--strict", str(path)])
    assert strict.exit_code != 0
