"""Attack: a secret leaving through the inspector's copies and exports.

Requests carrying a real token, a secret query parameter and a cookie go through the
demo's proxy over loopback (the echo backend reflects what it gets into its body); the HAR and
JSONL exports and every row's curl copy must hold none of them. Only the explicit
"with token" copy may carry a token, and only one the inspector itself sent.
"""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest
from test_tui_app import SIZE, demo_app, until, with_demo_traffic

from rrdev.core.redact import fingerprint

pytestmark = pytest.mark.usefixtures("keyset")

QUERY_SECRET = "q-secret-8d2f6a"
COOKIE_SECRET = "c-secret-51be07"


async def test_exports_and_copies_hold_no_secret(tmp_path: Path) -> None:
    app = demo_app()
    async with app.run_test(size=SIZE) as pilot:
        await with_demo_traffic(pilot)
        handle = app.runtime.handle  # type: ignore[attr-defined]
        outsider = handle.admin_token  # a valid token the inspector never sent itself
        url = handle.proxy_url + "/api/v1/products"
        async with httpx.AsyncClient(trust_env=False) as client:
            answer = await client.get(
                url,
                params={"access_token": QUERY_SECRET, "page": "1"},
                headers={"Authorization": f"Bearer {outsider}", "Cookie": f"s={COOKIE_SECRET}"},
            )
        assert answer.status_code == 200
        await until(pilot, lambda: app.table.row_count == 5)
        app.export_to(str(tmp_path / "t.har"))
        app.export_to(str(tmp_path / "t.jsonl"))
        items = app.visible_items()
        curls = [app.copy_text(record, "curl")[0] or "" for _seq, record in items]
        _seq, leaked_row = items[-1]
        # The record saw the secrets (and redacted them): the export has something to leak.
        assert "cookie" in dict(leaked_row.request_headers)
        assert ("access_token", "[redacted]") in leaked_row.query
        assert leaked_row.explanation.verification.fingerprint == fingerprint(outsider)  # type: ignore[union-attr]
        assert app.copy_text(leaked_row, "curl_token")[0] is None
        assert app.copy_text(leaked_row, "token")[0] is None
        body = app.copy_text(leaked_row, "body")[0] or ""
    secrets = [QUERY_SECRET, COOKIE_SECRET, outsider, handle.reader_token, handle.expired_token]
    for name in ("t.har", "t.jsonl"):
        text = (tmp_path / name).read_text()
        assert text.strip()
        for secret in secrets:
            assert secret not in text, (name, secret[:8])
    for text in [*curls, body]:
        for secret in secrets:
            assert secret not in text
    har = json.loads((tmp_path / "t.har").read_text())
    last = har["log"]["entries"][-1]["request"]
    assert {"name": "access_token", "value": "[redacted]"} in last["queryString"]
    assert "$TOKEN" in curls[-1] and "header cookie was redacted" in curls[-1]
