"""``rrdev push`` end to end against the fake gateway API over real loopback HTTP
(issue 15, item 3): the plan, creating in dependency order with the IDs the API gives,
convergence, rules replaced (no update), the write-only secret, a failure midway."""

from __future__ import annotations

from gateway_seed import SEED_PROXY_CREDENTIAL, SEED_RULES
from gateway_support import SERVICE_TOKEN, Gateway, gateway

__all__ = ["gateway"]


def test_push_creates_target_credentials_proxy_and_rules(gateway: Gateway) -> None:
    result = gateway.push("--yes")
    assert result.exit_code == 0, result.output
    fake = gateway.fake
    (target_id,) = fake.objects["targets"]
    creds = {c["credentialName"]: i for i, c in fake.objects["credentials"].items()}
    assert set(creds) == {"backend-service-token", "auth0-jwt-verify"}
    (proxy,) = fake.objects["proxies"].values()
    assert proxy["proxyTargetId"] == target_id
    assert proxy["proxyTargetCredentialId"] == creds["backend-service-token"]
    assert proxy["proxyProxyCredentialId"] == creds["auth0-jwt-verify"]
    assert proxy["proxyDefaultRuleEffect"] == "deny"
    rules = fake.rules_of("proxies", "proxyName", "my-api-auth0-protected")
    created = [{k: v for k, v in r.items() if k != "ruleId"} for r in rules]
    assert sorted(created, key=repr) == sorted(SEED_RULES, key=repr)
    assert created[0]["effect"] == "deny"  # denies first: never looser while rules arrive
    # the secrets went where they belong, resolved; the API never lists them
    assert fake.secrets[creds["backend-service-token"]] == {"token": SERVICE_TOKEN}
    assert fake.secrets[creds["auth0-jwt-verify"]] == SEED_PROXY_CREDENTIAL["credentialSecret"]
    assert "credentialSecret" not in str(fake._listed("credentials"))
    # the raw token, no Bearer prefix, on every call
    assert {auth for _m, _p, auth in fake.requests} == {fake.token}
    assert "create     target my-backend-api" in result.stdout
    assert "credentialSecret: will be sent" in result.stdout
    assert "--against https://my-api.requestrocket.io" in result.stderr


def test_a_second_push_is_all_unchanged(gateway: Gateway) -> None:
    assert gateway.push("--yes").exit_code == 0
    before = len(gateway.changing_calls())
    result = gateway.push("--yes")
    assert result.exit_code == 0, result.output
    assert "7 unchanged: nothing to do." in result.stdout
    assert (
        "credentialSecret: unchanged: write-only, pass --send-secrets to replace" in result.stdout
    )
    assert len(gateway.changing_calls()) == before


def test_a_changed_rule_is_deleted_and_created_again(gateway: Gateway) -> None:
    assert gateway.push("--yes").exit_code == 0
    rules = gateway.fake.rules_of("proxies", "proxyName", "my-api-auth0-protected")
    rules.sort(key=lambda r: r.get("notes", ""))  # allow-all, read, scope gate
    old_ids = [r["ruleId"] for r in rules]
    text = (
        gateway.profile().read_text().replace('value = "delete:resources"', 'value = "delete:all"')
    )
    gateway.profile(text)
    result = gateway.push("--yes")
    assert result.exit_code == 0, result.output
    assert f"replace    rule proxy scope-gate-delete (deletes rule {old_ids[2]}" in result.stdout
    after = {
        r["ruleId"]: r
        for r in gateway.fake.rules_of("proxies", "proxyName", "my-api-auth0-protected")
    }
    assert set(old_ids[:2]) <= set(after)  # the others untouched
    assert old_ids[2] not in after and len(after) == 3
    (new,) = [r for r in after.values() if r["effect"] == "deny"]
    assert new["token"][0]["value"] == {"pattern": "delete:all"}
    # the new deny rule was created before the old one was deleted: never looser
    calls = gateway.changing_calls()[-2:]
    assert [m for m, _p in calls] == ["POST", "DELETE"]


def test_a_changed_field_is_an_update_of_that_field(gateway: Gateway) -> None:
    assert gateway.push("--yes").exit_code == 0
    gateway.profile(
        gateway.profile().read_text().replace('test_path = "/health"', 'test_path = "/ping"')
    )
    result = gateway.push("--yes")
    assert result.exit_code == 0, result.output
    assert "update     target my-backend-api: targetTestPath" in result.stdout
    (target,) = gateway.fake.objects["targets"].values()
    assert target["targetTestPath"] == "/ping"
    assert gateway.changing_calls()[-1][0] == "PATCH"


