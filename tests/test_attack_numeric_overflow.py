"""Attack: a correctly signed token whose numeric date is past float range.

``exp = 1000…0`` (401 digits) is a valid JSON integer that Python parses exactly, but
``math.isfinite`` raised OverflowError on it, so verification raised instead of
rejecting: an issuer-signed (or test-minted) token could turn a 401 into a 500, and
``rrdev token decode`` (showing any token, verified or not) died with a traceback.
Found by tests/test_fuzz_tokens.py. The token is refused as ``claim_malformed`` and
decoded with the number shown as it is.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import NOW, make_token, rsa_key, verify
from path_attack_support import ERROR_KEYS
from proxy_support import Backend, mint, profile_text, raw_request, run_proxy, wait_for
from typer.testing import CliRunner

pytestmark = pytest.mark.usefixtures("keyset")

HUGE = 10**400


@pytest.mark.parametrize("claim", ["exp", "nbf"])
@pytest.mark.parametrize("value", [HUGE, -HUGE])
async def test_verify_rejects_a_date_past_float_range(claim: str, value: int) -> None:
    ver = await verify(make_token(rsa_key(), **{claim: value}), now=NOW)
    assert ver.reason == "claim_malformed"
    assert claim in ver.message and "not a number of seconds" in ver.message


@pytest.mark.parametrize("claim", ["exp", "nbf"])
async def test_the_proxy_answers_401_and_forwards_nothing(
    backend: Backend, tmp_path: Path, claim: str
) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(profile_text(backend.url))
    token = mint(**{claim: HUGE})
    async with run_proxy(profile) as proxy:
        answer = await raw_request(
            proxy.port, "GET", "/api/v1/products", [("Authorization", f"Bearer {token}")]
        )
        await wait_for(lambda: len(proxy.records) == 1)
    assert answer.status == 401, answer.body
    body = answer.json()
    assert set(body) == ERROR_KEYS
    assert (body["status"], body["reason"]) == (401, "claim_malformed")
    assert 'error="invalid_token"' in (answer.header("www-authenticate") or "")
    assert answer.header("requestrocket-proxy-code") == "proxy-access-denied"
    assert token not in answer.body.decode()
    assert backend.hits == 0
    assert proxy.records[0].reason == "claim_malformed"


def test_token_decode_shows_the_number_without_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from rrdev.cli.app import app

    monkeypatch.setenv("NO_COLOR", "1")
    monkeypatch.setenv("COLUMNS", "2000")
    token = make_token(rsa_key(), exp=HUGE, nbf=-HUGE, iat=1e308)
    result = CliRunner().invoke(app, ["token", "decode", token])
    assert result.exit_code == 0, result.output
    assert "Traceback" not in result.output
    assert f"{HUGE} (not a representable time)" in result.stdout
    assert "1e+308 (not a representable time)" in result.stdout
