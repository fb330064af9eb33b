"""DNS rebinding: a web page re-points its own name at 127.0.0.1 and talks to the proxy.

The issue's setup: no caller authentication (``auth_type = "none"``) and a bearer
target credential, so anything that reaches the backend does so *with the backend's
credential*. The only sign of the attack is the Host header, which names the page's
host: rrdev serves loopback names and addresses and ``proxy.allowed_hosts`` only, and
refuses the rest with 421 ``host_not_allowed`` before anything is forwarded.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import httpx
import pytest
from proxy_support import (
    Backend,
    RawResponse,
    header_values,
    profile_text,
    run_proxy,
    start_up,
)

pytestmark = pytest.mark.usefixtures("keyset")

BACKEND_TOKEN = "backend-only-credential-7d1c"
OPEN_GATEWAY = {
    "proxy_credential": 'auth_type = "none"\n',
    "credential": 'auth_type = "bearer"\ntoken = "${RR_BACKEND_TOKEN}"\n',
}


@pytest.fixture(autouse=True)
def _backend_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RR_BACKEND_TOKEN", BACKEND_TOKEN)


def write_profile(tmp_path: Path, backend: Backend, proxy: str = "") -> Path:
    path = tmp_path / "rrdev.toml"
    path.write_text(profile_text(backend.url, proxy=proxy, **OPEN_GATEWAY))
    return path


async def send(port: int, head: list[str]) -> RawResponse:
    """One request whose request line and headers are exactly ``head`` (the Host too)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(("\r\n".join([*head, "Connection: close"]) + "\r\n\r\n").encode("latin-1"))
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    top, _, body = data.partition(b"\r\n\r\n")
    status_line, *lines = top.decode("latin-1").split("\r\n")
    headers = [tuple(line.split(": ", 1)) for line in lines]
    return RawResponse(int(status_line.split()[1]), headers, body)  # type: ignore[arg-type]


def assert_refused(answer: RawResponse, backend: Backend, reason: str = "host_not_allowed") -> None:
    body = answer.json()
    assert (answer.status, body["reason"]) == (421 if reason == "host_not_allowed" else 400, reason)
    assert set(body) == {"status", "reason", "message", "hint", "trace"}
    assert answer.header("requestrocket-proxy-code") == "proxy-access-denied"
    assert BACKEND_TOKEN not in answer.body.decode()
    assert backend.hits == 0 and backend.seen == []


REBOUND_HOSTS = [
    pytest.param("evil.example", id="rebound-name"),
    pytest.param("evil.example:8787", id="rebound-name-with-port"),
    pytest.param("EVIL.EXAMPLE", id="uppercase"),
    pytest.param("127.0.0.1.evil.example", id="loopback-prefix"),
    pytest.param("localhost.evil.example", id="localhost-prefix"),
    pytest.param("evil-localhost", id="localhost-suffix-without-dot"),
    pytest.param("0.0.0.0:8787", id="unspecified-address"),
    pytest.param("127.1", id="short-ipv4"),
    pytest.param("2130706433", id="integer-ipv4"),
    pytest.param("0177.0.0.1", id="octal-ipv4"),
    pytest.param("[::ffff:10.0.0.1]", id="ipv4-mapped-private"),
    pytest.param("[::2]", id="ipv6-not-loopback"),
    pytest.param("127.0.0.1@evil.example", id="userinfo"),
    pytest.param("evil.example/127.0.0.1", id="path-in-host"),
    pytest.param("localhost..", id="two-trailing-dots"),
    pytest.param("[::1", id="unclosed-bracket"),
]


@pytest.mark.parametrize("host", REBOUND_HOSTS)
async def test_a_host_that_is_not_loopback_is_refused_and_never_forwarded(
    tmp_path: Path, backend: Backend, host: str
) -> None:
    async with run_proxy(write_profile(tmp_path, backend)) as proxy:
        answer = await send(proxy.port, ["GET /api/v1/products HTTP/1.1", f"Host: {host}"])
    assert_refused(answer, backend)
    assert "proxy.allowed_hosts" in answer.json()["hint"]
    assert [(r.status, r.reason) for r in proxy.records] == [(421, "host_not_allowed")]


