"""Attack: a token whose claims nest a thousand levels deep.

JSON that deep still fits in a few KiB and parses, but every part of rrdev that walks
claims recursively (rules, redaction of records, rendering) then hits Python's
recursion limit: the request went unrecorded (a record that cannot be built is
dropped), and ``explain --json`` printed a traceback. The token is refused when it is
decoded, before anything walks it: 401 ``token_malformed``, recorded, never forwarded.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from factories import NOW, make_token, rsa_key, verify
from path_attack_support import ERROR_KEYS
from proxy_support import Backend, mint, profile_text, raw_request, run_proxy, wait_for

from rrdev.core.errors import TokenInputError
from rrdev.core.tokens import MAX_JSON_DEPTH, decode_unverified

pytestmark = pytest.mark.usefixtures("keyset")


def nested(depth: int) -> object:
    value: object = "x"
    for level in range(depth):
        value = {"n": value} if level % 2 else [value]
    return value


def test_decoding_refuses_nesting_past_the_limit_and_keeps_real_claims() -> None:
    deep = make_token(rsa_key(), extra=nested(900))
    with pytest.raises(TokenInputError, match="nests objects or arrays more than"):
        decode_unverified(deep)
    fine = make_token(rsa_key(), extra=nested(MAX_JSON_DEPTH - 2))
    assert decode_unverified(fine).claims["extra"] == nested(MAX_JSON_DEPTH - 2)


async def test_verify_rejects_it_as_malformed() -> None:
    ver = await verify(make_token(rsa_key(), extra=nested(900)), now=NOW)
    assert ver.reason == "token_malformed"


async def test_the_proxy_answers_401_records_it_and_forwards_nothing(
    backend: Backend, tmp_path: Path
) -> None:
    profile = tmp_path / "p.toml"
    profile.write_text(profile_text(backend.url))
    token = mint(extra=nested(900))
    async with run_proxy(profile) as proxy:
        answer = await raw_request(
            proxy.port, "GET", "/api/v1/products", [("Authorization", f"Bearer {token}")]
        )
        await wait_for(lambda: len(proxy.records) == 1)
    assert answer.status == 401, answer.body
    body = answer.json()
    assert set(body) == ERROR_KEYS
    assert body["reason"] == "token_malformed"
    assert backend.hits == 0
    assert proxy.records[0].reason == "token_malformed"
