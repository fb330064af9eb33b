"""The on-disk token cache (rrdev.core.tokens.TokenCache): file modes, atomic writes,
expiry, corruption, symlinks, clearing."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import stat
from pathlib import Path

import pytest

from rrdev.clients.oauth2 import FetchedToken, refresh_margin
from rrdev.clients.token_cache import (
    CACHE_DIR_ENV,
    TokenCache,
    TokenCacheError,
    token_cache_dir,
)

NOW = 1_800_000_000.0
KEY = hashlib.sha256(b"a cache key").hexdigest()
OTHER_KEY = hashlib.sha256(b"another key").hexdigest()


def token(lifetime: float = 3600, value: str = "eyJ.a.b", obtained: float = NOW) -> FetchedToken:
    return FetchedToken(
        access_token=value,
        token_type="Bearer",
        expires_at=obtained + lifetime,
        scope="read:products",
        raw={"token_type": "Bearer", "expires_in": lifetime},
        obtained_at=obtained,
        token_url="https://tenant.auth0.com/oauth/token",
    )


@pytest.fixture
def warnings_seen() -> list[str]:
    return []


@pytest.fixture
def cache(tmp_path: Path, warnings_seen: list[str]) -> TokenCache:
    return TokenCache(tmp_path / "cache" / "tokens", on_warning=warnings_seen.append)


def mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


# ------------------------------------------------------------------ writing and reading


def test_round_trip_marks_the_token_as_cached(cache: TokenCache) -> None:
    assert cache.put(KEY, token())
    hit = cache.get(KEY, NOW + 10)
    assert hit is not None and hit.from_cache
    assert hit.access_token == "eyJ.a.b"
    assert hit.expires_at == NOW + 3600 and hit.obtained_at == NOW
    assert hit.scope == "read:products" and hit.raw == {"token_type": "Bearer", "expires_in": 3600}
    assert cache.get(OTHER_KEY, NOW) is None


def test_file_is_0600_in_a_0700_directory_named_by_the_key_hash(
    cache: TokenCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    old = os.umask(0)  # even with a permissive umask
    try:
        cache.put(KEY, token())
    finally:
        os.umask(old)
    path = cache.path_for(KEY)
    assert path.name == f"{KEY}.json"
    assert mode(path) == 0o600
    assert mode(cache.directory) == 0o700


def test_an_existing_open_directory_is_tightened(cache: TokenCache) -> None:
    cache.directory.mkdir(parents=True, mode=0o755)
    os.chmod(cache.directory, 0o755)
    cache.put(KEY, token())
    assert mode(cache.directory) == 0o700


def test_the_folders_it_creates_are_0700_parents_included(
    tmp_path: Path, warnings_seen: list[str]
) -> None:
    # mkdir(parents=True) would make the parents with the umask's mode (0755 here).
    cache = TokenCache(tmp_path / "xdg" / "rrdev" / "tokens", on_warning=warnings_seen.append)
    old = os.umask(0o022)
    try:
        assert cache.put(KEY, token())
    finally:
        os.umask(old)
    assert mode(tmp_path / "xdg") == 0o700
    assert mode(tmp_path / "xdg" / "rrdev") == 0o700
    assert mode(cache.directory) == 0o700
    assert warnings_seen == []


def test_an_open_existing_folder_is_tightened_with_a_message(
    cache: TokenCache, warnings_seen: list[str]
) -> None:
    cache.directory.mkdir(parents=True)
    os.chmod(cache.directory, 0o755)
    assert cache.put(KEY, token())
    assert mode(cache.directory) == 0o700
    assert warnings_seen == [
        f"the token cache {cache.directory} was open to other users (0755); rrdev made it "
        "private (0700)"
    ]
    assert cache.get(KEY, NOW) is not None
    assert len(warnings_seen) == 1  # said once: the folder is private now


def test_an_open_folder_that_cannot_be_tightened_is_refused(
    cache: TokenCache, warnings_seen: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache.directory.mkdir(parents=True)
    os.chmod(cache.directory, 0o775)

    def refuse(path: object, mode: int) -> None:
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(os, "chmod", refuse)
    assert not cache.put(KEY, token())
    assert list(cache.directory.iterdir()) == []  # nothing written into the open folder
    (warning,) = warnings_seen
    assert "open to other users (0775) and cannot be made private" in warning
    assert "not using the token cache" in warning
    with pytest.raises(TokenCacheError) as refused:
        cache.clear()
    assert "chmod 700" in refused.value.hint


def test_writes_are_atomic_and_leave_no_temp_files(cache: TokenCache) -> None:
    for n in range(3):
        cache.put(KEY, token(value=f"token-{n}"))
    assert [p.name for p in cache.directory.iterdir()] == [f"{KEY}.json"]
    hit = cache.get(KEY, NOW)
    assert hit is not None and hit.access_token == "token-2"


def test_a_failed_write_warns_and_leaves_nothing_behind(
    cache: TokenCache, warnings_seen: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    cache.put(KEY, token(value="old-token"))

    def refuse(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", refuse)
    assert cache.put(KEY, token(value="new-token")) is False
    monkeypatch.undo()
    assert "No space left" in warnings_seen[-1]
    assert [p.name for p in cache.directory.iterdir()] == [f"{KEY}.json"]
    hit = cache.get(KEY, NOW)
    assert hit is not None and hit.access_token == "old-token"  # the old file is intact


def test_the_file_holds_no_client_secret_and_keys_must_be_hashes(cache: TokenCache) -> None:
    cache.put(KEY, token())
    entry = json.loads(cache.path_for(KEY).read_text())
    assert "client_secret" not in entry and "client_id" not in entry
    with pytest.raises(ValueError):
        cache.path_for("../../etc/passwd")


# ------------------------------------------------------------------ expiry


@pytest.mark.parametrize(
    ("lifetime", "margin"), [(86400, 60), (3600, 60), (600, 60), (300, 30), (10, 1), (0, 0)]
)
def test_refresh_margin(lifetime: float, margin: float) -> None:
    assert refresh_margin(lifetime) == margin


@pytest.mark.parametrize(
    ("lifetime", "age", "reused"),
    [
        (3600, 0, True),
        (3600, 3600 - 61, True),
        (3600, 3600 - 59, False),
        (3600, 4000, False),
        (10, 8.9, True),  # short tokens: a tenth of the lifetime
        (10, 9.1, False),
    ],
)
def test_tokens_are_reused_until_shortly_before_expiry(
    cache: TokenCache, lifetime: float, age: float, reused: bool
) -> None:
    cache.put(KEY, token(lifetime))
    assert (cache.get(KEY, NOW + age) is not None) is reused


def test_static_tokens_without_expiry_are_not_cached(cache: TokenCache) -> None:
    assert cache.put(KEY, FetchedToken(access_token="static")) is False
    assert not cache.directory.exists()


# ------------------------------------------------------------------ corruption


CORRUPT = [
    pytest.param(b"{not json", id="not-json"),
    pytest.param(b"[]", id="not-an-object"),
    pytest.param(b'{"format": "something-else"}', id="other-format"),
    pytest.param(None, id="wrong-key-inside"),
    pytest.param("times", id="expires-before-obtained"),
    pytest.param("token", id="token-with-a-newline"),
    pytest.param("missing", id="missing-field"),
]


@pytest.mark.parametrize("damage", CORRUPT)
def test_a_corrupt_file_is_discarded_with_a_warning(
    cache: TokenCache, warnings_seen: list[str], damage: bytes | str | None
) -> None:
    cache.put(KEY, token())
    path = cache.path_for(KEY)
    entry = json.loads(path.read_text())
    if isinstance(damage, bytes):
        data = damage
    else:
        if damage is None:
            entry["key"] = OTHER_KEY
        elif damage == "times":
            entry["expires_at"] = entry["obtained_at"] - 1
        elif damage == "token":
            entry["access_token"] = "abc\nInjected: header"
        else:
            del entry["expires_at"]
        data = json.dumps(entry).encode()
    path.write_bytes(data)
    assert cache.get(KEY, NOW) is None
    assert any("corrupted" in w for w in warnings_seen)
    assert not path.exists()


def test_a_file_others_can_read_is_never_trusted(
    cache: TokenCache, warnings_seen: list[str]
) -> None:
    cache.put(KEY, token())
    os.chmod(cache.path_for(KEY), 0o644)
    assert cache.get(KEY, NOW) is None
    assert "0600" in warnings_seen[-1]


def test_without_a_callback_warnings_go_to_the_logger(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cache = TokenCache(tmp_path / "tokens")
    cache.put(KEY, token())
    cache.path_for(KEY).write_text("garbage")
    with caplog.at_level(logging.WARNING, logger="rrdev.clients.token_cache"):
        assert cache.get(KEY, NOW) is None
    assert "corrupted" in caplog.text


# ------------------------------------------------------------------ symlinks


def test_a_symlinked_file_is_refused(
    cache: TokenCache, warnings_seen: list[str], tmp_path: Path
) -> None:
    cache.put(OTHER_KEY, token(value="attacker-token"))
    elsewhere = tmp_path / "elsewhere.json"
    cache.path_for(OTHER_KEY).rename(elsewhere)
    cache.path_for(KEY).symlink_to(elsewhere)
    assert cache.get(KEY, NOW) is None
    assert "symbolic link" in warnings_seen[-1]
    assert cache.put(KEY, token()) is False
    assert cache.path_for(KEY).is_symlink() and "attacker-token" in elsewhere.read_text()


def test_a_symlinked_directory_is_refused(tmp_path: Path, warnings_seen: list[str]) -> None:
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    link = tmp_path / "tokens"
    link.symlink_to(real)
    cache = TokenCache(link, on_warning=warnings_seen.append)
    assert cache.put(KEY, token()) is False
    assert cache.get(KEY, NOW) is None
    assert "symbolic link" in warnings_seen[0]
    assert list(real.iterdir()) == []
    with pytest.raises(TokenCacheError) as caught:
        cache.clear()
    assert caught.value.exit_code == 3


# ------------------------------------------------------------------ clear and location


def test_clear_removes_every_token_and_counts_them(cache: TokenCache) -> None:
    assert cache.clear() == 0  # no directory yet
    cache.put(KEY, token())
    cache.put(OTHER_KEY, token())
    (cache.directory / ".tmp-stray.part").write_text("left by a crash")
    (cache.directory / "README").write_text("not ours to remove")
    assert cache.clear() == 2
    assert [p.name for p in cache.directory.iterdir()] == ["README"]
    assert cache.get(KEY, NOW) is None


def test_cache_dir_from_the_environment_or_the_user_cache_dir(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert token_cache_dir({CACHE_DIR_ENV: str(tmp_path)}) == tmp_path / "tokens"
    import platformdirs

    monkeypatch.setattr(platformdirs, "user_cache_dir", lambda name: f"/home/u/.cache/{name}")
    assert token_cache_dir({}) == Path("/home/u/.cache/rrdev/tokens")
    monkeypatch.setenv(CACHE_DIR_ENV, str(tmp_path / "x"))
    assert TokenCache().directory == tmp_path / "x" / "tokens"
