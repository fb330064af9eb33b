"""Profile values that would quietly disable a check are refused at load, naming the
file, the line and the key: a leeway that keeps expired tokens alive, a JWKS refetch
interval that lets every unknown kid hit the issuer, a JWKS TTL that keeps removed keys
trusted for ever (or that the refetch interval cannot honour), and the types around
them (NaN, infinity, booleans and strings where numbers belong)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rrdev.cli.app import app
from rrdev.core.errors import ProfileError
from rrdev.core.model import ProxyCredential
from rrdev.core.profile import parse_profile

FILE = "profiles/limits.toml"
HEAD = """\
[target]
base_url = "http://127.0.0.1:9000"

[proxy_credential]
jwks_uri = "https://tenant.example/.well-known/jwks.json"
issuer = "https://tenant.example/"
audience = "https://api.example"
"""
#: The line the extra keys start on (HEAD has 7 lines).
FIRST = 8


def credential(extra: str) -> ProxyCredential:
    return parse_profile(HEAD + textwrap.dedent(extra), FILE).proxy_credential


LEEWAY = "fix the clock (NTP) rather than widening it"
REFETCH = "how often rrdev may fetch the JWKS again"
TTL = "a key the issuer removes (rotated out, or compromised) stays trusted"
BOOLEAN = "expected a boolean (true or false)"

REFUSED = [
    # (the extra line, the key named (on that line), the message, the hint)
    (
        "leeway_seconds = 100000",
        "leeway_seconds",
        "must be at most 300 seconds, got 100000: expired tokens would pass for 1d3h after "
        "their exp",
        LEEWAY,
    ),
    ("leeway_seconds = 300.5", "leeway_seconds", "must be at most 300 seconds, got 300.5", LEEWAY),
    (
        "leeway_seconds = -1",
        "leeway_seconds",
        "must be a finite number of seconds, at least 0",
        LEEWAY,
    ),
    ("leeway_seconds = nan", "leeway_seconds", "must be a finite number of seconds", LEEWAY),
    ("leeway_seconds = inf", "leeway_seconds", "must be a finite number of seconds", LEEWAY),
    (
        "leeway_seconds = true",
        "leeway_seconds",
        "expected a number of seconds, got a boolean",
        LEEWAY,
    ),
    (
        'leeway_seconds = "60"',
        "leeway_seconds",
        "expected a number of seconds, got a string",
        LEEWAY,
    ),
    (
        "jwks_refetch_interval_seconds = 0",
        "jwks_refetch_interval_seconds",
        "must be at least 1 second, got 0: every token with an unknown kid would fetch the "
        "JWKS again",
        REFETCH,
    ),
    (
        "jwks_refetch_interval_seconds = 0.25",
        "jwks_refetch_interval_seconds",
        "must be at least 1 second, got 0.25",
        REFETCH,
    ),
    (
        "jwks_refetch_interval_seconds = -inf",
        "jwks_refetch_interval_seconds",
        "must be a finite number of seconds, at least 0, got -inf",
        REFETCH,
    ),
    (
        "jwks_refetch_interval_seconds = false",
        "jwks_refetch_interval_seconds",
        "expected a number of seconds, got a boolean",
        REFETCH,
    ),
    ("jwks_ttl_seconds = 0", "jwks_ttl_seconds", "must be between 1 and 86400 seconds, got 0", TTL),
    ("jwks_ttl_seconds = 0.5", "jwks_ttl_seconds", "must be between 1 and 86400 seconds", TTL),
    (
        "jwks_ttl_seconds = 31536000",
        "jwks_ttl_seconds",
        "must be between 1 and 86400 seconds, got 31536000",
        TTL,
    ),
    ("jwks_ttl_seconds = inf", "jwks_ttl_seconds", "must be a finite number of seconds", TTL),
    (
        "jwks_ttl_seconds = [600]",
        "jwks_ttl_seconds",
        "expected a number of seconds, got a list",
        TTL,
    ),
    (
        "jwks_ttl_seconds = 10",
        "jwks_ttl_seconds",
        "10 is shorter than jwks_refetch_interval_seconds (30): the JWKS is fetched at most "
        "once per refetch interval",
        "set jwks_ttl_seconds to at least 30",
    ),
    (
        "jwks_refetch_interval_seconds = 900",
        "jwks_refetch_interval_seconds",
        "900 is longer than jwks_ttl_seconds (600, the default)",
        "set jwks_ttl_seconds to at least 900 as well",
    ),
    (
        'accept_sender_constrained_as_bearer = "yes"',
        "accept_sender_constrained_as_bearer",
        f"{BOOLEAN}, got a string",
        "",
    ),
    (
        "accept_sender_constrained_as_bearer = 1",
        "accept_sender_constrained_as_bearer",
        f"{BOOLEAN}, got an integer",
        "",
    ),
]


@pytest.mark.parametrize(("extra", "key", "message", "hint"), REFUSED, ids=[r[0] for r in REFUSED])
def test_a_value_that_would_disable_a_check_is_refused(
    extra: str, key: str, message: str, hint: str
) -> None:
    with pytest.raises(ProfileError) as caught:
        credential(extra)
    error = caught.value
    assert error.key == f"proxy_credential.{key}"
    assert error.file == FILE
    assert error.line == FIRST  # the line of the key that is named
    assert error.detail.startswith(message), error.detail
    assert hint in error.hint


ACCEPTED = [
    ("", 0.0, 600.0, 30.0, False),
    ("leeway_seconds = 300", 300.0, 600.0, 30.0, False),
    ("leeway_seconds = 0.5", 0.5, 600.0, 30.0, False),
    ("jwks_ttl_seconds = 86400\njwks_refetch_interval_seconds = 86400", 0.0, 86400, 86400, False),
    ("jwks_ttl_seconds = 1\njwks_refetch_interval_seconds = 1", 0.0, 1.0, 1.0, False),
    ("jwks_ttl_seconds = 10\njwks_refetch_interval_seconds = 5", 0.0, 10.0, 5.0, False),
    ("accept_sender_constrained_as_bearer = true", 0.0, 600.0, 30.0, True),
]


@pytest.mark.parametrize(
    ("extra", "leeway", "ttl", "interval", "accept"),
    ACCEPTED,
    ids=[a[0] or "defaults" for a in ACCEPTED],
)
def test_sensible_values_load(
    extra: str, leeway: float, ttl: float, interval: float, accept: bool
) -> None:
    cred = credential(extra)
    assert cred.leeway_seconds == leeway
    assert (cred.jwks_ttl_seconds, cred.jwks_refetch_interval_seconds) == (ttl, interval)
    assert cred.accept_sender_constrained_as_bearer is accept


def test_the_opt_in_is_a_jwt_verify_key() -> None:
    text = '[target]\nbase_url = "http://127.0.0.1:9000"\n\n[proxy_credential]\n'
    text += 'auth_type = "none"\naccept_sender_constrained_as_bearer = true\n'
    with pytest.raises(ProfileError) as caught:
        parse_profile(text, FILE)
    assert caught.value.key == "proxy_credential.accept_sender_constrained_as_bearer"
    assert "only used with auth_type = 'jwtVerify'" in caught.value.detail


def test_validate_reports_the_file_line_and_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "300")
    path = tmp_path / "rrdev.toml"
    path.write_text(HEAD + "leeway_seconds = 100000\n")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 3, result.output
    text = " ".join(result.stdout.split())
    assert f"{path}:{FIRST}: proxy_credential.leeway_seconds: must be at most 300 seconds" in text
    assert "fix the clock (NTP)" in text
