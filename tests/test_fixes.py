"""Make it pass (``core/fixes.py``): every proposal is checked by the engine itself.

A refusal is decided by a real ``ProxyApp`` (offline: the local keyset in a temporary
RRDEV_HOME), the proposal applied to the refused token's claims, the result signed by
the same keyset and decided again: it must pass. Refusals rrdev cannot fix with a
token say so.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from proxy_support import AUDIENCE, mint, profile_text

from rrdev.core.fixes import ClaimEdit, FixProposal, fixed_claims, propose_fix
from rrdev.core.keyset import Keyset
from rrdev.core.profile import load_profile
from rrdev.core.records import Explanation
from rrdev.servers.proxy import Overrides, ProxyApp

pytestmark = pytest.mark.usefixtures("keyset")

PRODUCT = "/api/v1/products/1"

ROLE_RULES = """
[[proxy.rules]]
id = "admins-write"
effect = "allow"
methods = ["POST"]
token = [{ claim = "^role$", value = "^admin$" }]

[[proxy.rules]]
id = "no-deletes"
effect = "deny"
methods = ["DELETE"]

[[proxy.rules]]
id = "fancy"
effect = "allow"
methods = ["PUT"]
token = [{ claim = "^group$", value = "^(ops|dev)$" }]
"""


def proxy_for(tmp_path: Path, rules: str | None = None) -> ProxyApp:
    path = tmp_path / "rrdev.toml"
    extra = {} if rules is None else {"rules": rules}
    path.write_text(profile_text("http://127.0.0.1:9", **extra))
    return ProxyApp(load_profile(path), overrides=Overrides(offline=True), reload_interval=0)


async def decide(app: ProxyApp, method: str, token: str | None, path: str = PRODUCT) -> Explanation:
    headers = (("authorization", f"Bearer {token}"),) if token else ()
    return await app.explain(method, path, "", headers)


async def fixed_and_retried(app: ProxyApp, method: str, expl: Explanation) -> Explanation:
    proposal = propose_fix(expl, app.profile)
    assert proposal.possible, proposal.summary
    assert expl.verification is not None and expl.verification.claims
    claims = fixed_claims(expl.verification.claims, proposal, time.time())
    return await decide(app, method, Keyset.load_or_create().sign(claims))


@pytest.mark.parametrize(
    ("method", "token", "reason", "summary"),
    [
        ("DELETE", {}, "rule_denied", "scope with delete:resources"),
        ("GET", {"expires_in": -300}, "token_expired", "a fresh token"),
        ("GET", {"nbf": int(time.time()) + 600}, "token_not_yet_valid", "a fresh token"),
        ("GET", {"audience": "https://wrong.example"}, "audience_mismatch", AUDIENCE),
    ],
)
async def test_a_proposal_makes_the_refused_request_pass(
    tmp_path: Path, method: str, token: dict[str, Any], reason: str, summary: str
) -> None:
    app = proxy_for(tmp_path)
    expl = await decide(app, method, mint(**token))
    assert expl.reason == reason
    assert summary in propose_fix(expl, app.profile).summary
    retried = await fixed_and_retried(app, method, expl)
    assert retried.allowed, retried.message


async def test_a_default_denial_proposes_what_an_allow_rule_requires(tmp_path: Path) -> None:
    app = proxy_for(tmp_path, ROLE_RULES)
    expl = await decide(app, "POST", mint(role="viewer"), "/api/v1/products")
    assert expl.reason == "default_denied"
    proposal = propose_fix(expl, app.profile)
    assert proposal.edits == (ClaimEdit("role", "add", "admin"),)
    retried = await fixed_and_retried(app, "POST", expl)
    assert retried.allowed, retried.message


@pytest.mark.parametrize(
    ("method", "why"),
    [
        ("DELETE", "deny rule no-deletes holds whatever the token says"),
        ("PUT", "no allow rule in scope proxy"),  # ^(ops|dev)$ is not a literal
    ],
)
async def test_what_no_token_can_fix_is_said_not_guessed(
    tmp_path: Path, method: str, why: str
) -> None:
    app = proxy_for(tmp_path, ROLE_RULES)
    expl = await decide(app, method, mint())
    assert expl.status == 403
    proposal = propose_fix(expl, app.profile)
    assert not proposal.possible and why in proposal.summary


async def test_no_token_and_non_token_refusals(tmp_path: Path) -> None:
    app = proxy_for(tmp_path)
    missing = propose_fix(await decide(app, "GET", None), app.profile)
    assert missing.possible and missing.new_token
    ambiguous = await decide(app, "GET", mint(), "/api/%2e%2e/admin")
    assert ambiguous.reason == "ambiguous_path"
    assert not propose_fix(ambiguous, app.profile).possible
    allowed = await decide(app, "GET", mint(), "/api/v1/products")
    assert not propose_fix(allowed, app.profile).possible


@pytest.mark.parametrize(
    ("claims", "edit", "expected"),
    [
        ({"scope": "a b"}, ClaimEdit("scope", "add", "c"), "a b c"),
        ({"scope": "a b"}, ClaimEdit("scope", "add", "b"), "a b"),
        ({"scope": "a b c"}, ClaimEdit("scope", "remove", "b"), "a c"),
        ({"roles": ["x"]}, ClaimEdit("roles", "add", "y"), ["x", "y"]),
        ({"roles": ["x", "y"]}, ClaimEdit("roles", "remove", "x"), ["y"]),
        ({}, ClaimEdit("role", "add", "admin"), "admin"),
        ({"aud": "a"}, ClaimEdit("aud", "set", "b"), "b"),
    ],
)
def test_claim_edits(claims: dict[str, Any], edit: ClaimEdit, expected: Any) -> None:
    out = fixed_claims(claims, FixProposal("", (edit,)), 0)
    assert out[edit.claim] == expected


def test_a_fresh_token_keeps_its_lifetime_and_drops_nbf() -> None:
    claims = {"iat": 100, "exp": 700, "nbf": 5000, "sub": "x"}
    out = fixed_claims(claims, FixProposal("", fresh=True), 10_000)
    assert out == {"iat": 10_000, "exp": 10_600, "sub": "x"}


@pytest.mark.parametrize(
    ("pattern", "literal"),
    [
        ("delete:resources", "delete:resources"),
        ("^admin$", "admin"),
        ("(^| )Orders\\.Write( |$)", "Orders.Write"),
        ("^(ops|dev)$", None),
        ("a.b", None),
        ("\\d+", None),
        ("", None),
    ],
)
def test_only_literal_patterns_are_proposed(pattern: str, literal: str | None) -> None:
    from rrdev.core.fixes import _literal

    assert _literal(pattern) == literal
