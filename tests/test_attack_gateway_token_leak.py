"""Attack: getting rrdev to leak the gateway API token (or a credential secret) while it
talks to the management API. Real loopback HTTP against the fake gateway API.

- an API (or a man in the middle) answering with a redirect to another host: httpx
  would re-send the Authorization header; rrdev never follows, and the other host
  receives nothing;
- an API error that echoes the Authorization value: rrdev cuts the token out of what
  it prints;
- a bad token: the 401 message names the variable, never the value; there is no flag
  that takes a token (it would land in shell history and process lists).
"""

from __future__ import annotations

from fake_gateway import FakeGateway, serve_fake_gateway
from gateway_support import SERVICE_TOKEN, Gateway, gateway

__all__ = ["gateway"]


def test_a_redirect_is_not_followed_and_the_other_host_gets_nothing(gateway: Gateway) -> None:
    elsewhere = FakeGateway(token="unused")
    with serve_fake_gateway(elsewhere) as other_url:
        gateway.fake.redirect_to = f"{other_url}/clients/c1/targets"
        result = gateway.push("--yes")
    assert result.exit_code == 4
    assert "redirect (307): not followed" in result.stderr
    assert elsewhere.requests == []  # the token never went there
    assert gateway.fake.token not in result.output


def test_an_error_that_echoes_the_token_is_printed_without_it(gateway: Gateway) -> None:
    gateway.fake.echo_authorization = True
    gateway.fake.fail_on_create = 1
    result = gateway.push("--yes")
    assert result.exit_code == 4
    assert "(Authorization: [token])" in result.stderr
    assert gateway.fake.token not in result.output


def test_a_refused_token_is_named_by_its_variable_never_shown(gateway: Gateway) -> None:
    gateway.fake.echo_authorization = True
    gateway.runner.env = {"RRDEV_GATEWAY_TOKEN": "rr_pat_stolen_or_wrong_42"}  # type: ignore[assignment]
    for command in (("push", str(gateway.tmp / "auth0.toml"), "--yes"), ("pull",)):
        result = gateway.run(*command, "--client-id", "c1")
        assert result.exit_code == 3
        assert "refused the token (401)" in result.stderr
        assert "rr_pat_stolen_or_wrong_42" not in result.output


def test_there_is_no_token_flag(gateway: Gateway) -> None:
    result = gateway.push("--yes", "--token", "rr_pat_on_the_command_line")
    assert result.exit_code == 2
    assert gateway.fake.requests == []


def test_the_plan_and_report_never_show_a_secret(gateway: Gateway) -> None:
    first = gateway.push("--yes")
    rotated = gateway.push("--yes", "--send-secrets")
    for result in (first, rotated):
        assert result.exit_code == 0, result.output
        assert SERVICE_TOKEN not in result.output
        assert gateway.fake.token not in result.output