LOOPBACK_HOSTS = [
    pytest.param("127.0.0.1:{port}", id="ipv4-with-port"),
    pytest.param("127.0.0.1", id="ipv4"),
    pytest.param("127.42.0.9", id="ipv4-loopback-net"),
    pytest.param("localhost:{port}", id="localhost"),
    pytest.param("LocalHost:{port}", id="mixed-case"),
    pytest.param("localhost.:{port}", id="trailing-dot"),
    pytest.param("api.localhost:{port}", id="rfc6761-subdomain"),
    pytest.param("[::1]:{port}", id="ipv6"),
    pytest.param("[::ffff:127.0.0.1]", id="ipv4-mapped-loopback"),
    pytest.param("127.0.0.1:", id="empty-port"),
]


@pytest.mark.parametrize("host", LOOPBACK_HOSTS)
async def test_loopback_names_and_addresses_are_served(
    tmp_path: Path, backend: Backend, host: str
) -> None:
    async with run_proxy(write_profile(tmp_path, backend)) as proxy:
        host = host.format(port=proxy.port)
        answer = await send(proxy.port, ["GET /api/v1/products HTTP/1.1", f"Host: {host}"])
        rebound = await send(proxy.port, ["GET /api/v1/products HTTP/1.1", "Host: evil.example"])
    assert answer.status == 200, answer.body
    assert rebound.status == 421
    (seen,) = backend.seen
    assert header_values(seen, "authorization") == [f"Bearer {BACKEND_TOKEN}"]
    assert header_values(seen, "x-forwarded-host") == [host]


async def test_an_http10_request_without_host_is_served(tmp_path: Path, backend: Backend) -> None:
    # No browser omits Host, so no rebinding page can: nothing to check.
    async with run_proxy(write_profile(tmp_path, backend)) as proxy:
        answer = await send(proxy.port, ["GET /api/v1/products HTTP/1.0"])
        rebound = await send(proxy.port, ["GET /api/v1/products HTTP/1.0", "Host: evil.example"])
    assert answer.status == 200
    assert rebound.status == 421
    (seen,) = backend.seen
    assert header_values(seen, "x-forwarded-host") == []


async def test_two_host_headers_are_refused(tmp_path: Path, backend: Backend) -> None:
    async with run_proxy(write_profile(tmp_path, backend)) as proxy:
        head = ["GET /api/v1/products HTTP/1.1", "Host: 127.0.0.1", "Host: evil.example"]
        answer = await send(proxy.port, head)
    assert_refused(answer, backend)
    assert "more than one Host" in answer.json()["message"]


async def test_a_cors_preflight_from_a_rebound_page_is_refused(
    tmp_path: Path, backend: Backend
) -> None:
    # The preflight rule forwards unauthenticated OPTIONS: the Host check comes first.
    async with run_proxy(write_profile(tmp_path, backend)) as proxy:
        head = [
            "OPTIONS /api/v1/products HTTP/1.1",
            "Host: evil.example:8787",
            "Origin: http://evil.example:8787",
            "Access-Control-Request-Method: DELETE",
        ]
        answer = await send(proxy.port, head)
    assert_refused(answer, backend)


async def test_the_callers_x_forwarded_host_does_not_stand_in_for_host(
    tmp_path: Path, backend: Backend
) -> None:
    async with run_proxy(write_profile(tmp_path, backend)) as proxy:
        refused = await send(
            proxy.port,
            ["GET /api/v1/products HTTP/1.1", "Host: evil.example", "X-Forwarded-Host: localhost"],
        )
        assert_refused(refused, backend)
        served = await send(
            proxy.port,
            ["GET /api/v1/products HTTP/1.1", "Host: localhost", "X-Forwarded-Host: evil.example"],
        )
    assert served.status == 200
    (seen,) = backend.seen
    assert header_values(seen, "x-forwarded-host") == ["localhost"]


async def test_an_absolute_form_target_cannot_name_a_loopback_authority(
    tmp_path: Path, backend: Backend
) -> None:
    # The authority of an absolute-form target is never consulted: the form is refused,
    # and the origin form is judged by its Host.
    async with run_proxy(write_profile(tmp_path, backend)) as proxy:
        absolute = ["GET http://127.0.0.1/api/v1/products HTTP/1.1", "Host: evil.example"]
        origin = ["GET /api/v1/products HTTP/1.1", "Host: evil.example"]
        answers = [await send(proxy.port, absolute), await send(proxy.port, origin)]
    assert_refused(answers[0], backend, "ambiguous_path")
    assert_refused(answers[1], backend, "host_not_allowed")


ALLOW_LIST = 'allowed_hosts = ["MyApp.test.", "*.dev.example", "192.168.56.10", "[fd00::1]"]'


