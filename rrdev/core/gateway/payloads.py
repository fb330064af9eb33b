"""Profile -> the gateway's create payloads (the seed's field names and shapes).

One profile is one proxy: a target, an optional target credential, a proxy credential,
the proxy (holding ``{"$ref": ...}`` references to the other three, since the IDs come
from the API) and the rules of each scope. ``export_profile`` returns them in the order
they must be created. Keys the gateway has no field for (``listen``, ``allowed_hosts``,
``provider``... and the ``[auth]``, ``[issuer]`` and ``[[checks]]`` sections) are not in
any payload: they are listed, with their values, in ``GatewayExport.rrdev_only`` so that
``import`` can restore them. Pure: no I/O; the caller passes the raw TOML data.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from rrdev.core.gateway.fields import (
    CREDENTIAL_SECTIONS,
    DEFAULT_EFFECT_FIELD,
    MAPPED_KEYS,
    PARENT_REFS,
    RRDEV_ONLY_SECTIONS,
    SECRET_SHAPES,
    auth_type_to_gateway,
    is_secret_key,
    placeholder_name,
)
from rrdev.core.model import ENV_REF, PairCondition, Pattern, Profile, Rule, Secret
from rrdev.core.records import SCOPES, Scope

#: The order in which objects must exist: the proxy references the first three.
OBJECT_ORDER = ("target", "target_credential", "proxy_credential", "proxy")
#: Where each kind of object is created (``{clientId}`` is the API's client).
COLLECTIONS = {
    "target": "targets",
    "target_credential": "credentials",
    "proxy_credential": "credentials",
    "proxy": "proxies",
}


@dataclass(frozen=True)
class Payload:
    """One create call: ``ref`` names it (``target``, ``proxy.rules[0]``...), ``body``
    is the JSON sent. Rules carry their ``scope`` and rrdev's rule id (never sent)."""

    ref: str
    body: Mapping[str, Any]
    scope: Scope | None = None
    rule_id: str | None = None

    @property
    def is_rule(self) -> bool:
        return self.scope is not None

    @property
    def path(self) -> str:
        """The create path, with ``{clientId}`` and the parent's ``{...Id}`` left in."""
        if self.scope is None:
            return f"/clients/{{clientId}}/{COLLECTIONS[self.ref]}"
        parent = PARENT_REFS[self.scope]
        return f"/clients/{{clientId}}/{COLLECTIONS[parent]}/{{{_id_name(parent)}}}/rules"


def _id_name(ref: str) -> str:
    head, *rest = ref.split("_")
    return head + "".join(word.title() for word in rest) + "Id"


@dataclass(frozen=True)
class GatewayExport:
    """The payloads in creation order, what stayed rrdev-only, and what to warn about."""

    payloads: tuple[Payload, ...]
    rrdev_only: Mapping[str, Any]
    warnings: tuple[str, ...] = ()

    def objects(self) -> dict[str, Payload]:
        return {p.ref: p for p in self.payloads if not p.is_rule}

    def rules(self, scope: Scope) -> tuple[Payload, ...]:
        return tuple(p for p in self.payloads if p.scope == scope)


def export_profile(
    profile: Profile, raw: Mapping[str, Any], env: Mapping[str, str] | None = None
) -> GatewayExport:
    """The gateway payloads for ``profile`` (``raw``: its TOML data, unwrapped).

    Secrets stay ``${VAR}`` placeholders; with ``env`` they are resolved from it (an
    unset variable is the ``EnvVarError`` naming key and variable). A literal secret
    is never copied without ``env``: it becomes a placeholder, with a warning.
    """
    warnings: list[str] = []
    exporter = _Exporter(profile, raw, env, warnings)
    payloads = [p for ref in OBJECT_ORDER if (p := exporter.object(ref)) is not None]
    present = {p.ref for p in payloads}
    for scope in SCOPES:
        if PARENT_REFS[scope] in present:
            payloads.extend(exporter.rules(scope))
        elif exporter.rules(scope):
            warnings.append(f"[{scope}] has rules but is not exported: they are dropped")
    return GatewayExport(tuple(payloads), exporter.rrdev_only(), tuple(warnings))