def test_a_changed_secret_is_sent_only_with_send_secrets(
    gateway: Gateway, monkeypatch: object
) -> None:
    assert gateway.push("--yes").exit_code == 0
    cred_id = next(
        i for i, c in gateway.fake.objects["credentials"].items() if c["credentialType"] == "target"
    )
    gateway.runner.env = {"BACKEND_SERVICE_TOKEN": "svc-token-rotated-987654"}  # type: ignore[assignment]
    result = gateway.push("--yes")
    assert "nothing to do" in result.stdout
    assert gateway.fake.secrets[cred_id] == {"token": SERVICE_TOKEN}
    result = gateway.push("--yes", "--send-secrets")
    assert result.exit_code == 0, result.output
    assert "update     target credential backend-service-token" in result.stdout
    assert gateway.fake.secrets[cred_id] == {"token": "svc-token-rotated-987654"}
    assert "svc-token-rotated" not in result.output


def test_a_failure_midway_says_what_was_applied_and_a_rerun_converges(gateway: Gateway) -> None:
    gateway.fake.fail_on_create = 4  # target, two credentials, then the proxy fails
    result = gateway.push("--yes")
    assert result.exit_code == 4
    assert "applied:     target my-backend-api (create)" in result.stdout
    assert "applied:     proxy credential auth0-jwt-verify (create)" in result.stdout
    assert "not applied: proxy my-api-auth0-protected (create)" in result.stdout
    assert "not applied: rule proxy scope-gate-delete (create)" in result.stdout
    assert "500" in result.stderr
    gateway.fake.fail_on_create = None
    result = gateway.push("--yes")
    assert result.exit_code == 0, result.output
    assert "3 unchanged" in result.stdout  # what the first run applied is not redone
    assert len(gateway.fake.objects["targets"]) == 1
    assert len(gateway.fake.objects["credentials"]) == 2
    assert "nothing to do" in gateway.push("--yes").stdout


def test_a_bad_token_is_a_clear_error_and_never_printed(
    gateway: Gateway, monkeypatch: object
) -> None:
    gateway.runner.env = {"RRDEV_GATEWAY_TOKEN": "rr_pat_wrong_token_555"}  # type: ignore[assignment]
    result = gateway.push("--yes")
    assert result.exit_code == 3
    assert "the gateway API refused the token (401)" in result.stderr
    assert "RRDEV_GATEWAY_TOKEN" in result.stderr
    assert "rr_pat_wrong_token_555" not in result.output
    assert gateway.changing_calls() == []


def test_no_token_is_a_clear_error(gateway: Gateway) -> None:
    gateway.runner.env = {"RRDEV_GATEWAY_TOKEN": ""}  # type: ignore[assignment]
    result = gateway.push("--yes")
    assert result.exit_code == 3
    assert "no API token: RRDEV_GATEWAY_TOKEN is not set" in result.stderr
    assert gateway.fake.requests == []


def test_the_api_clients_prefix_is_found(gateway: Gateway) -> None:
    gateway.fake.prefixes = ("/api/clients",)
    result = gateway.push("--yes")
    assert result.exit_code == 0, result.output
    assert all(p.startswith("/api/clients/c1/") for _m, p in gateway.changing_calls())
    assert "nothing to do" in gateway.push("--yes").stdout


def test_an_unknown_client_is_a_clear_error(gateway: Gateway) -> None:
    result = gateway.run("push", str(gateway.tmp / "auth0.toml"), "--client-id", "nope", "--yes")
    assert result.exit_code == 4
    assert "knows no client 'nope'" in result.stderr


def test_without_a_terminal_push_needs_yes(gateway: Gateway) -> None:
    result = gateway.push()
    assert result.exit_code == 2
    assert "stdin is not a terminal" in result.stderr
    assert "--yes" in result.stderr
    assert gateway.changing_calls() == []


def test_dry_run_prints_the_plan_and_changes_nothing(gateway: Gateway) -> None:
    result = gateway.push("--dry-run")
    assert result.exit_code == 0, result.output
    assert "7 create." in result.stdout
    assert gateway.changing_calls() == []


def test_an_unset_secret_stops_the_push_before_anything_is_applied(gateway: Gateway) -> None:
    gateway.runner.env = {"BACKEND_SERVICE_TOKEN": ""}  # type: ignore[assignment]
    result = gateway.push("--yes")
    assert result.exit_code == 3
    assert "BACKEND_SERVICE_TOKEN is not set" in result.stderr
    assert gateway.changing_calls() == []
