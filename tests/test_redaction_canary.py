"""DESIGN.md §2.7 end to end: marker secrets go in everywhere a caller or a profile can
put one, and none of them comes out of `rrdev up` (console, JSONL log, error bodies)."""

from __future__ import annotations

import signal
from pathlib import Path

import httpx
import pytest
from proxy_support import (
    AUDIENCE,
    SEED_RULES,
    Backend,
    header_values,
    mint,
    profile_text,
    start_up,
)

from rrdev.core.redact import fingerprint

pytestmark = pytest.mark.usefixtures("keyset")

CLAIM = "canary-claim-7f3a9e"
BACKEND = "canary-backend-2b8e41"
API_KEY = "canary-header-91cd07"
COOKIE = "canary-cookie-5e1f33"
QUERY = "canary-query-c0de55"

HEADER_RULE = """
[[proxy.rules]]
id = "no-test-keys"
effect = "deny"
headers = [{ name = "^x-api-key$", value = "^test-" }]
notes = "test API keys may not call through the proxy"
"""


async def test_no_secret_leaves_rrdev_up(tmp_path: Path, backend: Backend) -> None:
    profile = tmp_path / "rrdev.toml"
    credential = 'auth_type = "bearer"\ntoken = "${RR_CANARY_BACKEND}"\n'
    proxy = 'additional_headers = { "X-User-Id" = "{claims.sub}" }\n'
    profile.write_text(
        profile_text(
            backend.url, credential=credential, proxy=proxy, rules=SEED_RULES + HEADER_RULE
        )
    )
    log = tmp_path / "requests.jsonl"
    good = mint(client_secret=CLAIM)
    wrong_audience = mint(client_secret=CLAIM, audience="https://other.example")
    secrets = [CLAIM, BACKEND, API_KEY, COOKIE, QUERY, good, wrong_audience]
    secrets += [good.split(".")[2], wrong_audience.split(".")[1]]  # signature, payload
    leaky = {"Cookie": f"session={COOKIE}"}

    up = await start_up(
        profile, {"RR_CANARY_BACKEND": BACKEND}, port=0, offline=True, log_file=str(log)
    )
    rrdev_answers: list[httpx.Response] = []
    async with httpx.AsyncClient(base_url=up.url) as client:
        allowed = await client.get(
            f"/api/v1/products?access_token={QUERY}",
            headers={**leaky, "X-Api-Key": f"prod-{API_KEY}", "Authorization": f"Bearer {good}"},
        )
        rrdev_answers += [
            await client.get(  # 403 from a header rule that compares the secret header
                f"/api/v1/products?access_token={QUERY}",
                headers={
                    **leaky,
                    "X-Api-Key": f"test-{API_KEY}",
                    "Authorization": f"Bearer {good}",
                },
            ),
            await client.get(  # 401: the unverified claims end up in the record
                "/api/v1/products",
                headers={**leaky, "Authorization": f"Bearer {wrong_audience}"},
            ),
            await client.get(f"/a%2Fb?access_token={QUERY}", headers=leaky),  # 400
            await client.get(f"/api/v1/products?access_token={QUERY}", headers=leaky),  # 401
        ]
    up.process.send_signal(signal.SIGINT)
    code, rest, err = await up.finish()
    console = "".join(up.banner) + rest + err
    jsonl = log.read_text()

    # the canaries were really in play
    assert code == 0
    assert allowed.status_code == 200
    assert header_values(allowed.json(), "authorization") == [f"Bearer {BACKEND}"]
    assert [r.status_code for r in rrdev_answers] == [403, 401, 400, 401]
    assert "no-test-keys" in rrdev_answers[0].text
    assert len(jsonl.splitlines()) == 5
    assert fingerprint(good) in jsonl  # tokens appear as fingerprints only

    bodies = "\n".join(r.text + str(r.headers) for r in rrdev_answers)
    for place, text in (("console", console), ("JSONL log", jsonl), ("error bodies", bodies)):
        flat = text.replace("\n", "")
        for secret in secrets:
            assert secret not in flat, f"{secret[:24]}... leaked into the {place}"
    assert AUDIENCE  # (the profile's audience is not a secret; imported for the profile)