@dataclass(frozen=True)
class _Exporter:
    profile: Profile
    raw: Mapping[str, Any]
    env: Mapping[str, str] | None
    warnings: list[str]

    def section(self, name: str) -> Mapping[str, Any]:
        value = self.raw.get(name)
        return value if isinstance(value, Mapping) else {}

    def object(self, ref: str) -> Payload | None:
        if ref == "target_credential" and not self._has_target_credential():
            return None
        build = {
            "target": self._target,
            "target_credential": self._credential,
            "proxy_credential": self._credential,
            "proxy": self._proxy,
        }[ref]
        return Payload(ref, build(ref))

    def _has_target_credential(self) -> bool:
        """auth_type "none" with nothing else to say is no credential at all: the proxy
        then has no proxyTargetCredentialId (the gateway's way of saying none)."""
        c = self.profile.target_credential
        return c.auth_type != "none" or bool(c.rules) or c.default_effect != "allow"

    def _target(self, _ref: str) -> dict[str, Any]:
        t = self.profile.target
        body: dict[str, Any] = {"targetName": t.name, "targetBaseURL": t.base_url}
        _put(body, "targetTestPath", t.test_path)
        _put(body, "targetRegion", t.region)
        self._effect(body, "target")
        return body

    def _credential(self, ref: str) -> dict[str, Any]:
        c = getattr(self.profile, ref)
        kind = "target" if ref == "target_credential" else "proxy"
        body: dict[str, Any] = {
            "credentialType": kind,
            "credentialAuthType": auth_type_to_gateway(ref, c.auth_type),
            "credentialName": c.name,
        }
        _put(body, "credentialRegion", c.region)
        secret = self._credential_secret(ref, c.name, c.auth_type)
        if secret:
            body["credentialSecret"] = secret
        self._effect(body, ref)
        return body

    def _credential_secret(self, ref: str, name: str, auth_type: str) -> dict[str, Any]:
        section = self.section(ref)
        secret: dict[str, Any] = {}
        for field, key in SECRET_SHAPES.get((ref, auth_type), ()):
            value = section.get(key)
            if value is None:
                continue
            if key == "issuer" and isinstance(value, list):
                value = self._first_issuer(value)
            secret[field] = self._secret_value(f"{ref}.{key}", name, field, value)
        return secret

    def _first_issuer(self, issuers: list[Any]) -> Any:
        if len(issuers) > 1:
            self.warnings.append(
                "proxy_credential.issuer lists several issuers; the gateway's jwtVerify "
                f"takes one: exported the first ({issuers[0]!r})"
            )
        return issuers[0] if issuers else None

    def _secret_value(self, key: str, name: str, field: str, value: Any) -> Any:
        if not (is_secret_key(key) and isinstance(value, str)):
            return value
        if self.env is not None:
            return Secret(value, key=key, file=self.profile.path).resolve(self.env)
        if ENV_REF.search(value):
            return value
        placeholder = placeholder_name(name, field)
        self.warnings.append(
            f"{key} holds a literal secret: exported as ${{{placeholder}}} "
            "(use ${VAR} in the profile; --with-secrets sends the value)"
        )
        return f"${{{placeholder}}}"

    def _proxy(self, _ref: str) -> dict[str, Any]:
        p = self.profile.proxy
        body: dict[str, Any] = {"proxyName": p.name}
        _put(body, "proxyRegion", p.region)
        body["proxyProxyCredentialId"] = {"$ref": "proxy_credential"}
        body["proxyTargetId"] = {"$ref": "target"}
        if self._has_target_credential():
            body["proxyTargetCredentialId"] = {"$ref": "target_credential"}
        self._effect(body, "proxy")
        _put(body, "proxyAlias", p.alias)
        headers = self.section("proxy").get("additional_headers")
        if headers:
            body["proxyAdditionalHeaders"] = dict(headers)
        if self.section("proxy").get("active") is False:
            body["proxyActive"] = False
        return body

    def _effect(self, body: dict[str, Any], ref: str) -> None:
        """Written only when the profile says it: the seed's target has none."""
        value = self.section(ref).get("default_effect")
        if value is not None:
            body[DEFAULT_EFFECT_FIELD[ref]] = value

    def rules(self, scope: Scope) -> list[Payload]:
        rules = getattr(self.profile, scope).rules
        return [Payload(f"{scope}.rules[{r.index}]", rule_body(r), scope, r.id) for r in rules]

    def rrdev_only(self) -> dict[str, Any]:
        """Every key of the profile no payload carries, by section, with its value
        (literal secrets replaced by placeholders): what ``import`` restores."""
        kept: dict[str, Any] = {}
        for section, value in self.raw.items():
            if section == "checks":  # a check's token = "auth" names a token, holds none
                kept[section] = value
            elif section in RRDEV_ONLY_SECTIONS:
                kept[section] = _without_literal_secrets(section, value)
            elif not isinstance(value, Mapping):
                continue
            elif extra := self._unmapped(section, value):
                kept[section] = extra
        return kept

    def _unmapped(self, section: str, table: Mapping[str, Any]) -> dict[str, Any]:
        mapped = MAPPED_KEYS.get(section, ())
        extra = {k: v for k, v in table.items() if k not in mapped}
        issuer = table.get("issuer")
        if section == "proxy_credential" and isinstance(issuer, list) and len(issuer) > 1:
            extra["issuer"] = issuer  # exported as its first entry only
        ids = [r.get("id") for r in table.get("rules", ()) if isinstance(r, Mapping)]
        if any(ids):
            extra["rule_ids"] = ids
        return _without_literal_secrets(section, extra)


