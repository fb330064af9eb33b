"""Attack: a token from another Entra ID tenant sent to a multi-tenant API.

Every Entra tenant's tokens are signed by the same keys (the ``common`` JWKS), so the
signature proves nothing about *which* organisation issued the token: only the issuer
and ``tid`` do. A profile with ``issuer = ".../{tenantid}/v2.0"`` accepts a token only
when its ``tid`` is in ``tenants`` AND its ``iss`` equals the template with that very
tid substituted. A token from an unlisted tenant, one whose ``tid`` and ``iss`` name
different tenants, one with no ``tid``, or one whose issuer is the literal template or
the ``common`` alias is refused with 401, and the backend receives nothing: the
placeholder is never "skip the issuer check".

Over real loopback sockets: a JWKS server, ``rrdev up`` (uvicorn), an echo backend.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from provider_support import (
    ENTRA,
    OTHER_TENANT,
    TENANT,
    entra_v1,
    entra_v2,
    forwarded,
    get,
    provider_proxy,
    refused,
    signed,
)
from proxy_support import Backend

pytestmark = pytest.mark.usefixtures("keyset")

ATTACKS: list[tuple[str, dict[str, Any], str, str]] = [
    # (case, claims, reason, a fragment of the message)
    (
        "another tenant (v2)",
        entra_v2(OTHER_TENANT),
        "tenant_not_allowed",
        f"tenant {OTHER_TENANT!r}",
    ),
    (
        "another tenant (v1)",
        entra_v1(OTHER_TENANT),
        "tenant_not_allowed",
        f"tenant {OTHER_TENANT!r}",
    ),
    (
        "tid allowed, issuer from another tenant",
        entra_v2(OTHER_TENANT, tid=TENANT),
        "tenant_not_allowed",
        OTHER_TENANT,
    ),
    (
        "issuer allowed, tid of another tenant",
        entra_v2(TENANT, tid=OTHER_TENANT),
        "issuer_mismatch",
        "does not match the tenant in its issuer",
    ),
    (
        "no tid",
        {k: v for k, v in entra_v2().items() if k != "tid"},
        "claim_missing",
        "no tid claim",
    ),
    (
        "the literal template as issuer",
        entra_v2(iss="https://login.microsoftonline.com/{tenantid}/v2.0", tid="{tenantid}"),
        "tenant_not_allowed",
        "{tenantid}",
    ),
    (
        "the common alias as issuer",
        entra_v2(iss="https://login.microsoftonline.com/common/v2.0", tid="common"),
        "tenant_not_allowed",
        "'common'",
    ),
    (
        "an issuer that only ends like the template",
        entra_v2(iss=f"https://evil.example/{TENANT}/v2.0"),
        "issuer_mismatch",
        "https://evil.example/",
    ),
]


@pytest.mark.parametrize(
    ("case", "claims", "reason", "fragment"), ATTACKS, ids=[a[0] for a in ATTACKS]
)
async def test_a_token_from_outside_the_tenant_list_is_refused(
    tmp_path: Path,
    backend: Backend,
    case: str,
    claims: dict[str, Any],
    reason: str,
    fragment: str,
) -> None:
    async with provider_proxy(tmp_path, backend, ENTRA) as proxy:
        body = refused(await get(proxy, signed(claims)), 401, reason, backend)
    assert fragment in body["message"], (case, body["message"])


async def test_listed_tenants_get_in_with_either_token_version(
    tmp_path: Path, backend: Backend
) -> None:
    async with provider_proxy(tmp_path, backend, ENTRA) as proxy:
        forwarded(await get(proxy, signed(entra_v2())), backend)
        forwarded(await get(proxy, signed(entra_v1())), backend)
        body = refused(
            await get(proxy, signed(entra_v2(OTHER_TENANT))), 401, "tenant_not_allowed", backend
        )
    assert "proxy_credential.tenants" in body["hint"]


async def test_adding_the_tenant_lets_it_in(tmp_path: Path, backend: Backend) -> None:
    both = ENTRA.replace(f'tenants = ["{TENANT}"]', f'tenants = ["{TENANT}", "{OTHER_TENANT}"]')
    async with provider_proxy(tmp_path, backend, both) as proxy:
        forwarded(await get(proxy, signed(entra_v2(OTHER_TENANT))), backend)
        # Still exact: the tid must be the tenant its issuer names.
        refused(
            await get(proxy, signed(entra_v2(OTHER_TENANT, tid=TENANT))),
            401,
            "issuer_mismatch",
            backend,
        )