@pytest.mark.parametrize(
    ("host", "served"),
    [
        ("myapp.test:8787", True),
        ("MYAPP.TEST.", True),
        ("api.dev.example", True),
        ("a.b.dev.example:443", True),
        ("192.168.56.10:8787", True),
        ("[fd00::1]:8787", True),
        ("[fd00:0::1]", True),
        ("dev.example", False),  # *.dev.example is the names under it
        ("xdev.example", False),
        ("myapp.test.evil.example", False),
        ("192.168.56.11", False),
    ],
)
async def test_allowed_hosts_adds_names_to_the_loopback_ones(
    tmp_path: Path, backend: Backend, host: str, served: bool
) -> None:
    async with run_proxy(write_profile(tmp_path, backend, ALLOW_LIST)) as proxy:
        answer = await send(proxy.port, ["GET /api/v1/products HTTP/1.1", f"Host: {host}"])
        local = await send(proxy.port, ["GET /api/v1/products HTTP/1.1", "Host: localhost"])
    assert local.status == 200
    if served:
        assert answer.status == 200
        assert len(backend.seen) == 2
    else:
        assert (answer.status, answer.json()["reason"]) == (421, "host_not_allowed")
        assert len(backend.seen) == 1  # only the loopback request


async def test_a_star_turns_the_check_off_and_says_so(tmp_path: Path, backend: Backend) -> None:
    async with run_proxy(write_profile(tmp_path, backend, 'allowed_hosts = ["*"]')) as proxy:
        answer = await send(proxy.port, ["GET /api/v1/products HTTP/1.1", "Host: evil.example"])
        warnings = proxy.app.info().warnings
    assert answer.status == 200
    assert any("DNS rebinding" in w for w in warnings)


async def test_a_reload_that_empties_allowed_hosts_refuses_at_once(
    tmp_path: Path, backend: Backend
) -> None:
    profile = write_profile(tmp_path, backend, 'allowed_hosts = ["myapp.test"]')
    async with run_proxy(profile) as proxy:
        before = await send(proxy.port, ["GET /api/v1/products HTTP/1.1", "Host: myapp.test"])
        profile.write_text(profile_text(backend.url, **OPEN_GATEWAY) + "\n# edited\n")
        assert await proxy.app.check_reload(force=True)
        after = await send(proxy.port, ["GET /api/v1/products HTTP/1.1", "Host: myapp.test"])
    assert before.status == 200
    assert (after.status, after.json()["reason"]) == (421, "host_not_allowed")
    assert len(backend.seen) == 1


async def test_rrdev_up_on_a_non_loopback_address_says_what_the_host_check_does(
    tmp_path: Path, backend: Backend
) -> None:
    profile = write_profile(tmp_path, backend)
    up = await start_up(
        profile, {"RR_BACKEND_TOKEN": BACKEND_TOKEN}, host="0.0.0.0", port=0, offline=True
    )
    port = int(up.url.rsplit(":", 1)[1])
    async with httpx.AsyncClient(timeout=10) as client:
        local = await client.get(f"{up.url}/api/v1/products")
    refused = await send(port, ["GET /api/v1/products HTTP/1.1", "Host: 192.0.2.7"])
    up.process.send_signal(signal.SIGINT)
    code, rest, err = await up.finish()
    out = "".join(up.banner) + rest
    assert code == 0, err
    assert local.status_code == 200
    assert json.loads(refused.body)["reason"] == "host_not_allowed"
    assert "allowed_hosts is empty" in out and "421 host_not_allowed" in out
    assert len(backend.seen) == 1


def test_explain_and_checks_give_the_proxys_answer(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from rrdev.cli.app import app

    monkeypatch.setenv("NO_COLOR", "1")
    path = tmp_path / "rrdev.toml"
    checks = (
        '\n[[checks]]\nname = "rebound page"\npath = "/api/v1/products"\n'
        'headers = { Host = "evil.example" }\ntoken = "none"\nexpect = 421\n'
    )
    path.write_text(profile_text("http://127.0.0.1:9", **OPEN_GATEWAY) + checks)
    explained = CliRunner().invoke(
        app, ["explain", "-p", str(path), "--json", "-H", "Host: evil.example"]
    )
    assert explained.exit_code == 1
    assert json.loads(explained.stdout)["reason"] == "host_not_allowed"
    checked = CliRunner().invoke(app, ["check", str(path), "--json"])
    assert checked.exit_code == 0, checked.stdout