def _put(body: dict[str, Any], field: str, value: Any) -> None:
    if value is not None:
        body[field] = value


def _without_literal_secrets(key: str, value: Any) -> Any:
    """rrdev-only values are printed by ``export --json``: a literal secret in them
    (``client_secret = "abc"``) is replaced by a placeholder, never copied."""
    if isinstance(value, Mapping):
        return {k: _without_literal_secrets(f"{key}.{k}", v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_literal_secrets(key, v) for v in value]
    if isinstance(value, str) and is_secret_key(key) and not ENV_REF.search(value):
        return "${" + placeholder_name(key.rsplit(".", 1)[-1], "") + "}"
    return value


# ------------------------------------------------------------------------ rules


def rule_body(rule: Rule) -> dict[str, Any]:
    """A rule as the gateway's create payload (the seed's nesting for ``path``)."""
    body: dict[str, Any] = {"effect": rule.effect}
    if rule.methods:
        body["methods"] = list(rule.methods)
    if rule.path is not None:
        body["path"] = {"path": _pattern(rule.path.pattern), "presence": rule.path.presence}
    for name, conditions, name_key in (
        ("headers", rule.headers, "name"),
        ("query", rule.query, "name"),
        ("token", rule.token, "claim"),
    ):
        if conditions:
            body[name] = [_pair(c, name_key, drop_i=name == "headers") for c in conditions]
    if rule.priority:
        body["priority"] = rule.priority
    if rule.notes:
        body["notes"] = rule.notes
    return body


def _pattern(pattern: Pattern, drop_i: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"pattern": pattern.source}
    flags = pattern.flags.replace("i", "") if drop_i else pattern.flags
    if flags:
        out["flags"] = flags
    return out


def _pair(c: PairCondition, name_key: str, *, drop_i: bool) -> dict[str, Any]:
    """Header names always match case-insensitively: their implied ``i`` is not sent."""
    out: dict[str, Any] = {name_key: _pattern(c.name, drop_i)}
    if c.value is not None:
        out["value"] = _pattern(c.value)
    out["presence"] = c.presence
    return out


__all__ = ["CREDENTIAL_SECTIONS", "GatewayExport", "Payload", "export_profile", "rule_body"]


def export_document(export: GatewayExport, source: str) -> dict[str, Any]:
    """``rrdev export --json``: what ``rrdev import`` reads back."""
    from rrdev.core.gateway.setup import EXPORT_FORMAT

    payloads = []
    for p in export.payloads:
        entry: dict[str, Any] = {"ref": p.ref, "method": "POST", "path": p.path}
        if p.scope is not None:
            entry.update(scope=p.scope, parent={"$ref": PARENT_REFS[p.scope]})
            if p.rule_id is not None:
                entry["rule_id"] = p.rule_id
        entry["body"] = p.body
        payloads.append(entry)
    return {
        "format": EXPORT_FORMAT,
        "source": source,
        "references": '{"$ref": "<ref>"} is the ID the API gives the payload of that ref',
        "payloads": payloads,
        "rrdev_only": export.rrdev_only,
        "warnings": list(export.warnings),
    }
