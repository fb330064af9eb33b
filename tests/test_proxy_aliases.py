"""``rrdev up a.toml b.toml``: several profiles on one port, each at ``{alias}.localhost``."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from alias_support import OPEN, open_rules, run_aliases, send
from proxy_support import (
    Backend,
    bearer,
    mint,
    profile_text,
    raw_request,
    run_backend,
    start_up,
    wait_for,
)
from typer.testing import CliRunner

from rrdev.cli.app import app as cli_app
from rrdev.core.aliases import alias_of_host, served_aliases, slug
from rrdev.core.errors import ProfileError
from rrdev.core.profile import load_profile
from rrdev.servers.proxy import AliasDispatcher, ProxyApp

pytestmark = pytest.mark.usefixtures("keyset")


@pytest.fixture
async def other_backend() -> AsyncIterator[Backend]:
    async with run_backend() as backend:
        yield backend


def write(tmp_path: Path, name: str, backend: Backend, proxy: str, rules: str = "") -> Path:
    path = tmp_path / f"{name}.toml"
    path.write_text(
        profile_text(backend.url, proxy=proxy, proxy_credential=OPEN, rules=rules or "")
    )
    return path


def two_profiles(tmp_path: Path, alpha: Backend, beta: Backend) -> list[Path]:
    return [
        write(tmp_path, "alpha", alpha, 'alias = "alpha"', open_rules("a")),
        write(tmp_path, "beta", beta, 'alias = "beta"', open_rules("b")),
    ]


def rewrite(path: Path, text: str) -> None:
    partial = path.with_suffix(".partial")
    partial.write_text(text)
    partial.replace(path)


# ------------------------------------------------------------------ the aliases


@pytest.mark.parametrize(
    ("host", "alias"),
    [
        ("my-api.localhost", "my-api"),
        ("localhost", None),
        ("a.b.localhost", None),
        ("my-api.localhost.example", None),
        ("127.0.0.1", None),
    ],
)
def test_alias_of_host(host: str, alias: str | None) -> None:
    assert alias_of_host(host) == alias


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("My API (Auth0)", "my-api-auth0"),
        ("orders_v2", "orders-v2"),
        ("---", ""),
        ("x" * 70, "x" * 63),
    ],
)
def test_slug(name: str, expected: str) -> None:
    assert slug(name) == expected


# ------------------------------------------------------------------ serving


async def test_each_alias_answers_with_its_own_profile(
    tmp_path: Path, backend: Backend, other_backend: Backend
) -> None:
    async with run_aliases(two_profiles(tmp_path, backend, other_backend)) as running:
        port = running.port
        alpha = await send(port, [f"alpha.localhost:{port}"], "/a/items")
        beta = await send(port, [f"beta.localhost:{port}"], "/b/items")
        alpha_denied = await send(port, [f"alpha.localhost:{port}"], "/b/items")
        await wait_for(lambda: len(running.records) == 3)
    assert (alpha.status, beta.status) == (200, 200)
    assert [e["raw_path"] for e in backend.seen] == ["/a/items"]
    assert [e["raw_path"] for e in other_backend.seen] == ["/b/items"]
    # alpha's rules allow /a/ only: /b/ is refused there, and forwarded nowhere
    assert alpha_denied.status == 403
    assert alpha_denied.json()["reason"] == "default_denied"
    assert [(r.alias, r.path, r.status) for r in running.records] == [
        ("alpha", "/a/items", 200),
        ("beta", "/b/items", 200),
        ("alpha", "/b/items", 403),
    ]


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "LOCALHOST."])
async def test_the_bare_host_is_refused_listing_the_aliases(
    tmp_path: Path, backend: Backend, other_backend: Backend, host: str
) -> None:
    async with run_aliases(two_profiles(tmp_path, backend, other_backend)) as running:
        port = running.port
        answer = await send(port, [f"{host}:{port}"], "/a/items")
        await wait_for(lambda: len(running.records) == 1)
    body = answer.json()
    assert (answer.status, body["reason"]) == (421, "alias_unknown")
    assert set(body) == {"status", "reason", "message", "hint", "trace"}
    assert f"http://alpha.localhost:{port}/" in body["message"]
    assert f"http://beta.localhost:{port}/" in body["message"]
    assert "alpha.localhost" in body["hint"]
    assert answer.header("requestrocket-proxy-code") == "proxy-access-denied"
    assert backend.hits == other_backend.hits == 0
    record = running.records[0]
    assert (record.alias, record.status, record.reason) == (None, 421, "alias_unknown")


@pytest.mark.parametrize(
    "hosts", [["gamma.localhost"], ["x.alpha.localhost"], []], ids=["unknown", "deeper", "none"]
)
async def test_an_unknown_alias_or_no_host_is_refused(
    tmp_path: Path, backend: Backend, other_backend: Backend, hosts: list[str]
) -> None:
    async with run_aliases(two_profiles(tmp_path, backend, other_backend)) as running:
        answer = await send(running.port, hosts, "/a/items")
    assert (answer.status, answer.json()["reason"]) == (421, "alias_unknown")
    assert backend.hits == other_backend.hits == 0


async def test_aliases_are_matched_case_insensitively(
    tmp_path: Path, backend: Backend, other_backend: Backend
) -> None:
    paths = two_profiles(tmp_path, backend, other_backend)
    rewrite(paths[0], paths[0].read_text().replace('alias = "alpha"', 'alias = "Alpha"'))
    async with run_aliases(paths) as running:
        answer = await send(running.port, ["ALPHA.localhost"], "/a/items")
    assert answer.status == 200 and backend.hits == 1


async def test_each_profile_has_its_own_jwks_cache_and_audience(
    tmp_path: Path, backend: Backend, other_backend: Backend
) -> None:
    paths = [
        tmp_path / "alpha.toml",
        tmp_path / "beta.toml",
    ]
    paths[0].write_text(profile_text(backend.url, proxy='alias = "alpha"'))
    paths[1].write_text(profile_text(other_backend.url, proxy='alias = "beta"'))
    token = mint()
    async with run_aliases(paths) as running:
        alpha = await send(
            running.port, ["alpha.localhost"], "/x", headers=[*bearer(token).items()]
        )
        beta = await send(running.port, ["beta.localhost"], "/y", headers=[*bearer(token).items()])
        apps = running.app.apps
        assert apps["alpha"]._state.jwks is not apps["beta"]._state.jwks
    assert (alpha.status, beta.status) == (200, 200)
    assert [e["raw_path"] for e in backend.seen] == ["/x"]
    assert [e["raw_path"] for e in other_backend.seen] == ["/y"]


async def test_profile_without_alias_is_served_at_the_slug_of_its_name(
    tmp_path: Path, backend: Backend, other_backend: Backend
) -> None:
    paths = [
        write(tmp_path, "alpha", backend, 'alias = "alpha"', open_rules("a")),
        write(tmp_path, "named", other_backend, "", open_rules("b")),  # proxy.name test-proxy
    ]
    async with run_aliases(paths) as running:
        assert running.app.aliases == ("alpha", "test-proxy")
        answer = await send(running.port, ["test-proxy.localhost"], "/b/x")
    assert answer.status == 200 and other_backend.hits == 1


# ------------------------------------------------------------------ startup errors


def test_two_profiles_with_one_alias_are_a_startup_error(tmp_path: Path, backend: Backend) -> None:
    first = write(tmp_path, "first", backend, 'alias = "same"')
    second = write(tmp_path, "second", backend, 'alias = "SAME"')
    with pytest.raises(ProfileError) as caught:
        served_aliases([load_profile(first), load_profile(second)])
    message = str(caught.value)
    assert str(first) in message and str(second) in message
    assert caught.value.key == "proxy.alias" and caught.value.line is not None
    assert "own proxy.alias" in caught.value.hint


def test_up_with_a_shared_alias_exits_3_naming_both_files(tmp_path: Path, backend: Backend) -> None:
    first = write(tmp_path, "first", backend, 'alias = "same"')
    second = write(tmp_path, "second", backend, 'alias = "same"')
    result = CliRunner().invoke(cli_app, ["up", str(first), str(second), "--port", "0"])
    assert result.exit_code == 3, result.output
    assert str(first) in result.stderr and str(second) in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize("alias", ["my api", "-api", "a.b", "x" * 64])
def test_an_alias_that_is_not_a_host_label_is_a_startup_error(
    tmp_path: Path, backend: Backend, alias: str
) -> None:
    path = write(tmp_path, "bad", backend, f'alias = "{alias}"')
    with pytest.raises(ProfileError) as caught:
        served_aliases([load_profile(path), load_profile(write(tmp_path, "ok", backend, ""))])
    assert caught.value.key == "proxy.alias" and str(path) in str(caught.value)


def test_validate_warns_about_an_alias_that_is_not_a_host_label(
    tmp_path: Path, backend: Backend
) -> None:
    from rrdev.core.profile import profile_warnings

    path = write(tmp_path, "bad", backend, 'alias = "my api"')
    found = [w for w in profile_warnings(load_profile(path)) if w.key == "proxy.alias"]
    assert len(found) == 1 and found[0].line is not None
    assert "not one DNS label" in found[0].message
    good = write(tmp_path, "good", backend, 'alias = "my-api"')
    assert not [w for w in profile_warnings(load_profile(good)) if w.key == "proxy.alias"]


def test_several_profiles_with_demo_are_refused(tmp_path: Path, backend: Backend) -> None:
    first = write(tmp_path, "first", backend, 'alias = "one"')
    second = write(tmp_path, "second", backend, 'alias = "two"')
    result = CliRunner().invoke(cli_app, ["up", str(first), str(second), "--demo"])
    assert result.exit_code == 2
    assert "--demo runs its own embedded profile" in result.stderr


# ------------------------------------------------------------------ one profile, as before


async def test_one_profile_is_served_without_the_dispatcher(
    tmp_path: Path, backend: Backend
) -> None:
    from rrdev.cli.console import Output, make_console
    from rrdev.cli.up import _start
    from rrdev.servers.proxy import Overrides

    path = write(tmp_path, "only", backend, 'alias = "only"', open_rules("a"))
    out = make_console()
    served: list[object] = []

    async def capture(app: object, *_args: object) -> int:
        served.append(app)
        return 0

    import rrdev.cli.up as up_module

    original = up_module._serve
    up_module._serve = capture  # type: ignore[assignment]
    try:
        offline = Overrides(offline=True)
        await _start(Output(out, out, None, True), str(path), None, 0, offline, 1)
        await _start(
            Output(out, out, None, True),
            [str(path), str(write(tmp_path, "two", backend, 'alias = "two"'))],
            None,
            0,
            offline,
            1,
        )
    finally:
        up_module._serve = original  # type: ignore[assignment]
    assert type(served[0]) is ProxyApp
    assert type(served[1]) is AliasDispatcher
    for app in served:
        await app.aclose()  # type: ignore[attr-defined]


async def test_one_profile_still_answers_at_the_bare_host(tmp_path: Path, backend: Backend) -> None:
    path = write(tmp_path, "only", backend, 'alias = "only"', open_rules("a"))
    up = await start_up(path, {}, port=0)
    port = int(up.url.rsplit(":", 1)[1])
    try:
        bare = await raw_request(port, "GET", "/a/items")
        named = await send(port, [f"only.localhost:{port}"], "/a/items")
    finally:
        up.process.send_signal(signal.SIGINT)
        code, _, _ = await up.finish()
    assert (bare.status, named.status, code) == (200, 200, 0)
    assert backend.hits == 2


# ------------------------------------------------------------------ reload, console, log


async def test_a_broken_edit_of_one_profile_leaves_the_other_alone(
    tmp_path: Path, backend: Backend, other_backend: Backend
) -> None:
    alpha, beta = two_profiles(tmp_path, backend, other_backend)
    async with run_aliases([alpha, beta]) as running:
        port = running.port
        rewrite(alpha, alpha.read_text() + "\n[proxy\n")  # broken TOML
        rewrite(beta, beta.read_text().replace('"^/b/"', '"^/c/"'))
        await asyncio.sleep(0.15)
        alpha_after = await send(port, ["alpha.localhost"], "/a/items")
        beta_old = await send(port, ["beta.localhost"], "/b/items")
        beta_new = await send(port, ["beta.localhost"], "/c/items")
    assert alpha_after.status == 200  # the last good alpha
    assert (beta_old.status, beta_new.status) == (403, 200)
    kinds = {kind: message for kind, message in running.events}
    assert kinds["reload_failed"].startswith("alpha: ")
    assert kinds["reloaded"].startswith("beta: ")


async def test_the_console_line_and_the_log_name_the_alias(
    tmp_path: Path, backend: Backend, other_backend: Backend
) -> None:
    paths = two_profiles(tmp_path, backend, other_backend)
    log = tmp_path / "up.jsonl"
    up = await start_up([str(p) for p in paths], {}, port=0, log_file=str(log))
    port = int(up.url.rsplit(":", 1)[1])
    try:
        banner = "".join(up.banner)
        assert "2 proxies on one port" in banner
        first = await send(port, [f"beta.localhost:{port}"], "/b/items")
        second = await send(port, [f"localhost:{port}"], "/b/items")
        await asyncio.sleep(0.2)
    finally:
        up.process.send_signal(signal.SIGINT)
        code, out, _ = await up.finish()
    assert (first.status, second.status, code) == (200, 421, 0)
    lines = [line for line in out.splitlines() if "/b/items" in line]
    assert "  beta  GET" in lines[0] and "alias_unknown" in lines[1]
    logged = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(r["alias"], r["status"]) for r in logged] == [("beta", 200), (None, 421)]


async def test_the_banner_lists_where_each_profile_answers(
    tmp_path: Path, backend: Backend, other_backend: Backend
) -> None:
    paths = two_profiles(tmp_path, backend, other_backend)
    up = await start_up([str(p) for p in paths], {}, port=0)
    port = int(up.url.rsplit(":", 1)[1])
    up.process.send_signal(signal.SIGINT)
    code, out, _ = await up.finish()
    banner = "".join(up.banner) + out
    assert code == 0
    assert f"http://alpha.localhost:{port}/" in banner and str(paths[0]) in banner
    assert f"http://beta.localhost:{port}/" in banner and other_backend.url in banner
    assert "421 alias_unknown" in banner
