"""The provider-mode keys of [proxy_credential] as the loader reads them: issuer as a
string or an array, {tenantid} with its tenants allow-list, client_id as a string or
an array, token_use, max_lifetime_seconds and provider; every mistake names the file,
the line and the key, and `rrdev validate` reports it."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from rrdev.cli.app import app
from rrdev.core.errors import ProfileError
from rrdev.core.model import ProxyCredential
from rrdev.core.profile import parse_profile

FILE = "profiles/x.toml"
TENANT = "72f988bf-86f1-41af-91ab-2d7cd011db47"


def credential(lines: str) -> str:
    return textwrap.dedent(
        """
        [proxy_credential]
        jwks_uri = "https://login.example/keys"
        """
    ) + textwrap.dedent(lines)


def parse(lines: str) -> ProxyCredential:
    return parse_profile(credential(lines), FILE).proxy_credential


def marked_line(lines: str) -> int:
    text = credential(lines).splitlines()
    return next(n for n, line in enumerate(text, 1) if "# <-" in line)


def test_a_single_issuer_is_its_own_list() -> None:
    cred = parse('issuer = "https://a.example/"\naudience = "x"\n')
    assert (cred.issuer, cred.issuers, cred.accepted_issuers) == (
        "https://a.example/",
        ("https://a.example/",),
        ("https://a.example/",),
    )
    assert (cred.tenants, cred.client_ids, cred.max_lifetime_seconds, cred.provider) == (
        (),
        (),
        None,
        None,
    )


def test_provider_keys_are_read() -> None:
    cred = parse(
        f"""
        issuer = ["https://login.microsoftonline.com/{{tenantid}}/v2.0",
                  "https://sts.windows.net/{{tenantid}}/"]
        tenants = ["{TENANT}"]
        audience = "api://x"
        max_lifetime_seconds = 5400
        provider = "entra"
        """
    )
    assert cred.issuer == "https://login.microsoftonline.com/{tenantid}/v2.0"
    assert len(cred.issuers) == 2 and cred.tenants == (TENANT,)
    assert (cred.max_lifetime_seconds, cred.provider) == (5400, "entra")


def test_client_id_may_be_a_list() -> None:
    cred = parse('issuer = "https://pool"\nclient_id = ["a", "b"]\ntoken_use = "access"\n')
    assert (cred.client_id, cred.client_ids, cred.audience) == ("a", ("a", "b"), ())
    assert cred.accepted_client_ids == ("a", "b")


BAD = [
    # (lines with the marked line, message fragment, key)
    ('issuer = []  # <-\naudience = "x"\n', "must list at least one value", "issuer"),
    ('issuer = 42  # <-\naudience = "x"\n', "a string or a list of strings", "issuer"),
    ('issuer = ["https://a", ""]  # <-\naudience = "x"\n', "must not be empty", "issuer[1]"),
    (
        'issuer = "https://login/{tenantid}/v2.0"  # <-\naudience = "x"\n',
        "needs 'tenants'",
        "issuer",
    ),
    (
        'issuer = "https://login/{tenant}/v2.0"  # <-\naudience = "x"\n',
        "unknown placeholder '{tenant}'",
        "issuer",
    ),
    (
        'issuer = "https://l/{tenantid}/{tenantid}"  # <-\ntenants = ["a"]\naudience = "x"\n',
        "once",
        "issuer",
    ),
    (
        'issuer = "https://login/v2.0"\ntenants = ["a"]  # <-\naudience = "x"\n',
        "only used with {tenantid}",
        "tenants",
    ),
    (
        'issuer = "https://l/{tenantid}/"\ntenants = []  # <-\naudience = "x"\n',
        "at least one tenant",
        "tenants",
    ),
    (
        'issuer = "https://l/{tenantid}/"\ntenants = ["*"]  # <-\naudience = "x"\n',
        "no wildcards",
        "tenants[0]",
    ),
    (
        'issuer = "https://l/{tenantid}/"\ntenants = ["common"]  # <-\naudience = "x"\n',
        "sign-in alias",
        "tenants[0]",
    ),
    (
        'issuer = "https://l/{tenantid}/"\ntenants = ["a/b"]  # <-\naudience = "x"\n',
        "not a tenant id",
        "tenants[0]",
    ),
    ('issuer = "https://p"\nclient_id = []  # <-\n', "at least one value", "client_id"),
    ('issuer = "https://p"\nclient_id = [1]  # <-\n', "expected a string", "client_id[0]"),
    (
        'issuer = "https://p"\nclient_id = "a"\ntoken_use = "acess"  # <-\n',
        "did you mean 'access'",
        "token_use",
    ),
    (
        'issuer = "https://p"\naudience = "x"\nmax_lifetime_seconds = 0  # <-\n',
        "at least 1",
        "max_lifetime_seconds",
    ),
    (
        'issuer = "https://p"\naudience = "x"\nmax_lifetime_seconds = "1h"  # <-\n',
        "an integer",
        "max_lifetime_seconds",
    ),
    (
        'issuer = "https://p"\naudience = "x"\nprovider = "azure"  # <-\n',
        "expected one of 'auth0', 'okta'",
        "provider",
    ),
]


@pytest.mark.parametrize(("lines", "fragment", "key"), BAD)
def test_mistakes_name_file_line_and_key(lines: str, fragment: str, key: str) -> None:
    with pytest.raises(ProfileError) as caught:
        parse(lines)
    error = caught.value
    assert fragment in error.message, error.message
    assert (error.file, error.key) == (FILE, f"proxy_credential.{key}")
    assert error.line == marked_line(lines)


def test_provider_keys_with_auth_type_none_are_refused() -> None:
    with pytest.raises(ProfileError) as caught:
        parse_profile('[proxy_credential]\nauth_type = "none"\ntenants = ["a"]\n', FILE)
    assert caught.value.key == "proxy_credential.tenants"


def test_validate_reports_a_wildcard_tenant(tmp_path: Path) -> None:
    profile = tmp_path / "entra.toml"
    profile.write_text(
        '[target]\nbase_url = "http://127.0.0.1:9"\n'
        + credential('issuer = "https://l/{tenantid}/"\ntenants = ["*"]\naudience = "x"\n')
    )
    result = CliRunner().invoke(app, ["validate", str(profile)])
    assert result.exit_code != 0
    assert "proxy_credential.tenants[0]" in result.output and "no wildcards" in result.output
