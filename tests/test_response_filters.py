"""Response payload filters (``response_filter``), over real loopback sockets.

The gateway's order: target credential, target, proxy credential, proxy, each filter
working on what the previous left (a destroyed field never comes back). Only 2xx JSON
answers are filtered; other statuses pass untouched; a 2xx that is not JSON is 422
``response_not_json``. Records say what each filter removed (paths, never values).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from proxy_support import bearer, mint, profile_text, raw_request, run_proxy, wait_for

from rrdev.core.errors import ProfileError
from rrdev.core.filters import MAX_FILTERED_BYTES, compile_filter, parse_field_path
from rrdev.core.model import ResponseFilter
from rrdev.core.profile import parse_profile

pytestmark = pytest.mark.usefixtures("keyset")

SSN = "078-05-1120"
DOCUMENT = {
    "user": {"name": "Ada", "ssn": SSN, "email": "ada@example.com"},
    "items": [{"id": 1, "token": "tok-1", "price": 3}, {"id": 2, "token": "tok-2"}],
    "secret": "s3cr3t-value",
    "page": 1,
}


class Payloads:
    hits = 0


@asynccontextmanager
async def run_payloads() -> AsyncIterator[str]:
    """A backend answering fixed payloads by path."""

    async def handle(request: web.Request) -> web.StreamResponse:
        Payloads.hits += 1
        name = request.match_info["name"]
        if name == "json":
            return web.json_response(DOCUMENT, headers={"ETag": '"v1"'})
        if name == "gzip":
            body = gzip.compress(json.dumps(DOCUMENT).encode())
            return web.Response(
                body=body,
                headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
            )
        if name == "brotli":
            return web.Response(
                body=b"\x0b\x02\x80{}\x03",
                headers={"Content-Type": "application/json", "Content-Encoding": "br"},
            )
        if name == "text":
            return web.Response(text=f"ssn={SSN}", content_type="text/plain")
        if name == "broken":
            return web.Response(text='{"ssn": "' + SSN, content_type="application/json")
        if name == "nan":
            return web.Response(text='{"a": NaN}', content_type="application/json")
        if name == "missing":
            return web.json_response(DOCUMENT, status=404)
        if name == "empty":
            return web.Response(status=204)
        if name == "big":
            filler = "x" * (MAX_FILTERED_BYTES + 10)
            return web.json_response({"filler": filler})
        raise web.HTTPNotFound()

    app = web.Application()
    app.router.add_get("/{name}", handle)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def filtered_profile(base_url: str, **filters: str) -> str:
    """``filters``: scope -> the ``response_filter`` inline table."""

    def line(scope: str) -> str:
        return f"response_filter = {filters[scope]}\n" if scope in filters else ""

    jwt = (
        'jwks_uri = "http://127.0.0.1:9/jwks.json"\naudience = "https://api.myapp.com"\n'
        'issuer = "https://tenant.example.auth0.com/"\n'
    )
    return profile_text(
        base_url,
        target=line("target"),
        credential=line("target_credential"),
        proxy_credential=jwt + line("proxy_credential"),
        proxy=line("proxy"),
    )


async def fetch(tmp_path: Path, text: str, name: str, method: str = "GET") -> tuple[Any, list[Any]]:
    path = tmp_path / "rrdev.toml"
    path.write_text(text)
    async with run_proxy(path) as proxy:
        answer = await raw_request(proxy.port, method, f"/{name}", list(bearer(mint()).items()))
        await wait_for(lambda: proxy.records)
    return answer, proxy.records


FOUR_SCOPES = {
    "target_credential": '{ mode = "destroy", fields = ["user.ssn", "secret"] }',
    "target": '{ mode = "destroy", fields = ["items[].token"] }',
    "proxy_credential": '{ mode = "retain", fields = ["user", "items", "secret", "page"] }',
    # retains ssn and secret: destroyed earlier, they must not come back
    "proxy": '{ mode = "retain", fields = ["user.name", "user.ssn", "items[].id", "secret"] }',
}


async def test_filters_run_in_the_gateways_order_and_never_resurrect(tmp_path: Path) -> None:
    async with run_payloads() as url:
        answer, records = await fetch(tmp_path, filtered_profile(url, **FOUR_SCOPES), "json")
    assert answer.status == 200
    assert answer.json() == {"user": {"name": "Ada"}, "items": [{"id": 1}, {"id": 2}]}
    assert answer.header("content-length") == str(len(answer.body))
    assert answer.header("etag") is None  # it described the unfiltered body
    assert answer.header("requestrocket-proxy-code") == "proxy-access-granted"
    (record,) = records
    assert record.notes == (
        "response filter target_credential (destroy) removed: user.ssn, secret",
        "response filter target (destroy) removed: items[].token",
        "response filter proxy (retain) removed: user.email, items[].price, page",
    )
    removed = record.to_dict()["explanation"]["response_filters"]
    assert [f["scope"] for f in removed] == [
        *("target_credential", "target", "proxy_credential", "proxy"),
    ]
    assert removed[2]["removed"] == []
    for value in (SSN, "s3cr3t-value", "tok-1", "ada@example.com"):
        assert value not in repr(record)  # paths only, never values
    assert record.bytes_out == len(answer.body)


async def test_a_gzip_answer_is_decoded_then_filtered(tmp_path: Path) -> None:
    async with run_payloads() as url:
        text = filtered_profile(url, proxy='{ mode = "destroy", fields = ["user"] }')
        answer, _ = await fetch(tmp_path, text, "gzip")
    assert answer.status == 200
    assert answer.header("content-encoding") is None
    assert "user" not in answer.json() and answer.json()["page"] == 1


@pytest.mark.parametrize(
    ("name", "status", "reason"),
    [
        ("text", 422, "response_not_json"),
        ("broken", 422, "response_not_json"),
        ("nan", 422, "response_not_json"),
        ("brotli", 502, "response_encoding_unsupported"),
        ("big", 502, "response_too_large"),
    ],
)
async def test_a_2xx_that_cannot_be_filtered_is_refused(
    tmp_path: Path, name: str, status: int, reason: str
) -> None:
    async with run_payloads() as url:
        text = filtered_profile(url, target='{ mode = "destroy", fields = ["ssn"] }')
        answer, records = await fetch(tmp_path, text, name)
    assert answer.status == status
    body = answer.json()
    assert body["reason"] == reason
    assert set(body) == {"status", "reason", "message", "hint", "trace"}
    assert SSN.encode() not in answer.body  # the backend's body never reaches the caller
    (record,) = records
    assert (record.status, record.reason) == (status, reason)
    assert any("the backend answered 200" in note for note in record.notes)


async def test_non_2xx_and_bodiless_answers_pass_untouched(tmp_path: Path) -> None:
    async with run_payloads() as url:
        text = filtered_profile(url, proxy='{ mode = "destroy", fields = ["user", "secret"] }')
        missing, _ = await fetch(tmp_path, text, "missing")
        empty, _ = await fetch(tmp_path, text, "empty")
        head, _ = await fetch(tmp_path, text, "json", method="HEAD")
    assert missing.status == 404
    assert missing.json() == DOCUMENT
    assert empty.status == 204 and empty.body == b""
    assert head.status == 200 and head.body == b""


async def test_without_filters_the_body_streams_as_sent(tmp_path: Path) -> None:
    async with run_payloads() as url:
        answer, records = await fetch(tmp_path, filtered_profile(url), "gzip")
    assert answer.header("content-encoding") == "gzip"
    assert json.loads(gzip.decompress(answer.body)) == DOCUMENT
    assert "response_filters" not in records[0].to_dict()["explanation"]


# ------------------------------------------------------------------ paths and profiles


RETAIN_CASES = [
    (["a"], {"a": {"x": 1}, "b": 2}, {"a": {"x": 1}}),
    (["a.x"], {"a": {"x": 1, "y": 2}}, {"a": {"x": 1}}),
    (["a.x"], {"a": {"y": 2}}, {"a": {}}),
    (["a.x", "a"], {"a": {"x": 1, "y": 2}}, {"a": {"x": 1, "y": 2}}),
    (["a.x"], {"a": [1, 2]}, {}),  # not the path's shape: removed
    (["items[].id"], {"items": [{"id": 1, "n": 2}, 7, {"n": 3}]}, {"items": [{"id": 1}, {}]}),
    (["[].id"], [{"id": 1, "x": 2}], [{"id": 1}]),
    (["[].id"], {"id": 1}, []),
    (["a"], [1, 2], {}),
    (["m[][]"], {"m": [[1], [2, 3]]}, {"m": [[1], [2, 3]]}),
]


@pytest.mark.parametrize(("fields", "document", "expected"), RETAIN_CASES)
def test_what_retain_keeps(fields: list[str], document: Any, expected: Any) -> None:
    one = compile_filter("proxy", ResponseFilter("retain", tuple(fields)))
    assert one.apply(document)[0] == expected


DESTROY_CASES = [
    (["a.x"], {"a": {"x": 1, "y": 2}}, {"a": {"y": 2}}, ("a.x",)),
    (
        ["items[].t"],
        {"items": [{"t": 1}, 3, {"u": 2}]},
        {"items": [{}, 3, {"u": 2}]},
        ("items[].t",),
    ),
    (["items[]"], {"items": [1, 2]}, {"items": []}, ("items[]",)),
    (["nope.deeper"], {"nope": "scalar"}, {"nope": "scalar"}, ()),
]


@pytest.mark.parametrize(("fields", "document", "expected", "removed"), DESTROY_CASES)
def test_what_destroy_removes(
    fields: list[str], document: Any, expected: Any, removed: tuple
) -> None:
    one = compile_filter("target", ResponseFilter("destroy", tuple(fields)))
    after, outcome = one.apply(document)
    assert (after, outcome.removed) == (expected, removed)


@pytest.mark.parametrize("bad", ["", "a..b", ".a", "a.", "a[0]", "a[", "a]b", " a"])
def test_malformed_paths_are_refused(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_field_path(bad)


@pytest.mark.parametrize(
    ("table", "key", "message"),
    [
        ('{ mode = "destroy", fields = ["a..b"] }', "proxy.response_filter.fields[0]", "field"),
        ('{ mode = "keep", fields = ["a"] }', "proxy.response_filter.mode", "expected one of"),
        ('{ fields = ["a"] }', "proxy.response_filter.mode", "missing required key"),
        ('{ mode = "retain", fields = [] }', "proxy.response_filter.fields", "at least one"),
        ('{ mode = "retain", field = ["a"] }', "proxy.response_filter.field", "did you mean"),
    ],
)
def test_profile_problems_name_file_line_and_key(table: str, key: str, message: str) -> None:
    text = filtered_profile("http://127.0.0.1:9", proxy=table)
    with pytest.raises(ProfileError) as caught:
        parse_profile(text, "p.toml")
    assert (caught.value.file, caught.value.key) == ("p.toml", key)
    assert caught.value.line is not None
    assert message in caught.value.detail


def test_dry_runs_show_filters_as_would_apply(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from rrdev.cli.app import app

    monkeypatch.setenv("NO_COLOR", "1")
    path = tmp_path / "rrdev.toml"
    text = filtered_profile("http://127.0.0.1:9", **FOUR_SCOPES)
    path.write_text(text.replace('default_effect = "deny"', 'default_effect = "allow"'))
    token = mint()
    args = ["explain", token, "-p", str(path), "--offline", "--path", "/json"]
    shown = CliRunner().invoke(app, args)
    assert shown.exit_code == 0, shown.output
    assert "Response filters" in shown.stdout
    assert "target_credential: destroy user.ssn, secret" in shown.stdout
    assert "would apply to the response" in shown.stdout
    as_json = json.loads(CliRunner().invoke(app, [*args, "--json"]).stdout)
    assert [f["scope"] for f in as_json["response_filters"]] == list(FOUR_SCOPES)
    assert all(f["would_apply"] for f in as_json["response_filters"])


def test_the_tui_shows_what_each_filter_removed(tmp_path: Path) -> None:
    from rich.console import Console

    from rrdev.core.records import Explanation, RequestRecord
    from rrdev.tui.views import explain_view

    note = "response filter proxy (retain) removed: user.email, items[].price"
    expl = Explanation(200, "allowed", "allowed")
    record = RequestRecord(0.0, "GET", "/json", (), 200, "allowed", None, expl, notes=(note,))
    console = Console(width=200, record=True)
    console.print(explain_view(record))
    assert note in console.export_text()
