"""What the TUI's Request and Response tabs show comes from the proxy's records:
``ProxyApp.record_exchange`` adds redacted headers and a JSON body preview (and
nothing secret), ``jwks_status()`` feeds the status line, and the tab views render
records from a real proxy."""

from __future__ import annotations

import io
import json
from pathlib import Path

import httpx
import pytest
from proxy_support import SEED_RULES, Backend, bearer, mint, profile_text, run_proxy, wait_for
from rich.console import Console

from rrdev.core.records import PREVIEW_BYTES, RequestRecord
from rrdev.core.redact import REDACTED
from rrdev.tui.views import explain_view, jwks_text, request_view, response_view, token_view

pytestmark = pytest.mark.usefixtures("keyset")

COOKIE = "canary-cookie-5e1f33"
API_KEY = "canary-header-91cd07"
QUERY = "canary-query-c0de55"
BACKEND = "canary-backend-2b8e41"


def plain(renderable: object) -> str:
    console = Console(width=160, file=io.StringIO(), record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


async def test_exchange_fields_are_recorded_redacted(
    tmp_path: Path, backend: Backend, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RR_TUI_BACKEND", BACKEND)
    profile = tmp_path / "rrdev.toml"
    credential = 'auth_type = "bearer"\ntoken = "${RR_TUI_BACKEND}"\n'
    profile.write_text(profile_text(backend.url, credential=credential))
    token = mint()
    leaky = {"Cookie": f"session={COOKIE}", "X-Api-Key": API_KEY, **bearer(token)}
    async with run_proxy(profile) as proxy:
        proxy.app.record_exchange = True
        async with httpx.AsyncClient(base_url=proxy.url) as client:
            allowed = await client.get(f"/api/v1/products?client_secret={QUERY}", headers=leaky)
            denied = await client.delete("/api/v1/products/1", headers=leaky)
            big = await client.get("/api/v1/products", headers={**leaky, "X-Pad": "x" * 6000})
            missing = await client.get("/api/v1/products")
        await wait_for(lambda: len(proxy.records) == 4)
        status = proxy.app.jwks_status()
    assert [r.status_code for r in (allowed, denied, big, missing)] == [200, 403, 200, 401]
    ok, refused, cut, anonymous = proxy.records

    request = dict(ok.request_headers)
    assert request["authorization"] == REDACTED and request["cookie"] == REDACTED
    assert request["x-api-key"] == REDACTED
    response = dict(ok.response_headers)
    assert response["x-backend"] == "echo" and "requestrocket-proxy-code" in response
    echo = json.loads(ok.response_preview or "")
    # (access_token would not reach the backend at all: rrdev removes it from the query)
    assert echo["raw_path"] == f"/api/v1/products?client_secret={REDACTED}"  # scrubbed value
    pairs = {k.lower(): v for k, v in echo["headers"]}
    assert pairs["authorization"] == REDACTED and pairs["cookie"] == REDACTED
    assert not ok.response_truncated

    assert json.loads(refused.response_preview or "")["reason"] == "rule_denied"
    assert dict(refused.response_headers)["requestrocket-proxy-code"] == "proxy-access-denied"

    assert cut.response_truncated and len(cut.response_preview or "") <= PREVIEW_BYTES
    assert cut.bytes_out > PREVIEW_BYTES

    assert anonymous.request_headers and "authorization" not in dict(anonymous.request_headers)

    everything = json.dumps([r.to_dict() for r in proxy.records])
    for secret in (token, COOKIE, API_KEY, QUERY, BACKEND, token.split(".")[2]):
        assert secret not in everything

    assert status is not None and status.key_count >= 1 and status.last_error is None
    assert jwks_text(status).plain.startswith(f"JWKS {status.key_count} key")


async def test_records_stay_lean_without_record_exchange(tmp_path: Path, backend: Backend) -> None:
    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text(backend.url, rules=SEED_RULES))
    async with run_proxy(profile) as proxy:
        async with httpx.AsyncClient(base_url=proxy.url) as client:
            await client.get("/api/v1/products", headers=bearer(mint()))
        await wait_for(lambda: len(proxy.records) == 1)
    (only,) = proxy.records
    assert only.request_headers == () and only.response_headers == ()
    assert only.response_preview is None


def test_views_render_a_denial_without_exchange_fields(tmp_path: Path) -> None:
    """The tab views over a record without headers (``record_exchange`` off) say so."""
    import asyncio

    from rrdev.core.explain import IncomingRequest, decide
    from rrdev.core.profile import load_profile

    profile = tmp_path / "rrdev.toml"
    profile.write_text(profile_text("http://127.0.0.1:9", proxy_credential='auth_type = "none"\n'))
    request = IncomingRequest("DELETE", "/api/v1/products/1", "", ())
    expl = asyncio.run(decide(load_profile(profile), request, None, now=1_700_000_000))
    record = RequestRecord(
        time=1_700_000_000,
        method="DELETE",
        path="/api/v1/products/1",
        query=(),
        status=expl.status,
        reason=expl.reason,
        deciding_rule=expl.deciding_rule,
        explanation=expl,
    )
    assert (expl.status, expl.deciding_rule) == (403, "scope-gate-delete")
    text = plain(explain_view(record))
    assert "deciding rule" in text and "Scope gate: DELETE operations require" in text
    assert "not recorded" in plain(request_view(record))
    assert "answered by rrdev" in plain(response_view(record))
    assert "auth_type = 'none'" in plain(token_view(record))
