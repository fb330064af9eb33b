"""The frames between the TUI and its proxy process (rrdev.tui.proxy_wire): real records
from a real proxy on loopback come out equal, sent once when repeated, with the rule
trace opened only when read; the memo starting over keeps frames readable; a child's
`RrdevError` comes back as the same class."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from proxy_support import Backend, bearer, mint, profile_text, run_proxy, wait_for

from rrdev.core.errors import ProfileError
from rrdev.core.profile import load_profile
from rrdev.core.records import RequestRecord
from rrdev.servers.runner import PortInUse
from rrdev.tui.proxy_wire import (
    FrameDecoder,
    FrameEncoder,
    decode_error,
    encode_error,
)

pytestmark = pytest.mark.usefixtures("keyset")


async def real_records(tmp_path: Path, backend: Backend, count: int) -> list[RequestRecord]:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text(backend.url))
    async with run_proxy(profile) as proxy:
        proxy.app.record_exchange = True
        headers = bearer(mint())
        async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
            for i in range(count):
                await client.get(proxy.url + "/api/v1/products", headers=headers if i % 2 else {})
        await wait_for(lambda: len(proxy.records) == count)
    return list(proxy.records)


async def decode_all(frames: list[bytes]) -> list[object]:
    reader = asyncio.StreamReader()
    reader.feed_data(b"".join(frames))
    reader.feed_eof()
    decoder = FrameDecoder()
    return [await decoder.read(reader) for _ in frames]


async def test_records_come_out_equal_and_repeats_go_once(tmp_path: Path, backend: Backend) -> None:
    records = await real_records(tmp_path, backend, 40)
    encoder = FrameEncoder(reset_every=3)  # the memo starts over within the test
    frames = [encoder.encode(("batch", records[i : i + 8])) for i in range(0, 40, 8)]
    decoded = [r for _kind, batch in await decode_all(frames) for r in batch]  # type: ignore[misc]
    assert [r.to_dict() for r in decoded] == [r.to_dict() for r in records]
    # The second frame repeats the first's requests: far fewer bytes.
    assert len(frames[1]) < len(frames[0]) * 0.6
    # Repeated header lists are one object on the UI's side too.
    assert decoded[1].request_headers is decoded[3].request_headers
    assert decoded[25].request_headers is not decoded[1].request_headers  # a fresh memo (4th)


async def test_the_trace_is_opened_only_when_read(tmp_path: Path, backend: Backend) -> None:
    records = await real_records(tmp_path, backend, 2)
    [(_kind, batch)] = await decode_all([FrameEncoder().encode(("batch", records))])
    decision = batch[1].explanation.decision
    assert decision is not None and "scopes" not in vars(decision)
    assert decision.scopes == records[1].explanation.decision.scopes  # opened here


async def test_a_profile_crosses_whole(tmp_path: Path) -> None:
    path = tmp_path / "rrdev.toml"
    path.write_text(profile_text("http://127.0.0.1:9"))
    profile = load_profile(path)
    [value] = await decode_all([FrameEncoder().encode(profile)])
    assert value == profile


def test_errors_keep_their_class_message_and_exit_code() -> None:
    port = decode_error(encode_error(PortInUse("127.0.0.1:8787 is already in use", "pick one")))
    assert isinstance(port, PortInUse) and port.exit_code == 3
    assert (port.message, port.hint) == ("127.0.0.1:8787 is already in use", "pick one")
    profile = decode_error(encode_error(ProfileError("bad", file="a.toml", line=3, key="x.y")))
    assert isinstance(profile, ProfileError) and str(profile) == "a.toml:3: x.y: bad"
    other = decode_error(encode_error(ValueError("boom")))
    assert other.message == "ValueError: boom" and other.exit_code == 1
