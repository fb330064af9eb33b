"""``push`` and ``pull`` against the gateway API: read what exists, apply a plan.

``read_remote`` lists the three collections and the rules of the objects the profile
names; ``core.gateway.plan`` decides; ``apply_plan`` runs the steps in their safe order,
putting the IDs the API returns into the references of later payloads. A failure midway
stops there and reports which steps were applied and which were not: the plan of a rerun
starts from what the API then holds, so it converges.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from rrdev.clients.gateway import GatewayApi, GatewayApiError
from rrdev.core.gateway.payloads import COLLECTIONS, GatewayExport
from rrdev.core.gateway.plan import (
    ID_FIELDS,
    Plan,
    RemoteState,
    Step,
    remote_id,
)
from rrdev.core.model import ENV_REF, Secret


def read_remote(api: GatewayApi, export: GatewayExport) -> RemoteState:
    """What the API holds, with the rules of every object the profile names."""
    lists = {c: tuple(api.list(c)) for c in ("targets", "credentials", "proxies")}
    names = _names(export)
    rules: dict[tuple[str, str], tuple[Mapping[str, Any], ...]] = {}
    for collection, items in lists.items():
        for item in items:
            if _name_of(item) in names.get(collection, set()):
                ident = remote_id(item, collection)
                rules[(collection, ident)] = tuple(api.list_rules(collection, ident))
    return RemoteState(lists["targets"], lists["credentials"], lists["proxies"], rules)


def _names(export: GatewayExport) -> dict[str, set[str]]:
    names: dict[str, set[str]] = {}
    for ref, payload in export.objects().items():
        names.setdefault(COLLECTIONS[ref], set()).add(_name_of(payload.body))
    return names


def _name_of(item: Mapping[str, Any]) -> str:
    return str(item.get("targetName") or item.get("credentialName") or item.get("proxyName"))


def fetch_lists(api: GatewayApi) -> dict[str, Any]:
    """Everything ``pull`` needs: the three lists and every object's rules by ID."""
    lists: dict[str, Any] = {c: api.list(c) for c in ("targets", "credentials", "proxies")}
    rules: dict[str, list[dict[str, Any]]] = {}
    for collection in ("targets", "credentials", "proxies"):
        for item in lists[collection]:
            ident = remote_id(item, collection)
            rules[ident] = api.list_rules(collection, ident)
    lists["rules"] = rules
    return lists


# ------------------------------------------------------------------------- apply


def resolve_secrets(plan: Plan, env: Mapping[str, str], profile_path: str) -> dict[str, Any]:
    """Every ``credentialSecret`` the plan sends, resolved now: an unset variable stops
    the push before anything is applied (never half a push for a typo)."""
    resolved: dict[str, Any] = {}
    for step in plan.changes:
        secret = (step.body or {}).get("credentialSecret")
        if secret is None:
            continue
        resolved[step.ref] = {
            k: _resolve(v, f"{step.ref}.credentialSecret.{k}", env, profile_path)
            for k, v in secret.items()
        }
    return resolved


def _resolve(value: Any, key: str, env: Mapping[str, str], path: str) -> Any:
    if isinstance(value, str) and ENV_REF.search(value):
        return Secret(value, key=key, file=path).resolve(env)
    return value


@dataclass
class ApplyReport:
    applied: list[Step] = field(default_factory=list)
    not_applied: list[Step] = field(default_factory=list)
    error: GatewayApiError | None = None


def apply_plan(
    api: GatewayApi,
    plan: Plan,
    secrets: Mapping[str, Any],
    on_step: Callable[[Step], None] = lambda _s: None,
) -> ApplyReport:
    """Run the plan's changes in order; stop at the first failure and say where."""
    ids = {s.ref: s.remote_id for s in plan.steps if s.scope is None and s.remote_id}
    report = ApplyReport()
    steps = list(plan.in_apply_order())
    for n, step in enumerate(steps):
        try:
            _apply_one(api, step, ids, secrets)
        except GatewayApiError as exc:
            report.error = exc
            report.not_applied = steps[n:]
            return report
        report.applied.append(step)
        on_step(step)
    return report


def _apply_one(
    api: GatewayApi, step: Step, ids: dict[str, str | None], secrets: Mapping[str, Any]
) -> None:
    body = _with_ids(step.body or {}, ids)
    if step.ref in secrets:
        body["credentialSecret"] = secrets[step.ref]
    if step.scope is not None:
        parent_ref = step.scope
        collection = COLLECTIONS[parent_ref]
        parent = ids.get(parent_ref)
        if step.action == "delete":
            api.delete_rule(collection, str(parent), str(step.remote_id))
        else:
            api.create(f"{collection}/{parent}/rules", body)
        return
    if step.action == "create":
        created = api.create(step.collection, body)
        ids[step.ref] = str(created.get(ID_FIELDS[step.collection], created.get("id", "")))
        if not ids[step.ref]:
            raise GatewayApiError(
                f"the API created {step.ref} but gave no {ID_FIELDS[step.collection]}"
            )
    else:
        api.update(step.collection, str(step.remote_id), body)


def _with_ids(body: Mapping[str, Any], ids: Mapping[str, str | None]) -> dict[str, Any]:
    out = {}
    for name, value in body.items():
        if isinstance(value, Mapping) and "$ref" in value:
            value = ids[value["$ref"]]
        out[name] = value
    return out
