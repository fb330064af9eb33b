"""Headers backends read as routing or identity facts, forged by the caller.

A backend behind rrdev trusts what rrdev says about the connection. The caller's
``X-Forwarded-Host``/``-Proto`` were already replaced; these are their neighbours:
RFC 7239 ``Forwarded`` (Spring reads its *first* element), ``X-Real-IP``,
``X-Forwarded-Port`` (replaced by rrdev's own), and the URL overrides that IIS,
Symfony, Laravel, Zend (``X-Original-URL``, ``X-Rewrite-URL``) and Spring/ProxyFix
(``X-Forwarded-Prefix``) route by instead of the path the rules judged (dropped).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from proxy_support import (
    Backend,
    RawResponse,
    bearer,
    header_values,
    mint,
    profile_text,
    raw_request,
    run_proxy,
)

from rrdev.core.errors import ProfileError
from rrdev.core.profile import load_profile

pytestmark = pytest.mark.usefixtures("keyset")

PATH = "/api/v1/products"
FORGED = [
    ("Forwarded", "for=198.51.100.7;host=admin.internal;proto=https;by=10.0.0.1"),
    ("X-Forwarded-For", "203.0.113.9"),
    ("X-Forwarded-Host", "admin.internal"),
    ("X-Forwarded-Proto", "https"),
    ("X-Forwarded-Port", "443"),
    ("X-Real-IP", "10.0.0.1"),
    ("X-Forwarded-Prefix", "/admin"),
    ("X-Original-URL", "/admin/users/1"),
    ("X-Rewrite-URL", "/admin/users/1"),
]


async def through_proxy(
    tmp_path: Path, backend: Backend, headers: list[tuple[str, str]], proxy: str = ""
) -> tuple[RawResponse, dict, list]:
    path = tmp_path / "rrdev.toml"
    path.write_text(profile_text(backend.url, proxy=proxy))
    async with run_proxy(path) as running:
        sent = [*bearer(mint()).items(), *headers]
        answer = await raw_request(running.port, "GET", PATH, sent)
        port = running.port
    assert answer.status == 200, answer.body
    (seen,) = backend.seen
    return answer, {**seen, "proxy_port": port}, running.records


async def test_forged_connection_facts_are_replaced_by_rrdevs_own(
    tmp_path: Path, backend: Backend
) -> None:
    _, seen, records = await through_proxy(tmp_path, backend, FORGED)
    port = seen["proxy_port"]
    host = f"127.0.0.1:{port}"
    # for= is a chain, appended to like X-Forwarded-For; host/proto/by are rrdev's.
    assert header_values(seen, "forwarded") == [
        f'for=198.51.100.7, for=127.0.0.1;host="{host}";proto=http'
    ]
    assert header_values(seen, "x-forwarded-for") == ["203.0.113.9, 127.0.0.1"]
    assert header_values(seen, "x-forwarded-host") == [host]
    assert header_values(seen, "x-forwarded-proto") == ["http"]
    assert header_values(seen, "x-forwarded-port") == [str(port)]
    assert header_values(seen, "x-real-ip") == ["127.0.0.1"]
    for dropped in ("x-forwarded-prefix", "x-original-url", "x-rewrite-url"):
        assert header_values(seen, dropped) == []
    assert seen["raw_path"] == PATH
    notes = records[0].notes
    assert (
        "dropped the caller's headers: x-forwarded-prefix, x-original-url, x-rewrite-url" in notes
    )
    assert "dropped the caller's Forwarded parameters other than for=" in notes


@pytest.mark.parametrize(
    ("sent", "kept"),
    [
        pytest.param(["for=192.0.2.60;proto=https"], ["for=192.0.2.60"], id="one-element"),
        pytest.param(
            ['for="[2001:db8::1]:4711", For=unknown;Host=x'],
            ['for="[2001:db8::1]:4711"', "for=unknown"],
            id="quoted-ipv6-and-case",
        ),
        pytest.param(["for=a", "for=b"], ["for=a", "for=b"], id="two-headers"),
        pytest.param(["host=admin.internal"], [], id="no-for"),
        pytest.param(["for=a;for=b"], [], id="parameter-twice"),
        pytest.param(["for=a host=admin.internal"], [], id="not-rfc7239"),
        pytest.param(['for="unterminated'], [], id="unterminated-quote"),
        pytest.param(["for=a, garbage, for=b"], [], id="garbage-element"),
    ],
)
async def test_only_the_callers_for_chain_survives(
    tmp_path: Path, backend: Backend, sent: list[str], kept: list[str]
) -> None:
    headers = [("Forwarded", value) for value in sent]
    _, seen, _ = await through_proxy(tmp_path, backend, headers)
    own = f'for=127.0.0.1;host="127.0.0.1:{seen["proxy_port"]}";proto=http'
    assert header_values(seen, "forwarded") == [", ".join([*kept, own])]


async def test_without_caller_headers_the_backend_still_gets_rrdevs_view(
    tmp_path: Path, backend: Backend
) -> None:
    _, seen, _ = await through_proxy(tmp_path, backend, [])
    port = seen["proxy_port"]
    assert header_values(seen, "forwarded") == [f'for=127.0.0.1;host="127.0.0.1:{port}";proto=http']
    assert header_values(seen, "x-real-ip") == ["127.0.0.1"]
    assert header_values(seen, "x-forwarded-port") == [str(port)]


async def test_a_header_filter_stops_rrdevs_own_and_the_callers(
    tmp_path: Path, backend: Backend
) -> None:
    filters = 'header_filters = ["Forwarded", "X-Real-IP", "X-Forwarded-Port"]'
    _, seen, _ = await through_proxy(tmp_path, backend, FORGED, proxy=filters)
    for name in ("forwarded", "x-real-ip", "x-forwarded-port", "x-original-url"):
        assert header_values(seen, name) == []
    assert header_values(seen, "x-forwarded-host") == [f"127.0.0.1:{seen['proxy_port']}"]


async def test_a_profile_may_set_a_prefix_of_its_own(tmp_path: Path, backend: Backend) -> None:
    # The caller's X-Forwarded-Prefix is dropped; the profile's (rrdev's) is sent.
    own = 'additional_headers = { X-Forwarded-Prefix = "/gateway" }'
    _, seen, _ = await through_proxy(tmp_path, backend, FORGED, proxy=own)
    assert header_values(seen, "x-forwarded-prefix") == ["/gateway"]
    assert header_values(seen, "x-original-url") == header_values(seen, "x-rewrite-url") == []


@pytest.mark.parametrize("name", ["Forwarded", "X-Real-IP", "x-forwarded-port"])
def test_a_profile_cannot_forge_them_either(tmp_path: Path, name: str) -> None:
    path = tmp_path / "rrdev.toml"
    path.write_text(
        profile_text("http://127.0.0.1:9", proxy=f'additional_headers = {{ {name} = "x" }}')
    )
    with pytest.raises(ProfileError) as refused:
        load_profile(path)
    assert refused.value.key == f"proxy.additional_headers.{name}"
    assert refused.value.line is not None
    assert "rrdev sets Forwarded, X-Real-IP and X-Forwarded-Port itself" in str(refused.value)
