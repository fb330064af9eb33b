"""Alias confusion: one port serves several profiles, and the Host header picks which.

Whoever controls the Host header controls which profile's rules judge the request, so
every way of naming two profiles at once, or a profile through a name that is not its
own, must be refused before anything is forwarded: two Host headers, an absolute-form
target naming another alias, a rebinding page's name that merely starts with an alias,
a token minted for one profile's audience sent to another, and a keep-alive connection
that changes its Host between requests. The refusals of a rebinding page do not even
list the aliases.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from alias_support import OPEN, open_rules, run_aliases, send, send_many
from proxy_support import Backend, RawResponse, mint, profile_text, run_backend

pytestmark = pytest.mark.usefixtures("keyset")

BACKEND_TOKEN = "alpha-backend-credential-51c2"


@pytest.fixture(autouse=True)
def _backend_token(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RR_ALPHA_TOKEN", BACKEND_TOKEN)


def profiles(tmp_path: Path, alpha: Backend, beta: Backend) -> list[Path]:
    """alpha: open, its backend credential, GET /a/ only. beta: GET /b/ only."""
    first, second = tmp_path / "alpha.toml", tmp_path / "beta.toml"
    first.write_text(
        profile_text(
            alpha.url,
            proxy='alias = "alpha"',
            proxy_credential=OPEN,
            credential='auth_type = "bearer"\ntoken = "${RR_ALPHA_TOKEN}"\n',
            rules=open_rules("a"),
        )
    )
    second.write_text(
        profile_text(beta.url, proxy='alias = "beta"', proxy_credential=OPEN, rules=open_rules("b"))
    )
    return [first, second]


def assert_refused(answer: RawResponse, status: int, reason: str, *backends: Backend) -> None:
    body = answer.json()
    assert (answer.status, body["reason"]) == (status, reason)
    assert set(body) == {"status", "reason", "message", "hint", "trace"}
    assert answer.header("requestrocket-proxy-code") == "proxy-access-denied"
    assert BACKEND_TOKEN not in answer.body.decode()
    for backend in backends:
        assert backend.hits == 0


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("alpha.localhost.evil.example", id="alias-prefix"),
        pytest.param("evil.example", id="rebound-name"),
        pytest.param("alpha.evil.example", id="alias-label-on-another-name"),
        pytest.param("alpha-localhost", id="no-dot"),
        pytest.param("alpha.localhost@evil.example", id="userinfo"),
        pytest.param("alpha.localhost/x", id="path"),
    ],
)
async def test_names_that_are_not_an_alias_host_are_refused_without_the_alias_list(
    tmp_path: Path, backend: Backend, host: str
) -> None:
    async with run_backend() as beta:
        async with run_aliases(profiles(tmp_path, backend, beta)) as running:
            answer = await send(running.port, [host], "/a/items")
        assert_refused(answer, 421, "host_not_allowed", backend, beta)
    assert "beta" not in answer.body.decode()


async def test_two_host_headers_naming_two_aliases_are_refused(
    tmp_path: Path, backend: Backend
) -> None:
    async with run_backend() as beta:
        async with run_aliases(profiles(tmp_path, backend, beta)) as running:
            both = ["beta.localhost", "alpha.localhost"]
            answer = await send(running.port, both, "/a/items")
            same = await send(running.port, ["alpha.localhost", "alpha.localhost"], "/a/items")
        assert_refused(answer, 421, "host_not_allowed", backend, beta)
        assert_refused(same, 421, "host_not_allowed", backend, beta)
    assert "more than one Host" in answer.json()["message"]


async def test_an_absolute_target_naming_another_alias_is_not_routed_there(
    tmp_path: Path, backend: Backend
) -> None:
    async with run_backend() as beta:
        async with run_aliases(profiles(tmp_path, backend, beta)) as running:
            answer = await send(running.port, ["beta.localhost"], "http://alpha.localhost/a/items")
        assert_refused(answer, 400, "ambiguous_path", backend, beta)


async def test_a_token_for_one_alias_is_refused_by_another(
    tmp_path: Path, backend: Backend
) -> None:
    async with run_backend() as beta:
        first, second = tmp_path / "alpha.toml", tmp_path / "beta.toml"
        first.write_text(profile_text(backend.url, proxy='alias = "alpha"'))
        audience = 'audience = "https://beta.example"\n'
        second.write_text(
            profile_text(
                beta.url,
                proxy='alias = "beta"',
                proxy_credential=(
                    'jwks_uri = "http://127.0.0.1:9/jwks.json"\n'
                    f'{audience}issuer = "https://tenant.example.auth0.com/"\n'
                ),
            )
        )
        alpha_token = [("Authorization", f"Bearer {mint()}")]
        async with run_aliases([first, second]) as running:
            at_beta = await send(running.port, ["beta.localhost"], "/x", headers=alpha_token)
            at_alpha = await send(running.port, ["alpha.localhost"], "/x", headers=alpha_token)
        assert (at_beta.status, at_beta.json()["reason"]) == (401, "audience_mismatch")
        assert at_alpha.status == 200
        assert beta.hits == 0 and backend.hits == 1


async def test_a_keep_alive_connection_is_judged_per_request_by_the_host_it_names(
    tmp_path: Path, backend: Backend
) -> None:
    async with run_backend() as beta:
        async with run_aliases(profiles(tmp_path, backend, beta)) as running:
            answers = await send_many(
                running.port,
                [
                    (["alpha.localhost"], "GET", "/a/items", ()),
                    (["beta.localhost"], "GET", "/a/items", ()),  # beta allows /b/ only
                    (["beta.localhost"], "GET", "/b/items", ()),
                ],
            )
        assert [a.status for a in answers] == [200, 403, 200]
        assert [e["raw_path"] for e in backend.seen] == ["/a/items"]
        assert [e["raw_path"] for e in beta.seen] == ["/b/items"]
        # beta never got alpha's backend credential
        assert all(BACKEND_TOKEN not in str(e["headers"]) for e in beta.seen)
