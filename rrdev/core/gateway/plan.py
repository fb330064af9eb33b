"""What ``rrdev push`` would change, decided without I/O: the profile's payloads against
what the API listed.

Objects are matched by name (``targetName``, ``credentialName`` + ``credentialType``,
``proxyName``); a matched object whose fields differ is updated with the fields that
differ. ``credentialSecret`` is write-only: it cannot be compared, so an existing
credential's secret is sent only when asked (``send_secrets``). Rules have no update:
they are matched by content, a rule that changed is deleted and created again.
Objects the profile does not name are never touched.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from rrdev.core.errors import RrdevError
from rrdev.core.gateway.fields import FIELD_DEFAULTS, PARENT_REFS
from rrdev.core.gateway.payloads import COLLECTIONS, OBJECT_ORDER, GatewayExport, Payload
from rrdev.core.gateway.rule_tables import normal_rule
from rrdev.core.records import SCOPES, Scope

Action = Literal["create", "update", "unchanged", "delete"]
ID_FIELDS = {"targets": "targetId", "credentials": "credentialId", "proxies": "proxyId"}
RULE_ID_FIELD = "ruleId"


class AmbiguousRemote(RrdevError):
    """Two remote objects share the name the profile uses: which one to update?"""

    exit_code = 3


@dataclass(frozen=True)
class RemoteState:
    """What the API listed: each collection's items, and the rules of every listed
    object whose rules were asked for, by ``(collection, id)``."""

    targets: tuple[Mapping[str, Any], ...] = ()
    credentials: tuple[Mapping[str, Any], ...] = ()
    proxies: tuple[Mapping[str, Any], ...] = ()
    rules: Mapping[tuple[str, str], tuple[Mapping[str, Any], ...]] = field(default_factory=dict)


@dataclass(frozen=True)
class Step:
    """One thing push does (or leaves alone). ``body`` is what is sent (a create's whole
    payload, an update's changed fields; references still ``{"$ref": ...}``)."""

    ref: str
    action: Action
    collection: str
    name: str
    remote_id: str | None = None
    body: Mapping[str, Any] | None = None
    changes: tuple[str, ...] = ()
    secret: Literal["", "send", "keep"] = ""
    scope: Scope | None = None
    replaces: str | None = None  # a rule create that stands in for a deleted rule

    @property
    def changes_anything(self) -> bool:
        return self.action != "unchanged"


@dataclass(frozen=True)
class Plan:
    steps: tuple[Step, ...]

    @property
    def changes(self) -> tuple[Step, ...]:
        return tuple(s for s in self.steps if s.changes_anything)

    def in_apply_order(self) -> tuple[Step, ...]:
        """Objects in dependency order; then each scope's rules so that no moment in
        between is looser than both the old and the new rule set would be alone: stale
        allows go first, new denies come before stale denies go, new allows come last."""
        objects = [s for s in self.changes if s.scope is None]
        rules: list[Step] = []
        for scope in SCOPES:
            mine = [s for s in self.changes if s.scope == scope]
            rules += [s for s in mine if s.action == "delete" and _effect(s) == "allow"]
            rules += [s for s in mine if s.action == "create" and _effect(s) == "deny"]
            rules += [s for s in mine if s.action == "delete" and _effect(s) != "allow"]
            rules += [s for s in mine if s.action == "create" and _effect(s) != "deny"]
        return (*objects, *rules)


def _effect(step: Step) -> Any:
    return (step.body or {}).get("effect")


def make_plan(export: GatewayExport, remote: RemoteState, *, send_secrets: bool) -> Plan:
    """The steps that make the gateway hold what ``export`` describes."""
    steps: list[Step] = []
    matched: dict[str, Mapping[str, Any]] = {}
    objects = export.objects()
    for ref in OBJECT_ORDER:
        payload = objects.get(ref)
        if payload is None:
            continue
        found = _match(payload, remote)
        if found is not None:
            matched[ref] = found
        steps.append(_object_step(payload, found, matched, send_secrets))
    for scope in SCOPES:
        steps += _rule_steps(export.rules(scope), scope, matched, remote)
    return Plan(tuple(steps))


def remote_id(item: Mapping[str, Any], collection: str) -> str:
    return str(item.get(ID_FIELDS.get(collection, RULE_ID_FIELD), item.get("id", "")))


def _match(payload: Payload, remote: RemoteState) -> Mapping[str, Any] | None:
    collection = COLLECTIONS[payload.ref]
    body = payload.body
    if collection == "targets":
        found = [t for t in remote.targets if t.get("targetName") == body["targetName"]]
    elif collection == "proxies":
        found = [p for p in remote.proxies if p.get("proxyName") == body["proxyName"]]
    else:
        found = [
            c
            for c in remote.credentials
            if c.get("credentialName") == body["credentialName"]
            and c.get("credentialType") == body["credentialType"]
        ]
    if len(found) > 1:
        raise AmbiguousRemote(
            f"the gateway holds {len(found)} {collection} named {_name(payload)!r}",
            "rename or delete the duplicates in the gateway: push matches objects by name",
        )
    return found[0] if found else None


def _name(payload: Payload) -> str:
    body = payload.body
    return str(body.get("targetName") or body.get("credentialName") or body.get("proxyName"))


def _object_step(
    payload: Payload,
    found: Mapping[str, Any] | None,
    matched: Mapping[str, Mapping[str, Any]],
    send_secrets: bool,
) -> Step:
    collection = COLLECTIONS[payload.ref]
    has_secret = "credentialSecret" in payload.body
    if found is None:
        secret = "send" if has_secret else ""
        return Step(
            payload.ref, "create", collection, _name(payload), body=payload.body, secret=secret
        )  # type: ignore[arg-type]
    changed = _changed_fields(payload, found, matched)
    if has_secret and send_secrets:
        changed["credentialSecret"] = payload.body["credentialSecret"]
    action: Action = "update" if changed else "unchanged"
    secret = ("send" if send_secrets else "keep") if has_secret else ""
    return Step(
        payload.ref,
        action,
        collection,
        _name(payload),
        remote_id(found, collection),
        body=changed or None,
        changes=tuple(changed),
        secret=secret,  # type: ignore[arg-type]
    )


def _changed_fields(
    payload: Payload, found: Mapping[str, Any], matched: Mapping[str, Mapping[str, Any]]
) -> dict[str, Any]:
    prefix = {"targets": "target", "credentials": "credential", "proxies": "proxy"}
    own_defaults = {
        k: v for k, v in FIELD_DEFAULTS.items() if k.startswith(prefix[COLLECTIONS[payload.ref]])
    }
    changed: dict[str, Any] = {}
    for name in {**own_defaults, **payload.body}:
        if name == "credentialSecret":
            continue
        wanted = payload.body.get(name, own_defaults.get(name))
        if _is_ref(wanted):
            target = matched.get(wanted["$ref"])
            if target is not None and found.get(name) == remote_id(
                target, COLLECTIONS[wanted["$ref"]]
            ):
                continue
        elif found.get(name, own_defaults.get(name)) == wanted:
            continue
        changed[name] = wanted
    return changed


def _is_ref(value: Any) -> bool:
    return isinstance(value, Mapping) and "$ref" in value


def _rule_steps(
    wanted: tuple[Payload, ...],
    scope: Scope,
    matched: Mapping[str, Mapping[str, Any]],
    remote: RemoteState,
) -> list[Step]:
    parent_ref = PARENT_REFS[scope]
    collection = COLLECTIONS[parent_ref]
    parent = matched.get(parent_ref)
    existing = (
        list(remote.rules.get((collection, remote_id(parent, collection)), ())) if parent else []
    )
    pool = [(normal_rule(r), r) for r in existing]
    steps: list[Step] = []
    creates: list[Payload] = []
    for payload in wanted:
        key = normal_rule(payload.body)
        hit = next((n for n, (k, _r) in enumerate(pool) if k == key), None)
        if hit is None:
            creates.append(payload)
            continue
        rule = pool.pop(hit)[1]
        steps.append(
            Step(
                payload.ref,
                "unchanged",
                "rules",
                _rule_name(payload),
                remote_id(rule, "rules"),
                scope=scope,
            )
        )
    stale = [r for _k, r in pool]
    for n, payload in enumerate(creates):
        replaced = remote_id(stale[n], "rules") if n < len(stale) else None
        steps.append(
            Step(
                payload.ref,
                "create",
                "rules",
                _rule_name(payload),
                body=payload.body,
                scope=scope,
                replaces=replaced,
            )
        )
    for rule in stale:
        name = str(rule.get("notes") or remote_id(rule, "rules"))
        body = {k: v for k, v in rule.items() if k == "effect"}
        steps.append(
            Step(
                f"{scope}.rules",
                "delete",
                "rules",
                name,
                remote_id(rule, "rules"),
                body=body,
                scope=scope,
            )
        )
    return steps


def _rule_name(payload: Payload) -> str:
    return payload.rule_id or payload.ref
