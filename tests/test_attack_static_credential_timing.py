"""Attack: guessing a static proxy credential byte by byte.

A comparison that stops at the first differing byte (``==`` on strings) answers a key
with a right prefix measurably later than a wrong one, and one that compares lengths
first leaks the key's length. rrdev hashes what was sent and compares SHA-256 digests
with ``hmac.compare_digest``: always 32 bytes against 32 bytes, whatever the guess.
The answers themselves give nothing away either: a nearly right key and a wholly wrong
one get the same bytes back, and neither reaches the backend.
"""

from __future__ import annotations

import hmac
from pathlib import Path

import pytest
from proxy_support import Backend, profile_text, raw_request, run_proxy

import rrdev.core.static_auth as static_auth

KEY = "rk_live_0123456789abcdef0123456789abcdef"
GUESSES = [
    KEY[:-1] + "0",  # all but the last byte right
    KEY[:8],  # a right prefix, shorter
    KEY + "x",  # right, then one byte more
    "x" * len(KEY),  # the right length, all wrong
    "a",
    "y" * 4096,
]


@pytest.fixture
def apikey_profile(tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("PROXY_KEY", KEY)
    path = tmp_path / "rrdev.toml"
    credential = 'auth_type = "apiKey"\nsecret = "${PROXY_KEY}"\n'
    path.write_text(profile_text(backend.url, proxy_credential=credential))
    return path


async def test_every_guess_is_compared_as_two_equal_length_digests(
    apikey_profile: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    compared: list[tuple[int, int]] = []
    real = hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((len(a), len(b)))
        return real(a, b)

    monkeypatch.setattr(static_auth.hmac, "compare_digest", spy)
    async with run_proxy(apikey_profile) as proxy:
        for guess in [*GUESSES, KEY]:
            await raw_request(proxy.port, "GET", "/api/v1/products", [("Authorization", guess)])
    assert compared == [(32, 32)] * (len(GUESSES) + 1)
    assert backend.hits == 1  # only the right key


async def test_near_misses_and_wild_guesses_get_the_same_answer(
    apikey_profile: Path, backend: Backend
) -> None:
    async with run_proxy(apikey_profile) as proxy:
        answers = [
            await raw_request(proxy.port, "GET", "/api/v1/products", [("Authorization", g)])
            for g in GUESSES
        ]
    bodies = {a.body for a in answers}
    assert len(bodies) == 1
    (body,) = bodies
    assert b"credential_invalid" in body
    assert all(a.status == 401 for a in answers)
    headers = {tuple((k, v) for k, v in a.headers if k.lower() != "date") for a in answers}
    assert len(headers) == 1
    assert backend.hits == 0
    for guess in GUESSES:
        if len(guess) > 1:
            assert guess.encode() not in body
