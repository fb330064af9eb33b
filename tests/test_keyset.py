"""The local signing keyset: on-disk safety, rotation, minting, and that what it
signs verifies through the same path as a real issuer's tokens."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import jwt
import pytest
from factories import NOW, b64url, make_cred

from rrdev.clients.jwks import JwksCache
from rrdev.core.errors import KeysetError
from rrdev.core.keyset import KEYSET_FILE, Keyset, local_public_jwks, mint_token, rrdev_home
from rrdev.core.tokens import decode_unverified
from rrdev.core.verify import verify_token

LOCAL_ISS = "https://rrdev.local/"
LOCAL_AUD = "https://api.myapp.com"


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "rrdev-home"


async def verify_local(token: str, keyset: Keyset, now: float = NOW) -> object:
    cred = make_cred(issuer=LOCAL_ISS, audience=(LOCAL_AUD,), jwks_uri=None)
    return await verify_token(token, cred, JwksCache(keyset.jwks(now=now)), now=now)


# ------------------------------------------------------------------- home


def test_rrdev_home_prefers_the_environment(tmp_path: Path) -> None:
    assert rrdev_home({"RRDEV_HOME": str(tmp_path)}) == tmp_path
    assert rrdev_home({}).name.lower() == "rrdev"


def test_load_or_create_uses_rrdev_home(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RRDEV_HOME", str(home))
    keyset = Keyset.load_or_create()
    assert keyset.path == home / KEYSET_FILE


# --------------------------------------------------------------- creation


def test_creation_makes_a_private_directory_and_file(home: Path) -> None:
    keyset = Keyset.load_or_create(home)
    path = home / KEYSET_FILE
    assert mode(home) == 0o700
    assert mode(path) == 0o600
    assert [p.name for p in home.iterdir()] == [KEYSET_FILE]  # no temp file left behind
    document = json.loads(path.read_text())
    assert document["format"] == "rrdev-keyset" and document["version"] == 1
    assert document["signing_kid"] == keyset.signing_kid
    assert document["keys"][0]["private_key_pem"].startswith("-----BEGIN PRIVATE KEY-----")


def test_a_keyset_readable_by_others_is_put_back_to_0600(home: Path) -> None:
    first = Keyset.load_or_create(home)
    path = home / KEYSET_FILE
    path.chmod(0o644)
    again = Keyset.load_or_create(home)
    assert mode(path) == 0o600
    assert again.signing_kid == first.signing_kid


def test_reload_gives_the_same_keys(home: Path) -> None:
    first = Keyset.load_or_create(home)
    again = Keyset.load_or_create(home)
    assert again.signing_kid == first.signing_kid
    assert again.jwks(now=NOW) == first.jwks(now=NOW)
    token = first.sign({"sub": "x"})
    jwk = jwt.PyJWK(again.jwks(now=NOW)["keys"][0])
    assert jwt.decode(token, jwk, algorithms=["RS256"])["sub"] == "x"


def test_kid_is_the_rfc7638_thumbprint(home: Path) -> None:
    keyset = Keyset.load_or_create(home)
    jwk = keyset.jwks(now=NOW)["keys"][0]
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"))
    thumbprint = b64url(hashlib.sha256(canonical.encode()).digest())
    assert thumbprint.startswith(keyset.signing_kid)
    assert len(keyset.signing_kid) == 16


def test_jwks_has_public_members_only(home: Path) -> None:
    (jwk,) = Keyset.load_or_create(home).jwks(now=NOW)["keys"]
    assert set(jwk) == {"kty", "n", "e", "kid", "alg", "use"}
    assert (jwk["kty"], jwk["alg"], jwk["use"]) == ("RSA", "RS256", "sig")


# ------------------------------------------------------------ refusing files


@pytest.mark.parametrize(
    ("content", "detail"),
    [
        ("{not json", "not JSON"),
        ("", "not JSON"),
        ("[]", "not an rrdev keyset"),
        ('{"format": "rrdev-keyset", "version": 9}', "unsupported version"),
        ('{"format": "rrdev-keyset", "version": 1}', "missing field 'keys'"),
        ('{"format": "rrdev-keyset", "version": 1, "keys": []}', "non-empty list"),
    ],
    ids=["truncated", "empty", "list", "version", "no-keys", "empty-keys"],
)
def test_corrupt_file_is_an_error_naming_the_path(home: Path, content: str, detail: str) -> None:
    home.mkdir()
    path = home / KEYSET_FILE
    path.write_text(content)
    with pytest.raises(KeysetError) as caught:
        Keyset.load_or_create(home)
    assert str(path) in str(caught.value)
    assert detail in str(caught.value)
    assert "rrdev issuer rotate --reset" in caught.value.hint
    assert caught.value.exit_code == 3
    assert path.read_text() == content  # never silently regenerated


def test_edited_key_material_is_detected(home: Path) -> None:
    Keyset.load_or_create(home)
    path = home / KEYSET_FILE
    document = json.loads(path.read_text())
    document["keys"][0]["kid"] = "hand-edited-kid"
    document["signing_kid"] = "hand-edited-kid"
    path.write_text(json.dumps(document))
    with pytest.raises(KeysetError, match="does not match its own thumbprint"):
        Keyset.load_or_create(home)

    document["keys"][0]["private_key_pem"] = "-----BEGIN PRIVATE KEY-----\ngarbage\n"
    path.write_text(json.dumps(document))
    with pytest.raises(KeysetError, match="corrupt"):
        Keyset.load_or_create(home)


def test_local_public_jwks_is_the_keysets_jwks(home: Path) -> None:
    """The verify-only read (no RSA consistency check) gives the very same public keys."""
    created = local_public_jwks(home, now=NOW)  # first use creates the keyset
    keyset = Keyset.load_or_create(home)
    assert created == keyset.jwks(now=NOW)
    keyset.rotate(grace_seconds=60, now=NOW)
    assert local_public_jwks(home, now=NOW) == keyset.jwks(now=NOW)
    assert len(local_public_jwks(home, now=NOW)["keys"]) == 2


def test_local_public_jwks_checks_the_file_as_load_does(home: Path, tmp_path: Path) -> None:
    Keyset.load_or_create(home)
    path = home / KEYSET_FILE
    document = json.loads(path.read_text())
    document["keys"][0]["kid"] = document["signing_kid"] = "hand-edited-kid"
    path.write_text(json.dumps(document))
    with pytest.raises(KeysetError, match="does not match its own thumbprint"):
        local_public_jwks(home)
    path.write_text("{")
    with pytest.raises(KeysetError, match="corrupt"):
        local_public_jwks(home)
    path.unlink()
    Keyset.load_or_create(tmp_path / "elsewhere")
    path.symlink_to(tmp_path / "elsewhere" / KEYSET_FILE)
    with pytest.raises(KeysetError, match="symbolic link"):
        local_public_jwks(home)


def test_symlinked_keyset_file_is_refused(home: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    Keyset.load_or_create(elsewhere)
    home.mkdir()
    (home / KEYSET_FILE).symlink_to(elsewhere / KEYSET_FILE)
    with pytest.raises(KeysetError, match="symbolic link"):
        Keyset.load_or_create(home)


def test_dangling_symlink_is_refused_not_written_through(home: Path, tmp_path: Path) -> None:
    target = tmp_path / "planted.json"
    home.mkdir()
    (home / KEYSET_FILE).symlink_to(target)
    with pytest.raises(KeysetError, match="symbolic link"):
        Keyset.load_or_create(home)
    assert not target.exists()


def test_unreadable_file_is_an_error(home: Path) -> None:
    if os.geteuid() == 0:
        pytest.skip("root reads anything")
    Keyset.load_or_create(home)
    path = home / KEYSET_FILE
    path.chmod(0)
    with pytest.raises(KeysetError, match="cannot read"):
        Keyset.load_or_create(home)


def test_reset_replaces_a_corrupt_keyset(home: Path) -> None:
    home.mkdir()
    (home / KEYSET_FILE).write_text("{corrupt")
    fresh = Keyset.reset(home)
    assert Keyset.load_or_create(home).signing_kid == fresh.signing_kid
    assert mode(home / KEYSET_FILE) == 0o600


# ----------------------------------------------------------------- rotation


async def test_rotate_keeps_the_old_key_until_retire_after(home: Path) -> None:
    keyset = Keyset.load_or_create(home, now=NOW - 86400)
    old_kid = keyset.signing_kid
    old_token = mint_token(keyset, issuer=LOCAL_ISS, audience=LOCAL_AUD, now=NOW)

    new_kid = keyset.rotate(grace_seconds=3600, now=NOW)
    assert keyset.signing_kid == new_kid != old_kid
    reloaded = Keyset.load_or_create(home)
    assert reloaded.signing_kid == new_kid

    in_grace = [k["kid"] for k in reloaded.jwks(now=NOW + 3599)["keys"]]
    assert in_grace == [new_kid, old_kid]  # signing key first
    assert (await verify_local(old_token, reloaded, now=NOW + 60)).ok

    after = [k["kid"] for k in reloaded.jwks(now=NOW + 3600)["keys"]]
    assert after == [new_kid]
    new_token = mint_token(reloaded, issuer=LOCAL_ISS, audience=LOCAL_AUD, now=NOW + 3600)
    assert decode_unverified(new_token).header["kid"] == new_kid
    assert (await verify_local(new_token, reloaded, now=NOW + 3600)).ok
    stale = await verify_local(old_token, reloaded, now=NOW + 3600)
    assert stale.reason == "key_not_found"


def test_rotate_forgets_keys_past_their_grace(home: Path) -> None:
    keyset = Keyset.load_or_create(home, now=NOW)
    first = keyset.signing_kid
    second = keyset.rotate(grace_seconds=60, now=NOW)
    third = keyset.rotate(grace_seconds=60, now=NOW + 120)
    kids = [k.kid for k in Keyset.load_or_create(home).keys]
    assert first not in kids
    assert kids == [second, third]


def test_sign_with_an_unknown_kid_is_an_error() -> None:
    keyset = Keyset.generate(now=NOW)
    with pytest.raises(KeysetError, match="no key 'nope'"):
        keyset.sign({"sub": "x"}, kid="nope")


# ------------------------------------------------------------------ minting


@pytest.fixture(scope="module")
def keyset() -> Keyset:
    return Keyset.generate(now=NOW)


async def test_minted_token_verifies_like_a_real_one(keyset: Keyset) -> None:
    token = mint_token(keyset, issuer=LOCAL_ISS, audience=LOCAL_AUD, scope="read:a", now=NOW)
    ver = await verify_local(token, keyset)
    assert ver.ok, ver.message
    claims = decode_unverified(token).claims
    assert claims == {
        "iss": LOCAL_ISS,
        "sub": "rrdev-local@clients",
        "aud": LOCAL_AUD,
        "iat": NOW,
        "exp": NOW + 3600,
        "azp": "rrdev-local",
        "gty": "client-credentials",
        "scope": "read:a",
    }
    assert decode_unverified(token).header == {
        "alg": "RS256",
        "typ": "JWT",
        "kid": keyset.signing_kid,
    }


async def test_minted_expired_token(keyset: Keyset) -> None:
    token = mint_token(keyset, issuer=LOCAL_ISS, audience=LOCAL_AUD, expires_in=-60, now=NOW)
    assert decode_unverified(token).claims["exp"] == NOW - 60
    ver = await verify_local(token, keyset)
    assert ver.reason == "token_expired"
    assert "1m00s ago at" in ver.message


async def test_minted_not_yet_valid_token(keyset: Keyset) -> None:
    token = mint_token(keyset, issuer=LOCAL_ISS, audience=LOCAL_AUD, not_before=120, now=NOW)
    assert decode_unverified(token).claims["nbf"] == NOW + 120
    assert (await verify_local(token, keyset)).reason == "token_not_yet_valid"


def test_mint_claims_override_everything(keyset: Keyset) -> None:
    token = mint_token(
        keyset,
        issuer=LOCAL_ISS,
        audience=[LOCAL_AUD, "https://other"],
        subject="svc@clients",
        claims={"gty": "password", "https://myapp.com/roles": ["admin"]},
        now=NOW,
    )
    claims = decode_unverified(token).claims
    assert claims["aud"] == [LOCAL_AUD, "https://other"]
    assert claims["azp"] == "svc"
    assert claims["gty"] == "password"
    assert claims["https://myapp.com/roles"] == ["admin"]
    assert "scope" not in claims


def test_sign_ignores_an_alg_override(keyset: Keyset) -> None:
    token = keyset.sign({"sub": "x"}, headers={"alg": "HS256", "x-test": "1"})
    header = decode_unverified(token).header
    assert header["alg"] == "RS256" and header["x-test"] == "1"


def test_concurrent_creation_keeps_the_first_writers_keyset(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    winner = Keyset.load_or_create(home)
    real_load = Keyset.load.__func__  # type: ignore[attr-defined]
    calls: list[Path] = []

    def racing_load(cls: type[Keyset], path: Path) -> Keyset:
        # The first look finds no file (another process has not written yet);
        # by the time this process writes, the other one has.
        calls.append(path)
        if len(calls) == 1:
            raise FileNotFoundError(str(path))
        return real_load(cls, path)

    monkeypatch.setattr(Keyset, "load", classmethod(racing_load))
    loser = Keyset.load_or_create(home)
    assert loser.signing_kid == winner.signing_kid
    assert len(calls) == 2
